//! Lowering to Kubernetes, per agent with Kubernetes grants or a Kubernetes
//! `runs_on`, per cluster:
//! - a ServiceAccount for each `runs_on` there, with
//!   `automountServiceAccountToken: false`, and, when the agent also has an
//!   AWS role that trusts the cluster's OIDC issuer, the
//!   `eks.amazonaws.com/role-arn` annotation pointing at it;
//! - per namespace it has grants in, a Role and a RoleBinding `writ-<agent>`;
//!   for `in cluster` grants a ClusterRole and ClusterRoleBinding
//!   `writ-<project>-<agent>` (cluster-wide names are shared by projects);
//! - for a delegate's parent that runs in the cluster too: the right to
//!   `create` `serviceaccounts/token` for exactly the delegate's service
//!   accounts, so it can mint their short-lived tokens and nothing else.
//!
//! Every object is labelled `app.kubernetes.io/managed-by: writ`,
//! `writ.dev/project` and `writ.dev/agent`, and annotated with its owner and
//! a digest (drift, as for AWS). Rules merge only where apiGroup, verbs and
//! names are the same, so that the cross product a rule means never grants
//! more than was written.

use super::Desired;
use crate::address;
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::{kubernetes, ProviderKind};
use crate::model::{
    AdoptionKind, Agent, AgentId, Model, Placement, ProviderId, ProviderSettings, WorkloadKind,
};
use crate::ownership::{self, kubernetes::*};
use crate::resource::{Resource, ResourceKind};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The annotation by which EKS gives a pod's service account an IAM role.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The annotation by which GKE gives a pod's service account the GCP
/// service account it acts as.
pub const GCP_ACCOUNT_ANNOTATION: &str = "iam.gke.io/gcp-service-account";

/// A name Kubernetes accepts (a DNS-1123 subdomain) for writ's objects:
/// agent and project names may hold capitals and `_`, object names not.
pub fn object_name(parts: &[&str]) -> String {
    let joined = parts.join("-").to_ascii_lowercase();
    let name: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// One RBAC rule, in the shape the API takes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rule {
    api_group: String,
    verbs: BTreeSet<String>,
    resource_names: BTreeSet<String>,
    resources: BTreeSet<String>,
}

impl Rule {
    fn to_json(&self) -> Value {
        let mut rule = Map::new();
        rule.insert("api_groups".into(), json!([self.api_group]));
        rule.insert("resources".into(), json!(self.resources));
        rule.insert("verbs".into(), json!(self.verbs));
        if !self.resource_names.is_empty() {
            rule.insert("resource_names".into(), json!(self.resource_names));
        }
        Value::Object(rule)
    }
}

/// Rules merged where apiGroup, verbs and names agree.
#[derive(Debug, Default)]
struct Rules(BTreeMap<(String, BTreeSet<String>, BTreeSet<String>), BTreeSet<String>>);

impl Rules {
    fn add(&mut self, api_group: &str, resource: &str, verbs: &[String], names: &[String]) {
        let key = (
            api_group.to_string(),
            verbs.iter().cloned().collect(),
            names.iter().cloned().collect(),
        );
        self.0.entry(key).or_default().insert(resource.to_string());
    }

    fn to_json(&self) -> Value {
        let mut rules: Vec<Rule> = self
            .0
            .iter()
            .map(|((api_group, verbs, resource_names), resources)| Rule {
                api_group: api_group.clone(),
                verbs: verbs.clone(),
                resource_names: resource_names.clone(),
                resources: resources.clone(),
            })
            .collect();
        rules.sort();
        Value::Array(rules.iter().map(Rule::to_json).collect())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub(super) struct KubernetesLowering<'a> {
    pub model: &'a Model,
    pub project: &'a str,
    pub provider: ProviderId,
    pub desired: &'a mut Desired,
    /// What each agent mints for its delegates ([`Model::all_minting_grants`]).
    pub minting: &'a [Vec<(AgentId, crate::model::Grant)>],
}

impl KubernetesLowering<'_> {
    fn address(&self) -> String {
        self.model.providers[self.provider].address()
    }

    /// The agent's service accounts in this cluster, as (namespace, name).
    fn service_accounts(&self, agent: &Agent) -> Vec<(String, String)> {
        agent
            .runs_on
            .iter()
            .filter(|w| w.provider == self.provider)
            .filter_map(|w| match &w.kind {
                WorkloadKind::KubernetesServiceAccount {
                    namespace,
                    service_account,
                } => Some((namespace.clone(), service_account.clone())),
                _ => None,
            })
            .collect()
    }

    fn labels(&self, agent: &str) -> Value {
        json!({MANAGED_BY: MANAGER, PROJECT_LABEL: self.project, AGENT_LABEL: agent})
    }

