//! What every writ provider shares: the [`Provider`] trait (observe, apply
//! one change, revoke and lift one agent), and the machinery for talking to
//! live systems safely: errors classed as transient, conflict or permanent
//! ([`ProviderError`]); one [`Requester`] per provider through which every
//! request goes, which counts requests, keeps a limit on requests in flight
//! ([`Limiter`]) and retries the transient failures only, with exponential
//! backoff and full jitter, under one budget shared by the whole run
//! ([`Retrier`], created once per run and handed to every provider).
//!
//! Providers are the only code in writ that performs network I/O; the
//! compiler never does.

// A library never prints: what it has to say goes to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod retry;

pub use retry::{Limiter, Retrier, RetryPolicy};

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use writ_compiler::plan::{Change, Identity};
use writ_compiler::resource::Resource;

/// A boxed future, so that providers of different kinds fit one trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a failure should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttling, timeouts, dropped connections, 5xx, and a principal not
    /// yet visible after creation (eventual consistency): retry.
    Transient,
    /// Someone else changed the object between read and write (or it already
    /// exists): re-read and plan again rather than blindly retry.
    Conflict,
    /// Bad request, access denied, not found where it must exist: stop.
    Permanent,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub class: ErrorClass,
    /// The HTTP status, where the service answered one.
    pub status: Option<u16>,
    /// The service's own error code, where it gave one (AWS `Throttling`,
    /// `NoSuchEntity`; a Kubernetes status reason such as `AlreadyExists`).
    pub code: Option<String>,
    pub message: String,
}

impl ProviderError {
    pub fn new(class: ErrorClass, code: Option<&str>, message: impl Into<String>) -> ProviderError {
        ProviderError {
            class,
            status: None,
            code: code.map(str::to_string),
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorClass::Permanent, None, message)
    }

    pub fn with_status(mut self, status: u16) -> ProviderError {
        self.status = Some(status);
        self
    }

    pub fn is_transient(&self) -> bool {
        self.class == ErrorClass::Transient
    }

    /// Did the service answer with this error code?
    pub fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// An error and its causes in one line (`a: b: c`), a cause left out where
/// the text before it already says it.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What a provider reports about the requests it sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Requests sent, retries included.
    pub requests: usize,
    /// Of those, how many were retries.
    pub retries: usize,
}

impl std::ops::Sub for RequestStats {
    type Output = RequestStats;

    fn sub(self, earlier: RequestStats) -> RequestStats {
        RequestStats {
            requests: self.requests.saturating_sub(earlier.requests),
            retries: self.retries.saturating_sub(earlier.retries),
        }
    }
}

/// Sends one provider's requests: each counted, within the provider's
/// in-flight limit, and retried while it fails transiently, under the run's
/// shared [`Retrier`].
#[derive(Debug, Clone)]
pub struct Requester {
    retrier: Retrier,
    limiter: Limiter,
    requests: Arc<AtomicUsize>,
    retries: Arc<AtomicUsize>,
}

impl Requester {
    /// A requester that spends `retrier`'s budget (shared with every other
    /// provider of the run) and sends at most `in_flight` requests at once.
    pub fn new(retrier: &Retrier, in_flight: usize) -> Requester {
        Requester {
            retrier: retrier.clone(),
            limiter: Limiter::new(in_flight),
            requests: Arc::new(AtomicUsize::new(0)),
            retries: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Requests sent so far, and how many of them were retries.
    pub fn stats(&self) -> RequestStats {
        RequestStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }

    /// Sends one request (`call` makes it anew for each attempt).
    pub async fn send<T, F, Fut>(&self, call: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        self.send_retrying(call, |_| false).await
    }

    /// Sends one request, retrying also the failures `retryable` names (an
    /// IAM principal not yet visible right after it was created, say).
    pub async fn send_retrying<T, F, Fut>(
        &self,
        mut call: F,
        retryable: impl Fn(&ProviderError) -> bool,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut attempts = 0usize;
        let result = self
            .retrier
            .run(
                || {
                    attempts += 1;
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    let request = call();
                    async move {
                        let _slot = self.limiter.slot().await;
                        request.await
                    }
                },
                retryable,
            )
            .await;
        self.retries
            .fetch_add(attempts.saturating_sub(1), Ordering::Relaxed);
        result
    }
}

/// The async runtime a live command runs on: one thread, since writ's
/// requests are few and wait on the network.
pub fn runtime() -> Result<tokio::runtime::Runtime, ProviderError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProviderError::permanent(format!("cannot start the async runtime: {e}")))
}

