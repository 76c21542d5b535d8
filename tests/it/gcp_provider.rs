//! The GCP provider against the local GCP API (`gcp/`): service accounts
//! and writ's bindings created, a second plan empty, others' members and
//! another writ project's kept through every apply, a binding added by
//! hand taken back, a concurrent writer met by the `etag`, an agent
//! removed.

use crate::binary::text;
use crate::gcp::{FakeGcp, TOKEN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;

const PROJECT: &str = "acme-data-1";
const BUCKET: &str = "projects/_/buckets/events";

fn writ(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(args)
        .env("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
        .env("WRIT_TODAY", "2026-12-01")
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("writ runs")
}

const SOURCE: &str = r#"provider gcp data {
  project = "acme-data-1"
}

agent loader {
  owner = "team-data"
  ttl = 1h
  expires = 2027-06-30
  runs_on gcp.data workload_pool "pool" subject "loader"
  gcp.data allow roles/storage.objectViewer on "projects/_/buckets/events"
    when resource.name like "projects/_/buckets/events/objects/2026/*"
  gcp.data allow roles/bigquery.dataEditor on "projects/acme-data-1/datasets/warehouse"
  delegates {
    gcp.data allow roles/storage.objectViewer on "projects/_/buckets/events"
  }
}

agent helper {
  owner = "team-data"
  ttl = 1h
  parent = loader
  gcp.data allow roles/storage.objectViewer on "projects/_/buckets/events"
}

agent viewer {
  owner = "team-data"
  ttl = 1h
  runs_on gcp.data workload_pool "pool" subject "viewer"
  gcp.data allow roles/viewer on "projects/acme-data-1"
}

agent archiver {
  owner = "team-data"
  ttl = 1h
  gcp.data allow roles/storage.objectViewer on "projects/_/buckets/archive"
}
"#;

fn project(root: &Path, gcp: &FakeGcp) -> PathBuf {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("main.writ"), SOURCE).unwrap();
    std::fs::write(
        root.join("writ.toml"),
        format!(
            "[project]\nname = \"data\"\n\n[provider.gcp.data]\nendpoint_url = \"{}\"\n",
            gcp.endpoint()
        ),
    )
    .unwrap();
    root.to_path_buf()
}

fn email(agent: &str) -> String {
    format!(
        "{}@{PROJECT}.iam.gserviceaccount.com",
        writ_compiler::lower::gcp::account_id(agent)
    )
}

