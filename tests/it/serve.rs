//! `writ serve` as a running server: the AuthZEN decisions on the example
//! (`tests/authzen/acme-decisions.json`, written as the interop scenarios
//! write theirs), the examples of docs/serve.md as they are written,
//! malformed requests, search, revocation through the API, and reloading
//! a source that changes, or breaks.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running `writ serve`; stopped when dropped.
pub(crate) struct Server {
    child: Child,
    port: u16,
    pub(crate) audit: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(project: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_with(project, env, &[])
    }

    pub(crate) fn start_with(project: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        // One file a server: tests run side by side.
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let audit = std::env::temp_dir().join(format!(
            "writ-serve-audit-{}-{}.jsonl",
            std::process::id(),
            SERVERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&audit);
        let mut child = crate::binary::command()
            .args([
                "serve",
                project.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--audit-log",
            ])
            .arg(&audit)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("writ serve starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        // The drift watch's first round comes before the line that says
        // where it listens.
        let first = lines
            .by_ref()
            .map(|line| line.expect("text"))
            .find(|line| line.contains("listening on"))
            .expect("a line saying where it listens");
        let port = first
            .split("://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in `{first}`"));
        // Keep reading what it says, so that it never blocks on the pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, port, audit }
    }

    /// One request: the status, the headers' text, and the body.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("the server is up");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_string(), body.to_string())
    }

    fn get_text(&self, path: &str) -> String {
        let (status, _, text) = self.send("GET", path, &[], "");
        assert_eq!(status, 200, "{path}: {text}");
        text
    }

    /// `POST /v1/revoke` with `body`, as the holder of the admin `token`
    /// (none: without `Authorization`): the status and the body.
    pub(crate) fn revoke(&self, token: Option<&str>, body: &Value) -> (u16, String) {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        let (status, _, text) = self.send("POST", "/v1/revoke", &headers, &body.to_string());
        (status, text)
    }

    /// `writ serve` over TLS with this certificate and key.
    fn start_tls(project: &Path, cert: &Path, key: &Path) -> Server {
        Server::start_with(
            project,
            &[],
            &[
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
        )
    }

    pub(crate) fn get_json(&self, path: &str) -> Value {
        let text = self.get_text(path);
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"))
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> Value {
        let (status, _, text) = self.send(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            &body.to_string(),
        );
        assert_eq!(status, 200, "{path} {body}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"))
    }
}

/// A project of one file and a `writ.toml`, in a folder of the test's own.
pub(crate) fn project(name: &str, source: &str, toml: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("serve")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("main.writ"), source).unwrap();
    std::fs::write(root.join("writ.toml"), toml).unwrap();
    root
}

/// `writ serve PROJECT` with these arguments, which must refuse to start
/// (exit 1): what it said.
fn refused_start(project: &Path, args: &[&str]) -> String {
    let output = crate::binary::command()
        .args([
            "serve",
            project.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(1), "{said}");
    said
}

/// A TLS client that trusts the test authority of `tests/serve-tls/`,
/// and shows the test client certificate.
fn tls_client_with_certificate() -> Arc<tokio_rustls::rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve-tls");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der(
            &tls.join("ca.pem")
        )))
        .unwrap();
    let chain = vec![rustls::pki_types::CertificateDer::from(der(
        &tls.join("client-cert.pem")
    ))];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(tls.join("client-key.pem")).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap(),
    )
}

/// A TLS client that trusts the test authority of `tests/serve-tls/`.
fn tls_client() -> Arc<tokio_rustls::rustls::ClientConfig> {
    use tokio_rustls::rustls;
    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve-tls/ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der(&ca)))
        .unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// The one certificate of a PEM file, as DER.
fn der(file: &Path) -> Vec<u8> {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(file).unwrap();
    let text: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme")
}

/// Does `actual` hold everything `shown` shows (objects by their keys,
/// arrays element by element)?
fn holds(actual: &Value, shown: &Value) -> bool {
    match (actual, shown) {
        (Value::Object(a), Value::Object(s)) => {
            s.iter().all(|(k, v)| a.get(k).is_some_and(|x| holds(x, v)))
        }
        (Value::Array(a), Value::Array(s)) => {
            a.len() == s.len() && a.iter().zip(s).all(|(x, v)| holds(x, v))
        }
        _ => actual == shown,
    }
}

