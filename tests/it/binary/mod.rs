//! Running the writ binary in end-to-end tests, in one environment: a fixed
//! "today", and none of the machine's own cloud, cluster or GitHub settings
//! (fake AWS credentials, which moto accepts; no kubeconfig; no Actions
//! variables).

use std::path::Path;
use std::process::{Command, Output};

/// The binary with the tests' environment.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_writ"));
    command
        .env("WRIT_TODAY", "2026-11-28")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("KUBECONFIG", "/nonexistent");
    for name in [
        "GITHUB_ACTIONS",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_EVENT_PATH",
        "GITHUB_REPOSITORY",
        "GITHUB_SHA",
        "GITHUB_API_URL",
        "GITHUB_TOKEN",
        "GITHUB_WORKSPACE",
    ] {
        command.env_remove(name);
    }
    command
}

pub fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("writ runs")
}

/// Runs writ on the project: the arguments, then the project folder.
pub fn writ(root: &Path, args: &[&str]) -> Output {
    command().args(args).arg(root).output().expect("writ runs")
}

/// [`writ`] with these environment variables set.
pub fn writ_with(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command()
        .args(args)
        .arg(root)
        .envs(env.iter().copied())
        .output()
        .expect("writ runs")
}

/// Standard output, then standard error.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `writ apply --auto-approve`, which must succeed; what it printed.
pub fn apply(root: &Path) -> String {
    let output = writ(root, &["apply", "--auto-approve"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "apply failed:\n{all}");
    all
}

/// A second plan shows nothing to do.
pub fn assert_no_changes(root: &Path) {
    let output = writ(root, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "expected no changes:\n{}",
        text(&output)
    );
}
