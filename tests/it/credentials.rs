//! `POST /v1/credentials` of `writ serve`: a workload proves who it is and
//! gets a short-lived credential of the agent that runs as it, from the
//! provider itself; a delegate's credential is had on its parent's
//! session only, within the ceiling. Against the local Kubernetes API
//! (TokenReview, TokenRequest), and moto behind a proxy that records what
//! writ sends to STS, with a local OIDC issuer standing in for GitHub
//! Actions'.

use crate::kube::FakeCluster;
use crate::serve::{project, Server};
use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// `POST /v1/credentials`: the status and the answer.
pub(crate) fn ask(server: &Server, body: &Value) -> (u16, Value) {
    let (status, _, text) = server.send(
        "POST",
        "/v1/credentials",
        &[("Content-Type", "application/json")],
        &body.to_string(),
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}")),
    )
}

fn audit(server: &Server) -> Vec<Value> {
    // The log is written by a thread of its own: give it a moment.
    for _ in 0..50 {
        let text = std::fs::read_to_string(&server.audit).unwrap_or_default();
        if text.contains("credential") {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Vec::new()
}

const CLUSTER_SOURCE: &str = r#"provider kubernetes prod {
  cluster = "fake"
}

agent deployer {
  owner = "team-platform"
  ttl = 1h
  runs_on kubernetes.prod namespace "ci" service_account "deployer"
  kubernetes.prod allow get, list on "deployments.apps" in namespace "ci"
  delegates {
    max_depth = 1
    ttl = 20m
    kubernetes.prod allow get on "deployments.apps" in namespace "ci"
  }
}

agent helper {
  owner = "team-platform"
  parent = deployer
  ttl = 20m
  runs_on kubernetes.prod namespace "ci" service_account "helper"
  kubernetes.prod allow get on "deployments.apps" in namespace "ci"
}

agent sibling {
  owner = "team-platform"
  ttl = 1h
  rate = 1/h
  runs_on kubernetes.prod namespace "ci" service_account "sibling"
  kubernetes.prod allow get on "deployments.apps" in namespace "ci"
}
"#;

#[test]
fn kubernetes_workloads_get_tokens_and_delegates_get_theirs_on_the_parents_session() {
    let cluster = FakeCluster::start();
    cluster.add_namespace("ci");
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("credentials/kubernetes");
    let _ = std::fs::remove_dir_all(&root);
    cluster.write_project(&root, CLUSTER_SOURCE);
    std::fs::write(
        root.join("writ.toml"),
        std::fs::read_to_string(root.join("writ.toml")).unwrap()
            + "\n[serve]\ncredentials = true\nadmin_token_env = \"WRIT_TEST_ADMIN\"\n",
    )
    .unwrap();
    crate::binary::apply(&root);
    let server = Server::start_with(&root, &[("WRIT_TEST_ADMIN", "s3cret")], &[]);
    let proof =
        |token: &str| json!({"type": "kubernetes", "provider": "kubernetes.prod", "token": token});

    // The deployer's pod proves itself with its projected token (audience
    // `writ`) and gets a token of its service account, for its ttl.
    let pod_token = cluster.token_for("ci", "deployer", &["writ"], 600);
    let (status, issued) = ask(
        &server,
        &json!({"proof": proof(&pod_token), "provider": "kubernetes.prod", "task": "release 42"}),
    );
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["agent"], "deployer");
    assert_eq!(issued["chain"], json!(["deployer"]));
    assert_eq!(issued["depth"], 0);
    let token = issued["credentials"]["token"].as_str().unwrap();
    assert_eq!(
        cluster.holder(token, crate::kube::API_AUDIENCE).as_deref(),
        Some("ci/deployer")
    );
    let requests = cluster.token_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["spec"]["expirationSeconds"], 3600);
    let expires: jiff::Timestamp = issued["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires.as_second() - jiff::Timestamp::now().as_second();
    assert!((3500..=3600).contains(&left), "{left}");

    // The audiences asked for, and a shorter ttl.
    let (status, narrowed) = ask(
        &server,
        &json!({"proof": proof(&pod_token), "provider": "kubernetes.prod", "ttl": "15m", "audiences": ["vault"]}),
    );
    assert_eq!(status, 200, "{narrowed}");
    let token = narrowed["credentials"]["token"].as_str().unwrap();
    assert_eq!(
        cluster.holder(token, "vault").as_deref(),
        Some("ci/deployer")
    );
    assert_eq!(
        cluster.token_requests()[1]["spec"],
        json!({"expirationSeconds": 900, "audiences": ["vault"]})
    );

    // Refused: a token for another audience, a forged one, an expired
    // one, a workload no agent runs as, a longer ttl than the agent's,
    // shorter than the cluster issues, and narrowing a Kubernetes token.
    let elsewhere = cluster.token_for("ci", "deployer", &["https://kubernetes.default.svc"], 600);
    let expired = cluster.token_for("ci", "deployer", &["writ"], -10);
    let stranger = cluster.token_for("ci", "stranger", &["writ"], 600);
    // Made by TokenRequest, bound to no pod: writ's own tokens among them.
    let unbound = cluster.unbound_token_for("ci", "deployer", &["writ"]);
    for (body, want, says) in [
        (
            json!({"proof": proof(&elsewhere), "provider": "kubernetes.prod"}),
            401,
            "audience",
        ),
        (
            json!({"proof": proof("kt-forged"), "provider": "kubernetes.prod"}),
            401,
            "invalid bearer token",
        ),
        (
            json!({"proof": proof(&expired), "provider": "kubernetes.prod"}),
            401,
            "expired",
        ),
        (
            json!({"proof": proof(&stranger), "provider": "kubernetes.prod"}),
            403,
            "no agent runs as the service account `ci/stranger`",
        ),
        (
            json!({"proof": proof(&pod_token), "provider": "kubernetes.prod", "ttl": "2h"}),
            403,
            "longer than `deployer`'s ttl",
        ),
        (
            json!({"proof": proof(&pod_token), "provider": "kubernetes.prod", "ttl": "5m"}),
            422,
            "10 minutes at least",
        ),
        (
            json!({"proof": proof(&pod_token), "provider": "kubernetes.prod", "grants": [{"actions": ["get"], "resources": ["pods"]}]}),
            400,
            "narrows AWS sessions only",
        ),
        (
            json!({"proof": proof(&unbound), "provider": "kubernetes.prod"}),
            401,
            "bound to no pod",
        ),
        (
            json!({"proof": proof(&pod_token), "provider": "kubernetes.prod", "audiences": ["writ"]}),
            403,
            "a proof for writ serve itself",
        ),
        (
            json!({"proof": proof(&pod_token), "provider": "kubernetes.prod", "agent": "helper"}),
            403,
            "`helper` does not run as",
        ),
        (
            json!({"proof": proof(&pod_token), "provider": "aws.prod"}),
            400,
            "no provider `aws.prod`",
        ),
        (
            json!({"proof": {"type": "password", "token": "x"}, "provider": "kubernetes.prod"}),
            400,
            "`proof.type`",
        ),
        (
            json!({"proof": proof(&pod_token), "provider": "kubernetes.prod", "extra": 1}),
            400,
            "`extra` is not a field",
        ),
    ] {
        let (status, answer) = ask(&server, &body);
        assert_eq!(status, want, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(says), "{body}: {error}");
    }

    // The deployer's session gets its delegate's token: at most the
    // ceiling's 20 minutes, the chain recorded.
    let session = issued["session"].as_str().unwrap();
    let on_session = |agent: &str, session: &str| json!({"proof": {"type": "session", "token": session}, "provider": "kubernetes.prod", "agent": agent});
    let (status, delegated) = ask(&server, &on_session("helper", session));
    assert_eq!(status, 200, "{delegated}");
    assert_eq!(delegated["chain"], json!(["deployer", "helper"]));
    assert_eq!(delegated["depth"], 1);
    let token = delegated["credentials"]["token"].as_str().unwrap();
    assert_eq!(
        cluster.holder(token, crate::kube::API_AUDIENCE).as_deref(),
        Some("ci/helper")
    );
    assert_eq!(
        cluster.token_requests().last().unwrap()["spec"]["expirationSeconds"],
        1200
    );
    // On a session that ends sooner (the 15 minutes' credential), no
    // longer than it.
    let (status, shorter) = ask(
        &server,
        &on_session("helper", narrowed["session"].as_str().unwrap()),
    );
    assert_eq!(status, 200, "{shorter}");
    let seconds = cluster.token_requests().last().unwrap()["spec"]["expirationSeconds"]
        .as_i64()
        .unwrap();
    assert!((850..=900).contains(&seconds), "{seconds}");
    let (status, answer) = ask(
        &server,
        &json!({"proof": {"type": "session", "token": narrowed["session"]}, "provider": "kubernetes.prod", "agent": "helper", "ttl": "20m"}),
    );
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("the session of `deployer`, which ends sooner"),
        "{answer}"
    );
    // Not longer than the ceiling; not an agent that is no delegate; not
    // a delegate of the delegate (it has none); not a forged session.
    // A claim changed in the middle of the session's payload.
    let mut forged: Vec<char> = session.chars().collect();
    let middle = session.find('.').unwrap() + 10;
    forged[middle] = if forged[middle] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    for (body, want, says) in [
        (
            json!({"proof": {"type": "session", "token": session}, "provider": "kubernetes.prod", "agent": "helper", "ttl": "25m"}),
            403,
            "longer than",
        ),
        (
            on_session("sibling", session),
            403,
            "`sibling` is not a delegate of `deployer`",
        ),
        (
            on_session("helper", delegated["session"].as_str().unwrap()),
            403,
            "`helper` has no delegates",
        ),
        (
            on_session("helper", &forged),
            401,
            "not signed by writ serve's key",
        ),
        (on_session("helper", "ws1.e30.AAAA"), 401, "not signed"),
    ] {
        let (status, answer) = ask(&server, &body);
        assert_eq!(status, want, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(says), "{body}: {error}");
    }

    // An agent over its rate waits.
    let sibling = cluster.token_for("ci", "sibling", &["writ"], 600);
    assert_eq!(
        ask(
            &server,
            &json!({"proof": proof(&sibling), "provider": "kubernetes.prod"})
        )
        .0,
        200
    );
    let (status, _, text) = server.send(
        "POST",
        "/v1/credentials",
        &[("Content-Type", "application/json")],
        &json!({"proof": proof(&sibling), "provider": "kubernetes.prod"}).to_string(),
    );
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("over its rate of 1/h"), "{text}");

    // Revoking the deployer alone stops it, and what its session would
    // give; the helper's own pod still proves itself.
    let revoke = |body: Value| {
        let (status, text) = server.revoke(Some("s3cret"), &body);
        assert_eq!(status, 200, "{text}");
    };
    revoke(json!({"agent": "deployer"}));
    let (status, answer) = ask(&server, &on_session("helper", session));
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("`deployer` was revoked at run time"),
        "{answer}"
    );
    let helper_pod = cluster.token_for("ci", "helper", &["writ"], 600);
    let (status, answer) = ask(
        &server,
        &json!({"proof": proof(&helper_pod), "provider": "kubernetes.prod"}),
    );
    assert_eq!(status, 200, "{answer}");
    revoke(json!({"agent": "deployer", "lift": true}));

    // Revoking the deployer with its delegates stops both at once, the
    // session included.
    revoke(json!({"agent": "deployer", "include_delegates": true}));
    let (status, answer) = ask(
        &server,
        &json!({"proof": proof(&pod_token), "provider": "kubernetes.prod"}),
    );
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = ask(&server, &on_session("helper", session));
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("revoked"),
        "{answer}"
    );

    // The audit log holds each issuance and refusal, and no secret.
    let lines = audit(&server);
    let issued_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("credential").is_some())
        .collect();
    assert_eq!(issued_lines.len(), 6, "{lines:?}");
    assert_eq!(issued_lines[0]["credential"]["task"], "release 42");
    assert_eq!(
        issued_lines[2]["credential"]["chain"],
        json!(["deployer", "helper"])
    );
    assert!(lines
        .iter()
        .any(|l| l["credential_refused"]["status"] == 429));
    let text = std::fs::read_to_string(&server.audit).unwrap();
    assert!(!text.contains("kt-ci-"), "a token in the audit log");
    assert!(!text.contains("ws1."), "a session in the audit log");
    let metrics = server.send("GET", "/metrics", &[], "").2;
    assert!(
        metrics.contains("writ_credentials_issued_total{provider=\"kubernetes.prod\"} 6"),
        "{metrics}"
    );
}

