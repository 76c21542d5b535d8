//! AWS: what writ says (`writ test`, `writ explain`) against what IAM
//! would decide on the lowered policies, on random cases.
//!
//! The oracle is `@cloud-copilot/iam-simulate`, an IAM policy simulator
//! writ did not write (npm, pinned by `tests/iamsim/package-lock.json`; it
//! is AGPL, so it is a test tool only: installed under `target/` by this
//! harness and driven through `tests/iamsim/simulate.js`, never vendored or
//! linked). Each case is an agent of a random project (grants with
//! wildcards and conditions, guardrail denies, `expires`, delegation
//! boundaries), lowered by writ; the simulator evaluates the agent's
//! `writ-access` policy and, for a delegate, its permissions boundary. A
//! second test gives the simulator the trust policy of revoked roles, as
//! plans keep it, and asks it for every principal those roles trusted.
//!
//! Without Node.js or the registry the test is skipped with a message; with
//! `WRIT_REQUIRE_IAMSIM` set (as `.ci/run` does) it fails instead.
//! `WRIT_IAM_CASES` sets the number of requests (10,000 unless set).

use crate::support::Random;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use writ_compiler::eval::{self, Request};
use writ_compiler::facts::ProviderKind;
use writ_compiler::model::Placement;
use writ_compiler::resource::ResourceKind;
use writ_compiler::SourceMap;

const ACCOUNT: &str = "123456789012";

fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/iamsim")
}

fn folder() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("iam-simulate")
}

/// Installs the simulator once per run, exactly as the lockfile pins it;
/// the reason when that cannot be done.
fn install() -> &'static Result<PathBuf, String> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let folder = folder();
        std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
        let lock = std::fs::read(sources().join("package-lock.json")).map_err(|e| e.to_string())?;
        let installed_lock = std::fs::read(folder.join("package-lock.json")).unwrap_or_default();
        for file in ["package.json", "package-lock.json", "simulate.js"] {
            std::fs::copy(sources().join(file), folder.join(file))
                .map_err(|e| format!("copying {file}: {e}"))?;
        }
        let present = folder
            .join("node_modules/@cloud-copilot/iam-simulate")
            .exists();
        if !present || installed_lock != lock {
            let output = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent"])
                .current_dir(&folder)
                .output()
                .map_err(|e| format!("running npm: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "npm ci failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
        Ok(folder.join("simulate.js"))
    })
}

/// The simulator's script; `None` (the test is skipped, with a message)
/// when it cannot be installed and `WRIT_REQUIRE_IAMSIM` is not set.
fn simulator() -> Option<PathBuf> {
    match install() {
        Ok(script) => Some(script.clone()),
        Err(reason) => {
            assert!(
                std::env::var_os("WRIT_REQUIRE_IAMSIM").is_none(),
                "the IAM simulator is required (WRIT_REQUIRE_IAMSIM) but: {reason}"
            );
            eprintln!("skipped: cannot install the IAM simulator: {reason}");
            None
        }
    }
}

/// The simulator's answers to `cases`, in order.
fn simulate(script: &Path, cases: &[Value]) -> Vec<Value> {
    let mut child = Command::new("node")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = cases.iter().map(|c| format!("{c}\n")).collect();
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).expect("cases written");
    });
    let stdout = child.stdout.take().expect("stdout");
    let answers: Vec<Value> = BufReader::new(stdout)
        .lines()
        .map(|line| serde_json::from_str(&line.expect("a line")).expect("JSON"))
        .collect();
    writer.join().expect("writer");
    assert!(
        child.wait().expect("node ends").success(),
        "the simulator failed"
    );
    assert_eq!(answers.len(), cases.len(), "one answer per case");
    answers
}

/// Grants that act on objects, buckets and tables, with wildcards where IAM
/// allows them: (actions, resources).
const GRANTS: &[(&str, &str)] = &[
    ("s3:GetObject", "\"arn:aws:s3:::data/*\""),
    (
        "s3:GetObject, s3:PutObject",
        "\"arn:aws:s3:::data/reports/*\"",
    ),
    ("s3:Get*", "\"arn:aws:s3:::logs-*/*\""),
    ("s3:*Object", "\"arn:aws:s3:::*/shared/*\""),
    ("s3:DeleteObject", "\"arn:aws:s3:::data/tmp/?\""),
    (
        "s3:ListBucket",
        "\"arn:aws:s3:::data\", \"arn:aws:s3:::logs-*\"",
    ),
    (
        "dynamodb:GetItem, dynamodb:Query",
        "\"arn:aws:dynamodb:us-east-1:123456789012:table/orders\"",
    ),
    (
        "dynamodb:*Item",
        "\"arn:aws:dynamodb:*:123456789012:table/orders*\"",
    ),
    (
        "dynamodb:Query",
        "\"arn:aws:dynamodb:eu-west-1:123456789012:table/*\"",
    ),
];

/// Conditions on keys of every type IAM compares differently: strings,
/// IP ranges, booleans, numbers, ARNs, and a multivalued key.
const CONDITIONS: &[&str] = &[
    "",
    "",
    "\n    when aws:RequestedRegion == \"us-east-1\"",
    "\n    when aws:RequestedRegion != \"eu-west-1\"",
    "\n    when aws:RequestedRegion in [\"us-east-1\", \"us-west-2\"]",
    "\n    when aws:RequestedRegion like \"us-*\"",
    "\n    when aws:SourceIp == \"10.0.0.0/8\"",
    "\n    when aws:SourceIp != \"192.168.0.0/16\"",
    "\n    when aws:SecureTransport == true",
    "\n    when aws:MultiFactorAuthAge in [\"60\", \"3600\"]",
    "\n    when aws:PrincipalArn like \"arn:aws:iam::123456789012:role/writ/*\"",
    "\n    when aws:TagKeys in [\"team\", \"env\"]",
    "\n    when aws:TagKeys != \"secret\"",
    "\n    when aws:MultiFactorAuthAge < \"3600\"",
    "\n    when aws:MultiFactorAuthAge >= \"100\"",
    "\n    when aws:CurrentTime < \"2026-12-01T00:00:00Z\"",
    "\n    when aws:CurrentTime >= \"2026-11-29\"",
];

