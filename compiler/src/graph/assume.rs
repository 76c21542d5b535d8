//! Grants that let one agent become another, drawn as chains into the
//! other agent (`may become`), each with the request through it that the
//! evaluator allows:
//!
//! - Kubernetes, in the namespace of the other agent's service account:
//!   `create` on its `serviceaccounts/token`, `impersonate` on it; `get`,
//!   `list` or `watch` on `secrets` (a long-lived token of it, if one
//!   exists); running a pod as it (`create` on `pods`; `create`, `patch`
//!   or `update` on deployments, replica sets, replication controllers,
//!   stateful sets, daemon sets, jobs and cron jobs); getting into a pod
//!   that runs as it (`create` on `pods/exec` or `pods/attach`, `patch` or
//!   `update` on `pods/ephemeralcontainers`); and, cluster-wide, the
//!   kubelet's API (`get` or `create` on `nodes/proxy`). The other agent's
//!   credentials follow from that account: its cluster's, and its AWS
//!   role's and GCP account's where they trust it.
//! - GCP, on the other agent's service account: the token creator, service
//!   account user, workload identity user, key admin and service account
//!   admin roles, and the roles that set its IAM policy (security admin,
//!   project IAM admin), or a basic role that holds them.
//! - AWS: `iam:PassRole` on the other agent's role, when that role trusts
//!   an AWS service (a resource of that service made with the role acts as
//!   it); `iam:CreateAccessKey` or a login profile on an IAM user it runs as.
//! - GitHub: `contents:write` on a repository whose workflows run as the
//!   other agent (a pushed change runs in them; an environment's protection
//!   rules may stand in the way).
//!
//! A retired or frozen agent keeps its GitHub access (GitHub does not
//! revoke it by the source), so it keeps its GitHub ways in, and into it.
//! A parent's minting of its delegate's tokens is the delegation edge.

use super::{obtains, Edge, EdgeKind, Graph, Witness};
use crate::eval::{self, Decision, Request};
use crate::facts::ProviderKind;
use crate::model::{AgentId, Model, Placement, ProviderSettings, WorkloadKind};
use crate::source::Span;
use std::collections::HashMap;

/// What makes a pod run as a service account, or gets into one that does:
/// (verb, resource, cluster-wide).
const POD_WAYS: [(&str, &str, bool); 27] = [
    ("create", "pods", false),
    ("create", "deployments.apps", false),
    ("patch", "deployments.apps", false),
    ("update", "deployments.apps", false),
    ("create", "replicasets.apps", false),
    ("patch", "replicasets.apps", false),
    ("update", "replicasets.apps", false),
    ("create", "replicationcontrollers", false),
    ("patch", "replicationcontrollers", false),
    ("update", "replicationcontrollers", false),
    ("create", "statefulsets.apps", false),
    ("patch", "statefulsets.apps", false),
    ("update", "statefulsets.apps", false),
    ("create", "daemonsets.apps", false),
    ("patch", "daemonsets.apps", false),
    ("update", "daemonsets.apps", false),
    ("create", "jobs.batch", false),
    ("patch", "jobs.batch", false),
    ("update", "jobs.batch", false),
    ("create", "cronjobs.batch", false),
    ("patch", "cronjobs.batch", false),
    ("update", "cronjobs.batch", false),
    ("create", "pods/exec", false),
    ("create", "pods/attach", false),
    ("patch", "pods/ephemeralcontainers", false),
    ("get", "nodes/proxy", true),
    ("create", "nodes/proxy", true),
];

