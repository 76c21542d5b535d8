//! writ against the local Kubernetes API server of the tests: requests and
//! wall time to observe 10,000 RBAC objects (2,000 each of service
//! accounts, Roles, RoleBindings, ClusterRoles and ClusterRoleBindings).
//! The goal: at most one request per 500 objects.
//!
//! Run: `cargo bench --bench kubernetes`.

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/http/mod.rs"]
#[allow(dead_code)]
mod http;
#[path = "../tests/it/kube/mod.rs"]
#[allow(dead_code)]
mod kube;

use divan::Bencher;
use serde_json::json;
use std::time::Instant;
use writ_provider_core::{Provider, Retrier};
use writ_provider_kubernetes::{KubernetesProvider, KubernetesSettings};

fn main() {
    divan::main();
}

fn fill(cluster: &kube::FakeCluster, per_kind: usize) {
    cluster.add_namespace("agents");
    let rules = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]);
    let labels = json!({"app.kubernetes.io/managed-by": "writ", "writ.dev/project": "bench"});
    for i in 0..per_kind {
        let name = format!("agent-{i:05}");
        let metadata = json!({"name": name, "namespace": "agents", "labels": labels});
        let cluster_metadata = json!({"name": name, "labels": labels});
        let role_ref = |kind: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name});
        let subjects = json!([{"kind": "ServiceAccount", "name": name, "namespace": "agents"}]);
        cluster.insert(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata, "automountServiceAccountToken": false}));
        cluster.insert(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata, "rules": rules}));
        cluster.insert(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata, "roleRef": role_ref("Role"), "subjects": subjects}));
        cluster.insert(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": cluster_metadata, "rules": rules}));
        cluster.insert(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": cluster_metadata, "roleRef": role_ref("ClusterRole"), "subjects": subjects}));
    }
}

#[divan::bench(args = [10_000], sample_count = 5)]
fn observe(bencher: Bencher, objects: usize) {
    let cluster = kube::FakeCluster::start();
    fill(&cluster, objects / 5);
    let kubeconfig = std::env::temp_dir().join(format!("writ-bench-kubeconfig-{}", cluster.port));
    cluster.write_kubeconfig(&kubeconfig);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let settings = KubernetesSettings {
        context: Some("fake".into()),
        kubeconfig: Some(kubeconfig.clone()),
        ..Default::default()
    };
    let provider = runtime
        .block_on(KubernetesProvider::connect(
            "kubernetes.bench",
            "bench",
            &settings,
            &Retrier::default_policy(),
        ))
        .expect("connect");
    let wall = Instant::now();
    let before = provider.stats();
    let found = runtime.block_on(provider.observe()).expect("observe");
    let stats = provider.stats() - before;
    eprintln!(
        "observe {objects} RBAC objects: {} objects read, {} requests (one per {} objects), {:.2}s wall",
        found.len(),
        stats.requests,
        found.len() / stats.requests.max(1),
        wall.elapsed().as_secs_f64()
    );
    bencher.bench_local(|| runtime.block_on(provider.observe()).expect("observe"));
    let _ = std::fs::remove_file(kubeconfig);
}
