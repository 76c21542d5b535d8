//! The names of a workspace: where each provider, scope, agent and
//! guardrail is declared, and every place that names one, from the syntax
//! trees (so that go-to, references and rename work across files, and on
//! a file whose meaning does not check yet).

use std::sync::Arc;
use writ_compiler::syntax::ast::{self, Item, ItemKind, Stmt, StmtKind, ValueKind};
use writ_compiler::{FileId, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Provider,
    Scope,
    Agent,
    Guardrail,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Provider => "provider",
            Kind::Scope => "scope",
            Kind::Agent => "agent",
            Kind::Guardrail => "guardrail",
        }
    }
}

/// A declaration: its name (`aws.prod` for a provider), the span of the
/// part a rename changes (a provider's own name, after the dot), and the
/// whole item.
#[derive(Debug, Clone)]
pub struct Definition {
    pub kind: Kind,
    pub name: String,
    pub name_span: Span,
    pub item_span: Span,
    /// The keyword and the name (where findings about the item point).
    pub head: Span,
}

/// A use of a name: where the cursor finds it, and the part a rename
/// changes.
#[derive(Debug, Clone)]
pub struct Reference {
    pub kind: Kind,
    pub name: String,
    pub span: Span,
    pub name_span: Span,
}

/// The names of one file: kept with its syntax tree, and made again only
/// when the file changes.
#[derive(Debug, Default)]
pub struct FileIndex {
    definitions: Vec<Definition>,
    references: Vec<Reference>,
}

/// The names of the workspace: each file's, in the workspace's order.
#[derive(Debug, Default)]
pub struct Index {
    files: Vec<Arc<FileIndex>>,
}

impl FileIndex {
    pub fn build(file: &ast::SourceFile) -> FileIndex {
        let mut index = FileIndex::default();
        for item in &file.items {
            index.item(item);
        }
        index
    }

    fn item(&mut self, item: &Item) {
        let (kind, name, name_span) = match &item.kind {
            ItemKind::Provider { kind, name, .. } => (
                Kind::Provider,
                format!("{}.{}", kind.text, name.text),
                name.span,
            ),
            ItemKind::Scope { name, .. } => (Kind::Scope, name.text.clone(), name.span),
            ItemKind::Agent { name, .. } => (Kind::Agent, name.text.clone(), name.span),
            ItemKind::Guardrail { name, .. } => (Kind::Guardrail, name.text.clone(), name.span),
            ItemKind::Test { .. } => {
                self.statements(item.kind.body(), false);
                return;
            }
        };
        self.definitions.push(Definition {
            kind,
            name,
            name_span,
            item_span: item.span,
            head: item.head,
        });
        self.statements(
            item.kind.body(),
            matches!(item.kind, ItemKind::Agent { .. }),
        );
    }

    fn statements(&mut self, body: &[Stmt], in_agent: bool) {
        for stmt in body {
            match &stmt.kind {
                StmtKind::Include(names) | StmtKind::Can(names) => {
                    for name in names {
                        self.refer(Kind::Scope, &name.text, name.span, name.span);
                    }
                }
                StmtKind::Field(field) if in_agent && field.name.text == "parent" => {
                    if let ValueKind::Ident(parent) = &field.value.kind {
                        self.refer(Kind::Agent, parent, field.value.span, field.value.span);
                    }
                }
                StmtKind::Field(_) => {}
                StmtKind::Grant(grant) => self.provider(&grant.provider),
                StmtKind::RunsOn(runs_on) | StmtKind::Adopts(runs_on) => {
                    self.provider(&runs_on.provider)
                }
                StmtKind::Delegates(inner) => self.statements(inner, false),
                StmtKind::Expect(expect) => {
                    self.refer(
                        Kind::Agent,
                        &expect.agent.text,
                        expect.agent.span,
                        expect.agent.span,
                    );
                    self.provider(&expect.provider);
                }
            }
        }
    }

    fn provider(&mut self, reference: &ast::ProviderRef) {
        if let Some(name) = &reference.name {
            self.refer(
                Kind::Provider,
                &format!("{}.{}", reference.kind.text, name.text),
                reference.span,
                name.span,
            );
        }
    }

    fn refer(&mut self, kind: Kind, name: &str, span: Span, name_span: Span) {
        self.references.push(Reference {
            kind,
            name: name.to_string(),
            span,
            name_span,
        });
    }
}

impl Index {
    pub fn new(files: Vec<Arc<FileIndex>>) -> Index {
        Index { files }
    }

    pub fn definitions(&self) -> impl Iterator<Item = &Definition> {
        self.files.iter().flat_map(|f| f.definitions.iter())
    }

    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.files.iter().flat_map(|f| f.references.iter())
    }

    /// The name at a place of a file: declared there, or used there.
    pub fn at(&self, file: FileId, offset: usize) -> Option<(Kind, &str, Span)> {
        let inside = |span: Span| {
            span.file == file && (span.start as usize) <= offset && offset <= span.end as usize
        };
        self.definitions()
            .find(|d| inside(d.name_span))
            .map(|d| (d.kind, d.name.as_str(), d.name_span))
            .or_else(|| {
                self.references()
                    .find(|r| inside(r.span))
                    .map(|r| (r.kind, r.name.as_str(), r.name_span))
            })
    }

    pub fn definition(&self, kind: Kind, name: &str) -> Option<&Definition> {
        self.definitions()
            .find(|d| d.kind == kind && d.name == name)
    }

    /// Every place that names it, its declaration first: the spans a
    /// rename changes.
    pub fn occurrences(&self, kind: Kind, name: &str) -> Vec<Span> {
        let mut spans: Vec<Span> = self
            .definitions()
            .filter(|d| d.kind == kind && d.name == name)
            .map(|d| d.name_span)
            .collect();
        spans.extend(
            self.references()
                .filter(|r| r.kind == kind && r.name == name)
                .map(|r| r.name_span),
        );
        spans
    }
}
