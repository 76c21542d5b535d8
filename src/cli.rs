//! The command line: parses arguments, loads the project, calls the
//! compiler, prints, and decides the exit code. Exit codes: 0 clean (or
//! warnings only), 1 findings that fail the run, 2 usage or I/O errors.

use crate::project::{self, Project};
use crate::render::{self, PlanFormat};
use crate::report::{self, Format};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use writ_compiler::values::Date;
use writ_compiler::{eval, format, CheckOptions, Checked, Diagnostic};

#[derive(Debug, Parser)]
#[command(
    name = "writ",
    version,
    about = "Policy-as-code compiler and GitOps reconciler for machine identities"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and check a project, reporting every finding.
    Check {
        /// A project folder or a single `.writ` file.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Format `.writ` files in the canonical layout.
    Fmt {
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Change nothing; exit 1 if any file is not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Run the project's `test` blocks.
    Test {
        #[arg(default_value = ".")]
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show what writ would create, change and delete to make live state
    /// match the source.
    Plan {
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Plan against this recorded state (default: `[project] snapshot`
        /// in writ.toml).
        #[arg(long)]
        snapshot: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Also write the plan, as JSON, to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit 2 when the plan has changes (0 when it has none).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Allow a plan that deletes more than 25% of the objects writ manages.
        #[arg(long)]
        allow_mass_delete: bool,
        /// Limit the run to these provider instances (`aws.prod`); repeatable.
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
        #[command(flatten)]
        github: crate::github::GithubArgs,
    },
    /// Make the live providers match the source: plan, confirm, apply.
    Apply {
        /// The project folder; or a saved plan (`PLAN.json`, from `writ plan
        /// --out`), applied only if it is still what a fresh plan would do.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// A saved plan, when the first argument is the project folder.
        saved_plan: Option<PathBuf>,
        /// The reviewed plan (`writ plan --out`): apply only if a fresh plan
        /// makes exactly its changes; otherwise refuse and show the
        /// difference. The same as giving the plan as an argument.
        #[arg(long, value_name = "PLAN.json", conflicts_with = "saved_plan")]
        expect: Option<PathBuf>,
        #[command(flatten)]
        github: crate::github::GithubArgs,
        /// Apply without asking (required when not on a terminal).
        #[arg(long)]
        auto_approve: bool,
        #[arg(long)]
        allow_mass_delete: bool,
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
    },
    /// The emergency brake: deny every session the agent's roles issued
    /// before now, and disable its access keys. Kept by later applies.
    Revoke {
        /// The agent to cut off.
        agent: String,
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Also revoke every delegate below the agent.
        #[arg(long)]
        include_delegates: bool,
        /// Remove the revocation instead.
        #[arg(long)]
        lift: bool,
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
    },
    /// Report only what changed outside writ (drift).
    Drift {
        #[arg(default_value = ".")]
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Exit 2 when there is drift (0 when there is none).
        #[arg(long)]
        detailed_exitcode: bool,
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
    },
    /// Write what the live providers hold, in the snapshot format.
    Snapshot {
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
    },
    /// Print the desired state (what lowering produces) as a snapshot document.
    #[command(hide = true)]
    Lower {
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Say whether an agent may perform an action on a resource, and why.
    /// Without a request: everything about one agent (where it runs, what it
    /// holds and through which scopes, its delegation, the guardrails).
    Explain {
        /// The agent.
        agent: String,
        /// The provider, as `kind.name` (`aws.prod`).
        #[arg(requires_all = ["action", "resource"])]
        provider: Option<String>,
        /// One action (`s3:GetObject`, `get`, `contents:read`).
        action: Option<String>,
        /// One resource (an ARN, `"pods"`, `org/repo`).
        resource: Option<String>,
        /// For Kubernetes: the namespace of the request (default: cluster-wide).
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long, default_value = ".")]
        path: PathBuf,
    },
}

/// Runs writ with the process's arguments and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            let _ = error.print();
            return code;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // `plan` keeps 2 for "there are changes" (`--detailed-exitcode`), so its
    // errors exit 1, as Terraform's do.
    let error_code = if matches!(
        cli.command,
        Command::Plan { .. }
            | Command::Apply { .. }
            | Command::Drift { .. }
            | Command::Revoke { .. }
    ) {
        1
    } else {
        2
    };
    let result = match cli.command {
        Command::Check {
            path,
            format,
            deny_warnings,
        } => check(&mut out, &path, format, deny_warnings),
        Command::Fmt { path, check } => fmt(&mut out, &path, check),
        Command::Test { path, format } => test(&mut out, &path, format),
        Command::Plan {
            path,
            snapshot,
            format,
            out: plan_out,
            detailed_exitcode,
            allow_mass_delete,
            only,
            github,
        } => plan(
            &mut out,
            &path,
            PlanArgs {
                snapshot,
                format,
                out: plan_out,
                detailed_exitcode,
                allow_mass_delete,
                only,
                github,
            },
        ),
        Command::Apply {
            path,
            saved_plan,
            expect,
            auto_approve,
            allow_mass_delete,
            only,
            github,
        } => {
            // `writ apply PLAN.json` means the project in the current folder.
            let (path, saved_plan) = match saved_plan.or(expect) {
                Some(plan) => (path, Some(plan)),
                None if path.extension().is_some_and(|e| e == "json") => {
                    (PathBuf::from("."), Some(path))
                }
                None => (path, None),
            };
            let result = crate::live::apply(
                &mut out,
                &path,
                crate::live::ApplyArgs {
                    saved_plan: saved_plan.as_deref(),
                    auto_approve,
                    allow_mass_delete,
                    only: &only,
                },
            );
            if github.comment {
                // The pull request hears of the outcome, whatever it was.
                let (project, outcome, ok) = match &result {
                    Ok(applied) => (
                        applied.project.clone(),
                        applied.outcome.clone(),
                        applied.code == 0,
                    ),
                    Err(error) => (
                        crate::project::load(&path)
                            .map(|p| p.name)
                            .unwrap_or_else(|_| "?".into()),
                        format!("**Apply failed**: {}", error.replace('`', "'")),
                        false,
                    ),
                };
                if let Err(error) = crate::github::post_apply(&project, &outcome, ok, &github) {
                    // The apply itself stands; the exit code says the
                    // comment is missing.
                    eprintln!("error: could not post the apply result: {error}");
                    if let Err(apply_error) = &result {
                        eprintln!("error: {apply_error}");
                    }
                    return 1;
                }
            }
            result.map(|applied| applied.code)
        }
        Command::Revoke {
            agent,
            path,
            include_delegates,
            lift,
            only,
        } => crate::live::revoke(&mut out, &path, &agent, include_delegates, lift, &only),
        Command::Drift {
            path,
            format,
            detailed_exitcode,
            only,
        } => crate::live::drift(&mut out, &path, format, detailed_exitcode, &only),
        Command::Snapshot {
            path,
            out: file,
            only,
        } => crate::live::snapshot(&mut out, &path, file.as_deref(), &only),
        Command::Lower { path } => lower(&mut out, &path),
        Command::Explain {
            agent,
            provider,
            action,
            resource,
            namespace,
            path,
        } => match (provider, action, resource) {
            (Some(provider), Some(action), Some(resource)) => explain(
                &mut out, &path, &agent, &provider, &action, &resource, namespace,
            ),
            _ => describe_agent(&mut out, &path, &agent),
        },
    };
    let _ = out.flush();
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            error_code
        }
    }
}

