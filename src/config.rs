//! `writ.toml`: the project's name and how to reach each provider. Unknown
//! keys are errors that name them, so a typo never silently does nothing.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub project: ProjectConfig,
    #[serde(default)]
    pub graph: GraphConfig,
    #[serde(default)]
    pub serve: ServeConfig,
    /// `[provider.KIND.NAME]` tables, checked per kind by [`Config::validate`].
    #[serde(default)]
    pub provider: BTreeMap<String, BTreeMap<String, toml::Table>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub name: Option<String>,
    pub snapshot: Option<PathBuf>,
}

/// `[graph]`: what the access graph's findings allow.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    /// How many agents one workload may act as before `writ::wide_reach`
    /// (default [`GraphConfig::DEFAULT_MAX_IDENTITIES`]).
    pub max_identities: Option<usize>,
}

impl GraphConfig {
    pub const DEFAULT_MAX_IDENTITIES: usize = 3;

    pub fn max_identities(&self) -> usize {
        self.max_identities.unwrap_or(Self::DEFAULT_MAX_IDENTITIES)
    }
}

/// `[serve]`: how `writ serve` runs (docs/serve.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// `ADDRESS:PORT` to listen on (default `127.0.0.1:8181`).
    pub listen: Option<String>,
    /// The audit log's file (default: standard output).
    pub audit_log: Option<PathBuf>,
    /// The environment variable holding the token `POST /v1/revoke`
    /// requires; without it, revocation through the API is off.
    pub admin_token_env: Option<String>,
    /// How often, in seconds, the source's files are looked at for
    /// changes (default 2).
    pub watch_seconds: Option<u64>,
    /// How often the live providers are read for revocations and drift
    /// (`"5m"`; off when unset).
    pub reconcile_every: Option<String>,
    /// TLS: the certificate chain and its private key, PEM files (paths
    /// from the project's root); both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// TLS: the authorities (a PEM file, from the project's root) whose
    /// client certificates are required of every client.
    pub tls_client_ca: Option<PathBuf>,
    /// The address clients reach the server at (`https://writ.example.com`),
    /// which the AuthZEN metadata document names; default: where it
    /// listens.
    pub public_url: Option<String>,
    /// `POST /v1/revoke` also revokes in the providers, as `writ revoke`
    /// does (the server's identity then needs the brake's rights).
    pub revoke_in_providers: Option<bool>,
    /// `POST /v1/credentials` is served (off unless `true`).
    pub credentials: Option<bool>,
    /// `POST /v1/credentials`: the audience the workloads' tokens must be
    /// meant for (Kubernetes service account tokens, GitHub Actions OIDC
    /// tokens; default `writ`).
    pub audience: Option<String>,
    /// The environment variable holding the key that signs writ sessions,
    /// the same at every replica; without it, each process draws its own,
    /// and a session is good only at the replica that issued it.
    pub session_key_env: Option<String>,
    /// The issuer of GitHub Actions' OIDC tokens (default GitHub's).
    pub github_oidc_issuer: Option<String>,
    /// The issuer of Google's ID tokens (default Google's).
    pub google_oidc_issuer: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A setting that does not fit the source (a provider it does not
    /// declare, a value of the wrong shape).
    #[error("{0}")]
    Setting(String),
}

/// Keys each provider kind takes in `[provider.KIND.NAME]`.
fn provider_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "aws" => &["region", "profile", "endpoint_url", "max_key_age"],
        "kubernetes" => &["context", "kubeconfig", "inventory_namespace", "ca_sha256"],
        // Read live only when its section is there.
        "github" => &[
            "token_env",
            "api_url",
            "app_id",
            "private_key_file",
            "private_key_env",
        ],
        "gcp" => &["endpoint_url", "access_token_env", "quota_project"],
        _ => return None,
    })
}

