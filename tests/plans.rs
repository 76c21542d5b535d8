//! Golden plans. Each folder in `tests/plans/` is a case:
//! - `main.writ`: the source as it is now (the desired state);
//! - `before.writ` (optional): the source as writ last applied it; lowered,
//!   it is the observed state;
//! - `live.json` (optional): edits to the observed state made outside writ:
//!   `{"op": "set", "address", "attribute", "value", "restamp"}` (with
//!   `restamp: true` the role's digest is recomputed, as an earlier apply by
//!   writ would have left it; without, the edit is drift), `{"op":
//!   "remove", "address"}` and `{"op": "add", "resource"}`.
//!
//! The text, markdown and JSON renderings are insta snapshots; a few
//! properties per case are asserted as well.

mod support;

use std::path::Path;
use writ_compiler::lower::{self, Desired};
use writ_compiler::plan::{self, ChangeKind, Plan, PlanOptions};
use writ_compiler::SourceMap;

const PROJECT: &str = "acme";

fn lowered(name: &str, text: &str) -> Desired {
    let mut sources = SourceMap::new();
    sources.add(name, text);
    let checked = support::check(&sources);
    assert!(
        !checked.has_errors(),
        "{name} has errors: {:#?}",
        checked.diagnostics
    );
    let desired = lower::lower(&checked.model, PROJECT);
    assert!(
        desired.diagnostics.is_empty(),
        "{name}: {:#?}",
        desired.diagnostics
    );
    desired
}

fn case_plan(folder: &Path) -> Plan {
    let read = |name: &str| std::fs::read_to_string(folder.join(name)).ok();
    let desired = lowered("main.writ", &read("main.writ").expect("main.writ"));
    let mut observed = match read("before.writ") {
        Some(before) => lowered("before.writ", &before).resources,
        None => Vec::new(),
    };
    if let Some(live) = read("live.json") {
        support::apply_edits(
            &mut observed,
            &serde_json::from_str(&live).expect("live.json is JSON"),
        );
    }
    let options = PlanOptions {
        today: support::today(),
        max_key_age_days: Some(90),
    };
    plan::plan(&desired, &observed, &options)
}

fn cases() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans");
    let mut folders: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    folders
}

fn kinds(plan: &Plan) -> Vec<ChangeKind> {
    plan.changes.iter().map(|c| c.kind_of_change()).collect()
}

#[test]
fn golden_plans() {
    let cases = cases();
    assert!(
        cases.len() >= 13,
        "expected every plan case, found {}",
        cases.len()
    );
    for folder in cases {
        let name = folder.file_name().unwrap().to_string_lossy().to_string();
        let plan = case_plan(&folder);
        insta::with_settings!({ snapshot_path => "snapshots/plans", snapshot_suffix => name.clone(), prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!("text", writ::render::text(&plan, false));
            insta::assert_snapshot!("markdown", writ::render::markdown(&plan));
            insta::assert_snapshot!("json", writ::render::json(&plan));
        });
        // The JSON plan reads back as the same plan.
        let back: Plan =
            serde_json::from_str(&writ::render::json(&plan)).expect("the JSON plan parses");
        assert_eq!(back, plan, "{name}: JSON round trip");
    }
}

fn plan_of(case: &str) -> Plan {
    case_plan(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/plans")
            .join(case),
    )
}

#[test]
fn a_fresh_account_creates_everything() {
    let plan = plan_of("fresh_account");
    assert!(!plan.changes.is_empty());
    assert!(kinds(&plan).iter().all(|k| *k == ChangeKind::Create));
    assert!(plan.privilege_gain());
}

#[test]
fn an_applied_source_has_no_changes() {
    let plan = plan_of("no_changes");
    assert!(!plan.has_changes(), "{:#?}", plan.changes);
    assert!(plan.drift.is_empty());
    assert!(plan.summary.unchanged > 0);
}

