//! `writ apply`: plan against the live providers, show the plan, ask
//! (unless `--auto-approve`), and carry it out in dependency order. With a
//! saved plan, carry it out only if a fresh plan is exactly the same; with
//! `--comment`, post the outcome on the pull request.

use crate::actions::{self, GithubArgs};
use crate::error::{CliError, Outcome};
use crate::live::{self, Scope};
use crate::pipeline::{desired_state, load, make_plan};
use crate::render::{self, Applied};
use crate::term;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use writ_compiler::plan::Plan;
use writ_provider_core::{Release, Retrier, Unfinished};

pub struct ApplyArgs {
    pub path: PathBuf,
    /// The reviewed plan (`writ plan --out`).
    pub saved_plan: Option<PathBuf>,
    pub auto_approve: bool,
    pub allow_mass_delete: bool,
    /// Take over what the source adopts.
    pub adopt: bool,
    pub only: Vec<String>,
    pub github: GithubArgs,
}

/// What an apply came to: the exit code, and the outcome in markdown (for
/// the pull request the applied change came from).
struct ApplyResult {
    code: i32,
    project: String,
    outcome: String,
}

pub fn run(out: &mut impl Write, args: ApplyArgs) -> Outcome {
    let retrier = Retrier::default_policy();
    let result = apply(out, &args, &retrier);
    if !args.github.comment {
        return result.map(|applied| applied.code);
    }
    // The pull request hears of the outcome, whatever it was.
    let (project, outcome, ok) = match &result {
        Ok(applied) => (
            applied.project.clone(),
            applied.outcome.clone(),
            applied.code == 0,
        ),
        Err(error) => (
            crate::project::load(&args.path)
                .map(|p| p.name)
                .unwrap_or_else(|_| "?".into()),
            format!("**Apply failed**: {}", error.to_string().replace('`', "'")),
            false,
        ),
    };
    if let Err(error) = actions::post_apply(&project, &outcome, ok, &args.github, &retrier) {
        // The apply itself stands; the exit code says the comment is
        // missing.
        eprintln!("error: could not post the apply result: {error}");
        if let Err(apply_error) = &result {
            eprintln!("error: {apply_error}");
        }
        return Ok(1);
    }
    result.map(|applied| applied.code)
}

fn read_saved(file: &Path) -> Result<Plan, CliError> {
    let text = crate::project::read_text(file)?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::Message(format!("`{}` is not a writ plan: {e}", file.display())))
}

