//! writ's AWS IAM provider. It reads what writ manages and inventories with
//! whole-account calls by the page (`GetAccountAuthorizationDetails` and
//! `ListRoles`, 1,000 objects a page; users and their keys), and carries out
//! one planned change at a time, idempotently.
//!
//! It must never touch an object writ does not own: before it updates or
//! deletes a role or a policy it reads the object's path and tags again and
//! refuses if they are not the project's. Credentials come from the standard
//! AWS chain only, never from writ's configuration.

// A library never prints: what it has to say goes to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod advisor;
mod apply;
mod lock;
mod observe;
pub mod proof;
mod revoke;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use writ_compiler::plan::{Change, Identity};
use writ_compiler::resource::Resource;
use writ_provider_core::{
    error_chain, BoxFuture, ErrorClass, Lease, LockRecord, Provider, ProviderError, Release,
    RequestStats, Requester, Retrier, Revocation, RevokeMark,
};

/// How to reach one AWS account (from `[provider.aws.NAME]` in writ.toml).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// A local IAM API (moto) for tests.
    pub endpoint_url: Option<String>,
    /// Active access keys made before this day (`YYYY-MM-DD`: today less
    /// the maximum key age) are named by their IDs, which costs a request
    /// per user holding one; others are named by user and slot.
    pub flag_keys_created_before: Option<String>,
}

pub struct AwsProvider {
    address: String,
    project: String,
    /// The account the source declares; observing another one is an error.
    account: String,
    partition: String,
    client: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    requests: Requester,
    flag_keys_created_before: Option<String>,
}

/// Requests in flight to one account: IAM throttles per account.
const IN_FLIGHT: usize = 4;

impl AwsProvider {
    /// Connects to one account. Nothing is sent until the first call.
    /// Retries spend `retrier`'s budget, which the whole run shares.
    pub async fn connect(
        address: &str,
        project: &str,
        account: &str,
        partition: &str,
        settings: &AwsSettings,
        retrier: &Retrier,
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
        if let Some(profile) = &settings.profile {
            // Exactly that profile's credentials: not the environment's
            // keys first, as the default chain would take them.
            loader = loader.credentials_provider(
                aws_config::profile::ProfileFileCredentialsProvider::builder()
                    .profile_name(profile)
                    .build(),
            );
        }
        let shared = loader.load().await;
        // writ retries with its own budget; the SDK must not retry as well.
        let config = aws_sdk_iam::config::Builder::from(&shared)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let sts = aws_sdk_sts::config::Builder::from(&shared)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        AwsProvider {
            address: address.to_string(),
            project: project.to_string(),
            account: account.to_string(),
            partition: partition.to_string(),
            client: aws_sdk_iam::Client::from_conf(config),
            sts: aws_sdk_sts::Client::from_conf(sts),
            requests: Requester::new(retrier, IN_FLIGHT),
            flag_keys_created_before: settings.flag_keys_created_before.clone(),
        }
    }

