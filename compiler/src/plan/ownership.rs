//! The first step of a plan: every observed object sorted by whose it is
//! (see [`crate::ownership`]). The project's own go on to be compared with
//! the source; other projects' are left alone; the rest are inventoried.

use super::PlanOptions;
use super::{aws, Revoked, Unmanaged};
use crate::lower::Desired;
use crate::ownership::{self, agent_of, aws::REVOKE_POLICY, Ownership};
use crate::resource::{Resource, ResourceKind};
use std::collections::{HashMap, HashSet};

/// Observed objects by whose they are, each set keyed by address.
pub(super) struct Partition<'a> {
    /// The project's own objects (revocations aside).
    pub owned: HashMap<&'a str, &'a Resource>,
    /// Objects of other projects, and of no project: never changed, but a
    /// desired object whose address one of them has is a conflict.
    pub others: HashMap<&'a str, &'a Resource>,
    /// Identities no writ project owns, listed in the plan.
    pub unmanaged: Vec<Unmanaged>,
    /// Revocations `writ revoke` put on the project's roles.
    pub revoked: Vec<Revoked>,
}

pub(super) fn partition<'a>(
    observed: &[&'a Resource],
    desired: &Desired,
    options: &PlanOptions,
) -> Partition<'a> {
    let project = desired.project.as_str();
    let no_roles = HashSet::new();
    let our_roles: HashSet<(&str, &str)> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::AwsRole)
        .filter(|r| ownership::ownership(r, project, &no_roles) == Ownership::Ours)
        .filter_map(|r| Some((r.provider.as_str(), r.string("name")?)))
        .collect();
    // Hash maps: every later step looks objects up by address, and a
    // search in an ordered map would compare long, alike addresses
    // (`aws.prod/role/a12345/policy/…`) a dozen times per look-up.
    let mut owned = HashMap::with_capacity(observed.len());
    let mut others = HashMap::new();
    let mut unmanaged = Vec::new();
    let mut revoked = Vec::new();
    for &resource in observed {
        match ownership::ownership(resource, project, &our_roles) {
            // A revocation stays until it is lifted, or until the source
            // freezes the agent (whose deny-all makes it unneeded).
            Ownership::Ours
                if resource.kind == ResourceKind::AwsRolePolicy
                    && resource.string("name") == Some(REVOKE_POLICY)
                    && !agent_of(resource).is_some_and(|a| desired.frozen.contains(&a)) =>
            {
                revoked.push(Revoked {
                    agent: agent_of(resource).unwrap_or_default(),
                    address: resource.address.clone(),
                    detail: "revoked with `writ revoke`: sessions issued before then are denied; kept until `writ revoke --lift` or `frozen = true`".to_string(),
                });
            }
            Ownership::Ours => {
                owned.insert(resource.address.as_str(), resource);
            }
            Ownership::OtherProject => {
                others.insert(resource.address.as_str(), resource);
            }
            Ownership::Unmanaged => {
                others.insert(resource.address.as_str(), resource);
                unmanaged.extend(aws::inventory(resource, project, options));
            }
        }
    }
    Partition {
        owned,
        others,
        unmanaged,
        revoked,
    }
}
