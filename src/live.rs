//! Live providers: connecting to them from `writ.toml` (each behind the
//! `Provider` trait, all sharing the run's retry budget), observing them,
//! or reading a recorded snapshot instead. Progress goes to standard error,
//! so that plans and snapshots on standard output stay clean.

use crate::error::CliError;
use crate::project::Project;
use std::collections::BTreeSet;
use std::path::Path;
use writ_compiler::facts::ProviderKind;
use writ_compiler::lower::Desired;
use writ_compiler::model::{AgentId, Model, ProviderId, ProviderSettings};
use writ_compiler::plan::{Identity, Unfinished};
use writ_compiler::resource::Resource;
use writ_compiler::snapshot::Snapshot;
use writ_compiler::usage::LastAccessed;
use writ_provider_aws::{AwsProvider, AwsSettings};
use writ_provider_core::{Lease, Provider, Release, Retrier};
use writ_provider_github::GithubState;
use writ_provider_kubernetes::{KubernetesProvider, KubernetesSettings};

/// The provider instances a run covers (`--only`, or all).
pub struct Scope {
    only: Vec<String>,
}

impl Scope {
    /// Checks that every `--only` names a declared provider.
    pub fn new(model: &Model, only: &[String]) -> Result<Scope, CliError> {
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
                )
                .into());
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

/// Connects to every live provider in scope, from `[provider.KIND.NAME]`;
/// every one spends `retrier`'s budget, the run's.
pub async fn connect(
    project: &Project,
    model: &Model,
    scope: &Scope,
    retrier: &Retrier,
) -> Result<Live, CliError> {
    let mut live = Live {
        providers: Vec::new(),
        identities: Vec::new(),
    };
    for provider in in_scope(project, model, scope, true) {
        let (connected, identity) = connect_one(project, model, provider, retrier).await?;
        live.providers.push(connected);
        live.identities.push(identity);
    }
    Ok(live)
}

/// The live providers of a run, each with where it proved to be.
pub struct Live {
    pub providers: Vec<Box<dyn Provider>>,
    pub identities: Vec<Identity>,
}

/// What a plan is made against: objects, and where they were read.
pub struct Observed {
    pub resources: Vec<Resource>,
    /// Each live provider's identity; empty for a snapshot.
    pub identities: Vec<Identity>,
    /// Read from live providers (not a snapshot).
    pub live: bool,
    /// Runs whose lock is still there (none for a snapshot).
    pub unfinished: Vec<Unfinished>,
    /// The snapshot file read, when not live.
    pub snapshot: Option<std::path::PathBuf>,
}

/// The providers in scope that writ can (`live`) or cannot yet read and
/// change live.
pub fn in_scope<'m>(
    project: &'m Project,
    model: &'m Model,
    scope: &'m Scope,
    live: bool,
) -> impl Iterator<Item = &'m writ_compiler::model::Provider> {
    model
        .providers
        .iter()
        .filter(move |p| is_live(project, p) == live && scope.includes(&p.address()))
}

/// Is this provider read live? AWS and Kubernetes ones are; GitHub and GCP
/// ones only when writ.toml says how (a project may plan its cloud access
/// without a GitHub token, and its plans say what that leaves unbound).
fn is_live(project: &Project, provider: &writ_compiler::model::Provider) -> bool {
    match provider.kind {
        ProviderKind::Aws | ProviderKind::Kubernetes => true,
        ProviderKind::Github => project
            .config
            .provider
            .get("github")
            .is_some_and(|t| t.contains_key(&provider.name)),
        ProviderKind::Gcp => project
            .config
            .provider
            .get("gcp")
            .is_some_and(|t| t.contains_key(&provider.name)),
    }
}

