//! Tidy: the invariants ARCHITECTURE.md writes down, checked on every run,
//! in the style of rust-analyzer's tidy tests.
//! - The compiler is pure: no file system, environment, clock, network,
//!   async runtime or I/O crate in its source or its dependencies.
//! - The code map names every file and folder of `compiler/src`,
//!   `providers/*/src` and `src/`, and nothing that does not exist.
//! - Every diagnostic code has a section in `docs/diagnostics.md`.
//! - No module of the binary imports one above it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `.rs` file and every folder under `folder`, relative to the root.
fn walk(folder: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            found.push(path.clone());
            walk(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

fn relative(path: &Path) -> String {
    let text = path
        .strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    if path.is_dir() {
        format!("{text}/")
    } else {
        text
    }
}

fn source_trees() -> Vec<PathBuf> {
    let mut trees = vec![root().join("compiler/src"), root().join("src")];
    let mut providers: Vec<PathBuf> = std::fs::read_dir(root().join("providers"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    providers.sort();
    trees.extend(providers);
    trees
}

#[test]
fn the_compiler_is_pure() {
    let mut files = Vec::new();
    walk(&root().join("compiler/src"), &mut files);
    let forbidden = [
        "std::fs",
        "std::env",
        "std::time",
        "std::net",
        "std::process",
        "std::io::stdin",
        "std::io::stdout",
        "std::io::stderr",
        "tokio",
        "async fn",
        ".await",
        "Timestamp::now",
        "Zoned::now",
        "println!",
        "eprintln!",
        "print!(",
        "eprint!(",
        "include_bytes!(\"/",
    ];
    let mut found = Vec::new();
    for file in files.iter().filter(|f| f.is_file()) {
        for (number, line) in read(file).lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for word in forbidden {
                if code.contains(word) {
                    found.push(format!("{}:{}: `{word}`", relative(file), number + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the compiler must stay pure:\n{}",
        found.join("\n")
    );
    // Its dependencies: parsing, serde, the calendar and a hasher, nothing
    // that does I/O.
    let manifest: toml::Table = read(&root().join("compiler/Cargo.toml")).parse().unwrap();
    let dependencies: BTreeSet<&str> = manifest["dependencies"]
        .as_table()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let allowed: BTreeSet<&str> = [
        "pest",
        "pest_derive",
        "serde",
        "serde_json",
        "jiff",
        "rustc-hash",
    ]
    .into_iter()
    .collect();
    let extra: Vec<&&str> = dependencies.difference(&allowed).collect();
    assert!(
        extra.is_empty(),
        "the compiler may depend only on {allowed:?}; it also depends on {extra:?}"
    );
}

/// The paths the code map of ARCHITECTURE.md names: each row's backticked
/// paths, and the file names its text gives for a folder row.
fn code_map() -> (BTreeSet<String>, Vec<String>) {
    let text = read(&root().join("ARCHITECTURE.md"));
    let map = text
        .split("## Code map")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("ARCHITECTURE.md has a `## Code map` section");
    let mut named = BTreeSet::new();
    let mut problems = Vec::new();
    for row in map.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let paths: Vec<String> = cells[0]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        let described: Vec<String> = cells[1..]
            .join(" | ")
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|t| t.ends_with(".rs") || (t.ends_with('/') && !t.contains(' ')))
            .map(str::to_string)
            .collect();
        for path in &paths {
            if !root().join(path).exists() {
                problems.push(format!("the code map names `{path}`, which does not exist"));
            }
            named.insert(path.clone());
            // A folder row may name its files (`drift.rs`) in its text.
            if path.ends_with('/') {
                for file in &described {
                    if file.contains('/') && !file.ends_with('/') {
                        continue;
                    }
                    let full = format!("{path}{file}");
                    if root().join(&full).exists() {
                        named.insert(full);
                    }
                }
            }
        }
    }
    (named, problems)
}

#[test]
fn the_code_map_names_every_source_file_and_nothing_else() {
    let (named, mut problems) = code_map();
    for tree in source_trees() {
        let mut files = Vec::new();
        walk(&tree, &mut files);
        for file in files {
            let path = relative(&file);
            if !named.contains(&path) {
                problems.push(format!(
                    "`{path}` is not in the code map of ARCHITECTURE.md"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_diagnostic_code_has_a_section_in_the_docs() {
    let docs = read(&root().join("docs/diagnostics.md"));
    let sections: BTreeSet<&str> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let missing: Vec<&str> = writ_compiler::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|code| !sections.contains(code))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a `### `code`` section in docs/diagnostics.md: {missing:?}"
    );
    let unknown: Vec<&&str> = sections
        .iter()
        .filter(|s| !writ_compiler::Code::ALL.iter().any(|c| c.as_str() == **s))
        .collect();
    assert!(
        unknown.is_empty(),
        "sections for codes that do not exist: {unknown:?}"
    );
}

/// The binary's layers, lowest first: a module may use only modules of
/// lower layers (and, inside `commands/`, none of its siblings).
const LAYERS: &[&[&str]] = &[
    &["config"],
    &["project"],
    &["error"],
    &["clock", "term", "report", "render", "describe"],
    &["pipeline", "live", "actions", "lsp", "logs"],
    // The emergency brake, pulled by `writ revoke` and `writ serve`.
    &["brake"],
    // The server checks the source again on each reload.
    &["serve"],
    &["commands"],
    &["cli"],
    &["main", "lib"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn the_binary_calls_only_downwards() {
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    let mut problems = Vec::new();
    for file in files.iter().filter(|f| f.is_file()) {
        let path = relative(file);
        let module = path
            .trim_start_matches("src/")
            .split(['/', '.'])
            .next()
            .unwrap_or_default()
            .to_string();
        let Some(own) = layer_of(&module) else {
            problems.push(format!(
                "`{path}`: module `{module}` is in no layer of this test"
            ));
            continue;
        };
        let text = read(file);
        for used in LAYERS.iter().flat_map(|l| l.iter()) {
            let mentioned = text.contains(&format!("crate::{used}::"))
                || text.contains(&format!("crate::{used};"))
                || text.contains(&format!("crate::{used},"))
                || text.contains(&format!("crate::{{{used}"));
            if !mentioned || *used == module {
                continue;
            }
            if layer_of(used).is_some_and(|layer| layer >= own) {
                problems.push(format!(
                    "`{path}` ({module}) uses `{used}`, which is not below it"
                ));
            }
        }
        if module == "commands"
            && !path.ends_with("/mod.rs")
            && (text.contains("crate::commands::") || text.contains("super::"))
        {
            problems.push(format!("`{path}`: a command uses another command"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The IAM permissions docs/aws.md lists are exactly what the AWS provider
/// calls: a missing one fails in production, an extra one is more than
/// writ needs.
#[test]
fn the_documented_iam_permissions_are_the_operations_the_provider_calls() {
    let mut called = BTreeSet::new();
    let mut files = Vec::new();
    walk(&root().join("providers/aws/src"), &mut files);
    for file in files.iter().filter(|f| f.is_file()) {
        let text = read(file);
        for (index, _) in text.match_indices("call!(") {
            // `call!(self, "Operation", …)`, maybe over several lines.
            let rest = &text[index..];
            if let Some(start) = rest.find('"') {
                let name: String = rest[start + 1..]
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect();
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) {
                    called.insert(format!("iam:{name}"));
                }
            }
        }
    }
    assert!(called.len() > 20, "found only {called:?}");
    let docs = read(&root().join("docs/aws.md"));
    let documented: BTreeSet<String> = docs
        .split('"')
        .filter(|s| s.starts_with("iam:") && !s.contains(' '))
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = called.difference(&documented).collect();
    let extra: Vec<&String> = documented.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "docs/aws.md does not grant what the provider calls: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "docs/aws.md grants what the provider never calls: {extra:?}"
    );
}
