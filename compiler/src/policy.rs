//! IAM policy documents in canonical form, and the digest writ stores on
//! the objects it owns.
//!
//! Canonical form: `Version` always `2012-10-17`; every field that may be a
//! single value or a list is a sorted, de-duplicated list; known actions are
//! spelt as the AWS catalogue spells them (IAM compares them without case);
//! condition values are sorted, since IAM reads them as a set (any of);
//! statements are sorted. Two documents that IAM treats alike compare equal,
//! so a plan never shows a change that is only a reordering.

use serde_json::{Map, Value};

pub const VERSION: &str = "2012-10-17";

/// The canonical form of a policy document. Anything that is not a policy
/// document (a string that is not JSON, a number) is returned unchanged so
/// that the plan still shows it.
pub fn canonical(document: &Value) -> Value {
    canonical_owned(document.clone())
}

/// [`canonical`], taking the document: nothing in it is copied (lowering
/// makes tens of thousands of documents only to put them in this form).
pub fn canonical_owned(document: Value) -> Value {
    let document = match document {
        // Live APIs return documents as (possibly URL-encoded) strings.
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(parsed) => parsed,
            Err(_) => return Value::String(text),
        },
        other => other,
    };
    let Value::Object(mut object) = document else {
        return document;
    };
    let statements = match object.remove("Statement") {
        Some(Value::Array(items)) => items,
        Some(single) => vec![single],
        None => Vec::new(),
    };
    let mut statements: Vec<Value> = statements.into_iter().map(canonical_statement).collect();
    if statements.len() > 1 {
        statements.sort_by_cached_key(sort_key);
        statements.dedup();
    }
    object.insert("Version".into(), Value::String(VERSION.into()));
    object.insert("Statement".into(), Value::Array(statements));
    Value::Object(object)
}

