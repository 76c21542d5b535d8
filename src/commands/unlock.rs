//! `writ unlock --holder HOLDER`: gives back the project's lock that a run
//! left behind (it was killed before it could), without waiting for its
//! lease to end. Only the lock held by exactly that holder, as the refusal
//! named it, is released: never one a live run holds under another name.

use crate::error::Outcome;
use crate::live::{self, Scope};
use crate::pipeline::{desired_state, load};
use std::io::Write;
use std::path::Path;
use writ_provider_core::{Release, Retrier, Unfinished};

pub fn run(out: &mut impl Write, path: &Path, holder: &str, only: &[String]) -> Outcome {
    let project = load(path)?;
    let Some((model, _)) = desired_state(&project)? else {
        return Ok(1);
    };
    let scope = Scope::new(&model, only)?;
    let retrier = Retrier::default_policy();
    writ_provider_core::runtime()?.block_on(async {
        let mut failed = false;
        for declared in live::in_scope(&project, &model, &scope, true) {
            // GitHub keeps no lock.
            if declared.kind == writ_compiler::facts::ProviderKind::Github {
                continue;
            }
            let address = declared.address();
            let provider = match live::connect_one(&project, &model, declared, &retrier).await {
                Ok((provider, _)) => provider,
                Err(error) => {
                    writeln!(out, "could not reach {address}: {error}")?;
                    failed = true;
                    continue;
                }
            };
            // Only the lock that holder holds: nothing is written for a
            // holder that holds none (a typo, or a run long gone).
            let holds = match provider.lock_record().await {
                Ok(lock) => lock.held.is_some_and(|held| held.holder == holder),
                Err(error) => {
                    writeln!(out, "{address}: could not read the lock: {error}")?;
                    failed = true;
                    continue;
                }
            };
            if !holds {
                writeln!(out, "{address}: no lock held by {holder}")?;
                continue;
            }
            // The run that left its lock did not finish: what it left is
            // recorded as its, until an apply converges.
            let record = Unfinished {
                what: format!("the run of {holder} never gave its lock back and may have stopped partway: released by writ unlock"),
                agents: None,
            };
            match provider.unlock(holder, Release::Interrupted(&record)).await {
                Ok(true) => writeln!(
                    out,
                    "{address}: released the lock of {holder}; until an apply finishes, plans call what differs there its unfinished work"
                )?,
                Ok(false) => writeln!(out, "{address}: no lock held by {holder}")?,
                Err(error) => {
                    writeln!(out, "{address}: could not release the lock: {error}")?;
                    failed = true;
                }
            }
        }
        Ok(i32::from(failed))
    })
}
