//! `writ drift`: only what changed outside writ.

use crate::error::Outcome;
use crate::live::{self, Scope};
use crate::pipeline::{desired_state, load, make_plan};
use crate::render::{self, PlanFormat};
use std::io::Write;
use std::path::{Path, PathBuf};
use writ_provider_core::Retrier;

pub struct DriftArgs<'a> {
    pub snapshot: Option<PathBuf>,
    /// Read the live providers, whatever writ.toml says.
    pub live: bool,
    pub format: PlanFormat,
    /// Exit 2 when there is drift.
    pub detailed: bool,
    pub only: &'a [String],
}

pub fn run(out: &mut impl Write, path: &Path, args: DriftArgs) -> Outcome {
    let DriftArgs {
        snapshot,
        live: force_live,
        format,
        detailed,
        only,
    } = args;
    let project = load(path)?;
    let Some((model, mut desired)) = desired_state(&project)? else {
        return Ok(1);
    };
    let scope = Scope::new(&model, only)?;
    desired.resources.retain(|r| scope.includes(&r.provider));
    let snapshot = match force_live {
        true => None,
        false => live::snapshot_file(&project, snapshot.as_deref()),
    };
    let retrier = Retrier::default_policy();
    let observed = match snapshot {
        Some(file) => live::snapshot_state(&file, &scope, &[])?,
        None => {
            live::keep_live_providers(&project, &model, &mut desired);
            live::observe(&project, &model, &scope, &retrier)?
        }
    };
    let mut plan = make_plan(
        &project,
        &mut desired,
        &observed.resources,
        observed.live.then_some(&observed.identities[..]),
        observed.unfinished,
        observed.snapshot.as_deref(),
    )?;
    // Access the observed state holds and the source does not declare
    // (RBAC bound to an agent's service account outside writ, IAM policies
    // put on or attached to an agent's role): drift of access.
    plan.undeclared_access =
        crate::pipeline::undeclared_access(&project, Some(&model), &desired, &observed.resources)?;
    let undeclared = &plan.undeclared_access;
    let text = match format {
        PlanFormat::Json => render::drift_json(&plan, undeclared),
        PlanFormat::Markdown => render::drift_markdown(&plan, undeclared),
        PlanFormat::Text => render::drift_text(&plan, undeclared),
    };
    out.write_all(text.as_bytes())?;
    Ok(
        if detailed
            && !(plan.drift.is_empty()
                && plan.unapplied().is_empty()
                && plan.unrecorded_changes().is_empty()
                && undeclared.is_empty())
        {
            2
        } else {
            0
        },
    )
}
