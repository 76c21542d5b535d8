//! writ's AWS IAM provider. It reads what writ manages and inventories with
//! whole-account calls by the page (`GetAccountAuthorizationDetails` and
//! `ListRoles`, 1,000 objects a page; users and their keys), and carries out
//! one planned change at a time, idempotently.
//!
//! It must never touch an object writ does not own: before it updates or
//! deletes a role or a policy it reads the object's path and tags again and
//! refuses if they are not the project's. Credentials come from the standard
//! AWS chain only, never from writ's configuration.

mod apply;
mod observe;
mod revoke;

use aws_sdk_iam::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_iam::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_iam::error::{BoxError, ProvideErrorMetadata, SdkError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use writ_compiler::plan::Change;
use writ_compiler::resource::Resource;
use writ_provider_core::{
    BoxFuture, ErrorClass, Limiter, ObserveStats, Provider, ProviderError, Retrier, RetryPolicy,
};

/// How to reach one AWS account (from `[provider.aws.NAME]` in writ.toml).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// A local IAM API (moto) for tests.
    pub endpoint_url: Option<String>,
}

pub struct AwsProvider {
    address: String,
    project: String,
    /// The account the source declares; observing another one is an error.
    account: String,
    partition: String,
    client: aws_sdk_iam::Client,
    retrier: Retrier,
    limiter: Limiter,
    requests: Arc<AtomicUsize>,
}

/// Counts every request the SDK sends (retries included).
#[derive(Debug)]
struct CountRequests(Arc<AtomicUsize>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "writ-count-requests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl AwsProvider {
    /// Connects to one account. Nothing is sent until the first call.
    pub async fn connect(
        address: &str,
        project: &str,
        account: &str,
        partition: &str,
        settings: &AwsSettings,
        retry: RetryPolicy,
    ) -> AwsProvider {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        } else {
            // IAM is global; the SDK still wants a region to sign with.
            loader = loader.region(
                aws_config::meta::region::RegionProviderChain::default_provider()
                    .or_else("us-east-1"),
            );
        }
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let requests = Arc::new(AtomicUsize::new(0));
        // writ retries with its own budget; the SDK must not retry as well.
        let config = aws_sdk_iam::config::Builder::from(&shared)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .interceptor(CountRequests(requests.clone()))
            .build();
        AwsProvider {
            address: address.to_string(),
            project: project.to_string(),
            account: account.to_string(),
            partition: partition.to_string(),
            client: aws_sdk_iam::Client::from_conf(config),
            retrier: Retrier::new(retry),
            limiter: Limiter::new(4),
            requests,
        }
    }

    /// Requests sent so far (for tests and progress).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn retries(&self) -> u32 {
        self.retrier.retries()
    }

    fn path(&self) -> String {
        writ_compiler::lower::aws_path(&self.project)
    }

    fn policy_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:policy{}{name}",
            self.partition,
            self.account,
            self.path()
        )
    }
}

impl Provider for AwsProvider {
    fn address(&self) -> &str {
        &self.address
    }

    fn observe(&self) -> BoxFuture<'_, Result<(Vec<Resource>, ObserveStats), ProviderError>> {
        Box::pin(async move {
            let before = self.requests();
            let retries = self.retrier.retries();
            let resources = self.observe_all().await?;
            Ok((
                resources,
                ObserveStats {
                    requests: self.requests() - before,
                    retries: (self.retrier.retries() - retries) as usize,
                },
            ))
        })
    }

    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move { self.apply_change(change).await })
    }
}

/// Sorts an SDK error into writ's classes.
pub(crate) fn classify<E, R>(operation: &str, error: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &error {
        // A dropped connection or a timeout may pass; a request that could
        // not be sent for another reason (no credentials, say) will not.
        SdkError::DispatchFailure(failure) if !(failure.is_io() || failure.is_timeout()) => {
            let mut message = format!(
                "{operation}: the request could not be sent: {}",
                describe(&error)
            );
            if message.contains("credentials") {
                message.push_str(" (writ reads credentials from the standard AWS chain: environment, profile, SSO, or an instance or task role)");
            }
            ProviderError::new(ErrorClass::Permanent, None, message)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ProviderError::new(
                ErrorClass::Transient,
                None,
                format!(
                    "{operation}: the request did not complete: {}",
                    describe(&error)
                ),
            )
        }
        SdkError::ServiceError(context) => {
            let service_error = context.err();
            let code = service_error.code().unwrap_or("Unknown");
            let message = service_error.message().unwrap_or_default();
            let class = match code {
                "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TooManyRequestsException"
                | "ServiceUnavailable"
                | "ServiceFailure"
                | "InternalFailure"
                | "InternalError" => ErrorClass::Transient,
                "EntityAlreadyExists" | "ConcurrentModification" | "DeleteConflict" => {
                    ErrorClass::Conflict
                }
                _ => ErrorClass::Permanent,
            };
            ProviderError::new(class, Some(code), format!("{operation}: {code}: {message}"))
        }
        _ => ProviderError::new(
            ErrorClass::Permanent,
            None,
            format!("{operation}: {}", describe(&error)),
        ),
    }
}

fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Runs one request under the in-flight limit, retrying transient failures.
macro_rules! call {
    ($provider:expr, $operation:expr, $request:expr) => {
        call!($provider, $operation, $request, |_| false)
    };
    ($provider:expr, $operation:expr, $request:expr, $retryable:expr) => {{
        let provider = &$provider;
        provider
            .retrier
            .run(
                || async {
                    let _slot = provider.limiter.slot().await;
                    $request
                        .send()
                        .await
                        .map_err(|e| $crate::classify($operation, e))
                },
                $retryable,
            )
            .await
    }};
}
pub(crate) use call;

/// The marker of the next page, if IAM says there is one.
pub(crate) fn next_page(truncated: bool, marker: Option<&str>) -> Option<String> {
    marker.filter(|_| truncated).map(str::to_string)
}

/// Policy documents as IAM returns them: URL-encoded (RFC 3986) or plain JSON.
pub(crate) fn decode_document(text: &str) -> serde_json::Value {
    if let Ok(value) = serde_json::from_str(text) {
        return value;
    }
    let decoded = percent_decode(text);
    serde_json::from_str(&decoded).unwrap_or(serde_json::Value::String(decoded))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_decode_whichever_way_they_come() {
        let plain = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode_document(plain), decode_document(encoded));
        assert_eq!(decode_document(encoded)["Version"], "2012-10-17");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
