//! Drift: owned objects whose content no longer hashes to the digest writ
//! recorded on them, with what differs from the source.

use super::aws::role_of;
use super::diff::changed_paths;
use super::Drift;
use crate::ownership::{self, aws::DIGEST_TAG};
use crate::resource::{Resource, ResourceKind};
use std::collections::{HashMap, HashSet};

/// Drift among the owned objects, sorted by address. `wanted` is the
/// desired state by address; `wanted_inline` counts, per role address, the
/// inline policies the source wants on it.
pub(super) fn find_drift(
    wanted: &HashMap<&str, &Resource>,
    wanted_inline: &HashMap<&str, usize>,
    owned: &HashMap<&str, &Resource>,
    identical: &HashSet<&str>,
) -> Vec<Drift> {
    // Inline policies by the role they belong to, found once.
    let mut inline_by_role: HashMap<&str, Vec<&Resource>> = HashMap::new();
    for resource in owned
        .values()
        .filter(|r| r.kind == ResourceKind::AwsRolePolicy)
    {
        inline_by_role
            .entry(role_of(&resource.address))
            .or_default()
            .push(resource);
    }
    let mut drift = Vec::new();
    for (address, resource) in owned {
        let inline: &[&Resource] = match resource.kind {
            ResourceKind::AwsRole => inline_by_role.get(address).map_or(&[], Vec::as_slice),
            ResourceKind::AwsManagedPolicy => &[],
            ResourceKind::KubernetesTokenSecret => continue,
            kind if kind.is_kubernetes() => &[],
            _ => continue,
        };
        // Exactly what the source wants, digest tag included: the content
        // hashes to the digest that lowering computed, so there is no drift
        // to find (this skips the hashing for nearly every object).
        let as_desired = |r: &Resource| identical.contains(r.address.as_str());
        let wanted_inline = if resource.kind == ResourceKind::AwsRole {
            wanted_inline.get(address).copied().unwrap_or(0)
        } else {
            0
        };
        if as_desired(resource)
            && inline.len() == wanted_inline
            && inline.iter().all(|r| as_desired(r))
        {
            continue;
        }
        let recorded = ownership::recorded_digest(resource);
        let actual = ownership::content_digest(resource, inline.iter().copied());
        if recorded == Some(actual.as_str()) {
            continue;
        }
        // Which attributes (and inline policies) differ from the source.
        let mut changed = Vec::new();
        if let Some(want) = wanted.get(address) {
            changed.extend(
                changed_paths(&resource.attributes, &want.attributes)
                    .into_iter()
                    .filter(|p| p != &format!("tags.{DIGEST_TAG}")),
            );
        }
        for policy in inline {
            if wanted
                .get(policy.address.as_str())
                .is_none_or(|want| !want.same_as(policy))
            {
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
            address: address.to_string(),
            kind: resource.kind,
            agent: ownership::agent_of(resource),
            changed_paths: changed,
            detail,
        });
    }
    drift.sort_by(|a, b| a.address.cmp(&b.address));
    drift
}
