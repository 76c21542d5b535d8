//! Step 2 of a plan: every observed object sorted by whose it is (the rule
//! is [`crate::ownership`]'s). The project's own go on to be compared with
//! the source; other projects' are left alone; the rest are inventoried.

use super::join::{Row, Side};
use super::{aws, Conflict, PlanOptions, Revoked, Unmanaged};
use crate::lower::Desired;
use crate::ownership::{self, agent_name, aws::REVOKE_POLICY, Ownership};
use crate::resource::{Resource, ResourceKind};
use rustc_hash::FxHashSet;

/// What sorting the observed objects found besides whose they are.
pub(super) struct Partition {
    /// Objects the project owns.
    pub managed: usize,
    /// Identities no writ project owns, listed in the plan.
    pub unmanaged: Vec<Unmanaged>,
    /// Revocations `writ revoke` put on the project's roles.
    pub revoked: Vec<Revoked>,
    /// Roles tagged as adopted by the project that the source adopts no
    /// more: writ leaves them, and the plan fails until someone decides.
    pub orphans: Vec<Conflict>,
}

/// Sets `side` on every row with an observed object.
pub(super) fn partition<'a>(
    rows: &mut [Row<'a>],
    desired: &Desired,
    options: &PlanOptions,
    mut evidence: ownership::Evidence<'a>,
) -> Partition {
    let project = desired.project.as_str();
    // Roles the source adopts that writ may take over.
    let adopting: FxHashSet<&str> = rows
        .iter()
        .filter(|row| {
            let (Some(observed), Some(desired)) = (row.observed, row.desired) else {
                return false;
            };
            is_adopted(desired)
                && ownership::ownership(observed, project, &evidence) == Ownership::Unmanaged
                && adoption_refused(observed, desired, rows).is_none()
        })
        .map(|row| row.address)
        .collect();
    // An inline policy is the project's when its role is, or is to be.
    evidence.roles = rows
        .iter()
        .filter_map(|row| row.observed)
        .filter(|r| r.kind == ResourceKind::AwsRole)
        .filter(|r| {
            adopting.contains(r.address.as_str())
                || ownership::ownership(r, project, &evidence) == Ownership::Ours
        })
        .filter_map(|r| Some((r.provider.as_str(), r.string("name")?)))
        .collect();
    let mut partition = Partition {
        managed: 0,
        unmanaged: Vec::new(),
        revoked: Vec::new(),
        orphans: Vec::new(),
    };
    for row in rows.iter_mut() {
        let Some(resource) = row.observed else {
            continue;
        };
        if adopting.contains(row.address) {
            row.side = Some(Side::Adopting);
            continue;
        }
        row.side = Some(match ownership::ownership(resource, project, &evidence) {
            // A revocation stays until it is lifted, whatever the source
            // says (freezing and unfreezing an agent does not lift it).
            Ownership::Ours
                if resource.kind == ResourceKind::AwsRolePolicy
                    && resource.string("name") == Some(REVOKE_POLICY)
                    // Not one on a role being adopted: writ did not put it.
                    && !adopting.contains(aws::role_of(row.address)) =>
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
                if resource.kind == ResourceKind::AwsRole && row.desired.is_none() {
                    let agent = resource
                        .tag(ownership::aws::AGENT_TAG)
                        .or(resource.string("name"))
                        .unwrap_or_default();
                    partition.orphans.push(Conflict {
                        address: resource.address.clone(),
                        kind: resource.kind,
                        agent: Some(agent.to_string()),
                        detail: format!(
                            "adopted by this project (its tags say), but the source adopts it no more: writ leaves it as it is, and it still allows what `{agent}` held; delete it, adopt it again (`adopts {} role \"{}{}\"`), or remove its `writ:` tags to give it back",
                            resource.provider,
                            resource.string("path").unwrap_or("/"),
                            resource.string("name").unwrap_or_default()
                        ),
                    });
                }
                partition.unmanaged.push(Unmanaged {
                    address: resource.address.clone(),
                    kind: resource.kind,
                    name: match resource.string("namespace") {
                        Some(namespace) => format!("{namespace}/{}", resource.string("name").unwrap_or("?")),
                        None => resource.string("name").unwrap_or("?").to_string(),
                    },
                    detail: if resource.kind == ResourceKind::AwsRole {
                        "tagged as adopted by this project, but the source does not adopt it there (no `adopts` names this path and name): writ never changes it; adopt it again, or remove its `writ:` tags".to_string()
                    } else {
                        "labelled as this project's, but writ cannot show it made it: its name is not one writ gives, its UID is not in writ's inventory record, and the source does not declare it (or its agent is revoked); writ never changes it".to_string()
                    },
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

/// Does the source adopt the object it wants here (`adopts`)?
pub(super) fn is_adopted(desired: &Resource) -> bool {
    match desired.kind {
        ResourceKind::AwsRole => desired.tag(ownership::aws::ADOPTED_TAG).is_some(),
        ResourceKind::KubernetesServiceAccount => desired
            .attribute("annotations")
            .and_then(|a| a.get(ownership::kubernetes::ADOPTED_ANNOTATION))
            .is_some(),
        _ => false,
    }
}

/// Why writ may not take `observed` over as the `desired` object the
/// source adopts; `None` when it may.
pub(super) fn adoption_refused(
    observed: &Resource,
    desired: &Resource,
    rows: &[Row],
) -> Option<String> {
    match observed.kind {
        ResourceKind::AwsRole => {
            let related = aws::related(observed, rows.iter().filter_map(|row| row.observed));
            aws::adoption_refused(observed, desired, &related)
        }
        ResourceKind::KubernetesServiceAccount => {
            let label = |key: &str| {
                observed
                    .attribute("labels")
                    .and_then(|l| l.get(key))
                    .and_then(serde_json::Value::as_str)
            };
            if ownership::kubernetes::is_reserved(
                observed.string("namespace"),
                observed.string("name").unwrap_or_default(),
            ) {
                return Some("it is the cluster's own".to_string());
            }
            label(ownership::kubernetes::MANAGED_BY).map(|manager| {
                format!(
                    "it is labelled `{}: {manager}`: what manages it would undo writ's labels; take it out of `{manager}` first, or keep it out of writ",
                    ownership::kubernetes::MANAGED_BY
                )
            })
        }
        kind => Some(format!(
            "writ adopts roles and service accounts, not a {}",
            kind.noun()
        )),
    }
}
