//! Reading and writing a GCP project against the local GCP API of the
//! tests: 1,000 service accounts (100 of them writ's) and 200 resource
//! policies observed; 500 bindings applied over 20 resources. Reports the
//! requests (goals: at most 1 per 100 service accounts and 1 per resource
//! policy to observe; exactly 2 per resource to apply all of its bindings,
//! read and write), and measures the observation's wall time.
//!
//! Run: `cargo bench --bench gcp`.

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/gcp/mod.rs"]
#[allow(dead_code)]
mod gcp;
#[path = "../tests/it/http/mod.rs"]
#[allow(dead_code)]
mod http;

use divan::Bencher;
use serde_json::json;
use std::collections::BTreeMap;
use writ_compiler::plan::{Action, Change};
use writ_compiler::resource::ResourceKind;
use writ_provider_core::{Provider, Retrier};
use writ_provider_gcp::{GcpProvider, GcpSettings};

const PROJECT: &str = "acme-bench-1";
const ACCOUNTS: usize = 1_000;
const WRITS: usize = 100;
const BUCKETS: usize = 199;

fn main() {
    divan::main();
}

fn email(i: usize) -> String {
    format!("writ-agent-{i}@{PROJECT}.iam.gserviceaccount.com")
}

/// The project, served, and the resources the source binds on.
fn project() -> (gcp::FakeGcp, Vec<String>) {
    let buckets: Vec<String> = (0..BUCKETS).map(|i| format!("data-{i}")).collect();
    let names: Vec<&str> = buckets.iter().map(String::as_str).collect();
    let fake = gcp::FakeGcp::start(PROJECT, "123456789012", &names);
    for i in 0..ACCOUNTS {
        if i < WRITS {
            fake.add_account(
                &format!("writ-agent-{i}"),
                &format!("writ project=bench agent=agent-{i}"),
            );
        } else {
            fake.add_account(&format!("service-{i:04}"), "");
        }
    }
    let mut resources: Vec<String> = buckets
        .iter()
        .map(|b| format!("projects/_/buckets/{b}"))
        .collect();
    // Each bucket's policy: someone's binding, and one of writ's.
    for (i, resource) in resources.iter().enumerate() {
        fake.add_binding(resource, json!({"role": "roles/storage.objectViewer", "members": ["group:data@acme.com", format!("serviceAccount:{}", email(i % WRITS))]}));
    }
    resources.push(format!("projects/{PROJECT}"));
    (fake, resources)
}

fn provider(fake: &gcp::FakeGcp, resources: &[String]) -> GcpProvider {
    GcpProvider::connect(
        "gcp.bench",
        "bench",
        PROJECT,
        GcpSettings {
            endpoint_url: Some(fake.endpoint()),
            token: gcp::TOKEN.to_string(),
            quota_project: None,
        },
        resources.to_vec(),
        &Retrier::default_policy(),
    )
    .unwrap()
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn observe_and_apply(bencher: Bencher) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let (fake, resources) = project();
    let gcp = provider(&fake, &resources);
    let found = runtime.block_on(gcp.observe()).unwrap();
    let observed = fake.log().len();
    let pages = ACCOUNTS.div_ceil(100);
    let policies = resources.len();
    eprintln!(
        "\nGCP observe: {} objects in {observed} requests: 1 for the project, {pages} pages of service accounts (1 per 100), 1 Cloud Asset search, {policies} resource policies (1 each), and, for each of the {WRITS} writ service accounts, its own policy (who may act as it) and its user-managed keys (2 each); goal: 1 per 100 service accounts and 1 per resource policy",
        found.len()
    );
    assert_eq!(observed, 1 + pages + 1 + policies + 2 * WRITS);
    // Apply: 500 bindings over 20 resources, 25 each.
    let before = fake.log().len();
    runtime.block_on(async {
        for r in 0..20 {
            let resource = format!("projects/_/buckets/data-{r}");
            let bindings: Vec<serde_json::Value> = (0..25)
                .map(|b| json!({"role": format!("roles/bench.role{b}"), "members": [format!("serviceAccount:{}", email((r * 25 + b) % WRITS))]}))
                .collect();
            let change = Change {
                address: format!("gcp.bench/iam/{resource}"),
                provider: "gcp.bench".into(),
                kind: ResourceKind::GcpIamPolicy,
                agent: None,
                actions: vec![Action::Update],
                before: Some(BTreeMap::from([("resource".to_string(), json!(resource)), ("bindings".to_string(), json!([]))])),
                after: Some(BTreeMap::from([("resource".to_string(), json!(resource)), ("bindings".to_string(), json!(bindings))])),
                changed_paths: vec!["bindings".into()],
                replace_because: None,
                reason: String::new(),
            };
            gcp.apply(&change).await.unwrap();
        }
    });
    let applied = fake.log().len() - before;
    eprintln!("GCP apply: 500 bindings over 20 resources in {applied} requests ({:.1} per resource; goal: exactly 2)", applied as f64 / 20.0);
    assert_eq!(applied, 40);
    bencher.bench_local(|| {
        runtime
            .block_on(provider(&fake, &resources).observe())
            .unwrap()
    });
}