    /// The ARN of the agent's AWS role that trusts this cluster, if any.
    fn aws_role_arn(&self, agent: &Agent) -> Option<String> {
        let ProviderSettings::Kubernetes {
            oidc_issuer: Some(_),
            ..
        } = &self.model.providers[self.provider].settings
        else {
            return None;
        };
        self.model
            .providers
            .iter()
            .enumerate()
            .find_map(|(id, provider)| {
                let ProviderSettings::Aws {
                    account, partition, ..
                } = &provider.settings
                else {
                    return None;
                };
                let has_role = agent.grants.iter().any(|g| g.provider == id)
                    || agent.runs_on.iter().any(|w| w.provider == id);
                has_role.then(|| {
                    format!(
                        "arn:{partition}:iam::{account}:role{}{}",
                        super::aws::role_path(agent, id, self.project),
                        agent.name
                    )
                })
            })
    }

    /// The email of the agent's GCP service account that trusts this
    /// cluster's workload pool, if any: that of the first GCP provider it
    /// has one in (a pod may still ask for the others by name).
    fn gcp_account(&self, agent: &Agent) -> Option<String> {
        let ProviderSettings::Kubernetes {
            workload_pool: Some(_),
            ..
        } = &self.model.providers[self.provider].settings
        else {
            return None;
        };
        (0..self.model.providers.len())
            .find_map(|provider| super::gcp::email(self.model, provider, agent))
    }

