//! The plan as a value: what changes, what drifted, what is listed, and
//! who gains or loses which access. Renderers are pure functions of it.

use crate::resource::ResourceKind;
use crate::values::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const FORMAT_VERSION: u32 = 1;

/// The share of managed objects a plan may delete without
/// `--allow-mass-delete`, in percent.
pub const DEFAULT_MASS_DELETE_PERCENT: u32 = 25;
/// The breaker's absolute cap: a plan that deletes or replaces more objects
/// than this is refused whatever share of the estate they are.
pub const MASS_DELETE_CAP: usize = 50;
/// Below this many deletions and replacements the share alone never trips
/// the breaker (removing one agent from a project of three is no mass
/// deletion).
pub const MASS_DELETE_FLOOR: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    /// Writ takes ownership of an object made outside it, where it is
    /// (`adopts`), and makes it what the source says.
    Adopt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Create,
    Update,
    Replace,
    Delete,
    Adopt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: String,
    pub provider: String,
    pub kind: ResourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// `["create"]`, `["update"]`, `["delete"]`, or `["delete", "create"]`
    /// for a replacement.
    pub actions: Vec<Action>,
    pub before: Option<BTreeMap<String, Value>>,
    pub after: Option<BTreeMap<String, Value>>,
    /// The attributes that differ (`tags.writ:owner` for one tag).
    #[serde(default)]
    pub changed_paths: Vec<String>,
    /// For a replacement: the attribute that cannot change in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_because: Option<String>,
    pub reason: String,
}

impl Change {
    pub fn kind_of_change(&self) -> ChangeKind {
        match self.actions.as_slice() {
            [Action::Create] => ChangeKind::Create,
            [Action::Delete] => ChangeKind::Delete,
            [Action::Delete, Action::Create] => ChangeKind::Replace,
            [Action::Adopt] => ChangeKind::Adopt,
            _ => ChangeKind::Update,
        }
    }
}

/// An owned object whose content no longer matches the digest writ wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub address: String,
    pub kind: ResourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What differs from the source, where the source still declares it.
    pub changed_paths: Vec<String>,
    pub detail: String,
    #[serde(default)]
    pub cause: DriftCause,
}

/// Why an object is listed as drift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftCause {
    /// An object writ owns is no longer as writ left it.
    #[default]
    Edited,
    /// An object made outside writ gives one of writ's identities access.
    ForeignGrant,
    /// An object writ owns is not as writ left it, in a provider whose lock
    /// records a run that stopped before it finished: most likely that
    /// run's unfinished work (or, were there no such run, an edit).
    InterruptedApply,
    /// As above, but the run holds the lock now: it may be changing the
    /// object as the plan is made.
    ApplyRunning,
}

/// A run whose lock is still there: one that stopped before it finished,
/// or one going on now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unfinished {
    pub provider: String,
    /// The lock's lease has not ended: the run may be going on now.
    pub running: bool,
    /// Who ran it and what happened, in words.
    pub detail: String,
    /// The agents whose changes it left unfinished; absent: any agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<String>>,
}

/// An identity writ found but does not own: listed, never changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unmanaged {
    pub address: String,
    pub kind: ResourceKind,
    pub name: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_days: Option<i64>,
    /// Older, or unused for longer, than the configured maximum key age.
    pub stale: bool,
    /// What makes it dangerous (`cluster-admin`, a long-lived token, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// An agent cut off by `writ revoke`: kept so until lifted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revoked {
    pub agent: String,
    pub address: String,
    pub detail: String,
}

/// A desired object whose name is taken by one writ does not own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub address: String,
    pub kind: ResourceKind,
    /// The agent whose object it would be: its changes are not applied
    /// while the conflict lasts; other agents' are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub detail: String,
}

/// One (provider, action, resource) an agent may perform.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Access {
    pub provider: String,
    pub action: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// An [`Access`] with what the delta compares it by: its condition by
/// meaning (one term per key) and what kind of access it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Claim {
    pub access: Access,
    pub terms: Vec<Term>,
    pub sense: Sense,
}

impl From<Access> for Claim {
    fn from(access: Access) -> Claim {
        Claim {
            access,
            terms: Vec::new(),
            sense: Sense::Allow,
        }
    }
}

/// One key of an IAM condition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Term {
    pub key: String,
    /// `StringEquals`, `StringLike`, `ArnLike`, …
    pub operator: String,
    pub values: Vec<String>,
}

