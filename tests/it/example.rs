//! The bundled example's recorded state (`examples/acme/snapshot.json`) is
//! generated, not written by hand, so that its digests are real: the example
//! sources are turned into "what was applied last time" by a few edits,
//! lowered, and then changed outside writ. Run with `WRIT_REGENERATE=1` to
//! rewrite the file after changing the example.

use std::path::{Path, PathBuf};
use writ_compiler::lower;
use writ_compiler::plan::{self, ChangeKind, PlanOptions};
use writ_compiler::snapshot::Snapshot;
use writ_compiler::SourceMap;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme")
}

/// (file, text now, text as last applied): each must match exactly once.
const BEFORE: &[(&str, &str, &str)] = &[
    ("teams/billing.writ", "service_account \"billing-bot\"", "service_account \"billing-bot-v1\""),
    ("teams/billing.writ", "\n    when aws:RequestedRegion == \"us-east-1\"", ""),
    ("teams/platform.writ", "expires = 2026-09-30", "expires = 2027-09-30"),
    (
        "teams/platform.writ",
        "  aws.prod allow ecr:BatchGetImage, ecr:GetDownloadUrlForLayer\n    on \"arn:aws:ecr:us-east-1:123456789012:repository/services/*\"\n  aws.prod allow ecr:GetAuthorizationToken on \"*\"\n",
        "",
    ),
    ("teams/reporting.writ", "ttl = 2h", "ttl = 4h"),
    ("teams/platform.writ", "  kubernetes.prod allow get on \"pods/log\" in cluster\n", ""),
    ("teams/reporting.writ", "ses:SendEmail, ses:SendRawEmail", "ses:SendEmail, ses:SendRawEmail, ses:SendBulkEmail"),
    (
        "teams/analytics.writ",
        "  gcp.analytics allow roles/bigquery.dataEditor on \"projects/acme-analytics/datasets/warehouse\"\n",
        "",
    ),
];

/// The analytics project, as GCP reports it: workload identity principals
/// name its number.
const GCP_PROJECT: &str = r#"{"address": "gcp.analytics/project", "provider": "gcp.analytics", "kind": "gcp_project",
  "attributes": {"id": "acme-analytics", "number": "804213376955"}}"#;

fn sources(before: bool) -> SourceMap {
    let mut files = Vec::new();
    collect(&example(), &mut files);
    files.sort();
    let mut sources = SourceMap::new();
    for file in files {
        let relative = file
            .strip_prefix(example())
            .unwrap()
            .to_string_lossy()
            .to_string();
        let mut text = std::fs::read_to_string(&file).unwrap();
        if before {
            for (name, now, then) in BEFORE.iter().filter(|(name, _, _)| *name == relative) {
                assert_eq!(
                    text.matches(now).count(),
                    1,
                    "{name}: `{now}` must appear once"
                );
                text = text.replacen(now, then, 1);
            }
        }
        sources.add(relative, text);
    }
    sources
}

fn collect(folder: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "writ") {
            out.push(path);
        }
    }
}

fn desired(before: bool) -> lower::Desired {
    let checked = crate::support::check(&sources(before));
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    let mut desired = lower::lower(&checked.model, "acme");
    // What was applied had the project's number, as a plan binds it.
    let project: writ_compiler::resource::Resource = serde_json::from_str(GCP_PROJECT).unwrap();
    lower::gcp::bind(&mut desired, &[project]);
    desired
}

