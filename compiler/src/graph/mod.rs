//! The access graph: who can reach what, through which chain. Built from
//! the checked model: workloads (a GitHub repository's workflows, a GitHub
//! App's installation, a Kubernetes service account, an AWS service, an IAM
//! user's keys, a GCP workload identity subject) *authenticate as* agents;
//! an agent *may mint for* its delegates; an agent *may do* actions on
//! resources, through its grants.
//!
//! What the graph says must be what the providers enforce, so it errs only
//! towards showing more: an edge is left out of every reach only when it is
//! proven to confer nothing (the agent is retired or frozen, or a guardrail
//! denies every request the grant allows). Each grant edge carries a
//! witness when writ finds one: a request through it that the evaluator
//! ([`crate::eval`]) allows, which is what the chain is shown to reach.

mod assume;
mod findings;
pub(crate) mod observed;
mod query;
mod render;
mod svg;

pub use findings::findings;
pub use observed::{may_hold_undeclared, Undeclared};
pub use query::{Chain, Found, Held, Hop, Tree, View, MAX_CHAINS};
pub use render::{
    dot, edge_words as render_edge, json, mermaid, mermaid_text, text_chains, text_tree,
};
pub use svg::{html, layout, svg, Layout};

use crate::eval::{self, Request};
use crate::facts::{aws, ProviderKind};
use crate::model::{AgentId, Grant, Model, Placement, ProviderSettings, Workload, WorkloadKind};
use crate::source::Span;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A GitHub repository whose workflows authenticate (`github:OWNER/REPO`).
    Repository,
    /// A GitHub App's installation (`github-app:SLUG`).
    GithubApp,
    /// A Kubernetes service account pods run as (`k8s:PROVIDER/NS/NAME`).
    ServiceAccount,
    /// An AWS service that assumes a role (`aws-service:NAME`).
    AwsService,
    /// An IAM user whose long-lived access keys sign requests
    /// (`aws-user:PROVIDER/NAME`).
    AwsUser,
    /// A GCP workload identity pool's subject (`gcp-subject:POOL/SUBJECT`).
    GcpSubject,
    /// An IAM role writ does not own whose trust lets an agent assume it,
    /// as observed (`aws-role:PROVIDER/NAME`): an identity the source does
    /// not declare, reached by a chain.
    AwsRole,
    /// A web identity provider the graph cannot name a workload of (an
    /// issuer that is no declared cluster's nor GitHub's, a SAML provider),
    /// or a cluster's every service account, as a role's trust admits it
    /// (`web-identity:PRINCIPAL`).
    WebIdentity,
    /// A repository's deploy key that may push, as observed: whoever holds
    /// it changes what the repository's workflows run
    /// (`github-deploy-key:OWNER/REPO/ID`).
    DeployKey,
    /// The role `writ serve` runs as in an AWS provider (`issuer =`),
    /// which every agent's role there trusts, so that the server can issue
    /// their credentials (`aws-issuer:PROVIDER`): whoever acts as it may
    /// become any of them.
    AwsIssuer,
    /// An agent: the identity writ governs (`agent:NAME`).
    Agent,
    /// What grants act on: an ARN pattern, a Kubernetes resource in a
    /// namespace or cluster-wide, a repository, a GCP resource
    /// (`PROVIDER RESOURCE`).
    Resource,
}

impl NodeKind {
    /// Where requests start: every kind but identities and resources.
    pub fn is_workload(self) -> bool {
        !matches!(
            self,
            NodeKind::Agent | NodeKind::Resource | NodeKind::AwsRole
        )
    }