/// What an access claim is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Sense {
    /// The agent may do it.
    #[default]
    Allow,
    /// The principal (`resource`) may become the agent.
    Trust,
    /// The agent is denied it.
    Deny,
    /// The principal (`resource`) may not become the agent.
    TrustDeny,
}

impl Sense {
    pub(crate) fn is_deny(self) -> bool {
        matches!(self, Sense::Deny | Sense::TrustDeny)
    }

    /// What a deny of this sense takes away.
    pub(crate) fn denied(self) -> Sense {
        match self {
            Sense::TrustDeny => Sense::Trust,
            _ => Sense::Allow,
        }
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} `{}` on `{}`",
            self.provider, self.action, self.resource
        )?;
        match &self.condition {
            // A Kubernetes placement ("in namespace `billing`") reads as is.
            Some(place) if place.starts_with("in ") => write!(f, " {place}")?,
            Some(condition) => write!(f, " when {condition}")?,
            None => {}
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentDelta {
    pub agent: String,
    pub gains: Vec<Access>,
    pub losses: Vec<Access>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    /// Objects made outside writ that it takes over (`writ apply --adopt`).
    #[serde(default)]
    pub adopt: usize,
    pub unchanged: usize,
    /// Objects writ owns in the observed state.
    pub managed: usize,
    pub drift: usize,
    pub unmanaged: usize,
    pub conflicts: usize,
    pub agents_gaining: usize,
    pub agents_losing: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub project: String,
    pub summary: Summary,
    pub changes: Vec<Change>,
    pub drift: Vec<Drift>,
    pub unmanaged: Vec<Unmanaged>,
    pub conflicts: Vec<Conflict>,
    pub permission_delta: Vec<AgentDelta>,
    /// Agents under `writ revoke`: their revocation is kept by every apply.
    #[serde(default)]
    pub revoked: Vec<Revoked>,
    /// What the reader should know that is no change: what a provider
    /// cannot hold by itself (an expiry date in a cluster).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Where each live provider was when the plan was made, as it said
    /// when asked (empty for a plan made from a snapshot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<Identity>,
    /// Runs whose lock is still there (see [`Plan::note_unfinished`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfinished: Vec<Unfinished>,
    /// Access the observed state holds and the source does not declare
    /// (see [`crate::graph::Graph::observe`]); set by the command that
    /// made the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undeclared_access: Vec<crate::graph::Undeclared>,
    /// How the plan was made; set by the command that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// Where one live provider instance is, proven by asking it before
/// anything else: an AWS account and the caller, a cluster's API server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub provider: String,
    /// `account 123456789012`, `https://…` (a cluster's API server).
    pub place: String,
    /// Who writ acts as there, when the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
}

/// How a plan was made: what `writ apply PLAN.json` checks before it
/// applies a saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The version of writ that made it.
    pub writ_version: String,
    /// A digest of every source file (path and text).
    pub source_digest: String,
    /// `live` or `snapshot`: what the source was compared with.
    pub observed: String,
    /// The snapshot file, as it was named, when `observed` is `snapshot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

impl Summary {
    /// Counts the changes by kind.
    pub(super) fn count(&mut self, changes: &[Change]) {
        for change in changes {
            match change.kind_of_change() {
                ChangeKind::Create => self.create += 1,
                ChangeKind::Update => self.update += 1,
                ChangeKind::Replace => self.replace += 1,
                ChangeKind::Delete => self.delete += 1,
                ChangeKind::Adopt => self.adopt += 1,
            }
        }
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Records the runs whose lock is still there, and calls what differs
    /// in an owned object of their providers their unfinished work rather
    /// than an edit. It is still listed: the lock is a label, not a proof
    /// (whoever can write the lock can write this label).
    pub fn note_unfinished(&mut self, runs: Vec<Unfinished>) {
        for drift in self
            .drift
            .iter_mut()
            .filter(|d| d.cause == DriftCause::Edited)
        {
            let provider = drift.address.split('/').next().unwrap_or_default();
            let touched: Vec<&Unfinished> = runs
                .iter()
                .filter(|r| r.provider == provider)
                .filter(|r| match (&r.agents, &drift.agent) {
                    (None, _) => true,
                    (Some(agents), Some(agent)) => agents.contains(agent),
                    (Some(_), None) => false,
                })
                .collect();
            if touched.iter().any(|r| r.running) {
                drift.cause = DriftCause::ApplyRunning;
            } else if !touched.is_empty() {
                drift.cause = DriftCause::InterruptedApply;
            }
        }
        // The changes that restore those objects say so too.
        let unfinished: Vec<&str> = self
            .drift
            .iter()
            .filter(|d| {
                matches!(
                    d.cause,
                    DriftCause::InterruptedApply | DriftCause::ApplyRunning
                )
            })
            .map(|d| d.address.as_str())
            .collect();
        for change in &mut self.changes {
            let within = unfinished.iter().any(|object| {
                change
                    .address
                    .strip_prefix(object)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            });
            let Some(what) = change
                .reason
                .strip_prefix("restores the ")
                .and_then(|r| r.strip_suffix(" changed outside writ"))
            else {
                continue;
            };
            if within {
                change.reason = format!("restores the {what} an unfinished run left half-done");
            }
        }
        self.unfinished = runs;
    }

    /// The objects writ manages that the plan deletes, and those it
    /// replaces (deleted, then made again: a new IAM role has a new role
    /// id, which breaks every policy elsewhere that names the old one).
    /// Long-lived tokens writ removes are not objects it manages.
    pub fn removals(&self) -> (usize, usize) {
        let mut deletes = 0;
        let mut replaces = 0;
        for change in self
            .changes
            .iter()
            .filter(|c| c.kind != ResourceKind::KubernetesTokenSecret)
        {
            match change.kind_of_change() {
                ChangeKind::Delete => deletes += 1,
                ChangeKind::Replace => replaces += 1,
                _ => {}
            }
        }
        (deletes, replaces)
    }

    /// `Some((removed, managed))` when the plan deletes or replaces more
    /// than `percent` of the objects writ manages (and more than
    /// [`MASS_DELETE_FLOOR`]), or more than [`MASS_DELETE_CAP`] whatever
    /// the share. It guards one plan: a run of small plans is each judged
    /// alone.
    pub fn mass_delete(&self, percent: u32) -> Option<(usize, usize)> {
        let (deletes, replaces) = self.removals();
        let removed = deletes + replaces;
        let managed = self.summary.managed;
        let share = managed > 0
            && removed > MASS_DELETE_FLOOR
            && removed * 100 > percent as usize * managed;
        (share || removed > MASS_DELETE_CAP).then_some((removed, managed))
    }

    /// Agents whose objects cannot all be made (a conflict): none of their
    /// changes are applied; every other agent's are.
    pub fn blocked_agents(&self) -> std::collections::BTreeSet<&str> {
        self.conflicts
            .iter()
            .filter_map(|c| c.agent.as_deref())
            .collect()
    }

    /// Owned objects that are not as the source says although their digest
    /// says writ made them so: the source changed and was not applied yet,
    /// or someone rewrote the digest along with the object to hide an
    /// edit. The digest only labels; this is what `writ drift` adds to it.
    pub fn unapplied(&self) -> Vec<&Change> {
        self.changes
            .iter()
            .filter(|c| {
                c.before.is_some()
                    && c.kind != ResourceKind::KubernetesTokenSecret
                    && !c.kind.keeps_no_digest()
            })
            .filter(|c| !self.drift.iter().any(|d| d.address == c.address))
            .collect()
    }

    /// The objects writ keeps no digest on (governed GitHub settings and
    /// environments, GCP policies and pools) that exist and
    /// are not as the source says: writ cannot tell a change made by hand
    /// from a source change not yet applied, so `writ drift` lists them
    /// apart from the drift of objects with a digest.
    pub fn unrecorded_changes(&self) -> Vec<&Change> {
        self.changes
            .iter()
            .filter(|c| c.before.is_some() && c.kind.keeps_no_digest())
            .collect()
    }

    pub fn privilege_gain(&self) -> bool {
        self.permission_delta.iter().any(|d| !d.gains.is_empty())
    }
}

/// What the plan needs besides the two states.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    pub today: Date,
    /// Access keys older, or unused for longer, than this are called stale.
    pub max_key_age_days: Option<i64>,
}

/// A plan of these changes alone, for tests of what reads a plan.
#[cfg(test)]
pub(crate) fn plan_of_changes(changes: Vec<Change>) -> Plan {
    Plan {
        format_version: FORMAT_VERSION,
        project: "p".into(),
        summary: Summary::default(),
        changes,
        drift: Vec::new(),
        unmanaged: Vec::new(),
        conflicts: Vec::new(),
        permission_delta: Vec::new(),
        revoked: Vec::new(),
        notes: Vec::new(),
        identities: Vec::new(),
        unfinished: Vec::new(),
        undeclared_access: Vec::new(),
        origin: None,
    }
}
