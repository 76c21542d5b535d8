//! The pest grammar (`grammar/writ.pest`) and the walk from its parse tree to
//! the AST. The walk trusts the grammar's shape; where it cannot (a pair
//! that the grammar guarantees but that is missing), it reports a syntax
//! error rather than panicking.

use super::ast::*;
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::source::{FileId, Span};
use pest::iterators::Pair;
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/writ.pest"]
struct WritParser;

/// Parses one file. A file that does not parse yields exactly one
/// `writ::syntax` diagnostic at the place where parsing stopped.
pub fn parse_file(file: FileId, text: &str) -> Result<SourceFile> {
    check_nesting(file, text)?;
    let mut pairs = WritParser::parse(Rule::file, text)
        .map_err(|error| Box::new(syntax_error(file, text, error)))?;
    let walker = Walker { file };
    let root = pairs.next().ok_or_else(|| walker.broken(0, "an item"))?;
    let mut items = Vec::new();
    for pair in root.into_inner() {
        if pair.as_rule() == Rule::item {
            items.push(walker.item(pair)?);
        }
    }
    Ok(SourceFile { items })
}

type Result<T> = std::result::Result<T, Box<Diagnostic>>;

/// Lists are the grammar's only recursive form. The parser recurses once
/// per level, so a pathological nesting would exhaust the stack: refuse it
/// before parsing, with a diagnostic, instead.
const MAX_LIST_DEPTH: usize = 32;

fn check_nesting(file: FileId, text: &str) -> Result<()> {
    let mut depth = 0usize;
    let mut too_deep = None;
    super::trivia::scan(text, |piece| match piece {
        super::trivia::Piece::Code { at, byte: b'[' } => {
            depth += 1;
            if depth > MAX_LIST_DEPTH && too_deep.is_none() {
                too_deep = Some(at);
            }
        }
        super::trivia::Piece::Code { byte: b']', .. } => depth = depth.saturating_sub(1),
        _ => {}
    });
    match too_deep {
        None => Ok(()),
        Some(at) => Err(Box::new(
            Diagnostic::new(
                Code::Syntax,
                format!("lists are nested more than {MAX_LIST_DEPTH} deep"),
                Label::new(Span::new(file, at, at + 1), "too deeply nested"),
            )
            .with_help("condition values are flat lists, as in `[\"a\", \"b\"]`"),
        )),
    }
}

struct Walker {
    file: FileId,
}

