//! A local IAM API for tests: moto's server, from PyPI, installed by the
//! harness itself into a virtual environment under `target/` and started on
//! a free port for each test, so `cargo test` needs nothing started by hand.
//!
//! Without Python or the package registry the tests say so and are skipped;
//! with `WRIT_REQUIRE_MOTO` set (as `.ci/run` does) they fail instead.

pub mod advisor;
pub mod proxy;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The moto release the tests are written against.
pub const MOTO_VERSION: &str = "5.2.5";

fn venv() -> PathBuf {
    // Integration tests get a scratch folder in target/; benchmarks do not.
    let scratch = option_env!("CARGO_TARGET_TMPDIR")
        .unwrap_or(concat!(env!("CARGO_MANIFEST_DIR"), "/target/tmp"));
    Path::new(scratch).join(format!("moto-{MOTO_VERSION}"))
}

/// Creates the virtual environment once per test run; the reason when that
/// cannot be done.
fn install() -> &'static Result<PathBuf, String> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let venv = venv();
        let server = venv.join("bin/moto_server");
        let marker = venv.join("installed");
        if marker.exists() && server.exists() {
            return Ok(server);
        }
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
        let run = run_step;
        run(
            Command::new(&python).args(["-m", "venv"]).arg(&venv),
            "creating a Python virtual environment",
        )?;
        run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .arg(format!("moto[server]=={MOTO_VERSION}")),
            "installing moto from PyPI",
        )?;
        std::fs::write(&marker, MOTO_VERSION).map_err(|e| e.to_string())?;
        Ok(server)
    })
}

/// One running moto server; stopped when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
    /// Where its output goes, to say why it stopped answering.
    log: PathBuf,
}

/// The Python of moto's environment, which has PyYAML (moto needs it):
/// other tests read YAML with it. `None` (after saying why) when moto
/// cannot be had here and the tests are not required.
pub fn python() -> Option<PathBuf> {
    match install() {
        Ok(server) => server.parent().map(|bin| bin.join("python")),
        Err(reason) => {
            if std::env::var_os("WRIT_REQUIRE_MOTO").is_some() {
                panic!("moto is required (WRIT_REQUIRE_MOTO is set) but unavailable: {reason}");
            }
            eprintln!("skipping: moto's Python is unavailable here: {reason}");
            None
        }
    }
}

impl Moto {
    /// Starts a server, or returns `None` (after saying why) when moto cannot
    /// be had here and the tests are not required.
    pub fn start() -> Option<Moto> {
        let server = match install() {
            Ok(server) => server.clone(),
            Err(reason) => {
                if std::env::var_os("WRIT_REQUIRE_MOTO").is_some() {
                    panic!("moto is required (WRIT_REQUIRE_MOTO is set) but unavailable: {reason}");
                }
                eprintln!("skipping: moto is unavailable here: {reason}");
                return None;
            }
        };
        let port = free_port();
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("moto-{port}.log"));
        let output = std::fs::File::create(&log).expect("moto's log");
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(output)
            .spawn()
            .expect("moto_server starts");
        let moto = Moto { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start listening on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends one IAM query-API request (as a person with the AWS CLI would,
    /// outside writ) and returns the response body.
    pub fn iam(&self, action: &str, parameters: &[(&str, &str)]) -> String {
        let (ok, response) = self.try_iam(action, parameters);
        assert!(ok, "{action} failed: {response}");
        response
    }

    /// A connection to the server: a refusal is tried again for a while (a
    /// loaded machine), then the test fails with the end of moto's log.
    fn connect(&self) -> TcpStream {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect(("127.0.0.1", self.port)) {
                Ok(stream) => return stream,
                Err(error) if Instant::now() >= deadline => {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(20).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    panic!(
                        "moto on port {} does not answer ({error}); its log ends:\n{}",
                        self.port,
                        tail.join("\n")
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Like [`Moto::iam`], but says whether the call succeeded instead of
    /// failing the test.
    pub fn try_iam(&self, action: &str, parameters: &[(&str, &str)]) -> (bool, String) {
        let mut body = format!("Action={action}&Version=2010-05-08");
        for (key, value) in parameters {
            body.push_str(&format!("&{key}={}", encode(value)));
        }
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        let mut stream = self.connect();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let ok = response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200");
        (ok, response)
    }
}

/// A port for a moto server, below the range the system hands out for
/// port 0 (32768 and up, where the tests' proxies and fake APIs listen):
/// taken by port 0, a port freed here could be bound by another test's
/// proxy before moto binds it, and a test would then talk to that proxy.
/// Ports are handed out in turn within this process, from a start that
/// differs between processes, skipping any in use.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 1_000) as u16 * 10;
    for _ in 0..12_000 {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % 12_000;
        let port = 20_000 + (start - 20_000 + offset) % 12_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port for moto between 20000 and 32000");
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Runs one step of installing a tool: `Err` says which and why, with
/// what the program wrote on standard error.
pub fn run_step(command: &mut std::process::Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