fn sort_key(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn canonical_statement(statement: Value) -> Value {
    let Value::Object(fields) = statement else {
        return statement;
    };
    let mut out = Map::new();
    for (key, value) in fields {
        let value = match key.as_str() {
            "Action" | "NotAction" => string_set(value, |action| canonical_action(&action)),
            "Resource" | "NotResource" => string_set(value, |resource| resource),
            "Principal" | "NotPrincipal" => canonical_principal(value),
            "Condition" => canonical_condition(value),
            _ => value,
        };
        out.insert(key, value);
    }
    Value::Object(out)
}

/// A single string or a list of strings as a sorted, de-duplicated list.
fn string_set(value: Value, normalise: impl Fn(String) -> String) -> Value {
    let mut items: Vec<String> = match value {
        Value::String(one) => vec![normalise(one)],
        Value::Array(many) => many
            .into_iter()
            .map(|item| match item {
                Value::String(text) => normalise(text),
                other => other.to_string(),
            })
            .collect(),
        other => return other,
    };
    items.sort();
    items.dedup();
    Value::Array(items.into_iter().map(Value::String).collect())
}

/// `S3:getobject` → `s3:GetObject`; unknown or wildcard actions keep their
/// name with the service prefix in lower case.
pub fn canonical_action(action: &str) -> String {
    let Some((service, name)) = action.split_once(':') else {
        return action.to_string();
    };
    let service = service.to_ascii_lowercase();
    if !crate::pattern::has_wildcard(name) {
        if let Some(known) = crate::facts::aws::catalogue()
            .service(&service)
            .and_then(|s| s.action(name))
        {
            return format!("{service}:{}", known.name);
        }
    }
    format!("{service}:{name}")
}

fn canonical_principal(value: Value) -> Value {
    match value {
        Value::Object(kinds) => Value::Object(
            kinds
                .into_iter()
                .map(|(kind, ids)| (kind, string_set(ids, |id| id)))
                .collect(),
        ),
        other => other,
    }
}

fn canonical_condition(value: Value) -> Value {
    match value {
        Value::Object(operators) => Value::Object(
            operators
                .into_iter()
                .map(|(operator, keys)| {
                    let keys = match keys {
                        Value::Object(keys) => Value::Object(
                            keys.into_iter()
                                .map(|(key, values)| {
                                    let values = match values {
                                        Value::Bool(b) => Value::String(b.to_string()),
                                        Value::Number(n) => Value::String(n.to_string()),
                                        other => other,
                                    };
                                    (key, string_set(values, |value| value))
                                })
                                .collect(),
                        ),
                        other => other,
                    };
                    (operator, keys)
                })
                .collect(),
        ),
        other => other,
    }
}

/// The digest writ stores on an object it owns: FNV-1a (64 bits) over the
/// canonical JSON of what writ set. It tells drift (content changed outside
/// writ, so it no longer matches its digest) from intended change.
pub fn digest(value: &Value) -> String {
    let mut hasher = Digester::new();
    hasher.value(value);
    hasher.finish()
}

/// FNV-1a over what is written to it: values are serialised straight into
/// the hash, with nothing allocated or copied.
pub struct Digester(u64);

impl Digester {
    pub fn new() -> Digester {
        Digester(0xcbf2_9ce4_8422_2325)
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// A value as compact JSON, followed by a separator.
    pub fn value(&mut self, value: &impl serde::Serialize) {
        // Writing into the hasher cannot fail.
        let _ = serde_json::to_writer(&mut *self, value);
        self.bytes(b"\x1f");
    }

    pub fn finish(&self) -> String {
        format!("{:016x}", self.0)
    }
}

impl Default for Digester {
    fn default() -> Digester {
        Digester::new()
    }
}

impl std::io::Write for Digester {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length IAM counts for a policy: its JSON without white space.
pub fn size(document: &Value) -> usize {
    serde_json::to_string(document).map_or(0, |text| text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Canonical documents, and every digest, rest on `serde_json` keeping
    /// an object's keys sorted. A crate in the same build that turns on its
    /// `preserve_order` feature changes that for all of writ (Cedar's do:
    /// see benches/cedar/Cargo.toml); this says so at once.
    #[test]
    fn json_objects_keep_their_keys_sorted() {
        let value = json!({"b": 1, "a": {"d": 2, "c": 3}});
        assert_eq!(
            value.to_string(),
            r#"{"a":{"c":3,"d":2},"b":1}"#,
            "serde_json's preserve_order is on in this build: writ's canonical JSON needs it off"
        );
    }

    #[test]
    fn equivalent_documents_compare_equal() {
        let a = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:ListBucket", "S3:getobject"], "Resource": "arn:aws:s3:::b",
                 "Condition": {"StringEquals": {"aws:SourceVpc": ["vpc-2", "vpc-1"]}}},
                {"Effect": "Deny", "Action": "iam:*", "Resource": ["*"]}
            ]
        });
        let b = json!({
            "Statement": [
                {"Effect": "Deny", "Action": ["iam:*"], "Resource": "*"},
                {"Resource": ["arn:aws:s3:::b"], "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetObject"],
                 "Condition": {"StringEquals": {"aws:SourceVpc": ["vpc-1", "vpc-2"]}}}
            ],
            "Version": "2008-10-17"
        });
        assert_eq!(canonical(&a), canonical(&b));
        let as_string = Value::String(serde_json::to_string(&a).unwrap());
        assert_eq!(canonical(&as_string), canonical(&b));
        assert_eq!(digest(&canonical(&a)), digest(&canonical(&b)));
    }

    #[test]
    fn different_documents_do_not() {
        let a = json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}});
        let b = json!({"Statement": {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}});
        let c = json!({"Statement": {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}});
        let d = json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::B/*"}});
        assert_ne!(canonical(&a), canonical(&b));
        assert_ne!(canonical(&a), canonical(&c));
        assert_ne!(canonical(&a), canonical(&d), "resources are case-sensitive");
        assert_ne!(digest(&canonical(&a)), digest(&canonical(&b)));
    }
}
