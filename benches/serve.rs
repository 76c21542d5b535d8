//! `writ serve` (issue 19): decisions on a 10,000-agent model (the shared
//! estate: 5,000 teams of an agent with a delegation ceiling and its
//! delegate), in process and over HTTP on loopback.
//!
//! - In process: the decision engine's `decide`, each call timed, on a mix
//!   of allowed and denied requests (grants through scopes, a conditional
//!   grant with its key, a guardrail, a delegate within its parent's
//!   ceiling); the evaluator `writ explain` uses, on the same requests,
//!   beside it. Goal: p50 ≤ 1 µs, p99 ≤ 5 µs.
//! - Beside them, the Cedar policy engine (`cedar-policy`) on the same
//!   requests, from policies that say the same (each answer held equal to
//!   writ's): given the estate as one policy set, and given one set per
//!   agent. Goal: writ at least 10 times faster.
//! - Over HTTP: the release binary serving the estate, and a bounded load
//!   generator (a fixed number of keep-alive connections for a fixed
//!   time, loopback only). Goal: 50,000 decisions a second, p99 under 2 ms.
//!
//! Run: `cargo bench --bench serve`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/estate.rs"]
mod estate;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use writ_compiler::decide::Engine;
use writ_compiler::eval::Request;
use writ_compiler::model::Placement;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const UNITS: usize = 5_000;

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

fn main() {
    let sources = estate::sources(UNITS);
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
    let aws = engine.provider("aws.prod").unwrap();
    let region = BTreeMap::from([("aws:RequestedRegion".to_string(), "us-east-1".to_string())]);
    // (agent, action, resource, with the region)
    let mut asked: Vec<(usize, String, String, bool)> = Vec::new();
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
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    let request = |ask| make(aws, &region, &EMPTY, ask);
    let mut allowed = 0;
    for _ in 0..3 {
        for ask in &asked {
            let (agent, r) = request(ask);
            allowed += usize::from(engine.decide(agent, &r).is_allowed());
        }
    }
    assert!(allowed > 0);
    for (name, evaluate) in [("engine", true), ("evaluator (explain)", false)] {
        let mut samples = Vec::with_capacity(asked.len() * 20);
        for _ in 0..20 {
            for ask in &asked {
                let (agent, r) = request(ask);
                let started = Instant::now();
                let decision = match evaluate {
                    true => engine.decide(agent, &r),
                    false => writ_compiler::eval::evaluate(&model, agent, &r),
                };
                let took = started.elapsed();
                std::hint::black_box(decision);
                samples.push(took);
            }
        }
        let count = samples.len();
        let (p50, p99) = percentiles(&mut samples);
        println!(
            "in process, {name}: p50 {:.2} µs, p99 {:.2} µs ({count} decisions)",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
    cedar(&engine, &asked, |ask| make(aws, &region, &EMPTY, ask));
    http(&asked);
}

/// The same questions put to the Cedar policy engine, from policies that
/// say what the estate says (each agent's grants as `permit`s on its own
/// principal, the guardrail as a `forbid`, the resource and condition
/// keys in the context). Every answer is held to writ's first.
fn cedar<'a>(
    engine: &Engine,
    asked: &'a [(usize, String, String, bool)],
    request: impl Fn(&'a (usize, String, String, bool)) -> (usize, Request<'a>),
) {
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

/// One request of the mix.
fn make<'a>(
    provider: usize,
    region: &'a BTreeMap<String, String>,
    empty: &'a BTreeMap<String, String>,
    (agent, action, resource, with): &'a (usize, String, String, bool),
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

/// The release binary serving the estate, under a bounded load.
fn http(asked: &[(usize, String, String, bool)]) {
    let folder = std::env::temp_dir().join(format!("writ-serve-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    for (name, text) in estate::files(UNITS) {
        std::fs::write(folder.join(name), text).unwrap();
    }
    let binary = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/writ");
    let binary = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::PathBuf::from(dir).join("release/writ"),
        None => binary,
    };
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "writ"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = Command::new(&binary)
        .args([
            "serve",
            folder.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--audit-log",
            "/dev/null",
        ])
        .env("WRIT_TODAY", "2026-11-28")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    std::thread::spawn(move || for _ in lines {});
    let port: u16 = first
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let bodies: Vec<String> = asked
        .iter()
        .map(|(agent, action, resource, with)| {
            let context = if *with { r#","context":{"aws:RequestedRegion":"us-east-1"}"# } else { "" };
            let body = format!(
                r#"{{"subject":{{"type":"agent","id":"{}"}},"action":{{"name":"{action}"}},"resource":{{"type":"aws.prod","id":"{resource}"}}{context}}}"#,
                if agent % 2 == 0 { format!("a{}", agent / 2) } else { format!("d{}", agent / 2) }
            );
            format!(
                "POST /access/v1/evaluation HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        })
        .collect();
    let connections = 16;
    let run_for = Duration::from_secs(4);
    let started = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut samples = Vec::new();
                let mut i = c;
                while started.elapsed() < run_for {
                    let sent = Instant::now();
                    stream
                        .write_all(bodies[i % bodies.len()].as_bytes())
                        .unwrap();
                    // The reply: its head, then its body by length.
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    samples.push(sent.elapsed());
                    i += connections;
                }
                samples
            })
        })
        .collect();
    let mut samples: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let elapsed = started.elapsed();
    let count = samples.len();
    let (p50, p99) = percentiles(&mut samples);
    println!(
        "over HTTP ({connections} keep-alive connections, {:.1} s): {:.0} decisions a second, p50 {:.3} ms, p99 {:.3} ms",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&folder);
}
