//! Golden plans. Each folder in `tests/plans/` is a case:
//! - `main.writ`: the source as it is now (the desired state);
//! - `before.writ` (optional): the source as writ last applied it; lowered,
//!   it is the observed state (with what an apply leaves besides: a UID on
//!   each Kubernetes object, and each cluster's inventory record naming the
//!   service accounts writ made);
//! - `live.json` (optional): edits to the observed state made outside writ:
//!   `{"op": "set", "address", "attribute", "value", "restamp"}` (with
//!   `restamp: true` the role's digest is recomputed, as an earlier apply by
//!   writ would have left it; without, the edit is drift), `{"op":
//!   "remove", "address"}` and `{"op": "add", "resource"}`.
//!
//! - `expect.json`: what must hold of the plan, matched against its JSON
//!   (see [`matches`]).
//!
//! The text, markdown and JSON renderings are insta snapshots
//! (`tests/snapshots/plans/`). Every case is run, and every failure
//! reported, before the test fails.

use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;
use writ_compiler::lower::{self, Desired};
use writ_compiler::plan::{self, Plan, PlanOptions};
use writ_compiler::SourceMap;

const PROJECT: &str = "acme";

fn lowered(name: &str, text: &str) -> Desired {
    let mut sources = SourceMap::new();
    sources.add(name, text);
    let checked = crate::support::check(&sources);
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
    let mut desired = lowered("main.writ", &read("main.writ").expect("main.writ"));
    let mut observed = match read("before.writ") {
        Some(before) => crate::support::as_applied(lowered("before.writ", &before)),
        None => Vec::new(),
    };
    if let Some(live) = read("live.json") {
        crate::support::apply_edits(
            &mut observed,
            &serde_json::from_str(&live).expect("live.json is JSON"),
        );
    }
    let options = PlanOptions {
        today: crate::support::today(),
        max_key_age_days: Some(90),
    };
    // As `writ plan` does: the trust of GitHub workflows bound to the
    // repositories observed, workload identity to the GCP project's number.
    lower::bind(&mut desired, &observed);
    plan::plan(&desired, &observed, &options)
}

fn plan_of(case: &str) -> Plan {
    case_plan(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/plans")
            .join(case),
    )
}

/// The plan as `expect.json` sees it: its JSON, with what a reader asks of
/// it beside (`has_changes`, `privilege_gain`, `mass_delete`).
fn plan_value(plan: &Plan) -> Value {
    let mut value = serde_json::to_value(plan).expect("a plan is JSON");
    value["has_changes"] = Value::Bool(plan.has_changes());
    value["privilege_gain"] = Value::Bool(plan.privilege_gain());
    value["mass_delete"] = Value::Bool(
        plan.mass_delete(plan::DEFAULT_MASS_DELETE_PERCENT)
            .is_some(),
    );
    value
}

