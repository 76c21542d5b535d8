//! `writ plan`: what writ would create, change and delete to make the
//! providers (or a recorded snapshot) match the source.

use crate::actions::{self, GithubArgs};
use crate::error::{CliError, Outcome};
use crate::live::{self, Scope};
use crate::pipeline::{desired_state, load, make_plan};
use crate::render::{self, PlanFormat};
use crate::term;
use std::io::Write;
use std::path::{Path, PathBuf};
use writ_provider_core::Retrier;

pub struct PlanArgs {
    pub snapshot: Option<PathBuf>,
    /// Against the live providers, whatever writ.toml says.
    pub live: bool,
    pub format: PlanFormat,
    pub out: Option<PathBuf>,
    pub detailed_exitcode: bool,
    pub allow_mass_delete: bool,
    pub only: Vec<String>,
    /// Usage logs: each gained access is noted with whether the agent
    /// tried it in them.
    pub usage: Vec<std::path::PathBuf>,
    /// The window of `usage`.
    pub since: String,
    pub github: GithubArgs,
}

pub fn run(out: &mut impl Write, path: &Path, args: PlanArgs) -> Outcome {
    let project = load(path)?;
    let retrier = Retrier::default_policy();
    let Some((model, mut desired)) = desired_state(&project)? else {
        if args.github.comment {
            actions::post_no_plan(
                &project.name,
                "the source has errors",
                &args.github,
                &retrier,
            )?;
        }
        return Ok(1);
    };
    // Read before the model is freed: the logs are held against it.
    let usage = match args.usage.is_empty() {
        true => None,
        false => Some(crate::logs::usage(
            &model,
            &project.name,
            &args.usage,
            &args.since,
            crate::clock::today()?,
            Vec::new(),
        )?),
    };
    let scope = Scope::new(&model, &args.only)?;
    desired.resources.retain(|r| scope.includes(&r.provider));
    let snapshot = match args.live {
        true => None,
        false => live::snapshot_file(&project, args.snapshot.as_deref()),
    };
    let (observed, model) = match snapshot {
        Some(file) => {
            // The model is not needed past this point: freed, its memory
            // holds the snapshot (a large estate's peak is both at once).
            // Access the snapshot holds beyond the source is found by
            // checking the source again, where it can be there at all.
            drop(model);
            (
                live::snapshot_state(&file, &scope, &desired.resources)?,
                None,
            )
        }
        None => {
            live::keep_live_providers(&project, &model, &mut desired);
            let observed = live::observe(&project, &model, &scope, &retrier)?;
            (observed, Some(model))
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
    if let Some(report) = &usage {
        plan.notes.extend(writ_compiler::usage::gain_notes(
            &plan.permission_delta,
            report,
        ));
    }
    plan.undeclared_access = crate::pipeline::undeclared_access(
        &project,
        model.as_ref(),
        &desired,
        &observed.resources,
    )?;
    drop(model);
    let rendered = match args.format {
        PlanFormat::Text => render::text(&plan, term::colour()),
        PlanFormat::Markdown => render::markdown(&plan),
        PlanFormat::Json => render::json(&plan),
    };
    out.write_all(rendered.as_bytes())?;
    if let Some(file) = &args.out {
        std::fs::write(file, render::json(&plan))
            .map_err(|e| CliError::Message(format!("cannot write `{}`: {e}", file.display())))?;
    }
    actions::write_actions_files(&plan)?;
    if args.github.comment {
        actions::post_plan(&plan, &args.github, &retrier)?;
    }
    if let Some(refusal) = writ_compiler::plan::refusal(&plan, args.allow_mass_delete) {
        eprintln!("error: {refusal}");
        return Ok(1);
    }
    let blocked = plan.blocked_agents();
    if !blocked.is_empty() {
        // Applied, the plan leaves these agents alone; it still fails, so
        // that the conflict is seen and resolved.
        let names: Vec<String> = blocked.iter().map(|a| format!("`{a}`")).collect();
        eprintln!(
            "error: {} cannot be made: an object writ does not own has its name (see Conflicts); `writ apply` applies every other agent's changes and leaves these alone",
            names.join(", ")
        );
        return Ok(1);
    }
    if args.format == PlanFormat::Text {
        writeln!(
            out,
            "{}",
            next_step(path, &args, observed.live, plan.has_changes())
        )?;
    }
    let code = if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    };
    crate::pipeline::leave((project, desired, observed.resources, plan));
    Ok(code)
}

/// The plan's last line: the exact command that comes next.
fn next_step(path: &Path, args: &PlanArgs, live: bool, changes: bool) -> String {
    let project = match path.to_string_lossy() {
        p if p == "." => String::new(),
        p => format!(" {}", shell_word(&p)),
    };
    if !live {
        return format!(
            "This plan is against a recorded snapshot; `writ apply` acts on the live providers. To see what it would do: writ plan{project} --live"
        );
    }
    if !changes {
        return "Nothing to apply.".to_string();
    }
    match &args.out {
        Some(file) => format!(
            "To apply exactly this plan: writ apply{project} --expect {}",
            shell_word(&file.to_string_lossy())
        ),
        None => format!(
            "To apply exactly this plan, save it and apply that: writ plan{project} --out plan.json, then writ apply{project} --expect plan.json"
        ),
    }
}

/// A path as one shell word.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