/// A local OIDC issuer, as GitHub Actions' publishes its keys, signing
/// tokens with the test App's key.
pub(crate) struct Issuer {
    pub(crate) url: String,
    key: aws_lc_rs::signature::RsaKeyPair,
}

pub(crate) fn rsa_key(pem: &str) -> aws_lc_rs::signature::RsaKeyPair {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    aws_lc_rs::signature::RsaKeyPair::from_der(&der).unwrap()
}

/// A JWT of `header` and `claims`, signed with `key` (RS256, or PS256
/// when the header says so).
pub(crate) fn sign_jwt(
    key: &aws_lc_rs::signature::RsaKeyPair,
    header: &Value,
    claims: &Value,
) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    let encoding: &'static dyn aws_lc_rs::signature::RsaEncoding = match header["alg"].as_str() {
        Some("PS256") => &aws_lc_rs::signature::RSA_PSS_SHA256,
        _ => &aws_lc_rs::signature::RSA_PKCS1_SHA256,
    };
    key.sign(
        encoding,
        &aws_lc_rs::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{signed}.{}", b64(&signature))
}

/// The two integers of a PKCS#1 `RSAPublicKey` (DER): the modulus and
/// the exponent, without the sign's leading zero.
fn modulus_and_exponent(der: &[u8]) -> (&[u8], &[u8]) {
    // A tag, then a length (short or long form): the content's start and
    // end.
    fn element(der: &[u8], at: usize) -> (usize, usize) {
        let first = der[at + 1] as usize;
        let (length, start) = if first < 0x80 {
            (first, at + 2)
        } else {
            let bytes = first - 0x80;
            let length = der[at + 2..at + 2 + bytes]
                .iter()
                .fold(0usize, |acc, b| acc * 256 + *b as usize);
            (length, at + 2 + bytes)
        };
        (start, start + length)
    }
    let (sequence, _) = element(der, 0);
    let (n_start, n_end) = element(der, sequence);
    let (e_start, e_end) = element(der, n_end);
    let n = &der[n_start..n_end];
    let n = n.strip_prefix(&[0u8]).unwrap_or(n);
    (n, &der[e_start..e_end])
}