/// Does `actual` meet `expected`? Objects match key by key (only the keys
/// written; `null` also matches a key that is absent); arrays and scalars
/// must be equal; an object whose keys start with `$` is a test:
/// - `{"$all": X}`, `{"$has": [X, …]}` (each matches some element),
///   `{"$lacks": [X, …]}` (none matches any element), `{"$len": N}`,
///   `{"$count": [X, N]}` (N elements match X), on arrays;
/// - `{"$contains": "s"}`, `{"$starts_with": "s"}`, `{"$ends_with": "s"}`
///   on strings; `{"$ge": n}` on numbers.
///
/// Every test in one object must hold. `path` names where, for failures.
fn matches(expected: &Value, actual: &Value, path: &str, failures: &mut Vec<String>) {
    let fail = |failures: &mut Vec<String>, what: String| failures.push(format!("{path}: {what}"));
    match expected {
        Value::Object(tests) if tests.keys().any(|k| k.starts_with('$')) => {
            for (test, argument) in tests {
                let items = actual.as_array();
                let text = actual.as_str();
                let matching = |x: &Value| -> Vec<usize> {
                    items
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .filter(|(_, item)| {
                            let mut none = Vec::new();
                            matches(x, item, path, &mut none);
                            none.is_empty()
                        })
                        .map(|(i, _)| i)
                        .collect()
                };
                match (test.as_str(), argument) {
                    ("$all", x) if items.is_some() => {
                        for (i, item) in items.into_iter().flatten().enumerate() {
                            matches(x, item, &format!("{path}[{i}]"), failures);
                        }
                    }
                    ("$has", Value::Array(wanted)) if items.is_some() => {
                        for x in wanted {
                            if matching(x).is_empty() {
                                fail(failures, format!("no element matches {x}"));
                            }
                        }
                    }
                    ("$lacks", Value::Array(unwanted)) if items.is_some() => {
                        for x in unwanted {
                            if let Some(i) = matching(x).first() {
                                fail(
                                    failures,
                                    format!("[{i}] matches {x}, which must not be there"),
                                );
                            }
                        }
                    }
                    ("$len", n) if items.is_some() => {
                        let len = Value::from(items.map_or(0, Vec::len));
                        matches(n, &len, &format!("{path}.len()"), failures);
                    }
                    ("$count", Value::Array(pair)) if items.is_some() && pair.len() == 2 => {
                        let count = Value::from(matching(&pair[0]).len());
                        matches(
                            &pair[1],
                            &count,
                            &format!("{path}.count({})", pair[0]),
                            failures,
                        );
                    }
                    ("$contains", Value::String(s)) if text.is_some() => {
                        if !text.unwrap_or_default().contains(s.as_str()) {
                            fail(failures, format!("{actual} does not contain {s:?}"));
                        }
                    }
                    ("$starts_with", Value::String(s)) if text.is_some() => {
                        if !text.unwrap_or_default().starts_with(s.as_str()) {
                            fail(failures, format!("{actual} does not start with {s:?}"));
                        }
                    }
                    ("$ends_with", Value::String(s)) if text.is_some() => {
                        if !text.unwrap_or_default().ends_with(s.as_str()) {
                            fail(failures, format!("{actual} does not end with {s:?}"));
                        }
                    }
                    ("$ge", Value::Number(n)) if actual.is_number() => {
                        if actual.as_f64() < n.as_f64() {
                            fail(failures, format!("{actual} is less than {n}"));
                        }
                    }
                    (test, argument) => fail(
                        failures,
                        format!("`{test}: {argument}` cannot test {actual}"),
                    ),
                }
            }
        }
        Value::Object(fields) => {
            for (key, want) in fields {
                let got = actual.get(key).unwrap_or(&Value::Null);
                matches(want, got, &format!("{path}.{key}"), failures);
            }
        }
        _ => {
            if expected != actual {
                fail(failures, format!("expected {expected}, found {actual}"));
            }
        }
    }
}

#[test]
fn golden_plans() {
    let failures = Mutex::new(Vec::new());
    let mut count = 0;
    insta::glob!("..", "plans/*/main.writ", |main| {
        count += 1;
        let folder = main.parent().expect("a case folder");
        let name = folder.file_name().unwrap().to_string_lossy().to_string();
        let plan = case_plan(folder);
        insta::with_settings!({ snapshot_path => "../snapshots/plans", snapshot_suffix => name.clone(), prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!("text", writ::render::text(&plan, false));
            insta::assert_snapshot!("markdown", writ::render::markdown(&plan));
            insta::assert_snapshot!("json", writ::render::json(&plan));
        });
        let mut found = Vec::new();
        // The JSON plan reads back as the same plan.
        let back: Plan =
            serde_json::from_str(&writ::render::json(&plan)).expect("the JSON plan parses");
        if back != plan {
            found.push("the JSON plan does not read back as the same plan".to_string());
        }
        match std::fs::read_to_string(folder.join("expect.json")) {
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Ok(expected) => matches(&expected, &plan_value(&plan), "plan", &mut found),
                Err(error) => found.push(format!("expect.json is not JSON: {error}")),
            },
            Err(_) => found.push("no expect.json: say what must hold of the plan".to_string()),
        }
        failures
            .lock()
            .unwrap()
            .extend(found.into_iter().map(|f| format!("{name}: {f}")));
    });
    assert!(count >= 17, "expected every plan case, found {count}");
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "plan cases that fail their expectations:\n{}",
        failures.join("\n")
    );
}

