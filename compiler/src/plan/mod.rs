//! The plan: desired resources (from lowering) against observed ones (from a
//! snapshot or live providers), as a deterministic value. Sorted, with no
//! timestamps; renderers are pure functions of it.
//!
//! Ownership is read from the objects themselves: an IAM role or managed
//! policy is the project's when it is tagged `writ:project = <project>` and
//! sits under `/writ/` (writ puts it at `/writ/<project>/`); an inline policy
//! is the project's when its role is. Objects of other writ projects are left out entirely;
//! everything else that is an identity is listed as unmanaged, and never
//! changed.

mod kubernetes;

use crate::lower::{self, content_digest, Desired, DIGEST_TAG};
use crate::policy;
use crate::resource::{Resource, ResourceKind};
use crate::values::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub const FORMAT_VERSION: u32 = 1;

/// The share of managed objects a plan may delete without
/// `--allow-mass-delete`, in percent.
pub const DEFAULT_MASS_DELETE_PERCENT: u32 = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Create,
    Update,
    Replace,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: String,
    pub provider: String,
    pub kind: ResourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// `["create"]`, `["update"]`, `["delete"]`, or `["delete", "create"]`
    /// for a replacement.
    pub actions: Vec<Action>,
    pub before: Option<BTreeMap<String, Value>>,
    pub after: Option<BTreeMap<String, Value>>,
    /// The attributes that differ (`tags.writ:owner` for one tag).
    #[serde(default)]
    pub changed_paths: Vec<String>,
    /// For a replacement: the attribute that cannot change in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_because: Option<String>,
    pub reason: String,
}

impl Change {
    pub fn kind_of_change(&self) -> ChangeKind {
        match self.actions.as_slice() {
            [Action::Create] => ChangeKind::Create,
            [Action::Delete] => ChangeKind::Delete,
            [Action::Delete, Action::Create] => ChangeKind::Replace,
            _ => ChangeKind::Update,
        }
    }
}

/// An owned object whose content no longer matches the digest writ wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub address: String,
    pub kind: ResourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What differs from the source, where the source still declares it.
    pub changed_paths: Vec<String>,
    pub detail: String,
}

/// An identity writ found but does not own: listed, never changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unmanaged {
    pub address: String,
    pub kind: ResourceKind,
    pub name: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_days: Option<i64>,
    /// Older, or unused for longer, than the configured maximum key age.
    pub stale: bool,
    /// What makes it dangerous (`cluster-admin`, a long-lived token, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// An agent cut off by `writ revoke`: kept so until lifted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revoked {
    pub agent: String,
    pub address: String,
    pub detail: String,
}

/// A desired object whose name is taken by one writ does not own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub address: String,
    pub kind: ResourceKind,
    pub detail: String,
}

/// One (provider, action, resource) an agent may perform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Access {
    pub provider: String,
    pub action: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} `{}` on `{}`",
            self.provider, self.action, self.resource
        )?;
        match &self.condition {
            // A Kubernetes placement ("in namespace `billing`") reads as is.
            Some(place) if place.starts_with("in ") => write!(f, " {place}")?,
            Some(condition) => write!(f, " when {condition}")?,
            None => {}
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentDelta {
    pub agent: String,
    pub gains: Vec<Access>,
    pub losses: Vec<Access>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
    /// Objects writ owns in the observed state.
    pub managed: usize,
    pub drift: usize,
    pub unmanaged: usize,
    pub conflicts: usize,
    pub agents_gaining: usize,
    pub agents_losing: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub project: String,
    pub summary: Summary,
    pub changes: Vec<Change>,
    pub drift: Vec<Drift>,
    pub unmanaged: Vec<Unmanaged>,
    pub conflicts: Vec<Conflict>,
    pub permission_delta: Vec<AgentDelta>,
    /// Agents under `writ revoke`: their revocation is kept by every apply.
    #[serde(default)]
    pub revoked: Vec<Revoked>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// `Some((deletes, managed))` when the plan deletes more than `percent`
    /// of the objects writ manages. Replacements do not count: the object
    /// is there again afterwards; nor do the long-lived tokens it removes.
    pub fn mass_delete(&self, percent: u32) -> Option<(usize, usize)> {
        // Long-lived tokens writ removes are not objects it manages.
        let deletes = self
            .changes
            .iter()
            .filter(|c| c.kind_of_change() == ChangeKind::Delete)
            .filter(|c| c.kind != ResourceKind::KubernetesTokenSecret)
            .count();
        let managed = self.summary.managed;
        (managed > 0 && deletes * 100 > percent as usize * managed).then_some((deletes, managed))
    }

    pub fn privilege_gain(&self) -> bool {
        self.permission_delta.iter().any(|d| !d.gains.is_empty())
    }
}

/// What the plan needs besides the two states.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    pub today: Date,
    /// Access keys older, or unused for longer, than this are called stale.
    pub max_key_age_days: Option<i64>,
}

/// Attributes that hold policy documents, compared in canonical form.
const DOCUMENT_ATTRIBUTES: &[&str] = &["assume_role_policy", "policy"];

/// A resource with its policy documents in canonical form.
pub fn normalised(resource: &Resource) -> Resource {
    let mut resource = resource.clone();
    for name in DOCUMENT_ATTRIBUTES {
        if let Some(document) = resource.attributes.get_mut(*name) {
            *document = policy::canonical(document);
        }
    }
    resource
}

