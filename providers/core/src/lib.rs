//! What every writ provider shares: the [`Provider`] trait, the
//! [`SnapshotProvider`] (recorded state behind the same trait), and the
//! machinery for talking to live systems safely: errors classed as
//! transient, conflict or permanent ([`ProviderError`]); retries of the
//! transient ones only, with exponential backoff and full jitter, under a
//! budget shared by a whole run ([`Retrier`]); and a limit on requests in
//! flight ([`Limiter`]).
//!
//! Providers are the only code in writ that performs network I/O; the
//! compiler never does. A provider does two things: observe (read-only) and
//! apply one change, idempotently.

mod retry;

pub use retry::{Limiter, Retrier, RetryPolicy};

use std::future::Future;
use std::pin::Pin;
use writ_compiler::plan::Change;
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
    /// The service's error code, where it gave one (`Throttling`,
    /// `NoSuchEntity`, …).
    pub code: Option<String>,
    pub message: String,
}

impl ProviderError {
    pub fn new(class: ErrorClass, code: Option<&str>, message: impl Into<String>) -> ProviderError {
        ProviderError {
            class,
            code: code.map(str::to_string),
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorClass::Permanent, None, message)
    }

    pub fn is_transient(&self) -> bool {
        self.class == ErrorClass::Transient
    }
}

/// What a provider reports about one observe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObserveStats {
    /// Requests sent, retries included.
    pub requests: usize,
    pub retries: usize,
}

/// One provider instance (`aws.prod`): reads what it manages and what it
/// can discover, and carries out one change at a time.
pub trait Provider: Send + Sync {
    /// `KIND.NAME`, as the source and the plan write it.
    fn address(&self) -> &str;

    /// Everything writ manages or inventories, as read-only calls.
    fn observe(&self) -> BoxFuture<'_, Result<(Vec<Resource>, ObserveStats), ProviderError>>;

    /// Carries out one change. Must be idempotent: an interrupted apply is
    /// resumed by planning again and applying what is left.
    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// Recorded state behind the [`Provider`] trait: observes what a snapshot
/// holds, and refuses to apply.
pub struct SnapshotProvider {
    address: String,
    resources: Vec<Resource>,
}

impl SnapshotProvider {
    pub fn new(address: impl Into<String>, resources: Vec<Resource>) -> SnapshotProvider {
        SnapshotProvider {
            address: address.into(),
            resources,
        }
    }
}

impl Provider for SnapshotProvider {
    fn address(&self) -> &str {
        &self.address
    }

    fn observe(&self) -> BoxFuture<'_, Result<(Vec<Resource>, ObserveStats), ProviderError>> {
        let resources = self.resources.clone();
        Box::pin(async move { Ok((resources, ObserveStats::default())) })
    }

    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::permanent(format!(
                "`{}` is a recorded snapshot: `{}` cannot be applied to it; configure the provider in writ.toml",
                self.address, change.address
            )))
        })
    }
}
