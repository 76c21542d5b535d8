//! writ against a local Kubernetes API server (tests/kube): plan, apply,
//! drift, ownership, conflicts and revocation, end to end through the
//! binary and the real `kube` client, connected by a kubeconfig; one test
//! drives the same server with `kubectl`, to check the fake against the
//! protocol; one runs a project that uses AWS (moto) and Kubernetes at once.

use crate::binary::{apply, assert_no_changes, text, writ, writ_with};
use crate::kube::FakeCluster;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CLUSTER: &str = r#"provider kubernetes prod {
  cluster = "prod-eks"
}
"#;

const EXPORTER: &str = r#"
agent exporter {
  owner = "team-billing"
  ttl = 1h
  runs_on kubernetes.prod namespace "billing" service_account "exporter"
  kubernetes.prod allow get, list on "configmaps" in namespace "billing"
  kubernetes.prod allow get on "secrets" named "exporter-config" in namespace "billing"
  kubernetes.prod allow get, list on "namespaces" in cluster
}
"#;

const JOB_RUNNER: &str = r#"
agent job_runner {
  owner = "team-platform"
  ttl = 30m
  runs_on kubernetes.prod namespace "jobs" service_account "runner"
  kubernetes.prod allow create, get on "jobs.batch" in namespace "jobs"
}
"#;

/// A project folder connected to the fake cluster through a kubeconfig.
fn project(name: &str, cluster: &FakeCluster, source: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("kubernetes")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    cluster.write_project(&root, source);
    root
}

fn cluster() -> FakeCluster {
    let cluster = FakeCluster::start();
    for namespace in ["billing", "jobs", "ci"] {
        cluster.add_namespace(namespace);
    }
    cluster
}

fn label<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object["metadata"]["labels"][name].as_str()
}

#[test]
fn a_fresh_cluster_converges_and_a_second_plan_is_empty() {
    let cluster = cluster();
    let root = project(
        "fresh",
        &cluster,
        &format!("{CLUSTER}{EXPORTER}{JOB_RUNNER}"),
    );
    let first = writ(&root, &["plan", "--detailed-exitcode"]);
    assert_eq!(first.status.code(), Some(2), "{}", text(&first));
    let applied = apply(&root);
    // Two service accounts, two Role/RoleBinding pairs, one ClusterRole pair.
    assert!(
        applied.contains("Apply complete: 8 of 8 changes made."),
        "{applied}"
    );
    assert_no_changes(&root);

    let account = cluster
        .get("serviceaccounts", "billing", "exporter")
        .expect("service account");
    assert_eq!(account["automountServiceAccountToken"], json!(false));
    assert_eq!(
        label(&account, "app.kubernetes.io/managed-by"),
        Some("writ")
    );
    assert_eq!(label(&account, "writ.dev/project"), Some("acme"));
    assert_eq!(label(&account, "writ.dev/agent"), Some("exporter"));
    assert_eq!(
        account["metadata"]["annotations"]["writ.dev/owner"],
        "team-billing"
    );
    assert!(account["metadata"]["annotations"]["writ.dev/digest"].is_string());

    let role = cluster
        .get("roles", "billing", "writ-exporter")
        .expect("role");
    let rules = role["rules"].as_array().unwrap();
    assert!(
        rules.contains(&json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["exporter-config"]})),
        "{rules:?}"
    );
    let binding = cluster
        .get("rolebindings", "billing", "writ-exporter")
        .expect("binding");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "writ-exporter"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "exporter", "namespace": "billing"}])
    );
    // Cluster-wide names carry the project; `_` becomes `-`.
    assert!(cluster
        .get("clusterroles", "", "writ-acme-exporter")
        .is_some());
    assert!(cluster
        .get("clusterrolebindings", "", "writ-acme-exporter")
        .is_some());
    assert!(cluster.get("roles", "jobs", "writ-job-runner").is_some());
    // Observation asks for token Secrets as metadata only.
    let secrets: Vec<_> = cluster
        .log()
        .into_iter()
        .filter(|r| r.path.ends_with("/secrets") && r.method == "GET")
        .collect();
    assert!(!secrets.is_empty());
    assert!(secrets
        .iter()
        .all(|r| r.accept.contains("as=PartialObjectMetadataList")));
}

#[test]
fn an_edited_role_is_drift_and_apply_restores_it() {
    let cluster = cluster();
    let root = project("drift", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    apply(&root);
    let before = cluster.get("roles", "billing", "writ-exporter").unwrap()["rules"].clone();
    cluster.edit("roles", "billing", "writ-exporter", |role| {
        role["rules"][0]["verbs"] = json!(["*"]);
    });
    let drift = writ(&root, &["drift", "--detailed-exitcode"]);
    let shown = text(&drift);
    assert_eq!(drift.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("kubernetes.prod/namespaces/billing/roles/writ-exporter"),
        "{shown}"
    );
    assert!(shown.contains("[rules]"), "{shown}");
    let plan = text(&writ(&root, &["plan"]));
    assert!(plan.contains("restores"), "{plan}");
    apply(&root);
    assert_eq!(
        cluster.get("roles", "billing", "writ-exporter").unwrap()["rules"],
        before
    );
    assert_no_changes(&root);
}

#[test]
fn a_removed_agent_loses_exactly_its_objects_and_unmanaged_ones_are_untouched() {
    let cluster = cluster();
    let root = project(
        "removal",
        &cluster,
        &format!("{CLUSTER}{EXPORTER}{JOB_RUNNER}"),
    );
    apply(&root);
    // Objects writ does not own, in the same namespaces: a hand-made role
    // and binding, a look-alike named like writ's, another project's role.
    cluster.insert(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "hand-made", "namespace": "jobs"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
    );
    cluster.insert(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "hand-made", "namespace": "jobs"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hand-made"},
        "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "jobs"}]}),
    );
    cluster.insert(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "writ-lookalike", "namespace": "jobs", "labels": {"app.kubernetes.io/managed-by": "someone-else"}},
        "rules": []}));
    cluster.insert(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "writ-theirs", "namespace": "jobs",
            "labels": {"app.kubernetes.io/managed-by": "writ", "writ.dev/project": "other", "writ.dev/agent": "theirs"}},
        "rules": []}));
    std::fs::write(root.join("main.writ"), format!("{CLUSTER}{EXPORTER}")).unwrap();
    let plan = text(&writ(&root, &["plan"]));
    // The hand-made binding of the runner's account is inventoried.
    assert!(plan.contains("RoleBinding `jobs/hand-made`"), "{plan}");
    // 3 of 8 objects, one agent: over the breaker's share, but under its
    // floor, so no flag is needed.
    let applied = text(&writ(&root, &["apply", "--auto-approve"]));
    assert!(
        applied.contains("Apply complete: 3 of 3 changes made."),
        "{applied}"
    );
    assert_eq!(
        cluster.names("roles"),
        [
            "billing/writ-exporter",
            "jobs/hand-made",
            "jobs/writ-lookalike",
            "jobs/writ-theirs"
        ]
    );
    assert_eq!(
        cluster.names("rolebindings"),
        ["billing/writ-exporter", "jobs/hand-made"]
    );
    assert_eq!(cluster.names("serviceaccounts"), ["billing/exporter"]);
    assert_no_changes(&root);
}

