//! An AWS identity proven as Vault's AWS auth proves it: the workload signs
//! an `sts:GetCallerIdentity` request with its own credentials (SigV4) and
//! hands it over unsent; `writ serve` sends it to STS itself, and STS,
//! checking the signature, answers whose credentials signed it. The
//! request must be exactly `GetCallerIdentity`, to the STS endpoint the
//! server names, and must sign a header that names this server's audience,
//! so that a request signed for one server cannot be replayed to another.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::time::Duration;

/// The header that names the server a proof is for, which the signature
/// must cover.
pub const AUDIENCE_HEADER: &str = "x-writ-audience";

/// The only body a proof may have.
pub const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// The headers a proof's signature may cover: writ sends these on, and
/// nothing else.
const FORWARDED: &[&str] = &[
    "host",
    "x-amz-date",
    "x-amz-security-token",
    AUDIENCE_HEADER,
    "content-type",
];

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// The client proofs are sent with, made once.
fn client() -> Result<&'static Client, String> {
    static CLIENT: std::sync::OnceLock<Result<Client, String>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
                .map_err(|e| format!("cannot read the system's certificate roots: {e}"))?
                .https_or_http()
                .enable_http1()
                .build();
            Ok(
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build(https),
            )
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The host of an STS endpoint proofs may go to: https, or http to this
/// machine (a local STS in tests); never with credentials in it.
fn sts_host(endpoint: &str) -> Option<&str> {
    let (secure, rest) = match (
        endpoint.strip_prefix("https://"),
        endpoint.strip_prefix("http://"),
    ) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return None,
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return None;
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    (secure || matches!(name, "127.0.0.1" | "localhost" | "[::1]")).then_some(host)
}

/// The headers a SigV4 `Authorization` signs: it must be exactly
/// `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`, each
/// part once.
fn signed_headers(authorization: &str) -> Result<Vec<String>, String> {
    let not = || "the proof's `Authorization` is not one SigV4 signature".to_string();
    let parts = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(not)?;
    let parts: Vec<&str> = parts.split(',').map(str::trim).collect();
    let [credential, signed, signature] = parts.as_slice() else {
        return Err(not());
    };
    let (Some(_), Some(signed), Some(signature)) = (
        credential.strip_prefix("Credential="),
        signed.strip_prefix("SignedHeaders="),
        signature.strip_prefix("Signature="),
    ) else {
        return Err(not());
    };
    if signature.is_empty() || signed.is_empty() {
        return Err(not());
    }
    Ok(signed.split(';').map(|h| h.to_ascii_lowercase()).collect())
}

/// Who signed a proof, as STS says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub arn: String,
    pub account: String,
}

/// Checks the request's form, sends it to `endpoint` (STS), and returns
/// who signed it; why not, otherwise. `headers` are the request's, as the
/// workload signed them.
pub async fn signed_caller(
    endpoint: &str,
    audience: &str,
    headers: &[(String, String)],
    body: &str,
) -> Result<Caller, String> {
    if body != BODY {
        return Err(format!("the proof's body must be exactly `{BODY}`"));
    }
    let Some(host) = sts_host(endpoint) else {
        return Err(format!(
            "`{endpoint}` is not an STS endpoint writ sends proofs to: https, or http to this machine"
        ));
    };
    // Each header once, whatever its case.
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    if names.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err("the proof names a header twice".to_string());
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let Some(authorization) = header("authorization") else {
        return Err("the proof has no `Authorization` header: sign it with SigV4".to_string());
    };
    let signed = signed_headers(authorization)?;
    for needed in ["host", AUDIENCE_HEADER] {
        if !signed.iter().any(|h| h == needed) {
            return Err(format!(
                "the proof's signature must cover the `{needed}` header"
            ));
        }
    }
    if let Some(other) = signed.iter().find(|h| !FORWARDED.contains(&h.as_str())) {
        return Err(format!(
            "the proof's signature covers `{other}`, which writ does not send on (it sends {})",
            FORWARDED.join(", ")
        ));
    }
    if header(AUDIENCE_HEADER) != Some(audience) {
        return Err(format!(
            "the proof is for `{}`, not this server (`{AUDIENCE_HEADER}: {audience}`)",
            header(AUDIENCE_HEADER).unwrap_or_default()
        ));
    }
    if header("host").is_some_and(|h| !h.eq_ignore_ascii_case(host)) {
        return Err(format!(
            "the proof is signed for another host than `{host}`"
        ));
    }
    let client = client()?;
    let url = format!("{}/", endpoint.trim_end_matches('/'));
    let mut request = http::Request::post(&url);
    // The signature and the headers it covers, as signed, from a short
    // list; nothing else the workload sent (lengths and connections are
    // hyper's to set; a missing `Host` is the endpoint's).
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" || signed.contains(&lower) {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    let request = request
        .body(Full::new(Bytes::from(BODY)))
        .map_err(|e| format!("the proof's headers: {e}"))?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "STS did not answer within 10 s".to_string())?
        .map_err(|e| format!("cannot reach STS at `{url}`: {e}"))?;
    let status = response.status();
    let text = Limited::new(response.into_body(), 64 * 1024)
        .collect()
        .await
        .map_err(|e| format!("STS's answer could not be read: {e}"))?
        .to_bytes();
    let text = String::from_utf8_lossy(&text);
    let element = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(text[start..end].trim().to_string())
    };
    if !status.is_success() {
        return Err(format!(
            "STS refused the proof ({status}): {}",
            element("Message")
                .or_else(|| element("Code"))
                .unwrap_or_default()
        ));
    }
    match (element("Arn"), element("Account")) {
        (Some(arn), Some(account)) if !arn.is_empty() && !account.is_empty() => {
            Ok(Caller { arn, account })
        }
        _ => Err("STS answered no caller".to_string()),
    }
}

