//! What only the live state holds: Kubernetes RBAC that gives an agent's
//! service account more than the source grants, and IAM policies that give
//! an agent's AWS role more. Every binding observed
//! (writ's, changed outside writ, or someone else's) that applies to a
//! service account an agent runs as, as RBAC applies it (a `ServiceAccount`
//! subject; the `system:serviceaccounts`, `system:serviceaccounts:NS` and
//! `system:authenticated` groups; the `system:serviceaccount:NS:NAME`
//! user), is read rule by rule; what no grant of that agent covers (see
//! [`declares`]) is drawn as an observed-only edge from the service
//! account.
//!
//! In AWS, each of the project's roles (by its path and tags, as the
//! planner owns them) is read policy by policy: an inline policy's `Allow`
//! statement that lowering does not write for the role, action by action
//! and resource by resource, where no grant of the agent covers the action
//! on that resource (as written: a pattern wider than the grants' is more
//! access); a `NotAction` or `NotResource` statement as
//! every action or resource; a managed policy attached to the role (writ
//! attaches none, and does not read others' contents) as unknown access,
//! every action on every resource. Conditions are not evaluated: a
//! statement with one is drawn, and says so.

use super::{Edge, EdgeKind, Graph, NodeKind};
use crate::access;
use crate::facts::ProviderKind;
use crate::lower::Desired;
use crate::model::{Model, Placement, ProviderSettings};
use crate::ownership;
use crate::resource::{strings, Resource, ResourceKind};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Does the source give the agent `action` on `resource` (both as the
/// provider's object writes them, patterns included) where `placement`
/// says, for the object `name` (or for every object)? One of its grants,
/// or of the grants it mints its delegates' credentials by, covers it;
/// a grant with conditions covers nothing unconditional, and a retired or
/// frozen agent is given nothing. Guardrails and ceilings are not asked:
/// this is what the source declares, not what it lets through.
fn declares(
    model: &Model,
    agent: usize,
    provider: usize,
    (action, resource): (&str, &str),
    placement: &Placement,
    name: Option<&str>,
) -> bool {
    let Some(held) = model.agents.get(agent) else {
        return false;
    };
    if held.retired || held.frozen {
        return false;
    }
    let kind = model.providers[provider].kind;
    let covers = |grant: &crate::model::Grant| {
        grant.provider == provider
            && grant.conditions.is_empty()
            && access::placement_covers(&grant.placement, placement)
            && (grant.resource_names.is_empty()
                || name.is_some_and(|n| grant.resource_names.iter().any(|g| g == n)))
            && grant
                .actions
                .iter()
                .any(|a| access::action_covers(kind, a, action))
            && grant
                .resources
                .iter()
                .any(|r| access::resource_covers(kind, r, resource))
    };
    held.grants.iter().any(covers)
        || model
            .minting_grants(agent)
            .iter()
            .any(|(_, grant)| covers(grant))
}

/// The API server's discovery and health paths, which the built-in roles
/// give every user (`system:discovery`, `system:public-info-viewer`,
/// `system:service-account-issuer-discovery`): no access to anything.
const DISCOVERY: &[&str] = &[
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/readyz",
    "/version",
    "/version/",
    "/openapi",
    "/openapi/*",
    "/.well-known/openid-configuration",
    "/.well-known/openid-configuration/",
    "/openid/v1/jwks",
    "/openid/v1/jwks/",
];

/// The APIs by which an identity asks what it may do itself, which the
/// built-in `system:basic-user` role gives every authenticated user.
const SELF_REVIEWS: &[(&str, &str)] = &[
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
];

/// Could the observed state hold access the source does not declare, as
/// [`Graph::observe`] finds it? True of every object that can give it and
/// is not as lowering makes it: a binding with a subject that can be an
/// agent's service account, a role of writ's changed, a policy on one of
/// the project's AWS roles, a policy attached to one, writ's part of a GCP
/// policy, a deploy key that may push, a role outside writ that trusts an
/// IAM user or a web identity, an Actions secret. A plan made from a
/// snapshot no longer holds the model when it reads the snapshot; it
/// checks the source again only when this says so.
pub fn may_hold_undeclared(desired: &Desired, observed: &[Resource]) -> bool {
    let wanted: HashMap<&str, &Resource> = desired
        .resources
        .iter()
        .map(|r| (r.address.as_str(), r))
        .collect();
    let same = |resource: &Resource, keys: &[&str]| {
        wanted.get(resource.address.as_str()).is_some_and(|d| {
            keys.iter()
                .all(|k| d.attributes.get(*k) == resource.attributes.get(*k))
        })
    };
    // The service accounts agents run as: those lowering makes, and the
    // project's still in the cluster (an agent retired, not yet applied),
    // by (provider, namespace, name).
    let label = |resource: &Resource, name: &str| -> Option<String> {
        resource
            .attributes
            .get("labels")
            .and_then(|labels| labels.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let accounts: HashSet<(&str, &str, &str)> = desired
        .resources
        .iter()
        .chain(observed.iter().filter(|r| {
            label(r, ownership::kubernetes::PROJECT_LABEL).as_deref()
                == Some(desired.project.as_str())
        }))
        .filter(|r| r.kind == ResourceKind::KubernetesServiceAccount)
        .map(|r| {
            (
                r.provider.as_str(),
                r.string("namespace").unwrap_or_default(),
                r.string("name").unwrap_or_default(),
            )
        })
        .collect();
    let namespaces: HashSet<(&str, &str)> = accounts.iter().map(|(p, ns, _)| (*p, *ns)).collect();
    let clusters: HashSet<&str> = accounts.iter().map(|(p, _, _)| *p).collect();
    // The roles and cluster roles observed, by (provider, namespace, name)
    // (a cluster role's namespace empty).
    let observed_roles: HashSet<(&str, &str, &str)> = observed
        .iter()
        .filter_map(|r| match r.kind {
            ResourceKind::KubernetesRole => Some((
                r.provider.as_str(),
                r.string("namespace").unwrap_or_default(),
                r.string("name").unwrap_or_default(),
            )),
            ResourceKind::KubernetesClusterRole => Some((
                r.provider.as_str(),
                "",
                r.string("name").unwrap_or_default(),
            )),
            _ => None,
        })
        .collect();
    let roles: HashSet<(&str, &str)> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::AwsRole)
        .filter(|role| project_role(role, desired))
        .map(|role| {
            (
                role.provider.as_str(),
                role.string("name").unwrap_or_default(),
            )
        })
        .collect();
    observed.iter().any(|resource| match resource.kind {
        ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding => {
            let provider = resource.provider.as_str();
            let namespace = resource.string("namespace").unwrap_or_default();
            let subjects = resource.attribute("subjects").and_then(Value::as_array);
            // A subject that is, or holds, an agent's service account, as
            // `subject_applies` reads it.
            let agent_like = subjects.into_iter().flatten().any(|subject| {
                let field =
                    |key: &str| subject.get(key).and_then(Value::as_str).unwrap_or_default();
                let name = field("name");
                match field("kind") {
                    "ServiceAccount" => {
                        let own = match field("namespace") {
                            "" => namespace,
                            written => written,
                        };
                        accounts.contains(&(provider, own, name))
                    }
                    "Group"
                        if name == "system:serviceaccounts" || name == "system:authenticated" =>
                    {
                        clusters.contains(provider)
                    }
                    "Group" => name
                        .strip_prefix("system:serviceaccounts:")
                        .is_some_and(|ns| namespaces.contains(&(provider, ns))),
                    "User" => name
                        .strip_prefix("system:serviceaccount:")
                        .and_then(|rest| rest.split_once(':'))
                        .is_some_and(|(ns, sa)| accounts.contains(&(provider, ns, sa))),
                    _ => false,
                }
            });
            let (role_kind, role_name) = role_ref(resource);
            let role_namespace = if role_kind == "ClusterRole" {
                ""
            } else {
                namespace
            };
            // A role not there is drawn as unknown access.
            let role_missing = !observed_roles.contains(&(provider, role_namespace, role_name));
            agent_like && (role_missing || !same(resource, &["subjects", "role_ref"]))
        }
        ResourceKind::KubernetesRole | ResourceKind::KubernetesClusterRole => {
            wanted.contains_key(resource.address.as_str()) && !same(resource, &["rules"])
        }
        ResourceKind::AwsRolePolicy => {
            let role = (
                resource.provider.as_str(),
                resource.string("role").unwrap_or_default(),
            );
            roles.contains(&role)
                && !wanted.get(resource.address.as_str()).is_some_and(|d| {
                    d.attributes.get("policy")
                        == Some(&crate::policy::canonical(
                            resource.attributes.get("policy").unwrap_or(&Value::Null),
                        ))
                })
        }
        // Writ's part of a GCP policy not as lowering makes it.
        ResourceKind::GcpIamPolicy => !same(resource, &["bindings"]),
        // One that may push, to a repository an agent runs in (the only
        // ones read).
        ResourceKind::GithubDeployKey => {
            resource.attribute("read_only").and_then(Value::as_bool) != Some(true)
        }
        // A role of someone else's whose trust may name one of the
        // project's roles, or anyone in its account.
        ResourceKind::AwsRole
            if !roles.contains(&(
                resource.provider.as_str(),
                resource.string("name").unwrap_or_default(),
            )) =>
        {
            let trust = resource
                .attribute("assume_role_policy")
                .map(|t| match t {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            trust.contains(&format!(":role{}", ownership::aws::path(&desired.project)))
                // A role the source adopts, where it is.
                || desired.adopted.iter().any(|(address, path)| {
                    let name = address.rsplit('/').next().unwrap_or_default();
                    trust.contains(&format!(":role{path}{name}\""))
                })
                || trust.contains(":root")
                || trust.contains("\"*\"")
                // An IAM user (an agent's, or one whose key a secret may
                // hold), or a web identity (GitHub Actions, a cluster).
                || trust.contains(":user/")
                || trust.contains(":oidc-provider/")
        }
        // A secret that may hold an IAM user's key; a user's own access.
        ResourceKind::GithubActionsSecret => true,
        ResourceKind::AwsUser => {
            resource.attribute("policies").is_some()
                || resource.attribute("attached_policies").is_some()
                || resource.attribute("groups").is_some()
        }
        ResourceKind::AwsRole => {
            roles.contains(&(
                resource.provider.as_str(),
                resource.string("name").unwrap_or_default(),
            )) && (!strings(resource.attribute("attached_policies")).is_empty()
                // Its trust not as lowering writes it.
                || !wanted.get(resource.address.as_str()).is_some_and(|d| {
                    d.attributes.get("assume_role_policy").map(crate::policy::canonical)
                        == resource
                            .attributes
                            .get("assume_role_policy")
                            .map(crate::policy::canonical)
                }))
        }
        _ => false,
    })
}

/// Does a subject of a binding name the service account `namespace/name`?
/// A `ServiceAccount` subject of a RoleBinding without a namespace is in
/// the binding's (`binding_namespace`), as the API server reads it.
pub(crate) fn subject_applies(
    subject: &Value,
    binding_namespace: &str,
    namespace: &str,
    name: &str,
) -> bool {
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
pub(crate) fn writ_resource(resource: &str, group: &str) -> String {
    if group.is_empty() {
        return resource.to_string();
    }
    match resource.split_once('/') {
        Some((main, sub)) => format!("{main}.{group}/{sub}"),
        None => format!("{resource}.{group}"),
    }
}

/// Access the observed state holds and the source does not declare: what
/// a binding gives a service account an agent runs as, a policy an agent's
/// role, or a binding an agent's GCP service account, beyond what the
/// agent's grants cover; or an identity reached (a deploy key that can act
/// as an agent, a role outside writ an agent can become).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Undeclared {
    /// The service account (`k8s:PROVIDER/NS/NAME`), the agent whose AWS
    /// role holds it (`agent:NAME`), or a deploy key
    /// (`github-deploy-key:OWNER/REPO/ID`).
    pub workload: String,
    /// The resource (`kubernetes.prod secrets in cluster`), or the agent a
    /// deploy key can act as (`agent:NAME`).
    pub resource: String,
    /// The actions on the resource; none when an agent is reached.
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The binding and role it comes from.
    pub how: String,
    /// The guardrails that deny some of it: writ's check of the source
    /// cannot see access granted outside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<String>,
}

impl Graph {
    /// Each observed-only access, once: in Kubernetes per service account
    /// (not again for the agents that are it), in AWS per agent; in the
    /// order found.
    pub fn undeclared(&self, model: &Model) -> Vec<Undeclared> {
        let kubernetes = |node: usize| {
            self.nodes[node]
                .provider_id
                .is_some_and(|p| model.providers[p].kind == ProviderKind::Kubernetes)
        };
        self.edges
            .iter()
            .filter(|e| {
                e.observed
                    && match self.nodes[e.from].kind {
                        NodeKind::ServiceAccount => true,
                        NodeKind::Agent => {
                            !kubernetes(e.to) || self.nodes[e.to].kind == NodeKind::AwsRole
                        }
                        NodeKind::DeployKey => true,
                        // A repository whose secret may hold an IAM user's
                        // key, or that a role outside writ trusts; a user
                        // such a role trusts.
                        NodeKind::Repository
                        | NodeKind::AwsUser
                        | NodeKind::AwsService
                        | NodeKind::WebIdentity => true,
                        // An identity outside writ that may become an agent.
                        NodeKind::AwsRole => self.nodes[e.to].kind == NodeKind::Agent,
                        _ => false,
                    }
            })
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
    /// `desired` is what lowering makes of the model: what writ itself
    /// writes is not drawn twice.
    pub fn observe(&mut self, model: &Model, desired: &Desired, observed: &[Resource]) -> usize {
        self.observe_rbac(model, observed)
            + self.observe_iam(model, desired, observed)
            + self.observe_gcp(model, desired, observed)
            + self.observe_keys(model, observed)
            + self.observe_widened_trust(model, desired, observed)
            + self.observe_users(model, observed)
            + self.observe_trust(model, desired, observed)
            + self.observe_deploy_keys(observed)
    }

    /// The workloads a web-identity trust admits, with the subject that
    /// names each: GitHub Actions jobs of a repository (by the `sub` its
    /// conditions name; every repository anywhere when none does), or a
    /// cluster's service account (the issuer a Kubernetes provider's
    /// `oidc_issuer`). Wildcards in a subject are read as broadly as they
    /// match: a repository pattern, or every service account.
    fn web_identities(
        &mut self,
        model: &Model,
        principal: &str,
        condition: Option<&Value>,
    ) -> Vec<(usize, String)> {
        let unknown = |this: &mut Self, why: &str| {
            let node = this.node(
                format!("web-identity:{principal}"),
                NodeKind::WebIdentity,
                None,
            );
            vec![(node, why.to_string())]
        };
        let Some(host) = principal.split_once(":oidc-provider/").map(|(_, h)| h) else {
            // SAML, Cognito, a provider writ cannot read.
            return unknown(self, "(any: writ does not read this provider's subjects)");
        };
        let key = format!("{host}:sub");
        // The subjects the conditions admit, read only from operators that
        // admit what they name; a negated one (`StringNotLike`) admits
        // everything else, so every subject.
        let mut subjects: Vec<String> = Vec::new();
        let mut every = false;
        for (operator, keys) in condition
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|operators| operators.iter())
        {
            let Some(values) = keys.as_object().and_then(|k| k.get(&key)) else {
                continue;
            };
            let base = operator
                .trim_start_matches("ForAnyValue:")
                .trim_start_matches("ForAllValues:")
                .trim_end_matches("IfExists");
            match base {
                "StringEquals" | "StringLike" | "StringEqualsIgnoreCase" => {
                    subjects.extend(one_or_many(Some(values)))
                }
                _ => every = true,
            }
        }
        if subjects.is_empty() {
            every = true;
        }
        let mut found = Vec::new();
        if host == crate::lower::aws::GITHUB_OIDC {
            if every {
                let node = self.node("github:*".to_string(), NodeKind::Repository, None);
                found.push((
                    node,
                    "(any: no `sub` condition admits only some)".to_string(),
                ));
            }
            for subject in subjects {
                // `repo:ORG/REPO:…`, or with ids (`repo:org@1/repo@2:…`).
                let Some(rest) = subject.strip_prefix("repo:") else {
                    let node = self.node("github:*".to_string(), NodeKind::Repository, None);
                    found.push((node, subject));
                    continue;
                };
                let repository: String = rest
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .split('/')
                    .map(|part| part.split('@').next().unwrap_or(part))
                    .collect::<Vec<_>>()
                    .join("/");
                let node = self.node(
                    format!("github:{}", repository.to_ascii_lowercase()),
                    NodeKind::Repository,
                    None,
                );
                found.push((node, subject));
            }
            return found;
        }
        let Some(cluster) = model.providers.iter().find(|p| {
            matches!(&p.settings, ProviderSettings::Kubernetes { oidc_issuer: Some(issuer), .. }
                if issuer.trim_start_matches("https://").trim_end_matches('/') == host)
        }) else {
            return unknown(
                self,
                "(an issuer that is no declared cluster's: its subjects are not read)",
            );
        };
        let mut accounts: Vec<(String, String)> = Vec::new();
        if every {
            accounts.push((
                format!("k8s:{}/*/*", cluster.name),
                "(any service account of the cluster)".to_string(),
            ));
        }
        for subject in subjects {
            let account = subject
                .strip_prefix("system:serviceaccount:")
                .and_then(|rest| rest.split_once(':'))
                .filter(|(ns, name)| {
                    !crate::pattern::has_wildcard(ns) && !crate::pattern::has_wildcard(name)
                });
            let id = match account {
                Some((namespace, name)) => format!("k8s:{}/{namespace}/{name}", cluster.name),
                None => format!("k8s:{}/*/*", cluster.name),
            };
            accounts.push((id, subject));
        }
        for (id, subject) in accounts {
            let node = self.node(id, NodeKind::ServiceAccount, None);
            self.nodes[node].provider = Some(cluster.address());
            found.push((node, subject));
        }
        found
    }

    /// The trust of the project's roles beyond what lowering writes (a
    /// statement added by hand, or a source change not applied yet): each
    /// principal an `Allow` statement lowering does not write names may
    /// act as the role's agent. An AWS service, an IAM user, a web
    /// identity (GitHub Actions, a cluster's service account) is drawn as a
    /// workload that authenticates as the agent; another of the project's
    /// roles as its agent becoming this one; any other role, an account or
    /// `*` as an identity outside writ (`aws-role:`, `aws-account:`) that
    /// may become it. Conditions are not evaluated.
    fn observe_widened_trust(
        &mut self,
        model: &Model,
        desired: &Desired,
        observed: &[Resource],
    ) -> usize {
        let lowered: HashMap<&str, &Resource> = desired
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::AwsRole)
            .map(|r| (r.address.as_str(), r))
            .collect();
        // The project's roles by ARN: their agent.
        let mut agents: HashMap<String, usize> = HashMap::new();
        for role in observed.iter().filter(|r| r.kind == ResourceKind::AwsRole) {
            if let (Some(id), Some(arn)) = (role_agent(model, role, desired), role_arn(model, role))
            {
                agents.insert(arn, id);
            }
        }
        let mut added = 0;
        for role in observed.iter().filter(|r| r.kind == ResourceKind::AwsRole) {
            let Some(agent) = role_agent(model, role, desired) else {
                continue;
            };
            let Some(provider) = aws_provider_at(model, &role.provider) else {
                continue;
            };
            let name = role.string("name").unwrap_or_default();
            let statements = |resource: Option<&Resource>| -> Vec<Value> {
                let trust = crate::policy::canonical(
                    resource
                        .and_then(|r| r.attributes.get("assume_role_policy"))
                        .unwrap_or(&Value::Null),
                );
                trust
                    .get("Statement")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let written = statements(lowered.get(role.address.as_str()).copied());
            let address = model.providers[provider].address();
            for statement in statements(Some(role)) {
                if written.contains(&statement)
                    || statement.get("Effect").and_then(Value::as_str) != Some("Allow")
                {
                    continue;
                }
                let how = format!(
                    "observed: a statement of role {name}'s trust that lowering does not write (added outside writ, or a change not applied yet){}",
                    if statement.get("Condition").is_some() {
                        "; with conditions writ did not evaluate"
                    } else {
                        ""
                    }
                );
                let principal = statement.get("Principal");
                let mut workloads: Vec<usize> = Vec::new();
                let mut identities: Vec<usize> = Vec::new();
                for service in one_or_many(principal.and_then(|p| p.get("Service"))) {
                    workloads.push(self.node(
                        format!("aws-service:{service}"),
                        NodeKind::AwsService,
                        None,
                    ));
                }
                for federated in one_or_many(principal.and_then(|p| p.get("Federated"))) {
                    workloads.extend(
                        self.web_identities(model, &federated, statement.get("Condition"))
                            .into_iter()
                            .map(|(node, _)| node),
                    );
                }
                let mut aws = one_or_many(principal.and_then(|p| p.get("AWS")));
                if principal.and_then(Value::as_str) == Some("*") {
                    aws.push("*".to_string());
                }
                for arn in aws {
                    if let Some(&other) = agents.get(arn.as_str()) {
                        if other != agent {
                            identities.push(other);
                        }
                        continue;
                    }
                    if let Some(user) = arn.split_once(":user/").map(|(_, u)| u) {
                        let node = self.node(
                            format!("aws-user:{}/{user}", model.providers[provider].name),
                            NodeKind::AwsUser,
                            None,
                        );
                        self.nodes[node].provider = Some(address.clone());
                        self.nodes[node].provider_id = Some(provider);
                        workloads.push(node);
                        continue;
                    }
                    // Another role by its name; an account's root as any
                    // of that account's roles and users whose own
                    // policies allow it (`…/*`); `*` as anyone anywhere.
                    let account = arn.split(':').nth(4).unwrap_or_default();
                    let id = match arn.split_once(":role/") {
                        Some((_, rest)) => format!(
                            "aws-role:{address}/{}",
                            rest.rsplit('/').next().unwrap_or(rest)
                        ),
                        None if arn == "*" => "aws-role:*".to_string(),
                        None => format!("aws-role:{account}/*"),
                    };
                    let node = self.node(id, NodeKind::AwsRole, None);
                    self.nodes[node].provider = Some(address.clone());
                    self.nodes[node].provider_id = Some(provider);
                    identities.push(node);
                }
                for from in workloads {
                    self.edge(Edge {
                        from,
                        to: agent,
                        kind: EdgeKind::AuthenticatesAs,
                        how: how.clone(),
                        providers: vec![address.clone()],
                        obtains: vec![provider],
                        observed: true,
                        ..Edge::new()
                    });
                    added += 1;
                }
                for from in identities {
                    self.edge(Edge {
                        from,
                        to: agent,
                        kind: EdgeKind::MayBecome,
                        how: how.clone(),
                        mints: vec![(provider, vec![provider])],
                        providers: vec![address.clone()],
                        observed: true,
                        ..Edge::new()
                    });
                    added += 1;
                }
            }
        }
        added
    }

    /// What a policy document's `Allow` statements let `node` do, drawn
    /// from it (observed): `NotAction`/`NotResource` as everything;
    /// conditions noted, not evaluated.
    fn draw_statements(
        &mut self,
        model: &Model,
        provider: usize,
        node: usize,
        document: &Value,
        how: &str,
    ) -> usize {
        let mut added = 0;
        let document = crate::policy::canonical(document);
        for statement in document
            .get("Statement")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            let wide =
                statement.get("NotAction").is_some() || statement.get("NotResource").is_some();
            let (actions, resources) = if wide {
                (vec!["*".to_string()], vec!["*".to_string()])
            } else {
                (
                    one_or_many(statement.get("Action")),
                    one_or_many(statement.get("Resource")),
                )
            };
            let mut how = how.to_string();
            if wide {
                how.push_str("; `NotAction` or `NotResource`: drawn as everything");
            }
            if statement.get("Condition").is_some() {
                how.push_str("; with conditions writ did not evaluate");
            }
            for resource in &resources {
                let to = self.resource_node(model, provider, resource, &Placement::None);
                self.edge(Edge {
                    from: node,
                    to,
                    kind: EdgeKind::MayDo,
                    how: how.clone(),
                    actions: actions.clone(),
                    observed: true,
                    ..Edge::new()
                });
                added += 1;
            }
        }
        added
    }

    /// What the IAM users of the graph (agents run as them, a secret may
    /// hold their keys, a writ role's trust names them) may do by their own
    /// policies, beside the roles they assume: their inline policies
    /// statement by statement, attached managed policies and groups as
    /// unknown access (not read).
    fn observe_users(&mut self, model: &Model, observed: &[Resource]) -> usize {
        let mut added = 0;
        for user in observed.iter().filter(|r| r.kind == ResourceKind::AwsUser) {
            let path = user.string("path").unwrap_or("/").trim_start_matches('/');
            let name = user.string("name").unwrap_or_default();
            let Some(provider) = aws_provider_at(model, &user.provider) else {
                continue;
            };
            // Named as `runs_on aws.P user` nodes are: by the provider's name.
            let id = format!("aws-user:{}/{path}{name}", model.providers[provider].name);
            let Some(node) = self.find(&id) else {
                continue;
            };
            self.nodes[node].provider = Some(user.provider.clone());
            self.nodes[node].provider_id = Some(provider);
            if let Some(policies) = user.attribute("policies").and_then(Value::as_object) {
                for (policy_name, document) in policies {
                    added += self.draw_statements(
                        model,
                        provider,
                        node,
                        document,
                        &format!("observed: inline policy {policy_name} of IAM user {name}"),
                    );
                }
            }
            for attached in strings(user.attribute("attached_policies")) {
                added += self.attached(
                    model,
                    provider,
                    node,
                    observed,
                    &attached,
                    &format!("IAM user {name}"),
                );
            }
            for group in strings(user.attribute("groups")) {
                self.unknown_access(model, provider, node, format!("observed: IAM user {name} is in group {group}, whose policies were not read"));
                added += 1;
            }
        }
        added
    }

    /// IAM users whose access keys an Actions secret may hold (matched as
    /// plans match them: by the user's name in the secret's, or a key made
    /// the day the secret was set; writ never reads a secret): the
    /// repository's workflows may sign in as the user, outside any trust
    /// writ makes. Drawn from the repository to the user; the user's node
    /// leads on to the agents that run as it and to the roles outside writ
    /// whose trust names it.
    fn observe_keys(&mut self, model: &Model, observed: &[Resource]) -> usize {
        let mut added = 0;
        for hold in crate::plan::github::key_holds(observed) {
            let Some(provider) = aws_provider_at(model, hold.provider) else {
                continue;
            };
            let repository = hold.secret.string("repository").unwrap_or_default();
            if repository.is_empty() {
                continue;
            }
            // As `runs_on aws.P user` names it: its path (without the
            // leading `/`) and its name.
            let path = observed
                .iter()
                .find(|r| {
                    r.kind == ResourceKind::AwsUser
                        && r.provider == hold.provider
                        && r.string("name") == Some(hold.user)
                })
                .and_then(|u| u.string("path"))
                .unwrap_or("/");
            let user = format!("{}{}", path.trim_start_matches('/'), hold.user);
            let user_node = self.node(
                format!("aws-user:{}/{user}", model.providers[provider].name),
                NodeKind::AwsUser,
                None,
            );
            self.nodes[user_node].provider = Some(hold.provider.to_string());
            self.nodes[user_node].provider_id = Some(provider);
            let repo_node = self.node(
                format!("github:{}", repository.to_ascii_lowercase()),
                NodeKind::Repository,
                None,
            );
            // Once per repository and user.
            if self.outgoing[repo_node]
                .iter()
                .any(|&e| self.edges[e].to == user_node)
            {
                continue;
            }
            let secret = hold.secret.string("name").unwrap_or_default();
            let what = match hold.key {
                Some(key) => format!(
                    "key `{}` of IAM user `{}` (made the day the secret was set)",
                    key.string("id").unwrap_or("?"),
                    hold.user
                ),
                None => format!(
                    "a key of IAM user `{}` (its name is in the secret's)",
                    hold.user
                ),
            };
            self.edge(Edge {
                from: repo_node,
                to: user_node,
                kind: EdgeKind::AuthenticatesAs,
                how: format!("observed: Actions secret `{secret}` of `{repository}` may hold {what}: its workflows may sign in as the user; writ matches by name and date, it never reads a secret"),
                providers: vec![hold.provider.to_string()],
                obtains: vec![provider],
                observed: true,
                ..Edge::new()
            });
            added += 1;
        }
        added
    }

    /// Roles writ does not own whose trust lets an agent's role assume
    /// them: by the role's ARN (enough within an account: the trust alone
    /// allows it), or by the account's root or `*` (then the agent's own
    /// grants must allow `sts:AssumeRole` on the role); IAM users of the
    /// graph it names (or, by the root or `*`, whose own policies may
    /// allow it); and workloads it admits by web identity (GitHub Actions,
    /// a cluster's service accounts). Each is drawn as an identity they may
    /// become in that provider, with what the role's inline policies allow
    /// (its attached policies as unknown access). Conditions other than a
    /// web identity's subject are not evaluated; SAML is not read.
    fn observe_trust(&mut self, model: &Model, desired: &Desired, observed: &[Resource]) -> usize {
        let roles: Vec<&Resource> = observed
            .iter()
            .filter(|r| r.kind == ResourceKind::AwsRole)
            .collect();
        // The project's roles by ARN: their agent.
        let mut agents: HashMap<String, usize> = HashMap::new();
        for role in &roles {
            if let (Some(id), Some(arn)) = (role_agent(model, role, desired), role_arn(model, role))
            {
                agents.insert(arn, id);
            }
        }
        // The IAM users of the graph (agents run as them, or a secret may
        // hold their keys) by ARN: their nodes.
        let mut users: HashMap<String, usize> = HashMap::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if node.kind != NodeKind::AwsUser {
                continue;
            }
            // `aws-user:PROVIDER_NAME/PATH/NAME`.
            let Some((name, user)) = node
                .id
                .strip_prefix("aws-user:")
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            let Some(provider) = model
                .providers
                .iter()
                .find(|p| p.kind == ProviderKind::Aws && p.name == name)
            else {
                continue;
            };
            if let ProviderSettings::Aws {
                account, partition, ..
            } = &provider.settings
            {
                users.insert(format!("arn:{partition}:iam::{account}:user/{user}"), index);
            }
        }
        let mut added = 0;
        for role in &roles {
            if project_role(role, desired) {
                continue;
            }
            let Some(provider) = aws_provider_at(model, &role.provider) else {
                continue;
            };
            let name = role.string("name").unwrap_or_default();
            let arn = role_arn(model, role).unwrap_or_default();
            let arn = arn.as_str();
            // The account's root, as the role's own ARN names the account.
            let parts: Vec<&str> = arn.split(':').collect();
            let root =
                (parts.len() > 4).then(|| format!("arn:{}:iam::{}:root", parts[1], parts[4]));
            let trust = crate::policy::canonical(
                role.attributes
                    .get("assume_role_policy")
                    .unwrap_or(&Value::Null),
            );
            let mut becomes: Vec<(usize, String)> = Vec::new();
            // Workloads its trust admits by web identity: (node, how).
            let mut admits: Vec<(usize, String)> = Vec::new();
            for statement in trust
                .get("Statement")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let web = one_or_many(statement.get("Action")).iter().any(|a| {
                    access::action_matches(ProviderKind::Aws, a, "sts:AssumeRoleWithWebIdentity")
                });
                if web && statement.get("Effect").and_then(Value::as_str) == Some("Allow") {
                    let federated =
                        one_or_many(statement.get("Principal").and_then(|p| p.get("Federated")));
                    for principal in federated {
                        for (workload, subject) in
                            self.web_identities(model, &principal, statement.get("Condition"))
                        {
                            admits.push((workload, format!("observed: the trust of role {name} (not writ's) admits web identities of `{principal}` with subject `{subject}`; other conditions were not evaluated")));
                        }
                    }
                }
                let assumes = one_or_many(statement.get("Action"))
                    .iter()
                    .any(|a| access::action_matches(ProviderKind::Aws, a, "sts:AssumeRole"));
                if statement.get("Effect").and_then(Value::as_str) != Some("Allow") || !assumes {
                    continue;
                }
                let principals = match statement.get("Principal") {
                    Some(Value::String(all)) if all == "*" => vec!["*".to_string()],
                    Some(principal) => one_or_many(principal.get("AWS")),
                    None => Vec::new(),
                };
                let conditions = if statement.get("Condition").is_some() {
                    "; with conditions writ did not evaluate"
                } else {
                    ""
                };
                for principal in &principals {
                    if let Some(&agent) = agents.get(principal.as_str()) {
                        becomes.push((agent, format!("observed: the trust of role {name} (not writ's) names the agent's role{conditions}")));
                    } else if let Some(&user) = users.get(principal.as_str()) {
                        becomes.push((user, format!("observed: the trust of role {name} (not writ's) names the IAM user{conditions}")));
                    } else if principal == "*" || root.as_deref() == Some(principal.as_str()) {
                        // Its users too: their own policies (not read) may
                        // allow it.
                        let prefix = format!("aws-user:{}/", model.providers[provider].name);
                        for &user in users.values() {
                            if self.nodes[user].id.starts_with(&prefix) {
                                becomes.push((user, format!("observed: the trust of role {name} (not writ's) lets {principal} assume it, which the user's own policies (not read) may allow{conditions}")));
                            }
                        }
                        // Anyone in the account the role trusts: the
                        // agents whose grants allow assuming it.
                        for &agent in agents.values() {
                            if declares(
                                model,
                                agent,
                                provider,
                                ("sts:AssumeRole", arn),
                                &Placement::None,
                                None,
                            ) {
                                becomes.push((agent, format!("observed: the trust of role {name} (not writ's) lets {principal} assume it, and the agent's grants allow `sts:AssumeRole` on it{conditions}")));
                            }
                        }
                    }
                }
            }
            if becomes.is_empty() && admits.is_empty() {
                continue;
            }
            becomes.sort();
            becomes.dedup_by_key(|(from, _)| *from);
            admits.sort();
            admits.dedup_by_key(|(from, _)| *from);
            let node = self.node(
                format!("aws-role:{}/{name}", role.provider),
                NodeKind::AwsRole,
                None,
            );
            self.nodes[node].provider = Some(role.provider.clone());
            self.nodes[node].provider_id = Some(provider);
            for (workload, how) in admits {
                self.edge(Edge {
                    from: workload,
                    to: node,
                    kind: EdgeKind::AuthenticatesAs,
                    how,
                    providers: vec![model.providers[provider].address()],
                    obtains: vec![provider],
                    observed: true,
                    ..Edge::new()
                });
                added += 1;
            }
            for (agent, how) in becomes {
                self.edge(Edge {
                    from: agent,
                    to: node,
                    kind: EdgeKind::MayBecome,
                    how,
                    mints: vec![(provider, vec![provider])],
                    providers: vec![model.providers[provider].address()],
                    observed: true,
                    ..Edge::new()
                });
                added += 1;
            }
            // What the role may do.
            for policy in observed.iter().filter(|p| {
                p.kind == ResourceKind::AwsRolePolicy
                    && p.provider == role.provider
                    && p.string("role") == Some(name)
            }) {
                let policy_name = policy.string("name").unwrap_or_default();
                self.draw_statements(
                    model,
                    provider,
                    node,
                    policy.attributes.get("policy").unwrap_or(&Value::Null),
                    &format!("observed: inline policy {policy_name} of role {name}"),
                );
            }
            for attached in strings(role.attribute("attached_policies")) {
                self.attached(
                    model,
                    provider,
                    node,
                    observed,
                    &attached,
                    &format!("role {name}"),
                );
            }
        }
        added
    }

    /// GCP bindings that name an agent's service account (writ's part of
    /// each policy, as the provider reads it) beyond what lowering writes:
    /// a role on a resource no grant of the agent covers. A binding of
    /// writ's whose condition differs from the source's is drawn too: its
    /// condition is not evaluated.
    fn observe_gcp(&mut self, model: &Model, desired: &Desired, observed: &[Resource]) -> usize {
        // Each agent's service account, by (provider, member).
        let mut accounts: HashMap<(usize, String), usize> = HashMap::new();
        for (provider, settings) in model.providers.iter().enumerate() {
            let ProviderSettings::Gcp { project } = &settings.settings else {
                continue;
            };
            for (agent, held) in model.agents.iter().enumerate() {
                let email = format!(
                    "{}@{project}.iam.gserviceaccount.com",
                    crate::lower::gcp::account_id(&held.name)
                );
                accounts.insert((provider, format!("serviceAccount:{email}")), agent);
            }
        }
        if accounts.is_empty() {
            return 0;
        }
        // What lowering writes, by address: (role, member, condition), and
        // (role, member) for writ's bindings whatever their condition.
        let mut written: HashMap<&str, Vec<Written>> = HashMap::new();
        for policy in desired
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::GcpIamPolicy)
        {
            let triples = written.entry(policy.address.as_str()).or_default();
            for binding in policy
                .attribute("bindings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for member in binding
                    .get("members")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    triples.push((&binding["role"], member, binding.get("condition")));
                }
            }
        }
        let mut added = 0;
        for policy in observed
            .iter()
            .filter(|r| r.kind == ResourceKind::GcpIamPolicy)
        {
            let Some(provider) = model
                .providers
                .iter()
                .position(|p| p.address() == policy.provider && p.kind == ProviderKind::Gcp)
            else {
                continue;
            };
            let resource = policy.string("resource").unwrap_or_default().to_string();
            let ours = written.get(policy.address.as_str());
            for binding in policy
                .attribute("bindings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let role = binding
                    .get("role")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let condition = binding.get("condition");
                for member in binding
                    .get("members")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(&agent) = member
                        .as_str()
                        .and_then(|m| accounts.get(&(provider, m.to_string())))
                    else {
                        continue;
                    };
                    let same_binding =
                        |triple: &&Written| triple.0 == &binding["role"] && triple.1 == member;
                    let writs = ours
                        .map(|t| t.iter().filter(same_binding).collect::<Vec<_>>())
                        .unwrap_or_default();
                    if writs.iter().any(|t| t.2 == condition) {
                        continue;
                    }
                    let how = match (writs.is_empty(), condition.is_some()) {
                        (false, _) => "observed: writ's binding, its condition not as the source says (a change not applied yet, or made outside writ); the condition is not evaluated".to_string(),
                        (true, true) => "observed: a binding not in the source, with a condition writ did not evaluate".to_string(),
                        (true, false) => "observed: a binding not in the source".to_string(),
                    };
                    // Whatever its condition, within what an unconditional
                    // grant gives.
                    if declares(
                        model,
                        agent,
                        provider,
                        (role, &resource),
                        &Placement::None,
                        None,
                    ) {
                        continue;
                    }
                    let to = self.resource_node(model, provider, &resource, &Placement::None);
                    self.edge(Edge {
                        from: agent,
                        to,
                        kind: EdgeKind::MayDo,
                        how: format!("{how}: {role} on {resource}"),
                        actions: vec![role.to_string()],
                        observed: true,
                        ..Edge::new()
                    });
                    added += 1;
                }
            }
        }
        added
    }

    /// Deploy keys that may push to a repository whose workflows run as
    /// agents: a long-lived credential that can change what those
    /// workflows do, and so act as each agent as far as its workflows'
    /// trust lets them. Drawn as a workload that authenticates as each,
    /// obtaining what the repository's workflows obtain.
    fn observe_deploy_keys(&mut self, observed: &[Resource]) -> usize {
        let mut added = 0;
        for key in observed
            .iter()
            .filter(|r| r.kind == ResourceKind::GithubDeployKey)
        {
            // Read-only only when GitHub says so.
            if key.attribute("read_only").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let repository = key.string("repository").unwrap_or_default();
            let Some(workflows) = self.find(&format!("github:{}", repository.to_ascii_lowercase()))
            else {
                continue;
            };
            // Every way its workflows authenticate: the trust writ writes,
            // and what only the observed state holds (a secret's key, a
            // role outside writ that admits them).
            let trusts: Vec<Edge> = self.outgoing[workflows]
                .iter()
                .map(|&e| &self.edges[e])
                .filter(|e| e.kind == EdgeKind::AuthenticatesAs)
                .cloned()
                .collect();
            if trusts.is_empty() {
                continue;
            }
            let id = key
                .attribute("id")
                .map(|id| match id {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            let title = key.string("title").unwrap_or_default();
            let node = self.node(
                format!("github-deploy-key:{repository}/{id}"),
                NodeKind::DeployKey,
                None,
            );
            for trust in trusts {
                self.edge(Edge {
                    from: node,
                    to: trust.to,
                    kind: EdgeKind::AuthenticatesAs,
                    how: format!(
                        "observed: deploy key `{title}` may push to `{repository}`, whose workflows run as it ({})",
                        trust.how
                    ),
                    providers: trust.providers.clone(),
                    obtains: trust.obtains.clone(),
                    blocked: trust.blocked.clone(),
                    observed: true,
                    ..Edge::new()
                });
                added += 1;
            }
        }
        added
    }

    fn observe_rbac(&mut self, model: &Model, observed: &[Resource]) -> usize {
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
            let (role_kind, role_name) = role_ref(binding);
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
                    // Paths of the API server that are not resources (only
                    // a ClusterRoleBinding gives them): the source cannot
                    // grant them, so each is undeclared, but the discovery
                    // every cluster gives everyone.
                    let urls: Vec<String> = strings(rule.get("non_resource_urls"))
                        .into_iter()
                        .filter(|url| cluster_wide && !DISCOVERY.contains(&url.as_str()))
                        .collect();
                    for url in urls {
                        let to = self.resource_node(model, provider, &url, &Placement::Cluster);
                        for &source in &from {
                            self.edge(Edge {
                                from: source,
                                to,
                                kind: EdgeKind::MayDo,
                                how: format!("{how}; a path of the API server, not a resource"),
                                actions: verbs.clone(),
                                observed: true,
                                ..Edge::new()
                            });
                        }
                        added += 1;
                    }
                    for group in &groups {
                        for resource in strings(rule.get("resources")) {
                            // Asking about oneself: every identity may,
                            // and it reaches nothing (bound to every
                            // authenticated user in every cluster).
                            if SELF_REVIEWS.contains(&(group.as_str(), resource.as_str())) {
                                continue;
                            }
                            let resource = writ_resource(&resource, group);
                            // Asked where the binding gives it: in every
                            // namespace for a ClusterRoleBinding.
                            let place = placement.clone();
                            let extra: Vec<String> = verbs
                                .iter()
                                .filter(|verb| {
                                    // Agents' nodes are the graph's first,
                                    // in the model's order.
                                    let allowed = |name: Option<&str>| {
                                        agents.iter().any(|&agent| {
                                            declares(
                                                model,
                                                agent,
                                                provider,
                                                (verb, &resource),
                                                &place,
                                                name,
                                            )
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

/// The agent a role of the project's (by its path and `writ:project` tag,
/// as the planner owns them) is for: the one it is named after, as
/// lowering names it, else the one its `writ:agent` tag says (a tag can be
/// edited; the name cannot).
fn role_agent(model: &Model, role: &Resource, desired: &Desired) -> Option<usize> {
    if !project_role(role, desired) {
        return None;
    }
    let by_name = |name: &str| model.agents.iter().position(|a| a.name == name);
    role.string("name")
        .and_then(by_name)
        .or_else(|| role.tag(ownership::aws::AGENT_TAG).and_then(by_name))
}

/// The AWS provider at an address (`aws.prod`).
fn aws_provider_at(model: &Model, address: &str) -> Option<usize> {
    model
        .providers
        .iter()
        .position(|p| p.address() == address && p.kind == ProviderKind::Aws)
}

/// Is an observed role the project's, as the planner owns roles (its path
/// and its `writ:project` tag; outside writ's path, only where the source
/// adopts it: tags alone would let any role hide its trust from the graph)?
fn project_role(role: &Resource, desired: &Desired) -> bool {
    let tags = role.tags();
    let path = role.string("path").unwrap_or_default();
    ownership::aws::owns(
        path,
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &desired.project,
    ) && (path.starts_with(ownership::aws::PATH_ROOT)
        || desired.adopted.get(&role.address).map(String::as_str) == Some(path))
}

/// A binding's `role_ref`: the kind of role (`Role`, `ClusterRole`) and
/// its name.
pub(crate) fn role_ref(binding: &Resource) -> (&str, &str) {
    let field = |key: &str| {
        binding
            .attribute("role_ref")
            .and_then(|r| r.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    (field("kind"), field("name"))
}

/// An observed role's ARN: as read, or made from its provider's account,
/// its path and its name (a snapshot may leave it out).
fn role_arn(model: &Model, role: &Resource) -> Option<String> {
    if let Some(arn) = role.string("arn") {
        return Some(arn.to_string());
    }
    let provider = model
        .providers
        .iter()
        .find(|p| p.address() == role.provider)?;
    let ProviderSettings::Aws {
        account, partition, ..
    } = &provider.settings
    else {
        return None;
    };
    Some(format!(
        "arn:{partition}:iam::{account}:role{}{}",
        role.string("path").unwrap_or("/"),
        role.string("name")?
    ))
}

/// A GCP binding lowering writes, member by member: role, member, and
/// condition.
type Written<'a> = (&'a Value, &'a Value, Option<&'a Value>);

/// A statement's field that may be one value or a list.
fn one_or_many(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(one)) => vec![one.clone()],
        other => strings(other),
    }
}

/// The unconditional `Deny` statements of a role's policies, as (actions,
/// resources); and the dates from which a deny of everything applies.
#[derive(Default)]
struct Denies {
    always: Vec<(Vec<String>, Vec<String>)>,
    everything_from: Vec<String>,
}

impl Denies {
    fn read(&mut self, statement: &Value) {
        if statement.get("Effect").and_then(Value::as_str) != Some("Deny")
            || statement.get("NotAction").is_some()
            || statement.get("NotResource").is_some()
        {
            return;
        }
        let actions = one_or_many(statement.get("Action"));
        let resources = one_or_many(statement.get("Resource"));
        // A policy variable is not a wildcard: such a deny covers less than
        // its pattern reads, so none is taken to cover anything.
        if actions.iter().chain(&resources).any(|p| p.contains("${"))
            || statement.get("Principal").is_some()
            || statement.get("NotPrincipal").is_some()
        {
            return;
        }
        match statement.get("Condition") {
            None => self.always.push((actions, resources)),
            // Writ's deny from an agent's `expires` (or one like it): when
            // that date has come is for the clock to say, not the graph.
            Some(condition) => {
                let everything =
                    actions.iter().any(|a| a == "*") && resources.iter().any(|r| r == "*");
                let from = condition
                    .get("DateGreaterThanEquals")
                    .or_else(|| condition.get("DateGreaterThan"))
                    .and_then(|c| c.get("aws:CurrentTime"));
                if let (true, Some(from), 1) = (
                    everything,
                    from,
                    condition.as_object().map_or(0, |c| c.len()),
                ) {
                    self.everything_from.extend(one_or_many(Some(from)));
                }
            }
        }
    }

    /// Is the action on the resource denied whatever the request?
    fn deny(&self, action: &str, resource: &str) -> bool {
        self.always.iter().any(|(actions, resources)| {
            actions
                .iter()
                .any(|a| access::action_covers(ProviderKind::Aws, a, action))
                && resources
                    .iter()
                    .any(|r| access::resource_covers(ProviderKind::Aws, r, resource))
        })
    }
}

impl Graph {
    /// The project's AWS roles' policies beyond what lowering writes (see
    /// the module's documentation); how many edges it added.
    fn observe_iam(&mut self, model: &Model, desired: &Desired, observed: &[Resource]) -> usize {
        // The project's roles, by (provider, role name): the agent's node
        // and id, and the role's policies.
        let mut roles: HashMap<(&str, &str), (usize, usize, Vec<&Resource>)> = HashMap::new();
        for role in observed.iter().filter(|r| r.kind == ResourceKind::AwsRole) {
            // Agents' nodes are the graph's first, in the model's order.
            let Some(id) = role_agent(model, role, desired) else {
                continue;
            };
            let Some(name) = role.string("name") else {
                continue;
            };
            roles.insert((role.provider.as_str(), name), (id, id, Vec::new()));
        }
        if roles.is_empty() {
            return 0;
        }
        for policy in observed
            .iter()
            .filter(|r| r.kind == ResourceKind::AwsRolePolicy)
        {
            let role = policy.string("role").unwrap_or_default();
            if let Some((_, _, policies)) = roles.get_mut(&(policy.provider.as_str(), role)) {
                policies.push(policy);
            }
        }
        // The statements lowering writes, by the policy's address.
        let written: HashMap<&str, Vec<&Value>> = desired
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::AwsRolePolicy)
            .map(|r| {
                let statements = r
                    .attributes
                    .get("policy")
                    .and_then(|p| p.get("Statement"))
                    .and_then(Value::as_array)
                    .map(|s| s.iter().collect())
                    .unwrap_or_default();
                (r.address.as_str(), statements)
            })
            .collect();
        let mut added = 0;
        for role in observed.iter().filter(|r| r.kind == ResourceKind::AwsRole) {
            let name = role.string("name").unwrap_or_default();
            let Some((agent, agent_id, policies)) = roles.get(&(role.provider.as_str(), name))
            else {
                continue;
            };
            let Some(provider) = aws_provider_at(model, &role.provider) else {
                continue;
            };
            let documents: Vec<(&Resource, Value)> = policies
                .iter()
                .map(|p| {
                    let document = p.attributes.get("policy").unwrap_or(&Value::Null);
                    (*p, crate::policy::canonical(document))
                })
                .collect();
            let statements = |document: &Value| -> Vec<Value> {
                document
                    .get("Statement")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let mut denies = Denies::default();
            for (_, document) in &documents {
                for statement in statements(document) {
                    denies.read(&statement);
                }
            }
            let later = match denies.everything_from.iter().min() {
                Some(date) => format!("; the role's own policy denies everything from {date}"),
                None => String::new(),
            };
            for (policy, document) in &documents {
                let policy_name = policy.string("name").unwrap_or_default();
                // A document writ cannot read: what it allows is unknown.
                if document
                    .get("Statement")
                    .and_then(Value::as_array)
                    .is_none()
                {
                    self.unknown_access(model, provider, *agent, format!("observed: inline policy {policy_name} of role {name}, which writ cannot read: what it allows is unknown"));
                    added += 1;
                    continue;
                }
                let ours = written.get(policy.address.as_str());
                let whose = if ours.is_some() || policy_name == ownership::aws::ACCESS_POLICY {
                    "writ's, not as the source says: a change not applied yet, or made outside writ"
                } else {
                    "put on writ's role outside writ"
                };
                for statement in statements(document) {
                    if statement.get("Effect").and_then(Value::as_str) != Some("Allow")
                        || ours.is_some_and(|written| written.contains(&&statement))
                    {
                        continue;
                    }
                    let mut how =
                        format!("observed: inline policy {policy_name} of role {name} ({whose})");
                    if statement.get("Condition").is_some() {
                        how.push_str("; with conditions writ did not evaluate");
                    }
                    how.push_str(&later);
                    added += self.iam_statement(
                        model,
                        (provider, *agent, *agent_id),
                        &statement,
                        &denies,
                        &how,
                    );
                }
            }
            for attached in strings(role.attribute("attached_policies")) {
                self.unknown_access(model, provider, *agent, format!("observed: managed policy {attached} attached to role {name} outside writ; what it allows was not read{later}"));
                added += 1;
            }
        }
        added
    }

    /// Access whose extent writ cannot read (a policy it did not read, or
    /// cannot): every action on every resource of the provider, observed.
    /// What a managed policy attached to an identity outside writ lets it
    /// do: its statements, when the observed state holds its document (the
    /// account's own policies); unknown access otherwise (AWS's managed
    /// policies, whose documents writ does not read).
    fn attached(
        &mut self,
        model: &Model,
        provider: usize,
        node: usize,
        observed: &[Resource],
        arn: &str,
        whose: &str,
    ) -> usize {
        let document = observed
            .iter()
            .find(|r| {
                r.kind == ResourceKind::AwsManagedPolicy
                    && r.provider == model.providers[provider].address()
                    && r.string("arn") == Some(arn)
            })
            .and_then(|r| r.attribute("policy"))
            .filter(|d| !d.is_null())
            .cloned();
        match document {
            Some(document) => self.draw_statements(
                model,
                provider,
                node,
                &document,
                &format!("observed: managed policy {arn} attached to {whose}"),
            ),
            None => {
                self.unknown_access(
                    model,
                    provider,
                    node,
                    format!("observed: managed policy {arn} attached to {whose}; what it allows was not read"),
                );
                1
            }
        }
    }

    fn unknown_access(&mut self, model: &Model, provider: usize, from: usize, how: String) {
        let to = self.resource_node(model, provider, "*", &Placement::None);
        self.edge(Edge {
            from,
            to,
            kind: EdgeKind::MayDo,
            how,
            actions: vec!["*".to_string()],
            observed: true,
            ..Edge::new()
        });
    }

    /// One `Allow` statement of an agent's role (in `provider`, from the
    /// agent's node, of the agent's id): what of it no grant of the agent covers
    /// and the role's own denies do not take away, drawn;
    /// how many edges.
    fn iam_statement(
        &mut self,
        model: &Model,
        (provider, agent, agent_id): (usize, usize, usize),
        statement: &Value,
        denies: &Denies,
        how: &str,
    ) -> usize {
        let not_action = statement.get("NotAction").is_some();
        let not_resource = statement.get("NotResource").is_some();
        // Every action but some, on the resources named; the actions named,
        // on every resource but some.
        let actions = match not_action {
            true => vec!["*".to_string()],
            false => one_or_many(statement.get("Action")),
        };
        let resources = match not_resource {
            true => vec!["*".to_string()],
            false => one_or_many(statement.get("Resource")),
        };
        let how = match (not_action, not_resource) {
            (true, _) => format!("{how}; `NotAction`: every action but those it names"),
            (_, true) => format!("{how}; `NotResource`: every resource but those it names"),
            _ => how.to_string(),
        };
        let mut added = 0;
        for resource in &resources {
            let extra: Vec<String> = actions
                .iter()
                .filter(|action| {
                    !denies.deny(action, resource)
                        && !declares(
                            model,
                            agent_id,
                            provider,
                            (action, resource),
                            &Placement::None,
                            None,
                        )
                })
                .cloned()
                .collect();
            if extra.is_empty() {
                continue;
            }
            let to = self.resource_node(model, provider, resource, &Placement::None);
            self.edge(Edge {
                from: agent,
                to,
                kind: EdgeKind::MayDo,
                how: how.clone(),
                actions: extra,
                observed: true,
                ..Edge::new()
            });
            added += 1;
        }
        added
    }
}