#[test]
fn a_write_that_loses_a_race_reads_again_and_retries() {
    let cluster = cluster();
    let root = project("conflict", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    apply(&root);
    std::fs::write(
        root.join("main.writ"),
        format!(
            "{CLUSTER}{}",
            EXPORTER.replace(
                "allow get, list on \"configmaps\"",
                "allow get, list, watch on \"configmaps\""
            )
        ),
    )
    .unwrap();
    // Another writer changes the role between writ's read and its write.
    cluster.race_next_writes(1);
    cluster.clear_log();
    let applied = apply(&root);
    assert!(applied.contains("Apply complete"), "{applied}");
    let puts = cluster
        .log()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/roles/writ-exporter"))
        .count();
    assert_eq!(
        puts, 2,
        "the stale write is refused, then retried after a fresh read"
    );
    let role = cluster.get("roles", "billing", "writ-exporter").unwrap();
    assert!(role["rules"].to_string().contains("watch"), "{role}");
    // The other writer's annotation is not writ's: the next plan removes it.
    assert!(
        role["metadata"]["annotations"]
            .get("example.com/other-writer")
            .is_none(),
        "{role}"
    );
    assert_no_changes(&root);
}

#[test]
fn a_binding_whose_role_ref_changes_is_replaced() {
    let cluster = cluster();
    let root = project("replace", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    apply(&root);
    // As an older writ would have left it: bound to another role, which the
    // API does not let anyone change in place.
    let old = cluster
        .get("rolebindings", "billing", "writ-exporter")
        .unwrap();
    cluster.edit("rolebindings", "billing", "writ-exporter", |binding| {
        binding["roleRef"]["name"] = json!("writ-exporter-old");
    });
    let plan = text(&writ(&root, &["plan"]));
    assert!(plan.contains("role_ref"), "{plan}");
    assert!(plan.contains("cannot change in place"), "{plan}");
    let applied = apply(&root);
    assert!(
        applied.contains("Apply complete: 1 of 1 changes made."),
        "{applied}"
    );
    let new = cluster
        .get("rolebindings", "billing", "writ-exporter")
        .unwrap();
    assert_eq!(new["roleRef"]["name"], "writ-exporter");
    assert_ne!(
        new["metadata"]["uid"], old["metadata"]["uid"],
        "deleted and created again"
    );
    assert_no_changes(&root);
}

#[test]
fn long_lived_tokens_of_writ_accounts_are_deleted_and_others_are_listed() {
    let cluster = cluster();
    let root = project("tokens", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    apply(&root);
    let secret = |name: &str, namespace: &str, account: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": name, "namespace": namespace,
                "annotations": {"kubernetes.io/service-account.name": account}},
            "data": {"token": "c2VjcmV0LXRva2VuLWRhdGE="}})
    };
    cluster.insert(secret("exporter-token", "billing", "exporter"));
    cluster.insert(secret("jenkins-token", "ci", "jenkins"));
    cluster.insert(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "exporter-config", "namespace": "billing"}, "data": {"a": "Yg=="}}),
    );
    let plan = text(&writ(&root, &["plan"]));
    assert!(plan.contains("secrets/exporter-token"), "{plan}");
    assert!(plan.contains("ttl"), "{plan}");
    assert!(plan.contains("jenkins-token"), "{plan}");
    // The snapshot holds the Secrets' names, never their data.
    let snapshot = text(&writ(&root, &["snapshot"]));
    assert!(snapshot.contains("jenkins-token"), "{snapshot}");
    assert!(!snapshot.contains("c2VjcmV0"), "{snapshot}");
    assert!(
        !snapshot.contains("secrets/exporter-config"),
        "not a token: {snapshot}"
    );
    apply(&root);
    assert_eq!(
        cluster.names("secrets"),
        [
            "billing/exporter-config",
            "ci/jenkins-token",
            "default/writ-inventory-acme"
        ]
    );
    assert_no_changes(&root);
}

const HELPER: &str = r#"
agent exporter_helper {
  owner = "team-billing"
  parent = exporter
  ttl = 15m
  runs_on kubernetes.prod namespace "billing" service_account "exporter-helper"
  kubernetes.prod allow get on "configmaps" in namespace "billing"
}
"#;

