//! `writ tighten`: the source rewritten down to what the usage logs show
//! was used, never below it (docs/usage.md). Without `--write`, a unified
//! diff; with it, the files rewritten. Refused unless the rewritten project
//! checks and every request the logs recorded, and the source allowed,
//! is still allowed.

use crate::error::{CliError, Outcome};
use crate::live;
use crate::logs::{self, Sources};
use crate::pipeline::{checked, load, show_findings};
use crate::report;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use writ_compiler::syntax::ast::{self, StmtKind};
use writ_compiler::usage::{Report, Tightening};
use writ_compiler::{CheckOptions, SourceMap};

pub fn run(out: &mut impl Write, path: &Path, sources: &Sources, write: bool) -> Outcome {
    let project = load(path)?;
    let before = checked(&project)?;
    if before.has_errors() {
        show_findings(&project, &before.diagnostics)?;
        return Err(format!(
            "nothing tightened: the source has errors ({}); `writ check` lists them",
            report::summary(&before.diagnostics)
        )
        .into());
    }
    let today = crate::clock::today()?;
    let model = &before.model;
    let last_accessed = match sources.live {
        true => live::last_accessed(&project, model, &live::Scope::new(model, &sources.only)?)?,
        false => Vec::new(),
    };
    let usage = logs::usage(
        model,
        &project.name,
        &sources.from,
        &sources.since,
        today,
        last_accessed.clone(),
    )?;
    let proposed = writ_compiler::usage::tightenings(&before.model, &usage);
    if proposed.is_empty() {
        writeln!(
            out,
            "nothing to tighten: every grant the logs can judge was used as written"
        )?;
        return Ok(0);
    }
    // The tightenings made (one sharing its line with another statement
    // or a comment is not), and each file's new text.
    let mut applied: Vec<writ_compiler::Span> = Vec::new();
    let mut texts: Vec<String> = project
        .sources
        .files()
        .map(|(_, file)| file.text.clone())
        .collect();
    for (id, file) in project.sources.files() {
        let mine: Vec<&Tightening> = proposed.iter().filter(|t| t.span.file == id).collect();
        if mine.is_empty() {
            continue;
        }
        let Some(Some(tree)) = before.files.get(id.0 as usize) else {
            continue;
        };
        let (edited, made) = edit(&file.text, tree, &mine);
        // A file with nothing made is left as it is, layout included.
        if made.is_empty() {
            continue;
        }
        applied.extend(made);
        let reparsed = writ_compiler::syntax::parse_file(id, &edited).map_err(|d| {
            CliError::Message(format!(
                "refused: the rewritten `{}` does not parse ({}); nothing was written",
                file.name, d.message
            ))
        })?;
        texts[id.0 as usize] = writ_compiler::format::format_file(&edited, &reparsed);
    }
    // The rewritten project: it must check, and allow what was used.
    let mut rewritten = SourceMap::new();
    for ((_, file), text) in project.sources.files().zip(&texts) {
        rewritten.add(file.name.clone(), text.clone());
    }
    let after = writ_compiler::check(&rewritten, &CheckOptions { today });
    // As `writ check` and plans read it: lowering's findings too (a
    // policy past IAM's size, an agent nothing may become).
    let lowered = writ_compiler::lower::lower(&after.model, &project.name);
    if after.has_errors() || lowered.diagnostics.iter().any(|d| d.is_error()) {
        let errors: Vec<String> = after
            .diagnostics
            .iter()
            .chain(&lowered.diagnostics)
            .filter(|d| d.is_error())
            .map(|d| format!("{}: {}", d.code, d.message))
            .collect();
        return Err(format!(
            "refused: the tightened source would not check ({}); nothing was written",
            errors.join("; ")
        )
        .into());
    }
    let again = logs::usage(
        &after.model,
        &project.name,
        &sources.from,
        &sources.since,
        today,
        last_accessed,
    )?;
    let lost = lost(&usage, &again);
    if !lost.is_empty() {
        return Err(format!(
            "refused: the tightened source would not allow requests the logs recorded: {}; nothing was written",
            lost.join("; ")
        )
        .into());
    }
    let proposed: Vec<&Tightening> = proposed
        .iter()
        .filter(|t| applied.contains(&t.span))
        .collect();
    if proposed.is_empty() {
        writeln!(out, "nothing to tighten: the grants that could lose access share their lines with other text; give each its own line")?;
        return Ok(0);
    }
    for tightening in &proposed {
        let file = project.sources.file(tightening.span.file);
        let (line, _) = file.line_column(tightening.span.start);
        let what = match (tightening.actions.is_empty(), &tightening.resources) {
            (true, _) => "remove the grant".to_string(),
            (false, None) => format!("keep only {}", tightening.actions.join(", ")),
            (false, Some(resources)) => format!(
                "keep only {} on {}",
                tightening.actions.join(", "),
                resources.join(", ")
            ),
        };
        eprintln!("{}:{line}: {what}: {}", file.name, tightening.why);
    }
    for (((_, file), path), text) in project.sources.files().zip(&project.paths).zip(&texts) {
        if *text == file.text {
            continue;
        }
        if write {
            std::fs::write(path, text).map_err(|e| {
                CliError::Message(format!("cannot write `{}`: {e}", path.display()))
            })?;
        } else {
            let diff = similar::TextDiff::from_lines(&file.text, text);
            write!(
                out,
                "{}",
                diff.unified_diff()
                    .context_radius(2)
                    .header(&file.name, &format!("{} (tightened)", file.name))
            )?;
        }
    }
    if write {
        writeln!(out, "tightened {} grants", proposed.len())?;
    }
    Ok(0)
}