impl Walker {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let span = pair.as_span();
        Span::new(self.file, span.start(), span.end())
    }

    fn broken(&self, at: usize, expected: &str) -> Box<Diagnostic> {
        Box::new(Diagnostic::new(
            Code::Syntax,
            format!("expected {expected}"),
            Label::new(Span::new(self.file, at, at), format!("expected {expected}")),
        ))
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident {
            text: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn string(&self, pair: Pair<Rule>) -> Str {
        let span = self.span(&pair);
        let raw = pair.as_str();
        let inner = raw
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or(raw);
        Str {
            value: unescape_string(inner),
            span,
        }
    }

    fn docs(&self, pairs: &mut Vec<Pair<Rule>>) -> Vec<DocLine> {
        let mut docs = Vec::new();
        while pairs
            .first()
            .is_some_and(|pair| pair.as_rule() == Rule::doc_comment)
        {
            let pair = pairs.remove(0);
            let text = pair.as_str().trim_start_matches('/');
            let text = text.strip_prefix(' ').unwrap_or(text).trim_end();
            docs.push(DocLine {
                text: text.to_string(),
                span: self.span(&pair),
            });
        }
        docs
    }

    fn item(&self, pair: Pair<Rule>) -> Result<Item> {
        let span = self.span(&pair);
        let mut children: Vec<Pair<Rule>> = pair.into_inner().collect();
        let docs = self.docs(&mut children);
        let body_pair = children
            .pop()
            .ok_or_else(|| self.broken(span.end as usize, "an item"))?;
        let rule = body_pair.as_rule();
        let item_span = self.span(&body_pair);
        let mut parts: Vec<Pair<Rule>> = body_pair
            .into_inner()
            .filter(|p| !matches!(p.as_rule(), Rule::p_lbrace | Rule::p_rbrace))
            .collect();
        // parts[0] is the keyword; then one or two names; then statements.
        let keyword_span = self.span(&parts[0]);
        let names = if rule == Rule::provider_item { 2 } else { 1 };
        if parts.len() < 1 + names {
            return Err(self.broken(item_span.end as usize, "a name"));
        }
        let statement_pairs = parts.split_off(1 + names);
        let head = keyword_span.to(self.span(&parts[names]));
        let body = statement_pairs
            .into_iter()
            .map(|stmt| self.stmt(stmt))
            .collect::<Result<Vec<_>>>()?;
        let mut names = parts.into_iter().skip(1);
        let mut next_name = || names.next().map(|p| self.ident(p));
        let kind = match rule {
            Rule::provider_item => {
                let (Some(kind), Some(name)) = (next_name(), next_name()) else {
                    return Err(self.broken(item_span.start as usize, "a provider kind and name"));
                };
                ItemKind::Provider { kind, name, body }
            }
            Rule::scope_item => ItemKind::Scope {
                name: next_name().ok_or_else(|| self.broken(item_span.start as usize, "a name"))?,
                body,
            },
            Rule::agent_item => ItemKind::Agent {
                name: next_name().ok_or_else(|| self.broken(item_span.start as usize, "a name"))?,
                body,
            },
            Rule::guardrail_item => ItemKind::Guardrail {
                name: next_name().ok_or_else(|| self.broken(item_span.start as usize, "a name"))?,
                body,
            },
            _ => {
                let name_pair = names_as_string(&mut names)
                    .ok_or_else(|| self.broken(item_span.start as usize, "a test name"))?;
                ItemKind::Test {
                    name: self.string(name_pair),
                    body,
                }
            }
        };
        Ok(Item {
            docs,
            kind,
            head,
            span,
        })
    }

    /// The span from a pair's start to the end of its last token. pest
    /// keeps the whitespace and comments skipped before an optional part
    /// that did not match inside the rule's span; a statement must not.
    fn content_span(&self, pair: &Pair<Rule>) -> Span {
        // The end of the last token: a leaf, or a whole string literal (whose
        // closing quote is no token of its own).
        let end = pair
            .clone()
            .into_inner()
            .flatten()
            .filter(|p| p.as_rule() == Rule::string || p.clone().into_inner().next().is_none())
            .map(|p| p.as_span().end())
            .max()
            .unwrap_or(pair.as_span().end());
        Span::new(self.file, pair.as_span().start(), end)
    }

    fn stmt(&self, pair: Pair<Rule>) -> Result<Stmt> {
        let span = self.content_span(&pair);
        let mut children: Vec<Pair<Rule>> = pair.into_inner().collect();
        let docs = self.docs(&mut children);
        let inner = children
            .pop()
            .ok_or_else(|| self.broken(span.start as usize, "a statement"))?;
        let span = if docs.is_empty() {
            span
        } else {
            self.content_span(&inner)
        };
        let kind = match inner.as_rule() {
            Rule::field => StmtKind::Field(self.field(inner)?),
            Rule::include_stmt => StmtKind::Include(self.name_list(inner)),
            Rule::can_stmt => StmtKind::Can(self.name_list(inner)),
            Rule::grant => StmtKind::Grant(self.grant(inner)?),
            Rule::deny_stmt => StmtKind::Grant(self.deny(inner)?),
            Rule::runs_on_stmt => StmtKind::RunsOn(self.runs_on(inner)?),
            Rule::adopts_stmt => StmtKind::Adopts(self.runs_on(inner)?),
            Rule::delegates_block => StmtKind::Delegates(
                inner
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::delegates_stmt)
                    .map(|p| self.stmt(p))
                    .collect::<Result<Vec<_>>>()?,
            ),
            Rule::expect_stmt => StmtKind::Expect(self.expect(inner)?),
            _ => return Err(self.broken(span.start as usize, "a statement")),
        };
        Ok(Stmt { docs, kind, span })
    }

    fn name_list(&self, pair: Pair<Rule>) -> Vec<Ident> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::name_list)
            .flat_map(|list| list.into_inner())
            .map(|p| self.ident(p))
            .collect()
    }

    fn field(&self, pair: Pair<Rule>) -> Result<Field> {
        let span = self.span(&pair);
        let mut name = None;
        let mut value = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::field_name => name = Some(self.ident(child)),
                Rule::value => value = Some(self.value(child)?),
                _ => {}
            }
        }
        match (name, value) {
            (Some(name), Some(value)) => Ok(Field { name, value }),
            _ => Err(self.broken(span.end as usize, "a value")),
        }
    }

    fn value(&self, pair: Pair<Rule>) -> Result<Value> {
        let span = self.span(&pair);
        let inner = pair
            .into_inner()
            .next()
            .ok_or_else(|| self.broken(span.start as usize, "a value"))?;
        let text = inner.as_str().to_string();
        let kind = match inner.as_rule() {
            Rule::string => ValueKind::String(self.string(inner).value),
            Rule::list => ValueKind::List(
                inner
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::value)
                    .map(|p| self.value(p))
                    .collect::<Result<Vec<_>>>()?,
            ),
            Rule::date => ValueKind::Date(text),
            Rule::duration => ValueKind::Duration(text),
            Rule::rate => ValueKind::Rate(text),
            Rule::integer => ValueKind::Integer(text),
            Rule::boolean => ValueKind::Bool(text == "true"),
            Rule::bad_literal => ValueKind::Malformed(text),
            _ => ValueKind::Ident(text),
        };
        Ok(Value { kind, span })
    }

    fn provider_ref(&self, pair: Pair<Rule>) -> Result<ProviderRef> {
        let span = self.span(&pair);
        let mut kind = None;
        let mut name = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::provider_kind => kind = Some(self.ident(child)),
                Rule::name => name = Some(self.ident(child)),
                _ => {}
            }
        }
        let kind = kind.ok_or_else(|| self.broken(span.start as usize, "a provider"))?;
        Ok(ProviderRef { kind, name, span })
    }

    fn grant(&self, pair: Pair<Rule>) -> Result<Grant> {
        let mut waivers = Vec::new();
        let mut keeps = Vec::new();
        let mut rates = Vec::new();
        let mut provider = None;
        let mut body = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::waiver => waivers.push(self.waiver(child)?),
                Rule::keep => keeps.push(self.keep(child)?),
                Rule::grant_rate => {
                    let span = self.span(&child);
                    let value = child
                        .into_inner()
                        .find(|p| {
                            matches!(p.as_rule(), Rule::rate | Rule::bad_literal | Rule::integer)
                        })
                        .ok_or_else(|| self.broken(span.start as usize, "`@rate(100/min)`"))?;
                    rates.push(GrantRate {
                        text: value.as_str().to_string(),
                        value_span: self.span(&value),
                        span,
                    });
                }
                Rule::provider_ref => provider = Some(self.provider_ref(child)?),
                Rule::grant_body => body = Some(child),
                _ => {}
            }
        }
        let mut grant = self.grant_body(Effect::Allow, waivers, provider, body)?;
        grant.keeps = keeps;
        grant.rates = rates;
        Ok(grant)
    }

    fn keep(&self, pair: Pair<Rule>) -> Result<Keep> {
        let span = self.span(&pair);
        let reason = pair
            .into_inner()
            .find(|p| p.as_rule() == Rule::string)
            .map(|p| self.string(p))
            .ok_or_else(|| self.broken(span.start as usize, "`@keep(\"reason\")`"))?;
        Ok(Keep { reason, span })
    }

    fn deny(&self, pair: Pair<Rule>) -> Result<Grant> {
        let mut provider = None;
        let mut body = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::provider_pattern => provider = Some(self.provider_ref(child)?),
                Rule::grant_body => body = Some(child),
                _ => {}
            }
        }
        self.grant_body(Effect::Deny, Vec::new(), provider, body)
    }

    fn grant_body(
        &self,
        effect: Effect,
        waivers: Vec<Waiver>,
        provider: Option<ProviderRef>,
        body: Option<Pair<Rule>>,
    ) -> Result<Grant> {
        let (Some(provider), Some(body)) = (provider, body) else {
            return Err(self.broken(0, "a grant"));
        };
        let mut grant = Grant {
            waivers,
            keeps: Vec::new(),
            rates: Vec::new(),
            effect,
            provider,
            actions: Vec::new(),
            resources: Vec::new(),
            qualifiers: Vec::new(),
            conditions: Vec::new(),
        };
        for child in body.into_inner() {
            match child.as_rule() {
                Rule::action_list => {
                    grant.actions = child.into_inner().map(|p| self.ident(p)).collect();
                }
                Rule::string_list => {
                    grant.resources = child.into_inner().map(|p| self.string(p)).collect();
                }
                Rule::qualifier => grant.qualifiers.push(self.qualifier(child)?),
                Rule::condition_clause => {
                    for condition in child.into_inner() {
                        if condition.as_rule() == Rule::condition {
                            grant.conditions.push(self.condition(condition)?);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(grant)
    }

    fn waiver(&self, pair: Pair<Rule>) -> Result<Waiver> {
        let span = self.span(&pair);
        let mut lint = None;
        let mut reason = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::lint_name => lint = Some(self.ident(child)),
                Rule::string => reason = Some(self.string(child)),
                _ => {}
            }
        }
        match (lint, reason) {
            (Some(lint), Some(reason)) => Ok(Waiver { lint, reason, span }),
            _ => Err(self.broken(span.start as usize, "`@waive(LINT, \"reason\")`")),
        }
    }

    fn qualifier(&self, pair: Pair<Rule>) -> Result<Qualifier> {
        let span = self.span(&pair);
        let inner = pair
            .into_inner()
            .next()
            .ok_or_else(|| self.broken(span.start as usize, "a qualifier"))?;
        let kind = match inner.as_rule() {
            Rule::named_qualifier => QualifierKind::Named(
                inner
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::string_list)
                    .flat_map(|list| list.into_inner())
                    .map(|p| self.string(p))
                    .collect(),
            ),
            Rule::namespace_qualifier => {
                let namespace = inner
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::string)
                    .ok_or_else(|| self.broken(span.end as usize, "a namespace"))?;
                QualifierKind::Namespace(self.string(namespace))
            }
            _ => QualifierKind::Cluster,
        };
        Ok(Qualifier { kind, span })
    }

    fn place(&self, pair: Pair<Rule>) -> Qualifier {
        let span = self.span(&pair);
        let namespace = pair.into_inner().find(|p| p.as_rule() == Rule::string);
        let kind = match namespace {
            Some(namespace) => QualifierKind::Namespace(self.string(namespace)),
            None => QualifierKind::Cluster,
        };
        Qualifier { kind, span }
    }

    fn condition(&self, pair: Pair<Rule>) -> Result<Condition> {
        let span = self.span(&pair);
        let mut key = None;
        let mut op = None;
        let mut value = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::condition_key => key = Some(self.ident(child)),
                Rule::condition_op => {
                    let op_kind = match child.as_str() {
                        "==" => ConditionOp::Equals,
                        "!=" => ConditionOp::NotEquals,
                        "in" => ConditionOp::In,
                        "<" => ConditionOp::Less,
                        "<=" => ConditionOp::LessOrEqual,
                        ">" => ConditionOp::Greater,
                        ">=" => ConditionOp::GreaterOrEqual,
                        _ => ConditionOp::Like,
                    };
                    op = Some((op_kind, self.span(&child)));
                }
                Rule::value => value = Some(self.value(child)?),
                _ => {}
            }
        }
        match (key, op, value) {
            (Some(key), Some((op, op_span)), Some(value)) => Ok(Condition {
                key,
                op,
                op_span,
                value,
                span,
            }),
            _ => Err(self.broken(span.start as usize, "a condition")),
        }
    }

    fn runs_on(&self, pair: Pair<Rule>) -> Result<RunsOn> {
        let mut waivers = Vec::new();
        let mut provider = None;
        let mut attributes = Vec::new();
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::waiver => waivers.push(self.waiver(child)?),
                Rule::provider_ref => provider = self.provider_ref(child).ok(),
                Rule::runs_on_attr => {
                    let mut parts = child.into_inner();
                    if let (Some(name), Some(value)) = (parts.next(), parts.next()) {
                        attributes.push(RunsOnAttribute {
                            name: self.ident(name),
                            value: self.string(value),
                        });
                    }
                }
                _ => {}
            }
        }
        let provider = provider.unwrap_or_else(|| ProviderRef {
            kind: Ident {
                text: String::new(),
                span: Span::new(self.file, 0, 0),
            },
            name: None,
            span: Span::new(self.file, 0, 0),
        });
        Ok(RunsOn {
            waivers,
            provider,
            attributes,
        })
    }

    fn expect(&self, pair: Pair<Rule>) -> Result<Expect> {
        let span = self.span(&pair);
        let mut agent = None;
        let mut allowed = None;
        let mut provider = None;
        let mut action = None;
        let mut resource = None;
        let mut place = None;
        let mut named = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::name => agent = Some(self.ident(child)),
                Rule::expectation => allowed = Some(child.as_str() == "can"),
                Rule::provider_ref => provider = Some(self.provider_ref(child)?),
                Rule::action => action = Some(self.ident(child)),
                Rule::string => resource = Some(self.string(child)),
                Rule::expect_place => place = Some(self.place(child)),
                Rule::expect_named => {
                    named = child
                        .into_inner()
                        .find(|p| p.as_rule() == Rule::string)
                        .map(|p| self.string(p))
                }
                _ => {}
            }
        }
        match (agent, allowed, provider, action, resource) {
            (Some(agent), Some(allowed), Some(provider), Some(action), Some(resource)) => {
                Ok(Expect {
                    agent,
                    allowed,
                    provider,
                    action,
                    resource,
                    named,
                    place,
                })
            }
            _ => Err(self.broken(span.start as usize, "an expectation")),
        }
    }
}