#[test]
fn a_policy_reordered_outside_writ_is_no_change_and_no_drift() {
    let plan = plan_of("policy_reordered");
    assert!(!plan.has_changes(), "{:#?}", plan.changes);
    assert!(plan.drift.is_empty(), "{:#?}", plan.drift);
}

#[test]
fn a_trust_change_updates_the_trust_policy_only() {
    let plan = plan_of("trust_change");
    let role = plan
        .changes
        .iter()
        .find(|c| c.address == "aws.prod/role/exporter")
        .expect("the role changes");
    assert_eq!(role.kind_of_change(), ChangeKind::Update);
    assert_eq!(role.changed_paths, vec!["assume_role_policy"]);
    // The service account the trust names is swapped in the cluster.
    let swapped: Vec<(ChangeKind, &str)> = plan
        .changes
        .iter()
        .filter(|c| c.kind == writ_compiler::resource::ResourceKind::KubernetesServiceAccount)
        .map(|c| (c.kind_of_change(), c.address.as_str()))
        .collect();
    assert_eq!(
        swapped,
        vec![
            (
                ChangeKind::Delete,
                "kubernetes.prod/namespaces/billing/serviceaccounts/exporter"
            ),
            (
                ChangeKind::Create,
                "kubernetes.prod/namespaces/billing/serviceaccounts/exporter-v2"
            ),
        ]
    );
}

#[test]
fn a_ttl_change_updates_the_session_length() {
    let plan = plan_of("ttl_change");
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].changed_paths, vec!["max_session_duration"]);
}

#[test]
fn a_removed_agent_loses_exactly_its_objects() {
    let plan = plan_of("agent_removed");
    assert!(kinds(&plan).iter().all(|k| *k == ChangeKind::Delete));
    assert!(
        plan.changes
            .iter()
            .all(|c| c.agent.as_deref() == Some("old_reporter")),
        "{:#?}",
        plan.changes
    );
    assert!(plan
        .changes
        .iter()
        .all(|c| c.reason.contains("removed from the source")));
    assert!(
        plan.unmanaged
            .iter()
            .any(|u| u.name == "old_reporter-legacy"),
        "a look-alike unmanaged role is listed, not deleted"
    );
}

#[test]
fn an_expired_agent_is_deleted_with_the_date() {
    let plan = plan_of("agent_expired");
    assert!(!plan.changes.is_empty());
    assert!(
        plan.changes
            .iter()
            .all(|c| c.reason == "`nightly_export` expired on 2026-10-01"),
        "{:#?}",
        plan.changes
    );
}

#[test]
fn a_delegate_gets_its_parents_ceiling_as_boundary() {
    let plan = plan_of("delegate_boundary");
    let role = plan
        .changes
        .iter()
        .find(|c| c.address == "aws.prod/role/reader")
        .expect("the delegate's role");
    let boundary = role.after.as_ref().unwrap()["permissions_boundary"]
        .as_str()
        .unwrap();
    assert_eq!(
        boundary,
        "arn:aws:iam::123456789012:policy/writ/acme/exporter-delegates"
    );
    assert!(plan
        .changes
        .iter()
        .any(|c| c.address == "aws.prod/policy/exporter-delegates"));
}

#[test]
fn a_guardrail_becomes_an_explicit_deny() {
    let plan = plan_of("guardrail_deny");
    let change = plan
        .changes
        .iter()
        .find(|c| c.address.ends_with("/policy/writ-access"))
        .expect("the inline policy changes");
    let after = serde_json::to_string(&change.after).unwrap();
    assert!(after.contains("\"Effect\":\"Deny\""), "{after}");
    assert!(
        plan.permission_delta.is_empty(),
        "a deny is not a change of allowed access: {:#?}",
        plan.permission_delta
    );
}

