//! `writ lsp` in process, on an in-memory connection, driven as an editor
//! drives it: findings published and cleared, quick fixes, hover, go-to,
//! references and rename across files, completion from the catalogue,
//! formatting, unsaved buffers, and bad input that never stops it.

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PROVIDERS: &str = "provider aws prod {\n  account = \"123456789012\"\n}\n\n/// Reads invoices.\nscope invoices {\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::acme-invoices/*\"\n}\n";

const AGENTS: &str = "agent billing_bot {\n  owner = \"team-billing\"\n  ttl = 1h\n  runs_on aws.prod service \"lambda.amazonaws.com\"\n  can invoices\n}\n";

struct Client {
    connection: Connection,
    next: i32,
    notifications: Vec<Notification>,
    server: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Client {
    fn start(root: &Path) -> Client {
        Client::start_with(root, Value::Null)
    }

    /// As `start`, with the editor's `initializationOptions`.
    fn start_with(root: &Path, options: Value) -> Client {
        let (server, connection) = Connection::memory();
        let handle = std::thread::spawn(move || writ::lsp::serve(&server));
        let mut client = Client {
            connection,
            next: 0,
            notifications: Vec::new(),
            server: Some(handle),
        };
        let root = url(root);
        let answer = client.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": root,
                "capabilities": {
                    "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}},
                    "textDocument": {"publishDiagnostics": {"relatedInformation": true}},
                },
                "initializationOptions": options,
            }),
        );
        assert!(
            answer["capabilities"]["hoverProvider"] == json!(true),
            "{answer}"
        );
        client.notify("initialized", json!({}));
        client
    }

    /// The editor opens a document, at version 1.
    fn open(&self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "writ", "version": 1, "text": text}}),
        );
    }

    fn notify(&self, method: &str, params: Value) {
        self.connection
            .sender
            .send(Message::Notification(Notification::new(
                method.to_string(),
                params,
            )))
            .unwrap();
    }

    /// Sends a request and waits for its answer; notifications met on
    /// the way are kept, the server's own requests answered.
    fn try_request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
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
            match self.receive() {
                Message::Response(response) if response.id == id => {
                    return match response.error {
                        Some(error) => Err(json!({"code": error.code, "message": error.message})),
                        None => Ok(response.result.unwrap_or(Value::Null)),
                    }
                }
                Message::Response(_) => {}
                Message::Notification(notification) => self.notifications.push(notification),
                Message::Request(request) => self.answer(request),
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.try_request(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    fn answer(&self, request: Request) {
        self.connection
            .sender
            .send(Message::Response(Response::new_ok(request.id, Value::Null)))
            .unwrap();
    }

    fn receive(&self) -> Message {
        self.connection
            .receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the server answers within 30 s")
    }

    /// The next findings published for a document (those received
    /// already first).
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        loop {
            if let Some(at) = self.notifications.iter().position(|n| {
                n.method == "textDocument/publishDiagnostics" && n.params["uri"] == uri
            }) {
                let found = self.notifications.remove(at);
                return found.params["diagnostics"].as_array().unwrap().clone();
            }
            match self.receive() {
                Message::Notification(notification) => self.notifications.push(notification),
                Message::Request(request) => self.answer(request),
                Message::Response(_) => {}
            }
        }
    }

    /// Skips what was published so far for a document.
    fn forget(&mut self, uri: &str) {
        self.notifications
            .retain(|n| !(n.method == "textDocument/publishDiagnostics" && n.params["uri"] == uri));
    }

    fn shutdown(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let result = self.server.take().unwrap().join().unwrap();
        assert_eq!(result, Ok(()));
    }
}

fn url(path: &Path) -> String {
    lsp_types::Url::from_file_path(path).unwrap().to_string()
}

fn workspace(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("writ-lsp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("teams")).unwrap();
    std::fs::write(root.join("writ.toml"), "[project]\nname = \"acme\"\n").unwrap();
    std::fs::write(root.join("providers.writ"), PROVIDERS).unwrap();
    std::fs::write(root.join("teams/agents.writ"), AGENTS).unwrap();
    root.canonicalize().unwrap()
}

fn position(text: &str, needle: &str, plus: usize) -> Value {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle}")) + plus;
    let line = text[..at].matches('\n').count();
    let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": column})
}

