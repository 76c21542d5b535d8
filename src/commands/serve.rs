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
                    "`--reconcile-every {text}`: {e} (a duration such as `30s` or `5m`)"
                ))
            })?;
            if every.seconds() < 1 {
                return Err(CliError::Message(format!(
                    "`--reconcile-every {text}`: at least a second"
                )));
            }
            Some(Duration::from_secs(every.seconds()))
        }
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
        },
    )?;
    Ok(0)
}
