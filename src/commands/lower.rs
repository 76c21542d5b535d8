//! `writ lower` (hidden): the desired state, as a snapshot document.

use crate::error::Outcome;
use crate::pipeline::{desired_state, load};
use std::io::Write;
use std::path::Path;

pub fn run(out: &mut impl Write, path: &Path) -> Outcome {
    let project = load(path)?;
    let Some((_, mut desired)) = desired_state(&project)? else {
        return Ok(1);
    };
    // Nothing is observed here: what only a provider can say (a GCP
    // project's number) leaves its objects out, as a plan would.
    for note in writ_compiler::lower::gcp::bind(&mut desired, &[]) {
        eprintln!("note: {note}");
    }
    let snapshot = writ_compiler::snapshot::Snapshot::from_resources(desired.resources);
    out.write_all(snapshot.to_json().as_bytes())?;
    Ok(0)
}
