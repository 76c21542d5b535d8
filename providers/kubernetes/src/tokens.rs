//! Tokens for `writ serve`: a service account's token issued through the
//! TokenRequest API (`serviceaccounts/NAME/token`), and a token presented
//! as a proof of a workload checked through the TokenReview API, both as
//! the cluster itself decides (its issuer, its keys, its bound objects).

use crate::KubernetesProvider;
use serde_json::{json, Value};
use writ_provider_core::{Issue, Issued, ProviderError, Reviewed};

/// The API's shortest token: TokenRequest refuses `expirationSeconds`
/// under ten minutes.
pub const SHORTEST_SECONDS: u64 = 600;

impl KubernetesProvider {
    /// Sends a `POST` of `body` to `path` and reads the JSON answer,
    /// retried as every request of the provider is.
    async fn post_json(
        &self,
        what: &str,
        path: &str,
        body: &Value,
    ) -> Result<Value, ProviderError> {
        let bytes = body.to_string().into_bytes();
        self.call(what, || {
            let client = self.client.clone();
            let request = http::Request::post(path)
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::ACCEPT, "application/json")
                .body(bytes.clone())
                .map_err(|e| {
                    kube::Error::BuildRequest(kube::core::request::Error::BuildRequest(e))
                });
            async move { client.request::<Value>(request?).await }
        })
        .await
    }

    /// `create` on `serviceaccounts/token`: a token of the service account
    /// (`NAMESPACE/NAME`) for `seconds`, for the request's audiences. Each
    /// attempt makes a token the cluster keeps no record of, so a failed
    /// one may be tried again.
    pub(crate) async fn request_token(&self, request: &Issue) -> Result<Issued, ProviderError> {
        let Some((namespace, name)) = request.identity.split_once('/') else {
            return Err(ProviderError::permanent(format!(
                "{}: `{}` is not a service account (`NAMESPACE/NAME`)",
                self.address, request.identity
            )));
        };
        let mut spec = json!({"expirationSeconds": request.seconds});
        if !request.audiences.is_empty() {
            spec["audiences"] = json!(request.audiences);
        }
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": spec,
        });
        let path = format!(
            "/api/v1/namespaces/{}/serviceaccounts/{}/token",
            segment(namespace),
            segment(name)
        );
        let what = format!("issuing a token of the service account `{namespace}/{name}`");
        let answer = self.post_json(&what, &path, &body).await?;
        let token = answer["status"]["token"].as_str().unwrap_or_default();
        let expires_at = answer["status"]["expirationTimestamp"]
            .as_str()
            .unwrap_or_default();
        if token.is_empty() || expires_at.is_empty() {
            return Err(ProviderError::permanent(format!(
                "{}: {what}: the answer holds no token or no expiration",
                self.address
            )));
        }
        Ok(Issued {
            credentials: json!({"token": token}),
            expires_at: expires_at.to_string(),
        })
    }

    /// `create` on `tokenreviews`: who the cluster says holds `token`, if
    /// it is meant for one of `audiences`.
    pub(crate) async fn review_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Reviewed, ProviderError> {
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": audiences},
        });
        let answer = self
            .post_json(
                "reviewing a token",
                "/apis/authentication.k8s.io/v1/tokenreviews",
                &body,
            )
            .await?;
        Ok(reviewed(&answer["status"], audiences))
    }
}

/// What a TokenReview's status says: a service account only when the
/// token is authenticated, for one of the audiences asked for, and its
/// user is `system:serviceaccount:NAMESPACE:NAME`.
pub fn reviewed(status: &Value, audiences: &[String]) -> Reviewed {
    if status["authenticated"].as_bool() != Some(true) {
        let why = status["error"]
            .as_str()
            .filter(|e| !e.is_empty())
            .unwrap_or("the cluster did not authenticate the token");
        return Reviewed::Refused {
            why: why.to_string(),
        };
    }
    // The API answers the audiences the token is good for among those
    // asked; none in common is a token for something else.
    let granted: Vec<&str> = status["audiences"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !audiences.is_empty() && !granted.iter().any(|g| audiences.iter().any(|a| a == g)) {
        return Reviewed::Refused {
            why: format!(
                "the token is not meant for writ (its audiences are not {})",
                audiences.join(", ")
            ),
        };
    }
    let username = status["user"]["username"].as_str().unwrap_or_default();
    match username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((namespace, name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains(':') =>
        {
            // A token the kubelet projects into a pod is bound to it, and
            // the review says which.
            let pod = status["user"]["extra"]["authentication.kubernetes.io/pod-name"]
                .as_array()
                .and_then(|names| names.first())
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .map(str::to_string);
            Reviewed::ServiceAccount {
                namespace: namespace.to_string(),
                name: name.to_string(),
                pod,
            }
        }
        _ => Reviewed::Other {
            username: username.to_string(),
        },
    }
}

/// A name as one segment of a path (names are DNS labels or subdomains;
/// anything else is escaped rather than let change the path).
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
