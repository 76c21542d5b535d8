//! Checking again after an edit (an editor's case): each scope's and
//! agent's body, checked once, is reused while nothing it was checked
//! against has changed.
//!
//! A body's result (its findings, the scopes it uses, and what it wrote
//! to the model) is kept under the item's place: its file, that file's
//! text hash and the item's ordinal in the file. The same text at the same
//! place parses to the same tree, spans included. Everything else a body
//! reads is in the *context*: the date, every provider's, scope's and
//! agent's kind and name in declaration order (which fix the ids and the
//! suggestions for unknown names), and every provider's settings. When
//! the context changes, every body is checked again; the bodies of the
//! context before are kept too, so that a file that stops parsing while
//! it is typed in (its declarations gone from the context) and parses
//! again costs one full check, not two.
//!
//! A body that read other bodies (a `delegates` block copies the grants of
//! the scopes it names, and of theirs) is reused only when each of those
//! was reused too: unchanged, at the same place. A body is not kept when
//! one of its findings points outside the item (a label at a place that
//! can move without the item's file changing).

use super::Checker;
use crate::diagnostic::Diagnostic;
use crate::model::{self, AgentId, ScopeId};
use crate::source::Span;
use crate::syntax::ast::{self, ItemKind};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// What the checker keeps between checks of a changing workspace; see the
/// module's documentation. Start with `Memo::default()`, and pass the same
/// memo to every check of the workspace.
#[derive(Debug, Default)]
pub struct Memo {
    context: u64,
    bodies: HashMap<BodyKey, Body>,
    /// The context before, and its bodies as the last check under it left
    /// them.
    previous: Option<(u64, HashMap<BodyKey, Body>)>,
    /// The bodies the current check reused or made: the rest are dropped
    /// after it.
    live: HashSet<BodyKey>,
}

impl Memo {
    /// How many bodies are kept (for tests and benchmarks).
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }
}

/// Where an item is: its file, the hash of that file's text, and its
/// ordinal among the file's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct BodyKey {
    file: u32,
    text: u64,
    ordinal: u32,
}

impl BodyKey {
    pub(crate) fn new(file: crate::source::FileId, text: u64, ordinal: usize) -> BodyKey {
        BodyKey {
            file: file.0,
            text,
            ordinal: u32::try_from(ordinal).unwrap_or(u32::MAX),
        }
    }
}

#[derive(Debug, Clone)]
struct Body {
    diagnostics: Vec<Diagnostic>,
    /// The scopes the body uses (named, or meant by a misspelt name).
    used: Vec<ScopeId>,
    /// The scopes whose bodies it read.
    reads: Vec<ScopeId>,
    outcome: Outcome,
}

#[derive(Debug, Clone)]
enum Outcome {
    Scope {
        includes: Vec<(ScopeId, Span)>,
        grants: Vec<model::Grant>,
    },
    /// The agent as its body left it.
    Agent(Box<model::Agent>),
}

/// Where recording a body's effects started.
pub(super) struct Mark {
    diagnostics: usize,
    used: usize,
    reads: usize,
}

