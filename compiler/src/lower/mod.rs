//! Lowering: the checked model to the native objects each provider should
//! hold. Pure: it produces [`Resource`]s and diagnostics, and never looks at
//! live state (the plan compares the two). Each provider kind lowers in a
//! file of its own (`aws.rs`, `kubernetes.rs`); `lower` calls each in turn.
//!
//! A retired agent lowers to nothing, so its objects are deleted.

pub mod aws;
pub mod gcp;
pub mod github;
pub mod kubernetes;

use crate::diagnostic::Diagnostic;
use crate::model::Model;
use crate::resource::Resource;
use crate::values::Date;
use std::collections::{BTreeMap, BTreeSet};

/// An App an agent runs as, and what its grants give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppGrant {
    pub agent: String,
    /// The GitHub provider (`github.acme`).
    pub provider: String,
    pub slug: String,
    /// Permission → the highest level the agent's grants give.
    pub permissions: BTreeMap<String, String>,
    /// The repositories (patterns) the grants name.
    pub repositories: Vec<String>,
}

/// A workflow an agent runs as, and what it may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowGrant {
    pub agent: String,
    /// The GitHub provider (`github.acme`).
    pub provider: String,
    pub repository: String,
    /// The workflow file's path from the repository's root.
    pub workflow: String,
    /// The ref the `runs_on` pins, if any.
    pub git_ref: Option<String>,
    /// Permission → the highest level the agent's grants give on this
    /// repository (`contents` → `read`).
    pub permissions: BTreeMap<String, String>,
}

/// What the project should look like in every provider.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub project: String,
    pub resources: Vec<Resource>,
    /// Agents past their `expires`, with the date: their objects are deleted.
    pub retired: BTreeMap<String, Date>,
    /// Delegates that expire with an ancestor (see
    /// [`crate::model::Agent::expires_with`]), with that ancestor's name.
    pub expires_with: BTreeMap<String, String>,
    /// Every agent in the source, retired or not.
    pub agents: BTreeSet<String>,
    /// Agents the source declares `frozen = true`.
    pub frozen: BTreeSet<String>,
    /// Agents with an `expires` date still to come, with the date.
    pub expiring: BTreeMap<String, Date>,
    /// Each GitHub workflow an agent runs as, with the permissions the
    /// agent's GitHub grants give it there: what the workflow's own
    /// `permissions:` may ask for at most.
    pub github_workflows: Vec<WorkflowGrant>,
    /// Each GitHub App an agent runs as, with the permissions its grants
    /// give it: what the App's installation should hold, no more.
    pub github_apps: Vec<AppGrant>,
    /// The roles the source adopts (`adopts`), by address, with the path
    /// they keep: retired agents' too (their roles are then deleted).
    pub adopted: BTreeMap<String, String>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Binds what lowering wrote to what only the providers know, from the
/// observed state: the AWS trust of GitHub workflows to their repositories
/// ([`github::bind`]), workload identity principals to their GCP
/// project's number ([`gcp::bind`]). Returns what the plan must say.
pub fn bind(desired: &mut Desired, observed: &[Resource]) -> Vec<String> {
    let mut notes = github::bind(desired, observed);
    notes.extend(gcp::bind(desired, observed));
    notes
}

pub fn lower(model: &Model, project: &str) -> Desired {
    let mut desired = Desired {
        project: project.to_string(),
        ..Desired::default()
    };
    for agent in &model.agents {
        desired.agents.insert(agent.name.clone());
        if agent.frozen {
            desired.frozen.insert(agent.name.clone());
        }
        if let Some(ancestor) = agent.expires_with {
            desired
                .expires_with
                .insert(agent.name.clone(), model.agents[ancestor].name.clone());
        }
        match (agent.retired, agent.expires) {
            (true, Some(date)) => {
                desired.retired.insert(agent.name.clone(), date);
            }
            (false, Some(date)) => {
                desired.expiring.insert(agent.name.clone(), date);
            }
            _ => {}
        }
    }
    desired.github_workflows = github::workflow_grants(model);
    desired.github_apps = github::app_grants(model);
    desired.resources.extend(github::actions_settings(model));
    desired.resources.extend(github::environments(model));
    // One line per provider kind that lowers to objects.
    aws::lower_all(model, project, &mut desired);
    kubernetes::lower_all(model, project, &mut desired);
    gcp::lower_all(model, project, &mut desired);
    desired.resources.sort_by(|a, b| a.address.cmp(&b.address));
    desired
}