#[test]
fn a_frozen_agent_loses_all_access() {
    let plan = plan_of("frozen_agent");
    let delta = plan
        .permission_delta
        .iter()
        .find(|d| d.agent == "exporter")
        .expect("a delta");
    assert!(delta.gains.is_empty());
    assert!(!delta.losses.is_empty());
}

#[test]
fn drift_is_reported_apart_and_restored() {
    let plan = plan_of("drift");
    assert_eq!(plan.drift.len(), 1, "{:#?}", plan.drift);
    assert!(
        plan.changes
            .iter()
            .any(|c| c.reason.starts_with("restores")),
        "{:#?}",
        plan.changes
    );
}

#[test]
fn unmanaged_identities_are_listed_and_never_changed() {
    let plan = plan_of("unmanaged_inventory");
    assert!(!plan.has_changes());
    let names: Vec<&str> = plan.unmanaged.iter().map(|u| u.name.as_str()).collect();
    assert!(names.contains(&"alice"), "{names:?}");
    assert!(
        plan.unmanaged.iter().any(|u| u.stale),
        "an old key is stale"
    );
    assert!(
        !names.contains(&"AWSServiceRoleForSupport"),
        "AWS's own roles are left out"
    );
    assert!(
        !names.contains(&"other_project_bot"),
        "other writ projects are left out"
    );
}

#[test]
fn a_mass_delete_is_refused_by_default() {
    let plan = plan_of("mass_delete");
    assert!(plan
        .mass_delete(plan::DEFAULT_MASS_DELETE_PERCENT)
        .is_some());
    assert!(plan_of("agent_removed")
        .mass_delete(plan::DEFAULT_MASS_DELETE_PERCENT)
        .is_none());
}

#[test]
fn a_role_at_an_old_path_is_replaced() {
    let plan = plan_of("replace");
    let change = plan
        .changes
        .iter()
        .find(|c| c.kind_of_change() == ChangeKind::Replace)
        .expect("a replacement");
    assert_eq!(change.replace_because.as_deref(), Some("path"));
}

#[test]
fn a_name_taken_by_an_unmanaged_role_is_a_conflict() {
    let plan = plan_of("conflict");
    assert_eq!(plan.conflicts.len(), 1);
    assert!(!plan
        .changes
        .iter()
        .any(|c| c.address == plan.conflicts[0].address));
}

#[test]
fn the_markdown_plan_is_cut_at_section_boundaries() {
    let plan = plan_of("fresh_account");
    let full = writ::render::markdown(&plan);
    let cut = writ::render::markdown_within(&plan, 1500);
    assert!(cut.len() <= 1500, "{}", cut.len());
    assert!(cut.len() < full.len());
    assert!(cut.contains("sections left out"), "{cut}");
    assert_eq!(cut.matches("```").count() % 2, 0, "no code block left open");
    assert_eq!(
        cut.matches("<details>").count(),
        cut.matches("</details>").count()
    );
}

