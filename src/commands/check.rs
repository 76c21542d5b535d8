//! `writ check`: parse and check a project, reporting every finding.

use crate::error::Outcome;
use crate::pipeline::{checked, load, print_diagnostics};
use crate::report::{self, Format};
use std::io::Write;
use std::path::Path;

/// What `writ check` reports besides the source's findings.
pub struct Also<'a> {
    /// The access graph's findings.
    pub graph: bool,
    /// Usage logs: the grants nobody used in them.
    pub usage: &'a [std::path::PathBuf],
    /// The window of `usage`.
    pub since: &'a str,
}

pub fn run(
    out: &mut impl Write,
    path: &Path,
    format: Format,
    deny_warnings: bool,
    also: Also,
) -> Outcome {
    let project = load(path)?;
    let checked = checked(&project)?;
    // One rule set with `plan`: what lowering finds in the source alone
    // (an agent nothing may become, a policy past IAM's size) is found
    // here too, not first by a plan.
    let has_errors = checked.has_errors();
    // The syntax trees are not needed to lower: freed first.
    let writ_compiler::Checked {
        model,
        files,
        mut diagnostics,
    } = checked;
    drop(files);
    if !has_errors {
        let desired = writ_compiler::lower::lower(&model, &project.name);
        diagnostics.extend(desired.diagnostics.iter().cloned());
        if also.graph {
            diagnostics.extend(crate::pipeline::graph_findings(&project, &model));
        }
        if !also.usage.is_empty() {
            let report = crate::logs::usage(
                &model,
                &project.name,
                also.usage,
                also.since,
                crate::clock::today()?,
                Vec::new(),
            )?;
            diagnostics.extend(writ_compiler::usage::unused_grants(&model, &report));
        }
        writ_compiler::diagnostic::sort_in_source_order(&mut diagnostics);
        crate::pipeline::leave(desired);
    }
    print_diagnostics(out, &project, &diagnostics, format)?;
    let failed = diagnostics.iter().any(writ_compiler::Diagnostic::is_error)
        || (deny_warnings && !diagnostics.is_empty());
    if format != Format::Json {
        let files = project.sources.len();
        let files = format!("{files} file{}", if files == 1 { "" } else { "s" });
        let line = if diagnostics.is_empty() {
            format!("checked {files}: no problems found")
        } else {
            format!("checked {files}: {}", report::summary(&diagnostics))
        };
        writeln!(out, "{line}")?;
    }
    crate::pipeline::leave((project, model, diagnostics));
    Ok(i32::from(failed))
}
