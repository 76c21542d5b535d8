//! Ownership, written once: the marks writ puts on the objects it makes
//! (tags, labels, annotations, paths, policy names), how it tells its own
//! objects from other projects' and from everyone else's, and the digest of
//! what it set. Lowering puts the marks, the planner reads them, and every
//! provider checks them again right before it writes.
//!
//! An IAM role or managed policy is a project's when it sits under `/writ/`
//! and is tagged `writ:project = <project>`; an inline policy is when its
//! role is. A Kubernetes object is when it is labelled
//! `app.kubernetes.io/managed-by: writ` and `writ.dev/project: <project>`.
//! Anything else is listed, never changed.

use crate::policy;
use crate::resource::{Resource, ResourceKind};
use serde_json::Value;
use std::collections::HashSet;
use std::hash::BuildHasher;

/// The marks on AWS IAM objects.
pub mod aws {
    /// Every project's objects sit under this path; one project's under
    /// [`path`].
    pub const PATH_ROOT: &str = "/writ/";
    pub const PROJECT_TAG: &str = "writ:project";
    pub const AGENT_TAG: &str = "writ:agent";
    pub const OWNER_TAG: &str = "writ:owner";
    /// The digest of what writ set (see [`super::content_digest`]).
    pub const DIGEST_TAG: &str = "writ:digest";
    /// The inline policy writ writes on each role.
    pub const ACCESS_POLICY: &str = "writ-access";
    /// The inline policy `writ revoke` puts on a role: it denies every
    /// session issued before the revocation. Plans keep it (it is not drift)
    /// until `writ revoke --lift` removes it.
    pub const REVOKE_POLICY: &str = "writ-revoke";
    /// The tag `writ revoke` writes on a role first (when it was revoked):
    /// it marks the role revoked even if what follows is interrupted.
    pub const REVOKED_TAG: &str = "writ:revoked-at";
    /// The `Sid` of the statement `writ revoke` adds to a role's trust
    /// policy: nobody may assume the role until the revocation is lifted.
    pub const REVOKE_TRUST_SID: &str = "WritRevoked";

    /// The trust statement of a revoked role: a deny, for every principal,
    /// of assuming it (any way) and of starting a session on it.
    pub fn revoke_trust_statement() -> serde_json::Value {
        serde_json::json!({
            "Sid": REVOKE_TRUST_SID,
            "Effect": "Deny",
            // Every principal: `{"AWS": "*"}` names AWS principals, and
            // writ's roles are assumed by federated ones too.
            "Principal": "*",
            "Action": [
                "sts:AssumeRole",
                "sts:AssumeRoleWithSAML",
                "sts:AssumeRoleWithWebIdentity",
                "sts:SetSourceIdentity",
                "sts:TagSession"
            ]
        })
    }

    /// Is this trust statement the one `writ revoke` adds?
    pub fn is_revoke_statement(statement: &serde_json::Value) -> bool {
        statement.get("Sid").and_then(serde_json::Value::as_str) == Some(REVOKE_TRUST_SID)
            && statement.get("Effect").and_then(serde_json::Value::as_str) == Some("Deny")
    }

    /// Room to leave in a role's trust policy for the revocation statement,
    /// in characters of JSON without white space.
    pub fn revoke_trust_room() -> usize {
        revoke_trust_statement().to_string().len() + 1
    }

    /// The path under which writ keeps a project's IAM objects.
    pub fn path(project: &str) -> String {
        format!("{PATH_ROOT}{project}/")
    }

    /// Is an IAM role or managed policy, with this path and these tags, the
    /// project's? The rule the planner and the provider's write-time
    /// re-check share. (A role an earlier layout left at another `/writ/…`
    /// path is still the project's, and is replaced into the right one.)
    pub fn owns<'a>(
        path: &str,
        mut tags: impl Iterator<Item = (&'a str, &'a str)>,
        project: &str,
    ) -> bool {
        path.starts_with(PATH_ROOT) && tags.any(|(k, v)| k == PROJECT_TAG && v == project)
    }
}

/// The marks on Kubernetes objects.
pub mod kubernetes {
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The value of [`MANAGED_BY`] on writ's objects.
    pub const MANAGER: &str = "writ";
    pub const PROJECT_LABEL: &str = "writ.dev/project";
    pub const AGENT_LABEL: &str = "writ.dev/agent";
    pub const OWNER_ANNOTATION: &str = "writ.dev/owner";
    pub const DIGEST_ANNOTATION: &str = "writ.dev/digest";
    /// Set by `writ revoke` on the agent's service accounts: plans keep the
    /// agent without bindings until `writ revoke --lift` removes it.
    pub const REVOKED_ANNOTATION: &str = "writ.dev/revoked-at";

    /// Is an object with these labels the project's? `label` looks one up.
    /// Labels are a claim anyone who may edit an object can make: see
    /// [`is_reserved`] for what no label makes writ's.
    pub fn owns<'a>(label: impl Fn(&str) -> Option<&'a str>, project: &str) -> bool {
        label(MANAGED_BY) == Some(MANAGER) && label(PROJECT_LABEL) == Some(project)
    }

    /// Namespaces the cluster itself keeps.
    pub const RESERVED_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

    /// Objects writ never changes, whatever their labels say: anything in
    /// the cluster's own namespaces, and anything named `system:…` (the
    /// cluster's own roles and bindings).
    pub fn is_reserved(namespace: Option<&str>, name: &str) -> bool {
        namespace.is_some_and(|ns| RESERVED_NAMESPACES.contains(&ns)) || name.starts_with("system:")
    }

    /// Is it some writ project's (this one's or another's)?
    pub fn is_writs<'a>(label: impl Fn(&str) -> Option<&'a str>) -> bool {
        label(MANAGED_BY) == Some(MANAGER)
    }

    /// The label selector of one agent's objects in a project.
    pub fn agent_selector(project: &str, agent: &str) -> String {
        format!("{MANAGED_BY}={MANAGER},{PROJECT_LABEL}={project},{AGENT_LABEL}={agent}")
    }

    /// The label selector of a project's objects.
    pub fn project_selector(project: &str) -> String {
        format!("{MANAGED_BY}={MANAGER},{PROJECT_LABEL}={project}")
    }
}