    pub fn words(self) -> &'static str {
        match self {
            NodeKind::Repository => "GitHub repository",
            NodeKind::GithubApp => "GitHub App",
            NodeKind::ServiceAccount => "Kubernetes service account",
            NodeKind::AwsService => "AWS service",
            NodeKind::AwsUser => "IAM user",
            NodeKind::GcpSubject => "GCP workload identity subject",
            NodeKind::DeployKey => "GitHub deploy key",
            NodeKind::WebIdentity => "web identity provider",
            NodeKind::AwsRole => "IAM role outside writ",
            NodeKind::AwsIssuer => "writ serve's issuing role",
            NodeKind::Agent => "agent",
            NodeKind::Resource => "resource",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Unique, and what `--from` and `--agent` take.
    pub id: String,
    pub kind: NodeKind,
    /// For a resource: its provider (`aws.prod`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Why an agent holds nothing: `retired` or `frozen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The provider's index: a resource's, or a service account's cluster.
    #[serde(skip)]
    pub provider_id: Option<usize>,
    /// For a resource: the pattern as written, and where it applies.
    #[serde(skip)]
    pub resource: Option<(String, Placement)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// A workload obtains the agent's credentials (OIDC trust, IRSA,
    /// workload identity, a key, an installation token).
    AuthenticatesAs,
    /// Delegation: the agent may obtain its delegate's credentials.
    MayMintFor,
    /// A grant lets the agent obtain another agent's credentials (a token
    /// of its service account, its GCP account, its role passed to a
    /// service, a workflow pushed to its repository).
    MayBecome,
    /// A grant: the agent may perform these actions on the resource.
    MayDo,
}

impl EdgeKind {
    pub fn words(self) -> &'static str {
        match self {
            EdgeKind::AuthenticatesAs => "authenticates as",
            EdgeKind::MayMintFor => "may mint for",
            EdgeKind::MayBecome => "may become",
            EdgeKind::MayDo => "may do",
        }
    }
}

/// A request through a grant edge that the evaluator allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Witness {
    pub action: String,
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
    /// How: `GitHub OIDC: workflow …, environment …`; a grant's qualifiers.
    pub how: String,
    /// A grant's actions as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// A grant's `named` objects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// A grant's conditions, as written (`aws:RequestedRegion == "us-east-1"`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// The scopes a grant came through, outermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    /// For `authenticates as`: the providers whose credentials of the agent
    /// the workload obtains; for `may mint for`: the providers in which the
    /// agent obtains its delegate's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// The same, by provider index.
    #[serde(skip)]
    pub obtains: Vec<usize>,
    /// For `may mint for` and `may become`: holding its own credentials in
    /// the first provider, the agent obtains the other agent's in the
    /// others.
    #[serde(skip)]
    pub mints: Vec<(usize, Vec<usize>)>,
    /// Why the edge confers nothing (then no reach passes through it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
    /// Only the observed state holds it: the source does not declare it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub observed: bool,
    /// Where the source says it.
    #[serde(skip)]
    pub span: Option<Span>,
    /// For a grant edge: the agent and the index of its grant.
    #[serde(skip)]
    pub grant: Option<(AgentId, usize)>,
}

/// The access graph of one project.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    #[serde(skip)]
    by_id: HashMap<String, usize>,
    /// How many providers the model has.
    #[serde(skip)]
    pub providers: usize,
    /// Edges out of and into each node, by index.
    #[serde(skip)]
    pub outgoing: Vec<Vec<usize>>,
    #[serde(skip)]
    pub incoming: Vec<Vec<usize>>,
}

impl Graph {
    /// The graph of a checked model (without errors), of the project
    /// named `project` (writ's role names carry it).
    pub fn build(model: &Model, project: &str) -> Graph {
        Graph::build_with(model, project, true)
    }

    /// Who can act as whom only: workloads, agents, and the edges between
    /// them (trust, delegation, one agent becoming another), without what
    /// each may do. Cheap enough for every plan (its findings).
    pub fn identities(model: &Model, project: &str) -> Graph {
        Graph::build_with(model, project, false)
    }

