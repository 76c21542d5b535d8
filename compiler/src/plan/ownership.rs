//! Step 2 of a plan: every observed object sorted by whose it is (the rule
//! is [`crate::ownership`]'s). The project's own go on to be compared with
//! the source; other projects' are left alone; the rest are inventoried.

use super::join::{Row, Side};
use super::{aws, PlanOptions, Revoked, Unmanaged};
use crate::lower::Desired;
use crate::ownership::{self, agent_name, aws::REVOKE_POLICY, Ownership};
use crate::resource::ResourceKind;

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
pub(super) fn partition<'a>(
    rows: &mut [Row<'a>],
    desired: &Desired,
    options: &PlanOptions,
    mut evidence: ownership::Evidence<'a>,
) -> Partition {
    let project = desired.project.as_str();
    // An inline policy is the project's when its role is.
    evidence.roles = rows
        .iter()
        .filter_map(|row| row.observed)
        .filter(|r| r.kind == ResourceKind::AwsRole)
        .filter(|r| ownership::ownership(r, project, &evidence) == Ownership::Ours)
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
        row.side = Some(match ownership::ownership(resource, project, &evidence) {
            // A revocation stays until it is lifted, whatever the source
            // says (freezing and unfreezing an agent does not lift it).
            Ownership::Ours
                if resource.kind == ResourceKind::AwsRolePolicy
                    && resource.string("name") == Some(REVOKE_POLICY) =>
            {
                partition.revoked.push(Revoked {
                    agent: agent_name(resource).unwrap_or_default().to_string(),
                    address: resource.address.clone(),
                    detail: "revoked with `writ revoke`: nobody may assume the role, and every session of it is denied everything; kept until `writ revoke --lift`".to_string(),
                });
                Side::Revocation
            }
            Ownership::Ours => {
                // Governed settings are never deleted: no part of what a
                // deletion is measured against.
                if !resource.kind.is_governed() {
                    partition.managed += 1;
                }
                Side::Ours
            }
            Ownership::OtherProject => Side::OtherProject,
            Ownership::Unproven => {
                partition.unmanaged.push(Unmanaged {
                    address: resource.address.clone(),
                    kind: resource.kind,
                    name: match resource.string("namespace") {
                        Some(namespace) => format!("{namespace}/{}", resource.string("name").unwrap_or("?")),
                        None => resource.string("name").unwrap_or("?").to_string(),
                    },
                    detail: "labelled as this project's, but writ cannot show it made it: its name is not one writ gives, its UID is not in writ's inventory record, and the source does not declare it (or its agent is revoked); writ never changes it".to_string(),
                    age_days: None,
                    stale: false,
                    flags: vec!["claims to be writ's".to_string()],
                });
                Side::Unmanaged
            }
            Ownership::Unmanaged => {
                partition.unmanaged.extend(
                    aws::inventory(resource, project, options)
                        .or_else(|| super::github::inventory(resource, options))
                        .or_else(|| super::gcp::inventory(resource, options)),
                );
                Side::Unmanaged
            }
        });
    }
    partition
}