enum Ownership {
    Ours,
    /// Another writ project's: not ours to list or change.
    OtherProject,
    Unmanaged,
}

fn ownership(resource: &Resource, project: &str, our_roles: &HashSet<(&str, &str)>) -> Ownership {
    match resource.kind {
        ResourceKind::AwsRole | ResourceKind::AwsManagedPolicy => {
            // Ours: tagged as this project's and under writ's path (a role an
            // earlier layout left at another `/writ/…` path is still ours,
            // and is replaced into the right one).
            let path = resource.string("path").unwrap_or("/");
            let tagged = resource.tag("writ:project") == Some(project);
            if tagged && path.starts_with("/writ/") {
                Ownership::Ours
            } else if path.starts_with("/writ/") && path != lower::aws_path(project) {
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
        // Kubernetes objects carry their ownership in labels.
        _ => {
            let label = |name: &str| {
                resource
                    .attributes
                    .get("labels")
                    .and_then(|labels| labels.get(name))
                    .and_then(Value::as_str)
            };
            let ours = label(lower::kubernetes::MANAGED_BY) == Some("writ")
                && label(lower::kubernetes::PROJECT_LABEL) == Some(project);
            if ours {
                Ownership::Ours
            } else if label(lower::kubernetes::MANAGED_BY) == Some("writ") {
                Ownership::OtherProject
            } else {
                Ownership::Unmanaged
            }
        }
    }
}

/// The agent an owned object belongs to.
pub(crate) fn agent_of(resource: &Resource) -> Option<String> {
    let label = resource
        .attributes
        .get("labels")
        .and_then(|labels| labels.get(lower::kubernetes::AGENT_LABEL))
        .and_then(Value::as_str);
    resource
        .tag("writ:agent")
        .or(label)
        .map(str::to_string)
        .or_else(|| resource.agent.clone())
        .or_else(|| resource.string("role").map(str::to_string))
}

pub fn plan(desired: &Desired, observed: &[Resource], options: &PlanOptions) -> Plan {
    let revocations = kubernetes::revocations(desired, observed);
    if revocations.is_empty() {
        return plan_desired(desired, observed, options);
    }
    // Agents revoked in a cluster keep their service accounts (marked) but
    // get no bindings until the mark is lifted.
    let kept = kubernetes::keep_revoked(desired, &revocations);
    let mut plan = plan_desired(&kept, observed, options);
    plan.revoked
        .extend(revocations.into_iter().map(|r| r.entry));
    plan.revoked.sort_by(|a, b| a.address.cmp(&b.address));
    plan
}

fn plan_desired(desired: &Desired, observed: &[Resource], options: &PlanOptions) -> Plan {
    let project = desired.project.as_str();
    // One comparison per observed object with what the source wants. Those
    // identical to it (in a large estate, nearly all) are canonical already,
    // since lowering writes canonical documents; every later step reads
    // this set instead of comparing again. The rest are normalised.
    // A hash map for the lookup per observed object; an ordered one, built
    // once, for the steps that look up ranges (a role's inline policies).
    let wanted: HashMap<&str, &Resource> = desired
        .resources
        .iter()
        .map(|r| (r.address.as_str(), r))
        .collect();
    // From the desired list, not the hash map: lowering writes it nearly
    // sorted, so the ordered map is built without a full sort.
    let desired_by_address: BTreeMap<&str, &Resource> = desired
        .resources
        .iter()
        .map(|r| (r.address.as_str(), r))
        .collect();
    let mut identical: HashSet<&str> = HashSet::new();
    let observed: Vec<Cow<Resource>> = observed
        .iter()
        .map(|resource| {
            let same = wanted
                .get(resource.address.as_str())
                .is_some_and(|want| want.same_as(resource));
            if same {
                identical.insert(resource.address.as_str());
                Cow::Borrowed(resource)
            } else {
                Cow::Owned(normalised(resource))
            }
        })
        .collect();
    let no_roles = HashSet::new();
    let our_roles: HashSet<(&str, &str)> = observed
        .iter()
        .map(|r| r.as_ref())
        .filter(|r| r.kind == ResourceKind::AwsRole)
        .filter(|r| matches!(ownership(r, project, &no_roles), Ownership::Ours))
        .filter_map(|r| Some((r.provider.as_str(), r.string("name")?)))
        .collect();
    // Gathered first, then built in one go: observed objects come nearly in
    // address order, which makes the build linear instead of a search per
    // insert.
    let mut owned: Vec<(&str, &Resource)> = Vec::new();
    let mut others: Vec<(&str, &Resource)> = Vec::new();
    let mut unmanaged = Vec::new();
    let mut revoked = Vec::new();
    for resource in observed.iter().map(|r| r.as_ref()) {
        match ownership(resource, project, &our_roles) {
            // A revocation stays until it is lifted, or until the source
            // freezes the agent (whose deny-all makes it unneeded).
            Ownership::Ours
                if resource.kind == ResourceKind::AwsRolePolicy
                    && resource.string("name") == Some(lower::REVOKE_POLICY)
                    && !agent_of(resource).is_some_and(|a| desired.frozen.contains(&a)) =>
            {
                revoked.push(Revoked {
                    agent: agent_of(resource).unwrap_or_default(),
                    address: resource.address.clone(),
                    detail: "revoked with `writ revoke`: sessions issued before then are denied; kept until `writ revoke --lift` or `frozen = true`".to_string(),
                });
            }
            Ownership::Ours => {
                owned.push((&resource.address, resource));
            }
            Ownership::OtherProject => {
                others.push((&resource.address, resource));
            }
            Ownership::Unmanaged => {
                others.push((&resource.address, resource));
                if let Some(entry) = inventory(resource, project, options) {
                    unmanaged.push(entry);
                }
            }
        }
    }

    let owned: BTreeMap<&str, &Resource> = owned.into_iter().collect();
    let others: BTreeMap<&str, &Resource> = others.into_iter().collect();

    let cluster_objects: Vec<&Resource> = observed
        .iter()
        .map(|r| r.as_ref())
        .filter(|r| r.kind.is_kubernetes())
        .collect();
    let (token_deletes, cluster_inventory) =
        kubernetes::inventory(&cluster_objects, &owned, desired);
    unmanaged.extend(cluster_inventory);
    let drift = find_drift(&desired_by_address, &owned, &identical);
    let drifted: BTreeSet<&str> = drift.iter().map(|d| d.address.as_str()).collect();

    // A desired role whose name is taken by an object writ does not own
    // cannot be created; nor can anything that belongs to it.
    let conflicted: BTreeSet<&str> = desired
        .resources
        .iter()
        .filter(|r| !others.is_empty() && others.contains_key(r.address.as_str()))
        .filter(|r| !owned.contains_key(r.address.as_str()))
        .map(|r| r.address.as_str())
        .collect();
    let held_back = |address: &str| {
        !conflicted.is_empty()
            && conflicted.contains(role_of(address))
            && !conflicted.contains(address)
    };
    // Agents that already have a role (for "agent … is new" reasons).
    let agents_with_objects: HashSet<&str> = owned
        .values()
        .filter(|r| r.kind == ResourceKind::AwsRole)
        .filter_map(|r| r.tag("writ:agent"))
        .collect();
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    let mut summary = Summary {
        managed: owned.len(),
        ..Summary::default()
    };
    for resource in &desired.resources {
        if held_back(&resource.address) {
            continue;
        }
        match owned.get(resource.address.as_str()) {
            Some(_) if identical.contains(resource.address.as_str()) => {
                summary.unchanged += 1;
            }
            Some(current) => {
                let paths = changed_paths(&current.attributes, &resource.attributes);
                if paths.is_empty() {
                    summary.unchanged += 1;
                    continue;
                }
                let replace_because = paths
                    .iter()
                    .find(|p| resource.kind.forces_replacement(p))
                    .cloned();
                let restoring = drifted.contains(role_of(&resource.address));
                let reason = match &replace_because {
                    Some(attribute) => format!(
                        "the live `{attribute}` differs from the source and cannot change in place"
                    ),
                    None => update_reason(&paths, restoring),
                };
                changes.push(Change {
                    address: resource.address.clone(),
                    provider: resource.provider.clone(),
                    kind: resource.kind,
                    agent: resource.agent.clone(),
                    actions: if replace_because.is_some() {
                        vec![Action::Delete, Action::Create]
                    } else {
                        vec![Action::Update]
                    },
                    before: Some(current.attributes.clone()),
                    after: Some(resource.attributes.clone()),
                    changed_paths: paths,
                    replace_because,
                    reason,
                });
            }
            None => {
                if let Some(taken) = others.get(resource.address.as_str()) {
                    conflicts.push(Conflict {
                        address: resource.address.clone(),
                        kind: resource.kind,
                        detail: if resource.kind.is_kubernetes() {
                            let managed_by = taken
                                .attribute("labels")
                                .and_then(|l| l.get(lower::kubernetes::MANAGED_BY))
                                .and_then(Value::as_str);
                            format!(
                                "a {} of that name exists ({}) but is not managed by writ project `{project}`; writ will not take it over",
                                resource.kind.noun(),
                                match managed_by {
                                    Some(manager) => format!("`{}: {manager}`", lower::kubernetes::MANAGED_BY),
                                    None => "without writ's labels".to_string(),
                                }
                            )
                        } else {
                            format!(
                                "an {} of that name exists (path `{}`) but is not managed by writ project `{project}`; writ will not take it over",
                                resource.kind.noun(),
                                taken.string("path").unwrap_or("?")
                            )
                        },
                    });
                    continue;
                }
                let agent = resource.agent.clone().unwrap_or_default();
                let reason = match resource.kind {
                    ResourceKind::AwsRole if !agents_with_objects.contains(agent.as_str()) => {
                        format!("agent `{agent}` is new in `{}`", resource.provider)
                    }
                    ResourceKind::AwsRole => format!("role for `{agent}`"),
                    ResourceKind::AwsRolePolicy => format!("the grants of `{agent}`"),
                    ResourceKind::AwsManagedPolicy => {
                        format!("the delegation ceiling of `{agent}`")
                    }
                    ResourceKind::KubernetesServiceAccount => {
                        format!("`{agent}` runs as this service account")
                    }
                    ResourceKind::KubernetesRole | ResourceKind::KubernetesClusterRole => {
                        format!("the grants of `{agent}`")
                    }
                    ResourceKind::KubernetesRoleBinding
                    | ResourceKind::KubernetesClusterRoleBinding => {
                        format!("gives `{agent}` its grants")
                    }
                    _ => "declared in the source".to_string(),
                };
                changes.push(Change {
                    address: resource.address.clone(),
                    provider: resource.provider.clone(),
                    kind: resource.kind,
                    agent: resource.agent.clone(),
                    actions: vec![Action::Create],
                    before: None,
                    after: Some(resource.attributes.clone()),
                    changed_paths: Vec::new(),
                    replace_because: None,
                    reason,
                });
            }
        }
    }
    for (address, current) in &owned {
        if wanted.contains_key(address) {
            continue;
        }
        let agent = agent_of(current);
        let name = agent.clone().unwrap_or_default();
        let reason = if let Some(date) = desired.retired.get(&name) {
            format!("`{name}` expired on {date}")
        } else if current.kind == ResourceKind::AwsRolePolicy
            && current.string("name") == Some(lower::REVOKE_POLICY)
        {
            format!("the source freezes `{name}`: its revocation is no longer needed")
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
        changes.push(Change {
            address: address.to_string(),
            provider: current.provider.clone(),
            kind: current.kind,
            agent,
            actions: vec![Action::Delete],
            before: Some(current.attributes.clone()),
            after: None,
            changed_paths: Vec::new(),
            replace_because: None,
            reason,
        });
    }
    changes.extend(token_deletes);
    recreate_with_replaced_roles(&mut changes, desired, &owned, &mut summary);
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    for change in &changes {
        match change.kind_of_change() {
            ChangeKind::Create => summary.create += 1,
            ChangeKind::Update => summary.update += 1,
            ChangeKind::Replace => summary.replace += 1,
            ChangeKind::Delete => summary.delete += 1,
        }
    }
    let permission_delta = permission_delta(desired, &owned, &conflicted, &identical);
    unmanaged.sort_by(|a: &Unmanaged, b| a.address.cmp(&b.address));
    conflicts.sort_by(|a, b| a.address.cmp(&b.address));
    summary.drift = drift.len();
    summary.unmanaged = unmanaged.len();
    summary.conflicts = conflicts.len();
    summary.agents_gaining = permission_delta
        .iter()
        .filter(|d| !d.gains.is_empty())
        .count();
    summary.agents_losing = permission_delta
        .iter()
        .filter(|d| !d.losses.is_empty())
        .count();
    Plan {
        format_version: FORMAT_VERSION,
        project: project.to_string(),
        summary,
        changes,
        drift,
        unmanaged,
        conflicts,
        permission_delta,
        revoked,
    }
}

/// Deleting a role deletes its inline policies: when a role is replaced,
/// its policies are recreated with it, even those that did not change.
fn recreate_with_replaced_roles(
    changes: &mut Vec<Change>,
    desired: &Desired,
    owned: &BTreeMap<&str, &Resource>,
    summary: &mut Summary,
) {
    let replaced: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.kind == ResourceKind::AwsRole && c.kind_of_change() == ChangeKind::Replace)
        .map(|c| c.address.clone())
        .collect();
    for role in &replaced {
        for resource in desired.resources.iter().filter(|r| {
            r.kind == ResourceKind::AwsRolePolicy && role_of(&r.address) == role.as_str()
        }) {
            let reason = format!("recreated with its role `{}`", role);
            match changes.iter_mut().find(|c| c.address == resource.address) {
                Some(change) => {
                    change.actions = vec![Action::Delete, Action::Create];
                    change.reason = format!("{}; {reason}", change.reason);
                }
                None => {
                    let Some(current) = owned.get(resource.address.as_str()) else {
                        continue;
                    };
                    summary.unchanged = summary.unchanged.saturating_sub(1);
                    changes.push(Change {
                        address: resource.address.clone(),
                        provider: resource.provider.clone(),
                        kind: resource.kind,
                        agent: resource.agent.clone(),
                        actions: vec![Action::Delete, Action::Create],
                        before: Some(current.attributes.clone()),
                        after: Some(resource.attributes.clone()),
                        changed_paths: Vec::new(),
                        replace_because: Some("role".to_string()),
                        reason,
                    });
                }
            }
        }
    }
}

/// The role address an address belongs to (itself for a role).
fn role_of(address: &str) -> &str {
    match address.find("/policy/") {
        Some(index) if address[..index].contains("/role/") => &address[..index],
        _ => address,
    }
}

/// Attributes that are maps compared entry by entry (`tags.writ:owner`).
pub const KEYED_ATTRIBUTES: &[&str] = &["tags", "labels", "annotations"];

/// Top-level attributes that differ, with tags compared one by one. The
/// digest tag is left out unless it is the only difference.
pub fn changed_paths(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
) -> Vec<String> {
    let mut paths = Vec::new();
    let keys: BTreeSet<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|key| !crate::resource::is_observed_only(key))
        .collect();
    for key in keys {
        let (old, new) = (before.get(key), after.get(key));
        if KEYED_ATTRIBUTES.contains(&key.as_str()) {
            let entries =
                |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
            let (old, new) = (entries(old), entries(new));
            let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for name in names {
                if old.get(name) != new.get(name) {
                    paths.push(format!("{key}.{name}"));
                }
            }
        } else if old.unwrap_or(&Value::Null) != new.unwrap_or(&Value::Null) {
            paths.push(key.clone());
        }
    }
    let digests = [
        format!("tags.{DIGEST_TAG}"),
        format!("annotations.{}", lower::DIGEST_ANNOTATION),
    ];
    if paths.len() > 1 {
        paths.retain(|p| !digests.contains(p));
    }
    paths
}

fn describe_path(path: &str) -> &str {
    match path {
        "assume_role_policy" => "trust policy",
        "policy" => "policy document",
        "max_session_duration" => "session length",
        "permissions_boundary" => "permissions boundary",
        "description" => "description",
        "path" => "path",
        "name" => "name",
        "role_ref" => "role reference",
        _ if path.starts_with("tags.") => "tags",
        _ if path.starts_with("labels.") => "labels",
        _ if path.starts_with("annotations.") => "annotations",
        other => other,
    }
}

fn update_reason(paths: &[String], restoring: bool) -> String {
    if paths == [format!("tags.{DIGEST_TAG}")] {
        return "records the digest of the role's new policies".to_string();
    }
    if paths == [format!("annotations.{}", lower::DIGEST_ANNOTATION)] {
        return "records the digest of its new content".to_string();
    }
    let mut described: Vec<&str> = paths.iter().map(|p| describe_path(p)).collect();
    described.dedup();
    let list = described.join(", ");
    if restoring {
        format!("restores the {list} changed outside writ")
    } else {
        format!("{list} changed in the source")
    }
}

fn find_drift(
    desired_by_address: &BTreeMap<&str, &Resource>,
    owned: &BTreeMap<&str, &Resource>,
    identical: &HashSet<&str>,
) -> Vec<Drift> {
    // Inline policies by the role they belong to, found once.
    let mut inline_by_role: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for resource in owned
        .values()
        .filter(|r| r.kind == ResourceKind::AwsRolePolicy)
    {
        inline_by_role
            .entry(role_of(&resource.address))
            .or_default()
            .push(resource);
    }
    let mut drift = Vec::new();
    for (address, resource) in owned {
        let inline: &[&Resource] = match resource.kind {
            ResourceKind::AwsRole => inline_by_role.get(address).map_or(&[], Vec::as_slice),
            ResourceKind::AwsManagedPolicy => &[],
            ResourceKind::KubernetesTokenSecret => continue,
            kind if kind.is_kubernetes() => &[],
            _ => continue,
        };
        // Exactly what the source wants, digest tag included: the content
        // hashes to the digest that lowering computed, so there is no drift
        // to find (this skips the hashing for nearly every object).
        let as_desired = |r: &Resource| identical.contains(r.address.as_str());
        let wanted_inline = desired_by_address
            .range::<str, _>((
                std::ops::Bound::Excluded(*address),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(a, _)| a.starts_with(address))
            .filter(|(a, r)| r.kind == ResourceKind::AwsRolePolicy && role_of(a) == *address)
            .count();
        if as_desired(resource)
            && inline.len() == wanted_inline
            && inline.iter().all(|r| as_desired(r))
        {
            continue;
        }
        let recorded = resource
            .tag(DIGEST_TAG)
            .or_else(|| {
                resource
                    .attributes
                    .get("annotations")
                    .and_then(|a| a.get(lower::DIGEST_ANNOTATION))
                    .and_then(Value::as_str)
            })
            .map(str::to_string);
        let actual = content_digest(resource, inline.iter().copied());
        if recorded.as_deref() == Some(actual.as_str()) {
            continue;
        }
        // Which attributes (and inline policies) differ from the source.
        let mut changed = Vec::new();
        if let Some(want) = desired_by_address.get(address) {
            changed.extend(
                changed_paths(&resource.attributes, &want.attributes)
                    .into_iter()
                    .filter(|p| p != &format!("tags.{DIGEST_TAG}")),
            );
        }
        for policy in inline {
            if desired_by_address
                .get(policy.address.as_str())
                .is_none_or(|want| !want.same_as(policy))
            {
                changed.push(format!(
                    "inline policy `{}`",
                    policy.string("name").unwrap_or("?")
                ));
            }
        }
        let detail = match recorded {
            None => "has no digest tag: it was created or edited outside writ".to_string(),
            Some(_) => "changed outside writ since writ last applied it".to_string(),
        };
        drift.push(Drift {
            address: address.to_string(),
            kind: resource.kind,
            agent: agent_of(resource),
            changed_paths: changed,
            detail,
        });
    }
    drift
}

fn inventory(resource: &Resource, project: &str, options: &PlanOptions) -> Option<Unmanaged> {
    let name = resource.string("name").unwrap_or_default().to_string();
    let date = |key: &str| {
        resource
            .string(key)
            .and_then(|d| Date::parse(d.get(..10)?).ok())
    };
    let days_since = |d: Date| options.today.days_since_epoch() - d.days_since_epoch();
    match resource.kind {
        ResourceKind::AwsRole => {
            let path = resource.string("path").unwrap_or("/");
            // Roles AWS itself keeps are not identities anyone declared.
            if path.starts_with("/aws-service-role/") || path.starts_with("/aws-reserved/") {
                return None;
            }
            let detail = if path == lower::aws_path(project) {
                format!("in writ's path `{path}` but not tagged `writ:project = {project}`: not managed")
            } else {
                format!("path `{path}`, not managed by writ")
            };
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name,
                detail,
                age_days: date("created").map(days_since),
                stale: false,
                flags: Vec::new(),
            })
        }
        ResourceKind::AwsUser => Some(Unmanaged {
            address: resource.address.clone(),
            kind: resource.kind,
            name,
            detail: "IAM user: listed, never changed by writ".to_string(),
            age_days: date("created").map(days_since),
            stale: false,
            flags: Vec::new(),
        }),
        ResourceKind::AwsAccessKey => {
            let age = date("created").map(days_since);
            let last_used = date("last_used");
            let idle = last_used.map(days_since).or(age);
            let status = resource.string("status").unwrap_or("Active");
            let user = resource.string("user").unwrap_or("?");
            let mut detail = format!("{status} key of user `{user}`");
            if let Some(age) = age {
                detail.push_str(&format!(", {age} days old"));
            }
            match last_used {
                Some(date) => detail.push_str(&format!(", last used {date}")),
                None => detail.push_str(", never used"),
            }
            let stale = status == "Active"
                && options.max_key_age_days.is_some_and(|max| {
                    age.is_some_and(|a| a > max) || idle.is_some_and(|i| i > max)
                });
            if stale {
                detail.push_str(&format!(
                    "; older or idle longer than the maximum key age ({} days)",
                    options.max_key_age_days.unwrap_or_default()
                ));
            }
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name: resource.string("id").unwrap_or(&name).to_string(),
                detail,
                age_days: age,
                stale,
                flags: Vec::new(),
            })
        }
        _ => None,
    }
}