#[test]
fn the_example_decides_as_the_interop_style_cases_say_and_every_decision_is_audited() {
    let server = Server::start(&example(), &[]);
    let cases: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authzen/acme-decisions.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut decided = 0;
    for case in cases["evaluation"].as_array().unwrap() {
        let answer = server.post("/access/v1/evaluation", &case["request"]);
        assert_eq!(
            answer["decision"], case["expected"],
            "{}\n{answer}",
            case["request"]
        );
        assert!(answer["context"]["id"].is_string(), "{answer}");
        decided += 1;
    }
    for case in cases["evaluations"].as_array().unwrap() {
        let answer = server.post("/access/v1/evaluations", &case["request"]);
        let decisions: Vec<Value> = answer["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["decision"].clone())
            .collect();
        assert_eq!(
            json!(decisions),
            case["expected"],
            "{}\n{answer}",
            case["request"]
        );
        // Those it could read.
        decided += answer["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["context"].get("error").is_none())
            .count();
    }
    // An entry that cannot be read is denied, and says why.
    let answer = server.post(
        "/access/v1/evaluations",
        &json!({"subject": {"type": "agent", "id": "billing_bot"}, "resource": {"type": "aws.prod", "id": "x"},
            "evaluations": [{"action": {"nome": "typo"}}]}),
    );
    assert_eq!(
        answer["evaluations"][0]["context"]["error"]["status"], 400,
        "{answer}"
    );
    // Without entries: one evaluation.
    let answer = server.post(
        "/access/v1/evaluations",
        &json!({"subject": {"type": "agent", "id": "billing_bot"}, "action": {"name": "s3:GetObject"},
            "resource": {"type": "aws.prod", "id": "arn:aws:s3:::acme-invoices/a.pdf"}, "evaluations": []}),
    );
    assert_eq!(answer["decision"], true, "{answer}");
    // Every decision read (not the unreadable entry) is in the audit log.
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let text = std::fs::read_to_string(&server.audit).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() > decided || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines.len(), decided + 1, "{lines:#?}");
    let first = &lines[0];
    for key in [
        "time", "id", "agent", "provider", "action", "resource", "decision", "reason",
    ] {
        assert!(first.get(key).is_some(), "no `{key}` in {first}");
    }
    let conditional = lines
        .iter()
        .find(|l| l["context"]["aws:RequestedRegion"] == "eu-west-1")
        .expect("the request with its context");
    assert_eq!(conditional["decision"], false);
}

#[test]
fn the_examples_of_the_serve_guide_answer_as_written() {
    let server = Server::start(&example(), &[]);
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/serve.md"))
            .unwrap();
    let mut blocks = Vec::new();
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            blocks.push((info.to_string(), body.join("\n")));
        }
    }
    let mut ran = 0;
    for pair in blocks.windows(2) {
        let ((info, command), (next, shown)) = (&pair[0], &pair[1]);
        if info != "sh" || !command.starts_with("curl ") || next != "json" {
            continue;
        }
        let path = command
            .split_whitespace()
            .nth(2)
            .and_then(|url| url.split_once('/'))
            .map(|(_, path)| format!("/{path}"))
            .expect("a URL");
        let body = command
            .split_once("-d '")
            .and_then(|(_, rest)| rest.rsplit_once('\''))
            .map(|(body, _)| body)
            .expect("a body");
        let body: Value = serde_json::from_str(body).expect(body);
        let shown: Value = serde_json::from_str(shown).expect(shown);
        let answer = server.post(&path, &body);
        assert!(
            holds(&answer, &shown),
            "{command}\nshows {shown}\nanswers {answer}"
        );
        ran += 1;
    }
    assert!(ran >= 6, "{ran} examples");
    // The metadata document names the endpoints.
    let (status, _, text) = server.send("GET", "/.well-known/authzen-configuration", &[], "");
    assert_eq!(status, 200);
    let metadata: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        metadata["access_evaluation_endpoint"],
        format!("http://127.0.0.1:{}/access/v1/evaluation", server.port)
    );
    assert!(metadata.get("search_resource_endpoint").is_none());
}