/// An endpoint writ may send credentials to: `https://`, or `http://` on
/// the loopback interface (a local test server), nothing else.
pub fn check_endpoint(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{url}` is not a URL (expected `https://host…`)"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err(format!("`{url}` names no host"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" => {
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(format!("`{url}` is plain HTTP to `{host}`: credentials would cross the network in clear; use `https://` (plain HTTP is allowed only on the loopback interface)"))
            }
        }
        other => Err(format!("`{url}`: `{other}` is not HTTP or HTTPS")),
    }
}

/// A run's claim on a provider instance: apply, revoke and lift take it
/// before they change anything, so that two runs never interleave their
/// changes. Times are RFC 3339, UTC, as the binary's clock says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it: the actor, the host and the process, unique per run.
    pub holder: String,
    pub now: String,
    /// Until when; renewed while the run lasts.
    pub expires: String,
    pub seconds: u32,
    /// A renewal of a lock this run holds: it never takes a lock anew (one
    /// that is gone or someone else's is an error: the run lost it).
    pub renewing: bool,
}

impl Lease {
    /// Has a lease that runs until `expires` ended by `now`? Both are RFC
    /// 3339 in UTC with the same precision, so they compare as text.
    pub fn ended(expires: &str, now: &str) -> bool {
        expires < now
    }

    /// The refusal when another run holds a provider's lock.
    pub fn held(address: &str, holder: &str, until: &str) -> ProviderError {
        ProviderError::new(
            ErrorClass::Conflict,
            Some("Locked"),
            format!("{address}: another writ run holds the project's lock ({holder}, until {until}); wait for it to finish, or for its lease to end"),
        )
    }

    /// The error when this run's lock is gone (released or taken over).
    pub fn lost(address: &str) -> ProviderError {
        ProviderError::new(
            ErrorClass::Conflict,
            Some("Locked"),
            format!("{address}: this run lost the project's lock (it was released or taken over); run again"),
        )
    }
}

/// How a run gives its lock back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release<'a> {
    /// The run brought everything in its scope to the source: the lock goes,
    /// and with it any record of a run that stopped partway.
    Converged,
    /// The run did not apply a plan, or not all of one (revoke, lift, a
    /// refused or unconfirmed apply): the lock goes; a record of an
    /// earlier run that stopped partway stays.
    Unchanged,
    /// The run stopped before it finished: the lock goes, and a record of
    /// what it left stays (written even when the run lost the lock), so
    /// that the next plans call what it left half-done an interrupted
    /// apply rather than drift, until a run converges.
    Interrupted(&'a Unfinished),
}

/// What a run that stopped partway left, as the provider keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    /// Who stopped where, in words (only letters, digits, spaces and
    /// `_.:/=+-@`, so that an IAM tag holds it as written).
    pub what: String,
    /// The agents whose changes it did not finish; `None`: any agent.
    pub agents: Option<Vec<String>>,
}

/// A lock's holder and the end of its lease (RFC 3339, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub holder: String,
    pub until: String,
}

/// The project's lock as it stands in one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockRecord {
    /// Held by a run going on now, or left by one that never gave it back
    /// (killed, or lost its connection) once its lease has ended.
    pub held: Option<Held>,
    /// The record of a run that stopped partway.
    pub unfinished: Option<Unfinished>,
}

impl LockRecord {
    /// The lease end a Kubernetes Lease kept only as a record is given:
    /// ended for every clock.
    pub const ENDED: &'static str = "1970-01-01T00:00:00Z";

    /// The record a run leaves when it takes over the lock of one that
    /// never gave it back.
    pub fn abandoned(holder: &str, until: &str) -> Unfinished {
        Unfinished {
            what: format!(
                "the run of {holder} never gave its lock back: killed or cut off: its lease ended at {until}"
            ),
            agents: None,
        }
    }
}