/// What each agent's inline access policies allow, as (provider, action,
/// resource, condition) sets; gains and losses are their differences.
fn permission_delta(
    desired: &Desired,
    owned: &BTreeMap<&str, &Resource>,
    conflicted: &BTreeSet<&str>,
    identical: &HashSet<&str>,
) -> Vec<AgentDelta> {
    // What grants access: AWS inline policies, Kubernetes Roles.
    let grants_access = |r: &Resource| {
        matches!(
            r.kind,
            ResourceKind::AwsRolePolicy
                | ResourceKind::KubernetesRole
                | ResourceKind::KubernetesClusterRole
        )
    };
    let observed: Vec<&Resource> = owned
        .values()
        .copied()
        .filter(|r| grants_access(r))
        .collect();
    let wanted: Vec<&Resource> = desired
        .resources
        .iter()
        .filter(|r| grants_access(r) && !conflicted.contains(role_of(&r.address)))
        .collect();
    // Only agents with a policy that is new, gone or different can gain or
    // lose access; the rest (nearly all, in a large estate) are skipped.
    let mut touched: BTreeSet<String> = BTreeSet::new();
    for resource in &observed {
        if !identical.contains(resource.address.as_str()) {
            touched.extend(agent_of(resource));
        }
    }
    for resource in &wanted {
        if !owned.contains_key(resource.address.as_str()) {
            touched.extend(resource.agent.clone());
        }
    }
    let mut before: BTreeMap<String, BTreeSet<Access>> = BTreeMap::new();
    let mut after: BTreeMap<String, BTreeSet<Access>> = BTreeMap::new();
    for resource in observed {
        if let Some(agent) = agent_of(resource).filter(|a| touched.contains(a)) {
            before.entry(agent).or_default().extend(allows(resource));
        }
    }
    for resource in wanted {
        if let Some(agent) = resource.agent.clone().filter(|a| touched.contains(a)) {
            after.entry(agent).or_default().extend(allows(resource));
        }
    }
    let agents: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let empty = BTreeSet::new();
    agents
        .into_iter()
        .filter_map(|agent| {
            let old = before.get(agent).unwrap_or(&empty);
            let new = after.get(agent).unwrap_or(&empty);
            let gains: Vec<Access> = new.difference(old).cloned().collect();
            let losses: Vec<Access> = old.difference(new).cloned().collect();
            (!gains.is_empty() || !losses.is_empty()).then(|| AgentDelta {
                agent: agent.clone(),
                gains,
                losses,
            })
        })
        .collect()
}

