//! writ against moto: API calls and wall time to observe 1,000 and 5,000
//! roles, 1,000 roles with 50 or 5,000 IAM users, and to apply 100 creates. The server is the bottleneck; the
//! benchmark also prints writ's own CPU time beside the wall time.
//!
//! Run: `cargo bench --bench aws` (needs Python and PyPI, like the tests).

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/moto/mod.rs"]
#[allow(dead_code)]
mod moto;

use divan::Bencher;
use std::time::Instant;
use writ_compiler::lower;
use writ_compiler::plan::{self, PlanOptions};
use writ_compiler::values::Date;
use writ_compiler::{CheckOptions, SourceMap};
use writ_provider_aws::{AwsProvider, AwsSettings};
use writ_provider_core::{Provider, Retrier};

fn main() {
    // moto accepts any credentials; the SDK reads them from the environment.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    divan::main();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// This process's CPU time (user + system), in seconds, from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn provider(moto: &moto::Moto, runtime: &tokio::runtime::Runtime) -> AwsProvider {
    let settings = AwsSettings {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(moto.endpoint()),
        flag_keys_created_before: None,
    };
    runtime.block_on(AwsProvider::connect(
        "aws.prod",
        "bench",
        "123456789012",
        "aws",
        &settings,
        &Retrier::default_policy(),
    ))
}

fn fill(moto: &moto::Moto, roles: usize) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    for i in 0..roles {
        let name = format!("agent_{i}");
        moto.iam(
            "CreateRole",
            &[
                ("RoleName", &name),
                ("Path", "/writ/bench/"),
                ("AssumeRolePolicyDocument", trust),
                ("Tags.member.1.Key", "writ:project"),
                ("Tags.member.1.Value", "bench"),
            ],
        );
    }
}

#[divan::bench(args = [1_000, 5_000], sample_count = 3)]
fn observe(bencher: Bencher, roles: usize) {
    let Some(moto) = moto::Moto::start() else {
        return;
    };
    fill(&moto, roles);
    let runtime = runtime();
    let provider = provider(&moto, &runtime);
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let before = provider.stats();
    let found = runtime.block_on(provider.observe()).expect("observe");
    let stats = provider.stats() - before;
    eprintln!(
        "observe {roles} roles: {} objects, {} requests, {:.2}s wall, {:.2}s of writ's CPU",
        found.len(),
        stats.requests,
        wall.elapsed().as_secs_f64(),
        cpu_seconds() - cpu
    );
    bencher.bench_local(|| runtime.block_on(provider.observe()).expect("observe"));
}

/// An account of 1,000 roles and `users` IAM users with a key each: the
/// users and keys come from the credential report, so the requests do not
/// grow with them (goal, issue 23: at most 10 for users and keys, plus one
/// per user whose key a finding names; it was two per key and a page of
/// users per 1,000 before).
#[divan::bench(args = [50, 5_000], sample_count = 1)]
fn observe_users(bencher: Bencher, users: usize) {
    let Some(moto) = moto::Moto::start() else {
        return;
    };
    fill(&moto, 1_000);
    let runtime = runtime();
    let provider = provider(&moto, &runtime);
    let before = provider.stats();
    runtime.block_on(provider.observe()).expect("observe");
    let roles_only = provider.stats() - before;
    for i in 0..users {
        let name = format!("human-{i:05}");
        moto.iam("CreateUser", &[("UserName", &name)]);
        moto.iam("CreateAccessKey", &[("UserName", &name)]);
    }
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let before = provider.stats();
    let found = runtime.block_on(provider.observe()).expect("observe");
    let stats = provider.stats() - before;
    assert_eq!(
        found
            .iter()
            .filter(|r| r.kind == writ_compiler::resource::ResourceKind::AwsAccessKey)
            .count(),
        users
    );
    eprintln!(
        "observe 1000 roles and {users} users with a key: {} objects, {} requests ({} more than with no user), {:.2}s wall, {:.2}s of writ's CPU",
        found.len(),
        stats.requests,
        stats.requests.saturating_sub(roles_only.requests),
        wall.elapsed().as_secs_f64(),
        cpu_seconds() - cpu
    );
    bencher.bench_local(|| runtime.block_on(provider.observe()).expect("observe"));
}

#[divan::bench(sample_count = 1)]
fn apply_100_creates(bencher: Bencher) {
    let mut text = String::from("provider aws prod {\n  account = \"123456789012\"\n}\n");
    for i in 0..100 {
        text.push_str(&format!(
            "agent a{i} {{\n  owner = \"t\"\n  ttl = 1h\n  runs_on aws.prod service \"lambda.amazonaws.com\"\n}}\n"
        ));
    }
    let mut sources = SourceMap::new();
    sources.add("estate.writ", text);
    let today = Date {
        year: 2026,
        month: 11,
        day: 28,
    };
    let checked = writ_compiler::check(&sources, &CheckOptions { today });
    let desired = lower::lower(&checked.model, "bench");
    let plan = plan::plan(
        &desired,
        &[],
        &PlanOptions {
            today,
            max_key_age_days: None,
        },
    );
    assert_eq!(plan.changes.len(), 100);
    bencher.bench_local(|| {
        let Some(moto) = moto::Moto::start() else {
            return;
        };
        let runtime = runtime();
        let provider = provider(&moto, &runtime);
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        runtime.block_on(async {
            for change in plan::apply_order(&plan) {
                provider.apply(&change).await.expect("apply");
            }
        });
        eprintln!(
            "apply 100 creates: {} requests, {:.2}s wall, {:.2}s of writ's CPU",
            provider.stats().requests,
            wall.elapsed().as_secs_f64(),
            cpu_seconds() - cpu
        );
    });
}