impl Unfinished {
    /// This record and a later one together: what either run left.
    pub fn and(&self, later: &Unfinished) -> Unfinished {
        Unfinished {
            what: format!("{} and then {}", self.what, later.what),
            agents: match (&self.agents, &later.agents) {
                (Some(first), Some(then)) => {
                    let mut both: Vec<String> = first.iter().chain(then).cloned().collect();
                    both.sort();
                    both.dedup();
                    Some(both)
                }
                _ => None,
            },
        }
    }
}

/// When an agent is revoked, and by whom if writ was told: kept with the
/// revocation until it is lifted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeMark {
    /// RFC 3339, UTC.
    pub at: String,
    /// Who ran `writ revoke`, as they said (`WRIT_ACTOR`, the CI actor or
    /// the login name): a record, not an authenticated identity.
    pub by: Option<String>,
}

/// What `writ revoke` (or `--lift`) did to one agent in one provider, in
/// words, line by line; `failed` when a step could not be done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocation {
    pub lines: Vec<String>,
    pub failed: bool,
}

impl Revocation {
    pub fn said(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    pub fn failed(&mut self, line: impl Into<String>) {
        self.failed = true;
        self.lines.push(line.into());
    }
}

/// One provider instance (`aws.prod`): reads what it manages and what it
/// can discover, carries out one change at a time, and cuts an agent off.
pub trait Provider: Send + Sync {
    /// `KIND.NAME`, as the source and the plan write it.
    fn address(&self) -> &str;

    /// Requests this provider has sent so far.
    fn stats(&self) -> RequestStats;

    /// Where this provider instance really is (an AWS account, a cluster),
    /// asked of the provider itself: the first request of every run, so
    /// that nothing is read or changed in the wrong place. An error when it
    /// is not where the source says.
    fn identify(&self) -> BoxFuture<'_, Result<Identity, ProviderError>>;

    /// Everything writ manages or inventories, as read-only calls.
    fn observe(&self) -> BoxFuture<'_, Result<Vec<Resource>, ProviderError>>;

    /// Carries out one change. Must be idempotent: an interrupted apply is
    /// resumed by planning again and applying what is left.
    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ProviderError>>;

    /// Takes (or renews) the project's lock on this provider instance for
    /// `lease`. An error that names the holder when another run holds it
    /// and its lease has not ended. A provider without a lock takes none.
    fn lock<'a>(&'a self, _lease: &'a Lease) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }

    /// Gives the lock back, if `holder` holds it, as `release` says:
    /// whether it did.
    fn unlock<'a>(
        &'a self,
        _holder: &'a str,
        _release: Release<'a>,
    ) -> BoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(async { Ok(false) })
    }

    /// The project's lock as it stands: read by plans, so that what an
    /// unfinished run left is told apart from drift.
    fn lock_record(&self) -> BoxFuture<'_, Result<LockRecord, ProviderError>> {
        Box::pin(async { Ok(LockRecord::default()) })
    }

    /// Called once when an apply has carried out its changes (or stopped at
    /// a failure): a provider that keeps a record of what it made writes it
    /// here, in one write rather than one per change.
    fn finish(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }

    /// The emergency brake: cuts `agent` off at once, outside any plan, so
    /// that later plans keep it cut off until lifted. `users` are the
    /// identities the source says the agent signs in as with long-lived
    /// credentials in this provider (IAM users): their keys are disabled,
    /// and nobody else's.
    fn revoke<'a>(
        &'a self,
        agent: &'a str,
        mark: &'a RevokeMark,
        users: &'a [String],
    ) -> BoxFuture<'a, Revocation>;

    /// Removes a revocation; the next apply gives the access back.
    fn lift<'a>(&'a self, agent: &'a str) -> BoxFuture<'a, Revocation>;

    /// What the provider records of its identities' last use, without
    /// counts (IAM's last-accessed data), one answer per identity asked
    /// for (an AWS role's ARN), in order: `None` for one that does not
    /// exist. A provider that records no such thing says so as an error.
    fn last_accessed<'a>(
        &'a self,
        _identities: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<writ_compiler::usage::LastAccessed>>, ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::permanent(format!(
                "`{}` records no last use of its identities",
                self.address()
            )))
        })
    }

    /// Issues a short-lived credential of one agent's identity here, for
    /// `writ serve` (`POST /v1/credentials`). A provider that cannot says
    /// so as an error.
    fn issue<'a>(&'a self, _request: &'a Issue) -> BoxFuture<'a, Result<Issued, ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::permanent(format!(
                "`{}` does not issue credentials",
                self.address()
            )))
        })
    }

    /// Asks the provider who holds `token` (a Kubernetes service account's
    /// token, through a TokenReview), for `writ serve`'s proofs of a
    /// workload: the identity it authenticated, or why not. Only tokens
    /// meant for one of `audiences` are accepted.
    fn review<'a>(
        &'a self,
        _token: &'a str,
        _audiences: &'a [String],
    ) -> BoxFuture<'a, Result<Reviewed, ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::permanent(format!(
                "`{}` does not review tokens",
                self.address()
            )))
        })
    }
}