    fn build_with(model: &Model, project: &str, grants: bool) -> Graph {
        let mut graph = Graph {
            providers: model.providers.len(),
            ..Graph::default()
        };
        for agent in &model.agents {
            let state = if agent.retired {
                Some("retired".to_string())
            } else if agent.frozen {
                Some("frozen".to_string())
            } else {
                None
            };
            graph.node(format!("agent:{}", agent.name), NodeKind::Agent, state);
        }
        for (id, agent) in model.agents.iter().enumerate() {
            // Retired or frozen: what each provider enforces is gone, but
            // GitHub's: writ does not revoke a workflow's token or an App's
            // installation by the source (`writ revoke` suspends an App).
            let blocked = holds_nothing(model, id);
            let enforced = |provider: usize| model.providers[provider].kind != ProviderKind::Github;
            for workload in &agent.runs_on {
                let provider = &model.providers[workload.provider];
                let (node, kind, how) = workload_node(&provider.name, &workload.kind);
                let from = graph.node(node, kind, None);
                // A service account holds its own cluster's credentials.
                if kind == NodeKind::ServiceAccount {
                    graph.nodes[from].provider_id = Some(workload.provider);
                }
                let mut obtains = obtains(model, id, workload);
                let mut how = format!("{how}, {}", provider.address());
                if blocked.is_some() {
                    obtains.retain(|&p| !enforced(p));
                    if !obtains.is_empty() {
                        how.push_str(&format!("; only its GitHub access: {UNREVOKED}"));
                    }
                }
                let none = obtains.is_empty().then(|| {
                    blocked.clone().unwrap_or_else(|| {
                        format!(
                            "no provider where `{}` holds grants trusts this workload",
                            agent.name
                        )
                    })
                });
                graph.edge(Edge {
                    from,
                    to: id,
                    kind: EdgeKind::AuthenticatesAs,
                    how,
                    providers: addresses(model, &obtains),
                    obtains,
                    blocked: none,
                    span: Some(workload.span),
                    ..Edge::new()
                });
            }
            // `writ serve` issues the agent's credentials where its role
            // trusts the server's.
            for (provider_id, provider) in model.providers.iter().enumerate() {
                let ProviderSettings::Aws {
                    issuer: Some(issuer),
                    ..
                } = &provider.settings
                else {
                    continue;
                };
                if !present(model, id, provider_id) || agent.retired {
                    continue;
                }
                let from = graph.node(
                    format!("aws-issuer:{}", provider.name),
                    NodeKind::AwsIssuer,
                    None,
                );
                graph.edge(Edge {
                    from,
                    to: id,
                    kind: EdgeKind::AuthenticatesAs,
                    how: format!(
                        "writ serve issues its credentials as `{issuer}`, {}",
                        provider.address()
                    ),
                    providers: vec![provider.address()],
                    obtains: vec![provider_id],
                    blocked: blocked.clone(),
                    ..Edge::new()
                });
            }
            if let Some(parent) = agent.parent.filter(|&p| p < model.agents.len() && p != id) {
                let ceiling = model.agents[parent].delegates.as_ref();
                let how = match ceiling {
                    Some(c) => format!("delegation, max_depth {}, ttl {}", c.max_depth, c.ttl),
                    None => "delegation".to_string(),
                };
                let mints = mints(model, parent, id);
                let mut held: Vec<usize> = mints.iter().map(|(held, _)| *held).collect();
                held.dedup();
                let none = mints.is_empty().then(|| {
                    "the parent holds no credentials that mint the delegate's".to_string()
                });
                graph.edge(Edge {
                    from: parent,
                    to: id,
                    kind: EdgeKind::MayMintFor,
                    how,
                    providers: addresses(model, &held),
                    mints,
                    blocked: holds_nothing(model, parent).or(blocked.clone()).or(none),
                    span: agent.parent_span,
                    ..Edge::new()
                });
            }
            for (index, grant) in agent.grants.iter().enumerate().filter(|_| grants) {
                let unrevoked = blocked.is_some() && !enforced(grant.provider);
                let mut how = grant_how(grant);
                if unrevoked {
                    how.push_str(&format!("; {UNREVOKED}"));
                }
                for resource in &grant.resources {
                    let to = graph.resource_node(model, grant.provider, resource, &grant.placement);
                    let witness = match blocked {
                        None => witness(model, id, grant, resource),
                        Some(_) => None,
                    };
                    graph.edge(Edge {
                        from: id,
                        to,
                        kind: EdgeKind::MayDo,
                        how: how.clone(),
                        actions: grant.actions.clone(),
                        names: grant.resource_names.clone(),
                        conditions: grant
                            .conditions
                            .iter()
                            .map(|c| {
                                let values: Vec<String> =
                                    c.values.iter().map(|v| format!("{v:?}")).collect();
                                format!("{} {} {}", c.key, c.op.as_str(), values.join(", "))
                            })
                            .collect(),
                        via: grant.via.clone(),
                        blocked: if unrevoked { None } else { blocked.clone() },
                        witness,
                        span: Some(grant.span),
                        grant: Some((id, index)),
                        ..Edge::new()
                    });
                }
            }
        }
        // Minting a delegate's tokens is a grant too (a Role's rule on the
        // account's `serviceaccounts/token`, GCP's token creator on the
        // delegate's account): drawn, so that `--to` finds them.
        let minting = match grants {
            true => model.all_minting_grants(),
            false => Vec::new(),
        };
        for (id, minted) in minting.into_iter().enumerate() {
            for (delegate, grant) in minted {
                for resource in &grant.resources {
                    let to = graph.resource_node(model, grant.provider, resource, &grant.placement);
                    graph.edge(Edge {
                        from: id,
                        to,
                        kind: EdgeKind::MayDo,
                        how: format!(
                            "delegation: mints `{}`'s tokens",
                            model.agents[delegate].name
                        ),
                        actions: grant.actions.clone(),
                        names: grant.resource_names.clone(),
                        witness: witness(model, id, &grant, resource),
                        span: Some(grant.span),
                        ..Edge::new()
                    });
                }
            }
        }
        if grants {
            graph.app_installations(model);
        }
        graph.assumptions(model, project);
        graph
    }

