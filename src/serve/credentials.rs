//! `POST /v1/credentials`: a workload proves who it is, writ maps it to an
//! agent through the source's `runs_on`, and issues that agent a
//! short-lived credential for one provider, as the provider itself issues
//! it (docs/serve.md#credentials):
//!
//! - proofs: a Kubernetes service account's token, checked by the cluster
//!   (TokenReview); a GitHub Actions OIDC token, checked against the
//!   issuer's published keys; a GitHub App's JWT, checked with its key; an
//!   AWS identity, by a signed `GetCallerIdentity` that STS answers; or a
//!   writ session, which a credential from this server carries, to ask
//!   for a delegate's credential;
//! - AWS: `sts:AssumeRole` of the agent's role with `DurationSeconds`, a
//!   session policy narrowed to the grants asked for (a subset of the
//!   agent's, checked here; IAM enforces the intersection), the agent as
//!   `SourceIdentity` and the chain in session tags. The role trusts the
//!   server only through the provider's `issuer`, only with the agent as
//!   source identity;
//! - Kubernetes: a TokenRequest of the agent's service account, with
//!   `expirationSeconds` and the audiences asked for;
//! - GCP: `generateAccessToken` for the agent's service account, with
//!   `lifetime` and the scopes asked for;
//! - GitHub: the installation token of the App the agent runs as,
//!   narrowed to its grants as `writ token` narrows it.
//!
//! Delegation is checked at issuance: a delegate's credential is issued on
//! its parent's session only, within every ancestor's `max_depth` along
//! the recorded chain, for no longer than any ancestor's ceiling `ttl` nor
//! than the parent's session lives. A revoked agent, or one under a
//! revoked ancestor, gets nothing; each issuance counts against the
//! agent's `rate`. Every issuance and refusal is in the audit log, without
//! the secrets.

use super::{now, reply, Shared};
use crate::project::Project;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use writ_compiler::facts::ProviderKind;
use writ_compiler::model::{AgentId, Model, ProviderSettings, WorkloadKind};
use writ_provider_core::{Issue, Provider, Retrier, Reviewed};
use writ_provider_github::oidc::OidcVerifier;

/// How `writ serve` issues credentials (`[serve]` in writ.toml).
pub struct Settings {
    /// `[serve] credentials = true`: off unless asked for.
    pub enabled: bool,
    /// The audience workload tokens must be meant for.
    pub audience: String,
    /// The key that signs sessions, shared by every replica; a key of
    /// this process's own when `None`.
    pub session_key: Option<Vec<u8>>,
    /// The issuer of GitHub Actions' OIDC tokens.
    pub github_oidc_issuer: String,
    /// The issuer of Google's ID tokens (`https://accounts.google.com`).
    pub google_oidc_issuer: String,
}

/// Google's issuer of ID tokens for service accounts.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// AWS: the shortest session STS gives.
const AWS_SHORTEST: u64 = 900;
/// AWS: the longest session writ asks for. STS gives no more than an hour
/// to a session started from another role's session (role chaining), as
/// the server's own usually is.
const AWS_LONGEST: u64 = 3600;
/// GCP: the longest access token `generateAccessToken` gives without an
/// organisation policy that allows more.
const GCP_LONGEST: u64 = 3600;
/// GCP: the scope of a token unless others are asked for.
const GCP_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// GitHub: how long an installation token lives.
const GITHUB_HOUR: u64 = 3600;
/// IAM's limit on a session policy's plain text.
const SESSION_POLICY_LIMIT: usize = 2048;
/// The longest task description, which goes into a session tag.
const TASK_LIMIT: usize = 128;

/// What issues credentials, shared by every request.
pub struct Issuer {
    /// The project's folder, whose writ.toml says how to reach the
    /// providers.
    path: PathBuf,
    settings: Settings,
    key: Vec<u8>,
    /// Made at the first GitHub proof (it reads the system's roots).
    oidc: std::sync::OnceLock<Result<OidcVerifier, String>>,
    /// Made at the first Google proof.
    google: std::sync::OnceLock<Result<OidcVerifier, String>>,
    /// Live providers, connected at first use, by address, for one
    /// generation of the model: a reload reads writ.toml again and
    /// connects afresh.
    connections: tokio::sync::Mutex<Connected>,
    /// Credentials issued, by provider; refusals.
    issued: Mutex<BTreeMap<String, u64>>,
    refused: AtomicU64,
    /// Requests made with each credential that has a budget, by id, with
    /// when it ends (kept by this process).
    spent: Mutex<HashMap<String, (u64, i64)>>,
    count: AtomicU64,
    /// Requests being answered at once, at most [`IN_FLIGHT`].
    in_flight: tokio::sync::Semaphore,
}

/// The most credential requests answered at once by one server.
const IN_FLIGHT: usize = 64;

/// The connections of one generation of the model.
struct Connected {
    generation: u64,
    project: Option<Arc<Project>>,
    providers: HashMap<String, Arc<tokio::sync::Mutex<Slot>>>,
}

/// One provider's connection, made by the first request that needs it
/// (others for the same provider wait for it; others for other providers
/// do not); a failure is kept a few seconds, so that requests cannot make
/// the server try again and again.
#[derive(Default)]
struct Slot {
    provider: Option<Arc<dyn Provider>>,
    made: Option<std::time::Instant>,
    failed: Option<(std::time::Instant, String)>,
}

/// How long a connection is used before it is made again (with a new
/// retry budget, and credentials the provider's chain may have renewed).
const RECONNECT: std::time::Duration = std::time::Duration::from_secs(600);

/// How long a failed connection is kept before it is tried again.
const RETRY_CONNECTING: std::time::Duration = std::time::Duration::from_secs(5);

