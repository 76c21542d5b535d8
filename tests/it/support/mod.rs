//! Shared helpers for the integration tests: checking a source text the way
//! `writ check` and `writ test` do, with a fixed "today".

use serde_json::Value;
use writ_compiler::address::aws_role_of as role_of;
use writ_compiler::resource::{Resource, ResourceKind};
use writ_compiler::values::Date;
use writ_compiler::{eval, CheckOptions, Checked, Diagnostic, SourceMap};

/// The date every test runs on, so that `expires` findings never drift.
pub fn today() -> Date {
    Date {
        year: 2026,
        month: 11,
        day: 28,
    }
}

pub fn sources(name: &str, text: &str) -> SourceMap {
    let mut sources = SourceMap::new();
    sources.add(name, text);
    sources
}

pub fn check(sources: &SourceMap) -> Checked {
    writ_compiler::check(sources, &CheckOptions { today: today() })
}

/// What `writ check` reports, then (when the project has no errors) what
/// `writ test` adds.
pub fn findings(sources: &SourceMap) -> Vec<Diagnostic> {
    let checked = check(sources);
    let mut diagnostics = checked.diagnostics.clone();
    if !checked.has_errors() {
        // `writ check` lowers too, and reports what lowering refuses.
        let desired = writ_compiler::lower::lower(&checked.model, "ui");
        diagnostics.extend(desired.diagnostics);
        writ_compiler::diagnostic::sort_in_source_order(&mut diagnostics);
        diagnostics.extend(eval::run_tests(&checked.model).diagnostics);
    }
    diagnostics
}

/// What `writ check --graph` reports with the default `[graph]
/// max_identities`: [`findings`], then the access graph's.
pub fn findings_with_graph(sources: &SourceMap) -> Vec<Diagnostic> {
    let mut diagnostics = findings(sources);
    let checked = check(sources);
    if !checked.has_errors() {
        let graph = writ_compiler::graph::Graph::build(&checked.model, "ui");
        diagnostics.extend(writ_compiler::graph::findings(&graph, 3));
        writ_compiler::diagnostic::sort_in_source_order(&mut diagnostics);
    }
    diagnostics
}

/// Recomputes the digest of the role at `address` (or of the managed policy).
pub fn restamp(observed: &mut [Resource], address: &str) {
    // The digest is taken over canonical documents, as the plan reads them.
    let inline: Vec<Resource> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::AwsRolePolicy && role_of(&r.address) == address)
        .map(writ_compiler::plan::normalised)
        .collect();
    let Some(target) = observed.iter_mut().find(|r| r.address == address) else {
        panic!("no resource {address} to restamp");
    };
    let digest =
        writ_compiler::ownership::content_digest(&writ_compiler::plan::normalised(target), &inline);
    if let Some(Value::Object(tags)) = target.attributes.get_mut("tags") {
        tags.insert(
            writ_compiler::ownership::aws::DIGEST_TAG.into(),
            Value::String(digest),
        );
    }
}

/// Edits to an observed state, as `live.json` files write them (see
/// tests/it/plans.rs).
pub fn apply_edits(observed: &mut Vec<Resource>, edits: &Value) {
    for edit in edits.as_array().expect("live.json is a list") {
        match edit["op"].as_str() {
            Some("set") => {
                let address = edit["address"].as_str().unwrap();
                let attribute = edit["attribute"].as_str().unwrap();
                let resource = observed
                    .iter_mut()
                    .find(|r| r.address == address)
                    .unwrap_or_else(|| panic!("no resource {address}"));
                match attribute.strip_prefix("tags.") {
                    Some(tag) => {
                        resource.attributes.get_mut("tags").unwrap()[tag] = edit["value"].clone();
                    }
                    None => {
                        resource
                            .attributes
                            .insert(attribute.to_string(), edit["value"].clone());
                    }
                }
                if edit["restamp"].as_bool() == Some(true) {
                    restamp(observed, role_of(address));
                }
            }
            Some("remove") => {
                let address = edit["address"].as_str().unwrap();
                let before = observed.len();
                observed.retain(|r| r.address != address);
                assert!(observed.len() < before, "no resource {address} to remove");
            }
            Some("add") => {
                observed.push(serde_json::from_value(edit["resource"].clone()).expect("a resource"))
            }
            other => panic!("unknown edit {other:?}"),
        }
    }
}

/// A small deterministic generator (xorshift), so that a failure of a
/// randomised test is repeatable from its seed.
pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// An npm package installed once into `target/` (pinned by the version in
/// `package`): its folder, once `file` (a path in it) is there; `None`
/// (the test skipped) when npm cannot install it, unless `require` is set
/// in the environment, as `.ci/run` sets it.
pub fn npm_package(package: &str, file: &str, require: &str) -> Option<std::path::PathBuf> {
    let folder =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(package.replace(['@', '/'], "-"));
    if folder.join(file).exists() {
        return Some(folder);
    }
    // No install scripts and no optional packages: they may download from
    // outside the registry (vsce's `keytar` builds from GitHub).
    let installed = std::process::Command::new("npm")
        .args([
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--omit=optional",
            "--prefix",
        ])
        .arg(&folder)
        .arg(package)
        .output();
    let reason = match installed {
        Ok(output) if output.status.success() && folder.join(file).exists() => return Some(folder),
        Ok(output) => format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            if output.status.success() {
                format!("(no `{file}` after installing)")
            } else {
                String::new()
            }
        ),
        Err(error) => error.to_string(),
    };
    if std::env::var_os(require).is_some() {
        panic!("{package} is required ({require} is set) but unavailable: {reason}");
    }
    eprintln!("skipping: {package} is unavailable here: {reason}");
    None
}

// The benchmarks' estates and these tests share what an apply leaves.
#[path = "../../../benches/common/estate.rs"]
pub mod estate;

/// What an apply of `desired` leaves in the providers: the objects, a UID
/// on each Kubernetes object, and per cluster the inventory record of the
/// service accounts writ made.
pub fn as_applied(
    desired: writ_compiler::lower::Desired,
) -> Vec<writ_compiler::resource::Resource> {
    estate::applied(desired)
}

/// A Python virtual environment under `target/` named `name`, with
/// `requirements` installed from PyPI (pinned by the caller), made once
/// and kept: its `python`, or why it cannot be had here.
pub fn python_venv(name: &str, requirements: &[&str]) -> Result<std::path::PathBuf, String> {
    use std::process::Command;
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin/python");
    let stamp = requirements.join(" ");
    if std::fs::read_to_string(venv.join("installed"))
        .ok()
        .as_deref()
        == Some(stamp.as_str())
        && python.exists()
    {
        return Ok(python);
    }
    let run = crate::moto::run_step;
    let system = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    run(
        Command::new(system).args(["-m", "venv"]).arg(&venv),
        "creating a Python virtual environment",
    )?;
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(requirements),
        &format!("installing {stamp} from PyPI"),
    )?;
    std::fs::write(venv.join("installed"), &stamp).map_err(|e| e.to_string())?;
    Ok(python)
}

/// Copies a folder (files and folders only; not what an earlier `npm
/// install` left in `node_modules`).
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "node_modules" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