    fn path(&self) -> String {
        writ_compiler::ownership::aws::path(&self.project)
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

impl AwsProvider {
    /// `sts:GetCallerIdentity`: the account the credentials are for, which
    /// must be the source's.
    async fn identify_account(&self) -> Result<Identity, ProviderError> {
        let answer = self
            .requests
            .send_retrying(
                || async {
                    self.sts
                        .get_caller_identity()
                        .send()
                        .await
                        .map_err(|e| crate::classify("GetCallerIdentity", e))
                },
                |_| false,
            )
            .await?;
        let account = answer.account().unwrap_or_default();
        let caller = answer.arn().map(str::to_string);
        if account != self.account {
            return Err(ProviderError::permanent(format!(
                "{}: the credentials are for account {account}{}, but the source declares account {}; writ reads and changes nothing there (check `profile` in writ.toml, or the environment's credentials)",
                self.address,
                caller.as_deref().map(|c| format!(" (as {c})")).unwrap_or_default(),
                self.account
            )));
        }
        Ok(Identity {
            provider: self.address.clone(),
            place: format!("account {account}"),
            caller,
        })
    }
}

impl Provider for AwsProvider {
    fn address(&self) -> &str {
        &self.address
    }

    fn identify(&self) -> BoxFuture<'_, Result<Identity, ProviderError>> {
        Box::pin(self.identify_account())
    }

    fn last_accessed<'a>(
        &'a self,
        roles: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<writ_compiler::usage::LastAccessed>>, ProviderError>> {
        Box::pin(self.read_last_accessed(roles))
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
        Box::pin(self.observe_all())
    }

    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.apply_change(change))
    }

    fn revoke<'a>(
        &'a self,
        agent: &'a str,
        mark: &'a RevokeMark,
        users: &'a [String],
    ) -> BoxFuture<'a, Revocation> {
        Box::pin(self.revoke_agent(agent, mark, users))
    }

    fn lift<'a>(&'a self, agent: &'a str) -> BoxFuture<'a, Revocation> {
        Box::pin(self.lift_agent(agent))
    }

    fn issue<'a>(
        &'a self,
        request: &'a writ_provider_core::Issue,
    ) -> BoxFuture<'a, Result<writ_provider_core::Issued, ProviderError>> {
        Box::pin(self.assume_for(request))
    }
}

impl AwsProvider {
    /// `sts:AssumeRole` of an agent's role, as `writ serve` issues its
    /// credentials: for exactly `seconds` (`DurationSeconds`), narrowed by
    /// the session policy, with the agent as the session's source
    /// identity (which its role's trust requires, and which follows the
    /// session through CloudTrail and any role it chains to) and writ's
    /// session tags. Nothing is made, so a throttled request is retried.
    async fn assume_for(
        &self,
        request: &writ_provider_core::Issue,
    ) -> Result<writ_provider_core::Issued, ProviderError> {
        use aws_sdk_sts::primitives::DateTimeFormat;
        let seconds = i32::try_from(request.seconds).map_err(|_| {
            ProviderError::permanent(format!("{} seconds is too long a session", request.seconds))
        })?;
        let mut tags = Vec::new();
        for (key, value) in &request.tags {
            tags.push(
                aws_sdk_sts::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|e| ProviderError::permanent(format!("a session tag: {e}")))?,
            );
        }
        let answer = self
            .requests
            .send(|| async {
                self.sts
                    .assume_role()
                    .role_arn(&request.identity)
                    .role_session_name(&request.session_name)
                    .duration_seconds(seconds)
                    .set_policy(request.policy.clone())
                    .source_identity(&request.agent)
                    .set_tags((!tags.is_empty()).then(|| tags.clone()))
                    .send()
                    .await
                    .map_err(|e| crate::classify("AssumeRole", e))
            })
            .await?;
        let Some(credentials) = answer.credentials() else {
            return Err(ProviderError::permanent(
                "AssumeRole answered without credentials",
            ));
        };
        let expires_at = credentials
            .expiration()
            .fmt(DateTimeFormat::DateTime)
            .map_err(|e| ProviderError::permanent(format!("AssumeRole's expiration: {e}")))?;
        Ok(writ_provider_core::Issued {
            credentials: serde_json::json!({
                "access_key_id": credentials.access_key_id(),
                "secret_access_key": credentials.secret_access_key(),
                "session_token": credentials.session_token(),
                "assumed_role_arn": answer.assumed_role_user().map(|u| u.arn()),
            }),
            expires_at,
        })
    }
}

/// The IAM error codes writ acts on (the rest are kept as text in
/// [`ProviderError::code`], and are permanent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamCode {
    NoSuchEntity,
    EntityAlreadyExists,
    ConcurrentModification,
    DeleteConflict,
    MalformedPolicyDocument,
    /// `Throttling` and its kin: slow down and try again.
    Throttled,
    /// `ServiceFailure` and its kin: the service failed; try again.
    ServiceFailure,
}

