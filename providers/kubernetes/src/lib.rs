//! writ's Kubernetes provider. It reads service accounts, Roles,
//! ClusterRoles, their bindings and the metadata of service-account token
//! Secrets with paginated `list` calls (`limit`/`continue`, 1,000 objects a
//! page), and carries out one planned change at a time, idempotently.
//!
//! Writes use optimistic concurrency: every update and delete reads the
//! object first, refuses unless its labels say it is this project's, and
//! sends the `resourceVersion` it read, so that a write racing another
//! writer fails with a conflict instead of overwriting it; the provider then
//! reads again and retries. A binding whose `roleRef` changes is deleted and
//! created again, since the API forbids changing it.
//!
//! The connection comes from a kubeconfig: the file named in writ.toml, or
//! the standard rules (`KUBECONFIG`, `~/.kube/config`, in-cluster), and the
//! context named in writ.toml or the current one.

// A library never prints: what it has to say goes to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod apply;
mod inventory;
mod kinds;
mod lock;
mod observe;
mod revoke;
mod tokens;

pub use tokens::SHORTEST_SECONDS;

pub use kinds::Kind;

use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;
use writ_compiler::plan::{Change, Identity};
use writ_compiler::resource::Resource;
use writ_provider_core::{
    BoxFuture, ErrorClass, Lease, LockRecord, Provider, ProviderError, Release, RequestStats,
    Requester, Retrier, Revocation, RevokeMark,
};

/// How to reach one cluster (from `[provider.kubernetes.NAME]` in writ.toml).
#[derive(Debug, Clone, Default)]
pub struct KubernetesSettings {
    /// The kubeconfig context; the file's current context when absent.
    pub context: Option<String>,
    /// A kubeconfig file; the standard rules when absent.
    pub kubeconfig: Option<PathBuf>,
    /// The namespace of writ's inventory record and lock (the binary
    /// requires it; `default` for a provider built without it, in tests).
    pub inventory_namespace: Option<String>,
    /// The SHA-256 of the cluster's CA certificate (DER, hex, optionally
    /// `sha256:`-prefixed and with colons): the kubeconfig's CA must be it,
    /// or writ talks to nothing.
    pub ca_sha256: Option<String>,
}

/// The SHA-256 of a certificate, in lower-case hex.
fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where the inventory record lives when writ.toml does not say.
pub const DEFAULT_INVENTORY_NAMESPACE: &str = "default";

pub struct KubernetesProvider {
    address: String,
    project: String,
    /// The API server the kubeconfig points at.
    server: String,
    client: kube::Client,
    requests: Requester,
    /// Objects a list page asks for.
    page_size: u32,
    /// The namespace of the project's inventory record.
    inventory_namespace: String,
    /// The record, once read (see `inventory.rs`).
    inventory: std::sync::Mutex<Option<writ_compiler::ownership::kubernetes::Inventory>>,
    /// What this apply made or deleted, written into the record at its end.
    pending: std::sync::Mutex<Vec<inventory::Pending>>,
}

/// How writ writes: as field manager `writ`.
pub(crate) fn writ_params() -> kube::api::PostParams {
    kube::api::PostParams {
        field_manager: Some("writ".to_string()),
        ..kube::api::PostParams::default()
    }
}

/// How many times a write that lost a race (409) is read and tried again.
const CONFLICT_ATTEMPTS: u32 = 5;

/// Requests in flight to one API server.
const IN_FLIGHT: usize = 4;

