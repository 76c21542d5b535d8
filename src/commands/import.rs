//! `writ import`: `.writ` source for identities made outside writ, from a
//! snapshot or live (docs/import.md). The source goes to standard output,
//! or to a new file with `--out`; what each object became, and where the
//! source differs from it, to standard error.

use crate::error::{CliError, Outcome};
use crate::live::{self, Scope};
use crate::pipeline::{checked, load, show_findings};
use crate::report;
use std::io::Write;
use std::path::Path;
use writ_compiler::import::{Import, Options};
use writ_provider_core::Retrier;

/// What `writ import` was asked.
pub struct Asked<'a> {
    pub snapshot: Option<&'a Path>,
    pub live: bool,
    pub only: &'a [String],
    pub select: &'a [String],
    pub out: Option<&'a Path>,
}

pub fn run(out: &mut impl Write, path: &Path, asked: &Asked) -> Outcome {
    let project = load(path)?;
    let before = checked(&project)?;
    if before.has_errors() {
        show_findings(&project, &before.diagnostics)?;
        return Err(format!(
            "nothing imported: the source has errors ({}); `writ check` lists them",
            report::summary(&before.diagnostics)
        )
        .into());
    }
    let model = &before.model;
    let scope = Scope::new(model, asked.only)?;
    let observed = match (asked.snapshot, asked.live) {
        (Some(file), _) => live::snapshot_state(file, &scope, &[])?,
        (None, true) => live::observe(&project, model, &scope, &Retrier::default_policy())?,
        (None, false) => {
            return Err("say where to import from: `--from SNAPSHOT` or `--live`".into())
        }
    };
    let file = match asked.out {
        Some(file) => {
            if file.exists() {
                return Err(format!(
                    "`{}` exists: `writ import --out` writes a new file, never over one",
                    file.display()
                )
                .into());
            }
            file.display().to_string()
        }
        None => "imported.writ".to_string(),
    };
    let options = Options {
        providers: asked.only.to_vec(),
        select: asked.select.to_vec(),
        file,
    };
    let import = writ_compiler::import::import(
        &project.sources,
        crate::clock::today()?,
        &project.name,
        &observed.resources,
        &options,
    );
    summarise(&import);
    if import.objects.is_empty() {
        eprintln!("nothing to import");
        return Ok(0);
    }
    let parsed = writ_compiler::syntax::parse_file(writ_compiler::FileId(0), &import.source)
        .map_err(|d| {
            CliError::Message(format!(
                "the imported source does not parse ({}): please report this",
                d.message
            ))
        })?;
    let source = writ_compiler::format::format_file(&import.source, &parsed);
    if !import.unresolved.is_empty() {
        out.write_all(source.as_bytes())?;
        return Err(format!(
            "the imported source does not check: {}; fix these and add it by hand",
            import.unresolved.join("; ")
        )
        .into());
    }
    match asked.out {
        Some(file) => {
            std::fs::write(file, &source).map_err(|e| {
                CliError::Message(format!("cannot write `{}`: {e}", file.display()))
            })?;
            eprintln!("wrote {}", file.display());
        }
        None => out.write_all(source.as_bytes())?,
    }
    Ok(0)
}

/// What each object became, on standard error.
fn summarise(import: &Import) {
    for object in &import.objects {
        let how = match (object.narrower, object.wider) {
            (false, false) => "exactly",
            (true, false) => "allowing less than the object",
            (false, true) => "ALLOWING MORE than the object",
            (true, true) => "NOT EXACTLY (allowing more in part, less in part)",
        };
        eprintln!("{} → agent `{}`, {how}", object.address, object.agent);
        for note in &object.notes {
            eprintln!("  {note}");
        }
    }
    for skipped in &import.skipped {
        eprintln!("skipped {skipped}");
    }
}
