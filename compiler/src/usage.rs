//! What agents actually did, held against what the source grants them:
//! each recorded request (from CloudTrail, a cluster's audit log) is put
//! to the evaluator, and counted under the grant that allows it, or as
//! access the source does not grant (allowed live, denied by the source),
//! or as an attempt the provider denied.
//!
//! Pure: the binary reads the logs and gives each request here, one at a
//! time, as it reads them ([`Tally::add`]); nothing is kept per request
//! but counts, the last time, and the distinct actions and resources.

use crate::eval::{self, Decision, Request};
use crate::facts::ProviderKind;
use crate::model::{AgentId, Model, Placement, ProviderId};
use crate::source::Span;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One request an agent made, as a log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub agent: AgentId,
    pub provider: ProviderId,
    /// As the provider's grants spell it: `s3:GetObject`, `get`.
    pub action: String,
    /// The ARN, or the Kubernetes resource (`secrets`, `pods/log`,
    /// `deployments.apps`); `None` when the log does not say.
    pub resource: Option<String>,
    pub placement: Placement,
    /// A Kubernetes object's name.
    pub name: Option<String>,
    /// Seconds since 1970, UTC.
    pub time: i64,
    /// The provider refused it.
    pub denied: bool,
    /// A data event (CloudTrail records those only when a trail is told
    /// to; an audit log records every request): its service's data-plane
    /// grants can be judged.
    pub data: bool,
}

/// Counts, per distinct thing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub uses: u64,
    /// When last used, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    #[serde(skip)]
    last_time: i64,
}

impl Count {
    fn add(&mut self, time: i64) {
        self.uses += 1;
        if self.uses == 1 || time > self.last_time {
            self.last_time = time;
            self.last = Some(rfc3339(time));
        }
    }
}

/// The report: per agent, each grant's use, what was used beyond the
/// grants, and what was denied; and what could not be put to an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub agents: Vec<AgentUse>,
    /// Requests read that were not put to an agent of the project, by why.
    pub skipped: BTreeMap<String, u64>,
    /// Events whose action writ could not name, by `source:event`.
    pub unmapped: BTreeMap<String, u64>,
    /// The providers the logs held requests of in the window: a grant
    /// elsewhere is not known to be unused.
    pub providers: Vec<String>,
    /// For each of them, what the logs cover: the first and last
    /// request's time in the window, and the services of data events.
    pub spans: BTreeMap<String, Coverage>,
    /// The window's start, RFC 3339.
    #[serde(skip)]
    pub since: String,
    /// The window's start, in seconds since 1970.
    #[serde(skip)]
    pub start: i64,
}

/// What the logs of a provider cover: the time they span (RFC 3339), and
/// the services they hold data events of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    pub first: String,
    pub last: String,
    /// The services (IAM prefixes) of the data events among them, or of
    /// every request (an audit log records all).
    pub data_events: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentUse {
    pub agent: String,
    pub grants: Vec<GrantUse>,
    /// Allowed by the provider, not by the source: access the agent holds
    /// outside its grants, and used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub beyond: Vec<Attempt>,
    /// Refused by the provider.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<Attempt>,
    /// Its delegates' credentials it obtained (allowed by its `delegates`,
    /// not by a grant).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delegation: Vec<Attempt>,
    /// The services of its events writ could not name (`lambda`): a grant
    /// of theirs is not known to be unused.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub unmapped_services: BTreeSet<String>,
    /// What its providers record of its identity's use, without counts
    /// (IAM's last-accessed data for its role), one per provider read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub last_accessed: Vec<LastAccessed>,
}

/// What a provider records of an identity's use: IAM's last-accessed data
/// (the access advisor) for an agent's role. Each service the role's
/// permission policies allow, with its last attempt, allowed or denied, in
/// the tracking period (400 days); and, for the services IAM tracks
/// actions of, each tracked action's last attempt. No counts, no
/// resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LastAccessed {
    /// The provider's address (`aws.prod`).
    pub provider: String,
    /// The role's ARN.
    pub role: String,
    /// When the provider finished the report (seconds since 1970).
    #[serde(serialize_with = "time")]
    pub generated: i64,
    pub services: Vec<ServiceAccess>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceAccess {
    /// The service's prefix in IAM actions (`s3`).
    pub service: String,
    /// The last attempt on any of its actions; `None`: none in the
    /// tracking period.
    #[serde(serialize_with = "maybe_time")]
    pub last: Option<i64>,
    /// Its tracked actions (`s3:CreateBucket`), each with its last
    /// attempt; `None` when the provider tracks no action of the service
    /// (then only the service's last attempt is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<TrackedAction>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrackedAction {
    pub action: String,
    #[serde(serialize_with = "maybe_time")]
    pub last: Option<i64>,
}

fn time<S: serde::Serializer>(time: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*time))
}

fn maybe_time<S: serde::Serializer>(time: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_str(&rfc3339(*time)),
        None => serializer.serialize_none(),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantUse {
    /// The grant as written: `aws.prod allow s3:GetObject on "…"`.
    pub grant: String,
    /// The scopes it came through, outermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    #[serde(flatten)]
    pub count: Count,
    /// Each action used under it, with its count.
    pub actions: BTreeMap<String, Count>,
    /// The resources used under it (as the log names them; the first
    /// [`KEPT`]).
    pub resources: BTreeSet<String>,
    /// Uses of resources past those listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub unlisted: u64,
    /// Uses whose record named no resource.
    #[serde(skip_serializing_if = "is_zero")]
    pub unnamed: u64,
    /// Actions it allows that the provider refused the agent (an access
    /// not applied yet, or held back outside the source): wanted, so not
    /// unneeded.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub denied_actions: BTreeSet<String>,
    /// Actions it allows whose last attempt in the window the provider
    /// records (IAM's last-accessed data), allowed or denied, with when:
    /// wanted, so not unneeded.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attempted: BTreeMap<String, String>,
    /// Where the grant is written (`FILE:LINE`, set by the caller, which
    /// has the files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(skip)]
    pub span: Option<Span>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub provider: String,
    pub action: String,
    pub resource: String,
    #[serde(flatten)]
    pub count: Count,
}

/// A grant's use: in all, by action, and the resources (the first
/// [`KEPT`], and how many uses were of others).
#[derive(Debug, Clone, Default)]
struct Used {
    count: Count,
    actions: BTreeMap<String, Count>,
    resources: BTreeSet<String>,
    unlisted: u64,
    unnamed: u64,
    /// Actions it would have allowed in requests the provider refused.
    tried: BTreeSet<String>,
}

/// Requests outside the grants, by (agent, provider, action, resource).
type Attempts = BTreeMap<(AgentId, ProviderId, String, String), Count>;

/// How many distinct resources are kept per grant, and distinct attempts
/// per agent and kind: the rest are counted together, so that memory does
/// not grow with the logs.
pub const KEPT: usize = 100;

/// The resource of the attempts counted together past [`KEPT`].
pub const OTHERS: &str = "(other resources)";

/// What allows a request the provider allowed.
enum Decided {
    Grants(Vec<usize>),
    Mints,
    Nothing,
}

/// The running totals, request by request.
pub struct Tally<'m> {
    model: &'m Model,
    since: i64,
    grants: HashMap<(AgentId, usize), Used>,
    beyond: Attempts,
    denied: Attempts,
    delegation: Attempts,
    skipped: BTreeMap<String, u64>,
    unmapped: BTreeMap<String, u64>,
    providers: BTreeMap<ProviderId, (i64, i64, BTreeSet<String>)>,
    unmapped_services: BTreeSet<(AgentId, String)>,
    last_accessed: BTreeMap<(AgentId, ProviderId), LastAccessed>,
    project: String,
    records: u64,
}

