//! `writ serve`'s decision engine and the Cedar policy engine
//! (`cedar-policy`), side by side in one run, on the same requests over the
//! 10,000-agent estate of `benches/common/estate.rs`: Cedar is given
//! policies that say what the estate says (each agent's grants as
//! `permit`s on its own principal, the guardrail as a `forbid`, the
//! resource and the condition key in the context), and every one of its
//! answers is held equal to writ's. Cedar reads every policy of the set it
//! is given, so it is timed given the estate as one set, and given a set
//! per agent (its own policies and the guardrail), the way to keep its
//! work from growing with the estate. Goal (issue 19): writ at least 10
//! times faster per decision.
//!
//! Run: `cargo bench --manifest-path benches/cedar/Cargo.toml`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/decisions.rs"]
mod decisions;
#[path = "../common/estate.rs"]
mod estate;

use decisions::{make, percentiles, Ask, UNITS};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use writ_compiler::decide::Engine;
use writ_compiler::eval::Request;

fn main() {
    let (_, engine) = decisions::estate();
    let (aws, asked) = decisions::mix(&engine);
    let region = decisions::region();
    let empty = BTreeMap::new();
    // writ's engine, timed as in `benches/serve.rs`.
    let mut samples = Vec::with_capacity(asked.len() * 5);
    for _ in 0..5 {
        for ask in &asked {
            let (agent, request) = make(aws, &region, &empty, ask);
            let started = Instant::now();
            let decision = engine.decide(agent, &request);
            samples.push(started.elapsed());
            std::hint::black_box(decision);
        }
    }
    let count = samples.len();
    let (p50, p99) = percentiles(&mut samples);
    println!(
        "in process, writ's engine: p50 {:.2} µs, p99 {:.2} µs ({count} decisions)",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    cedar(&engine, &asked, |ask| make(aws, &region, &empty, ask));
}

/// The same questions put to the Cedar policy engine, from policies that
/// say what the estate says (each agent's grants as `permit`s on its own
/// principal, the guardrail as a `forbid`, the resource and condition
/// keys in the context). Every answer is held to writ's first.
fn cedar<'a>(engine: &Engine, asked: &'a [Ask], request: impl Fn(&'a Ask) -> (usize, Request<'a>)) {
    use cedar_policy::{
        Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request as CedarRequest,
    };
    let guardrail = "forbid(principal, action, resource) when { context.service == \"iam\" || context.service == \"organizations\" };\n";
    let policies_of = |i: usize, delegate: bool| -> String {
        let agent = if delegate {
            format!("d{i}")
        } else {
            format!("a{i}")
        };
        let mut text = format!(
            "permit(principal == Agent::\"{agent}\", action == Action::\"s3:GetObject\", resource) when {{ context.resource like \"arn:aws:s3:::bucket-{i}/*\" }};\n\
             permit(principal == Agent::\"{agent}\", action == Action::\"s3:ListBucket\", resource) when {{ context.resource == \"arn:aws:s3:::bucket-{i}\" }};\n"
        );
        if !delegate {
            text.push_str(&format!(
                "permit(principal == Agent::\"a{i}\", action in [Action::\"s3:PutObject\", Action::\"s3:DeleteObject\"], resource) when {{ context.resource like \"arn:aws:s3:::bucket-{i}/out/*\" && context has region && context.region == \"us-east-1\" }};\n"
            ));
        }
        text
    };
    // One policy set for the estate, as Cedar is most often given one;
    // and one per agent (its own policies and the guardrail), the way to
    // keep Cedar's work per request from growing with the estate, since it
    // reads every policy of the set it is given.
    let mut text = String::from(guardrail);
    for i in 0..UNITS {
        text.push_str(&policies_of(i, false));
        text.push_str(&policies_of(i, true));
    }
    let built = Instant::now();
    let whole: PolicySet = text.parse().unwrap();
    println!(
        "cedar: {} policies parsed in {:.0} ms",
        whole.policies().count(),
        built.elapsed().as_secs_f64() * 1e3
    );
    let built = Instant::now();
    let per_agent: Vec<PolicySet> = (0..2 * UNITS)
        .map(|agent| {
            format!("{guardrail}{}", policies_of(agent / 2, agent % 2 == 1))
                .parse()
                .unwrap()
        })
        .collect();
    println!(
        "cedar: {} policy sets of one agent each parsed in {:.0} ms",
        per_agent.len(),
        built.elapsed().as_secs_f64() * 1e3
    );
    let entities = Entities::empty();
    let authorizer = Authorizer::new();
    // Requests made before the clock starts: only deciding is timed, as
    // for writ's engine.
    let requests: Vec<(usize, bool, CedarRequest)> = asked
        .iter()
        .map(|ask| {
            let (agent, action, resource, with) = ask;
            let name = if agent % 2 == 0 {
                format!("a{}", agent / 2)
            } else {
                format!("d{}", agent / 2)
            };
            let uid = |kind: &str, id: &str| -> EntityUid {
                format!("{kind}::{}", serde_json::Value::String(id.to_string()))
                    .parse()
                    .unwrap()
            };
            let mut context = serde_json::json!({
                "resource": resource,
                "service": action.split(':').next().unwrap(),
            });
            if *with {
                context["region"] = serde_json::json!("us-east-1");
            }
            let (agent_id, writ_request) = request(ask);
            let writs = engine.decide(agent_id, &writ_request).is_allowed();
            let cedar = CedarRequest::new(
                uid("Agent", &name),
                uid("Action", action),
                uid("Resource", resource),
                Context::from_json_value(context, None).unwrap(),
                None,
            )
            .unwrap();
            (*agent, writs, cedar)
        })
        .collect();
    let report = |what: &str, samples: &mut Vec<Duration>| {
        let count = samples.len();
        let (p50, p99) = percentiles(samples);
        println!(
            "in process, cedar-policy 4.14, {what}: p50 {:.2} µs, p99 {:.2} µs ({count} decisions, each equal to writ's)",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    };
    let mut samples = Vec::with_capacity(requests.len() * 5);
    for _ in 0..5 {
        for (agent, writs, cedar) in &requests {
            let started = Instant::now();
            let answer = authorizer.is_authorized(cedar, &per_agent[*agent], &entities);
            samples.push(started.elapsed());
            assert_eq!(
                answer.decision() == Decision::Allow,
                *writs,
                "Cedar and writ differ on {cedar}"
            );
        }
    }
    report("a policy set per agent", &mut samples);
    // The whole estate's set: every request reads all its policies, so a
    // sample of the requests.
    let mut samples = Vec::new();
    for (_, writs, cedar) in requests.iter().step_by(20) {
        let started = Instant::now();
        let answer = authorizer.is_authorized(cedar, &whole, &entities);
        samples.push(started.elapsed());
        assert_eq!(
            answer.decision() == Decision::Allow,
            *writs,
            "Cedar and writ differ on {cedar}"
        );
    }
    report(
        &format!(
            "one set of the estate's {} policies",
            whole.policies().count()
        ),
        &mut samples,
    );
}