impl Issuer {
    pub fn new(path: &Path, settings: Settings) -> Result<Issuer, String> {
        let key = match &settings.session_key {
            Some(key) => key.clone(),
            None => {
                let mut key = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut key)
                    .map_err(|_| "cannot draw a key for sessions".to_string())?;
                key
            }
        };
        for (key, issuer) in [
            ("github_oidc_issuer", &settings.github_oidc_issuer),
            ("google_oidc_issuer", &settings.google_oidc_issuer),
        ] {
            if !writ_provider_github::oidc::fetchable(issuer) {
                return Err(format!(
                    "`[serve] {key}` `{issuer}` must be an https URL (http only to this machine)"
                ));
            }
        }
        Ok(Issuer {
            path: path.to_path_buf(),
            settings,
            key,
            oidc: std::sync::OnceLock::new(),
            google: std::sync::OnceLock::new(),
            connections: tokio::sync::Mutex::new(Connected {
                generation: 0,
                project: None,
                providers: HashMap::new(),
            }),
            issued: Mutex::new(BTreeMap::new()),
            refused: AtomicU64::new(0),
            spent: Mutex::new(HashMap::new()),
            count: AtomicU64::new(0),
            in_flight: tokio::sync::Semaphore::new(IN_FLIGHT),
        })
    }

    /// Counts one request against the session's credential's budget; why
    /// not, when it is spent.
    fn spend(&self, session: &Session, now: i64) -> Result<(), String> {
        let Some(budget) = session.budget else {
            return Ok(());
        };
        let mut spent = self
            .spent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // What has ended needs no count.
        if spent.len() > 10_000 {
            spent.retain(|_, (_, ends)| *ends > now);
        }
        let used = &mut spent
            .entry(session.credential.clone())
            .or_insert((0, session.expires))
            .0;
        if *used >= budget {
            return Err(format!(
                "the credential `{}` of `{}` has made the {budget} requests of its budget: ask for a new one",
                session.credential, session.agent
            ));
        }
        *used += 1;
        Ok(())
    }

    /// Gives back a request counted against the session's credential.
    fn refund(&self, session: &Session) {
        let mut spent = self
            .spent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((used, _)) = spent.get_mut(&session.credential) {
            *used = used.saturating_sub(1);
        }
    }

    /// For `/v1/status`.
    pub fn status(&self) -> Value {
        json!({
            "issued": *self.issued.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
            "refused": self.refused.load(Ordering::Relaxed),
            "audience": self.settings.audience,
            "github_oidc_issuer": self.settings.github_oidc_issuer,
            "google_oidc_issuer": self.settings.google_oidc_issuer,
            // Without a shared key, a session is good at this replica only.
            "sessions_shared": self.settings.session_key.is_some(),
        })
    }

    /// For `/metrics`, Prometheus' text format.
    pub fn metrics(&self, out: &mut String) {
        out.push_str("# HELP writ_credentials_issued_total Credentials issued, by provider.\n# TYPE writ_credentials_issued_total counter\n");
        for (provider, count) in self
            .issued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            out.push_str(&format!(
                "writ_credentials_issued_total{{provider=\"{provider}\"}} {count}\n"
            ));
        }
        out.push_str("# HELP writ_credentials_refused_total Credential requests refused.\n# TYPE writ_credentials_refused_total counter\n");
        out.push_str(&format!(
            "writ_credentials_refused_total {}\n",
            self.refused.load(Ordering::Relaxed)
        ));
    }

    /// The verifier of GitHub Actions' tokens.
    fn oidc(&self) -> Result<&OidcVerifier, Refusal> {
        self.oidc
            .get_or_init(|| {
                OidcVerifier::new(&self.settings.github_oidc_issuer, &self.settings.audience)
            })
            .as_ref()
            .map_err(|e| Refusal::unavailable(format!("cannot check GitHub Actions' tokens: {e}")))
    }

    /// The verifier of Google's ID tokens.
    fn google(&self) -> Result<&OidcVerifier, Refusal> {
        self.google
            .get_or_init(|| {
                OidcVerifier::new(&self.settings.google_oidc_issuer, &self.settings.audience)
            })
            .as_ref()
            .map_err(|e| Refusal::unavailable(format!("cannot check Google's ID tokens: {e}")))
    }

    /// The connections of the model's `generation`: writ.toml read again,
    /// and every provider connected afresh, when it is a new one.
    async fn connected(
        &self,
        generation: u64,
    ) -> Result<tokio::sync::MutexGuard<'_, Connected>, Refusal> {
        let mut connected = self.connections.lock().await;
        if connected.generation != generation || connected.project.is_none() {
            let project = crate::project::load(&self.path).map_err(|e| {
                Refusal::unavailable(format!("cannot read the project's settings: {e}"))
            })?;
            *connected = Connected {
                generation,
                project: Some(Arc::new(project)),
                providers: HashMap::new(),
            };
        }
        Ok(connected)
    }

    /// The project as this generation read it.
    async fn project(&self, generation: u64) -> Result<Arc<Project>, Refusal> {
        let connected = self.connected(generation).await?;
        connected
            .project
            .clone()
            .ok_or_else(|| Refusal::unavailable("the project's settings are not read".to_string()))
    }

    /// The live provider at `address`, connected once a generation (where
    /// it is checked to be what the source says).
    async fn connection(
        &self,
        generation: u64,
        model: &Model,
        address: &str,
    ) -> Result<Arc<dyn Provider>, Refusal> {
        let Some(provider) = model.providers.iter().find(|p| p.address() == address) else {
            return Err(Refusal::bad(format!(
                "the source declares no provider `{address}`"
            )));
        };
        // The generation's slot, then its lock alone while connecting.
        let (slot, project) = {
            let mut connected = self.connected(generation).await?;
            let slot = connected
                .providers
                .entry(address.to_string())
                .or_default()
                .clone();
            (slot, connected.project.clone())
        };
        let Some(project) = project else {
            return Err(Refusal::unavailable(
                "the project's settings are not read".to_string(),
            ));
        };
        let mut slot = slot.lock().await;
        let fresh = slot.made.is_some_and(|made| made.elapsed() < RECONNECT);
        if let (Some(found), true) = (&slot.provider, fresh) {
            return Ok(found.clone());
        }
        if let Some((at, why)) = &slot.failed {
            if at.elapsed() < RETRY_CONNECTING {
                // A connection made again that failed keeps the old one.
                return match &slot.provider {
                    Some(found) => Ok(found.clone()),
                    None => Err(Refusal::unavailable(why.clone())),
                };
            }
        }
        // Its own retry budget, as a run of `writ` has one: the server
        // connects again every so often, so that retries spent long ago
        // are not missed now.
        match crate::live::connect_one(&project, model, provider, &Retrier::default_policy()).await
        {
            Ok((made, _)) => {
                let made: Arc<dyn Provider> = Arc::from(made);
                slot.made = Some(std::time::Instant::now());
                slot.provider = Some(made.clone());
                slot.failed = None;
                Ok(made)
            }
            Err(error) => {
                let why = format!("cannot reach `{address}`: {error}");
                slot.failed = Some((std::time::Instant::now(), why.clone()));
                match &slot.provider {
                    Some(found) => Ok(found.clone()),
                    None => Err(Refusal::unavailable(why)),
                }
            }
        }
    }
}

/// Why a request gets no credential, and the HTTP status that says so.
pub struct Refusal {
    status: StatusCode,
    why: String,
    retry_after: Option<u64>,
}

impl Refusal {
    fn bad(why: String) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            why,
            retry_after: None,
        }
    }
    fn denied(why: String) -> Refusal {
        Refusal {
            status: StatusCode::FORBIDDEN,
            why,
            retry_after: None,
        }
    }
    fn unauthenticated(why: String) -> Refusal {
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            why,
            retry_after: None,
        }
    }
    fn impossible(why: String) -> Refusal {
        Refusal {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            why,
            retry_after: None,
        }
    }
    fn unavailable(why: String) -> Refusal {
        Refusal {
            status: StatusCode::BAD_GATEWAY,
            why,
            retry_after: None,
        }
    }
}

/// A writ session: what a credential from this server carries, so that
/// its holder may ask for its delegates' credentials.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Session {
    project: String,
    /// The audience of the server that issued it: a session is good only
    /// at servers of that audience (each deployment its own).
    audience: String,
    agent: String,
    /// The agents from the first to ask down to this one.
    chain: Vec<String>,
    task: Option<String>,
    /// Seconds since the epoch when it ends (with the credential).
    expires: i64,
    credential: String,
    /// The most requests the credential may make (`budget`).
    budget: Option<u64>,
}

