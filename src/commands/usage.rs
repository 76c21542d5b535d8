//! `writ usage`: what each agent actually did, grant by grant, from
//! CloudTrail and Kubernetes audit logs (docs/usage.md).

use crate::error::Outcome;
use crate::live;
use crate::logs::{self, Sources};
use crate::pipeline::{checked, load, show_findings};
use crate::report;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use writ_compiler::usage::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UsageFormat {
    /// For people: each agent, each grant with its use.
    Text,
    /// For a pull request or a wiki page.
    Markdown,
    /// One JSON object (docs/usage.schema.json).
    Json,
}

pub fn run(out: &mut impl Write, path: &Path, sources: &Sources, format: UsageFormat) -> Outcome {
    let project = load(path)?;
    let checked = checked(&project)?;
    if checked.has_errors() {
        show_findings(&project, &checked.diagnostics)?;
        return Err(format!(
            "no usage: the source has errors ({}); `writ check` lists them",
            report::summary(&checked.diagnostics)
        )
        .into());
    }
    let model = &checked.model;
    let last_accessed = match sources.live {
        true => live::last_accessed(&project, model, &live::Scope::new(model, &sources.only)?)?,
        false => Vec::new(),
    };
    let since = sources.since.as_str();
    let mut report = logs::usage(
        model,
        &project.name,
        &sources.from,
        since,
        crate::clock::today()?,
        last_accessed,
    )?;
    for grant in report.agents.iter_mut().flat_map(|a| a.grants.iter_mut()) {
        if let Some(span) = grant.span {
            let file = project.sources.file(span.file);
            let (line, _) = file.line_column(span.start);
            grant.at = Some(format!("{}:{line}", file.name));
        }
    }
    let text = match format {
        UsageFormat::Text => text(&report, since, false),
        UsageFormat::Markdown => text(&report, since, true),
        UsageFormat::Json => {
            let mut json = serde_json::json!({
                "format_version": 1,
                "project": project.name,
                "since": report.since,
            });
            if let (Some(object), Ok(serde_json::Value::Object(body))) =
                (json.as_object_mut(), serde_json::to_value(&report))
            {
                object.extend(body);
            }
            format!("{json:#}\n")
        }
    };
    out.write_all(text.as_bytes())?;
    Ok(0)
}

/// The report as text, or as markdown.
fn text(report: &Report, since: &str, markdown: bool) -> String {
    let mut out = String::new();
    let code = |text: &str| {
        if markdown {
            format!("`{}`", text.replace('`', "'"))
        } else {
            text.to_string()
        }
    };
    if markdown {
        let _ = writeln!(out, "### writ usage over the last {since}\n");
    } else {
        let _ = writeln!(out, "Usage over the last {since}:\n");
    }
    for agent in &report.agents {
        let used = agent
            .grants
            .iter()
            .filter(|g| g.count.uses > 0 || !g.attempted.is_empty())
            .count();
        let title = format!(
            "{} ({used} of {} grants used)",
            code(&agent.agent),
            agent.grants.len()
        );
        if markdown {
            let _ = writeln!(out, "#### {title}\n");
        } else {
            let _ = writeln!(out, "{title}");
        }
        let bullet = if markdown { "- " } else { "  " };
        for read in &agent.last_accessed {
            let _ = writeln!(
                out,
                "{bullet}IAM's last-accessed data of {} (made {}): {} services its policies allow",
                code(&read.role),
                writ_compiler::usage::rfc3339(read.generated),
                read.services.len()
            );
        }
        for grant in &agent.grants {
            let via = if grant.via.is_empty() {
                String::new()
            } else {
                format!(" (via {})", grant.via.join(" > "))
            };
            let indent = if markdown { "  - " } else { "      " };
            let attempted: Vec<String> = grant
                .attempted
                .iter()
                .map(|(action, last)| format!("{action} (last {last})"))
                .collect();
            if grant.count.uses == 0 {
                // "Never" only where the logs cover the grant's provider.
                let provider = grant.grant.split(' ').next().unwrap_or_default();
                let said = match (attempted.is_empty(), report.spans.contains_key(provider)) {
                    (true, true) => "never used",
                    (true, false) => "no use recorded",
                    (false, _) => "no use in the logs",
                };
                let _ = writeln!(out, "{bullet}{said}: {}{via}", code(&grant.grant));
                if !attempted.is_empty() {
                    let _ = writeln!(out, "{indent}attempted, says IAM: {}", attempted.join(", "));
                }
                continue;
            }
            let actions: Vec<String> = grant
                .actions
                .iter()
                .map(|(action, count)| format!("{action} ×{}", count.uses))
                .collect();
            let _ = writeln!(
                out,
                "{bullet}{}, last {}: {}{via}",
                plural(grant.count.uses, "use"),
                grant.count.last.as_deref().unwrap_or_default(),
                code(&grant.grant)
            );
            let _ = writeln!(out, "{indent}actions: {}", actions.join(", "));
            if !attempted.is_empty() {
                let _ = writeln!(out, "{indent}attempted, says IAM: {}", attempted.join(", "));
            }
            if !grant.resources.is_empty() {
                let resources: Vec<String> = grant.resources.iter().map(|r| code(r)).collect();
                let more = match grant.unlisted {
                    0 => String::new(),
                    n => format!(", and {} of others", plural(n, "use")),
                };
                let _ = writeln!(out, "{indent}resources: {}{more}", resources.join(", "));
            }
        }
        for (label, attempts) in [
            ("used, but no grant allows it", &agent.beyond),
            ("delegation", &agent.delegation),
            ("denied", &agent.denied),
        ] {
            for attempt in attempts {
                let _ = writeln!(
                    out,
                    "{bullet}{label}: {} {} on {} ×{}, last {}",
                    attempt.provider,
                    attempt.action,
                    code(&attempt.resource),
                    attempt.count.uses,
                    attempt.count.last.as_deref().unwrap_or_default()
                );
            }
        }
        out.push('\n');
    }
    if !report.unmapped.is_empty() {
        let events: Vec<String> = report
            .unmapped
            .iter()
            .map(|(event, count)| format!("{} ×{count}", code(event)))
            .collect();
        let _ = writeln!(
            out,
            "Events writ cannot name as an IAM action (not counted): {}",
            events.join(", ")
        );
    }
    if !report.skipped.is_empty() {
        let skipped: Vec<String> = report
            .skipped
            .iter()
            .map(|(why, count)| format!("{count} {why}"))
            .collect();
        let _ = writeln!(out, "Records not counted: {}", skipped.join("; "));
    }
    out
}

/// `1 use`, `2 uses`.
fn plural(count: u64, word: &str) -> String {
    match count {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}