type Outcome = Result<i32, String>;

/// Today's date (UTC). `WRIT_TODAY=YYYY-MM-DD` fixes it, for reproducible
/// runs and tests.
pub(crate) fn today() -> Result<Date, String> {
    if let Ok(text) = std::env::var("WRIT_TODAY") {
        return Date::parse(&text).map_err(|e| format!("WRIT_TODAY=`{text}`: {e}"));
    }
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Ok(Date::from_unix_seconds(seconds))
}

pub(crate) fn load(path: &Path) -> Result<Project, String> {
    project::load(path).map_err(|e| e.to_string())
}

pub(crate) fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn print_diagnostics(
    out: &mut impl Write,
    project: &Project,
    diagnostics: &[Diagnostic],
    format: Format,
) -> Result<(), String> {
    let text = match format {
        Format::Json => report::render_json(&project.sources, diagnostics),
        Format::Plain => report::render_plain(&project.sources, diagnostics),
        Format::Github => report::render_github(
            &project.sources,
            diagnostics,
            crate::github::workspace().as_deref(),
        ),
        Format::Human => {
            let width = terminal_width();
            report::render_graphical(&project.sources, diagnostics, false, colour(), width)
        }
    };
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

fn checked(project: &Project) -> Result<Checked, String> {
    let checked = writ_compiler::check(&project.sources, &CheckOptions { today: today()? });
    // Only a source without errors declares all its providers.
    if !checked.has_errors() {
        let declared: Vec<String> = checked
            .model
            .providers
            .iter()
            .map(|p| p.address())
            .collect();
        project.config.check_providers(&declared)?;
    }
    Ok(checked)
}

fn check(out: &mut impl Write, path: &Path, format: Format, deny_warnings: bool) -> Outcome {
    let project = load(path)?;
    let checked = checked(&project)?;
    print_diagnostics(out, &project, &checked.diagnostics, format)?;
    let failed = checked.has_errors() || (deny_warnings && !checked.diagnostics.is_empty());
    if format != Format::Json {
        let files = project.sources.len();
        let files = format!("{files} file{}", if files == 1 { "" } else { "s" });
        let line = if checked.diagnostics.is_empty() {
            format!("checked {files}: no problems found")
        } else {
            format!("checked {files}: {}", report::summary(&checked.diagnostics))
        };
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(i32::from(failed))
}

fn fmt(out: &mut impl Write, path: &Path, check_only: bool) -> Outcome {
    let project = load(path)?;
    let mut unformatted = Vec::new();
    let mut syntax_errors = Vec::new();
    for ((id, file), path) in project.sources.files().zip(&project.paths) {
        match writ_compiler::syntax::parse_file(id, &file.text) {
            Ok(parsed) => {
                let formatted = format::format_file(&file.text, &parsed);
                if formatted != file.text {
                    unformatted.push(file.name.clone());
                    if !check_only {
                        std::fs::write(path, formatted)
                            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
                    }
                }
            }
            Err(diagnostic) => syntax_errors.push(*diagnostic),
        }
    }
    if !syntax_errors.is_empty() {
        print_diagnostics(out, &project, &syntax_errors, Format::Human)?;
        writeln!(out, "files with syntax errors were left as they are")
            .map_err(|e| e.to_string())?;
    }
    for name in &unformatted {
        let verb = if check_only {
            "would reformat"
        } else {
            "reformatted"
        };
        writeln!(out, "{verb} {name}").map_err(|e| e.to_string())?;
    }
    let failed = !syntax_errors.is_empty() || (check_only && !unformatted.is_empty());
    if unformatted.is_empty() && syntax_errors.is_empty() {
        writeln!(out, "{} files already formatted", project.sources.len())
            .map_err(|e| e.to_string())?;
    }
    Ok(i32::from(failed))
}

fn test(out: &mut impl Write, path: &Path, format: Format) -> Outcome {
    let project = load(path)?;
    let checked = checked(&project)?;
    if checked.has_errors() {
        print_diagnostics(out, &project, &checked.diagnostics, format)?;
        writeln!(
            out,
            "tests not run: the project has errors ({})",
            report::summary(&checked.diagnostics)
        )
        .map_err(|e| e.to_string())?;
        return Ok(1);
    }
    let report = eval::run_tests(&checked.model);
    if format == Format::Json {
        print_diagnostics(out, &project, &report.diagnostics, format)?;
        return Ok(i32::from(report.failed() > 0));
    }
    let io = |e: std::io::Error| e.to_string();
    for (index, test) in checked.model.tests.iter().enumerate() {
        let results: Vec<_> = report.results.iter().filter(|r| r.test == index).collect();
        let failed = results.iter().filter(|r| !r.passed).count();
        let status = if failed == 0 { "ok" } else { "FAILED" };
        writeln!(
            out,
            "test \"{}\" ... {status} ({} expectations)",
            test.name,
            results.len()
        )
        .map_err(io)?;
    }
    if !report.diagnostics.is_empty() {
        writeln!(out).map_err(io)?;
        print_diagnostics(out, &project, &report.diagnostics, format)?;
    }
    let passed = report.results.len() - report.failed();
    writeln!(out, "{passed} passed, {} failed", report.failed()).map_err(io)?;
    Ok(i32::from(report.failed() > 0))
}

/// A checked project and one of its agents; `None` (after printing them)
/// when the project has errors.
fn checked_agent(
    out: &mut impl Write,
    path: &Path,
    agent: &str,
) -> Result<Option<(Project, Checked, writ_compiler::model::AgentId)>, String> {
    let project = load(path)?;
    let checked = checked(&project)?;
    if checked.has_errors() {
        print_diagnostics(out, &project, &checked.diagnostics, Format::Human)?;
        return Ok(None);
    }
    let id = checked
        .model
        .agent_id(agent)
        .ok_or_else(|| format!("no agent named `{agent}`"))?;
    Ok(Some((project, checked, id)))
}

/// `writ explain AGENT`: everything about one agent, in words.
fn describe_agent(out: &mut impl Write, path: &Path, agent: &str) -> Outcome {
    let Some((project, checked, id)) = checked_agent(out, path, agent)? else {
        return Ok(1);
    };
    let model = &checked.model;
    let a = &model.agents[id];
    let io = |e: std::io::Error| e.to_string();
    let at = |span: writ_compiler::Span| {
        let file = project.sources.file(span.file);
        let (line, column) = file.line_column(span.start);
        format!("{}:{line}:{column}", file.name)
    };
    writeln!(out, "agent `{}` ({})", a.name, at(a.span)).map_err(io)?;
    for line in a.docs.lines() {
        writeln!(out, "  /// {line}").map_err(io)?;
    }
    writeln!(out, "  owner: {}", a.owner).map_err(io)?;
    writeln!(out, "  credentials live at most {}", a.ttl).map_err(io)?;
    match (a.expires, a.retired) {
        (Some(date), true) => writeln!(
            out,
            "  expired on {date}: it holds no access and plans delete it"
        ),
        (Some(date), false) => writeln!(out, "  expires on {date}"),
        (None, _) => writeln!(out, "  never expires"),
    }
    .map_err(io)?;
    if a.frozen {
        writeln!(out, "  frozen: declared, holding no access").map_err(io)?;
    }
    for workload in &a.runs_on {
        writeln!(
            out,
            "  runs on {} ({})",
            project
                .sources
                .snippet(workload.span)
                .trim_start_matches("runs_on ")
                .trim(),
            at(workload.span)
        )
        .map_err(io)?;
    }
    let ancestors = model.ancestors(id);
    if !ancestors.is_empty() {
        let chain: Vec<String> = ancestors
            .iter()
            .map(|&p| format!("`{}`", model.agents[p].name))
            .collect();
        writeln!(out, "  a delegate of {}", chain.join(" ← ")).map_err(io)?;
    }
    writeln!(out, "  grants:").map_err(io)?;
    if a.grants.is_empty() {
        writeln!(out, "    (none)").map_err(io)?;
    }
    for grant in &a.grants {
        let origin = match grant.via.as_slice() {
            [] => "written in the agent".to_string(),
            via => format!("through scope `{}`", via.join("` → `")),
        };
        let text = project
            .sources
            .snippet(grant.span)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(out, "    {text}\n      {origin} ({})", at(grant.span)).map_err(io)?;
    }
    if let Some(ceiling) = &a.delegates {
        writeln!(
            out,
            "  its delegates may be {} deep, live at most {}, and hold at most {} grant{}",
            ceiling.max_depth,
            ceiling.ttl,
            ceiling.grants.len(),
            if ceiling.grants.len() == 1 { "" } else { "s" }
        )
        .map_err(io)?;
    }
    for guardrail in &model.guardrails {
        writeln!(
            out,
            "  bounded by guardrail `{}` ({})",
            guardrail.name,
            at(guardrail.span)
        )
        .map_err(io)?;
    }
    Ok(0)
}

fn explain(
    out: &mut impl Write,
    path: &Path,
    agent: &str,
    provider: &str,
    action: &str,
    resource: &str,
    namespace: Option<String>,
) -> Outcome {
    let Some((project, checked, agent_id)) = checked_agent(out, path, agent)? else {
        return Ok(1);
    };
    let model = &checked.model;
    let (kind, name) = provider.split_once('.').ok_or_else(|| {
        format!("`{provider}` is not a provider; write `kind.name`, as in `aws.prod`")
    })?;
    let provider_id = writ_compiler::facts::ProviderKind::parse(kind)
        .and_then(|kind| model.provider_id(kind, name))
        .ok_or_else(|| format!("no provider `{provider}`"))?;
    let placement = match (namespace, model.providers[provider_id].kind) {
        (Some(ns), writ_compiler::facts::ProviderKind::Kubernetes) => {
            writ_compiler::model::Placement::Namespace(ns)
        }
        (None, writ_compiler::facts::ProviderKind::Kubernetes) => {
            writ_compiler::model::Placement::Cluster
        }
        (Some(_), _) => return Err("`--namespace` is only for Kubernetes providers".into()),
        (None, _) => writ_compiler::model::Placement::None,
    };
    let request = eval::Request {
        provider: provider_id,
        action,
        resource,
        placement: &placement,
    };
    let decision = eval::evaluate(model, agent_id, &request);
    let verdict = if decision.is_allowed() {
        "ALLOWED"
    } else {
        "DENIED"
    };
    let why = eval::explain_decision(model, agent_id, &decision);
    let io = |e: std::io::Error| e.to_string();
    writeln!(
        out,
        "{verdict}: `{agent}` {provider} `{action}` on `{resource}`"
    )
    .map_err(io)?;
    writeln!(out, "  {why}").map_err(io)?;
    if let eval::Decision::Allowed { grant } = decision {
        let grant = &model.agents[agent_id].grants[grant];
        let file = project.sources.file(grant.span.file);
        let (line, column) = file.line_column(grant.span.start);
        writeln!(
            out,
            "  at {}:{line}:{column}: {}",
            file.name,
            project
                .sources
                .snippet(grant.span)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
        )
        .map_err(io)?;
        if !grant.docs.is_empty() {
            writeln!(out, "  /// {}", grant.docs.replace('\n', "\n  /// ")).map_err(io)?;
        }
    }
    Ok(0)
}

struct PlanArgs {
    snapshot: Option<PathBuf>,
    format: PlanFormat,
    out: Option<PathBuf>,
    detailed_exitcode: bool,
    allow_mass_delete: bool,
    only: Vec<String>,
    github: crate::github::GithubArgs,
}

/// Checks and lowers a project; on errors, prints them and returns `None`.
pub(crate) fn desired_state(
    out: &mut impl Write,
    project: &Project,
    quiet_warnings: bool,
) -> Result<Option<(writ_compiler::model::Model, writ_compiler::lower::Desired)>, String> {
    let checked = checked(project)?;
    let diagnostics_to = |out: &mut dyn Write, diagnostics: &[Diagnostic]| -> Result<(), String> {
        let text = report::render_graphical(
            &project.sources,
            diagnostics,
            false,
            colour(),
            terminal_width(),
        );
        out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        // In GitHub Actions the findings also become annotations (the runner
        // reads workflow commands on standard error too).
        if crate::github::in_actions() {
            let commands = report::render_github(
                &project.sources,
                diagnostics,
                crate::github::workspace().as_deref(),
            );
            eprint!("{commands}");
        }
        Ok(())
    };
    if checked.has_errors() {
        diagnostics_to(out, &checked.diagnostics)?;
        writeln!(
            out,
            "no plan: the source has errors ({})",
            report::summary(&checked.diagnostics)
        )
        .map_err(|e| e.to_string())?;
        return Ok(None);
    }
    let desired = writ_compiler::lower::lower(&checked.model, &project.name);
    let mut findings = checked.diagnostics.clone();
    findings.extend(desired.diagnostics.iter().cloned());
    writ_compiler::diagnostic::sort_in_source_order(&mut findings);
    let errors = desired.diagnostics.iter().any(Diagnostic::is_error);
    if errors {
        diagnostics_to(out, &findings)?;
        writeln!(
            out,
            "no plan: the source has errors ({})",
            report::summary(&findings)
        )
        .map_err(|e| e.to_string())?;
        return Ok(None);
    }
    if !findings.is_empty() {
        if quiet_warnings {
            diagnostics_to(&mut std::io::stderr(), &findings)?;
        } else {
            diagnostics_to(out, &findings)?;
        }
    }
    Ok(Some((checked.model, desired)))
}

fn plan(out: &mut impl Write, path: &Path, args: PlanArgs) -> Outcome {
    let project = load(path)?;
    let io = |e: std::io::Error| e.to_string();
    let Some((model, mut desired)) = desired_state(out, &project, args.format != PlanFormat::Text)?
    else {
        if args.github.comment {
            crate::github::post_no_plan(&project.name, "the source has errors", &args.github)?;
        }
        return Ok(1);
    };
    let scope = crate::live::Scope::new(&model, &args.only)?;
    desired.resources.retain(|r| scope.includes(&r.provider));
    if args.snapshot.is_none() && project.config.project.snapshot.is_none() {
        crate::live::keep_live_providers(&model, &mut desired);
    }
    let observed = crate::live::observed_state(&project, &model, &scope, args.snapshot.as_deref())?;
    let plan = make_plan(&project, &desired, &observed)?;
    let rendered = match args.format {
        PlanFormat::Text => render::text(&plan, colour()),
        PlanFormat::Markdown => render::markdown(&plan),
        PlanFormat::Json => render::json(&plan),
    };
    out.write_all(rendered.as_bytes()).map_err(io)?;
    if let Some(file) = &args.out {
        std::fs::write(file, render::json(&plan))
            .map_err(|e| format!("cannot write `{}`: {e}", file.display()))?;
    }
    crate::github::write_actions_files(&plan)?;
    if args.github.comment {
        crate::github::post_plan(&plan, &args.github)?;
    }
    if let Some(refusal) = refusal(&plan, args.allow_mass_delete) {
        eprintln!("error: {refusal}");
        return Ok(1);
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}

pub(crate) fn make_plan(
    project: &Project,
    desired: &writ_compiler::lower::Desired,
    observed: &[writ_compiler::resource::Resource],
) -> Result<writ_compiler::plan::Plan, String> {
    let options = writ_compiler::plan::PlanOptions {
        today: today()?,
        max_key_age_days: project.config.max_key_age_days()?,
    };
    Ok(writ_compiler::plan::plan(desired, observed, &options))
}

/// Why a plan must not be applied (or, for `plan`, why it exits 1).
pub(crate) fn refusal(plan: &writ_compiler::plan::Plan, allow_mass_delete: bool) -> Option<String> {
    if !plan.conflicts.is_empty() {
        return Some(format!(
            "{} cannot be created because an object writ does not own has its name; rename the agent or remove that object",
            if plan.conflicts.len() == 1 { "1 object".to_string() } else { format!("{} objects", plan.conflicts.len()) }
        ));
    }
    if let Some((deletes, managed)) =
        plan.mass_delete(writ_compiler::plan::DEFAULT_MASS_DELETE_PERCENT)
    {
        if !allow_mass_delete {
            return Some(format!(
                "refusing a plan that deletes {deletes} of the {managed} objects writ manages (more than {}%); pass `--allow-mass-delete` if that is intended",
                writ_compiler::plan::DEFAULT_MASS_DELETE_PERCENT
            ));
        }
    }
    None
}

fn lower(out: &mut impl Write, path: &Path) -> Outcome {
    let project = load(path)?;
    let Some((_, desired)) = desired_state(out, &project, true)? else {
        return Ok(1);
    };
    let snapshot = writ_compiler::snapshot::Snapshot::from_resources(desired.resources);
    out.write_all(snapshot.to_json().as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(0)
}
