//! The emergency brake: `writ revoke parent --include-delegates`, one agent
//! with 10 delegates, each with an AWS role (against moto) and a service
//! account with RBAC (against the local Kubernetes API server of the
//! tests). Measures the requests each provider sends and the wall time of
//! the whole brake. The goal: every role closed within 3 requests, the whole
//! brake under 2 s against these local servers.
//!
//! Each sample starts from the estate as applied: the revocations of the
//! sample before are lifted and the plan applied again (not measured).
//!
//! Run: `cargo bench --bench brake` (needs Python and PyPI, like the tests).

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/http/mod.rs"]
#[allow(dead_code)]
mod http;
#[path = "../tests/it/kube/mod.rs"]
#[allow(dead_code)]
mod kube;
#[path = "../tests/it/moto/mod.rs"]
#[allow(dead_code)]
mod moto;

use divan::Bencher;
use std::time::Instant;
use writ_compiler::plan::{self, PlanOptions};
use writ_compiler::values::Date;
use writ_compiler::{lower, CheckOptions, SourceMap};
use writ_provider_aws::{AwsProvider, AwsSettings};
use writ_provider_core::{Provider, Retrier, RevokeMark};
use writ_provider_kubernetes::{KubernetesProvider, KubernetesSettings};

const DELEGATES: usize = 10;

fn main() {
    // moto accepts any credentials; the SDK reads them from the environment.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    divan::main();
}

fn source() -> String {
    let mut text = String::from(
        r#"provider aws prod {
  account = "123456789012"
}
provider kubernetes prod {
  cluster = "prod-eks"
  oidc_issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/BENCH"
}
agent parent {
  owner = "team"
  ttl = 1h
  runs_on kubernetes.prod namespace "agents" service_account "parent"
  aws.prod allow s3:GetObject on "arn:aws:s3:::data/*"
  kubernetes.prod allow get, list on "configmaps" in namespace "agents"
  delegates {
    ttl = 1h
    aws.prod allow s3:GetObject on "arn:aws:s3:::data/*"
    kubernetes.prod allow get on "configmaps" in namespace "agents"
  }
}
"#,
    );
    for i in 0..DELEGATES {
        text.push_str(&format!(
            r#"agent helper_{i} {{
  owner = "team"
  parent = parent
  ttl = 1h
  runs_on kubernetes.prod namespace "agents" service_account "helper-{i}"
  aws.prod allow s3:GetObject on "arn:aws:s3:::data/{i}/*"
  kubernetes.prod allow get on "configmaps" in namespace "agents"
}}
"#
        ));
    }
    text
}

struct Estate {
    aws: AwsProvider,
    cluster: KubernetesProvider,
    desired: lower::Desired,
    agents: Vec<String>,
    runtime: tokio::runtime::Runtime,
}

impl Estate {
    fn providers(&self) -> [&dyn Provider; 2] {
        [&self.aws, &self.cluster]
    }

    /// Lifts every revocation, then plans and applies until nothing is left.
    fn restore(&self) {
        let today = Date {
            year: 2026,
            month: 11,
            day: 29,
        };
        self.runtime.block_on(async {
            for provider in self.providers() {
                for agent in &self.agents {
                    let lifted = provider.lift(agent).await;
                    assert!(!lifted.failed, "{:?}", lifted.lines);
                }
            }
            let mut observed = Vec::new();
            for provider in self.providers() {
                observed.extend(provider.observe().await.expect("observe"));
            }
            let plan = plan::plan(
                &self.desired,
                &observed,
                &PlanOptions {
                    today,
                    max_key_age_days: None,
                },
            );
            for change in plan::apply_order(&plan) {
                let provider = self
                    .providers()
                    .into_iter()
                    .find(|p| p.address() == change.provider)
                    .unwrap();
                provider.apply(&change).await.expect("apply");
            }
            for provider in self.providers() {
                provider.finish().await.expect("finish");
            }
        });
    }

    /// The brake: every agent revoked in every provider, as `writ revoke
    /// parent --include-delegates` does. Requests per provider.
    fn brake(&self) -> (usize, usize) {
        let mark = RevokeMark {
            at: "2026-11-29T12:00:00Z".to_string(),
            by: Some("bench".to_string()),
        };
        let (aws, cluster) = (self.aws.stats(), self.cluster.stats());
        self.runtime.block_on(async {
            for provider in self.providers() {
                let wall = Instant::now();
                for agent in &self.agents {
                    let report = provider.revoke(agent, &mark, &[]).await;
                    assert!(!report.failed, "{:?}", report.lines);
                }
                eprintln!(
                    "  {}: {:.2}s",
                    provider.address(),
                    wall.elapsed().as_secs_f64()
                );
            }
        });
        (
            (self.aws.stats() - aws).requests,
            (self.cluster.stats() - cluster).requests,
        )
    }
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn revoke_one_agent_with_ten_delegates(bencher: Bencher) {
    let Some(moto) = moto::Moto::start() else {
        eprintln!("skipped: moto cannot run here");
        return;
    };
    let fake = kube::FakeCluster::start();
    fake.add_namespace("agents");
    let kubeconfig = std::env::temp_dir().join(format!("writ-bench-brake-{}", fake.port));
    fake.write_kubeconfig(&kubeconfig);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let retrier = Retrier::default_policy();
    let aws = runtime.block_on(AwsProvider::connect(
        "aws.prod",
        "acme",
        "123456789012",
        "aws",
        &AwsSettings {
            region: Some("us-east-1".into()),
            profile: None,
            endpoint_url: Some(moto.endpoint()),
            flag_keys_created_before: None,
        },
        &retrier,
    ));
    let cluster = runtime
        .block_on(KubernetesProvider::connect(
            "kubernetes.prod",
            "acme",
            &KubernetesSettings {
                context: Some("fake".into()),
                kubeconfig: Some(kubeconfig),
                ..Default::default()
            },
            &retrier,
        ))
        .expect("connect");
    let mut sources = SourceMap::new();
    sources.add("brake.writ", source());
    let today = Date {
        year: 2026,
        month: 11,
        day: 29,
    };
    let checked = writ_compiler::check(&sources, &CheckOptions { today });
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let desired = lower::lower(&checked.model, "acme");
    let mut agents = vec!["parent".to_string()];
    agents.extend((0..DELEGATES).map(|i| format!("helper_{i}")));
    let estate = Estate {
        aws,
        cluster,
        desired,
        agents,
        runtime,
    };
    estate.restore();
    let wall = Instant::now();
    let (aws, cluster) = estate.brake();
    let roles = DELEGATES + 1;
    eprintln!(
        "revoke 1 agent with {DELEGATES} delegates: AWS {aws} requests ({:.1} per role), Kubernetes {cluster} requests ({:.1} per agent), {:.2}s wall",
        aws as f64 / roles as f64,
        cluster as f64 / roles as f64,
        wall.elapsed().as_secs_f64()
    );
    bencher
        .with_inputs(|| estate.restore())
        .bench_local_values(|()| estate.brake());
}
