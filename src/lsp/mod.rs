//! `writ lsp`: a language server over stdio (rust-analyzer's `lsp-server`
//! transport, synchronous like the compiler it runs).
//!
//! The workspace is the project holding the folder the editor opened (the
//! nearest `writ.toml` at or above it): every `.writ` file under it, with
//! the open buffers in place of the files on disk. After each change the
//! whole workspace is checked again as `writ check` checks it, but only the
//! files whose text changed are parsed again (each file's syntax tree is
//! kept with the text it was made from), and only the items whose file or
//! context changed are checked again (the compiler's `Memo`); changes that
//! arrive together are checked once. Findings are published for every
//! file, open or not.
//!
//! A request about a document the server does not know answers nothing; a
//! failure inside the server is an error answer or a message to the
//! editor, never an exit.

mod features;
mod index;
mod text;

use index::Index;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use lsp_types::{
    notification, request, ClientCapabilities, InitializeParams, MessageType, ShowMessageParams,
    Url,
};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use text::Lines;
use writ_compiler::model::Model;
use writ_compiler::syntax::ast;
use writ_compiler::{CheckOptions, Diagnostic, FileId, Parsed, SourceMap};

/// Serves one client on stdin and stdout until it shuts the server down.
pub fn run() -> Result<(), String> {
    let (connection, threads) = Connection::stdio();
    serve(&connection)?;
    drop(connection);
    threads
        .join()
        .map_err(|e| format!("the connection to the editor failed: {e}"))
}

/// Serves one client on `connection` until it shuts the server down.
pub fn serve(connection: &Connection) -> Result<(), String> {
    let capabilities = serde_json::to_value(features::capabilities())
        .map_err(|e| format!("cannot describe the server: {e}"))?;
    let initialize = connection
        .initialize(capabilities)
        .map_err(|e| format!("the editor did not start the session: {e}"))?;
    let params: InitializeParams = serde_json::from_value(initialize)
        .map_err(|e| format!("the editor's `initialize` is not LSP's: {e}"))?;
    let mut server = Server::new(&params);
    server.watch(connection, &params.capabilities);
    server.refresh(connection);
    let mut dirty = false;
    let mut shutting_down = false;
    loop {
        // Changes that arrive together are checked once: when nothing more
        // has come for a moment, or before a request is answered.
        let message = if shutting_down {
            match connection.receiver.recv() {
                Ok(message) => message,
                // Shut down, and gone without `exit`: done all the same.
                Err(_) => return Ok(()),
            }
        } else if !dirty && server.lower_pending {
            let wait = PAUSE.saturating_sub(server.changed_at.elapsed());
            match connection.receiver.recv_timeout(wait) {
                Ok(message) => message,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    server.lower(connection);
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err("the editor went away without shutting the server down".into())
                }
            }
        } else if dirty {
            match connection.receiver.recv_timeout(SETTLE) {
                Ok(message) => message,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    server.refresh(connection);
                    dirty = false;
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err("the editor went away without shutting the server down".into())
                }
            }
        } else {
            match connection.receiver.recv() {
                Ok(message) => message,
                Err(_) => {
                    return Err("the editor went away without shutting the server down".into())
                }
            }
        };
        match message {
            Message::Request(request) => {
                let id = request.id.clone();
                if shutting_down {
                    send(
                        connection,
                        Message::Response(Response::new_err(
                            id,
                            ErrorCode::InvalidRequest as i32,
                            "the server is shutting down".to_string(),
                        )),
                    );
                    continue;
                }
                if request.method == request::Shutdown::METHOD {
                    shutting_down = true;
                    send(connection, Message::Response(Response::new_ok(id, ())));
                    continue;
                }
                if dirty {
                    server.refresh(connection);
                    dirty = false;
                }
                // A quick fix may be for a lowering finding.
                // A quick fix asked for (not one an editor asks for by itself
                // as the cursor moves) may be for a lowering finding.
                let invoked = request.method == request::CodeActionRequest::METHOD
                    && request.params["context"]["triggerKind"]
                        .as_u64()
                        .unwrap_or(1)
                        == 1;
                if invoked {
                    server.lower(connection);
                }
                let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    server.request(request)
                }));
                let response = match answer {
                    Ok(Ok(result)) => Response::new_ok(id, result),
                    Ok(Err((code, message))) => Response::new_err(id, code as i32, message),
                    Err(_) => Response::new_err(
                        id,
                        ErrorCode::InternalError as i32,
                        "writ failed on this request; the server carries on".to_string(),
                    ),
                };
                send(connection, Message::Response(response));
            }
            Message::Notification(notification) => {
                if notification.method == notification::Exit::METHOD {
                    // LSP: exit 0 after `shutdown`, 1 without.
                    return if shutting_down {
                        Ok(())
                    } else {
                        Err("the editor asked the server to exit without shutting it down".into())
                    };
                }
                if shutting_down {
                    continue;
                }
                let changed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    server.notification(notification)
                }))
                .unwrap_or(false);
                if changed {
                    server.changed_at = std::time::Instant::now();
                }
                dirty |= changed;
            }
            // Answers to what the server asked (the file watcher's
            // registration): nothing to do.
            Message::Response(_) => {}
        }
    }
}