#[test]
fn malformed_requests_are_refused_and_the_request_id_is_echoed() {
    let server = Server::start(&example(), &[]);
    let ask = r#"{"subject": {"type": "agent", "id": "billing_bot"}, "action": {"name": "s3:GetObject"}, "resource": {"type": "aws.prod", "id": "x"}}"#;
    // Not JSON's content type; not JSON; a member missing.
    let (status, _, text) = server.send(
        "POST",
        "/access/v1/evaluation",
        &[("Content-Type", "text/plain")],
        ask,
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("application/json"), "{text}");
    let (status, _, _) = server.send(
        "POST",
        "/access/v1/evaluation",
        &[("Content-Type", "application/json")],
        "{not json",
    );
    assert_eq!(status, 400);
    let (status, _, text) = server.send(
        "POST",
        "/access/v1/evaluation",
        &[("Content-Type", "application/json")],
        r#"{"subject": {"id": "billing_bot"}, "action": {"name": "s3:GetObject"}, "resource": {"type": "aws.prod", "id": "x"}}"#,
    );
    assert_eq!(status, 400);
    assert!(text.contains("`subject.type` is required"), "{text}");
    let (status, head, _) = server.send(
        "POST",
        "/access/v1/evaluation",
        &[
            ("Content-Type", "application/json; charset=utf-8"),
            ("X-Request-ID", "req-42"),
        ],
        ask,
    );
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase().contains("x-request-id: req-42"),
        "{head}"
    );
    let (status, _, _) = server.send("GET", "/access/v1/nothing", &[], "");
    assert_eq!(status, 404);
    // An action by a pattern; both placements; an empty page; too many
    // entries; too large a body.
    for (path, body, said) in [
        (
            "/access/v1/evaluation",
            r#"{"subject": {"type": "agent", "id": "billing_bot"}, "action": {"name": "s3:Get*"}, "resource": {"type": "aws.prod", "id": "x"}}"#,
            "is a pattern",
        ),
        (
            "/access/v1/evaluation",
            r#"{"subject": {"type": "agent", "id": "billing_bot"}, "action": {"name": "get"}, "resource": {"type": "kubernetes.prod", "id": "pods", "properties": {"namespace": "billing", "cluster": true}}}"#,
            "both `namespace` and `cluster`",
        ),
        (
            "/access/v1/search/subject",
            r#"{"subject": {"type": "agent"}, "action": {"name": "get"}, "resource": {"type": "kubernetes.prod", "id": "pods"}, "page": {"limit": 0}}"#,
            "at least 1",
        ),
    ] {
        let (status, _, text) =
            server.send("POST", path, &[("Content-Type", "application/json")], body);
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(said), "{text}");
    }
    let many = json!({"subject": {"type": "agent", "id": "billing_bot"}, "action": {"name": "get"},
        "resource": {"type": "kubernetes.prod", "id": "pods"}, "evaluations": vec![json!({}); 1001]});
    let (status, _, text) = server.send(
        "POST",
        "/access/v1/evaluations",
        &[("Content-Type", "application/json")],
        &many.to_string(),
    );
    assert_eq!(status, 400, "{text}");
    let huge = format!(
        r#"{{"subject": {{"type": "agent", "id": "{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    let (status, _, _) = server.send(
        "POST",
        "/access/v1/evaluation",
        &[("Content-Type", "application/json")],
        &huge,
    );
    assert_eq!(status, 413);
    let (status, _, text) = server.send("GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    assert!(text.contains("writ_bad_requests_total 8"), "{text}");
    assert!(
        text.contains("writ_decisions_total{result=\"deny\"} 1"),
        "{text}"
    );
}

#[test]
fn action_search_lists_what_the_agent_may_do() {
    let server = Server::start(&example(), &[]);
    let answer = server.post(
        "/access/v1/search/action",
        &json!({"subject": {"type": "agent", "id": "deployer"}, "resource": {"type": "kubernetes.prod", "id": "deployments.apps", "properties": {"namespace": "services"}}}),
    );
    let names: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["get", "list", "patch", "update", "watch"],
        "{answer}"
    );
    // In pages.
    let first = server.post(
        "/access/v1/search/action",
        &json!({"subject": {"type": "agent", "id": "deployer"}, "resource": {"type": "kubernetes.prod", "id": "deployments.apps", "properties": {"namespace": "services"}}, "page": {"limit": 2}}),
    );
    assert_eq!(first["results"].as_array().unwrap().len(), 2);
    assert_eq!(first["page"]["next_token"], "2");
    let unknown = server.post(
        "/access/v1/search/action",
        &json!({"subject": {"type": "agent", "id": "nobody"}, "resource": {"type": "aws.prod", "id": "*"}}),
    );
    assert_eq!(unknown["results"], json!([]));
}

/// A grant of every verb (`*`): the search lists the verbs it covers,
/// each asked about as one action.
#[test]
fn action_search_expands_a_wildcard_verb() {
    let root = project(
        "wildcard-verb",
        r#"provider kubernetes prod {
  cluster = "prod"
}

agent operator {
  owner = "team-platform"
  ttl = 1h
  runs_on kubernetes.prod namespace "ops" service_account "operator"
  @waive(wildcard_action, "the operator manages its own config maps")
  kubernetes.prod allow * on "configmaps" in namespace "ops"
}
"#,
        "[project]\nname = \"acme\"\n",
    );
    let server = Server::start(&root, &[]);
    let answer = server.post(
        "/access/v1/search/action",
        &json!({"subject": {"type": "agent", "id": "operator"}, "resource": {"type": "kubernetes.prod", "id": "configmaps", "properties": {"namespace": "ops"}}}),
    );
    let names: Vec<&str> = answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for verb in [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ] {
        assert!(names.contains(&verb), "{verb} not in {answer}");
    }
    assert!(!names.contains(&"*"), "{answer}");
}

