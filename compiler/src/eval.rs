//! The evaluator: may an agent perform one action on one resource? It
//! answers `writ test` and `writ explain` from the checked model, with the
//! same semantics the providers enforce: patterns as IAM matches them,
//! guardrail denies winning over grants, frozen and retired agents holding
//! nothing, and delegates bounded by every ancestor's ceiling.
//!
//! A grant with a `when` condition counts as allowing: the access can be had
//! when the condition holds. That is the conservative reading for `cannot`
//! expectations, which are the ones that guard against leaks.

use crate::access;
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::aws;
use crate::model::{AgentId, Expectation, Grant, Model, Placement, ProviderId};
use crate::syntax::ast::ConditionOp;
use crate::values::Date;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub provider: ProviderId,
    pub action: &'a str,
    pub resource: &'a str,
    pub placement: &'a Placement,
    /// For Kubernetes: the object's name, when the request is about one
    /// (`None`: the resource as a whole, as RBAC reads a request that names
    /// no object).
    pub name: Option<&'a str>,
    /// The request's condition keys and their values (`aws:RequestedRegion`
    /// → `us-east-1`), when known. `None`: unknown, and a grant with `when`
    /// counts as allowing (the safe reading for `cannot` expectations).
    pub context: Option<&'a BTreeMap<String, String>>,
}

