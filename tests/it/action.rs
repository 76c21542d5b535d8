//! The composite action's download of a released binary
//! (`scripts/action-download.sh`), against a local release server (Python's
//! `http.server` over a folder laid out as GitHub's release downloads):
//! the binary is used only when the release was built from the action's
//! own sources and matches its checksum and provenance; otherwise the
//! action builds, or, for a binary that does not match, fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const REPOSITORY: &str = "writ-dev/writ";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn version() -> String {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("a version in Cargo.toml")
        .to_string()
}

fn sh(command: &str, folder: &Path) -> String {
    let output = Command::new("bash")
        .arg("-c")
        .arg(command)
        .current_dir(folder)
        .output()
        .unwrap();
    assert!(output.status.success(), "{command}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Python's file server over `folder`, once it answers.
fn serve(folder: &Path) -> Option<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(folder)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child, port);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

/// A release of this version for Linux x86_64 (its binary a script that
/// says `released`), with `sources` as its SOURCES.
fn release(folder: &Path, sources: &str) -> PathBuf {
    let tag = format!("v{}", version());
    let dir = folder.join(REPOSITORY).join("releases/download").join(&tag);
    std::fs::create_dir_all(&dir).unwrap();
    let build = folder.join("build");
    std::fs::create_dir_all(&build).unwrap();
    std::fs::write(build.join("writ"), "#!/bin/sh\necho released\n").unwrap();
    let archive = format!("writ-{tag}-x86_64-unknown-linux-musl.tar.gz");
    sh(
        &format!(
            "chmod +x '{0}/writ' && tar -C '{0}' -czf '{1}' writ",
            build.display(),
            dir.join(&archive).display()
        ),
        folder,
    );
    let sum = sh(&format!("sha256sum '{archive}'"), &dir);
    std::fs::write(dir.join("SHA256SUMS"), sum).unwrap();
    std::fs::write(dir.join("SOURCES"), format!("{sources}\n")).unwrap();
    dir.join(archive)
}

/// The step, as the action runs it on a Linux x86_64 runner; `gh` is a
/// stub that exits with `attested`'s answer.
fn download(server: &Server, runner: &Path, attested: bool, os: &str) -> (Output, String) {
    let bin = runner.join("stub-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let gh = bin.join("gh");
    std::fs::write(
        &gh,
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = \"attestation verify\" ] || exit 2\nexit {}\n",
            if attested { 0 } else { 1 }
        ),
    )
    .unwrap();
    sh(&format!("chmod +x '{}'", gh.display()), runner);
    let output_file = runner.join("github-output");
    let _ = std::fs::remove_file(&output_file);
    let temp = runner.join("temp");
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir_all(&temp).unwrap();
    let output = Command::new("bash")
        .arg(root().join("scripts/action-download.sh"))
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("ACTION_REPOSITORY", REPOSITORY)
        .env(
            "GITHUB_SERVER_URL",
            format!("http://127.0.0.1:{}", server.1),
        )
        .env("GITHUB_ACTION_PATH", root())
        .env("GITHUB_OUTPUT", &output_file)
        .env("RUNNER_TEMP", &temp)
        .env("RUNNER_OS", os)
        .env("RUNNER_ARCH", "X64")
        .output()
        .unwrap();
    let said = std::fs::read_to_string(&output_file).unwrap_or_default();
    (output, said)
}

#[test]
fn the_action_uses_a_release_only_when_it_is_the_actions_own_sources_and_verified() {
    let folder = std::env::temp_dir().join(format!("writ-action-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let Some(server) = serve(&folder) else {
        panic!("python3 -m http.server did not start");
    };
    let runner = folder.join("runner");
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).to_string();
    // No release yet: build from source.
    let (output, said) = download(&server, &runner, true, "Linux");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(said, "found=false\n");
    assert!(
        stderr(&output).contains("no release v"),
        "{}",
        stderr(&output)
    );
    // A release of the same version from other sources: build.
    let archive = release(&folder, "0000");
    let (output, said) = download(&server, &runner, true, "Linux");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(said, "found=false\n");
    assert!(
        stderr(&output).contains("was built from other sources than this action's"),
        "{}",
        stderr(&output)
    );
    // From these sources, matching its checksum and attested: used.
    let key = sh("scripts/source-key.sh", &root());
    release(&folder, key.trim());
    let (output, said) = download(&server, &runner, true, "Linux");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(said, "found=true\n");
    let binary = runner.join("temp/writ/bin/writ");
    assert_eq!(
        sh(&format!("'{}'", binary.display()), &runner),
        "released\n"
    );
    // Not attested: refused, and the step fails.
    let (output, said) = download(&server, &runner, false, "Linux");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(said.is_empty());
    assert!(
        stderr(&output).contains("has no build provenance"),
        "{}",
        stderr(&output)
    );
    // Swapped for another archive: refused, and the step fails.
    sh(
        &format!("printf 'tampered' | gzip > '{}'", archive.display()),
        &folder,
    );
    let (output, said) = download(&server, &runner, true, "Linux");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(said.is_empty());
    assert!(
        stderr(&output).contains("does not match its SHA-256"),
        "{}",
        stderr(&output)
    );
    assert!(!runner.join("temp/writ/bin/writ").exists());
    // A runner with no released binary: build.
    let (output, said) = download(&server, &runner, true, "Windows");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(said, "found=false\n");
    drop(server);
    let _ = std::fs::remove_dir_all(&folder);
}
