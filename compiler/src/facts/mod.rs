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
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
