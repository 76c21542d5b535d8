//! A GitHub App's own credentials: its id and private key, from which writ
//! signs the short JWT that GitHub's `/app` endpoints take (RS256, issued a
//! minute in the past for clock drift, valid nine minutes), and what writ
//! does with them: finds the App's installation in the organisation, mints
//! installation tokens narrowed to repositories and permissions, and
//! suspends or unsuspends the installation.
//!
//! The key is read by the binary (from a file or an environment variable
//! that `writ.toml` names) and never printed; a key that does not parse is
//! an error that says what GitHub issues (`BEGIN RSA PRIVATE KEY`).

use crate::client::{GitHub, Method};
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use writ_provider_core::{ProviderError, Retrier};

/// An App's id and private key.
pub struct AppKey {
    app_id: u64,
    key: KeyPair,
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppKey {{ app_id: {}, key: <hidden> }}", self.app_id)
    }
}

impl AppKey {
    /// Reads a PEM key as GitHub issues it (PKCS#1, `BEGIN RSA PRIVATE
    /// KEY`), or in PKCS#8 (`BEGIN PRIVATE KEY`). `what` says where it came
    /// from, for the error.
    pub fn parse(app_id: u64, pem: &str, what: &str) -> Result<AppKey, String> {
        let pem = pem.trim();
        let block = |label: &str| -> Option<Vec<u8>> {
            let begin = format!("-----BEGIN {label}-----");
            let end = format!("-----END {label}-----");
            let body = pem.strip_prefix(&begin)?.trim_end().strip_suffix(&end)?;
            let text: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .ok()
        };
        let key = if let Some(der) = block("RSA PRIVATE KEY") {
            KeyPair::from_der(&der)
                .map_err(|e| format!("{what} is not an RSA private key GitHub issues: {e}"))?
        } else if let Some(der) = block("PRIVATE KEY") {
            KeyPair::from_pkcs8(&der)
                .map_err(|e| format!("{what} is not an RSA private key in PKCS#8: {e}"))?
        } else {
            return Err(format!(
                "{what} is not a PEM private key: a GitHub App's key begins `-----BEGIN RSA PRIVATE KEY-----` (download one in the App's settings, under Private keys)"
            ));
        };
        Ok(AppKey { app_id, key })
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// Checks a JWT the App signed with this key to prove itself to
    /// `writ serve`: PS256 (which GitHub refuses, so that a proof captured
    /// on its way to writ is no App JWT at GitHub), `iss` the App's id,
    /// `aud` the server's `audience` (so that a JWT the App sends GitHub,
    /// RS256 with no `aud`, is refused here), and alive at `now` for no
    /// longer than ten minutes, a minute's leeway for clocks.
    pub fn verify(&self, jwt: &str, now: u64, audience: &str) -> Result<(), String> {
        use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PSS_2048_8192_SHA256};
        let decode = |part: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| "the App's JWT is not base64url".to_string())
        };
        let jwt = jwt.trim();
        let Some((signed, signature)) = jwt.rsplit_once('.') else {
            return Err("not a JWT".to_string());
        };
        let Some((header, claims)) = signed.split_once('.') else {
            return Err("not a JWT".to_string());
        };
        let header: Value = serde_json::from_slice(&decode(header)?)
            .map_err(|_| "the App's JWT has no JSON header".to_string())?;
        if header["alg"] != "PS256" {
            return Err(
                "the App's proof must be signed with PS256 (RSA-PSS), which GitHub does not take: a proof is no App JWT at GitHub".to_string(),
            );
        }
        let public = aws_lc_rs::signature::KeyPair::public_key(&self.key);
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, public.as_ref())
            .verify(signed.as_bytes(), &decode(signature)?)
            .map_err(|_| "the JWT is not signed with the App's key".to_string())?;
        let claims: Value = serde_json::from_slice(&decode(claims)?)
            .map_err(|_| "the App's JWT has no JSON claims".to_string())?;
        let issuer = match &claims["iss"] {
            Value::String(text) => text.parse::<u64>().ok(),
            other => other.as_u64(),
        };
        if issuer != Some(self.app_id) {
            return Err(format!("the JWT's `iss` is not App {}", self.app_id));
        }
        let audience_ok = match &claims["aud"] {
            Value::String(aud) => aud == audience,
            Value::Array(auds) => auds.iter().any(|a| a == audience),
            _ => false,
        };
        if !audience_ok {
            return Err(format!(
                "the App's JWT is not meant for writ: its `aud` must be `{audience}`"
            ));
        }
        let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
            return Err("the App's JWT needs `iat` and `exp`".to_string());
        };
        if exp.saturating_add(60) <= now || iat > now.saturating_add(60) {
            return Err("the App's JWT has expired, or is not valid yet".to_string());
        }
        if exp.saturating_sub(iat) > 600 {
            return Err("the App's JWT may live ten minutes at most".to_string());
        }
        Ok(())
    }

    /// The App's JWT at `now` (seconds since the epoch).
    pub fn jwt(&self, now: u64) -> Result<String, String> {
        let encode = |value: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        let header = encode(&json!({"alg": "RS256", "typ": "JWT"}));
        let claims = encode(&json!({
            "iat": now.saturating_sub(60),
            "exp": now + 540,
            "iss": self.app_id.to_string(),
        }));
        let signed = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature)
            .map_err(|_| "the App's key cannot sign".to_string())?;
        Ok(format!(
            "{signed}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// The App's installation in an organisation.
#[derive(Debug, Clone)]
pub struct Installation {
    pub id: u64,
    pub app_slug: String,
    pub permissions: BTreeMap<String, String>,
    pub suspended: bool,
}

/// A token minted for an installation.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: String,
    /// As GitHub says the token holds them.
    pub permissions: BTreeMap<String, String>,
    /// The repositories it reaches (`None`: all of the installation's).
    pub repositories: Option<Vec<String>>,
}

/// What a token is asked for: repository names (without the owner;
/// `None`: every repository of the installation) and permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub repositories: Option<Vec<String>>,
    pub permissions: BTreeMap<String, String>,
}

