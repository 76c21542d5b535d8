//! `writ drift`: only what changed outside writ.

use crate::error::Outcome;
use crate::live::{self, Scope};
use crate::pipeline::{desired_state, load, make_plan};
use crate::render::{self, PlanFormat};
use std::io::Write;
use std::path::Path;
use writ_provider_core::Retrier;

pub fn run(
    out: &mut impl Write,
    path: &Path,
    format: PlanFormat,
    detailed: bool,
    only: &[String],
) -> Outcome {
    let project = load(path)?;
    let Some((model, mut desired)) = desired_state(&mut std::io::stderr(), &project, true)? else {
        return Ok(1);
    };
    let scope = Scope::new(&model, only)?;
    desired.resources.retain(|r| scope.includes(&r.provider));
    if project.config.project.snapshot.is_none() {
        live::keep_live_providers(&model, &mut desired);
    }
    let retrier = Retrier::default_policy();
    let observed = live::observed_state(&project, &model, &scope, None, &retrier)?;
    let plan = make_plan(
        &project,
        &desired,
        &observed.resources,
        observed.live.then_some(&observed.identities[..]),
        observed.unfinished,
    )?;
    let text = match format {
        PlanFormat::Json => render::drift_json(&plan),
        _ => render::drift_text(&plan),
    };
    out.write_all(text.as_bytes())?;
    Ok(
        if detailed && !(plan.drift.is_empty() && plan.unapplied().is_empty()) {
            2
        } else {
            0
        },
    )
}