fn allows(resource: &Resource) -> Vec<Access> {
    if let Some(rules) = resource.attribute("rules").and_then(Value::as_array) {
        return rbac_allows(resource, rules);
    }
    let Some(document) = resource.attribute("policy") else {
        return Vec::new();
    };
    let statements = document["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let strings = |value: &Value| -> Vec<String> {
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out = Vec::new();
    for statement in statements {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let condition = statement.get("Condition").and_then(describe_condition);
        for action in strings(&statement["Action"]) {
            for target in strings(&statement["Resource"]) {
                out.push(Access {
                    provider: resource.provider.clone(),
                    action: action.clone(),
                    resource: target,
                    condition: condition.clone(),
                });
            }
        }
    }
    out
}

/// What the rules of a Role or ClusterRole allow: (verb, resource[.group])
/// in its namespace or the whole cluster, with the names it is limited to.
fn rbac_allows(resource: &Resource, rules: &[Value]) -> Vec<Access> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let place = match resource.string("namespace") {
        Some(namespace) => format!("in namespace `{namespace}`"),
        None => "in the whole cluster".to_string(),
    };
    let mut out = Vec::new();
    for rule in rules {
        let names = strings(&rule["resource_names"]);
        let condition = if names.is_empty() {
            place.clone()
        } else {
            format!("{place}, named {}", names.join(", "))
        };
        for group in strings(&rule["api_groups"]) {
            for target in strings(&rule["resources"]) {
                let (main, sub) = match target.split_once('/') {
                    Some((main, sub)) => (main.to_string(), format!("/{sub}")),
                    None => (target.clone(), String::new()),
                };
                let shown = if group.is_empty() {
                    target.clone()
                } else {
                    format!("{main}.{group}{sub}")
                };
                for verb in strings(&rule["verbs"]) {
                    out.push(Access {
                        provider: resource.provider.clone(),
                        action: verb,
                        resource: shown.clone(),
                        condition: Some(condition.clone()),
                    });
                }
            }
        }
    }
    out
}