impl<'m> Tally<'m> {
    /// Requests before `since` (seconds since 1970) are left out.
    pub fn new(model: &'m Model, project: &str, since: i64) -> Tally<'m> {
        Tally {
            model,
            since,
            grants: HashMap::new(),
            beyond: BTreeMap::new(),
            denied: BTreeMap::new(),
            delegation: BTreeMap::new(),
            skipped: BTreeMap::new(),
            unmapped: BTreeMap::new(),
            providers: BTreeMap::new(),
            unmapped_services: BTreeSet::new(),
            last_accessed: BTreeMap::new(),
            project: project.to_string(),
            records: 0,
        }
    }

    /// How many records were given (counted, skipped or unmapped).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// A request read that is not an agent's, or not usable, and why.
    pub fn skip(&mut self, why: &str) {
        self.records += 1;
        *self.skipped.entry(why.to_string()).or_default() += 1;
    }

    /// An agent's event whose action writ cannot name, in a service.
    pub fn unmapped(&mut self, agent: AgentId, service: &str, event: &str) {
        self.records += 1;
        *self.unmapped.entry(event.to_string()).or_default() += 1;
        self.unmapped_services.insert((agent, service.to_string()));
    }

    /// What the provider records of an agent's role's use (IAM's
    /// last-accessed data), read for one provider.
    pub fn last_accessed(&mut self, agent: AgentId, provider: ProviderId, access: LastAccessed) {
        self.last_accessed.insert((agent, provider), access);
    }

    pub fn add(&mut self, request: &Use) {
        if request.time < self.since {
            self.skip("before the window");
            return;
        }
        self.records += 1;
        let span = self.providers.entry(request.provider).or_insert((
            request.time,
            request.time,
            BTreeSet::new(),
        ));
        span.0 = span.0.min(request.time);
        span.1 = span.1.max(request.time);
        if request.data {
            let service = request.action.split(':').next().unwrap_or_default();
            if !span.2.contains(service) {
                span.2.insert(service.to_string());
            }
        }
        // The resource as shown: where a Kubernetes request was, and the
        // object it named.
        let shown = request.resource.as_ref().map(|r| {
            let mut shown = r.clone();
            match &request.placement {
                Placement::Namespace(namespace) => {
                    shown.push_str(" in namespace ");
                    shown.push_str(namespace);
                }
                Placement::Cluster => shown.push_str(" in cluster"),
                Placement::None => {}
            }
            if let Some(name) = &request.name {
                shown.push_str(" named ");
                shown.push_str(name);
            }
            shown
        });
        let decided = if request.denied {
            // The grants of the source it would have used: what was
            // wanted, and so not unneeded.
            if let Decided::Grants(grants) = self.deciding_grant(request) {
                for grant in grants {
                    let entry = self.grants.entry((request.agent, grant)).or_default();
                    entry.tried.insert(request.action.clone());
                }
            }
            None
        } else {
            Some(self.deciding_grant(request))
        };
        if let Some(Decided::Grants(grants)) = decided {
            for grant in grants {
                self.credit(request, grant, shown.clone());
            }
            return;
        }
        let map = match decided {
            None => &mut self.denied,
            Some(Decided::Mints) => &mut self.delegation,
            _ => &mut self.beyond,
        };
        let resource = shown.unwrap_or_else(|| "*".to_string());
        let provider = request.provider;
        let mut key = (request.agent, provider, request.action.clone(), resource);
        // The first ones only, by agent; the rest together.
        if !map.contains_key(&key)
            && map
                .range((request.agent, 0, String::new(), String::new())..)
                .take_while(|((agent, ..), _)| *agent == request.agent)
                .count()
                >= KEPT
        {
            key.3 = OTHERS.to_string();
        }
        map.entry(key).or_default().add(request.time);
    }

    /// Counts a request under a grant.
    fn credit(&mut self, request: &Use, grant: usize, shown: Option<String>) {
        {
            let entry = self.grants.entry((request.agent, grant)).or_default();
            entry.count.add(request.time);
            match entry.actions.get_mut(&request.action) {
                Some(count) => count.add(request.time),
                None => {
                    let mut count = Count::default();
                    count.add(request.time);
                    entry.actions.insert(request.action.clone(), count);
                }
            }
            if let Some(resource) = shown {
                // The first ones only: memory does not grow with the logs.
                if entry.resources.len() < KEPT || entry.resources.contains(&resource) {
                    entry.resources.insert(resource);
                } else {
                    entry.unlisted += 1;
                }
            } else {
                entry.unnamed += 1;
            }
        }
    }

    /// The grants of the agent that allow the request (every one: the
    /// first that allows it is not the only one that would); for a
    /// request whose log names no resource, every grant whose actions hold
    /// it (any of them may be the one used).
    fn deciding_grant(&self, request: &Use) -> Decided {
        let agent = &self.model.agents[request.agent];
        let kind = self.model.providers[request.provider].kind;
        let Some(resource) = &request.resource else {
            let grants: Vec<usize> = agent
                .grants
                .iter()
                .enumerate()
                .filter(|(_, g)| {
                    g.provider == request.provider
                        && g.actions
                            .iter()
                            .any(|a| crate::access::action_matches(kind, a, &request.action))
                })
                .map(|(index, _)| index)
                .collect();
            return match grants.is_empty() {
                true => Decided::Nothing,
                false => Decided::Grants(grants),
            };
        };
        let asked = Request {
            provider: request.provider,
            action: &request.action,
            resource,
            placement: &request.placement,
            name: request.name.as_deref(),
            context: None,
        };
        match eval::evaluate(self.model, request.agent, &asked) {
            Decision::Allowed { .. } => Decided::Grants(
                agent
                    .grants
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| eval::grant_allows(self.model, g, &asked))
                    .map(|(index, _)| index)
                    .collect(),
            ),
            // Minting a delegate's tokens: part of delegating, not a grant.
            Decision::Mints { .. } => Decided::Mints,
            // In AWS, a parent assumes its delegate's role by the role's
            // trust, not by a grant.
            Decision::Denied(_)
                if kind == ProviderKind::Aws && self.assumes_delegate(request, resource) =>
            {
                Decided::Mints
            }
            Decision::Denied(_) => Decided::Nothing,
        }
    }

