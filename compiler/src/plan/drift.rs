//! Step 4 of a plan: drift, the owned objects whose content no longer
//! hashes to the digest writ recorded on them, with what differs from the
//! source.

use super::diff::changed_paths;
use super::join::{prefixed, Row};
use super::Drift;
use crate::ownership::{self, aws::DIGEST_TAG};
use crate::resource::{Resource, ResourceKind};

/// Drift among the owned objects of `rows`, in address order.
pub(super) fn find_drift(rows: &[Row]) -> Vec<Drift> {
    let mut drift = Vec::new();
    let mut prefix = String::new();
    for (index, row) in rows.iter().enumerate() {
        let Some(resource) = row.owned() else {
            continue;
        };
        // A role's digest covers its inline policies: the rows under
        // `<role>/policy/`, which sort right after it.
        let inline: &[Row] = match resource.kind {
            ResourceKind::AwsRole => {
                prefix.clear();
                prefix.push_str(row.address);
                prefix.push_str("/policy/");
                prefixed(rows, index, &prefix)
            }
            ResourceKind::AwsManagedPolicy => &[],
            ResourceKind::KubernetesTokenSecret => continue,
            kind if kind.is_kubernetes() => &[],
            _ => continue,
        };
        let owned_inline: Vec<(&Row, &Resource)> = inline
            .iter()
            .filter_map(|r| Some((r, r.owned()?)))
            .filter(|(_, r)| r.kind == ResourceKind::AwsRolePolicy)
            .collect();
        let wanted_inline = inline
            .iter()
            .filter(|r| {
                r.desired
                    .is_some_and(|d| d.kind == ResourceKind::AwsRolePolicy)
            })
            .count();
        // Exactly what the source wants, digest tag included: the content
        // hashes to the digest that lowering computed, so there is no drift
        // to find (this skips the hashing for nearly every object).
        if row.identical
            && owned_inline.len() == wanted_inline
            && owned_inline.iter().all(|(r, _)| r.identical)
        {
            continue;
        }
        let recorded = ownership::recorded_digest(resource);
        let actual = ownership::content_digest(resource, owned_inline.iter().map(|(_, r)| *r));
        if recorded == Some(actual.as_str()) {
            continue;
        }
        // Which attributes (and inline policies) differ from the source.
        let mut changed = Vec::new();
        if let Some(want) = row.desired {
            changed.extend(
                changed_paths(&resource.attributes, &want.attributes)
                    .into_iter()
                    .filter(|p| p != &format!("tags.{DIGEST_TAG}")),
            );
        }
        for (policy_row, policy) in &owned_inline {
            if policy_row.desired.is_none_or(|want| !want.same_as(policy)) {
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
            address: row.address.to_string(),
            kind: resource.kind,
            agent: ownership::agent_of(resource),
            changed_paths: changed,
            detail,
            cause: super::DriftCause::Edited,
        });
    }
    drift
}