    fn node(&mut self, id: String, kind: NodeKind, state: Option<String>) -> usize {
        if let Some(&index) = self.by_id.get(&id) {
            return index;
        }
        let index = self.nodes.len();
        self.by_id.insert(id.clone(), index);
        self.nodes.push(Node {
            id,
            kind,
            provider: None,
            state,
            provider_id: None,
            resource: None,
        });
        self.outgoing.push(Vec::new());
        self.incoming.push(Vec::new());
        index
    }

    fn edge(&mut self, edge: Edge) {
        let index = self.edges.len();
        self.outgoing[edge.from].push(index);
        self.incoming[edge.to].push(index);
        self.edges.push(edge);
    }

    /// The node of that id.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The node a user names: its id, or, for an agent, its bare name.
    pub fn named(&self, text: &str) -> Result<usize, String> {
        let found = self
            .find(text)
            .or_else(|| self.find(&format!("agent:{text}")))
            .or_else(|| {
                text.starts_with("github:")
                    .then(|| self.find(&text.to_ascii_lowercase()))
                    .flatten()
            });
        if let Some(found) = found {
            return Ok(found);
        }
        let ids = self.nodes.iter().filter(|n| n.kind != NodeKind::Resource);
        let closest = crate::suggest::closest(text, ids.clone().map(|n| n.id.as_str()));
        let mut message = format!("no workload or agent `{text}` in the graph");
        match closest {
            Some(closest) => message.push_str(&format!("; did you mean `{closest}`?")),
            None => {
                let some: Vec<&str> = ids.take(6).map(|n| n.id.as_str()).collect();
                if !some.is_empty() {
                    message.push_str(&format!(" (it has {})", some.join(", ")));
                }
            }
        }
        Err(message)
    }
}

impl Edge {
    fn new() -> Edge {
        Edge {
            from: 0,
            to: 0,
            kind: EdgeKind::MayDo,
            how: String::new(),
            actions: Vec::new(),
            names: Vec::new(),
            conditions: Vec::new(),
            via: Vec::new(),
            providers: Vec::new(),
            obtains: Vec::new(),
            mints: Vec::new(),
            blocked: None,
            witness: None,
            observed: false,
            span: None,
            grant: None,
        }
    }

    /// Does reach pass through this edge?
    pub fn open(&self) -> bool {
        self.blocked.is_none()
    }
}

fn addresses(model: &Model, providers: &[usize]) -> Vec<String> {
    providers
        .iter()
        .map(|&p| model.providers[p].address())
        .collect()
}

/// Does the agent have an identity in the provider (a role, a service
/// account, an installation's grants): grants there, or a workload?
fn present(model: &Model, agent: AgentId, provider: usize) -> bool {
    let agent = &model.agents[agent];
    agent.grants.iter().any(|g| g.provider == provider)
        || agent.runs_on.iter().any(|w| w.provider == provider)
}

