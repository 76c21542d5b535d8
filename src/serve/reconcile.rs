//! The watch of `writ serve --reconcile-every`: every so often the live
//! providers are read and planned against the source, as `writ drift
//! --live` does, on a thread of its own. What it finds is shared by every
//! replica without a store of their own, since each reads the same
//! providers:
//! - the agents `writ revoke` cut off there (role tags, the cluster's
//!   inventory record): the server refuses them, and their delegates, from
//!   the next request after the poll that sees it, and again serves them
//!   once the poll sees the revocation lifted;
//! - drift, by provider, and access the source does not declare, for
//!   `/metrics` and `/v1/status`.
//!
//! A round that fails (a provider unreachable, the source broken) keeps
//! what the last good one found, and says so.

use super::Shared;
use crate::live::{self, Scope};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use writ_provider_core::Retrier;

/// What the last rounds found.
#[derive(Debug, Default)]
pub struct Watch {
    /// Agents revoked in the providers, as the last good round read them.
    pub revoked: BTreeSet<String>,
    /// Objects drifted, by provider (`aws.prod`).
    pub drift: BTreeMap<String, usize>,
    /// Links of access the source does not declare.
    pub undeclared: usize,
    /// When the last good round ended.
    pub last: Option<String>,
    /// Why the last round failed, if it did.
    pub error: Option<String>,
    pub rounds: u64,
    pub failures: u64,
}

impl Watch {
    /// For `/v1/status`.
    pub fn status(&self) -> Value {
        json!({
            "last": self.last,
            "error": self.error,
            "rounds": self.rounds,
            "failures": self.failures,
            "revoked_in_providers": self.revoked,
            "drift": self.drift,
            "undeclared_access": self.undeclared,
        })
    }

    /// For `/metrics`, Prometheus' text format.
    pub fn metrics(&self, out: &mut String) {
        out.push_str("# HELP writ_reconciles_total Rounds of the drift watch, by result.\n# TYPE writ_reconciles_total counter\n");
        out.push_str(&format!(
            "writ_reconciles_total{{result=\"ok\"}} {}\nwrit_reconciles_total{{result=\"failed\"}} {}\n",
            self.rounds - self.failures,
            self.failures
        ));
        out.push_str("# HELP writ_drift_objects Objects drifted from what writ applied, by provider, at the last good round.\n# TYPE writ_drift_objects gauge\n");
        for (provider, count) in &self.drift {
            out.push_str(&format!(
                "writ_drift_objects{{provider=\"{provider}\"}} {count}\n"
            ));
        }
        out.push_str("# HELP writ_undeclared_access_links Links of access the providers hold and the source does not declare.\n# TYPE writ_undeclared_access_links gauge\n");
        out.push_str(&format!(
            "writ_undeclared_access_links {}\n",
            self.undeclared
        ));
        out.push_str("# HELP writ_provider_revocations Agents revoked in the providers (`writ revoke`), refused by this server.\n# TYPE writ_provider_revocations gauge\n");
        out.push_str(&format!(
            "writ_provider_revocations {}\n",
            self.revoked.len()
        ));
    }
}

/// One good round's findings.
struct Found {
    revoked: BTreeSet<String>,
    drift: BTreeMap<String, usize>,
    undeclared: usize,
}

/// Starts the watch: a round now, then one every `every`.
pub fn spawn(shared: Arc<Shared>, path: PathBuf, every: Duration) {
    std::thread::spawn(move || loop {
        let result = round(&path);
        let mut watch = shared
            .watch
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        watch.rounds += 1;
        match result {
            Ok(found) => {
                if found.revoked != watch.revoked {
                    eprintln!(
                        "writ serve: revoked in the providers: {}",
                        if found.revoked.is_empty() {
                            "none".to_string()
                        } else {
                            found
                                .revoked
                                .iter()
                                .map(|a| format!("`{a}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    );
                }
                watch.revoked = found.revoked;
                watch.drift = found.drift;
                watch.undeclared = found.undeclared;
                watch.last = Some(super::now());
                watch.error = None;
            }
            Err(error) => {
                eprintln!("writ serve: the drift watch could not read the providers: {error}");
                watch.failures += 1;
                watch.error = Some(error);
            }
        }
        drop(watch);
        std::thread::sleep(every);
    });
}

/// Reads the live providers and plans against the source.
fn round(path: &Path) -> Result<Found, String> {
    let project = crate::project::load(path).map_err(|e| e.to_string())?;
    let checked = crate::pipeline::source_checked(&project).map_err(|e| e.to_string())?;
    if checked.has_errors() {
        return Err(format!(
            "the source has errors ({})",
            crate::report::summary(&checked.diagnostics)
        ));
    }
    let model = checked.model;
    let mut desired = writ_compiler::lower::lower(&model, &project.name);
    let scope = Scope::new(&model, &[]).map_err(|e| e.to_string())?;
    live::keep_live_providers(&project, &model, &mut desired);
    let observed = live::observe(&project, &model, &scope, &Retrier::default_policy())
        .map_err(|e| e.to_string())?;
    let plan = crate::pipeline::make_plan(
        &project,
        &mut desired,
        &observed.resources,
        Some(&observed.identities[..]),
        observed.unfinished,
        None,
    )
    .map_err(|e| e.to_string())?;
    let undeclared =
        crate::pipeline::undeclared_access(&project, Some(&model), &desired, &observed.resources)
            .map_err(|e| e.to_string())?;
    let mut drift: BTreeMap<String, usize> = desired
        .resources
        .iter()
        .map(|r| (r.provider.clone(), 0))
        .collect();
    for entry in &plan.drift {
        let provider = entry.address.split('/').next().unwrap_or_default();
        *drift.entry(provider.to_string()).or_default() += 1;
    }
    Ok(Found {
        revoked: plan.revoked.iter().map(|r| r.agent.clone()).collect(),
        drift,
        undeclared: undeclared.len(),
    })
}