    pub(super) fn run(&mut self) {
        let provider = self.address();
        // Which service account each (namespace, name) belongs to: two agents
        // sharing one would share their access.
        let mut taken: BTreeMap<(String, String), String> = BTreeMap::new();
        // Which agent each object name belongs to: `billing_bot` and
        // `billing-bot` would both be `writ-billing-bot`.
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for (id, agent) in self.model.agents.iter().enumerate() {
            if agent.retired {
                continue;
            }
            let accounts = self.service_accounts(agent);
            let has_grants = agent.grants.iter().any(|g| g.provider == self.provider);
            if has_grants && accounts.is_empty() {
                self.desired.diagnostics.push(
                    Diagnostic::new(
                        Code::MissingField,
                        format!("agent `{}` has access in `{provider}`, but no service account there", agent.name),
                        Label::new(agent.span, "no Kubernetes workload"),
                    )
                    .with_help(format!(
                        "add `runs_on {provider} namespace \"…\" service_account \"…\"`: RBAC is bound to a service account"
                    )),
                );
                continue;
            }
            if accounts.is_empty() {
                // No identity in this cluster: nothing to bind.
                continue;
            }
            let object = object_name(&[&agent.name]);
            if let Some(other) = names.insert(object.clone(), agent.name.clone()) {
                self.desired.diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateDefinition,
                        format!("agents `{other}` and `{}` would share the Kubernetes object names `writ-{object}` in `{provider}`", agent.name),
                        Label::new(agent.span, "Kubernetes names are lower case, with `-` for `_`"),
                    )
                    .with_help("rename one of the agents"),
                );
                continue;
            }
            for (namespace, name) in &accounts {
                if let Some(other) =
                    taken.insert((namespace.clone(), name.clone()), agent.name.clone())
                {
                    if other != agent.name {
                        self.desired.diagnostics.push(Diagnostic::new(
                            Code::DuplicateDefinition,
                            format!("service account `{namespace}/{name}` in `{provider}` is used by both `{other}` and `{}`", agent.name),
                            Label::new(agent.span, "shares another agent's identity"),
                        ).with_help("give each agent a service account of its own"));
                    }
                }
            }
            self.agent(id, &accounts);
        }
    }

    fn agent(&mut self, id: AgentId, accounts: &[(String, String)]) {
        let agent = &self.model.agents[id];
        let provider = self.address();
        let role_arn = self.aws_role_arn(agent);
        let gcp_account = self.gcp_account(agent);
        for (namespace, name) in accounts {
            let mut annotations = json!({OWNER_ANNOTATION: agent.owner});
            if let Some(arn) = &role_arn {
                annotations[ROLE_ARN_ANNOTATION] = json!(arn);
            }
            if let Some(email) = &gcp_account {
                annotations[GCP_ACCOUNT_ANNOTATION] = json!(email);
            }
            let adopted = agent.adopts.iter().any(|a| {
                a.provider == self.provider
                    && matches!(&a.kind, AdoptionKind::KubernetesServiceAccount { namespace: n, name: m } if n == namespace && m == name)
            });
            if adopted {
                annotations[ADOPTED_ANNOTATION] = json!("true");
            }
            self.push(Resource {
                address: address::kubernetes_service_account(&provider, namespace, name),
                provider: provider.clone(),
                kind: ResourceKind::KubernetesServiceAccount,
                agent: Some(agent.name.clone()),
                attributes: BTreeMap::from([
                    ("name".to_string(), json!(name)),
                    ("namespace".to_string(), json!(namespace)),
                    ("labels".to_string(), self.labels(&agent.name)),
                    ("annotations".to_string(), annotations),
                    ("automount_service_account_token".to_string(), json!(false)),
                ])
                .into(),
            });
        }
        if agent.frozen {
            // Frozen: declared, with its identity, but holding nothing.
            return;
        }
        let mut per_namespace: BTreeMap<String, Rules> = BTreeMap::new();
        let mut cluster = Rules::default();
        for grant in agent.grants.iter().filter(|g| g.provider == self.provider) {
            for resource in &grant.resources {
                // The checker let through only resources RBAC reads as
                // written; anything else would be lowered to nothing.
                let Ok(reference) = kubernetes::ResourceRef::parse(resource) else {
                    continue;
                };
                let (api_group, rule_resource) =
                    (reference.group.clone(), reference.rule_resource());
                let rules = match &grant.placement {
                    Placement::Namespace(namespace) => {
                        per_namespace.entry(namespace.clone()).or_default()
                    }
                    _ => &mut cluster,
                };
                rules.add(
                    &api_group,
                    &rule_resource,
                    &grant.actions,
                    &grant.resource_names,
                );
            }
        }
        // The parent of delegates that run here may mint their tokens.
        for (_, grant) in &self.minting[id] {
            if grant.provider != self.provider {
                continue;
            }
            if let Placement::Namespace(namespace) = &grant.placement {
                per_namespace.entry(namespace.clone()).or_default().add(
                    "",
                    "serviceaccounts/token",
                    &grant.actions,
                    &grant.resource_names,
                );
            }
        }
        // Sorted as providers read them back: their order means nothing.
        let mut accounts = accounts.to_vec();
        accounts.sort();
        accounts.dedup();
        let subjects: Vec<Value> = accounts
            .iter()
            .map(|(namespace, name)| json!({"kind": "ServiceAccount", "name": name, "namespace": namespace}))
            .collect();
        let role_name = object_name(&["writ", &agent.name]);
        for (namespace, rules) in &per_namespace {
            self.role_pair(agent, Some(namespace), &role_name, rules, &subjects);
        }
        if !cluster.is_empty() {
            let name = object_name(&["writ", self.project, &agent.name]);
            self.role_pair(agent, None, &name, &cluster, &subjects);
        }
    }

    /// A Role (or ClusterRole) and the binding that gives it to the agent.
    fn role_pair(
        &mut self,
        agent: &Agent,
        namespace: Option<&String>,
        name: &str,
        rules: &Rules,
        subjects: &[Value],
    ) {
        let provider = self.address();
        let (role_kind, binding_kind, role_address, binding_address, kind_name) = match namespace {
            Some(ns) => (
                ResourceKind::KubernetesRole,
                ResourceKind::KubernetesRoleBinding,
                address::kubernetes(&provider, "roles", Some(ns), name),
                address::kubernetes(&provider, "rolebindings", Some(ns), name),
                "Role",
            ),
            None => (
                ResourceKind::KubernetesClusterRole,
                ResourceKind::KubernetesClusterRoleBinding,
                address::kubernetes(&provider, "clusterroles", None, name),
                address::kubernetes(&provider, "clusterrolebindings", None, name),
                "ClusterRole",
            ),
        };
        let mut common = BTreeMap::from([
            ("name".to_string(), json!(name)),
            ("labels".to_string(), self.labels(&agent.name)),
            (
                "annotations".to_string(),
                json!({OWNER_ANNOTATION: agent.owner}),
            ),
        ]);
        if let Some(ns) = namespace {
            common.insert("namespace".to_string(), json!(ns));
        }
        let mut role = common.clone();
        role.insert("rules".to_string(), rules.to_json());
        self.push(Resource {
            address: role_address,
            provider: provider.clone(),
            kind: role_kind,
            agent: Some(agent.name.clone()),
            attributes: role.into(),
        });
        let mut binding = common;
        binding.insert(
            "role_ref".to_string(),
            json!({"api_group": "rbac.authorization.k8s.io", "kind": kind_name, "name": name}),
        );
        binding.insert("subjects".to_string(), json!(subjects));
        self.push(Resource {
            address: binding_address,
            provider,
            kind: binding_kind,
            agent: Some(agent.name.clone()),
            attributes: binding.into(),
        });
    }

    fn push(&mut self, mut resource: Resource) {
        let digest = ownership::content_digest(&resource, []);
        if let Some(Value::Object(annotations)) = resource.attributes.get_mut("annotations") {
            annotations.insert(DIGEST_ANNOTATION.into(), json!(digest));
        }
        self.desired.resources.push(resource);
    }
}

