//! The command line: parses arguments, hands each subcommand to its module
//! in `commands/`, prints the error that ended it, and decides the exit
//! code. The conventions every command follows, and the exit codes, are in
//! `docs/cli.md`: 0 success, 1 failure of any kind (findings that fail the
//! run, a DENIED under `explain --exit-code`, usage, configuration and I/O
//! errors), 2 "there are changes" (only under `--detailed-exitcode`).

use crate::actions::GithubArgs;
use crate::commands;
use crate::render::PlanFormat;
use crate::report::Format;
use crate::term::{self, ColourChoice};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// Exit code: a failure of any kind (see the module's documentation).
pub const FAILURE: i32 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "writ",
    version,
    max_term_width = 100,
    about = "Policy-as-code compiler and GitOps reconciler for machine identities",
    after_help = "Every command takes the project as PATH (default: the current folder), and finds its writ.toml by walking up, as cargo does. Conventions and exit codes: docs/cli.md."
)]
pub struct Cli {
    /// When to colour the output: `auto` on a terminal, unless NO_COLOR is
    /// set or TERM=dumb.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColourChoice::Auto)]
    color: ColourChoice,
    #[command(subcommand)]
    command: Command,
}

/// The help of every PATH: the project, found from any folder inside it.
const PATH_HELP: &str = "The project: a folder at or below its writ.toml";

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and check a project, reporting every finding.
    Check {
        /// A project folder (found from any folder inside it) or a single
        /// `.writ` file.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// How to print the findings.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Also report the access graph's findings: a workload that can act
        /// as more agents than `[graph] max_identities` (writ.toml, default
        /// 3) allows (`writ::wide_reach`); agents that can become one
        /// another (`writ::trust_cycle`).
        #[arg(long)]
        graph: bool,
        /// Also report the grants no agent used in these logs (CloudTrail,
        /// Kubernetes audit; files or folders), in the providers they
        /// cover (`writ::unused_grant`; docs/usage.md).
        #[arg(long, value_name = "LOG")]
        usage: Vec<PathBuf>,
        /// The window `--usage` counts, ending today.
        #[arg(long, default_value = "90d", requires = "usage")]
        since: String,
    },
    /// Format `.writ` files in the canonical layout.
    Fmt {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// Change nothing: show the difference, and exit 1 if any file is
        /// not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Serve editors: a language server (LSP) on standard input and output,
    /// with the findings of `check` as you type, hover, go-to, rename,
    /// completion, quick fixes and formatting (docs/editors.md).
    Lsp {
        /// Accepted for editors that pass it: stdio is the only transport.
        #[arg(long, hide = true)]
        stdio: bool,
    },
    /// Show who can reach what: the workloads that authenticate as each
    /// agent, its delegates, and what each may do; chains checked by the
    /// evaluator (docs/graph.md).
    Graph {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// Add the access this recorded state holds and the source does
        /// not declare (RBAC bound to an agent's service account, IAM
        /// policies on an agent's role and roles that trust it, GCP
        /// bindings, deploy keys: made or changed outside writ).
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
        /// The same, from the live providers.
        #[arg(long, conflicts_with = "snapshot")]
        live: bool,
        /// Everything reachable from a workload or agent, hop by hop
        /// (`github:acme/platform`, `k8s:prod/billing/billing-bot`,
        /// `agent:billing_bot`).
        #[arg(long, value_name = "NODE", conflicts_with_all = ["to", "agent"])]
        from: Option<String>,
        /// Every chain that can reach a resource, fewest hops first (an
        /// ARN or ARN pattern, a repository, `k8s:prod/secrets in billing`).
        #[arg(long, value_name = "RESOURCE", conflicts_with = "agent")]
        to: Option<String>,
        /// An agent's neighbourhood: what reaches it, and what it reaches.
        #[arg(long, value_name = "AGENT")]
        agent: Option<String>,
        /// How to print the graph.
        #[arg(long, value_enum, default_value_t = commands::graph::GraphFormat::Text)]
        format: commands::graph::GraphFormat,
    },
    /// What each agent actually did, grant by grant, from AWS CloudTrail
    /// and Kubernetes audit logs: each grant's use, grants never used,
    /// access used beyond the grants, and denied attempts (docs/usage.md).
    Usage {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        #[command(flatten)]
        sources: crate::logs::Sources,
        /// How to print the report.
        #[arg(long, value_enum, default_value_t = commands::usage::UsageFormat::Text)]
        format: commands::usage::UsageFormat,
    },
    /// Rewrite the source down to what the usage logs show was used,
    /// never below it: grants nobody used removed, actions nobody used
    /// dropped, wildcards replaced by the actions (and S3 resource
    /// wildcards by the buckets) used; `@keep` grants left. A diff, or the
    /// files with `--write`; refused unless the result checks and still
    /// allows every recorded request (docs/usage.md).
    Tighten {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        #[command(flatten)]
        sources: crate::logs::Sources,
        /// Rewrite the files (default: print the change as a diff).
        #[arg(long)]
        write: bool,
    },
    /// Start a project: `writ.toml`, a providers file, an example agent,
    /// a `.gitignore` entry, and the two GitHub Actions workflows. Asks on
    /// a terminal; never writes over a file.
    Init {
        #[arg(
            default_value = ".",
            help = "The folder to start the project in (made if missing)"
        )]
        path: PathBuf,
        /// The project's name (default: the folder's); asks nothing.
        #[arg(long)]
        name: Option<String>,
        /// The provider kinds to start with (`aws`, `kubernetes`, `github`,
        /// `gcp`; repeatable or comma-separated; default `aws`); asks
        /// nothing.
        #[arg(long = "provider", value_name = "KIND", value_delimiter = ',')]
        providers: Vec<String>,
    },
    /// Write `.writ` source for identities made outside writ (AWS roles,
    /// Kubernetes service accounts with the roles bound to them), from a
    /// snapshot or live; what the language cannot say is kept as a
    /// comment and reported (docs/import.md).
    Import {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// A snapshot (`writ snapshot --out`) to import from.
        #[arg(long, value_name = "SNAPSHOT", required_unless_present = "live")]
        from: Option<PathBuf>,
        /// Import from the live providers.
        #[arg(long, conflicts_with = "from")]
        live: bool,
        /// Only these providers (repeatable).
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
        /// Only objects whose name matches (`ci-*`; a service account as
        /// `NAMESPACE/NAME`); repeatable.
        #[arg(long, value_name = "PATTERN")]
        select: Vec<String>,
        /// Write the source to this new file (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Answer "may this agent do this, now?" over HTTP, through the
    /// OpenID AuthZEN Authorization API, from the checked source: every
    /// decision audited, revocations at the next request, the source
    /// reloaded when it changes (docs/serve.md).
    Serve {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// `ADDRESS:PORT` to listen on (default `[serve] listen`, or
        /// `127.0.0.1:8181`).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
        /// Write the audit log here (default `[serve] audit_log`, or
        /// standard output).
        #[arg(long, value_name = "FILE")]
        audit_log: Option<PathBuf>,
        /// Read the live providers this often (`30s`, `5m`): agents revoked
        /// there (`writ revoke`) are refused, drift goes to `/metrics`
        /// (default `[serve] reconcile_every`, or never).
        #[arg(long, value_name = "DURATION")]
        reconcile_every: Option<String>,
        /// Serve over TLS with this certificate chain (PEM; default
        /// `[serve] tls_cert`).
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM; default `[serve] tls_key`).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Run the project's `test` blocks.
    Test {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// How to print the results.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show what writ would create, change and delete to make live state
    /// match the source.
    Plan {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// Plan against this recorded state (default: `[project] snapshot`
        /// in writ.toml, else the live providers).
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
        /// Plan against the live providers, even when writ.toml names a
        /// snapshot.
        #[arg(long, conflicts_with = "snapshot")]
        live: bool,
        /// How to print the plan.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Also write the plan, as JSON, to this file (to apply exactly it:
        /// `writ apply FILE`).
        #[arg(long, value_name = "FILE")]
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
        /// Usage logs (CloudTrail, Kubernetes audit): each access an agent
        /// gains is noted with whether it tried it in them (docs/usage.md).
        #[arg(long, value_name = "LOG")]
        usage: Vec<PathBuf>,
        /// The window `--usage` counts, ending today.
        #[arg(long, default_value = "90d", requires = "usage")]
        since: String,
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
        /// Allow an apply that deletes more than 25% of the objects writ
        /// manages.
        #[arg(long)]
        allow_mass_delete: bool,
        /// Take over the objects made outside writ that the source adopts
        /// (`adopts`; the plan lists them as `adopt`).
        #[arg(long)]
        adopt: bool,
        /// Limit the run to these provider instances (`aws.prod`); repeatable.
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
    },
    /// The emergency brake: deny every session the agent's roles issued
    /// before now, and disable its access keys. Kept by later applies.
    Revoke {
        /// The agent to cut off.
        agent: String,
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// Also revoke every delegate below the agent.
        #[arg(long)]
        include_delegates: bool,
        /// Remove the revocation instead.
        #[arg(long)]
        lift: bool,
        /// Limit the run to these provider instances (`aws.prod`); repeatable.
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
    },
    /// Mint a GitHub installation token for an agent that runs as a GitHub
    /// App, holding exactly what its grants declare; prints only the token.
    Token {
        /// The agent (it runs as a GitHub App).
        agent: String,
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// The GitHub provider (`github.acme`), when the agent runs as Apps
        /// in more than one.
        #[arg(long, value_name = "KIND.NAME")]
        provider: Option<String>,
        /// A token for this repository only (`acme/app`): needed when the
        /// agent's grants differ by repository.
        #[arg(long, value_name = "OWNER/NAME")]
        repository: Option<String>,
    },
    /// Release the project's lock that a run left behind (killed before it
    /// could), naming its holder as the refusal did.
    Unlock {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// The holder, exactly as writ named it when it refused.
        #[arg(long)]
        holder: String,
        /// Limit the run to these provider instances (`aws.prod`); repeatable.
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
    },
    /// Report only what changed outside writ (drift).
    Drift {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// Compare with this recorded state (default: `[project] snapshot`
        /// in writ.toml, else the live providers).
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
        /// Read the live providers, even when writ.toml names a snapshot.
        #[arg(long, conflicts_with = "snapshot")]
        live: bool,
        /// How to print the report.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Exit 2 when there is drift (0 when there is none).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Limit the run to these provider instances (`aws.prod`); repeatable.
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
    },
    /// Write what the live providers hold, in the snapshot format.
    Snapshot {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Limit the run to these provider instances (`aws.prod`); repeatable.
        #[arg(long = "only", value_name = "KIND.NAME")]
        only: Vec<String>,
    },
    /// Print the desired state (what lowering produces) as a snapshot document.
    #[command(hide = true)]
    Lower {
        #[arg(default_value = ".", help = PATH_HELP)]
        path: PathBuf,
    },
    /// Say whether an agent may perform an action on a resource, and why.
    /// Without a request: everything about one agent (where it runs, what it
    /// holds and through which scopes, its delegation, the guardrails).
    #[command(
        override_usage = "writ explain [OPTIONS] AGENT [PATH]\n       writ explain [OPTIONS] AGENT PROVIDER ACTION RESOURCE [PATH]"
    )]
    Explain {
        /// The agent.
        agent: String,
        /// The request, `PROVIDER ACTION RESOURCE` (`aws.prod s3:GetObject
        /// arn:aws:s3:::bucket/key`, `kubernetes.prod get secrets`), then
        /// the project's PATH [default: .]
        #[arg(value_name = "REQUEST", num_args = 0..=4)]
        rest: Vec<String>,
        /// For Kubernetes: the namespace of the request (default: cluster-wide).
        #[arg(long)]
        namespace: Option<String>,
        /// For Kubernetes: one object's name (default: the resource as a
        /// whole, which a grant limited with `named` does not allow).
        #[arg(long)]
        name: Option<String>,
        /// How to print the answer.
        #[arg(long, value_enum, default_value_t = commands::explain::ExplainFormat::Text)]
        format: commands::explain::ExplainFormat,
        /// Exit 1 when the request is DENIED (as `kubectl auth can-i` does).
        #[arg(long)]
        exit_code: bool,
        /// The project, as a flag (the same as PATH after the request).
        #[arg(long, hide = true, value_name = "PATH")]
        path: Option<PathBuf>,
    },
}

