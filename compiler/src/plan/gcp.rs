//! The GCP side of a plan's inventory: the project's service accounts that
//! are not writ's, listed, never changed; and the user-managed keys of
//! writ's service accounts, long-lived credentials that outlive every
//! `ttl`, flagged.

use super::{PlanOptions, Unmanaged};
use crate::resource::{Resource, ResourceKind};
use crate::values::Date;
use serde_json::Value;

pub(super) fn inventory(resource: &Resource, options: &PlanOptions) -> Option<Unmanaged> {
    let date = |key: &str| {
        resource
            .string(key)
            .and_then(|d| Date::parse(d.get(..10)?).ok())
    };
    let days_since = |d: Date| options.today.days_since_epoch() - d.days_since_epoch();
    let disabled = resource.attribute("disabled").and_then(Value::as_bool) == Some(true);
    match resource.kind {
        ResourceKind::GcpServiceAccount => {
            let email = resource.string("email").unwrap_or("?");
            let mut detail = "service account: listed, never changed by writ".to_string();
            if disabled {
                detail.push_str(" (disabled)");
            }
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name: email.to_string(),
                detail,
                age_days: None,
                stale: false,
                flags: Vec::new(),
            })
        }
        ResourceKind::GcpServiceAccountKey => {
            let account = resource.string("account").unwrap_or("?");
            let id = resource.string("id").unwrap_or("?");
            let age = date("created").map(days_since);
            let never_expires = resource
                .string("expires")
                .is_none_or(|e| e.starts_with("9999"));
            let mut detail = format!(
                "user-managed key `{id}` of service account `{account}`, {}",
                if disabled { "disabled" } else { "active" }
            );
            if let Some(age) = age {
                detail.push_str(&format!(", {age} days old"));
            }
            if never_expires {
                detail.push_str(", never expires");
            } else if let Some(expires) = resource.string("expires") {
                detail.push_str(&format!(
                    ", expires {}",
                    expires.get(..10).unwrap_or(expires)
                ));
            }
            let stale = !disabled
                && options
                    .max_key_age_days
                    .is_some_and(|max| age.is_some_and(|a| a > max));
            if stale {
                detail.push_str(&format!(
                    "; older than the maximum key age ({} days)",
                    options.max_key_age_days.unwrap_or_default()
                ));
            }
            let mut flags = Vec::new();
            if !disabled {
                flags.push(
                    "a long-lived key of a writ agent's account: its tokens outlive the ttl"
                        .to_string(),
                );
                detail.push_str(": whoever holds it acts as the agent for as long as the key lives, whatever its `ttl`; delete it once nothing uses it");
            }
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name: id.to_string(),
                detail,
                age_days: age,
                stale,
                flags,
            })
        }
        // Only providers in a writ pool are read: one writ did not make can
        // map the attributes writ's bindings trust.
        ResourceKind::GcpWorkloadIdentityPoolProvider => {
            let pool = resource.string("pool_id").unwrap_or("?");
            let id = resource.string("provider_id").unwrap_or("?");
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name: format!("{pool}/{id}"),
                detail: format!(
                    "provider `{id}` in writ's workload identity pool `{pool}`, not made by writ (its description is not writ's record){}: listed, never changed",
                    if disabled { ", disabled" } else { "" }
                ),
                age_days: None,
                stale: false,
                flags: if disabled {
                    Vec::new()
                } else {
                    vec!["a provider in writ's pool that writ did not make: it can map the attributes writ's bindings trust, so its tokens may act as writ's service accounts; delete it".to_string()]
                },
            })
        }
        _ => None,
    }
}

/// What the plan must say of each GCP project read: where writ's accounts
/// hold roles writ cannot change, and when the search for them was not
/// made.
pub(super) fn notes(observed: &[Resource]) -> Vec<String> {
    let mut notes = Vec::new();
    for project in observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpProject)
    {
        if let Some(why) = project.string("pools_unread") {
            notes.push(format!(
                "`{}`: workload identity pools were not read ({why}): writ's pool for GitHub's tokens, and any provider someone added to it, are not seen; give writ `iam.workloadIdentityPools.list` and `iam.workloadIdentityPoolProviders.list`",
                project.provider
            ));
        }
        if let Some(why) = project.string("unsearched") {
            notes.push(format!(
                "`{}`: Cloud Asset was not searched for writ's bindings beyond the resources the source names ({why}): a binding writ made on a resource the source no longer names is not seen; enable the Cloud Asset API and give writ `cloudasset.assets.searchAllIamPolicies`",
                project.provider
            ));
        }
        for resource in project
            .attribute("bound_elsewhere")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            notes.push(format!(
                "`{}`: writ's service accounts hold roles on `{resource}`, whose policy writ does not change: remove them by hand if the source does not grant them",
                project.provider
            ));
        }
    }
    notes
}