    /// Is the request the agent assuming the role of one of its delegates?
    fn assumes_delegate(&self, request: &Use, resource: &str) -> bool {
        request.action.starts_with("sts:AssumeRole")
            && agent_of_role(self.model, &self.project, resource)
                .is_some_and(|child| self.model.agents[child].parent == Some(request.agent))
    }

    /// The report, agents in the source's order; every grant listed, used
    /// or not.
    pub fn report(self) -> Report {
        let mut agents = Vec::new();
        for (id, agent) in self.model.agents.iter().enumerate() {
            let grants = agent
                .grants
                .iter()
                .enumerate()
                .map(|(index, grant)| {
                    let used = self.grants.get(&(id, index)).cloned().unwrap_or_default();
                    let attempted = self
                        .last_accessed
                        .get(&(id, grant.provider))
                        .map(|access| attempted(access, grant, self.since))
                        .unwrap_or_default();
                    GrantUse {
                        grant: grant_words(self.model, grant),
                        via: grant.via.clone(),
                        count: used.count,
                        actions: used.actions,
                        resources: used.resources,
                        unlisted: used.unlisted,
                        unnamed: used.unnamed,
                        denied_actions: used.tried,
                        attempted,
                        at: None,
                        span: Some(grant.span),
                    }
                })
                .collect();
            let attempts = |map: &Attempts| {
                map.range((id, 0, String::new(), String::new())..)
                    .take_while(|((agent, ..), _)| *agent == id)
                    .map(|((_, provider, action, resource), count)| Attempt {
                        provider: self.model.providers[*provider].address(),
                        action: action.clone(),
                        resource: resource.clone(),
                        count: count.clone(),
                    })
                    .collect::<Vec<_>>()
            };
            agents.push(AgentUse {
                agent: agent.name.clone(),
                grants,
                beyond: attempts(&self.beyond),
                denied: attempts(&self.denied),
                delegation: attempts(&self.delegation),
                unmapped_services: self
                    .unmapped_services
                    .range((id, String::new())..)
                    .take_while(|(agent, _)| *agent == id)
                    .map(|(_, service)| service.clone())
                    .collect(),
                last_accessed: self
                    .last_accessed
                    .range((id, 0)..=(id, ProviderId::MAX))
                    .map(|(_, access)| access.clone())
                    .collect(),
            });
        }
        Report {
            agents,
            skipped: self.skipped,
            unmapped: self.unmapped,
            providers: self
                .providers
                .keys()
                .map(|&p| self.model.providers[p].address())
                .collect(),
            spans: self
                .providers
                .iter()
                .map(|(&p, (first, last, data))| {
                    (
                        self.model.providers[p].address(),
                        Coverage {
                            first: rfc3339(*first),
                            last: rfc3339(*last),
                            data_events: data.clone(),
                        },
                    )
                })
                .collect(),
            since: rfc3339(self.since),
            start: self.since,
        }
    }
}

/// A grant as the source writes it, on one line.
pub fn grant_words(model: &Model, grant: &crate::model::Grant) -> String {
    let provider = model.providers[grant.provider].address();
    let resources: Vec<String> = grant.resources.iter().map(|r| format!("\"{r}\"")).collect();
    let mut words = format!(
        "{provider} allow {} on {}",
        grant.actions.join(", "),
        resources.join(", ")
    );
    if !grant.resource_names.is_empty() {
        let names: Vec<String> = grant
            .resource_names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect();
        words.push_str(&format!(" named {}", names.join(", ")));
    }
    match &grant.placement {
        Placement::Namespace(namespace) => {
            words.push_str(&format!(" in namespace \"{namespace}\""))
        }
        Placement::Cluster => words.push_str(" in cluster"),
        Placement::None => {}
    }
    words
}

