//! Where writ runs: whether standard output is a terminal that takes colour,
//! how wide it is, and whether this is a GitHub Actions job (whose runner
//! reads workflow commands, and whose checkout annotation paths are
//! relative to).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::OnceLock;

/// `--color`: when writ paints its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColourChoice {
    /// On a terminal that takes colour: not with `NO_COLOR` set (to
    /// anything but empty), nor with `TERM=dumb`.
    #[default]
    Auto,
    Always,
    Never,
}

static CHOICE: OnceLock<ColourChoice> = OnceLock::new();

/// Sets `--color` for the process (once, before anything prints).
pub fn choose_colour(choice: ColourChoice) {
    let _ = CHOICE.set(choice);
}

/// Does the environment let a terminal be painted?
fn environment_allows_colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

fn colour_on(terminal: bool) -> bool {
    match CHOICE.get().copied().unwrap_or_default() {
        ColourChoice::Always => true,
        ColourChoice::Never => false,
        ColourChoice::Auto => terminal && environment_allows_colour(),
    }
}

/// Colour on standard output.
pub fn colour() -> bool {
    colour_on(std::io::stdout().is_terminal())
}

/// Colour on standard error.
pub fn colour_stderr() -> bool {
    colour_on(std::io::stderr().is_terminal())
}

/// The width to lay diagnostics out in (`COLUMNS`, else 100).
pub fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// Where writ keeps what it may read again cheaply (GitHub's answers by
/// `ETag`): `WRIT_CACHE_DIR` (empty: nothing is kept), else
/// `$XDG_CACHE_HOME/writ`, else `~/.cache/writ`; `None` when there is no
/// home.
pub fn cache_dir() -> Option<PathBuf> {
    // Set and empty: nothing is kept.
    if let Some(dir) = std::env::var_os("WRIT_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("writ"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache").join("writ"))
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
