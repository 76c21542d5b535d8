//! Golden diagnostics. Every `tests/ui/*.writ` file states the findings it
//! expects in comments, and its rendered `plain` report is a snapshot.
//!
//! An annotation `// error: writ::CODE` (or `// warning: …`) at the end of a
//! line expects a finding whose primary span starts on that line; on a line
//! of its own, it refers to the next line that is not an annotation.

mod support;

use std::path::Path;
use writ_compiler::Severity;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    line: usize,
    severity: &'static str,
    code: String,
}

fn expected(text: &str) -> Vec<Finding> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        for severity in ["error", "warning"] {
            let marker = format!("// {severity}: ");
            let Some(at) = line.find(&marker) else {
                continue;
            };
            let code = line[at + marker.len()..].trim().to_string();
            let target = if line[..at].trim().is_empty() {
                // Own line: the next line that is not itself an annotation.
                (index + 1..lines.len())
                    .find(|&i| {
                        !lines[i].trim_start().starts_with("// error:")
                            && !lines[i].trim_start().starts_with("// warning:")
                    })
                    .unwrap_or(index)
            } else {
                index
            };
            found.push(Finding {
                line: target + 1,
                severity,
                code,
            });
        }
    }
    found.sort();
    found
}

fn cases() -> Vec<std::path::PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .expect("tests/ui exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "writ"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_ui_case_reports_exactly_the_findings_it_states() {
    let mut failures = Vec::new();
    let cases = cases();
    assert!(
        cases.len() >= 25,
        "expected the full set of UI cases, found {}",
        cases.len()
    );
    for path in &cases {
        let text = std::fs::read_to_string(path).expect("UTF-8 case");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let sources = support::sources(&name, &text);
        let mut actual: Vec<Finding> = support::findings(&sources)
            .iter()
            .map(|d| Finding {
                line: sources
                    .file(d.primary.span.file)
                    .line_column(d.primary.span.start)
                    .0,
                severity: match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                code: d.code.as_str().to_string(),
            })
            .collect();
        actual.sort();
        let wanted = expected(&text);
        if actual != wanted {
            failures.push(format!(
                "{name}:\n  expected {wanted:?}\n  actual   {actual:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "UI cases that differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_diagnostic_code_has_a_ui_case() {
    let mut all = String::new();
    for path in cases() {
        all.push_str(&std::fs::read_to_string(path).unwrap());
    }
    let missing: Vec<&str> = writ_compiler::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|code| !all.contains(&format!(": {code}")))
        .collect();
    assert!(missing.is_empty(), "codes without a UI case: {missing:?}");
}

#[test]
fn rendered_reports_match_their_snapshots() {
    insta::glob!("ui/*.writ", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = format!("tests/ui/{}", path.file_name().unwrap().to_string_lossy());
        let sources = support::sources(&name, &text);
        let report = writ::report::render_plain(&sources, &support::findings(&sources));
        insta::assert_snapshot!(report);
    });
}
