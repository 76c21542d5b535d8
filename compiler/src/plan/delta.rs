//! The permission delta: what each agent may do before and after the plan,
//! as (provider, action, resource, condition) sets; gains and losses are
//! their differences.

use super::aws::role_of;
use super::join::Row;
use super::{Access, AgentDelta};
use crate::ownership::agent_name;
use crate::resource::{Resource, ResourceKind};
use std::collections::{BTreeMap, BTreeSet};

/// What each agent's inline access policies allow, as (provider, action,
/// resource, condition) sets; gains and losses are their differences.
pub(super) fn permission_delta(rows: &[Row], conflicted: &BTreeSet<&str>) -> Vec<AgentDelta> {
    // What grants access: AWS inline policies and the managed policies
    // attached to a role, Kubernetes Roles.
    let grants_access = |r: &Resource| {
        matches!(
            r.kind,
            ResourceKind::AwsRolePolicy
                | ResourceKind::KubernetesRole
                | ResourceKind::KubernetesClusterRole
        ) || (r.kind == ResourceKind::AwsRole
            && (r.attribute("attached_policies").is_some()
                || r.attribute("instance_profiles").is_some()))
    };
    let wanted = |row: &Row| -> bool {
        row.desired.is_some_and(|r| {
            grants_access(r) && (conflicted.is_empty() || !conflicted.contains(role_of(&r.address)))
        })
    };
    // Only agents with a policy that is new, gone or different can gain or
    // lose access; the rest (nearly all, in a large estate) are skipped.
    let mut touched: BTreeSet<&str> = BTreeSet::new();
    for row in rows {
        if let Some(observed) = row.owned().filter(|r| grants_access(r)) {
            if !row.identical {
                touched.extend(agent_name(observed));
            }
        }
        if wanted(row) && row.owned().is_none() {
            touched.extend(row.desired.and_then(|r| r.agent.as_deref()));
        }
    }
    let mut before: BTreeMap<String, BTreeSet<Access>> = BTreeMap::new();
    let mut after: BTreeMap<String, BTreeSet<Access>> = BTreeMap::new();
    if touched.is_empty() {
        return Vec::new();
    }
    for row in rows {
        if let Some(observed) = row.owned().filter(|r| grants_access(r)) {
            if let Some(agent) = agent_name(observed).filter(|a| touched.contains(a)) {
                before
                    .entry(agent.to_string())
                    .or_default()
                    .extend(allows(observed));
            }
        }
        if let Some(resource) = row.desired.filter(|_| wanted(row)) {
            if let Some(agent) = resource.agent.as_deref().filter(|a| touched.contains(a)) {
                after
                    .entry(agent.to_string())
                    .or_default()
                    .extend(allows(resource));
            }
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

/// What one object that grants access allows.
fn allows(resource: &Resource) -> Vec<Access> {
    match resource.kind {
        ResourceKind::AwsRolePolicy => super::aws::allows(resource),
        ResourceKind::AwsRole => super::aws::attached(resource),
        _ if resource.kind.is_kubernetes() => super::kubernetes::allows(resource),
        _ => Vec::new(),
    }
}