/// Does a grant's `when` hold for the request? Read as the lowered IAM
/// condition is (see [`crate::lower::aws::iam_operator`]): by the key's
/// type (strings case-sensitive, ARNs segment by segment, numbers, dates,
/// booleans, IP ranges); `==`, `in` and `like` false when the request does
/// not carry the key, `!=` true.
pub(crate) fn conditions_hold(grant: &Grant, context: Option<&BTreeMap<String, String>>) -> bool {
    let Some(context) = context else {
        return true;
    };
    grant.conditions.iter().all(|condition| {
        let kind = aws::catalogue()
            .condition_key(&condition.key)
            .map_or(aws::KeyType::String, |k| k.kind);
        let value = context
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(&condition.key))
            .map(|(_, value)| value.as_str());
        let one = |expected: &str, actual: &str| -> bool {
            if condition.op.is_ordering() {
                let order = match kind {
                    aws::KeyType::Numeric => actual
                        .parse::<f64>()
                        .ok()
                        .zip(expected.parse::<f64>().ok())
                        .and_then(|(a, e)| a.partial_cmp(&e)),
                    aws::KeyType::Date => aws::parse_date(actual)
                        .zip(aws::parse_date(expected))
                        .map(|(a, e)| a.cmp(&e)),
                    _ => None,
                };
                return order.is_some_and(|order| match condition.op {
                    ConditionOp::Less => order.is_lt(),
                    ConditionOp::LessOrEqual => order.is_le(),
                    ConditionOp::Greater => order.is_gt(),
                    _ => order.is_ge(),
                });
            }
            match kind {
                aws::KeyType::String => match condition.op {
                    ConditionOp::Like => crate::pattern::matches(expected, actual),
                    _ => expected == actual,
                },
                aws::KeyType::Arn => crate::pattern::arn_matches(expected, actual),
                aws::KeyType::Numeric => {
                    matches!((expected.parse::<f64>(), actual.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
                }
                aws::KeyType::Date => {
                    matches!((aws::parse_date(expected), aws::parse_date(actual)), (Some(a), Some(b)) if a == b)
                }
                aws::KeyType::Bool => expected.eq_ignore_ascii_case(actual),
                aws::KeyType::IpAddress => match (aws::parse_cidr(expected), actual.parse()) {
                    (Some(range), Ok(address)) => aws::cidr_contains(range, address),
                    _ => false,
                },
            }
        };
        match (condition.op, value) {
            (ConditionOp::NotEquals, None) => true,
            (_, None) => false,
            (ConditionOp::NotEquals, Some(actual)) => {
                !condition.values.iter().any(|expected| one(expected, actual))
            }
            (_, Some(actual)) => condition.values.iter().any(|expected| one(expected, actual)),
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the agent's grant at this index.
    Allowed {
        grant: usize,
    },
    /// Allowed because the agent mints the tokens of this delegate's
    /// service account (see [`Model::minting_grants`]).
    Mints {
        delegate: AgentId,
    },
    Denied(DenyReason),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. } | Decision::Mints { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    NoGrant,
    Retired(Date),
    Frozen,
    Guardrail {
        guardrail: usize,
        deny: usize,
    },
    /// Granted, but outside the delegation ceiling of this ancestor (or the
    /// ancestor declares no `delegates` at all).
    OutsideCeiling {
        ancestor: AgentId,
    },
}

/// Does `grant` allow the request (ignoring denies and ceilings)?
pub fn grant_allows(model: &Model, grant: &Grant, request: &Request) -> bool {
    let kind = model.providers[request.provider].kind;
    grant.provider == request.provider
        && access::placement_covers(&grant.placement, request.placement)
        && grant
            .actions
            .iter()
            .any(|a| access::action_matches(kind, a, request.action))
        && grant
            .resources
            .iter()
            .any(|r| access::resource_matches(kind, r, request.resource))
        && access::names_match(&grant.resource_names, request.name)
        && conditions_hold(grant, request.context)
}

pub fn evaluate(model: &Model, agent_id: AgentId, request: &Request) -> Decision {
    let agent = &model.agents[agent_id];
    if agent.retired {
        if let Some(date) = agent.expires {
            return Decision::Denied(DenyReason::Retired(date));
        }
    }
    if agent.frozen {
        return Decision::Denied(DenyReason::Frozen);
    }
    let kind = model.providers[request.provider].kind;
    for (guardrail_index, guardrail) in model.guardrails.iter().enumerate() {
        for (deny_index, deny) in guardrail.denies.iter().enumerate() {
            let applies = deny.providers.selects(model, request.provider)
                && access::placement_meets(&deny.placement, request.placement)
                && deny
                    .actions
                    .iter()
                    .any(|a| access::action_matches(kind, a, request.action))
                && deny
                    .resources
                    .iter()
                    .any(|r| access::resource_matches(kind, r, request.resource));
            if applies {
                return Decision::Denied(DenyReason::Guardrail {
                    guardrail: guardrail_index,
                    deny: deny_index,
                });
            }
        }
    }
    let Some(grant) = agent
        .grants
        .iter()
        .position(|g| grant_allows(model, g, request))
    else {
        // Minting a delegate's tokens is part of delegating, bounded by
        // `max_depth`, not by the ceilings above.
        if let Some((delegate, _)) = model
            .minting_grants(agent_id)
            .into_iter()
            .find(|(_, g)| grant_allows(model, g, request))
        {
            return Decision::Mints { delegate };
        }
        return Decision::Denied(DenyReason::NoGrant);
    };
    for ancestor in model.ancestors(agent_id) {
        let within = model.agents[ancestor]
            .delegates
            .as_ref()
            .is_some_and(|ceiling| {
                ceiling
                    .grants
                    .iter()
                    .any(|g| grant_allows(model, g, request))
            });
        if !within {
            return Decision::Denied(DenyReason::OutsideCeiling { ancestor });
        }
    }
    Decision::Allowed { grant }
}

/// Where a narrower request than the one asked is allowed: in one
/// namespace of a cluster-wide request, for one named object of a request
/// about the whole resource, or both. Each field is what narrows the
/// request (`None`: as asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub decision: Decision,
}

impl Reach {
    /// Where, in words: "in namespace `apps`, for the object named `x`".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(namespace) = &self.namespace {
            parts.push(format!("in namespace `{namespace}`"));
        }
        if let Some(name) = &self.name {
            parts.push(format!("for the object named `{name}`"));
        }
        parts.join(", ")
    }

    /// The same, as an `expect` says it: `named "x" in namespace "apps"`.
    pub fn expect_words(&self) -> String {
        let mut words = Vec::new();
        if let Some(name) = &self.name {
            words.push(format!("named \"{name}\""));
        }
        if let Some(namespace) = &self.namespace {
            words.push(format!("in namespace \"{namespace}\""));
        }
        format!("`{}`", words.join(" "))
    }
}

/// For a Kubernetes request that is denied: every narrower request that is
/// allowed, one namespace of the agent's grants at a time (when it was
/// asked cluster-wide) and one named object at a time (when it named
/// none). A `cannot` fails on any of them, since some object is
/// reachable; `explain` names them. Empty for an allowed request.
pub fn reachable_elsewhere(model: &Model, agent_id: AgentId, request: &Request) -> Vec<Reach> {
    if evaluate(model, agent_id, request).is_allowed() {
        return Vec::new();
    }
    let minting = model.minting_grants(agent_id);
    let grants: Vec<&Grant> = model.agents[agent_id]
        .grants
        .iter()
        .chain(minting.iter().map(|(_, g)| g))
        .filter(|g| g.provider == request.provider)
        .collect();
    let mut placements = vec![request.placement.clone()];
    if *request.placement == Placement::Cluster {
        for grant in &grants {
            if matches!(grant.placement, Placement::Namespace(_))
                && !placements.contains(&grant.placement)
            {
                placements.push(grant.placement.clone());
            }
        }
    }
    let mut reach = Vec::new();
    for placement in &placements {
        let namespace = match placement {
            Placement::Namespace(namespace) if placement != request.placement => {
                Some(namespace.clone())
            }
            _ => None,
        };
        let here = Request {
            placement,
            ..*request
        };
        if placement != request.placement {
            let decision = evaluate(model, agent_id, &here);
            if decision.is_allowed() {
                reach.push(Reach {
                    namespace,
                    name: None,
                    decision,
                });
                continue;
            }
        }
        if request.name.is_some() {
            continue;
        }
        let mut names: Vec<&String> = grants.iter().flat_map(|g| &g.resource_names).collect();
        names.sort();
        names.dedup();
        for name in names {
            let one = Request {
                name: Some(name),
                ..here
            };
            let decision = evaluate(model, agent_id, &one);
            if decision.is_allowed() {
                reach.push(Reach {
                    namespace: namespace.clone(),
                    name: Some(name.clone()),
                    decision,
                });
            }
        }
    }
    reach
}

/// The outcome of one `expect`.
#[derive(Debug, Clone)]
pub struct ExpectationResult {
    pub test: usize,
    pub expectation: usize,
    pub decision: Decision,
    pub passed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct TestReport {
    pub results: Vec<ExpectationResult>,
    /// One `writ::test_failed` per expectation that does not hold.
    pub diagnostics: Vec<Diagnostic>,
}

impl TestReport {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| !r.passed).count()
    }
}

