//! `writ test`: the project's `test` blocks, run by the evaluator.

use crate::error::Outcome;
use crate::pipeline::{checked, load, print_diagnostics};
use crate::report::{self, Format};
use std::io::Write;
use std::path::Path;
use writ_compiler::eval;

pub fn run(out: &mut impl Write, path: &Path, format: Format) -> Outcome {
    let project = load(path)?;
    let checked = checked(&project)?;
    if checked.has_errors() {
        print_diagnostics(out, &project, &checked.diagnostics, format)?;
        let line = format!(
            "tests not run: the project has errors ({})",
            report::summary(&checked.diagnostics)
        );
        // In JSON and as annotations, standard output stays the format's.
        match format {
            Format::Text | Format::Plain => writeln!(out, "{line}")?,
            Format::Json | Format::Github => eprintln!("{line}"),
        }
        return Ok(1);
    }
    let report = eval::run_tests(&checked.model);
    if format == Format::Json {
        print_diagnostics(out, &project, &report.diagnostics, format)?;
        return Ok(i32::from(report.failed() > 0));
    }
    // Tests are counted as tests, their expectations apart.
    let (mut tests_passed, mut tests_failed) = (0, 0);
    for (index, test) in checked.model.tests.iter().enumerate() {
        let results: Vec<_> = report.results.iter().filter(|r| r.test == index).collect();
        let failed = results.iter().filter(|r| !r.passed).count();
        if failed == 0 {
            tests_passed += 1;
        } else {
            tests_failed += 1;
        }
        let status = if failed == 0 { "ok" } else { "FAILED" };
        writeln!(
            out,
            "test \"{}\" ... {status} ({} expectations)",
            test.name,
            results.len()
        )?;
    }
    if !report.diagnostics.is_empty() {
        writeln!(out)?;
        print_diagnostics(out, &project, &report.diagnostics, format)?;
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    writeln!(
        out,
        "{} passed, {} failed ({})",
        plural(tests_passed, "test", "tests"),
        tests_failed,
        plural(report.results.len(), "expectation", "expectations")
    )?;
    Ok(i32::from(report.failed() > 0))
}
