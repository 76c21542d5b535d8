//! What writ says of an agent, in words: for `writ explain AGENT` and for
//! the editor's hover (`writ lsp`).

use writ_compiler::facts::ProviderKind;
use writ_compiler::model::{AgentId, Model};
use writ_compiler::{SourceMap, Span};

/// Where a span starts, as `file:line:column`.
pub fn at(sources: &SourceMap, span: Span) -> String {
    let file = sources.file(span.file);
    let (line, column) = file.line_column(span.start);
    format!("{}:{line}:{column}", file.name)
}

/// A grant's text on one line.
pub fn one_line(sources: &SourceMap, span: Span) -> String {
    sources
        .snippet(span)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `writ explain AGENT` says of an agent, as text (also the editor's
/// hover on an agent).
pub fn agent_text(sources: &SourceMap, model: &Model, id: AgentId) -> String {
    use std::fmt::Write as _;
    let a = &model.agents[id];
    let mut said = String::new();
    let (ttl, expiry, runs_on, ancestors) = facts_of(sources, model, id);
    writeln!(said, "agent `{}` ({})", a.name, at(sources, a.span)).ok();
    for line in a.docs.lines() {
        writeln!(said, "  /// {line}").ok();
    }
    writeln!(said, "  owner: {}", a.owner).ok();
    writeln!(said, "  {ttl}").ok();
    writeln!(said, "  {expiry}").ok();
    if a.frozen {
        writeln!(said, "  frozen: declared, holding no access").ok();
    }
    if let Some(rate) = &a.rate {
        writeln!(
            said,
            "  asks at most {} (`writ serve` holds it)",
            rate.text()
        )
        .ok();
    }
    if let Some(budget) = &a.budget {
        writeln!(
            said,
            "  each credential `writ serve` issues it makes at most {} requests",
            budget.count
        )
        .ok();
    }
    for (text, at) in &runs_on {
        writeln!(said, "  runs on {text} ({at})").ok();
    }
    if !ancestors.is_empty() {
        let chain: Vec<String> = ancestors.iter().map(|p| format!("`{p}`")).collect();
        writeln!(said, "  a delegate of {}", chain.join(" ← ")).ok();
    }
    writeln!(said, "  grants:").ok();
    if a.grants.is_empty() {
        writeln!(said, "    (none)").ok();
    }
    for grant in &a.grants {
        let origin = match grant.via.as_slice() {
            [] => "written in the agent".to_string(),
            via => format!("through scope `{}`", via.join("` → `")),
        };
        writeln!(
            said,
            "    {}\n      {origin} ({})",
            one_line(sources, grant.span),
            at(sources, grant.span)
        )
        .ok();
    }
    if let Some(ceiling) = &a.delegates {
        writeln!(
            said,
            "  its delegates may be {} deep, live at most {}, and hold at most {} grant{}{}",
            ceiling.max_depth,
            ceiling.ttl,
            ceiling.grants.len(),
            if ceiling.grants.len() == 1 { "" } else { "s" },
            ceiling
                .rate
                .map(|r| format!(", asking at most {}", r.text()))
                .unwrap_or_default()
                + &ceiling
                    .budget
                    .map(|b| format!(", {} requests a credential", b.count))
                    .unwrap_or_default()
        )
        .ok();
    }
    for guardrail in &model.guardrails {
        writeln!(
            said,
            "  bounded by guardrail `{}` ({})",
            guardrail.name,
            at(sources, guardrail.span)
        )
        .ok();
    }
    said
}

/// What `explain` says of an agent's ttl, expiry, workloads (text, place)
/// and ancestors.
pub fn facts_of<'m>(
    sources: &SourceMap,
    model: &'m Model,
    id: AgentId,
) -> (String, String, Vec<(String, String)>, Vec<&'m str>) {
    let a = &model.agents[id];
    let aws = a
        .grants
        .iter()
        .any(|g| model.providers[g.provider].kind == ProviderKind::Aws);
    // Said as AWS holds it, not as written.
    let ttl = if aws && a.ttl.seconds() < writ_compiler::values::HOUR {
        format!(
            "credentials live at most {} when asked for so; AWS holds its role's sessions to 1h",
            a.ttl
        )
    } else {
        format!("credentials live at most {}", a.ttl)
    };
    let with = match a.expires_with {
        Some(ancestor) if a.parent == Some(ancestor) => {
            format!(" with its parent `{}`", model.agents[ancestor].name)
        }
        Some(ancestor) => format!(" with its ancestor `{}`", model.agents[ancestor].name),
        None => String::new(),
    };
    let expiry = match (a.expires, a.retired) {
        (Some(date), true) => {
            format!("expired on {date}{with}: it holds no access and plans delete it")
        }
        (Some(date), false) => format!("expires on {date}{with}"),
        (None, _) => "never expires".to_string(),
    };
    let runs_on: Vec<(String, String)> = a
        .runs_on
        .iter()
        .map(|w| {
            (
                sources
                    .snippet(w.span)
                    .trim_start_matches("runs_on ")
                    .trim()
                    .to_string(),
                at(sources, w.span),
            )
        })
        .collect();
    let ancestors: Vec<&str> = model
        .ancestors(id)
        .iter()
        .map(|&p| model.agents[p].name.as_str())
        .collect();
    (ttl, expiry, runs_on, ancestors)
}