/// A credential to issue: of which identity, for how long, narrowed how,
/// and marked with what.
#[derive(Debug, Clone)]
pub struct Issue {
    /// The agent whose credential it is.
    pub agent: String,
    /// Its identity in the provider: an IAM role's ARN, a service account
    /// (`NAMESPACE/NAME`), a GCP service account's email.
    pub identity: String,
    /// How long it lives, in seconds, which the provider honours exactly
    /// or refuses.
    pub seconds: u64,
    /// AWS: the session policy that narrows the session (JSON).
    pub policy: Option<String>,
    /// Kubernetes: the audiences the token is for (the API server's own
    /// when empty).
    pub audiences: Vec<String>,
    /// GCP: the OAuth scopes of the access token.
    pub scopes: Vec<String>,
    /// What marks it, attributable to a chain of delegation: AWS session
    /// tags.
    pub tags: Vec<(String, String)>,
    /// AWS: the session's name.
    pub session_name: String,
}

/// An issued credential, as the provider answered it.
#[derive(Clone)]
pub struct Issued {
    /// The secret parts (access keys and session token; a token).
    pub credentials: serde_json::Value,
    /// When it stops working (RFC 3339), as the provider says.
    pub expires_at: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Issued {{ credentials: <hidden>, expires_at: {} }}",
            self.expires_at
        )
    }
}

/// Who a token proved to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reviewed {
    /// A service account: namespace and name, and the pod the token is
    /// bound to (a projected token's), if any.
    ServiceAccount {
        namespace: String,
        name: String,
        pod: Option<String>,
    },
    /// Someone else (a user's token): writ issues nothing for it.
    Other { username: String },
    /// The provider did not accept the token, and why.
    Refused { why: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn quick(budget: u32) -> Retrier {
        Retrier::new(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            budget,
        })
    }

    fn throttled() -> ProviderError {
        ProviderError::new(ErrorClass::Transient, Some("Throttling"), "slow down")
    }

    #[tokio::test]
    async fn requests_are_counted_with_their_retries() {
        let requests = Requester::new(&quick(10), 2);
        let mut failures = 1;
        let answer = requests
            .send(|| {
                let fail = failures > 0;
                failures -= 1;
                async move {
                    if fail {
                        Err(throttled())
                    } else {
                        Ok(7)
                    }
                }
            })
            .await;
        assert_eq!(answer.unwrap(), 7);
        assert_eq!(
            requests.stats(),
            RequestStats {
                requests: 2,
                retries: 1
            }
        );
        let before = requests.stats();
        let permanent: Result<(), _> = requests
            .send(|| async { Err(ProviderError::permanent("denied").with_status(403)) })
            .await;
        let error = permanent.unwrap_err();
        assert_eq!(error.status, Some(403));
        assert_eq!(
            requests.stats() - before,
            RequestStats {
                requests: 1,
                retries: 0
            }
        );
    }

    #[tokio::test]
    async fn providers_of_one_run_share_one_retry_budget() {
        let run = quick(2);
        let (aws, cluster) = (Requester::new(&run, 4), Requester::new(&run, 4));
        let always = || async { Err::<(), _>(throttled()) };
        assert!(aws.send(always).await.is_err());
        // Two retries spent by the first provider: none left for the second.
        assert_eq!(aws.stats().retries, 2);
        assert!(cluster.send(always).await.is_err());
        assert_eq!(cluster.stats().requests, 1);
        assert_eq!(run.retries(), 2);
    }

    #[test]
    fn an_error_and_its_causes_read_as_one_line() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "request failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Outer(std::io::Error::other("connection reset"));
        assert_eq!(error_chain(&error), "request failed: connection reset");
    }
}
