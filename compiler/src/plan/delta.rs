//! The permission delta: what each agent may do before and after the plan,
//! as (provider, action, resource, condition) sets; gains and losses are
//! their differences.

use super::aws::role_of;
use super::{Access, AgentDelta};
use crate::lower::Desired;
use crate::ownership::agent_of;
use crate::resource::{Resource, ResourceKind};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// What each agent's inline access policies allow, as (provider, action,
/// resource, condition) sets; gains and losses are their differences.
pub(super) fn permission_delta(
    desired: &Desired,
    owned: &HashMap<&str, &Resource>,
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

/// What one object that grants access allows.
fn allows(resource: &Resource) -> Vec<Access> {
    match resource.kind {
        ResourceKind::AwsRolePolicy => super::aws::allows(resource),
        _ if resource.kind.is_kubernetes() => super::kubernetes::allows(resource),
        _ => Vec::new(),
    }
}
