//! GitHub Actions' OIDC tokens, checked as a relying party must check
//! them, for `writ serve`'s proofs of a workload: the signature (RS256
//! only, by a key the issuer publishes, found by the token's `kid`), the
//! issuer, the audience, and the times (`exp`, `nbf`, `iat`, with a
//! minute's leeway for clocks). The issuer's keys are read from its
//! discovery document (`ISSUER/.well-known/openid-configuration`, then
//! its `jwks_uri`), kept ten minutes, and read again early when a token
//! names a key they lack (a rotation), at most every 30 seconds.

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde_json::Value;
use std::time::{Duration, Instant};

/// GitHub Actions' issuer.
pub const ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// How long the issuer's keys are kept.
const KEYS_KEPT: Duration = Duration::from_secs(600);
/// The soonest the keys are read again for a key they lack.
const KEYS_AGAIN: Duration = Duration::from_secs(30);
/// Leeway for the clocks of the issuer and of this machine, in seconds.
const LEEWAY: u64 = 60;
/// The most a discovery document or key set may be.
const DOCUMENT_LIMIT: usize = 256 * 1024;

#[derive(Default)]
struct Keys {
    read: Option<(Instant, Vec<Key>)>,
    asked: Option<Instant>,
}

/// One signing key: its id, modulus and exponent.
struct Key {
    kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

pub struct OidcVerifier {
    issuer: String,
    audience: String,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The keys and when they were read, and when they were last asked
    /// for (a failed read is not tried again before [`KEYS_AGAIN`]).
    keys: tokio::sync::Mutex<Keys>,
}

/// Is `url` one a verifier may fetch: https, or http to this machine (a
/// local issuer in tests)? Never with credentials in it (`user@host`).
pub fn fetchable(url: &str) -> bool {
    let (secure, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return false;
    }
    if secure {
        return true;
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

impl OidcVerifier {
    /// A verifier of tokens from `issuer` (exactly as tokens' `iss` say
    /// it) meant for `audience`. Nothing is fetched until the first token.
    pub fn new(issuer: &str, audience: &str) -> Result<OidcVerifier, String> {
        if !fetchable(issuer) {
            return Err(format!(
                "the OIDC issuer `{issuer}` must be an https URL (http only to this machine)"
            ));
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| format!("cannot read the system's certificate roots: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(OidcVerifier {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience: audience.to_string(),
            client: Client::builder(hyper_util::rt::TokioExecutor::new()).build(https),
            keys: tokio::sync::Mutex::new(Keys::default()),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn fetch(&self, url: &str) -> Result<Value, String> {
        if !fetchable(url) {
            return Err(format!("`{url}` is not an https URL"));
        }
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "writ")
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("`{url}`: {e}"))?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| format!("`{url}` did not answer within 10 s"))?
            .map_err(|e| format!("cannot reach `{url}`: {e}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), DOCUMENT_LIMIT)
            .collect()
            .await
            .map_err(|e| format!("`{url}`: the answer could not be read: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("`{url}` answered {status}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("`{url}` did not answer JSON: {e}"))
    }

    /// Reads the issuer's keys from its discovery document.
    async fn read_keys(&self) -> Result<Vec<Key>, String> {
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        let document = self.fetch(&discovery).await?;
        if document["issuer"].as_str().map(|i| i.trim_end_matches('/')) != Some(&self.issuer) {
            return Err(format!(
                "`{discovery}` names another issuer than `{}`",
                self.issuer
            ));
        }
        let Some(jwks) = document["jwks_uri"].as_str() else {
            return Err(format!("`{discovery}` names no `jwks_uri`"));
        };
        let set = self.fetch(jwks).await?;
        let decode = |v: &Value| {
            v.as_str().and_then(|t| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t.trim_end_matches('='))
                    .ok()
            })
        };
        let keys: Vec<Key> = set["keys"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|k| k["kty"] == "RSA" && k["use"].as_str().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                Some(Key {
                    kid: k["kid"].as_str().unwrap_or_default().to_string(),
                    n: decode(&k["n"])?,
                    e: decode(&k["e"])?,
                })
            })
            .collect();
        if keys.is_empty() {
            return Err(format!("`{jwks}` holds no RSA signing key"));
        }
        Ok(keys)
    }

    /// The claims of `token`, once it is checked at `now` (seconds since
    /// the epoch); why not, otherwise (for the caller, who may show it: it
    /// never holds the token).
    pub async fn verify(&self, token: &str, now: u64) -> Result<Value, String> {
        let mut parts = token.trim().split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT (three parts separated by `.`)".to_string());
        };
        let decode = |part: &str, what: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| format!("the JWT's {what} is not base64url"))
        };
        let header: Value = serde_json::from_slice(&decode(header, "header")?)
            .map_err(|_| "the JWT's header is not JSON".to_string())?;
        // The algorithm is the verifier's choice, never the token's.
        if header["alg"] != "RS256" {
            return Err(format!(
                "the JWT is signed with `{}`; the issuer signs with RS256, and nothing else is accepted",
                header["alg"].as_str().unwrap_or("none")
            ));
        }
        let kid = header["kid"].as_str().unwrap_or_default().to_string();
        let signature = decode(signature, "signature")?;
        let signed = token
            .trim()
            .rsplit_once('.')
            .map_or("", |(signed, _)| signed);
        self.check_signature(&kid, signed.as_bytes(), &signature)
            .await?;
        let claims: Value = serde_json::from_slice(&decode(payload, "claims")?)
            .map_err(|_| "the JWT's claims are not JSON".to_string())?;
        if claims["iss"].as_str() != Some(&self.issuer) {
            return Err(format!(
                "the JWT's issuer is `{}`, not `{}`",
                claims["iss"].as_str().unwrap_or_default(),
                self.issuer
            ));
        }
        let audience_ok = match &claims["aud"] {
            Value::String(aud) => *aud == self.audience,
            Value::Array(auds) => auds.iter().any(|a| *a == *self.audience),
            _ => false,
        };
        if !audience_ok {
            return Err(format!(
                "the JWT is not meant for writ: its audience is not `{}` (ask for the token with that audience)",
                self.audience
            ));
        }
        let Some(exp) = claims["exp"].as_u64() else {
            return Err("the JWT has no `exp`".to_string());
        };
        if exp.saturating_add(LEEWAY) <= now {
            return Err("the JWT has expired".to_string());
        }
        let soonest = now.saturating_add(LEEWAY);
        if claims["nbf"].as_u64().is_some_and(|nbf| nbf > soonest)
            || claims["iat"].as_u64().is_some_and(|iat| iat > soonest)
        {
            return Err("the JWT is not valid yet".to_string());
        }
        Ok(claims)
    }