/// GitHub as the App itself (its JWT), for one organisation.
pub struct AppClient {
    client: GitHub,
    app_id: u64,
    org: String,
    api: String,
    retrier: Retrier,
}

fn levels(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

impl AppClient {
    /// Sends nothing yet. `now`: seconds since the epoch, for the JWT.
    pub fn connect(
        api: &str,
        org: &str,
        key: &AppKey,
        now: u64,
        retrier: &Retrier,
    ) -> Result<AppClient, ProviderError> {
        let jwt = key.jwt(now).map_err(ProviderError::permanent)?;
        Ok(AppClient {
            client: GitHub::connect(api, jwt, retrier)?.for_app(),
            app_id: key.app_id(),
            org: org.to_string(),
            api: api.to_string(),
            retrier: retrier.clone(),
        })
    }

    /// The App's installation in the organisation.
    pub async fn installation(&self) -> Result<Installation, ProviderError> {
        let what = format!(
            "finding the App's installation in organisation `{}`",
            self.org
        );
        let answer = match self
            .client
            .request(
                Method::Get,
                &format!("/orgs/{}/installation", self.org),
                None,
                &what,
            )
            .await
        {
            Ok(answer) => answer.json()?,
            Err(error) if error.status == Some(404) => {
                return Err(ProviderError::permanent(format!(
                    "{what}: the App is not installed in `{}`",
                    self.org
                ))
                .with_status(404))
            }
            Err(error) => return Err(error),
        };
        let (Some(id), Some(slug)) = (answer["id"].as_u64(), answer["app_slug"].as_str()) else {
            return Err(ProviderError::permanent(format!(
                "{what}: GitHub's answer has no `id` or `app_slug`"
            )));
        };
        Ok(Installation {
            id,
            app_slug: slug.to_string(),
            permissions: levels(&answer["permissions"]),
            suspended: !answer["suspended_at"].is_null(),
        })
    }

    /// Mints a token of `installation` for exactly `request`.
    pub async fn token(
        &self,
        installation: u64,
        request: &TokenRequest,
    ) -> Result<IssuedToken, ProviderError> {
        let mut body = json!({"permissions": request.permissions});
        if let Some(repositories) = &request.repositories {
            body["repositories"] = json!(repositories);
        }
        let answer = self
            .client
            .request(
                Method::Post,
                &format!("/app/installations/{installation}/access_tokens"),
                Some(&body),
                "minting an installation token",
            )
            .await?
            .json()?;
        let Some(token) = answer["token"].as_str() else {
            return Err(ProviderError::permanent(
                "minting an installation token: GitHub's answer holds no token".to_string(),
            ));
        };
        Ok(IssuedToken {
            token: token.to_string(),
            expires_at: answer["expires_at"].as_str().unwrap_or("?").to_string(),
            permissions: levels(&answer["permissions"]),
            repositories: answer["repositories"].as_array().map(|r| {
                r.iter()
                    .filter_map(|r| r["name"].as_str().map(str::to_string))
                    .collect()
            }),
        })
    }

    /// The App's id.
    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// The repositories an installation reaches (`OWNER/NAME`), read with
    /// a token of its own that may only read metadata, revoked at once.
    pub async fn installation_repositories(
        &self,
        installation: u64,
    ) -> Result<Vec<String>, ProviderError> {
        let minted = self
            .token(
                installation,
                &TokenRequest {
                    repositories: None,
                    permissions: BTreeMap::from([("metadata".to_string(), "read".to_string())]),
                },
            )
            .await?;
        let client = GitHub::connect(&self.api, minted.token.clone(), &self.retrier)?.for_app();
        let what = "listing the repositories of the App's installation";
        let mut found = Vec::new();
        let mut next = Some("/installation/repositories?per_page=100".to_string());
        let mut failure = None;
        while let Some(url) = next.take() {
            match client.request(Method::Get, &url, None, what).await {
                Ok(answer) => {
                    let page = answer.json()?;
                    found.extend(
                        page["repositories"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|r| r["full_name"].as_str().map(str::to_string)),
                    );
                    next = answer.next_page();
                }
                Err(error) => failure = Some(error),
            }
        }
        // The token is ended whatever the listing gave.
        let _ = self.revoke_token(&minted.token).await;
        match failure {
            Some(error) => Err(error),
            None => Ok(found),
        }
    }

    /// Ends a token before its time (`DELETE /installation/token`, sent
    /// with the token itself).
    pub async fn revoke_token(&self, token: &str) -> Result<(), ProviderError> {
        GitHub::connect(&self.api, token.to_string(), &self.retrier)?
            .for_app()
            .request(
                Method::Delete,
                "/installation/token",
                None,
                "revoking the installation token",
            )
            .await?;
        Ok(())
    }

    /// Suspends the installation (`suspend`), or lifts its suspension.
    pub async fn suspend(&self, installation: u64, suspend: bool) -> Result<(), ProviderError> {
        let (method, what) = if suspend {
            (Method::Put, "suspending")
        } else {
            (Method::Delete, "unsuspending")
        };
        self.client
            .request(
                method,
                &format!("/app/installations/{installation}/suspended"),
                None,
                &format!("{what} the App's installation in `{}`", self.org),
            )
            .await?;
        Ok(())
    }
}
