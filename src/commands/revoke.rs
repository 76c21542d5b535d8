//! `writ revoke AGENT`: the emergency brake. Cuts the agent (and, if asked,
//! its delegates) off in every live provider in scope, at once and outside
//! any plan; `--lift` removes the revocation.

use crate::clock;
use crate::error::{CliError, Outcome};
use crate::live::{self, Scope};
use crate::pipeline::{checked, load};
use crate::report;
use std::io::Write;
use std::path::Path;
use writ_provider_core::Retrier;

pub struct RevokeArgs<'a> {
    pub agent: &'a str,
    pub include_delegates: bool,
    pub lift: bool,
    pub only: &'a [String],
}

pub fn run(out: &mut impl Write, path: &Path, args: RevokeArgs) -> Outcome {
    let project = load(path)?;
    // The brake works when it is needed most: with a source that has
    // errors, or that no longer declares the agent. It then revokes, by
    // name, what the providers hold for the agent.
    let checked = checked(&project)?;
    if checked.has_errors() {
        eprintln!(
            "warning: the source has errors ({}); revoking from what the providers hold",
            report::summary(&checked.diagnostics)
        );
    }
    let model = &checked.model;
    let agent = args.agent;
    let mut agents = vec![agent.to_string()];
    match model.agent_id(agent) {
        Some(id) => {
            if args.include_delegates {
                for (other, candidate) in model.agents.iter().enumerate() {
                    if model.ancestors(other).contains(&id) {
                        agents.push(candidate.name.clone());
                    }
                }
            }
        }
        None => {
            eprintln!("note: the source declares no agent `{agent}`; revoking what the providers hold for that name");
            if args.include_delegates {
                eprintln!("note: without the agent in the source, its delegates are not known: revoke each by name");
            }
        }
    }
    if model.providers.is_empty() {
        return Err(CliError::Message(
            "the source declares no provider to revoke in (or they are in a file that does not parse)".into(),
        ));
    }
    let scope = Scope::new(model, args.only)?;
    let now = clock::now_rfc3339();
    let retrier = Retrier::default_policy();
    writ_provider_core::runtime()?.block_on(async {
        let providers = live::connect(&project, model, &scope, &retrier).await?;
        let mut failed = false;
        for provider in &providers {
            for name in &agents {
                let report = if args.lift {
                    provider.lift(name).await
                } else {
                    provider.revoke(name, &now).await
                };
                for line in &report.lines {
                    writeln!(out, "{line}")?;
                }
                failed |= report.failed;
            }
        }
        if args.lift && !failed {
            writeln!(
                out,
                "Access keys writ disabled stay disabled: rotate them and enable the new ones by hand."
            )?;
        }
        Ok(i32::from(failed))
    })
}
