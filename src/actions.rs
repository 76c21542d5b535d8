//! writ in GitHub Actions: the plan as one sticky comment per project on the
//! pull request, the apply result on the merged pull request, the job
//! summary and step outputs. Where to comment comes from flags or from the
//! Actions environment (`GITHUB_REPOSITORY`, `GITHUB_EVENT_PATH`,
//! `GITHUB_SHA`); the token from `GITHUB_TOKEN` or `--token-env`.

use crate::error::CliError;
use crate::render;
use std::io::Write;
use std::path::Path;
use writ_compiler::plan::Plan;
use writ_provider_core::Retrier;
use writ_provider_github::{GitHub, Posted, Repository, COMMENT_LIMIT};

/// Flags shared by `plan` and `apply` for posting to a pull request.
#[derive(Debug, Clone, clap::Args)]
pub struct GithubArgs {
    /// Post the result to the pull request (`plan`: one comment per
    /// project, updated in place on every push).
    #[arg(long)]
    pub comment: bool,
    /// The repository, `OWNER/NAME` (default: `GITHUB_REPOSITORY`).
    #[arg(long, value_name = "OWNER/NAME", requires = "comment")]
    pub repo: Option<String>,
    /// The pull request (default: from the Actions event; for `apply`, the
    /// pull request that `GITHUB_SHA` merged).
    #[arg(long, value_name = "NUMBER", requires = "comment")]
    pub pr: Option<u64>,
    /// The environment variable that holds the token.
    #[arg(long, value_name = "NAME", default_value = "GITHUB_TOKEN")]
    pub token_env: String,
    /// The API address (default: `GITHUB_API_URL`, else
    /// `https://api.github.com`).
    #[arg(long, value_name = "URL")]
    pub github_api: Option<String>,
}

/// A hidden line naming what a comment is (`plan`, `apply`) and for which
/// project; the name is reduced to characters that cannot end the comment.
pub fn marker(what: &str, project: &str) -> String {
    let name: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("<!-- writ:{what} project={name} -->")
}

/// The hidden line that finds a project's plan comment again.
pub fn plan_marker(project: &str) -> String {
    marker("plan", project)
}

/// The comment body: the marker, then the markdown plan cut to fit.
pub fn plan_comment(plan: &Plan) -> String {
    let marker = plan_marker(&plan.project);
    // Room for the marker and its newline; GitHub counts characters, and a
    // byte count is never smaller.
    let markdown = render::markdown_within(plan, COMMENT_LIMIT.saturating_sub(marker.len() + 64));
    format!("{marker}\n{markdown}")
}

/// The pull request of the event that started this job, if any.
fn event_pull_request() -> Option<u64> {
    let path = std::env::var_os("GITHUB_EVENT_PATH")?;
    let text = std::fs::read_to_string(path).ok()?;
    let event: serde_json::Value = serde_json::from_str(&text).ok()?;
    event["pull_request"]["number"].as_u64().or_else(|| {
        event["issue"]["pull_request"]
            .is_object()
            .then(|| event["issue"]["number"].as_u64())
            .flatten()
    })
}

struct Target {
    client: GitHub,
    repo: Repository,
}

/// The client and repository; the client is built inside the runtime it
/// will run on.
fn connect(
    args: &GithubArgs,
    runtime: &tokio::runtime::Runtime,
    retrier: &Retrier,
) -> Result<Target, CliError> {
    let repo = match &args.repo {
        Some(repo) => repo.clone(),
        None => std::env::var("GITHUB_REPOSITORY").map_err(|_| {
            "no repository to comment on: pass `--repo OWNER/NAME` (GitHub Actions sets `GITHUB_REPOSITORY`)".to_string()
        })?,
    };
    let repo = Repository::parse(&repo).map_err(CliError::Message)?;
    let token = std::env::var(&args.token_env).unwrap_or_default();
    if token.trim().is_empty() {
        return Err(format!(
            "no GitHub token: `{}` is not set; in a workflow, pass `{}: ${{{{ github.token }}}}` in `env`",
            args.token_env, args.token_env
        )
        .into());
    }
    let api = args
        .github_api
        .clone()
        .or_else(|| std::env::var("GITHUB_API_URL").ok())
        .unwrap_or_else(|| "https://api.github.com".to_string());
    crate::config::check_endpoint(&api).map_err(|e| format!("the GitHub API: {e}"))?;
    let _entered = runtime.enter();
    let client = GitHub::connect(&api, token, retrier)?;
    Ok(Target { client, repo })
}

