//! The changes of a plan: what the source wants that is missing or
//! different (create, update, replace), what writ owns that the source no
//! longer wants (delete), and names taken by objects writ does not own
//! (conflicts).

use super::aws::role_of;
use super::diff::{changed_paths, update_reason};
use super::join::Row;
use super::{Action, Change, ChangeKind, Conflict, Summary};
use crate::lower::Desired;
use crate::ownership::aws::{ACCESS_POLICY, AGENT_TAG, DIGEST_TAG};
use crate::ownership::{
    agent_of,
    kubernetes::{DIGEST_ANNOTATION, MANAGED_BY},
};
use crate::resource::{Resource, ResourceKind};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Desired objects whose address is taken by an object writ does not own,
/// and those that name a role whose adoption is refused (see
/// [`names_refused`]).
pub(super) fn conflicted<'a>(rows: &[Row<'a>], refused: &Refused) -> BTreeSet<&'a str> {
    rows.iter()
        .filter(|row| {
            (row.desired.is_some() && row.taken().is_some())
                || row
                    .desired
                    .is_some_and(|r| names_refused(r, refused).is_some())
        })
        .map(|row| row.address)
        .collect()
}

/// The roles the source adopts that writ will not take over.
pub(super) type Refused = Vec<(String, String)>;

/// The roles the source adopts that writ will not take over, as the end
/// of their ARN (`:role/PATH/NAME"`, quoted as in a document), with their
/// agent.
pub(super) fn refused_adoptions(rows: &[Row]) -> Refused {
    rows.iter()
        .filter(|row| row.taken().is_some())
        .filter_map(|row| row.desired)
        .filter(|r| r.kind == ResourceKind::AwsRole && super::ownership::is_adopted(r))
        .map(|r| {
            (
                format!(
                    ":role{}{}\"",
                    r.string("path").unwrap_or("/"),
                    r.string("name").unwrap_or_default()
                ),
                r.agent.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// Does this object (a delegate's trust, a service account's role
/// annotation) name a role whose adoption is refused? Its agent's, then:
/// the role is not writ's, and who may use it is not what the source says.
fn names_refused<'r>(resource: &Resource, refused: &'r Refused) -> Option<&'r str> {
    if refused.is_empty() {
        return None;
    }
    let text = match resource.kind {
        ResourceKind::AwsRole => resource.attribute("assume_role_policy")?.to_string(),
        ResourceKind::KubernetesServiceAccount => resource.attribute("annotations")?.to_string(),
        _ => return None,
    };
    refused
        .iter()
        .find(|(arn, agent)| text.contains(arn.as_str()) && resource.agent.as_ref() != Some(agent))
        .map(|(_, agent)| agent.as_str())
}

/// What the comparison of the desired objects with the owned ones needs.
pub(super) struct Compare<'r, 'a> {
    pub desired: &'a Desired,
    pub rows: &'r [Row<'a>],
    /// Addresses with drift (an update there restores them).
    pub drifted: &'r BTreeSet<&'a str>,
    pub conflicted: &'r BTreeSet<&'a str>,
    /// The adoptions writ will not carry out (see [`refused_adoptions`]).
    pub refused: &'r Refused,
}

impl Compare<'_, '_> {
    /// Creates, updates and replacements for every desired object, and the
    /// conflicts that keep some from being created.
    pub(super) fn desired_changes(
        &self,
        changes: &mut Vec<Change>,
        conflicts: &mut Vec<Conflict>,
        summary: &mut Summary,
    ) {
        // A desired role whose name is taken cannot be created; nor can
        // anything that belongs to it.
        let held_back = |address: &str| {
            !self.conflicted.is_empty()
                && self.conflicted.contains(role_of(address))
                && !self.conflicted.contains(address)
        };
        // Agents that already have a role (for "agent … is new" reasons),
        // found when the first role is to be created.
        let mut agents_with_objects: Option<HashSet<&str>> = None;
        for row in self.rows {
            let Some(resource) = row.desired else {
                continue;
            };
            if held_back(&resource.address) {
                continue;
            }
            if let Some(parent) = names_refused(resource, self.refused) {
                conflicts.push(Conflict {
                    address: resource.address.clone(),
                    kind: resource.kind,
                    agent: resource.agent.clone(),
                    detail: format!(
                        "it names the role `{parent}` adopts, which writ does not take over (see its conflict): not written until that role is writ's"
                    ),
                });
                continue;
            }
            if let Some(current) = row.adopting() {
                changes.push(adopt(current, resource));
                continue;
            }
            match (row.owned(), row.taken()) {
                (Some(_), _) if row.identical => summary.unchanged += 1,
                (Some(current), _) => match self.update(current, resource) {
                    Some(change) => changes.push(change),
                    None => summary.unchanged += 1,
                },
                (None, Some(taken)) => conflicts.push(self.conflict(resource, taken)),
                (None, None) => {
                    let agents = agents_with_objects.get_or_insert_with(|| {
                        self.rows
                            .iter()
                            .filter_map(Row::owned)
                            .filter(|r| r.kind == ResourceKind::AwsRole)
                            .filter_map(|r| r.tag(AGENT_TAG))
                            .collect()
                    });
                    changes.push(create(resource, agents));
                }
            }
        }
    }

    /// The update (or replacement) that makes `current` what the source
    /// wants; `None` when they agree.
    fn update(&self, current: &Resource, resource: &Resource) -> Option<Change> {
        let paths = changed_paths(&current.attributes, &resource.attributes);
        if paths.is_empty() {
            return None;
        }
        let replace_because = paths
            .iter()
            .find(|p| resource.kind.forces_replacement(p))
            .cloned();
        let restoring = self.drifted.contains(role_of(&resource.address));
        let reason = match &replace_because {
            Some(attribute) => {
                format!("the live `{attribute}` differs from the source and cannot change in place")
            }
            None if resource.kind == ResourceKind::GcpServiceAccount
                && paths == ["description"]
                && crate::ownership::gcp::same_but_digest(
                    current.string("description").unwrap_or_default(),
                    resource.string("description").unwrap_or_default(),
                ) =>
            {
                if restoring {
                    "records the digest of what writ sets for its agent, restored".to_string()
                } else {
                    "records the digest of its agent's new bindings".to_string()
                }
            }
            None if resource.kind.is_governed() => format!(
                "governed attribute{}: {}",
                if paths.len() == 1 { "" } else { "s" },
                governed_reason(resource)
            ),
            None => update_reason(&paths, restoring),
        };
        Some(Change {
            address: resource.address.clone(),
            provider: resource.provider.clone(),
            kind: resource.kind,
            agent: resource.agent.clone(),
            actions: if replace_because.is_some() {
                vec![Action::Delete, Action::Create]
            } else {
                vec![Action::Update]
            },
            before: Some(current.attributes.to_map()),
            after: Some(resource.attributes.to_map()),
            changed_paths: paths,
            replace_because,
            reason,
        })
    }

    fn conflict(&self, resource: &Resource, taken: &Resource) -> Conflict {
        let project = &self.desired.project;
        let refused = super::ownership::is_adopted(resource)
            .then(|| super::ownership::adoption_refused(taken, resource, self.rows))
            .flatten();
        Conflict {
            address: resource.address.clone(),
            kind: resource.kind,
            agent: resource.agent.clone(),
            detail: if let Some(refused) = refused {
                format!(
                    "the source adopts this {}, but writ will not take it over: {refused}",
                    resource.kind.noun()
                )
            } else if resource.kind.is_kubernetes() {
                let managed_by = taken
                    .attribute("labels")
                    .and_then(|l| l.get(MANAGED_BY))
                    .and_then(Value::as_str);
                format!(
                    "a {} of that name exists ({}) but is not managed by writ project `{project}`; writ will not take it over",
                    resource.kind.noun(),
                    match managed_by {
                        Some(manager) => format!("`{MANAGED_BY}: {manager}`"),
                        None => "without writ's labels".to_string(),
                    }
                )
            } else {
                // What tells it apart: another project's tag, or its path
                // (an inline policy has neither).
                let other = taken
                    .attribute("tags")
                    .and_then(|t| t.get("writ:project"))
                    .and_then(Value::as_str);
                let why = match (other, taken.string("path")) {
                    (Some(other), _) => format!(" (it is writ project `{other}`'s)"),
                    (None, Some(path)) => format!(" (path `{path}`)"),
                    (None, None) => String::new(),
                };
                let noun = resource.kind.noun();
                let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u', 'I']) {
                    "an"
                } else {
                    "a"
                };
                format!(
                    "{article} {noun} of that name exists{why} but is not managed by writ project `{project}`; writ will not take it over"
                )
            },
        }
    }

    /// Deletions of what writ owns and the source no longer wants.
    pub(super) fn deletions(&self, changes: &mut Vec<Change>) {
        let adopting: BTreeSet<&str> = self
            .rows
            .iter()
            .filter(|row| row.adopting().is_some())
            .map(|row| row.address)
            .collect();
        for row in self.rows.iter().filter(|row| row.desired.is_none()) {
            if let Some(current) = row.owned() {
                // Governed, not owned: what the source no longer governs
                // stays as it is.
                if current.kind.is_governed() {
                    continue;
                }
                let mut change = delete(self.desired, row.address, current);
                if current.kind == ResourceKind::AwsRolePolicy
                    && adopting.contains(role_of(row.address))
                {
                    change.reason = format!(
                        "a policy of the adopted role: what it allows is now `{ACCESS_POLICY}`'s, as the source says"
                    );
                }
                changes.push(change);
            }
        }
    }
}