pub(super) fn lower_all(model: &Model, project: &str, desired: &mut Desired) {
    let minting = model.all_minting_grants();
    for (id, provider) in model.providers.iter().enumerate() {
        if provider.kind == ProviderKind::Kubernetes {
            KubernetesLowering {
                model,
                project,
                provider: id,
                desired,
                minting: &minting,
            }
            .run();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Date;
    use crate::{CheckOptions, SourceMap};

    fn lowered(text: &str) -> Desired {
        let mut sources = SourceMap::new();
        sources.add("main.writ", text.to_string());
        let today = Date {
            year: 2026,
            month: 11,
            day: 28,
        };
        let checked = crate::check(&sources, &CheckOptions { today });
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        super::super::lower(&checked.model, "Acme_Corp")
    }

    const CLUSTER: &str = "provider kubernetes prod {\n  cluster = \"prod\"\n}\n";

    fn agent(name: &str, account: &str) -> String {
        format!(
            "agent {name} {{\n  owner = \"t\"\n  ttl = 1h\n  runs_on kubernetes.prod namespace \"jobs\" service_account \"{account}\"\n  kubernetes.prod allow get on \"pods\" in namespace \"jobs\"\n  kubernetes.prod allow get on \"nodes\" in cluster\n}}\n"
        )
    }

    #[test]
    fn object_names_are_ones_kubernetes_accepts() {
        assert_eq!(object_name(&["writ", "job_runner"]), "writ-job-runner");
        assert_eq!(
            object_name(&["writ", "Acme_Corp", "Bot"]),
            "writ-acme-corp-bot"
        );
        assert_eq!(object_name(&["_x_"]), "x");
        let desired = lowered(&format!("{CLUSTER}{}", agent("job_runner", "runner")));
        let names: Vec<&str> = desired
            .resources
            .iter()
            .filter_map(|r| r.string("name"))
            .collect();
        assert!(names.contains(&"writ-job-runner"), "{names:?}");
        assert!(names.contains(&"writ-acme-corp-job-runner"), "{names:?}");
        // Labels keep the names as written: label values may hold `_`.
        let role = desired
            .resources
            .iter()
            .find(|r| r.kind == ResourceKind::KubernetesRole)
            .unwrap();
        assert_eq!(role.attributes["labels"][AGENT_LABEL], "job_runner");
    }

    #[test]
    fn agents_whose_object_names_meet_are_an_error() {
        let desired = lowered(&format!(
            "{CLUSTER}{}{}",
            agent("job_runner", "a"),
            agent("job-runner", "b")
        ));
        assert!(
            desired.diagnostics.iter().any(|d| d.is_error()
                && d.code == Code::DuplicateDefinition
                && d.message
                    .contains("would share the Kubernetes object names")),
            "{:?}",
            desired.diagnostics
        );
    }

    #[test]
    fn agents_sharing_a_service_account_are_an_error() {
        let desired = lowered(&format!(
            "{CLUSTER}{}{}",
            agent("one", "shared"),
            agent("two", "shared")
        ));
        assert!(
            desired
                .diagnostics
                .iter()
                .any(|d| d.message.contains("is used by both `one` and `two`")),
            "{:?}",
            desired.diagnostics
        );
    }

    #[test]
    fn a_gke_service_account_acts_as_the_agents_gcp_service_account() {
        let desired = lowered(concat!(
            "provider kubernetes gke {\n  cluster = \"gke-prod\"\n  workload_pool = \"acme-gke.svc.id.goog\"\n}\n",
            "provider gcp data {\n  project = \"acme-data-1\"\n}\n",
            "agent loader {\n  owner = \"t\"\n  ttl = 1h\n",
            "  runs_on kubernetes.gke namespace \"data\" service_account \"loader\"\n",
            "  gcp.data allow roles/viewer on \"projects/acme-data-1\"\n}\n",
        ));
        let email = "writ-loader@acme-data-1.iam.gserviceaccount.com";
        let account = desired
            .resources
            .iter()
            .find(|r| r.kind == ResourceKind::KubernetesServiceAccount)
            .unwrap();
        assert_eq!(
            account.attributes["annotations"][GCP_ACCOUNT_ANNOTATION],
            email
        );
        // The GCP service account trusts exactly that Kubernetes one.
        let policy = desired
            .resources
            .iter()
            .find(|r| {
                r.string("resource")
                    == Some(&format!("projects/acme-data-1/serviceAccounts/{email}"))
            })
            .unwrap();
        assert_eq!(
            policy.attributes["bindings"],
            json!([{
                "role": "roles/iam.workloadIdentityUser",
                "members": ["serviceAccount:acme-gke.svc.id.goog[data/loader]"],
            }])
        );
    }
}
