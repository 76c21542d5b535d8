//! The documented JSON Schemas (`docs/*.schema.json`) stay true: the
//! example's snapshot and every golden plan are validated against them.
//! The validator covers the part of JSON Schema those files use.

use serde_json::Value;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

/// Errors of `value` against `schema`, as JSON-pointer-ish paths.
fn validate(
    root_schema: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/$defs/");
        return validate(root_schema, &root_schema["$defs"][name], value, at, errors);
    }
    if let Some(expected) = schema.get("const") {
        if value != expected {
            errors.push(format!("{at}: expected {expected}, found {value}"));
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        if !choices.contains(value) {
            errors.push(format!("{at}: {value} is not one of {choices:?}"));
        }
    }
    if let Some(kinds) = schema.get("type") {
        let kinds: Vec<&str> = match kinds {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = kinds.contains(&actual) || (actual == "integer" && kinds.contains(&"number"));
        if !ok {
            errors.push(format!("{at}: expected {kinds:?}, found {actual}"));
            return;
        }
    }
    if let Some(minimum) = schema.get("minimum").and_then(Value::as_i64) {
        if value.as_i64().is_some_and(|v| v < minimum) {
            errors.push(format!("{at}: below {minimum}"));
        }
    }
    if let Value::Object(object) = value {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                errors.push(format!("{at}: missing `{name}`"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in object {
            let path = format!("{at}/{key}");
            match properties.and_then(|p| p.get(key)) {
                Some(property) => validate(root_schema, property, item, &path, errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => errors.push(format!("{path}: not allowed")),
                    Some(extra @ Value::Object(_)) => {
                        validate(root_schema, extra, item, &path, errors)
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (index, item) in items.iter().enumerate() {
            validate(
                root_schema,
                item_schema,
                item,
                &format!("{at}/{index}"),
                errors,
            );
        }
    }
}

pub fn assert_valid(schema_path: &str, value: &Value, what: &str) {
    let schema = load(schema_path);
    let mut errors = Vec::new();
    validate(&schema, &schema, value, "", &mut errors);
    assert!(
        errors.is_empty(),
        "{what} does not match {schema_path}:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_example_snapshot_matches_the_snapshot_schema() {
    assert_valid(
        "docs/snapshot.schema.json",
        &load("examples/acme/snapshot.json"),
        "the example snapshot",
    );
}

#[test]
fn every_golden_json_plan_matches_the_plan_schema() {
    let folder = root().join("tests/snapshots/plans");
    let mut checked = 0;
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("json@") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // An insta snapshot: a front matter between `---` lines, then the body.
        let body = text.splitn(3, "---\n").nth(2).expect("an insta snapshot");
        let plan: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_valid("docs/plan.schema.json", &plan, &name);
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} plans checked");
}

#[test]
fn the_validator_rejects_what_the_schema_forbids() {
    let schema = load("docs/plan.schema.json");
    let plan = serde_json::json!({"format_version": 2, "project": 3, "extra": true, "summary": {}, "changes": [], "drift": [], "unmanaged": [], "conflicts": [], "permission_delta": []});
    let mut errors = Vec::new();
    validate(&schema, &schema, &plan, "", &mut errors);
    let text = errors.join("\n");
    assert!(text.contains("/format_version"), "{text}");
    assert!(text.contains("/project: expected"), "{text}");
    assert!(text.contains("/extra: not allowed"), "{text}");
    assert!(text.contains("/summary: missing `create`"), "{text}");
}

#[test]
fn the_example_graph_matches_the_graph_schema() {
    let example = root().join("examples/acme");
    for question in [
        &[][..],
        &["--from", "github:acme/platform"][..],
        &["--to", "arn:aws:s3:::acme-invoices/*"][..],
        &["--agent", "billing_bot"][..],
    ] {
        let mut args = vec!["graph", "--format", "json"];
        args.extend_from_slice(question);
        let output = crate::binary::writ(&example, &args);
        assert!(output.status.success(), "{}", crate::binary::text(&output));
        let value: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_valid("docs/graph.schema.json", &value, &format!("{question:?}"));
    }
}

#[test]
fn the_example_usage_report_matches_the_usage_schema() {
    let output = crate::binary::writ(
        &root().join("examples/acme"),
        &[
            "usage",
            "--from",
            root().join("examples/acme/usage").to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert!(output.status.success(), "{}", crate::binary::text(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(!report["agents"].as_array().unwrap().is_empty());
    assert_valid(
        "docs/usage.schema.json",
        &report,
        "the example's usage report",
    );
}