impl IamCode {
    pub fn parse(code: &str) -> Option<IamCode> {
        Some(match code {
            "NoSuchEntity" => IamCode::NoSuchEntity,
            "EntityAlreadyExists" => IamCode::EntityAlreadyExists,
            "ConcurrentModification" => IamCode::ConcurrentModification,
            "DeleteConflict" => IamCode::DeleteConflict,
            "MalformedPolicyDocument" => IamCode::MalformedPolicyDocument,
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException" => IamCode::Throttled,
            "ServiceUnavailable" | "ServiceFailure" | "InternalFailure" | "InternalError" => {
                IamCode::ServiceFailure
            }
            _ => return None,
        })
    }

    /// The code of a failed call, if it is one writ acts on.
    pub fn of(error: &ProviderError) -> Option<IamCode> {
        error.code.as_deref().and_then(IamCode::parse)
    }

    fn class(self) -> ErrorClass {
        match self {
            IamCode::Throttled | IamCode::ServiceFailure => ErrorClass::Transient,
            IamCode::EntityAlreadyExists
            | IamCode::ConcurrentModification
            | IamCode::DeleteConflict => ErrorClass::Conflict,
            IamCode::NoSuchEntity | IamCode::MalformedPolicyDocument => ErrorClass::Permanent,
        }
    }
}

/// Sorts an SDK error into writ's classes.
pub(crate) fn classify<E, R>(operation: &str, error: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &error {
        // A dropped connection (also one closed before the reply was
        // complete) or a timeout may pass; a request that could not be sent
        // for a reason of the caller's (no credentials, say) will not.
        SdkError::DispatchFailure(failure)
            if failure.is_user() || error_chain(&error).contains("credentials") =>
        {
            let mut message = format!(
                "{operation}: the request could not be sent: {}",
                error_chain(&error)
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
                    error_chain(&error)
                ),
            )
        }
        SdkError::ServiceError(context) => {
            let service_error = context.err();
            let code = service_error.code().unwrap_or("Unknown");
            let message = service_error.message().unwrap_or_default();
            let class = IamCode::parse(code).map_or(ErrorClass::Permanent, IamCode::class);
            ProviderError::new(class, Some(code), format!("{operation}: {code}: {message}"))
        }
        _ => ProviderError::new(
            ErrorClass::Permanent,
            None,
            format!("{operation}: {}", error_chain(&error)),
        ),
    }
}

/// Sends one request through the provider's [`Requester`].
macro_rules! call {
    ($provider:expr, $operation:expr, $request:expr) => {
        call!($provider, $operation, $request, |_| false)
    };
    ($provider:expr, $operation:expr, $request:expr, $retryable:expr) => {{
        let provider = &$provider;
        provider
            .requests
            .send_retrying(
                || async {
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

/// The marker of the next page, if IAM says there is one. A reply that
/// says there is more but gives no new marker is an error: a listing that
/// silently stopped short would hide objects, and one that asked for the
/// same page again would never end.
pub(crate) fn next_page(
    operation: &str,
    truncated: bool,
    marker: Option<&str>,
    previous: Option<&str>,
) -> Result<Option<String>, ProviderError> {
    if !truncated {
        return Ok(None);
    }
    match marker {
        Some(next) if Some(next) != previous => Ok(Some(next.to_string())),
        Some(_) => Err(ProviderError::permanent(format!(
            "{operation} answered the same page marker twice"
        ))),
        None => Err(ProviderError::permanent(format!(
            "{operation} said there are more pages but gave no marker"
        ))),
    }
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

    #[test]
    fn a_listing_never_stops_short_or_loops() {
        assert_eq!(
            next_page("ListRoles", false, Some("m"), None).unwrap(),
            None
        );
        assert_eq!(
            next_page("ListRoles", true, Some("m2"), Some("m1")).unwrap(),
            Some("m2".to_string())
        );
        let error = next_page("ListRoles", true, None, Some("m1")).unwrap_err();
        assert!(error.to_string().contains("gave no marker"), "{error}");
        let error = next_page("ListRoles", true, Some("m1"), Some("m1")).unwrap_err();
        assert!(error.to_string().contains("same page marker"), "{error}");
    }
}