/// How long the server waits for more changes before checking again:
/// changes sent together (a paste and the edits an editor makes with it,
/// several cursors) arrive within it; keystrokes come further apart.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(2);

/// How long typing must pause before lowering runs.
const PAUSE: std::time::Duration = std::time::Duration::from_millis(300);

fn send(connection: &Connection, message: Message) {
    // A client gone away ends the loop at the next receive.
    let _ = connection.sender.send(message);
}

fn notify<N: notification::Notification>(connection: &Connection, params: N::Params) {
    send(
        connection,
        Message::Notification(Notification::new(N::METHOD.to_string(), params)),
    );
}

/// One `.writ` file of the workspace: on disk, or open in the editor.
struct Document {
    text: String,
    /// The hash of `text`, made again as it changes.
    hash: u64,
    /// The editor's version, while it is open.
    version: Option<i32>,
    /// The address the editor gave it (which may name it through a
    /// symbolic link): answers name it so.
    uri: Option<Url>,
}

/// A file's syntax tree, names and line tables, kept with what they were
/// made from; shared with the analysis that checked them, not copied.
struct Cached {
    hash: u64,
    file: FileId,
    name: String,
    source: Arc<writ_compiler::source::SourceFile>,
    parsed: Arc<Parsed>,
    lines: Arc<Lines>,
    index: Arc<index::FileIndex>,
}