/// The rules of a Role that let someone mint tokens, as names.
fn minting(role: &Value) -> Vec<String> {
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| {
            rule["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("serviceaccounts/token"))
        })
        .flat_map(|rule| {
            rule["resourceNames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|name| name.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn revoke_deletes_the_service_account_and_plans_keep_it_absent_until_lifted() {
    let cluster = cluster();
    let exporter = EXPORTER.replace(
        "  kubernetes.prod allow get, list on \"namespaces\" in cluster\n",
        "  kubernetes.prod allow get, list on \"namespaces\" in cluster\n  delegates {\n    ttl = 15m\n    kubernetes.prod allow get on \"configmaps\" in namespace \"billing\"\n  }\n",
    );
    let root = project(
        "revoke",
        &cluster,
        &format!("{CLUSTER}{exporter}{HELPER}{JOB_RUNNER}"),
    );
    apply(&root);
    let first_uid = cluster
        .get("serviceaccounts", "billing", "exporter-helper")
        .unwrap()["metadata"]["uid"]
        .clone();
    assert_eq!(
        minting(&cluster.get("roles", "billing", "writ-exporter").unwrap()),
        ["exporter-helper"],
        "the parent may mint its delegate's tokens"
    );
    cluster.insert(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "helper-token", "namespace": "billing",
            "annotations": {"kubernetes.io/service-account.name": "exporter-helper"}}}),
    );
    // Labelled as the agent's by someone else: in the cluster's own
    // namespace, and a service account writ never made. Never writ's, so
    // the revoke leaves both and carries on.
    cluster.add_namespace("kube-system");
    let spoofed = json!({"app.kubernetes.io/managed-by": "writ", "writ.dev/project": "acme",
        "writ.dev/agent": "exporter_helper"});
    cluster.insert(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": spoofed},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "coredns"},
        "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]
    }));
    cluster.insert(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "payments-app", "namespace": "billing", "labels": spoofed}}));
    // A binding someone else made to the helper's account.
    cluster.insert(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "helper-extra", "namespace": "billing"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "exporter-helper", "namespace": "billing"}]
    }));

    // Revoking the delegate alone.
    let revoked = writ_with(
        &root,
        &["revoke", "exporter_helper"],
        &[("WRIT_ACTOR", "oncall-ana")],
    );
    let shown = text(&revoked);
    assert_eq!(
        revoked.status.code(),
        Some(1),
        "the spoofed account is named as not revoked: {shown}"
    );
    assert!(
        shown.contains("deleted service account `billing/exporter-helper`"),
        "{shown}"
    );
    assert!(shown.contains("`billing/payments-app` is labelled as `exporter_helper`'s, but its UID is not in writ's inventory record"), "{shown}");
    assert!(
        shown.contains("RoleBinding `billing/helper-extra`, which writ did not make"),
        "{shown}"
    );
    assert!(shown.contains("removed the right to mint its tokens from `kubernetes.prod/namespaces/billing/roles/writ-exporter`"), "{shown}");
    assert!(
        cluster
            .get("serviceaccounts", "billing", "exporter-helper")
            .is_none(),
        "gone: every token bound to it is void"
    );
    assert!(
        cluster
            .get("serviceaccounts", "billing", "payments-app")
            .is_some(),
        "{shown}"
    );
    assert!(cluster
        .get("rolebindings", "kube-system", "coredns")
        .is_some());
    assert!(
        cluster
            .get("rolebindings", "billing", "helper-extra")
            .is_some(),
        "named, not touched"
    );
    assert!(cluster
        .get("rolebindings", "billing", "writ-exporter-helper")
        .is_none());
    assert!(cluster.get("secrets", "billing", "helper-token").is_none());
    assert!(
        minting(&cluster.get("roles", "billing", "writ-exporter").unwrap()).is_empty(),
        "the parent may no longer mint the delegate's tokens"
    );
    assert!(
        cluster
            .get("rolebindings", "billing", "writ-exporter")
            .is_some(),
        "the parent keeps its own access"
    );

    // Plans keep the delegate cut off: no account, no binding, no minting,
    // and no drift on the parent's Role.
    let plan = text(&writ(&root, &["plan", "--detailed-exitcode"]));
    assert!(plan.contains("No changes"), "{plan}");
    assert!(plan.contains("Revoked (kept by every apply"), "{plan}");
    assert!(
        plan.contains("`exporter_helper`: kubernetes.prod"),
        "{plan}"
    );
    assert!(plan.contains("by oncall-ana"), "{plan}");
    assert!(
        plan.contains("claims to be writ's"),
        "the spoofed account is listed: {plan}"
    );
    // Someone makes the account again, with writ's labels: writ did not
    // make it, so it is listed, and still gets no binding.
    cluster.insert(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "exporter-helper", "namespace": "billing",
            "labels": {"app.kubernetes.io/managed-by": "writ", "writ.dev/project": "acme",
                "writ.dev/agent": "exporter_helper"}}}));
    let plan = text(&writ(&root, &["plan", "--detailed-exitcode"]));
    assert!(plan.contains("No changes"), "{plan}");
    assert!(plan.contains("serviceaccounts/exporter-helper: labelled as this project's, but writ cannot show it made it"), "{plan}");
    // Removing the agent from the source does not lift it either.
    std::fs::write(
        root.join("main.writ"),
        format!("{CLUSTER}{exporter}{JOB_RUNNER}"),
    )
    .unwrap();
    let plan = text(&writ(&root, &["plan"]));
    assert!(
        plan.contains("`exporter_helper`: kubernetes.prod"),
        "{plan}"
    );
    std::fs::write(
        root.join("main.writ"),
        format!("{CLUSTER}{exporter}{HELPER}{JOB_RUNNER}"),
    )
    .unwrap();

    // Lifting, then applying, makes a new account and gives everything back.
    let lifted = text(&writ(&root, &["revoke", "--lift", "exporter_helper"]));
    assert!(
        lifted.contains("lifted the revocation of `exporter_helper`"),
        "{lifted}"
    );
    apply(&root);
    let account = cluster
        .get("serviceaccounts", "billing", "exporter-helper")
        .unwrap();
    assert_ne!(account["metadata"]["uid"], first_uid, "a new account");
    assert!(cluster
        .get("rolebindings", "billing", "writ-exporter-helper")
        .is_some());
    assert_eq!(
        minting(&cluster.get("roles", "billing", "writ-exporter").unwrap()),
        ["exporter-helper"]
    );
    assert_no_changes(&root);

    // Revoking the parent: its own account goes too.
    let revoked = writ(&root, &["revoke", "exporter"]);
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked));
    assert!(cluster
        .get("serviceaccounts", "billing", "exporter")
        .is_none());
    assert!(cluster
        .get("rolebindings", "billing", "writ-exporter")
        .is_none());
    assert!(cluster
        .get("clusterrolebindings", "", "writ-acme-exporter")
        .is_none());
    assert_eq!(
        cluster.names("rolebindings"),
        [
            "billing/helper-extra",
            "billing/writ-exporter-helper",
            "jobs/writ-job-runner",
            "kube-system/coredns"
        ]
    );
    assert_no_changes(&root);
}

