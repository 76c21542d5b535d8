//! Live providers: connecting to them from `writ.toml`, observing, and
//! carrying out plans (`writ plan` without a snapshot, `writ apply`,
//! `writ snapshot`). Progress goes to standard error, so that plans and
//! snapshots on standard output stay clean.

use crate::cli::{colour, desired_state, load, make_plan, refusal};
use crate::project::Project;
use crate::render;
use std::io::{IsTerminal, Write};
use std::path::Path;
use writ_compiler::facts::ProviderKind;
use writ_compiler::model::{Model, ProviderSettings};
use writ_compiler::plan::Plan;
use writ_compiler::resource::Resource;
use writ_provider_aws::{AwsProvider, AwsSettings};
use writ_provider_core::{Provider, RetryPolicy};
use writ_provider_kubernetes::{KubernetesProvider, KubernetesSettings};

/// The provider instances a run covers (`--only`, or all).
pub struct Scope {
    only: Vec<String>,
}

impl Scope {
    /// Checks that every `--only` names a declared provider.
    pub fn new(model: &Model, only: &[String]) -> Result<Scope, String> {
        let declared: Vec<String> = model.providers.iter().map(|p| p.address()).collect();
        for address in only {
            if !declared.contains(address) {
                return Err(format!(
                    "`--only {address}`: no such provider; declared: {}",
                    declared
                        .iter()
                        .map(|d| format!("`{d}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(Scope {
            only: only.to_vec(),
        })
    }

    pub fn includes(&self, provider: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == provider)
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// One live provider instance.
pub enum Live {
    Aws(AwsProvider),
    Kubernetes(KubernetesProvider),
}

impl Live {
    fn provider(&self) -> &dyn Provider {
        match self {
            Live::Aws(p) => p,
            Live::Kubernetes(p) => p,
        }
    }

    fn address(&self) -> &str {
        self.provider().address()
    }
}

/// Which provider kinds this version reads and changes live.
fn is_live_kind(kind: ProviderKind) -> bool {
    matches!(kind, ProviderKind::Aws | ProviderKind::Kubernetes)
}

/// Connects to every live provider in scope, from `[provider.KIND.NAME]`.
async fn connect(project: &Project, model: &Model, scope: &Scope) -> Result<Vec<Live>, String> {
    let mut providers = Vec::new();
    for provider in model.providers.iter().filter(|p| is_live_kind(p.kind)) {
        let address = provider.address();
        if !scope.includes(&address) {
            continue;
        }
        let kind = provider.kind.as_str();
        let table = project
            .config
            .provider
            .get(kind)
            .and_then(|t| t.get(&provider.name));
        let get = |key: &str| {
            table
                .and_then(|t| t.get(key))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        // No section, no connection: writ never falls back to whatever
        // account or cluster the machine happens to point at.
        if table.is_none() {
            return Err(format!(
                "no connection settings for `{address}`: add `[provider.{kind}.{}]` to writ.toml{}, or leave it out with `--only`",
                provider.name,
                if provider.kind == ProviderKind::Kubernetes {
                    " (with `context = \"…\"`; empty, it uses the kubeconfig's current context)"
                } else {
                    ""
                }
            ));
        }
        match &provider.settings {
            ProviderSettings::Aws { account, partition } => {
                let settings = AwsSettings {
                    region: get("region"),
                    profile: get("profile"),
                    endpoint_url: get("endpoint_url"),
                };
                providers.push(Live::Aws(
                    AwsProvider::connect(
                        &address,
                        &project.name,
                        account,
                        partition,
                        &settings,
                        RetryPolicy::default(),
                    )
                    .await,
                ));
            }
            ProviderSettings::Kubernetes { .. } => {
                // Unset keys follow the standard kubeconfig rules.
                let settings = KubernetesSettings {
                    context: get("context"),
                    kubeconfig: get("kubeconfig").map(|file| project.root.join(file)),
                };
                let connected = KubernetesProvider::connect(
                    &address,
                    &project.name,
                    &settings,
                    RetryPolicy::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
                providers.push(Live::Kubernetes(connected));
            }
            _ => {}
        }
    }
    Ok(providers)
}

async fn observe_with(providers: &[Live]) -> Result<Vec<Resource>, String> {
    let mut resources = Vec::new();
    for live in providers {
        let provider = live.provider();
        eprintln!("observing {} …", provider.address());
        let (found, stats) = provider
            .observe()
            .await
            .map_err(|e| format!("observing `{}`: {e}", provider.address()))?;
        eprintln!(
            "{}: {} objects in {} requests{}",
            provider.address(),
            found.len(),
            stats.requests,
            if stats.retries > 0 {
                format!(" ({} retried)", stats.retries)
            } else {
                String::new()
            }
        );
        resources.extend(found);
    }
    Ok(resources)
}

/// Observes every live provider in scope.
pub fn observe(project: &Project, model: &Model, scope: &Scope) -> Result<Vec<Resource>, String> {
    runtime()?.block_on(async {
        let providers = connect(project, model, scope).await?;
        observe_with(&providers).await
    })
}

/// Which provider instances can be read and changed live in this version:
/// AWS and Kubernetes ones. Others (GitHub, GCP) are planned from snapshots
/// only; a live run leaves them out, and says so, rather than showing what
/// it cannot observe as "to create".
pub fn keep_live_providers(model: &Model, desired: &mut writ_compiler::lower::Desired) {
    let not_live: std::collections::BTreeSet<String> = desired
        .resources
        .iter()
        .map(|r| r.provider.clone())
        .filter(|address| {
            model
                .providers
                .iter()
                .find(|p| &p.address() == address)
                .is_none_or(|p| !is_live_kind(p.kind))
        })
        .collect();
    for address in &not_live {
        eprintln!("note: `{address}` cannot be read live by this version of writ; it is left out (plan it from a snapshot)");
    }
    desired
        .resources
        .retain(|r| !not_live.contains(&r.provider));
}

/// What the providers in scope hold: from a snapshot (`--snapshot`, or
/// `[project] snapshot` in writ.toml) when there is one, else live.
pub fn observed_state(
    project: &Project,
    model: &Model,
    scope: &Scope,
    snapshot: Option<&Path>,
) -> Result<Vec<Resource>, String> {
    let file = match (snapshot, &project.config.project.snapshot) {
        (Some(file), _) => file.to_path_buf(),
        (None, Some(file)) => project.root.join(file),
        (None, None) => return observe(project, model, scope),
    };
    let text = crate::project::read_text(&file).map_err(|e| e.to_string())?;
    let snapshot = writ_compiler::snapshot::Snapshot::parse(&text)
        .map_err(|e| format!("snapshot `{}`: {e}", file.display()))?;
    Ok(snapshot
        .resources()
        .filter(|r| scope.includes(&r.provider))
        .cloned()
        .collect())
}

pub fn snapshot(
    out: &mut impl Write,
    path: &Path,
    file: Option<&Path>,
    only: &[String],
) -> Result<i32, String> {
    let project = load(path)?;
    let Some((model, _)) = desired_state(&mut std::io::stderr(), &project, true)? else {
        return Ok(1);
    };
    let scope = Scope::new(&model, only)?;
    let resources = observe(&project, &model, &scope)?;
    let json = writ_compiler::snapshot::Snapshot::from_resources(resources).to_json();
    match file {
        Some(file) => {
            std::fs::write(file, json)
                .map_err(|e| format!("cannot write `{}`: {e}", file.display()))?;
            eprintln!("wrote {}", file.display());
        }
        None => out.write_all(json.as_bytes()).map_err(|e| e.to_string())?,
    }
    Ok(0)
}

pub struct ApplyArgs<'a> {
    pub saved_plan: Option<&'a Path>,
    pub auto_approve: bool,
    pub allow_mass_delete: bool,
    pub only: &'a [String],
}

/// What differs between a saved plan and a fresh one, in words; empty when
/// the saved plan is still exactly what would be done.
fn stale_differences(saved: &Plan, fresh: &Plan) -> Vec<String> {
    let mut differences = Vec::new();
    if saved.project != fresh.project {
        differences.push(format!(
            "the plan is for project `{}`, not `{}`",
            saved.project, fresh.project
        ));
    }
    let by_address =
        |plan: &Plan| -> std::collections::BTreeMap<String, writ_compiler::plan::Change> {
            plan.changes
                .iter()
                .map(|c| (c.address.clone(), c.clone()))
                .collect()
        };
    let (old, new) = (by_address(saved), by_address(fresh));
    for (address, change) in &old {
        match new.get(address) {
            None => differences.push(format!("{address}: in the saved plan, no longer needed")),
            Some(now) if now != change => {
                let what = if now.after != change.after {
                    "the source changed"
                } else if now.before != change.before {
                    "the live object changed"
                } else {
                    "the change differs"
                };
                differences.push(format!("{address}: {what} since the plan was made"));
            }
            Some(_) => {}
        }
    }
    for address in new.keys().filter(|a| !old.contains_key(*a)) {
        differences.push(format!("{address}: needed now, not in the saved plan"));
    }
    differences
}

/// What an apply came to: the exit code, and the outcome in markdown (for
/// the pull request the applied change came from).
pub struct Applied {
    pub code: i32,
    pub project: String,
    pub outcome: String,
}

/// Plans against the live providers, shows the plan, asks (unless
/// `--auto-approve`), and carries it out in dependency order. With a saved
/// plan, carries it out only if a fresh plan is exactly the same.
pub fn apply(out: &mut impl Write, path: &Path, args: ApplyArgs) -> Result<Applied, String> {
    let ApplyArgs {
        saved_plan,
        auto_approve,
        allow_mass_delete,
        only,
    } = args;
    let saved: Option<Plan> = match saved_plan {
        Some(file) => {
            let text = crate::project::read_text(file).map_err(|e| e.to_string())?;
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| format!("`{}` is not a writ plan: {e}", file.display()))?,
            )
        }
        None => None,
    };
    let project = load(path)?;
    let io = |e: std::io::Error| e.to_string();
    if project.config.project.snapshot.is_some() {
        return Err("writ.toml plans against a recorded snapshot (`[project] snapshot`): a snapshot cannot be applied to; remove that setting to apply to the live providers".into());
    }
    let applied = |code: i32, outcome: String| Applied {
        code,
        project: project.name.clone(),
        outcome,
    };
    let Some((model, mut desired)) = desired_state(out, &project, false)? else {
        return Ok(applied(
            1,
            "**Not applied**: the source has errors (see the job log).".to_string(),
        ));
    };
    let scope = Scope::new(&model, only)?;
    desired.resources.retain(|r| scope.includes(&r.provider));
    keep_live_providers(&model, &mut desired);
    let runtime = runtime()?;
    runtime.block_on(async {
        let providers = connect(&project, &model, &scope).await?;
        let observed = observe_with(&providers).await?;
        let plan = make_plan(&project, &desired, &observed)?;
        if let Some(saved) = &saved {
            let differences = stale_differences(saved, &plan);
            if !differences.is_empty() {
                writeln!(out, "error: the saved plan is out of date: the source or the live state changed since it was made:").map_err(io)?;
                for difference in &differences {
                    writeln!(out, "  - {difference}").map_err(io)?;
                }
                writeln!(out, "Make a new plan and review it.").map_err(io)?;
                let listed: String = differences.iter().map(|d| format!("- {d}\n")).collect();
                return Ok(applied(1, format!("**Refused**: the reviewed plan is out of date; the source or the live state changed since it was made:\n\n{listed}\nNothing was changed. Make a new plan and review it.")));
            }
        }
        out.write_all(render::text(&plan, colour()).as_bytes()).map_err(io)?;
        if let Some(refusal) = refusal(&plan, allow_mass_delete) {
            writeln!(out, "error: {refusal}").map_err(io)?;
            return Ok(applied(1, format!("**Refused**: {refusal}. Nothing was changed.")));
        }
        if !plan.has_changes() {
            writeln!(out, "Nothing to apply.").map_err(io)?;
            return Ok(applied(0, "Nothing to apply: the providers already match the source.".to_string()));
        }
        // A saved plan was reviewed when it was made: applying it is the approval.
        if !auto_approve && saved.is_none() {
            if !std::io::stdin().is_terminal() {
                return Err("refusing to apply without confirmation: pass `--auto-approve` when not on a terminal".into());
            }
            write!(out, "\nApply these {} changes? Only `yes` is accepted: ", plan.changes.len()).map_err(io)?;
            out.flush().map_err(io)?;
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).map_err(io)?;
            if answer.trim() != "yes" {
                writeln!(out, "Not applied.").map_err(io)?;
                return Ok(applied(1, "Not applied: not confirmed.".to_string()));
            }
        }
        let order = writ_compiler::plan::apply_order(&plan);
        let total = order.len();
        let mut done = 0;
        let mut made = String::new();
        let mut failure = None;
        for (index, change) in order.iter().enumerate() {
            let Some(provider) = providers.iter().find(|p| p.address() == change.provider).map(Live::provider) else {
                failure = Some((change.address.clone(), format!("no live provider `{}`", change.provider)));
                break;
            };
            let kind = format!("{:?}", change.kind_of_change()).to_lowercase();
            eprintln!("[{}/{total}] {kind} {} …", index + 1, change.address);
            match provider.apply(change).await {
                Ok(()) => {
                    done += 1;
                    made.push_str(&format!("- {kind} `{}`\n", change.address));
                }
                Err(error) => {
                    failure = Some((change.address.clone(), error.to_string()));
                    break;
                }
            }
        }
        match failure {
            None => {
                writeln!(out, "Apply complete: {done} of {total} changes made.").map_err(io)?;
                Ok(applied(0, format!("**Apply complete**: {done} of {total} changes made.\n\n<details><summary>Changes made</summary>\n\n{made}\n</details>")))
            }
            Some((address, error)) => {
                let not_attempted = total - done - 1;
                writeln!(
                    out,
                    "Apply failed at {address}: {error}\n{done} of {total} changes made, {not_attempted} not attempted. Plan and apply again to finish: every step is safe to repeat.",
                )
                .map_err(io)?;
                let error = error.replace('`', "'");
                Ok(applied(1, format!("**Apply failed** at `{address}`: {error}\n\n{done} of {total} changes made, {not_attempted} not attempted. Plan and apply again to finish: every step is safe to repeat.\n\n<details><summary>Changes made</summary>\n\n{made}\n</details>")))
            }
        }
    })
}

/// `writ drift`: only what changed outside writ.
pub fn drift(
    out: &mut impl Write,
    path: &Path,
    format: render::PlanFormat,
    detailed: bool,
    only: &[String],
) -> Result<i32, String> {
    let project = load(path)?;
    let Some((model, mut desired)) = desired_state(&mut std::io::stderr(), &project, true)? else {
        return Ok(1);
    };
    let scope = Scope::new(&model, only)?;
    desired.resources.retain(|r| scope.includes(&r.provider));
    if project.config.project.snapshot.is_none() {
        keep_live_providers(&model, &mut desired);
    }
    let observed = observed_state(&project, &model, &scope, None)?;
    let plan = make_plan(&project, &desired, &observed)?;
    let io = |e: std::io::Error| e.to_string();
    match format {
        render::PlanFormat::Json => {
            let body = serde_json::json!({"format_version": 1, "project": plan.project, "drift": plan.drift});
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            )
            .map_err(io)?;
        }
        _ => {
            if plan.drift.is_empty() {
                writeln!(
                    out,
                    "No drift: every object writ manages matches what writ last applied."
                )
                .map_err(io)?;
            } else {
                writeln!(
                    out,
                    "Drift: {} changed outside writ since writ last applied them:",
                    plan.drift.len()
                )
                .map_err(io)?;
                for entry in &plan.drift {
                    let what = if entry.changed_paths.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", entry.changed_paths.join(", "))
                    };
                    writeln!(out, "  ! {}: {}{what}", entry.address, entry.detail).map_err(io)?;
                }
                writeln!(out, "`writ apply` restores them.").map_err(io)?;
            }
        }
    }
    Ok(if detailed && !plan.drift.is_empty() {
        2
    } else {
        0
    })
}

/// Now, as RFC 3339 in UTC (`2026-11-28T12:40:00Z`).
fn now_rfc3339() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let date = writ_compiler::values::Date::from_unix_seconds(seconds);
    let time = seconds.rem_euclid(86_400);
    format!(
        "{date}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// `writ revoke AGENT`: cuts the agent (and, if asked, its delegates) off in
/// every AWS and Kubernetes provider in scope, at once and outside any plan.
pub fn revoke(
    out: &mut impl Write,
    path: &Path,
    agent: &str,
    include_delegates: bool,
    lift: bool,
    only: &[String],
) -> Result<i32, String> {
    let project = load(path)?;
    let io = |e: std::io::Error| e.to_string();
    let Some((model, _)) = desired_state(&mut std::io::stderr(), &project, true)? else {
        return Ok(1);
    };
    let id = model
        .agent_id(agent)
        .ok_or_else(|| format!("no agent named `{agent}`"))?;
    let mut agents = vec![model.agents[id].name.clone()];
    if include_delegates {
        for (other, candidate) in model.agents.iter().enumerate() {
            if model.ancestors(other).contains(&id) {
                agents.push(candidate.name.clone());
            }
        }
    }
    let scope = Scope::new(&model, only)?;
    let now = now_rfc3339();
    runtime()?.block_on(async {
        let providers = connect(&project, &model, &scope).await?;
        let mut failed = false;
        let mut report = |line: String| writeln!(out, "{line}").map_err(io);
        for live in &providers {
            let address = live.address().to_string();
            for name in &agents {
                let verb = if lift { "lift the revocation of" } else { "revoke" };
                match live {
                    Live::Aws(provider) => {
                        let result = if lift {
                            provider.lift_role(name).await
                        } else {
                            provider.revoke_role(name, &now).await
                        };
                        report(match result {
                            Ok(true) if lift => format!("lifted the revocation of `{name}` in {address}"),
                            Ok(true) => format!("revoked `{name}` in {address}: sessions issued before {now} are denied"),
                            Ok(false) => format!("`{name}` has no role in {address}"),
                            Err(error) => {
                                failed = true;
                                format!("could not {verb} `{name}` in {address}: {error}")
                            }
                        })?;
                        if lift {
                            continue;
                        }
                        match provider.disable_keys_of(name).await {
                            Ok(keys) => {
                                for key in keys {
                                    report(format!("disabled access key {key} of `{name}` in {address}"))?;
                                }
                            }
                            Err(error) => {
                                failed = true;
                                report(format!("could not disable the access keys of `{name}` in {address}: {error}"))?;
                            }
                        }
                    }
                    Live::Kubernetes(provider) if lift => {
                        report(match provider.lift_agent(name).await {
                            Ok(true) => format!("lifted the revocation of `{name}` in {address}: `writ apply` gives its bindings back"),
                            Ok(false) => format!("`{name}` is not revoked in {address}"),
                            Err(error) => {
                                failed = true;
                                format!("could not {verb} `{name}` in {address}: {error}")
                            }
                        })?;
                    }
                    Live::Kubernetes(provider) => match provider.revoke_agent(name, &now).await {
                        Ok(done) if done.is_empty() => {
                            report(format!("`{name}` has no service account in {address}"))?;
                        }
                        Ok(done) => {
                            for step in done {
                                report(format!("{address}: {step}"))?;
                            }
                            report(format!("revoked `{name}` in {address}: tokens already issued expire with their ttl and carry no access writ granted"))?;
                        }
                        Err(error) => {
                            failed = true;
                            report(format!("could not {verb} `{name}` in {address}: {error}"))?;
                        }
                    },
                }
            }
        }
        if lift && !failed {
            writeln!(
                out,
                "Access keys writ disabled stay disabled: rotate them and enable the new ones by hand."
            )
            .map_err(io)?;
        }
        Ok(i32::from(failed))
    })
}