fn hash_text(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// What was published for a file: writ's findings, and the hash and
/// address of the file each of their labels is in (its ranges move when
/// that file changes). While they stay the same, nothing is converted or
/// sent again.
#[derive(Debug, Default, PartialEq)]
struct Published {
    findings: Vec<Diagnostic>,
    /// For each label: its file's hash and address (a file renamed keeps
    /// its hash, and its links must follow it).
    labels: Vec<(u64, Option<Url>)>,
}

/// The workspace as last checked.
pub(crate) struct Analysis {
    pub sources: SourceMap,
    /// The path of each file, in the order of `sources`.
    pub paths: Vec<PathBuf>,
    /// The address of each file, as the editor names it.
    pub urls: Vec<Option<Url>>,
    /// The hash of each file's text.
    pub hashes: Vec<u64>,
    pub lines: Vec<Arc<Lines>>,
    /// Each file's syntax tree, or its syntax error.
    pub parsed: Vec<Arc<Parsed>>,
    pub model: Model,
    /// The checker's findings.
    pub checked: Vec<Diagnostic>,
    /// What `writ check` reports: the checker's findings and, when there is
    /// no error, lowering's.
    pub diagnostics: Vec<Diagnostic>,
    pub index: Index,
}

impl Analysis {
    /// A file's syntax tree, if it parses.
    pub fn tree(&self, file: FileId) -> Option<&ast::SourceFile> {
        self.parsed.get(file.0 as usize)?.as_ref().as_ref().ok()
    }

    /// The file an editor's address names (as the editor wrote it, or as
    /// its real path).
    pub fn file_of_url(&self, url: &Url) -> Option<FileId> {
        if let Some(index) = self.urls.iter().position(|u| u.as_ref() == Some(url)) {
            return Some(FileId(u32::try_from(index).unwrap_or(u32::MAX)));
        }
        self.file_of(&writ_path(url)?)
    }

    pub fn file_of(&self, path: &Path) -> Option<FileId> {
        self.paths
            .iter()
            .position(|p| p == path)
            .map(|i| FileId(u32::try_from(i).unwrap_or(u32::MAX)))
    }

    pub fn text(&self, file: FileId) -> &str {
        &self.sources.file(file).text
    }

    pub fn url(&self, file: FileId) -> Option<Url> {
        self.urls.get(file.0 as usize)?.clone()
    }

    pub fn range(&self, span: writ_compiler::Span) -> lsp_types::Range {
        let text = self.text(span.file);
        self.lines[span.file.0 as usize].range(text, span.start as usize, span.end as usize)
    }

    pub fn location(&self, span: writ_compiler::Span) -> Option<lsp_types::Location> {
        Some(lsp_types::Location::new(
            self.url(span.file)?,
            self.range(span),
        ))
    }
}

pub(crate) struct Server {
    /// The project's folder, when the editor opened one.
    root: Option<PathBuf>,
    /// The project's name (lowering names objects with it).
    project: String,
    documents: BTreeMap<PathBuf, Document>,
    cache: HashMap<PathBuf, Cached>,
    /// The checker's bodies, kept between checks.
    memo: writ_compiler::Memo,
    analysis: Option<Analysis>,
    /// What was last published for each file.
    published: HashMap<Url, Published>,
    /// Messages for the editor, sent with the next publication.
    messages: Vec<(MessageType, String)>,
    /// Where the diagnostics' reference is, for the codes' links.
    docs: Option<Url>,
    /// The editor runs `writ.placeCursor` itself (writ's VS Code extension
    /// says so in its `initializationOptions`): a quick fix that leaves
    /// something to write puts the cursor there.
    pub(crate) place_cursor: bool,
    /// The last check failed inside the compiler (said once).
    failed: bool,
    /// Lowering's findings, by the file they are in, as of the last time
    /// it ran, with each file's text hash then; and whether the current
    /// analysis still waits for it.
    lowered: Vec<(Vec<PathBuf>, Diagnostic)>,
    lowered_hashes: HashMap<PathBuf, u64>,
    lower_pending: bool,
    /// The last lowering failed inside the compiler (said once).
    lower_failed: bool,
    /// When the workspace last changed: lowering waits for a pause after it.
    changed_at: std::time::Instant,
}

impl Server {
    fn new(params: &InitializeParams) -> Server {
        #[allow(deprecated)]
        let opened = params
            .workspace_folders
            .as_ref()
            .and_then(|folders| folders.first())
            .map(|folder| folder.uri.clone())
            .or_else(|| params.root_uri.clone())
            .and_then(|uri| uri.to_file_path().ok());
        let root = opened.map(|folder| {
            let root = crate::project::project_folder(&folder);
            std::fs::canonicalize(&root).unwrap_or(root)
        });
        let mut server = Server {
            root,
            project: "writ".to_string(),
            documents: BTreeMap::new(),
            cache: HashMap::new(),
            memo: writ_compiler::Memo::default(),
            analysis: None,
            published: HashMap::new(),
            messages: Vec::new(),
            docs: features::diagnostics_reference(),
            place_cursor: params
                .initialization_options
                .as_ref()
                .and_then(|options| options.get("placeCursor"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            failed: false,
            lowered: Vec::new(),
            lowered_hashes: HashMap::new(),
            lower_pending: false,
            lower_failed: false,
            changed_at: std::time::Instant::now(),
        };
        server.load_disk();
        server
    }

    /// The project's name, from its writ.toml (or its folder's name).
    fn load_config(&mut self) {
        let Some(root) = self.root.clone() else {
            return;
        };
        let folder = root
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        let config = root.join("writ.toml");
        if config.is_file() {
            match crate::config::load(&config) {
                Ok(config) => {
                    if let Some(name) = config.project.name.or(folder) {
                        self.project = name;
                    }
                }
                Err(error) => self.messages.push((
                    MessageType::WARNING,
                    format!("writ.toml: {error}; checking the source without it"),
                )),
            }
        } else if let Some(name) = folder {
            self.project = name;
        }
    }

    /// Every `.writ` file under the project's folder, and its name.
    fn load_disk(&mut self) {
        self.load_config();
        let Some(root) = self.root.clone() else {
            return;
        };
        let mut files = Vec::new();
        if let Err(error) = crate::project::collect(&root, &mut files) {
            self.messages.push((
                MessageType::WARNING,
                format!("cannot read the project's files: {error}"),
            ));
        }
        for path in files {
            self.read_from_disk(&path);
        }
    }

    /// (Re)reads a file that is not open; one that cannot be read is left
    /// out, and said.
    fn read_from_disk(&mut self, path: &Path) {
        if self
            .documents
            .get(path)
            .is_some_and(|d| d.version.is_some())
        {
            return;
        }
        match crate::project::read_text(path) {
            Ok(text) => {
                self.documents.insert(
                    path.to_path_buf(),
                    Document {
                        hash: hash_text(&text),
                        text,
                        version: None,
                        uri: None,
                    },
                );
            }
            Err(error) => {
                self.documents.remove(path);
                self.messages
                    .push((MessageType::WARNING, format!("{error}; left out")));
            }
        }
    }

    /// Asks the editor to report `.writ` files made, changed and deleted
    /// on disk, where it can.
    fn watch(&self, connection: &Connection, capabilities: &ClientCapabilities) {
        let dynamic = capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|w| w.dynamic_registration)
            .unwrap_or(false);
        if !dynamic {
            return;
        }
        let options = lsp_types::DidChangeWatchedFilesRegistrationOptions {
            watchers: vec![
                lsp_types::FileSystemWatcher {
                    glob_pattern: lsp_types::GlobPattern::String("**/*.writ".to_string()),
                    kind: None,
                },
                lsp_types::FileSystemWatcher {
                    glob_pattern: lsp_types::GlobPattern::String("**/writ.toml".to_string()),
                    kind: None,
                },
            ],
        };
        let params = lsp_types::RegistrationParams {
            registrations: vec![lsp_types::Registration {
                id: "writ-files".to_string(),
                method: notification::DidChangeWatchedFiles::METHOD.to_string(),
                register_options: serde_json::to_value(options).ok(),
            }],
        };
        send(
            connection,
            Message::Request(Request::new(
                "writ/watch".to_string().into(),
                request::RegisterCapability::METHOD.to_string(),
                params,
            )),
        );
    }

    /// Checks the workspace again and publishes what changed. A failure
    /// inside the compiler keeps the last analysis, and is said once.
    fn refresh(&mut self, connection: &Connection) {
        let analysed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.analyse()));
        if analysed.is_err() {
            self.cache.clear();
            if !self.failed {
                self.failed = true;
                self.messages.push((
                    MessageType::ERROR,
                    "writ failed to check this workspace; its findings are those of the last check that succeeded".to_string(),
                ));
            }
        } else {
            self.failed = false;
        }
        self.publish(connection);
    }

    /// Lowers the checked workspace for lowering's findings (the costly
    /// part of `writ check` on a large workspace: it runs once typing
    /// pauses, or before a quick fix is asked for), and publishes them.
    fn lower(&mut self, connection: &Connection) {
        if !self.lower_pending {
            return;
        }
        self.lower_pending = false;
        let Some(analysis) = self.analysis.as_mut() else {
            return;
        };
        let project = self.project.clone();
        let lowered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            writ_compiler::lower::lower(&analysis.model, &project).diagnostics
        }));
        let Ok(found) = lowered else {
            // No finding of an earlier lowering is kept: they may no
            // longer hold.
            self.lowered.clear();
            self.lowered_hashes.clear();
            analysis.diagnostics = analysis.checked.clone();
            if !self.lower_failed {
                self.lower_failed = true;
                self.messages.push((
                    MessageType::ERROR,
                    "writ failed to lower this workspace; its findings are the checker's only"
                        .to_string(),
                ));
            }
            self.publish(connection);
            return;
        };
        self.lower_failed = false;
        self.lowered = found
            .iter()
            .filter_map(|d| {
                let files = std::iter::once(&d.primary)
                    .chain(&d.secondary)
                    .map(|label| analysis.paths.get(label.span.file.0 as usize).cloned())
                    .collect::<Option<Vec<PathBuf>>>()?;
                Some((files, d.clone()))
            })
            .collect();
        self.lowered_hashes = analysis
            .paths
            .iter()
            .zip(&analysis.hashes)
            .map(|(p, h)| (p.clone(), *h))
            .collect();
        analysis.diagnostics = analysis.checked.clone();
        analysis.diagnostics.extend(found);
        writ_compiler::diagnostic::sort_in_source_order(&mut analysis.diagnostics);
        self.publish(connection);
    }

    /// Checks the workspace as it is now.
    fn analyse(&mut self) {
        let today = crate::clock::today().unwrap_or_else(|error| {
            self.messages
                .push((MessageType::WARNING, format!("{error}; using today's date")));
            writ_compiler::values::Date::from_civil(
                jiff::Timestamp::now()
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .date(),
            )
        });
        let mut sources = SourceMap::new();
        let mut paths = Vec::new();
        let mut hashes = Vec::new();
        let mut urls = Vec::new();
        let mut lines = Vec::new();
        let mut parsed = Vec::new();
        let mut indices = Vec::new();
        for (path, document) in &self.documents {
            let file = FileId(u32::try_from(paths.len()).unwrap_or(u32::MAX));
            let name = self
                .root
                .as_deref()
                .and_then(|root| path.strip_prefix(root).ok())
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            let hash = document.hash;
            // The same text at the same place of the map parses to the
            // same tree, spans included.
            let fresh = self
                .cache
                .get(path)
                .is_some_and(|c| c.hash == hash && c.file == file && c.name == name);
            if !fresh {
                let source = Arc::new(writ_compiler::source::SourceFile::new(
                    name.clone(),
                    document.text.clone(),
                ));
                let tree = writ_compiler::syntax::parse_file(file, &document.text);
                let index = match &tree {
                    Ok(tree) => index::FileIndex::build(tree),
                    Err(_) => index::FileIndex::default(),
                };
                self.cache.insert(
                    path.clone(),
                    Cached {
                        hash,
                        file,
                        name,
                        source,
                        parsed: Arc::new(tree),
                        lines: Arc::new(Lines::new(&document.text)),
                        index: Arc::new(index),
                    },
                );
            }
            let Some(cached) = self.cache.get(path) else {
                continue;
            };
            sources.add_shared(cached.source.clone());
            hashes.push(hash);
            parsed.push(cached.parsed.clone());
            lines.push(cached.lines.clone());
            indices.push(cached.index.clone());
            urls.push(
                document
                    .uri
                    .clone()
                    .or_else(|| Url::from_file_path(path).ok()),
            );
            paths.push(path.clone());
        }
        self.cache
            .retain(|path, _| self.documents.contains_key(path));
        let (model, checked) = writ_compiler::check_incremental(
            parsed.iter().zip(&hashes).map(|(p, hash)| (&**p, *hash)),
            &CheckOptions { today },
            &mut self.memo,
        );
        let mut diagnostics = checked.clone();
        // Lowering's findings wait for a pause (see `lower`); meanwhile
        // those of files unchanged since it last ran stand.
        self.lower_pending = !checked.iter().any(Diagnostic::is_error);
        if self.lower_pending {
            'findings: for (files, finding) in &self.lowered {
                // Each label's file, as it is now: the finding stands only if
                // none of them changed.
                let mut now = Vec::with_capacity(files.len());
                for path in files {
                    let Some(index) = paths.iter().position(|p| p == path) else {
                        continue 'findings;
                    };
                    if self.lowered_hashes.get(path) != hashes.get(index) {
                        continue 'findings;
                    }
                    now.push(FileId(u32::try_from(index).unwrap_or(u32::MAX)));
                }
                let mut finding = finding.clone();
                let labels = std::iter::once(&mut finding.primary).chain(&mut finding.secondary);
                for (label, file) in labels.zip(now) {
                    label.span.file = file;
                }
                diagnostics.push(finding);
            }
            writ_compiler::diagnostic::sort_in_source_order(&mut diagnostics);
        }
        let index = Index::new(indices);
        let last = self.analysis.replace(Analysis {
            sources,
            paths,
            hashes,
            urls,
            lines,
            parsed,
            model,
            checked,
            diagnostics,
            index,
        });
        // The last analysis is large (a model, findings, an index): freed on
        // another thread, not while the editor waits for these findings.
        // Without a thread to be had, the closure is dropped here.
        let _ = std::thread::Builder::new().spawn(move || drop(last));
    }

    /// Sends each file's findings where they changed (an empty list clears
    /// them), and any message for the editor.
    fn publish(&mut self, connection: &Connection) {
        for (kind, message) in self.messages.drain(..) {
            notify::<notification::ShowMessage>(
                connection,
                ShowMessageParams { typ: kind, message },
            );
        }
        let Some(analysis) = &self.analysis else {
            return;
        };
        let mut now: HashMap<Url, Published> = HashMap::new();
        for index in 0..analysis.paths.len() {
            if let Some(url) = analysis.url(FileId(u32::try_from(index).unwrap_or(u32::MAX))) {
                now.entry(url).or_default();
            }
        }
        for diagnostic in &analysis.diagnostics {
            if let Some(url) = analysis.url(diagnostic.primary.span.file) {
                let published = now.entry(url).or_default();
                published.findings.push(diagnostic.clone());
                for label in std::iter::once(&diagnostic.primary).chain(&diagnostic.secondary) {
                    let hash = analysis.hashes.get(label.span.file.0 as usize);
                    published.labels.push((
                        hash.copied().unwrap_or_default(),
                        analysis.url(label.span.file),
                    ));
                }
            }
        }
        // Files gone: their findings cleared.
        for url in self.published.keys() {
            now.entry(url.clone()).or_default();
        }
        for (url, published) in &now {
            // Unchanged (a file without findings was last published empty).
            if self
                .published
                .get(url)
                .map_or(published.findings.is_empty(), |last| last == published)
            {
                continue;
            }
            let diagnostics = published
                .findings
                .iter()
                .map(|d| features::diagnostic(analysis, d, self.docs.as_ref()))
                .collect();
            let version = writ_path(url)
                .and_then(|path| self.documents.get(&path))
                .and_then(|d| d.version);
            notify::<notification::PublishDiagnostics>(
                connection,
                lsp_types::PublishDiagnosticsParams {
                    uri: url.clone(),
                    diagnostics,
                    version,
                },
            );
        }
        now.retain(|_, published| !published.findings.is_empty());
        self.published = now;
    }

    /// Applies a notification; whether the workspace changed.
    fn notification(&mut self, notification: Notification) -> bool {
        fn params<P: serde::de::DeserializeOwned>(notification: Notification) -> Option<P> {
            serde_json::from_value(notification.params).ok()
        }
        match notification.method.as_str() {
            notification::DidOpenTextDocument::METHOD => {
                let Some(opened) = params::<lsp_types::DidOpenTextDocumentParams>(notification)
                else {
                    return false;
                };
                let Some(path) = writ_path(&opened.text_document.uri) else {
                    return false;
                };
                // Outside the project (another project's, or a scratch
                // file): not checked with this one.
                if self.root.is_some() && !self.in_project(&path) {
                    self.messages.push((
                        MessageType::INFO,
                        format!("`{}` is not in this workspace's project; writ checks it with its own project only when the editor opens that folder", path.display()),
                    ));
                    return true;
                }
                self.documents.insert(
                    path,
                    Document {
                        hash: hash_text(&opened.text_document.text),
                        text: opened.text_document.text,
                        version: Some(opened.text_document.version),
                        uri: Some(opened.text_document.uri),
                    },
                );
                true
            }
            notification::DidChangeTextDocument::METHOD => {
                let Some(changed) = params::<lsp_types::DidChangeTextDocumentParams>(notification)
                else {
                    return false;
                };
                let Some(path) = writ_path(&changed.text_document.uri) else {
                    return false;
                };
                // Only an open document changes by the editor's edits.
                let Some(document) = self
                    .documents
                    .get_mut(&path)
                    .filter(|d| d.version.is_some())
                else {
                    return false;
                };
                // An edit older than what the server holds is stale.
                if document
                    .version
                    .is_some_and(|v| changed.text_document.version <= v)
                {
                    return false;
                }
                for change in changed.content_changes {
                    match change.range {
                        Some(range) => {
                            let lines = Lines::new(&document.text);
                            let start = lines.offset(&document.text, range.start);
                            let end = lines.offset(&document.text, range.end).max(start);
                            document.text.replace_range(start..end, &change.text);
                        }
                        None => document.text = change.text,
                    }
                }
                document.hash = hash_text(&document.text);
                document.version = Some(changed.text_document.version);
                true
            }
            notification::DidCloseTextDocument::METHOD => {
                let Some(closed) = params::<lsp_types::DidCloseTextDocumentParams>(notification)
                else {
                    return false;
                };
                let Some(path) = writ_path(&closed.text_document.uri) else {
                    return false;
                };
                // Opened again under another address (a symbolic link):
                // that one stays open.
                if self.documents.get(&path).is_some_and(|d| {
                    d.uri
                        .as_ref()
                        .is_some_and(|u| *u != closed.text_document.uri)
                }) {
                    return false;
                }
                // Back to what is on disk, if anything (unsaved edits are
                // the editor's to keep).
                self.documents.remove(&path);
                if self.in_project(&path) && path.is_file() {
                    self.read_from_disk(&path);
                }
                true
            }
            notification::DidSaveTextDocument::METHOD => false,
            notification::DidChangeWatchedFiles::METHOD => {
                let Some(changes) = params::<lsp_types::DidChangeWatchedFilesParams>(notification)
                else {
                    return false;
                };
                let mut changed = false;
                for event in changes.changes {
                    // The project's writ.toml: its name again (lowering
                    // names objects with it), and lowering's findings anew.
                    let config = self.root.as_ref().map(|root| root.join("writ.toml"));
                    if config.is_some() && real_path(&event.uri) == config {
                        self.load_config();
                        self.lowered.clear();
                        self.lowered_hashes.clear();
                        changed = true;
                        continue;
                    }
                    let Some(path) = writ_path(&event.uri) else {
                        continue;
                    };
                    let open = self
                        .documents
                        .get(&path)
                        .is_some_and(|d| d.version.is_some());
                    if open || !self.in_project(&path) {
                        continue;
                    }
                    if event.typ == lsp_types::FileChangeType::DELETED || !path.is_file() {
                        changed |= self.documents.remove(&path).is_some();
                    } else {
                        self.read_from_disk(&path);
                        changed = true;
                    }
                }
                // A folder deleted or renamed may be told as one event for
                // the folder: files that are not open and are gone, go.
                let before = self.documents.len();
                self.documents
                    .retain(|path, d| d.version.is_some() || path.is_file());
                changed || self.documents.len() != before
            }
            _ => false,
        }
    }

    /// Is the file one `writ check` of the project reads: under its
    /// folder, in no hidden folder nor `target/`, not hidden itself?
    fn in_project(&self, path: &Path) -> bool {
        let Some(rest) = self
            .root
            .as_deref()
            .and_then(|root| path.strip_prefix(root).ok())
        else {
            return false;
        };
        rest.components().all(|part| {
            let part = part.as_os_str().to_string_lossy();
            !part.starts_with('.') && part != "target"
        })
    }

    /// Answers a request: its result, or an error code and message.
    fn request(&mut self, request: Request) -> Result<serde_json::Value, (ErrorCode, String)> {
        features::answer(self, request)
    }
}

/// The path of a `.writ` document, made absolute and canonical as the
/// workspace's paths are.
fn writ_path(url: &Url) -> Option<PathBuf> {
    real_path(url).filter(|path| path.extension().is_some_and(|e| e == "writ"))
}

/// The file an address names, its folder's symbolic links resolved.
fn real_path(url: &Url) -> Option<PathBuf> {
    let path = url.to_file_path().ok()?;
    Some(
        match (path.parent().map(std::fs::canonicalize), path.file_name()) {
            (Some(Ok(parent)), Some(name)) => parent.join(name),
            _ => path,
        },
    )
}
