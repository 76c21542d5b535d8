//! Comparing one object with another: canonical documents, the attributes
//! that differ, and the words a plan gives for them.

use crate::ownership::{aws::DIGEST_TAG, kubernetes::DIGEST_ANNOTATION};
use crate::policy;
use crate::resource::Resource;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Attributes that hold policy documents, compared in canonical form.
const DOCUMENT_ATTRIBUTES: &[&str] = &["assume_role_policy", "policy"];

/// A resource with its policy documents in canonical form.
pub fn normalised(resource: &Resource) -> Resource {
    let mut resource = resource.clone();
    for name in DOCUMENT_ATTRIBUTES {
        if let Some(document) = resource.attributes.get_mut(*name) {
            *document = policy::canonical(document);
        }
    }
    resource
}

/// Attributes that are maps compared entry by entry (`tags.writ:owner`).
pub const KEYED_ATTRIBUTES: &[&str] = &["tags", "labels", "annotations"];

/// Top-level attributes that differ, with tags compared one by one. The
/// digest tag is left out unless it is the only difference.
pub fn changed_paths(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
) -> Vec<String> {
    let mut paths = Vec::new();
    let keys: BTreeSet<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|key| !crate::resource::is_observed_only(key))
        .collect();
    for key in keys {
        let (old, new) = (before.get(key), after.get(key));
        if KEYED_ATTRIBUTES.contains(&key.as_str()) {
            let entries =
                |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
            let (old, new) = (entries(old), entries(new));
            let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for name in names {
                if old.get(name) != new.get(name) {
                    paths.push(format!("{key}.{name}"));
                }
            }
        } else if old.unwrap_or(&Value::Null) != new.unwrap_or(&Value::Null) {
            paths.push(key.clone());
        }
    }
    let digests = [
        format!("tags.{DIGEST_TAG}"),
        format!("annotations.{}", DIGEST_ANNOTATION),
    ];
    if paths.len() > 1 {
        paths.retain(|p| !digests.contains(p));
    }
    paths
}

fn describe_path(path: &str) -> &str {
    match path {
        "assume_role_policy" => "trust policy",
        "policy" => "policy document",
        "max_session_duration" => "session length",
        "permissions_boundary" => "permissions boundary",
        "attached_policies" => "attached managed policies",
        "instance_profiles" => "instance profiles",
        "description" => "description",
        "path" => "path",
        "name" => "name",
        "role_ref" => "role reference",
        _ if path.starts_with("tags.") => "tags",
        _ if path.starts_with("labels.") => "labels",
        _ if path.starts_with("annotations.") => "annotations",
        other => other,
    }
}

pub(super) fn update_reason(paths: &[String], restoring: bool) -> String {
    if paths == [format!("tags.{DIGEST_TAG}")] {
        return "records the digest of the role's new policies".to_string();
    }
    if paths == [format!("annotations.{}", DIGEST_ANNOTATION)] {
        return "records the digest of its new content".to_string();
    }
    let mut described: Vec<&str> = paths.iter().map(|p| describe_path(p)).collect();
    described.dedup();
    let list = described.join(", ");
    if restoring {
        format!("restores the {list} changed outside writ")
    } else {
        format!("{list} changed in the source")
    }
}