fn at(uri: &str, text: &str, needle: &str, plus: usize) -> Value {
    json!({"textDocument": {"uri": uri}, "position": position(text, needle, plus)})
}

/// The text after applying LSP edits (sorted, not overlapping).
fn apply(text: &str, edits: &[Value]) -> String {
    let offset = |p: &Value| {
        let line = p["line"].as_u64().unwrap() as usize;
        let character = p["character"].as_u64().unwrap() as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        start + character
    };
    let mut edits: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| {
            (
                offset(&e["range"]["start"]),
                offset(&e["range"]["end"]),
                e["newText"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, new) in edits {
        out.replace_range(start..end, &new);
    }
    out
}

impl Client {
    /// The quick fix whose title starts so, for the finding of `code` in
    /// the document's findings: its edits applied to `text`, and whether
    /// it is the preferred one.
    fn apply_fix(
        &mut self,
        uri: &str,
        text: &str,
        found: &[Value],
        code: &str,
        title: &str,
    ) -> (String, bool) {
        let fix = self.fix(uri, found, code, title);
        (
            apply(text, fix["edit"]["changes"][uri].as_array().unwrap()),
            fix["isPreferred"] == true,
        )
    }

    /// The code action for a finding whose title starts so.
    fn fix(&mut self, uri: &str, found: &[Value], code: &str, title: &str) -> Value {
        let finding = found
            .iter()
            .find(|d| d["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {found:#?}"));
        let actions = self.request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": finding["range"], "context": {"diagnostics": [finding]}}),
        );
        let fix = actions
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["title"].as_str().unwrap().starts_with(title))
            .unwrap_or_else(|| panic!("no `{title}…` in {actions:#}"));
        fix.clone()
    }
}