/// Connects to one live provider, from its `[provider.KIND.NAME]` section.
pub async fn connect_one(
    project: &Project,
    model: &Model,
    provider: &writ_compiler::model::Provider,
    retrier: &Retrier,
) -> Result<(Box<dyn Provider>, Identity), CliError> {
    let address = provider.address();
    let kind = provider.kind.as_str();
    // The project's name marks what writ owns in the providers: it must be
    // chosen, not taken from the folder (two repositories that both keep
    // their source in `infra/` would otherwise be one project, and each
    // would plan to delete the other's objects).
    if project.config.project.name.is_none() {
        return Err(format!(
            "`{address}` is live, and live providers need the project's name in writ.toml: it marks every object writ owns there; add\n\n[project]\nname = \"{}\"\n\nto {} (the name must stay the same for as long as the project lives)",
            project.name,
            project.root.join("writ.toml").display()
        )
        .into());
    }
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
        )
        .into());
    }
    // One arm per provider kind that can be read live.
    let connected: Box<dyn Provider> = match &provider.settings {
        ProviderSettings::Aws {
            account, partition, ..
        } => {
            // The SDK also takes endpoints from the environment: they must
            // keep credentials off the wire as writ.toml's must.
            for (name, value) in std::env::vars() {
                if name.starts_with("AWS_ENDPOINT_URL") {
                    crate::config::check_endpoint(&value)
                        .map_err(|e| format!("`{address}`: {name}: {e}"))?;
                }
            }
            let settings = AwsSettings {
                region: get("region"),
                profile: get("profile"),
                endpoint_url: get("endpoint_url"),
                // A malformed `max_key_age` is the plan's error to report;
                // connecting (the emergency brake too) never fails on it.
                flag_keys_created_before: key_age_cutoff(project).ok().flatten(),
            };
            Box::new(
                AwsProvider::connect(
                    &address,
                    &project.name,
                    account,
                    partition,
                    &settings,
                    retrier,
                )
                .await,
            )
        }
        ProviderSettings::Kubernetes { .. } => {
            // Unset keys follow the standard kubeconfig rules.
            let settings = KubernetesSettings {
                context: get("context"),
                kubeconfig: get("kubeconfig").map(|file| project.root.join(file)),
                inventory_namespace: get("inventory_namespace"),
                ca_sha256: get("ca_sha256"),
            };
            let connected =
                KubernetesProvider::connect(&address, &project.name, &settings, retrier).await?;
            // Where the inventory record and the lock live must be chosen:
            // whoever may write Secrets there may erase revocations.
            if settings.inventory_namespace.is_none() {
                return Err(format!(
                    "`{address}`: writ.toml must name the namespace of writ's inventory record and lock: add `inventory_namespace = \"writ\"` to `[provider.kubernetes.{}]` (a namespace where only writ's identity may write Secrets and Leases)",
                    provider.name
                )
                .into());
            }
            Box::new(connected)
        }
        ProviderSettings::Gcp {
            project: gcp_project,
        } => {
            let token_env =
                get("access_token_env").unwrap_or_else(|| "GOOGLE_OAUTH_ACCESS_TOKEN".to_string());
            let mut token = std::env::var(&token_env).unwrap_or_default();
            if token.trim().is_empty() {
                token = writ_provider_gcp::application_default_token()
                    .await
                    .map_err(|e| {
                        format!(
                            "`{address}`: no GCP access token in `{token_env}`, and {}: set up Application Default Credentials (`gcloud auth application-default login`, `GOOGLE_APPLICATION_CREDENTIALS`, or a workload identity), or set `{token_env}` (`export {token_env}=$(gcloud auth print-access-token)`)",
                            e.message
                        )
                    })?;
            }
            Box::new(
                writ_provider_gcp::GcpProvider::connect(
                    &address,
                    &project.name,
                    gcp_project,
                    writ_provider_gcp::GcpSettings {
                        endpoint_url: get("endpoint_url"),
                        token,
                        quota_project: get("quota_project"),
                    },
                    writ_compiler::lower::gcp::policy_resources(model, &address),
                    retrier,
                )
                .map_err(|e| format!("`{address}`: {e}"))?,
            )
        }
        ProviderSettings::Github { org } => {
            let token_env = get("token_env").unwrap_or_else(|| "GITHUB_TOKEN".to_string());
            let token = std::env::var(&token_env).unwrap_or_default();
            if token.trim().is_empty() {
                return Err(format!(
                    "`{address}`: no GitHub token in `{token_env}`: set it (a token that may read the repositories' metadata and Actions settings), or name another variable with `token_env` in `[provider.github.{}]`",
                    provider.name
                )
                .into());
            }
            let api = github_api(
                table
                    .and_then(|t| t.get("api_url"))
                    .and_then(|v| v.as_str()),
            )
            .map_err(|e| format!("`{address}`: {e}"))?;
            Box::new(
                GithubState::connect(
                    &address,
                    org,
                    writ_provider_github::Governed {
                        repositories: github_repositories(model, provider),
                        workflows: github_workflows(model, provider),
                        environments: github_environments(model, provider),
                    },
                    writ_provider_github::Connection {
                        api,
                        token,
                        cache: crate::term::cache_dir().map(|d| d.join("github")),
                        app: github_app(project, provider, retrier)?,
                    },
                    retrier,
                )
                .map_err(|e| format!("`{address}`: {e}"))?,
            )
        }
    };
    // Before anything else: is it where the source says?
    let identity = connected.identify().await?;
    eprintln!(
        "{address}: {}{}",
        identity.place,
        identity
            .caller
            .as_deref()
            .map(|c| format!(", as {c}"))
            .unwrap_or_default()
    );
    Ok((connected, identity))
}

