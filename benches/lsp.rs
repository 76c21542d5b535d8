//! The language server on a large workspace (issue 15): 100,000 lines in
//! 50 files, driven in process as an editor drives it. Goals: findings
//! published within 50 ms (p95) after a one-line edit; hover and
//! completion answered within 10 ms (p95).
//!
//! Run: `cargo bench --bench lsp` (divan's table, then p50 and p95 of each,
//! measured over every sample).

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/estate.rs"]
mod estate;

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The binary's allocator (`src/main.rs`): the server is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
    for (name, samples) in TIMES.lock().unwrap().iter_mut() {
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "{name}: p50 {:.2} ms, p95 {:.2} ms ({} samples)",
            at(0.5).as_secs_f64() * 1e3,
            at(0.95).as_secs_f64() * 1e3,
            samples.len()
        );
    }
}

static TIMES: Mutex<Vec<(&'static str, Vec<Duration>)>> = Mutex::new(Vec::new());

fn record(name: &'static str, took: Duration) {
    let mut times = TIMES.lock().unwrap();
    match times.iter_mut().find(|(n, _)| *n == name) {
        Some((_, samples)) => samples.push(took),
        None => times.push((name, vec![took])),
    }
}

const FILES: usize = 50;

/// A server on a generated workspace of about 100,000 lines in 50 files.
struct Session {
    connection: Connection,
    next: i32,
    edited: String,
    text: String,
    /// Where the edited line's `ttl` value is.
    ttl_line: u32,
    ttl_column: u32,
    version: i32,
    broken: bool,
    /// Where the first agent's name ends, and whether it is renamed.
    name_line: u32,
    name_column: u32,
    renamed: bool,
}

fn workspace() -> PathBuf {
    let root = std::env::temp_dir().join(format!("writ-bench-lsp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("writ.toml"), "[project]\nname = \"bench\"\n").unwrap();
    // About 32 lines a team: 3,125 teams, in 50 files.
    let files = estate::files(3_125);
    let per = files.len().div_ceil(FILES);
    for (index, chunk) in files.chunks(per).enumerate() {
        let text: String = chunk.iter().map(|(_, text)| text.as_str()).collect();
        std::fs::write(root.join(format!("part{index:02}.writ")), text).unwrap();
    }
    root.canonicalize().unwrap()
}

fn session() -> &'static Mutex<Session> {
    static SESSION: OnceLock<Mutex<Session>> = OnceLock::new();
    SESSION.get_or_init(|| {
        let root = workspace();
        let lines: usize = std::fs::read_dir(&root)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "writ"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
            .sum();
        eprintln!("workspace: {lines} lines in {FILES} files");
        let (server, connection) = Connection::memory();
        std::thread::spawn(move || writ::lsp::serve(&server));
        let path = root.join("part07.writ");
        let text = std::fs::read_to_string(&path).unwrap();
        let at = text.find("  ttl = ").unwrap() + "  ttl = ".len();
        let ttl_line = text[..at].matches('\n').count() as u32;
        let ttl_column = (at - text[..at].rfind('\n').map_or(0, |i| i + 1)) as u32;
        let name = text.find("agent ").unwrap() + "agent ".len();
        let name = name + text[name..].find(' ').unwrap();
        let name_line = text[..name].matches('\n').count() as u32;
        let name_column = (name - text[..name].rfind('\n').map_or(0, |i| i + 1)) as u32;
        let mut session = Session {
            connection,
            next: 0,
            edited: lsp_types::Url::from_file_path(&path).unwrap().to_string(),
            text,
            ttl_line,
            ttl_column,
            version: 1,
            broken: false,
            name_line,
            name_column,
            renamed: false,
        };
        let root_uri = lsp_types::Url::from_file_path(&root).unwrap().to_string();
        session.request(
            "initialize",
            json!({"processId": null, "rootUri": root_uri, "capabilities": {}}),
        );
        session.notify("initialized", json!({}));
        let (uri, text) = (session.edited.clone(), session.text.clone());
        session.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "writ", "version": 1, "text": text}}),
        );
        // Settled: a request answered after the first check.
        session.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}}),
        );
        Mutex::new(session)
    })
}

