//! `writ serve`: decisions at run time, through the AuthZEN API
//! (docs/serve.md).

use crate::error::{CliError, Outcome};
use crate::pipeline::load;
use crate::serve::{self, Options};
use std::path::Path;
use std::time::Duration;

pub fn run(path: &Path, listen: Option<&str>, audit_log: Option<&Path>) -> Outcome {
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
    serve::serve(
        &project,
        path,
        Options {
            listen,
            audit_log,
            admin_token,
            watch_every: Duration::from_secs(config.watch_seconds.unwrap_or(2).max(1)),
        },
    )?;
    Ok(0)
}
