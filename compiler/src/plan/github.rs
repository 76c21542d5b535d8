//! The GitHub side of a plan: the long-lived credentials of the
//! repositories agents run in (deploy keys, Actions secrets), listed and
//! flagged, never changed; and what could not be read of them.

use super::{PlanOptions, Unmanaged};
use crate::resource::{Resource, ResourceKind};
use crate::values::Date;
use serde_json::Value;

/// Secret names that hold long-lived AWS keys, as they are usually named.
fn looks_like_aws_key(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    name.contains("AWS")
        && (name.contains("ACCESS_KEY") || name.contains("SECRET") || name.ends_with("_KEY"))
}

pub(super) fn inventory(resource: &Resource, options: &PlanOptions) -> Option<Unmanaged> {
    let date = |key: &str| {
        resource
            .string(key)
            .and_then(|d| Date::parse(d.get(..10)?).ok())
    };
    let days_since = |d: Date| options.today.days_since_epoch() - d.days_since_epoch();
    let repository = resource.string("repository").unwrap_or("?");
    let over_age = |days: Option<i64>| {
        options
            .max_key_age_days
            .is_some_and(|max| days.is_some_and(|d| d > max))
    };
    match resource.kind {
        ResourceKind::GithubDeployKey => {
            let title = resource.string("title").unwrap_or_default();
            let age = date("created").map(days_since);
            let last_used = date("last_used");
            let idle = last_used.map(days_since).or(age);
            let read_only = resource
                .attribute("read_only")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut detail = format!(
                "deploy key `{title}` of `{repository}`, {}",
                if read_only { "read-only" } else { "read-write" }
            );
            if let Some(age) = age {
                detail.push_str(&format!(", {age} days old"));
            }
            match last_used {
                Some(date) => detail.push_str(&format!(", last used {date}")),
                None => detail.push_str(", never used"),
            }
            let stale = over_age(age) || over_age(idle);
            if stale {
                detail.push_str(&format!(
                    "; older or idle longer than the maximum key age ({} days)",
                    options.max_key_age_days.unwrap_or_default()
                ));
            }
            let mut flags = Vec::new();
            if !read_only {
                flags.push("can push".to_string());
            }
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name: title.to_string(),
                detail,
                age_days: age,
                stale,
                flags,
            })
        }
        ResourceKind::GithubActionsSecret => {
            let name = resource.string("name").unwrap_or_default();
            let set = date("updated").or_else(|| date("created"));
            let age = set.map(days_since);
            let mut detail = format!("Actions secret `{name}` of `{repository}`");
            if let Some(set) = set {
                detail.push_str(&format!(", set {set}"));
            }
            let mut flags = Vec::new();
            // The repository is one an agent runs in: its workflows reach
            // AWS with OIDC, and need no key.
            if looks_like_aws_key(name) {
                flags.push("a long-lived AWS key beside OIDC".to_string());
                detail.push_str(": named like a long-lived AWS key, in a repository whose workflows reach AWS with OIDC; remove it once nothing uses it, and disable the key");
            }
            let stale = !flags.is_empty() && over_age(age);
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name: name.to_string(),
                detail,
                age_days: age,
                stale,
                flags,
            })
        }
        _ => None,
    }
}

/// What could not be read of the repositories (a token without the
/// permission), one note each.
pub(super) fn unread(observed: &[Resource]) -> Vec<String> {
    observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GithubRepository)
        .flat_map(|r| {
            let name = r.string("name").unwrap_or("?").to_string();
            r.attribute("unread")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(move |what| format!("the {what} of GitHub repository `{name}` were not read, so they are not inventoried"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::looks_like_aws_key;

    #[test]
    fn aws_key_names_are_recognised() {
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "PROD_AWS_KEY",
            "aws_secret",
        ] {
            assert!(looks_like_aws_key(name), "{name}");
        }
        for name in ["NPM_TOKEN", "AWS_REGION", "AWS_ROLE_ARN", "SLACK_SECRET"] {
            assert!(!looks_like_aws_key(name), "{name}");
        }
    }
}