/// The repositories of `provider` (a GitHub organisation) that agents run
/// in, each once.
fn github_repositories(
    model: &Model,
    provider: &writ_compiler::model::Provider,
) -> Vec<writ_provider_github::Repository> {
    let mut names: Vec<&str> = model
        .agents
        .iter()
        .flat_map(|a| &a.runs_on)
        .filter(|w| model.providers[w.provider].address() == provider.address())
        .filter_map(|w| match &w.kind {
            writ_compiler::model::WorkloadKind::GithubActions { repository, .. } => {
                Some(repository.as_str())
            }
            _ => None,
        })
        .collect();
    names.sort_unstable_by_key(|n| n.to_ascii_lowercase());
    names.dedup_by_key(|n| n.to_ascii_lowercase());
    names
        .into_iter()
        .filter_map(|n| writ_provider_github::Repository::parse(n).ok())
        .collect()
}

/// The workflow files of `provider` (a GitHub organisation) that agents
/// run as, each once.
fn github_workflows(
    model: &Model,
    provider: &writ_compiler::model::Provider,
) -> Vec<writ_provider_github::Workflow> {
    let mut found: Vec<writ_provider_github::Workflow> = Vec::new();
    let workloads = model
        .agents
        .iter()
        .flat_map(|a| &a.runs_on)
        .filter(|w| model.providers[w.provider].address() == provider.address());
    for workload in workloads {
        let writ_compiler::model::WorkloadKind::GithubActions {
            repository,
            workflow: Some(path),
            git_ref,
            ..
        } = &workload.kind
        else {
            continue;
        };
        let Ok(repository) = writ_provider_github::Repository::parse(repository) else {
            continue;
        };
        let workflow = writ_provider_github::Workflow {
            repository,
            path: path.clone(),
            git_ref: git_ref.clone(),
        };
        if !found.contains(&workflow) {
            found.push(workflow);
        }
    }
    found
}

/// The GitHub API a provider talks to: its `api_url`, else
/// `GITHUB_API_URL`, else github.com.
fn github_api(api_url: Option<&str>) -> Result<String, String> {
    let api = api_url
        .map(str::to_string)
        .or_else(|| std::env::var("GITHUB_API_URL").ok())
        .unwrap_or_else(|| "https://api.github.com".to_string());
    crate::config::check_endpoint(&api)?;
    Ok(api)
}

/// The key of a GitHub provider's App, as `writ.toml` names its
/// credentials (`app_id`, and `private_key_file` or `private_key_env`),
/// the API's address and the organisation; `None` when it names none.
#[allow(clippy::type_complexity)]
pub fn github_app_key(
    project: &Project,
    provider: &writ_compiler::model::Provider,
) -> Result<Option<(writ_provider_github::app::AppKey, String, String)>, CliError> {
    let address = provider.address();
    let writ_compiler::model::ProviderSettings::Github { org } = &provider.settings else {
        return Ok(None);
    };
    let Some(table) = project
        .config
        .provider
        .get("github")
        .and_then(|t| t.get(&provider.name))
    else {
        return Ok(None);
    };
    let text = |key: &str| table.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let app_id = match table.get("app_id") {
        Some(toml::Value::Integer(id)) => u64::try_from(*id).ok(),
        Some(toml::Value::String(id)) => id.parse::<u64>().ok(),
        _ => None,
    };
    let section = format!("[provider.github.{}]", provider.name);
    let (file, env) = (text("private_key_file"), text("private_key_env"));
    let Some(app_id) = app_id else {
        if file.is_some() || env.is_some() {
            return Err(
                format!("{section} names a private key but no `app_id`: add the App's id").into(),
            );
        }
        return Ok(None);
    };
    let (pem, from) = match (file, env) {
        (Some(_), Some(_)) => {
            return Err(format!("{section} names both `private_key_file` and `private_key_env`: keep one").into())
        }
        (None, None) => {
            return Err(format!("{section} names `app_id` but no key: add `private_key_file = \"PATH\"` or `private_key_env = \"VARIABLE\"`").into())
        }
        (Some(file), None) => {
            let path = project.root.join(&file);
            let pem = std::fs::read_to_string(&path).map_err(|e| {
                format!("{section}: cannot read the App's private key `{}`: {e}", path.display())
            })?;
            (pem, format!("`{}`", path.display()))
        }
        (None, Some(variable)) => {
            let pem = std::env::var(&variable).unwrap_or_default();
            if pem.trim().is_empty() {
                return Err(format!("{section}: no App private key in `{variable}`: set it to the key's PEM text").into());
            }
            (pem, format!("`{variable}`"))
        }
    };
    let key = writ_provider_github::app::AppKey::parse(
        app_id,
        &pem,
        &format!("the App private key in {from}"),
    )
    .map_err(|e| format!("{section}: {e}"))?;
    let api = github_api(text("api_url").as_deref()).map_err(|e| format!("`{address}`: {e}"))?;
    Ok(Some((key, api, org.clone())))
}

