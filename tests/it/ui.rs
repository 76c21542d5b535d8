//! Golden diagnostics. Every `tests/ui/*.writ` case marks the findings it
//! expects, and its rendered `plain` report is a snapshot.
//!
//! A marker is a comment line under the line it is about (the closest line
//! above that is not itself a marker):
//! - `//    ^^^^ error: writ::CODE` marks the primary span exactly: it
//!   starts at the first caret and ends after the last (a span that goes
//!   on past the line is marked to the line's end; an empty span has one
//!   caret);
//! - `//@1..6 error: writ::CODE` gives the columns as numbers (start, and
//!   end exclusive), for spans that start in the first two columns, where
//!   carets cannot reach;
//! - `//@eof error: writ::CODE` expects a finding at the end of the file.
//!
//! A case may hold several files: a line `//- file: NAME.writ` starts the
//! next one (the lines before the first such line are a file named after
//! the case), so that findings across files are data too.

use std::path::{Path, PathBuf};
use writ_compiler::{Severity, SourceMap};

/// Where a finding is, as a marker states it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    file: String,
    /// `None` for the end of the file.
    at: Option<(usize, usize, usize)>,
    severity: &'static str,
    code: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            Some((line, start, end)) => write!(f, "{}:{line}:{start}..{end}", self.file)?,
            None => write!(f, "{}:eof", self.file)?,
        }
        write!(f, " {}: {}", self.severity, self.code)
    }
}

/// The files of a case, as (name, text).
fn files(case: &str, text: &str) -> Vec<(String, String)> {
    let mut files = vec![(case.to_string(), String::new())];
    for line in text.split_inclusive('\n') {
        match line.trim_end().strip_prefix("//- file: ") {
            Some(name) => files.push((name.trim().to_string(), String::new())),
            None => {
                if let Some(last) = files.last_mut() {
                    last.1.push_str(line);
                }
            }
        }
    }
    files.retain(|(name, text)| name != case || !text.trim().is_empty());
    files
}

fn severity(word: &str) -> Option<&'static str> {
    match word {
        "error" => Some("error"),
        "warning" => Some("warning"),
        _ => None,
    }
}

/// `severity: code` at the end of a marker.
fn finding_of(rest: &str) -> Option<(&'static str, String)> {
    let (word, code) = rest.trim().split_once(": ")?;
    Some((severity(word)?, code.trim().to_string()))
}

/// The findings the markers of one file expect; an error for a marker that
/// cannot be read or has no line to refer to.
fn expected(file: &str, text: &str) -> Result<Vec<Finding>, String> {
    let mut found = Vec::new();
    let mut target: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let bad = || format!("{file}:{}: unreadable marker `{line}`", index + 1);
        let Some(marker) = line.strip_prefix("//") else {
            target = Some(index + 1);
            continue;
        };
        let at = if let Some(rest) = marker.strip_prefix("@eof ") {
            let (severity, code) = finding_of(rest).ok_or_else(bad)?;
            (None, severity, code)
        } else if let Some(rest) = marker.strip_prefix('@') {
            let (range, rest) = rest.split_once(' ').ok_or_else(bad)?;
            let (start, end) = range.split_once("..").ok_or_else(bad)?;
            let (start, end) = (
                start.parse().map_err(|_| bad())?,
                end.parse().map_err(|_| bad())?,
            );
            let (severity, code) = finding_of(rest).ok_or_else(bad)?;
            let line = target.ok_or_else(|| format!("{file}: a marker before any line"))?;
            (Some((line, start, end)), severity, code)
        } else if marker.trim_start().starts_with('^') {
            let spaces = marker.len() - marker.trim_start().len();
            let carets = marker
                .trim_start()
                .chars()
                .take_while(|c| *c == '^')
                .count();
            let rest = &marker.trim_start()[carets..];
            let (severity, code) = finding_of(rest).ok_or_else(bad)?;
            let line = target.ok_or_else(|| format!("{file}: a marker before any line"))?;
            let start = 2 + spaces + 1;
            (Some((line, start, start + carets)), severity, code)
        } else {
            // An ordinary comment.
            target = Some(index + 1);
            continue;
        };
        found.push(Finding {
            file: file.to_string(),
            at: at.0,
            severity: at.1,
            code: at.2,
        });
    }
    found.sort();
    Ok(found)
}

