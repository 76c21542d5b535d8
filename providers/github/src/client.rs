//! The connection to GitHub's REST API that every part of the crate uses:
//! requests through writ's retry budget, rate limits waited out or reported,
//! errors in GitHub's own words, pages followed by `Link` headers.

use octocrab::Octocrab;
use serde_json::Value;
use std::time::Duration;
use writ_provider_core::{
    error_chain, ErrorClass, ProviderError, RequestStats, Requester, Retrier,
};

/// The code of an error that is GitHub's rate limit, not a refusal.
pub const RATE_LIMITED: &str = "rate_limited";

/// Is this a refusal of the token (a 403 that is not a rate limit)?
pub fn is_refusal(error: &ProviderError) -> bool {
    error.status == Some(403) && error.code.as_deref() != Some(RATE_LIMITED)
}

/// Text for one part of an address: unreserved characters as they are,
/// `/` too when `keep_slash`, the rest percent-encoded.
pub fn encoded(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let plain =
            byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || (keep_slash && byte == b'/');
        if plain {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Does a listing's page hold as many items as a page may (100)?
fn is_full_page(body: &str) -> bool {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    let full = |items: &Value| items.as_array().is_some_and(|a| a.len() >= 100);
    full(&value) || value.as_object().is_some_and(|o| o.values().any(full))
}

/// The longest rate-limit wait writ sits through before giving up.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub owner: String,
    pub name: String,
}

impl Repository {
    pub fn parse(text: &str) -> Result<Repository, String> {
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        match text.split_once('/') {
            Some((owner, name)) if valid(owner) && valid(name) => Ok(Repository {
                owner: owner.to_string(),
                name: name.to_string(),
            }),
            _ => Err(format!(
                "`{text}` is not a repository: expected `OWNER/NAME`"
            )),
        }
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// One answer, with what writ reads of it.
pub(crate) struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn json(&self) -> Result<Value, ProviderError> {
        serde_json::from_str(&self.body).map_err(|e| {
            ProviderError::permanent(format!("GitHub sent an answer that is not JSON: {e}"))
        })
    }

    /// The `rel="next"` address of a `Link` header.
    pub(crate) fn next_page(&self) -> Option<String> {
        let link = self.header("link")?;
        link.split(',').find_map(|part| {
            let (url, params) = part.split_once(';')?;
            params
                .split(';')
                .any(|p| p.trim() == "rel=\"next\"")
                .then(|| {
                    url.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
        })
    }

    /// GitHub's own message, from the error body, with the details of a
    /// validation failure.
    fn message(&self) -> String {
        let Ok(value) = serde_json::from_str::<Value>(&self.body) else {
            return self.body.chars().take(200).collect();
        };
        let mut message = value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string();
        let details: Vec<&str> = value
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e.get("message").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        if !details.is_empty() {
            message.push_str(": ");
            message.push_str(&details.join("; "));
        }
        message
    }

    /// How long to wait before trying again, if this is a rate-limit answer.
    fn rate_limit_wait(&self) -> Option<Duration> {
        if !matches!(self.status, 403 | 429) {
            return None;
        }
        if let Some(seconds) = self
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_secs(seconds));
        }
        if self.header("x-ratelimit-remaining") == Some("0") {
            let reset = self
                .header("x-ratelimit-reset")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            return Some(Duration::from_secs(reset.saturating_sub(now)));
        }
        // A secondary limit without a retry-after (or any 429 without
        // headers): GitHub asks for at least a minute.
        let message = self.message().to_ascii_lowercase();
        (self.status == 429
            || message.contains("secondary rate limit")
            || message.contains("abuse"))
        .then_some(Duration::from_secs(60))
    }
}

pub struct GitHub {
    client: Octocrab,
    api: String,
    requests: Requester,
    /// Answers kept by `ETag`, asked again with `If-None-Match`: a `304`
    /// costs nothing of the rate limit.
    cache: Option<EtagCache>,
    /// Which token the cached answers were read with (a digest of it, never
    /// the token): answers are never shared between tokens.
    token_digest: String,
    /// What to check when GitHub refuses the credentials (401).
    unauthorized: &'static str,
}

/// `GET` answers on disk, one file each: the `ETag`, the `Link` header and
/// the body, under a name digested from the token and the address.
struct EtagCache {
    dir: std::path::PathBuf,
}

impl EtagCache {
    fn file(&self, token: &str, url: &str) -> std::path::PathBuf {
        let mut digest = writ_compiler::policy::Digester::new();
        digest.bytes(token.as_bytes());
        digest.bytes(&[0]);
        digest.bytes(url.as_bytes());
        self.dir.join(digest.finish())
    }

    /// The kept answer: `(etag, link, body)`. Anything unreadable is no
    /// answer (asked again in full).
    fn read(&self, token: &str, url: &str) -> Option<(String, Option<String>, String)> {
        let text = std::fs::read_to_string(self.file(token, url)).ok()?;
        let value: Value = serde_json::from_str(&text).ok()?;
        Some((
            value["etag"].as_str()?.to_string(),
            value["link"].as_str().map(str::to_string),
            value["body"].as_str()?.to_string(),
        ))
    }

    /// Keeps an answer; a cache that cannot be written is only slower.
    /// What it holds is private (workflow files, secret names): the folder
    /// and its files are the user's alone.
    fn write(&self, token: &str, url: &str, etag: &str, link: Option<&str>, body: &str) {
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        }
        let text = serde_json::json!({"etag": etag, "link": link, "body": body}).to_string();
        let file = self.file(token, url);
        let partial = file.with_extension(format!("{}.partial", std::process::id()));
        let written = {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            options
                .open(&partial)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        };
        if written.is_ok() {
            let _ = std::fs::rename(&partial, &file);
        } else {
            let _ = std::fs::remove_file(&partial);
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl GitHub {
    /// A client for the API at `api` (`https://api.github.com`, or a GitHub
    /// Enterprise Server's `…/api/v3`). Sends nothing yet.
    pub fn connect(api: &str, token: String, retrier: &Retrier) -> Result<GitHub, ProviderError> {
        let api = api.trim_end_matches('/').to_string();
        let token_for_digest = token.clone();
        if token.trim().is_empty() {
            return Err(ProviderError::permanent(
                "the GitHub token is empty".to_string(),
            ));
        }
        let client = Octocrab::builder()
            .base_uri(api.as_str())
            .map_err(|e| {
                ProviderError::permanent(format!("`{api}` is not a GitHub API address: {e}"))
            })?
            .personal_token(token)
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| {
                ProviderError::permanent(format!("cannot build the GitHub client: {e}"))
            })?;
        let mut digest = writ_compiler::policy::Digester::new();
        digest.bytes(token_for_digest.as_bytes());
        Ok(GitHub {
            client,
            api,
            requests: Requester::new(retrier, 1),
            cache: None,
            token_digest: digest.finish(),
            unauthorized: ": the token was refused; check `GITHUB_TOKEN` (or the variable named by `--token-env`, or by `token_env` in writ.toml)",
        })
    }

    /// Keeps `GET` answers in `dir` and asks again with `If-None-Match`.
    pub fn with_cache(mut self, dir: std::path::PathBuf) -> GitHub {
        self.cache = Some(EtagCache { dir });
        self
    }

    /// A client that sends a GitHub App's JWT, or a token it minted: a
    /// refusal points at the App's credentials.
    pub(crate) fn for_app(mut self) -> GitHub {
        self.unauthorized = ": GitHub refused the App's credentials; check `app_id` and the private key in writ.toml (the App's current key, not one deleted in its settings), and the machine's clock (the JWT is valid for minutes)";
        self
    }

    /// The API's address.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// Requests sent so far, retries included.
    pub fn stats(&self) -> RequestStats {
        self.requests.stats()
    }

    /// One request, with retries; `what` names it in errors. `url` is a path
    /// under the API, or a whole address (a `Link` header's).
    pub(crate) async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Answer, ProviderError> {
        let url = if url.starts_with("http://") || url.starts_with("https://") {
            // A page's link to another server is never followed: the
            // token would go with it.
            let within = url
                .strip_prefix(self.api.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']));
            if !within {
                return Err(ProviderError::permanent(format!(
                    "{what}: GitHub's answer links to `{url}`, outside {}: writ does not send the token there",
                    self.api
                )));
            }
            url.to_string()
        } else {
            format!("{}{url}", self.api)
        };
        // A full page is always read in full: unchanged, it could still
        // hide a page after it (a `Link` added, the body the same).
        let kept = match (method, &self.cache) {
            (Method::Get, Some(cache)) => cache
                .read(&self.token_digest, &url)
                .filter(|(_, _, body)| !is_full_page(body)),
            _ => None,
        };
        self.requests
            .send(|| async {
                let sent = match method {
                    Method::Get => match &kept {
                        Some((etag, _, _)) => {
                            let mut headers = http::HeaderMap::new();
                            if let Ok(value) = http::HeaderValue::from_str(etag) {
                                headers.insert(http::header::IF_NONE_MATCH, value);
                            }
                            self.client
                                ._get_with_headers(url.as_str(), Some(headers))
                                .await
                        }
                        None => self.client._get(url.as_str()).await,
                    },
                    Method::Post => self.client._post(url.as_str(), body).await,
                    Method::Patch => self.client._patch(url.as_str(), body).await,
                    Method::Put => self.client._put(url.as_str(), body).await,
                    Method::Delete => self.client._delete(url.as_str(), body).await,
                };
                let response = sent.map_err(|e| {
                    ProviderError::new(
                        ErrorClass::Transient,
                        None,
                        format!(
                            "{what}: cannot reach GitHub at {}: {}",
                            self.api,
                            error_chain(&e)
                        ),
                    )
                })?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = self.client.body_to_string(response).await.map_err(|e| {
                    ProviderError::new(
                        ErrorClass::Transient,
                        None,
                        format!(
                            "{what}: the answer from GitHub was cut off: {}",
                            error_chain(&e)
                        ),
                    )
                })?;
                if status == 304 {
                    if let Some((_, link, body)) = &kept {
                        let mut headers = http::HeaderMap::new();
                        if let Some(value) = link
                            .as_deref()
                            .and_then(|l| http::HeaderValue::from_str(l).ok())
                        {
                            headers.insert(http::header::LINK, value);
                        }
                        return Ok(Answer {
                            status: 200,
                            headers,
                            body: body.clone(),
                        });
                    }
                }
                let answer = Answer {
                    status,
                    headers,
                    body,
                };
                if (200..300).contains(&status) {
                    if let (Method::Get, Some(cache), Some(etag)) =
                        (method, &self.cache, answer.header("etag"))
                    {
                        cache.write(
                            &self.token_digest,
                            &url,
                            etag,
                            answer.header("link"),
                            &answer.body,
                        );
                    }
                    return Ok(answer);
                }
                Err(self.failure(&answer, what).await)
            })
            .await
    }

    /// The error for a failed answer; for a short rate-limit wait, waits
    /// first and reports it as transient, so that it is tried again.
    async fn failure(&self, answer: &Answer, what: &str) -> ProviderError {
        let status = Some(answer.status);
        let message = answer.message();
        if let Some(wait) = answer.rate_limit_wait() {
            if wait <= MAX_WAIT {
                tokio::time::sleep(wait).await;
                return ProviderError {
                    class: ErrorClass::Transient,
                    status,
                    code: Some(RATE_LIMITED.to_string()),
                    message: format!("{what}: rate limited by GitHub: {message}"),
                };
            }
            return ProviderError {
                class: ErrorClass::Permanent,
                status,
                code: Some(RATE_LIMITED.to_string()),
                message: format!(
                    "{what}: GitHub's rate limit is exhausted for the next {} minutes: {message}",
                    wait.as_secs().div_ceil(60)
                ),
            };
        }
        let (class, hint) = match answer.status {
            500..=599 => (ErrorClass::Transient, ""),
            401 => (ErrorClass::Permanent, self.unauthorized),
            403 if what.starts_with("setting environment") => (
                ErrorClass::Permanent,
                ": the token may not change it; it needs the repository permission `Administration: write`",
            ),
            403 if what.contains("OIDC subject template of organisation") => (
                ErrorClass::Permanent,
                ": the token may not read it; it needs the organisation permission `Administration: read` (classic tokens: `read:org`)",
            ),
            403 if what.contains("OIDC subject template") => (
                ErrorClass::Permanent,
                ": the token may not read it; it needs the repository permission `Actions: read` (classic tokens: `repo`)",
            ),
            403 if what.starts_with("setting the Actions settings") => (
                ErrorClass::Permanent,
                ": the token may not change them; it needs the repository permission `Administration: write`",
            ),
            403 if what.starts_with("reading organisation") => (
                ErrorClass::Permanent,
                ": the token may not read the organisation; it needs access to it (a fine-grained token: one granted to the organisation)",
            ),
            403 if what.starts_with("reading") => (
                ErrorClass::Permanent,
                ": the token may not read it; it needs the repository permission `Metadata: read`",
            ),
            403 => (
                ErrorClass::Permanent,
                ": the token may not do this; a workflow needs `permissions: pull-requests: write`",
            ),
            404 if what.starts_with("reading") => (
                ErrorClass::Permanent,
                ": not found, or not visible to this token (a private repository needs `Metadata: read`)",
            ),
            404 => (
                ErrorClass::Permanent,
                ": not found, or not visible to this token",
            ),
            409 => (ErrorClass::Conflict, ""),
            _ => (ErrorClass::Permanent, ""),
        };
        ProviderError {
            class,
            status,
            code: None,
            message: format!(
                "{what}: GitHub answered {} ({message}){hint}",
                answer.status
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        Answer {
            status,
            headers: map,
            body: body.to_string(),
        }
    }

    #[test]
    fn the_next_page_comes_from_the_link_header_whatever_its_order() {
        let page = answer(
            200,
            &[("link", "<https://api.github.com/x?page=1>; rel=\"prev\", <https://api.github.com/x?page=3>; rel=\"next\", <https://api.github.com/x?page=9>; rel=\"last\"")],
            "[]",
        );
        assert_eq!(
            page.next_page().as_deref(),
            Some("https://api.github.com/x?page=3")
        );
        let last = answer(
            200,
            &[("link", "<https://api.github.com/x?page=1>; rel=\"first\"")],
            "[]",
        );
        assert_eq!(last.next_page(), None);
        assert_eq!(answer(200, &[], "[]").next_page(), None);
    }

    #[test]
    fn rate_limits_are_told_apart_from_refusals() {
        let secondary = answer(
            403,
            &[("retry-after", "7")],
            r#"{"message": "You have exceeded a secondary rate limit."}"#,
        );
        assert_eq!(secondary.rate_limit_wait(), Some(Duration::from_secs(7)));
        let primary = answer(
            403,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "0")],
            r#"{"message": "API rate limit exceeded"}"#,
        );
        assert_eq!(primary.rate_limit_wait(), Some(Duration::ZERO));
        let bare = answer(429, &[], "{}");
        assert_eq!(bare.rate_limit_wait(), Some(Duration::from_secs(60)));
        let refused = answer(
            403,
            &[],
            r#"{"message": "Resource not accessible by integration"}"#,
        );
        assert_eq!(refused.rate_limit_wait(), None);
        let invalid = answer(
            422,
            &[],
            r#"{"message": "Validation Failed", "errors": [{"message": "body is too long"}]}"#,
        );
        assert_eq!(invalid.message(), "Validation Failed: body is too long");
    }

    #[test]
    fn a_rate_limit_is_no_refusal_and_full_pages_are_told() {
        let refused = ProviderError::new(ErrorClass::Permanent, None, "no");
        let refused = ProviderError {
            status: Some(403),
            ..refused
        };
        assert!(is_refusal(&refused));
        let limited = ProviderError {
            code: Some(RATE_LIMITED.to_string()),
            ..refused.clone()
        };
        assert!(!is_refusal(&limited));
        let page = |n: usize| format!("[{}]", vec!["{}"; n].join(","));
        assert!(is_full_page(&page(100)));
        assert!(!is_full_page(&page(99)));
        assert!(is_full_page(&format!(
            r#"{{"total_count": 100, "secrets": {}}}"#,
            page(100)
        )));
        assert!(!is_full_page("{}"));
        assert_eq!(
            encoded("refs/heads/a&b#c+d", false),
            "refs%2Fheads%2Fa%26b%23c%2Bd"
        );
        assert_eq!(
            encoded(".github/workflows/de ploy.yml", true),
            ".github/workflows/de%20ploy.yml"
        );
    }

    #[test]
    fn repositories_are_owner_and_name() {
        assert_eq!(
            Repository::parse("acme/infra").unwrap(),
            Repository {
                owner: "acme".into(),
                name: "infra".into()
            }
        );
        for bad in ["acme", "acme/", "/infra", "acme/in fra", "a/b/c"] {
            assert!(Repository::parse(bad).is_err(), "{bad}");
        }
    }
}
