//! `writ serve`: the runtime half (docs/serve.md). An HTTP server that
//! answers "may this agent do this, now?" from the checked model, through
//! the OpenID AuthZEN Authorization API (`authzen.rs`), writes every
//! decision to an audit log, refuses a revoked agent at its next request,
//! reloads the source when it changes (keeping the running model when the
//! new one has errors), and reports its state (`/v1/status`) and metrics
//! (`/metrics`, Prometheus' text format).

mod authzen;
mod credentials;
mod reconcile;

pub use credentials::{Settings as CredentialSettings, GOOGLE_ISSUER};

use crate::error::CliError;
use crate::project::Project;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request as HttpRequest, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use writ_compiler::decide::Engine;
use writ_compiler::model::{AgentId, Model, Placement};
use writ_compiler::SourceMap;

/// How a server runs.
pub struct Options {
    pub listen: String,
    /// Where decisions are written, a JSON line each; standard output when
    /// `None`.
    pub audit_log: Option<PathBuf>,
    /// The token `POST /v1/revoke` requires (`Authorization: Bearer …`);
    /// without one, revocation through the API is off.
    pub admin_token: Option<String>,
    /// How often the source's files are looked at for changes.
    pub watch_every: Duration,
    /// How often the live providers are read for revocations and drift
    /// (`--reconcile-every`); never when `None`.
    pub reconcile_every: Option<Duration>,
    /// Serve over TLS with this certificate chain and private key (PEM
    /// files); plain HTTP when `None`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Ask every client for a certificate, signed by one of these
    /// authorities (a PEM file), and serve no other.
    pub client_ca: Option<PathBuf>,
    /// Where clients reach the server, for the metadata document; where it
    /// listens when `None`.
    pub public_url: Option<String>,
    /// How credentials are issued (`POST /v1/credentials`).
    pub credentials: credentials::Settings,
    /// `POST /v1/revoke` pulls the brake in the providers too.
    pub revoke_in_providers: bool,
}

/// The TLS acceptor of a certificate chain and key in PEM files: TLS 1.2
/// and 1.3 (rustls' defaults), HTTP/1.1. The files are read again when
/// they change (a renewal), as [`Certificate`] says.
fn tls_acceptor(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<tokio_rustls::TlsAcceptor, CliError> {
    let first = certified(cert, key).map_err(CliError::Message)?;
    let resolver = Certificate {
        files: (cert.to_path_buf(), key.to_path_buf()),
        state: Mutex::new(CertificateState {
            current: Arc::new(first),
            stamp: stamp(cert, key),
            looked: Instant::now(),
        }),
    };
    let builder = tokio_rustls::rustls::ServerConfig::builder();
    let mut config = match client_ca {
        None => builder.with_no_client_auth(),
        Some(file) => builder.with_client_cert_verifier(client_verifier(file)?),
    }
    .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// What checks clients' certificates: signed by an authority of `file`
/// (PEM), required of every client.
fn client_verifier(
    file: &Path,
) -> Result<Arc<dyn tokio_rustls::rustls::server::danger::ClientCertVerifier>, CliError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let said = |e: &dyn std::fmt::Display| {
        CliError::Message(format!(
            "cannot read the client certificates' authorities `{}`: {e}",
            file.display()
        ))
    };
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(file).map_err(|e| said(&e))? {
        roots
            .add(certificate.map_err(|e| said(&e))?)
            .map_err(|e| said(&e))?;
    }
    if roots.is_empty() {
        return Err(said(&"it holds no certificate"));
    }
    tokio_rustls::rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| said(&e))
}