/// Requests the first report counted under a grant that the second counts
/// outside every grant.
fn lost(before: &Report, after: &Report) -> Vec<String> {
    let mut lost = Vec::new();
    for (old, new) in before.agents.iter().zip(&after.agents) {
        let was: BTreeSet<(&str, &str, &str)> = old
            .beyond
            .iter()
            .map(|a| (a.provider.as_str(), a.action.as_str(), a.resource.as_str()))
            .collect();
        for attempt in &new.beyond {
            let key = (
                attempt.provider.as_str(),
                attempt.action.as_str(),
                attempt.resource.as_str(),
            );
            // Past the listed ones, requests are counted together: more of
            // them is a loss too.
            let more = attempt.resource == writ_compiler::usage::OTHERS
                && old.beyond.iter().any(|o| {
                    (o.provider.as_str(), o.action.as_str(), o.resource.as_str()) == key
                        && o.count.uses < attempt.count.uses
                });
            if !was.contains(&key) || more {
                lost.push(format!(
                    "`{}` {} {} on {}",
                    new.agent, attempt.provider, attempt.action, attempt.resource
                ));
            }
        }
    }
    lost
}

/// The file's text with each tightening made: a grant removed (with its
/// doc lines and annotations), or its action list (and resource list)
/// rewritten. (Not yet laid
/// out: `writ fmt`'s printer does that.)
pub fn edit(
    text: &str,
    tree: &ast::SourceFile,
    tightenings: &[&Tightening],
) -> (String, Vec<writ_compiler::Span>) {
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut made = Vec::new();
    for tightening in tightenings {
        let Some(stmt) = statement(tree, tightening.span) else {
            continue;
        };
        let StmtKind::Grant(grant) = &stmt.kind else {
            continue;
        };
        if tightening.actions.is_empty() {
            // From the start of its first doc line, or of its own line, to
            // the end of its last line.
            let first = stmt.docs.first().map_or(stmt.span.start, |d| d.span.start) as usize;
            let start = text[..first].rfind('\n').map_or(0, |i| i + 1);
            let end = stmt.span.end as usize;
            let end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
            // Only whole lines: a grant sharing its line is left.
            if text[start..first].trim().is_empty()
                && text[stmt.span.end as usize..end].trim().is_empty()
            {
                edits.push((start, end, String::new()));
                made.push(tightening.span);
            }
        } else if let (Some(first), Some(last)) = (grant.actions.first(), grant.actions.last()) {
            // Not across a comment between the actions, or the resources.
            let (from, to) = (first.span.start as usize, last.span.end as usize);
            let mut mine = vec![(from, to, tightening.actions.join(", "))];
            if let (Some(resources), Some(first), Some(last)) = (
                &tightening.resources,
                grant.resources.first(),
                grant.resources.last(),
            ) {
                let quoted: Vec<String> = resources
                    .iter()
                    .map(|r| writ_compiler::format::string(r))
                    .collect();
                mine.push((
                    first.span.start as usize,
                    last.span.end as usize,
                    quoted.join(", "),
                ));
            }
            if mine
                .iter()
                .all(|(from, to, _)| !text[*from..*to].contains("//"))
            {
                edits.extend(mine);
                made.push(tightening.span);
            }
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, new) in edits {
        out.replace_range(start..end, &new);
    }
    (out, made)
}

/// The statement of a file at a span (a grant in any block, nested in a
/// `delegates` block too).
fn statement(tree: &ast::SourceFile, span: writ_compiler::Span) -> Option<&ast::Stmt> {
    fn find(body: &[ast::Stmt], span: writ_compiler::Span) -> Option<&ast::Stmt> {
        for stmt in body {
            if stmt.span == span {
                return Some(stmt);
            }
            if let StmtKind::Delegates(inner) = &stmt.kind {
                if let Some(found) = find(inner, span) {
                    return Some(found);
                }
            }
        }
        None
    }
    tree.items
        .iter()
        .find_map(|item| find(item.kind.body(), span))
}
