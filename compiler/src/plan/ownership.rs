//! Step 2 of a plan: every observed object sorted by whose it is (the rule
//! is [`crate::ownership`]'s). The project's own go on to be compared with
//! the source; other projects' are left alone; the rest are inventoried.

use super::join::{Row, Side};
use super::{aws, PlanOptions, Revoked, Unmanaged};
use crate::lower::Desired;
use crate::ownership::{self, agent_name, aws::REVOKE_POLICY, Ownership};
use crate::resource::ResourceKind;
use rustc_hash::FxHashSet;

/// What sorting the observed objects found besides whose they are.
pub(super) struct Partition {
    /// Objects the project owns.
    pub managed: usize,
    /// Identities no writ project owns, listed in the plan.
    pub unmanaged: Vec<Unmanaged>,
    /// Revocations `writ revoke` put on the project's roles.
    pub revoked: Vec<Revoked>,
}

/// Sets `side` on every row with an observed object.
pub(super) fn partition(rows: &mut [Row], desired: &Desired, options: &PlanOptions) -> Partition {
    let project = desired.project.as_str();
    // An inline policy is the project's when its role is.
    let no_roles = FxHashSet::default();
    let our_roles: FxHashSet<(&str, &str)> = rows
        .iter()
        .filter_map(|row| row.observed)
        .filter(|r| r.kind == ResourceKind::AwsRole)
        .filter(|r| ownership::ownership(r, project, &no_roles) == Ownership::Ours)
        .filter_map(|r| Some((r.provider.as_str(), r.string("name")?)))
        .collect();
    let mut partition = Partition {
        managed: 0,
        unmanaged: Vec::new(),
        revoked: Vec::new(),
    };
    for row in rows.iter_mut() {
        let Some(resource) = row.observed else {
            continue;
        };
        row.side = Some(match ownership::ownership(resource, project, &our_roles) {
            // A revocation stays until it is lifted, whatever the source
            // says (freezing and unfreezing an agent does not lift it).
            Ownership::Ours
                if resource.kind == ResourceKind::AwsRolePolicy
                    && resource.string("name") == Some(REVOKE_POLICY) =>
            {
                partition.revoked.push(Revoked {
                    agent: agent_name(resource).unwrap_or_default().to_string(),
                    address: resource.address.clone(),
                    detail: "revoked with `writ revoke`: nobody may assume the role, and sessions issued before then are denied; kept until `writ revoke --lift`".to_string(),
                });
                Side::Revocation
            }
            Ownership::Ours => {
                partition.managed += 1;
                Side::Ours
            }
            Ownership::OtherProject => Side::OtherProject,
            Ownership::Unmanaged => {
                partition
                    .unmanaged
                    .extend(aws::inventory(resource, project, options));
                Side::Unmanaged
            }
        });
    }
    partition
}