/// Runs writ with the process's arguments and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // `--help` and `--version` succeed; every usage error is a
            // failure, never 2, which CI reads as "there are changes".
            let code = if error.use_stderr() { FAILURE } else { 0 };
            let _ = error.print();
            return code;
        }
    };
    term::choose_colour(cli.color);
    // The language server owns standard output (its transport writes it
    // from a thread of its own): nothing may hold it locked.
    if let Command::Lsp { stdio: _ } = cli.command {
        return match commands::lsp::run() {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error}");
                FAILURE
            }
        };
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = run(&mut out, cli.command);
    let _ = out.flush();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            FAILURE
        }
    }
}

fn run(out: &mut impl Write, command: Command) -> crate::error::Outcome {
    match command {
        Command::Check {
            path,
            format,
            deny_warnings,
            graph,
            usage,
            since,
        } => commands::check::run(
            out,
            &path,
            format,
            deny_warnings,
            commands::check::Also {
                graph,
                usage: &usage,
                since: &since,
            },
        ),
        Command::Fmt { path, check } => commands::fmt::run(out, &path, check),
        // Served above, before standard output is locked.
        Command::Lsp { stdio: _ } => commands::lsp::run(),
        Command::Test { path, format } => commands::test::run(out, &path, format),
        Command::Plan {
            path,
            snapshot,
            live,
            format,
            out: plan_out,
            detailed_exitcode,
            allow_mass_delete,
            only,
            usage,
            since,
            github,
        } => commands::plan::run(
            out,
            &path,
            commands::plan::PlanArgs {
                snapshot,
                live,
                format,
                out: plan_out,
                detailed_exitcode,
                allow_mass_delete,
                only,
                usage,
                since,
                github,
            },
        ),
        Command::Apply {
            path,
            saved_plan,
            expect,
            auto_approve,
            allow_mass_delete,
            adopt,
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
                out,
                commands::apply::ApplyArgs {
                    path,
                    saved_plan,
                    auto_approve,
                    allow_mass_delete,
                    adopt,
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
            out,
            &path,
            commands::revoke::RevokeArgs {
                agent: &agent,
                include_delegates,
                lift,
                only: &only,
            },
        ),
        Command::Token {
            agent,
            path,
            provider,
            repository,
        } => commands::token::run(
            out,
            &path,
            commands::token::TokenArgs {
                agent: &agent,
                provider: provider.as_deref(),
                repository: repository.as_deref(),
            },
        ),
        Command::Drift {
            path,
            snapshot,
            live,
            format,
            detailed_exitcode,
            only,
        } => commands::drift::run(
            out,
            &path,
            commands::drift::DriftArgs {
                snapshot,
                live,
                format,
                detailed: detailed_exitcode,
                only: &only,
            },
        ),
        Command::Unlock { path, holder, only } => commands::unlock::run(out, &path, &holder, &only),
        Command::Snapshot {
            path,
            out: file,
            only,
        } => commands::snapshot::run(out, &path, file.as_deref(), &only),
        Command::Lower { path } => commands::lower::run(out, &path),
        Command::Usage {
            path,
            sources,
            format,
        } => commands::usage::run(out, &path, &sources, format),
        Command::Serve {
            path,
            listen,
            audit_log,
            reconcile_every,
            tls_cert,
            tls_key,
        } => commands::serve::run(
            &path,
            listen.as_deref(),
            audit_log.as_deref(),
            reconcile_every.as_deref(),
            (tls_cert.as_deref(), tls_key.as_deref()),
        ),
        Command::Init {
            path,
            name,
            providers,
        } => commands::init::run(out, &path, name.as_deref(), &providers),
        Command::Import {
            path,
            from,
            live,
            only,
            select,
            out: file,
        } => commands::import::run(
            out,
            &path,
            &commands::import::Asked {
                snapshot: from.as_deref(),
                live,
                only: &only,
                select: &select,
                out: file.as_deref(),
            },
        ),
        Command::Tighten {
            path,
            sources,
            write,
        } => commands::tighten::run(out, &path, &sources, write),
        Command::Graph {
            path,
            snapshot,
            live,
            from,
            to,
            agent,
            format,
        } => commands::graph::run(
            out,
            &path,
            commands::graph::Asked {
                snapshot: snapshot.as_deref(),
                live,
                from: from.as_deref(),
                to: to.as_deref(),
                agent: agent.as_deref(),
                format,
            },
        ),
        Command::Explain {
            agent,
            rest,
            namespace,
            name,
            format,
            exit_code,
            path,
        } => {
            // `AGENT [PATH]` or `AGENT PROVIDER ACTION RESOURCE [PATH]`.
            let (request, positional) = match rest.len() {
                0 | 1 => (None, rest.first()),
                3 | 4 => (Some(&rest[..3]), rest.get(3)),
                _ => {
                    return Err(format!(
                        "`writ explain {agent} {}`: a request is three words, PROVIDER ACTION RESOURCE (`aws.prod s3:GetObject arn:aws:s3:::bucket/key`), and a PATH may follow",
                        rest.join(" ")
                    )
                    .into())
                }
            };
            let path = match (positional, path) {
                (Some(_), Some(_)) => {
                    return Err("the project is given twice: as PATH and as `--path`".into())
                }
                (Some(path), None) => PathBuf::from(path),
                (None, Some(path)) => path,
                (None, None) => PathBuf::from("."),
            };
            let asked = commands::explain::Asked {
                agent: &agent,
                request: request.map(|words| commands::explain::Request {
                    provider: &words[0],
                    action: &words[1],
                    resource: &words[2],
                    namespace,
                    name,
                }),
                format,
                exit_code,
            };
            commands::explain::run(out, &path, asked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is for.
    #[test]
    fn every_argument_has_help() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for command in cli.get_subcommands() {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.get_help().is_none() && id != "help" && id != "version" {
                    missing.push(format!("writ {} {id}", command.get_name()));
                }
            }
        }
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }

    /// Help fits a 100-column terminal, whatever the terminal.
    #[test]
    fn help_is_wrapped() {
        let mut cli = Cli::command();
        cli.build();
        let mut long = Vec::new();
        let mut commands: Vec<clap::Command> = cli.get_subcommands().cloned().collect();
        commands.push(cli.clone());
        for mut command in commands {
            let help = command.render_long_help().to_string();
            long.extend(
                help.lines()
                    .filter(|line| line.chars().count() > 100)
                    .map(|line| format!("{}: {line}", command.get_name())),
            );
        }
        assert!(long.is_empty(), "help lines over 100 columns: {long:#?}");
    }
}