/// Seconds since 1970 as RFC 3339, UTC, to the second.
pub fn rfc3339(time: i64) -> String {
    jiff::Timestamp::from_second(time)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The agent whose role an ARN names (`arn:aws:iam::…:role/writ/PROJECT/AGENT`,
/// as lowering names roles, or the path and name of a role it adopts), if
/// it is one of the project's.
pub fn agent_of_role(model: &Model, project: &str, arn: &str) -> Option<AgentId> {
    let path = crate::ownership::aws::path(project);
    let account = arn.split(':').nth(4)?;
    let role = arn.split_once(":role")?.1;
    let (at, name) = role.rsplit_once('/')?;
    let at = format!("{at}/");
    // The AWS providers of that account.
    let here = |provider: usize| matches!(&model.providers[provider].settings, crate::model::ProviderSettings::Aws { account: a, .. } if a == account);
    if !(0..model.providers.len()).any(here) {
        return None;
    }
    model.agents.iter().position(|a| {
        let adopted_here = a.adopts.iter().find_map(|adoption| match &adoption.kind {
            crate::model::AdoptionKind::AwsRole { path } if here(adoption.provider) => Some(path),
            _ => None,
        });
        a.name == name
            && match adopted_here {
                Some(adopted) => *adopted == at,
                None => at == path,
            }
    })
}

/// The IAM role lowering gives each agent, with its provider and ARN.
pub fn agent_roles(
    model: &Model,
    desired: &crate::lower::Desired,
) -> Vec<(AgentId, ProviderId, String)> {
    desired
        .resources
        .iter()
        .filter(|r| r.kind == crate::resource::ResourceKind::AwsRole)
        .filter_map(|role| {
            let agent = model
                .agents
                .iter()
                .position(|a| role.agent.as_deref() == Some(a.name.as_str()))?;
            let provider = model
                .providers
                .iter()
                .position(|p| p.address() == role.provider)?;
            let crate::model::ProviderSettings::Aws {
                account, partition, ..
            } = &model.providers[provider].settings
            else {
                return None;
            };
            Some((
                agent,
                provider,
                format!(
                    "arn:{partition}:iam::{account}:role{}{}",
                    role.string("path").unwrap_or("/"),
                    role.string("name")?
                ),
            ))
        })
        .collect()
}

/// The AWS provider whose account is `account`.
pub fn aws_provider(model: &Model, account: &str) -> Option<ProviderId> {
    model.providers.iter().position(|p| {
        p.kind == ProviderKind::Aws
            && matches!(&p.settings, crate::model::ProviderSettings::Aws { account: a, .. } if a == account)
    })
}

/// The agents that run as a Kubernetes service account, with the cluster
/// (provider) each runs there.
pub fn agents_of_account(model: &Model, namespace: &str, name: &str) -> Vec<(AgentId, ProviderId)> {
    let mut found = Vec::new();
    for (id, agent) in model.agents.iter().enumerate() {
        for workload in &agent.runs_on {
            if let crate::model::WorkloadKind::KubernetesServiceAccount {
                namespace: ns,
                service_account,
            } = &workload.kind
            {
                if ns == namespace && service_account == name {
                    found.push((id, workload.provider));
                }
            }
        }
    }
    found
}

/// `writ::unused_grant`: each grant, as written, that no agent holding it
/// used in the window, in a provider the logs cover (a grant of a scope is
/// used when any agent that holds it through the scope used it).
pub fn unused_grants(model: &Model, report: &Report) -> Vec<crate::diagnostic::Diagnostic> {
    use crate::diagnostic::{Code, Diagnostic, Label};
    // By where it is written: the span, its agents, and whether used or
    // not known to be unused.
    // And whether IAM's last-accessed data was read for one of them.
    type Holders<'a> = (Span, Vec<&'a str>, bool, ProviderId, bool);
    let mut written: BTreeMap<(u32, u32, u32), Holders> = BTreeMap::new();
    for (agent, used) in model.agents.iter().zip(&report.agents) {
        // A retired agent's access is gone (`writ::expired` says so); a
        // frozen one's is held back, not unneeded.
        if agent.retired || agent.frozen {
            continue;
        }
        for (grant, use_) in agent.grants.iter().zip(&used.grants) {
            let address = model.providers[grant.provider].address();
            let advised = used.last_accessed.iter().any(|a| a.provider == address);
            if !report.spans.contains_key(&address) && !advised {
                continue;
            }
            let key = (grant.span.file.0, grant.span.start, grant.span.end);
            let entry = written
                .entry(key)
                .or_insert_with(|| (grant.span, Vec::new(), false, grant.provider, false));
            entry.1.push(&agent.name);
            entry.2 |= use_.count.uses > 0
                || !use_.denied_actions.is_empty()
                || !use_.attempted.is_empty()
                || !judgeable(model, report, used, grant);
            entry.4 |= advised;
        }
    }
    written
        .into_values()
        .filter(|(_, _, used, _, _)| !used)
        .map(|(span, agents, _, provider, advised)| {
            let who: Vec<String> = agents.iter().map(|a| format!("`{a}`")).collect();
            let address = model.providers[provider].address();
            let day = |time: &str| time.get(..10).unwrap_or(time).to_string();
            let mut evidence = Vec::new();
            if let Some(span) = report.spans.get(&address) {
                evidence.push(format!(
                    "in the logs of `{address}` from {} to {}",
                    day(&span.first),
                    day(&span.last)
                ));
            }
            if advised {
                evidence.push(format!(
                    "in IAM's last-accessed data of `{address}` since {}",
                    day(&report.since)
                ));
            }
            Diagnostic::new(
                Code::UnusedGrant,
                format!(
                    "no agent used this grant {} (held by {})",
                    evidence.join(", nor "),
                    who.join(", ")
                ),
                Label::new(span, "never used in the logs"),
            )
            .with_help(
                "remove it, or narrow it to what was used (`writ usage` shows what each agent did); logs that span less than its use's cycle (a quarterly job) cannot show it is unneeded",
            )
        })
        .collect()
}

/// Can the logs, or the provider's last-accessed data, show whether an
/// agent used a grant? Each of its actions must be judged by one of them.
/// The logs judge an action when its provider is in them; its service is
/// not a wildcard (`*:Describe*`); it is not authorised inside another
/// call without an event of its own (`iam:PassRole`); its data-plane
/// actions' service has data events in them (a trail records those only
/// when told to); and no event of the agent's in its service went
/// unnamed. The last-accessed data judges it as [`advice`] says.
fn judgeable(model: &Model, report: &Report, used: &AgentUse, grant: &crate::model::Grant) -> bool {
    let address = model.providers[grant.provider].address();
    let access = used.last_accessed.iter().find(|a| a.provider == address);
    grant.actions.iter().all(|action| match access {
        None => logs_judge(model, report, used, grant, action),
        Some(access) => match advice(access, action, report.start) {
            Advice::Unknown => {
                // IAM saw the service attempted in the window, and cannot say
                // by what: the logs may not hold it (a region, a stretch of
                // time they miss), so they do not judge it either.
                !service_attempted(access, action, report.start)
                    && logs_judge(model, report, used, grant, action)
            }
            _ => true,
        },
    })
}

/// Did IAM see an attempt on the action's service in the window?
fn service_attempted(access: &LastAccessed, action: &str, since: i64) -> bool {
    let service = action.split(':').next().unwrap_or(action);
    crate::pattern::has_wildcard(service)
        || access
            .services
            .iter()
            .filter(|s| s.service.eq_ignore_ascii_case(service))
            .any(|s| s.last.is_some_and(|last| last >= since))
}

/// Can the logs alone show whether the agent used this action of a grant?
fn logs_judge(
    model: &Model,
    report: &Report,
    used: &AgentUse,
    grant: &crate::model::Grant,
    action: &str,
) -> bool {
    let Some(span) = report.spans.get(&model.providers[grant.provider].address()) else {
        return false;
    };
    let service = action.split(':').next().unwrap_or(action);
    let aws_unseen = model.providers[grant.provider].kind == ProviderKind::Aws
        && (crate::pattern::has_wildcard(service)
            || implicit(action)
            || (data_plane(action)
                && !span
                    .data_events
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(service))));
    !aws_unseen
        && !used
            .unmapped_services
            .iter()
            .any(|s| action == "*" || s.eq_ignore_ascii_case(service))
}

