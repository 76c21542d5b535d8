//! `writ snapshot`: what the live providers hold, in the snapshot format.

use crate::error::{CliError, Outcome};
use crate::live::{self, Scope};
use crate::pipeline::{desired_state, load};
use std::io::Write;
use std::path::Path;
use writ_provider_core::Retrier;

pub fn run(out: &mut impl Write, path: &Path, file: Option<&Path>, only: &[String]) -> Outcome {
    let project = load(path)?;
    let Some((model, _)) = desired_state(&project)? else {
        return Ok(1);
    };
    let scope = Scope::new(&model, only)?;
    let observed = live::observe(&project, &model, &scope, &Retrier::default_policy())?;
    let json = writ_compiler::snapshot::Snapshot::from_resources(observed.resources).to_json();
    match file {
        Some(file) => {
            std::fs::write(file, json).map_err(|e| {
                CliError::Message(format!("cannot write `{}`: {e}", file.display()))
            })?;
            eprintln!("wrote {}", file.display());
        }
        None => out.write_all(json.as_bytes())?,
    }
    Ok(0)
}
