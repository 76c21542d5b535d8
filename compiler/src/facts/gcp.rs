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