/// Runs every `test` block of the model.
pub fn run_tests(model: &Model) -> TestReport {
    let mut report = TestReport::default();
    for (test_index, test) in model.tests.iter().enumerate() {
        for (index, expectation) in test.expectations.iter().enumerate() {
            let request = Request {
                provider: expectation.provider,
                action: &expectation.action,
                resource: &expectation.resource,
                placement: &expectation.placement,
                name: expectation.name.as_deref(),
                context: None,
            };
            let mut decision = evaluate(model, expectation.agent, &request);
            // Asked cluster-wide, or about the whole resource: a `cannot`
            // fails when any namespace or any one object is reachable; a
            // `can` that holds only there says where.
            let elsewhere = reachable_elsewhere(model, expectation.agent, &request)
                .into_iter()
                .next();
            let passed = match (&elsewhere, expectation.allowed) {
                (Some(_), false) => false,
                _ => decision.is_allowed() == expectation.allowed,
            };
            if let (Some(reach), false) = (&elsewhere, expectation.allowed) {
                decision = reach.decision.clone();
            }
            if !passed {
                report.diagnostics.push(failure(
                    model,
                    &test.name,
                    expectation,
                    &decision,
                    elsewhere.as_ref(),
                ));
            }
            report.results.push(ExpectationResult {
                test: test_index,
                expectation: index,
                decision,
                passed,
            });
        }
    }
    report
}