/// The providers in which a workload obtains the agent's credentials, as
/// lowering trusts it: an AWS role trusts its AWS service and IAM user
/// (in that provider), a cluster's service account where the cluster has
/// an OIDC issuer (IRSA), and GitHub workflows; a GCP service account
/// trusts its workload identity subjects, a GKE cluster's service account
/// through its workload pool, and GitHub workflows; a cluster binds its
/// own service accounts; a GitHub organisation gives its grants to the
/// workflows and the App that run in it.
pub(crate) fn obtains(model: &Model, agent: AgentId, workload: &Workload) -> Vec<usize> {
    let source = &model.providers[workload.provider].settings;
    let mut out = Vec::new();
    for (id, provider) in model.providers.iter().enumerate() {
        if !present(model, agent, id) {
            continue;
        }
        let same = workload.provider == id;
        let trusted = match (&provider.settings, &workload.kind) {
            (ProviderSettings::Aws { .. }, WorkloadKind::AwsService { .. })
            | (ProviderSettings::Aws { .. }, WorkloadKind::AwsUser { .. }) => same,
            (ProviderSettings::Aws { .. }, WorkloadKind::KubernetesServiceAccount { .. }) => {
                matches!(
                    source,
                    ProviderSettings::Kubernetes {
                        oidc_issuer: Some(_),
                        ..
                    }
                )
            }
            (ProviderSettings::Gcp { .. }, WorkloadKind::GcpWorkloadIdentity { .. }) => same,
            (ProviderSettings::Gcp { .. }, WorkloadKind::KubernetesServiceAccount { .. }) => {
                matches!(
                    source,
                    ProviderSettings::Kubernetes {
                        workload_pool: Some(_),
                        ..
                    }
                )
            }
            (
                ProviderSettings::Aws { .. } | ProviderSettings::Gcp { .. },
                WorkloadKind::GithubActions { .. },
            ) => true,
            (
                ProviderSettings::Kubernetes { .. },
                WorkloadKind::KubernetesServiceAccount { .. },
            ) => same,
            (
                ProviderSettings::Github { .. },
                WorkloadKind::GithubActions { .. } | WorkloadKind::GithubApp { .. },
            ) => same,
            _ => false,
        };
        if trusted {
            out.push(id);
        }
    }
    out
}

/// How a parent obtains its delegate's credentials, as lowering allows it:
/// holding its Kubernetes credentials in a cluster where the delegate runs
/// as a service account, it creates that account's tokens (and with them
/// obtains all that account obtains); holding its role in an AWS provider
/// where both have one, it assumes the delegate's role (with a source
/// identity); holding its service account in a GCP provider where both
/// have one, it mints the delegate's tokens.
pub(crate) fn mints(model: &Model, parent: AgentId, child: AgentId) -> Vec<(usize, Vec<usize>)> {
    let mut out = Vec::new();
    let agent = &model.agents[child];
    // Lowering writes the parent's right to mint where the parent has a
    // service account of its own in the delegate's cluster.
    let has_account = |provider: usize| {
        model.agents[parent].runs_on.iter().any(|w| {
            w.provider == provider
                && matches!(w.kind, WorkloadKind::KubernetesServiceAccount { .. })
        })
    };
    for workload in &agent.runs_on {
        if matches!(workload.kind, WorkloadKind::KubernetesServiceAccount { .. })
            && has_account(workload.provider)
        {
            let obtained = obtains(model, child, workload);
            if !obtained.is_empty() {
                out.push((workload.provider, obtained));
            }
        }
    }
    for (id, provider) in model.providers.iter().enumerate() {
        let assumes = match provider.settings {
            ProviderSettings::Aws { .. } => true,
            // A frozen delegate's account is disabled and bound to nothing.
            ProviderSettings::Gcp { .. } => !agent.frozen,
            _ => false,
        };
        if assumes && present(model, parent, id) && present(model, child, id) {
            out.push((id, vec![id]));
        }
    }
    out.sort();
    out
}

/// Why an agent confers nothing, if it does not: retired, or frozen.
fn holds_nothing(model: &Model, agent: AgentId) -> Option<String> {
    let agent = &model.agents[agent];
    if agent.retired {
        return Some(match agent.expires {
            Some(date) => format!("`{}` expired on {date}", agent.name),
            None => format!("`{}` is retired", agent.name),
        });
    }
    agent
        .frozen
        .then(|| format!("`{}` is frozen (revoked)", agent.name))
}