/// A certificate chain and its key, read from PEM files and checked to go
/// together.
fn certified(cert: &Path, key: &Path) -> Result<tokio_rustls::rustls::sign::CertifiedKey, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the TLS certificate `{}`: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "the TLS certificate `{}` holds no certificate",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the TLS private key `{}`: {e}", key.display()))?;
    let mismatch = |e: &dyn std::fmt::Display| {
        format!(
            "the TLS certificate `{}` and key `{}` do not make a server's identity: {e}",
            cert.display(),
            key.display()
        )
    };
    let signing = tokio_rustls::rustls::crypto::aws_lc_rs::sign::any_supported_type(&private)
        .map_err(|e| mismatch(&e))?;
    let certified = tokio_rustls::rustls::sign::CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| mismatch(&e))?;
    Ok(certified)
}

/// When the certificate's files last changed, and their sizes.
type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    [cert, key].map(|file| {
        let meta = std::fs::metadata(file).ok();
        (
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.map_or(0, |m| m.len()),
        )
    })
}

/// The server's certificate, handed to each TLS handshake. Its files are
/// looked at, at most every [`CERTIFICATE_LOOK`], and read again when they
/// changed (cert-manager renewing a Secret, say); a pair that does not
/// read, or does not go together (caught between the two files' writes),
/// keeps the one in use until a later look finds them whole.
#[derive(Debug)]
struct Certificate {
    files: (PathBuf, PathBuf),
    state: Mutex<CertificateState>,
}

#[derive(Debug)]
struct CertificateState {
    current: Arc<tokio_rustls::rustls::sign::CertifiedKey>,
    stamp: Stamp,
    looked: Instant,
}

/// How often the certificate's files are looked at.
const CERTIFICATE_LOOK: Duration = Duration::from_secs(2);

impl tokio_rustls::rustls::server::ResolvesServerCert for Certificate {
    fn resolve(
        &self,
        _hello: tokio_rustls::rustls::server::ClientHello<'_>,
    ) -> Option<Arc<tokio_rustls::rustls::sign::CertifiedKey>> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.looked.elapsed() >= CERTIFICATE_LOOK {
            state.looked = Instant::now();
            let (cert, key) = (&self.files.0, &self.files.1);
            let now = stamp(cert, key);
            if now != state.stamp {
                match certified(cert, key) {
                    Ok(renewed) => {
                        state.current = Arc::new(renewed);
                        state.stamp = now;
                        eprintln!(
                            "writ serve: read the TLS certificate `{}` again",
                            cert.display()
                        );
                    }
                    // Looked at again once either file changes.
                    Err(error) => {
                        state.stamp = now;
                        eprintln!("writ serve: kept the TLS certificate in use: {error}");
                    }
                }
            }
        }
        Some(state.current.clone())
    }
}

/// Serves one connection, plain or TLS.
async fn connection<I>(io: I, shared: Arc<Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&shared, request).await) }
    });
    // A connection that sends no request head within 10 s is closed (idle
    // keep-alive ones too).
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

/// A model being served.
pub struct Loaded {
    pub engine: Engine,
    pub sources: SourceMap,
    pub generation: u64,
    pub loaded_at: String,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    allowed: AtomicU64,
    denied: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    revocations: AtomicU64,
    bad_requests: AtomicU64,
    /// Request latency: counts per bucket of [`BUCKETS`], the sum in
    /// nanoseconds, and the count.
    latency: [AtomicU64; BUCKETS.len()],
    latency_sum_ns: AtomicU64,
    latency_count: AtomicU64,
}

/// Latency buckets, in seconds.
const BUCKETS: [f64; 8] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1];

impl Metrics {
    fn decided(&self, allowed: bool) {
        match allowed {
            true => self.allowed.fetch_add(1, Ordering::Relaxed),
            false => self.denied.fetch_add(1, Ordering::Relaxed),
        };
    }