fn names_as_string<'a>(names: &mut impl Iterator<Item = Pair<'a, Rule>>) -> Option<Pair<'a, Rule>> {
    names.find(|p| p.as_rule() == Rule::string)
}

/// Decodes the escapes of a string literal's inside (`\"`, `\\`, `\n`, `\t`).
/// An unknown escape is kept as written; the grammar lets it through so the
/// checker can point at the string instead of failing the parse.
pub fn unescape_string(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Turns pest's error into a diagnostic that says, in a user's words, what
/// was expected at the place where parsing stopped.
fn syntax_error(file: FileId, text: &str, error: pest::error::Error<Rule>) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let mut at = match error.location {
        InputLocation::Pos(pos) => pos,
        InputLocation::Span((start, _)) => start,
    };
    // At the end of the file, point just after the last thing written rather
    // than at an empty line below it.
    let at_end = text[at..].trim().is_empty();
    if at_end {
        at = text[..at].trim_end().len();
    }
    let mut expected: Vec<&'static str> = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => positives
            .iter()
            .filter_map(|rule| describe(*rule))
            .collect(),
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    expected.sort_by_key(|word| expectation_rank(word));
    expected.dedup();
    let found_end = if at_end { at } else { token_end(text, at) };
    let found = &text[at..found_end];
    let found_words = if found.is_empty() {
        "end of file".to_string()
    } else {
        format!("`{found}`")
    };
    let expected_words = if expected.is_empty() {
        "something else".to_string()
    } else {
        join_alternatives(&expected)
    };
    if let Some(lesson) = teach(text, at, found, &expected) {
        return Diagnostic::new(
            Code::Syntax,
            lesson.message,
            Label::new(Span::new(file, lesson.start, lesson.end), lesson.label),
        )
        .with_help(lesson.help);
    }
    let message = format!("expected {expected_words}, found {found_words}");
    let span = Span::new(file, at, found_end);
    let mut diagnostic = Diagnostic::new(
        Code::Syntax,
        message,
        Label::new(span, format!("expected {expected_words}")),
    );
    if let Some(help) = syntax_help(found, &expected) {
        diagnostic = diagnostic.with_help(help);
    }
    diagnostic
}

