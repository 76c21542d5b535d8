//! Grants that let one agent become another, drawn as chains into the
//! other agent (`may become`), each with the request through it that the
//! evaluator allows:
//!
//! - Kubernetes, in a namespace where the other agent's service account
//!   is: `create` on its `serviceaccounts/token`, `impersonate` on it,
//!   `create` on `pods` (a pod may name any service account of its
//!   namespace), `get` on `secrets` (a long-lived token of the account, if
//!   one exists). The other agent's credentials follow from that account:
//!   its cluster's, and its AWS role's and GCP account's where they trust it.
//! - GCP: the service account user, token creator or workload identity
//!   user role (or a basic role that holds them) on the other agent's
//!   service account.
//! - AWS: `iam:PassRole` on the other agent's role, when that role trusts
//!   an AWS service: a resource of that service made with the role acts
//!   as the other agent.
//! - GitHub: `contents:write` and `workflows:write` on a repository whose
//!   workflows run as the other agent: a pushed workflow runs as it (an
//!   environment's protection rules may stand in the way).
//!
//! Delegation already draws a parent's own right to mint its delegates'.

use super::{obtains, Edge, EdgeKind, Graph, Witness};
use crate::eval::{self, Request};
use crate::facts::ProviderKind;
use crate::model::{AgentId, Model, Placement, ProviderSettings, WorkloadKind};
use std::collections::HashMap;

/// What makes a pod, or changes which service account it runs as: a
/// pod's own `create`, and its controllers' `create`, `patch` and `update`.
const POD_MAKERS: [(&str, &str); 19] = [
    ("create", "pods"),
    ("create", "deployments.apps"),
    ("patch", "deployments.apps"),
    ("update", "deployments.apps"),
    ("create", "replicasets.apps"),
    ("patch", "replicasets.apps"),
    ("update", "replicasets.apps"),
    ("create", "statefulsets.apps"),
    ("patch", "statefulsets.apps"),
    ("update", "statefulsets.apps"),
    ("create", "daemonsets.apps"),
    ("patch", "daemonsets.apps"),
    ("update", "daemonsets.apps"),
    ("create", "jobs.batch"),
    ("patch", "jobs.batch"),
    ("update", "jobs.batch"),
    ("create", "cronjobs.batch"),
    ("patch", "cronjobs.batch"),
    ("update", "cronjobs.batch"),
];

/// One way in: the request the evaluator is asked, and what it gives.
struct Way {
    provider: usize,
    action: String,
    resource: String,
    placement: Placement,
    name: Option<String>,
    how: String,
    /// The providers whose credentials of the other agent it gives.
    gives: Vec<usize>,
}

