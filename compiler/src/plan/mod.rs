//! The plan: desired resources (from lowering) against observed ones (from a
//! snapshot or live providers), as a deterministic value. Sorted, with no
//! timestamps; renderers are pure functions of it.
//!
//! [`plan`] runs these steps, each in a file of its own:
//! 1. both sides joined by address, in order, with which observed objects
//!    are exactly as the source wants them (`join.rs`);
//! 2. every observed object sorted by whose it is (`ownership.rs`, with the
//!    rule itself in [`crate::ownership`]);
//! 3. what each provider kind inventories (`aws.rs`, `kubernetes.rs`);
//! 4. drift (`drift.rs`);
//! 5. creates, updates, replacements, deletions and conflicts
//!    (`changes.rs`, attribute comparison in `diff.rs`);
//! 6. who gains or loses which access (`delta.rs`).
//!
//! `order.rs` puts a plan's changes in the order apply carries them out;
//! `review.rs` says why a plan must not be applied, and how a saved plan
//! differs from a fresh one.

pub(crate) mod aws;
mod changes;
mod delta;
pub mod diff;
mod drift;
mod gcp;
pub(crate) mod github;
mod join;
mod kubernetes;
mod order;
mod ownership;
mod review;
mod types;

pub use diff::{changed_paths, normalised, KEYED_ATTRIBUTES};
pub use order::apply_order;
pub use review::{refusal, stale_differences};
pub use types::*;

use crate::lower::Desired;
use crate::resource::{Resource, ResourceKind};
use rustc_hash::FxHashSet;
use std::collections::BTreeSet;

pub fn plan(desired: &Desired, observed: &[Resource], options: &PlanOptions) -> Plan {
    let mut notes = github::unread(observed);
    notes.extend(github::workflow_findings(desired, observed));
    notes.extend(github::app_findings(desired, observed));
    notes.extend(gcp::notes(observed));
    let records = kubernetes::records(&desired.project, observed, &mut notes);
    let in_clusters = kubernetes::revocations(desired, observed, &records);
    // What proves a labelled object is writ's beyond its labels: the
    // service accounts the source declares (but not a revoked agent's,
    // which writ keeps absent: one made again is not writ's), and the UIDs
    // writ recorded.
    let suspended = kubernetes::suspended(&in_clusters);
    let declared: FxHashSet<&str> = desired
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::KubernetesServiceAccount)
        .filter(|r| {
            r.agent
                .as_deref()
                .is_none_or(|agent| !suspended.contains(&(r.provider.as_str(), agent)))
        })
        .map(|r| r.address.as_str())
        .collect();
    let recorded: FxHashSet<(&str, &str)> = records
        .iter()
        .flat_map(|(provider, record)| {
            record
                .objects
                .keys()
                .map(move |uid| (provider.as_str(), uid.as_str()))
        })
        .collect();
    let evidence = crate::ownership::Evidence {
        recorded,
        declared,
        adopted: desired
            .adopted
            .iter()
            .map(|(address, path)| (address.as_str(), path.as_str()))
            .collect(),
        ..crate::ownership::Evidence::default()
    };
    let roles = aws::revoked_roles(desired, observed);
    if in_clusters.is_empty() && roles.is_empty() {
        let mut plan = plan_desired(desired, observed, options, evidence);
        plan.notes.extend(notes);
        return plan;
    }
    // Revoked agents stay cut off until lifted: their roles keep the trust
    // deny; in clusters they keep no service account and no binding.
    let mut kept = desired.clone();
    kubernetes::keep_revoked(&mut kept, &in_clusters);
    aws::keep_revoked(&mut kept, &roles, observed);
    let mut plan = plan_desired(&kept, observed, options, evidence);
    plan.notes.extend(notes);
    kubernetes::explain_kept_absent(&mut plan.changes, &in_clusters);
    plan.revoked
        .extend(in_clusters.into_iter().map(|r| r.entry));
    plan.revoked.extend(aws::interrupted_revocations(
        &roles,
        observed,
        &plan.revoked,
    ));
    aws::explain_closed_trust(&mut plan.changes, &roles);
    plan.revoked
        .sort_by(|a, b| (&a.address, &a.agent).cmp(&(&b.address, &b.agent)));
    plan
}

fn plan_desired(
    desired: &Desired,
    observed: &[Resource],
    options: &PlanOptions,
    evidence: crate::ownership::Evidence,
) -> Plan {
    // 1. Both sides joined by address.
    let wanted = join::desired_by_address(&desired.resources);
    let canonical = join::canonical(&wanted, observed);
    let mut rows = join::rows(&wanted, &canonical);
    // 2. Whose each observed object is (AWS inventory on the way).
    let ownership::Partition {
        managed,
        mut unmanaged,
        revoked,
        orphans,
    } = ownership::partition(&mut rows, desired, options, evidence);
    // 3. The cluster inventory, and long-lived tokens to delete.
    let (token_deletes, cluster_inventory, bound_outside) = kubernetes::inventory(&rows);
    unmanaged.extend(cluster_inventory);
    github::cross_reference(&mut unmanaged, observed);
    // 4. Drift.
    let mut drift = drift::find_drift(&rows);
    let drifted: BTreeSet<&str> = drift.iter().map(|d| d.address.as_str()).collect();
    // 5. Changes and conflicts.
    let refused = changes::refused_adoptions(&rows);
    let conflicted = changes::conflicted(&rows, &refused);
    let compare = changes::Compare {
        desired,
        rows: &rows,
        drifted: &drifted,
        conflicted: &conflicted,
        refused: &refused,
    };
    let mut summary = Summary {
        managed,
        ..Summary::default()
    };
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    compare.desired_changes(&mut changes, &mut conflicts, &mut summary);
    compare.deletions(&mut changes);
    conflicts.extend(orphans);
    changes.extend(token_deletes);
    changes::recreate_with_replaced_roles(&mut changes, &rows, &mut summary);
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    // 6. Who gains or loses what.
    let permission_delta = delta::permission_delta(&rows, &conflicted);

    drift.extend(bound_outside);
    drift.sort_by(|a, b| a.address.cmp(&b.address));
    unmanaged.sort_by(|a, b| a.address.cmp(&b.address));
    conflicts.sort_by(|a, b| a.address.cmp(&b.address));
    summary.count(&changes);
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
    let notes = kubernetes::expiry_notes(desired);
    Plan {
        format_version: FORMAT_VERSION,
        project: desired.project.clone(),
        summary,
        changes,
        drift,
        unmanaged,
        conflicts,
        permission_delta,
        revoked,
        notes,
        identities: Vec::new(),
        unfinished: Vec::new(),
        undeclared_access: Vec::new(),
        origin: None,
    }
}
