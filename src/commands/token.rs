//! `writ token AGENT [PATH]`: an installation token for an agent that runs
//! as a GitHub App, narrowed to exactly the repositories and permissions
//! its grants declare, minted with the App's key from writ.toml. Standard
//! output holds the token and nothing else (`GH_TOKEN=$(writ token …)`);
//! what it holds and when it expires go to standard error.

use crate::error::{CliError, Outcome};
use crate::live;
use crate::pipeline::{checked, load, show_findings};
use std::io::Write;
use std::path::Path;
use writ_compiler::facts::ProviderKind;
use writ_provider_core::Retrier;

pub struct TokenArgs<'a> {
    pub agent: &'a str,
    /// `github.acme`; needed only when the agent runs as Apps in two.
    pub provider: Option<&'a str>,
    /// One repository's token (`acme/app`, or `app`).
    pub repository: Option<&'a str>,
}

pub fn run(out: &mut impl Write, path: &Path, args: TokenArgs) -> Outcome {
    let project = load(path)?;
    let checked = checked(&project)?;
    if checked.has_errors() {
        show_findings(&project, &checked.diagnostics)?;
        return Err(CliError::Message(
            "the source has errors: no token is minted from it".into(),
        ));
    }
    let model = &checked.model;
    let agent = args.agent;
    let Some(id) = model.agent_id(agent) else {
        return Err(CliError::Message(format!(
            "the source declares no agent `{agent}`"
        )));
    };
    let provider = match args.provider {
        Some(provider) => provider.to_string(),
        None => {
            let mut apps: Vec<String> = model.agents[id]
                .runs_on
                .iter()
                .filter(|w| matches!(w.kind, writ_compiler::model::WorkloadKind::GithubApp { .. }))
                .map(|w| model.providers[w.provider].address())
                .collect();
            apps.sort();
            apps.dedup();
            match apps.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(CliError::Message(format!(
                        "`{agent}` does not run as a GitHub App: writ mints tokens only for App agents (`runs_on github.P app \"SLUG\"`)"
                    )))
                }
                _ => {
                    return Err(CliError::Message(format!(
                        "`{agent}` runs as Apps in {}: name one with `--provider`",
                        apps.join(", ")
                    )))
                }
            }
        }
    };
    let Some(declared) = model
        .providers
        .iter()
        .find(|p| p.kind == ProviderKind::Github && p.address() == provider)
    else {
        return Err(CliError::Message(format!(
            "the source declares no GitHub provider `{provider}`"
        )));
    };
    let retrier = Retrier::default_policy();
    // The client is built where it runs: in the runtime.
    let (issued, request, slug) = writ_provider_core::runtime()?
        .block_on(live::mint_app_token(
            &project,
            model,
            declared,
            agent,
            args.repository,
            &retrier,
        ))
        .map_err(|e| CliError::Message(e.why))?;
    writeln!(out, "{}", issued.token)?;
    let holds: Vec<String> = issued
        .permissions
        .iter()
        .map(|(p, l)| format!("{p}:{l}"))
        .collect();
    eprintln!(
        "writ: a token of App `{slug}` for `{agent}`, until {}: {} on {}",
        issued.expires_at,
        holds.join(", "),
        match &request.repositories {
            Some(names) => names.join(", "),
            None => "every repository of the installation".to_string(),
        }
    );
    Ok(0)
}