/// What IAM's last-accessed data says of an action pattern of a grant.
#[derive(Debug, PartialEq, Eq)]
enum Advice {
    /// It cannot tell.
    Unknown,
    /// Nothing the pattern holds was attempted in the window.
    Unused,
    /// It holds tracked actions only, and one was attempted in the
    /// window.
    Attempted,
}

/// IAM's last-accessed data on an action pattern, from `since`. A tracked
/// action tells by its own last attempt; a pattern is judged by its
/// tracked actions only when it holds nothing else (every action the
/// catalogue knows it to stand for is tracked). A service with no attempt
/// at all in the window had none of its actions used, but for data-plane
/// actions (the data's coverage of those is not documented) and actions
/// authorised inside another call. A service the role's policies do not
/// allow, as IAM reads them, says the live role is not the source's:
/// nothing is judged by it.
fn advice(access: &LastAccessed, action: &str, since: i64) -> Advice {
    let service = action.split(':').next().unwrap_or(action);
    if crate::pattern::has_wildcard(service) || implicit(action) {
        return Advice::Unknown;
    }
    let Some(seen) = access
        .services
        .iter()
        .find(|s| s.service.eq_ignore_ascii_case(service))
    else {
        return Advice::Unknown;
    };
    let tracked: Vec<&TrackedAction> = seen
        .actions
        .iter()
        .flatten()
        .filter(|t| crate::access::action_matches(ProviderKind::Aws, action, &t.action))
        .collect();
    let attempted = tracked
        .iter()
        .any(|t| t.last.is_some_and(|last| last >= since));
    let all_tracked = if crate::pattern::has_wildcard(action) {
        let expanded = crate::facts::aws::catalogue().expand(action);
        !expanded.is_empty()
            && expanded.iter().all(|(service, named)| {
                tracked.iter().any(|t| {
                    t.action
                        .eq_ignore_ascii_case(&format!("{}:{}", service.prefix, named.name))
                })
            })
    } else {
        !tracked.is_empty()
    };
    let idle = seen.last.is_none_or(|last| last < since);
    // An attempt on the service no tracked action accounts for: an action
    // IAM does not track (or writ's catalogue does not know) was tried,
    // which a wildcard may hold.
    let unexplained = !idle
        && !seen
            .actions
            .iter()
            .flatten()
            .any(|t| t.last.is_some_and(|last| last >= since));
    let all_tracked = all_tracked && !(unexplained && crate::pattern::has_wildcard(action));
    // Before IAM's tracking period, nothing is known to be unused.
    if since < access.generated - TRACKED_DAYS * 86_400 {
        return match attempted && all_tracked {
            true => Advice::Attempted,
            false => Advice::Unknown,
        };
    }
    match (attempted, all_tracked) {
        (true, true) => Advice::Attempted,
        // Some of it attempted; what else, untracked, cannot be told.
        (true, false) => Advice::Unknown,
        (false, true) => Advice::Unused,
        (false, false) if idle && !data_plane(action) => Advice::Unused,
        (false, false) => Advice::Unknown,
    }
}

/// How far back IAM's last-accessed data reaches.
pub const TRACKED_DAYS: i64 = 400;

/// The actions of a grant IAM's last-accessed data records an attempt of
/// in the window, each with when.
fn attempted(
    access: &LastAccessed,
    grant: &crate::model::Grant,
    since: i64,
) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for tracked in access
        .services
        .iter()
        .flat_map(|s| s.actions.iter().flatten())
    {
        let Some(last) = tracked.last.filter(|&last| last >= since) else {
            continue;
        };
        if grant
            .actions
            .iter()
            .any(|a| crate::access::action_matches(ProviderKind::Aws, a, &tracked.action))
        {
            found.insert(tracked.action.clone(), rfc3339(last));
        }
    }
    found
}

/// Is an action pattern one authorised inside another call?
fn implicit(action: &str) -> bool {
    let lower = action.to_ascii_lowercase();
    IMPLICIT_ACTIONS
        .iter()
        .any(|implicit| crate::pattern::intersects(&lower, implicit))
}

/// AWS actions authorised inside another call, with no event of their own:
/// a grant holding one cannot be shown unused by CloudTrail.
const IMPLICIT_ACTIONS: &[&str] = &[
    "iam:passrole",
    "ec2:createtags",
    "sts:tagsession",
    "sts:setsourceidentity",
    "logs:putlogevents",
    "logs:createlogstream",
    "kms:generatedatakey*",
    "kms:decrypt",
];

/// AWS actions CloudTrail records only as data events (a trail logs them
/// only when configured to): S3 object and listing operations, Lambda
/// invocations, DynamoDB items, SQS messages, SNS publishing, Kinesis
/// records.
const DATA_ACTIONS: &[&str] = &[
    "s3:getobject*",
    "s3:putobject*",
    "s3:deleteobject*",
    "s3:listbucket*",
    "s3:listmultipartuploadparts",
    "s3:abortmultipartupload",
    "s3:restoreobject",
    "lambda:invokefunction",
    "lambda:invokefunctionurl",
    "dynamodb:getitem",
    "dynamodb:putitem",
    "dynamodb:updateitem",
    "dynamodb:deleteitem",
    "dynamodb:query",
    "dynamodb:scan",
    "dynamodb:batch*",
    "dynamodb:transact*",
    "sqs:sendmessage*",
    "sqs:receivemessage",
    "sqs:deletemessage*",
    "sqs:changemessagevisibility*",
    "sns:publish*",
    "kinesis:putrecord*",
    "kinesis:getrecords",
];