#[test]
fn objects_of_others_are_conflicts_and_are_never_taken_over() {
    let cluster = cluster();
    cluster.insert(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "exporter", "namespace": "billing", "labels": {"team": "billing"}}}));
    let root = project("conflicts", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    let plan = text(&writ(&root, &["plan"]));
    assert!(plan.contains("a service account of that name exists (without writ's labels) but is not managed by writ project `acme`"), "{plan}");
    let refused = writ(&root, &["apply", "--auto-approve"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let account = cluster
        .get("serviceaccounts", "billing", "exporter")
        .unwrap();
    assert_eq!(
        account["metadata"]["labels"],
        json!({"team": "billing"}),
        "left as it was"
    );
}

/// `adopts`: a service account made by hand becomes writ's where it is,
/// only with `--adopt`, keeping its UID and what writ does not set; the
/// binding made by hand is left and named until someone deletes it.
#[test]
fn an_adopted_service_account_keeps_its_uid_and_pull_secrets_and_becomes_writs() {
    let cluster = cluster();
    cluster.insert(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "exporter", "namespace": "billing", "labels": {"team": "billing"}},
        "imagePullSecrets": [{"name": "regcred"}]}));
    cluster.insert(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "exporter-reader", "namespace": "billing"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
    }));
    cluster.insert(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "exporter-reader", "namespace": "billing"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "exporter-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "exporter", "namespace": "billing"}]
    }));
    let uid = cluster
        .get("serviceaccounts", "billing", "exporter")
        .unwrap()["metadata"]["uid"]
        .clone();
    // The source, as `writ import` writes it from the cluster.
    let root = project("adopt", &cluster, CLUSTER);
    let out = root.join("imported.writ");
    let imported = writ(&root, &["import", "--live", "--out", out.to_str().unwrap()]);
    assert_eq!(imported.status.code(), Some(0), "{}", text(&imported));
    assert!(
        text(&imported).contains("serviceaccounts/exporter → agent `exporter`, exactly"),
        "{}",
        text(&imported)
    );
    let source = std::fs::read_to_string(root.join("imported.writ")).unwrap();
    for expected in [
        "adopts kubernetes.prod service_account \"billing/exporter\"",
        "runs_on kubernetes.prod namespace \"billing\" service_account \"exporter\"",
        "kubernetes.prod allow get, list on \"configmaps\" in namespace \"billing\"",
    ] {
        assert!(source.contains(expected), "no `{expected}` in:\n{source}");
    }
    let plan = writ(&root, &["plan", "--format", "json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["summary"]["adopt"], 1, "{plan:#}");
    assert_eq!(plan["summary"]["conflicts"], 0, "{plan:#}");
    let adopt = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["actions"] == json!(["adopt"]))
        .unwrap();
    assert_eq!(
        adopt["address"],
        "kubernetes.prod/namespaces/billing/serviceaccounts/exporter"
    );
    assert!(
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["actions"] != json!(["delete"])),
        "{plan:#}"
    );

    let refused = writ(&root, &["apply", "--auto-approve"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("pass `--adopt`"),
        "{}",
        text(&refused)
    );
    let account = cluster
        .get("serviceaccounts", "billing", "exporter")
        .unwrap();
    assert_eq!(account["metadata"]["labels"], json!({"team": "billing"}));

    let applied = writ(&root, &["apply", "--auto-approve", "--adopt"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let account = cluster
        .get("serviceaccounts", "billing", "exporter")
        .unwrap();
    assert_eq!(
        account["metadata"]["uid"], uid,
        "the same account: {account:#}"
    );
    assert_eq!(
        label(&account, "app.kubernetes.io/managed-by"),
        Some("writ")
    );
    assert_eq!(label(&account, "writ.dev/project"), Some("acme"));
    assert_eq!(
        account["metadata"]["annotations"]["writ.dev/adopted"],
        "true"
    );
    assert_eq!(account["imagePullSecrets"], json!([{"name": "regcred"}]));
    // Writ's own binding now, and the one made by hand is left, named.
    assert!(cluster
        .get("rolebindings", "billing", "exporter-reader")
        .is_some());
    let plan = writ(&root, &["plan", "--format", "json"]);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["changes"], json!([]), "{plan:#}");
    assert!(
        plan["drift"].to_string().contains("made outside writ: gives `exporter`'s service account `billing/exporter` the Role `exporter-reader`"),
        "{plan:#}"
    );
    cluster.remove("rolebindings", "billing", "exporter-reader");
    assert_no_changes(&root);
    // A later update keeps what writ does not set, too.
    let owner = source
        .lines()
        .find(|l| l.trim_start().starts_with("owner = "))
        .unwrap()
        .to_string();
    std::fs::write(
        root.join("imported.writ"),
        source.replace(&owner, "  owner = \"team-finance\""),
    )
    .unwrap();
    apply(&root);
    let account = cluster
        .get("serviceaccounts", "billing", "exporter")
        .unwrap();
    assert_eq!(
        account["metadata"]["annotations"]["writ.dev/owner"],
        "team-finance"
    );
    assert_eq!(account["imagePullSecrets"], json!([{"name": "regcred"}]));
    let drift = writ(&root, &["drift", "--live", "--detailed-exitcode"]);
    assert_eq!(drift.status.code(), Some(0), "{}", text(&drift));

    // Revoked as any of writ's: the account goes, and with it its tokens.
    let revoked = writ(&root, &["revoke", "exporter"]);
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked));
    assert!(cluster
        .get("serviceaccounts", "billing", "exporter")
        .is_none());
}

