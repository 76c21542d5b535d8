//! The plan: desired resources (from lowering) against observed ones (from a
//! snapshot or live providers), as a deterministic value. Sorted, with no
//! timestamps; renderers are pure functions of it.
//!
//! [`plan`] runs these steps, each in a file of its own:
//! 1. look-ups over both sides, and which observed objects are exactly as
//!    the source wants them (`Index`, below);
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

mod aws;
mod changes;
mod delta;
pub mod diff;
mod drift;
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
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

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

/// Step 1: the look-ups every later step shares.
struct Index<'a> {
    /// Desired objects by address, for the look-up per observed object.
    wanted: HashMap<&'a str, &'a Resource>,
    /// How many inline policies the source wants on each role, by the
    /// role's address.
    wanted_inline: HashMap<&'a str, usize>,
    /// Observed objects exactly as the source wants them. In a large estate
    /// nearly all are, and they are canonical already (lowering writes
    /// canonical documents), so every later step reads this set instead of
    /// comparing again.
    identical: HashSet<&'a str>,
}

impl<'a> Index<'a> {
    /// The index, and the observed objects with their documents in canonical
    /// form (borrowed where they are identical to the desired ones).
    fn new(desired: &'a Desired, observed: &'a [Resource]) -> (Index<'a>, Vec<Cow<'a, Resource>>) {
        let wanted: HashMap<&str, &Resource> = desired
            .resources
            .iter()
            .map(|r| (r.address.as_str(), r))
            .collect();
        let mut wanted_inline: HashMap<&str, usize> = HashMap::new();
        for resource in desired
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::AwsRolePolicy)
        {
            *wanted_inline
                .entry(aws::role_of(&resource.address))
                .or_default() += 1;
        }
        let mut identical = HashSet::new();
        let observed = observed
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
        (
            Index {
                wanted,
                wanted_inline,
                identical,
            },
            observed,
        )
    }
}

fn plan_desired(desired: &Desired, observed: &[Resource], options: &PlanOptions) -> Plan {
    // 1. Look-ups.
    let (index, observed) = Index::new(desired, observed);
    let observed: Vec<&Resource> = observed.iter().map(Cow::as_ref).collect();
    // 2. Whose each observed object is (AWS inventory on the way).
    let ownership::Partition {
        owned,
        others,
        mut unmanaged,
        revoked,
    } = ownership::partition(&observed, desired, options);
    // 3. The cluster inventory, and long-lived tokens to delete.
    let cluster_objects: Vec<&Resource> = observed
        .iter()
        .copied()
        .filter(|r| r.kind.is_kubernetes())
        .collect();
    let (token_deletes, cluster_inventory) =
        kubernetes::inventory(&cluster_objects, &owned, &index.wanted);
    unmanaged.extend(cluster_inventory);
    // 4. Drift.
    let drift = drift::find_drift(
        &index.wanted,
        &index.wanted_inline,
        &owned,
        &index.identical,
    );
    let drifted: BTreeSet<&str> = drift.iter().map(|d| d.address.as_str()).collect();
    // 5. Changes and conflicts.
    let conflicted = changes::conflicted(desired, &owned, &others);
    let compare = changes::Compare {
        desired,
        owned: &owned,
        others: &others,
        identical: &index.identical,
        drifted: &drifted,
        conflicted: &conflicted,
    };
    let mut summary = Summary {
        managed: owned.len(),
        ..Summary::default()
    };
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    compare.desired_changes(&mut changes, &mut conflicts, &mut summary);
    compare.deletions(&index.wanted, &mut changes);
    changes.extend(token_deletes);
    changes::recreate_with_replaced_roles(&mut changes, desired, &owned, &mut summary);
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    // 6. Who gains or loses what.
    let permission_delta = delta::permission_delta(desired, &owned, &conflicted, &index.identical);

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
    }
}
