//! The emergency brake, in every live provider in scope, at once and
//! outside any plan: `writ revoke` (and `--lift`), and `writ serve`'s
//! `POST /v1/revoke` where the server may write to the providers. Each
//! provider on its own: one that cannot be reached never keeps the agent
//! from being cut off in the others.

use crate::error::CliError;
use crate::live::{self, Scope};
use std::io::Write;
use writ_compiler::facts::ProviderKind;
use writ_provider_core::{Release, Retrier, RevokeMark};

/// What to pull the brake on.
pub struct Brake<'a> {
    pub project: &'a crate::project::Project,
    pub model: &'a writ_compiler::model::Model,
    /// The sources the model was checked from (its spans point there).
    pub sources: &'a writ_compiler::SourceMap,
    /// The agents cut off (or let go): by name, delegates already added.
    pub agents: &'a [String],
    pub lift: bool,
    /// The providers named with `--only` (all in scope when empty).
    pub only: &'a [String],
    pub scope: &'a Scope,
    /// The source has errors: providers whose declaration does not parse
    /// are named as not revoked.
    pub broken: bool,
    pub mark: &'a RevokeMark,
}

/// Pulls (or lifts) the brake, saying what it did in each provider on
/// `out`: whether it failed anywhere.
pub async fn pull(out: &mut impl Write, brake: &Brake<'_>) -> Result<bool, CliError> {
    let Brake {
        project,
        model,
        agents,
        lift,
        only,
        scope,
        broken,
        mark,
        ..
    } = *brake;
    let retrier = Retrier::default_policy();
    let lease = live::lease();
    let mut failed = false;
    let mut lifted_aws = false;
    // Each provider on its own: one that cannot be reached must not
    // keep the agent from being cut off in the others.
    for declared in live::in_scope(project, model, scope, true) {
        // GitHub's workflows reach the cloud through the trust the
        // cloud providers close: the brake never waits on, or fails
        // for, a GitHub token; only an App's installation is suspended,
        // with the App's own key.
        let address = declared.address();
        if declared.kind == ProviderKind::Github {
            failed |= github(out, brake, declared, &retrier).await?;
            continue;
        }
        let provider = match live::connect_one(project, model, declared, &retrier).await {
            Ok((provider, _)) => provider,
            Err(error) => {
                writeln!(out, "could not revoke in {address}: {error}")?;
                failed = true;
                continue;
            }
        };
        // The lock keeps a lift from interleaving with an apply. The
        // brake does not wait for one: an apply keeps every revocation
        // it finds on the objects it writes, planned or not.
        let locked = match provider.lock(&lease).await {
            Ok(()) => true,
            Err(error) if lift => {
                writeln!(out, "could not lift in {address}: {error}")?;
                failed = true;
                continue;
            }
            Err(error) => {
                writeln!(
                    out,
                    "warning: {error}; revoking anyway (an apply keeps the revocations it finds)"
                )?;
                false
            }
        };
        for name in agents {
            let report = if lift {
                provider.lift(name).await
            } else {
                let users = users_of(model, name, &address);
                provider.revoke(name, mark, &users).await
            };
            for line in &report.lines {
                writeln!(out, "{line}")?;
            }
            failed |= report.failed;
        }
        lifted_aws |= lift && declared.kind == ProviderKind::Aws;
        if locked {
            if let Err(error) = provider.unlock(&lease.holder, Release::Unchanged).await {
                eprintln!("warning: could not release the lock of {address}: {error}; it ends with its lease");
            }
        }
    }
    for declared in live::in_scope(project, model, scope, false) {
        // Named on purpose, it is a failure; in the whole project's
        // scope, a note.
        let address = declared.address();
        if declared.kind == ProviderKind::Github {
            failed |= github(out, brake, declared, &retrier).await?;
            continue;
        }
        let explicit = only.contains(&address);
        writeln!(
            out,
            "{}: not revoked in {address}: it is not read live (writ.toml has no `[provider.{}.{}]`)",
            if explicit { "error" } else { "note" },
            declared.kind.as_str(),
            declared.name
        )?;
        failed |= explicit;
    }
    if broken && only.is_empty() {
        // A provider whose declaration does not parse is not in the
        // model: say so for each connection writ.toml names.
        for (kind, tables) in &project.config.provider {
            for name in tables.keys() {
                let address = format!("{kind}.{name}");
                if model.providers.iter().all(|p| p.address() != address) {
                    writeln!(
                        out,
                        "error: not revoked in {address}: its declaration in the source does not parse"
                    )?;
                    failed = true;
                }
            }
        }
    }
    if lifted_aws && !failed {
        writeln!(
            out,
            "Access keys writ disabled stay disabled: rotate them and enable the new ones by hand."
        )?;
    }
    Ok(failed)
}