/// The extent of the token that starts at `at`: a word, a string, or one
/// character, so the label underlines what the user will recognise.
fn token_end(text: &str, at: usize) -> usize {
    let rest = &text[at..];
    let mut chars = rest.char_indices();
    let Some((_, first)) = chars.next() else {
        return at;
    };
    let is_word = |c: char| c.is_alphanumeric() || "_-.:/*?".contains(c);
    if first == '"' {
        // To the closing quote; an unclosed string, to the end of its line.
        let end = match rest[1..].find(['"', '\n']) {
            Some(i) if rest[1 + i..].starts_with('"') => i + 2,
            Some(i) => 1 + i,
            None => rest.len(),
        };
        return at + end.min(rest.len());
    }
    if is_word(first) {
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        return at + end;
    }
    at + first.len_utf8()
}

/// A common mistake recognised where parsing stopped: what was found and
/// what is expected, in words, and the line as it should be.
struct Lesson {
    start: usize,
    end: usize,
    message: String,
    label: String,
    help: String,
}

/// The line around `at`: its start and end offsets.
fn line_around(text: &str, at: usize) -> (usize, usize) {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    (start, end)
}

/// The line with `start..end` replaced, trimmed, for a `help:`.
fn corrected(text: &str, start: usize, end: usize, with: &str) -> String {
    let (line_start, line_end) = line_around(text, start);
    let line = format!(
        "{}{with}{}",
        &text[line_start..start],
        &text[end.min(line_end)..line_end]
    );
    format!("\n    {}", line.trim())
}