/// Why a request was decided as it was, in words.
pub fn explain_decision(model: &Model, agent: AgentId, decision: &Decision) -> String {
    let name = &model.agents[agent].name;
    match decision {
        Decision::Allowed { grant } => {
            let grant = &model.agents[agent].grants[*grant];
            match grant.via.as_slice() {
                [] => format!("allowed by a grant written in `{name}`"),
                via => format!("allowed by a grant of scope `{}`", via.join("` → `")),
            }
        }
        Decision::Mints { delegate } => format!(
            "allowed because `{name}` mints the tokens of its delegate `{}`'s service account",
            model.agents[*delegate].name
        ),
        Decision::Denied(DenyReason::NoGrant) => format!("no grant of `{name}` allows it"),
        Decision::Denied(DenyReason::Retired(date)) => match model.agents[agent].expires_with {
            Some(ancestor) => format!(
                "`{name}` expired on {date} with `{}`, and holds no access",
                model.agents[ancestor].name
            ),
            None => format!("`{name}` expired on {date} and holds no access"),
        },
        Decision::Denied(DenyReason::Frozen) => format!("`{name}` is frozen and holds no access"),
        Decision::Denied(DenyReason::Guardrail { guardrail, deny }) => {
            let guardrail = &model.guardrails[*guardrail];
            let enforced = match guardrail.denies.get(*deny).map(|d| d.kind) {
                // RBAC only allows: the deny is kept by `writ check`, which
                // refuses every grant that meets it.
                Some(crate::facts::ProviderKind::Kubernetes) => " (Kubernetes RBAC has no deny: writ enforces it at compile time, by refusing every grant that meets it; nothing in the cluster denies it)",
                _ => "",
            };
            format!("guardrail `{}` denies it{enforced}", guardrail.name)
        }
        Decision::Denied(DenyReason::OutsideCeiling { ancestor }) => format!(
            "it is outside what `{}` lets its delegates hold",
            model.agents[*ancestor].name
        ),
    }
}

fn failure(
    model: &Model,
    test: &str,
    expectation: &Expectation,
    decision: &Decision,
    elsewhere: Option<&Reach>,
) -> Diagnostic {
    let agent = &model.agents[expectation.agent];
    let provider = model.providers[expectation.provider].address();
    let mut place = match &expectation.placement {
        Placement::Namespace(namespace) => format!(" in namespace `{namespace}`"),
        _ => String::new(),
    };
    if let Some(name) = &expectation.name {
        place = format!(" named `{name}`{place}");
    }
    let verb = if expectation.allowed { "can" } else { "cannot" };
    let reason = match decision {
        Decision::Allowed { .. } | Decision::Mints { .. } => match elsewhere {
            Some(reach) => format!(
                "{} it is {}",
                reach.describe(),
                explain_decision(model, expectation.agent, decision)
            ),
            None => format!(
                "it is {}",
                explain_decision(model, expectation.agent, decision)
            ),
        },
        Decision::Denied(_) => explain_decision(model, expectation.agent, decision),
    };
    let mut diagnostic = Diagnostic::new(
        Code::TestFailed,
        format!(
            "test \"{test}\" failed: expected `{}` {verb} {provider} `{}` on `{}`{place}, but {reason}",
            agent.name, expectation.action, expectation.resource
        ),
        Label::new(expectation.span, "this expectation does not hold"),
    );
    match decision {
        Decision::Allowed { grant } => {
            let grant = &agent.grants[*grant];
            diagnostic = diagnostic
                .with_label(grant.span, "this grant allows it")
                .with_help("narrow or remove the grant, or add a guardrail `deny`");
        }
        Decision::Mints { delegate } => {
            let delegate = &model.agents[*delegate];
            diagnostic = diagnostic
                .with_label(delegate.parent_span.unwrap_or(delegate.span), "this delegate's tokens are minted by its parent")
                .with_help("a parent mints its delegates' tokens; run the delegate elsewhere, or make it no delegate");
        }
        Decision::Denied(DenyReason::Guardrail { guardrail, deny }) => {
            let deny = &model.guardrails[*guardrail].denies[*deny];
            diagnostic = diagnostic.with_label(deny.span, "denied here");
        }
        Decision::Denied(DenyReason::OutsideCeiling { ancestor }) => {
            let ancestor = &model.agents[*ancestor];
            let span = ancestor
                .delegates
                .as_ref()
                .map_or(ancestor.span, |c| c.span);
            diagnostic = diagnostic.with_label(span, "the delegation ceiling");
        }
        Decision::Denied(DenyReason::NoGrant) => {
            diagnostic = diagnostic.with_label(agent.span, "the agent");
            diagnostic = match elsewhere {
                Some(reach) => diagnostic.with_help(format!(
                    "`{}` may do it only {}: ask about that ({}), or grant it as asked",
                    agent.name,
                    reach.describe(),
                    reach.expect_words()
                )),
                None => diagnostic
                    .with_help(format!("grant it to `{}`, or expect `cannot`", agent.name)),
            };
        }
        Decision::Denied(_) => {
            diagnostic = diagnostic.with_label(agent.span, "the agent");
        }
    }
    diagnostic
}