#[test]
fn expectations_are_read_as_documented() {
    let plan = serde_json::json!({"changes": [{"address": "a/role/x", "actions": ["create"], "reason": "agent `x` is new"}], "drift": []});
    let check = |expected: Value| {
        let mut failures = Vec::new();
        matches(&expected, &plan, "plan", &mut failures);
        failures
    };
    assert!(check(
        serde_json::json!({"changes": {"$len": 1, "$all": {"actions": ["create"]}}, "drift": []})
    )
    .is_empty());
    assert!(check(serde_json::json!({"changes": {"$has": [{"reason": {"$contains": "is new"}, "agent": null}]}})).is_empty());
    assert_eq!(
        check(serde_json::json!({"changes": {"$lacks": [{"address": {"$starts_with": "a/"}}]}}))
            .len(),
        1
    );
    assert_eq!(
        check(serde_json::json!({"changes": {"$count": [{"actions": ["delete"]}, 1]}})).len(),
        1
    );
    assert_eq!(
        check(serde_json::json!({"drift": {"$len": {"$ge": 1}}})).len(),
        1
    );
    assert_eq!(
        check(serde_json::json!({"changes": {"$bogus": 1}})).len(),
        1
    );
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
fn kubernetes_grants_without_a_service_account_there_are_a_diagnostic() {
    let text = "provider kubernetes prod {\n  cluster = \"c\"\n}\n\nagent a {\n  owner = \"t\"\n  ttl = 1h\n  kubernetes.prod allow get on \"pods\" in namespace \"x\"\n}\n";
    let mut sources = writ_compiler::SourceMap::new();
    sources.add("main.writ", text);
    let checked = crate::support::check(&sources);
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
fn a_github_binding_is_kept_when_github_is_not_read_and_never_handed_to_a_new_repository() {
    let source = "provider aws prod {\n  account = \"123456789012\"\n}\n\nprovider github acme {\n  org = \"acme\"\n}\n\nagent deployer {\n  owner = \"team\"\n  ttl = 1h\n  runs_on github.acme repo \"acme/app\" environment \"production\" ref \"refs/heads/main\"\n  runs_on github.acme repo \"Acme/zeta\" ref \"refs/heads/main\"\n  aws.prod allow s3:PutObject on \"arn:aws:s3:::releases/*\"\n}\n";
    let unbound = lowered("main.writ", source);
    let repository = |name: &str, id: u64| {
        writ_compiler::resource::Resource {
        address: format!("github.acme/repos/{name}"),
        provider: "github.acme".into(),
        kind: writ_compiler::resource::ResourceKind::GithubRepository,
        agent: None,
        attributes: std::collections::BTreeMap::from([
            ("name".to_string(), serde_json::json!(name)),
            ("id".to_string(), serde_json::json!(id)),
            ("owner_id".to_string(), serde_json::json!(7)),
            (
                "oidc_subject".to_string(),
                serde_json::json!({"source": "organization", "include_claim_keys": ["repo", "context"], "use_immutable_subject": true}),
            ),
        ])
        .into(),
    }
    };
    let options = PlanOptions {
        today: crate::support::today(),
        max_key_age_days: None,
    };
    let plan_of = |observed: &[writ_compiler::resource::Resource]| {
        let mut desired = unbound.clone();
        let notes = lower::github::bind(&mut desired, observed);
        (plan::plan(&desired, observed, &options), notes, desired)
    };
    // Read, bound, and applied: what writ left in AWS.
    let github = [repository("acme/app", 42), repository("acme/Zeta", 9)];
    let (_, notes, bound) = plan_of(&github);
    assert!(notes.is_empty(), "{notes:?}");
    let applied = crate::support::as_applied(bound);
    // Read again: nothing to do (the bound trust is in canonical form).
    let mut observed = applied.clone();
    observed.extend(github.iter().cloned());
    let (again, notes, _) = plan_of(&observed);
    assert!(!again.has_changes(), "{:#?}", again.changes);
    assert!(notes.is_empty(), "{notes:?}");
    // Not read (a plan without GitHub): the live binding stands.
    let (unread, notes, _) = plan_of(&applied);
    assert!(!unread.has_changes(), "{:#?}", unread.changes);
    assert!(notes.is_empty(), "{notes:?}");
    // Made again under the same name: the role is not handed over.
    let mut observed = applied.clone();
    observed.extend([repository("acme/app", 43), repository("acme/Zeta", 9)]);
    let (recreated, notes, _) = plan_of(&observed);
    assert!(!recreated.has_changes(), "{:#?}", recreated.changes);
    assert!(
        notes.iter().any(|n| n
            .contains("`acme/app` now has id 43, but the trust of `deployer` is bound to id 42")),
        "{notes:?}"
    );
    // Never bound and not read: said.
    let (_, notes, _) = plan_of(&[]);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("`Acme/zeta`, `acme/app` were not read")),
        "{notes:?}"
    );
}

