//! Shared helpers for the integration tests: checking a source text the way
//! `writ check` and `writ test` do, with a fixed "today".

#![allow(dead_code)]

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
        diagnostics.extend(eval::run_tests(&checked.model).diagnostics);
    }
    diagnostics
}