impl<'a> Checker<'a> {
    /// Fixes the context after every declaration is known, and forgets
    /// every body when it changed.
    pub(super) fn settle_context(&mut self, items: &[&'a ast::Item]) {
        let Some(memo) = self.memo.as_mut() else {
            return;
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.today.hash(&mut hasher);
        for item in items {
            match &item.kind {
                ItemKind::Provider { kind, name, .. } => {
                    (0u8, &kind.text, &name.text).hash(&mut hasher)
                }
                ItemKind::Scope { name, .. } => (1u8, &name.text).hash(&mut hasher),
                ItemKind::Agent { name, .. } => (2u8, &name.text).hash(&mut hasher),
                ItemKind::Guardrail { .. } | ItemKind::Test { .. } => {}
            }
        }
        for provider in &self.model.providers {
            (provider.kind, &provider.name).hash(&mut hasher);
            // Settings hold no span: their text is all they say.
            format!("{:?}", provider.settings).hash(&mut hasher);
        }
        let context = hasher.finish();
        if memo.context != context {
            let left = (memo.context, std::mem::take(&mut memo.bodies));
            if let Some((_, bodies)) = memo.previous.take().filter(|(c, _)| *c == context) {
                memo.bodies = bodies;
            }
            memo.previous = Some(left);
            memo.context = context;
        }
        memo.live.clear();
    }

    /// Drops the bodies this check did not meet.
    pub(super) fn prune_memo(&mut self) {
        if let Some(memo) = self.memo.as_mut() {
            let live = std::mem::take(&mut memo.live);
            memo.bodies.retain(|key, _| live.contains(key));
            memo.live = live;
        }
    }

    /// Replays a kept body: its findings, its uses, and what it wrote.
    /// Whether there was one.
    fn replay(
        &mut self,
        key: Option<BodyKey>,
        scope: Option<ScopeId>,
        agent: Option<AgentId>,
    ) -> bool {
        let Some(key) = key else {
            return false;
        };
        let Some(memo) = self.memo.as_mut() else {
            return false;
        };
        let Some(body) = memo.bodies.get(&key) else {
            return false;
        };
        match (&body.outcome, scope, agent) {
            (Outcome::Scope { .. }, Some(_), None) | (Outcome::Agent(_), None, Some(_)) => {}
            _ => return false,
        }
        // Scope bodies are all checked before any agent's: each read one
        // is settled.
        if !body
            .reads
            .iter()
            .all(|&s| self.reused_scopes.get(s) == Some(&true))
        {
            return false;
        }
        let body = body.clone();
        memo.live.insert(key);
        self.diagnostics.extend(body.diagnostics);
        for scope in body.used {
            self.used_scopes[scope] = true;
        }
        match body.outcome {
            Outcome::Scope { includes, grants } => {
                if let Some(index) = scope {
                    self.reused_scopes[index] = true;
                    self.model.scopes[index].includes = includes.iter().map(|(s, _)| *s).collect();
                    self.include_edges[index] = includes;
                    self.model.scopes[index].grants = grants;
                }
            }
            Outcome::Agent(checked) => {
                if let Some(id) = agent {
                    self.model.agents[id] = *checked;
                }
            }
        }
        true
    }

    fn mark(&mut self) -> Mark {
        Mark {
            diagnostics: self.diagnostics.len(),
            used: self.uses.len(),
            reads: self.reads.len(),
        }
    }

    /// Keeps what the body checked since `mark` did, when it may be reused.
    fn remember(&mut self, key: Option<BodyKey>, mark: Mark, item: Span, outcome: Outcome) {
        let (Some(key), Some(_)) = (key, self.memo.as_ref()) else {
            return;
        };
        let diagnostics = &self.diagnostics[mark.diagnostics..];
        let inside =
            |span: Span| span.file == item.file && span.start >= item.start && span.end <= item.end;
        let contained = diagnostics.iter().all(|d| {
            std::iter::once(&d.primary)
                .chain(&d.secondary)
                .all(|label| inside(label.span))
        });
        if !contained {
            return;
        }
        let body = Body {
            diagnostics: diagnostics.to_vec(),
            used: self.uses[mark.used..].to_vec(),
            reads: self.reads[mark.reads..].to_vec(),
            outcome,
        };
        if let Some(memo) = self.memo.as_mut() {
            memo.live.insert(key);
            memo.bodies.insert(key, body);
        }
    }

    pub(super) fn scope_body(&mut self, index: usize) {
        let key = self.scope_keys[index];
        if self.replay(key, Some(index), None) {
            return;
        }
        let mark = self.mark();
        self.check_scope_body(index);
        if key.is_some() && self.memo.is_some() {
            let outcome = Outcome::Scope {
                includes: self.include_edges[index].clone(),
                grants: self.model.scopes[index].grants.clone(),
            };
            self.remember(key, mark, self.scope_items[index].span, outcome);
        }
    }

    pub(super) fn agent_body(&mut self, index: usize) {
        let key = self.agent_keys[index];
        let item = self.agent_items[index];
        let ItemKind::Agent { name, .. } = &item.kind else {
            return;
        };
        let id: AgentId = self.agents[name.text.as_str()];
        if self.replay(key, None, Some(id)) {
            return;
        }
        let mark = self.mark();
        self.check_agent_body(index);
        if key.is_some() && self.memo.is_some() {
            let outcome = Outcome::Agent(Box::new(self.model.agents[id].clone()));
            self.remember(key, mark, item.span, outcome);
        }
    }
}