impl KubernetesProvider {
    /// Connects to one cluster. Reads the kubeconfig (and runs its
    /// credential plugin, if it has one) but sends nothing to the cluster.
    /// Retries spend `retrier`'s budget, which the whole run shares.
    pub async fn connect(
        address: &str,
        project: &str,
        settings: &KubernetesSettings,
        retrier: &Retrier,
    ) -> Result<KubernetesProvider, ProviderError> {
        let options = KubeConfigOptions {
            context: settings.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &settings.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| {
                    ProviderError::permanent(format!(
                        "cannot read the kubeconfig `{}`: {e}",
                        path.display()
                    ))
                })?;
                kube::Config::from_custom_kubeconfig(file, &options).await
            }
            None if settings.context.is_some() => kube::Config::from_kubeconfig(&options).await,
            None => {
                return kube::Config::infer()
                    .await
                    .map_err(|e| {
                        ProviderError::permanent(format!(
                            "no Kubernetes connection for `{address}`: {e}; set `context` (and `kubeconfig`) in `[provider.kubernetes.…]` of writ.toml, or `KUBECONFIG`"
                        ))
                    })
                    .and_then(|config| KubernetesProvider::with_config(address, project, settings, config, retrier))
            }
        }
        .map_err(|e| {
            let context = settings
                .context
                .as_deref()
                .map(|c| format!(" (context `{c}`)"))
                .unwrap_or_default();
            ProviderError::permanent(format!(
                "cannot use the kubeconfig for `{address}`{context}: {e}"
            ))
        })?;
        KubernetesProvider::with_config(address, project, settings, config, retrier)
    }

    fn with_config(
        address: &str,
        project: &str,
        settings: &KubernetesSettings,
        mut config: kube::Config,
        retrier: &Retrier,
    ) -> Result<KubernetesProvider, ProviderError> {
        // writ retries with its own budget; the client must not retry as well.
        config.default_retry = false;
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let cas: Vec<String> = config
            .root_cert
            .iter()
            .flatten()
            .map(|der| fingerprint(der))
            .collect();
        if let Some(pinned) = &settings.ca_sha256 {
            let pinned = pinned
                .trim()
                .trim_start_matches("sha256:")
                .replace(':', "")
                .to_ascii_lowercase();
            if !cas.contains(&pinned) {
                let found = if cas.is_empty() {
                    "the kubeconfig gives no CA certificate".to_string()
                } else {
                    format!("the kubeconfig's CA is sha256:{}", cas.join(", sha256:"))
                };
                return Err(ProviderError::permanent(format!(
                    "`{address}`: writ.toml pins the cluster's CA to sha256:{pinned}, but {found}: the context points at another cluster"
                )));
            }
        }
        // Credentials go to the API server: never in clear over a network.
        writ_provider_core::check_endpoint(&server).map_err(|e| {
            ProviderError::permanent(format!("`{address}`: the kubeconfig's server {e}"))
        })?;
        let client = kube::Client::try_from(config).map_err(|e| {
            ProviderError::permanent(format!("cannot build a client for `{address}`: {e}"))
        })?;
        Ok(KubernetesProvider {
            address: address.to_string(),
            project: project.to_string(),
            server: match cas.first() {
                // Two clusters behind one URL (a port-forward) differ here.
                Some(ca) => format!("{server} (CA sha256:{})", &ca[..16.min(ca.len())]),
                None => server,
            },
            client,
            requests: Requester::new(retrier, IN_FLIGHT),
            page_size: 1000,
            inventory_namespace: settings
                .inventory_namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_INVENTORY_NAMESPACE.to_string()),
            inventory: std::sync::Mutex::new(None),
            pending: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Objects per list page (1,000 unless set; tests use small pages).
    pub fn with_page_size(mut self, page_size: u32) -> KubernetesProvider {
        self.page_size = page_size.max(1);
        self
    }

    /// Sends one request through the provider's [`Requester`].
    async fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<T, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        self.requests
            .send(|| {
                let future = call();
                async move { future.await.map_err(|e| classify(&self.address, what, e)) }
            })
            .await
    }
}

/// The reasons of the API's `Status` (metav1 `StatusReason`) that writ acts
/// on; the others are kept as text in [`ProviderError::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// 409: the object exists already.
    AlreadyExists,
    /// 409: the `resourceVersion` sent is not the object's any more.
    Conflict,
    /// 404.
    NotFound,
    /// 410: a list's `continue` token has expired.
    Expired,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::NotFound => "NotFound",
            Reason::Expired => "Expired",
        }
    }

    /// The reason of a failed call, if it is one writ acts on. A bare
    /// status counts too: servers may leave the reason out.
    pub(crate) fn of(error: &ProviderError) -> Option<Reason> {
        let named = [
            Reason::AlreadyExists,
            Reason::Conflict,
            Reason::NotFound,
            Reason::Expired,
        ]
        .into_iter()
        .find(|reason| error.has_code(reason.as_str()));
        named.or(match error.status {
            Some(404) => Some(Reason::NotFound),
            Some(410) => Some(Reason::Expired),
            _ => None,
        })
    }

    /// An error of writ's own with this reason (a write that kept losing
    /// races, say).
    pub(crate) fn error(self, status: u16, message: String) -> ProviderError {
        ProviderError::new(ErrorClass::Conflict, Some(self.as_str()), message).with_status(status)
    }
}