const SESSION_PREFIX: &str = "ws1";

fn sign(key: &[u8], payload: &str) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&key, format!("{SESSION_PREFIX}.{payload}").as_bytes())
        .as_ref()
        .to_vec()
}

impl Session {
    fn seal(&self, key: &[u8]) -> String {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            json!({
                "project": self.project,
                "aud": self.audience,
                "agent": self.agent,
                "chain": self.chain,
                "task": self.task,
                "exp": self.expires,
                "credential": self.credential,
                "budget": self.budget,
            })
            .to_string(),
        );
        let signature =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sign(key, &payload));
        format!("{SESSION_PREFIX}.{payload}.{signature}")
    }

    /// The session `token` holds, if this server's key signed it; why not.
    fn open(token: &str, key: &[u8]) -> Result<Session, String> {
        let mut parts = token.trim().split('.');
        let (Some(SESSION_PREFIX), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a writ session (`ws1.…`)".to_string());
        };
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "the session's signature is not base64url".to_string())?;
        let hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
        aws_lc_rs::hmac::verify(
            &hmac,
            format!("{SESSION_PREFIX}.{payload}").as_bytes(),
            &signature,
        )
        .map_err(|_| "the session was not signed by writ serve's key".to_string())?;
        let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| "the session's claims are not JSON".to_string())?;
        let text = |key: &str| claims[key].as_str().map(str::to_string);
        let chain: Vec<String> = claims["chain"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        match (
            text("project"),
            text("aud"),
            text("agent"),
            claims["exp"].as_i64(),
            text("credential"),
        ) {
            (Some(project), Some(audience), Some(agent), Some(expires), Some(credential))
                if chain.last() == Some(&agent) =>
            {
                Ok(Session {
                    project,
                    audience,
                    agent,
                    chain,
                    task: text("task"),
                    expires,
                    credential,
                    budget: claims["budget"].as_u64(),
                })
            }
            _ => Err("the session's claims are incomplete".to_string()),
        }
    }
}

/// What the request's proof established.
enum Proven {
    /// A workload, and the agents that run as it.
    Workload { who: String, agents: Vec<AgentId> },
    /// A parent's session, and its delegates.
    Session {
        session: Session,
        agents: Vec<AgentId>,
    },
}

/// `POST /v1/credentials`.
pub async fn handle(shared: &Shared, body: &Value, id: Option<&str>) -> Response<Full<Bytes>> {
    let Some(issuer) = &shared.issuer else {
        return reply(
            StatusCode::NOT_FOUND,
            &json!({"error": "this server issues no credentials: `[serve] credentials = true` in writ.toml turns them on (docs/serve.md#credentials)"}),
            id,
        );
    };
    // Each request may cost the providers a call or two before anyone is
    // known: a bounded number at once, the rest told to come back.
    let Ok(_permit) = issuer.in_flight.try_acquire() else {
        let mut response = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": format!("{IN_FLIGHT} credential requests are being answered: try again in a second")}),
            id,
        );
        response.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from(1u64),
        );
        return response;
    };
    match issue(shared, issuer, body).await {
        Ok(answer) => reply(StatusCode::OK, &answer, id),
        Err(refusal) => {
            issuer.refused.fetch_add(1, Ordering::Relaxed);
            let _ = shared.audit.send(
                json!({
                    "time": now(),
                    "credential_refused": {
                        "agent": body.get("agent"),
                        "provider": body.get("provider"),
                        "proof": body["proof"].get("type"),
                        "status": refusal.status.as_u16(),
                        "why": refusal.why,
                    }
                })
                .to_string(),
            );
            let mut response = reply(refusal.status, &json!({"error": refusal.why}), id);
            if let Some(wait) = refusal.retry_after {
                response.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from(wait),
                );
            }
            response
        }
    }
}

fn text_field<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, Refusal> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Refusal::bad(format!("`{key}` must be a string"))),
    }
}

