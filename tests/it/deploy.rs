//! `deploy/`: the image and the Kubernetes manifests `writ serve` runs
//! from. The manifests are read as Kubernetes reads them (YAML, by PyYAML
//! from moto's environment) and held to what the serve guide says of them:
//! several replicas kept available, the Service and the budget selecting
//! them, TLS from a mounted Secret, probes on `/v1/status`, an
//! unprivileged container, and a reader that cannot write. The server's
//! arguments are given to the binary, which must take them.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every document of the manifests, as JSON.
fn manifests() -> Option<Vec<Value>> {
    manifests_of("serve.yaml")
}

/// The documents of a file of `deploy/kubernetes/`, as YAML reads them.
fn manifests_of(name: &str) -> Option<Vec<Value>> {
    let python = crate::moto::python()?;
    let file = root().join("deploy/kubernetes").join(name);
    let output = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(&file)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("JSON"))
}

fn one<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = documents.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

#[test]
fn the_manifests_run_several_replicas_over_tls_with_a_read_only_identity() {
    let Some(documents) = manifests() else { return };
    let deployment = one(&documents, "Deployment");
    let spec = &deployment["spec"];
    assert!(spec["replicas"].as_u64().unwrap() >= 2, "several replicas");
    let labels = &spec["template"]["metadata"]["labels"];
    let selects = |selector: &Value| {
        selector
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| labels[k] == *v)
    };
    assert!(selects(&spec["selector"]["matchLabels"]));
    assert!(selects(&one(&documents, "Service")["spec"]["selector"]));
    let budget = one(&documents, "PodDisruptionBudget");
    assert!(selects(&budget["spec"]["selector"]["matchLabels"]));
    assert_eq!(budget["spec"]["maxUnavailable"], 1);

    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "serve");
    let after = |flag: &str| {
        args.iter()
            .position(|a| *a == flag)
            .map(|i| args[i + 1])
            .unwrap_or_else(|| panic!("no {flag} in {args:?}"))
    };
    assert_eq!(after("--listen"), "0.0.0.0:8181");
    after("--reconcile-every");
    // TLS from the mounted Secret.
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tls")
        .expect("the TLS volume mounted");
    let at = mount["mountPath"].as_str().unwrap();
    assert!(after("--tls-cert").starts_with(at) && after("--tls-key").starts_with(at));
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "writ-serve-tls");
    // Ready only once the watch has read the providers, and while it reads
    // them; alive while it answers.
    for (probe, path) in [
        ("readinessProbe", "/v1/ready"),
        ("livenessProbe", "/v1/status"),
    ] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["scheme"], "HTTPS", "{probe}");
    }
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    // A numeric user, which the kubelet can hold to runAsNonRoot.
    assert!(pod["securityContext"]["runAsUser"].as_u64().unwrap() > 0);

    // The identity reads and never writes, and is the pods'.
    let account = one(&documents, "ServiceAccount");
    let mut read: Vec<&str> = Vec::new();
    for (kind, binding_kind) in [
        ("ClusterRole", "ClusterRoleBinding"),
        ("Role", "RoleBinding"),
    ] {
        let role = one(&documents, kind);
        for rule in role["rules"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                assert!(
                    ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                    "a verb that writes: {rule}"
                );
            }
            read.extend(
                rule["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap()),
            );
        }
        let binding = one(&documents, binding_kind);
        assert_eq!(binding["roleRef"]["kind"], kind);
        assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
        assert_eq!(binding["subjects"][0]["name"], account["metadata"]["name"]);
    }
    for resource in [
        "serviceaccounts",
        "secrets",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
        "leases",
    ] {
        assert!(
            read.contains(&resource),
            "{resource} is read by writ plan --live"
        );
    }
    // The lock is read in its namespace only.
    assert_eq!(one(&documents, "Role")["metadata"]["namespace"], "writ");
    assert_eq!(pod["serviceAccountName"], account["metadata"]["name"]);

    // The binary takes the arguments as written: with a project that
    // does not exist, it fails on the project, not on them (clap's 2).
    let mut given: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    given[1] = "/nonexistent/project".to_string();
    let run = crate::binary::command().args(&given).output().unwrap();
    let said = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{said}");
    assert!(!said.contains("unexpected argument"), "{said}");
}

/// The image builds the binary with the lock file and runs it
/// unprivileged, with the project baked in where the manifests' arguments
/// look for it.
#[test]
fn the_image_runs_the_binary_unprivileged_with_the_project_in_it() {
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release --locked --bin writ"));
    assert!(dockerfile.contains("USER 65532:65532"), "a numeric user");
    assert!(dockerfile.contains("COPY ${PROJECT} /project"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/writ\"]"));
    let manifests = std::fs::read_to_string(root().join("deploy/kubernetes/serve.yaml")).unwrap();
    assert!(
        manifests.contains("- /project\n"),
        "the manifests serve the baked-in project"
    );
}

/// What issuing credentials adds: `create` on `tokenreviews`, and on the
/// `serviceaccounts/token` of named service accounts in a namespace,
/// nothing else, bound to the server's service account.
#[test]
fn the_issuers_rights_are_token_reviews_and_named_accounts_tokens_only() {
    let Some(documents) = manifests_of("issuer.yaml") else {
        return;
    };
    let mut granted = Vec::new();
    for (kind, binding_kind) in [
        ("ClusterRole", "ClusterRoleBinding"),
        ("Role", "RoleBinding"),
    ] {
        let role = one(&documents, kind);
        for rule in role["rules"].as_array().unwrap() {
            assert_eq!(rule["verbs"], serde_json::json!(["create"]), "{rule}");
            for resource in rule["resources"].as_array().unwrap() {
                let resource = resource.as_str().unwrap();
                if resource == "serviceaccounts/token" {
                    assert_eq!(kind, "Role", "tokens of every account in the cluster");
                    assert!(
                        rule["resourceNames"]
                            .as_array()
                            .is_some_and(|n| !n.is_empty()),
                        "tokens of every account of the namespace: {rule}"
                    );
                }
                granted.push(resource.to_string());
            }
        }
        let binding = one(&documents, binding_kind);
        assert_eq!(binding["roleRef"]["kind"], kind);
        assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
        assert_eq!(binding["subjects"][0]["name"], "writ-serve");
        assert_eq!(binding["subjects"][0]["namespace"], "writ");
    }
    granted.sort();
    assert_eq!(granted, ["serviceaccounts/token", "tokenreviews"]);
}