/// The IAM users (or other long-lived identities) the source says `agent`
/// signs in as in `provider`: the only ones whose keys a revoke disables.
pub fn users_of(model: &writ_compiler::model::Model, agent: &str, provider: &str) -> Vec<String> {
    let Some(id) = model.agent_id(agent) else {
        return Vec::new();
    };
    model.agents[id]
        .runs_on
        .iter()
        .filter(|w| model.providers[w.provider].address() == provider)
        .filter_map(|w| match &w.kind {
            writ_compiler::model::WorkloadKind::AwsUser { user } => Some(user.clone()),
            _ => None,
        })
        .collect()
}

/// What the brake does in a GitHub provider, and whether it failed there.
/// Workflows reach the cloud through the trust the cloud providers close:
/// the workflows of each agent are named. An App agent's installation
/// keeps its tokens: with the App's key in writ.toml, writ suspends the
/// installation (which stops every agent that runs as the App, each
/// named), and lifts the suspension with `--lift`; without it, the brake
/// says what to do by hand, and fails.
async fn github(
    out: &mut impl Write,
    brake: &Brake<'_>,
    declared: &writ_compiler::model::Provider,
    retrier: &Retrier,
) -> Result<bool, CliError> {
    let Brake {
        project,
        model,
        sources,
        agents,
        lift,
        ..
    } = *brake;
    let address = declared.address();
    let mut apps: Vec<(String, String)> = Vec::new();
    let mut workflows: Vec<(String, String)> = Vec::new();
    let mut failed = false;
    let (verb, undo) = if lift {
        ("lift", "unsuspend")
    } else {
        ("revoke", "suspend")
    };
    for name in agents {
        let Some(id) = model.agent_id(name) else {
            // Only the source says which App an agent runs as.
            writeln!(out, "could not {verb} `{name}` in {address}: the source does not declare it (or declares it in a file that does not parse), so writ cannot tell whether it runs as a GitHub App; if it does, {undo} the App's installation in the organisation's settings")?;
            failed = true;
            continue;
        };
        for workload in &model.agents[id].runs_on {
            if model.providers[workload.provider].address() != address {
                continue;
            }
            match &workload.kind {
                writ_compiler::model::WorkloadKind::GithubApp { slug } => {
                    apps.push((name.clone(), slug.clone()));
                }
                writ_compiler::model::WorkloadKind::GithubActions { .. } => {
                    let text = sources.snippet(workload.span);
                    let text = text.trim_start_matches("runs_on ").trim();
                    workflows.push((name.clone(), format!("`{text}`")));
                }
                _ => {}
            }
        }
    }
    for (agent, runs) in &workflows {
        if !lift {
            writeln!(out, "note: `{agent}` runs_on {runs}: its workflows reach the cloud through the trust the cloud providers close")?;
        }
    }
    if apps.is_empty() {
        if workflows.is_empty() && !failed {
            writeln!(
                out,
                "note: nothing to {} in {address}",
                if lift { "lift" } else { "revoke" }
            )?;
        }
        return Ok(failed);
    }
    let app = match live::github_app(project, declared, retrier) {
        Ok(Some(app)) => app,
        Ok(None) => {
            for (agent, slug) in &apps {
                writeln!(out, "could not {} `{agent}` in {address}: it runs as GitHub App `{slug}`, whose installation keeps its tokens, and writ.toml holds no key of the App to {} it with (`app_id` and `private_key_file` in `[provider.github.{}]`): {} it in the organisation's settings (GitHub Apps → `{slug}` → {})",
                    if lift { "lift" } else { "revoke" },
                    if lift { "unsuspend" } else { "suspend" },
                    declared.name,
                    if lift { "unsuspend" } else { "suspend" },
                    if lift { "Unsuspend" } else { "Suspend" },
                )?;
            }
            return Ok(true);
        }
        Err(error) => {
            writeln!(
                out,
                "could not {} in {address}: {error}",
                if lift { "lift" } else { "revoke" }
            )?;
            return Ok(true);
        }
    };
    let installation = match app.installation().await {
        Ok(installation) => installation,
        Err(error) => {
            writeln!(
                out,
                "could not {} in {address}: {error}",
                if lift { "lift" } else { "revoke" }
            )?;
            return Ok(true);
        }
    };
    let mut slugs: Vec<&String> = apps.iter().map(|(_, slug)| slug).collect();
    slugs.sort();
    slugs.dedup();
    for slug in slugs {
        let named: Vec<&String> = apps
            .iter()
            .filter(|(_, s)| s == slug)
            .map(|(a, _)| a)
            .collect();
        if installation.app_slug != *slug {
            for agent in named {
                writeln!(out, "could not {} `{agent}` in {address}: it runs as GitHub App `{slug}`, and the key in writ.toml is App `{}`'s: suspend `{slug}` in the organisation's settings", if lift { "lift" } else { "revoke" }, installation.app_slug)?;
            }
            failed = true;
            continue;
        }
        // Every agent of the source that runs as this App stops with it.
        let others: Vec<String> = model
            .agents
            .iter()
            .filter(|a| !named.contains(&&a.name))
            .filter(|a| {
                a.runs_on.iter().any(|w| {
                    model.providers[w.provider].address() == address
                        && matches!(&w.kind, writ_compiler::model::WorkloadKind::GithubApp { slug: s } if s == slug)
                })
            })
            .map(|a| format!("`{}`", a.name))
            .collect();
        let who = named
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        // writ keeps no record of who was revoked in GitHub: lifting the
        // suspension for one agent would let the App's other agents run
        // again, whether or not they were revoked themselves.
        if lift && !others.is_empty() {
            writeln!(out, "could not lift {who} in {address}: App `{slug}`'s installation is also what {} {} as, and lifting its suspension would let {} run again: unsuspend it by hand (GitHub Apps → `{slug}` → Unsuspend) once every agent of the App may run", others.join(", "), if others.len() == 1 { "runs" } else { "run" }, if others.len() == 1 { "it" } else { "them" })?;
            failed = true;
            continue;
        }
        match app.suspend(installation.id, !lift).await {
            Ok(()) if lift => {
                writeln!(out, "lifted {who} in {address}: App `{slug}`'s installation (id {}) is no longer suspended", installation.id)?;
            }
            Ok(()) => {
                writeln!(out, "revoked {who} in {address}: suspended App `{slug}`'s installation (id {}); its tokens no longer work, and it gets no new ones until `writ revoke --lift`", installation.id)?;
            }
            Err(error) => {
                writeln!(
                    out,
                    "could not {} {who} in {address}: {error}",
                    if lift { "lift" } else { "revoke" }
                )?;
                failed = true;
                continue;
            }
        }
        if !others.is_empty() {
            writeln!(
                out,
                "note: {} {} as App `{slug}` too, and {} with it",
                others.join(", "),
                if others.len() == 1 { "runs" } else { "run" },
                if lift { "resumes" } else { "is stopped" }
            )?;
        }
    }
    Ok(failed)
}
