//! `writ serve`: decisions at run time, through the AuthZEN API
//! (docs/serve.md).

use crate::error::{CliError, Outcome};
use crate::pipeline::load;
use crate::serve::{self, Options};
use std::path::Path;
use std::time::Duration;

pub fn run(
    path: &Path,
    listen: Option<&str>,
    audit_log: Option<&Path>,
    reconcile_every: Option<&str>,
    tls: (Option<&Path>, Option<&Path>),
) -> Outcome {
    let project = load(path)?;
    let config = &project.config.serve;
    let listen = listen
        .map(str::to_string)
        .or_else(|| config.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8181".to_string());
    let audit_log = audit_log
        .map(Path::to_path_buf)
        .or_else(|| config.audit_log.as_ref().map(|f| project.root.join(f)));
    let admin_token = match &config.admin_token_env {
        None => None,
        Some(variable) => match std::env::var(variable) {
            Ok(token) if !token.is_empty() => Some(token),
            _ => {
                return Err(CliError::Message(format!(
                    "`[serve] admin_token_env` names `{variable}`, which is not set: set it, or remove the setting to turn revocation through the API off"
                )))
            }
        },
    };
    let reconcile_every = match reconcile_every.or(config.reconcile_every.as_deref()) {
        None => None,
        Some(text) => {
            let every = writ_compiler::values::Duration::parse(text).map_err(|e| {
                CliError::Message(format!(
                    "`{text}` (`--reconcile-every` or `[serve] reconcile_every`): {e} (a duration such as `30s` or `5m`)"
                ))
            })?;
            if every.seconds() < 1 {
                return Err(CliError::Message(format!(
                    "`{text}` (`--reconcile-every` or `[serve] reconcile_every`): at least a second"
                )));
            }
            Some(Duration::from_secs(every.seconds()))
        }
    };
    let from_root = |file: &std::path::PathBuf| project.root.join(file);
    let cert = tls
        .0
        .map(Path::to_path_buf)
        .or_else(|| config.tls_cert.as_ref().map(from_root));
    let key = tls
        .1
        .map(Path::to_path_buf)
        .or_else(|| config.tls_key.as_ref().map(from_root));
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(CliError::Message(
                "TLS needs both a certificate and its key (`--tls-cert` and `--tls-key`, or `[serve] tls_cert` and `tls_key`)".to_string(),
            ))
        }
    };
    let client_ca = config.tls_client_ca.as_ref().map(from_root);
    if client_ca.is_some() && tls.is_none() {
        return Err(CliError::Message(
            "`[serve] tls_client_ca` asks clients for certificates, which needs TLS: add `tls_cert` and `tls_key` (or `--tls-cert` and `--tls-key`)".to_string(),
        ));
    }
    let public_url = config.public_url.clone();
    if let Some(url) = &public_url {
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.contains(char::is_whitespace)
        {
            return Err(CliError::Message(format!(
                "`[serve] public_url` `{url}` is not an http(s) URL (such as `https://writ.example.com`)"
            )));
        }
    }
    let session_key = match &config.session_key_env {
        None => None,
        Some(variable) => match std::env::var(variable) {
            Ok(key) if key.len() >= 32 => Some(key.into_bytes()),
            Ok(_) => {
                return Err(CliError::Message(format!(
                    "`{variable}` (`[serve] session_key_env`) holds fewer than 32 characters: make a key with `openssl rand -base64 48`"
                )))
            }
            Err(_) => {
                return Err(CliError::Message(format!(
                    "`[serve] session_key_env` names `{variable}`, which is not set: set it to the same key at every replica, or remove the setting (sessions then hold at the replica that issued them only)"
                )))
            }
        },
    };
    let audience = config
        .audience
        .clone()
        .unwrap_or_else(|| "writ".to_string());
    if audience.trim().is_empty() {
        return Err(CliError::Message(
            "`[serve] audience` is empty: name the audience workloads' tokens must be meant for (`writ`, or this deployment's own)".to_string(),
        ));
    }
    let credentials = serve::CredentialSettings {
        enabled: config.credentials == Some(true),
        audience,
        session_key,
        github_oidc_issuer: config
            .github_oidc_issuer
            .clone()
            .unwrap_or_else(|| writ_provider_github::oidc::ACTIONS_ISSUER.to_string()),
        google_oidc_issuer: config
            .google_oidc_issuer
            .clone()
            .unwrap_or_else(|| serve::GOOGLE_ISSUER.to_string()),
    };
    serve::serve(
        &project,
        path,
        Options {
            listen,
            audit_log,
            admin_token,
            watch_every: Duration::from_secs(config.watch_seconds.unwrap_or(2).max(1)),
            reconcile_every,
            tls,
            client_ca,
            public_url,
            credentials,
            revoke_in_providers: config.revoke_in_providers == Some(true),
        },
    )?;
    Ok(0)
}
