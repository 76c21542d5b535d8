//! The checked meaning of a project: providers, agents with their effective
//! grants, delegation ceilings, guardrails and tests. Nothing downstream of
//! the checker looks at the AST again.

use crate::facts::ProviderKind;
use crate::source::Span;
use crate::syntax::ast::ConditionOp;
use crate::values::{Date, Duration};

pub type ProviderId = usize;
pub type AgentId = usize;
pub type ScopeId = usize;

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub providers: Vec<Provider>,
    pub scopes: Vec<Scope>,
    pub agents: Vec<Agent>,
    pub guardrails: Vec<Guardrail>,
    pub tests: Vec<Test>,
}

impl Model {
    pub fn provider_id(&self, kind: ProviderKind, name: &str) -> Option<ProviderId> {
        self.providers
            .iter()
            .position(|p| p.kind == kind && p.name == name)
    }

    pub fn agent_id(&self, name: &str) -> Option<AgentId> {
        self.agents.iter().position(|a| a.name == name)
    }

    /// The agent's ancestors, nearest first (parent, grandparent, …).
    /// Stops at a cycle, which the checker has already reported.
    pub fn ancestors(&self, agent: AgentId) -> Vec<AgentId> {
        let mut chain = Vec::new();
        let mut current = self.agents[agent].parent;
        while let Some(id) = current {
            if id == agent || chain.contains(&id) {
                break;
            }
            chain.push(id);
            current = self.agents[id].parent;
        }
        chain
    }

    /// The grants an agent holds without writing them: for each delegate
    /// (not retired) that runs as a Kubernetes service account, `create` on
    /// `serviceaccounts/token` for exactly that account, in its namespace,
    /// and, in each GCP provider where both have a service account,
    /// `roles/iam.serviceAccountTokenCreator` on the delegate's, so that
    /// the agent can mint the delegate's short-lived tokens. A
    /// frozen or retired agent holds none. Lowering writes them into the
    /// agent's Roles; the evaluator and the guardrails read them from here,
    /// so that what writ says is what the cluster allows.
    pub fn minting_grants(&self, agent: AgentId) -> Vec<(AgentId, Grant)> {
        let mut grants = Vec::new();
        for (child_id, child) in self.agents.iter().enumerate() {
            if child.parent == Some(agent) {
                self.mints_for(agent, child_id, &mut grants);
            }
        }
        grants
    }

    /// [`Model::minting_grants`] of every agent at once, indexed by agent.
    pub fn all_minting_grants(&self) -> Vec<Vec<(AgentId, Grant)>> {
        let mut all = vec![Vec::new(); self.agents.len()];
        for (child_id, child) in self.agents.iter().enumerate() {
            if let Some(parent) = child.parent.filter(|p| *p < self.agents.len()) {
                self.mints_for(parent, child_id, &mut all[parent]);
            }
        }
        all
    }

    fn mints_for(&self, parent: AgentId, child_id: AgentId, grants: &mut Vec<(AgentId, Grant)>) {
        let (holder, child) = (&self.agents[parent], &self.agents[child_id]);
        if holder.frozen || holder.retired || child.retired || child_id == parent {
            return;
        }
        // GCP: the parent's service account may mint the tokens of the
        // delegate's (`roles/iam.serviceAccountTokenCreator` on it), in
        // each GCP provider where both have one.
        for (provider_id, provider) in self.providers.iter().enumerate() {
            let ProviderSettings::Gcp { project } = &provider.settings else {
                continue;
            };
            let present = |agent: &Agent| {
                agent.grants.iter().any(|g| g.provider == provider_id)
                    || agent.runs_on.iter().any(|w| w.provider == provider_id)
            };
            // A frozen delegate's account is disabled and bound to nothing.
            if present(holder) && present(child) && !child.frozen {
                let email = format!(
                    "{}@{project}.iam.gserviceaccount.com",
                    crate::lower::gcp::account_id(&child.name)
                );
                grants.push((
                    child_id,
                    Grant {
                        provider: provider_id,
                        actions: vec![crate::lower::gcp::TOKEN_CREATOR.to_string()],
                        resources: vec![format!("projects/{project}/serviceAccounts/{email}")],
                        placement: Placement::None,
                        resource_names: Vec::new(),
                        conditions: Vec::new(),
                        waivers: Vec::new(),
                        keep: None,
                        rate: None,
                        docs: String::new(),
                        span: child.parent_span.unwrap_or(child.span),
                        via: Vec::new(),
                    },
                ));
            }
        }
        for workload in &child.runs_on {
            let WorkloadKind::KubernetesServiceAccount {
                namespace,
                service_account,
            } = &workload.kind
            else {
                continue;
            };
            grants.push((
                child_id,
                Grant {
                    provider: workload.provider,
                    actions: vec!["create".to_string()],
                    resources: vec!["serviceaccounts/token".to_string()],
                    placement: Placement::Namespace(namespace.clone()),
                    resource_names: vec![service_account.clone()],
                    conditions: Vec::new(),
                    waivers: Vec::new(),
                    keep: None,
                    rate: None,
                    docs: String::new(),
                    span: workload.span,
                    via: Vec::new(),
                },
            ));
        }
    }
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub kind: ProviderKind,
    pub name: String,
    pub docs: String,
    pub span: Span,
    pub settings: ProviderSettings,
}

