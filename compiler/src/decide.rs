//! The decision engine: the checked model compiled into an index that
//! answers "may this agent do this, now?" as the evaluator
//! ([`crate::eval::evaluate`], which `writ explain` and `writ test` use)
//! answers it, in the same order (retired, frozen, guardrails, grants,
//! minting a delegate's tokens, every ancestor's ceiling) and with the same
//! decision, but with everything that depends only on the model worked out
//! once: agents and providers by name, each agent's grants by provider,
//! the guardrails' denies by provider, its ancestors, the grants by which
//! it mints its delegates' tokens, and AWS action patterns folded to lower
//! case. Deciding an AWS request then allocates nothing.

use crate::access;
use crate::eval::{Decision, DenyReason, Request};
use crate::facts::ProviderKind;
use crate::model::{AgentId, Grant, Model, ProviderId};
use rustc_hash::FxHashMap;

/// A grant ready to be matched: its actions folded where the provider
/// ignores their case.
struct Ready {
    /// Index into the agent's grants (or its ceiling's, or the minting
    /// list).
    index: usize,
    actions: Vec<Box<str>>,
}

/// A grant by which a parent mints a delegate's tokens, with the delegate
/// and the grant's actions ready.
type Minting = (AgentId, Grant, Vec<Box<str>>);

/// A guardrail's deny, for one provider.
struct ReadyDeny {
    guardrail: usize,
    deny: usize,
    actions: Vec<Box<str>>,
}

pub struct Engine {
    model: Model,
    agents: FxHashMap<String, AgentId>,
    providers: FxHashMap<String, ProviderId>,
    /// Per agent, per provider: its grants there, in the model's order.
    grants: Vec<Vec<Vec<Ready>>>,
    /// Per provider: the denies that apply there, in the model's order.
    denies: Vec<Vec<ReadyDeny>>,
    /// Per agent: the grants by which it mints its delegates' tokens.
    minting: Vec<Vec<Minting>>,
    /// Per agent: its ancestors, nearest first.
    ancestors: Vec<Vec<AgentId>>,
    /// Per agent, per provider: its `delegates` ceiling's grants there.
    ceilings: Vec<Vec<Vec<Ready>>>,
}

fn fold(kind: ProviderKind, actions: &[String]) -> Vec<Box<str>> {
    actions
        .iter()
        .map(|a| match kind.actions_ignore_case() {
            true => a.to_ascii_lowercase().into_boxed_str(),
            false => a.clone().into_boxed_str(),
        })
        .collect()
}

