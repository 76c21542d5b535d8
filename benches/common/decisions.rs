//! The decisions the serve benchmarks time: the 10,000-agent estate of
//! `estate.rs` checked and compiled into the decision engine, and a mix of
//! allowed and denied requests on it (grants through scopes, a conditional
//! grant with its key, a guardrail, a delegate within its parent's
//! ceiling). Shared by `benches/serve.rs` and the Cedar comparison in
//! `benches/cedar/`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use writ_compiler::decide::Engine;
use writ_compiler::eval::Request;
use writ_compiler::model::{Model, Placement};

/// Teams in the estate: twice as many agents.
pub const UNITS: usize = 5_000;

/// One request: (agent, action, resource, with the region key).
pub type Ask = (usize, String, String, bool);

/// The median and the 99th percentile.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// The estate's model and its engine.
pub fn estate() -> (Model, Engine) {
    let sources = crate::estate::sources(UNITS);
    let options = writ_compiler::CheckOptions {
        today: writ_compiler::values::Date::parse("2026-11-28").unwrap(),
    };
    let checked = writ_compiler::check(&sources, &options);
    assert!(!checked.has_errors());
    let model = checked.model;
    let agents = model.agents.len();
    let built = Instant::now();
    let engine = Engine::new(model.clone());
    println!(
        "{agents} agents; engine built in {:.1} ms",
        built.elapsed().as_secs_f64() * 1e3
    );
    (model, engine)
}

/// The mix of requests, and the engine's AWS provider.
pub fn mix(engine: &Engine) -> (usize, Vec<Ask>) {
    let aws = engine.provider("aws.prod").unwrap();
    // (agent, action, resource, with the region)
    let mut asked: Vec<Ask> = Vec::new();
    for i in (0..UNITS).step_by(7) {
        let (a, d) = (
            engine.agent(&format!("a{i}")).unwrap(),
            engine.agent(&format!("d{i}")).unwrap(),
        );
        asked.push((
            a,
            "s3:GetObject".into(),
            format!("arn:aws:s3:::bucket-{i}/x.csv"),
            false,
        ));
        asked.push((
            a,
            "s3:PutObject".into(),
            format!("arn:aws:s3:::bucket-{i}/out/y"),
            true,
        ));
        asked.push((
            a,
            "s3:PutObject".into(),
            format!("arn:aws:s3:::bucket-{i}/out/y"),
            false,
        ));
        asked.push((a, "iam:CreateRole".into(), "*".into(), false));
        asked.push((
            d,
            "s3:GetObject".into(),
            format!("arn:aws:s3:::bucket-{i}/x.csv"),
            false,
        ));
        asked.push((
            d,
            "s3:DeleteObject".into(),
            format!("arn:aws:s3:::bucket-{}/x.csv", i + 1),
            false,
        ));
    }
    (aws, asked)
}

/// The region key and value of the conditional grant.
pub fn region() -> BTreeMap<String, String> {
    BTreeMap::from([("aws:RequestedRegion".to_string(), "us-east-1".to_string())])
}

/// One request of the mix.
pub fn make<'a>(
    provider: usize,
    region: &'a BTreeMap<String, String>,
    empty: &'a BTreeMap<String, String>,
    (agent, action, resource, with): &'a Ask,
) -> (usize, Request<'a>) {
    (
        *agent,
        Request {
            provider,
            action,
            resource,
            placement: &Placement::None,
            name: None,
            context: Some(if *with { region } else { empty }),
        },
    )
}