#[test]
fn kubernetes_rbac_is_lowered_without_widening() {
    let plan = plan_of("kubernetes_rbac");
    let after = |address: &str| -> serde_json::Value {
        let change = plan
            .changes
            .iter()
            .find(|c| c.address == address)
            .unwrap_or_else(|| {
                panic!(
                    "no change for {address}: {:#?}",
                    plan.changes.iter().map(|c| &c.address).collect::<Vec<_>>()
                )
            });
        serde_json::to_value(change.after.as_ref().unwrap()).unwrap()
    };
    let role = after("kubernetes.prod/namespaces/services/roles/writ-deployer");
    let rules = role["rules"].as_array().unwrap();
    // get+list on two apps resources merge; patch on one stays apart, so
    // patch is never granted on replicasets; the named configmap keeps its
    // name; the delegate's token may be minted, and nothing else.
    assert!(rules.contains(&serde_json::json!({"api_groups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list"]})), "{rules:#?}");
    assert!(rules.contains(&serde_json::json!({"api_groups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]})), "{rules:#?}");
    assert!(rules.contains(&serde_json::json!({"api_groups": [""], "resources": ["configmaps"], "verbs": ["get"], "resource_names": ["deploy-config"]})), "{rules:#?}");
    assert!(rules.contains(&serde_json::json!({"api_groups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"], "resource_names": ["job-helper"]})), "{rules:#?}");
    assert_eq!(rules.len(), 4, "{rules:#?}");
    let binding = after("kubernetes.prod/namespaces/services/rolebindings/writ-deployer");
    assert_eq!(binding["role_ref"]["kind"], "Role");
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "deployer", "namespace": "deploy"}])
    );
    let cluster_role = after("kubernetes.prod/clusterroles/writ-acme-deployer");
    assert_eq!(
        cluster_role["rules"][0]["resources"],
        serde_json::json!(["namespaces"])
    );
    after("kubernetes.prod/clusterrolebindings/writ-acme-deployer");
    let account = after("kubernetes.prod/namespaces/deploy/serviceaccounts/deployer");
    assert_eq!(account["automount_service_account_token"], false);
    assert_eq!(
        account["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/writ/acme/deployer"
    );
    assert_eq!(account["labels"]["app.kubernetes.io/managed-by"], "writ");
    // The helper has no AWS role, so no role-arn annotation.
    let helper = after("kubernetes.prod/namespaces/services/serviceaccounts/job-helper");
    assert!(helper["annotations"]
        .get("eks.amazonaws.com/role-arn")
        .is_none());
}

#[test]
fn kubernetes_grants_without_a_service_account_there_are_a_diagnostic() {
    let text = "provider kubernetes prod {\n  cluster = \"c\"\n}\n\nagent a {\n  owner = \"t\"\n  ttl = 1h\n  kubernetes.prod allow get on \"pods\" in namespace \"x\"\n}\n";
    let mut sources = writ_compiler::SourceMap::new();
    sources.add("main.writ", text);
    let checked = support::check(&sources);
    assert!(!checked.has_errors());
    let desired = lower::lower(&checked.model, PROJECT);
    assert_eq!(desired.diagnostics.len(), 1);
    assert_eq!(
        desired.diagnostics[0].code,
        writ_compiler::Code::MissingField
    );
    assert!(desired.diagnostics[0]
        .message
        .contains("no service account there"));
}

#[test]
fn cluster_identities_others_bound_and_long_lived_tokens_are_inventoried() {
    let plan = plan_of("kubernetes_inventory");
    let find = |name: &str| {
        plan.unmanaged
            .iter()
            .find(|u| u.name == name)
            .unwrap_or_else(|| panic!("no {name} in {:#?}", plan.unmanaged))
    };
    let jenkins = find("ci/jenkins");
    assert!(
        jenkins.flags.contains(&"cluster-admin".to_string()),
        "{jenkins:?}"
    );
    assert!(
        jenkins.detail.contains("ClusterRoleBinding `ci-admin`"),
        "{jenkins:?}"
    );
    // Someone bound writ's own service account to more: listed and flagged.
    let exporter = find("billing/exporter");
    assert!(
        exporter.detail.contains("access writ did not grant"),
        "{exporter:?}"
    );
    assert!(
        exporter.flags.contains(&"can escalate".to_string())
            && exporter.flags.contains(&"can bind".to_string())
    );
    assert_eq!(find("ci/jenkins-token").flags, vec!["long-lived token"]);
    // The long-lived token of writ's service account is deleted; nothing
    // else of the cluster is changed.
    assert_eq!(plan.changes.len(), 1, "{:#?}", plan.changes);
    let delete = &plan.changes[0];
    assert_eq!(
        delete.address,
        "kubernetes.prod/namespaces/billing/secrets/exporter-token"
    );
    assert_eq!(delete.kind_of_change(), ChangeKind::Delete);
    assert!(
        delete.reason.contains("ttl cannot hold"),
        "{}",
        delete.reason
    );
}
