//! The watch of `writ serve --reconcile-every`: every so often the live
//! providers are read and planned against the source, as `writ drift
//! --live` does, on a thread of its own. What it finds is shared by every
//! replica without a store of their own, since each reads the same
//! providers:
//! - the agents `writ revoke` cut off there (role tags, the cluster's
//!   inventory record, a GCP service account's record, a GitHub App's
//!   suspended installation): the server refuses them, and their
//!   delegates, from
//!   the next request after the poll that sees it, and again serves them
//!   once the poll sees the revocation lifted;
//! - drift, by provider, and access the source does not declare, for
//!   `/metrics` and `/v1/status`.
//!
//! The first round runs before the server answers anything, and must
//! succeed, or the server does not start. A round that fails later (a
//! provider unreachable) keeps what the last good one found, and says so;
//! once the last good round is older than three periods the server is no
//! longer ready (`/v1/ready` answers 503), so that a load balancer stops
//! sending it requests it might answer from revocations it cannot see.
//! Rounds plan against the model being served, so an edit that breaks the
//! source stops neither the answers nor the reading of revocations.

use super::Shared;
use crate::live::{self, Scope};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use writ_compiler::model::{Model, WorkloadKind};
use writ_compiler::ownership::gcp;
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
    /// When the last good round ended: the time, and the same on the
    /// monotonic clock, for staleness.
    pub last: Option<(jiff::Timestamp, std::time::Instant)>,
    /// How often rounds run.
    pub every: Duration,
    /// Why the last round failed, if it did.
    pub error: Option<String>,
    pub rounds: u64,
    pub failures: u64,
}

impl Watch {
    /// Is what the last good round read recent enough to answer from? Not
    /// before one, nor once it is older than three periods.
    pub fn fresh(&self) -> bool {
        self.last
            .is_some_and(|(_, at)| at.elapsed() <= self.every * 3 + Duration::from_secs(1))
    }

    /// For `/v1/status`.
    pub fn status(&self) -> Value {
        json!({
            "last": self.last.map(|(time, _)| time.to_string()),
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
        out.push_str("# HELP writ_reconcile_last_success_timestamp_seconds When the last good round of the drift watch ended.\n# TYPE writ_reconcile_last_success_timestamp_seconds gauge\n");
        out.push_str(&format!(
            "writ_reconcile_last_success_timestamp_seconds {}\n",
            self.last.map_or(0, |(time, _)| time.as_second())
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

/// Runs a round now, before the server answers anything (an error when
/// it fails: the server must not start blind to revocations), then one
/// every `every` on a thread of its own.
pub fn start(shared: Arc<Shared>, path: PathBuf, every: Duration) -> Result<(), String> {
    shared
        .watch
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .every = every;
    let first = guarded(&shared, &path)?;
    record(&shared, Ok(first));
    std::thread::spawn(move || {
        let mut next = std::time::Instant::now() + every;
        loop {
            std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
            next += every;
            let result = guarded(&shared, &path);
            record(&shared, result);
        }
    });
    Ok(())
}

/// A round, with a panic in it taken as a failed round.
fn guarded(shared: &Shared, path: &Path) -> Result<Found, String> {
    let model = shared.loaded().engine.model().clone();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| round(path, &model)))
        .unwrap_or_else(|_| Err("the round failed inside writ (a panic)".to_string()))
}

/// Keeps what a round found, and says what changed.
fn record(shared: &Shared, result: Result<Found, String>) {
    let mut said = None;
    {
        let mut watch = shared
            .watch
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        watch.rounds += 1;
        match result {
            Ok(found) => {
                if found.revoked != watch.revoked {
                    said = Some(format!(
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
                    ));
                }
                watch.revoked = found.revoked;
                watch.drift = found.drift;
                watch.undeclared = found.undeclared;
                watch.last = Some((jiff::Timestamp::now(), std::time::Instant::now()));
                watch.error = None;
            }
            Err(error) => {
                said = Some(format!(
                    "writ serve: the drift watch could not read the providers: {error}"
                ));
                watch.failures += 1;
                watch.error = Some(error);
            }
        }
    }
    // Printed with the lock released: decisions read it.
    if let Some(said) = said {
        eprintln!("{said}");
    }
}

/// Reads the live providers and plans against `model`, the one being
/// served (the project's files give `writ.toml`).
fn round(path: &Path, model: &Model) -> Result<Found, String> {
    let project = crate::project::load(path).map_err(|e| e.to_string())?;
    let mut desired = writ_compiler::lower::lower(model, &project.name);
    let scope = Scope::new(model, &[]).map_err(|e| e.to_string())?;
    let declared: Vec<String> = model.providers.iter().map(|p| p.address()).collect();
    project
        .config
        .check_providers(&declared)
        .map_err(|e| e.to_string())?;
    live::keep_live_providers(&project, model, &mut desired);
    let observed = live::observe(&project, model, &scope, &Retrier::default_policy())
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
        crate::pipeline::undeclared_access(&project, Some(model), &desired, &observed.resources)
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
    // AWS roles' and clusters' revocations are the plan's; a GCP service
    // account `writ revoke` disabled says so in its record.
    let mut revoked: BTreeSet<String> = plan.revoked.iter().map(|r| r.agent.clone()).collect();
    for account in observed
        .resources
        .iter()
        .filter(|r| r.kind == writ_compiler::resource::ResourceKind::GcpServiceAccount)
    {
        let description = account.string("description").unwrap_or_default();
        let id = account.string("account_id").unwrap_or_default();
        if gcp::is_revoked(description) && gcp::is_projects(id, description, &project.name) {
            revoked.extend(gcp::read(description).map(|(_, agent)| agent.to_string()));
        }
    }
    // A GitHub App whose installation is suspended (`writ revoke` does so
    // for an agent that runs as it) has no tokens: none of the agents that
    // run as it may act.
    for installation in observed.resources.iter().filter(|r| {
        r.kind == writ_compiler::resource::ResourceKind::GithubAppInstallation
            && r.attribute("suspended")
                .and_then(serde_json::Value::as_bool)
                == Some(true)
    }) {
        let slug = installation.string("app").unwrap_or_default();
        for agent in &model.agents {
            let runs_as = agent.runs_on.iter().any(|w| {
                model.providers[w.provider].address() == installation.provider
                    && matches!(&w.kind, WorkloadKind::GithubApp { slug: s } if s == slug)
            });
            if runs_as {
                revoked.insert(agent.name.clone());
            }
        }
    }
    Ok(Found {
        revoked,
        drift,
        undeclared: undeclared.len(),
    })
}