#[test]
fn a_revoked_agent_is_refused_at_its_next_request_and_a_changed_source_is_served() {
    // A copy of the example, to change.
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-reload");
    let _ = std::fs::remove_dir_all(&root);
    crate::support::copy_tree(&example(), &root);
    std::fs::write(
        root.join("writ.toml"),
        "[project]\nname = \"acme\"\n\n[serve]\nadmin_token_env = \"WRIT_TEST_ADMIN\"\nwatch_seconds = 1\n",
    )
    .unwrap();
    let server = Server::start(&root, &[("WRIT_TEST_ADMIN", "s3cret")]);
    let read = json!({"subject": {"type": "agent", "id": "invoice_reader"}, "action": {"name": "s3:GetObject"},
        "resource": {"type": "aws.prod", "id": "arn:aws:s3:::acme-invoices/a.pdf"}});
    assert_eq!(
        server.post("/access/v1/evaluation", &read)["decision"],
        true
    );
    // Revoking needs the token.
    let revoke = json!({"agent": "billing_bot", "include_delegates": true});
    assert_eq!(server.revoke(None, &revoke).0, 401);
    assert_eq!(server.revoke(Some("wrong"), &revoke).0, 401);
    let (status, text) = server.revoke(Some("s3cret"), &revoke);
    assert_eq!(status, 200, "{text}");
    // Its delegate, at its next request; a narrower second revocation
    // does not let the delegates back.
    let answer = server.post("/access/v1/evaluation", &read);
    assert_eq!(answer["decision"], false, "{answer}");
    assert_eq!(answer["context"]["writ"]["revoked"], "billing_bot");
    assert_eq!(
        server
            .revoke(Some("s3cret"), &json!({"agent": "billing_bot"}))
            .0,
        200
    );
    assert_eq!(
        server.post("/access/v1/evaluation", &read)["decision"],
        false
    );
    let (_, _, status) = server.send("GET", "/v1/status", &[], "");
    assert!(status.contains("\"agent\":\"billing_bot\""), "{status}");
    server.revoke(
        Some("s3cret"),
        &json!({"agent": "billing_bot", "lift": true}),
    );
    assert_eq!(
        server.post("/access/v1/evaluation", &read)["decision"],
        true
    );

    // The source changes: the reader may read a second bucket.
    let billing = root.join("teams/billing.writ");
    let text = std::fs::read_to_string(&billing).unwrap();
    let changed = text.replacen(
        "agent invoice_reader {",
        "agent invoice_reader {\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::acme-archive/*\"",
        1,
    );
    assert_ne!(changed, text);
    // Within the ceiling? No: the parent's delegates do not cover it, so
    // the source has an error, and the running model stays.
    std::fs::write(&billing, &changed).unwrap();
    let archive = json!({"subject": {"type": "agent", "id": "invoice_reader"}, "action": {"name": "s3:GetObject"},
        "resource": {"type": "aws.prod", "id": "arn:aws:s3:::acme-archive/a.pdf"}});
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, _, status) = server.send("GET", "/v1/status", &[], "");
        let status: Value = serde_json::from_str(&status).unwrap();
        if status["reload_error"].is_string() {
            assert!(
                status["reload_error"]
                    .as_str()
                    .unwrap()
                    .contains("writ::delegation_exceeds"),
                "{status}"
            );
            assert_eq!(status["generation"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        server.post("/access/v1/evaluation", &archive)["decision"],
        false
    );
    assert_eq!(
        server.post("/access/v1/evaluation", &read)["decision"],
        true
    );
    // A source that checks: served.
    let fixed = changed.replacen(
        "agent invoice_reader {\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::acme-archive/*\"",
        "agent invoice_reader {",
        1,
    ).replacen("agent billing_bot {", "agent billing_bot {\n  frozen = true", 1);
    std::fs::write(&billing, fixed).unwrap();
    loop {
        let (_, _, status) = server.send("GET", "/v1/status", &[], "");
        let status: Value = serde_json::from_str(&status).unwrap();
        if status["generation"].as_u64() > Some(1) && status["reload_error"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let bot = json!({"subject": {"type": "agent", "id": "billing_bot"}, "action": {"name": "s3:GetObject"},
        "resource": {"type": "aws.prod", "id": "arn:aws:s3:::acme-invoices/a.pdf"}});
    let answer = server.post("/access/v1/evaluation", &bot);
    assert_eq!(answer["decision"], false, "{answer}");
    assert_eq!(answer["context"]["writ"]["frozen"], true, "{answer}");
    // A file removed: its agents are gone at the next reload.
    let mailer = json!({"subject": {"type": "agent", "id": "report_mailer"}, "action": {"name": "ses:SendEmail"},
        "resource": {"type": "aws.prod", "id": "arn:aws:ses:us-east-1:123456789012:identity/acme.example"}});
    assert_eq!(
        server.post("/access/v1/evaluation", &mailer)["decision"],
        true
    );
    let before = {
        let (_, _, status) = server.send("GET", "/v1/status", &[], "");
        serde_json::from_str::<Value>(&status).unwrap()["generation"]
            .as_u64()
            .unwrap()
    };
    std::fs::remove_file(root.join("teams/reporting.writ")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, _, status) = server.send("GET", "/v1/status", &[], "");
        let status: Value = serde_json::from_str(&status).unwrap();
        if status["generation"].as_u64() > Some(before) || status["reload_error"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let answer = server.post("/access/v1/evaluation", &mailer);
    assert_eq!(answer["decision"], false, "{answer}");
    let (_, _, metrics) = server.send("GET", "/metrics", &[], "");
    assert!(
        metrics.contains("writ_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("writ_revocations_total 2"), "{metrics}");
}

#[test]
fn an_agent_past_its_rate_is_refused_with_429_until_a_request_is_free() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-rate");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("main.writ"),
        r#"provider aws prod {
  account = "123456789012"
}

agent reporter {
  owner = "team-reporting"
  ttl = 1h
  rate = 2/min
  runs_on aws.prod service "lambda.amazonaws.com"
  aws.prod allow s3:GetObject on "arn:aws:s3:::reports/*"
}
"#,
    )
    .unwrap();
    // `writ explain` says it.
    let explained = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["explain", "reporter", root.to_str().unwrap()])
        .env("WRIT_TODAY", "2026-11-28")
        .output()
        .unwrap();
    let explained = String::from_utf8_lossy(&explained.stdout).to_string();
    assert!(explained.contains("asks at most 2/min"), "{explained}");
    let server = Server::start(&root, &[]);
    let ask = json!({"subject": {"type": "agent", "id": "reporter"}, "action": {"name": "s3:GetObject"},
        "resource": {"type": "aws.prod", "id": "arn:aws:s3:::reports/a.csv"}});
    assert_eq!(server.post("/access/v1/evaluation", &ask)["decision"], true);
    assert_eq!(server.post("/access/v1/evaluation", &ask)["decision"], true);
    let (status, head, text) = server.send(
        "POST",
        "/access/v1/evaluation",
        &[("Content-Type", "application/json")],
        &ask.to_string(),
    );
    assert_eq!(status, 429, "{text}");
    let wait: u64 = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_string)
        })
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {head}"));
    assert!((1..=30).contains(&wait), "{wait}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["decision"], false);
    assert_eq!(answer["context"]["writ"]["rate_limited"], "2/min");
    // In a batch: that entry denied, with the error.
    let batch = server.post(
        "/access/v1/evaluations",
        &json!({"subject": {"type": "agent", "id": "reporter"}, "action": {"name": "s3:GetObject"},
            "evaluations": [{"resource": {"type": "aws.prod", "id": "arn:aws:s3:::reports/b.csv"}}]}),
    );
    assert_eq!(batch["evaluations"][0]["decision"], false, "{batch}");
    assert_eq!(
        batch["evaluations"][0]["context"]["error"]["status"], 429,
        "{batch}"
    );
}

