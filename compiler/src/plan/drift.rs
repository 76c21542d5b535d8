//! Step 4 of a plan: drift, the owned objects whose content no longer
//! hashes to the digest writ recorded on them, with what differs from the
//! source.

use super::diff::changed_paths;
use super::join::{prefixed, Row};
use super::Drift;
use crate::ownership::{self, aws::DIGEST_TAG};
use crate::resource::{Resource, ResourceKind};

/// Drift of one of writ's GCP service accounts: what it and its bindings
/// hash to, against the digest its record carries (a revoked account's
/// changes are the revocation's, not drift).
fn gcp_drift(
    row: &Row,
    account: &Resource,
    policies: &[&Resource],
    agents: &std::collections::BTreeSet<String>,
) -> Option<Drift> {
    let description = account.string("description").unwrap_or_default();
    // A revocation's changes, and a lift's until it is applied, are not
    // drift.
    if ownership::gcp::is_revoked(description) || ownership::gcp::is_lifted(description) {
        return None;
    }
    let recorded = ownership::gcp::read_digest(description);
    let actual = ownership::gcp::digest(
        account,
        policies
            .iter()
            .copied()
            .filter(|p| p.provider == account.provider),
        agents,
    );
    if recorded == Some(actual.as_str()) {
        return None;
    }
    let mut changed: Vec<String> = row
        .desired
        .map(|want| {
            changed_paths(&account.attributes, &want.attributes)
                .into_iter()
                .filter(|p| p != "description")
                .collect()
        })
        .unwrap_or_default();
    if changed.is_empty() {
        changed.push("its bindings".to_string());
    }
    Some(Drift {
        address: row.address.to_string(),
        kind: account.kind,
        agent: ownership::agent_of(account),
        changed_paths: changed,
        detail: match recorded {
            None => "has no digest in its record: it was created or edited outside writ, or by a writ that kept none".to_string(),
            Some(_) => "it, or a binding that names it or lets others act as it, changed outside writ since writ last applied it".to_string(),
        },
        cause: super::DriftCause::Edited,
    })
}

/// Drift among the owned objects of `rows`, in address order.
pub(super) fn find_drift(rows: &[Row]) -> Vec<Drift> {
    let mut drift = Vec::new();
    let mut prefix = String::new();
    // Writ's part of each GCP policy read: a service account's digest
    // covers its bindings in all of them.
    let gcp_policies: Vec<&Resource> = rows
        .iter()
        .filter_map(Row::owned)
        .filter(|r| r.kind == ResourceKind::GcpIamPolicy)
        .collect();
    // This project's agents' accounts.
    let agents: std::collections::BTreeSet<String> = rows
        .iter()
        .filter_map(Row::owned)
        .filter(|r| r.kind == ResourceKind::GcpServiceAccount)
        .filter_map(|r| r.string("email").map(str::to_string))
        .collect();
    for (index, row) in rows.iter().enumerate() {
        let Some(resource) = row.owned() else {
            continue;
        };
        if resource.kind == ResourceKind::GcpServiceAccount {
            drift.extend(gcp_drift(row, resource, &gcp_policies, &agents));
            continue;
        }
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