/// Why writ sets a governed object's attributes.
fn governed_reason(resource: &Resource) -> String {
    match resource.kind {
        ResourceKind::GithubEnvironment => {
            let name = resource.string("name").unwrap_or("?");
            let refs = super::github::environment_refs(resource);
            let custom = resource
                .attribute("deployment_branch_policy")
                .and_then(|p| p.get("custom_branch_policies"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !custom {
                format!("only protected branches may deploy to environment `{name}`, as an agent that runs in it pins no ref")
            } else if refs.is_empty() {
                format!("no branch or tag may deploy to environment `{name}`: the refs its agents pin are neither")
            } else {
                format!(
                    "only {} may deploy to environment `{name}`, the refs its agents pin",
                    refs.join(", ")
                )
            }
        }
        _ => "a repository agents run in gives workflows a read-only token by default, and Actions may not approve pull requests".to_string(),
    }
}

/// Taking over a role made outside writ (`adopts`): its ownership marks
/// first, then what the source says of it (trust, settings, tags), with
/// managed policies attached outside writ detached (never deleted).
fn adopt(current: &Resource, resource: &Resource) -> Change {
    let agent = resource.agent.clone().unwrap_or_default();
    let mut paths = changed_paths(&current.attributes, &resource.attributes);
    paths.retain(|p| {
        p != &format!("tags.{DIGEST_TAG}") && p != &format!("annotations.{DIGEST_ANNOTATION}")
    });
    let reason = match resource.kind {
        ResourceKind::KubernetesServiceAccount => format!(
            "`{agent}` adopts this service account: writ owns it from now on (its UID, and so its pods' tokens, kept)"
        ),
        _ => format!(
            "`{agent}` adopts this role: writ owns it from now on, where it is (path `{}`)",
            resource.string("path").unwrap_or("/")
        ),
    };
    Change {
        address: resource.address.clone(),
        provider: resource.provider.clone(),
        kind: resource.kind,
        agent: resource.agent.clone(),
        actions: vec![Action::Adopt],
        before: Some(current.attributes.to_map()),
        after: Some(resource.attributes.to_map()),
        changed_paths: paths,
        replace_because: None,
        reason,
    }
}

fn create(resource: &Resource, agents_with_objects: &HashSet<&str>) -> Change {
    let agent = resource.agent.clone().unwrap_or_default();
    let reason = match resource.kind {
        ResourceKind::AwsRole if !agents_with_objects.contains(agent.as_str()) => {
            format!("agent `{agent}` is new in `{}`", resource.provider)
        }
        ResourceKind::AwsRole => format!("role for `{agent}`"),
        ResourceKind::AwsRolePolicy => format!("the grants of `{agent}`"),
        ResourceKind::AwsManagedPolicy => format!("the delegation ceiling of `{agent}`"),
        ResourceKind::KubernetesServiceAccount => {
            format!("`{agent}` runs as this service account")
        }
        ResourceKind::KubernetesRole | ResourceKind::KubernetesClusterRole => {
            format!("the grants of `{agent}`")
        }
        ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding => {
            format!("gives `{agent}` its grants")
        }
        ResourceKind::GcpServiceAccount => format!("`{agent}` runs as this service account"),
        ResourceKind::GcpWorkloadIdentityPool => {
            "where GitHub's tokens become writ's service accounts".to_string()
        }
        ResourceKind::GcpWorkloadIdentityPoolProvider => format!(
            "{}: whose GitHub tokens are taken, and which agents each may act as",
            resource.string("display_name").unwrap_or("?")
        ),
        ResourceKind::GcpIamPolicy => format!(
            "writ's bindings on `{}`",
            resource.string("resource").unwrap_or("?")
        ),
        kind if kind.is_governed() => {
            format!("governed attributes: {}", governed_reason(resource))
        }
        _ => "declared in the source".to_string(),
    };
    Change {
        address: resource.address.clone(),
        provider: resource.provider.clone(),
        kind: resource.kind,
        agent: resource.agent.clone(),
        actions: vec![Action::Create],
        before: None,
        after: Some(resource.attributes.to_map()),
        changed_paths: Vec::new(),
        replace_because: None,
        reason,
    }
}

fn delete(desired: &Desired, address: &str, current: &Resource) -> Change {
    let agent = agent_of(current);
    let name = agent.clone().unwrap_or_default();
    let reason = if let Some(date) = desired.retired.get(&name) {
        match desired.expires_with.get(&name) {
            Some(ancestor) => format!("`{name}` expired on {date} with `{ancestor}`"),
            None => format!("`{name}` expired on {date}"),
        }
    } else if !desired.agents.contains(&name) {
        format!("agent `{name}` was removed from the source")
    } else if current.kind == ResourceKind::AwsManagedPolicy {
        format!("`{name}` no longer has delegates in `{}`", current.provider)
    } else if current.kind == ResourceKind::KubernetesServiceAccount {
        format!("`{name}` no longer runs as this service account")
    } else if let Some(namespace) = current.string("namespace") {
        format!("`{name}` no longer has access in namespace `{namespace}`")
    } else {
        format!("`{name}` no longer has access in `{}`", current.provider)
    };
    Change {
        address: address.to_string(),
        provider: current.provider.clone(),
        kind: current.kind,
        agent,
        actions: vec![Action::Delete],
        before: Some(current.attributes.to_map()),
        after: None,
        changed_paths: Vec::new(),
        replace_because: None,
        reason,
    }
}

/// Deleting a role deletes its inline policies: when a role is replaced,
/// its policies are recreated with it, even those that did not change.
pub(super) fn recreate_with_replaced_roles(
    changes: &mut Vec<Change>,
    rows: &[Row],
    summary: &mut Summary,
) {
    let replaced: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.kind == ResourceKind::AwsRole && c.kind_of_change() == ChangeKind::Replace)
        .map(|c| c.address.clone())
        .collect();
    if replaced.is_empty() {
        return;
    }
    let mut index: HashMap<String, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.address.clone(), i))
        .collect();
    for row in rows {
        let Some(resource) = row.desired else {
            continue;
        };
        if resource.kind != ResourceKind::AwsRolePolicy
            || !replaced.contains(role_of(&resource.address))
        {
            continue;
        }
        let role = role_of(&resource.address);
        let reason = format!("recreated with its role `{role}`");
        match index.get(&resource.address) {
            Some(&at) => {
                let change = &mut changes[at];
                change.actions = vec![Action::Delete, Action::Create];
                change.reason = format!("{}; {reason}", change.reason);
            }
            None => {
                let Some(current) = row.owned() else {
                    continue;
                };
                summary.unchanged = summary.unchanged.saturating_sub(1);
                index.insert(resource.address.clone(), changes.len());
                changes.push(Change {
                    address: resource.address.clone(),
                    provider: resource.provider.clone(),
                    kind: resource.kind,
                    agent: resource.agent.clone(),
                    actions: vec![Action::Delete, Action::Create],
                    before: Some(current.attributes.to_map()),
                    after: Some(resource.attributes.to_map()),
                    changed_paths: Vec::new(),
                    replace_because: Some("role".to_string()),
                    reason,
                });
            }
        }
    }
}