impl Issuer {
    pub(crate) fn start() -> Issuer {
        let key = rsa_key(crate::gh::APP_KEY);
        let (n, e) = modulus_and_exponent(aws_lc_rs::signature::KeyPair::public_key(&key).as_ref());
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwks = json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "k1", "n": b64(n), "e": b64(e)}]});
        let port = Arc::new(Mutex::new(0u16));
        let seen = port.clone();
        let port_number = crate::http::serve(Arc::new(move |request: &crate::http::Request| {
            let url = format!("http://127.0.0.1:{}", seen.lock().unwrap());
            match request.path() {
                "/.well-known/openid-configuration" => crate::http::Reply::json(
                    200,
                    &json!({"issuer": url, "jwks_uri": format!("{url}/.well-known/jwks")}),
                ),
                "/.well-known/jwks" => crate::http::Reply::json(200, &jwks),
                _ => crate::http::Reply::json(404, &json!({})),
            }
        }));
        *port.lock().unwrap() = port_number;
        Issuer {
            url: format!("http://127.0.0.1:{port_number}"),
            key,
        }
    }

    /// A token with these claims over the usual ones, signed with `key`.
    fn token_with(&self, key: &aws_lc_rs::signature::RsaKeyPair, claims: Value) -> String {
        let now = jiff::Timestamp::now().as_second();
        let mut all = json!({
            "iss": self.url, "aud": "writ", "iat": now, "nbf": now, "exp": now + 300,
            "repository": "acme/app", "repository_owner": "acme",
            "ref": "refs/heads/main", "sub": "repo:acme/app:ref:refs/heads/main",
            "job_workflow_ref": "acme/app/.github/workflows/export.yml@refs/heads/main",
        });
        for (k, v) in claims.as_object().unwrap() {
            all[k] = v.clone();
        }
        sign_jwt(
            key,
            &json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}),
            &all,
        )
    }

    pub(crate) fn token(&self, claims: Value) -> String {
        self.token_with(&self.key, claims)
    }
}