    fn took(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bucket, count) in BUCKETS.iter().zip(&self.latency) {
            if seconds <= *bucket {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_sum_ns
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    fn text(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        out.push_str("# HELP writ_decisions_total Decisions made, by result.\n# TYPE writ_decisions_total counter\n");
        out.push_str(&format!(
            "writ_decisions_total{{result=\"allow\"}} {}\nwrit_decisions_total{{result=\"deny\"}} {}\n",
            get(&self.allowed),
            get(&self.denied)
        ));
        out.push_str("# HELP writ_reloads_total Reloads of the source, by result.\n# TYPE writ_reloads_total counter\n");
        out.push_str(&format!(
            "writ_reloads_total{{result=\"ok\"}} {}\nwrit_reloads_total{{result=\"failed\"}} {}\n",
            get(&self.reloads),
            get(&self.reload_failures)
        ));
        out.push_str("# HELP writ_revocations_total Agents revoked through the API.\n# TYPE writ_revocations_total counter\n");
        out.push_str(&format!(
            "writ_revocations_total {}\n",
            get(&self.revocations)
        ));
        out.push_str("# HELP writ_bad_requests_total Requests refused as malformed.\n# TYPE writ_bad_requests_total counter\n");
        out.push_str(&format!(
            "writ_bad_requests_total {}\n",
            get(&self.bad_requests)
        ));
        out.push_str("# HELP writ_request_duration_seconds Time to answer a request.\n# TYPE writ_request_duration_seconds histogram\n");
        for (bucket, count) in BUCKETS.iter().zip(&self.latency) {
            out.push_str(&format!(
                "writ_request_duration_seconds_bucket{{le=\"{bucket}\"}} {}\n",
                get(count)
            ));
        }
        out.push_str(&format!(
            "writ_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\nwrit_request_duration_seconds_sum {}\nwrit_request_duration_seconds_count {}\n",
            get(&self.latency_count),
            get(&self.latency_sum_ns) as f64 / 1e9,
            get(&self.latency_count)
        ));
        out
    }
}

/// One decision, for the audit log.
pub struct Audit<'a> {
    pub id: &'a str,
    /// The model's generation that decided.
    pub generation: u64,
    pub agent: &'a str,
    pub provider: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub placement: &'a Placement,
    pub name: Option<&'a str>,
    pub context: &'a BTreeMap<String, String>,
    pub decision: bool,
    pub reason: &'a str,
}

/// An agent's allowance of requests: a bucket of `count` tokens that
/// fills at `count` a `per_seconds`.
struct Bucket {
    tokens: f64,
    at: Instant,
    rate: (u64, u64),
}

/// What every request shares.
pub struct Shared {
    /// Each rate-limited agent's allowance, by name.
    buckets: Mutex<std::collections::HashMap<String, Bucket>>,
    loaded: RwLock<Arc<Loaded>>,
    /// Agents revoked at run time (with their delegates, when asked).
    revoked: RwLock<BTreeMap<String, bool>>,
    /// What the drift watch read in the providers (`--reconcile-every`).
    watch: RwLock<reconcile::Watch>,
    reload_error: Mutex<Option<String>>,
    metrics: Metrics,
    audit: std::sync::mpsc::SyncSender<String>,
    decisions: AtomicU64,
    /// Tells decision ids of this process apart from another's.
    run: String,
    admin_token: Option<String>,
    base: String,
    project: String,
    /// What issues credentials (`POST /v1/credentials`).
    issuer: Option<credentials::Issuer>,
    /// `POST /v1/revoke` pulls the brake in the providers too.
    revoke_in_providers: bool,
    /// The project's path, as given.
    path: PathBuf,
}

impl Shared {
    fn loaded(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Takes one of the agent's requests under its `rate`; when none is
    /// left, in how many seconds one will be.
    fn take(&self, agent: &str, rate: writ_compiler::model::Rate) -> Result<(), u64> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let key = (rate.count, rate.per_seconds);
        if !buckets.contains_key(agent) {
            buckets.insert(
                agent.to_string(),
                Bucket {
                    tokens: rate.count as f64,
                    at: now,
                    rate: key,
                },
            );
        }
        let Some(bucket) = buckets.get_mut(agent) else {
            return Ok(());
        };
        // A changed rate (a reload) starts afresh.
        if bucket.rate != key {
            *bucket = Bucket {
                tokens: rate.count as f64,
                at: now,
                rate: key,
            };
        }
        let per_second = rate.count as f64 / rate.per_seconds as f64;
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(rate.count as f64);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }

    fn next_id(&self) -> String {
        format!(
            "{}-{}",
            self.run,
            self.decisions.fetch_add(1, Ordering::Relaxed) + 1
        )
    }

    /// The revocation that stops `agent`, as the words a denial gives: one
    /// at run time of itself, or of an ancestor with its delegates; or one
    /// the drift watch read in the providers (`writ revoke`) of itself or
    /// of any ancestor (a delegate lives on its parent's access).
    fn revoked_over(&self, model: &Model, agent: AgentId) -> Option<(String, String)> {
        let name = &model.agents[agent].name;
        {
            let revoked = self
                .revoked
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !revoked.is_empty() {
                let found = if revoked.contains_key(name) {
                    Some(name.clone())
                } else {
                    model
                        .ancestors(agent)
                        .into_iter()
                        .map(|a| &model.agents[a].name)
                        .find(|a| revoked.get(*a) == Some(&true))
                        .cloned()
                };
                if let Some(found) = found {
                    let why = format!("`{found}` was revoked at run time (`POST /v1/revoke`)");
                    return Some((found, why));
                }
            }
        }
        let watch = self
            .watch
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if watch.revoked.is_empty() {
            return None;
        }
        std::iter::once(agent)
            .chain(model.ancestors(agent))
            .map(|a| &model.agents[a].name)
            .find(|a| watch.revoked.contains(*a))
            .map(|found| {
                let why = format!(
                    "`{found}` is revoked in the providers (`writ revoke`), as read at {}",
                    watch
                        .last
                        .map_or("the last round".to_string(), |(time, _)| time.to_string())
                );
                (found.clone(), why)
            })
    }

    fn audit(&self, audit: Audit) {
        let mut line = json!({
            "time": now(),
            "id": audit.id,
            "generation": audit.generation,
            "agent": audit.agent,
            "provider": audit.provider,
            "action": audit.action,
            "resource": audit.resource,
            "decision": audit.decision,
            "reason": audit.reason,
        });
        match audit.placement {
            Placement::Namespace(ns) => line["namespace"] = json!(ns),
            Placement::Cluster => line["cluster"] = json!(true),
            Placement::None => {}
        }
        if let Some(name) = audit.name {
            line["name"] = json!(name);
        }
        if !audit.context.is_empty() {
            line["context"] = json!(audit.context);
        }
        let _ = self.audit.send(line.to_string());
    }
}

/// Now, RFC 3339 (the binary may read the clock; the compiler may not).
fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Loads and checks the project at `path`: the model to serve, or why not.
fn load(path: &Path, generation: u64) -> Result<Loaded, String> {
    let project = crate::project::load(path).map_err(|e| e.to_string())?;
    let checked = crate::pipeline::source_checked(&project).map_err(|e| e.to_string())?;
    if checked.has_errors() {
        let errors: Vec<String> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{}: {}", d.code, d.message))
            .collect();
        return Err(format!(
            "the source has errors ({}): {}",
            crate::report::summary(&checked.diagnostics),
            errors.join("; ")
        ));
    }
    Ok(Loaded {
        engine: Engine::new(checked.model),
        sources: project.sources,
        generation,
        loaded_at: now(),
    })
}

/// What the project's files are (each `.writ` file and `writ.toml` under
/// its root, by path, modification time and size, as the project finds
/// them: hidden folders and `target` skipped, links not followed): a
/// change, a new file or a file gone is a reason to reload.
fn fingerprint(root: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut files: Vec<(PathBuf, Option<SystemTime>, u64)> = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                folders.push(entry.path());
            } else if name.ends_with(".writ") || name == "writ.toml" {
                // A link's target's time and size.
                let meta = std::fs::metadata(entry.path()).ok();
                files.push((
                    entry.path(),
                    meta.as_ref().and_then(|m| m.modified().ok()),
                    meta.map_or(0, |m| m.len()),
                ));
            }
        }
    }
    files.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    files.hash(&mut hasher);
    hasher.finish()
}

