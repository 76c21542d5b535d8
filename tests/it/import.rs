//! `writ import`: source for the example's identities made outside writ,
//! from its snapshot; what it makes of each trust and policy form; the
//! imported source checking with the project; and import from a live
//! account (moto). The imported source's meaning is held against the
//! original documents by the IAM simulator in `iam.rs`.

use crate::binary::{self, text, writ};
use crate::moto::Moto;
use std::path::{Path, PathBuf};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme")
}

/// A copy of the example in a folder of the test's own.
fn copy_of_example(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("import")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    crate::support::copy_tree(&example(), &root);
    root
}

#[test]
fn the_examples_unmanaged_role_and_service_account_are_imported_and_check() {
    let snapshot = example().join("snapshot.json");
    let output = writ(
        &example(),
        &["import", "--from", snapshot.to_str().unwrap()],
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let source = String::from_utf8(output.stdout.clone()).unwrap();
    let report = String::from_utf8(output.stderr.clone()).unwrap();
    for expected in [
        "agent jenkins-deployer {",
        "owner = \"team-platform\"",
        "runs_on aws.prod user \"machines/ci-legacy\"",
        "runs_on github.acme repo \"acme/platform\" ref \"refs/heads/main\"",
        "aws.prod allow s3:GetObject, s3:PutObject on \"arn:aws:s3:::acme-artifacts/*\"\n    when aws:RequestedRegion == \"us-east-1\"",
        // What the language cannot say is kept, as a comment.
        "// not imported: a statement in inline policy `deploy` with `NotAction`",
        "\"NotAction\":\"iam:*\"",
        "agent legacy-exporter {",
        "kubernetes.prod allow get on \"secrets\" named \"billing-db\" in namespace \"billing\"",
    ] {
        assert!(source.contains(expected), "no `{expected}` in:\n{source}");
    }
    assert!(
        report.contains("aws.prod/role/jenkins-deployer → agent `jenkins-deployer`, allowing less than the object"),
        "{report}"
    );
    // Other projects' objects are named as skipped; AWS's own are not
    // imported.
    assert!(
        report.contains("skipped aws.prod/role/payments_bot: writ project `payments`'s"),
        "{report}"
    );
    assert!(!source.contains("AWSServiceRoleForECS"), "{source}");
    insta::with_settings!({ snapshot_path => "../snapshots/import", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("example_source", source);
        insta::assert_snapshot!("example_report", report);
    });
    // Added to the project, it checks: findings, no errors.
    let root = copy_of_example("example");
    let out = root.join("teams/imported.writ");
    let written = writ(
        &root,
        &[
            "import",
            "--from",
            snapshot.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(written.status.code(), Some(0), "{}", text(&written));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), source);
    let checked = writ(&root, &["check"]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    // And laid out as `writ fmt` lays it out.
    let formatted = writ(&root, &["fmt", "--check"]);
    assert_eq!(formatted.status.code(), Some(0), "{}", text(&formatted));
    // `--out` never writes over a file.
    let again = writ(
        &root,
        &[
            "import",
            "--from",
            snapshot.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("exists"), "{}", text(&again));
    // Imported once, the objects are the project's agents' names' now:
    // nothing new is imported under another name.
    let second = writ(&root, &["import", "--from", snapshot.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&second.stdout).contains("agent jenkins-deployer_2"));
}

#[test]
fn select_and_only_pick_the_objects() {
    let snapshot = example().join("snapshot.json");
    let snapshot = snapshot.to_str().unwrap();
    let one = writ(
        &example(),
        &["import", "--from", snapshot, "--select", "billing/*"],
    );
    let source = String::from_utf8_lossy(&one.stdout).to_string();
    assert!(source.contains("agent legacy-exporter"), "{source}");
    assert!(!source.contains("jenkins"), "{source}");
    let aws = writ(
        &example(),
        &["import", "--from", snapshot, "--only", "aws.prod"],
    );
    let source = String::from_utf8_lossy(&aws.stdout).to_string();
    assert!(source.contains("agent jenkins-deployer"), "{source}");
    assert!(!source.contains("legacy-exporter"), "{source}");
    let none = writ(
        &example(),
        &["import", "--from", snapshot, "--select", "nothing-*"],
    );
    assert_eq!(none.status.code(), Some(0));
    assert!(text(&none).contains("nothing to import"), "{}", text(&none));
    // Neither a snapshot nor `--live`: a usage error.
    let neither = writ(&example(), &["import"]);
    assert_eq!(neither.status.code(), Some(1), "{}", text(&neither));
}

/// Forms the example does not show: two roles sharing a grant (a scope),
/// a role trusting a cluster's service account that has RBAC of its own
/// (one agent), a session longer than the guardrails allow, a `Deny`, a
/// permissions boundary, and a trust in another account.
#[test]
fn shared_grants_become_a_scope_and_a_trusted_service_account_joins_its_role() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("import")
        .join("forms");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("main.writ"),
        "provider aws prod {\n  account = \"123456789012\"\n}\n\nprovider kubernetes prod {\n  cluster = \"prod\"\n  oidc_issuer = \"https://oidc.example.com/id/ABC\"\n}\n\nguardrail short {\n  max_ttl = 4h\n}\n",
    )
    .unwrap();
    let role = |name: &str, trust: serde_json::Value, extra: serde_json::Value| {
        let mut attributes = serde_json::json!({
            "name": name, "path": "/", "max_session_duration": 43200, "tags": {"owner": "team-data"},
            "assume_role_policy": {"Version": "2012-10-17", "Statement": trust},
        });
        for (k, v) in extra.as_object().unwrap() {
            attributes[k] = v.clone();
        }
        serde_json::json!({"address": format!("aws.prod/role/{name}"), "provider": "aws.prod", "kind": "aws_role", "attributes": attributes})
    };
    let policy = |role: &str, statements: serde_json::Value| {
        serde_json::json!({"address": format!("aws.prod/role/{role}/policy/p"), "provider": "aws.prod", "kind": "aws_role_policy",
            "attributes": {"role": role, "name": "p", "policy": {"Version": "2012-10-17", "Statement": statements}}})
    };
    let shared = serde_json::json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"});
    let snapshot = serde_json::json!({"format_version": 1, "providers": {
        "aws.prod": {"resources": [
            role("etl", serde_json::json!([{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/ABC"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"oidc.example.com/id/ABC:sub": "system:serviceaccount:data:etl", "oidc.example.com/id/ABC:aud": "sts.amazonaws.com"}}}]),
                serde_json::json!({})),
            policy("etl", serde_json::json!([shared, {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}])),
            role("report", serde_json::json!([
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}]),
                serde_json::json!({"permissions_boundary": "arn:aws:iam::123456789012:policy/limits"})),
            policy("report", serde_json::json!([shared, {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:123456789012:jobs"}])),
        ]},
        "kubernetes.prod": {"resources": [
            {"address": "kubernetes.prod/namespaces/data/serviceaccounts/etl", "provider": "kubernetes.prod", "kind": "kubernetes_service_account",
             "attributes": {"name": "etl", "namespace": "data", "labels": {}, "annotations": {}}},
            {"address": "kubernetes.prod/namespaces/data/rolebindings/etl", "provider": "kubernetes.prod", "kind": "kubernetes_role_binding",
             "attributes": {"name": "etl", "namespace": "data", "labels": {}, "annotations": {},
               "role_ref": {"api_group": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view-jobs"},
               "subjects": [{"kind": "ServiceAccount", "name": "etl", "namespace": "data"}]}},
            {"address": "kubernetes.prod/clusterroles/view-jobs", "provider": "kubernetes.prod", "kind": "kubernetes_cluster_role",
             "attributes": {"name": "view-jobs", "labels": {}, "annotations": {},
               "rules": [{"api_groups": ["batch"], "resources": ["jobs", "jobs/status"], "verbs": ["get", "list"]},
                         {"non_resource_urls": ["/metrics"], "verbs": ["get"]}]}},
        ]},
    }});
    let file = root.join("snapshot.json");
    std::fs::write(&file, snapshot.to_string()).unwrap();
    let output = writ(&root, &["import", "--from", file.to_str().unwrap()]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let source = String::from_utf8_lossy(&output.stdout).to_string();
    for expected in [
        "scope shared_etl {\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::data/*\"\n}",
        "agent etl {",
        "  ttl = 4h\n  adopts kubernetes.prod service_account \"data/etl\"\n  runs_on kubernetes.prod namespace \"data\" service_account \"etl\"\n  can shared_etl",
        "  kubernetes.prod allow get, list on \"jobs.batch\", \"jobs.batch/status\" in namespace \"data\"",
        "  runs_on aws.prod service \"lambda.amazonaws.com\"",
        "  aws.prod allow sqs:SendMessage on \"arn:aws:sqs:us-east-1:123456789012:jobs\"",
        "// not imported: a `Deny` in inline policy `p`",
        "// not imported: a trust statement writ's `runs_on` cannot say",
    ] {
        assert!(source.contains(expected), "no `{expected}` in:\n{source}");
    }
    // The service account's objects are the role's agent's.
    assert!(!source.contains("agent etl_2"), "{source}");
    let report = String::from_utf8_lossy(&output.stderr).to_string();
    for expected in [
        "aws.prod/role/etl → agent `etl`, NOT EXACTLY (allowing more in part, less in part)",
        "kubernetes.prod/namespaces/data/serviceaccounts/etl → agent `etl`",
        "session length 12h cut to the guardrails' `max_ttl` of 4h",
        "aws.prod/role/report → agent `report`, NOT EXACTLY",
        "the permissions boundary `arn:aws:iam::123456789012:policy/limits`",
        "not adopted: writ would remove its permissions boundary; `writ plan` makes a new role",
        "not adopted: its inline policy `p` holds a `Deny`, which writ would remove with the policy",
        "a rule of ClusterRole `view-jobs` on paths of the API server (/metrics)",
    ] {
        assert!(report.contains(expected), "no `{expected}` in:\n{report}");
    }
    std::fs::write(root.join("imported.writ"), &source).unwrap();
    let checked = writ(&root, &["check"]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
}

/// From a live account: a role made by hand in moto is read and imported.
#[test]
fn a_role_made_by_hand_is_imported_from_a_live_account() {
    let Some(moto) = Moto::start() else { return };
    moto.iam(
        "CreateRole",
        &[
            ("RoleName", "nightly-backup"),
            ("Path", "/ops/"),
            ("MaxSessionDuration", "7200"),
            (
                "AssumeRolePolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
            ),
            ("Tags.member.1.Key", "Owner"),
            ("Tags.member.1.Value", "team-ops"),
        ],
    );
    moto.iam(
        "PutRolePolicy",
        &[
            ("RoleName", "nightly-backup"),
            ("PolicyName", "backup"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::acme-backups/*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#,
            ),
        ],
    );
    // A policy of the account's own, attached: its document is read too.
    moto.iam(
        "CreatePolicy",
        &[
            ("PolicyName", "backup-logs"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"arn:aws:logs:us-east-1:123456789012:log-group:backup:*"}]}"#,
            ),
        ],
    );
    moto.iam(
        "AttachRolePolicy",
        &[
            ("RoleName", "nightly-backup"),
            ("PolicyArn", "arn:aws:iam::123456789012:policy/backup-logs"),
        ],
    );
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("import")
        .join("live");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("main.writ"),
        "provider aws prod {\n  account = \"123456789012\"\n}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("writ.toml"),
        format!("[project]\nname = \"acme\"\n\n[provider.aws.prod]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n", moto.endpoint()),
    )
    .unwrap();
    let output = writ(&root, &["import", "--live"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let source = String::from_utf8_lossy(&output.stdout).to_string();
    for expected in [
        "/// Imported from aws.prod role /ops/nightly-backup",
        "agent nightly-backup {",
        "owner = \"team-ops\"",
        "ttl = 2h",
        "runs_on aws.prod service \"ec2.amazonaws.com\"",
        "aws.prod allow s3:PutObject, s3:GetObject on \"arn:aws:s3:::acme-backups/*\"\n    when aws:SecureTransport == true",
        "aws.prod allow logs:PutLogEvents on \"arn:aws:logs:us-east-1:123456789012:log-group:backup:*\"",
    ] {
        assert!(source.contains(expected), "no `{expected}` in:\n{source}");
    }
    assert!(
        shown.contains("→ agent `nightly-backup`, exactly"),
        "{shown}"
    );
    assert!(
        source.contains("adopts aws.prod role \"/ops/nightly-backup\""),
        "{source}"
    );
    std::fs::write(root.join("imported.writ"), &source).unwrap();
    let checked = binary::writ(&root, &["check"]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));

    // Adoption: the plan takes the role over where it is, and makes
    // nothing new beside it.
    let plan = writ(&root, &["plan", "--live", "--format", "json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let summary = &plan["summary"];
    assert_eq!(summary["adopt"], 1, "{plan:#}");
    assert_eq!(summary["conflicts"], 0, "{plan:#}");
    let mut changes: Vec<(String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["actions"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    changes.sort();
    assert_eq!(
        changes,
        [
            (
                "aws.prod/role/nightly-backup".to_string(),
                "adopt".to_string()
            ),
            (
                "aws.prod/role/nightly-backup/policy/backup".to_string(),
                "delete".to_string()
            ),
            (
                "aws.prod/role/nightly-backup/policy/writ-access".to_string(),
                "create".to_string()
            ),
        ],
        "{plan:#}"
    );
    let adopt = &plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["actions"][0] == "adopt")
        .unwrap()["changed_paths"];
    for path in ["attached_policies", "tags.writ:adopted", "tags.Owner"] {
        assert!(
            adopt.as_array().unwrap().iter().any(|p| p == path),
            "{path} not in {adopt}"
        );
    }
    // The imported grants are the role's policies' own: nobody gains or
    // loses anything by the adoption.
    assert_eq!(summary["agents_gaining"], 0, "{plan:#}");
    assert_eq!(summary["agents_losing"], 0, "{plan:#}");

    // Not without `--adopt`; then nothing is touched.
    let refused = writ(&root, &["apply", "--auto-approve"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("pass `--adopt`"),
        "{}",
        text(&refused)
    );
    let role = moto.iam("GetRole", &[("RoleName", "nightly-backup")]);
    assert!(!role.contains("writ:project"), "{role}");

    let applied = writ(&root, &["apply", "--auto-approve", "--adopt"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let role = moto.iam("GetRole", &[("RoleName", "nightly-backup")]);
    for expected in [
        "<Path>/ops/</Path>",
        "writ:project",
        "writ:adopted",
        "writ:digest",
    ] {
        assert!(role.contains(expected), "no {expected} in {role}");
    }
    let attached = moto.iam(
        "ListAttachedRolePolicies",
        &[("RoleName", "nightly-backup")],
    );
    assert!(!attached.contains("backup-logs"), "{attached}");
    // Detached, never deleted: the policy may be anyone's.
    moto.iam(
        "GetPolicy",
        &[("PolicyArn", "arn:aws:iam::123456789012:policy/backup-logs")],
    );
    let inline = moto.iam("ListRolePolicies", &[("RoleName", "nightly-backup")]);
    assert!(
        inline.contains("writ-access") && !inline.contains(">backup<"),
        "{inline}"
    );
    let again = writ(&root, &["plan", "--live", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // Writ's own from now on: revoked and lifted like any of its roles.
    let revoked = writ(&root, &["revoke", "nightly-backup"]);
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked));
    let role = moto.iam("GetRole", &[("RoleName", "nightly-backup")]);
    assert!(role.contains("WritRevoked"), "{role}");
    let lifted = writ(&root, &["revoke", "nightly-backup", "--lift"]);
    assert_eq!(lifted.status.code(), Some(0), "{}", text(&lifted));
    let again = writ(&root, &["plan", "--live", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // Without `adopts`, the role is listed as writ's by its tags alone,
    // and never changed: the agent's new role cannot take its name.
    let without = source.replace("adopts aws.prod role \"/ops/nightly-backup\"", "");
    std::fs::write(root.join("imported.writ"), &without).unwrap();
    let plan = writ(&root, &["plan", "--live"]);
    let shown = text(&plan);
    assert!(
        shown.contains("tagged as adopted by this project"),
        "{shown}"
    );
    assert!(!shown.contains("delete"), "{shown}");
}

/// What would make the imported source allow more, said as such, never
/// written as if exact: a description that holds source, a trust whose
/// `sub` two operators constrain together, a condition on the principal
/// itself, and a service account merged into a role that trusts another.
#[test]
fn what_would_widen_is_never_written_as_exact() {
    use serde_json::json;
    use writ_compiler::resource::{Resource, ResourceKind};
    let mut sources = writ_compiler::SourceMap::new();
    sources.add(
        "providers.writ",
        "provider aws prod {\n  account = \"123456789012\"\n}\n\nprovider github acme {\n  org = \"acme\"\n}\n\nprovider kubernetes prod {\n  cluster = \"prod\"\n  oidc_issuer = \"https://oidc.example.com/id/ABC\"\n}\n",
    );
    let resource = |address: &str, kind: ResourceKind, attributes: serde_json::Value| Resource {
        address: address.to_string(),
        provider: address.split('/').next().unwrap().to_string(),
        kind,
        agent: None,
        attributes:
            serde_json::from_value::<std::collections::BTreeMap<String, serde_json::Value>>(
                attributes,
            )
            .unwrap()
            .into(),
    };
    let trust =
        |statements: serde_json::Value| json!({"Version": "2012-10-17", "Statement": statements});
    let web = |condition: serde_json::Value| {
        json!({"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
        "Condition": condition})
    };
    let irsa = |account: &str| {
        json!({"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/ABC"},
        "Condition": {"StringEquals": {"oidc.example.com/id/ABC:sub": format!("system:serviceaccount:data:{account}")}}})
    };
    let observed = vec![
        resource(
            "aws.prod/role/injected",
            ResourceKind::AwsRole,
            json!({
            "name": "injected", "path": "/", "max_session_duration": 3600, "tags": {},
            "description": "nightly\n}\nagent evil {\n  owner = \"x\"\n  ttl = 1h\n  runs_on aws.prod user \"attacker\"\n}\n//",
            "assume_role_policy": trust(json!([{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]))}),
        ),
        resource(
            "aws.prod/role/main-only",
            ResourceKind::AwsRole,
            json!({
            "name": "main-only", "path": "/", "max_session_duration": 3600, "tags": {},
            "assume_role_policy": trust(json!([web(json!({
                "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/app:*"},
                "StringEquals": {"token.actions.githubusercontent.com:sub": "repo:acme/app:ref:refs/heads/main"}}))]))}),
        ),
        resource(
            "aws.prod/role/tagged",
            ResourceKind::AwsRole,
            json!({
            "name": "tagged", "path": "/", "max_session_duration": 3600, "tags": {},
            "assume_role_policy": trust(json!([{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]))}),
        ),
        resource(
            "aws.prod/role/tagged/policy/p",
            ResourceKind::AwsRolePolicy,
            json!({"role": "tagged", "name": "p", "policy": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "blocked"}}}]}}),
        ),
        resource(
            "aws.prod/role/etl",
            ResourceKind::AwsRole,
            json!({
            "name": "etl", "path": "/", "max_session_duration": 3600, "tags": {},
            "assume_role_policy": trust(json!([irsa("etl"), irsa("etl-backfill")]))}),
        ),
        resource(
            "kubernetes.prod/namespaces/data/serviceaccounts/etl",
            ResourceKind::KubernetesServiceAccount,
            json!({"name": "etl", "namespace": "data", "labels": {}}),
        ),
        resource(
            "kubernetes.prod/namespaces/data/rolebindings/etl",
            ResourceKind::KubernetesRoleBinding,
            json!({
            "name": "etl", "namespace": "data", "labels": {},
            "role_ref": {"kind": "Role", "name": "etl"},
            "subjects": [{"kind": "ServiceAccount", "name": "etl", "namespace": "data"}]}),
        ),
        resource(
            "kubernetes.prod/namespaces/data/roles/etl",
            ResourceKind::KubernetesRole,
            json!({
            "name": "etl", "namespace": "data", "labels": {},
            "rules": [{"api_groups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        ),
    ];
    let import = writ_compiler::import::import(
        &sources,
        crate::support::today(),
        "acme",
        &observed,
        &writ_compiler::import::Options {
            file: "imported.writ".to_string(),
            ..Default::default()
        },
    );
    let source = &import.source;
    assert!(
        import.unresolved.is_empty(),
        "{:?}\n{source}",
        import.unresolved
    );
    // The description is doc text, every line of it.
    assert!(!source.contains("\nagent evil"), "{source}");
    assert!(source.contains("/// agent evil {"), "{source}");
    let object = |address: &str| {
        import
            .objects
            .iter()
            .find(|o| o.address == address)
            .unwrap_or_else(|| panic!("{address}: {:#?}", import.objects))
    };
    // Only `main` in IAM (both operators must hold): not written as a
    // `runs_on` that admits any branch.
    let main_only = object("aws.prod/role/main-only");
    assert!(main_only.narrower && !main_only.exact, "{main_only:?}");
    assert!(
        !source.contains("runs_on github.acme repo \"acme/app\"\n"),
        "{source}"
    );
    // A condition on the principal's own tag is kept as a comment.
    let tagged = object("aws.prod/role/tagged");
    assert!(tagged.narrower, "{tagged:?}");
    assert!(source.contains("the principal's own"), "{source}");
    // The service account joins the role that trusts it and another one:
    // its RBAC would bind to both, which is more than the cluster grants.
    let etl = object("aws.prod/role/etl");
    assert!(etl.wider && !etl.exact, "{etl:?}");
    assert!(
        etl.notes
            .iter()
            .any(|n| n.contains("binds also to the role's other service accounts")),
        "{etl:?}"
    );
    let account = object("kubernetes.prod/namespaces/data/serviceaccounts/etl");
    assert_eq!(account.agent, "etl");
    // And it all checks with the project.
    sources.add("imported.writ", source.clone());
    let checked = crate::support::check(&sources);
    assert!(
        !checked.has_errors(),
        "{source}\n{:#?}",
        checked.diagnostics
    );
}