async fn issue(shared: &Shared, issuer: &Issuer, body: &Value) -> Result<Value, Refusal> {
    if !body.is_object() {
        return Err(Refusal::bad("the body must be a JSON object".to_string()));
    }
    let known = [
        "proof",
        "agent",
        "provider",
        "ttl",
        "grants",
        "audiences",
        "scopes",
        "repository",
        "task",
    ];
    if let Some(other) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        return Err(Refusal::bad(format!(
            "`{other}` is not a field of a credential request (known: {})",
            known.join(", ")
        )));
    }
    let Some(provider_address) = text_field(body, "provider")? else {
        return Err(Refusal::bad(
            "`provider` is required (`aws.prod`)".to_string(),
        ));
    };
    let task = text_field(body, "task")?;
    if let Some(task) = task {
        let fine = !task.is_empty()
            && task.len() <= TASK_LIMIT
            && task
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c));
        if !fine {
            return Err(Refusal::bad(format!(
                "`task` is 1 to {TASK_LIMIT} letters, digits, spaces and `_.:/=+-@` (it becomes a session tag)"
            )));
        }
    }
    let loaded = shared.loaded();
    let model = loaded.engine.model();
    let Some(provider_id) = model
        .providers
        .iter()
        .position(|p| p.address() == provider_address)
    else {
        return Err(Refusal::bad(format!(
            "the source declares no provider `{provider_address}` (it declares {})",
            model
                .providers
                .iter()
                .map(|p| format!("`{}`", p.address()))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let now_seconds = jiff::Timestamp::now().as_second();

    // Who is asking.
    let proven = prove(
        issuer,
        model,
        loaded.generation,
        &body["proof"],
        now_seconds,
    )
    .await?;
    let (who, candidates, session) = match proven {
        Proven::Workload { who, agents } => (who, agents, None),
        Proven::Session { session, agents } => (
            format!("the session of `{}`", session.agent),
            agents,
            Some(session),
        ),
    };
    let asked = text_field(body, "agent")?;
    let agent_id = match (asked, candidates.as_slice()) {
        (_, []) => {
            return Err(Refusal::denied(match &session {
                Some(session) => format!("`{}` has no delegates in the source", session.agent),
                None => format!("no agent runs as {who} (`runs_on` in the source)"),
            }))
        }
        (Some(name), _) => match candidates.iter().find(|&&a| model.agents[a].name == name) {
            Some(&found) => found,
            None => {
                return Err(Refusal::denied(match &session {
                    Some(session) => format!(
                        "`{name}` is not a delegate of `{}` (its delegates: {})",
                        session.agent,
                        names(model, &candidates)
                    ),
                    None => format!(
                        "`{name}` does not run as {who} (it runs as: {})",
                        names(model, &candidates)
                    ),
                }))
            }
        },
        (None, [one]) => *one,
        (None, _) => {
            return Err(Refusal::bad(format!(
                "{who} runs as several agents ({}): name one in `agent`",
                names(model, &candidates)
            )))
        }
    };
    let agent = &model.agents[agent_id];

    // May it have one now?
    if agent.retired {
        return Err(Refusal::denied(format!(
            "`{}` has expired (`expires`)",
            agent.name
        )));
    }
    if agent.frozen {
        return Err(Refusal::denied(format!("`{}` is frozen", agent.name)));
    }
    if let Some((_, why)) = shared.revoked_over(model, agent_id) {
        return Err(Refusal::denied(why));
    }

    // Delegation, along the chain the session recorded.
    let ancestors = model.ancestors(agent_id);
    let chain: Vec<String> = match &session {
        None => vec![agent.name.clone()],
        Some(session) => {
            if session.project != shared.project.clone() {
                return Err(Refusal::unauthenticated(
                    "the session is another project's".to_string(),
                ));
            }
            // The chain the session recorded, nearest first, must be the
            // source's line of ancestors (the source may have changed).
            let recorded: Vec<&String> = session.chain.iter().rev().collect();
            let line: Vec<&String> = ancestors.iter().map(|&a| &model.agents[a].name).collect();
            if line.len() < recorded.len() || line[..recorded.len()] != recorded[..] {
                return Err(Refusal::denied(format!(
                    "the session's chain ({}) is not `{}`'s line of delegation in the source",
                    session.chain.join(" → "),
                    agent.name
                )));
            }
            // Every agent up the chain must still be able to delegate:
            // none expired, frozen or revoked (at run time or in the
            // providers), with or without its delegates.
            for name in &session.chain {
                if let Some(why) = stopped(shared, model, name) {
                    return Err(Refusal::denied(format!(
                        "{why}: its session gives `{}` nothing",
                        agent.name
                    )));
                }
            }
            let mut chain = session.chain.clone();
            chain.push(agent.name.clone());
            chain
        }
    };
    let depth = chain.len() - 1;
    let mut longest = agent.ttl.seconds();
    let mut bound_by = format!("`{}`'s ttl", agent.name);
    for (distance, &ancestor) in ancestors.iter().enumerate() {
        let distance = distance + 1;
        let ancestor = &model.agents[ancestor];
        let Some(ceiling) = &ancestor.delegates else {
            return Err(Refusal::denied(format!(
                "`{}` declares no `delegates`: `{}` gets nothing through it",
                ancestor.name, agent.name
            )));
        };
        if distance <= depth && distance as u64 > u64::from(ceiling.max_depth) {
            return Err(Refusal::denied(format!(
                "`{}` is {distance} levels below `{}`, whose delegates may be at most {} deep",
                agent.name, ancestor.name, ceiling.max_depth
            )));
        }
        if ceiling.ttl.seconds() < longest {
            longest = ceiling.ttl.seconds();
            bound_by = format!("`{}`'s delegates' ttl", ancestor.name);
        }
    }
    if let Some(session) = &session {
        let left = session.expires - now_seconds;
        if left <= 0 {
            return Err(Refusal::unauthenticated(
                "the session has expired".to_string(),
            ));
        }
        if (left as u64) < longest {
            longest = left as u64;
            bound_by = format!("the session of `{}`, which ends sooner", session.agent);
        }
    }
    let seconds = match text_field(body, "ttl")? {
        None => longest,
        Some(text) => {
            let asked = writ_compiler::values::Duration::parse(text)
                .map_err(|e| Refusal::bad(format!("`ttl` `{text}`: {e}")))?
                .seconds();
            if asked > longest {
                return Err(Refusal::denied(format!(
                    "`ttl` {text} is longer than {bound_by} allows ({longest} s)"
                )));
            }
            asked
        }
    };

    // What the credential is, in the provider.
    let provider = &model.providers[provider_id];
    let number = issuer.count.fetch_add(1, Ordering::Relaxed) + 1;
    let credential_id = format!("{}-c{number}", shared.run);
    let session_name = session_name(&agent.name, &shared.run, number);
    let mut request = Issue {
        agent: agent.name.clone(),
        identity: String::new(),
        seconds,
        policy: None,
        audiences: Vec::new(),
        scopes: Vec::new(),
        tags: Vec::new(),
        session_name,
    };
    let grants = body.get("grants").filter(|g| !g.is_null());
    let audiences = strings(body, "audiences")?;
    let scopes = strings(body, "scopes")?;
    if scopes.is_some() && provider.kind != ProviderKind::Gcp {
        return Err(Refusal::bad(
            "`scopes` is for GCP access tokens".to_string(),
        ));
    }
    if audiences.is_some() && provider.kind != ProviderKind::Kubernetes {
        return Err(Refusal::bad(
            "`audiences` is for Kubernetes tokens".to_string(),
        ));
    }
    if grants.is_some() && provider.kind != ProviderKind::Aws {
        return Err(Refusal::bad(format!(
            "`grants` narrows AWS sessions only: a {} credential carries its identity's whole access",
            provider.kind
        )));
    }
    match &provider.settings {
        ProviderSettings::Aws {
            account,
            partition,
            issuer: trusted,
        } => {
            if trusted.is_none() {
                return Err(Refusal::impossible(format!(
                    "`{provider_address}` names no `issuer`: its roles do not trust writ serve (add `issuer = \"arn:aws:iam::…:role/…\"`, the role the server runs as, to the provider, and apply)"
                )));
            }
            if !has_identity(model, agent_id, provider_id) {
                return Err(Refusal::denied(format!(
                    "`{}` has no role in `{provider_address}`: it holds nothing there",
                    agent.name
                )));
            }
            if seconds < AWS_SHORTEST {
                return Err(Refusal::impossible(format!(
                    "AWS issues sessions of 15 minutes at least, and {bound_by} allows {seconds} s: AWS would let the credential outlive it"
                )));
            }
            request.seconds = seconds.min(AWS_LONGEST);
            let path =
                writ_compiler::lower::aws::role_path(agent, provider_id, &shared.project.clone());
            request.identity = format!("arn:{partition}:iam::{account}:role{path}{}", agent.name);
            if let Some(grants) = grants {
                request.policy = Some(session_policy(model, agent_id, provider_id, grants)?);
            }
            // What STS takes: a source identity of 2 to 64 characters, a
            // tag's value of 256 at most.
            let joined = chain.join("/");
            if !(2..=64).contains(&agent.name.len()) || joined.len() > 256 {
                return Err(Refusal::impossible(format!(
                    "AWS takes a source identity of 2 to 64 characters and a session tag of 256 at most: `{}` (its chain `{joined}`) does not fit",
                    agent.name
                )));
            }
            request.tags = vec![
                ("writ:agent".to_string(), agent.name.clone()),
                ("writ:chain".to_string(), joined),
                ("writ:depth".to_string(), depth.to_string()),
                ("writ:credential".to_string(), credential_id.clone()),
            ];
            if let Some(task) = task {
                request
                    .tags
                    .push(("writ:task".to_string(), task.to_string()));
            }
        }
        ProviderSettings::Kubernetes { .. } => {
            let Some((namespace, name)) = agent.runs_on.iter().find_map(|w| match &w.kind {
                WorkloadKind::KubernetesServiceAccount {
                    namespace,
                    service_account,
                } if w.provider == provider_id => Some((namespace, service_account)),
                _ => None,
            }) else {
                return Err(Refusal::denied(format!(
                    "`{}` has no service account in `{provider_address}`",
                    agent.name
                )));
            };
            if seconds < writ_provider_kubernetes::SHORTEST_SECONDS {
                return Err(Refusal::impossible(format!(
                    "Kubernetes issues tokens of 10 minutes at least, and {bound_by} allows {seconds} s: the token would outlive it"
                )));
            }
            request.identity = format!("{namespace}/{name}");
            let audiences = audiences.unwrap_or_default();
            // A token for writ itself would prove a workload to writ again,
            // outside the chain and the ceiling.
            if audiences.contains(&issuer.settings.audience) {
                return Err(Refusal::denied(format!(
                    "a token for `{}` is a proof for writ serve itself: ask for another audience",
                    issuer.settings.audience
                )));
            }
            request.audiences = audiences;
        }
        ProviderSettings::Gcp { .. } => {
            let Some(email) = writ_compiler::lower::gcp::email(model, provider_id, agent) else {
                return Err(Refusal::denied(format!(
                    "`{}` has no service account in `{provider_address}`: it holds nothing there",
                    agent.name
                )));
            };
            request.identity = email;
            request.seconds = seconds.min(GCP_LONGEST);
            request.scopes = scopes.unwrap_or_else(|| vec![GCP_SCOPE.to_string()]);
        }
        ProviderSettings::Github { .. } => {
            // GitHub's installation tokens live an hour, whatever is asked.
            if seconds < GITHUB_HOUR {
                return Err(Refusal::impossible(format!(
                    "GitHub's installation tokens live an hour, and {bound_by} allows {seconds} s: the token would outlive it"
                )));
            }
            request.seconds = GITHUB_HOUR;
        }
    }
    let repository = text_field(body, "repository")?;
    if repository.is_some() && provider.kind != ProviderKind::Github {
        return Err(Refusal::bad(
            "`repository` is for GitHub installation tokens".to_string(),
        ));
    }

    // Within its rate: each credential counts as a request.
    if let Some(rate) = agent.rate {
        if let Err(wait) = shared.take(&agent.name, rate) {
            return Err(Refusal {
                status: StatusCode::TOO_MANY_REQUESTS,
                why: format!("`{}` is over its rate of {}", agent.name, rate.text()),
                retry_after: Some(wait),
            });
        }
    }

    // A delegate's credential is one of the parent's requests, counted
    // once the request is otherwise good (given back if the provider
    // fails).
    if let Some(session) = &session {
        if let Err(why) = issuer.spend(session, now_seconds) {
            return Err(Refusal {
                status: StatusCode::TOO_MANY_REQUESTS,
                why,
                retry_after: None,
            });
        }
    }
    let issued = issue_in(
        issuer,
        &loaded,
        provider,
        &agent.name,
        repository,
        &mut request,
    )
    .await;
    if issued.is_err() {
        if let Some(session) = &session {
            issuer.refund(session);
        }
    }
    let issued = issued?;
    let expires = issued.expires_at.parse::<jiff::Timestamp>().map_err(|_| {
        Refusal::unavailable(format!(
            "`{provider_address}` answered an expiry writ cannot read: `{}`",
            issued.expires_at
        ))
    })?;
    // What the provider made must end when asked (a minute's leeway for
    // clocks): one that lives longer, or has already ended, is not handed
    // out.
    if expires.as_second() <= now_seconds {
        return Err(Refusal::unavailable(format!(
            "`{provider_address}` issued a credential that had already expired ({})",
            issued.expires_at
        )));
    }
    let asked_end = now_seconds
        .saturating_add(i64::try_from(request.seconds).unwrap_or(i64::MAX))
        .saturating_add(60);
    if expires.as_second() > asked_end {
        return Err(Refusal::unavailable(format!(
            "`{provider_address}` issued a credential that lives until {}, longer than the {} s asked: not handed out",
            issued.expires_at, request.seconds
        )));
    }
    *issuer
        .issued
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(provider_address.to_string())
        .or_default() += 1;
    let sealed = Session {
        project: shared.project.clone(),
        audience: issuer.settings.audience.clone(),
        agent: agent.name.clone(),
        chain: chain.clone(),
        task: task.map(str::to_string),
        expires: expires.as_second(),
        credential: credential_id.clone(),
        budget: agent.budget.map(|b| b.count),
    }
    .seal(&issuer.key);
    let _ = shared.audit.send(
        json!({
            "time": now(),
            "credential": {
                "id": credential_id,
                "agent": agent.name,
                "provider": provider_address,
                "identity": request.identity,
                "proof": who,
                "chain": chain,
                "depth": depth,
                "task": task,
                "seconds": request.seconds,
                "expires_at": issued.expires_at,
                "narrowed": request.policy.is_some(),
            }
        })
        .to_string(),
    );
    Ok(json!({
        "credential_id": credential_id,
        "agent": agent.name,
        "provider": provider_address,
        "expires_at": issued.expires_at,
        "credentials": issued.credentials,
        "chain": chain,
        "depth": depth,
        "session": sealed,
    }))
}

/// A decision asked with a credential's session
/// (`subject.properties.session`), checked before anything is counted: the
/// session, when this server issues credentials (elsewhere the property
/// is not writ's, and is left alone); why not, when it is not this
/// server's, has ended, or is another agent's.
pub(super) fn session_of_decision(
    shared: &Shared,
    token: &str,
    agent: &str,
) -> Result<Option<Session>, String> {
    let Some(issuer) = &shared.issuer else {
        return Ok(None);
    };
    let session = Session::open(token, &issuer.key).map_err(|why| format!("the session: {why}"))?;
    if session.audience != issuer.settings.audience || session.project != shared.project {
        return Err("the session is another server's".to_string());
    }
    if session.agent != agent {
        return Err(format!(
            "the session is `{}`'s, not `{agent}`'s",
            session.agent
        ));
    }
    if session.expires <= jiff::Timestamp::now().as_second() {
        return Err("the session has ended".to_string());
    }
    Ok(Some(session))
}

/// Counts a decision against its session's credential's budget; why
/// not, when it is spent.
pub(super) fn spend_on_decision(shared: &Shared, session: &Session) -> Result<(), String> {
    match &shared.issuer {
        Some(issuer) => issuer.spend(session, jiff::Timestamp::now().as_second()),
        None => Ok(()),
    }
}

/// Why `name` may not delegate now: expired, frozen, or revoked itself
/// (at run time, or in the providers as the drift watch read them).
fn stopped(shared: &Shared, model: &Model, name: &str) -> Option<String> {
    let Some(id) = model.agent_id(name) else {
        return Some(format!("`{name}` is not in the source any more"));
    };
    let agent = &model.agents[id];
    if agent.retired {
        return Some(format!("`{name}` has expired (`expires`)"));
    }
    if agent.frozen {
        return Some(format!("`{name}` is frozen"));
    }
    let at_run_time = shared
        .revoked
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .contains_key(name);
    if at_run_time {
        return Some(format!(
            "`{name}` was revoked at run time (`POST /v1/revoke`)"
        ));
    }
    let in_providers = shared
        .watch
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .revoked
        .contains(name);
    in_providers.then(|| format!("`{name}` is revoked in the providers (`writ revoke`)"))
}

/// A list of non-empty strings in the body, if there is one.
fn strings(body: &Value, key: &str) -> Result<Option<Vec<String>>, Refusal> {
    let Some(value) = body.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let list: Option<Vec<String>> = value.as_array().filter(|a| !a.is_empty()).and_then(|a| {
        a.iter()
            .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string))
            .collect()
    });
    list.map(Some)
        .ok_or_else(|| Refusal::bad(format!("`{key}` is a list of strings")))
}

fn names(model: &Model, agents: &[AgentId]) -> String {
    agents
        .iter()
        .map(|&a| format!("`{}`", model.agents[a].name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The credential, as the provider issues it.
async fn issue_in(
    issuer: &Issuer,
    loaded: &super::Loaded,
    provider: &writ_compiler::model::Provider,
    agent: &str,
    repository: Option<&str>,
    request: &mut Issue,
) -> Result<writ_provider_core::Issued, Refusal> {
    let model = loaded.engine.model();
    let provider_address = provider.address();
    let provider_address = provider_address.as_str();
    match provider.kind {
        ProviderKind::Github => {
            // Narrowed as `writ token` narrows it: the App's installation
            // token for the agent's grants (one repository's, if asked).
            let (token, _, slug) = crate::live::mint_app_token(
                issuer.project(loaded.generation).await?.as_ref(),
                model,
                provider,
                agent,
                repository,
                &Retrier::default_policy(),
            )
            .await
            .map_err(|e| match e.refused {
                true => Refusal::denied(e.why),
                false => Refusal::unavailable(format!(
                    "`{provider_address}` did not issue the token: {}",
                    e.why
                )),
            })?;
            request.identity = format!("the installation of App `{slug}`");
            Ok(writ_provider_core::Issued {
                credentials: json!({
                    "token": token.token,
                    "permissions": token.permissions,
                    "repositories": token.repositories,
                }),
                expires_at: token.expires_at,
            })
        }
        _ => {
            let connected = issuer
                .connection(loaded.generation, model, provider_address)
                .await?;
            connected.issue(request).await.map_err(|e| {
                Refusal::unavailable(format!(
                    "`{provider_address}` did not issue the credential: {}",
                    e.message
                ))
            })
        }
    }
}

/// Does the agent have an identity (a role) in the provider: grants or a
/// workload there, and not expired?
fn has_identity(model: &Model, agent: AgentId, provider: usize) -> bool {
    let agent = &model.agents[agent];
    !agent.retired
        && (agent.grants.iter().any(|g| g.provider == provider)
            || agent.runs_on.iter().any(|w| w.provider == provider))
}

/// How the names of the AWS sessions writ issues begin: such a session is
/// never taken as a proof (its holder would get back more than it was
/// given).
const SESSION_NAME_PREFIX: &str = "writ.";

/// An AWS session's name: `writ.`, the agent's (in the characters STS allows),
/// then the credential's number, in 64 characters at most.
fn session_name(agent: &str, run: &str, number: u64) -> String {
    let suffix = format!(".{run}-{number}");
    let prefix = SESSION_NAME_PREFIX;
    let mut name: String = agent
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64usize.saturating_sub(suffix.len() + prefix.len()));
    format!("{prefix}{name}{suffix}")
}

/// The session policy of the grants asked for, each action and resource
/// within one of the agent's grants in the provider (a subset, never
/// more); what IAM then enforces is the intersection of it and the role's
/// own policy, guardrails and conditions included.
fn session_policy(
    model: &Model,
    agent: AgentId,
    provider: usize,
    asked: &Value,
) -> Result<String, Refusal> {
    let Some(asked) = asked.as_array().filter(|a| !a.is_empty()) else {
        return Err(Refusal::bad(
            "`grants` is a list of `{\"actions\": [...], \"resources\": [...]}`".to_string(),
        ));
    };
    let held: Vec<&writ_compiler::model::Grant> = model.agents[agent]
        .grants
        .iter()
        .filter(|g| g.provider == provider)
        .collect();
    let mut statements = Vec::new();
    for grant in asked {
        let list = |key: &str| -> Option<Vec<String>> {
            grant[key]
                .as_array()
                .filter(|a| !a.is_empty())
                .and_then(|a| {
                    a.iter()
                        .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string))
                        .collect()
                })
        };
        let (Some(actions), Some(resources)) = (list("actions"), list("resources")) else {
            return Err(Refusal::bad(
                "each of `grants` has `actions` and `resources`, lists of strings".to_string(),
            ));
        };
        for action in &actions {
            for resource in &resources {
                let folded = action.to_ascii_lowercase();
                let covered = held.iter().any(|g| {
                    g.actions
                        .iter()
                        .any(|a| writ_compiler::pattern::contains(&a.to_ascii_lowercase(), &folded))
                        && g.resources
                            .iter()
                            .any(|r| writ_compiler::pattern::arn_contains(r, resource))
                });
                if !covered {
                    return Err(Refusal::denied(format!(
                        "`{action}` on `{resource}` is not within `{}`'s grants: a credential holds a subset of them, never more",
                        model.agents[agent].name
                    )));
                }
            }
        }
        statements.push(json!({"Effect": "Allow", "Action": actions, "Resource": resources}));
    }
    let policy = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    if policy.len() > SESSION_POLICY_LIMIT {
        return Err(Refusal::bad(format!(
            "the grants make a session policy of {} characters; IAM allows {SESSION_POLICY_LIMIT}: ask for fewer, or use wildcards",
            policy.len()
        )));
    }
    Ok(policy)
}

/// Checks the request's proof: who the workload is, and which agents run
/// as it; or whose session it is, and its delegates.
async fn prove(
    issuer: &Issuer,
    model: &Model,
    generation: u64,
    proof: &Value,
    now: i64,
) -> Result<Proven, Refusal> {
    let kind = proof.get("type").and_then(Value::as_str);
    if kind == Some("aws") {
        return prove_aws(issuer, model, generation, proof).await;
    }
    let token = proof
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(Refusal::bad(
            "`proof` is `{\"type\": \"kubernetes\" | \"github_actions\" | \"github_app\" | \"gcp\" | \"session\", \"token\": …}` or `{\"type\": \"aws\", \"provider\": …, \"headers\": {…}, \"body\": …}`".to_string(),
        ));
    };
    match kind {
        Some("kubernetes") => {
            let Some(address) = proof.get("provider").and_then(Value::as_str) else {
                return Err(Refusal::bad(
                    "a Kubernetes proof names its cluster: `\"provider\": \"kubernetes.prod\"`"
                        .to_string(),
                ));
            };
            let Some(cluster) = model
                .providers
                .iter()
                .position(|p| p.address() == address && p.kind == ProviderKind::Kubernetes)
            else {
                return Err(Refusal::bad(format!(
                    "the source declares no Kubernetes provider `{address}`"
                )));
            };
            let connected = issuer.connection(generation, model, address).await?;
            let audiences = vec![issuer.settings.audience.clone()];
            let reviewed = connected.review(token, &audiences).await.map_err(|e| {
                Refusal::unavailable(format!(
                    "`{address}` could not review the token: {}",
                    e.message
                ))
            })?;
            match reviewed {
                Reviewed::ServiceAccount { pod: None, namespace, name } => Err(Refusal::unauthenticated(format!(
                    "the token of `{namespace}/{name}` is bound to no pod: a proof is the token the kubelet projects into the workload's pod (a token made by TokenRequest, writ's own among them, proves nothing)"
                ))),
                Reviewed::ServiceAccount { namespace, name, pod: Some(_) } => {
                    let agents = (0..model.agents.len())
                        .filter(|&a| {
                            model.agents[a].runs_on.iter().any(|w| {
                                w.provider == cluster
                                    && matches!(&w.kind, WorkloadKind::KubernetesServiceAccount { namespace: n, service_account: s } if *n == namespace && *s == name)
                            })
                        })
                        .collect();
                    Ok(Proven::Workload {
                        who: format!("the service account `{namespace}/{name}` of `{address}`"),
                        agents,
                    })
                }
                Reviewed::Other { username } => Err(Refusal::denied(format!(
                    "`{address}` says the token is `{username}`'s, not a service account's"
                ))),
                Reviewed::Refused { why } => {
                    Err(Refusal::unauthenticated(format!("`{address}`: {why}")))
                }
            }
        }
        Some("gcp") => {
            // An ID token of the agent's own service account, for writ's
            // audience: Google signs one for whoever may act as that
            // account (`generateIdToken`), as the agent's workload
            // identity subjects may.
            let claims = issuer
                .google()?
                .verify(token, now.max(0) as u64)
                .await
                .map_err(|why| Refusal::unauthenticated(format!("the Google ID token: {why}")))?;
            let email = claims["email"].as_str().unwrap_or_default();
            if email.is_empty() || claims["email_verified"] != true {
                return Err(Refusal::unauthenticated(
                    "the Google ID token names no verified email: ask for it with `includeEmail`".to_string(),
                ));
            }
            // Only an agent a workload identity subject runs as, and not a
            // delegate, whose account its parent may act as too.
            let agents: Vec<AgentId> = (0..model.agents.len())
                .filter(|&a| {
                    let agent = &model.agents[a];
                    agent.parent.is_none()
                        && agent.runs_on.iter().any(|w| {
                            matches!(w.kind, WorkloadKind::GcpWorkloadIdentity { .. })
                                && writ_compiler::lower::gcp::email(model, w.provider, agent).as_deref()
                                    == Some(email)
                        })
                })
                .collect();
            // Two agents of one account (names writ cannot tell apart)
            // prove neither.
            if agents.len() > 1 {
                return Err(Refusal::denied(format!(
                    "`{email}` is the service account of several agents ({}): rename them apart",
                    names(model, &agents)
                )));
            }
            Ok(Proven::Workload {
                who: format!("the GCP service account `{email}`"),
                agents,
            })
        }
        Some("github_actions") => {
            let claims = issuer
                .oidc()?
                .verify(token, now.max(0) as u64)
                .await
                .map_err(|why| {
                    Refusal::unauthenticated(format!("the GitHub Actions token: {why}"))
                })?;
            let claim = |key: &str| claims[key].as_str().unwrap_or_default();
            let agents = (0..model.agents.len())
                .filter(|&a| {
                    model.agents[a].runs_on.iter().any(|w| match &w.kind {
                        WorkloadKind::GithubActions {
                            repository,
                            workflow,
                            git_ref,
                            environment,
                        } => actions_match(
                            &claims,
                            repository,
                            workflow.as_deref(),
                            git_ref.as_deref(),
                            environment.as_deref(),
                        ),
                        _ => false,
                    })
                })
                .collect();
            Ok(Proven::Workload {
                who: format!(
                    "GitHub Actions in `{}` (ref `{}`{})",
                    claim("repository"),
                    claim("ref"),
                    match claim("environment") {
                        "" => String::new(),
                        env => format!(", environment `{env}`"),
                    }
                ),
                agents,
            })
        }
        Some("github_app") => {
            let Some(address) = proof.get("provider").and_then(Value::as_str) else {
                return Err(Refusal::bad(
                    "a GitHub App's proof names its organisation: `\"provider\": \"github.acme\"`"
                        .to_string(),
                ));
            };
            let Some((provider_id, declared)) = model
                .providers
                .iter()
                .enumerate()
                .find(|(_, p)| p.address() == address && p.kind == ProviderKind::Github)
            else {
                return Err(Refusal::bad(format!(
                    "the source declares no GitHub provider `{address}`"
                )));
            };
            let project = issuer.project(generation).await?;
            let key = crate::live::github_app_key(&project, declared)
                .map_err(|e| Refusal::unavailable(e.to_string()))?
                .ok_or_else(|| {
                    Refusal::impossible(format!(
                        "writ.toml holds no App key for `{address}`, to check an App's proof with"
                    ))
                })?;
            key.0
                .verify(token, now.max(0) as u64, &issuer.settings.audience)
                .map_err(|why| Refusal::unauthenticated(format!("the App's proof: {why}")))?;
            // Which App the key is: its installation says its slug.
            let app = crate::live::github_app(&project, declared, &Retrier::default_policy())
                .map_err(|e| Refusal::unavailable(e.to_string()))?
                .ok_or_else(|| Refusal::unavailable(format!("no App for `{address}`")))?;
            let installation = app
                .installation()
                .await
                .map_err(|e| Refusal::unavailable(format!("`{address}`: {}", e.message)))?;
            let agents = (0..model.agents.len())
                .filter(|&a| {
                    model.agents[a].runs_on.iter().any(|w| {
                        w.provider == provider_id
                            && matches!(&w.kind, WorkloadKind::GithubApp { slug } if *slug == installation.app_slug)
                    })
                })
                .collect();
            Ok(Proven::Workload {
                who: format!("GitHub App `{}`", installation.app_slug),
                agents,
            })
        }
        Some("session") => {
            let session = Session::open(token, &issuer.key)
                .map_err(|why| Refusal::unauthenticated(format!("the session: {why}")))?;
            if session.audience != issuer.settings.audience {
                return Err(Refusal::unauthenticated(format!(
                    "the session was issued for `{}`, not this server's audience `{}`",
                    session.audience, issuer.settings.audience
                )));
            }
            if session.expires <= now {
                return Err(Refusal::unauthenticated(
                    "the session has expired".to_string(),
                ));
            }
            let Some(parent) = model.agent_id(&session.agent) else {
                return Err(Refusal::denied(format!(
                    "the session's agent `{}` is not in the source any more",
                    session.agent
                )));
            };
            let agents = (0..model.agents.len())
                .filter(|&a| model.agents[a].parent == Some(parent))
                .collect();
            Ok(Proven::Session { session, agents })
        }
        _ => Err(Refusal::bad(
            "`proof.type` is `kubernetes`, `github_actions`, `github_app`, `aws`, `gcp` or `session`"
                .to_string(),
        )),
    }
}

