//! What the server answers: findings as LSP diagnostics, hover, go-to,
//! references, rename, symbols, completion, formatting and quick fixes.

use super::index::Kind;
use super::{Analysis, Server};
use lsp_server::{ErrorCode, Request};
use lsp_types::request::Request as _;
use lsp_types::{
    request, CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams,
    CodeActionProviderCapability, CompletionItem, CompletionItemKind, CompletionList,
    CompletionOptions, CompletionParams, CompletionTextEdit, DiagnosticRelatedInformation,
    DiagnosticSeverity, DocumentFormattingParams, DocumentSymbol, DocumentSymbolParams,
    GotoDefinitionParams, Hover, HoverContents, HoverParams, HoverProviderCapability,
    MarkupContent, MarkupKind, NumberOrString, OneOf, PrepareRenameResponse, Range,
    ReferenceParams, RenameOptions, RenameParams, ServerCapabilities, SymbolInformation,
    SymbolKind, TextDocumentPositionParams, TextDocumentSyncCapability, TextDocumentSyncKind,
    TextEdit, Url, WorkspaceEdit, WorkspaceSymbolParams,
};
use serde_json::Value;
use std::collections::HashMap;
use writ_compiler::facts::{self, ProviderKind};
use writ_compiler::syntax::ast::{self, StmtKind};
use writ_compiler::{Code, FileId, Severity, Span};

/// What the server offers.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(
            TextDocumentSyncKind::INCREMENTAL,
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        document_symbol_provider: Some(OneOf::Left(true)),
        workspace_symbol_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), ":".into(), " ".into()]),
            ..Default::default()
        }),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        ..Default::default()
    }
}

/// The diagnostics reference (`docs/diagnostics.md`, built into writ),
/// written once under the user's cache folder so that each code can link
/// to its section; `None` where it cannot be written.
pub fn diagnostics_reference() -> Option<Url> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    let folder = base
        .join("writ")
        .join(format!("docs-{}", env!("CARGO_PKG_VERSION")));
    let path = folder.join("diagnostics.md");
    let text = include_str!("../../docs/diagnostics.md");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
        std::fs::create_dir_all(&folder).ok()?;
        std::fs::write(&path, text).ok()?;
    }
    Url::from_file_path(&path).ok()
}

