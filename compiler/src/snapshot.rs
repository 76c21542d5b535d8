//! The snapshot: a versioned JSON document of observed resources per
//! provider instance (documented in `docs/snapshot.md`, with a JSON Schema
//! in `docs/snapshot.schema.json`). Plans can be made against it instead of
//! live providers; `writ snapshot` (with live providers) writes one.

use crate::resource::Resource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub format_version: u32,
    /// Keyed by provider instance, `aws.prod`.
    pub providers: BTreeMap<String, ProviderSnapshot>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSnapshot {
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError {
    /// 1-based line and column of the problem, where known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            _ => f.write_str(&self.message),
        }
    }
}

/// An error in `part`, a slice of `text`, placed in `text`.
fn located_within(text: &str, part: &str, error: &serde_json::Error) -> SnapshotError {
    let offset = (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let (line, column) = if error.line() <= 1 {
        (line, column + error.column().saturating_sub(1))
    } else {
        (line + error.line() - 1, error.column())
    };
    SnapshotError {
        line: Some(line),
        column: Some(column),
        message: message_of(error),
    }
}

/// serde_json's message, without the position it appends (said apart).
fn message_of(error: &serde_json::Error) -> String {
    error
        .to_string()
        .split(" at line ")
        .next()
        .unwrap_or_default()
        .to_string()
}

impl Snapshot {
    /// Reads a snapshot, checking its version and that every resource sits
    /// under the provider instance it names.
    pub fn parse(text: &str) -> Result<Snapshot, SnapshotError> {
        Snapshot::parse_sharing(text, &[])
    }

    /// Reads a snapshot as [`Snapshot::parse`] does, one object at a time;
    /// an object whose attributes are exactly those of the object of the
    /// same address in `like` (what the source wants, in a plan) holds
    /// that object's attributes rather than a copy. A large estate's
    /// snapshot, nearly all of it as the source wants, is then held once.
    pub fn parse_sharing(text: &str, like: &[Resource]) -> Result<Snapshot, SnapshotError> {
        // Read the version first, so that a newer format gets a clear word
        // rather than a complaint about a field this version does not know.
        #[derive(Deserialize)]
        struct Version {
            format_version: Option<serde_json::Value>,
        }
        let located = |error: serde_json::Error| SnapshotError {
            line: Some(error.line()),
            column: Some(error.column()),
            message: message_of(&error),
        };
        let version: Version = serde_json::from_str(text).map_err(located)?;
        match version.format_version {
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
            Some(other) => {
                return Err(SnapshotError {
                    line: None,
                    column: None,
                    message: format!(
                        "`format_version` is {other}, but this writ reads snapshots of version {FORMAT_VERSION}"
                    ),
                })
            }
            None => {
                return Err(SnapshotError {
                    line: None,
                    column: None,
                    message: "missing `format_version` (this writ reads version 1)".into(),
                })
            }
        }
        // The objects are read one by one from the text (each a slice of
        // it), so that only those unlike the source's are held anew.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw<'a> {
            format_version: u32,
            #[serde(borrow)]
            providers: BTreeMap<String, RawProvider<'a>>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawProvider<'a> {
            #[serde(borrow)]
            resources: Vec<&'a serde_json::value::RawValue>,
        }
        let raw: Raw = serde_json::from_str(text).map_err(located)?;
        let wanted: rustc_hash::FxHashMap<&str, &Resource> =
            like.iter().map(|r| (r.address.as_str(), r)).collect();
        let mut snapshot = Snapshot {
            format_version: raw.format_version,
            providers: BTreeMap::new(),
        };
        for (provider, contents) in raw.providers {
            let mut resources = Vec::with_capacity(contents.resources.len());
            for item in contents.resources {
                let mut resource: Resource = serde_json::from_str(item.get())
                    .map_err(|error| located_within(text, item.get(), &error))?;
                if let Some(want) = wanted.get(resource.address.as_str()) {
                    if want.attributes == resource.attributes {
                        resource.attributes = want.attributes.clone();
                    }
                }
                resources.push(resource);
            }
            snapshot
                .providers
                .insert(provider, ProviderSnapshot { resources });
        }
        for (provider, contents) in &snapshot.providers {
            for resource in &contents.resources {
                if &resource.provider != provider {
                    return Err(SnapshotError {
                        line: None,
                        column: None,
                        message: format!(
                            "resource `{}` names provider `{}` but is listed under `{provider}`",
                            resource.address, resource.provider
                        ),
                    });
                }
                if resource.kind == crate::resource::ResourceKind::KubernetesInventory {
                    // Revocations and ownership rest on it: a record writ
                    // cannot read is an error, never an empty record.
                    crate::ownership::kubernetes::Inventory::of_resource(resource).map_err(
                        |message| SnapshotError {
                            line: None,
                            column: None,
                            message: format!("the inventory record {message}"),
                        },
                    )?;
                }
                if !resource.address.starts_with(&format!("{provider}/")) {
                    return Err(SnapshotError {
                        line: None,
                        column: None,
                        message: format!(
                            "resource address `{}` does not start with `{provider}/`",
                            resource.address
                        ),
                    });
                }
            }
        }
        Ok(snapshot)
    }

    /// Every resource, of every provider.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.providers.values().flat_map(|p| p.resources.iter())
    }

    /// Every resource, of every provider, taken out of the snapshot.
    pub fn into_resources(self) -> impl Iterator<Item = Resource> {
        self.providers.into_values().flat_map(|p| p.resources)
    }

    /// A snapshot holding the given resources, grouped by provider.
    pub fn from_resources(resources: impl IntoIterator<Item = Resource>) -> Snapshot {
        let mut snapshot = Snapshot {
            format_version: FORMAT_VERSION,
            providers: BTreeMap::new(),
        };
        for resource in resources {
            snapshot
                .providers
                .entry(resource.provider.clone())
                .or_default()
                .resources
                .push(resource);
        }
        for provider in snapshot.providers.values_mut() {
            provider.resources.sort_by(|a, b| a.address.cmp(&b.address));
        }
        snapshot
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_version_or_a_malformed_document_is_a_clear_error() {
        let error = Snapshot::parse(r#"{"format_version": 2, "providers": {}}"#).unwrap_err();
        assert!(error.message.contains("version 1"), "{error}");
        let error = Snapshot::parse(
            "{\n  \"format_version\": 1,\n  \"providers\": {\"aws.prod\": {\"resourcez\": []}}\n}",
        )
        .unwrap_err();
        assert_eq!(error.line, Some(3));
        assert!(error.message.contains("resourcez"), "{error}");
        let error = Snapshot::parse("[1, 2").unwrap_err();
        assert!(error.line.is_some());
        assert!(Snapshot::parse(r#"{"format_version": 1, "providers": {}}"#).is_ok());
    }

    #[test]
    fn objects_as_the_source_wants_share_its_attributes_and_errors_inside_one_are_placed() {
        let object = |name: &str, version: u32| Resource {
            address: format!("aws.prod/role/{name}"),
            provider: "aws.prod".into(),
            kind: crate::resource::ResourceKind::AwsRole,
            agent: None,
            attributes: [("v".to_string(), serde_json::json!(version))].into(),
        };
        let wanted = vec![object("a", 1), object("b", 1)];
        let text = Snapshot::from_resources(vec![object("a", 1), object("b", 2), object("c", 1)])
            .to_json();
        let read = Snapshot::parse_sharing(&text, &wanted).unwrap();
        let read: Vec<&Resource> = read.resources().collect();
        assert_eq!(read.len(), 3);
        assert!(
            read[0].attributes.shares(&wanted[0].attributes),
            "as wanted: shared"
        );
        assert!(
            !read[1].attributes.shares(&wanted[1].attributes),
            "unlike: its own"
        );
        assert_eq!(*read[1].attributes, *object("b", 2).attributes);
        assert_eq!(
            read,
            Snapshot::parse(&text)
                .unwrap()
                .resources()
                .collect::<Vec<_>>()
        );
        // An unknown field inside the third object, on the line it is on.
        let broken = text.replacen("\"kind\": \"aws_role\"", "\"kinds\": \"aws_role\"", 1);
        let line = broken
            .lines()
            .position(|l| l.contains("\"kinds\""))
            .unwrap()
            + 1;
        let error = Snapshot::parse(&broken).unwrap_err();
        assert_eq!(error.line, Some(line), "{error}");
        assert!(error.message.contains("kinds"), "{error}");
    }
}
