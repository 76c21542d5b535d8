//! `writ revoke AGENT`: the emergency brake. Cuts the agent (and, if asked,
//! its delegates) off in every live provider in scope, at once and outside
//! any plan; `--lift` removes the revocation.

use crate::clock;
use crate::error::{CliError, Outcome};
use crate::live::{self, Scope};
use crate::pipeline::{desired_state, load};
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
    let Some((model, _)) = desired_state(&mut std::io::stderr(), &project, true)? else {
        return Ok(1);
    };
    let agent = args.agent;
    let id = model
        .agent_id(agent)
        .ok_or_else(|| CliError::Message(format!("no agent named `{agent}`")))?;
    let mut agents = vec![model.agents[id].name.clone()];
    if args.include_delegates {
        for (other, candidate) in model.agents.iter().enumerate() {
            if model.ancestors(other).contains(&id) {
                agents.push(candidate.name.clone());
            }
        }
    }
    let scope = Scope::new(&model, args.only)?;
    let now = clock::now_rfc3339();
    let retrier = Retrier::default_policy();
    writ_provider_core::runtime()?.block_on(async {
        let providers = live::connect(&project, &model, &scope, &retrier).await?;
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
