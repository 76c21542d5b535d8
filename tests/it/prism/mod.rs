//! GitHub's published OpenAPI description, served by Stoplight Prism in
//! mock mode with `--errors`: a request that does not match the description
//! (path, parameters, body) is answered 4xx with the violation, so a test
//! that gets 2xx answers knows writ's requests are ones GitHub documents.
//!
//! The harness installs both npm packages (pinned) into a folder under
//! `target/` once, cuts the description down to the operations writ calls
//! and everything they reference (prism then starts in a second instead of
//! loading 13 MB), and starts a server per test on a free port. Without
//! npm or the registry the test is skipped with a message; with
//! `WRIT_REQUIRE_PRISM` set (as `.ci/run` does) it fails instead.

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const PRISM_VERSION: &str = "5.14.2";
pub const OPENAPI_VERSION: &str = "23.0.2";

/// The operations writ sends, by path and method.
const OPERATIONS: &[(&str, &str)] = &[
    (
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        "get",
    ),
    (
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        "post",
    ),
    (
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        "patch",
    ),
    ("/repos/{owner}/{repo}/commits/{commit_sha}/pulls", "get"),
    ("/orgs/{org}", "get"),
    ("/repos/{owner}/{repo}", "get"),
    (
        "/repos/{owner}/{repo}/actions/oidc/customization/sub",
        "get",
    ),
    ("/orgs/{org}/actions/oidc/customization/sub", "get"),
    ("/repos/{owner}/{repo}/keys", "get"),
    ("/repos/{owner}/{repo}/actions/secrets", "get"),
    ("/repos/{owner}/{repo}/contents/{path}", "get"),
    ("/orgs/{org}/installations", "get"),
    ("/orgs/{org}/personal-access-tokens", "get"),
    ("/repos/{owner}/{repo}/actions/permissions/workflow", "get"),
    ("/repos/{owner}/{repo}/actions/permissions/workflow", "put"),
    (
        "/repos/{owner}/{repo}/environments/{environment_name}",
        "get",
    ),
    (
        "/repos/{owner}/{repo}/environments/{environment_name}",
        "put",
    ),
    (
        "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies",
        "get",
    ),
    (
        "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies",
        "post",
    ),
    (
        "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies/{branch_policy_id}",
        "delete",
    ),
    ("/orgs/{org}/installation", "get"),
    ("/app/installations/{installation_id}/access_tokens", "post"),
    ("/app/installations/{installation_id}/suspended", "put"),
    ("/app/installations/{installation_id}/suspended", "delete"),
    ("/installation/token", "delete"),
    ("/installation/repositories", "get"),
];

fn folder() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("prism-{PRISM_VERSION}-openapi-{OPENAPI_VERSION}"))
}

fn references(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Value::String(target)) => into.push(target.clone()),
                    _ => references(item, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, into)),
        _ => {}
    }
}

/// The description with only [`OPERATIONS`] and what they reference.
fn subset(full: &Value) -> Result<Value, String> {
    let mut paths = Map::new();
    for (path, method) in OPERATIONS {
        let item = full["paths"]
            .get(*path)
            .ok_or_else(|| format!("the description has no path {path}"))?;
        let operation = item
            .get(*method)
            .ok_or_else(|| format!("the description has no {method} {path}"))?;
        // Answers are generated from the response schemas, not taken from
        // the documented examples: some of GitHub's examples do not match
        // its own schemas (a pull request's `requested_teams` lack `type`),
        // which prism with `--errors` reports as a 500. Only requests are
        // under test here.
        let mut operation = operation.clone();
        if let Some(Value::Object(responses)) = operation.get_mut("responses") {
            for response in responses.values_mut() {
                // No answer headers either, but for the comments' listing
                // (whose documented `Link` the test reads, not follows):
                // the documented `Link` of a listing points at github.com,
                // where writ will not follow (the token would go with it).
                if let Value::Object(response) = response {
                    if !path.ends_with("/comments") {
                        response.remove("headers");
                    }
                }
                if let Some(Value::Object(content)) = response.get_mut("content") {
                    for media in content.values_mut() {
                        if let Value::Object(media) = media {
                            media.remove("examples");
                            media.remove("example");
                        }
                    }
                }
            }
        }
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[*method] = operation;
        if let Some(parameters) = item.get("parameters") {
            entry["parameters"] = parameters.clone();
        }
    }
    let paths = Value::Object(paths);
    let mut pending = Vec::new();
    references(&paths, &mut pending);
    let mut seen = BTreeSet::new();
    let mut components = Map::new();
    while let Some(reference) = pending.pop() {
        if !seen.insert(reference.clone()) {
            continue;
        }
        let mut parts = reference.trim_start_matches("#/components/").splitn(2, '/');
        let (Some(section), Some(name)) = (parts.next(), parts.next()) else {
            return Err(format!("a reference writ cannot follow: {reference}"));
        };
        let target = full["components"][section]
            .get(name)
            .ok_or_else(|| format!("a dangling reference: {reference}"))?;
        references(target, &mut pending);
        components
            .entry(section.to_string())
            .or_insert_with(|| Value::Object(Map::new()))[name] = target.clone();
    }
    let mut out = Map::new();
    for key in ["openapi", "info", "servers", "tags", "externalDocs"] {
        if let Some(value) = full.get(key) {
            out.insert(key.to_string(), value.clone());
        }
    }
    out.insert("paths".into(), paths);
    out.insert("components".into(), Value::Object(components));
    Ok(Value::Object(out))
}

/// Installs prism and the description once per run; the reason when that
/// cannot be done.
fn install() -> &'static Result<PathBuf, String> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let folder = folder();
        let spec = folder.join("github-subset.json");
        let full = folder.join("node_modules/@octokit/openapi/generated/api.github.com.json");
        if !folder.join("node_modules/.bin/prism").exists() || !full.exists() {
            npm_install(&folder)?;
        }
        // Cut afresh each run (a second or two), so it never goes stale.
        let text = std::fs::read_to_string(&full)
            .map_err(|e| format!("reading {}: {e}", full.display()))?;
        let full: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let cut = subset(&full)?;
        std::fs::write(&spec, cut.to_string()).map_err(|e| e.to_string())?;
        Ok(spec)
    })
}

fn npm_install(folder: &Path) -> Result<(), String> {
    std::fs::create_dir_all(folder).map_err(|e| e.to_string())?;
    let output = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
        .arg(folder)
        .arg(format!("@stoplight/prism-cli@{PRISM_VERSION}"))
        .arg(format!("@octokit/openapi@{OPENAPI_VERSION}"))
        .output()
        .map_err(|e| format!("running npm: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "npm install failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

pub struct Prism {
    pub port: u16,
    child: Child,
}

impl Prism {
    /// A running mock server, or `None` (skip) when it cannot be installed
    /// and the run does not require it.
    pub fn start() -> Option<Prism> {
        let spec = match install() {
            Ok(spec) => spec.clone(),
            Err(reason) => {
                assert!(
                    std::env::var_os("WRIT_REQUIRE_PRISM").is_none(),
                    "prism is required (WRIT_REQUIRE_PRISM) but: {reason}"
                );
                eprintln!("skipped: cannot install prism: {reason}");
                return None;
            }
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(folder().join("node_modules/.bin/prism"))
            .args([
                "mock",
                "--errors",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .arg(&spec)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prism starts");
        let prism = Prism { port, child };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "prism did not start in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(prism)
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
