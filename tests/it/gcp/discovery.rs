//! Google's own description of its APIs: the discovery documents of IAM
//! v1, Resource Manager v3, Storage v1, Cloud Asset v1 and IAM Service
//! Account Credentials v1, as the PyPI package
//! `google-api-python-client` (pinned) ships them. The harness downloads the
//! package into `target/` once and takes the documents out of it; a
//! request is then checked against them: a method with that HTTP verb and
//! path exists, its query parameters are the method's, and its body uses
//! only declared fields, of the declared types, all the way down.
//!
//! Without Python or the registry the check is skipped with a message;
//! with `WRIT_REQUIRE_DISCOVERY` set (as `.ci/run` does) it fails.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const CLIENT_VERSION: &str = "2.202.0";
const DOCUMENTS: &[&str] = &[
    "iam.v1",
    "cloudresourcemanager.v3",
    "storage.v1",
    "cloudasset.v1",
    "iamcredentials.v1",
];

fn folder() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("google-discovery-{CLIENT_VERSION}"))
}

/// The documents, or why they cannot be had here.
pub fn documents() -> &'static Result<Vec<Value>, String> {
    static DOCS: OnceLock<Result<Vec<Value>, String>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let folder = folder();
        let read = || -> Result<Vec<Value>, String> {
            DOCUMENTS
                .iter()
                .map(|name| {
                    let text = std::fs::read_to_string(folder.join(format!("{name}.json")))
                        .map_err(|e| e.to_string())?;
                    serde_json::from_str(&text).map_err(|e| e.to_string())
                })
                .collect()
        };
        if let Ok(documents) = read() {
            return Ok(documents);
        }
        let run = |command: &mut Command, what: &str| -> Result<(), String> {
            let output = command.output().map_err(|e| format!("{what}: {e}"))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!("{what} failed: {}", String::from_utf8_lossy(&output.stderr).trim()))
            }
        };
        let venv = folder.join("venv");
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
        run(
            Command::new(&python).args(["-m", "venv"]).arg(&venv),
            "creating a Python virtual environment",
        )?;
        run(
            Command::new(venv.join("bin/pip"))
                .args(["download", "--quiet", "--disable-pip-version-check", "--no-deps", "-d"])
                .arg(&folder)
                .arg(format!("google-api-python-client=={CLIENT_VERSION}")),
            "downloading google-api-python-client from PyPI",
        )?;
        let script = format!(
            "import glob, zipfile\nz = zipfile.ZipFile(glob.glob('{dir}/google_api_python_client-*.whl')[0])\nfor name in {names:?}:\n    open('{dir}/' + name + '.json', 'wb').write(z.read('googleapiclient/discovery_cache/documents/' + name + '.json'))\n",
            dir = folder.display(),
            names = DOCUMENTS,
        );
        run(Command::new(venv.join("bin/python")).args(["-c", &script]), "taking the documents out")?;
        read()
    })
}

/// Every method of a document: (HTTP verb, path under the API's host,
/// parameters, request schema).
fn methods(document: &Value) -> Vec<(String, String, Vec<String>, Option<String>)> {
    fn walk(
        resource: &Value,
        service: &str,
        into: &mut Vec<(String, String, Vec<String>, Option<String>)>,
    ) {
        for method in resource["methods"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            let path = method["flatPath"]
                .as_str()
                .or(method["path"].as_str())
                .unwrap_or_default();
            into.push((
                method["httpMethod"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                format!("/{service}{path}"),
                method["parameters"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default(),
                method["request"]["$ref"].as_str().map(str::to_string),
            ));
        }
        for child in resource["resources"]
            .as_object()
            .into_iter()
            .flat_map(|r| r.values())
        {
            walk(child, service, into);
        }
    }
    let mut found = Vec::new();
    walk(
        document,
        document["servicePath"].as_str().unwrap_or_default(),
        &mut found,
    );
    found
}

/// Does a path template (`/v1/projects/{projectsId}/x/{xId}:verb`) match
/// a path?
fn path_matches(template: &str, path: &str) -> bool {
    let (template, path): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| match t.split_once('{') {
                None => t == p,
                Some((before, rest)) => {
                    let after = rest.split_once('}').map_or("", |(_, a)| a);
                    p.len() > before.len() + after.len()
                        && p.starts_with(before)
                        && p.ends_with(after)
                }
            })
}

/// Is `value` what `schema` declares? Names what is not.
fn conforms(document: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(name) = schema["$ref"].as_str() {
        return conforms(document, &document["schemas"][name], value, at, errors);
    }
    match (schema["type"].as_str(), value) {
        (_, Value::Null) => {}
        (Some("object") | None, Value::Object(map)) => {
            for (key, item) in map {
                match schema["properties"].get(key) {
                    Some(property) => {
                        conforms(document, property, item, &format!("{at}.{key}"), errors)
                    }
                    None => match schema.get("additionalProperties") {
                        Some(extra) => {
                            conforms(document, extra, item, &format!("{at}.{key}"), errors)
                        }
                        None => errors.push(format!("{at}.{key} is not declared")),
                    },
                }
            }
        }
        (Some("array"), Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                conforms(
                    document,
                    &schema["items"],
                    item,
                    &format!("{at}[{index}]"),
                    errors,
                );
            }
        }
        (Some("string"), Value::String(_)) | (Some("boolean"), Value::Bool(_)) => {}
        (Some("integer" | "number"), Value::Number(_)) => {}
        // Google takes 64-bit integers as strings too.
        (Some("integer"), Value::String(text)) if text.parse::<i64>().is_ok() => {}
        (Some("any"), _) => {}
        (expected, _) => errors.push(format!("{at} is {value}, not {}", expected.unwrap_or("?"))),
    }
}

/// What is wrong with one request against Google's description (nothing:
/// an empty list).
pub fn check(documents: &[Value], method: &str, target: &str, body: &Value) -> Vec<String> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    for document in documents {
        for (verb, template, parameters, request) in methods(document) {
            if verb != method || !path_matches(&template, path) {
                continue;
            }
            let mut errors = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let name = pair.split_once('=').map_or(pair, |(n, _)| n);
                if !parameters.iter().any(|p| p == name) {
                    errors.push(format!(
                        "query parameter `{name}` is not one of {template}'s"
                    ));
                }
            }
            match (request, body) {
                (None, Value::Null) => {}
                (None, Value::Object(map)) if map.is_empty() => {}
                (None, _) => errors.push(format!("{method} {template} takes no body")),
                (Some(schema), body) => conforms(
                    document,
                    &document["schemas"][schema.as_str()],
                    body,
                    "body",
                    &mut errors,
                ),
            }
            return errors;
        }
    }
    vec![format!("no method {method} {path} in Google's description")]
}