/// `aws:RequestedRegion == "us-east-1"` from an IAM condition block.
fn describe_condition(block: &Value) -> Option<String> {
    let operators = block.as_object()?;
    let mut terms = Vec::new();
    for (operator, keys) in operators {
        let symbol = match operator.as_str() {
            "StringEquals" => "==",
            "StringNotEquals" => "!=",
            "StringLike" => "like",
            other => other,
        };
        for (key, values) in keys.as_object()? {
            let values: Vec<String> = match values {
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or(v.to_string(), |s| format!("\"{s}\"")))
                    .collect(),
                other => vec![other.to_string()],
            };
            let value = if values.len() == 1 {
                values[0].clone()
            } else {
                format!("[{}]", values.join(", "))
            };
            let symbol = if values.len() > 1 && symbol == "==" {
                "in"
            } else {
                symbol
            };
            terms.push(format!("{key} {symbol} {value}"));
        }
    }
    (!terms.is_empty()).then(|| terms.join(" and "))
}

/// The order in which a plan's changes are carried out, so that nothing is
/// referred to before it exists or deleted while still referred to:
/// managed policies (boundaries) first; then roles, a parent before the
/// delegates whose trust names it; then inline policies; then role updates,
/// so that the digest tag is written after the content it covers; then
/// deletions: inline policies, roles, and managed policies last. In a
/// cluster: service accounts, roles, then bindings; deleted in reverse.
pub fn apply_order(plan: &Plan) -> Vec<&Change> {
    let phase = |change: &Change| -> u8 {
        match (change.kind, change.kind_of_change()) {
            (ResourceKind::AwsManagedPolicy, ChangeKind::Delete) => 7,
            (ResourceKind::AwsManagedPolicy, _) => 0,
            (ResourceKind::AwsRole, ChangeKind::Create | ChangeKind::Replace) => 1,
            (ResourceKind::AwsRolePolicy, ChangeKind::Delete) => 5,
            (ResourceKind::AwsRolePolicy, _) => 2,
            (ResourceKind::AwsRole, ChangeKind::Update) => 3,
            (ResourceKind::AwsRole, ChangeKind::Delete) => 6,
            // Kubernetes: what a binding names exists before it, and is
            // deleted after it (bindings, then roles, then service accounts).
            (ResourceKind::KubernetesServiceAccount, ChangeKind::Delete) => 7,
            (ResourceKind::KubernetesServiceAccount, _) => 0,
            (
                ResourceKind::KubernetesRole | ResourceKind::KubernetesClusterRole,
                ChangeKind::Delete,
            ) => 6,
            (ResourceKind::KubernetesRole | ResourceKind::KubernetesClusterRole, _) => 2,
            (
                ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding,
                ChangeKind::Delete,
            ) => 5,
            (
                ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding,
                _,
            ) => 3,
            _ => 4,
        }
    };
    let mut ordered: Vec<&Change> = plan.changes.iter().collect();
    ordered.sort_by_key(|c| (phase(c), c.address.clone()));
    // Among new roles, those whose trust names another new role go after it.
    let new_roles: Vec<&Change> = ordered.iter().copied().filter(|c| phase(c) == 1).collect();
    // A role's ARN ends in `:role<path><name>`; a trust document that
    // contains that, closed by a quote, names the role.
    let arn_suffix = |change: &Change| -> Option<String> {
        let after = change.after.as_ref()?;
        let path = after.get("path")?.as_str()?;
        let name = after.get("name")?.as_str()?;
        Some(format!(":role{path}{name}\""))
    };
    let trusted_roles = |change: &Change| -> Vec<String> {
        let Some(document) = change
            .after
            .as_ref()
            .and_then(|a| a.get("assume_role_policy"))
        else {
            return Vec::new();
        };
        let text = document.to_string();
        new_roles
            .iter()
            .filter(|other| other.address != change.address)
            .filter(|other| arn_suffix(other).is_some_and(|suffix| text.contains(&suffix)))
            .map(|other| other.address.clone())
            .collect()
    };
    let mut placed: Vec<&Change> = Vec::new();
    let mut waiting: Vec<&Change> = new_roles.clone();
    while !waiting.is_empty() {
        let before = waiting.len();
        let mut next = Vec::new();
        for change in waiting {
            let ready = trusted_roles(change)
                .iter()
                .all(|needed| placed.iter().any(|p| &p.address == needed));
            if ready {
                placed.push(change);
            } else {
                next.push(change);
            }
        }
        if next.len() == before {
            // A cycle cannot come out of lowering; keep the rest in order.
            placed.extend(next);
            break;
        }
        waiting = next;
    }
    let mut result: Vec<&Change> = ordered.iter().copied().filter(|c| phase(c) == 0).collect();
    result.extend(placed);
    result.extend(ordered.iter().copied().filter(|c| phase(c) > 1));
    result
}