/// What writ reports for a case: `writ check`'s findings and `writ
/// test`'s; for cases named `graph_*`, `writ check --graph`'s; for a case
/// with usage logs (files that are not `.writ`), `writ check --usage`'s.
fn reported(sources: &SourceMap, logs: &[(String, String)]) -> Vec<writ_compiler::Diagnostic> {
    let graph = sources.files().any(|(_, file)| {
        file.name
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("graph_"))
    });
    let mut found = if graph {
        crate::support::findings_with_graph(sources)
    } else {
        crate::support::findings(sources)
    };
    if !logs.is_empty() {
        let folder =
            std::env::temp_dir().join(format!("writ-ui-logs-{}-{}", std::process::id(), logs[0].0));
        std::fs::create_dir_all(&folder).unwrap();
        let files: Vec<PathBuf> = logs
            .iter()
            .map(|(name, text)| {
                let file = folder.join(name);
                std::fs::write(&file, text).unwrap();
                file
            })
            .collect();
        let model = crate::support::check(sources).model;
        let report = writ::logs::usage(
            &model,
            "proj",
            &files,
            "90d",
            crate::support::today(),
            Vec::new(),
        )
        .expect("the case's logs read");
        found.extend(writ_compiler::usage::unused_grants(&model, &report));
        writ_compiler::diagnostic::sort_in_source_order(&mut found);
        let _ = std::fs::remove_dir_all(&folder);
    }
    found
}

/// The usage logs of a case: its files that are not `.writ`.
fn case_logs(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).expect("UTF-8 case");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    files(&name, &text)
        .into_iter()
        .filter(|(file, _)| !file.ends_with(".writ"))
        .collect()
}

fn actual(sources: &SourceMap, logs: &[(String, String)]) -> Vec<Finding> {
    let mut found: Vec<Finding> = reported(sources, logs)
        .iter()
        .map(|d| {
            let file = sources.file(d.primary.span.file);
            let span = d.primary.span;
            let at = if span.start as usize >= file.text.trim_end().len() {
                None
            } else {
                let (line, start) = file.line_column(span.start);
                let (end_line, end) = file.line_column(span.end);
                let end = if end_line == line {
                    end.max(start + 1)
                } else {
                    let text = file.text.lines().nth(line - 1).unwrap_or_default();
                    text.chars().count() + 1
                };
                Some((line, start, end))
            };
            Finding {
                file: file.name.clone(),
                at,
                severity: match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                code: d.code.as_str().to_string(),
            }
        })
        .collect();
    found.sort();
    found
}

fn cases() -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .expect("tests/ui exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "writ"))
        .collect();
    files.sort();
    files
}

/// The sources of a case, named as the report shows them.
fn case_sources(path: &Path, prefix: &str) -> (SourceMap, Vec<(String, String)>) {
    let text = std::fs::read_to_string(path).expect("UTF-8 case");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let files: Vec<(String, String)> = files(&format!("{prefix}{name}"), &text)
        .into_iter()
        .filter(|(file, _)| file.ends_with(".writ"))
        .collect();
    let mut sources = SourceMap::new();
    for (file, text) in &files {
        sources.add(file.clone(), text.clone());
    }
    (sources, files)
}

#[test]
fn every_ui_case_reports_exactly_the_findings_it_marks() {
    let mut failures = Vec::new();
    let cases = cases();
    assert!(
        cases.len() >= 25,
        "expected the full set of UI cases, found {}",
        cases.len()
    );
    for path in &cases {
        let (sources, files) = case_sources(path, "");
        let mut wanted = Vec::new();
        for (file, text) in &files {
            match expected(file, text) {
                Ok(found) => wanted.extend(found),
                Err(error) => failures.push(error),
            }
        }
        wanted.sort();
        let actual = actual(&sources, &case_logs(path));
        if actual != wanted {
            let missing: Vec<String> = wanted
                .iter()
                .filter(|f| !actual.contains(f))
                .map(|f| format!("    expected, not reported: {f}"))
                .collect();
            let extra: Vec<String> = actual
                .iter()
                .filter(|f| !wanted.contains(f))
                .map(|f| format!("    reported, not expected: {f}"))
                .collect();
            failures.push(format!(
                "{}:\n{}",
                path.display(),
                [missing, extra].concat().join("\n")
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
fn markers_are_read_as_documented() {
    let text = "agent a {\n  can x\n//    ^ error: writ::unknown_name\n// a comment\n//@1..6 warning: writ::expired\n}\n//@eof error: writ::syntax\n";
    let found = expected("f.writ", text).unwrap();
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "f.writ:eof error: writ::syntax",
            "f.writ:2:7..8 error: writ::unknown_name",
            "f.writ:4:1..6 warning: writ::expired",
        ]
    );
    assert!(expected("f.writ", "//   ^ oops\n").is_err());
    let split = files("case.writ", "//- file: a.writ\nx\n//- file: b.writ\ny\n");
    assert_eq!(
        split,
        vec![
            ("a.writ".to_string(), "x\n".to_string()),
            ("b.writ".to_string(), "y\n".to_string())
        ]
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
    insta::glob!("..", "ui/*.writ", |path| {
        let (sources, _) = case_sources(path, "tests/ui/");
        let report = writ::report::render_plain(&sources, &reported(&sources, &case_logs(path)));
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("ui", report);
        });
    });
}