/// Does an action pattern hold a data-plane action?
fn data_plane(action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    DATA_ACTIONS
        .iter()
        .any(|data| crate::pattern::intersects(&action, data))
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// For a plan read with usage logs: each access an agent gains, with
/// whether it tried it in the logs' window (and was allowed, or denied),
/// or not, in the providers the logs cover. A gain nobody tried may not be needed; one denied before is
/// likely what the change is for.
pub fn gain_notes(deltas: &[crate::plan::AgentDelta], report: &Report) -> Vec<String> {
    let mut notes = Vec::new();
    for delta in deltas {
        let Some(used) = report.agents.iter().find(|a| a.agent == delta.agent) else {
            continue;
        };
        for gain in &delta.gains {
            // Not a request the agent makes (who may become it: a trust).
            if !report.providers.contains(&gain.provider) || gain.action.contains(' ') {
                continue;
            }
            let kind = gain
                .provider
                .split('.')
                .next()
                .and_then(ProviderKind::parse)
                .unwrap_or(ProviderKind::Aws);
            let action = |a: &str| crate::access::action_matches(kind, &gain.action, a);
            // A shown resource (`configmaps in namespace billing named x`):
            // its resource part.
            let resource = |r: &str| {
                let bare = r.split(" in ").next().unwrap_or(r);
                crate::access::resource_matches(kind, &gain.resource, bare)
            };
            let tried = |attempts: &[Attempt]| -> u64 {
                attempts
                    .iter()
                    .filter(|t| {
                        t.provider == gain.provider && action(&t.action) && resource(&t.resource)
                    })
                    .map(|t| t.count.uses)
                    .sum()
            };
            let denied = tried(&used.denied);
            let beyond = tried(&used.beyond);
            let granted: u64 = used
                .grants
                .iter()
                // A request that named no resource counts by its action.
                .filter(|g| g.resources.is_empty() || g.resources.iter().any(|r| resource(r)))
                .flat_map(|g| g.actions.iter())
                .filter(|(a, _)| action(a))
                .map(|(_, c)| c.uses)
                .sum();
            let since = report.since.get(..10).unwrap_or(&report.since);
            let times = |n: u64| match n {
                1 => "once".to_string(),
                n => format!("{n} times"),
            };
            let agent = &delta.agent;
            let said = match (denied, beyond + granted) {
                (0, 0) => format!("`{agent}` gains {gain}, which it did not try since {since} (usage logs)"),
                (0, n) => format!("`{agent}` gains {gain}, which it used {} since {since} (usage logs)", times(n)),
                (n, _) => format!("`{agent}` gains {gain}, which it tried {} since {since} and was denied (usage logs)", times(n)),
            };
            notes.push(said);
        }
    }
    notes
}

/// A change `writ tighten` proposes to one grant, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tightening {
    /// The grant's statement.
    pub span: Span,
    /// The actions to write instead; empty: remove the grant.
    pub actions: Vec<String>,
    /// The resources to write instead, when they change.
    pub resources: Option<Vec<String>>,
    /// Why, in words.
    pub why: String,
}

/// A grant as written, judged over every agent that holds it.
struct Judged<'a> {
    grant: &'a crate::model::Grant,
    /// Its actions can be judged for every holder.
    judged: bool,
    /// And its resources, by the logs (every request of every holder
    /// named its resource, all of them are listed, none was refused).
    resources_judged: bool,
    /// The actions its holders used, or wanted.
    used: BTreeSet<String>,
    /// The resources its holders' requests named.
    resources: BTreeSet<String>,
    holders: Vec<&'a str>,
}

/// At most so many resources replace one wildcard: past that, the
/// wildcard stays (a narrowing nobody can read is not reviewed).
pub const NARROWED: usize = 10;

