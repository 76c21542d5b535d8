//! The cluster side of a plan's inventory: which service accounts others
//! have bound to roles (and what those roles allow), and which long-lived
//! token Secrets exist. A token Secret of a service account writ manages is
//! deleted: the agent's ttl cannot hold while it exists.

use super::join::{find, Row};
use super::{Access, Action, Change, Drift, Revoked, Unmanaged};
use crate::address::kubernetes_service_account as service_account_address;
use crate::lower::Desired;
use crate::ownership::{
    self,
    kubernetes::{
        inventory_name, rules_without_minting, Inventory, AGENT_LABEL, DIGEST_ANNOTATION,
        REVOKED_ANNOTATION,
    },
};
use crate::resource::{Resource, ResourceKind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// What a role allows that deserves a flag.
fn flags(role_name: &str, rules: &[Value]) -> Vec<String> {
    let mut flags = Vec::new();
    if role_name == "cluster-admin" {
        flags.push("cluster-admin".to_string());
    }
    for rule in rules {
        let verbs = strings(&rule["verbs"]);
        let resources = strings(&rule["resources"]);
        if verbs.contains(&"*") {
            flags.push(format!("every verb on {}", resources.join(", ")));
        }
        if resources.contains(&"*") {
            flags.push("every resource".to_string());
        }
        for verb in ["escalate", "bind", "impersonate"] {
            if verbs.contains(&verb) {
                flags.push(format!("can {verb}"));
            }
        }
    }
    flags.sort();
    flags.dedup();
    flags
}

/// Deletions of token Secrets of writ's service accounts; the inventory of
/// bindings writ does not own and of other long-lived tokens; and, as
/// drift, each binding writ did not make that gives one of writ's service
/// accounts a role (writ never changes it, but the agent holds what it
/// grants).
pub(super) fn inventory(rows: &[Row]) -> (Vec<Change>, Vec<Unmanaged>, Vec<Drift>) {
    let observed: Vec<&Row> = rows
        .iter()
        .filter(|row| row.observed.is_some_and(|r| r.kind.is_kubernetes()))
        .collect();
    let roles: HashMap<(&str, Option<&str>, &str), &Resource> = observed
        .iter()
        .filter_map(|row| row.observed)
        .filter(|r| {
            matches!(
                r.kind,
                ResourceKind::KubernetesRole | ResourceKind::KubernetesClusterRole
            )
        })
        .filter_map(|r| {
            let namespace = (r.kind == ResourceKind::KubernetesRole)
                .then(|| r.string("namespace"))
                .flatten();
            Some(((r.provider.as_str(), namespace, r.string("name")?), r))
        })
        .collect();
    let ours_or_wanted = |address: &str| -> Option<String> {
        let row = find(rows, address)?;
        row.owned()
            .and_then(|r| r.agent.clone().or_else(|| ownership::agent_of(r)))
            .or_else(|| row.desired.and_then(|r| r.agent.clone()))
    };
    let mut changes = Vec::new();
    let mut unmanaged = Vec::new();
    let mut drift = Vec::new();
    for row in observed {
        let Some(resource) = row.observed.filter(|_| row.owned().is_none()) else {
            continue;
        };
        match resource.kind {
            ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding => {
                let Some(role_ref) = resource.attribute("role_ref") else {
                    continue;
                };
                let role_name = text(role_ref, "name").unwrap_or("?");
                let role_kind = text(role_ref, "kind").unwrap_or("ClusterRole");
                let binding_namespace = resource.string("namespace");
                let role = roles.get(&(
                    resource.provider.as_str(),
                    if role_kind == "Role" {
                        binding_namespace
                    } else {
                        None
                    },
                    role_name,
                ));
                let rules: Vec<Value> = role
                    .and_then(|r| r.attribute("rules"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let binding_name = resource.string("name").unwrap_or("?");
                let binding = match binding_namespace {
                    Some(ns) => format!("RoleBinding `{ns}/{binding_name}`"),
                    None => format!("ClusterRoleBinding `{binding_name}`"),
                };
                let subjects = resource
                    .attribute("subjects")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for subject in subjects
                    .iter()
                    .filter(|s| text(s, "kind") == Some("ServiceAccount"))
                {
                    let name = text(subject, "name").unwrap_or("?");
                    let namespace = text(subject, "namespace")
                        .or(binding_namespace)
                        .unwrap_or("default");
                    let address = service_account_address(&resource.provider, namespace, name);
                    let mut detail = format!("bound by {binding} to {role_kind} `{role_name}`");
                    if role.is_none() {
                        detail.push_str(" (the role was not found)");
                    }
                    if let Some(agent) = ours_or_wanted(&address) {
                        detail.push_str(&format!(
                            "; this is `{agent}`'s service account: access writ did not grant"
                        ));
                        let what = flags(role_name, &rules);
                        drift.push(Drift {
                            address: resource.address.clone(),
                            kind: resource.kind,
                            agent: Some(agent.clone()),
                            changed_paths: Vec::new(),
                            detail: format!(
                                "made outside writ: gives `{agent}`'s service account `{namespace}/{name}` the {role_kind} `{role_name}`{}; writ changes only its own bindings: delete it if the agent should not have it",
                                if what.is_empty() { String::new() } else { format!(" ({})", what.join(", ")) }
                            ),
                            cause: super::DriftCause::ForeignGrant,
                        });
                    }
                    unmanaged.push(Unmanaged {
                        address,
                        kind: ResourceKind::KubernetesServiceAccount,
                        name: format!("{namespace}/{name}"),
                        detail,
                        age_days: None,
                        stale: false,
                        flags: flags(role_name, &rules),
                    });
                }
            }
            ResourceKind::KubernetesTokenSecret => {
                let namespace = resource.string("namespace").unwrap_or("default");
                let account = resource.string("service_account").unwrap_or("?");
                let account_address =
                    service_account_address(&resource.provider, namespace, account);
                let secret = format!("{namespace}/{}", resource.string("name").unwrap_or("?"));
                match ours_or_wanted(&account_address) {
                    Some(agent) => changes.push(Change {
                        address: resource.address.clone(),
                        provider: resource.provider.clone(),
                        kind: resource.kind,
                        agent: Some(agent.clone()),
                        actions: vec![Action::Delete],
                        before: Some(resource.attributes.to_map()),
                        after: None,
                        changed_paths: Vec::new(),
                        replace_because: None,
                        reason: format!(
                            "a long-lived token of `{agent}`'s service account: its ttl cannot hold while the token exists"
                        ),
                    }),
                    None => unmanaged.push(Unmanaged {
                        address: resource.address.clone(),
                        kind: resource.kind,
                        name: secret,
                        detail: format!("long-lived token of service account `{namespace}/{account}`"),
                        age_days: None,
                        stale: false,
                        flags: vec!["long-lived token".to_string()],
                    }),
                }
            }
            _ => {}
        }
    }
    (changes, unmanaged, drift)
}

/// For each agent with an expiry date to come and access in a cluster: RBAC
/// has no time condition, so its cluster access ends only when writ applies
/// on or after that date (AWS stops it by itself).
pub(super) fn expiry_notes(desired: &Desired) -> Vec<String> {
    let mut in_clusters: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for resource in desired.resources.iter().filter(|r| {
        matches!(
            r.kind,
            ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding
        )
    }) {
        if let Some(agent) = resource.agent.as_deref() {
            if desired.expiring.contains_key(agent) {
                in_clusters
                    .entry(agent)
                    .or_default()
                    .insert(resource.provider.as_str());
            }
        }
    }
    in_clusters
        .into_iter()
        .map(|(agent, clusters)| {
            let date = desired.expiring[agent];
            let clusters: Vec<String> = clusters.iter().map(|c| format!("`{c}`")).collect();
            format!(
                "`{agent}` expires on {date}: Kubernetes RBAC has no time condition, so its access in {} ends only when `writ apply` runs on or after that date",
                clusters.join(", ")
            )
        })
        .collect()
}

/// The project's inventory records, one per cluster, as (provider, record).
/// A record that does not parse is left out with a note (snapshots and
/// providers refuse one before a plan is made).
pub(super) fn records(
    project: &str,
    observed: &[Resource],
    notes: &mut Vec<String>,
) -> Vec<(String, Inventory)> {
    let name = inventory_name(project);
    observed
        .iter()
        .filter(|r| r.kind == ResourceKind::KubernetesInventory && r.string("name") == Some(&name))
        .filter_map(|r| match Inventory::of_resource(r) {
            Ok(record) => Some((r.provider.clone(), record)),
            Err(error) => {
                notes.push(format!("cannot read the inventory record {error}: revocations and service accounts recorded there are unknown"));
                None
            }
        })
        .collect()
}

/// An agent `writ revoke` cut off in a cluster.
pub(super) struct Revocation {
    pub entry: Revoked,
    pub provider: String,
    /// Set when the revocation is an older version's mark on a service
    /// account (this address), which plans keep too.
    pub marked: Option<(String, String)>,
}

/// The project's revocations in clusters: the inventory record's, kept
/// until `writ revoke --lift` whatever the source says, and the marks an
/// older writ left on service accounts.
pub(super) fn revocations(
    desired: &Desired,
    observed: &[Resource],
    records: &[(String, Inventory)],
) -> Vec<Revocation> {
    let mut out: Vec<Revocation> = Vec::new();
    for (provider, record) in records {
        for (agent, revoked) in &record.revoked {
            let by = revoked
                .by
                .as_deref()
                .map(|by| format!(" by {by}"))
                .unwrap_or_default();
            out.push(Revocation {
                entry: Revoked {
                    agent: agent.clone(),
                    address: provider.clone(),
                    detail: format!(
                        "revoked with `writ revoke` at {}{by}: its service accounts are deleted and kept absent (every token bound to them is void), and it has no bindings in `{provider}` until `writ revoke --lift`",
                        revoked.at
                    ),
                },
                provider: provider.clone(),
                marked: None,
            });
        }
    }
    let listed: BTreeSet<(String, String)> = out
        .iter()
        .map(|r| (r.provider.clone(), r.entry.agent.clone()))
        .collect();
    for r in observed
        .iter()
        .filter(|r| r.kind == ResourceKind::KubernetesServiceAccount)
    {
        let Some(labels) = r.attribute("labels") else {
            continue;
        };
        if !ownership::kubernetes::owns(|name| text(labels, name), &desired.project) {
            continue;
        }
        let (Some(agent), Some(at)) = (
            text(labels, AGENT_LABEL),
            r.attribute("annotations")
                .and_then(|a| text(a, REVOKED_ANNOTATION)),
        ) else {
            continue;
        };
        if listed.contains(&(r.provider.clone(), agent.to_string())) {
            continue;
        }
        out.push(Revocation {
            entry: Revoked {
                agent: agent.to_string(),
                address: r.address.clone(),
                detail: format!("revoked with `writ revoke` at {at}: no bindings in `{}` until `writ revoke --lift`", r.provider),
            },
            provider: r.provider.clone(),
            marked: Some((r.address.clone(), at.to_string())),
        });
    }
    out
}

/// The desired state with revoked agents kept revoked in each cluster: no
/// service accounts (recorded revocations) and no bindings for them, no
/// rule letting a parent mint their tokens, and an older version's mark
/// kept where one is.
pub(super) fn keep_revoked(desired: &mut Desired, revocations: &[Revocation]) {
    let cut: BTreeSet<(&str, &str)> = revocations
        .iter()
        .map(|r| (r.provider.as_str(), r.entry.agent.as_str()))
        .collect();
    let recorded = suspended(revocations);
    let is_cut = |r: &Resource, set: &BTreeSet<(&str, &str)>| {
        r.agent
            .as_deref()
            .is_some_and(|agent| set.contains(&(r.provider.as_str(), agent)))
    };
    // The service accounts whose tokens nobody may mint any more, as
    // (provider, namespace, name).
    let accounts: BTreeSet<(String, String, String)> = desired
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::KubernetesServiceAccount && is_cut(r, &cut))
        .filter_map(|r| {
            Some((
                r.provider.clone(),
                r.string("namespace")?.to_string(),
                r.string("name")?.to_string(),
            ))
        })
        .collect();
    desired.resources.retain(|r| {
        let gone = match r.kind {
            ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding => {
                is_cut(r, &cut)
            }
            ResourceKind::KubernetesServiceAccount => is_cut(r, &recorded),
            _ => false,
        };
        !gone
    });
    let marks: HashMap<&str, &str> = revocations
        .iter()
        .filter_map(|r| r.marked.as_ref())
        .map(|(address, at)| (address.as_str(), at.as_str()))
        .collect();
    for resource in &mut desired.resources {
        if let Some(at) = marks.get(resource.address.as_str()) {
            if let Some(Value::Object(annotations)) = resource.attributes.get_mut("annotations") {
                annotations.insert(REVOKED_ANNOTATION.into(), Value::String(at.to_string()));
            }
            continue;
        }
        if resource.kind != ResourceKind::KubernetesRole {
            continue;
        }
        let mut changed = false;
        for (provider, namespace, name) in &accounts {
            if resource.provider != *provider || resource.string("namespace") != Some(namespace) {
                continue;
            }
            let Some(rules) = resource.attribute("rules") else {
                continue;
            };
            if let Some(rules) = rules_without_minting(rules, name) {
                resource.attributes.insert("rules".into(), rules);
                changed = true;
            }
        }
        if changed {
            let digest = ownership::content_digest(resource, []);
            if let Some(Value::Object(annotations)) = resource.attributes.get_mut("annotations") {
                annotations.insert(DIGEST_ANNOTATION.into(), Value::String(digest));
            }
        }
    }
}

/// The agents whose service accounts a recorded revocation keeps absent,
/// as (provider, agent).
pub(super) fn suspended(revocations: &[Revocation]) -> BTreeSet<(&str, &str)> {
    revocations
        .iter()
        .filter(|r| r.marked.is_none())
        .map(|r| (r.provider.as_str(), r.entry.agent.as_str()))
        .collect()
}

/// Deletions of revoked agents' service accounts say why.
pub(super) fn explain_kept_absent(changes: &mut [Change], revocations: &[Revocation]) {
    let cut = suspended(revocations);
    for change in changes.iter_mut().filter(|c| {
        c.kind == ResourceKind::KubernetesServiceAccount
            && c.actions == [Action::Delete]
            && c.agent
                .as_deref()
                .is_some_and(|agent| cut.contains(&(c.provider.as_str(), agent)))
    }) {
        change.reason = "the agent is revoked: its service account is kept absent (a new one would be a new UID, and every token bound to the old one is void) until `writ revoke --lift`".to_string();
    }
}

/// What the rules of a Role or ClusterRole allow: (verb, resource[.group])
/// in its namespace or the whole cluster, with the names it is limited to.
pub(super) fn allows(resource: &Resource) -> Vec<Access> {
    let Some(rules) = resource.attribute("rules").and_then(Value::as_array) else {
        return Vec::new();
    };
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
