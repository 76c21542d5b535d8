//! `writ serve` (issue 19): decisions on a 10,000-agent model (the shared
//! estate: 5,000 teams of an agent with a delegation ceiling and its
//! delegate), in process and over HTTP on loopback.
//!
//! - In process: the decision engine's `decide`, each call timed, on a mix
//!   of allowed and denied requests (grants through scopes, a conditional
//!   grant with its key, a guardrail, a delegate within its parent's
//!   ceiling); the evaluator `writ explain` uses, on the same requests,
//!   beside it. Goal: p50 ≤ 1 µs, p99 ≤ 5 µs.
//! - The comparison with the Cedar policy engine is a package of its own,
//!   `benches/cedar/` (Cedar's crates would change the features of
//!   `serde_json` that writ's own tests and benchmarks build with).
//! - Over HTTP: the release binary serving the estate, and a bounded load
//!   generator (a fixed number of keep-alive connections for a fixed
//!   time, loopback only). Goal: 50,000 decisions a second, p99 under 2 ms.
//!
//! - Credentials: the release binary issuing Kubernetes tokens to 100
//!   agents of a local API server (the tests'), each request a proof
//!   checked by TokenReview and a token made by TokenRequest, one after
//!   another; beside it, the same two calls made to the API server
//!   directly. writ's own overhead is the difference. Goal: under 5 ms
//!   p99.
//!
//! Run: `cargo bench --bench serve`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/http/mod.rs"]
#[allow(dead_code)]
mod http;
#[path = "../tests/it/kube/mod.rs"]
#[allow(dead_code)]
mod kube;

#[path = "common/decisions.rs"]
mod decisions;
#[path = "common/estate.rs"]
mod estate;

use decisions::{make, percentiles, Ask, UNITS};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let (model, engine) = decisions::estate();
    let (aws, asked) = decisions::mix(&engine);
    let region = decisions::region();
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
    let binary = release_binary();
    http(&binary, &asked);
    credentials(&binary);
}

/// The release binary, built.
fn release_binary() -> std::path::PathBuf {
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
    binary
}

/// `writ serve` on `folder`, and the port it listens on.
fn start(binary: &std::path::Path, folder: &std::path::Path) -> (std::process::Child, u16) {
    let mut child = Command::new(binary)
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
    let first = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.contains("listening on"))
        .unwrap();
    std::thread::spawn(move || for _ in lines {});
    let port: u16 = first
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    (child, port)
}

/// One request on a keep-alive connection: the status and the body.
fn exchange(
    stream: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    request: &str,
) -> (u16, String) {
    stream.write_all(request.as_bytes()).unwrap();
    let mut status = 0;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if status == 0 {
            status = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

fn post(path: &str, headers: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Credentials issued one after another, and the provider's own share.
fn credentials(binary: &std::path::Path) {
    const AGENTS: usize = 100;
    const REQUESTS: usize = 2_000;
    let cluster = kube::FakeCluster::start();
    cluster.add_namespace("agents");
    let mut source = String::from("provider kubernetes prod {\n  cluster = \"bench\"\n}\n");
    for i in 0..AGENTS {
        let name = format!("agent-{i:03}");
        cluster.insert(serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "agents"}}));
        source.push_str(&format!(
            "agent a{i} {{\n  owner = \"team\"\n  ttl = 1h\n  runs_on kubernetes.prod namespace \"agents\" service_account \"{name}\"\n  kubernetes.prod allow get on \"configmaps\" in namespace \"agents\"\n}}\n"
        ));
    }
    let folder =
        std::env::temp_dir().join(format!("writ-serve-credentials-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    cluster.write_project(&folder, &source);
    let toml = std::fs::read_to_string(folder.join("writ.toml")).unwrap();
    std::fs::write(
        folder.join("writ.toml"),
        format!("{toml}\n[serve]\ncredentials = true\n"),
    )
    .unwrap();
    let proofs: Vec<String> = (0..AGENTS)
        .map(|i| cluster.token_for("agents", &format!("agent-{i:03}"), &["writ"], 3600))
        .collect();
    let (mut child, port) = start(binary, &folder);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut issued = Vec::with_capacity(REQUESTS);
    for n in 0..REQUESTS + 50 {
        let body = format!(
            r#"{{"proof":{{"type":"kubernetes","provider":"kubernetes.prod","token":"{}"}},"provider":"kubernetes.prod","ttl":"15m"}}"#,
            proofs[n % AGENTS]
        );
        let request = post("/v1/credentials", "", &body);
        let sent = Instant::now();
        let (status, answer) = exchange(&mut stream, &mut reader, &request);
        let took = sent.elapsed();
        assert_eq!(status, 200, "{answer}");
        // The first ones connect to the cluster.
        if n >= 50 {
            issued.push(took);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // The same two calls, straight to the API server.
    let mut api = TcpStream::connect(("127.0.0.1", cluster.port)).unwrap();
    api.set_nodelay(true).unwrap();
    let mut api_reader = BufReader::new(api.try_clone().unwrap());
    let bearer = format!("Authorization: Bearer {}\r\n", kube::TOKEN);
    let mut direct = Vec::with_capacity(REQUESTS);
    for n in 0..REQUESTS {
        let review = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": proofs[n % AGENTS], "audiences": ["writ"]}});
        let request = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 900}});
        let sent = Instant::now();
        let (a, _) = exchange(
            &mut api,
            &mut api_reader,
            &post(
                "/apis/authentication.k8s.io/v1/tokenreviews",
                &bearer,
                &review.to_string(),
            ),
        );
        let path = format!(
            "/api/v1/namespaces/agents/serviceaccounts/agent-{:03}/token",
            n % AGENTS
        );
        let (b, _) = exchange(
            &mut api,
            &mut api_reader,
            &post(&path, &bearer, &request.to_string()),
        );
        direct.push(sent.elapsed());
        assert_eq!((a, b), (201, 201));
    }
    let (p50, p99) = percentiles(&mut issued);
    let (d50, d99) = percentiles(&mut direct);
    println!(
        "credentials ({REQUESTS} Kubernetes tokens, one at a time): p50 {:.3} ms, p99 {:.3} ms; the provider's two calls alone: p50 {:.3} ms, p99 {:.3} ms; writ's own share: p50 {:.3} ms, p99 at most {:.3} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        d50.as_secs_f64() * 1e3,
        d99.as_secs_f64() * 1e3,
        (p50.saturating_sub(d50)).as_secs_f64() * 1e3,
        (p99.saturating_sub(d50)).as_secs_f64() * 1e3,
    );
    let _ = std::fs::remove_dir_all(&folder);
}

/// The release binary serving the estate, under a bounded load.
fn http(binary: &std::path::Path, asked: &[Ask]) {
    let folder = std::env::temp_dir().join(format!("writ-serve-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    for (name, text) in estate::files(UNITS) {
        std::fs::write(folder.join(name), text).unwrap();
    }
    let (mut child, port) = start(binary, &folder);
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
