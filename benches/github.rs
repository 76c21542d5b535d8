//! Reading a GitHub organisation: 100 repositories agents run in (each with
//! its subject template, two deploy keys, two Actions secrets and one
//! workflow file), observed against the local GitHub API of the tests.
//! Reports the requests per repository on a cold cache, the organisation's
//! own (once, whatever the repositories) apart (goal: at most 6)
//! and the share of a warm re-read's requests answered `304 Not Modified`
//! (goal: at least 90%), and measures the warm re-read's wall time.
//!
//! Run: `cargo bench --bench github`.

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/gh/mod.rs"]
#[allow(dead_code)]
mod gh;
#[path = "../tests/it/http/mod.rs"]
#[allow(dead_code)]
mod http;

use divan::Bencher;
use writ_provider_core::{Provider, Retrier};
use writ_provider_github::{GithubState, Repository, Workflow};

const REPOSITORIES: usize = 100;

fn main() {
    divan::main();
}

/// The organisation, served; the repositories and workflows to read.
fn organisation() -> (gh::FakeGitHub, Vec<Repository>, Vec<Workflow>) {
    let github = gh::FakeGitHub::start("acme/infra", &[]);
    let mut repositories = Vec::new();
    let mut workflows = Vec::new();
    for i in 0..REPOSITORIES {
        let name = format!("acme/service-{i}");
        github.add_repository(&name, 1_000 + i as u64);
        github.set_repository_template(&name, serde_json::json!({"use_default": false}));
        for key in 0..2 {
            github.add_deploy_key(
                &name,
                serde_json::json!({"id": i * 10 + key, "title": format!("key-{key}"), "read_only": key == 0,
                    "created_at": "2025-01-01T00:00:00Z", "last_used": null, "key": "ssh-ed25519 AAAA",
                    "verified": true, "url": "", "added_by": "octocat"}),
            );
        }
        for secret in ["NPM_TOKEN", "SLACK_WEBHOOK"] {
            github.add_secret(
                &name,
                serde_json::json!({"name": secret, "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}),
            );
        }
        github.add_file(
            &name,
            ".github/workflows/deploy.yml",
            Some("refs/heads/main"),
            "on: push\npermissions:\n  contents: read\n  id-token: write\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps: []\n",
        );
        let repository = Repository::parse(&name).unwrap();
        workflows.push(Workflow {
            repository: repository.clone(),
            path: ".github/workflows/deploy.yml".into(),
            git_ref: Some("refs/heads/main".into()),
        });
        repositories.push(repository);
    }
    github.set_org_template(serde_json::json!({"include_claim_keys": ["repo", "context"], "use_immutable_subject": true}));
    (github, repositories, workflows)
}

fn state(
    github: &gh::FakeGitHub,
    repositories: &[Repository],
    workflows: &[Workflow],
    cache: &std::path::Path,
) -> GithubState {
    GithubState::connect(
        "github.acme",
        "acme",
        writ_provider_github::Governed {
            repositories: repositories.to_vec(),
            workflows: workflows.to_vec(),
            environments: Vec::new(),
        },
        writ_provider_github::Connection {
            api: github.api(),
            token: gh::TOKEN.to_string(),
            cache: Some(cache.to_path_buf()),
            app: None,
        },
        &Retrier::default_policy(),
    )
    .unwrap()
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn warm_reread(bencher: Bencher) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The client is built inside the runtime (its connection pool needs
    // one).
    let _entered = runtime.enter();
    let (github, repositories, workflows) = organisation();
    let cache = std::env::temp_dir().join(format!("writ-github-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    // Cold: every answer in full.
    let cold = state(&github, &repositories, &workflows, &cache);
    let found = runtime.block_on(cold.observe()).unwrap();
    let cold_requests = github.log().len();
    // The organisation's own requests (its template, App installations,
    // personal access tokens) are once, whatever the repositories.
    let organisation_requests = github
        .log()
        .iter()
        .filter(|l| l.path.starts_with("/orgs/"))
        .count();
    // Warm: asked again with each answer's ETag.
    let warm = state(&github, &repositories, &workflows, &cache);
    runtime.block_on(warm.observe()).unwrap();
    let warm_log: Vec<u16> = github.log()[cold_requests..]
        .iter()
        .map(|l| l.status)
        .collect();
    let not_modified = warm_log.iter().filter(|s| **s == 304).count();
    eprintln!(
        "\nGitHub: {} objects; cold: {cold_requests} requests, {organisation_requests} for the organisation and {:.2} per repository, its workflow file included (goal: at most 6); warm: {} requests, {:.1}% answered 304 (goal: at least 90%)",
        found.len(),
        (cold_requests - organisation_requests) as f64 / REPOSITORIES as f64,
        warm_log.len(),
        100.0 * not_modified as f64 / warm_log.len().max(1) as f64
    );
    bencher.bench_local(|| {
        let warm = state(&github, &repositories, &workflows, &cache);
        runtime.block_on(warm.observe()).unwrap()
    });
    let _ = std::fs::remove_dir_all(&cache);
}