/// Guardrail denies, none of which meets every grant above.
const DENIES: &[&str] = &[
    "deny aws.* s3:DeleteObject on \"arn:aws:s3:::data/*\"",
    "deny aws.* dynamodb:PutItem on \"arn:aws:dynamodb:*:123456789012:table/orders-archive\"",
    "deny aws.* s3:PutObject on \"arn:aws:s3:::*/shared/secret*\"",
];

/// Concrete requests: (action, resource).
const REQUESTS: &[(&str, &[&str])] = &[
    ("s3:GetObject", OBJECTS),
    ("s3:PutObject", OBJECTS),
    ("s3:DeleteObject", OBJECTS),
    (
        "s3:ListBucket",
        &[
            "arn:aws:s3:::data",
            "arn:aws:s3:::logs-1",
            "arn:aws:s3:::other",
        ],
    ),
    ("dynamodb:GetItem", TABLES),
    ("dynamodb:PutItem", TABLES),
    ("dynamodb:Query", TABLES),
];
const OBJECTS: &[&str] = &[
    "arn:aws:s3:::data/a",
    "arn:aws:s3:::data/reports/x",
    "arn:aws:s3:::data/tmp/1",
    "arn:aws:s3:::data/tmp/12",
    "arn:aws:s3:::logs-1/a",
    "arn:aws:s3:::other/shared/z",
    "arn:aws:s3:::other/shared/secret-plan",
    "arn:aws:s3:::other/a",
];
const TABLES: &[&str] = &[
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders-archive",
    "arn:aws:dynamodb:eu-west-1:123456789012:table/users",
];
const REGIONS: &[&str] = &["us-east-1", "us-east-1", "us-west-2", "eu-west-1"];

fn grant(random: &mut Random) -> String {
    let (actions, resources) = random.pick(GRANTS);
    let condition = random.pick(CONDITIONS);
    format!("aws.prod allow {actions} on {resources}{condition}")
}

/// One generated project: its source, and the agent asked about.
fn project(random: &mut Random) -> (String, &'static str) {
    let mut text = format!("provider aws prod {{\n  account = \"{ACCOUNT}\"\n}}\n\n");
    if random.chance(50) {
        text.push_str(&format!(
            "guardrail g {{\n  {}\n}}\n\n",
            random.pick(DENIES)
        ));
    }
    let grants: Vec<String> = (0..1 + random.next() % 3).map(|_| grant(random)).collect();
    let expires = match random.next() % 4 {
        0 => "  expires = 2026-11-01\n",
        1 => "  expires = 2027-01-01\n",
        _ => "",
    };
    let frozen = if random.chance(5) {
        "  frozen = true\n"
    } else {
        ""
    };
    let body = |name: &str, extra: &str, grants: &[String]| {
        let mut text = format!(
            "agent {name} {{\n  owner = \"team\"\n  ttl = 1h\n  runs_on aws.prod service \"lambda.amazonaws.com\"\n{extra}"
        );
        for grant in grants {
            text.push_str(&format!("  {grant}\n"));
        }
        text.push_str("}\n\n");
        text
    };
    if random.chance(40) {
        // A delegate: its grants, bounded by its parent's ceiling.
        let ceiling: Vec<String> = (0..1 + random.next() % 2).map(|_| grant(random)).collect();
        let mut delegates = "  delegates {\n    ttl = 1h\n".to_string();
        for grant in &ceiling {
            delegates.push_str(&format!(
                "    {}\n",
                grant.replace("\n    when", "\n      when")
            ));
        }
        delegates.push_str("  }\n");
        text.push_str(&body("parent", &delegates, &[]));
        text.push_str(&body(
            "child",
            &format!("  parent = parent\n{expires}{frozen}"),
            &grants,
        ));
        (text, "child")
    } else {
        text.push_str(&body("bot", &format!("{expires}{frozen}"), &grants));
        (text, "bot")
    }
}