#[test]
fn a_governed_setting_the_server_does_not_have_is_not_planned_again_and_again() {
    let source = "provider aws prod {\n  account = \"123456789012\"\n}\n\nprovider github acme {\n  org = \"acme\"\n}\n\nagent deployer {\n  owner = \"team\"\n  ttl = 1h\n  runs_on github.acme repo \"acme/app\" environment \"production\"\n  aws.prod allow s3:PutObject on \"arn:aws:s3:::releases/*\"\n}\n";
    let mut desired = lowered("main.writ", source);
    let resource =
        |kind, address: &str, attributes: serde_json::Value| writ_compiler::resource::Resource {
            address: address.into(),
            provider: "github.acme".into(),
            kind,
            agent: None,
            attributes: serde_json::from_value::<
                std::collections::BTreeMap<String, serde_json::Value>,
            >(attributes)
            .unwrap()
            .into(),
        };
    // An older server: no pull-request approvals by Actions to set.
    let observed = [
        resource(
            writ_compiler::resource::ResourceKind::GithubRepository,
            "github.acme/repos/acme/app",
            serde_json::json!({"name": "acme/app", "id": 5, "owner_id": 7}),
        ),
        resource(
            writ_compiler::resource::ResourceKind::GithubActionsSettings,
            "github.acme/repos/acme/app/actions/permissions/workflow",
            serde_json::json!({"repository": "acme/app", "default_workflow_permissions": "read"}),
        ),
    ];
    let notes = lower::github::bind(&mut desired, &observed);
    assert!(
        notes.iter().any(|n| n.contains(
            "does not report `can_approve_pull_request_reviews` for repository `acme/app`"
        )),
        "{notes:?}"
    );
    // The setting it has is still governed.
    let settings = desired
        .resources
        .iter()
        .find(|r| r.kind == writ_compiler::resource::ResourceKind::GithubActionsSettings)
        .expect("the settings are still planned");
    assert_eq!(
        settings.string("default_workflow_permissions"),
        Some("read")
    );
    let options = PlanOptions {
        today: crate::support::today(),
        max_key_age_days: None,
    };
    let plan = plan::plan(&desired, &observed, &options);
    assert!(
        !plan
            .changes
            .iter()
            .any(|c| c.kind == writ_compiler::resource::ResourceKind::GithubActionsSettings),
        "{:#?}",
        plan.changes
    );
}