#[test]
fn github_actions_and_iam_users_get_aws_sessions_narrowed_to_the_task_with_the_agent_as_source_identity(
) {
    let Some(moto) = crate::moto::Moto::start() else {
        return;
    };
    let proxy = crate::moto::proxy::FaultyProxy::start(moto.port);
    proxy.heal();
    let issuer = Issuer::start();
    let root = project(
        "credentials-aws",
        r#"provider aws prod {
  account = "123456789012"
  issuer = "arn:aws:iam::123456789012:role/writ-serve"
}

provider github acme {
  org = "acme"
}

agent exporter {
  owner = "team-finance"
  ttl = 15m
  runs_on github.acme repo "acme/app" ref "refs/heads/main"
  aws.prod allow s3:GetObject, s3:ListBucket on "arn:aws:s3:::acme-invoices", "arn:aws:s3:::acme-invoices/*"
}

agent uploader {
  owner = "team-finance"
  ttl = 1h
  runs_on aws.prod user "ci-runner"
  aws.prod allow s3:PutObject on "arn:aws:s3:::acme-invoices/*"
}

agent resizer {
  owner = "team-media"
  ttl = 1h
  runs_on aws.prod service "lambda.amazonaws.com"
  aws.prod allow s3:GetObject on "arn:aws:s3:::acme-images/*"
}
"#,
        &format!(
            "[project]\nname = \"acme\"\n\n[provider.aws.prod]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n[serve]\ncredentials = true\ngithub_oidc_issuer = \"{}\"\nsession_key_env = \"WRIT_TEST_SESSION_KEY\"\n",
            proxy.endpoint(),
            issuer.url
        ),
    );
    let output = crate::binary::writ(&root, &["apply", "--auto-approve", "--only", "aws.prod"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        crate::binary::text(&output)
    );
    // The role trusts the server's role, as this agent only.
    let role = moto.iam("GetRole", &[("RoleName", "exporter")]);
    assert!(role.contains("writ-serve"), "{role}");
    assert!(
        role.contains("sts%3ASourceIdentity") || role.contains("sts:SourceIdentity"),
        "{role}"
    );

    let server = Server::start_with(
        &root,
        &[(
            "WRIT_TEST_SESSION_KEY",
            "a key of at least thirty-two characters",
        )],
        &[],
    );
    let body = |token: String, grants: Value| json!({"proof": {"type": "github_actions", "token": token}, "provider": "aws.prod", "task": "invoices 2026-11", "grants": grants});
    let (status, issued) = ask(
        &server,
        &body(
            issuer.token(json!({})),
            json!([{"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::acme-invoices/2026/*"]}]),
        ),
    );
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["agent"], "exporter");
    let credentials = &issued["credentials"];
    assert!(credentials["access_key_id"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    assert!(credentials["session_token"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    assert!(credentials["assumed_role_arn"]
        .as_str()
        .unwrap()
        .contains(":assumed-role/exporter/writ.exporter."));

    // What writ asked STS for.
    let sent = proxy.requests_of("AssumeRole");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let form = crate::http::percent_decode(sent[0].split("\r\n\r\n").nth(1).unwrap());
    for part in [
        "RoleArn=arn:aws:iam::123456789012:role/writ/acme/exporter",
        "DurationSeconds=900",
        "SourceIdentity=exporter",
        "Tags.member.1.Key=writ:agent",
        "Tags.member.1.Value=exporter",
        "Tags.member.2.Key=writ:chain",
        "Tags.member.3.Key=writ:depth",
        "Tags.member.3.Value=0",
        "Tags.member.5.Key=writ:task",
        "Tags.member.5.Value=invoices 2026-11",
    ] {
        assert!(form.contains(part), "`{part}` not in {form}");
    }
    let policy = form
        .split('&')
        .find_map(|p| p.strip_prefix("Policy="))
        .expect("a session policy");
    let policy: Value = serde_json::from_str(policy).unwrap();
    assert_eq!(
        policy["Statement"],
        json!([{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::acme-invoices/2026/*"]}])
    );

    // Refused: wider than the agent's grants, a token of another key,
    // expired, for another audience or repository, or of another issuer.
    let other_key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let now = jiff::Timestamp::now().as_second();
    for (body, want, says) in [
        (
            body(
                issuer.token(json!({})),
                json!([{"actions": ["s3:PutObject"], "resources": ["arn:aws:s3:::acme-invoices/*"]}]),
            ),
            403,
            "not within `exporter`'s grants",
        ),
        (
            body(
                issuer.token(json!({})),
                json!([{"actions": ["s3:*"], "resources": ["arn:aws:s3:::acme-invoices/*"]}]),
            ),
            403,
            "not within",
        ),
        (
            body(
                issuer.token(json!({})),
                json!([{"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::other/*"]}]),
            ),
            403,
            "not within",
        ),
        (
            body(issuer.token_with(&other_key, json!({})), Value::Null),
            401,
            "signature does not verify",
        ),
        (
            body(issuer.token(json!({"exp": now - 120})), Value::Null),
            401,
            "expired",
        ),
        (
            body(
                issuer.token(json!({"aud": "sts.amazonaws.com"})),
                Value::Null,
            ),
            401,
            "not meant for writ",
        ),
        (
            body(
                issuer.token(json!({"iss": "https://token.actions.githubusercontent.com"})),
                Value::Null,
            ),
            401,
            "issuer",
        ),
        (
            body(
                issuer.token(json!({"repository": "acme/other"})),
                Value::Null,
            ),
            403,
            "no agent runs as",
        ),
        (
            body(issuer.token(json!({"ref": "refs/heads/dev"})), Value::Null),
            403,
            "no agent runs as",
        ),
        (body("e30.e30.e30".to_string(), Value::Null), 401, "RS256"),
    ] {
        let (status, answer) = ask(&server, &body);
        assert_eq!(status, want, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(says), "{body}: {error}");
    }
    assert_eq!(
        proxy.requests_of("AssumeRole").len(),
        1,
        "a refused request reached STS"
    );

    // An IAM user's signed `GetCallerIdentity` proves the uploader, whose
    // keys it is; signed for another server, or by a user no agent runs
    // as, it proves nothing.
    moto.iam("CreateUser", &[("UserName", "ci-runner")]);
    moto.iam("CreateUser", &[("UserName", "someone")]);
    let key_of = |user: &str| {
        let created = moto.iam("CreateAccessKey", &[("UserName", user)]);
        let field = |name: &str| {
            let start = created.find(&format!("<{name}>")).unwrap() + name.len() + 2;
            let end = created[start..].find('<').unwrap() + start;
            created[start..end].to_string()
        };
        (field("AccessKeyId"), field("SecretAccessKey"))
    };
    // A GetCallerIdentity signed with botocore (moto's own environment),
    // with keys (and a session token), or with the session of a role
    // assumed first (as Lambda assumes its function's role).
    let endpoint = proxy.endpoint();
    let sign_with = |key: &str, secret: &str, token: &str, assume: &str, audience: &str| {
        signed_caller_identity(&endpoint, key, secret, token, assume, audience)
    };
    let signed =
        |key: &(String, String), audience: &str| sign_with(&key.0, &key.1, "", "", audience);
    let runner = key_of("ci-runner");
    let (status, issued) = ask(
        &server,
        &json!({"proof": signed(&runner, "writ"), "provider": "aws.prod"}),
    );
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["agent"], "uploader");
    let sent = proxy.requests_of("AssumeRole");
    assert_eq!(sent.len(), 2);
    let form = crate::http::percent_decode(sent[1].split("\r\n\r\n").nth(1).unwrap());
    assert!(
        form.contains("RoleArn=arn:aws:iam::123456789012:role/writ/acme/uploader"),
        "{form}"
    );
    assert!(form.contains("DurationSeconds=3600"), "{form}");
    assert!(!form.contains("Policy="), "{form}");
    for (proof, want, says) in [
        (signed(&runner, "another-writ"), 401, "not this server"),
        (
            signed(&key_of("someone"), "writ"),
            403,
            "no agent runs as `arn:aws:iam::123456789012:user/someone`",
        ),
        (
            json!({"type": "aws", "provider": "aws.prod", "headers": {}, "body": "Action=GetCallerIdentity&Version=2011-06-15"}),
            401,
            "no `Authorization`",
        ),
    ] {
        let (status, answer) = ask(&server, &json!({"proof": proof, "provider": "aws.prod"}));
        assert_eq!(status, want, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }

    // A session of the resizer's role that Lambda started proves the
    // resizer; a session writ issued proves nothing, whoever holds it
    // (it would give back the grants it was narrowed from).
    let lambda = sign_with(
        "",
        "",
        "",
        "arn:aws:iam::123456789012:role/writ/acme/resizer resizer-fn",
        "writ",
    );
    let (status, answer) = ask(&server, &json!({"proof": lambda, "provider": "aws.prod"}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["agent"], "resizer");
    let own = &issued["credentials"];
    let reissued = sign_with(
        own["access_key_id"].as_str().unwrap(),
        own["secret_access_key"].as_str().unwrap(),
        own["session_token"].as_str().unwrap(),
        "",
        "writ",
    );
    let (status, answer) = ask(&server, &json!({"proof": reissued, "provider": "aws.prod"}));
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("a session writ serve issued"),
        "{answer}"
    );
}

#[test]
fn a_pod_and_a_workload_identity_subject_get_gcp_access_tokens_for_the_lifetime_and_scopes_asked() {
    use crate::gcp::{FakeGcp, TOKEN};
    let cluster = FakeCluster::start();
    cluster.add_namespace("etl");
    let gcp = FakeGcp::start("acme-data", "123456789", &["events"]);
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("credentials/gcp");
    let _ = std::fs::remove_dir_all(&root);
    cluster.write_project(
        &root,
        r#"provider kubernetes prod {
  cluster = "fake"
}

provider gcp data {
  project = "acme-data"
}

agent loader {
  owner = "team-data"
  ttl = 1h
  runs_on kubernetes.prod namespace "etl" service_account "loader"
  gcp.data allow roles/storage.objectViewer on "projects/_/buckets/events"
}

agent etl_job {
  owner = "team-data"
  ttl = 1h
  runs_on gcp.data workload_pool "pool" subject "etl"
  gcp.data allow roles/storage.objectViewer on "projects/_/buckets/events"
}
"#,
    );
    // Google's ID tokens, from a local issuer.
    let google = Issuer::start();
    let toml = std::fs::read_to_string(root.join("writ.toml")).unwrap();
    std::fs::write(
        root.join("writ.toml"),
        format!(
            "{toml}\n[provider.gcp.data]\nendpoint_url = \"{}\"\n\n[serve]\ncredentials = true\ngoogle_oidc_issuer = \"{}\"\n",
            gcp.endpoint(),
            google.url
        ),
    )
    .unwrap();
    let env = [("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)];
    let output = crate::binary::writ_with(&root, &["apply", "--auto-approve"], &env);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        crate::binary::text(&output)
    );
    let server = Server::start_with(&root, &env, &[]);
    let pod_token = cluster.token_for("etl", "loader", &["writ"], 600);
    let proof = json!({"type": "kubernetes", "provider": "kubernetes.prod", "token": pod_token});

    let (status, issued) = ask(
        &server,
        &json!({"proof": proof, "provider": "gcp.data", "ttl": "15m", "scopes": ["https://www.googleapis.com/auth/devstorage.read_only"]}),
    );
    assert_eq!(status, 200, "{issued}");
    assert!(issued["credentials"]["access_token"]
        .as_str()
        .unwrap()
        .starts_with("ya29.sa-"));
    let sent: Vec<_> = gcp
        .log()
        .into_iter()
        .filter(|r| r.path.ends_with(":generateAccessToken"))
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status, 200);
    assert!(
        sent[0]
            .path
            .contains("/v1/projects/-/serviceAccounts/writ-"),
        "{}",
        sent[0].path
    );
    assert_eq!(
        sent[0].body,
        json!({"lifetime": "900s", "scope": ["https://www.googleapis.com/auth/devstorage.read_only"]})
    );
    // As Google describes the API.
    match crate::gcp::discovery::documents() {
        Ok(documents) => {
            let problems = crate::gcp::discovery::check(
                documents,
                &sent[0].method,
                &sent[0].target,
                &sent[0].body,
            );
            assert!(problems.is_empty(), "{problems:?}");
        }
        Err(why) if std::env::var_os("WRIT_REQUIRE_DISCOVERY").is_some() => {
            panic!("Google's discovery documents are required: {why}")
        }
        Err(why) => eprintln!("skipping the discovery check: {why}"),
    }
    // Without scopes: the cloud platform's; the agent's ttl, within GCP's
    // hour.
    let (status, issued) = ask(&server, &json!({"proof": proof, "provider": "gcp.data"}));
    assert_eq!(status, 200, "{issued}");
    let last = gcp
        .log()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with(":generateAccessToken"))
        .unwrap();
    assert_eq!(
        last.body,
        json!({"lifetime": "3600s", "scope": ["https://www.googleapis.com/auth/cloud-platform"]})
    );
    // A workload identity subject proves itself with an ID token of the
    // agent's service account, for writ (`generateIdToken`).
    let email_of = |agent: &str| {
        format!(
            "{}@acme-data.iam.gserviceaccount.com",
            writ_compiler::lower::gcp::account_id(agent)
        )
    };
    let id_token = |email: &str, verified: bool| json!({"type": "gcp", "token": google.token(json!({"email": email, "email_verified": verified, "sub": "10234"}))});
    let (status, answer) = ask(
        &server,
        &json!({"proof": id_token(&email_of("etl_job"), true), "provider": "gcp.data"}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["agent"], "etl_job");
    for (proof, want, says) in [
        (
            id_token(&email_of("etl_job"), false),
            401,
            "no verified email",
        ),
        (id_token(&email_of("loader"), true), 403, "no agent runs as"),
    ] {
        let (status, answer) = ask(&server, &json!({"proof": proof, "provider": "gcp.data"}));
        assert_eq!(status, want, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    for (body, says) in [
        (
            json!({"proof": proof, "provider": "gcp.data", "grants": [{"actions": ["x"], "resources": ["y"]}]}),
            "narrows AWS sessions only",
        ),
        (
            json!({"proof": proof, "provider": "gcp.data", "audiences": ["x"]}),
            "for Kubernetes tokens",
        ),
        (
            json!({"proof": proof, "provider": "gcp.data", "scopes": []}),
            "a list of strings",
        ),
        (
            json!({"proof": proof, "provider": "kubernetes.prod", "scopes": ["x"]}),
            "for GCP access tokens",
        ),
    ] {
        let (status, answer) = ask(&server, &body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
}

/// `budget`: each credential makes at most that many requests, counted
/// where it is used: decisions asked with its session
/// (`subject.properties.session`), and delegates' credentials issued on
/// it. Spent, 429 without `Retry-After` (waiting does not bring it back).
#[test]
fn a_credentials_budget_is_spent_by_its_decisions_and_its_delegates() {
    let cluster = FakeCluster::start();
    cluster.add_namespace("search");
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("credentials/budget");
    let _ = std::fs::remove_dir_all(&root);
    cluster.write_project(
        &root,
        r#"provider kubernetes prod {
  cluster = "fake"
}

agent crawler {
  owner = "team-search"
  ttl = 1h
  budget = 2
  runs_on kubernetes.prod namespace "search" service_account "crawler"
  kubernetes.prod allow get on "configmaps" in namespace "search"
  delegates {
    ttl = 30m
    budget = 1
    kubernetes.prod allow get on "configmaps" in namespace "search"
  }
}

agent fetcher {
  owner = "team-search"
  ttl = 30m
  parent = crawler
  budget = 1
  runs_on kubernetes.prod namespace "search" service_account "fetcher"
  kubernetes.prod allow get on "configmaps" in namespace "search"
}
"#,
    );
    let toml = std::fs::read_to_string(root.join("writ.toml")).unwrap();
    std::fs::write(
        root.join("writ.toml"),
        format!("{toml}\n[serve]\ncredentials = true\n"),
    )
    .unwrap();
    crate::binary::apply(&root);
    let server = Server::start_with(&root, &[], &[]);
    let pod = cluster.token_for("search", "crawler", &["writ"], 600);
    let (status, crawler) = ask(
        &server,
        &json!({"proof": {"type": "kubernetes", "provider": "kubernetes.prod", "token": pod}, "provider": "kubernetes.prod"}),
    );
    assert_eq!(status, 200, "{crawler}");
    let session = crawler["session"].as_str().unwrap();
    let decide = |agent: &str, session: &str| {
        let body = json!({
            "subject": {"type": "agent", "id": agent, "properties": {"session": session}},
            "action": {"name": "get"},
            "resource": {"type": "kubernetes.prod", "id": "configmaps", "properties": {"namespace": "search"}},
        });
        let (status, head, text) = server.send(
            "POST",
            "/access/v1/evaluation",
            &[("Content-Type", "application/json")],
            &body.to_string(),
        );
        (status, head, serde_json::from_str::<Value>(&text).unwrap())
    };
    // One decision and one delegate's credential: the crawler's two.
    let (status, _, answer) = decide("crawler", session);
    assert_eq!(
        (status, &answer["decision"]),
        (200, &json!(true)),
        "{answer}"
    );
    let (status, fetcher) = ask(
        &server,
        &json!({"proof": {"type": "session", "token": session}, "provider": "kubernetes.prod", "agent": "fetcher"}),
    );
    assert_eq!(status, 200, "{fetcher}");
    let (status, head, answer) = decide("crawler", session);
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["decision"], false);
    assert!(
        answer["context"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has made the 2 requests of its budget"),
        "{answer}"
    );
    assert!(!head.to_ascii_lowercase().contains("retry-after"), "{head}");
    let (status, answer) = ask(
        &server,
        &json!({"proof": {"type": "session", "token": session}, "provider": "kubernetes.prod", "agent": "fetcher"}),
    );
    assert_eq!(status, 429, "{answer}");
    // The delegate's own budget, apart from its parent's.
    let delegate_session = fetcher["session"].as_str().unwrap();
    assert_eq!(decide("fetcher", delegate_session).0, 200);
    assert_eq!(decide("fetcher", delegate_session).0, 429);
    // A session is its agent's alone; a forged one is no session.
    let (status, _, answer) = decide("fetcher", session);
    assert_eq!(status, 400, "{answer}");
    let (status, _, answer) = decide("crawler", "ws1.e30.AAAA");
    assert_eq!(status, 400, "{answer}");
    // Without a session, decisions are as before: the budget is the
    // credential's, counted where its session is shown.
    let (status, _, answer) = server.send(
        "POST",
        "/access/v1/evaluation",
        &[("Content-Type", "application/json")],
        &json!({"subject": {"type": "agent", "id": "crawler"}, "action": {"name": "get"},
                "resource": {"type": "kubernetes.prod", "id": "configmaps", "properties": {"namespace": "search"}}})
        .to_string(),
    );
    assert_eq!(status, 200, "{answer}");
}

/// An AWS proof: a `GetCallerIdentity` to `endpoint` signed with botocore
/// (moto's own environment), with keys (and a session token), or with the
/// session of the role `assume` names (`ROLE_ARN SESSION_NAME`), assumed
/// first as Lambda assumes its function's role.
pub(crate) fn signed_caller_identity(
    endpoint: &str,
    key: &str,
    secret: &str,
    token: &str,
    assume: &str,
    audience: &str,
) -> Value {
    let python = crate::moto::python().expect("moto's Python");
    let script = r#"
import json, sys, boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, key, secret, token, assume, audience = sys.argv[1:7]
if assume:
    role, session = assume.split(" ")
    sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    got = sts.assume_role(RoleArn=role, RoleSessionName=session)["Credentials"]
    key, secret, token = got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"]
request = AWSRequest(method="POST", url=url + "/", data="Action=GetCallerIdentity&Version=2011-06-15",
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "X-Writ-Audience": audience})
SigV4Auth(Credentials(key, secret, token or None), "sts", "us-east-1").add_auth(request)
print(json.dumps(dict(request.headers.items())))
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script, endpoint, key, secret, token, assume, audience])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let headers: Value = serde_json::from_slice(&output.stdout).unwrap();
    json!({"type": "aws", "provider": "aws.prod", "headers": headers, "body": "Action=GetCallerIdentity&Version=2011-06-15"})
}