#[test]
fn findings_appear_as_you_type_and_a_quick_fix_clears_them() {
    let root = workspace("findings");
    let mut client = Client::start(&root);
    let agents = url(&root.join("teams/agents.writ"));
    // An unsaved edit with a misspelt action: its finding, with the
    // did-you-mean, and a link to the reference.
    let broken = AGENTS.replace(
        "  can invoices\n",
        "  can invoices\n  aws.prod allow s3:GetObjekt on \"arn:aws:s3:::acme-invoices/*\"\n",
    );
    client.open(&agents, &broken);
    let found = client.diagnostics(&agents);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["code"], "writ::unknown_action");
    assert_eq!(found[0]["severity"], 1);
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `s3:GetObject`?"),
        "{found:#?}"
    );
    assert_eq!(
        found[0]["range"]["start"],
        position(&broken, "s3:GetObjekt", 0)
    );
    // The quick fix, applied as the editor would: a clean file.
    let (fixed, preferred) = client.apply_fix(
        &agents,
        &broken,
        &found,
        "writ::unknown_action",
        "replace `s3:GetObjekt` with `s3:GetObject`",
    );
    assert!(preferred);
    assert!(fixed.contains("allow s3:GetObject on"), "{fixed}");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": agents, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert_eq!(client.diagnostics(&agents), Vec::<Value>::new());
    // An edit older than what the server holds is ignored.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": agents, "version": 1}, "contentChanges": [{"text": "agent {"}]}),
    );
    let hover = client.request("textDocument/hover", at(&agents, &fixed, "billing_bot", 2));
    assert!(hover.is_object(), "the stale edit was not taken: {hover}");
    // A ranged edit (incremental sync) that breaks the syntax, then the
    // lint quick fix: `@waive` with an empty reason to write.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": agents, "version": 3}, "contentChanges": [{
            "range": {"start": position(&fixed, "s3:GetObject on", 0), "end": position(&fixed, "s3:GetObject on", 12)},
            "text": "s3:*",
        }]}),
    );
    let wide = fixed.replacen("s3:GetObject on", "s3:* on", 1);
    let found = client.diagnostics(&agents);
    let (waived, _) = client.apply_fix(
        &agents,
        &wide,
        &found,
        "writ::wildcard_action",
        "accept with `@waive(wildcard_action",
    );
    assert!(
        waived.contains("  @waive(wildcard_action, \"\")\n  aws.prod allow s3:* on"),
        "{waived}"
    );
    client.shutdown();
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn hover_go_to_references_and_rename_work_across_files() {
    let root = workspace("names");
    let mut client = Client::start(&root);
    let agents = url(&root.join("teams/agents.writ"));
    let providers = url(&root.join("providers.writ"));
    // Hover on the agent: what `writ explain` says.
    let hover = client.request("textDocument/hover", at(&agents, AGENTS, "billing_bot", 3));
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(
        text.contains("agent `billing_bot`") && text.contains("through scope `invoices`"),
        "{text}"
    );
    // On an action: the catalogue.
    let hover = client.request(
        "textDocument/hover",
        at(&providers, PROVIDERS, "GetObject", 2),
    );
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(
        text.contains("s3:GetObject") && text.contains("access level Read"),
        "{text}"
    );
    // On a ttl: what each provider enforces.
    let hover = client.request("textDocument/hover", at(&agents, AGENTS, "ttl", 1));
    assert!(hover["contents"]["value"]
        .as_str()
        .unwrap()
        .contains("MaxSessionDuration"));
    // The scope used in one file, declared in the other.
    let definition = client.request(
        "textDocument/definition",
        at(&agents, AGENTS, "invoices", 2),
    );
    assert_eq!(definition["uri"], providers);
    assert_eq!(
        definition["range"]["start"],
        position(PROVIDERS, "scope invoices", 6)
    );
    let references = client.request(
        "textDocument/references",
        json!({"textDocument": {"uri": providers}, "position": position(PROVIDERS, "scope invoices", 7), "context": {"includeDeclaration": true}}),
    );
    assert_eq!(references.as_array().unwrap().len(), 2, "{references:#}");
    // Rename the provider: its declaration and every use, in both files.
    let prepared = client.request(
        "textDocument/prepareRename",
        at(&agents, AGENTS, "aws.prod", 5),
    );
    assert_eq!(prepared["start"], position(AGENTS, "prod", 0));
    let edit = client.request(
        "textDocument/rename",
        json!({"textDocument": {"uri": agents}, "position": position(AGENTS, "aws.prod", 5), "newName": "production"}),
    );
    let renamed_agents = apply(AGENTS, edit["changes"][&agents].as_array().unwrap());
    let renamed_providers = apply(PROVIDERS, edit["changes"][&providers].as_array().unwrap());
    assert!(
        renamed_agents.contains("runs_on aws.production service"),
        "{renamed_agents}"
    );
    assert!(
        renamed_providers.contains("provider aws production {")
            && renamed_providers.contains("aws.production allow"),
        "{renamed_providers}"
    );
    // A name taken, or no name at all, is refused.
    let taken = client.try_request(
        "textDocument/rename",
        json!({"textDocument": {"uri": agents}, "position": position(AGENTS, "can invoices", 6), "newName": "not a name"}),
    );
    assert!(taken.is_err(), "{taken:?}");
    // Symbols of a file, and of the workspace.
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": providers}}),
    );
    let names: Vec<&str> = symbols
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["aws.prod", "invoices"]);
    let found = client.request("workspace/symbol", json!({"query": "BILL"}));
    assert_eq!(found[0]["name"], "billing_bot");
    client.shutdown();
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn completion_and_formatting() {
    let root = workspace("complete");
    let mut client = Client::start(&root);
    let agents = url(&root.join("teams/agents.writ"));
    let typing = AGENTS.replace(
        "  can invoices\n",
        "  can invoices\n  aws.prod allow s3:GetOb\n",
    );
    client.open(&agents, &typing);
    let items = client.request(
        "textDocument/completion",
        at(&agents, &typing, "s3:GetOb", "s3:GetOb".len()),
    );
    let labels: Vec<&str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"s3:GetObject"), "{labels:?}");
    // Each replaces the word typed, not only what follows its `:`.
    assert_eq!(
        items["items"][0]["textEdit"]["range"]["start"],
        position(&typing, "s3:GetOb", 0)
    );
    assert!(
        labels.iter().all(|l| l.starts_with("s3:GetOb")),
        "{labels:?}"
    );
    // A new line in an agent: its fields, keywords and providers.
    let items = client.request(
        "textDocument/completion",
        at(&agents, &typing, "  ttl = 1h\n", "  ttl = 1h\n".len()),
    );
    let labels: Vec<&str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    for expected in ["owner", "expires", "runs_on", "can", "aws.prod"] {
        assert!(labels.contains(&expected), "{expected} in {labels:?}");
    }
    // `can` takes the scopes.
    let items = client.request(
        "textDocument/completion",
        at(&agents, &typing, "can ", "can ".len()),
    );
    assert_eq!(items["items"][0]["label"], "invoices");
    // Right after an agent's `{`, at the start of a line: the agent's
    // fields; after a closed `delegates { … }`, still the agent's.
    let nested =
        "agent other {\n  owner = \"t\"\n  ttl = 1h\n  delegates {\n    ttl = 15m\n  }\n\n}\n";
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": agents, "version": 2}, "contentChanges": [{"text": nested}]}),
    );
    for (needle, plus, expect, not) in [
        ("agent other {\n", 14, "owner", "provider"),
        ("  }\n\n", 4, "runs_on", "max_depth"),
        ("    ttl = 15m\n", 14, "max_depth", "runs_on"),
    ] {
        let items = client.request("textDocument/completion", at(&agents, nested, needle, plus));
        let labels: Vec<&str> = items["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["label"].as_str().unwrap())
            .collect();
        assert!(
            labels.contains(&expect) && !labels.contains(&not),
            "after {needle:?}: {labels:?}"
        );
    }
    // Kubernetes resources, inside the string: completion and hover.
    let cluster = url(&root.join("teams/cluster.writ"));
    let k8s = "provider kubernetes prod {\n  cluster = \"prod\"\n}\n\nscope pods_read {\n  kubernetes.prod allow get on \"po\"\n}\n";
    client.open(&cluster, k8s);
    let items = client.request("textDocument/completion", at(&cluster, k8s, "\"po\"", 3));
    let labels: Vec<&str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"\"pods\""), "{labels:?}");
    let named = k8s.replace("\"po\"", "\"pods\"");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": cluster, "version": 2}, "contentChanges": [{"text": named}]}),
    );
    let hover = client.request("textDocument/hover", at(&cluster, &named, "\"pods\"", 2));
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("namespaced"),
        "{hover}"
    );
    // Formatting: what `writ fmt` writes.
    let messy = "agent   billing_bot {\n    owner = \"team-billing\"\n  ttl =   1h\n  runs_on aws.prod   service \"lambda.amazonaws.com\"\n    can invoices\n}\n";
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": agents, "version": 3}, "contentChanges": [{"text": messy}]}),
    );
    let edits = client.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": agents}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let formatted = apply(messy, edits.as_array().unwrap());
    assert_eq!(formatted, AGENTS);
    client.shutdown();
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_input_never_stops_the_server() {
    let root = workspace("bad");
    // A file that is not UTF-8: left out, and said.
    std::fs::write(root.join("teams/binary.writ"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let mut client = Client::start(&root);
    let agents = url(&root.join("teams/agents.writ"));
    // Settled: a request answered after the first check.
    client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": agents}, "position": {"line": 0, "character": 0}}),
    );
    assert!(
        client
            .notifications
            .iter()
            .any(|n| n.method == "window/showMessage"
                && n.params["message"]
                    .as_str()
                    .unwrap()
                    .contains("binary.writ")),
        "{:?}",
        client.notifications
    );
    // A request about a document the server does not know: no answer.
    let unknown = url(&root.join("elsewhere/nothing.writ"));
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": unknown}, "position": {"line": 0, "character": 0}}),
    );
    assert_eq!(hover, Value::Null);
    // A position past the end of a file.
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": agents}, "position": {"line": 999, "character": 999}}),
    );
    assert_eq!(hover, Value::Null);
    // A method it does not serve: an error answer, not an exit.
    let unknown = client.try_request("textDocument/inlayHint", json!({}));
    assert!(unknown.is_err());
    // Parameters that are not the method's.
    let wrong = client.try_request("textDocument/hover", json!({"nonsense": true}));
    assert!(wrong.is_err());
    // A file deleted while open: the buffer is what counts.
    client.open(&agents, AGENTS);
    std::fs::remove_file(root.join("teams/agents.writ")).unwrap();
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": agents, "type": 3}]}),
    );
    let hover = client.request("textDocument/hover", at(&agents, AGENTS, "billing_bot", 1));
    assert!(hover.is_object(), "{hover}");
    // Closed: gone from disk too, so gone from the workspace, and its
    // findings cleared.
    client.forget(&agents);
    client.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": agents}}),
    );
    let hover = client.request("textDocument/hover", at(&agents, AGENTS, "billing_bot", 1));
    assert_eq!(hover, Value::Null);
    // A file made on disk is picked up: its finding published.
    let made = root.join("teams/new.writ");
    std::fs::write(&made, "agent fresh {\n  ttl = 1h\n}\n").unwrap();
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": url(&made), "type": 1}]}),
    );
    let found = client.diagnostics(&url(&made));
    assert!(
        found.iter().any(|d| d["code"] == "writ::missing_field"),
        "{found:#?}"
    );
    // writ.toml changed on disk is read again: a broken one is said.
    let config = root.join("writ.toml");
    std::fs::write(&config, "[project]\nnmae = \"typo\"\n").unwrap();
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": url(&config), "type": 2}]}),
    );
    client.request(
        "textDocument/hover",
        at(&url(&made), "agent fresh", "fresh", 0),
    );
    assert!(
        client
            .notifications
            .iter()
            .any(|n| n.method == "window/showMessage"
                && n.params["message"].as_str().unwrap().contains("writ.toml")
                && n.params["message"].as_str().unwrap().contains("nmae")),
        "{:?}",
        client.notifications
    );
    client.shutdown();
    let _ = std::fs::remove_dir_all(&root);
}

