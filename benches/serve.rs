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
//! Run: `cargo bench --bench serve`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
    http(&asked);
}

/// The release binary serving the estate, under a bounded load.
fn http(asked: &[Ask]) {
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