/// One finding as LSP has it: its code linked to its section of the
/// reference, its other labels as related information, its help in the
/// message.
pub fn diagnostic(
    analysis: &Analysis,
    finding: &writ_compiler::Diagnostic,
    docs: Option<&Url>,
) -> lsp_types::Diagnostic {
    let mut message = finding.message.clone();
    if !finding.primary.message.is_empty() {
        message.push_str(&format!(" ({})", finding.primary.message));
    }
    if let Some(help) = &finding.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = finding
        .secondary
        .iter()
        .filter_map(|label| {
            Some(DiagnosticRelatedInformation {
                location: analysis.location(label.span)?,
                message: label.message.clone(),
            })
        })
        .collect();
    let code_description = docs.map(|docs| {
        let mut href = docs.clone();
        // The section's anchor, as Markdown renderers make it from
        // "`writ::name`".
        href.set_fragment(Some(&format!("writ{}", finding.code.short_name())));
        lsp_types::CodeDescription { href }
    });
    lsp_types::Diagnostic {
        range: analysis.range(finding.primary.span),
        severity: Some(match finding.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(finding.code.as_str().to_string())),
        code_description,
        source: Some("writ".to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: None,
    }
}

type Answer = Result<Value, (ErrorCode, String)>;

fn parse<P: serde::de::DeserializeOwned>(request: Request) -> Result<P, (ErrorCode, String)> {
    serde_json::from_value(request.params).map_err(|e| {
        (
            ErrorCode::InvalidParams,
            format!("`{}`: {e}", request.method),
        )
    })
}

fn ok<T: serde::Serialize>(value: T) -> Answer {
    serde_json::to_value(value).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}

/// Answers one request.
pub fn answer(server: &mut Server, request: Request) -> Answer {
    let Some(analysis) = server.analysis.as_ref() else {
        return ok(Value::Null);
    };
    match request.method.as_str() {
        request::HoverRequest::METHOD => {
            let params: HoverParams = parse(request)?;
            ok(locate(analysis, &params.text_document_position_params)
                .and_then(|(file, offset)| hover(analysis, file, offset)))
        }
        request::GotoDefinition::METHOD => {
            let params: GotoDefinitionParams = parse(request)?;
            ok(
                locate(analysis, &params.text_document_position_params).and_then(
                    |(file, offset)| {
                        let (kind, name, _) = analysis.index.at(file, offset)?;
                        let definition = analysis.index.definition(kind, name)?;
                        analysis.location(definition.name_span)
                    },
                ),
            )
        }
        request::References::METHOD => {
            let params: ReferenceParams = parse(request)?;
            let include = params.context.include_declaration;
            ok(
                locate(analysis, &params.text_document_position).map(|(file, offset)| {
                    let Some((kind, name, _)) = analysis.index.at(file, offset) else {
                        return Vec::new();
                    };
                    let declared: Vec<Span> = analysis
                        .index
                        .definitions()
                        .filter(|d| d.kind == kind && d.name == name)
                        .map(|d| d.name_span)
                        .collect();
                    analysis
                        .index
                        .occurrences(kind, name)
                        .into_iter()
                        .filter(|span| include || !declared.contains(span))
                        .filter_map(|span| analysis.location(span))
                        .collect::<Vec<_>>()
                }),
            )
        }
        request::PrepareRenameRequest::METHOD => {
            let params: TextDocumentPositionParams = parse(request)?;
            unparsed(analysis)?;
            ok(locate(analysis, &params).and_then(|(file, offset)| {
                let (_, _, span) = analysis.index.at(file, offset)?;
                Some(PrepareRenameResponse::Range(analysis.range(span)))
            }))
        }
        request::Rename::METHOD => {
            let params: RenameParams = parse(request)?;
            unparsed(analysis)?;
            if let Some((file, _)) = locate(analysis, &params.text_document_position) {
                fresh(server, analysis, file)?;
            }
            rename(analysis, &params)
        }
        request::DocumentSymbolRequest::METHOD => {
            let params: DocumentSymbolParams = parse(request)?;
            ok(file_of(analysis, &params.text_document.uri).map(|file| symbols(analysis, file)))
        }
        request::WorkspaceSymbolRequest::METHOD => {
            let params: WorkspaceSymbolParams = parse(request)?;
            ok(workspace_symbols(analysis, &params.query))
        }
        request::Completion::METHOD => {
            let params: CompletionParams = parse(request)?;
            ok(locate(analysis, &params.text_document_position)
                .map(|(file, offset)| complete(analysis, file, offset)))
        }
        request::Formatting::METHOD => {
            let params: DocumentFormattingParams = parse(request)?;
            // The text as the editor has it now, whatever was checked last.
            ok(file_of(analysis, &params.text_document.uri)
                .and_then(|file| format(file, current(server, analysis, file)?)))
        }
        request::CodeActionRequest::METHOD => {
            let params: CodeActionParams = parse(request)?;
            if let Some(file) = file_of(analysis, &params.text_document.uri) {
                fresh(server, analysis, file)?;
            }
            ok(file_of(analysis, &params.text_document.uri).map(|file| {
                quick_fixes(
                    analysis,
                    file,
                    params.range,
                    server.docs.as_ref(),
                    server.place_cursor,
                )
            }))
        }
        method => Err((
            ErrorCode::MethodNotFound,
            format!("writ lsp does not answer `{method}`"),
        )),
    }
}

fn file_of(analysis: &Analysis, url: &Url) -> Option<FileId> {
    analysis.file_of_url(url)
}

/// The file and byte offset of a position in a document the server knows.
fn locate(analysis: &Analysis, at: &TextDocumentPositionParams) -> Option<(FileId, usize)> {
    let file = file_of(analysis, &at.text_document.uri)?;
    let offset = analysis.lines[file.0 as usize].offset(analysis.text(file), at.position);
    Some((file, offset))
}

fn markdown(text: String) -> HoverContents {
    HoverContents::Markup(MarkupContent {
        kind: MarkupKind::Markdown,
        value: text,
    })
}

fn hover(analysis: &Analysis, file: FileId, offset: usize) -> Option<Hover> {
    let model = &analysis.model;
    if let Some((kind, name, span)) = analysis.index.at(file, offset) {
        let text = match kind {
            Kind::Agent => {
                let id = model.agent_id(name)?;
                format!(
                    "```text\n{}```",
                    crate::describe::agent_text(&analysis.sources, model, id)
                )
            }
            Kind::Scope => {
                let scope = model.scopes.iter().find(|s| s.name == name)?;
                let mut text = format!("scope `{}`\n", scope.name);
                if !scope.docs.is_empty() {
                    text.push_str(&format!("\n{}\n", scope.docs));
                }
                text.push_str("\n```text\n");
                for grant in &scope.grants {
                    text.push_str(&crate::describe::one_line(&analysis.sources, grant.span));
                    text.push('\n');
                }
                text.push_str("```");
                text
            }
            Kind::Provider | Kind::Guardrail => {
                let definition = analysis.index.definition(kind, name)?;
                let body: String = analysis
                    .sources
                    .snippet(definition.item_span)
                    .lines()
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n");
                format!("{} `{name}`\n\n```writ\n{body}\n```", kind.word())
            }
        };
        return Some(Hover {
            contents: markdown(text),
            range: Some(analysis.range(span)),
        });
    }
    let tree = analysis.tree(file)?;
    if let Some((provider, action)) = action_at(tree, offset) {
        return Some(Hover {
            contents: markdown(describe_action(provider, &action.text)?),
            range: Some(analysis.range(action.span)),
        });
    }
    if let Some(resource) = kubernetes_resource_at(tree, offset) {
        let name = resource.value.split('/').next().unwrap_or_default();
        let known = facts::kubernetes::known_resources().find(|(n, _)| n == name);
        let text = match known {
            Some((_, facts::kubernetes::ResourceScope::Namespaced)) => format!(
                "**{}**: a namespaced Kubernetes resource; the grant holds in the namespaces it names (`in namespace`), or in every one (`in cluster`)",
                resource.value
            ),
            Some((_, facts::kubernetes::ResourceScope::Cluster)) => format!(
                "**{}**: a cluster-wide Kubernetes resource; only `in cluster` grants it",
                resource.value
            ),
            None => format!(
                "`{}`: not a resource writ knows (a custom resource, or a pattern)",
                resource.value
            ),
        };
        return Some(Hover {
            contents: markdown(text),
            range: Some(analysis.range(resource.span)),
        });
    }
    let ttl =
        field_at(tree, offset).filter(|f| f.name.text == "ttl" || f.name.text == "max_ttl")?;
    Some(Hover {
        contents: markdown(TTL.to_string()),
        range: Some(analysis.range(ttl.name.span.to(ttl.value.span))),
    })
}

const TTL: &str = "**ttl**: how long a credential of the agent may live.\n\n\
- AWS: a role's sessions last 1h to 12h (`MaxSessionDuration`); shorter only when the caller asks (`writ::ttl_not_enforced`); a delegate's chained sessions at most 1h.\n\
- GCP: tokens last 1h unless the caller asks for less; up to 12h only under the organisation policy `constraints/iam.allowServiceAccountCredentialLifetimeExtension`.\n\
- Kubernetes: service account tokens live at least 10m.\n\
- GitHub: installation tokens always live 1h.";

/// Every statement of a file, nested ones (`delegates`) included.
fn statements(tree: &ast::SourceFile) -> Vec<&ast::Stmt> {
    fn walk<'a>(body: &'a [ast::Stmt], out: &mut Vec<&'a ast::Stmt>) {
        for stmt in body {
            out.push(stmt);
            if let StmtKind::Delegates(inner) = &stmt.kind {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    for item in &tree.items {
        walk(item.kind.body(), &mut out);
    }
    out
}

fn inside(span: Span, offset: usize) -> bool {
    (span.start as usize) <= offset && offset <= span.end as usize
}

/// The action under the cursor, with its provider's kind.
fn action_at(tree: &ast::SourceFile, offset: usize) -> Option<(ProviderKind, &ast::Ident)> {
    statements(tree)
        .into_iter()
        .find_map(|stmt| match &stmt.kind {
            StmtKind::Grant(grant) => grant
                .actions
                .iter()
                .find(|a| inside(a.span, offset))
                .map(|a| (ProviderKind::parse(&grant.provider.kind.text), a)),
            StmtKind::Expect(expect) if inside(expect.action.span, offset) => Some((
                ProviderKind::parse(&expect.provider.kind.text),
                &expect.action,
            )),
            _ => None,
        })
        .and_then(|(kind, action)| Some((kind?, action)))
}

/// The resource of a Kubernetes grant under the cursor.
fn kubernetes_resource_at(tree: &ast::SourceFile, offset: usize) -> Option<&ast::Str> {
    statements(tree)
        .into_iter()
        .find_map(|stmt| match &stmt.kind {
            StmtKind::Grant(grant)
                if ProviderKind::parse(&grant.provider.kind.text)
                    == Some(ProviderKind::Kubernetes) =>
            {
                grant.resources.iter().find(|r| inside(r.span, offset))
            }
            _ => None,
        })
}

fn field_at(tree: &ast::SourceFile, offset: usize) -> Option<&ast::Field> {
    statements(tree)
        .into_iter()
        .find_map(|stmt| match &stmt.kind {
            StmtKind::Field(field) if inside(stmt.span, offset) => Some(field),
            _ => None,
        })
}

/// What the catalogues know of an action.
fn describe_action(kind: ProviderKind, action: &str) -> Option<String> {
    match kind {
        ProviderKind::Aws => {
            let catalogue = facts::aws::catalogue();
            if writ_compiler::pattern::has_wildcard(action) {
                let matched = catalogue.expand(action);
                let names: Vec<String> = matched
                    .iter()
                    .take(20)
                    .map(|(s, a)| format!("`{}:{}`", s.prefix, a.name))
                    .collect();
                return Some(format!(
                    "`{action}` matches {} AWS action{}: {}{}",
                    matched.len(),
                    if matched.len() == 1 { "" } else { "s" },
                    names.join(", "),
                    if matched.len() > 20 { ", …" } else { "" }
                ));
            }
            let (prefix, name) = action.split_once(':')?;
            let service = catalogue.service(prefix)?;
            let found = service.action(name)?;
            let mut text = format!(
                "**{}:{}**: AWS, access level {}\n",
                service.prefix,
                found.name,
                found.level.as_str()
            );
            if found.resource_types.is_empty() {
                text.push_str("\nNo resource-level permissions: only `\"*\"`.");
            } else {
                text.push_str("\nActs on:\n");
                for index in &found.resource_types {
                    if let Some(resource) = service.resource_types.get(*index) {
                        text.push_str(&format!(
                            "- {} (`{}`)\n",
                            resource.name,
                            resource.arns.join("`, `")
                        ));
                    }
                }
            }
            Some(text)
        }
        ProviderKind::Kubernetes => {
            let known = facts::kubernetes::VERBS.contains(&action);
            Some(if known {
                let mut text = format!("**{action}**: a Kubernetes verb");
                if facts::kubernetes::VERBS_UNRESTRICTABLE_BY_NAME.contains(&action) {
                    text.push_str(
                        "; it cannot be limited by `named` (RBAC matches no name for it)",
                    );
                }
                if facts::kubernetes::ESCALATION_VERBS.contains(&action) {
                    text.push_str("; it can escalate privilege");
                }
                text
            } else {
                format!("`{action}` is not a Kubernetes verb writ knows")
            })
        }
        ProviderKind::Github => {
            let (permission, level) = action.split_once(':').unwrap_or((action, ""));
            let levels = facts::github::levels(permission)?;
            Some(format!(
                "**{permission}**: a GitHub permission, levels {}{}",
                levels.join(", "),
                if level.is_empty() {
                    String::new()
                } else {
                    format!("; `{level}` here")
                }
            ))
        }
        ProviderKind::Gcp => Some(format!(
            "**{action}**: a GCP role, bound as written on each resource of the grant"
        )),
    }
}

/// Refuses a rename while a file does not parse: it may hold uses the
/// index cannot see.
fn unparsed(analysis: &Analysis) -> Result<(), (ErrorCode, String)> {
    match analysis.parsed.iter().position(|p| p.is_err()) {
        Some(broken) => Err((
            ErrorCode::RequestFailed,
            format!(
                "`{}` does not parse, so not every use of a name can be found: fix it first",
                analysis
                    .sources
                    .file(FileId(u32::try_from(broken).unwrap_or(u32::MAX)))
                    .name
            ),
        )),
        None => Ok(()),
    }
}

fn rename(analysis: &Analysis, params: &RenameParams) -> Answer {
    let Some((file, offset)) = locate(analysis, &params.text_document_position) else {
        return ok(Value::Null);
    };
    let Some((kind, name, _)) = analysis.index.at(file, offset) else {
        return Err((
            ErrorCode::InvalidParams,
            "nothing to rename here: put the cursor on a provider, scope, agent or guardrail"
                .to_string(),
        ));
    };
    let mut new = params.new_name.trim();
    // A provider's new name may be written whole (`aws.production`).
    if kind == Kind::Provider {
        let kind_word = name.split('.').next().unwrap_or_default();
        if let Some(rest) = new
            .strip_prefix(kind_word)
            .and_then(|r| r.strip_prefix('.'))
        {
            new = rest;
        }
    }
    let valid = new.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && new != "true"
        && new != "false"
        && new
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err((
            ErrorCode::InvalidParams,
            format!("`{new}` is not a name: letters, digits, `_` and `-`, starting with a letter or `_`"),
        ));
    }
    let full = match kind {
        Kind::Provider => format!("{}.{new}", name.split('.').next().unwrap_or_default()),
        _ => new.to_string(),
    };
    if full != name && analysis.index.definition(kind, &full).is_some() {
        return Err((
            ErrorCode::InvalidParams,
            format!("there is already a {} named `{full}`", kind.word()),
        ));
    }
    let mut changes: HashMap<Url, Vec<TextEdit>> = HashMap::new();
    for span in analysis.index.occurrences(kind, name) {
        if let Some(url) = analysis.url(span.file) {
            changes
                .entry(url)
                .or_default()
                .push(TextEdit::new(analysis.range(span), new.to_string()));
        }
    }
    ok(WorkspaceEdit {
        changes: Some(changes),
        ..Default::default()
    })
}

fn symbol_kind(kind: Kind) -> SymbolKind {
    match kind {
        Kind::Provider => SymbolKind::MODULE,
        Kind::Scope => SymbolKind::NAMESPACE,
        Kind::Agent => SymbolKind::OBJECT,
        Kind::Guardrail => SymbolKind::INTERFACE,
    }
}

#[allow(deprecated)]
fn symbols(analysis: &Analysis, file: FileId) -> Vec<DocumentSymbol> {
    analysis
        .index
        .definitions()
        .filter(|d| d.name_span.file == file)
        .map(|d| DocumentSymbol {
            name: d.name.clone(),
            detail: Some(d.kind.word().to_string()),
            kind: symbol_kind(d.kind),
            tags: None,
            deprecated: None,
            range: analysis.range(d.item_span),
            selection_range: analysis.range(d.name_span),
            children: None,
        })
        .collect()
}

#[allow(deprecated)]
fn workspace_symbols(analysis: &Analysis, query: &str) -> Vec<SymbolInformation> {
    let query = query.to_lowercase();
    analysis
        .index
        .definitions()
        .filter(|d| d.name.to_lowercase().contains(&query))
        .filter_map(|d| {
            Some(SymbolInformation {
                name: d.name.clone(),
                kind: symbol_kind(d.kind),
                tags: None,
                deprecated: None,
                location: analysis.location(d.name_span)?,
                container_name: Some(d.kind.word().to_string()),
            })
        })
        .collect()
}

fn item(label: impl Into<String>, kind: CompletionItemKind, detail: &str) -> CompletionItem {
    CompletionItem {
        label: label.into(),
        kind: Some(kind),
        detail: (!detail.is_empty()).then(|| detail.to_string()),
        ..Default::default()
    }
}

/// The completions at a place, each replacing the word being typed (after
/// a comma, the next one); a list cut short says so.
fn complete(analysis: &Analysis, file: FileId, offset: usize) -> CompletionList {
    let text = analysis.text(file);
    let line_start = text[..offset].rfind('\n').map_or(0, |at| at + 1);
    let word_start = text[line_start..offset]
        .rfind(|c: char| c.is_whitespace() || c == ',')
        .map_or(line_start, |at| line_start + at + 1);
    let range = analysis.lines[file.0 as usize].range(text, word_start, offset);
    let mut items = candidates(analysis, file, offset);
    let is_incomplete = items.len() >= ACTIONS_SHOWN;
    for item in &mut items {
        item.text_edit = Some(CompletionTextEdit::Edit(TextEdit::new(
            range,
            item.label.clone(),
        )));
    }
    CompletionList {
        is_incomplete,
        items,
    }
}

/// How many actions a completion lists at most.
const ACTIONS_SHOWN: usize = 200;

/// The completions at a place: by what the line says before it.
fn candidates(analysis: &Analysis, file: FileId, offset: usize) -> Vec<CompletionItem> {
    let text = analysis.text(file);
    let line_start = text[..offset].rfind('\n').map_or(0, |at| at + 1);
    let before = &text[line_start..offset];
    let words: Vec<&str> = before.split_whitespace().collect();
    // The word being typed (empty after a space).
    let typing = if before.ends_with(char::is_whitespace) {
        ""
    } else {
        words.last().copied().unwrap_or("")
    };
    let complete_words: &[&str] = if typing.is_empty() {
        &words
    } else {
        &words[..words.len() - 1]
    };
    let providers: Vec<(String, ProviderKind)> = analysis
        .index
        .definitions()
        .filter(|d| d.kind == Kind::Provider)
        .filter_map(|d| {
            let kind = ProviderKind::parse(d.name.split('.').next()?)?;
            Some((d.name.clone(), kind))
        })
        .collect();
    let names = |kind: Kind, detail: &str| -> Vec<CompletionItem> {
        analysis
            .index
            .definitions()
            .filter(|d| d.kind == kind)
            .map(|d| item(d.name.clone(), CompletionItemKind::REFERENCE, detail))
            .collect()
    };
    let kind_of = |word: &str| -> Option<ProviderKind> {
        let kind = word.split('.').next()?;
        ProviderKind::parse(kind)
    };
    match complete_words {
        // A grant's actions: `aws.prod allow …` (after a comma too).
        [provider, effect, rest @ ..]
            if (*effect == "allow" || *effect == "deny")
                && !rest.contains(&"on")
                && kind_of(provider).is_some() =>
        {
            actions(kind_of(provider).unwrap_or(ProviderKind::Aws), typing)
        }
        // A Kubernetes grant's resources: `… on "pods", "deployments.apps"`.
        [provider, "allow" | "deny", .., "on"] | [provider, "allow" | "deny", .., "on", _]
            if kind_of(provider) == Some(ProviderKind::Kubernetes) =>
        {
            let typed = typing.rsplit(',').next().unwrap_or(typing);
            let typed = typed.trim_start_matches('"');
            facts::kubernetes::known_resources()
                .filter(|(name, _)| name.starts_with(typed))
                .map(|(name, scope)| {
                    let scope = match scope {
                        facts::kubernetes::ResourceScope::Namespaced => "namespaced resource",
                        facts::kubernetes::ResourceScope::Cluster => "cluster-wide resource",
                    };
                    item(format!("\"{name}\""), CompletionItemKind::CLASS, scope)
                })
                .collect()
        }
        ["deny", provider, rest @ ..] if !rest.contains(&"on") && kind_of(provider).is_some() => {
            actions(kind_of(provider).unwrap_or(ProviderKind::Aws), typing)
        }
        ["runs_on"] => providers
            .iter()
            .map(|(name, _)| item(name.clone(), CompletionItemKind::MODULE, "provider"))
            .collect(),
        ["adopts"] => providers
            .iter()
            .filter(|(_, kind)| matches!(kind, ProviderKind::Aws | ProviderKind::Kubernetes))
            .map(|(name, _)| item(name.clone(), CompletionItemKind::MODULE, "provider"))
            .collect(),
        ["adopts", provider] => match providers.iter().find(|(n, _)| n == provider) {
            Some((_, ProviderKind::Aws)) => {
                vec![item(
                    "role",
                    CompletionItemKind::PROPERTY,
                    "the role's \"/PATH/NAME\"",
                )]
            }
            Some((_, ProviderKind::Kubernetes)) => vec![item(
                "service_account",
                CompletionItemKind::PROPERTY,
                "the service account's \"NAMESPACE/NAME\"",
            )],
            _ => Vec::new(),
        },
        ["runs_on", provider, ..] => match providers.iter().find(|(n, _)| n == provider) {
            Some((_, kind)) => kind
                .rules()
                .runs_on
                .iter()
                .map(|a| item(*a, CompletionItemKind::PROPERTY, "runs_on attribute"))
                .collect(),
            None => Vec::new(),
        },
        ["parent", "="] => names(Kind::Agent, "agent"),
        ["include" | "can", ..] => names(Kind::Scope, "scope"),
        ["expect"] => names(Kind::Agent, "agent"),
        [] => {
            // A new line: what the block around it takes.
            let block = enclosing(analysis, file, offset);
            let mut items: Vec<CompletionItem> = Vec::new();
            let keyword = |word: &str| item(word, CompletionItemKind::KEYWORD, "");
            match block {
                None => {
                    for word in ["provider", "scope", "agent", "guardrail", "test"] {
                        items.push(keyword(word));
                    }
                }
                Some(Block::Provider(kind)) => {
                    for field in kind.rules().fields {
                        items.push(item(*field, CompletionItemKind::FIELD, "field"));
                    }
                }
                Some(block) => {
                    let fields: &[&str] = match block {
                        Block::Agent => writ_compiler::check::fields::AGENT_FIELDS,
                        Block::Delegates => writ_compiler::check::fields::DELEGATES_FIELDS,
                        Block::Guardrail => writ_compiler::check::fields::GUARDRAIL_FIELDS,
                        _ => &[],
                    };
                    for field in fields {
                        items.push(item(*field, CompletionItemKind::FIELD, "field"));
                    }
                    let words: &[&str] = match block {
                        Block::Agent => &["runs_on", "adopts", "can", "delegates"],
                        Block::Scope => &["include"],
                        Block::Delegates => &["can"],
                        Block::Guardrail => &["deny"],
                        Block::Test => &["expect"],
                        Block::Provider(_) => &[],
                    };
                    for word in words {
                        items.push(keyword(word));
                    }
                    if matches!(block, Block::Agent | Block::Scope | Block::Delegates) {
                        for (name, _) in &providers {
                            items.push(item(name.clone(), CompletionItemKind::MODULE, "provider"));
                        }
                    }
                }
            }
            items
        }
        _ => Vec::new(),
    }
}

/// The catalogue's actions of a provider kind that start as typed.
fn actions(kind: ProviderKind, typing: &str) -> Vec<CompletionItem> {
    // After a comma, the next action.
    let typing = typing.rsplit(',').next().unwrap_or(typing);
    let lower = typing.to_ascii_lowercase();
    match kind {
        ProviderKind::Aws => {
            let catalogue = facts::aws::catalogue();
            match typing.split_once(':') {
                Some((prefix, _)) => match catalogue.service(prefix) {
                    Some(service) => service
                        .actions
                        .iter()
                        .map(|a| format!("{}:{}", service.prefix, a.name))
                        .filter(|name| name.to_ascii_lowercase().starts_with(&lower))
                        .take(ACTIONS_SHOWN)
                        .map(|name| item(name, CompletionItemKind::FUNCTION, "AWS action"))
                        .collect(),
                    None => Vec::new(),
                },
                None => catalogue
                    .services()
                    .map(|s| format!("{}:", s.prefix))
                    .filter(|prefix| prefix.starts_with(&lower))
                    .map(|prefix| item(prefix, CompletionItemKind::MODULE, "AWS service"))
                    .collect(),
            }
        }
        ProviderKind::Kubernetes => facts::kubernetes::VERBS
            .iter()
            .filter(|v| v.starts_with(&lower))
            .map(|v| item(*v, CompletionItemKind::FUNCTION, "Kubernetes verb"))
            .collect(),
        ProviderKind::Github => facts::github::PERMISSIONS
            .iter()
            .flat_map(|(permission, levels)| {
                levels
                    .iter()
                    .map(move |level| format!("{permission}:{level}"))
            })
            .filter(|p| p.starts_with(&lower))
            .map(|p| item(p, CompletionItemKind::FUNCTION, "GitHub permission"))
            .collect(),
        ProviderKind::Gcp => Vec::new(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Block {
    Provider(ProviderKind),
    Scope,
    Agent,
    Guardrail,
    Test,
    Delegates,
}

/// The block a place is in, from the lines above it (so that it holds
/// while the file does not parse): the nearest `{` not closed before the
/// place, counting braces outside strings and comments; `delegates {`
/// inside an agent is a block of its own.
fn enclosing(analysis: &Analysis, file: FileId, offset: usize) -> Option<Block> {
    let text = analysis.text(file);
    let line_start = text[..offset].rfind('\n').map_or(0, |at| at + 1);
    // Braces of a line, outside strings and `//` comments.
    let braces = |line: &str| -> (usize, usize) {
        let (mut opens, mut closes, mut quoted, mut escaped) = (0, 0, false, false);
        let mut previous = ' ';
        for c in line.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '/' if !quoted && previous == '/' => break,
                '{' if !quoted => opens += 1,
                '}' if !quoted => closes += 1,
                _ => {}
            }
            previous = c;
        }
        (opens, closes)
    };
    let mut pending = 0usize;
    let mut delegates = false;
    for line in text[..line_start].lines().rev() {
        let (opens, closes) = braces(line);
        pending += closes;
        let unclosed = opens.saturating_sub(pending);
        pending = pending.saturating_sub(opens);
        if unclosed == 0 {
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("delegates") && !delegates {
            delegates = true;
            continue;
        }
        let mut words = trimmed.split_whitespace();
        return Some(match words.next()? {
            "provider" => Block::Provider(ProviderKind::parse(words.next()?)?),
            "scope" => Block::Scope,
            "agent" if delegates => Block::Delegates,
            "agent" => Block::Agent,
            "guardrail" => Block::Guardrail,
            "test" => Block::Test,
            _ => return None,
        });
    }
    None
}

fn format(file: FileId, text: &str) -> Option<Vec<TextEdit>> {
    let parsed = writ_compiler::syntax::parse_file(file, text).ok()?;
    let formatted = writ_compiler::format::format_file(text, &parsed);
    if formatted == text {
        return Some(Vec::new());
    }
    Some(vec![TextEdit::new(
        super::text::Lines::new(text).range(text, 0, text.len()),
        formatted,
    )])
}

/// A document's text as the editor has it now.
fn current<'a>(server: &'a Server, analysis: &Analysis, file: FileId) -> Option<&'a str> {
    let path = analysis.paths.get(file.0 as usize)?;
    server.documents.get(path).map(|d| d.text.as_str())
}

/// Refuses an answer that edits a document the last check did not see as
/// it is now (a check that failed keeps the one before): its edits would
/// land on other text.
fn fresh(server: &Server, analysis: &Analysis, file: FileId) -> Result<(), (ErrorCode, String)> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    current(server, analysis, file)
        .unwrap_or_default()
        .hash(&mut hasher);
    if analysis.hashes.get(file.0 as usize) == Some(&hasher.finish()) {
        Ok(())
    } else {
        Err((
            ErrorCode::ContentModified,
            "the document changed since writ last checked it; ask again".to_string(),
        ))
    }
}

/// The quick fixes of the findings in `range` of a file.
fn quick_fixes(
    analysis: &Analysis,
    file: FileId,
    range: Range,
    docs: Option<&Url>,
    place_cursor: bool,
) -> Vec<CodeActionOrCommand> {
    let text = analysis.text(file);
    let lines = &analysis.lines[file.0 as usize];
    let (start, end) = (
        lines.offset(text, range.start),
        lines.offset(text, range.end),
    );
    let Some(url) = analysis.url(file) else {
        return Vec::new();
    };
    let mut fixes = Vec::new();
    for finding in &analysis.diagnostics {
        let span = finding.primary.span;
        if span.file != file || (span.end as usize) < start || (span.start as usize) > end {
            continue;
        }
        let lsp = diagnostic(analysis, finding, docs);
        // Only a did-you-mean is the fix to take without thinking: a
        // waiver accepts a risk, and says why.
        let mut fix = |title: String,
                       edits: Vec<TextEdit>,
                       preferred: bool,
                       command: Option<lsp_types::Command>| {
            fixes.push(CodeAction {
                title,
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![lsp.clone()]),
                edit: Some(WorkspaceEdit {
                    changes: Some(HashMap::from([(url.clone(), edits)])),
                    ..Default::default()
                }),
                is_preferred: Some(preferred),
                command,
                ..Default::default()
            });
        };
        let written = &text[span.start as usize..span.end as usize];
        // Every did-you-mean: the word written, replaced.
        if let Some(suggested) = finding
            .help
            .as_deref()
            .and_then(|h| h.split("did you mean `").nth(1))
            .and_then(|rest| rest.split('`').next())
        {
            // A string stays a string.
            let replacement = if written.starts_with('"') && !suggested.starts_with('"') {
                format!("\"{suggested}\"")
            } else {
                suggested.to_string()
            };
            if !written.is_empty() && !written.contains(char::is_whitespace) {
                fix(
                    format!("replace `{written}` with `{replacement}`"),
                    vec![TextEdit::new(analysis.range(span), replacement)],
                    true,
                    None,
                );
            }
        }
        // The statement the finding is in (a grant or a `runs_on` may run
        // over several lines): a waiver goes right above it.
        let statement = analysis.tree(file).and_then(|tree| {
            statements(tree)
                .into_iter()
                .filter(|s| matches!(s.kind, StmtKind::Grant(_) | StmtKind::RunsOn(_)))
                .find(|s| inside(s.span, span.start as usize))
                .map(|s| s.span.start as usize)
        });
        let anchor = statement.unwrap_or(span.start as usize);
        let line_start = text[..anchor].rfind('\n').map_or(0, |at| at + 1);
        let indent: String = text[line_start..]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        let at_line = lines.position(text, line_start);
        if finding.code.is_waivable() && statement.is_some() {
            // An empty reason is an error of its own: the reason must be
            // written. Above the statement's line; where the statement
            // does not start its line (`scope s { aws.p allow … }`), right
            // before it.
            let opening = format!("@waive({}, \"", finding.code.short_name());
            let waiver = format!("{opening}\")");
            let (edit, mut reason) = if text[line_start..anchor].trim().is_empty() {
                (
                    TextEdit::new(Range::new(at_line, at_line), format!("{indent}{waiver}\n")),
                    lsp_types::Position::new(at_line.line, utf16_len(&indent)),
                )
            } else {
                let at = lines.position(text, anchor);
                (TextEdit::new(Range::new(at, at), format!("{waiver} ")), at)
            };
            // Between the quotes, once the edit is made.
            reason.character += utf16_len(&opening);
            let command = place_cursor.then(|| lsp_types::Command {
                title: "write the reason".to_string(),
                command: PLACE_CURSOR.to_string(),
                arguments: Some(vec![serde_json::json!(url), serde_json::json!(reason)]),
            });
            fix(
                format!("accept with `@waive({}, \"…\")`", finding.code.short_name()),
                vec![edit],
                false,
                command,
            );
        }
        if finding.code == Code::UnusedScope {
            if let Some(definition) = analysis.index.definitions().find(|d| {
                d.kind == Kind::Scope
                    && d.item_span.file == file
                    && inside(d.item_span, span.start as usize)
            }) {
                let from = text[..definition.item_span.start as usize]
                    .rfind('\n')
                    .map_or(0, |at| at + 1);
                let mut to = definition.item_span.end as usize;
                if text[to..].starts_with('\n') {
                    to += 1;
                }
                fix(
                    format!("remove scope `{}`", definition.name),
                    vec![TextEdit::new(lines.range(text, from, to), String::new())],
                    false,
                    None,
                );
            }
        }
        // A block's missing field (the finding points at the block's head:
        // `agent x`, `provider aws p`, …), added on the line after its `{`.
        let at_head = analysis.index.definitions().any(|d| d.head == span);
        if finding.code == Code::MissingField && at_head {
            if let Some(example) = finding
                .help
                .as_deref()
                .and_then(|h| h.strip_prefix("add `"))
                .and_then(|rest| rest.strip_suffix('`'))
            {
                // After the line that opens the block.
                let brace = text[span.start as usize..]
                    .find('{')
                    .map(|at| span.start as usize + at + 1);
                if let Some(brace) = brace {
                    let position = lines.position(text, brace);
                    fix(
                        format!("add `{example}`"),
                        vec![TextEdit::new(
                            Range::new(position, position),
                            format!("\n{indent}  {example}"),
                        )],
                        false,
                        None,
                    );
                }
            }
        }
    }
    fixes
        .into_iter()
        .map(CodeActionOrCommand::CodeAction)
        .collect()
}

/// The command a quick fix carries to put the cursor where the user has
/// something to write (`[uri, position]`), run by the editor itself: by
/// writ's VS Code extension, which says so in its `initializationOptions`
/// (`{"placeCursor": true}`). Other editors are not sent it.
pub const PLACE_CURSOR: &str = "writ.placeCursor";

fn utf16_len(text: &str) -> u32 {
    u32::try_from(text.encode_utf16().count()).unwrap_or(u32::MAX)
}