#[test]
fn writs_evaluator_agrees_with_an_iam_simulator_on_the_lowered_policies() {
    let Some(script) = simulator() else {
        return;
    };
    let wanted: usize = std::env::var("WRIT_IAM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut random = Random(0x1a3_0001);
    let today = crate::support::today();
    let now = format!("{today}T12:00:00Z");
    // (case for the simulator, writ's answer, what to show on a disagreement)
    let mut cases: Vec<(Value, bool, String)> = Vec::new();
    let (mut projects, mut refused, mut expiring) = (0, 0, 0);
    while cases.len() < wanted {
        let (source, agent) = project(&mut random);
        let mut map = SourceMap::new();
        map.add("iam.writ", source.clone());
        let checked = crate::support::check(&map);
        let desired = writ_compiler::lower::lower(&checked.model, "acme");
        if checked.has_errors() || desired.diagnostics.iter().any(|d| d.is_error()) {
            refused += 1;
            continue;
        }
        projects += 1;
        expiring += usize::from(source.contains("expires = 2027-01-01"));
        let model = &checked.model;
        let policy_of = |kind: ResourceKind, address: &str| {
            desired
                .resources
                .iter()
                .find(|r| r.kind == kind && r.address == address)
                .and_then(|r| r.attribute("policy").cloned())
        };
        let identity = policy_of(
            ResourceKind::AwsRolePolicy,
            &format!("aws.prod/role/{agent}/policy/writ-access"),
        );
        let boundary = (agent == "child")
            .then(|| {
                policy_of(
                    ResourceKind::AwsManagedPolicy,
                    "aws.prod/policy/parent-delegates",
                )
            })
            .flatten();
        let role = desired.resources.iter().find(|r| {
            r.kind == ResourceKind::AwsRole && r.address == format!("aws.prod/role/{agent}")
        });
        let provider = model
            .provider_id(ProviderKind::Aws, "prod")
            .expect("the provider");
        let agent_id = model.agent_id(agent).expect("the agent");
        for _ in 0..25 {
            let (action, resources) = random.pick(REQUESTS);
            let resource = *random.pick(resources);
            let region = *random.pick(REGIONS);
            // The request's keys; `aws:TagKeys` only comes with requests that
            // pass tags, which these do not.
            let mut context = BTreeMap::from([
                ("aws:RequestedRegion".to_string(), region.to_string()),
                (
                    "aws:SourceIp".to_string(),
                    random
                        .pick(&["10.1.2.3", "192.168.1.1", "203.0.113.7"])
                        .to_string(),
                ),
                (
                    "aws:PrincipalArn".to_string(),
                    format!("arn:aws:iam::{ACCOUNT}:role/writ/acme/{agent}"),
                ),
            ]);
            context.insert("aws:CurrentTime".to_string(), now.clone());
            if let Some(secure) = random.pick(&[Some("true"), Some("false"), None]) {
                context.insert("aws:SecureTransport".to_string(), secure.to_string());
            }
            if let Some(age) = random.pick(&[Some("60"), Some("100"), None]) {
                context.insert("aws:MultiFactorAuthAge".to_string(), age.to_string());
            }
            let writ = eval::evaluate(
                model,
                agent_id,
                &Request {
                    provider,
                    action,
                    resource,
                    placement: &Placement::None,
                    name: None,
                    context: Some(&context),
                },
            )
            .is_allowed();
            // A retired agent has no role at all: nothing can be allowed.
            let Some(role) = role else {
                assert!(
                    !writ,
                    "writ allows {action} for an agent with no role:\n{source}"
                );
                continue;
            };
            let case = json!({
                "identity": identity.iter().collect::<Vec<_>>(),
                "boundary": role.attribute("permissions_boundary").and(boundary.clone()),
                "principal": format!("arn:aws:iam::{ACCOUNT}:role/writ/acme/{agent}"),
                "action": action,
                "resource": resource,
                "account": ACCOUNT,
                "context": context
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect::<serde_json::Map<String, Value>>(),
            });
            // On the day it expires, AWS itself must stop the agent, whether
            // or not anyone has run writ since: every request is denied.
            if source.contains("expires = 2027-01-01") {
                let mut expired = case.clone();
                expired["context"]["aws:CurrentTime"] = json!("2027-01-01T00:00:00Z");
                cases.push((
                    expired,
                    false,
                    format!(
                        "on its expiry date: {action} on {resource} with {context:?}\n{source}"
                    ),
                ));
            }
            cases.push((
                case,
                writ,
                format!("{action} on {resource} with {context:?}\n{source}"),
            ));
        }
    }
    let started = std::time::Instant::now();
    let answers = simulate(
        &script,
        &cases.iter().map(|(c, _, _)| c.clone()).collect::<Vec<_>>(),
    );
    let mut disagreements = Vec::new();
    let mut allowed = 0;
    for ((_, writ, shown), answer) in cases.iter().zip(&answers) {
        let iam = match answer["result"].as_str() {
            Some(result) => result == "Allowed",
            None => panic!("the simulator refused a case: {answer}\n{shown}"),
        };
        allowed += usize::from(iam);
        if iam != *writ {
            disagreements.push(format!(
                "IAM {}, writ {}: {shown}",
                if iam { "allows" } else { "denies" },
                if *writ { "allows" } else { "denies" }
            ));
        }
    }
    eprintln!(
        "IAM simulator: {} requests over {projects} projects ({expiring} with an expiry date ahead; {refused} refused by the checker) in {:.1} s, {allowed} allowed, {} disagreements",
        cases.len(),
        started.elapsed().as_secs_f64(),
        disagreements.len()
    );
    assert!(
        allowed * 20 > cases.len(),
        "too few allowed cases to mean anything: {allowed}"
    );
    disagreements.truncate(3);
    assert!(
        disagreements.is_empty(),
        "writ and IAM disagree:\n{}",
        disagreements.join("\n---\n")
    );
}

/// The revocation's trust deny, against the simulator: every principal a
/// lowered role trusts (a parent role, a service, an IAM user, an OIDC
/// identity of a cluster or of GitHub Actions) may assume the role while
/// its trust is open, and is explicitly denied every way of assuming it
/// (and of tagging or naming the session) once a revoke closed it. The
/// closed trust is the one plans keep (from the revoke's mark on the role),
/// not one the test writes.
#[test]
fn a_revoked_roles_trust_denies_every_principal_it_trusted() {
    let Some(script) = simulator() else {
        return;
    };
    let source = format!(
        r#"
provider aws prod {{
  account = "{ACCOUNT}"
}}
provider kubernetes prod {{
  cluster = "prod-eks"
  oidc_issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
}}
provider github acme {{
  org = "acme"
}}
agent parent {{
  owner = "team"
  ttl = 1h
  runs_on aws.prod service "lambda.amazonaws.com"
  runs_on aws.prod user "ci/legacy"
  runs_on github.acme repo "acme/deploy" ref "refs/heads/main"
  aws.prod allow s3:GetObject on "arn:aws:s3:::data/*"
  delegates {{
    ttl = 1h
    aws.prod allow s3:GetObject on "arn:aws:s3:::data/*"
  }}
}}
agent helper {{
  owner = "team"
  parent = parent
  ttl = 1h
  runs_on kubernetes.prod namespace "jobs" service_account "helper"
  aws.prod allow s3:GetObject on "arn:aws:s3:::data/*"
}}
"#
    );
    let mut map = SourceMap::new();
    map.add("trust.writ", source);
    let checked = crate::support::check(&map);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let desired = writ_compiler::lower::lower(&checked.model, "acme");
    // What a revoke that stopped after its first step leaves: the roles as
    // applied, with the revoke's mark (a tag; not part of the digest).
    let mut observed = desired.resources.clone();
    for role in observed
        .iter_mut()
        .filter(|r| r.kind == ResourceKind::AwsRole)
    {
        role.attributes
            .get_mut("tags")
            .and_then(Value::as_object_mut)
            .unwrap()
            .insert("writ:revoked-at".into(), json!("2026-11-29T09:00:00Z"));
    }
    let options = writ_compiler::plan::PlanOptions {
        today: crate::support::today(),
        max_key_age_days: None,
    };
    let plan = writ_compiler::plan::plan(&desired, &observed, &options);
    let mut cases = Vec::new();
    let mut shown = Vec::new();
    for agent in ["parent", "helper"] {
        let address = format!("aws.prod/role/{agent}");
        let role = desired
            .resources
            .iter()
            .find(|r| r.address == address)
            .unwrap();
        let open = role.attribute("assume_role_policy").unwrap().clone();
        let closed = plan
            .changes
            .iter()
            .find(|c| c.address == address)
            .and_then(|c| c.after.as_ref())
            .map(|after| after["assume_role_policy"].clone())
            .unwrap_or_else(|| panic!("the plan closes the trust of {address}"));
        let arn = format!("arn:aws:iam::{ACCOUNT}:role/writ/acme/{agent}");
        for statement in open["Statement"].as_array().unwrap() {
            let principal = &statement["Principal"];
            let (who, federated) = if let Some(aws) = principal.get("AWS") {
                (aws[0].as_str().unwrap().to_string(), false)
            } else if let Some(service) = principal.get("Service") {
                (service[0].as_str().unwrap().to_string(), false)
            } else {
                (
                    principal["Federated"][0].as_str().unwrap().to_string(),
                    true,
                )
            };
            // The context the trust asks for: each condition's first value.
            let mut context = serde_json::Map::new();
            for (_, keys) in statement["Condition"].as_object().into_iter().flatten() {
                for (key, values) in keys.as_object().unwrap() {
                    context.insert(key.clone(), values[0].clone());
                }
            }
            let trusted: Vec<&str> = statement["Action"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            // The caller may assume roles, as far as its own policies go.
            let identity = json!([{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]}]);
            for action in [
                "sts:AssumeRole",
                "sts:AssumeRoleWithWebIdentity",
                "sts:AssumeRoleWithSAML",
                "sts:TagSession",
                "sts:SetSourceIdentity",
            ] {
                for (trust, state) in [(&open, "open"), (&closed, "closed")] {
                    // Open, only what the trust allows is asked; the
                    // simulator does not read OIDC claim keys, so an open
                    // federated trust with claims is not asked.
                    if state == "open"
                        && (!trusted.contains(&action) || (federated && !context.is_empty()))
                    {
                        continue;
                    }
                    cases.push(json!({
                        "identity": identity, "boundary": null, "principal": who,
                        "action": action, "resource": arn, "account": ACCOUNT,
                        "context": context, "resourcePolicy": trust,
                    }));
                    shown.push((format!("{who} {action} on {arn}, trust {state}"), state));
                }
            }
        }
    }
    let answers = simulate(&script, &cases);
    let mut asked = BTreeMap::new();
    for ((what, state), answer) in shown.iter().zip(&answers) {
        let result = answer["result"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {answer}"));
        let expected = if *state == "open" {
            "Allowed"
        } else {
            "ExplicitlyDenied"
        };
        assert_eq!(result, expected, "{what}");
        *asked.entry(*state).or_insert(0) += 1;
    }
    // Every kind of principal was asked, open and closed.
    assert!(asked["open"] >= 4 && asked["closed"] >= 25, "{asked:?}");
}

/// A GitHub workload's pins, against the claims of a job: does STS let the
/// job assume the agent's role? Each pin is checked as its own claim, which
/// the simulator evaluates (it does not evaluate `sub` and `aud`: they are
/// left out of the trust it is given, and `sub` is checked by the plan
/// tests). The expected answer is the source's: every pin written holds.
#[test]
fn a_github_trust_admits_exactly_the_jobs_its_pins_name() {
    let Some(script) = simulator() else {
        return;
    };
    const CLAIM: &str = "token.actions.githubusercontent.com";
    // Every combination of pins (each present or not), and every job.
    let repositories = ["acme/app", "acme/other"];
    let environments = [None, Some("production"), Some("staging")];
    let refs = [Some("refs/heads/main"), Some("refs/heads/evil")];
    let workflows = [
        Some(".github/workflows/deploy.yml"),
        Some(".github/workflows/other.yml"),
    ];
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    let mut shown = Vec::new();
    for pin_environment in [None, Some("production")] {
        for pin_ref in [None, Some("refs/heads/main")] {
            for pin_workflow in [None, Some(".github/workflows/deploy.yml")] {
                let mut runs_on = "runs_on github.acme repo \"acme/app\"".to_string();
                if let Some(workflow) = pin_workflow {
                    runs_on.push_str(&format!(" workflow \"{workflow}\""));
                }
                if let Some(environment) = pin_environment {
                    runs_on.push_str(&format!(" environment \"{environment}\""));
                }
                if let Some(git_ref) = pin_ref {
                    runs_on.push_str(&format!(" ref \"{git_ref}\""));
                }
                let source = format!(
                    "provider aws prod {{\n  account = \"{ACCOUNT}\"\n}}\nprovider github acme {{\n  org = \"acme\"\n}}\nagent deployer {{\n  owner = \"team\"\n  ttl = 1h\n  @waive(broad_trust, \"asked on purpose\")\n  {runs_on}\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::releases/*\"\n}}\n"
                );
                let mut map = SourceMap::new();
                map.add("github.writ", source);
                let checked = crate::support::check(&map);
                assert!(
                    !checked.has_errors(),
                    "{runs_on}: {:?}",
                    checked.diagnostics
                );
                let mut desired = writ_compiler::lower::lower(&checked.model, "acme");
                // Bound, as a plan binds it, to the repository GitHub
                // reports: id 42 (a repository made again under the same
                // name has another).
                let observed = [writ_compiler::resource::Resource {
                    address: "github.acme/repos/acme/app".into(),
                    provider: "github.acme".into(),
                    kind: ResourceKind::GithubRepository,
                    agent: None,
                    attributes: std::collections::BTreeMap::from([
                        ("name".to_string(), json!("acme/app")),
                        ("id".to_string(), json!(42)),
                        ("owner_id".to_string(), json!(7)),
                    ])
                    .into(),
                }];
                let unbound = writ_compiler::lower::github::bind(&mut desired, &observed);
                assert!(unbound.is_empty(), "{unbound:?}");
                let role = desired
                    .resources
                    .iter()
                    .find(|r| r.address == "aws.prod/role/deployer")
                    .expect("the role");
                let mut trust = role.attribute("assume_role_policy").unwrap().clone();
                for statement in trust["Statement"].as_array_mut().unwrap() {
                    for (_, keys) in statement["Condition"].as_object_mut().unwrap() {
                        let keys = keys.as_object_mut().unwrap();
                        keys.remove(&format!("{CLAIM}:sub"));
                        keys.remove(&format!("{CLAIM}:aud"));
                    }
                }
                for (repository, id) in repositories.iter().flat_map(|r| [(*r, 42), (*r, 43)]) {
                    for environment in environments {
                        for git_ref in refs {
                            for workflow in workflows {
                                let mut context = serde_json::Map::new();
                                context.insert(format!("{CLAIM}:repository"), json!(repository));
                                context.insert(
                                    format!("{CLAIM}:repository_id"),
                                    json!(id.to_string()),
                                );
                                if let Some(environment) = environment {
                                    context
                                        .insert(format!("{CLAIM}:environment"), json!(environment));
                                }
                                let git_ref = git_ref.unwrap_or_default();
                                context.insert(format!("{CLAIM}:ref"), json!(git_ref));
                                if let Some(workflow) = workflow {
                                    context.insert(
                                        format!("{CLAIM}:job_workflow_ref"),
                                        json!(format!("{repository}/{workflow}@{git_ref}")),
                                    );
                                }
                                let admitted = repository == "acme/app"
                                    && id == 42
                                    && pin_environment.is_none_or(|p| environment == Some(p))
                                    && pin_ref.is_none_or(|p| git_ref == p)
                                    && pin_workflow.is_none_or(|p| workflow == Some(p));
                                cases.push(json!({
                                    "identity": [{"Version": "2012-10-17", "Statement": [
                                        {"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]}],
                                    "boundary": null,
                                    "principal": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{CLAIM}"),
                                    "action": "sts:AssumeRoleWithWebIdentity",
                                    "resource": format!("arn:aws:iam::{ACCOUNT}:role/writ/acme/deployer"),
                                    "account": ACCOUNT,
                                    "context": context,
                                    "resourcePolicy": trust,
                                }));
                                expected.push(admitted);
                                shown.push(format!(
                                    "`{runs_on}` for a job of {repository} (id {id}), environment {environment:?}, {git_ref}, {workflow:?}"
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    let answers = simulate(&script, &cases);
    let mut disagreements = Vec::new();
    let mut admitted = 0;
    for ((answer, expected), what) in answers.iter().zip(&expected).zip(&shown) {
        let allowed = answer["result"].as_str() == Some("Allowed");
        admitted += usize::from(allowed);
        if allowed != *expected {
            disagreements.push(format!(
                "{what}: the source says {}, the simulator {answer}",
                if *expected { "admitted" } else { "refused" }
            ));
        }
    }
    assert_eq!(answers.len(), cases.len());
    assert!(admitted > 0, "no job was ever admitted");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(10)].join("\n")
    );
}

/// Statement parts for random roles to import: actions, resources, and
/// conditions (some writ can say, some it cannot).
const IMPORT_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:Get*",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:*",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:*",
    "ec2:DescribeInstances",
    "sqs:SendMessage",
];
const IMPORT_RESOURCES: &[&str] = &[
    "*",
    "arn:aws:s3:::acme-data/*",
    "arn:aws:s3:::acme-data",
    "arn:aws:s3:::acme-*",
    "arn:aws:dynamodb:us-east-1:123456789012:table/Orders",
    "arn:aws:dynamodb:*:123456789012:table/*",
    "arn:aws:sqs:us-east-1:123456789012:jobs",
];
const IMPORT_CONDITIONS: &[&str] = &[
    r#"{"StringEquals": {"aws:RequestedRegion": "us-east-1"}}"#,
    r#"{"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}"#,
    r#"{"StringLike": {"aws:RequestedRegion": "us-*"}}"#,
    r#"{"StringNotEquals": {"aws:RequestedRegion": "us-west-2"}}"#,
    r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#,
    r#"{"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}"#,
    r#"{"Bool": {"aws:SecureTransport": "true"}}"#,
    r#"{"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}"#,
    r#"{"StringEquals": {"aws:RequestedRegion": "us-east-1"}, "Bool": {"aws:SecureTransport": "true"}}"#,
    // Not writ's: either of two patterns, a case-insensitive match, `Null`.
    r#"{"StringLike": {"aws:RequestedRegion": ["us-*", "eu-*"]}}"#,
    r#"{"StringEqualsIgnoreCase": {"aws:RequestedRegion": "US-EAST-1"}}"#,
    r#"{"Null": {"aws:SourceIp": "false"}}"#,
];
const IMPORT_REQUESTS: &[(&str, &[&str])] = &[
    (
        "s3:GetObject",
        &[
            "arn:aws:s3:::acme-data/a.csv",
            "arn:aws:s3:::acme-logs/b",
            "arn:aws:s3:::other/c",
        ],
    ),
    (
        "s3:PutObject",
        &["arn:aws:s3:::acme-data/a.csv", "arn:aws:s3:::other/c"],
    ),
    (
        "s3:ListBucket",
        &[
            "arn:aws:s3:::acme-data",
            "arn:aws:s3:::acme-logs",
            "arn:aws:s3:::other",
        ],
    ),
    ("s3:GetBucketPolicy", &["arn:aws:s3:::acme-data"]),
    (
        "dynamodb:GetItem",
        &[
            "arn:aws:dynamodb:us-east-1:123456789012:table/Orders",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/Users",
        ],
    ),
    (
        "dynamodb:PutItem",
        &["arn:aws:dynamodb:us-east-1:123456789012:table/Orders"],
    ),
    ("ec2:DescribeInstances", &["*"]),
    (
        "sqs:SendMessage",
        &[
            "arn:aws:sqs:us-east-1:123456789012:jobs",
            "arn:aws:sqs:us-east-1:123456789012:other",
        ],
    ),
];

/// A random role's inline policy document.
fn import_policy(random: &mut Random) -> Value {
    let mut statements = Vec::new();
    for _ in 0..1 + random.next() % 3 {
        let mut actions: Vec<&str> = (0..1 + random.next() % 3)
            .map(|_| *random.pick(IMPORT_ACTIONS))
            .collect();
        actions.dedup();
        let mut resources: Vec<&str> = (0..1 + random.next() % 2)
            .map(|_| *random.pick(IMPORT_RESOURCES))
            .collect();
        resources.dedup();
        let mut statement = json!({
            "Effect": if random.chance(10) { "Deny" } else { "Allow" },
            "Action": actions,
            "Resource": resources,
        });
        if random.chance(5) {
            statement["NotAction"] = statement["Action"].take();
            statement.as_object_mut().unwrap().remove("Action");
        }
        if random.chance(40) {
            let condition = *random.pick(IMPORT_CONDITIONS);
            statement["Condition"] = serde_json::from_str(condition).unwrap();
        }
        statements.push(statement);
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// `writ import` against the simulator: random roles, as a snapshot holds
/// them, are imported; the generated source, checked and evaluated by
/// writ, is put against the original documents evaluated by the simulator
/// on generated requests. A role the import calls exact must agree on
/// every request; one it calls narrower may only allow less, one it calls
/// wider only more; no disagreement goes unreported.
#[test]
fn imported_roles_allow_what_the_originals_allow_as_the_import_reports() {
    let Some(script) = simulator() else {
        return;
    };
    let mut random = Random(0x1a3_0018);
    let today = crate::support::today();
    let project = "provider aws prod {\n  account = \"123456789012\"\n}\n";
    let (mut exact_roles, mut inexact_roles) = (0, 0);
    // (case, writ's answer, the role's verdict, what to show)
    let mut cases: Vec<(Value, bool, (bool, bool), String)> = Vec::new();
    for round in 0..60 {
        let mut observed = Vec::new();
        let mut documents = BTreeMap::new();
        for n in 0..4 {
            let name = format!("legacy-{round}-{n}");
            let document = import_policy(&mut random);
            observed.push(writ_compiler::resource::Resource {
                address: format!("aws.prod/role/{name}"),
                provider: "aws.prod".to_string(),
                kind: ResourceKind::AwsRole,
                agent: None,
                attributes: BTreeMap::from([
                    ("name".to_string(), json!(name)),
                    ("path".to_string(), json!("/")),
                    ("max_session_duration".to_string(), json!(3600)),
                    ("assume_role_policy".to_string(), json!({"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})),
                    ("tags".to_string(), json!({"owner": "team-legacy"})),
                ])
                .into(),
            });
            observed.push(writ_compiler::resource::Resource {
                address: format!("aws.prod/role/{name}/policy/access"),
                provider: "aws.prod".to_string(),
                kind: ResourceKind::AwsRolePolicy,
                agent: None,
                attributes: BTreeMap::from([
                    ("role".to_string(), json!(name)),
                    ("name".to_string(), json!("access")),
                    ("policy".to_string(), document.clone()),
                ])
                .into(),
            });
            documents.insert(name, document);
        }
        let mut sources = SourceMap::new();
        sources.add("providers.writ", project);
        let import = writ_compiler::import::import(
            &sources,
            today,
            "acme",
            &observed,
            &writ_compiler::import::Options {
                file: "imported.writ".to_string(),
                ..Default::default()
            },
        );
        assert!(
            import.unresolved.is_empty(),
            "{:?}\n{}",
            import.unresolved,
            import.source
        );
        sources.add("imported.writ", import.source.clone());
        let checked = crate::support::check(&sources);
        assert!(
            !checked.has_errors(),
            "the imported source does not check:\n{}\n{:#?}",
            import.source,
            checked
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .collect::<Vec<_>>()
        );
        let model = &checked.model;
        let provider = model.provider_id(ProviderKind::Aws, "prod").unwrap();
        for object in &import.objects {
            let role = object.address.trim_start_matches("aws.prod/role/");
            let document = &documents[role];
            match object.exact {
                true => exact_roles += 1,
                false => inexact_roles += 1,
            }
            let agent = model.agent_id(&object.agent).expect("the imported agent");
            for _ in 0..40 {
                let (action, resources) = random.pick(IMPORT_REQUESTS);
                let resource = *random.pick(resources);
                let mut context = BTreeMap::from([
                    (
                        "aws:RequestedRegion".to_string(),
                        random
                            .pick(&["us-east-1", "us-west-2", "eu-west-1"])
                            .to_string(),
                    ),
                    (
                        "aws:SourceIp".to_string(),
                        random.pick(&["10.1.2.3", "203.0.113.7"]).to_string(),
                    ),
                    (
                        "aws:PrincipalArn".to_string(),
                        format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
                    ),
                ]);
                if let Some(secure) = random.pick(&[Some("true"), Some("false"), None]) {
                    context.insert("aws:SecureTransport".to_string(), secure.to_string());
                }
                if let Some(age) = random.pick(&[Some("60"), Some("7200"), None]) {
                    context.insert("aws:MultiFactorAuthAge".to_string(), age.to_string());
                }
                let writ = eval::evaluate(
                    model,
                    agent,
                    &Request {
                        provider,
                        action,
                        resource,
                        placement: &Placement::None,
                        name: None,
                        context: Some(&context),
                    },
                )
                .is_allowed();
                let case = json!({
                    "identity": [document],
                    "boundary": null,
                    "principal": format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
                    "action": action,
                    "resource": resource,
                    "account": ACCOUNT,
                    "context": context
                        .iter()
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect::<serde_json::Map<String, Value>>(),
                });
                cases.push((
                    case,
                    writ,
                    (object.narrower, object.wider),
                    format!(
                        "{action} on {resource} {context:?}\noriginal: {document}\nimported:\n{}",
                        import.source
                    ),
                ));
            }
        }
    }
    assert!(
        exact_roles > 50 && inexact_roles > 20,
        "{exact_roles} exact, {inexact_roles} not"
    );
    let answers = simulate(
        &script,
        &cases.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
    );
    let mut problems = Vec::new();
    for ((_, writ, (narrower, wider), shown), answer) in cases.iter().zip(&answers) {
        let Some(result) = answer["result"].as_str() else {
            panic!("the simulator refused a case: {answer}\n{shown}");
        };
        let iam = result == "Allowed";
        let allowed = match (writ, iam) {
            (true, false) => *wider,
            (false, true) => *narrower,
            _ => true,
        };
        if !allowed {
            problems.push(format!("writ {writ}, IAM {iam}: {shown}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases disagree beyond what the import reported; the first:\n{}",
        problems.len(),
        cases.len(),
        problems[0]
    );
    eprintln!(
        "{} cases over {exact_roles} exact and {inexact_roles} inexact imported roles: no unreported disagreement",
        cases.len()
    );
}

/// The decision engine (`writ serve`'s) decides as the evaluator `writ
/// explain` and `writ test` use: the same decision, for the same reason, on
/// random AWS projects (grants with wildcards and conditions, guardrails,
/// delegation, `expires`, `frozen`) and requests with and without their
/// condition keys, in any case; and on the example (every provider kind),
/// for requests made of its own grants' actions and resources.
#[test]
fn the_decision_engine_decides_as_the_evaluator() {
    let mut random = Random(0x1a3_0019);
    let mut compared = 0;
    let (mut frozen, mut retired, mut delegates) = (0, 0, 0);
    for _ in 0..1000 {
        let (source, _) = project(&mut random);
        let mut map = SourceMap::new();
        map.add("iam.writ", source.clone());
        // Models with errors too (a delegate beyond its ceiling, say): the
        // evaluator answers them, and so must the engine.
        let checked = crate::support::check(&map);
        let model = &checked.model;
        let engine = writ_compiler::decide::Engine::new(model.clone());
        let provider = engine.provider("aws.prod").expect("the provider");
        frozen += model.agents.iter().filter(|a| a.frozen).count();
        retired += model.agents.iter().filter(|a| a.retired).count();
        delegates += model.agents.iter().filter(|a| a.parent.is_some()).count();
        for agent in 0..model.agents.len() {
            for _ in 0..20 {
                let (action, resources) = random.pick(REQUESTS);
                let resource = *random.pick(resources);
                let action = match random.next() % 3 {
                    0 => action.to_ascii_uppercase(),
                    1 => action.to_ascii_lowercase(),
                    _ => action.to_string(),
                };
                let context = BTreeMap::from([(
                    "aws:RequestedRegion".to_string(),
                    random.pick(REGIONS).to_string(),
                )]);
                let known = random.chance(70).then_some(&context);
                let request = Request {
                    provider,
                    action: &action,
                    resource,
                    placement: &Placement::None,
                    name: None,
                    context: known,
                };
                assert_eq!(
                    engine.decide(agent, &request),
                    eval::evaluate(model, agent, &request),
                    "{action} on {resource} ({known:?}) for agent {agent}:\n{source}"
                );
                compared += 1;
            }
        }
    }
    // The example: every grant's actions and resources, asked of every
    // agent, in its placement and elsewhere.
    let mut example = SourceMap::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme");
    for file in [
        "providers.writ",
        "guardrails.writ",
        "teams/billing.writ",
        "teams/platform.writ",
        "teams/reporting.writ",
        "teams/analytics.writ",
    ] {
        example.add(file, std::fs::read_to_string(root.join(file)).unwrap());
    }
    let checked = crate::support::check(&example);
    assert!(!checked.has_errors());
    let model = &checked.model;
    let engine = writ_compiler::decide::Engine::new(model.clone());
    let asked: Vec<(usize, String, String, Placement, Option<String>)> = model
        .agents
        .iter()
        .flat_map(|a| a.grants.iter())
        .flat_map(|g| {
            g.actions.iter().flat_map(move |action| {
                g.resources.iter().flat_map(move |resource| {
                    let concrete = resource.replace('*', "x");
                    let names = g.resource_names.first().cloned();
                    [
                        (
                            g.provider,
                            action.replace('*', "Get"),
                            concrete.clone(),
                            g.placement.clone(),
                            names,
                        ),
                        (
                            g.provider,
                            action.clone(),
                            concrete,
                            Placement::Namespace("other".to_string()),
                            None,
                        ),
                    ]
                })
            })
        })
        .collect();
    for agent in 0..model.agents.len() {
        for (provider, action, resource, placement, name) in &asked {
            let request = Request {
                provider: *provider,
                action,
                resource,
                placement,
                name: name.as_deref(),
                context: None,
            };
            assert_eq!(
                engine.decide(agent, &request),
                eval::evaluate(model, agent, &request),
                "{action} on {resource} {placement:?} for `{}`",
                model.agents[agent].name
            );
            compared += 1;
        }
    }
    assert!(compared > 10_000, "{compared} requests compared");
    assert!(
        frozen > 10 && retired > 10 && delegates > 100,
        "{frozen} frozen, {retired} retired, {delegates} delegates"
    );
}

/// The trust an `issuer` adds to every agent's role, against the
/// simulator: `writ serve`'s role may assume the agent's role, set its
/// source identity and tag the session, only as that agent (the source
/// identity its name) and only with writ's own tags; no other principal
/// may, and the issuer may not as another agent.
#[test]
fn the_issuers_trust_admits_the_server_as_each_agent_only() {
    let Some(script) = simulator() else {
        return;
    };
    let issuer = format!("arn:aws:iam::{ACCOUNT}:role/platform/writ-serve");
    let source = format!(
        "provider aws prod {{\n  account = \"{ACCOUNT}\"\n  issuer = \"{issuer}\"\n}}\nagent exporter {{\n  owner = \"team\"\n  ttl = 15m\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::invoices/*\"\n  delegates {{\n    ttl = 15m\n    aws.prod allow s3:GetObject on \"arn:aws:s3:::invoices/*\"\n  }}\n}}\nagent reader {{\n  owner = \"team\"\n  parent = exporter\n  ttl = 15m\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::invoices/*\"\n}}\n"
    );
    let mut map = SourceMap::new();
    map.add("issuer.writ", source);
    let checked = crate::support::check(&map);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let desired = writ_compiler::lower::lower(&checked.model, "acme");
    let principals = [
        issuer.clone(),
        format!("arn:aws:iam::{ACCOUNT}:role/writ-serve"),
        "arn:aws:iam::210987654321:role/platform/writ-serve".to_string(),
        format!("arn:aws:iam::{ACCOUNT}:user/writ-serve"),
    ];
    let identities = [None, Some("exporter"), Some("reader"), Some("someone")];
    let tag_sets = |agent: &str| -> [Option<Vec<(String, String)>>; 5] {
        let tags = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        [
            None,
            tags(&[
                ("writ:agent", agent),
                ("writ:chain", "a/b"),
                ("writ:task", "t"),
            ]),
            tags(&[("writ:agent", agent), ("team", "finance")]),
            tags(&[("writ:agent", "someone"), ("writ:chain", "a/b")]),
            tags(&[("writ:chain", "a/b")]),
        ]
    };
    let (mut cases, mut expected, mut shown) = (Vec::new(), Vec::new(), Vec::new());
    for agent in ["exporter", "reader"] {
        let role = desired
            .resources
            .iter()
            .find(|r| r.address == format!("aws.prod/role/{agent}"))
            .expect("the role");
        let trust = role.attribute("assume_role_policy").unwrap().clone();
        for principal in &principals {
            for action in ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"] {
                for identity in identities {
                    for tags in &tag_sets(agent) {
                        let mut context = serde_json::Map::new();
                        if let Some(identity) = identity {
                            context.insert("sts:SourceIdentity".into(), json!(identity));
                        }
                        if let Some(tags) = tags {
                            let keys: Vec<&String> = tags.iter().map(|(k, _)| k).collect();
                            context.insert("aws:TagKeys".into(), json!(keys));
                            for (key, value) in tags {
                                context.insert(format!("aws:RequestTag/{key}"), json!(value));
                            }
                        }
                        // Assuming and naming the source: as the agent;
                        // tagging: writ's tags only, the agent's name in
                        // `writ:agent`.
                        let admitted = *principal == issuer
                            && match action {
                                "sts:TagSession" => tags.as_ref().is_some_and(|t| {
                                    t.iter().all(|(k, _)| k.starts_with("writ:"))
                                        && t.iter().any(|(k, v)| k == "writ:agent" && v == agent)
                                }),
                                _ => identity == Some(agent),
                            };
                        cases.push(json!({
                            "identity": [{"Version": "2012-10-17", "Statement": [
                                {"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]}],
                            "boundary": null,
                            "principal": principal,
                            "action": action,
                            "resource": format!("arn:aws:iam::{ACCOUNT}:role/writ/acme/{agent}"),
                            "account": ACCOUNT,
                            "context": context,
                            "resourcePolicy": trust,
                        }));
                        expected.push(admitted);
                        shown.push(format!("{principal} {action} on {agent}, source identity {identity:?}, tags {tags:?}"));
                    }
                }
            }
        }
    }
    let answers = simulate(&script, &cases);
    assert_eq!(answers.len(), cases.len());
    let mut disagreements = Vec::new();
    let mut admitted = 0;
    for ((answer, expected), what) in answers.iter().zip(&expected).zip(&shown) {
        let allowed = answer["result"].as_str() == Some("Allowed");
        admitted += usize::from(allowed);
        if allowed != *expected {
            disagreements.push(format!(
                "{what}: the source says {}, the simulator {answer}",
                if *expected { "admitted" } else { "refused" }
            ));
        }
    }
    assert!(admitted > 0, "the issuer was never admitted");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(10)].join("\n")
    );
}