/// Whom an ARN from STS names: an IAM user (its path and name, as
/// `runs_on … user` writes it) or a role's session (the role's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(String),
    /// A role's session: the role's name and the session's.
    RoleSession(String, String),
    Other,
}

pub fn principal(arn: &str) -> Principal {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some(service), Some(_), Some(_), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Principal::Other;
    };
    match (service, resource.split_once('/')) {
        ("iam", Some(("user", name))) => Principal::User(name.to_string()),
        ("sts", Some(("assumed-role", rest))) => match rest.split_once('/') {
            Some((role, session)) => Principal::RoleSession(role.to_string(), session.to_string()),
            None => Principal::Other,
        },
        _ => Principal::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_are_read_from_their_arns() {
        assert_eq!(
            principal("arn:aws:iam::123456789012:user/ci/deployer"),
            Principal::User("ci/deployer".into())
        );
        assert_eq!(
            principal("arn:aws:sts::123456789012:assumed-role/exporter/i-0abc"),
            Principal::RoleSession("exporter".into(), "i-0abc".into())
        );
        assert_eq!(
            principal("arn:aws:iam::123456789012:root"),
            Principal::Other
        );
        assert_eq!(principal("not an arn"), Principal::Other);
    }

    #[tokio::test]
    async fn a_proof_of_another_form_is_refused_before_anything_is_sent() {
        let signed = |audience: &str, headers: &str| {
            vec![
                (
                    "Authorization".to_string(),
                    format!("AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/sts/aws4_request, SignedHeaders={headers}, Signature=00"),
                ),
                ("Host".to_string(), "sts.us-east-1.amazonaws.com".to_string()),
                (AUDIENCE_HEADER.to_string(), audience.to_string()),
            ]
        };
        let endpoint = "https://sts.us-east-1.amazonaws.com";
        let refused = |result: Result<Caller, String>| result.unwrap_err();
        assert!(refused(
            signed_caller(
                endpoint,
                "writ",
                &signed("writ", "host;x-writ-audience"),
                "Action=AssumeRole"
            )
            .await
        )
        .contains("exactly"));
        assert!(
            refused(signed_caller(endpoint, "writ", &signed("writ", "host"), BODY).await)
                .contains("`x-writ-audience`")
        );
        assert!(refused(
            signed_caller(
                endpoint,
                "writ",
                &signed("other", "host;x-writ-audience"),
                BODY
            )
            .await
        )
        .contains("not this server"));
        assert!(refused(
            signed_caller(
                "https://sts.eu-west-1.amazonaws.com",
                "writ",
                &signed("writ", "host;x-writ-audience"),
                BODY
            )
            .await
        )
        .contains("another host"));
        assert!(refused(signed_caller(endpoint, "writ", &[], BODY).await)
            .contains("no `Authorization`"));
        // A second `SignedHeaders` appended to a signature made without
        // the audience is not one signature.
        let mut doubled = signed("writ", "host");
        doubled[0]
            .1
            .push_str(", SignedHeaders=host;x-writ-audience");
        assert!(
            refused(signed_caller(endpoint, "writ", &doubled, BODY).await)
                .contains("not one SigV4")
        );
        let mut twice = signed("writ", "host;x-writ-audience");
        twice.push(("X-WRIT-AUDIENCE".to_string(), "writ".to_string()));
        assert!(refused(signed_caller(endpoint, "writ", &twice, BODY).await).contains("twice"));
        assert!(refused(
            signed_caller(
                endpoint,
                "writ",
                &signed("writ", "host;transfer-encoding;x-writ-audience"),
                BODY
            )
            .await
        )
        .contains("does not send on"));
        assert!(refused(
            signed_caller(
                "http://sts.example.com",
                "writ",
                &signed("writ", "host;x-writ-audience"),
                BODY
            )
            .await
        )
        .contains("not an STS endpoint"));
    }
}
