//! The command line: parses arguments, loads the project, calls the
//! compiler, prints, and decides the exit code. Exit codes: 0 clean (or
//! warnings only), 1 findings that fail the run, 2 usage or I/O errors.

use crate::project::{self, Project};
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
    /// Say whether an agent may perform an action on a resource, and why.
    Explain {
        /// The agent.
        agent: String,
        /// The provider, as `kind.name` (`aws.prod`).
        provider: String,
        /// One action (`s3:GetObject`, `get`, `contents:read`).
        action: String,
        /// One resource (an ARN, `"pods"`, `org/repo`).
        resource: String,
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
    let result = match cli.command {
        Command::Check {
            path,
            format,
            deny_warnings,
        } => check(&mut out, &path, format, deny_warnings),
        Command::Fmt { path, check } => fmt(&mut out, &path, check),
        Command::Test { path, format } => test(&mut out, &path, format),
        Command::Explain {
            agent,
            provider,
            action,
            resource,
            namespace,
            path,
        } => explain(
            &mut out, &path, &agent, &provider, &action, &resource, namespace,
        ),
    };
    let _ = out.flush();
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            2
        }
    }
}

type Outcome = Result<i32, String>;

/// Today's date (UTC). `WRIT_TODAY=YYYY-MM-DD` fixes it, for reproducible
/// runs and tests.
fn today() -> Result<Date, String> {
    if let Ok(text) = std::env::var("WRIT_TODAY") {
        return Date::parse(&text).map_err(|e| format!("WRIT_TODAY=`{text}`: {e}"));
    }
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Ok(Date::from_unix_seconds(seconds))
}

fn load(path: &Path) -> Result<Project, String> {
    project::load(path).map_err(|e| e.to_string())
}

fn colour() -> bool {
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
    Ok(writ_compiler::check(
        &project.sources,
        &CheckOptions { today: today()? },
    ))
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

fn explain(
    out: &mut impl Write,
    path: &Path,
    agent: &str,
    provider: &str,
    action: &str,
    resource: &str,
    namespace: Option<String>,
) -> Outcome {
    let project = load(path)?;
    let checked = checked(&project)?;
    if checked.has_errors() {
        print_diagnostics(out, &project, &checked.diagnostics, Format::Human)?;
        return Ok(1);
    }
    let model = &checked.model;
    let agent_id = model
        .agent_id(agent)
        .ok_or_else(|| format!("no agent named `{agent}`"))?;
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
