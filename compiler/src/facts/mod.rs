//! What each provider really offers, as data compiled into the crate: the
//! checker asks these modules whether an action exists, what it can act on,
//! and whether it lets an agent widen access.

pub mod aws;
pub mod gcp;
pub mod github;
pub mod kubernetes;

/// The provider kinds the language knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Aws,
    Gcp,
    Kubernetes,
    Github,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::Aws,
        ProviderKind::Gcp,
        ProviderKind::Kubernetes,
        ProviderKind::Github,
    ];

    pub fn parse(text: &str) -> Option<ProviderKind> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Aws => "aws",
            ProviderKind::Gcp => "gcp",
            ProviderKind::Kubernetes => "kubernetes",
            ProviderKind::Github => "github",
        }
    }

    /// Whether the provider compares actions without regard to case.
    pub fn actions_ignore_case(self) -> bool {
        matches!(self, ProviderKind::Aws)
    }

    /// What a provider of this kind is declared with: one line per kind.
    pub fn rules(self) -> &'static KindRules {
        match self {
            ProviderKind::Aws => &aws::RULES,
            ProviderKind::Gcp => &gcp::RULES,
            ProviderKind::Kubernetes => &kubernetes::RULES,
            ProviderKind::Github => &github::RULES,
        }
    }
}

/// How a provider kind is declared (`provider KIND NAME { … }`) and how an
/// agent says it runs there (`runs_on KIND.NAME …`), as data.
#[derive(Debug)]
pub struct KindRules {
    /// The fields of its `provider` block.
    pub fields: &'static [&'static str],
    /// The field that names the instance (an account, a project, a
    /// cluster, an organisation); it must be there.
    pub identity: &'static str,
    /// The identity field written out, for a help.
    pub example: &'static str,
    /// Whether a value of the identity field is well formed.
    pub valid_identity: fn(&str) -> bool,
    /// What is wrong with one that is not, and what to write.
    pub invalid_identity: (&'static str, &'static str),
    /// The attributes a `runs_on` of this kind takes, and those it needs.
    pub runs_on: &'static [&'static str],
    pub runs_on_required: &'static [&'static str],
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