fn apply(
    out: &mut impl Write,
    args: &ApplyArgs,
    retrier: &Retrier,
) -> Result<ApplyResult, CliError> {
    let saved = args.saved_plan.as_deref().map(read_saved).transpose()?;
    let project = load(&args.path)?;
    if project.config.project.snapshot.is_some() {
        return Err("writ.toml plans against a recorded snapshot (`[project] snapshot`): a snapshot cannot be applied to; remove that setting to apply to the live providers".into());
    }
    let applied = |code: i32, outcome: Applied| ApplyResult {
        code,
        project: project.name.clone(),
        outcome: render::apply_outcome(&outcome),
    };
    let Some((model, mut desired)) = desired_state(&project)? else {
        return Ok(applied(1, Applied::NotPlanned));
    };
    let scope = Scope::new(&model, &args.only)?;
    desired.resources.retain(|r| scope.includes(&r.provider));
    live::keep_live_providers(&project, &model, &mut desired);
    let runtime = writ_provider_core::runtime()?;
    runtime.block_on(async {
        let live::Live { providers, identities } =
            live::connect(&project, &model, &scope, retrier).await?;
        // One run at a time: the lock is taken before the plan is made, so
        // that no other run's changes land between the plan and its apply.
        let mut lease = live::lease();
        live::lock_all(&providers, &lease).await?;
        // How each provider's lock is given back: absent, as it was found
        // (no plan carried out there); `None`, converged; `Some`, what an
        // apply that stopped partway leaves for the next plans to read.
        let mut ends: BTreeMap<String, Option<Unfinished>> = BTreeMap::new();
        let holder = lease.holder.clone();
        let outcome: Result<ApplyResult, CliError> = async {
        let observed = live::observe_with(&providers).await?;
        let unfinished = live::unfinished_runs(&providers, Some(&lease.holder)).await;
        let plan = make_plan(
            &project,
            &mut desired,
            &observed,
            Some(&identities),
            unfinished,
            None,
        )?;
        if let Some(saved) = &saved {
            let differences = writ_compiler::plan::stale_differences(saved, &plan);
            if !differences.is_empty() {
                writeln!(out, "error: the saved plan is out of date: the source or the live state changed since it was made:")?;
                for difference in &differences {
                    writeln!(out, "  - {difference}")?;
                }
                writeln!(out, "Make a new plan and review it.")?;
                return Ok(applied(1, Applied::Stale(&differences)));
            }
        }
        out.write_all(render::text(&plan, term::colour()).as_bytes())?;
        let refusal = writ_compiler::plan::refusal(&plan, args.allow_mass_delete).or_else(|| {
            (plan.summary.adopt > 0 && !args.adopt).then(|| {
                let adopted: Vec<&str> = plan
                    .changes
                    .iter()
                    .filter(|c| c.kind_of_change() == writ_compiler::plan::ChangeKind::Adopt)
                    .map(|c| c.address.as_str())
                    .collect();
                format!(
                    "this plan adopts {} made outside writ ({}): writ owns {} from then on; pass `--adopt` to take {} over",
                    if adopted.len() == 1 { "an object".to_string() } else { format!("{} objects", adopted.len()) },
                    adopted.join(", "),
                    if adopted.len() == 1 { "it" } else { "them" },
                    if adopted.len() == 1 { "it" } else { "them" },
                )
            })
        });
        if let Some(refusal) = refusal {
            writeln!(out, "error: {refusal}")?;
            return Ok(applied(1, Applied::Refused(&refusal)));
        }
        if !plan.has_changes() {
            ends.extend(providers.iter().map(|p| (p.address().to_string(), None)));
            writeln!(out, "Nothing to apply.")?;
            return Ok(applied(0, Applied::NothingToDo));
        }
        // Even a reviewed, saved plan is confirmed on a terminal: the
        // person at it may not be the one who reviewed it.
        if !args.auto_approve && !confirmed(out, plan.changes.len())? {
            writeln!(out, "Not applied.")?;
            return Ok(applied(1, Applied::NotConfirmed));
        }
        let order = writ_compiler::plan::apply_order(&plan);
        let total = order.len();
        // Which steps were made, to record what an apply that stops leaves.
        let mut made_steps = vec![false; total];
        let mut done = 0;
        let mut made = String::new();
        let mut failure = None;
        let mut failures: Vec<(String, String)> = Vec::new();
        // A conflict holds back its own agent; a failure, the rest of its
        // agent's changes (they may depend on the one that failed). Other
        // agents' changes go on.
        let blocked: std::collections::BTreeSet<String> =
            plan.blocked_agents().into_iter().map(str::to_string).collect();
        let mut failed_agents: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut held_back = 0;
        // The ends of the ARNs of roles whose adoption failed, as they are
        // written in a serialized document.
        let mut failed_adoptions: Vec<String> = Vec::new();
        let mut renewed_at = std::time::Instant::now();
        for (index, change) in order.iter().enumerate() {
            if renewed_at.elapsed().as_secs() > u64::from(live::LEASE_SECONDS / 3) {
                lease = live::renewed(&lease);
                if let Err(error) = live::lock_all(&providers, &lease).await {
                    failure = Some((change.address.clone(), format!("the lock could not be renewed, so writ stopped before this change: {error}")));
                    break;
                }
                renewed_at = std::time::Instant::now();
            }
            let agent = change.agent.as_deref();
            let after_failure_unknown = agent.is_none() && !failures.is_empty();
            // A delegate's trust, or a service account's annotation, that
            // names a role whose adoption failed: that role is not writ's.
            let names_failed = !failed_adoptions.is_empty()
                && change.after.as_ref().is_some_and(|after| {
                    let text = serde_json::to_string(after).unwrap_or_default();
                    failed_adoptions.iter().any(|arn| text.contains(arn.as_str()))
                });
            if after_failure_unknown
                || names_failed
                || agent.is_some_and(|a| blocked.contains(a) || failed_agents.contains(a))
            {
                held_back += 1;
                continue;
            }
            let Some(provider) = providers.iter().find(|p| p.address() == change.provider) else {
                failures.push((change.address.clone(), format!("no live provider `{}`", change.provider)));
                failed_agents.extend(change.agent.clone());
                continue;
            };
            let kind = format!("{:?}", change.kind_of_change()).to_lowercase();
            // A step of writ's own, not in the plan, says what it is for.
            let own = match change {
                std::borrow::Cow::Owned(step) => format!(" ({})", step.reason),
                std::borrow::Cow::Borrowed(_) => String::new(),
            };
            eprintln!("[{}/{total}] {kind} {}{own} …", index + 1, change.address);
            match provider.apply(change).await {
                Ok(()) => {
                    done += 1;
                    made_steps[index] = true;
                    made.push_str(&format!("- {kind} `{}`\n", change.address));
                }
                Err(error) => {
                    failures.push((change.address.clone(), error.to_string()));
                    failed_agents.extend(change.agent.clone());
                    if change.kind_of_change() == writ_compiler::plan::ChangeKind::Adopt {
                        if let Some(after) = &change.after {
                            let text = |key: &str| after.get(key).and_then(|v| v.as_str()).unwrap_or_default();
                            failed_adoptions.push(format!(":role{}{}\"", text("path"), text("name")));
                        }
                    }
                }
            }
        }
        if failure.is_none() {
            failure = failures.first().cloned();
        }
        // Per provider: converged when every step was made, but for those
        // of agents in conflict (every plan shows the conflict); otherwise
        // what was left, and by which agents, for the next plans.
        for provider in &providers {
            let address = provider.address();
            let steps: Vec<(usize, &std::borrow::Cow<'_, writ_compiler::plan::Change>)> = order
                .iter()
                .enumerate()
                .filter(|(_, c)| c.provider == address)
                .collect();
            let left: Vec<_> = steps
                .iter()
                .filter(|(i, c)| !made_steps[*i] && !c.agent.as_ref().is_some_and(|a| blocked.contains(a)))
                .collect();
            if left.is_empty() {
                ends.insert(address.to_string(), None);
                continue;
            }
            let made = steps.iter().filter(|(i, _)| made_steps[*i]).count();
            let stopped = failures
                .iter()
                .chain(&failure)
                .find(|(a, _)| a.split('/').next() == Some(address))
                .map_or_else(String::new, |(a, _)| format!(" and stopped at {a}"));
            let agents: Option<Vec<String>> = left
                .iter()
                .map(|(_, c)| c.agent.clone())
                .collect::<Option<std::collections::BTreeSet<String>>>()
                .map(|set| set.into_iter().collect());
            // Kept where only tag-safe text fits: no commas.
            ends.insert(
                address.to_string(),
                Some(Unfinished {
                    what: format!("the apply by {} made {made} of {} changes{stopped}", lease.holder, steps.len()),
                    agents,
                }),
            );
        }
        if failure.is_none() {
            if let Some(conflict) = plan.conflicts.iter().find(|c| c.agent.is_some()) {
                failure = Some((conflict.address.clone(), format!("not made: {}", conflict.detail)));
            }
        }
        for (address, error) in failures.iter().skip(1) {
            writeln!(out, "also failed: {address}: {error}")?;
        }
        if !blocked.is_empty() {
            let names: Vec<String> = blocked.iter().map(|a| format!("`{a}`")).collect();
            writeln!(out, "not applied for {}: an object writ does not own has a name it needs (see Conflicts)", names.join(", "))?;
        }
        // Each provider records what it made (the cluster's inventory
        // record), also after a failure: what was made is writ's.
        let mut unrecorded = None;
        for provider in &providers {
            if let Err(error) = provider.finish().await {
                writeln!(out, "error: {}: could not record what this apply made: {error}", provider.address())?;
                unrecorded.get_or_insert((provider.address().to_string(), error.to_string()));
            }
        }
        if let (None, Some((address, error))) = (&failure, unrecorded) {
            writeln!(
                out,
                "Apply made all {total} changes, but {address} could not record the service accounts it made in writ's inventory record. They stay writ's while the source declares them; once it no longer does, writ will list them instead of deleting them.",
            )?;
            return Ok(applied(1, Applied::Failed { address: &address, error: &error, done, total, made: &made }));
        }
        match failure {
            None => {
                writeln!(out, "Apply complete: {done} of {total} changes made.")?;
                Ok(applied(0, Applied::Done { done, total, made: &made }))
            }
            Some((address, error)) => {
                let not_attempted = total.saturating_sub(done + failures.len());
                writeln!(
                    out,
                    "Apply failed at {address}: {error}\n{done} of {total} changes made, {} failed, {not_attempted} not attempted ({held_back} held back: their agent's change failed or is in conflict). Plan and apply again to finish: every step is safe to repeat.",
                    failures.len()
                )?;
                Ok(applied(1, Applied::Failed { address: &address, error: &error, done, total, made: &made }))
            }
        }
        }
        .await;
        live::unlock_all(&providers, &holder, |provider| match ends.get(provider) {
            None => Release::Unchanged,
            Some(None) => Release::Converged,
            Some(Some(record)) => Release::Interrupted(record),
        })
        .await;
        outcome
    })
}

/// Asks on the terminal; only `yes` is accepted.
fn confirmed(out: &mut impl Write, changes: usize) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(
            "refusing to apply without confirmation: pass `--auto-approve` when not on a terminal"
                .into(),
        );
    }
    write!(
        out,
        "\nApply these {changes} changes? Only `yes` is accepted: "
    )?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