/// The GitHub App of `provider` as writ.toml configures it (`app_id` and
/// a private key), connected (nothing sent yet); `None` when writ.toml
/// names none.
pub fn github_app(
    project: &Project,
    provider: &writ_compiler::model::Provider,
    retrier: &Retrier,
) -> Result<Option<writ_provider_github::app::AppClient>, CliError> {
    let Some((key, api, org)) = github_app_key(project, provider)? else {
        return Ok(None);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Some(
        writ_provider_github::app::AppClient::connect(&api, &org, &key, now, retrier)
            .map_err(|e| format!("`{}`: {e}", provider.address()))?,
    ))
}

/// The deployment environments of `provider` (a GitHub organisation)
/// that agents run in, each once (names compared as GitHub does, without
/// regard to case).
fn github_environments(
    model: &Model,
    provider: &writ_compiler::model::Provider,
) -> Vec<writ_provider_github::Environment> {
    let mut found: Vec<writ_provider_github::Environment> = Vec::new();
    // As lowering governs them: of the agents that hold access, each
    // environment spelt as the first of them spells it.
    let workloads = model
        .agents
        .iter()
        .filter(|a| !a.retired && !a.frozen)
        .flat_map(|a| &a.runs_on)
        .filter(|w| model.providers[w.provider].address() == provider.address());
    for workload in workloads {
        let writ_compiler::model::WorkloadKind::GithubActions {
            repository,
            environment: Some(name),
            ..
        } = &workload.kind
        else {
            continue;
        };
        let Ok(repository) = writ_provider_github::Repository::parse(repository) else {
            continue;
        };
        let same = |e: &writ_provider_github::Environment| {
            e.repository
                .to_string()
                .eq_ignore_ascii_case(&repository.to_string())
                && e.name.to_lowercase() == name.to_lowercase()
        };
        if !found.iter().any(same) {
            found.push(writ_provider_github::Environment {
                repository,
                name: name.clone(),
            });
        }
    }
    found
}

