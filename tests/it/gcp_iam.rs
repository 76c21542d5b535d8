//! writ's GCP meaning against GCP's, on the lowered objects: for every
//! request of a generated set (agent, role, resource name, time), what
//! `writ test` and `writ explain` answer (the evaluator, on the model as of
//! that day) must be what GCP grants from the allow policies writ lowered
//! (as applied before), evaluated as IAM does:
//!
//! - a binding on a resource holds on it and on everything under it (a
//!   bucket's objects, a dataset's tables), and one on the project on
//!   everything in it (here, every bucket is the project's);
//! - a binding holds for its members, with its role, when its IAM
//!   Condition is true: the CEL is evaluated by `cel-python` (PyPI, pinned;
//!   Google's CEL semantics written by others), with `resource.name` and
//!   `request.time` as GCP sets them.
//!
//! The harness installs cel-python into a virtual environment under
//! `target/`; without Python or the registry the test is skipped with a
//! message, and with `WRIT_REQUIRE_CEL` set (as `.ci/run` does) it fails.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use writ_compiler::eval::{self, Request};
use writ_compiler::model::Placement;
use writ_compiler::resource::{Resource, ResourceKind};
use writ_compiler::values::Date;
use writ_compiler::{CheckOptions, SourceMap};

const CEL_VERSION: &str = "0.5.0";
const PROJECT: &str = "acme-data-1";

const SOURCE: &str = r#"
provider gcp data {
  project = "acme-data-1"
}

agent loader {
  owner = "team-data"
  ttl = 1h
  expires = 2027-06-30
  runs_on gcp.data workload_pool "pool" subject "loader"
  gcp.data allow roles/storage.objectViewer on "projects/_/buckets/events"
    when resource.name like "projects/_/buckets/events/objects/2026/*"
  gcp.data allow roles/storage.objectViewer on "projects/_/buckets/logs-*"
  gcp.data allow roles/bigquery.dataEditor on "projects/acme-data-1/datasets/warehouse"
  gcp.data allow roles/storage.objectCreator on "projects/_/buckets/out"
    when resource.name like "*.csv"
  delegates {
    gcp.data allow roles/storage.objectViewer on "projects/_/buckets/*"
  }
}

/// A delegate: the loader mints its tokens.
agent helper {
  owner = "team-data"
  ttl = 1h
  parent = loader
  gcp.data allow roles/storage.objectViewer on "projects/_/buckets/logs-1"
}

/// Frozen: its account kept, holding nothing.
agent sleeper {
  owner = "team-data"
  ttl = 1h
  frozen = true
  gcp.data allow roles/viewer on "projects/acme-data-1"
}

agent viewer {
  owner = "team-data"
  ttl = 1h
  runs_on gcp.data workload_pool "pool" subject "viewer"
  gcp.data allow roles/viewer on "projects/acme-data-1"
  gcp.data allow roles/storage.objectViewer on "projects/_/buckets/events"
    when resource.name in ["projects/_/buckets/events/objects/a", "projects/_/buckets/events/objects/b"]
  gcp.data allow roles/storage.legacyObjectReader on "projects/_/buckets/events"
    when resource.name != "projects/_/buckets/events/objects/secret"
  gcp.data allow roles/bigquery.dataViewer on "projects/acme-data-1/datasets/*"
}
"#;

const ROLES: &[&str] = &[
    "roles/storage.objectViewer",
    "roles/storage.objectCreator",
    "roles/storage.legacyObjectReader",
    "roles/bigquery.dataEditor",
    "roles/bigquery.dataViewer",
    "roles/viewer",
    "roles/owner",
    "roles/iam.serviceAccountTokenCreator",
];