#[test]
fn a_missing_namespace_or_bad_credentials_give_a_clear_error() {
    let cluster = FakeCluster::start();
    let root = project("no-namespace", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    let output = writ(&root, &["apply", "--auto-approve"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("namespace `billing` does not exist"),
        "{shown}"
    );

    let kubeconfig = std::fs::read_to_string(root.join("kubeconfig.yaml")).unwrap();
    std::fs::write(
        root.join("kubeconfig.yaml"),
        kubeconfig.replace(crate::kube::TOKEN, "wrong"),
    )
    .unwrap();
    let output = writ(&root, &["plan"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("401") && shown.contains("credentials"),
        "{shown}"
    );
    assert!(
        !shown.contains("wrong"),
        "the token is never printed: {shown}"
    );

    std::fs::write(root.join("writ.toml"), "[project]\nname = \"acme\"\n\n[provider.kubernetes.prod]\ncontext = \"missing\"\nkubeconfig = \"kubeconfig.yaml\"\n").unwrap();
    let shown = text(&writ(&root, &["plan"]));
    assert!(shown.contains("context `missing`"), "{shown}");

    // No section at all: no fallback to the machine's current context.
    std::fs::write(root.join("writ.toml"), "[project]\nname = \"acme\"\n").unwrap();
    let output = writ(&root, &["plan"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains(
            "no connection settings for `kubernetes.prod`: add `[provider.kubernetes.prod]`"
        ),
        "{}",
        text(&output)
    );
}

#[test]
fn throttled_requests_are_retried() {
    let cluster = cluster();
    let root = project("throttled", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    cluster.throttle_next(3);
    let output = writ(&root, &["plan", "--detailed-exitcode"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    // The first request (the server's version) was throttled three times,
    // then answered.
    let versions = cluster
        .log()
        .iter()
        .filter(|r| r.path == "/version")
        .count();
    assert_eq!(versions, 4, "{shown}");
}

#[test]
fn observing_thousands_of_objects_takes_one_request_per_page() {
    let cluster = cluster();
    for i in 0..2_500 {
        cluster.insert(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": format!("role-{i:05}"), "namespace": "ci"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        );
    }
    let root = project("many", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    cluster.clear_log();
    let output = writ(&root, &["plan"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    // 2,500 roles and 5 namespaces' worth of other kinds: 3 pages of roles,
    // one list of each of the five other kinds, and the inventory record
    // (besides the server's `/version`, asked first, before anything); then
    // the project's lock, read to tell an unfinished run's work from drift.
    let lists: Vec<_> = cluster
        .log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path != "/version")
        .collect();
    assert_eq!(lists.len(), 10, "{lists:#?}");
    assert!(shown.contains("2500 objects in 9 requests"), "{shown}");
    assert!(lists
        .iter()
        .filter(|r| !r.path.ends_with("/secrets/writ-inventory-acme"))
        .filter(|r| !r.path.ends_with("/leases/writ-lock-acme"))
        .all(|r| r.query.get("limit").map(String::as_str) == Some("1000")));
}

#[test]
fn a_list_whose_continue_token_expires_starts_again() {
    let cluster = cluster();
    for i in 0..30 {
        cluster.insert(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": format!("sa-{i:02}"), "namespace": "ci"}}));
    }
    let root = project("expired", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let provider = runtime
        .block_on(writ_provider_kubernetes::KubernetesProvider::connect(
            "kubernetes.prod",
            "acme",
            &writ_provider_kubernetes::KubernetesSettings {
                context: Some("fake".into()),
                kubeconfig: Some(root.join("kubeconfig.yaml")),
                ..Default::default()
            },
            &writ_provider_core::Retrier::default_policy(),
        ))
        .unwrap()
        .with_page_size(10);
    // The second page finds the token expired: the list starts again.
    cluster.expire_continue_tokens_at(2);
    use writ_provider_core::Provider;
    let before = provider.stats();
    let found = runtime.block_on(provider.observe()).unwrap();
    let stats = provider.stats() - before;
    assert_eq!(
        found
            .iter()
            .filter(|r| r.address.contains("/serviceaccounts/sa-"))
            .count(),
        30
    );
    // Service accounts: page 1, 410, then 3 pages; then one list per other
    // kind, and the inventory record.
    assert_eq!(stats.requests, 1 + 1 + 3 + 5 + 1, "{stats:?}");
}

#[test]
fn kubectl_reads_and_writes_the_fake_server_like_a_real_one() {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string());
    if Command::new(&kubectl)
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("WRIT_REQUIRE_KUBECTL").is_none(),
            "kubectl is required but not found"
        );
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    let cluster = cluster();
    cluster.allow_anonymous();
    let root = project("kubectl", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    apply(&root);
    let cache = root.join("kubectl-cache");
    let run = |args: &[&str], input: Option<&str>| -> Output {
        let mut command = Command::new(&kubectl);
        command
            .args(["--server", &cluster.server(), "--cache-dir"])
            .arg(&cache)
            .args(args)
            .env("KUBECONFIG", "/dev/null")
            .env("HOME", &root);
        match input {
            None => command.output().unwrap(),
            Some(input) => {
                use std::io::Write;
                let mut child = command
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
        }
    };
    // kubectl reads what writ made, through discovery and a paginated list.
    let listed = run(
        &["get", "serviceaccounts", "-n", "billing", "-o", "json"],
        None,
    );
    assert!(listed.status.success(), "{}", text(&listed));
    let list: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        list["items"][0]["metadata"]["labels"]["writ.dev/agent"],
        "exporter"
    );
    let selected = run(
        &[
            "get",
            "roles,rolebindings",
            "-A",
            "-l",
            "writ.dev/agent=exporter",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&selected.stdout).trim(),
        "role.rbac.authorization.k8s.io/writ-exporter\nrolebinding.rbac.authorization.k8s.io/writ-exporter",
        "{}",
        text(&selected)
    );
    // kubectl creates a binding writ does not own; writ lists it.
    let binding = r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
      "metadata": {"name": "extra", "namespace": "billing"},
      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
      "subjects": [{"kind": "ServiceAccount", "name": "exporter", "namespace": "billing"}]}"#;
    let created = run(&["create", "--validate=false", "-f", "-"], Some(binding));
    assert!(created.status.success(), "{}", text(&created));
    let again = run(&["create", "--validate=false", "-f", "-"], Some(binding));
    assert!(text(&again).contains("AlreadyExists"), "{}", text(&again));
    let plan = text(&writ(&root, &["plan"]));
    assert!(
        plan.contains("RoleBinding `billing/extra`") && plan.contains("cluster-admin"),
        "{plan}"
    );
    // kubectl's delete, and its NotFound, as a real server answers them.
    let deleted = run(&["delete", "rolebinding", "extra", "-n", "billing"], None);
    assert!(deleted.status.success(), "{}", text(&deleted));
    let missing = run(&["get", "rolebinding", "extra", "-n", "billing"], None);
    assert!(
        text(&missing).contains("NotFound") || text(&missing).contains("not found"),
        "{}",
        text(&missing)
    );
}

#[test]
fn an_agent_in_aws_and_kubernetes_gets_a_role_trusting_exactly_its_account_and_an_account_naming_exactly_that_role(
) {
    let Some(moto) = crate::moto::Moto::start() else {
        return;
    };
    let cluster = cluster();
    let source = r#"provider aws prod {
  account = "123456789012"
}

provider kubernetes prod {
  cluster = "prod-eks"
  oidc_issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
}

agent puller {
  owner = "team-platform"
  ttl = 1h
  runs_on kubernetes.prod namespace "ci" service_account "puller"
  aws.prod allow s3:GetObject on "arn:aws:s3:::acme-artifacts/*"
  kubernetes.prod allow get on "configmaps" in namespace "ci"
}
"#;
    let root = project("mixed", &cluster, source);
    std::fs::write(
        root.join("writ.toml"),
        format!(
            "[project]\nname = \"acme\"\n\n[provider.aws.prod]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n[provider.kubernetes.prod]\ncontext = \"fake\"\nkubeconfig = \"kubeconfig.yaml\"\ninventory_namespace = \"default\"\n",
            moto.endpoint()
        ),
    )
    .unwrap();
    let plan = text(&writ(&root, &["plan"]));
    assert!(
        plan.contains("aws.prod/role/puller")
            && plan.contains("kubernetes.prod/namespaces/ci/serviceaccounts/puller"),
        "one plan for both: {plan}"
    );
    let applied = apply(&root);
    assert!(
        applied.contains("Apply complete: 5 of 5 changes made."),
        "{applied}"
    );
    assert_no_changes(&root);
    let role = moto.iam("GetRole", &[("RoleName", "puller")]);
    let trust = role.replace("%3A", ":").replace("%22", "\"");
    assert!(trust.contains("system:serviceaccount:ci:puller"), "{role}");
    assert_eq!(
        trust.matches("system:serviceaccount:").count(),
        1,
        "exactly one account: {role}"
    );
    let account = cluster.get("serviceaccounts", "ci", "puller").unwrap();
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/writ/acme/puller"
    );
}

/// The provider itself, connected to the fake cluster of `root`.
fn provider(
    root: &Path,
    runtime: &tokio::runtime::Runtime,
) -> writ_provider_kubernetes::KubernetesProvider {
    runtime
        .block_on(writ_provider_kubernetes::KubernetesProvider::connect(
            "kubernetes.prod",
            "acme",
            &writ_provider_kubernetes::KubernetesSettings {
                context: Some("fake".into()),
                kubeconfig: Some(root.join("kubeconfig.yaml")),
                ..Default::default()
            },
            &writ_provider_core::Retrier::default_policy(),
        ))
        .unwrap()
}

/// The plan of a source against an empty cluster, as the compiler makes it.
fn changes_from_nothing(source: &str) -> Vec<writ_compiler::plan::Change> {
    let mut sources = writ_compiler::SourceMap::new();
    sources.add("main.writ", source);
    let today = writ_compiler::values::Date {
        year: 2026,
        month: 11,
        day: 28,
    };
    let checked = writ_compiler::check(&sources, &writ_compiler::CheckOptions { today });
    let desired = writ_compiler::lower::lower(&checked.model, "acme");
    let options = writ_compiler::plan::PlanOptions {
        today,
        max_key_age_days: None,
    };
    writ_compiler::plan::plan(&desired, &[], &options).changes
}

#[test]
fn each_change_is_idempotent_and_never_touches_what_is_not_writs() {
    let cluster = cluster();
    let root = project("idempotent", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let provider = provider(&root, &runtime);
    let changes = changes_from_nothing(&format!("{CLUSTER}{EXPORTER}"));
    let change = |suffix: &str| {
        changes
            .iter()
            .find(|c| c.address.ends_with(suffix))
            .unwrap()
            .clone()
    };
    use writ_provider_core::Provider;
    let create_account = change("/serviceaccounts/exporter");

    // Created by an earlier apply whose answer was lost: converged, once.
    runtime.block_on(provider.apply(&create_account)).unwrap();
    runtime.block_on(provider.apply(&create_account)).unwrap();
    assert_eq!(cluster.names("serviceaccounts"), ["billing/exporter"]);

    // The same name taken by someone else: refused, left as it was.
    let create_role = change("/roles/writ-exporter");
    cluster.insert(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "writ-exporter", "namespace": "billing", "labels": {"team": "x"}},
        "rules": []}),
    );
    let refused = runtime.block_on(provider.apply(&create_role)).unwrap_err();
    assert!(refused.message.contains("not writ's"), "{refused}");
    assert_eq!(
        cluster.get("roles", "billing", "writ-exporter").unwrap()["rules"],
        json!([])
    );

    // A binding whose roleRef changed since the plan: an update replaces it.
    let create_binding = change("/rolebindings/writ-exporter");
    runtime.block_on(provider.apply(&create_binding)).unwrap();
    cluster.edit("rolebindings", "billing", "writ-exporter", |b| {
        b["roleRef"]["name"] = json!("something-else")
    });
    let uid = cluster
        .get("rolebindings", "billing", "writ-exporter")
        .unwrap()["metadata"]["uid"]
        .clone();
    let mut update = create_binding.clone();
    update.actions = vec![writ_compiler::plan::Action::Update];
    update.before = update.after.clone();
    runtime.block_on(provider.apply(&update)).unwrap();
    let binding = cluster
        .get("rolebindings", "billing", "writ-exporter")
        .unwrap();
    assert_eq!(binding["roleRef"]["name"], "writ-exporter");
    assert_ne!(binding["metadata"]["uid"], uid);

    // Deleting what is already gone is done; deleting twice as well.
    let mut delete = create_account.clone();
    delete.actions = vec![writ_compiler::plan::Action::Delete];
    delete.before = delete.after.take();
    runtime.block_on(provider.apply(&delete)).unwrap();
    runtime.block_on(provider.apply(&delete)).unwrap();
    assert!(cluster.names("serviceaccounts").is_empty());
}

#[test]
fn a_cluster_lease_held_by_another_run_refuses_an_apply_until_it_ends() {
    let cluster = cluster();
    cluster.add_namespace("default");
    let root = project("lease", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    let lease = |expires: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "writ-lock-acme", "namespace": "default",
                "annotations": {"writ.dev/lock-expires": expires}},
            "spec": {"holderIdentity": "ana on laptop, pid 7", "leaseDurationSeconds": 900}})
    };
    cluster.insert(lease("2999-01-01T00:00:00Z"));
    let plan = text(&writ(&root, &["plan"]));
    assert!(
        plan.contains("kubernetes.prod: a run by ana on laptop, pid 7 holds the project's lock until 2999-01-01T00:00:00Z"),
        "{plan}"
    );
    let refused = writ(&root, &["apply", "--auto-approve"]);
    let shown = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("another writ run holds the project's lock (ana on laptop, pid 7"),
        "{shown}"
    );
    assert!(
        cluster.names("serviceaccounts").is_empty(),
        "nothing written"
    );
    cluster.edit("leases", "default", "writ-lock-acme", |l| {
        l["metadata"]["annotations"]["writ.dev/lock-expires"] = json!("2020-01-01T00:00:00Z")
    });
    apply(&root);
    assert_no_changes(&root);
    assert!(
        cluster.get("leases", "default", "writ-lock-acme").is_none(),
        "released"
    );
}

#[test]
fn a_cluster_apply_that_stops_partway_is_recorded_in_its_lease_until_an_apply_finishes() {
    let cluster = cluster();
    let root = project("unfinished", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    apply(&root);
    let wider = format!("{CLUSTER}{EXPORTER}").replace(
        "allow get, list on \"configmaps\"",
        "allow get, list, watch on \"configmaps\"",
    );
    std::fs::write(root.join("main.writ"), wider).unwrap();
    cluster.forbid_writes_to(Some("roles"));
    let failed = writ(&root, &["apply", "--auto-approve"]);
    let shown = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("Apply failed at kubernetes.prod/namespaces/billing/roles/"),
        "{shown}"
    );
    cluster.forbid_writes_to(None);
    // The lock stays, with no holder and its lease ended, saying what
    // happened and whose changes were left.
    let lease = cluster
        .get("leases", "default", "writ-lock-acme")
        .expect("the lease is kept as the record");
    assert_eq!(lease["spec"], json!({}), "{lease:#}");
    assert_eq!(
        lease["metadata"]["annotations"]["writ.dev/lock-interrupted-agents"],
        "exporter"
    );
    let record = lease["metadata"]["annotations"]["writ.dev/lock-interrupted"]
        .as_str()
        .unwrap_or_else(|| panic!("{lease:#}"));
    assert!(
        record.contains(
            "made 0 of 1 changes and stopped at kubernetes.prod/namespaces/billing/roles/"
        ),
        "{record}"
    );
    assert_eq!(
        lease["metadata"]["annotations"]["writ.dev/lock-expires"],
        "1970-01-01T00:00:00Z"
    );
    let json = writ(&root, &["plan", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        plan["unfinished"][0]["provider"], "kubernetes.prod",
        "{plan:#}"
    );
    assert_eq!(plan["unfinished"][0]["running"], false, "{plan:#}");
    let shown = text(&writ(&root, &["plan"]));
    assert!(shown.contains("Unfinished runs:\n  ⚠ kubernetes.prod: an earlier run stopped before it finished: the apply by "), "{shown}");
    // The next apply takes the ended lease over and, finishing, removes it.
    apply(&root);
    assert_no_changes(&root);
    assert!(cluster.get("leases", "default", "writ-lock-acme").is_none());
    assert!(!text(&writ(&root, &["plan"])).contains("Unfinished"));
}

#[test]
fn a_lease_its_run_never_gave_back_is_recorded_by_the_run_that_takes_it_over() {
    use writ_provider_core::{Lease, Provider, Release};
    let cluster = cluster();
    let root = project("abandoned", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let provider = provider(&root, &runtime);
    // An earlier run stopped, leaving `exporter`; then a run died holding
    // the lock.
    cluster.insert(
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "writ-lock-acme", "namespace": "default",
            "annotations": {"writ.dev/lock-expires": "2020-01-01T00:00:00Z",
                "writ.dev/lock-interrupted": "the apply by bo made 1 of 2 changes",
                "writ.dev/lock-interrupted-agents": "exporter"}},
        "spec": {"holderIdentity": "ana on laptop, pid 7", "leaseDurationSeconds": 900}}),
    );
    let ours = Lease {
        holder: "bo@ci pid 9".into(),
        now: "2026-11-29T10:00:00Z".into(),
        expires: "2026-11-29T10:15:00Z".into(),
        seconds: 900,
        renewing: false,
    };
    runtime.block_on(provider.lock(&ours)).unwrap();
    let record = runtime.block_on(provider.lock_record()).unwrap();
    assert_eq!(record.held.as_ref().unwrap().holder, "bo@ci pid 9");
    let left = record.unfinished.expect("the dead run is recorded");
    assert!(
        left.what.starts_with(
            "the apply by bo made 1 of 2 changes and then the run of ana on laptop, pid 7 never gave its lock back"
        ),
        "both runs: {left:?}"
    );
    assert_eq!(left.agents, None, "the dead run's: any agent");
    // A run that converges nothing keeps the record, without a holder.
    assert!(runtime
        .block_on(provider.unlock(&ours.holder, Release::Unchanged))
        .unwrap());
    let record = runtime.block_on(provider.lock_record()).unwrap();
    assert_eq!(record.held, None);
    assert!(record.unfinished.is_some());
    // Someone else's lock is neither released nor marked by a mere unlock.
    assert!(!runtime
        .block_on(provider.unlock("someone else", Release::Converged))
        .unwrap());
    assert!(cluster.get("leases", "default", "writ-lock-acme").is_some());
    // A run that stopped after its lock was removed still leaves its record.
    cluster.remove("leases", "default", "writ-lock-acme");
    let stopped = writ_provider_core::Unfinished {
        what: "the apply by cy made 0 of 1 changes".into(),
        agents: Some(vec!["exporter".into()]),
    };
    assert!(!runtime
        .block_on(provider.unlock("cy", Release::Interrupted(&stopped)))
        .unwrap());
    let lease = cluster.get("leases", "default", "writ-lock-acme").unwrap();
    assert_eq!(lease["spec"], json!({}), "{lease:#}");
    assert_eq!(
        runtime.block_on(provider.lock_record()).unwrap().unfinished,
        Some(stopped)
    );
}

#[test]
fn an_apply_never_gives_back_what_a_revoke_took_while_it_ran() {
    let cluster = cluster();
    let root = project("revoked-race", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let provider = provider(&root, &runtime);
    let changes = changes_from_nothing(&format!("{CLUSTER}{EXPORTER}"));
    use writ_provider_core::Provider;
    // The plan was made; then `writ revoke exporter` recorded the agent as
    // revoked (as another process would), before the apply wrote.
    let record = serde_json::to_vec(
        &json!({"revoked": {"exporter": {"at": "2026-11-29T10:00:00Z", "by": "oncall"}}}),
    )
    .unwrap();
    let encoded = serde_json::to_value(k8s_openapi::ByteString(record)).unwrap();
    cluster.insert(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "writ-inventory-acme", "namespace": "default",
            "labels": {"app.kubernetes.io/managed-by": "writ", "writ.dev/project": "acme"}},
        "data": {"inventory.json": encoded}}),
    );
    for suffix in ["/serviceaccounts/exporter", "/rolebindings/writ-exporter"] {
        let change = changes
            .iter()
            .find(|c| c.address.ends_with(suffix))
            .unwrap();
        let refused = runtime.block_on(provider.apply(change)).unwrap_err();
        assert!(
            refused
                .message
                .contains("was revoked after this plan was made"),
            "{refused}"
        );
    }
    assert!(cluster.names("serviceaccounts").is_empty());
    assert!(cluster.names("rolebindings").is_empty());
}