const LIVE: &str = r#"[
  {"op": "set", "address": "aws.prod/role/invoice_reader", "attribute": "path", "value": "/writ/acme/billing/", "restamp": true},
  {"op": "set", "address": "aws.prod/role/audit_reader/policy/writ-access", "attribute": "policy", "value": {
    "Version": "2012-10-17",
    "Statement": [
      {"Effect": "Allow", "Action": ["access-analyzer:GetAnalyzer", "access-analyzer:GetFinding", "access-analyzer:UpdateFindings"],
       "Resource": ["arn:aws:access-analyzer:us-east-1:123456789012:analyzer/acme"]},
      {"Effect": "Deny", "Action": ["iam:*", "organizations:*"], "Resource": ["*"]}
    ]}},
  {"op": "add", "resource": {"address": "aws.prod/role/jenkins-deployer", "provider": "aws.prod", "kind": "aws_role",
    "attributes": {"name": "jenkins-deployer", "path": "/", "created": "2021-06-14", "tags": {"team": "team-platform"},
      "arn": "arn:aws:iam::123456789012:role/jenkins-deployer",
      "description": "Deploys services from Jenkins, and from main of acme/platform",
      "max_session_duration": 3600, "permissions_boundary": null,
      "attached_policies": ["arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"],
      "assume_role_policy": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/machines/ci-legacy"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
         "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
           "token.actions.githubusercontent.com:sub": "repo:acme/platform:ref:refs/heads/main"}}}]}}}},
  {"op": "add", "resource": {"address": "aws.prod/role/jenkins-deployer/policy/deploy", "provider": "aws.prod", "kind": "aws_role_policy",
    "attributes": {"role": "jenkins-deployer", "name": "deploy", "policy": {"Version": "2012-10-17", "Statement": [
      {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
      {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:PutImage", "ecr:InitiateLayerUpload",
         "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"],
       "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/services/*"},
      {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::acme-artifacts/*",
       "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
      {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*", "Condition": {"Bool": {"aws:ViaAWSService": "true"}}}]}}}},
  {"op": "add", "resource": {"address": "kubernetes.prod/namespaces/billing/serviceaccounts/legacy-exporter", "provider": "kubernetes.prod",
    "kind": "kubernetes_service_account",
    "attributes": {"name": "legacy-exporter", "namespace": "billing", "labels": {"team": "team-finance"}, "annotations": {},
      "uid": "uid-legacy-exporter"}}},
  {"op": "add", "resource": {"address": "kubernetes.prod/namespaces/billing/roles/legacy-exporter", "provider": "kubernetes.prod",
    "kind": "kubernetes_role",
    "attributes": {"name": "legacy-exporter", "namespace": "billing", "labels": {}, "annotations": {}, "uid": "uid-legacy-exporter-role",
      "rules": [{"api_groups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
                {"api_groups": [""], "resources": ["secrets"], "resource_names": ["billing-db"], "verbs": ["get", "watch"]}]}}},
  {"op": "add", "resource": {"address": "kubernetes.prod/namespaces/billing/rolebindings/legacy-exporter", "provider": "kubernetes.prod",
    "kind": "kubernetes_role_binding",
    "attributes": {"name": "legacy-exporter", "namespace": "billing", "labels": {}, "annotations": {}, "uid": "uid-legacy-exporter-binding",
      "role_ref": {"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": "legacy-exporter"},
      "subjects": [{"kind": "ServiceAccount", "name": "legacy-exporter", "namespace": "billing"}]}}},
  {"op": "add", "resource": {"address": "aws.prod/role/AWSServiceRoleForECS", "provider": "aws.prod", "kind": "aws_role",
    "attributes": {"name": "AWSServiceRoleForECS", "path": "/aws-service-role/ecs.amazonaws.com/", "created": "2020-01-01", "tags": {}}}},
  {"op": "add", "resource": {"address": "aws.prod/role/payments_bot", "provider": "aws.prod", "kind": "aws_role",
    "attributes": {"name": "payments_bot", "path": "/writ/payments/", "created": "2026-02-01", "tags": {"writ:project": "payments"}}}},
  {"op": "add", "resource": {"address": "github.acme/repos/acme/platform", "provider": "github.acme", "kind": "github_repository",
    "attributes": {"name": "acme/platform", "id": 702114385, "owner_id": 91342,
      "oidc_subject": {"source": "organization", "include_claim_keys": ["repo", "context"], "use_immutable_subject": true,
        "sub_claim_prefix": "repo:acme@91342/platform@702114385"}}}},
  {"op": "add", "resource": {"address": "github.acme/repos/acme/platform/workflows/deploy.yml", "provider": "github.acme", "kind": "github_workflow",
    "attributes": {"repository": "acme/platform", "path": ".github/workflows/deploy.yml", "ref": null,
      "permissions": {"contents": "read", "id-token": "write"},
      "jobs": {"deploy": null, "notify": {"contents": "read", "id-token": "write", "pull-requests": "write"}}}}},
  {"op": "set", "address": "github.acme/repos/acme/platform/actions/permissions/workflow", "attribute": "default_workflow_permissions", "value": "write"},
  {"op": "set", "address": "github.acme/repos/acme/platform/actions/permissions/workflow", "attribute": "can_approve_pull_request_reviews", "value": true},
  {"op": "set", "address": "github.acme/repos/acme/platform/environments/production", "attribute": "deployment_branch_policy", "value": null},
  {"op": "add", "resource": {"address": "github.acme/repos/acme/platform/actions/secrets/CI_LEGACY_AWS_SECRET_ACCESS_KEY", "provider": "github.acme", "kind": "github_actions_secret",
    "attributes": {"repository": "acme/platform", "name": "CI_LEGACY_AWS_SECRET_ACCESS_KEY", "created": "2020-09-01T09:12:00Z", "updated": "2020-09-01T09:12:00Z"}}},
  {"op": "add", "resource": "GCP_PROJECT"},
  {"op": "add", "resource": {"address": "aws.prod/user/alice", "provider": "aws.prod", "kind": "aws_user",
    "attributes": {"name": "alice", "path": "/", "created": "2023-05-02"}}},
  {"op": "add", "resource": {"address": "aws.prod/user/ci-legacy", "provider": "aws.prod", "kind": "aws_user",
    "attributes": {"name": "ci-legacy", "path": "/machines/", "created": "2020-09-01", "groups": ["deployers"],
      "policies": {"ci-artifacts": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::acme-artifacts/*"}]}}}}},
  {"op": "add", "resource": {"address": "aws.prod/access-key/AKIAEXAMPLECI00001", "provider": "aws.prod", "kind": "aws_access_key",
    "attributes": {"id": "AKIAEXAMPLECI00001", "user": "ci-legacy", "status": "Active", "created": "2020-09-01", "last_used": "2026-11-26"}}},
  {"op": "add", "resource": {"address": "aws.prod/access-key/AKIAEXAMPLEAL00002", "provider": "aws.prod", "kind": "aws_access_key",
    "attributes": {"id": "AKIAEXAMPLEAL00002", "user": "alice", "status": "Active", "created": "2026-10-01", "last_used": null}}}
]"#;

fn generate() -> Snapshot {
    let mut observed = crate::support::as_applied(desired(true));
    let live = LIVE.replace("\"GCP_PROJECT\"", GCP_PROJECT);
    crate::support::apply_edits(&mut observed, &serde_json::from_str(&live).unwrap());
    Snapshot::from_resources(observed)
}

#[test]
fn the_example_snapshot_is_current() {
    let path = example().join("snapshot.json");
    let generated = generate();
    if std::env::var_os("WRIT_REGENERATE").is_some() {
        std::fs::write(&path, generated.to_json()).unwrap();
    }
    let committed =
        Snapshot::parse(&std::fs::read_to_string(&path).expect("examples/acme/snapshot.json"))
            .unwrap();
    assert!(committed == generated, "examples/acme/snapshot.json is out of date: run `WRIT_REGENERATE=1 cargo test --test it example::`");
}

#[test]
fn the_example_plan_shows_every_kind_of_change_drift_and_unmanaged_identity() {
    let snapshot = generate();
    let observed: Vec<_> = snapshot.resources().cloned().collect();
    let options = PlanOptions {
        today: crate::support::today(),
        max_key_age_days: Some(90),
    };
    let plan = plan::plan(&desired(false), &observed, &options);
    let kinds: Vec<ChangeKind> = plan.changes.iter().map(|c| c.kind_of_change()).collect();
    for kind in [
        ChangeKind::Create,
        ChangeKind::Update,
        ChangeKind::Replace,
        ChangeKind::Delete,
    ] {
        assert!(kinds.contains(&kind), "no {kind:?} in {kinds:?}");
    }
    assert!(plan
        .changes
        .iter()
        .any(|c| c.reason == "`legacy_exporter` expired on 2026-09-30"));
    assert_eq!(plan.drift.len(), 1);
    assert!(plan.unmanaged.iter().any(|u| u.stale));
    assert!(plan.permission_delta.iter().any(|d| !d.gains.is_empty()));
    assert!(plan.permission_delta.iter().any(|d| !d.losses.is_empty()));
    assert!(plan.conflicts.is_empty());
    assert!(
        plan.mass_delete(plan::DEFAULT_MASS_DELETE_PERCENT)
            .is_none(),
        "{:?}",
        plan.summary
    );
}