const NAMES: &[&str] = &[
    "projects/acme-data-1",
    "projects/acme-data-1/datasets/warehouse",
    "projects/acme-data-1/datasets/warehouse/tables/t1",
    "projects/acme-data-1/datasets/warehouseX",
    "projects/acme-data-1/datasets/other/tables/t2",
    "projects/_/buckets/events",
    "projects/_/buckets/events/objects/2026/a.csv",
    "projects/_/buckets/events/objects/2025/a.csv",
    "projects/_/buckets/events/objects/a",
    "projects/_/buckets/events/objects/b",
    "projects/_/buckets/events/objects/secret",
    "projects/_/buckets/logs-1",
    "projects/_/buckets/logs-1/objects/x",
    "projects/_/buckets/logsX",
    "projects/_/buckets/out",
    "projects/_/buckets/out/objects/r.csv",
    "projects/_/buckets/out/objects/r.txt",
    "projects/other-proj/datasets/warehouse",
    "projects/acme-data-1/serviceAccounts/writ-helper@acme-data-1.iam.gserviceaccount.com",
    "projects/acme-data-1/serviceAccounts/writ-loader@acme-data-1.iam.gserviceaccount.com",
    "projects/_/buckets/events2",
];

/// Request times: before the loader's `expires`, its last second, its
/// first day without access, and later.
const TIMES: &[&str] = &[
    "2026-12-01T12:00:00Z",
    "2027-06-29T23:59:59Z",
    "2027-06-30T00:00:00Z",
    "2027-08-01T09:00:00Z",
];

/// The day the policies were applied.
const APPLIED: &str = "2026-12-01";

fn install() -> &'static Result<PathBuf, String> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        crate::support::python_venv(
            &format!("cel-python-{CEL_VERSION}"),
            &[&format!("cel-python=={CEL_VERSION}")],
        )
    })
}

/// Evaluates each `(expression, resource name, time)` with cel-python.
fn cel(python: &Path, cases: &[(String, String, String)]) -> Vec<bool> {
    run_cel(
        python,
        r#"
for expression, name, time in json.load(sys.stdin):
    activation = {
        "resource": celpy.json_to_cel({"name": name}),
        "request": celpy.celtypes.MapType({celpy.celtypes.StringType("time"): celpy.celtypes.TimestampType(time)}),
    }
    out.append(evaluate(expression, activation))
"#,
        cases,
    )
}

/// Runs `body` with cel-python on `cases` (as JSON on its standard input):
/// `evaluate(expression, activation)` compiles once per expression and
/// insists on a boolean; `body` appends each answer to `out`.
fn run_cel(python: &Path, body: &str, cases: &(impl serde::Serialize + ?Sized)) -> Vec<bool> {
    let script = format!(
        r#"
import json, sys, celpy
env = celpy.Environment()
programs = {{}}
out = []
def evaluate(expression, activation):
    if expression not in programs:
        programs[expression] = env.program(env.compile(expression))
    result = programs[expression].evaluate(activation)
    if not isinstance(result, celpy.celtypes.BoolType):
        raise SystemExit(f"{{expression!r}} gave {{result!r}}")
    return bool(result)
{body}
json.dump(out, sys.stdout)
"#
    );
    let mut child = Command::new(python)
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(cases).unwrap().as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "cel-python: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a list of answers")
}

fn checked(day: &str) -> writ_compiler::Checked {
    let mut sources = SourceMap::new();
    sources.add("main.writ", SOURCE.to_string());
    let checked = writ_compiler::check(
        &sources,
        &CheckOptions {
            today: Date::parse(day).unwrap(),
        },
    );
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    checked
}

/// Does a policy on `on` reach `name`, as GCP's hierarchy has it (every
/// bucket here being the project's)?
fn reaches(on: &str, name: &str) -> bool {
    name == on
        || name.starts_with(&format!("{on}/"))
        || (on == format!("projects/{PROJECT}")
            && (name.starts_with(&format!("projects/{PROJECT}/"))
                || name.starts_with("projects/_/buckets/")))
}