/// A public root certificate (ISRG Root X1), standing in for a cluster's
/// CA: the fake server speaks plain HTTP on the loopback interface, so the
/// CA is only read, never used for TLS.
const TEST_CA_PEM_BASE64: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUZhekNDQTFPZ0F3SUJBZ0lSQUlJUXo3RFNRT05aUkdQZ3UyT0Npd0F3RFFZSktvWklodmNOQVFFTEJRQXcKVHpFTE1Ba0dBMVVFQmhNQ1ZWTXhLVEFuQmdOVkJBb1RJRWx1ZEdWeWJtVjBJRk5sWTNWeWFYUjVJRkpsYzJWaApjbU5vSUVkeWIzVndNUlV3RXdZRFZRUURFd3hKVTFKSElGSnZiM1FnV0RFd0hoY05NVFV3TmpBME1URXdORE00CldoY05NelV3TmpBME1URXdORE00V2pCUE1Rc3dDUVlEVlFRR0V3SlZVekVwTUNjR0ExVUVDaE1nU1c1MFpYSnUKWlhRZ1UyVmpkWEpwZEhrZ1VtVnpaV0Z5WTJnZ1IzSnZkWEF4RlRBVEJnTlZCQU1UREVsVFVrY2dVbTl2ZENCWQpNVENDQWlJd0RRWUpLb1pJaHZjTkFRRUJCUUFEZ2dJUEFEQ0NBZ29DZ2dJQkFLM29KSFAwRkRmem01NHJWeWdjCmg3N2N0OTg0a0l4dVBPWlhvSGozZGNLaS92VnFidllBVHlqYjNtaUdiRVNUdHJGai9SUVNhNzhmMHVveG15RisKMFRNOHVrajEzWG5mczdqL0V2RWhta3ZCaW9aeGFVcG1abXlQZmp4d3Y2MHBJZ2J6NU1EbWdLN2lTNCszbVg2VQpBNS9UUjVkOG1VZ2pVK2c0cms4S2I0TXUwVWxYaklCMHR0b3YwRGlOZXdOd0lSdDE4akE4K28rdTNkcGpxK3NXClQ4S09FVXQrend2by83VjNMdlN5ZTByZ1RCSWxESENOQXltZzRWTWs3QlBaN2htL0VMTktqRCtKbzJGUjNxeUgKQjVUMFkzSHNMdUp2VzVpQjRZbGNOSGxzZHU4N2tHSjU1dHVrbWk4bXhkQVE0UTdlMlJDT0Z2dTM5NmozeCtVQwpCNWlQTmdpVjUrSTNsZzAyZFo3N0RuS3hIWnU4QS9sSkJkaUIzUVcwS3RaQjZhd0JkcFVLRDlqZjFiMFNIelV2CktCZHMwcGpCcUFsa2QyNUhON3JPckZsZWFKMS9jdGFKeFFaQktUNVpQdDBtOVNUSkVhZGFvMHhBSDBhaG1iV24KT2xGdWhqdWVmWEtuRWdWNFdlMCtVWGdWQ3dPUGpkQXZCYkkrZTBvY1MzTUZFdnpHNnVCUUUzeERrM1N6eW5UbgpqaDhCQ05BdzFGdHhOclFIdXNFd01GeEl0NEk3bUtaOVlJcWlveW1DekxxOWd3UWJvb01EUWFIV0JmRWJ3cmJ3CnFIeUdPMGFvU0NxSTNIYWFkcjhmYXFVOUdZL3JPUE5rM3NnckRRb28vL2ZiNGhWQzFDTFFKMTNoZWY0WTUzQ0kKclU3bTJZczZ4dDBuVVc3L3ZHVDFNME5QQWdNQkFBR2pRakJBTUE0R0ExVWREd0VCL3dRRUF3SUJCakFQQmdOVgpIUk1CQWY4RUJUQURBUUgvTUIwR0ExVWREZ1FXQkJSNXRGbm1lN2JsNUFGemdBaUl5QnBZOXVtYmJqQU5CZ2txCmhraUc5dzBCQVFzRkFBT0NBZ0VBVlI5WXFieXlxRkRRRExIWUdta2dKeWtJckdGMVhJcHUrSUxsYVMvVjlsWkwKdWJoekVGblRJWmQrNTB4eCs3TFNZSzA1cUF2cUZ5RldoZkZRRGxucnp1Qlo2YnJKRmUrR25ZK0VnUGJrNlpHUQozQmViWWh0RjhHYVYwbnh2d3VvNzd4L1B5OWF1Si9HcHNNaXUvWDErbXZvaUJPdi8yWC9xa1NzaXNSY09qL0tLCk5GdFkyUHdCeVZTNXVDYk1pb2d6aVV3dGhEeUMzKzZXVndXNkxMdjN4TGZIVGp1Q3ZqSElJbk56a3RIQ2dLUTUKT1JBekk0Sk1QSitHc2xXWUhiNHBob3dpbTU3aWF6dFhPb0p3VGR3Sng0bkxDZ2ROYk9oZGpzbnZ6cXZIdTdVcgpUa1hXU3RBbXpPVnl5Z2hxcFpYakZhSDNwTzNKTEYrbCsvK3NLQUl1dnRkN3UrTnhlNUFXMHdkZVJsTjhOd2RDCmpOUEVscHpWbWJVcTRKVWFnRWl1VERrSHpzeEhwRktWSzdxNCs2M1NNMU45NVIxTmJkV2hzY2RDYitaQUp6VmMKb3lpM0I0M25qVE9RNXlPZisxQ2NlV3hHMWJRVnM1WnVmcHNNbGpxNFVpMC8xbHZoK3dqQ2hQNGtxS09KMnF4cQo0Umdxc2FoRFlWdlRIOXc3alhieUxlaU5kZDhYTTJ3OVUvdDd5MEZmLzl5aTBHRTQ0WmE0ckYyTE45ZDExVFBBCm1SR3VuVUhCY25XRXZnSkJRbDluSkVpVTBac252Z2MvdWJoUGdYUlI0WHEzN1owajRyN2cxU2dFRXp3eEE1N2QKZW15UHhnY1l4bi9lUjQ0L0tKNEVCcytsVkRSM3ZleUptK2tYUTk5YjIxLytqaDVYb3MxQW5YNWlJdHJlR0NjPQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==";
const TEST_CA_SHA256: &str = "96bcec06264976f37460779acf28c5a7cfe8a3c0aae11a8ffcee05c0bddf08c6";