/// GCP roles on a service account that let one act as it.
const GCP_ROLES: [&str; 7] = [
    "roles/iam.serviceAccountTokenCreator",
    "roles/iam.serviceAccountUser",
    "roles/iam.workloadIdentityUser",
    "roles/iam.serviceAccountKeyAdmin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.securityAdmin",
    "roles/resourcemanager.projectIamAdmin",
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

/// Does the agent's state leave this provider's access in force?
fn holds(model: &Model, agent: AgentId, provider: usize) -> bool {
    let agent = &model.agents[agent];
    !(agent.retired || agent.frozen) || model.providers[provider].kind == ProviderKind::Github
}

impl Graph {
    /// Adds a `may become` edge from each agent to each other agent one
    /// of its grants lets it become (see the module's documentation).
    pub(crate) fn assumptions(&mut self, model: &Model, project: &str) {
        // Who could be allowed a way in: the agents with grants in its
        // provider (in force), cluster-wide or in its namespace.
        let mut holders: HashMap<(usize, Option<&str>), Vec<AgentId>> = HashMap::new();
        for (id, agent) in model.agents.iter().enumerate() {
            for grant in &agent.grants {
                if !holds(model, id, grant.provider) {
                    continue;
                }
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
        for (target, agent) in model.agents.iter().enumerate() {
            let mut ways = Vec::new();
            // What a way gives, in force.
            let gives = |mut providers: Vec<usize>| {
                providers.retain(|&p| holds(model, target, p));
                providers
            };
            for workload in &agent.runs_on {
                match &workload.kind {
                    WorkloadKind::KubernetesServiceAccount {
                        namespace,
                        service_account,
                    } if held(workload.provider, Some(namespace)) => {
                        let given = gives(obtains(model, target, workload));
                        let named = Some(service_account.clone());
                        let mut each = vec![
                            (
                                "create",
                                "serviceaccounts/token",
                                named.clone(),
                                false,
                                "may create a token of its service account",
                            ),
                            (
                                "impersonate",
                                "serviceaccounts",
                                named,
                                false,
                                "may impersonate its service account",
                            ),
                        ];
                        for verb in ["get", "list", "watch"] {
                            each.push((
                                verb,
                                "secrets",
                                None,
                                false,
                                "may read a long-lived token of its service account, if one exists",
                            ));
                        }
                        for (verb, resource, cluster) in POD_WAYS {
                            each.push((
                                verb,
                                resource,
                                None,
                                cluster,
                                "may run a pod as its service account, or get into one",
                            ));
                        }
                        for (action, resource, name, cluster, how) in each {
                            ways.push(Way {
                                provider: workload.provider,
                                action: action.to_string(),
                                resource: resource.to_string(),
                                placement: match cluster {
                                    true => Placement::Cluster,
                                    false => Placement::Namespace(namespace.clone()),
                                },
                                name,
                                how: format!("{how} (`{namespace}/{service_account}`)"),
                                gives: given.clone(),
                            });
                        }
                    }
                    WorkloadKind::GithubActions { repository, .. }
                        if held(workload.provider, None) =>
                    {
                        ways.push(Way {
                            provider: workload.provider,
                            action: "contents:write".to_string(),
                            resource: repository.clone(),
                            placement: Placement::None,
                            name: None,
                            how: format!("may push to `{repository}`, whose workflows run as it"),
                            gives: gives(obtains(model, target, workload)),
                        });
                    }
                    WorkloadKind::AwsUser { user } if held(workload.provider, None) => {
                        let ProviderSettings::Aws {
                            account, partition, ..
                        } = &model.providers[workload.provider].settings
                        else {
                            continue;
                        };
                        let arn = format!("arn:{partition}:iam::{account}:user/{user}");
                        for action in [
                            "iam:CreateAccessKey",
                            "iam:CreateLoginProfile",
                            "iam:UpdateLoginProfile",
                        ] {
                            ways.push(Way {
                                provider: workload.provider,
                                action: action.to_string(),
                                resource: arn.clone(),
                                placement: Placement::None,
                                name: None,
                                how: format!("may sign in as the IAM user `{user}` it runs as"),
                                gives: gives(obtains(model, target, workload)),
                            });
                        }
                    }
                    _ => {}
                }
            }
            for (id, provider) in model.providers.iter().enumerate() {
                let present = agent.grants.iter().any(|g| g.provider == id)
                    || agent.runs_on.iter().any(|w| w.provider == id);
                if !present || !held(id, None) || !holds(model, target, id) {
                    continue;
                }
                match &provider.settings {
                    ProviderSettings::Gcp { project: gcp } => {
                        let email = format!(
                            "{}@{gcp}.iam.gserviceaccount.com",
                            crate::lower::gcp::account_id(&agent.name)
                        );
                        for role in GCP_ROLES {
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
                    ProviderSettings::Aws {
                        account, partition, ..
                    } => {
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
                        ways.push(Way {
                            provider: id,
                            action: "iam:PassRole".to_string(),
                            resource: format!(
                                "arn:{partition}:iam::{account}:role{}{}",
                                crate::lower::aws::role_path(agent, id, project),
                                agent.name
                            ),
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
            ways.retain(|way| !way.gives.is_empty());
            if ways.is_empty() {
                continue;
            }
            let mut candidates: Vec<AgentId> = Vec::new();
            for way in &ways {
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
                if from == target {
                    continue;
                }
                // One edge per provider a way is in: the first way found.
                let mut seen: Vec<usize> = Vec::new();
                for way in &ways {
                    if seen.contains(&way.provider) {
                        continue;
                    }
                    let Some((witness, span)) = allows(model, from, target, way) else {
                        continue;
                    };
                    seen.push(way.provider);
                    self.edge(Edge {
                        from,
                        to: target,
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
                        span: Some(span),
                        ..Edge::new()
                    });
                }
            }
        }
    }
}

/// The request of a way in that the agent is allowed, if any, and where
/// the grant that allows it is written: as asked,
/// or (Kubernetes, asked of no object) for one object its grants name.
/// Allowed as the evaluator says, except a parent's minting of its own
/// delegate's tokens (the delegation edge), and a retired or frozen
/// agent's GitHub access, which GitHub keeps (its grants, read directly).
fn allows(model: &Model, agent: AgentId, target: AgentId, way: &Way) -> Option<(Witness, Span)> {
    if !holds(model, agent, way.provider) {
        return None;
    }
    let grants = || {
        model.agents[agent]
            .grants
            .iter()
            .filter(|g| g.provider == way.provider)
    };
    let mut names: Vec<Option<&str>> = vec![way.name.as_deref()];
    if way.name.is_none() {
        names.extend(grants().flat_map(|g| g.resource_names.iter().map(|n| Some(n.as_str()))));
    }
    let inactive = model.agents[agent].retired || model.agents[agent].frozen;
    for name in names {
        let request = Request {
            provider: way.provider,
            action: &way.action,
            resource: &way.resource,
            placement: &way.placement,
            name,
            context: None,
        };
        // Cheap first: some grant of the agent's must allow it.
        let Some(grant) = grants().find(|g| eval::grant_allows(model, g, &request)) else {
            continue;
        };
        let allowed = if inactive {
            true
        } else {
            match eval::evaluate(model, agent, &request) {
                Decision::Mints { delegate } => delegate != target,
                decision => decision.is_allowed(),
            }
        };
        if allowed {
            let witness = Witness {
                action: way.action.clone(),
                resource: way.resource.clone(),
                namespace: match &way.placement {
                    Placement::Namespace(n) => Some(n.clone()),
                    _ => None,
                },
                name: name.map(str::to_string),
            };
            return Some((witness, grant.span));
        }
    }
    None
}