impl Engine {
    /// Compiles a checked model.
    pub fn new(model: Model) -> Engine {
        let providers = model.providers.len();
        let kind = |p: ProviderId| model.providers[p].kind;
        let by_provider = |grants: &[Grant]| -> Vec<Vec<Ready>> {
            let mut out: Vec<Vec<Ready>> = (0..providers).map(|_| Vec::new()).collect();
            for (index, grant) in grants.iter().enumerate() {
                out[grant.provider].push(Ready {
                    index,
                    actions: fold(kind(grant.provider), &grant.actions),
                });
            }
            out
        };
        let grants = model
            .agents
            .iter()
            .map(|a| by_provider(&a.grants))
            .collect();
        let ceilings = model
            .agents
            .iter()
            .map(|a| match &a.delegates {
                Some(ceiling) => by_provider(&ceiling.grants),
                None => (0..providers).map(|_| Vec::new()).collect(),
            })
            .collect();
        let denies = (0..providers)
            .map(|provider| {
                let mut list = Vec::new();
                for (g, guardrail) in model.guardrails.iter().enumerate() {
                    for (d, deny) in guardrail.denies.iter().enumerate() {
                        if deny.providers.selects(&model, provider) {
                            list.push(ReadyDeny {
                                guardrail: g,
                                deny: d,
                                actions: fold(kind(provider), &deny.actions),
                            });
                        }
                    }
                }
                list
            })
            .collect();
        // Minting grants, for every parent in one pass over the agents.
        let minting = model
            .all_minting_grants()
            .into_iter()
            .map(|grants| {
                grants
                    .into_iter()
                    .map(|(delegate, grant)| {
                        let actions = fold(kind(grant.provider), &grant.actions);
                        (delegate, grant, actions)
                    })
                    .collect()
            })
            .collect();
        let ancestors = (0..model.agents.len())
            .map(|agent| model.ancestors(agent))
            .collect();
        Engine {
            agents: model
                .agents
                .iter()
                .enumerate()
                .map(|(id, a)| (a.name.clone(), id))
                .collect(),
            providers: model
                .providers
                .iter()
                .enumerate()
                .map(|(id, p)| (p.address(), id))
                .collect(),
            grants,
            denies,
            minting,
            ancestors,
            ceilings,
            model,
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The agent of that name.
    pub fn agent(&self, name: &str) -> Option<AgentId> {
        self.agents.get(name).copied()
    }

    /// The provider at that address (`aws.prod`).
    pub fn provider(&self, address: &str) -> Option<ProviderId> {
        self.providers.get(address).copied()
    }

    /// The decision [`crate::eval::evaluate`] makes.
    pub fn decide(&self, agent_id: AgentId, request: &Request) -> Decision {
        let agent = &self.model.agents[agent_id];
        if agent.retired {
            if let Some(date) = agent.expires {
                return Decision::Denied(DenyReason::Retired(date));
            }
        }
        if agent.frozen {
            return Decision::Denied(DenyReason::Frozen);
        }
        let kind = self.model.providers[request.provider].kind;
        for ready in &self.denies[request.provider] {
            let deny = &self.model.guardrails[ready.guardrail].denies[ready.deny];
            if access::placement_meets(&deny.placement, request.placement)
                && actions_match(kind, &deny.actions, &ready.actions, request.action)
                && deny
                    .resources
                    .iter()
                    .any(|r| access::resource_matches(kind, r, request.resource))
            {
                return Decision::Denied(DenyReason::Guardrail {
                    guardrail: ready.guardrail,
                    deny: ready.deny,
                });
            }
        }
        let found = self.grants[agent_id][request.provider]
            .iter()
            .find(|ready| allows(kind, &agent.grants[ready.index], &ready.actions, request));
        let Some(grant) = found else {
            if let Some((delegate, _, _)) = self.minting[agent_id]
                .iter()
                .find(|(_, grant, actions)| allows(kind, grant, actions, request))
            {
                return Decision::Mints {
                    delegate: *delegate,
                };
            }
            return Decision::Denied(DenyReason::NoGrant);
        };
        for &ancestor in &self.ancestors[agent_id] {
            let within = self.model.agents[ancestor]
                .delegates
                .as_ref()
                .is_some_and(|ceiling| {
                    self.ceilings[ancestor][request.provider]
                        .iter()
                        .any(|ready| {
                            allows(kind, &ceiling.grants[ready.index], &ready.actions, request)
                        })
                });
            if !within {
                return Decision::Denied(DenyReason::OutsideCeiling { ancestor });
            }
        }
        Decision::Allowed { grant: grant.index }
    }
}

/// Does one of a grant's (or a deny's) actions match the request's? As
/// [`access::action_matches`] decides, with AWS patterns folded ahead.
fn actions_match(
    kind: ProviderKind,
    written: &[String],
    folded: &[Box<str>],
    action: &str,
) -> bool {
    match kind.actions_ignore_case() {
        true => folded
            .iter()
            .any(|pattern| crate::pattern::matches_folded(pattern, action)),
        false => written
            .iter()
            .any(|pattern| access::action_matches(kind, pattern, action)),
    }
}

/// [`crate::eval::grant_allows`], with the grant's actions ready.
fn allows(kind: ProviderKind, grant: &Grant, folded: &[Box<str>], request: &Request) -> bool {
    grant.provider == request.provider
        && access::placement_covers(&grant.placement, request.placement)
        && actions_match(kind, &grant.actions, folded, request.action)
        && grant
            .resources
            .iter()
            .any(|r| access::resource_matches(kind, r, request.resource))
        && access::names_match(&grant.resource_names, request.name)
        && crate::eval::conditions_hold(grant, request.context)
}