/// The word that ends just before `at` (on any earlier line, past lines
/// that hold only a comment), with its offset: what parsing last read.
fn word_before(text: &str, at: usize) -> Option<(usize, &str)> {
    let mut before = text[..at].trim_end();
    while let Some(line_start) = before.rfind('\n').map(|i| i + 1).or(Some(0)) {
        if before[line_start..].trim_start().starts_with("//") {
            before = before[..line_start].trim_end();
        } else {
            break;
        }
    }
    let start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    (start < before.len()).then(|| (start, &before[start..]))
}

/// A duration unit in words (`hour`, `mins`), as writ writes it.
fn unit_of(word: &str) -> Option<(&'static str, u64)> {
    Some(match word.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => ("s", 1),
        "m" | "min" | "mins" | "minute" | "minutes" => ("m", 1),
        "h" | "hr" | "hrs" | "hour" | "hours" => ("h", 1),
        "d" | "day" | "days" => ("d", 1),
        "w" | "week" | "weeks" => ("d", 7),
        _ => return None,
    })
}

fn teach(text: &str, at: usize, found: &str, expected: &[&str]) -> Option<Lesson> {
    let (line_start, line_end) = line_around(text, at);
    let line = &text[line_start..line_end];
    let before = text[line_start..at].trim_end();
    // An unclosed string: it ends at the end of its line.
    if found.starts_with('"') && !found[1..].contains('"') {
        let end = line_end;
        let closed = format!("{}\"", text[at..end].trim_end());
        return Some(Lesson {
            start: at,
            end,
            message: "this string is not closed: a string ends with `\"` on the line it starts"
                .into(),
            label: "no closing `\"` on this line".into(),
            help: format!("close it:{}", corrected(text, at, end, &closed)),
        });
    }
    // `test name {`: a test's name is a string.
    if expected.contains(&"a string")
        && before.ends_with("test")
        && before[..before.len() - 4].trim().is_empty()
        && !found.is_empty()
        && found
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.".contains(c))
    {
        return Some(Lesson {
            start: at,
            end: at + found.len(),
            message: format!(
                "expected a test's name in quotes, found `{found}`: a test is named by a string"
            ),
            label: "not a string".into(),
            help: format!(
                "quote the name:{}",
                corrected(text, at, at + found.len(), &format!("\"{found}\""))
            ),
        });
    }
    // `allow [a, b] on …`: actions are listed without brackets.
    if found == "[" && expected.contains(&"an action") {
        let close = text[at..line_end].find(']').map(|i| at + i);
        let help = match close {
            Some(close) => format!(
                "list the actions with commas alone:{}",
                corrected(text, at, close + 1, text[at + 1..close].trim())
            ),
            None => "list the actions with commas alone, as in `allow s3:GetObject, s3:PutObject on \"…\"`".into(),
        };
        return Some(Lesson {
            start: at,
            end: close.map_or(at + 1, |c| c + 1),
            message: "expected an action, found `[`: a grant lists its actions without brackets"
                .into(),
            label: "brackets are for condition values only".into(),
            help,
        });
    }
    // `provider aws.prod {`: declared with its kind and name apart.
    if found.starts_with('.')
        && found.len() > 1
        && found[1..]
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        && expected.contains(&"a name")
        && line.trim_start().starts_with("provider")
    {
        let name = &found[1..];
        let kind = before.split_whitespace().last().unwrap_or("aws");
        return Some(Lesson {
            start: at,
            end: at + found.len(),
            message: format!(
                "expected a name, found `{found}`: a provider is declared as `provider {kind} {name}`, and referred to as `{kind}.{name}`"
            ),
            label: "kind and name are two words here".into(),
            help: format!(
                "write the kind and the name apart:{}",
                corrected(text, at, at + found.len(), &format!(" {name}"))
            ),
        });
    }
    // `ttl = 1 hour`: a number and a unit written apart.
    if let Some((word_start, word)) = word_before(text, at) {
        let head = text[..word_start].trim_end();
        let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let number_start = head.len() - digits;
        if digits > 0
            && word_start > head.len()
            && head[..number_start].trim_end().ends_with('=')
            && !text[head.len()..word_start].contains('\n')
        {
            if let Some((unit, times)) = unit_of(word) {
                let number: u64 = head[number_start..].parse().unwrap_or(1);
                let fixed = format!("{}{unit}", number.saturating_mul(times));
                let end = word_start + word.len();
                return Some(Lesson {
                    start: number_start,
                    end,
                    message: format!(
                        "expected a duration such as `{fixed}`, found `{}`: a duration is a number and a unit (`s`, `m`, `h`, `d`) without a space",
                        &text[number_start..end]
                    ),
                    label: "a number, then a word".into(),
                    help: format!("write it as one word:{}", corrected(text, number_start, end, &fixed)),
                });
            }
        }
    }
    // `expires = 30/06/2027`: dates are written year first.
    if found.starts_with(['/', '.'])
        || (found.starts_with('-') && before.ends_with(|c: char| c.is_ascii_digit()))
    {
        // `before` is ASCII digits at its end: the byte after the last
        // other character is a character boundary.
        let start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| !c.is_ascii_digit())
            .map_or(line_start, |(i, c)| line_start + i + c.len_utf8());
        let end = at + found.len();
        let parts: Vec<&str> = text[start..end].split(['/', '.', '-']).collect();
        if parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        {
            let n: Vec<u32> = parts.iter().map(|p| p.parse().unwrap_or(0)).collect();
            let date = |y: u32, m: u32, d: u32| format!("{y:04}-{m:02}-{d:02}");
            let fixed = match (parts[0].len(), parts[2].len()) {
                (4, _) => Some(date(n[0], n[1], n[2])),
                (_, 4) if n[0] > 12 => Some(date(n[2], n[1], n[0])),
                (_, 4) if n[1] > 12 => Some(date(n[2], n[0], n[1])),
                _ => None,
            };
            let found_date = &text[start..end];
            let help = match fixed {
                Some(fixed) => format!(
                    "write it year first:{}",
                    corrected(text, start, end, &fixed)
                ),
                None if parts[2].len() == 4 => format!(
                    "write it year first: `{}` if the day comes first, `{}` if the month does",
                    date(n[2], n[1], n[0]),
                    date(n[2], n[0], n[1])
                ),
                None => "write it year first, as in `expires = 2027-06-30`".into(),
            };
            return Some(Lesson {
                start,
                end,
                message: format!(
                    "expected a date such as `2027-06-30`, found `{found_date}`: dates are written `YYYY-MM-DD`"
                ),
                label: "not a date writ reads".into(),
                help,
            });
        }
    }
    None
}