#[test]
fn writs_gcp_answers_are_what_the_lowered_policies_grant() {
    let python = match install() {
        Ok(python) => python.clone(),
        Err(reason) => {
            if std::env::var_os("WRIT_REQUIRE_CEL").is_some() {
                panic!(
                    "cel-python is required (WRIT_REQUIRE_CEL is set) but unavailable: {reason}"
                );
            }
            eprintln!("skipping: cel-python is unavailable here: {reason}");
            return;
        }
    };
    // The policies, as applied on APPLIED.
    let applied = checked(APPLIED);
    let mut desired = writ_compiler::lower::lower(&applied.model, "acme");
    assert!(desired.diagnostics.is_empty(), "{:#?}", desired.diagnostics);
    let project = Resource {
        address: "gcp.data/project".into(),
        provider: "gcp.data".into(),
        kind: ResourceKind::GcpProject,
        agent: None,
        attributes: BTreeMap::from([
            ("id".to_string(), json!(PROJECT)),
            ("number".to_string(), json!("123456789012")),
        ])
        .into(),
    };
    assert!(writ_compiler::lower::gcp::bind(&mut desired, &[project]).is_empty());
    let policies: Vec<(String, Vec<Value>)> = desired
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpIamPolicy)
        .map(|r| {
            (
                r.string("resource").unwrap().to_string(),
                r.attribute("bindings").unwrap().as_array().unwrap().clone(),
            )
        })
        .collect();
    assert!(policies.len() >= 4, "{policies:#?}");
    let email = |agent: &str| {
        format!(
            "serviceAccount:{}@{PROJECT}.iam.gserviceaccount.com",
            writ_compiler::lower::gcp::account_id(agent)
        )
    };
    // Every request, with the bindings that could grant it; their
    // conditions evaluated in one batch.
    struct Case {
        agent: &'static str,
        role: &'static str,
        name: &'static str,
        time: &'static str,
        /// Indices into `conditions`; `None`: an unconditional binding.
        candidates: Vec<Option<usize>>,
    }
    let mut conditions: Vec<(String, String, String)> = Vec::new();
    let mut cases = Vec::new();
    for agent in ["loader", "viewer", "helper", "sleeper"] {
        for role in ROLES {
            for name in NAMES {
                for time in TIMES {
                    let mut candidates = Vec::new();
                    for (on, bindings) in &policies {
                        if !reaches(on, name) {
                            continue;
                        }
                        for binding in bindings {
                            let member = json!(email(agent));
                            if binding["role"] != *role
                                || !binding["members"].as_array().unwrap().contains(&member)
                            {
                                continue;
                            }
                            match binding["condition"]["expression"].as_str() {
                                Some(expression) => {
                                    conditions.push((
                                        expression.to_string(),
                                        name.to_string(),
                                        time.to_string(),
                                    ));
                                    candidates.push(Some(conditions.len() - 1));
                                }
                                None => candidates.push(None),
                            }
                        }
                    }
                    cases.push(Case {
                        agent,
                        role,
                        name,
                        time,
                        candidates,
                    });
                }
            }
        }
    }
    let answers = cel(&python, &conditions);
    let models: BTreeMap<&str, writ_compiler::Checked> =
        TIMES.iter().map(|t| (*t, checked(&t[..10]))).collect();
    let mut disagreements = Vec::new();
    let (mut allowed, mut denied) = (0, 0);
    for case in &cases {
        let gcp = case
            .candidates
            .iter()
            .any(|c| c.is_none_or(|index| answers[index]));
        let model = &models[case.time].model;
        let agent = model.agent_id(case.agent).unwrap();
        let context = BTreeMap::from([("resource.name".to_string(), case.name.to_string())]);
        let decision = eval::evaluate(
            model,
            agent,
            &Request {
                provider: 0,
                action: case.role,
                resource: case.name,
                placement: &Placement::None,
                name: None,
                context: Some(&context),
            },
        );
        if gcp {
            allowed += 1;
        } else {
            denied += 1;
        }
        if decision.is_allowed() != gcp {
            disagreements.push(format!(
                "{} {} on {} at {}: writ {}, GCP {}",
                case.agent,
                case.role,
                case.name,
                case.time,
                if decision.is_allowed() {
                    "allows"
                } else {
                    "denies"
                },
                if gcp { "allows" } else { "denies" },
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} requests disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Both answers are well represented.
    eprintln!(
        "{} requests: {allowed} allowed, {denied} denied, every one alike",
        cases.len()
    );
    assert!(
        allowed > 40 && denied > 400,
        "{allowed} allowed, {denied} denied"
    );
}

/// Evaluates each `(expression, assertion)` with cel-python, the
/// assertion (a token's claims) as `assertion`, as a pool provider does.
fn cel_claims(python: &Path, cases: &[(String, Value)]) -> Vec<bool> {
    run_cel(
        python,
        r#"
for expression, claims in json.load(sys.stdin):
    out.append(evaluate(expression, {"assertion": celpy.json_to_cel(claims)}))
"#,
        cases,
    )
}

/// A GitHub Actions token may act as an agent's service account exactly
/// when one of the agent's `runs_on` admits its job: writ's pool provider
/// (its attribute condition, and the agent's mapped attribute being
/// "true", which the agent's binding trusts), evaluated by cel-python on
/// generated tokens, against what each `runs_on` says (repository, by name
/// and id, its owner's id, and each pin).
#[test]
fn github_tokens_act_as_exactly_the_agents_their_workloads_admit() {
    let python = match install() {
        Ok(python) => python.clone(),
        Err(reason) => {
            if std::env::var_os("WRIT_REQUIRE_CEL").is_some() {
                panic!(
                    "cel-python is required (WRIT_REQUIRE_CEL is set) but unavailable: {reason}"
                );
            }
            eprintln!("skipping: cel-python is unavailable here: {reason}");
            return;
        }
    };
    type Pin<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);
    // (agent, its workloads: (environment, ref, workflow) in acme/app).
    let agents: &[(&str, &[Pin])] = &[
        ("anywhere", &[(None, None, None)]),
        ("prod", &[(Some("production"), None, None)]),
        ("main", &[(None, Some("refs/heads/main"), None)]),
        (
            "prod_main",
            &[(Some("production"), Some("refs/heads/main"), None)],
        ),
        (
            "deploy_any_ref",
            &[(None, None, Some(".github/workflows/deploy.yml"))],
        ),
        (
            "deploy_main",
            &[(
                None,
                Some("refs/heads/main"),
                Some(".github/workflows/deploy.yml"),
            )],
        ),
        (
            "two",
            &[
                (Some("staging"), None, None),
                (
                    None,
                    Some("refs/heads/dev"),
                    Some(".github/workflows/deploy.yml"),
                ),
            ],
        ),
    ];
    let mut source = format!("provider gcp data {{\n  project = \"{PROJECT}\"\n}}\n\nprovider github acme {{\n  org = \"acme\"\n}}\n");
    for (agent, workloads) in agents {
        source.push_str(&format!(
            "\nagent {agent} {{\n  owner = \"t\"\n  ttl = 1h\n"
        ));
        for (environment, git_ref, workflow) in workloads.iter() {
            source.push_str("  runs_on github.acme repo \"acme/app\"");
            if let Some(workflow) = workflow {
                source.push_str(&format!(" workflow \"{workflow}\""));
            }
            if let Some(environment) = environment {
                source.push_str(&format!(" environment \"{environment}\""));
            }
            if let Some(git_ref) = git_ref {
                source.push_str(&format!(" ref \"{git_ref}\""));
            }
            source.push('\n');
        }
        source.push_str("  gcp.data allow roles/viewer on \"projects/acme-data-1\"\n}\n");
    }
    let mut sources = SourceMap::new();
    sources.add("main.writ", source);
    let checked = writ_compiler::check(
        &sources,
        &CheckOptions {
            today: Date::parse("2026-12-01").unwrap(),
        },
    );
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    let mut desired = writ_compiler::lower::lower(&checked.model, "acme");
    let observed = [
        Resource {
            address: "gcp.data/project".into(),
            provider: "gcp.data".into(),
            kind: ResourceKind::GcpProject,
            agent: None,
            attributes: BTreeMap::from([
                ("id".to_string(), json!(PROJECT)),
                ("number".to_string(), json!("123456789012")),
            ])
            .into(),
        },
        Resource {
            address: "github.acme/repos/acme/app".into(),
            provider: "github.acme".into(),
            kind: ResourceKind::GithubRepository,
            agent: None,
            attributes: BTreeMap::from([
                ("name".to_string(), json!("acme/app")),
                ("id".to_string(), json!(42)),
                ("owner_id".to_string(), json!(7)),
            ])
            .into(),
        },
    ];
    let said = writ_compiler::lower::gcp::bind(&mut desired, &observed);
    assert!(said.is_empty(), "{said:?}");
    let provider = desired
        .resources
        .iter()
        .find(|r| r.kind == ResourceKind::GcpWorkloadIdentityPoolProvider)
        .expect("writ's provider for acme");
    let condition = provider.string("attribute_condition").unwrap();
    let mapping = provider.attribute("attribute_mapping").unwrap();
    // Each agent's own account trusts its attribute, and nothing else.
    for (agent, _) in agents {
        let attribute = writ_compiler::lower::gcp::github_attribute(agent);
        let email = format!(
            "{}@{PROJECT}.iam.gserviceaccount.com",
            writ_compiler::lower::gcp::account_id(agent)
        );
        let own = desired
            .resources
            .iter()
            .find(|r| {
                r.string("resource") == Some(&format!("projects/{PROJECT}/serviceAccounts/{email}"))
            })
            .expect("the agent's own policy");
        assert_eq!(
            own.attribute("bindings").unwrap(),
            &json!([{"role": "roles/iam.workloadIdentityUser", "members": [format!("principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/writ-acme/attribute.{attribute}/true")]}]),
        );
    }
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    let mut shown = Vec::new();
    for (repository, owner_id) in [
        ("acme/app", 7),
        ("acme/app", 9),
        ("acme/other", 7),
        ("evil/app", 8),
    ] {
        for id in [42, 43] {
            for environment in [None, Some("production"), Some("staging")] {
                for git_ref in ["refs/heads/main", "refs/heads/dev"] {
                    for (workflow, event) in [
                        ".github/workflows/deploy.yml",
                        ".github/workflows/other.yml",
                    ]
                    .into_iter()
                    .flat_map(|w| ["push", "pull_request", "pull_request_target"].map(|e| (w, e)))
                    {
                        let owner = repository.split('/').next().unwrap();
                        let mut claims = json!({
                            "sub": format!("repo:{repository}:ref:{git_ref}"),
                            "repository": repository,
                            "repository_id": id.to_string(),
                            "repository_owner": owner,
                            "repository_owner_id": owner_id.to_string(),
                            "ref": git_ref,
                            "job_workflow_ref": format!("{repository}/{workflow}@{git_ref}"),
                            "event_name": event,
                        });
                        if let Some(environment) = environment {
                            claims["environment"] = json!(environment);
                        }
                        for (agent, workloads) in agents {
                            let attribute = format!(
                                "attribute.{}",
                                writ_compiler::lower::gcp::github_attribute(agent)
                            );
                            let Some(map) = mapping[&attribute].as_str() else {
                                panic!("no {attribute} in {mapping:#}");
                            };
                            cases.push((
                                format!("({condition}) && ({map}) == \"true\""),
                                claims.clone(),
                            ));
                            let admitted = repository == "acme/app"
                                && id == 42
                                && owner_id == 7
                                && workloads.iter().any(
                                    |(pin_environment, pin_ref, pin_workflow)| {
                                        pin_environment.is_none_or(|p| environment == Some(p))
                                            && pin_ref.is_none_or(|p| git_ref == p)
                                            && pin_workflow.is_none_or(|p| workflow == p)
                                            // A ref pinned alone is the AWS
                                            // trust's `sub` `repo:R:ref:X`:
                                            // no job in an environment, nor
                                            // of a pull request.
                                            && !(pin_environment.is_none()
                                                && pin_ref.is_some()
                                                && (environment.is_some() || event != "push"))
                                    },
                                );
                            expected.push(admitted);
                            shown.push(format!("{agent} for {claims}"));
                        }
                    }
                }
            }
        }
    }
    let answers = cel_claims(&python, &cases);
    assert_eq!(answers.len(), cases.len());
    let disagreements: Vec<String> = answers
        .iter()
        .zip(&expected)
        .zip(&shown)
        .filter(|((answer, expected), _)| answer != expected)
        .map(|((answer, _), what)| {
            format!(
                "{what}: GCP would {}",
                if *answer { "admit" } else { "refuse" }
            )
        })
        .collect();
    assert!(expected.iter().any(|e| *e) && expected.iter().any(|e| !e));
    assert!(
        disagreements.is_empty(),
        "{} of {} disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements[..disagreements.len().min(10)].join("\n")
    );
}
