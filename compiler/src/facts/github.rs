//! GitHub fine-grained permissions (as GitHub Apps and installation tokens
//! name them) and the levels each accepts.

/// `(permission, levels)`, levels from weakest to strongest.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    ("actions", &["read", "write"]),
    ("administration", &["read", "write", "admin"]),
    ("attestations", &["read", "write"]),
    ("checks", &["read", "write"]),
    ("codespaces", &["read", "write"]),
    ("contents", &["read", "write"]),
    ("custom_properties", &["read", "write", "admin"]),
    ("dependabot_secrets", &["read", "write"]),
    ("deployments", &["read", "write"]),
    ("discussions", &["read", "write"]),
    ("environments", &["read", "write"]),
    ("issues", &["read", "write"]),
    ("members", &["read", "write"]),
    ("merge_queues", &["read", "write"]),
    ("metadata", &["read"]),
    ("models", &["read"]),
    ("organization_administration", &["read", "write"]),
    ("organization_custom_roles", &["read", "write"]),
    ("organization_hooks", &["read", "write"]),
    ("organization_packages", &["read", "write"]),
    ("organization_plan", &["read"]),
    ("organization_projects", &["read", "write", "admin"]),
    ("organization_secrets", &["read", "write"]),
    ("organization_self_hosted_runners", &["read", "write"]),
    ("organization_user_blocking", &["read", "write"]),
    ("packages", &["read", "write"]),
    ("pages", &["read", "write"]),
    ("pull_requests", &["read", "write"]),
    ("repository_hooks", &["read", "write"]),
    ("repository_projects", &["read", "write", "admin"]),
    ("secret_scanning_alerts", &["read", "write"]),
    ("secrets", &["read", "write"]),
    ("security_events", &["read", "write"]),
    ("single_file", &["read", "write"]),
    ("statuses", &["read", "write"]),
    ("team_discussions", &["read", "write"]),
    ("vulnerability_alerts", &["read", "write"]),
    ("workflows", &["write"]),
];

pub fn levels(permission: &str) -> Option<&'static [&'static str]> {
    PERMISSIONS
        .iter()
        .find(|(name, _)| *name == permission)
        .map(|(_, levels)| *levels)
}

/// The rank of a level: a higher level includes the lower ones.
pub fn level_rank(level: &str) -> Option<u8> {
    match level {
        "read" => Some(1),
        "write" => Some(2),
        "admin" => Some(3),
        _ => None,
    }
}

/// Permissions that let an agent widen access (`permission`, lowest level
/// that does).
pub const ESCALATION: &[(&str, &str)] = &[
    ("administration", "write"),
    ("organization_administration", "write"),
    ("members", "write"),
    ("organization_custom_roles", "write"),
    ("secrets", "write"),
    ("organization_secrets", "write"),
    ("workflows", "write"),
];

/// Is `owner/repo` a well-formed repository (wildcards allowed in the name)?
pub fn is_repository(text: &str) -> bool {
    let Some((owner, repo)) = text.split_once('/') else {
        return false;
    };
    let ok = |part: &str, extra: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c) || extra.contains(c))
    };
    ok(owner, "*?") && ok(repo, "*?")
}

/// How a GitHub provider is declared, and how an agent runs there.
pub const RULES: super::KindRules = super::KindRules {
    fields: &["org"],
    identity: "org",
    example: "org = \"my-org\"",
    valid_identity: |value| {
        !value.is_empty()
            && value.len() <= 39
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !value.starts_with('-')
    },
    invalid_identity: (
        "a GitHub organisation name is letters, digits and single hyphens",
        "use the organisation's login, as in its URL",
    ),
    // `repo` (a workflow) or `app` (an App's installation): checked there.
    runs_on: &["repo", "workflow", "ref", "environment", "app"],
    runs_on_required: &[],
};
