//! Where writ runs: whether standard output is a terminal that takes colour,
//! how wide it is, and whether this is a GitHub Actions job (whose runner
//! reads workflow commands, and whose checkout annotation paths are
//! relative to).

use std::io::IsTerminal;
use std::path::PathBuf;

/// Colour on standard output: a terminal, and `NO_COLOR` unset or empty.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The width to lay diagnostics out in (`COLUMNS`, else 100).
pub fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// Is this a GitHub Actions job?
pub fn in_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// The checkout that annotation paths are relative to.
pub fn workspace() -> Option<PathBuf> {
    std::env::var_os("GITHUB_WORKSPACE")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
}

/// Who runs writ, as they say: `WRIT_ACTOR`, else the CI's actor
/// (`GITHUB_ACTOR`), else the login name (`USER`, `USERNAME`). Recorded
/// with a revocation; nothing authenticates it.
pub fn actor() -> Option<String> {
    ["WRIT_ACTOR", "GITHUB_ACTOR", "USER", "USERNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|value| value.trim().to_string())
        .find(|value| !value.is_empty())
}

/// This machine's name, as far as the environment or `/etc/hostname` say.
pub fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unknown host".to_string())
}