fn syntax_help(found: &str, expected: &[&str]) -> Option<String> {
    if found.starts_with("/*") || found == "/" {
        return Some("comments are `// …` or `/* … */`".into());
    }
    let keywords = ["`provider`", "`scope`", "`agent`", "`guardrail`", "`test`"];
    if expected.iter().any(|e| keywords.contains(e)) {
        let candidates = ["provider", "scope", "agent", "guardrail", "test"];
        if let Some(best) = crate::suggest::closest(found, candidates.iter().copied()) {
            return Some(format!("did you mean `{best}`?"));
        }
        return Some(
            "a file holds `provider`, `scope`, `agent`, `guardrail` and `test` items".into(),
        );
    }
    if expected.contains(&"`allow`") {
        if crate::suggest::closest(found, ["allow"].into_iter()).is_some() {
            return Some("did you mean `allow`?".into());
        }
        if found == "deny" {
            return Some("`deny` is only allowed in a `guardrail`; grants are `allow`".into());
        }
    }
    if expected.contains(&"`on`") && found.starts_with('"') {
        return Some(
            "actions and resources are separated by `on`, as in `s3:GetObject on \"arn:…\"`".into(),
        );
    }
    None
}

/// Sorts expectations so that keywords read first and punctuation last.
fn expectation_rank(word: &str) -> (u8, &str) {
    let rank = if word.starts_with('`') && word[1..].starts_with(char::is_alphabetic) {
        0
    } else if word.starts_with('`') {
        2
    } else {
        1
    };
    (rank, word)
}

