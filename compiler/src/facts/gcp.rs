//! GCP IAM facts: the forms a role name takes, and roles that let an agent
//! widen access.

/// Is the text a role name: `roles/…` (predefined), `projects/P/roles/…` or
/// `organizations/O/roles/…` (custom)? Wildcards are allowed in the last part.
pub fn is_role_name(text: &str) -> bool {
    let parts: Vec<&str> = text.split('/').collect();
    let valid_id = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-*?".contains(c))
    };
    match parts.as_slice() {
        ["roles", id] => valid_id(id),
        ["projects", project, "roles", id] | ["organizations", project, "roles", id] => {
            valid_id(project) && valid_id(id)
        }
        _ => false,
    }
}

/// Roles that let a holder widen its own or others' access.
pub const ESCALATION_ROLES: &[&str] = &[
    "roles/owner",
    "roles/editor",
    "roles/iam.securityAdmin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountKeyAdmin",
    "roles/iam.serviceAccountTokenCreator",
    // ID tokens of a service account prove its agent to `writ serve`.
    "roles/iam.serviceAccountOpenIdTokenCreator",
    "roles/iam.serviceAccountUser",
    "roles/iam.workloadIdentityUser",
    "roles/resourcemanager.projectIamAdmin",
    "roles/resourcemanager.organizationAdmin",
];

/// Is the text a GCP resource name (`projects/acme`, `projects/_/buckets/b`,
/// or a full `//service.googleapis.com/…` name)?
pub fn is_resource_name(text: &str) -> bool {
    let path = text
        .strip_prefix("//")
        .and_then(|rest| rest.split_once('/').map(|(_, path)| path))
        .unwrap_or(text);
    !path.is_empty()
        && !path.starts_with('/')
        && !path.chars().any(char::is_whitespace)
        && path.split('/').all(|part| !part.is_empty())
}

/// How a GCP provider is declared, and how an agent runs there.
pub const RULES: super::KindRules = super::KindRules {
    fields: &["project"],
    identity: "project",
    example: "project = \"my-project\"",
    valid_identity: is_project_id,
    invalid_identity: (
        "a GCP project id is 6 to 30 lowercase letters, digits and hyphens, starting with a letter",
        "use the project id, not its display name or number",
    ),
    runs_on: &["workload_pool", "subject"],
    runs_on_required: &["workload_pool", "subject"],
};

/// A project id: 6 to 30 lowercase letters, digits and hyphens, starting
/// with a letter, not ending with a hyphen.
pub fn is_project_id(text: &str) -> bool {
    (6..=30).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && !text.ends_with('-')
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
