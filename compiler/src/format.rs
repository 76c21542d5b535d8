//! `writ fmt`: one canonical layout for a parsed file, keeping every comment.
//!
//! Layout: items separated by one blank line, two-space indentation, one
//! statement a line (a grant longer than 100 columns continues from `on` on
//! a second line), `when` conditions and `and` terms on continuation
//! lines, `@waive` on lines of their own, qualifiers in the order `named`,
//! then `in`. Statement order is kept, and so is a single blank line between
//! statements where the author left one or more. Literals are kept as
//! written (a duration `90m` stays `90m`), so formatting never changes
//! meaning.
//!
//! Comments are not in the AST: they are found by scanning the text, and each
//! is printed before the first node that starts after it, or at the end of
//! the line it trailed.

use crate::syntax::ast::*;
use crate::syntax::trivia::Piece;

/// A `//` or `/* */` comment (doc comments are part of the AST).
#[derive(Debug, Clone)]
struct Comment {
    start: usize,
    end: usize,
    text: String,
}

/// Finds every non-doc comment of a file that parses.
fn scan_comments(text: &str) -> Vec<Comment> {
    let mut comments = Vec::new();
    crate::syntax::trivia::scan(text, |piece| {
        if let Piece::Comment {
            start,
            end,
            doc: false,
        } = piece
        {
            let text = &text[start..end];
            // A line comment's text ends at the line; keep a block comment whole.
            let text = if text.starts_with("//") {
                text.trim_end()
            } else {
                text
            };
            comments.push(Comment {
                start,
                end,
                text: text.to_string(),
            });
        }
    });
    comments
}

struct Printer<'a> {
    source: &'a str,
    out: String,
    comments: Vec<Comment>,
    next_comment: usize,
}

const INDENT: &str = "  ";
/// Grants longer than this continue on a second line from `on`.
const WIDTH: usize = 100;

/// Formats a parsed file. `source` must be the text `file` was parsed from.
pub fn format_file(source: &str, file: &SourceFile) -> String {
    let mut printer = Printer {
        source,
        out: String::new(),
        comments: scan_comments(source),
        next_comment: 0,
    };
    for (index, item) in file.items.iter().enumerate() {
        let start = item.docs.first().map_or(item.span.start, |d| d.span.start) as usize;
        if index > 0 {
            printer.out.push('\n');
        }
        printer.leading_comments(start, 0);
        printer.item(item);
    }
    // Comments after the last item.
    let rest: Vec<Comment> = printer.comments[printer.next_comment..].to_vec();
    if !rest.is_empty() && !file.items.is_empty() {
        printer.out.push('\n');
    }
    for comment in rest {
        printer.line(0, &comment.text);
    }
    printer.next_comment = printer.comments.len();
    printer.out
}