/// Posts (or updates) the plan comment of this project.
pub fn post_plan(plan: &Plan, args: &GithubArgs, retrier: &Retrier) -> Result<(), CliError> {
    upsert(&plan.project, &plan_comment(plan), args, retrier)
}

/// Replaces the plan comment when no plan could be made, so that the pull
/// request never shows the plan of an earlier push as current.
pub fn post_no_plan(
    project: &str,
    why: &str,
    args: &GithubArgs,
    retrier: &Retrier,
) -> Result<(), CliError> {
    let body = format!(
        "{}\n## writ plan: `{project}`\n\n**No plan: {why}.** The findings are annotated on the changed lines and listed in the job log.\n",
        plan_marker(project)
    );
    upsert(project, &body, args, retrier)
}

fn upsert(project: &str, body: &str, args: &GithubArgs, retrier: &Retrier) -> Result<(), CliError> {
    let runtime = writ_provider_core::runtime()?;
    let target = connect(args, &runtime, retrier)?;
    let pull = args.pr.or_else(event_pull_request).ok_or_else(|| {
        "no pull request to comment on: pass `--pr NUMBER` (a `pull_request` event names it)"
            .to_string()
    })?;
    let posted = runtime.block_on(target.client.upsert_comment(
        &target.repo,
        pull,
        &plan_marker(project),
        body,
    ))?;
    let (verb, comment) = match &posted {
        Posted::Created(c) => ("posted", c),
        Posted::Updated(c) => ("updated", c),
    };
    eprintln!(
        "{verb} the plan comment on {}#{pull}: {}",
        target.repo, comment.url
    );
    Ok(())
}

/// Posts an apply result on the pull request that the applied commit
/// merged (or `--pr`).
pub fn post_apply(
    project: &str,
    outcome: &str,
    ok: bool,
    args: &GithubArgs,
    retrier: &Retrier,
) -> Result<(), CliError> {
    let runtime = writ_provider_core::runtime()?;
    let target = connect(args, &runtime, retrier)?;
    let pull = match args.pr.or_else(event_pull_request) {
        Some(pull) => pull,
        None => {
            let sha = std::env::var("GITHUB_SHA").map_err(|_| {
                "no pull request to comment on: pass `--pr NUMBER` (GitHub Actions sets `GITHUB_SHA`, whose pull request is used)".to_string()
            })?;
            let pulls = runtime.block_on(target.client.pulls_of_commit(&target.repo, &sha))?;
            *pulls.first().ok_or_else(|| {
                format!(
                    "commit {sha} belongs to no pull request in {}: nothing to comment on",
                    target.repo
                )
            })?
        }
    };
    let icon = if ok { "✅" } else { "❌" };
    let body = format!(
        "{}\n## {icon} writ apply: `{project}`\n\n{outcome}\n",
        marker("apply", project)
    );
    let comment = runtime.block_on(target.client.create_comment(&target.repo, pull, &body))?;
    eprintln!(
        "posted the apply result on {}#{pull}: {}",
        target.repo, comment.url
    );
    Ok(())
}

fn append(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| CliError::Message(format!("cannot write `{}`: {e}", path.display())))
}

/// In GitHub Actions: the whole markdown plan into the job summary, and
/// `has_changes`, `privilege_gain`, `deletes` and `replaces` into the step
/// outputs.
/// Outside Actions (neither file named), nothing.
pub fn write_actions_files(plan: &Plan) -> Result<(), CliError> {
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
        // The job summary takes up to 1 MiB per step.
        append(
            Path::new(&summary),
            &render::markdown_within(plan, 1_000_000),
        )?;
    }
    if let Some(output) = std::env::var_os("GITHUB_OUTPUT").filter(|v| !v.is_empty()) {
        append(
            Path::new(&output),
            &format!(
                "has_changes={}\nprivilege_gain={}\ndeletes={}\nreplaces={}\nadopts={}\n",
                plan.has_changes(),
                plan.privilege_gain(),
                plan.summary.delete,
                plan.summary.replace,
                plan.summary.adopt
            ),
        )?;
    }
    Ok(())
}