/// Every (role, condition, member) of a policy, sorted.
fn triples(policy: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for binding in policy["bindings"].as_array().into_iter().flatten() {
        for member in binding["members"].as_array().into_iter().flatten() {
            found.push((
                binding["role"].as_str().unwrap().to_string(),
                binding["condition"]["expression"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                member.as_str().unwrap().to_string(),
            ));
        }
    }
    found.sort();
    found
}

#[test]
fn gcp_service_accounts_and_bindings_converge_and_keep_everyone_elses() {
    let gcp = FakeGcp::start(PROJECT, "804213376955", &["events", "archive"]);
    // Already there: a person's access to the bucket, and another writ
    // project's service account with its own binding there.
    gcp.add_account("writ-exporter", "writ project=other agent=exporter");
    gcp.add_binding(
        BUCKET,
        json!({"role": "roles/storage.objectViewer", "members": ["user:alice@acme.com", format!("serviceAccount:writ-exporter@{PROJECT}.iam.gserviceaccount.com")]}),
    );
    let root = std::env::temp_dir().join(format!("writ-gcp-{}", std::process::id()));
    let folder = project(&root, &gcp);
    let path = folder.to_str().unwrap();
    let output = writ(&["plan", path, "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let created: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["actions"] == json!(["create"]))
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    for address in [
        "gcp.data/serviceAccounts/writ-loader",
        "gcp.data/serviceAccounts/writ-helper",
        "gcp.data/serviceAccounts/writ-viewer",
    ] {
        assert!(created.contains(&address), "{address} in {created:?}");
    }
    // Who gains what, in GCP's terms.
    let gains = plan["permission_delta"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["agent"] == "loader")
        .map(|d| d["gains"].to_string())
        .unwrap_or_default();
    assert!(
        gains.contains("roles/bigquery.dataEditor") && gains.contains("workloadIdentityUser"),
        "{gains}"
    );
    // The first requests meet a quota and an outage: retried.
    gcp.fail_next(&[429, 503]);
    let output = writ(&["apply", path, "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        gcp.log()
            .iter()
            .filter(|l| l.status == 429 || l.status == 503)
            .count(),
        2
    );
    // One write per resource, whatever the number of its bindings.
    let writes = |gcp: &FakeGcp| {
        gcp.log()
            .iter()
            .filter(|l| l.method == "PUT" && l.path == "/storage/v1/b/events/iam")
            .count()
    };
    assert_eq!(writes(&gcp), 1);
    // The service accounts, with writ's record.
    let loader = gcp.account(&email("loader")).expect("created");
    assert!(loader["description"]
        .as_str()
        .unwrap()
        .starts_with("writ project=data agent=loader digest="));
    // The bucket: writ's conditional binding, beside Alice's and the other
    // project's, untouched.
    let bucket = triples(&gcp.policy(BUCKET).unwrap());
    let expiry = "request.time < timestamp(\"2027-06-30T00:00:00Z\")";
    assert!(bucket.contains(&(
        "roles/storage.objectViewer".into(),
        format!("(resource.name.startsWith(\"projects/_/buckets/events/objects/2026/\")) && ({expiry})"),
        format!("serviceAccount:{}", email("loader")),
    )), "{bucket:#?}");
    // The delegate expires with its parent, in GCP too.
    assert!(
        bucket.contains(&(
            "roles/storage.objectViewer".into(),
            expiry.to_string(),
            format!("serviceAccount:{}", email("helper"))
        )),
        "{bucket:#?}"
    );
    assert!(
        bucket.contains(&(
            "roles/storage.objectViewer".into(),
            String::new(),
            "user:alice@acme.com".into()
        )),
        "{bucket:#?}"
    );
    assert!(
        bucket.contains(&(
            "roles/storage.objectViewer".into(),
            String::new(),
            format!("serviceAccount:writ-exporter@{PROJECT}.iam.gserviceaccount.com")
        )),
        "{bucket:#?}"
    );
    // The project: the dataset by its name and what is under it, and the
    // viewer.
    let project_policy = gcp.policy(&format!("projects/{PROJECT}")).unwrap();
    assert_eq!(project_policy["version"], 3);
    let on_project = triples(&project_policy);
    assert!(on_project.contains(&(
        "roles/bigquery.dataEditor".into(),
        format!("(resource.name == \"projects/{PROJECT}/datasets/warehouse\" || resource.name.startsWith(\"projects/{PROJECT}/datasets/warehouse/\")) && ({expiry})"),
        format!("serviceAccount:{}", email("loader")),
    )), "{on_project:#?}");
    // The loader's own account: the workload identity subject (by the
    // project's number), and the parent minting the helper's tokens.
    let own = triples(
        &gcp.policy(&format!(
            "projects/{PROJECT}/serviceAccounts/{}",
            email("loader")
        ))
        .unwrap(),
    );
    assert_eq!(own, [(
        "roles/iam.workloadIdentityUser".to_string(),
        expiry.to_string(),
        "principal://iam.googleapis.com/projects/804213376955/locations/global/workloadIdentityPools/pool/subject/loader".to_string(),
    )]);
    let helper_own = triples(
        &gcp.policy(&format!(
            "projects/{PROJECT}/serviceAccounts/{}",
            email("helper")
        ))
        .unwrap(),
    );
    assert!(
        helper_own.contains(&(
            "roles/iam.serviceAccountTokenCreator".into(),
            expiry.to_string(),
            format!("serviceAccount:{}", email("loader"))
        )),
        "{helper_own:#?}"
    );
    // Nothing left to do.
    let output = writ(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // Someone made a key for the loader's account: inventoried, flagged.
    gcp.add_key(&email("loader"), "8c1b", "2026-01-10T09:00:00Z");
    let output = writ(&["plan", path, "--format", "json"]);
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let key = listed["unmanaged"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["kind"] == "gcp_service_account_key")
        .unwrap_or_else(|| panic!("{listed:#}"))
        .clone();
    assert_eq!(
        key["address"],
        "gcp.data/serviceAccounts/writ-loader/keys/8c1b"
    );
    assert!(
        key["detail"].as_str().unwrap().starts_with(&format!(
            "user-managed key `8c1b` of service account `{}`, active, 325 days old, never expires",
            email("loader")
        )),
        "{key:#}"
    );
    assert!(
        key["flags"].to_string().contains("outlive the ttl"),
        "{key:#}"
    );
    // A person given the right to act as writ's account, and a binding of
    // someone else's with writ's role and expression under another title:
    // neither is writ's, and no plan touches them.
    let loader_own = format!("projects/{PROJECT}/serviceAccounts/{}", email("loader"));
    gcp.add_binding(
        &loader_own,
        json!({"role": "roles/iam.serviceAccountUser", "members": ["user:bob@acme.com"]}),
    );
    gcp.add_binding(BUCKET, json!({"role": "roles/storage.objectViewer", "members": ["user:carol@acme.com"], "condition": {"title": "temp", "expression": expiry}}));
    let output = writ(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // A binding added by hand to writ's account: planned away, and only it.
    gcp.add_binding(BUCKET, json!({"role": "roles/storage.admin", "members": [format!("serviceAccount:{}", email("viewer"))]}));
    let output = writ(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("~ gcp.data/iam/projects/_/buckets/events"),
        "{}",
        text(&output)
    );
    let output = writ(&["drift", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("  ! gcp.data/iam/projects/_/buckets/events: [bindings]"),
        "{}",
        text(&output)
    );
    // And it is drift, told apart from a source change by the digest the
    // viewer's account records; the other agents' are untouched.
    let output = writ(&["drift", path, "--format", "json"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let drifted: Vec<&str> = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        drifted,
        ["gcp.data/serviceAccounts/writ-viewer"],
        "{report:#}"
    );
    // Another writer changes the bucket's policy between writ's read and
    // write: the stale `etag` is refused, writ reads again, and the other
    // writer's binding stays.
    gcp.interleave(
        BUCKET,
        json!({"role": "roles/storage.objectCreator", "members": ["group:etl@acme.com"]}),
    );
    let output = writ(&["apply", path, "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let bucket = triples(&gcp.policy(BUCKET).unwrap());
    assert!(
        !bucket
            .iter()
            .any(|(role, _, _)| role == "roles/storage.admin"),
        "{bucket:#?}"
    );
    assert!(
        bucket.contains(&(
            "roles/storage.objectCreator".into(),
            String::new(),
            "group:etl@acme.com".into()
        )),
        "{bucket:#?}"
    );
    assert!(
        bucket.contains(&(
            "roles/storage.objectViewer".into(),
            String::new(),
            "user:alice@acme.com".into()
        )),
        "{bucket:#?}"
    );
    let refused = gcp.log().iter().filter(|l| l.status == 412).count();
    assert_eq!(refused, 1, "one stale write, then converged");
    assert_eq!(writes(&gcp), 3, "the stale write and the one after it");
    let output = writ(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // The brake: the loader's account marked and disabled, its bindings
    // taken out; plans keep it so; the lift gives it back.
    let output = writ(&["revoke", "loader", path]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains(&format!(
            "revoked `loader` in gcp.data: service account `{}` disabled",
            email("loader")
        )),
        "{}",
        text(&output)
    );
    let loader = gcp.account(&email("loader")).unwrap();
    assert_eq!(loader["disabled"], true);
    // Its long-lived key too, which stays so after the lift.
    let key_disabled = |gcp: &FakeGcp| {
        gcp.keys(&email("loader"))
            .iter()
            .all(|k| k["disabled"] == true)
    };
    assert!(key_disabled(&gcp), "{:?}", gcp.keys(&email("loader")));
    assert!(
        text(&output).contains("its user-managed key disabled"),
        "{}",
        text(&output)
    );
    // The record keeps its digest, and says when.
    let record = loader["description"].as_str().unwrap();
    assert!(
        record.starts_with("writ project=data agent=loader digest=")
            && record.contains(" revoked-at="),
        "{record}"
    );
    let member = format!("serviceAccount:{}", email("loader"));
    assert!(!triples(&gcp.policy(BUCKET).unwrap())
        .iter()
        .any(|(_, _, m)| *m == member));
    assert!(triples(&gcp.policy(BUCKET).unwrap())
        .iter()
        .any(|(_, _, m)| m == "user:carol@acme.com"));
    let output = writ(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "kept revoked: {}",
        text(&output)
    );
    let output = writ(&["revoke", "loader", path, "--lift"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(gcp.account(&email("loader")).unwrap()["disabled"], false);
    assert!(key_disabled(&gcp));
    // Lifted, not applied yet: its bindings are still away, and that is no
    // drift.
    let output = writ(&["drift", path, "--format", "json"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["drift"], json!([]), "{report:#}");
    let output = writ(&["apply", path, "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(triples(&gcp.policy(BUCKET).unwrap())
        .iter()
        .any(|(_, _, m)| *m == member));
    let output = writ(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // Bob's right to act as the loader's account was never touched.
    assert!(triples(&gcp.policy(&loader_own).unwrap())
        .iter()
        .any(|(_, _, m)| m == "user:bob@acme.com"));

    // The viewer removed from the source: its binding, then its account,
    // are deleted; the other project's account is never touched.
    let source = SOURCE.split("agent viewer").next().unwrap();
    std::fs::write(folder.join("main.writ"), source).unwrap();
    let output = writ(&["apply", path, "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(gcp.account(&email("viewer")).is_none());
    assert!(
        !triples(&gcp.policy(&format!("projects/{PROJECT}")).unwrap())
            .iter()
            .any(|(role, _, _)| role == "roles/viewer")
    );
    assert!(gcp
        .account(&format!("writ-exporter@{PROJECT}.iam.gserviceaccount.com"))
        .is_some());
    // The archiver's bucket is named by no one any more: Cloud Asset's
    // search found writ's binding there, and it was taken away with the
    // agent.
    assert!(!triples(&gcp.policy("projects/_/buckets/archive").unwrap())
        .iter()
        .any(|(_, _, m)| m.contains("writ-archiver")));
    assert!(gcp.account(&email("archiver")).is_none());
    let output = writ(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // Without Cloud Asset, the plan says what it cannot see.
    gcp.disable_asset_search();
    let output = writ(&["plan", path, "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let notes: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        notes["notes"].to_string().contains("Cloud Asset was not searched for writ's bindings beyond the resources the source names"),
        "{notes:#}"
    );
    // Every request writ sent is one Google's discovery documents describe.
    described(
        &gcp,
        &[
            ":getIamPolicy",
            ":setIamPolicy",
            ":disable",
            ":enable",
            "/iam",
            "serviceAccounts?pageSize",
        ],
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Every request writ sent is one Google's discovery documents describe
/// (method, path, query and body), and among them are requests of each of
/// `kinds` (parts of the path and query).
fn described(gcp: &FakeGcp, kinds: &[&str]) {
    let Some(documents) = discovery_documents() else {
        return;
    };
    let log = gcp.log();
    let wrong: Vec<String> = log
        .iter()
        .flat_map(|request| {
            crate::gcp::discovery::check(documents, &request.method, &request.target, &request.body)
                .into_iter()
                .map(move |e| format!("{} {}: {e}", request.method, request.target))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} requests:\n{}",
        wrong.len(),
        log.len(),
        wrong.join("\n")
    );
    for kind in kinds {
        assert!(
            log.iter().any(|l| l.target.contains(kind)),
            "no {kind} request"
        );
    }
}

fn discovery_documents() -> Option<&'static [Value]> {
    match crate::gcp::discovery::documents() {
        Ok(documents) => Some(documents),
        Err(reason) => {
            if std::env::var_os("WRIT_REQUIRE_DISCOVERY").is_some() {
                panic!("Google's discovery documents are required (WRIT_REQUIRE_DISCOVERY is set) but unavailable: {reason}");
            }
            eprintln!("skipping: Google's discovery documents are unavailable here: {reason}");
            None
        }
    }
}

#[test]
fn the_discovery_check_refuses_what_google_does_not_describe() {
    let Some(documents) = discovery_documents() else {
        return;
    };
    let ok = crate::gcp::discovery::check(
        documents,
        "PATCH",
        "/v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com",
        &json!({"serviceAccount": {"description": "d"}, "updateMask": "description"}),
    );
    assert!(ok.is_empty(), "{ok:?}");
    for (method, target, body) in [
        (
            "POST",
            "/v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com:frobnicate",
            json!({}),
        ),
        (
            "GET",
            "/v1/projects/p/serviceAccounts?pageSize=100&colour=blue",
            Value::Null,
        ),
        (
            "PATCH",
            "/v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com",
            json!({"serviceAccount": {"labels": {"a": "b"}}, "updateMask": "labels"}),
        ),
        (
            "PUT",
            "/storage/v1/b/events/iam",
            json!({"bindings": [{"role": "roles/x", "members": "not a list"}]}),
        ),
    ] {
        assert!(
            !crate::gcp::discovery::check(documents, method, target, &body).is_empty(),
            "{method} {target} {body}"
        );
    }
}

#[test]
fn a_gcp_provider_without_a_token_or_project_is_a_clear_error() {
    let gcp = FakeGcp::start(PROJECT, "1", &[]);
    let root = std::env::temp_dir().join(format!("writ-gcp-errors-{}", std::process::id()));
    let folder = project(&root, &gcp);
    let path = folder.to_str().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["plan", path])
        .env_remove("GOOGLE_OAUTH_ACCESS_TOKEN")
        // Nor Application Default Credentials: a key file that is not
        // there (found without the network).
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            root.join("no-such-key.json"),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains(
            "no GCP access token in `GOOGLE_OAUTH_ACCESS_TOKEN`, and no Application Default Credentials"
        ),
        "{}",
        text(&output)
    );
    assert!(
        text(&output).contains("gcloud auth application-default login"),
        "{}",
        text(&output)
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["plan", path])
        .env("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.expired")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("GCP answered 401 UNAUTHENTICATED"),
        "{}",
        text(&output)
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_create_whose_first_attempt_went_through_carries_on() {
    let gcp = FakeGcp::start(PROJECT, "1", &["events"]);
    let root = std::env::temp_dir().join(format!("writ-gcp-race-{}", std::process::id()));
    let folder = project(&root, &gcp);
    std::fs::write(
        folder.join("main.writ"),
        "provider gcp data {\n  project = \"acme-data-1\"\n}\n\nagent reader {\n  owner = \"team-data\"\n  ttl = 1h\n  gcp.data allow roles/storage.objectViewer on \"projects/_/buckets/events\"\n}\n",
    )
    .unwrap();
    gcp.race_next_create();
    let path = folder.to_str().unwrap();
    let output = writ(&["apply", path, "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(gcp.log().iter().any(|l| l.status == 409));
    let output = writ(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn github_workflows_act_as_gcp_service_accounts_through_writs_pool() {
    let gcp = FakeGcp::start(PROJECT, "804213376955", &["events"]);
    let github = crate::gh::FakeGitHub::start("acme/platform", &[]);
    github.add_repository("acme/platform", 424_242);
    let root = std::env::temp_dir().join(format!("writ-gcp-pool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let source = |runs_on: &str| {
        format!(
            "provider gcp data {{\n  project = \"{PROJECT}\"\n}}\n\nprovider github acme {{\n  org = \"acme\"\n}}\n\nagent publisher {{\n  owner = \"team-web\"\n  ttl = 1h\n{runs_on}  gcp.data allow roles/storage.objectViewer on \"{BUCKET}\"\n}}\n"
        )
    };
    let workloads = "  runs_on github.acme repo \"acme/platform\" workflow \".github/workflows/publish.yml\" ref \"refs/heads/main\"\n  runs_on github.acme repo \"acme/platform\" environment \"production\"\n";
    std::fs::write(root.join("main.writ"), source(workloads)).unwrap();
    std::fs::write(
        root.join("writ.toml"),
        format!(
            "[project]\nname = \"data\"\n\n[provider.gcp.data]\nendpoint_url = \"{}\"\nquota_project = \"acme-billing\"\n\n[provider.github.acme]\napi_url = \"{}\"\n",
            gcp.endpoint(),
            github.api()
        ),
    )
    .unwrap();
    let path = root.to_str().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(args)
            .env("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
            .env("GITHUB_TOKEN", crate::gh::TOKEN)
            .env("WRIT_TODAY", "2026-12-01")
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS")
            .output()
            .expect("writ runs")
    };
    let output = run(&["apply", path, "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // Writ's pool, and its provider for acme's tokens: GitHub's issuer,
    // the owner pinned by name and id, and the agent's workloads each
    // pinned as its `runs_on` says, the repository by id.
    let pool = gcp.pool("writ-data", None).expect("the pool");
    assert_eq!(pool["description"], "writ project=data");
    assert_eq!(pool["state"], "ACTIVE");
    let provider = gcp
        .pool("writ-data", Some("github-acme"))
        .expect("the provider");
    assert_eq!(
        provider["oidc"]["issuerUri"],
        "https://token.actions.githubusercontent.com"
    );
    let condition = provider["attributeCondition"].as_str().unwrap();
    assert!(
        condition == "assertion.repository_owner == \"acme\" && assertion.repository_owner_id == \"4412\"",
        "{condition}"
    );
    let mapping = provider["attributeMapping"]["attribute.writ_publisher"]
        .as_str()
        .unwrap();
    assert!(
        mapping.contains("assertion.repository == \"acme/platform\" && assertion.repository_id == \"424242\"")
            && mapping.contains("assertion.job_workflow_ref == \"acme/platform/.github/workflows/publish.yml@refs/heads/main\"")
            && mapping.contains("\"environment\" in assertion && assertion.environment == \"production\"")
            && mapping.ends_with("? \"true\" : \"false\""),
        "{mapping}"
    );
    assert_eq!(
        provider["attributeMapping"]["google.subject"],
        "assertion.sub"
    );
    // The agent's service account trusts exactly that attribute, in the
    // project GCP numbers.
    let own = format!("projects/{PROJECT}/serviceAccounts/{}", email("publisher"));
    assert!(triples(&gcp.policy(&own).unwrap()).contains(&(
        "roles/iam.workloadIdentityUser".to_string(),
        String::new(),
        "principalSet://iam.googleapis.com/projects/804213376955/locations/global/workloadIdentityPools/writ-data/attribute.writ_publisher/true".to_string(),
    )));
    let output = run(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // A provider someone adds to writ's pool could map writ's attributes:
    // the plan flags it, and never changes it.
    gcp.add_pool_provider("writ-data", "backdoor", "made by hand");
    let output = run(&["plan", path, "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let listed = plan.to_string();
    assert!(
        listed.contains("writ-data/backdoor")
            && listed.contains("a provider in writ's pool that writ did not make"),
        "{plan:#}"
    );
    let changes = plan["changes"].as_array().unwrap();
    assert!(changes.is_empty(), "{changes:#?}");
    // Someone uploads keys to writ's provider: whoever holds them could sign
    // tokens it takes. A difference, taken away.
    gcp.set_provider_field(
        "writ-data",
        "github-acme",
        &["oidc", "jwksJson"],
        json!("{\"keys\": []}"),
    );
    let output = run(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("jwks_json"), "{}", text(&output));
    let output = run(&["apply", path, "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(gcp.pool("writ-data", Some("github-acme")).unwrap()["oidc"]
        .get("jwksJson")
        .is_none_or(Value::is_null));
    // Someone deletes the pool: GCP keeps its id for 30 days, so the plan
    // makes it again by undeleting it.
    gcp.delete_pool("writ-data");
    let output = run(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let output = run(&["apply", path, "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(gcp.pool("writ-data", None).unwrap()["state"], "ACTIVE");
    assert!(gcp.log().iter().any(|l| l.target.ends_with(":undelete")));
    let output = run(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // No GitHub workload any more: the provider and the pool go.
    std::fs::write(root.join("main.writ"), source("")).unwrap();
    let output = run(&["apply", path, "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let provider = gcp.pool("writ-data", Some("github-acme")).unwrap();
    assert_eq!(provider["state"], "DELETED");
    // Disabled, and mapping nothing of writ's, before it was deleted: an
    // undelete revives nothing.
    assert_eq!(provider["disabled"], true);
    assert_eq!(
        provider["attributeMapping"],
        json!({"google.subject": "assertion.sub"})
    );
    assert_eq!(gcp.pool("writ-data", None).unwrap()["state"], "DELETED");
    assert!(!triples(&gcp.policy(&own).unwrap())
        .iter()
        .any(|(_, _, m)| m.starts_with("principalSet://")));
    let output = run(&["plan", path, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // Every request names the project its quota is billed to.
    assert!(gcp
        .log()
        .iter()
        .all(|l| l.user_project.as_deref() == Some("acme-billing")));
    described(
        &gcp,
        &[
            "workloadIdentityPoolId=",
            "workloadIdentityPoolProviderId=",
            "/operations/",
            ":undelete",
            "updateMask=",
        ],
    );
    let _ = std::fs::remove_dir_all(&root);
}
