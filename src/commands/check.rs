//! `writ check`: parse and check a project, reporting every finding.

use crate::error::Outcome;
use crate::pipeline::{checked, load, print_diagnostics};
use crate::report::{self, Format};
use std::io::Write;
use std::path::Path;

pub fn run(out: &mut impl Write, path: &Path, format: Format, deny_warnings: bool) -> Outcome {
    let project = load(path)?;
    let checked = checked(&project)?;
    print_diagnostics(out, &project, &checked.diagnostics, format)?;
    let failed = checked.has_errors() || (deny_warnings && !checked.diagnostics.is_empty());
    if format != Format::Json {
        let files = project.sources.len();
        let files = format!("{files} file{}", if files == 1 { "" } else { "s" });
        let line = if checked.diagnostics.is_empty() {
            format!("checked {files}: no problems found")
        } else {
            format!("checked {files}: {}", report::summary(&checked.diagnostics))
        };
        writeln!(out, "{line}")?;
    }
    crate::pipeline::leave((project, checked));
    Ok(i32::from(failed))
}
