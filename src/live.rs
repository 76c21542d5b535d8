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
use writ_compiler::resource::Resource;
use writ_provider_aws::{AwsProvider, AwsSettings};
use writ_provider_core::{Provider, RetryPolicy};

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

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Connects to every AWS provider in scope, from `[provider.aws.NAME]`.
async fn connect(
    project: &Project,
    model: &Model,
    scope: &Scope,
) -> Result<Vec<AwsProvider>, String> {
    let mut providers = Vec::new();
    for provider in model
        .providers
        .iter()
        .filter(|p| p.kind == ProviderKind::Aws)
    {
        let address = provider.address();
        if !scope.includes(&address) {
            continue;
        }
        let ProviderSettings::Aws { account, partition } = &provider.settings else {
            continue;
        };
        let Some(table) = project
            .config
            .provider
            .get("aws")
            .and_then(|t| t.get(&provider.name))
        else {
            return Err(format!(
                "no connection settings for `{address}`: add `[provider.aws.{}]` to writ.toml, or leave it out with `--only`",
                provider.name
            ));
        };
        let get = |key: &str| table.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let settings = AwsSettings {
            region: get("region"),
            profile: get("profile"),
            endpoint_url: get("endpoint_url"),
        };
        providers.push(
            AwsProvider::connect(
                &address,
                &project.name,
                account,
                partition,
                &settings,
                RetryPolicy::default(),
            )
            .await,
        );
    }
    Ok(providers)
}

async fn observe_with(providers: &[AwsProvider]) -> Result<Vec<Resource>, String> {
    let mut resources = Vec::new();
    for provider in providers {
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
pub fn observe(
    project: &Project,
    model: &Model,
    scope: &Scope,
) -> Result<(Vec<Resource>, usize), String> {
    runtime()?.block_on(async {
        let providers = connect(project, model, scope).await?;
        let count = providers.len();
        Ok((observe_with(&providers).await?, count))
    })
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
    let (resources, _) = observe(&project, &model, &scope)?;
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

/// Plans against the live providers, shows the plan, asks (unless
/// `--auto-approve`), and carries it out in dependency order.
pub fn apply(
    out: &mut impl Write,
    path: &Path,
    auto_approve: bool,
    allow_mass_delete: bool,
    only: &[String],
) -> Result<i32, String> {
    let project = load(path)?;
    let io = |e: std::io::Error| e.to_string();
    if project.config.project.snapshot.is_some() {
        return Err("writ.toml plans against a recorded snapshot (`[project] snapshot`): a snapshot cannot be applied to; remove that setting to apply to the live providers".into());
    }
    let Some((model, mut desired)) = desired_state(out, &project, false)? else {
        return Ok(1);
    };
    let scope = Scope::new(&model, only)?;
    desired.resources.retain(|r| scope.includes(&r.provider));
    let runtime = runtime()?;
    runtime.block_on(async {
        let providers = connect(&project, &model, &scope).await?;
        let observed = observe_with(&providers).await?;
        let plan = make_plan(&project, &desired, &observed)?;
        out.write_all(render::text(&plan, colour()).as_bytes()).map_err(io)?;
        if let Some(refusal) = refusal(&plan, allow_mass_delete) {
            writeln!(out, "error: {refusal}").map_err(io)?;
            return Ok(1);
        }
        if !plan.has_changes() {
            writeln!(out, "Nothing to apply.").map_err(io)?;
            return Ok(0);
        }
        if !auto_approve {
            if !std::io::stdin().is_terminal() {
                return Err("refusing to apply without confirmation: pass `--auto-approve` when not on a terminal".into());
            }
            write!(out, "\nApply these {} changes? Only `yes` is accepted: ", plan.changes.len()).map_err(io)?;
            out.flush().map_err(io)?;
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).map_err(io)?;
            if answer.trim() != "yes" {
                writeln!(out, "Not applied.").map_err(io)?;
                return Ok(1);
            }
        }
        let order = writ_compiler::plan::apply_order(&plan);
        let total = order.len();
        let mut done = 0;
        let mut failure = None;
        for (index, change) in order.iter().enumerate() {
            let Some(provider) = providers.iter().find(|p| p.address() == change.provider) else {
                failure = Some((change.address.clone(), format!("no live provider `{}`", change.provider)));
                break;
            };
            let kind = format!("{:?}", change.kind_of_change()).to_lowercase();
            eprintln!("[{}/{total}] {kind} {} …", index + 1, change.address);
            match provider.apply(change).await {
                Ok(()) => done += 1,
                Err(error) => {
                    failure = Some((change.address.clone(), error.to_string()));
                    break;
                }
            }
        }
        match failure {
            None => {
                writeln!(out, "Apply complete: {done} of {total} changes made.").map_err(io)?;
                Ok(0)
            }
            Some((address, error)) => {
                writeln!(
                    out,
                    "Apply failed at {address}: {error}\n{done} of {total} changes made, {} not attempted. Plan and apply again to finish: every step is safe to repeat.",
                    total - done - 1
                )
                .map_err(io)?;
                Ok(1)
            }
        }
    })
}