/// `@rate(…)` on a grant: what that grant allows is decided at most that
/// often, apart from the agent's other grants; `writ fmt` keeps it.
#[test]
fn a_grant_past_its_rate_is_refused_and_the_agents_other_grants_are_not() {
    let root = project(
        "grant-rate",
        r#"provider aws prod {
  account = "123456789012"
}

agent reporter {
  owner = "team-reporting"
  ttl = 1h
  runs_on aws.prod service "lambda.amazonaws.com"
  @rate(2/h)
  aws.prod allow s3:PutObject on "arn:aws:s3:::reports/*"
  aws.prod allow s3:GetObject on "arn:aws:s3:::reports/*"
}
"#,
        "[project]\nname = \"acme\"\n",
    );
    let formatted = crate::binary::writ(&root, &["fmt", "--check"]);
    assert_eq!(
        formatted.status.code(),
        Some(0),
        "{}",
        crate::binary::text(&formatted)
    );
    let server = Server::start(&root, &[]);
    let ask = |action: &str| {
        let body = json!({"subject": {"type": "agent", "id": "reporter"}, "action": {"name": action},
            "resource": {"type": "aws.prod", "id": "arn:aws:s3:::reports/a.csv"}});
        let (status, head, text) = server.send(
            "POST",
            "/access/v1/evaluation",
            &[("Content-Type", "application/json")],
            &body.to_string(),
        );
        (status, head, serde_json::from_str::<Value>(&text).unwrap())
    };
    assert_eq!(ask("s3:PutObject").2["decision"], true);
    assert_eq!(ask("s3:PutObject").2["decision"], true);
    let (status, head, answer) = ask("s3:PutObject");
    assert_eq!(status, 429, "{answer}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    assert_eq!(answer["context"]["writ"]["rate_limited"], "2/h");
    assert_eq!(answer["context"]["writ"]["by"], "grant");
    // The other grant is not held back.
    for _ in 0..5 {
        let (status, _, answer) = ask("s3:GetObject");
        assert_eq!(
            (status, &answer["decision"]),
            (200, &json!(true)),
            "{answer}"
        );
        assert!(
            answer["context"]["writ"].get("grant_index").is_none(),
            "{answer}"
        );
    }
}