/// Classes a client error: throttling, server errors and connection failures
/// are transient; a conflict (409) is a conflict; the rest is permanent.
fn classify(address: &str, what: &str, error: kube::Error) -> ProviderError {
    match error {
        kube::Error::Api(status) => {
            let class = match status.code {
                429 | 500 | 502 | 503 | 504 => ErrorClass::Transient,
                409 => ErrorClass::Conflict,
                _ => ErrorClass::Permanent,
            };
            let hint = match status.code {
                401 => ": the cluster did not accept the credentials; check the kubeconfig context",
                403 => ": writ's identity may not do this; grant it in the cluster's RBAC",
                _ => "",
            };
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            ProviderError::new(
                class,
                Some(&status.reason)
                    .filter(|r| !r.is_empty())
                    .map(String::as_str),
                format!("{address}: {what}: {message} ({}){hint}", status.code),
            )
            .with_status(status.code)
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            ProviderError::new(
                ErrorClass::Transient,
                None,
                format!("{address}: {what}: cannot reach the API server: {error}"),
            )
        }
        kube::Error::Auth(_) => ProviderError::permanent(format!(
            "{address}: {what}: cannot get credentials from the kubeconfig: {error}"
        )),
        other => ProviderError::permanent(format!("{address}: {what}: {other}")),
    }
}

impl KubernetesProvider {
    /// The API server, asked for its version: it answers, and it is the
    /// one the kubeconfig names.
    async fn identify_server(&self) -> Result<Identity, ProviderError> {
        self.call("asking the API server its version", || {
            self.client.apiserver_version()
        })
        .await?;
        Ok(Identity {
            provider: self.address.clone(),
            place: self.server.clone(),
            caller: None,
        })
    }
}

impl Provider for KubernetesProvider {
    fn address(&self) -> &str {
        &self.address
    }

    fn issue<'a>(
        &'a self,
        request: &'a writ_provider_core::Issue,
    ) -> BoxFuture<'a, Result<writ_provider_core::Issued, ProviderError>> {
        Box::pin(self.request_token(request))
    }

    fn review<'a>(
        &'a self,
        token: &'a str,
        audiences: &'a [String],
    ) -> BoxFuture<'a, Result<writ_provider_core::Reviewed, ProviderError>> {
        Box::pin(self.review_token(token, audiences))
    }

    fn identify(&self) -> BoxFuture<'_, Result<Identity, ProviderError>> {
        Box::pin(self.identify_server())
    }

    fn lock<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.take_lock(lease))
    }

    fn unlock<'a>(
        &'a self,
        holder: &'a str,
        release: Release<'a>,
    ) -> BoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(self.release_lock(holder, release))
    }

    fn lock_record(&self) -> BoxFuture<'_, Result<LockRecord, ProviderError>> {
        Box::pin(self.read_lock())
    }

    fn stats(&self) -> RequestStats {
        self.requests.stats()
    }

    fn observe(&self) -> BoxFuture<'_, Result<Vec<Resource>, ProviderError>> {
        Box::pin(observe::observe(self))
    }

    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(apply::apply(self, change))
    }

    fn finish(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(self.write_pending())
    }

    fn revoke<'a>(
        &'a self,
        agent: &'a str,
        mark: &'a RevokeMark,
        _users: &'a [String],
    ) -> BoxFuture<'a, Revocation> {
        Box::pin(self.revoke_agent(agent, mark))
    }

    fn lift<'a>(&'a self, agent: &'a str) -> BoxFuture<'a, Revocation> {
        Box::pin(self.lift_agent(agent))
    }
}