impl Graph {
    /// Adds a `may become` edge from each agent to each other agent one
    /// of its grants lets it become (see the module's documentation).
    pub(crate) fn assumptions(&mut self, model: &Model, project: &str) {
        // Who could be allowed a way in: the agents with grants in its
        // provider, cluster-wide or in its namespace.
        let mut holders: HashMap<(usize, Option<&str>), Vec<AgentId>> = HashMap::new();
        for (id, agent) in model.agents.iter().enumerate() {
            if agent.retired || agent.frozen {
                continue;
            }
            for grant in &agent.grants {
                let key = match &grant.placement {
                    Placement::Namespace(namespace) => (grant.provider, Some(namespace.as_str())),
                    _ => (grant.provider, None),
                };
                let list = holders.entry(key).or_default();
                if list.last() != Some(&id) {
                    list.push(id);
                }
            }
        }
        let held = |provider: usize, namespace: Option<&str>| {
            holders.contains_key(&(provider, None))
                || namespace.is_some_and(|n| holders.contains_key(&(provider, Some(n))))
        };
        let mut ways_into: Vec<(AgentId, Vec<Way>)> = Vec::new();
        for (target, agent) in model.agents.iter().enumerate() {
            if agent.retired || agent.frozen {
                continue;
            }
            let mut ways = Vec::new();
            for workload in &agent.runs_on {
                match &workload.kind {
                    WorkloadKind::KubernetesServiceAccount {
                        namespace,
                        service_account,
                    } if held(workload.provider, Some(namespace)) => {
                        let gives = obtains(model, target, workload);
                        let place = Placement::Namespace(namespace.clone());
                        let named = Some(service_account.clone());
                        let mut each = vec![
                            (
                                "create",
                                "serviceaccounts/token",
                                named.clone(),
                                "may create a token of its service account",
                            ),
                            (
                                "impersonate",
                                "serviceaccounts",
                                named,
                                "may impersonate its service account",
                            ),
                            (
                                "get",
                                "secrets",
                                None,
                                "may read a long-lived token of its service account, if one exists",
                            ),
                        ];
                        // A pod, or a controller of pods, may name any
                        // service account of its namespace: made, or
                        // changed to name this one.
                        for (verb, resource) in POD_MAKERS {
                            each.push((
                                verb,
                                resource,
                                None,
                                "may run a pod as its service account",
                            ));
                        }
                        for (action, resource, name, how) in each {
                            ways.push(Way {
                                provider: workload.provider,
                                action: action.to_string(),
                                resource: resource.to_string(),
                                placement: place.clone(),
                                name,
                                how: format!("{how} (`{namespace}/{service_account}`)"),
                                gives: gives.clone(),
                            });
                        }
                    }
                    WorkloadKind::GithubActions { repository, .. }
                        if held(workload.provider, None) =>
                    {
                        let gives = obtains(model, target, workload);
                        for action in ["contents:write", "workflows:write"] {
                            ways.push(Way {
                                provider: workload.provider,
                                action: action.to_string(),
                                resource: repository.clone(),
                                placement: Placement::None,
                                name: None,
                                how: format!("may push a workflow to `{repository}`, whose workflows run as it (both `contents:write` and `workflows:write`)"),
                                gives: gives.clone(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            for (id, provider) in model.providers.iter().enumerate() {
                let present = agent.grants.iter().any(|g| g.provider == id)
                    || agent.runs_on.iter().any(|w| w.provider == id);
                if !present || !held(id, None) {
                    continue;
                }
                match &provider.settings {
                    ProviderSettings::Gcp { project: gcp } => {
                        let email = format!(
                            "{}@{gcp}.iam.gserviceaccount.com",
                            crate::lower::gcp::account_id(&agent.name)
                        );
                        for role in [
                            "roles/iam.serviceAccountTokenCreator",
                            "roles/iam.serviceAccountUser",
                            crate::lower::gcp::WORKLOAD_IDENTITY_USER,
                        ] {
                            ways.push(Way {
                                provider: id,
                                action: role.to_string(),
                                resource: format!("projects/{gcp}/serviceAccounts/{email}"),
                                placement: Placement::None,
                                name: None,
                                how: format!("may act as its GCP service account ({role})"),
                                gives: vec![id],
                            });
                        }
                    }
                    ProviderSettings::Aws { account, partition } => {
                        let services: Vec<&str> = agent
                            .runs_on
                            .iter()
                            .filter(|w| w.provider == id)
                            .filter_map(|w| match &w.kind {
                                WorkloadKind::AwsService { service } => Some(service.as_str()),
                                _ => None,
                            })
                            .collect();
                        if services.is_empty() {
                            continue;
                        }
                        let arn = format!(
                            "arn:{partition}:iam::{account}:role{}{}",
                            crate::ownership::aws::path(project),
                            agent.name
                        );
                        ways.push(Way {
                            provider: id,
                            action: "iam:PassRole".to_string(),
                            resource: arn,
                            placement: Placement::None,
                            name: None,
                            how: format!(
                                "may pass its role to {} (what is made with it acts as it)",
                                services.join(", ")
                            ),
                            gives: vec![id],
                        });
                    }
                    _ => {}
                }
            }
            if !ways.is_empty() {
                ways_into.push((target, ways));
            }
        }
        for (target, ways) in &ways_into {
            let parent = model.agents[*target].parent;
            let mut candidates: Vec<AgentId> = Vec::new();
            for way in ways {
                let namespace = match &way.placement {
                    Placement::Namespace(namespace) => Some(namespace.as_str()),
                    _ => None,
                };
                for key in [(way.provider, None), (way.provider, namespace)] {
                    candidates.extend(holders.get(&key).into_iter().flatten());
                }
            }
            candidates.sort_unstable();
            candidates.dedup();
            for from in candidates {
                // Itself; and its parent, whose minting is drawn already.
                if from == *target || parent == Some(from) {
                    continue;
                }
                let allowed: Vec<&Way> =
                    ways.iter().filter(|way| allows(model, from, way)).collect();
                // GitHub wants both permissions; every other way, one.
                let github = allowed
                    .iter()
                    .filter(|w| model.providers[w.provider].kind == ProviderKind::Github)
                    .count();
                let mut taken: Vec<&Way> = allowed
                    .iter()
                    .copied()
                    .filter(|w| model.providers[w.provider].kind != ProviderKind::Github)
                    .collect();
                if github >= 2 {
                    taken.extend(
                        allowed
                            .iter()
                            .copied()
                            .filter(|w| model.providers[w.provider].kind == ProviderKind::Github)
                            .take(1),
                    );
                }
                // One edge per provider the way is in: the first way found.
                let mut seen: Vec<usize> = Vec::new();
                for way in taken {
                    if way.gives.is_empty() || seen.contains(&way.provider) {
                        continue;
                    }
                    seen.push(way.provider);
                    let witness = Witness {
                        action: way.action.clone(),
                        resource: way.resource.clone(),
                        namespace: match &way.placement {
                            Placement::Namespace(n) => Some(n.clone()),
                            _ => None,
                        },
                        name: way.name.clone(),
                    };
                    self.edge(Edge {
                        from,
                        to: *target,
                        kind: EdgeKind::MayBecome,
                        how: way.how.clone(),
                        actions: vec![way.action.clone()],
                        providers: way
                            .gives
                            .iter()
                            .map(|&p| model.providers[p].address())
                            .collect(),
                        mints: vec![(way.provider, way.gives.clone())],
                        witness: Some(witness),
                        ..Edge::new()
                    });
                }
            }
        }
    }
}

/// Does the evaluator allow the agent the request of a way in?
fn allows(model: &Model, agent: AgentId, way: &Way) -> bool {
    let request = Request {
        provider: way.provider,
        action: &way.action,
        resource: &way.resource,
        placement: &way.placement,
        name: way.name.as_deref(),
        context: None,
    };
    eval::evaluate(model, agent, &request).is_allowed()
}
