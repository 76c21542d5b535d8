//! What only the live state holds: Kubernetes RBAC that gives an agent's
//! service account more than the source grants. Every binding observed
//! (writ's, changed outside writ, or someone else's) that applies to a
//! service account an agent runs as, as RBAC applies it (a `ServiceAccount`
//! subject; the `system:serviceaccounts`, `system:serviceaccounts:NS` and
//! `system:authenticated` groups; the `system:serviceaccount:NS:NAME`
//! user), is read rule by rule; what the evaluator does not allow that
//! agent is drawn as an observed-only edge from the service account.

use super::{Edge, EdgeKind, Graph, NodeKind};
use crate::access;
use crate::eval::{self, Request};
use crate::model::{Model, Placement};
use crate::resource::{strings, Resource, ResourceKind};
use serde_json::Value;
use std::collections::HashMap;

/// Does a subject of a binding name the service account `namespace/name`?
/// A `ServiceAccount` subject of a RoleBinding without a namespace is in
/// the binding's (`binding_namespace`), as the API server reads it.
fn subject_applies(subject: &Value, binding_namespace: &str, namespace: &str, name: &str) -> bool {
    let field = |key: &str| subject.get(key).and_then(Value::as_str).unwrap_or_default();
    match field("kind") {
        "ServiceAccount" => {
            let own = match field("namespace") {
                "" => binding_namespace,
                written => written,
            };
            field("name") == name && own == namespace
        }
        "Group" => {
            matches!(
                field("name"),
                "system:serviceaccounts" | "system:authenticated"
            ) || field("name") == format!("system:serviceaccounts:{namespace}")
        }
        "User" => field("name") == format!("system:serviceaccount:{namespace}:{name}"),
        _ => false,
    }
}

/// An RBAC resource as writ writes it: `deployments.apps`, `pods/log`,
/// `deployments.apps/scale`.
fn writ_resource(resource: &str, group: &str) -> String {
    if group.is_empty() {
        return resource.to_string();
    }
    match resource.split_once('/') {
        Some((main, sub)) => format!("{main}.{group}/{sub}"),
        None => format!("{resource}.{group}"),
    }
}

/// Access the observed state holds and the source does not declare: what
/// a binding gives a service account an agent runs as, beyond what the
/// evaluator allows the agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Undeclared {
    /// The service account (`k8s:PROVIDER/NS/NAME`).
    pub workload: String,
    /// The resource (`kubernetes.prod secrets in cluster`).
    pub resource: String,
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The binding and role it comes from.
    pub how: String,
    /// The guardrails that deny some of it: writ's check of the source
    /// cannot see access granted outside it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<String>,
}

impl Graph {
    /// Each observed-only access, once per service account (not again for
    /// the agents that are it), in the order found.
    pub fn undeclared(&self, model: &Model) -> Vec<Undeclared> {
        self.edges
            .iter()
            .filter(|e| e.observed && self.nodes[e.from].kind == NodeKind::ServiceAccount)
            .map(|e| Undeclared {
                workload: self.nodes[e.from].id.clone(),
                resource: self.nodes[e.to].id.clone(),
                actions: e.actions.clone(),
                names: e.names.clone(),
                how: e.how.clone(),
                guardrails: self.guardrails_met(model, e),
            })
            .collect()
    }

    /// The guardrails with a deny that meets an edge's access (one of its
    /// actions on its resource, where it applies).
    fn guardrails_met(&self, model: &Model, edge: &super::Edge) -> Vec<String> {
        let node = &self.nodes[edge.to];
        let (Some(provider), Some((resource, placement))) = (node.provider_id, &node.resource)
        else {
            return Vec::new();
        };
        let kind = model.providers[provider].kind;
        model
            .guardrails
            .iter()
            .filter(|guardrail| {
                guardrail.denies.iter().any(|deny| {
                    deny.providers.selects(model, provider)
                        && access::placement_meets(&deny.placement, placement)
                        && deny
                            .resources
                            .iter()
                            .any(|r| access::resource_meets(kind, r, resource))
                        && deny.actions.iter().any(|denied| {
                            edge.actions
                                .iter()
                                .any(|action| access::action_meets(kind, action, denied))
                        })
                })
            })
            .map(|guardrail| guardrail.name.clone())
            .collect()
    }