/// Serves the project at `path` until the process is stopped.
pub fn serve(project: &Project, path: &Path, options: Options) -> Result<(), CliError> {
    let first = load(path, 1).map_err(CliError::Message)?;
    let acceptor = match &options.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key, options.client_ca.as_deref())?),
        None => None,
    };
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    // Bounded: a log that cannot keep up slows the answers, never drops
    // a decision.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<String>(1 << 16);
    // The audit log, written by a thread of its own, a line a decision.
    let mut sink: Box<dyn Write + Send> = match &options.audit_log {
        Some(file) => Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .map_err(|e| {
                    CliError::Message(format!(
                        "cannot open the audit log `{}`: {e}",
                        file.display()
                    ))
                })?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    std::thread::spawn(move || {
        while let Ok(line) = receiver.recv() {
            let _ = writeln!(sink, "{line}");
            // Whatever else is waiting, then to disk.
            while let Ok(line) = receiver.try_recv() {
                let _ = writeln!(sink, "{line}");
            }
            let _ = sink.flush();
        }
    });
    let issuer = match options.credentials.enabled {
        true => {
            Some(credentials::Issuer::new(path, options.credentials).map_err(CliError::Message)?)
        }
        false => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| CliError::Message(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .map_err(|e| CliError::Message(format!("cannot listen on `{}`: {e}", options.listen)))?;
        let address = listener
            .local_addr()
            .map_err(|e| CliError::Message(format!("cannot read the address listened on: {e}")))?;
        let shared = Arc::new(Shared {
            buckets: Mutex::new(std::collections::HashMap::new()),
            loaded: RwLock::new(Arc::new(first)),
            revoked: RwLock::new(BTreeMap::new()),
            watch: RwLock::new(reconcile::Watch::default()),
            reload_error: Mutex::new(None),
            metrics: Metrics::default(),
            audit: sender,
            decisions: AtomicU64::new(0),
            run: format!("{:x}", SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()),
            admin_token: options.admin_token.clone(),
            base: options
                .public_url
                .clone()
                .map(|url| url.trim_end_matches('/').to_string())
                .unwrap_or_else(|| format!("{scheme}://{address}")),
            project: project.name.clone(),
            issuer,
            revoke_in_providers: options.revoke_in_providers,
            path: path.to_path_buf(),
        });
        tokio::spawn(watch(shared.clone(), path.to_path_buf(), project.root.clone(), options.watch_every));
        if let Some(every) = options.reconcile_every {
            // Before the first answer: never blind to revocations.
            eprintln!("writ serve: reading the providers before answering (--reconcile-every) …");
            let (watched, path) = (shared.clone(), path.to_path_buf());
            tokio::task::spawn_blocking(move || reconcile::start(watched, path, every))
                .await
                .map_err(|e| CliError::Message(format!("the drift watch did not start: {e}")))?
                .map_err(|e| CliError::Message(format!("the drift watch could not read the providers, so the server does not start: {e}")))?;
        }
        eprintln!(
            "writ serve: project `{}`, {} agents, listening on {scheme}://{address} (AuthZEN: /access/v1/evaluation)",
            project.name,
            shared.loaded().engine.model().agents.len()
        );

        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("writ serve: accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            match &acceptor {
                None => {
                    tokio::spawn(connection(stream, shared));
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        // A handshake not done within 10 s is dropped.
                        let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                        if let Ok(Ok(stream)) = handshake.await {
                            connection(stream, shared).await;
                        }
                    });
                }
            }
        }
    })
}