/// `--reconcile-every`: two replicas read the same account (moto). An
/// agent `writ revoke` cuts off there is refused by both within a round,
/// with its delegate, and served again once the revocation is lifted; an
/// edit made by hand shows as drift in `/metrics`.
#[test]
fn a_revocation_in_the_providers_reaches_every_replica_within_a_round() {
    let Some(moto) = crate::moto::Moto::start() else {
        return;
    };
    let root = project(
        "reconcile",
        r#"provider aws prod {
  account = "123456789012"
  issuer = "arn:aws:iam::123456789012:role/writ-serve"
}

agent exporter {
  owner = "team-finance"
  ttl = 1h
  runs_on aws.prod service "lambda.amazonaws.com"
  aws.prod allow s3:GetObject on "arn:aws:s3:::acme-invoices/*"
  delegates {
    aws.prod allow s3:GetObject on "arn:aws:s3:::acme-invoices/*"
  }
}

agent reader {
  owner = "team-finance"
  parent = exporter
  ttl = 1h
  aws.prod allow s3:GetObject on "arn:aws:s3:::acme-invoices/*"
}
"#,
        &format!(
            "[project]\nname = \"acme\"\n\n[provider.aws.prod]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n[serve]\nadmin_token_env = \"WRIT_TEST_ADMIN\"\nrevoke_in_providers = true\ncredentials = true\n",
            moto.endpoint()
        ),
    );
    crate::binary::apply(&root);
    let admin = [("WRIT_TEST_ADMIN", "s3cret")];
    let replicas = [
        Server::start_with(&root, &admin, &["--reconcile-every", "1s"]),
        Server::start_with(&root, &admin, &["--reconcile-every", "1s"]),
    ];
    let ask = |server: &Server, agent: &str| {
        server.post(
            "/access/v1/evaluation",
            &json!({"subject": {"type": "agent", "id": agent}, "action": {"name": "s3:GetObject"},
                    "resource": {"type": "aws.prod", "id": "arn:aws:s3:::acme-invoices/x.pdf"}}),
        )
    };
    // Waits (at most 60 s) until every replica answers as `allowed`.
    let until = |agent: &str, allowed: bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answers: Vec<Value> = replicas.iter().map(|s| ask(s, agent)).collect();
            if answers.iter().all(|a| a["decision"] == allowed) {
                return answers;
            }
            assert!(
                Instant::now() < deadline,
                "{agent} never became {allowed}: {answers:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // A round ran before the first answer.
    for server in &replicas {
        assert!(!server.get_json("/v1/status")["watch"]["last"].is_null());
        assert_eq!(server.get_json("/v1/ready")["ready"], true);
    }
    until("exporter", true);
    until("reader", true);
    // The exporter's Lambda gets a credential at either replica.
    let lambda = || {
        crate::credentials::signed_caller_identity(
            &moto.endpoint(),
            "",
            "",
            "",
            "arn:aws:iam::123456789012:role/writ/acme/exporter exporter-fn",
            "writ",
        )
    };
    let credential = |server: &Server| {
        crate::credentials::ask(server, &json!({"proof": lambda(), "provider": "aws.prod"}))
    };
    let (status, answer) = credential(&replicas[1]);
    assert_eq!(status, 200, "{answer}");

    let revoked = crate::binary::writ(&root, &["revoke", "exporter"]);
    assert_eq!(
        revoked.status.code(),
        Some(0),
        "{}",
        crate::binary::text(&revoked)
    );
    let answers = until("exporter", false);
    for answer in &answers {
        let reason = answer["context"]["reason_admin"]["en"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.contains("is revoked in the providers (`writ revoke`)"),
            "{answer}"
        );
    }
    // A delegate lives on its parent's access.
    until("reader", false);
    // No credential either, at the replica that did not revoke anything.
    let (status, answer) = credential(&replicas[1]);
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("revoked in the providers"),
        "{answer}"
    );
    for server in &replicas {
        let metrics = server.get_text("/metrics");
        assert!(metrics.contains("writ_provider_revocations 1"), "{metrics}");
        let status = server.get_json("/v1/status");
        assert_eq!(
            status["watch"]["revoked_in_providers"],
            json!(["exporter"]),
            "{status}"
        );
    }

    let lifted = crate::binary::writ(&root, &["revoke", "exporter", "--lift"]);
    assert_eq!(
        lifted.status.code(),
        Some(0),
        "{}",
        crate::binary::text(&lifted)
    );
    until("exporter", true);
    until("reader", true);

    // `POST /v1/revoke` at one replica pulls the brake in the providers
    // too (`revoke_in_providers`): the other refuses within a round, and
    // the lift reaches it the same way.
    let revoke_at_first = |body: Value| {
        let (status, text) = replicas[0].revoke(Some("s3cret"), &body);
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["providers"]["failed"], false, "{answer}");
        answer
    };
    let answer = revoke_at_first(json!({"agent": "exporter"}));
    assert!(
        answer["providers"]["said"].to_string().contains("exporter"),
        "{answer}"
    );
    let answers = until("exporter", false);
    let second = answers[1]["context"]["reason_admin"]["en"]
        .as_str()
        .unwrap_or_default();
    assert!(
        second.contains("is revoked in the providers"),
        "{}",
        answers[1]
    );
    revoke_at_first(json!({"agent": "exporter", "lift": true}));
    until("exporter", true);

    // An edit by hand is drift, by provider.
    moto.iam(
        "PutRolePolicy",
        &[
            ("RoleName", "exporter"),
            ("PolicyName", "writ-access"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            ),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = replicas[0].get_text("/metrics");
        assert!(
            metrics.contains("writ_reconcile_last_success_timestamp_seconds "),
            "{metrics}"
        );
        if metrics.contains("writ_drift_objects{provider=\"aws.prod\"} 1") {
            assert!(
                metrics.contains("writ_reconciles_total{result=\"ok\"}"),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no drift seen: {metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `--tls-cert`/`--tls-key`: decisions over TLS (a client that trusts the
/// test certificate gets them; one speaking plain HTTP gets nothing), the
/// metadata document naming `https`, and a key that does not go with the
/// certificate refused at start.
#[test]
fn decisions_over_tls() {
    use tokio_rustls::rustls;
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve-tls");
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let server = Server::start_tls(&example(), &cert, &key);
    let config = tls_client();
    let over_tls = |method: &str, path: &str, body: &str| -> String {
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let connection = rustls::ClientConnection::new(config.clone(), name).unwrap();
        let socket = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let mut stream = rustls::StreamOwned::new(connection, socket);
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        // A peer that closes without TLS's close_notify is still read to
        // the end of what it sent.
        let _ = stream.read_to_string(&mut response);
        response
    };
    let answer = over_tls(
        "POST",
        "/access/v1/evaluation",
        &json!({"subject": {"type": "agent", "id": "billing_bot"}, "action": {"name": "s3:GetObject"},
                "resource": {"type": "aws.prod", "id": "arn:aws:s3:::acme-invoices/2026/11.pdf"}})
        .to_string(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"decision\":true"), "{answer}");
    let metadata = over_tls("GET", "/.well-known/authzen-configuration", "");
    assert!(
        metadata.contains(&format!("\"https://127.0.0.1:{}", server.port)),
        "{metadata}"
    );
    // Plain HTTP to the TLS port: no answer in HTTP.
    let (status, _, _) = server.send("GET", "/v1/status", &[], "");
    assert_eq!(status, 0, "plain HTTP is not served");

    // A key of another certificate: refused at start, saying why.
    let other = tls.join("other-key.pem");
    let said = refused_start(
        &example(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            other.to_str().unwrap(),
        ],
    );
    assert!(said.contains("do not make a server's identity"), "{said}");
}

/// The drift watch's first round must read the providers before the
/// server answers anything: a provider the server cannot read (here, one
/// `writ.toml` does not configure) keeps it from starting, saying why.
#[test]
fn a_server_that_cannot_read_its_providers_does_not_start_blind_to_revocations() {
    let root = project(
        "unread",
        "provider aws prod {\n  account = \"123456789012\"\n}\n\nagent bot {\n  owner = \"ops\"\n  ttl = 1h\n  runs_on aws.prod service \"lambda.amazonaws.com\"\n}\n",
        "[project]\nname = \"acme\"\n",
    );
    let said = refused_start(&root, &["--reconcile-every", "1s"]);
    assert!(said.contains("so the server does not start"), "{said}");
    assert!(!said.contains("listening on"), "{said}");
}

/// The drift watch reads GCP too: an agent `writ revoke` disables there
/// (its service account's record says so) is refused, and served again
/// once lifted (the local GCP API).
#[test]
fn a_revocation_in_gcp_reaches_the_server() {
    use crate::gcp::{FakeGcp, TOKEN};
    let gcp = FakeGcp::start("acme-data-1", "804213376955", &["events"]);
    let root = project(
        "gcp",
        r#"provider gcp data {
  project = "acme-data-1"
}

agent loader {
  owner = "team-data"
  ttl = 1h
  runs_on gcp.data workload_pool "pool" subject "loader"
  gcp.data allow roles/storage.objectViewer on "projects/_/buckets/events"
}
"#,
        &format!(
            "[project]\nname = \"data\"\n\n[provider.gcp.data]\nendpoint_url = \"{}\"\n",
            gcp.endpoint()
        ),
    );
    let env = [("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)];
    let run = |args: &[&str]| {
        let output = crate::binary::command()
            .args(args)
            .arg(&root)
            .envs(env)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            crate::binary::text(&output)
        );
    };
    run(&["apply", "--auto-approve"]);
    let server = Server::start_with(&root, &env, &["--reconcile-every", "1s"]);
    let ask = || {
        server.post(
            "/access/v1/evaluation",
            &json!({"subject": {"type": "agent", "id": "loader"}, "action": {"name": "roles/storage.objectViewer"},
                    "resource": {"type": "gcp.data", "id": "projects/_/buckets/events"}}),
        )
    };
    let until = |allowed: bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = ask();
            if answer["decision"] == allowed {
                return answer;
            }
            assert!(Instant::now() < deadline, "never {allowed}: {answer}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    until(true);
    run(&["revoke", "loader"]);
    let answer = until(false);
    assert!(
        answer.to_string().contains("is revoked in the providers"),
        "{answer}"
    );
    run(&["revoke", "loader", "--lift"]);
    until(true);
}

/// `[serve] tls_client_ca`: every client shows a certificate of that
/// authority, or gets nothing; without TLS the setting keeps the server
/// from starting.
#[test]
fn clients_without_a_certificate_of_the_authority_get_nothing() {
    use tokio_rustls::rustls;
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve-tls");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("serve")
        .join("client-ca");
    let _ = std::fs::remove_dir_all(&root);
    crate::support::copy_tree(&example(), &root);
    std::fs::write(
        root.join("writ.toml"),
        format!(
            "[project]\nname = \"acme\"\n\n[serve]\ntls_client_ca = \"{}\"\n",
            tls.join("client-ca.pem").display()
        ),
    )
    .unwrap();
    let said = refused_start(&root, &[]);
    assert!(said.contains("needs TLS"), "{said}");
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let server = Server::start_tls(&root, &cert, &key);
    let get = |config: Arc<rustls::ClientConfig>| -> String {
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let connection = rustls::ClientConnection::new(config, name).unwrap();
        let socket = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let mut stream = rustls::StreamOwned::new(connection, socket);
        let request = "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        let mut response = String::new();
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_string(&mut response);
        }
        response
    };
    let shown = get(tls_client_with_certificate());
    assert!(shown.starts_with("HTTP/1.1 200"), "{shown}");
    let none = get(tls_client());
    assert!(
        !none.contains("HTTP/1.1"),
        "answered a client without a certificate: {none}"
    );
}

/// `[serve] public_url`: the metadata document names where clients reach
/// the server (a Service, a load balancer), not where it listens; a value
/// that is no URL keeps the server from starting.
#[test]
fn the_metadata_document_names_the_public_url() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("serve")
        .join("public-url");
    let _ = std::fs::remove_dir_all(&root);
    crate::support::copy_tree(&example(), &root);
    std::fs::write(
        root.join("writ.toml"),
        "[project]\nname = \"acme\"\n\n[serve]\npublic_url = \"https://writ.acme.example/\"\n",
    )
    .unwrap();
    let server = Server::start(&root, &[]);
    let metadata = server.get_json("/.well-known/authzen-configuration");
    assert_eq!(
        metadata["policy_decision_point"],
        "https://writ.acme.example"
    );
    assert_eq!(
        metadata["access_evaluation_endpoint"],
        "https://writ.acme.example/access/v1/evaluation"
    );
    drop(server);
    std::fs::write(
        root.join("writ.toml"),
        "[project]\nname = \"acme\"\n\n[serve]\npublic_url = \"writ.acme.example\"\n",
    )
    .unwrap();
    let said = refused_start(&root, &[]);
    assert!(said.contains("is not an http(s) URL"), "{said}");
}

/// A renewed certificate (cert-manager rewriting the Secret's files) is
/// served from the next handshake after the server looks at its files
/// again, without a restart.
#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    use tokio_rustls::rustls;
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve-tls");
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("serve")
        .join("renewal");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let (cert, key) = (folder.join("tls.crt"), folder.join("tls.key"));
    std::fs::copy(tls.join("cert.pem"), &cert).unwrap();
    std::fs::copy(tls.join("key.pem"), &key).unwrap();
    let server = Server::start_tls(&example(), &cert, &key);
    let config = tls_client();
    // The certificate the server shows in a handshake.
    let shown = || -> Vec<u8> {
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut connection = rustls::ClientConnection::new(config.clone(), name).unwrap();
        let mut socket = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        while connection.is_handshaking() {
            connection.complete_io(&mut socket).unwrap();
        }
        connection.peer_certificates().unwrap()[0].to_vec()
    };
    assert_eq!(shown(), der(&tls.join("cert.pem")));
    std::fs::copy(tls.join("renewed-key.pem"), &key).unwrap();
    std::fs::copy(tls.join("renewed-cert.pem"), &cert).unwrap();
    let renewed = der(&tls.join("renewed-cert.pem"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while shown() != renewed {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