/// Whose an observed object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    Ours,
    /// Another writ project's: not ours to list or change.
    OtherProject,
    Unmanaged,
}

fn label<'a>(resource: &'a Resource, name: &str) -> Option<&'a str> {
    resource
        .attributes
        .get("labels")
        .and_then(|labels| labels.get(name))
        .and_then(Value::as_str)
}

/// Whose `resource` is, for `project`. `our_roles` are the project's roles
/// as (provider, name): an inline policy is ours when its role is.
pub fn ownership<S: BuildHasher>(
    resource: &Resource,
    project: &str,
    our_roles: &HashSet<(&str, &str), S>,
) -> Ownership {
    match resource.kind {
        ResourceKind::AwsRole | ResourceKind::AwsManagedPolicy => {
            let path = resource.string("path").unwrap_or("/");
            let tags = resource
                .attributes
                .get("tags")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)));
            if aws::owns(path, tags, project) {
                Ownership::Ours
            } else if path.starts_with(aws::PATH_ROOT) && path != aws::path(project) {
                Ownership::OtherProject
            } else {
                Ownership::Unmanaged
            }
        }
        ResourceKind::AwsRolePolicy => {
            let role = resource.string("role").unwrap_or_default();
            if our_roles.contains(&(resource.provider.as_str(), role)) {
                Ownership::Ours
            } else {
                Ownership::OtherProject
            }
        }
        ResourceKind::AwsUser | ResourceKind::AwsAccessKey => Ownership::Unmanaged,
        _ if resource.kind.is_kubernetes() => {
            let label = |name: &str| label(resource, name);
            let name = resource.string("name").unwrap_or_default();
            if kubernetes::is_reserved(resource.string("namespace"), name) {
                // Labelled as writ's or not, the cluster's own objects are
                // listed, never changed.
                return Ownership::Unmanaged;
            }
            if kubernetes::owns(label, project) {
                Ownership::Ours
            } else if kubernetes::is_writs(label) {
                Ownership::OtherProject
            } else {
                Ownership::Unmanaged
            }
        }
        _ => Ownership::Unmanaged,
    }
}

/// The agent an owned object belongs to: its tag or label, else what
/// lowering recorded, else (for an inline policy) its role's name.
pub fn agent_name(resource: &Resource) -> Option<&str> {
    resource
        .tag(aws::AGENT_TAG)
        .or_else(|| label(resource, kubernetes::AGENT_LABEL))
        .or(resource.agent.as_deref())
        .or_else(|| resource.string("role"))
}

/// [`agent_name`], owned.
pub fn agent_of(resource: &Resource) -> Option<String> {
    agent_name(resource).map(str::to_string)
}

/// The digest writ recorded on an object, if any.
pub fn recorded_digest(resource: &Resource) -> Option<&str> {
    resource.tag(aws::DIGEST_TAG).or_else(|| {
        resource
            .attributes
            .get("annotations")
            .and_then(|a| a.get(kubernetes::DIGEST_ANNOTATION))
            .and_then(Value::as_str)
    })
}

/// The digest of what writ sets on an object: its attributes without the
/// digest tag, and, for a role, its inline policies (by name). Documents
/// must be in canonical form, as lowering writes them and as the plan reads
/// them (see `plan::diff::normalised`).
pub fn content_digest<'a>(
    resource: &Resource,
    inline_policies: impl IntoIterator<Item = &'a Resource>,
) -> String {
    let mut hasher = policy::Digester::new();
    for (key, value) in resource.compared_attributes() {
        hasher.value(key);
        match (key.as_str(), value) {
            ("tags" | "annotations", Value::Object(entries)) => {
                for (name, entry) in entries.iter().filter(|(name, _)| {
                    *name != aws::DIGEST_TAG
                        && *name != aws::REVOKED_TAG
                        && *name != kubernetes::DIGEST_ANNOTATION
                        && *name != kubernetes::REVOKED_ANNOTATION
                }) {
                    hasher.value(name);
                    hasher.value(entry);
                }
            }
            // A revocation is not what writ applies from the source.
            ("assume_role_policy", Value::Object(document)) => {
                let mut document = document.clone();
                if let Some(Value::Array(statements)) = document.get_mut("Statement") {
                    statements.retain(|s| !aws::is_revoke_statement(s));
                }
                hasher.value(&Value::Object(document));
            }
            _ => hasher.value(value),
        }
    }
    // A revocation is not part of what writ applies from the source.
    let mut policies: Vec<(&str, &Value)> = inline_policies
        .into_iter()
        .filter_map(|inline| Some((inline.string("name")?, inline.attribute("policy")?)))
        .filter(|(name, _)| *name != aws::REVOKE_POLICY)
        .collect();
    policies.sort_by_key(|(name, _)| *name);
    hasher.bytes(b"inline policies");
    for (name, document) in policies {
        hasher.value(&name);
        hasher.value(document);
    }
    hasher.finish()
}