impl Provider {
    /// `aws.prod`
    pub fn address(&self) -> String {
        format!("{}.{}", self.kind, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSettings {
    Aws {
        account: String,
        partition: String,
        /// The role `writ serve` runs as (`issuer = "arn:…:role/…"`):
        /// every agent's role here trusts it to assume the role with the
        /// agent's name as the session's source identity, so that the
        /// server can issue the agent's credentials (docs/serve.md).
        issuer: Option<String>,
    },
    Gcp {
        project: String,
    },
    Kubernetes {
        cluster: String,
        oidc_issuer: Option<String>,
        /// GKE's workload identity pool (`PROJECT.svc.id.goog`): GCP
        /// service accounts trust the cluster's service accounts through it.
        workload_pool: Option<String>,
    },
    Github {
        org: String,
    },
}

#[derive(Debug, Clone)]
pub struct Scope {
    pub name: String,
    pub docs: String,
    pub span: Span,
    pub includes: Vec<ScopeId>,
    /// Grants written in the scope itself.
    pub grants: Vec<Grant>,
}

/// Where a Kubernetes grant applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Placement {
    /// Not a Kubernetes grant.
    None,
    Namespace(String),
    Cluster,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Condition {
    pub key: String,
    pub op: ConditionOp,
    pub values: Vec<String>,
}

/// A lint accepted for one grant, with the reason given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    pub lint: crate::diagnostic::Code,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub provider: ProviderId,
    /// As written: AWS actions keep the user's case; comparisons fold it.
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub placement: Placement,
    /// Kubernetes `named`: empty means every name.
    pub resource_names: Vec<String>,
    pub conditions: Vec<Condition>,
    pub waivers: Vec<Waiver>,
    /// `@keep("reason")`: `writ tighten` leaves the grant as it is.
    pub keep: Option<String>,
    /// `@rate(100/min)`: how often `writ serve` decides requests this
    /// grant allows, at most.
    pub rate: Option<Rate>,
    pub docs: String,
    /// Where the grant is written.
    pub span: Span,
    /// The scopes it came through, outermost first (empty: written inline).
    pub via: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    pub docs: String,
    pub span: Span,
    pub owner: String,
    pub ttl: Duration,
    pub ttl_span: Span,
    pub expires: Option<Date>,
    /// `expires` has passed: the agent is kept in the model, with no access.
    pub retired: bool,
    /// The ancestor whose `expires` ends this delegate before its own
    /// would (or at all): `expires` then holds that ancestor's date. A
    /// delegate lives only while the chain above it does.
    pub expires_with: Option<AgentId>,
    pub parent: Option<AgentId>,
    pub parent_span: Option<Span>,
    pub frozen: bool,
    /// `rate = 600/min`: the most requests it may make, enforced where
    /// its requests are decided (`writ serve`).
    pub rate: Option<Rate>,
    /// `budget = 1000`: the most requests one credential `writ serve`
    /// issues for it may make (decisions asked with its session, and
    /// delegates' credentials issued on it).
    pub budget: Option<Budget>,
    pub runs_on: Vec<Workload>,
    /// Existing objects it takes over (`adopts`), one per provider.
    pub adopts: Vec<Adoption>,
    /// Scopes named by `can`, directly.
    pub scopes: Vec<ScopeId>,
    /// Inline grants and those of its scopes, transitively.
    pub grants: Vec<Grant>,
    pub delegates: Option<Ceiling>,
}

/// `adopts aws.prod role "/ci/deployer"`, `adopts kubernetes.prod
/// service_account "ci/deployer"`: an object made outside writ that becomes
/// the agent's, where it is (a role keeps its path), instead of a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    pub provider: ProviderId,
    pub kind: AdoptionKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptionKind {
    /// An IAM role: its path (`/ci/`); its name is the agent's.
    AwsRole { path: String },
    /// A service account the agent runs as (`runs_on`).
    KubernetesServiceAccount { namespace: String, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub provider: ProviderId,
    pub kind: WorkloadKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadKind {
    KubernetesServiceAccount {
        namespace: String,
        service_account: String,
    },
    GithubActions {
        repository: String,
        workflow: Option<String>,
        git_ref: Option<String>,
        environment: Option<String>,
    },
    /// The installation of a GitHub App in the provider's organisation
    /// (`runs_on github.P app "slug"`): the agent acts with its tokens.
    GithubApp {
        slug: String,
    },
    AwsService {
        service: String,
    },
    /// An IAM user whose long-lived access keys the agent signs with (its
    /// name, after an optional path): its role trusts the user, and
    /// `writ revoke` disables the user's keys.
    AwsUser {
        user: String,
    },
    GcpWorkloadIdentity {
        pool: String,
        subject: String,
    },
}

/// What an agent's delegates may at most hold.
#[derive(Debug, Clone)]
pub struct Ceiling {
    /// The highest rate any delegate below may have (default: the
    /// agent's own).
    pub rate: Option<Rate>,
    /// The largest budget any delegate below may have (default: the
    /// agent's own).
    pub budget: Option<Budget>,
    pub max_depth: u32,
    pub max_depth_span: Option<Span>,
    pub ttl: Duration,
    pub ttl_span: Option<Span>,
    pub grants: Vec<Grant>,
    pub span: Span,
}

/// A budget of requests a credential may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub count: u64,
    pub span: Span,
}

/// A rate of requests: `count` a `per_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    pub per_seconds: u64,
    pub span: Span,
}

impl Rate {
    /// `600/min` from its text; why not, otherwise.
    pub fn parse(text: &str, span: Span) -> Result<Rate, String> {
        let (count, period) = text
            .split_once('/')
            .ok_or_else(|| "a rate is written `COUNT/s`, `/min` or `/h`".to_string())?;
        let count: u64 = count
            .parse()
            .map_err(|_| format!("`{count}` is not a whole number"))?;
        if count == 0 {
            return Err("a rate of 0 allows nothing: to stop an agent, freeze it".to_string());
        }
        let per_seconds = match period {
            "s" => 1,
            "min" => 60,
            "h" => 3600,
            other => return Err(format!("`/{other}` is no period: `/s`, `/min` or `/h`")),
        };
        Ok(Rate {
            count,
            per_seconds,
            span,
        })
    }

    /// Is it more than `other` allows: a faster pace, or a larger burst
    /// (a bucket holds `count` requests at once)?
    pub fn exceeds(&self, other: &Rate) -> bool {
        self.count > other.count
            || u128::from(self.count) * u128::from(other.per_seconds)
                > u128::from(other.count) * u128::from(self.per_seconds)
    }

    /// As written: `600/min`.
    pub fn text(&self) -> String {
        let period = match self.per_seconds {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        format!("{}/{period}", self.count)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSelector {
    One(ProviderId),
    Kind(ProviderKind),
}

impl ProviderSelector {
    pub fn selects(&self, model: &Model, provider: ProviderId) -> bool {
        match self {
            ProviderSelector::One(id) => *id == provider,
            ProviderSelector::Kind(kind) => model.providers[provider].kind == *kind,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Deny {
    pub providers: ProviderSelector,
    pub kind: ProviderKind,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub placement: Placement,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Guardrail {
    pub name: String,
    pub docs: String,
    pub span: Span,
    pub denies: Vec<Deny>,
    pub max_ttl: Option<(Duration, Span)>,
    pub require_expires: Option<Span>,
}

#[derive(Debug, Clone)]
pub struct Test {
    pub name: String,
    pub span: Span,
    pub expectations: Vec<Expectation>,
}

#[derive(Debug, Clone)]
pub struct Expectation {
    pub agent: AgentId,
    pub allowed: bool,
    pub provider: ProviderId,
    pub action: String,
    pub resource: String,
    pub placement: Placement,
    /// Kubernetes: the one object asked about (`named "x"`); `None` asks
    /// about every object of the resource.
    pub name: Option<String>,
    pub span: Span,
}