/// Reloads the source when its files change, on `SIGHUP`, and on a new
/// day (an agent's `expires` may have come); a source with errors is
/// refused, and the running model kept.
async fn watch(shared: Arc<Shared>, path: PathBuf, root: PathBuf, every: Duration) {
    let mut seen = fingerprint(&root);
    // A new day may retire agents (`expires`): the model is checked again.
    let mut day = crate::clock::today().ok();
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = signalled => true,
        };
        let now_seen = fingerprint(&root);
        let today = crate::clock::today().ok();
        if !forced && now_seen == seen && today == day {
            continue;
        }
        day = today;
        seen = now_seen;
        let generation = shared.loaded().generation + 1;
        match load(&path, generation) {
            Ok(loaded) => {
                let agents = loaded.engine.model().agents.len();
                *shared
                    .loaded
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(loaded);
                *shared
                    .reload_error
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
                shared.metrics.reloads.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "writ serve: reloaded the source (generation {generation}, {agents} agents)"
                );
            }
            Err(error) => {
                shared
                    .metrics
                    .reload_failures
                    .fetch_add(1, Ordering::Relaxed);
                eprintln!("writ serve: kept the running model: {error}");
                *shared
                    .reload_error
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error);
            }
        }
    }
}

/// The most a request body may be.
const BODY_LIMIT: usize = 1 << 20;

fn reply(status: StatusCode, body: &Value, request_id: Option<&str>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Some(id) = request_id.and_then(|id| hyper::header::HeaderValue::from_str(id).ok()) {
        headers.insert("x-request-id", id);
    }
    response
}

async fn handle(shared: &Shared, request: HttpRequest<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let id = request_id.as_deref();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let json_body = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bad = |message: String| {
        shared.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
        reply(StatusCode::BAD_REQUEST, &json!({"error": message}), id)
    };
    let response = match (&method, path.as_str()) {
        (&Method::GET, "/.well-known/authzen-configuration") => {
            reply(StatusCode::OK, &authzen::metadata(&shared.base), id)
        }
        (&Method::GET, "/v1/status") => reply(StatusCode::OK, &status(shared), id),
        // Ready to answer: without the drift watch, always; with it, once
        // its last good round is recent (three periods).
        (&Method::GET, "/v1/ready") => {
            let watch = shared
                .watch
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !watching(&watch) || watch.fresh() {
                reply(StatusCode::OK, &json!({"ready": true}), id)
            } else {
                let why = format!(
                    "the drift watch's last good round is older than three periods ({})",
                    watch.error.as_deref().unwrap_or("no error said")
                );
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"ready": false, "why": why}),
                    id,
                )
            }
        }
        (&Method::GET, "/metrics") => {
            let mut text = shared.metrics.text();
            if let Some(issuer) = &shared.issuer {
                issuer.metrics(&mut text);
            }
            let watch = shared
                .watch
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if watching(&watch) {
                watch.metrics(&mut text);
            }
            drop(watch);
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        (&Method::POST, endpoint) => {
            let known = matches!(
                endpoint,
                "/access/v1/evaluation"
                    | "/access/v1/evaluations"
                    | "/access/v1/search/subject"
                    | "/access/v1/search/action"
                    | "/v1/revoke"
                    | "/v1/credentials"
            );
            if !known {
                reply(
                    StatusCode::NOT_FOUND,
                    &json!({"error": format!("no endpoint `{endpoint}`")}),
                    id,
                )
            } else if !json_body {
                bad("the request must be `Content-Type: application/json`".to_string())
            } else {
                match Limited::new(request.into_body(), BODY_LIMIT)
                    .collect()
                    .await
                {
                    Err(error)
                        if error
                            .downcast_ref::<http_body_util::LengthLimitError>()
                            .is_some() =>
                    {
                        shared.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
                        reply(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            &json!({"error": format!("the body is over {BODY_LIMIT} bytes")}),
                            id,
                        )
                    }
                    Err(error) => bad(format!("the body could not be read: {error}")),
                    Ok(collected) => match serde_json::from_slice::<Value>(&collected.to_bytes()) {
                        Err(error) => bad(format!("the body is not JSON: {error}")),
                        Ok(body) => {
                            let answer = match endpoint {
                                "/access/v1/evaluation" => authzen::evaluation(shared, &body),
                                "/access/v1/evaluations" => authzen::evaluations(shared, &body),
                                "/access/v1/search/subject" => {
                                    authzen::search_subject(shared, &body)
                                }
                                "/access/v1/search/action" => authzen::search_action(shared, &body),
                                "/v1/credentials" => {
                                    let response = credentials::handle(shared, &body, id).await;
                                    shared.metrics.took(started.elapsed());
                                    return response;
                                }
                                _ => {
                                    return revoke(shared, &body, authorization.as_deref(), id)
                                        .await
                                }
                            };
                            match answer {
                                // One evaluation past the agent's rate.
                                Ok(value) if value["context"]["error"]["status"] == 429 => {
                                    let mut response =
                                        reply(StatusCode::TOO_MANY_REQUESTS, &value, id);
                                    // A rate says when; a spent budget
                                    // does not come back.
                                    if let Some(wait) =
                                        value["context"]["error"]["retry_after"].as_u64()
                                    {
                                        response.headers_mut().insert(
                                            hyper::header::RETRY_AFTER,
                                            hyper::header::HeaderValue::from(wait),
                                        );
                                    }
                                    response
                                }
                                Ok(value) => reply(StatusCode::OK, &value, id),
                                Err(authzen::BadRequest(message)) => bad(message),
                            }
                        }
                    },
                }
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no `{method} {path}`")}),
            id,
        ),
    };
    shared.metrics.took(started.elapsed());
    response
}