/// A workload's node id, kind, and how it obtains the agent's credentials.
fn workload_node(provider: &str, kind: &WorkloadKind) -> (String, NodeKind, String) {
    match kind {
        WorkloadKind::KubernetesServiceAccount {
            namespace,
            service_account,
        } => (
            format!("k8s:{provider}/{namespace}/{service_account}"),
            NodeKind::ServiceAccount,
            "its service account's token".to_string(),
        ),
        WorkloadKind::GithubActions {
            repository,
            workflow,
            git_ref,
            environment,
        } => {
            let mut pins = Vec::new();
            if let Some(workflow) = workflow {
                pins.push(format!("workflow {workflow}"));
            }
            if let Some(git_ref) = git_ref {
                pins.push(format!("ref {git_ref}"));
            }
            if let Some(environment) = environment {
                pins.push(format!("environment {environment}"));
            }
            let how = if pins.is_empty() {
                "GitHub Actions OIDC, any workflow".to_string()
            } else {
                format!("GitHub Actions OIDC: {}", pins.join(", "))
            };
            // GitHub reads names without case.
            (
                format!("github:{}", repository.to_ascii_lowercase()),
                NodeKind::Repository,
                how,
            )
        }
        WorkloadKind::GithubApp { slug } => (
            format!("github-app:{slug}"),
            NodeKind::GithubApp,
            "installation token".to_string(),
        ),
        WorkloadKind::AwsService { service } => (
            format!("aws-service:{service}"),
            NodeKind::AwsService,
            "service principal".to_string(),
        ),
        WorkloadKind::AwsUser { user } => (
            format!("aws-user:{provider}/{user}"),
            NodeKind::AwsUser,
            "long-lived access key".to_string(),
        ),
        WorkloadKind::GcpWorkloadIdentity { pool, subject } => (
            format!("gcp-subject:{pool}/{subject}"),
            NodeKind::GcpSubject,
            "workload identity federation".to_string(),
        ),
    }
}

/// `aws.prod arn:…`, `kubernetes.prod configmaps in namespace billing`.
pub fn resource_label(provider: &str, resource: &str, placement: &Placement) -> String {
    match placement {
        Placement::None => format!("{provider} {resource}"),
        Placement::Namespace(namespace) => {
            format!("{provider} {resource} in namespace {namespace}")
        }
        Placement::Cluster => format!("{provider} {resource} in cluster"),
    }
}

/// A grant edge's words: its actions, named objects and conditions.
fn grant_how(grant: &Grant) -> String {
    let mut how = grant.actions.join(", ");
    if !grant.resource_names.is_empty() {
        how.push_str(&format!(" named {}", grant.resource_names.join(", ")));
    }
    for condition in &grant.conditions {
        how.push_str(&format!(
            " when {} {} …",
            condition.key,
            condition.op.as_str()
        ));
    }
    how
}

/// Requests a grant allows, to try: each action (a wildcard expanded from
/// AWS's catalogue, a few of its actions), on each resource pattern made
/// concrete.
pub(crate) fn candidate_actions(kind: ProviderKind, action: &str, resource: &str) -> Vec<String> {
    if !crate::pattern::has_wildcard(action) {
        return vec![action.to_string()];
    }
    match kind {
        // Those that act on such a resource first (`s3:GetObject` on a
        // bucket's objects, not `access-analyzer:…`).
        ProviderKind::Aws => {
            let expanded: Vec<String> = aws::catalogue()
                .expand(action)
                .into_iter()
                .map(|(service, action)| format!("{}:{}", service.prefix, action.name))
                .collect();
            let (acting, others): (Vec<String>, Vec<String>) = expanded
                .into_iter()
                .partition(|a| query::aws_action_acts_on(a, resource));
            acting
                .into_iter()
                .take(24)
                .chain(others.into_iter().take(8))
                .collect()
        }
        ProviderKind::Kubernetes => [
            "get", "list", "watch", "create", "update", "patch", "delete",
        ]
        .into_iter()
        .filter(|verb| crate::pattern::matches(action, verb))
        .map(str::to_string)
        .collect(),
        _ => vec![action.to_string()],
    }
}

/// Concrete instances of a resource pattern: each wildcard filled.
pub(crate) fn instances(pattern: &str) -> Vec<String> {
    if !crate::pattern::has_wildcard(pattern) {
        return vec![pattern.to_string()];
    }
    let mut out = Vec::new();
    for fill in ["writ-graph", "x", ""] {
        let text: String = pattern
            .chars()
            .map(|c| match c {
                '*' => fill.to_string(),
                '?' => "w".to_string(),
                c => c.to_string(),
            })
            .collect();
        if !out.contains(&text) {
            out.push(text);
        }
    }
    // `*` alone is also a request's resource as IAM writes it.
    if pattern == "*" {
        out.insert(0, "*".to_string());
    }
    out
}