/// pytest-lsp and what it runs on, pinned.
const PYTEST_LSP: &[&str] = &[
    "pytest-lsp==1.0.1",
    "pygls==2.1.1",
    "lsprotocol==2025.0.0",
    "pytest==9.2.0",
    "pytest-asyncio==1.5.0",
];

/// `tests/lsp/`: the server driven by an independent client (pytest-lsp),
/// with the capabilities Neovim and VS Code announce. Without Python or
/// the registry it is skipped with a message; with `WRIT_REQUIRE_PYTEST_LSP`
/// set (as `.ci/run` does) it fails.
#[test]
fn an_independent_client_with_real_editors_capabilities_agrees() {
    let python = match crate::support::python_venv("pytest-lsp-1.0.1", PYTEST_LSP) {
        Ok(python) => python,
        Err(reason) => {
            if std::env::var_os("WRIT_REQUIRE_PYTEST_LSP").is_some() {
                panic!("pytest-lsp is required (WRIT_REQUIRE_PYTEST_LSP is set) but unavailable: {reason}");
            }
            eprintln!("skipping: pytest-lsp is unavailable here: {reason}");
            return;
        }
    };
    let child = std::process::Command::new(python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lsp"))
        .env("WRIT_BIN", env!("CARGO_BIN_EXE_writ"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    // A server that stops answering fails the test, not CI's time limit.
    let started = std::time::Instant::now();
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = done.clone();
    std::thread::spawn(move || {
        while !finished.load(std::sync::atomic::Ordering::SeqCst) {
            if started.elapsed() > Duration::from_secs(300) {
                let _ = std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status();
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let output = child.wait_with_output().expect("python ran");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{shown}");
    // Both editors' profiles, every case.
    assert!(shown.contains("8 passed"), "{shown}");
}

#[test]
fn a_waiver_goes_above_a_wrapped_grant_and_exit_without_shutdown_fails() {
    let root = workspace("wrapped");
    let mut client = Client::start(&root);
    let agents = url(&root.join("teams/agents.writ"));
    let wrapped = AGENTS.replace(
        "  can invoices\n",
        "  can invoices\n  aws.prod allow s3:GetObject\n    on \"arn:aws:s3:::*\"\n",
    );
    client.open(&agents, &wrapped);
    let found = client.diagnostics(&agents);
    let (waived, preferred) = client.apply_fix(
        &agents,
        &wrapped,
        &found,
        "writ::wildcard_resource",
        "accept with `@waive",
    );
    assert!(!preferred);
    assert!(
        waived.contains("  @waive(wildcard_resource, \"\")\n  aws.prod allow s3:GetObject\n    on"),
        "{waived}"
    );
    // A grant on its block's own line: the waiver right before it, and the
    // source still parses.
    let providers = url(&root.join("providers.writ"));
    let one_line = "provider aws prod {\n  account = \"123456789012\"\n}\n\nscope invoices { aws.prod allow s3:* on \"arn:aws:s3:::x/*\" }\n";
    client.open(&providers, one_line);
    let found = client.diagnostics(&providers);
    let (waived, _) = client.apply_fix(
        &providers,
        one_line,
        &found,
        "writ::wildcard_action",
        "accept with `@waive",
    );
    assert!(
        waived.contains("scope invoices { @waive(wildcard_action, \"\") aws.prod allow s3:*"),
        "{waived}"
    );
    let parsed = writ_compiler::syntax::parse_file(writ_compiler::FileId(0), &waived);
    assert!(parsed.is_ok(), "{waived}");
    // `exit` without `shutdown`: the server stops, as a failure.
    client.notify("exit", Value::Null);
    let result = client.server.take().unwrap().join().unwrap();
    assert!(result.is_err(), "{result:?}");
    let _ = std::fs::remove_dir_all(&root);
}

/// The VS Code extension's grammar (`editors/vscode/`) colours its test
/// file as the file's assertions say, checked by `vscode-tmgrammar-test`
/// (npm, pinned, installed into `target/`; `WRIT_REQUIRE_TMGRAMMAR` in
/// `.ci/run`), and a wrong assertion is caught.
#[test]
fn the_vscode_grammar_colours_writ_as_its_test_says() {
    let Some(tool) = npm_tool(
        "vscode-tmgrammar-test@0.1.3",
        "vscode-tmgrammar-test",
        "WRIT_REQUIRE_TMGRAMMAR",
    ) else {
        return;
    };
    let editor = Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/vscode");
    let grammar = editor.join("syntaxes/writ.tmLanguage.json");
    let run = |test: &Path| {
        std::process::Command::new(&tool)
            .arg("-g")
            .arg(&grammar)
            .arg(test)
            .output()
            .expect("vscode-tmgrammar-test runs")
    };
    let output = run(&editor.join("test/grammar.writ"));
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // A negative control: a duration asserted to be a date.
    let wrong = std::env::temp_dir().join(format!("writ-grammar-{}.writ", std::process::id()));
    let text = std::fs::read_to_string(editor.join("test/grammar.writ")).unwrap();
    std::fs::write(
        &wrong,
        text.replacen(
            "constant.numeric.duration.writ",
            "constant.numeric.date.writ",
            1,
        ),
    )
    .unwrap();
    assert!(!run(&wrong).status.success());
    let _ = std::fs::remove_file(&wrong);
}

/// An npm package's program, installed once into `target/` (the package
/// pinned by its version); `None` (the test skipped) when npm cannot
/// install it, unless `require` is set in the environment, as `.ci/run`
/// sets it.
fn npm_tool(package: &str, program: &str, require: &str) -> Option<PathBuf> {
    let folder =
        crate::support::npm_package(package, &format!("node_modules/.bin/{program}"), require)?;
    Some(folder.join("node_modules/.bin").join(program))
}

/// The VS Code extension packages with `@vscode/vsce` (npm, pinned;
/// `WRIT_REQUIRE_VSCE` in `.ci/run`), its client library installed from
/// the extension's lock file, and the package holds what VS Code loads:
/// the manifest, the client and its library, the grammar and the language
/// configuration, and not the grammar's test.
#[test]
fn the_vscode_extension_packages_with_vsce() {
    // vsce needs Node.js 20 or later (`.ci/run` requires it only then).
    let node = std::process::Command::new("node").arg("--version").output();
    let major = node
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            v.trim()
                .trim_start_matches('v')
                .split('.')
                .next()?
                .parse::<u32>()
                .ok()
        });
    if major.is_none_or(|m| m < 20) {
        assert!(
            std::env::var_os("WRIT_REQUIRE_VSCE").is_none(),
            "vsce needs Node.js 20 or later, found {major:?}"
        );
        eprintln!("skipping: vsce needs Node.js 20 or later");
        return;
    }
    let Some(vsce) = npm_tool("@vscode/vsce@3.6.0", "vsce", "WRIT_REQUIRE_VSCE") else {
        return;
    };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/vscode");
    let build = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vsce-build");
    let _ = std::fs::remove_dir_all(&build);
    crate::support::copy_tree(&source, &build);
    let run = |program: &Path, args: &[&str]| {
        let output = std::process::Command::new(program)
            .args(args)
            .current_dir(&build)
            .output()
            .unwrap_or_else(|error| panic!("{} runs: {error}", program.display()));
        assert!(
            output.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(
        Path::new("npm"),
        &["ci", "--omit=dev", "--silent", "--no-audit", "--no-fund"],
    );
    run(&vsce, &["package", "--skip-license", "--out", "writ.vsix"]);
    // The package's listing, by Python's zipfile (the harness needs
    // Python for its other tools).
    let Ok(listed) = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-l", "writ.vsix"])
        .current_dir(&build)
        .output()
    else {
        assert!(
            std::env::var_os("WRIT_REQUIRE_VSCE").is_none(),
            "python3 is needed to list the package"
        );
        return;
    };
    assert!(listed.status.success());
    let listed = String::from_utf8_lossy(&listed.stdout);
    for file in [
        "extension/package.json",
        "extension/extension.js",
        "extension/language-configuration.json",
        "extension/syntaxes/writ.tmLanguage.json",
        "extension/node_modules/vscode-languageclient/package.json",
        "extension.vsixmanifest",
    ] {
        assert!(listed.contains(file), "{file} is not packaged:\n{listed}");
    }
    assert!(!listed.contains("extension/test/"), "{listed}");
    let _ = std::fs::remove_dir_all(&build);
}

/// Lowering's findings (the costly part of `writ check`) come once typing
/// pauses, and stay while other files change.
#[test]
fn lowering_findings_follow_a_pause_and_survive_edits_elsewhere() {
    let root = workspace("lowering");
    let mut client = Client::start(&root);
    let agents = url(&root.join("teams/agents.writ"));
    let providers = url(&root.join("providers.writ"));
    let unreachable = AGENTS.replace("  runs_on aws.prod service \"lambda.amazonaws.com\"\n", "");
    client.open(&agents, &unreachable);
    let lowered = |found: &[Value]| {
        found.iter().any(|d| {
            d["message"]
                .as_str()
                .unwrap()
                .contains("nothing may assume its role")
        })
    };
    let mut found = client.diagnostics(&agents);
    for _ in 0..5 {
        if lowered(&found) {
            break;
        }
        found = client.diagnostics(&agents);
    }
    assert!(lowered(&found), "{found:#?}");
    // An edit in another file: the finding stands (nothing published for
    // this file drops it) until lowering runs again, and after.
    client.forget(&agents);
    let edited = PROVIDERS.replace("/// Reads invoices.", "/// Reads the invoices.");
    client.open(&providers, &edited);
    let hover = client.request(
        "textDocument/hover",
        at(&agents, &unreachable, "billing_bot", 1),
    );
    assert!(hover.is_object());
    std::thread::sleep(Duration::from_millis(500));
    let hover = client.request(
        "textDocument/hover",
        at(&agents, &unreachable, "billing_bot", 1),
    );
    assert!(hover.is_object());
    let dropped = client.notifications.iter().any(|n| {
        n.method == "textDocument/publishDiagnostics"
            && n.params["uri"] == agents
            && !lowered(n.params["diagnostics"].as_array().unwrap())
    });
    assert!(!dropped, "{:#?}", client.notifications);
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": agents}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 9, "character": 0}}, "context": {"diagnostics": []}}),
    );
    assert!(actions.is_array());
    client.shutdown();
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn renames_wait_for_every_file_to_parse_and_requests_after_shutdown_are_refused() {
    let root = workspace("refusals");
    let mut client = Client::start(&root);
    let agents = url(&root.join("teams/agents.writ"));
    let providers = url(&root.join("providers.writ"));
    // A file that does not parse may hold uses of the name: no rename.
    client.open(&providers, "provider aws prod {\n");
    let refused = client.try_request(
        "textDocument/rename",
        json!({"textDocument": {"uri": agents}, "position": position(AGENTS, "billing_bot", 1), "newName": "biller"}),
    );
    assert!(
        refused.as_ref().is_err_and(|e| e["code"] == -32803),
        "{refused:?}"
    );
    // A file outside the project is not checked with it.
    let outside =
        std::env::temp_dir().join(format!("writ-lsp-outside-{}.writ", std::process::id()));
    std::fs::write(&outside, "agent stray {\n}\n").unwrap();
    client.open(&url(&outside), "agent stray {\n}\n");
    let symbols = client.request("workspace/symbol", json!({"query": "stray"}));
    assert_eq!(symbols, json!([]));
    let _ = std::fs::remove_file(&outside);
    // Shut down: a request after it is refused, as LSP says.
    client.request("shutdown", Value::Null);
    let after = client.try_request("textDocument/hover", at(&agents, AGENTS, "billing_bot", 1));
    assert!(
        after.as_ref().is_err_and(|e| e["code"] == -32600),
        "{after:?}"
    );
    client.notify("exit", Value::Null);
    let result = client.server.take().unwrap().join().unwrap();
    assert_eq!(result, Ok(()));
    let _ = std::fs::remove_dir_all(&root);
}

/// The byte offset of an LSP position (UTF-16 columns) in a text.
fn offset_of(text: &str, at: &Value) -> usize {
    let line = at["line"].as_u64().unwrap() as usize;
    let character = at["character"].as_u64().unwrap() as usize;
    let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
    let mut units = 0;
    for (offset, c) in text[start..].char_indices() {
        if units >= character {
            return start + offset;
        }
        units += c.len_utf16();
    }
    text.len()
}

#[test]
fn a_waiver_quick_fix_puts_the_cursor_in_its_reason_for_an_editor_that_runs_the_command() {
    let root = workspace("cursor");
    // Writ's VS Code extension says it runs `writ.placeCursor` itself.
    let mut client = Client::start_with(&root, json!({"placeCursor": true}));
    let agents = url(&root.join("teams/agents.writ"));
    let wide = AGENTS.replace(
        "  can invoices\n",
        "  can invoices\n  aws.prod allow s3:* on \"arn:aws:s3:::acme-invoices/*\"\n",
    );
    client.open(&agents, &wide);
    let found = client.diagnostics(&agents);
    let fix = client.fix(
        &agents,
        &found,
        "writ::wildcard_action",
        "accept with `@waive",
    );
    let waived = apply(&wide, fix["edit"]["changes"][&agents].as_array().unwrap());
    assert_eq!(fix["command"]["command"], "writ.placeCursor", "{fix:#}");
    assert_eq!(fix["command"]["arguments"][0], json!(agents), "{fix:#}");
    let cursor = offset_of(&waived, &fix["command"]["arguments"][1]);
    assert!(
        waived[..cursor].ends_with("@waive(wildcard_action, \"")
            && waived[cursor..].starts_with("\")"),
        "the cursor is not in the reason: {:?}|{:?}",
        &waived[..cursor],
        &waived[cursor..]
    );
    // A grant on its block's own line: the waiver goes right before it.
    let providers = url(&root.join("providers.writ"));
    let one_line = "provider aws prod {\n  account = \"123456789012\"\n}\n\nscope invoices { aws.prod allow s3:* on \"arn:aws:s3:::x/*\" }\n";
    client.open(&providers, one_line);
    let found = client.diagnostics(&providers);
    let fix = client.fix(
        &providers,
        &found,
        "writ::wildcard_action",
        "accept with `@waive",
    );
    let waived = apply(
        one_line,
        fix["edit"]["changes"][&providers].as_array().unwrap(),
    );
    let cursor = offset_of(&waived, &fix["command"]["arguments"][1]);
    assert!(
        waived[..cursor].ends_with("{ @waive(wildcard_action, \"")
            && waived[cursor..].starts_with("\") aws.prod"),
        "{waived}"
    );
    client.shutdown();
    // Another editor is not sent a command it cannot run.
    let mut client = Client::start(&root);
    client.open(&agents, &wide);
    let found = client.diagnostics(&agents);
    let fix = client.fix(
        &agents,
        &found,
        "writ::wildcard_action",
        "accept with `@waive",
    );
    assert!(fix.get("command").is_none(), "{fix:#}");
    client.shutdown();
    let _ = std::fs::remove_dir_all(&root);
}