/// Does this server run the drift watch?
fn watching(watch: &reconcile::Watch) -> bool {
    watch.every > Duration::ZERO
}

/// `GET /v1/status`.
fn status(shared: &Shared) -> Value {
    let loaded = shared.loaded();
    let revoked: Vec<Value> = shared
        .revoked
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .map(|(agent, delegates)| json!({"agent": agent, "include_delegates": delegates}))
        .collect();
    let error = shared
        .reload_error
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let watch = {
        let watch = shared
            .watch
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if watching(&watch) {
            watch.status()
        } else {
            Value::Null
        }
    };
    json!({
        "project": shared.project,
        "generation": loaded.generation,
        "loaded_at": loaded.loaded_at,
        "agents": loaded.engine.model().agents.len(),
        "reload_error": error,
        "revoked": revoked,
        "watch": watch,
        "decisions": shared.decisions.load(Ordering::Relaxed),
        "credentials": shared.issuer.as_ref().map(|issuer| issuer.status()),
    })
}

/// `POST /v1/revoke` `{"agent": A, "include_delegates": bool, "lift":
/// bool}`: refuses the agent (and its delegates) from the next request,
/// in this server; with `[serve] revoke_in_providers`, also in every live
/// provider, as `writ revoke` does, so that every replica's drift watch
/// sees it. Needs the admin token.
async fn revoke(
    shared: &Shared,
    body: &Value,
    authorization: Option<&str>,
    id: Option<&str>,
) -> Response<Full<Bytes>> {
    let Some(token) = &shared.admin_token else {
        return reply(
            StatusCode::FORBIDDEN,
            &json!({"error": "revocation through the API is off: set `[serve] admin_token_env` in writ.toml"}),
            id,
        );
    };
    let given = authorization.and_then(|a| a.strip_prefix("Bearer "));
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return reply(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "`Authorization: Bearer TOKEN` with the admin token is required"}),
            id,
        );
    }
    let Some(agent) = body.get("agent").and_then(Value::as_str) else {
        shared.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
        return reply(
            StatusCode::BAD_REQUEST,
            &json!({"error": "`agent` is required"}),
            id,
        );
    };
    let loaded = shared.loaded();
    if loaded.engine.agent(agent).is_none() {
        return reply(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no agent `{agent}` in the source")}),
            id,
        );
    }
    let delegates = body.get("include_delegates").and_then(Value::as_bool) == Some(true);
    let lift = body.get("lift").and_then(Value::as_bool) == Some(true);
    let (said, listed) = {
        let mut revoked = shared
            .revoked
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let said = match lift {
            true => {
                revoked.remove(agent);
                format!("lifted the run-time revocation of `{agent}`")
            }
            false => {
                // Never narrower than an earlier revocation of the same agent.
                *revoked.entry(agent.to_string()).or_insert(false) |= delegates;
                shared.metrics.revocations.fetch_add(1, Ordering::Relaxed);
                format!(
                    "`{agent}`{} refused from the next request, by this server{}",
                    if delegates { " and its delegates" } else { "" },
                    if shared.revoke_in_providers {
                        ", and in the providers"
                    } else {
                        "; `writ revoke` cuts it off in the providers"
                    }
                )
            }
        };
        let listed: Vec<String> = revoked.keys().cloned().collect();
        (said, listed)
    };
    eprintln!("writ serve: {said}");
    let _ = shared.audit.send(
        json!({"time": now(), "revocation": {"agent": agent, "include_delegates": delegates, "lift": lift}, "said": said})
            .to_string(),
    );
    let mut answer = json!({"said": said, "revoked": listed});
    if !shared.revoke_in_providers {
        return reply(StatusCode::OK, &answer, id);
    }
    // The providers, as `writ revoke` does: each on its own, from the
    // model the agent was found in.
    let model = loaded.engine.model();
    let mut agents = vec![agent.to_string()];
    if delegates {
        if let Some(root) = model.agent_id(agent) {
            for (other, candidate) in model.agents.iter().enumerate() {
                if model.ancestors(other).contains(&root) {
                    agents.push(candidate.name.clone());
                }
            }
        }
    }
    // On a task of its own: a client that leaves, or a load balancer that
    // gives up, never stops the brake halfway (holding the providers'
    // locks until their leases end).
    let (path, brake_agents, brake_loaded) = (shared.path.clone(), agents.clone(), loaded.clone());
    let task = tokio::spawn(async move {
        let project = crate::project::load(&path)
            .map_err(|e| format!("cannot read the project's settings: {e}"))?;
        let model = brake_loaded.engine.model();
        let scope = crate::live::Scope::new(model, &[]).map_err(|e| e.to_string())?;
        let mark = writ_provider_core::RevokeMark {
            at: crate::clock::now_rfc3339(),
            by: Some("writ serve (POST /v1/revoke)".to_string()),
        };
        let mut lines = Vec::new();
        let brake = crate::brake::Brake {
            project: &project,
            model,
            sources: &brake_loaded.sources,
            agents: &brake_agents,
            lift,
            only: &[],
            scope: &scope,
            broken: false,
            mark: &mark,
        };
        crate::brake::pull(&mut lines, &brake)
            .await
            .map(|failed| (failed, String::from_utf8_lossy(&lines).into_owned()))
            .map_err(|e| e.to_string())
    });
    let pulled = match tokio::time::timeout(Duration::from_secs(120), task).await {
        Ok(Ok(pulled)) => pulled,
        Ok(Err(error)) => Err(format!("the brake stopped inside writ: {error}")),
        Err(_) => Err(
            "the providers did not answer within 120 s: the brake goes on, and its outcome is in the server's log"
                .to_string(),
        ),
    };
    let (status, failed, lines) = match pulled {
        Ok((failed, text)) => (
            if failed {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::OK
            },
            failed,
            text.lines().map(str::to_string).collect::<Vec<_>>(),
        ),
        Err(error) => (StatusCode::BAD_GATEWAY, true, vec![error]),
    };
    for line in &lines {
        eprintln!("writ serve: {line}");
    }
    let _ = shared.audit.send(
        json!({"time": now(), "revocation_in_providers": {"agents": agents, "lift": lift, "failed": failed, "said": lines}})
            .to_string(),
    );
    answer["providers"] = json!({"failed": failed, "said": lines});
    reply(status, &answer, id)
}

/// Compares two secrets in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