    /// Adds, from the observed objects, the access the source does not
    /// declare (see the module's documentation); how many edges it added.
    pub fn observe(&mut self, model: &Model, observed: &[Resource]) -> usize {
        let mut added = 0;
        // Roles by (provider, kind, namespace, name); service accounts of
        // the graph by cluster.
        let mut roles: HashMap<(&str, bool, &str, &str), &Resource> = HashMap::new();
        for role in observed {
            let cluster = match role.kind {
                ResourceKind::KubernetesClusterRole => true,
                ResourceKind::KubernetesRole => false,
                _ => continue,
            };
            let namespace = if cluster {
                ""
            } else {
                role.string("namespace").unwrap_or_default()
            };
            let name = role.string("name").unwrap_or_default();
            roles.insert((role.provider.as_str(), cluster, namespace, name), role);
        }
        let mut accounts_of: HashMap<String, Vec<(usize, String, String)>> = HashMap::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if node.kind != NodeKind::ServiceAccount {
                continue;
            }
            let Some(rest) = node.id.strip_prefix("k8s:") else {
                continue;
            };
            let mut parts = rest.splitn(3, '/');
            if let (Some(p), Some(ns), Some(name)) = (parts.next(), parts.next(), parts.next()) {
                accounts_of.entry(p.to_string()).or_default().push((
                    index,
                    ns.to_string(),
                    name.to_string(),
                ));
            }
        }
        for binding in observed.iter().filter(|r| {
            matches!(
                r.kind,
                ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding
            )
        }) {
            let Some(provider) = model
                .providers
                .iter()
                .position(|p| p.address() == binding.provider)
            else {
                continue;
            };
            let provider_name = model.providers[provider].name.clone();
            let cluster_wide = binding.kind == ResourceKind::KubernetesClusterRoleBinding;
            let namespace = binding.string("namespace").unwrap_or_default();
            let role_ref = binding.attribute("role_ref");
            let role_kind = role_ref
                .and_then(|r| r.get("kind"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let role_name = role_ref
                .and_then(|r| r.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let role = match role_kind {
                "ClusterRole" => roles.get(&(binding.provider.as_str(), true, "", role_name)),
                "Role" => roles.get(&(binding.provider.as_str(), false, namespace, role_name)),
                // A kind RBAC does not have binds nothing.
                _ => continue,
            }
            .copied();
            let placement = if cluster_wide {
                Placement::Cluster
            } else {
                Placement::Namespace(namespace.to_string())
            };
            let subjects = binding
                .attribute("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let binding_name = binding.string("name").unwrap_or_default();
            let whose = if binding.agent.is_some() {
                "writ's, as observed"
            } else {
                "not in the source"
            };
            let how = match cluster_wide {
                true => format!("observed: ClusterRoleBinding {binding_name} → {role_kind} {role_name} ({whose})"),
                false => format!("observed: RoleBinding {namespace}/{binding_name} → {role_kind} {role_name} ({whose})"),
            };
            // Each workload node of a service account in this cluster that
            // a subject names.
            let accounts: Vec<(usize, String, String)> = accounts_of
                .get(&provider_name)
                .into_iter()
                .flatten()
                .filter(|(_, ns, name)| {
                    subjects
                        .iter()
                        .any(|s| subject_applies(s, namespace, ns, name))
                })
                .cloned()
                .collect();
            for (account, _, _) in accounts {
                let agents: Vec<usize> = self.outgoing[account]
                    .iter()
                    .map(|&e| &self.edges[e])
                    .filter(|e| e.kind == EdgeKind::AuthenticatesAs)
                    .map(|e| e.to)
                    .collect();
                // Drawn from the service account, and from each agent that
                // is it (open): a chain that obtains the agent's cluster
                // credentials holds them too.
                let mut from = vec![account];
                from.extend(
                    agents
                        .iter()
                        .copied()
                        .filter(|&a| self.nodes[a].state.is_none()),
                );
                let Some(role) = role else {
                    // A role writ did not see: what it allows is unknown,
                    // every resource of every group.
                    let to = self.resource_node(model, provider, "*.*", &placement);
                    for &source in &from {
                        self.edge(Edge {
                            from: source,
                            to,
                            kind: EdgeKind::MayDo,
                            how: format!(
                                "{how}; the role was not observed: what it allows is unknown"
                            ),
                            actions: vec!["*".to_string()],
                            observed: true,
                            ..Edge::new()
                        });
                    }
                    added += 1;
                    continue;
                };
                let rules = role
                    .attribute("rules")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for rule in &rules {
                    let verbs = strings(rule.get("verbs"));
                    let names = strings(rule.get("resource_names"));
                    let groups = strings(rule.get("api_groups"));
                    for group in &groups {
                        for resource in strings(rule.get("resources")) {
                            let resource = writ_resource(&resource, group);
                            // Asked where the binding gives it: in every
                            // namespace for a ClusterRoleBinding.
                            let place = placement.clone();
                            let extra: Vec<String> = verbs
                                .iter()
                                .filter(|verb| {
                                    let allowed = |name: Option<&str>| {
                                        agents.iter().any(|&agent| {
                                            eval::evaluate(
                                                model,
                                                agent,
                                                &Request {
                                                    provider,
                                                    action: verb,
                                                    resource: &resource,
                                                    placement: &place,
                                                    name,
                                                    context: None,
                                                },
                                            )
                                            .is_allowed()
                                        })
                                    };
                                    if names.is_empty() {
                                        !allowed(None)
                                    } else {
                                        names.iter().any(|n| !allowed(Some(n)))
                                    }
                                })
                                .cloned()
                                .collect();
                            if extra.is_empty() {
                                continue;
                            }
                            let to = self.resource_node(model, provider, &resource, &placement);
                            for &source in &from {
                                self.edge(Edge {
                                    from: source,
                                    to,
                                    kind: EdgeKind::MayDo,
                                    how: how.clone(),
                                    actions: extra.clone(),
                                    names: names.clone(),
                                    observed: true,
                                    ..Edge::new()
                                });
                            }
                            added += 1;
                        }
                    }
                }
            }
        }
        added
    }
}
