//! `writ revoke AGENT`: the emergency brake. Cuts the agent (and, if asked,
//! its delegates) off in every live provider in scope, at once and outside
//! any plan; `--lift` removes the revocation.

use crate::clock;
use crate::error::{CliError, Outcome};
use crate::live::Scope;
use crate::pipeline::{load, providers_configured, source_checked};
use crate::report;
use crate::term;
use std::io::Write;
use std::path::Path;
use writ_provider_core::RevokeMark;

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
    let checked = source_checked(&project)?;
    if checked.has_errors() {
        eprintln!(
            "warning: the source has errors ({}); revoking from what the providers hold",
            report::summary(&checked.diagnostics)
        );
        if args.include_delegates {
            eprintln!("warning: delegates declared in blocks that do not parse are not known: revoke each by name");
        }
    } else if let Err(error) = providers_configured(&project, &checked) {
        // A stale section in writ.toml must not hold the brake back.
        eprintln!("warning: {error}; revoking in the providers the source declares");
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
    let broken = checked.has_errors();
    let mark = RevokeMark {
        at: clock::now_rfc3339(),
        by: term::actor(),
    };
    writ_provider_core::runtime()?
        .block_on(crate::brake::pull(
            out,
            &crate::brake::Brake {
                project: &project,
                model,
                sources: &project.sources,
                agents: &agents,
                lift: args.lift,
                only: args.only,
                scope: &scope,
                broken,
                mark: &mark,
            },
        ))
        .map(i32::from)
}
