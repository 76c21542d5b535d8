//! `writ fmt`: every `.writ` file in the canonical layout, comments kept.

use crate::error::{CliError, Outcome};
use crate::pipeline::{load, print_diagnostics};
use crate::report::Format;
use std::io::Write;
use std::path::Path;

pub fn run(out: &mut impl Write, path: &Path, check_only: bool) -> Outcome {
    let project = load(path)?;
    let mut unformatted = Vec::new();
    let mut syntax_errors = Vec::new();
    for ((id, file), path) in project.sources.files().zip(&project.paths) {
        match writ_compiler::syntax::parse_file(id, &file.text) {
            Ok(parsed) => {
                let formatted = writ_compiler::format::format_file(&file.text, &parsed);
                if formatted != file.text {
                    unformatted.push(file.name.clone());
                    if check_only {
                        // What `writ fmt` would change, as a unified diff.
                        let diff = similar::TextDiff::from_lines(&file.text, &formatted);
                        write!(
                            out,
                            "{}",
                            diff.unified_diff()
                                .context_radius(2)
                                .header(&file.name, &format!("{} (formatted)", file.name))
                        )?;
                    } else {
                        std::fs::write(path, formatted).map_err(|e| {
                            CliError::Message(format!("cannot write `{}`: {e}", path.display()))
                        })?;
                    }
                }
            }
            Err(diagnostic) => syntax_errors.push(*diagnostic),
        }
    }
    if !syntax_errors.is_empty() {
        print_diagnostics(out, &project, &syntax_errors, Format::Text)?;
        writeln!(out, "files with syntax errors were left as they are")?;
    }
    for name in &unformatted {
        let verb = if check_only {
            "would reformat"
        } else {
            "reformatted"
        };
        writeln!(out, "{verb} {name}")?;
    }
    let failed = !syntax_errors.is_empty() || (check_only && !unformatted.is_empty());
    if unformatted.is_empty() && syntax_errors.is_empty() {
        let files = project.sources.len();
        let noun = if files == 1 { "file" } else { "files" };
        writeln!(out, "{files} {noun} already formatted")?;
    }
    Ok(i32::from(failed))
}