/// The objects to ask about through a grant: each it names, or (`None`)
/// the resource as a whole when it names none.
pub(crate) fn grant_names(grant: &Grant) -> Vec<Option<&str>> {
    if grant.resource_names.is_empty() {
        return vec![None];
    }
    grant
        .resource_names
        .iter()
        .map(|n| Some(n.as_str()))
        .collect()
}

/// A request through `grant` on `resource` that the evaluator allows.
fn witness(model: &Model, agent: AgentId, grant: &Grant, resource: &str) -> Option<Witness> {
    let kind = model.providers[grant.provider].kind;
    let names = grant_names(grant);
    let resources = instances(resource);
    for action in grant
        .actions
        .iter()
        .flat_map(|a| candidate_actions(kind, a, resource))
    {
        for instance in &resources {
            for name in &names {
                let request = Request {
                    provider: grant.provider,
                    action: &action,
                    resource: instance,
                    placement: &grant.placement,
                    name: *name,
                    context: None,
                };
                if eval::evaluate(model, agent, &request).is_allowed() {
                    return Some(Witness {
                        action: action.clone(),
                        resource: instance.clone(),
                        namespace: match &grant.placement {
                            Placement::Namespace(namespace) => Some(namespace.clone()),
                            _ => None,
                        },
                        name: name.map(str::to_string),
                    });
                }
            }
        }
    }
    None
}

/// Why a retired or frozen agent's GitHub access stays.
const UNREVOKED: &str =
    "GitHub does not revoke it by the source; `writ revoke` suspends an App's installation";

impl Graph {
    /// A GitHub App's installation token holds the highest level of each
    /// permission its agents' grants give, on every repository of theirs
    /// (as lowering computes the installation's permissions): what an agent
    /// running as the App gets beyond its own grants is drawn from it.
    fn app_installations(&mut self, model: &Model) {
        for (id, agent) in model.agents.iter().enumerate() {
            for workload in &agent.runs_on {
                let WorkloadKind::GithubApp { slug } = &workload.kind else {
                    continue;
                };
                let provider = workload.provider;
                let sharing: Vec<usize> = model
                    .agents
                    .iter()
                    .enumerate()
                    .filter(|(_, other)| {
                        other.runs_on.iter().any(|w| {
                            w.provider == provider
                                && matches!(&w.kind, WorkloadKind::GithubApp { slug: s } if s == slug)
                        })
                    })
                    .map(|(index, _)| index)
                    .collect();
                let grants = || {
                    sharing.iter().flat_map(|&a| {
                        model.agents[a]
                            .grants
                            .iter()
                            .filter(|g| g.provider == provider)
                    })
                };
                let mut actions: Vec<&String> = grants().flat_map(|g| &g.actions).collect();
                actions.sort();
                actions.dedup();
                let mut repositories: Vec<&String> = grants().flat_map(|g| &g.resources).collect();
                repositories.sort();
                repositories.dedup();
                for repository in repositories {
                    // What the agent's own grants do not already allow.
                    let extra: Vec<String> = actions
                        .iter()
                        .filter(|action| {
                            !agent.grants.iter().any(|g| {
                                g.provider == provider
                                    && g.actions.contains(action)
                                    && g.resources.contains(repository)
                            })
                        })
                        .map(|a| a.to_string())
                        .collect();
                    if extra.is_empty() {
                        continue;
                    }
                    let to = self.resource_node(model, provider, repository, &Placement::None);
                    self.edge(Edge {
                        from: id,
                        to,
                        kind: EdgeKind::MayDo,
                        how: format!(
                            "the App `{slug}`'s installation token: every permission of the App's agents, on every repository of theirs"
                        ),
                        actions: extra,
                        span: Some(workload.span),
                        ..Edge::new()
                    });
                }
            }
        }
    }

    pub(crate) fn resource_node(
        &mut self,
        model: &Model,
        provider: usize,
        resource: &str,
        placement: &Placement,
    ) -> usize {
        let address = model.providers[provider].address();
        let label = resource_label(&address, resource, placement);
        let node = self.node(label, NodeKind::Resource, None);
        self.nodes[node].provider = Some(address);
        self.nodes[node].provider_id = Some(provider);
        self.nodes[node].resource = Some((resource.to_string(), placement.clone()));
        node
    }
}