/// A plan of these changes alone, for tests of what reads a plan.
#[cfg(test)]
pub(crate) fn plan_of_changes(changes: Vec<Change>) -> Plan {
    Plan {
        format_version: FORMAT_VERSION,
        project: "p".into(),
        summary: Summary::default(),
        changes,
        drift: Vec::new(),
        unmanaged: Vec::new(),
        conflicts: Vec::new(),
        permission_delta: Vec::new(),
        revoked: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(
        address: &str,
        kind: ResourceKind,
        actions: Vec<Action>,
        after: Option<Value>,
    ) -> Change {
        Change {
            address: address.to_string(),
            provider: "aws.prod".to_string(),
            kind,
            agent: None,
            actions,
            before: None,
            after: after.map(|a| serde_json::from_value(a).unwrap()),
            changed_paths: Vec::new(),
            replace_because: None,
            reason: String::new(),
        }
    }

    #[test]
    fn boundaries_and_parents_come_first_and_deletions_last() {
        let role = |name: &str, trusts: Option<&str>| {
            let trust = trusts.map_or(json!({}), |parent| {
                json!({"Statement": [{"Principal": {"AWS": [format!("arn:aws:iam::1:role/writ/p/{parent}")]}}]})
            });
            change(
                &format!("aws.prod/role/{name}"),
                ResourceKind::AwsRole,
                vec![Action::Create],
                Some(json!({"name": name, "path": "/writ/p/", "assume_role_policy": trust})),
            )
        };
        let plan = plan_of_changes(vec![
            role("a_child", Some("z_parent")),
            role("z_parent", None),
            change(
                "aws.prod/role/z_parent/policy/writ-access",
                ResourceKind::AwsRolePolicy,
                vec![Action::Create],
                Some(json!({})),
            ),
            change(
                "aws.prod/policy/z_parent-delegates",
                ResourceKind::AwsManagedPolicy,
                vec![Action::Create],
                Some(json!({})),
            ),
            change(
                "aws.prod/policy/old-delegates",
                ResourceKind::AwsManagedPolicy,
                vec![Action::Delete],
                None,
            ),
            change(
                "aws.prod/role/old",
                ResourceKind::AwsRole,
                vec![Action::Delete],
                None,
            ),
            change(
                "aws.prod/role/old/policy/writ-access",
                ResourceKind::AwsRolePolicy,
                vec![Action::Delete],
                None,
            ),
            change(
                "aws.prod/role/kept",
                ResourceKind::AwsRole,
                vec![Action::Update],
                Some(json!({})),
            ),
        ]);
        let order: Vec<&str> = apply_order(&plan)
            .iter()
            .map(|c| c.address.as_str())
            .collect();
        assert_eq!(
            order,
            vec![
                "aws.prod/policy/z_parent-delegates",
                "aws.prod/role/z_parent",
                "aws.prod/role/a_child",
                "aws.prod/role/z_parent/policy/writ-access",
                "aws.prod/role/kept",
                "aws.prod/role/old/policy/writ-access",
                "aws.prod/role/old",
                "aws.prod/policy/old-delegates",
            ]
        );
    }
}

#[cfg(test)]
mod kubernetes_order_tests {
    use super::*;

    #[test]
    fn bindings_come_after_what_they_name_and_go_before_it() {
        let change = |address: &str, kind: ResourceKind, action: Action| Change {
            address: address.to_string(),
            provider: "kubernetes.prod".to_string(),
            kind,
            agent: None,
            actions: vec![action],
            before: None,
            after: None,
            changed_paths: Vec::new(),
            replace_because: None,
            reason: String::new(),
        };
        let plan = plan_of_changes(vec![
            change(
                "k/a-binding",
                ResourceKind::KubernetesRoleBinding,
                Action::Create,
            ),
            change("k/b-role", ResourceKind::KubernetesRole, Action::Create),
            change(
                "k/c-account",
                ResourceKind::KubernetesServiceAccount,
                Action::Create,
            ),
            change(
                "k/d-account",
                ResourceKind::KubernetesServiceAccount,
                Action::Delete,
            ),
            change(
                "k/e-role",
                ResourceKind::KubernetesClusterRole,
                Action::Delete,
            ),
            change(
                "k/f-binding",
                ResourceKind::KubernetesClusterRoleBinding,
                Action::Delete,
            ),
        ]);
        let order: Vec<&str> = apply_order(&plan)
            .iter()
            .map(|c| c.address.as_str())
            .collect();
        assert_eq!(
            order,
            vec![
                "k/c-account",
                "k/b-role",
                "k/a-binding",
                "k/f-binding",
                "k/e-role",
                "k/d-account"
            ]
        );
    }
}