impl Printer<'_> {
    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str(INDENT);
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// Prints the comments that start before `position`, each on its own
    /// line; keeps one blank line after a comment that had one before what
    /// follows it (the next comment, or what starts at `position`).
    fn leading_comments(&mut self, position: usize, depth: usize) {
        while let Some(comment) = self.comments.get(self.next_comment).cloned() {
            if comment.start >= position {
                break;
            }
            self.next_comment += 1;
            self.line(depth, &comment.text);
            let next = self
                .comments
                .get(self.next_comment)
                .filter(|c| c.start < position)
                .map_or(position, |c| c.start);
            let gap = self.source.get(comment.end..next).unwrap_or("");
            if gap.matches('\n').count() >= 2 {
                self.out.push('\n');
            }
        }
    }

    /// Appends comments that trail on the same source line as `end` to the
    /// line just printed; a comment at or after `limit` (where the next
    /// element starts) belongs to that element instead.
    fn trailing_comments(&mut self, end: usize, limit: usize) {
        while let Some(comment) = self.comments.get(self.next_comment).cloned() {
            let between = self.source.get(end..comment.start).unwrap_or("\n");
            if comment.start < end
                || comment.start >= limit
                || between.contains('\n')
                || comment.text.contains('\n')
            {
                break;
            }
            self.next_comment += 1;
            if self.out.ends_with('\n') {
                self.out.pop();
            }
            self.out.push_str("  ");
            self.out.push_str(&comment.text);
            self.out.push('\n');
        }
    }

    /// The byte offset just after the `{` that opens a body starting after
    /// `from`, skipping comments.
    fn open_brace_end(&self, from: usize) -> usize {
        let mut i = from;
        let bytes = self.source.as_bytes();
        while i < bytes.len() {
            if let Some(comment) = self.comments.iter().find(|c| c.start == i) {
                i = comment.end;
                continue;
            }
            if bytes[i] == b'{' {
                return i + 1;
            }
            i += 1;
        }
        from
    }

    fn docs(&mut self, depth: usize, docs: &[DocLine]) {
        for doc in docs {
            if doc.text.is_empty() {
                self.line(depth, "///");
            } else {
                self.line(depth, &format!("/// {}", doc.text));
            }
        }
    }

    fn item(&mut self, item: &Item) {
        self.docs(0, &item.docs);
        let head = match &item.kind {
            ItemKind::Provider { kind, name, .. } => {
                format!("provider {} {}", kind.text, name.text)
            }
            ItemKind::Scope { name, .. } => format!("scope {}", name.text),
            ItemKind::Agent { name, .. } => format!("agent {}", name.text),
            ItemKind::Guardrail { name, .. } => format!("guardrail {}", name.text),
            ItemKind::Test { name, .. } => format!("test {}", string(&name.value)),
        };
        let open = self.open_brace_end(item.head.end as usize);
        self.body(
            0,
            &head,
            open,
            item.span.end as usize,
            item.kind.body(),
            usize::MAX,
        );
    }

    /// Prints `head {`, the statements, and `}` at `depth`.
    fn body(
        &mut self,
        depth: usize,
        head: &str,
        open: usize,
        end: usize,
        body: &[Stmt],
        limit: usize,
    ) {
        let close = end.saturating_sub(1);
        let has_inner_comments = self
            .comments
            .get(self.next_comment)
            .is_some_and(|c| c.start < close);
        if body.is_empty() && !has_inner_comments {
            self.line(depth, &format!("{head} {{}}"));
            self.trailing_comments(end, limit);
            return;
        }
        self.line(depth, &format!("{head} {{"));
        let starts: Vec<usize> = body
            .iter()
            .map(|stmt| stmt.docs.first().map_or(stmt.span.start, |d| d.span.start) as usize)
            .collect();
        self.trailing_comments(open, starts.first().copied().unwrap_or(close));
        let mut previous_end: Option<usize> = None;
        for (index, stmt) in body.iter().enumerate() {
            let start = starts[index];
            if let Some(previous_end) = previous_end {
                let first_thing = self
                    .comments
                    .get(self.next_comment)
                    .filter(|c| c.start < start)
                    .map_or(start, |c| c.start);
                let gap = self.source.get(previous_end..first_thing).unwrap_or("");
                if gap.matches('\n').count() >= 2 {
                    self.out.push('\n');
                }
            }
            self.leading_comments(start, depth + 1);
            let next = starts.get(index + 1).copied().unwrap_or(close);
            self.stmt(depth + 1, stmt, next);
            previous_end = Some(stmt.span.end as usize);
        }
        // Comments between the last statement and the closing brace.
        while let Some(comment) = self.comments.get(self.next_comment).cloned() {
            if comment.start >= close {
                break;
            }
            self.next_comment += 1;
            self.line(depth + 1, &comment.text);
        }
        self.line(depth, "}");
        self.trailing_comments(end, limit);
    }

    /// `@waive(…)` lines, one a line, above what they waive.
    fn waivers(&mut self, depth: usize, waivers: &[Waiver]) {
        for waiver in waivers {
            self.line(
                depth,
                &format!(
                    "@waive({}, {})",
                    waiver.lint.text,
                    string(&waiver.reason.value)
                ),
            );
        }
    }

    /// Prints one statement; `limit` is where the next one (or the closing
    /// brace) starts.
    fn stmt(&mut self, depth: usize, stmt: &Stmt, limit: usize) {
        self.docs(depth, &stmt.docs);
        let end = stmt.span.end as usize;
        match &stmt.kind {
            StmtKind::Field(field) => {
                self.line(
                    depth,
                    &format!("{} = {}", field.name.text, value(&field.value)),
                );
            }
            StmtKind::Include(names) => self.line(depth, &format!("include {}", names_list(names))),
            StmtKind::Can(names) => self.line(depth, &format!("can {}", names_list(names))),
            StmtKind::Grant(grant) => {
                self.waivers(depth, &grant.waivers);
                for keep in &grant.keeps {
                    self.line(depth, &format!("@keep({})", string(&keep.reason.value)));
                }
                for rate in &grant.rates {
                    self.line(depth, &format!("@rate({})", rate.text));
                }
                let verb = match grant.effect {
                    Effect::Allow => format!("{} allow", grant.provider.display()),
                    Effect::Deny => format!("deny {}", grant.provider.display()),
                };
                let head = format!(
                    "{verb} {}",
                    grant
                        .actions
                        .iter()
                        .map(|a| a.text.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let mut text = format!(
                    "on {}",
                    strings(grant.resources.iter().map(|r| r.value.as_str()))
                );
                let named: Vec<&str> = grant
                    .qualifiers
                    .iter()
                    .filter_map(|q| match &q.kind {
                        QualifierKind::Named(list) => Some(list.iter().map(|s| s.value.as_str())),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                if !named.is_empty() {
                    text.push_str(&format!(" named {}", strings(named.into_iter())));
                }
                for qualifier in &grant.qualifiers {
                    match &qualifier.kind {
                        QualifierKind::Namespace(ns) => {
                            text.push_str(&format!(" in namespace {}", string(&ns.value)))
                        }
                        QualifierKind::Cluster => text.push_str(" in cluster"),
                        QualifierKind::Named(_) => {}
                    }
                }
                // A grant that does not fit in the width continues on a second
                // line from `on`.
                if INDENT.len() * depth + head.len() + 1 + text.len() > WIDTH {
                    self.line(depth, &head);
                    self.line(depth + 1, &text);
                } else {
                    self.line(depth, &format!("{head} {text}"));
                }
                for (index, condition) in grant.conditions.iter().enumerate() {
                    let keyword = if index == 0 { "when" } else { "and" };
                    let line = format!(
                        "{keyword} {} {} {}",
                        condition.key.text,
                        condition.op.as_str(),
                        value(&condition.value)
                    );
                    self.line(depth + 1 + usize::from(index > 0), &line);
                }
            }
            StmtKind::RunsOn(runs_on) | StmtKind::Adopts(runs_on) => {
                self.waivers(depth, &runs_on.waivers);
                let keyword = match &stmt.kind {
                    StmtKind::Adopts(_) => "adopts",
                    _ => "runs_on",
                };
                let mut text = format!("{keyword} {}", runs_on.provider.display());
                for attribute in &runs_on.attributes {
                    text.push_str(&format!(
                        " {} {}",
                        attribute.name.text,
                        string(&attribute.value.value)
                    ));
                }
                self.line(depth, &text);
            }
            StmtKind::Delegates(body) => {
                let open = self.open_brace_end(stmt.span.start as usize);
                self.body(depth, "delegates", open, end, body, limit);
                return;
            }
            StmtKind::Expect(expect) => {
                let mut text = format!(
                    "expect {} {} {} {} on {}",
                    expect.agent.text,
                    if expect.allowed { "can" } else { "cannot" },
                    expect.provider.display(),
                    expect.action.text,
                    string(&expect.resource.value)
                );
                if let Some(named) = &expect.named {
                    text.push_str(&format!(" named {}", string(&named.value)));
                }
                match expect.place.as_ref().map(|p| &p.kind) {
                    Some(QualifierKind::Namespace(ns)) => {
                        text.push_str(&format!(" in namespace {}", string(&ns.value)))
                    }
                    Some(QualifierKind::Cluster) => text.push_str(" in cluster"),
                    _ => {}
                }
                self.line(depth, &text);
            }
        }
        // Comments written inside the statement (`owner = /* x */ "t"`) have
        // no place in its canonical line: they follow it, on lines of their
        // own, after any comment that trails it.
        let mut interior = Vec::new();
        while let Some(comment) = self.comments.get(self.next_comment) {
            if comment.start >= end {
                break;
            }
            interior.push(comment.clone());
            self.next_comment += 1;
        }
        self.trailing_comments(end, limit);
        for comment in interior {
            self.line(depth, &comment.text);
        }
    }
}

fn names_list(names: &[Ident]) -> String {
    names
        .iter()
        .map(|n| n.text.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values.map(string).collect::<Vec<_>>().join(", ")
}

/// A string literal for a decoded value: the inverse of the parser's unescaping.
pub fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            // A backslash that the parser kept as written (an unknown escape
            // such as `\d`) is written back alone; a real one is doubled.
            '\\' => match chars.peek() {
                Some(next) if !matches!(next, '"' | '\\' | 'n' | 't') => out.push('\\'),
                _ => out.push_str("\\\\"),
            },
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

fn value(value: &Value) -> String {
    match &value.kind {
        ValueKind::String(text) => string(text),
        ValueKind::Integer(text)
        | ValueKind::Duration(text)
        | ValueKind::Rate(text)
        | ValueKind::Date(text)
        | ValueKind::Ident(text)
        | ValueKind::Malformed(text) => text.clone(),
        ValueKind::Bool(flag) => flag.to_string(),
        ValueKind::List(items) => format!(
            "[{}]",
            items.iter().map(self::value).collect::<Vec<_>>().join(", ")
        ),
    }
}