#[test]
fn a_pinned_cluster_ca_refuses_a_context_that_points_elsewhere() {
    let cluster = cluster();
    let root = project("pinned", &cluster, &format!("{CLUSTER}{EXPORTER}"));
    let kubeconfig = std::fs::read_to_string(root.join("kubeconfig.yaml")).unwrap();
    let with_ca = kubeconfig.replace(
        "  cluster:\n",
        &format!("  cluster:\n    certificate-authority-data: {TEST_CA_PEM_BASE64}\n"),
    );
    let toml = std::fs::read_to_string(root.join("writ.toml")).unwrap();
    let pin = |fingerprint: &str| {
        std::fs::write(
            root.join("writ.toml"),
            format!("{toml}ca_sha256 = \"{fingerprint}\"\n"),
        )
        .unwrap();
    };
    // Pinned to this CA, in any of the usual spellings: planned, and the
    // plan names the CA beside the server.
    std::fs::write(root.join("kubeconfig.yaml"), &with_ca).unwrap();
    pin(&format!("sha256:{}", TEST_CA_SHA256.to_ascii_uppercase()));
    let plan = writ(&root, &["plan"]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{shown}");
    assert!(shown.contains("(CA sha256:96bcec0626497"), "{shown}");
    // Pinned to another: refused before anything is read.
    pin("0000000000000000000000000000000000000000000000000000000000000000");
    let refused = writ(&root, &["plan"]);
    let shown = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{shown}");
    assert!(shown.contains("pins the cluster's CA"), "{shown}");
    assert!(shown.contains("another cluster"), "{shown}");
    // A context with no CA at all cannot match a pin.
    std::fs::write(root.join("kubeconfig.yaml"), &kubeconfig).unwrap();
    pin(TEST_CA_SHA256);
    let shown = text(&writ(&root, &["plan"]));
    assert!(shown.contains("gives no CA certificate"), "{shown}");
}

/// `writ graph --live` reads the cluster's RBAC: a ClusterRoleBinding made
/// outside writ that gives an agent's service account the secrets of every
/// namespace is drawn, and reached by `--to`, where the source alone says
/// nothing does.
#[test]
fn graph_live_draws_rbac_bound_outside_writ() {
    let cluster = cluster();
    let root = project("graph-live", &cluster, &format!("{CLUSTER}{JOB_RUNNER}"));
    apply(&root);
    let clean = writ(&root, &["drift", "--live", "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    cluster.insert(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "secret-reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
    }));
    cluster.insert(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "ops-secrets"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "jobs"}]
    }));
    let query = "k8s:prod/secrets in billing";
    let source = writ(&root, &["graph", "--to", query]);
    assert!(
        text(&source).contains("nothing reaches"),
        "{}",
        text(&source)
    );
    let live = writ(&root, &["graph", "--live", "--to", query]);
    let said = text(&live);
    assert!(live.status.success(), "{said}");
    assert!(
        said.contains("the live providers: 1 link of access the source does not declare"),
        "{said}"
    );
    assert!(
        said.contains("k8s:prod/jobs/runner may do get, list on kubernetes.prod secrets in cluster [observed: ClusterRoleBinding ops-secrets → ClusterRole secret-reader (not in the source)]"),
        "{said}"
    );
    // Drift of access: no object of writ's changed, yet the agent holds
    // more than the source says.
    let drift = writ(&root, &["drift", "--live", "--detailed-exitcode"]);
    let said = text(&drift);
    assert_eq!(drift.status.code(), Some(2), "{said}");
    assert!(
        said.contains("Access the source does not declare (1 link):\n  ! k8s:prod/jobs/runner may do get, list on kubernetes.prod secrets in cluster (observed: ClusterRoleBinding ops-secrets"),
        "{said}"
    );
    let json = writ(&root, &["drift", "--live", "--format", "json"]);
    let value: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        value["undeclared_access"][0]["workload"],
        "k8s:prod/jobs/runner"
    );
    assert_eq!(
        value["undeclared_access"][0]["actions"],
        json!(["get", "list"])
    );
}