/// Reads `writ.toml` if it exists; a missing file is an empty config.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: "it is not UTF-8 text".into(),
        })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(source) => {
            return Err(ConfigError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    parse(&text).map_err(|message| ConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

pub fn parse(text: &str) -> Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    config.validate()?;
    Ok(config)
}

impl Config {
    /// Every `[provider.KIND.NAME]` must configure a provider the source
    /// declares: a typo would otherwise be silently ignored.
    pub fn check_providers(&self, declared: &[String]) -> Result<(), ConfigError> {
        for (kind, instances) in &self.provider {
            for name in instances.keys() {
                let address = format!("{kind}.{name}");
                if !declared.contains(&address) {
                    let known = if declared.is_empty() {
                        "the source declares none".to_string()
                    } else {
                        format!(
                            "declared: {}",
                            declared
                                .iter()
                                .map(|d| format!("`{d}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    return Err(ConfigError::Setting(format!(
                        "writ.toml configures `[provider.{kind}.{name}]`, but the source declares no provider `{address}` ({known})"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The smallest `max_key_age` over the AWS providers, in days.
    pub fn max_key_age_days(&self) -> Result<Option<i64>, ConfigError> {
        let mut smallest: Option<i64> = None;
        for (name, table) in self.provider.get("aws").into_iter().flatten() {
            if let Some(value) = table.get("max_key_age").and_then(|v| v.as_str()) {
                let duration = writ_compiler::values::Duration::parse(value).map_err(|e| {
                    ConfigError::Setting(format!(
                        "writ.toml: [provider.aws.{name}] max_key_age `{value}`: {e}"
                    ))
                })?;
                let days = (duration.seconds() / writ_compiler::values::DAY) as i64;
                smallest = Some(smallest.map_or(days, |s| s.min(days)));
            }
        }
        Ok(smallest)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.project.name {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(format!(
                    "[project] name `{name}` must be 1 to 64 letters, digits, `-` or `_` (it marks live objects)"
                ));
            }
        }
        for (kind, instances) in &self.provider {
            let Some(keys) = provider_keys(kind) else {
                return Err(format!(
                    "[provider.{kind}]: `{kind}` is not a provider kind (aws, gcp, kubernetes, github)"
                ));
            };
            for (name, table) in instances {
                for (key, value) in table {
                    if !keys.contains(&key.as_str()) {
                        let takes = if keys.is_empty() {
                            "no settings in this version".to_string()
                        } else {
                            keys.iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        return Err(format!(
                            "[provider.{kind}.{name}] has unknown key `{key}`; `{kind}` providers take {takes}"
                        ));
                    }
                    // An App's id is a number, as GitHub shows it.
                    if key == "app_id" {
                        let id = match value {
                            toml::Value::Integer(id) => u64::try_from(*id).ok(),
                            toml::Value::String(id) => id.parse::<u64>().ok(),
                            _ => None,
                        };
                        if id.is_none_or(|id| id == 0) {
                            return Err(format!("[provider.{kind}.{name}] `app_id` must be the App's id, a number (in the App's settings, under About)"));
                        }
                        continue;
                    }
                    let Some(text) = value.as_str() else {
                        return Err(format!("[provider.{kind}.{name}] `{key}` must be a string"));
                    };
                    if key == "endpoint_url" || key == "api_url" {
                        check_endpoint(text)
                            .map_err(|e| format!("[provider.{kind}.{name}] `{key}`: {e}"))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// An endpoint writ may send credentials to: `https://`, or `http://` on
/// the loopback interface.
pub use writ_provider_core::check_endpoint;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let error = parse("[provider.aws.prod]\nregon = \"us-east-1\"\n").unwrap_err();
        assert!(error.contains("unknown key `regon`"), "{error}");
        let error = parse("[projekt]\nname = \"x\"\n").unwrap_err();
        assert!(error.contains("projekt"), "{error}");
        let config = parse("[project]\nname = \"acme\"\n[provider.github.acme]\n").unwrap();
        assert_eq!(config.project.name.as_deref(), Some("acme"));
        let error =
            parse("[provider.github.acme]\napi_uri = \"https://ghe.example\"\n").unwrap_err();
        assert!(error.contains("unknown key `api_uri`"), "{error}");
        // An App's id is a number, written either way.
        assert!(parse("[provider.github.acme]\napp_id = 123456\n").is_ok());
        assert!(parse("[provider.github.acme]\napp_id = \"123456\"\n").is_ok());
        let error = parse("[provider.github.acme]\napp_id = \"release-bot\"\n").unwrap_err();
        assert!(
            error.contains("`app_id` must be the App's id, a number"),
            "{error}"
        );
    }

    #[test]
    fn credentials_go_only_to_https_or_the_loopback_interface() {
        for ok in [
            "https://iam.amazonaws.com",
            "http://127.0.0.1:5000",
            "http://localhost:8080/api",
            "http://[::1]:9000",
            "HTTPS://ghe.example.com/api/v3",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.5:5000",
            "http://iam.example.com",
            "http://127.0.0.1.evil.example",
            "ftp://127.0.0.1",
            "127.0.0.1:5000",
            "http://",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
        let error =
            parse("[provider.aws.prod]\nendpoint_url = \"http://10.1.2.3:5000\"\n").unwrap_err();
        assert!(error.contains("plain HTTP"), "{error}");
    }
}