/// An AWS proof: a signed `sts:GetCallerIdentity`, sent on to the
/// provider's STS endpoint (writ.toml's `endpoint_url`, or the region's);
/// the caller an IAM user an agent `runs_on`, or a session of an agent's
/// own role.
async fn prove_aws(
    issuer: &Issuer,
    model: &Model,
    generation: u64,
    proof: &Value,
) -> Result<Proven, Refusal> {
    use writ_provider_aws::proof::{principal, signed_caller, Principal};
    let Some(address) = proof.get("provider").and_then(Value::as_str) else {
        return Err(Refusal::bad(
            "an AWS proof names its account: `\"provider\": \"aws.prod\"`".to_string(),
        ));
    };
    let Some((provider_id, account, partition)) =
        model
            .providers
            .iter()
            .enumerate()
            .find_map(|(id, p)| match &p.settings {
                ProviderSettings::Aws {
                    account, partition, ..
                } if p.address() == address => Some((id, account, partition)),
                _ => None,
            })
    else {
        return Err(Refusal::bad(format!(
            "the source declares no AWS provider `{address}`"
        )));
    };
    let headers: Option<Vec<(String, String)>> = proof["headers"].as_object().and_then(|h| {
        h.iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect()
    });
    let (Some(headers), Some(body)) = (headers, proof["body"].as_str()) else {
        return Err(Refusal::bad(
            "an AWS proof is a signed request: `\"headers\": {NAME: VALUE, …}` and `\"body\"`"
                .to_string(),
        ));
    };
    let project = issuer.project(generation).await?;
    let name = address.split_once('.').map_or(address, |(_, n)| n);
    let table = project.config.provider.get("aws").and_then(|t| t.get(name));
    let setting = |key: &str| table.and_then(|t| t.get(key)).and_then(|v| v.as_str());
    let endpoint = match setting("endpoint_url") {
        Some(url) => url.to_string(),
        None => {
            let region = setting("region").unwrap_or("us-east-1");
            let domain = if partition == "aws-cn" {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://sts.{region}.{domain}")
        }
    };
    let caller = signed_caller(&endpoint, &issuer.settings.audience, &headers, body)
        .await
        .map_err(|why| Refusal::unauthenticated(format!("the AWS proof: {why}")))?;
    if caller.account != *account {
        return Err(Refusal::denied(format!(
            "the AWS proof is of account {}, not `{address}`'s",
            caller.account
        )));
    }
    let agents = match principal(&caller.arn) {
        Principal::User(user) => (0..model.agents.len())
            .filter(|&a| {
                model.agents[a].runs_on.iter().any(|w| {
                    w.provider == provider_id
                        && matches!(&w.kind, WorkloadKind::AwsUser { user: u } if *u == user)
                })
            })
            .collect(),
        // A session writ issued proves nothing: its holder would get back
        // more than it was given (the whole grants, a fresh chain).
        Principal::RoleSession(_, session) if session.starts_with(SESSION_NAME_PREFIX) => {
            return Err(Refusal::denied(format!(
                "`{}` is a session writ serve issued: it proves nothing (ask on the session writ gave with it)",
                caller.arn
            )))
        }
        // A session of the agent's own role that an AWS service it runs on
        // started (a Lambda function, an ECS task): the agent itself. Not
        // a delegate's, whose role its parent may assume too.
        Principal::RoleSession(role, _) => (0..model.agents.len())
            .filter(|&a| {
                let agent = &model.agents[a];
                agent.name == role
                    && agent.parent.is_none()
                    && agent.runs_on.iter().any(|w| {
                        w.provider == provider_id && matches!(w.kind, WorkloadKind::AwsService { .. })
                    })
            })
            .collect(),
        Principal::Other => Vec::new(),
    };
    Ok(Proven::Workload {
        who: format!("`{}`", caller.arn),
        agents,
    })
}

/// Do a GitHub Actions token's claims match a `runs_on github.P actions`
/// workload, as the lowered trust pins it (repository, and each of ref,
/// environment and workflow the source names)? Exactly, as the trust's
/// `StringEquals` compares them.
pub fn actions_match(
    claims: &Value,
    repository: &str,
    workflow: Option<&str>,
    git_ref: Option<&str>,
    environment: Option<&str>,
) -> bool {
    let claim = |key: &str| claims[key].as_str();
    let Some(claimed) = claim("repository") else {
        return false;
    };
    // Compared as the role's trust compares them (`StringEquals`): the
    // claims carry GitHub's own spelling, as the source must.
    if claimed != repository {
        return false;
    }
    if git_ref.is_some_and(|r| claim("ref") != Some(r)) {
        return false;
    }
    if environment.is_some_and(|e| claim("environment") != Some(e)) {
        return false;
    }
    if let Some(workflow) = workflow {
        let Some(job) = claim("job_workflow_ref") else {
            return false;
        };
        let Some((path, at)) = job.rsplit_once('@') else {
            return false;
        };
        let expected = format!("{repository}/{workflow}");
        if path != expected || git_ref.is_some_and(|r| at != r) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            project: "acme".into(),
            audience: "writ".into(),
            agent: "child".into(),
            chain: vec!["parent".into(), "child".into()],
            task: Some("release 42".into()),
            expires: 2_000_000_000,
            credential: "r-c1".into(),
            budget: Some(3),
        }
    }

    #[test]
    fn a_session_opens_with_its_key_only() {
        let sealed = session().seal(b"key one");
        assert_eq!(Session::open(&sealed, b"key one").unwrap(), session());
        assert!(Session::open(&sealed, b"key two")
            .unwrap_err()
            .contains("not signed"));
        // A changed claim breaks the signature.
        let (head, rest) = sealed.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let mut forged = session();
        forged.agent = "parent".into();
        forged.chain = vec!["parent".into()];
        let forged_payload = forged.seal(b"key one");
        let forged_payload = forged_payload.split('.').nth(1).unwrap();
        let tampered = format!("{head}.{forged_payload}.{signature}");
        assert!(Session::open(&tampered, b"key one").is_err());
        assert!(Session::open("ws1.e30", b"key one").is_err());
        assert!(Session::open("", b"key one").is_err());
    }

    #[test]
    fn session_names_keep_to_what_sts_allows() {
        let name = session_name(&"a".repeat(100), "19abc", 7);
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("writ.aaa") && name.ends_with(".19abc-7"));
        assert_eq!(session_name("ci bot", "1", 2), "writ.ci-bot.1-2");
    }

    #[test]
    fn actions_claims_match_the_pins_the_source_names() {
        let claims = json!({
            "repository": "acme/app",
            "ref": "refs/heads/main",
            "environment": "prod",
            "job_workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        });
        assert!(actions_match(&claims, "acme/app", None, None, None));
        assert!(actions_match(
            &claims,
            "acme/app",
            Some(".github/workflows/deploy.yml"),
            Some("refs/heads/main"),
            Some("prod")
        ));
        assert!(!actions_match(&claims, "acme/other", None, None, None));
        assert!(!actions_match(
            &claims,
            "acme/app",
            None,
            Some("refs/heads/dev"),
            None
        ));
        assert!(!actions_match(
            &claims,
            "acme/app",
            None,
            None,
            Some("staging")
        ));
        assert!(!actions_match(
            &claims,
            "acme/app",
            Some(".github/workflows/other.yml"),
            None,
            None
        ));
        assert!(!actions_match(&json!({}), "acme/app", None, None, None));
        // As the trust's `StringEquals`: exactly.
        assert!(!actions_match(&claims, "Acme/App", None, None, None));
        assert!(!actions_match(
            &claims,
            "acme/app",
            Some(".github/workflows/DEPLOY.yml"),
            None,
            None
        ));
    }
}