    /// Checks `signature` over `signed` with the issuer's key `kid`,
    /// reading the keys again when they are old, or lack it.
    async fn check_signature(
        &self,
        kid: &str,
        signed: &[u8],
        signature: &[u8],
    ) -> Result<(), String> {
        let mut keys = self.keys.lock().await;
        let stale = keys
            .read
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() > KEYS_KEPT);
        let lacks = keys
            .read
            .as_ref()
            .is_some_and(|(_, set)| !set.iter().any(|k| k.kid == kid));
        // Asked at most every 30 s, whether the last read worked or not: a
        // token naming keys that do not exist cannot make writ hammer the
        // issuer, nor make every proof wait on it.
        let may_ask = keys.asked.is_none_or(|at| at.elapsed() > KEYS_AGAIN);
        if (stale || lacks) && may_ask {
            keys.asked = Some(Instant::now());
            match self.read_keys().await {
                Ok(set) => keys.read = Some((Instant::now(), set)),
                // Old keys still verify what they signed.
                Err(error) if keys.read.is_none() => {
                    return Err(format!("cannot read the issuer's keys: {error}"))
                }
                Err(_) => {}
            }
        }
        let Some((_, set)) = keys.read.as_ref() else {
            return Err("the issuer's keys could not be read; trying again shortly".to_string());
        };
        let Some(key) = set.iter().find(|k| k.kid == kid) else {
            return Err(format!("the issuer has no key `{kid}`"));
        };
        RsaPublicKeyComponents {
            n: &key.n,
            e: &key.e,
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signed, signature)
        .map_err(|_| "the JWT's signature does not verify".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::fetchable;

    #[test]
    fn only_https_or_this_machine_is_fetched() {
        assert!(fetchable("https://token.actions.githubusercontent.com"));
        assert!(fetchable("http://127.0.0.1:8080/.well-known/jwks"));
        assert!(fetchable("http://localhost:1/x"));
        assert!(!fetchable("http://example.com/jwks"));
        assert!(!fetchable("http://127.0.0.1.example.com/jwks"));
        assert!(!fetchable("file:///etc/passwd"));
        assert!(!fetchable("http://127.0.0.1:80@evil.example/jwks"));
        assert!(!fetchable(
            "https://user:pw@token.actions.githubusercontent.com"
        ));
        assert!(!fetchable("http://localhost:x/jwks"));
    }
}