fn join_alternatives(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A rule in words; `None` for rules a user should never be told about.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::item
        | Rule::provider_item
        | Rule::scope_item
        | Rule::agent_item
        | Rule::guardrail_item
        | Rule::test_item => "an item",
        Rule::kw_provider => "`provider`",
        Rule::kw_scope => "`scope`",
        Rule::kw_agent => "`agent`",
        Rule::kw_guardrail => "`guardrail`",
        Rule::kw_test => "`test`",
        Rule::kw_include => "`include`",
        Rule::kw_delegates => "`delegates`",
        Rule::kw_runs_on => "`runs_on`",
        Rule::kw_adopts => "`adopts`",
        Rule::kw_can => "`can`",
        Rule::kw_cannot => "`cannot`",
        Rule::expectation => "`can` or `cannot`",
        Rule::kw_allow => "`allow`",
        Rule::kw_deny => "`deny`",
        Rule::kw_on => "`on`",
        Rule::kw_in | Rule::kw_in_op => "`in`",
        Rule::kw_like => "`like`",
        Rule::kw_namespace => "`namespace`",
        Rule::kw_cluster => "`cluster`",
        Rule::kw_named => "`named`",
        Rule::kw_when => "`when`",
        Rule::kw_and => "`and`",
        Rule::kw_expect => "`expect`",
        Rule::kw_waive => "`waive`",
        Rule::kw_keep => "`keep`",
        Rule::p_lbrace => "`{`",
        Rule::p_rbrace => "`}`",
        Rule::p_lparen => "`(`",
        Rule::p_rparen => "`)`",
        Rule::p_rbracket => "`]`",
        Rule::p_comma => "`,`",
        Rule::p_eq => "`=`",
        Rule::name | Rule::name_list | Rule::ident_value => "a name",
        Rule::field | Rule::field_name => "a field",
        Rule::attr_name | Rule::runs_on_attr => "a `runs_on` attribute such as `namespace \"…\"`",
        Rule::provider_ref | Rule::provider_kind => "a provider such as `aws.prod`",
        Rule::provider_pattern => "a provider such as `aws.prod` or `aws.*`",
        Rule::grant => "a grant",
        Rule::action | Rule::action_list => "an action",
        Rule::string | Rule::string_list => "a string",
        Rule::qualifier
        | Rule::named_qualifier
        | Rule::namespace_qualifier
        | Rule::cluster_qualifier => "a qualifier",
        Rule::condition_clause => "`when`",
        Rule::condition | Rule::condition_key => "a condition key",
        Rule::condition_op => "`==`, `!=`, `in` or `like`",
        Rule::value
        | Rule::list
        | Rule::date
        | Rule::rate
        | Rule::duration
        | Rule::integer
        | Rule::boolean
        | Rule::bad_literal => "a value",
        Rule::lint_name => "a lint name such as `wildcard_action`",
        Rule::waiver => "`@waive`",
        Rule::keep => "`@keep`",
        Rule::grant_rate => "`@rate`",
        Rule::kw_rate => "`rate`",
        Rule::include_stmt => "`include`",
        Rule::can_stmt => "`can`",
        Rule::runs_on_stmt => "`runs_on`",
        Rule::adopts_stmt => "`adopts`",
        Rule::delegates_block => "`delegates`",
        Rule::deny_stmt => "`deny`",
        Rule::expect_stmt => "`expect`",
        Rule::expect_place => "`in`",
        Rule::expect_named => "`named`",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
        let text = format!("agent a {{ x = {} }}", "[".repeat(100_000));
        let error = parse_file(FileId(0), &text).unwrap_err();
        assert_eq!(error.code, Code::Syntax);
        assert!(error.message.contains("nested"), "{}", error.message);
        // Brackets inside strings and comments do not count.
        let text = format!(
            "// {}\nagent a {{ x = \"{}\" }}",
            "[".repeat(100),
            "[".repeat(100)
        );
        assert!(parse_file(FileId(0), &text).is_ok());
    }

    #[test]
    fn strings_decode_their_escapes() {
        assert_eq!(unescape_string(r#"a\"b\\c\nd\te"#), "a\"b\\c\nd\te");
        assert_eq!(unescape_string(r"\d"), r"\d");
    }
}

#[cfg(test)]
mod span_tests {
    use super::*;

    #[test]
    fn a_statement_ending_in_a_string_spans_its_closing_quote() {
        let text = "scope s {\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::b/*\"  // c\n}\n";
        let file = parse_file(FileId(0), text).unwrap();
        let stmt = &file.items[0].kind.body()[0];
        assert_eq!(
            &text[stmt.span.range()],
            "aws.prod allow s3:GetObject on \"arn:aws:s3:::b/*\""
        );
    }
}