/// What the usage shows each grant, as written, can lose: a grant no
/// holder used is removed; an action no holder used is dropped from its
/// list, and a wildcard is replaced by the actions used under it; in a
/// grant of S3 actions only, a resource wildcard is narrowed to the
/// buckets and buckets' objects used under it (`arn:aws:s3:::BUCKET/*`),
/// and a resource pattern nothing was used on is dropped, where the logs
/// name every resource used. Never anything used, never a grant marked
/// `@keep`, never where the logs cannot show it is unused (as for
/// [`unused_grants`]); conditions are left as written.
pub fn tightenings(model: &Model, report: &Report) -> Vec<Tightening> {
    let mut written: BTreeMap<(u32, u32, u32), Judged> = BTreeMap::new();
    for (agent, used) in model.agents.iter().zip(&report.agents) {
        for (grant, use_) in agent.grants.iter().zip(&used.grants) {
            let key = (grant.span.file.0, grant.span.start, grant.span.end);
            let entry = written.entry(key).or_insert_with(|| Judged {
                grant,
                judged: true,
                resources_judged: true,
                used: BTreeSet::new(),
                resources: BTreeSet::new(),
                holders: Vec::new(),
            });
            // A holder whose access is held back, or gone, says nothing
            // of what the grant is for; and a parent's last grant in a
            // provider keeps its role there, which its delegates' trust
            // names.
            let id = model.agents.iter().position(|a| std::ptr::eq(a, agent));
            let parent = model
                .agents
                .iter()
                .any(|c| c.parent.is_some() && c.parent == id);
            let last = agent
                .grants
                .iter()
                .filter(|g| g.provider == grant.provider)
                .count()
                == 1
                && !agent.runs_on.iter().any(|w| w.provider == grant.provider);
            entry.judged &= !(parent && last);
            entry.judged &= judgeable(model, report, used, grant)
                && !agent.frozen
                && !agent.retired
                && grant.keep.is_none();
            entry.resources_judged &= grant
                .actions
                .iter()
                .all(|action| logs_judge(model, report, used, grant, action))
                && use_.unlisted == 0
                && use_.unnamed == 0
                && use_.denied_actions.is_empty()
                && use_.attempted.is_empty();
            entry.used.extend(use_.actions.keys().cloned());
            // What the provider refused it, the grant allowing it, was
            // wanted; and what IAM records it attempted.
            entry.used.extend(use_.denied_actions.iter().cloned());
            entry.used.extend(use_.attempted.keys().cloned());
            entry.resources.extend(use_.resources.iter().cloned());
            entry.holders.push(&agent.name);
        }
    }
    let mut found = Vec::new();
    for judged in written.into_values() {
        let Judged {
            grant,
            used,
            holders,
            ..
        } = &judged;
        if !judged.judged {
            continue;
        }
        let who = holders
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if used.is_empty() {
            found.push(Tightening {
                span: grant.span,
                actions: Vec::new(),
                resources: None,
                why: format!("no request of {who} used it"),
            });
            continue;
        }
        let kind = model.providers[grant.provider].kind;
        let mut actions: Vec<String> = Vec::new();
        for written in &grant.actions {
            if crate::pattern::has_wildcard(written) {
                for action in used {
                    if crate::access::action_matches(kind, written, action)
                        && !actions.contains(action)
                    {
                        actions.push(action.clone());
                    }
                }
            } else if used.iter().any(|u| u.eq_ignore_ascii_case(written))
                && !actions.contains(written)
            {
                actions.push(written.clone());
            }
        }
        if actions.is_empty() {
            continue;
        }
        // Only S3's: a record names the bucket or object IAM authorised,
        // where other services' may not (a DynamoDB query of an index is
        // recorded on its table).
        let s3 = grant
            .actions
            .iter()
            .all(|a| a.to_ascii_lowercase().starts_with("s3:"));
        let resources = match kind == ProviderKind::Aws && s3 && judged.resources_judged {
            true => narrowed(&grant.resources, &judged.resources),
            false => grant.resources.clone(),
        };
        // As the checker will read it: in AWS, every resource must still be
        // one some action of the grant acts on, and every action written
        // must act on one of its resources.
        let fits = kind != ProviderKind::Aws
            || (resources
                .iter()
                .all(|resource| aws_admits(std::slice::from_ref(resource), &actions))
                && actions.iter().all(|action| {
                    crate::pattern::has_wildcard(action)
                        || aws_admits(&resources, std::slice::from_ref(action))
                }));
        if !fits || (actions == grant.actions && resources == grant.resources) {
            continue;
        }
        let mut why = Vec::new();
        if actions != grant.actions {
            why.push(format!(
                "{who} used {} of it",
                used.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if resources != grant.resources {
            why.push(format!(
                "{}on {}",
                if why.is_empty() {
                    format!("{who} used it ")
                } else {
                    String::new()
                },
                judged
                    .resources
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        found.push(Tightening {
            span: grant.span,
            resources: (resources != grant.resources).then_some(resources),
            actions,
            why: why.join(", "),
        });
    }
    found
}

/// A grant's AWS resources narrowed to what was used: a concrete ARN is
/// kept; a pattern nothing was used on is dropped (while something else
/// of the grant's was used); a wildcard is replaced by the resources used
/// under it, each S3 object by its bucket's objects, when that is
/// narrower and no more than [`NARROWED`]. Nothing is widened: each
/// replacement is contained in the pattern it replaces.
fn narrowed(written: &[String], used: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for pattern in written {
        let under: Vec<&String> = used
            .iter()
            .filter(|r| crate::access::resource_matches(ProviderKind::Aws, pattern, r))
            .collect();
        if under.is_empty() {
            continue;
        }
        if !crate::pattern::has_wildcard(pattern) {
            out.push(pattern.clone());
            continue;
        }
        let mut replaced: Vec<String> = under.iter().map(|r| container(r)).collect();
        replaced.sort();
        replaced.dedup();
        let narrower = replaced.len() <= NARROWED
            && replaced.iter().all(|r| {
                r != pattern && r.contains(":s3:::") && crate::pattern::arn_contains(pattern, r)
            });
        match narrower {
            true => out.extend(replaced),
            false => out.push(pattern.clone()),
        }
    }
    // Nothing used on any (requests the logs name no resource of): as
    // written.
    if out.is_empty() {
        return written.to_vec();
    }
    let mut seen = BTreeSet::new();
    out.retain(|r| seen.insert(r.clone()));
    out
}

/// What a used resource is narrowed to: an S3 object to every object of
/// its bucket (keys come and go; the bucket is what the agent works on);
/// anything else to itself.
fn container(resource: &str) -> String {
    if let Some(rest) = resource.strip_prefix("arn:") {
        let mut parts = rest.splitn(5, ':');
        if let (Some(partition), Some("s3"), Some(""), Some(""), Some(path)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            if let Some((bucket, _)) = path.split_once('/') {
                return format!("arn:{partition}:s3:::{bucket}/*");
            }
        }
    }
    resource.to_string()
}

/// Does some action of `actions` act on some resource of `resources`, as
/// the catalogue says (the checker's `writ::resource_mismatch` rules)? `*`
/// fits every action; an action the catalogue does not know is not judged.
pub(crate) fn aws_admits(resources: &[String], actions: &[String]) -> bool {
    let catalogue = crate::facts::aws::catalogue();
    resources.iter().any(|resource| {
        resource == "*"
            || actions.iter().any(|action| {
                let expanded = catalogue.expand(action);
                expanded.is_empty()
                    || expanded.iter().any(|(service, action)| {
                        action
                            .resource_types
                            .iter()
                            .any(|&t| service.resource_types[t].admits(resource))
                    })
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const SINCE: i64 = 100 * DAY;

    fn tracked(action: &str, last: Option<i64>) -> TrackedAction {
        TrackedAction {
            action: action.to_string(),
            last,
        }
    }

    fn access(services: Vec<ServiceAccess>) -> LastAccessed {
        LastAccessed {
            provider: "aws.prod".to_string(),
            role: "arn:aws:iam::123456789012:role/writ/p/a".to_string(),
            generated: 200 * DAY,
            services,
        }
    }

    /// A role's ARN names an agent by its path and name in an account of
    /// the source: writ's path, or where it adopts the role there.
    #[test]
    fn a_role_is_an_agents_by_its_account_path_and_name() {
        let mut sources = crate::SourceMap::new();
        sources.add(
            "main.writ",
            "provider aws prod {\n  account = \"111111111111\"\n}\n\nprovider aws dev {\n  account = \"222222222222\"\n}\n\nagent bot {\n  owner = \"ops\"\n  ttl = 1h\n  adopts aws.prod role \"/ops/bot\"\n  runs_on aws.prod service \"lambda.amazonaws.com\"\n  runs_on aws.dev service \"lambda.amazonaws.com\"\n}\n",
        );
        let checked = crate::check(
            &sources,
            &crate::CheckOptions {
                today: crate::values::Date::parse("2026-11-28").unwrap(),
            },
        );
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let model = &checked.model;
        let of = |arn: &str| agent_of_role(model, "p", arn);
        assert_eq!(of("arn:aws:iam::111111111111:role/ops/bot"), Some(0));
        assert_eq!(of("arn:aws:iam::222222222222:role/writ/p/bot"), Some(0));
        // Not where the agent's role is in that account.
        assert_eq!(of("arn:aws:iam::111111111111:role/writ/p/bot"), None);
        assert_eq!(of("arn:aws:iam::222222222222:role/ops/bot"), None);
        // Nor in an account the source does not declare.
        assert_eq!(of("arn:aws:iam::333333333333:role/writ/p/bot"), None);
        assert_eq!(of("arn:aws:iam::333333333333:role/ops/bot"), None);
    }

    #[test]
    fn a_wildcard_is_judged_by_tracked_actions_only_when_it_holds_nothing_else() {
        // S3 attempted in the window; one of its many actions tracked, and
        // attempted: `s3:*` holds untracked actions, which may have been
        // used, so it is not judged; the tracked action is.
        let data = access(vec![ServiceAccess {
            service: "s3".to_string(),
            last: Some(150 * DAY),
            actions: Some(vec![
                tracked("s3:CreateBucket", Some(150 * DAY)),
                tracked("s3:DeleteBucket", None),
            ]),
        }]);
        assert_eq!(advice(&data, "s3:*", SINCE), Advice::Unknown);
        assert_eq!(advice(&data, "s3:CreateBucket", SINCE), Advice::Attempted);
        assert_eq!(advice(&data, "s3:DeleteBucket", SINCE), Advice::Unused);
        // Attempted, not tracked: cannot tell.
        assert_eq!(advice(&data, "s3:PutBucketPolicy", SINCE), Advice::Unknown);
        // Every action `s3:DeleteBucket*` holds must be tracked to judge it.
        assert_eq!(advice(&data, "s3:DeleteBucket*", SINCE), Advice::Unknown);
    }

    #[test]
    fn resource_wildcards_narrow_to_what_was_used_and_never_widen() {
        let used: BTreeSet<String> = [
            "arn:aws:s3:::acme-invoices/2026/a.pdf",
            "arn:aws:s3:::acme-invoices/2026/b.pdf",
            "arn:aws:s3:::acme-reports/x",
            "arn:aws:dynamodb:us-east-1:1:table/Orders",
        ]
        .map(String::from)
        .into();
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // An object's narrowing is its bucket's objects.
        assert_eq!(
            narrowed(&strings(&["arn:aws:s3:::acme-*/*"]), &used),
            strings(&[
                "arn:aws:s3:::acme-invoices/*",
                "arn:aws:s3:::acme-reports/*"
            ])
        );
        // Not wider than the pattern: a prefix inside the bucket stays.
        assert_eq!(
            narrowed(&strings(&["arn:aws:s3:::acme-invoices/2026/*"]), &used),
            strings(&["arn:aws:s3:::acme-invoices/2026/*"])
        );
        // A bucket to itself; a pattern nothing was used on, dropped.
        let buckets: BTreeSet<String> = ["arn:aws:s3:::acme-invoices"].map(String::from).into();
        assert_eq!(
            narrowed(
                &strings(&["arn:aws:s3:::acme-*", "arn:aws:s3:::logs-*"]),
                &buckets
            ),
            strings(&["arn:aws:s3:::acme-invoices"])
        );
        // Not S3's: as written.
        assert_eq!(
            narrowed(&strings(&["arn:aws:dynamodb:*:*:table/*"]), &used),
            strings(&["arn:aws:dynamodb:*:*:table/*"])
        );
        // Past NARROWED distinct buckets, the wildcard stays.
        let many: BTreeSet<String> = (0..=NARROWED)
            .map(|i| format!("arn:aws:s3:::b{i}/x"))
            .collect();
        assert_eq!(
            narrowed(&strings(&["arn:aws:s3:::*/*"]), &many),
            strings(&["arn:aws:s3:::*/*"])
        );
    }

    #[test]
    fn an_attempt_no_tracked_action_explains_leaves_wildcards_and_old_windows_unjudged() {
        // SQS attempted in the window, by no tracked action: `sqs:*` may
        // hold what was tried; a tracked action is still judged.
        let data = access(vec![ServiceAccess {
            service: "sqs".to_string(),
            last: Some(150 * DAY),
            actions: Some(
                crate::facts::aws::catalogue()
                    .expand("sqs:*")
                    .iter()
                    .map(|(_, a)| tracked(&format!("sqs:{}", a.name), None))
                    .collect(),
            ),
        }]);
        assert_eq!(advice(&data, "sqs:*", SINCE), Advice::Unknown);
        assert_eq!(advice(&data, "sqs:SendMessage", SINCE), Advice::Unused);
        assert!(service_attempted(&data, "sqs:SendMessage", SINCE));
        // A window older than IAM's tracking: nothing is known unused.
        let old = access(vec![ServiceAccess {
            service: "ec2".to_string(),
            last: None,
            actions: None,
        }]);
        let long_ago = old.generated - (TRACKED_DAYS + 1) * DAY;
        assert_eq!(
            advice(&old, "ec2:DescribeInstances", long_ago),
            Advice::Unknown
        );
        assert_eq!(advice(&old, "ec2:DescribeInstances", SINCE), Advice::Unused);
    }

    #[test]
    fn an_idle_service_judges_its_actions_but_data_and_implicit_ones() {
        let data = access(vec![
            ServiceAccess {
                service: "ec2".to_string(),
                // Before the window.
                last: Some(50 * DAY),
                actions: None,
            },
            ServiceAccess {
                service: "s3".to_string(),
                last: None,
                actions: None,
            },
            ServiceAccess {
                service: "iam".to_string(),
                last: None,
                actions: None,
            },
        ]);
        assert_eq!(advice(&data, "ec2:Describe*", SINCE), Advice::Unused);
        assert_eq!(advice(&data, "s3:ListAllMyBuckets", SINCE), Advice::Unused);
        assert_eq!(advice(&data, "s3:GetObject", SINCE), Advice::Unknown);
        assert_eq!(advice(&data, "iam:PassRole", SINCE), Advice::Unknown);
        // A service IAM does not list, or a service wildcard.
        assert_eq!(advice(&data, "sqs:ListQueues", SINCE), Advice::Unknown);
        assert_eq!(advice(&data, "*:Describe*", SINCE), Advice::Unknown);
    }
}
