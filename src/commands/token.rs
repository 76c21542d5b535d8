//! `writ token AGENT [PATH]`: an installation token for an agent that runs
//! as a GitHub App, narrowed to exactly the repositories and permissions
//! its grants declare, minted with the App's key from writ.toml. Standard
//! output holds the token and nothing else (`GH_TOKEN=$(writ token …)`);
//! what it holds and when it expires go to standard error.

use crate::error::{CliError, Outcome};
use crate::live;
use crate::pipeline::{checked, load, show_findings};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use writ_compiler::facts::github::level_rank;
use writ_compiler::facts::ProviderKind;
use writ_provider_core::Retrier;
use writ_provider_github::app::TokenRequest;

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
    let wanted = writ_compiler::lower::github::app_token(model, agent, &provider, args.repository)
        .map_err(CliError::Message)?;
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
    let request = TokenRequest {
        repositories: wanted.repositories.clone(),
        permissions: wanted.permissions.clone(),
    };
    let slug = &wanted.slug;
    // The client is built where it runs: in the runtime.
    let issued = writ_provider_core::runtime()?.block_on(async {
        let Some(app) = live::github_app(&project, declared, &retrier).map_err(|e| e.to_string())? else {
            return Err(format!(
                "writ.toml holds no App credentials for `{provider}`: add `app_id` and `private_key_file` (or `private_key_env`) to `[provider.github.{}]`",
                declared.name
            ));
        };
        let installation = app
            .installation()
            .await
            .map_err(|e| format!("`{provider}`: {e}"))?;
        if installation.app_slug != *slug {
            return Err(format!(
                "`{provider}`: the key in writ.toml is App `{}`'s, and `{agent}` runs as App `{slug}`",
                installation.app_slug
            ));
        }
        if installation.suspended {
            return Err(format!(
                "`{provider}`: App `{slug}`'s installation is suspended (revoked with `writ revoke`?): it has no tokens to give"
            ));
        }
        let lacking = beyond(&request.permissions, &installation.permissions);
        if !lacking.is_empty() {
            return Err(format!(
                "`{agent}` declares {}, which App `{slug}`'s installation does not hold: grant them to the App in its settings, or narrow the grants",
                lacking.join(", ")
            ));
        }
        let issued = app
            .token(installation.id, &request)
            .await
            .map_err(|e| format!("`{provider}`: {e}"))?;
        // GitHub gives what it was asked for, or refuses; a token that
        // holds more is never handed out, and is ended at once.
        let wider = wider_than_asked(&issued, &request);
        if !wider.is_empty() {
            let ended = match app.revoke_token(&issued.token).await {
                Ok(()) => "revoked at once".to_string(),
                Err(error) => format!(
                    "it could not be revoked ({error}): it expires on its own at {}",
                    issued.expires_at
                ),
            };
            return Err(format!(
                "GitHub minted a token that holds more than asked ({}): not handed out; {ended}",
                wider.join(", ")
            ));
        }
        Ok(issued)
    })?;
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

/// What a minted token holds beyond the request: permissions (but
/// `metadata: read`, which every token has) and repositories.
fn wider_than_asked(
    issued: &writ_provider_github::app::IssuedToken,
    request: &TokenRequest,
) -> Vec<String> {
    let mut more = beyond(&issued.permissions, &request.permissions);
    more.retain(|p| p != "`metadata: read`");
    match (&issued.repositories, &request.repositories) {
        (Some(got), Some(asked)) => more.extend(
            got.iter()
                .filter(|r| !asked.iter().any(|a| a.eq_ignore_ascii_case(r)))
                .map(|r| format!("repository `{r}`")),
        ),
        (None, Some(_)) => more.push("every repository of the installation".to_string()),
        _ => {}
    }
    more
}

/// What `asked` holds beyond `held`, as `` `permission: level` ``.
fn beyond(asked: &BTreeMap<String, String>, held: &BTreeMap<String, String>) -> Vec<String> {
    asked
        .iter()
        .filter(|(permission, level)| {
            level_rank(level) > held.get(*permission).and_then(|l| level_rank(l))
        })
        .map(|(permission, level)| format!("`{permission}: {level}`"))
        .collect()
}
