//! The command line: parses arguments, hands each subcommand to its module
//! in `commands/`, prints the error that ended it, and decides the exit
//! code. Exit codes: 0 clean (or warnings only), 1 findings that fail the
//! run, 2 usage or I/O errors (1 for the commands whose 2 means "changes").

use crate::actions::GithubArgs;
use crate::commands;
use crate::render::PlanFormat;
use crate::report::Format;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

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
        github: GithubArgs,
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
        github: GithubArgs,
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
    /// Release the project's lock that a run left behind (killed before it
    /// could), naming its holder as the refusal did.
    Unlock {
        #[arg(default_value = ".")]
        path: PathBuf,
        /// The holder, exactly as writ named it when it refused.
        #[arg(long)]
        holder: String,
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
        /// For Kubernetes: the object's name (default: any object of the
        /// resource, as far as `named` goes).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = ".")]
        path: PathBuf,
    },
}

/// Runs writ with the process's arguments and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // A mistyped flag of `plan --detailed-exitcode` must not read
            // as "there are changes": those commands' errors exit 1.
            let detailed = std::env::args().nth(1).is_some_and(|command| {
                ["plan", "apply", "drift", "revoke"].contains(&command.as_str())
            });
            let code = match (error.use_stderr(), detailed) {
                (false, _) => 0,
                (true, true) => 1,
                (true, false) => 2,
            };
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
            | Command::Unlock { .. }
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
        } => commands::check::run(&mut out, &path, format, deny_warnings),
        Command::Fmt { path, check } => commands::fmt::run(&mut out, &path, check),
        Command::Test { path, format } => commands::test::run(&mut out, &path, format),
        Command::Plan {
            path,
            snapshot,
            format,
            out: plan_out,
            detailed_exitcode,
            allow_mass_delete,
            only,
            github,
        } => commands::plan::run(
            &mut out,
            &path,
            commands::plan::PlanArgs {
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
            commands::apply::run(
                &mut out,
                commands::apply::ApplyArgs {
                    path,
                    saved_plan,
                    auto_approve,
                    allow_mass_delete,
                    only,
                    github,
                },
            )
        }
        Command::Revoke {
            agent,
            path,
            include_delegates,
            lift,
            only,
        } => commands::revoke::run(
            &mut out,
            &path,
            commands::revoke::RevokeArgs {
                agent: &agent,
                include_delegates,
                lift,
                only: &only,
            },
        ),
        Command::Drift {
            path,
            format,
            detailed_exitcode,
            only,
        } => commands::drift::run(&mut out, &path, format, detailed_exitcode, &only),
        Command::Unlock { path, holder, only } => {
            commands::unlock::run(&mut out, &path, &holder, &only)
        }
        Command::Snapshot {
            path,
            out: file,
            only,
        } => commands::snapshot::run(&mut out, &path, file.as_deref(), &only),
        Command::Lower { path } => commands::lower::run(&mut out, &path),
        Command::Explain {
            agent,
            provider,
            action,
            resource,
            namespace,
            name,
            path,
        } => match (provider, action, resource) {
            (Some(provider), Some(action), Some(resource)) => commands::explain::request(
                &mut out,
                &path,
                commands::explain::Asked {
                    agent: &agent,
                    provider: &provider,
                    action: &action,
                    resource: &resource,
                    namespace,
                    name,
                },
            ),
            _ => commands::explain::describe(&mut out, &path, &agent),
        },
    };
    let _ = out.flush();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            error_code
        }
    }
}