/// Observes each provider in turn, saying how many requests it took.
pub async fn observe_with(providers: &[Box<dyn Provider>]) -> Result<Vec<Resource>, CliError> {
    let mut resources = Vec::new();
    for provider in providers {
        eprintln!("observing {} …", provider.address());
        let before = provider.stats();
        let found = provider
            .observe()
            .await
            .map_err(|e| format!("observing `{}`: {e}", provider.address()))?;
        let stats = provider.stats() - before;
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

/// The day before which an active access key is older than the project's
/// maximum key age (`YYYY-MM-DD`), if it sets one.
fn key_age_cutoff(project: &Project) -> Result<Option<String>, CliError> {
    let Some(days) = project.config.max_key_age_days()? else {
        return Ok(None);
    };
    let today = crate::clock::today()?;
    let today = jiff::civil::date(
        i16::try_from(today.year).unwrap_or(i16::MAX),
        i8::try_from(today.month).unwrap_or(1),
        i8::try_from(today.day).unwrap_or(1),
    );
    let cutoff = today
        .checked_sub(jiff::Span::new().days(days))
        .map_err(|e| format!("the maximum key age of {days} days: {e}"))?;
    Ok(Some(cutoff.to_string()))
}

/// The runs whose lock is still there, other than this run's own (`ours`,
/// its holder, when it holds the locks): so that the plan calls what they
/// left half-done an interrupted apply. A lock that cannot be read is a
/// warning, and the plan calls what differs drift, as without a lock.
pub async fn unfinished_runs(
    providers: &[Box<dyn Provider>],
    ours: Option<&str>,
) -> Vec<Unfinished> {
    let now = crate::clock::now_rfc3339();
    let mut runs = Vec::new();
    for provider in providers {
        let record = match provider.lock_record().await {
            Ok(record) => record,
            Err(error) => {
                eprintln!(
                    "warning: could not read the project's lock in {}: {error}",
                    provider.address()
                );
                continue;
            }
        };
        let address = provider.address().to_string();
        if let Some(held) = record.held.filter(|h| ours != Some(h.holder.as_str())) {
            let (running, detail) = if Lease::ended(&held.until, &now) {
                (false, format!("a run by {} did not finish: its lock was never given back and its lease ended at {} (it was killed, or cut off)", held.holder, held.until))
            } else {
                (true, format!("a run by {} holds the project's lock until {}: it may be changing objects now", held.holder, held.until))
            };
            runs.push(Unfinished {
                provider: address.clone(),
                running,
                detail,
                agents: None,
            });
        }
        if let Some(record) = record.unfinished {
            let detail = match &record.agents {
                Some(agents) => format!(
                    "an earlier run stopped before it finished: {} (left: {})",
                    record.what,
                    agents
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => format!("an earlier run stopped before it finished: {}", record.what),
            };
            runs.push(Unfinished {
                provider: address,
                running: false,
                detail,
                agents: record.agents,
            });
        }
    }
    runs
}

/// Observes every live provider in scope.
pub fn observe(
    project: &Project,
    model: &Model,
    scope: &Scope,
    retrier: &Retrier,
) -> Result<Observed, CliError> {
    writ_provider_core::runtime()?.block_on(async {
        let live = connect(project, model, scope, retrier).await?;
        Ok(Observed {
            resources: observe_with(&live.providers).await?,
            unfinished: unfinished_runs(&live.providers, None).await,
            identities: live.identities,
            live: true,
            snapshot: None,
        })
    })
}

/// IAM's last-accessed data for the role of every agent in the AWS
/// providers in scope, read live (docs/usage.md). An agent whose role does
/// not exist yet is left out, and said so: its grants there are judged by
/// the logs alone.
pub fn last_accessed(
    project: &Project,
    model: &Model,
    scope: &Scope,
) -> Result<Vec<(AgentId, ProviderId, LastAccessed)>, CliError> {
    let desired = writ_compiler::lower::lower(model, &project.name);
    let roles = writ_compiler::usage::agent_roles(model, &desired);
    let aws: Vec<String> = model
        .providers
        .iter()
        .filter(|p| p.kind == ProviderKind::Aws && scope.includes(&p.address()))
        .map(|p| p.address())
        .collect();
    if aws.is_empty() {
        return Err(
            "`--live` reads IAM's last-accessed data, and no AWS provider is in scope".into(),
        );
    }
    let scope = Scope::new(model, &aws)?;
    writ_provider_core::runtime()?.block_on(async {
        let live = connect(project, model, &scope, &Retrier::default_policy()).await?;
        let mut found = Vec::new();
        for provider in &live.providers {
            let address = provider.address();
            let asked: Vec<&(AgentId, ProviderId, String)> = roles
                .iter()
                .filter(|(_, p, _)| model.providers[*p].address() == address)
                .collect();
            eprintln!(
                "reading IAM's last-accessed data of {} roles in {address} …",
                asked.len()
            );
            let arns: Vec<String> = asked.iter().map(|(_, _, arn)| arn.clone()).collect();
            let answers = provider
                .last_accessed(&arns)
                .await
                .map_err(|e| format!("reading `{address}`: {e}"))?;
            let mut missing = Vec::new();
            for (&&(agent, id, _), answer) in asked.iter().zip(answers) {
                match answer {
                    Some(access) => found.push((agent, id, access)),
                    None => missing.push(format!("`{}`", model.agents[agent].name)),
                }
            }
            if !missing.is_empty() {
                eprintln!(
                    "{address}: no role yet for {} (not applied?): IAM's data cannot judge their grants",
                    missing.join(", ")
                );
            }
        }
        Ok(found)
    })
}

/// Keeps the desired objects of the providers read live in this run: AWS
/// and Kubernetes ones, and GitHub ones that writ.toml connects. Others
/// (GCP; GitHub without its section) are planned from snapshots only; a
/// live run leaves them out, and says so, rather than showing what it
/// cannot observe as "to create".
pub fn keep_live_providers(project: &Project, model: &Model, desired: &mut Desired) {
    let not_live: BTreeSet<String> = desired
        .resources
        .iter()
        .map(|r| r.provider.clone())
        .filter(|address| {
            model
                .providers
                .iter()
                .find(|p| &p.address() == address)
                .is_none_or(|p| !is_live(project, p))
        })
        .collect();
    for address in &not_live {
        match address.strip_prefix("github.") {
            Some(name) => eprintln!("note: `{address}` is not read (writ.toml has no `[provider.github.{name}]`): the GitHub settings writ governs are left out"),
            None => eprintln!("note: `{address}` cannot be read live by this version of writ; it is left out (plan it from a snapshot)"),
        }
    }
    desired
        .resources
        .retain(|r| !not_live.contains(&r.provider));
}

/// The snapshot a run plans against, if any: `--snapshot`, else
/// `[project] snapshot` in writ.toml.
pub fn snapshot_file(project: &Project, snapshot: Option<&Path>) -> Option<std::path::PathBuf> {
    match (snapshot, &project.config.project.snapshot) {
        (Some(file), _) => Some(file.to_path_buf()),
        (None, Some(file)) => Some(project.root.join(file)),
        (None, None) => None,
    }
}

/// The objects of a recorded snapshot, in scope; those exactly as in
/// `like` (the desired objects) share their attributes.
pub fn snapshot_state(file: &Path, scope: &Scope, like: &[Resource]) -> Result<Observed, CliError> {
    let text = crate::project::read_text(file)?;
    let snapshot = Snapshot::parse_sharing(&text, like)
        .map_err(|e| format!("snapshot `{}`: {e}", file.display()))?;
    // Read, the text is not needed again; the objects move out of the
    // snapshot rather than being copied (a large estate's is hundreds of
    // megabytes).
    drop(text);
    Ok(Observed {
        resources: snapshot
            .into_resources()
            .filter(|r| scope.includes(&r.provider))
            .collect(),
        identities: Vec::new(),
        live: false,
        unfinished: Vec::new(),
        snapshot: Some(file.to_path_buf()),
    })
}

/// How long a run's lease on a provider lasts before it must be renewed.
pub const LEASE_SECONDS: u32 = 900;

/// This run's lease: who (the actor, the host and the process) and until
/// when.
pub fn lease() -> Lease {
    let now = crate::clock::now_rfc3339();
    Lease {
        // Only what an IAM tag may hold, so that the holder reads back as
        // written (letters, digits, spaces and `_.:/=+-@`).
        holder: writ_compiler::ownership::aws::tag_value(&format!(
            "{}@{} pid {} since {now}",
            crate::term::actor().unwrap_or_else(|| "someone".to_string()),
            crate::term::host(),
            std::process::id()
        )),
        expires: crate::clock::rfc3339_in(LEASE_SECONDS),
        now,
        seconds: LEASE_SECONDS,
        renewing: false,
    }
}

/// The same lease, renewed from now.
pub fn renewed(lease: &Lease) -> Lease {
    Lease {
        now: crate::clock::now_rfc3339(),
        expires: crate::clock::rfc3339_in(lease.seconds),
        renewing: true,
        ..lease.clone()
    }
}

/// Takes every provider's lock; if one is held by another run, gives back
/// those taken and says who holds it.
///
/// A renewal that fails gives nothing back: the run still holds the other
/// locks, and gives them back as it ends, recording what it left.
pub async fn lock_all(providers: &[Box<dyn Provider>], lease: &Lease) -> Result<(), CliError> {
    for (index, provider) in providers.iter().enumerate() {
        if let Err(error) = provider.lock(lease).await {
            if !lease.renewing {
                for taken in &providers[..index] {
                    let _ = taken.unlock(&lease.holder, Release::Unchanged).await;
                }
            }
            return Err(error.to_string().into());
        }
    }
    Ok(())
}

/// Gives every provider's lock back; a failure is only a warning (the
/// lease ends by itself).
pub async fn unlock_all<'a>(
    providers: &'a [Box<dyn Provider>],
    holder: &'a str,
    release: impl Fn(&str) -> Release<'a>,
) {
    for provider in providers {
        if let Err(error) = provider.unlock(holder, release(provider.address())).await {
            eprintln!(
                "warning: giving back the lock of {}: {error}",
                provider.address()
            );
        }
    }
}

/// Why no token was minted: refused by what the source or the
/// installation allows (`refused`), or the request failed.
#[derive(Debug)]
pub struct MintError {
    pub refused: bool,
    pub why: String,
}

impl MintError {
    fn refused(why: String) -> MintError {
        MintError { refused: true, why }
    }
    fn failed(why: String) -> MintError {
        MintError {
            refused: false,
            why,
        }
    }
}

/// Mints an installation token of the App `agent` runs as in `declared`,
/// narrowed to its grants there (one repository's, if named): the token,
/// what was asked, and the App's slug; why not, otherwise. A token GitHub
/// makes wider than asked is revoked at once and never handed out.
pub async fn mint_app_token(
    project: &Project,
    model: &writ_compiler::model::Model,
    declared: &writ_compiler::model::Provider,
    agent: &str,
    repository: Option<&str>,
    retrier: &Retrier,
) -> Result<
    (
        writ_provider_github::app::IssuedToken,
        writ_provider_github::app::TokenRequest,
        String,
    ),
    MintError,
> {
    let provider = declared.address();
    let wanted = writ_compiler::lower::github::app_token(model, agent, &provider, repository)
        .map_err(MintError::refused)?;
    let request = writ_provider_github::app::TokenRequest {
        repositories: wanted.repositories.clone(),
        permissions: wanted.permissions.clone(),
    };
    let slug = wanted.slug;
    let app = github_app(project, declared, retrier)
        .map_err(|e| MintError::failed(e.to_string()))?
        .ok_or_else(|| MintError::failed(format!(
            "writ.toml holds no App credentials for `{provider}`: add `app_id` and `private_key_file` (or `private_key_env`) to `[provider.github.{}]`",
            declared.name
        )))?;
    let installation = app
        .installation()
        .await
        .map_err(|e| MintError::failed(format!("`{provider}`: {e}")))?;
    if installation.app_slug != slug {
        return Err(MintError::failed(format!(
            "`{provider}`: the key in writ.toml is App `{}`'s, and `{agent}` runs as App `{slug}`",
            installation.app_slug
        )));
    }
    if installation.suspended {
        return Err(MintError::refused(format!(
            "`{provider}`: App `{slug}`'s installation is suspended (revoked with `writ revoke`?): it has no tokens to give"
        )));
    }
    let lacking = beyond(&request.permissions, &installation.permissions);
    if !lacking.is_empty() {
        return Err(MintError::refused(format!(
            "`{agent}` declares {}, which App `{slug}`'s installation does not hold: grant them to the App in its settings, or narrow the grants",
            lacking.join(", ")
        )));
    }
    let issued = app
        .token(installation.id, &request)
        .await
        .map_err(|e| MintError::failed(format!("`{provider}`: {e}")))?;
    // GitHub gives what it was asked for, or refuses; a token that holds
    // more is never handed out, and is ended at once.
    let wider = wider_than_asked(&issued, &request);
    if !wider.is_empty() {
        let ended = match app.revoke_token(&issued.token).await {
            Ok(()) => "revoked at once".to_string(),
            Err(error) => format!(
                "it could not be revoked ({error}): it expires on its own at {}",
                issued.expires_at
            ),
        };
        return Err(MintError::failed(format!(
            "GitHub minted a token that holds more than asked ({}): not handed out; {ended}",
            wider.join(", ")
        )));
    }
    Ok((issued, request, slug))
}

/// What a minted token holds beyond the request: permissions (but
/// `metadata: read`, which every token has) and repositories.
fn wider_than_asked(
    issued: &writ_provider_github::app::IssuedToken,
    request: &writ_provider_github::app::TokenRequest,
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
fn beyond(
    asked: &std::collections::BTreeMap<String, String>,
    held: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    asked
        .iter()
        .filter(|(permission, level)| {
            writ_compiler::facts::github::level_rank(level)
                > held
                    .get(*permission)
                    .and_then(|l| writ_compiler::facts::github::level_rank(l))
        })
        .map(|(permission, level)| format!("`{permission}: {level}`"))
        .collect()
}