impl Session {
    fn notify(&self, method: &str, params: Value) {
        self.connection
            .sender
            .send(Message::Notification(Notification::new(
                method.to_string(),
                params,
            )))
            .unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.connection
            .sender
            .send(Message::Request(Request::new(
                id.clone(),
                method.to_string(),
                params,
            )))
            .unwrap();
        loop {
            match self.connection.receiver.recv().unwrap() {
                Message::Response(response) if response.id == id => {
                    return response.result.unwrap_or(Value::Null)
                }
                _ => {}
            }
        }
    }

    /// One keystroke's worth: the edited file's `ttl` value made malformed,
    /// or mended; returns when its findings are published.
    fn edit(&mut self) {
        self.version += 1;
        self.broken = !self.broken;
        let new = if self.broken { "x" } else { "1" };
        let start = json!({"line": self.ttl_line, "character": self.ttl_column});
        let end = json!({"line": self.ttl_line, "character": self.ttl_column + 1});
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": self.edited, "version": self.version},
                "contentChanges": [{"range": {"start": start, "end": end}, "text": new}]}),
        );
        self.published(self.broken || self.renamed);
    }

    /// Waits for the edited file's findings; with an error or without.
    fn published(&self, error: bool) {
        loop {
            if let Message::Notification(n) = self.connection.receiver.recv().unwrap() {
                if n.method == "textDocument/publishDiagnostics" && n.params["uri"] == self.edited {
                    let errors = n.params["diagnostics"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|d| d["severity"] == 1);
                    assert_eq!(errors, error, "{}", n.params);
                    return;
                }
            }
        }
    }

    /// An edit that changes what every item is checked against: the first
    /// agent renamed (a letter typed at the end of its name), or back.
    fn rename(&mut self) {
        self.version += 1;
        self.renamed = !self.renamed;
        let at = json!({"line": self.name_line, "character": self.name_column});
        let after = json!({"line": self.name_line, "character": self.name_column + 1});
        let (end, new) = if self.renamed {
            (at.clone(), "x")
        } else {
            (after, "")
        };
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": self.edited, "version": self.version},
                "contentChanges": [{"range": {"start": at, "end": end}, "text": new}]}),
        );
        // The agent's delegates name it as their parent.
        self.published(self.broken || self.renamed);
    }
}

#[divan::bench(sample_count = 40)]
fn diagnostics_after_a_one_line_edit(bencher: divan::Bencher) {
    let session = session();
    bencher.bench(|| {
        let mut session = session.lock().unwrap();
        let started = Instant::now();
        session.edit();
        record("diagnostics after an edit", started.elapsed());
    });
}

#[divan::bench(sample_count = 20)]
fn diagnostics_after_a_declaration_is_renamed(bencher: divan::Bencher) {
    let session = session();
    bencher.bench(|| {
        let mut session = session.lock().unwrap();
        let started = Instant::now();
        session.rename();
        record("diagnostics after a rename", started.elapsed());
    });
}

#[divan::bench(sample_count = 100)]
fn hover_on_an_agent(bencher: divan::Bencher) {
    let session = session();
    bencher.bench(|| {
        let mut session = session.lock().unwrap();
        let uri = session.edited.clone();
        let at = session.text.find("agent ").unwrap() + "agent ".len() + 1;
        let line = session.text[..at].matches('\n').count();
        let column = at - session.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let started = Instant::now();
        let hover = session.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": column}}),
        );
        record("hover", started.elapsed());
        assert!(hover.is_object(), "{hover}");
    });
}

#[divan::bench(sample_count = 100)]
fn completion_of_an_aws_action(bencher: divan::Bencher) {
    let session = session();
    bencher.bench(|| {
        let mut session = session.lock().unwrap();
        let uri = session.edited.clone();
        // At the end of an action already written: `s3:…` offers the
        // service's actions that start so.
        let at = session.text.find(" s3:").unwrap() + " s3:Get".len();
        let line = session.text[..at].matches('\n').count();
        let column = at - session.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let started = Instant::now();
        let items = session.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": column}}),
        );
        record("completion", started.elapsed());
        assert!(!items["items"].as_array().unwrap().is_empty(), "{items}");
    });
}
