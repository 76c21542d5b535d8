//! Plans for people and machines: terminal text, markdown for pull requests,
//! and JSON. Each is a pure function of the [`Plan`] (the diff of policy
//! documents runs under a time limit, which is why rendering lives here and
//! not in the compiler, which never reads the clock).

use serde_json::Value;
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeMap;
use std::fmt::Write;
use writ_compiler::graph::Undeclared;
use writ_compiler::plan::{Change, ChangeKind, Drift, DriftCause, Plan};

/// GitHub refuses comments longer than 65,536 characters.
pub const MARKDOWN_LIMIT: usize = 65_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// For people, on a terminal (colour as `--color` says).
    Text,
    /// For a pull request comment or a job summary.
    Markdown,
    /// Versioned JSON, for machines (docs/plan.md).
    Json,
}

struct Style {
    colour: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\u{1b}[{code}m{text}\u{1b}[0m")
        } else {
            text.to_string()
        }
    }
}

fn symbol(kind: ChangeKind) -> (&'static str, &'static str, &'static str) {
    // (symbol, word, ANSI colour)
    match kind {
        ChangeKind::Create => ("+", "create", "32"),
        ChangeKind::Update => ("~", "update", "33"),
        ChangeKind::Replace => ("-/+", "replace", "35"),
        ChangeKind::Delete => ("-", "delete", "31"),
        ChangeKind::Adopt => ("<=", "adopt", "36"),
    }
}

/// Where the picture of access changes goes in the markdown plan's head.
const PICTURE_HERE: &str = "\u{0}picture\u{0}";

/// How the plan words a trust: a principal that may become the agent.
const TRUST: &str = "become the agent";

/// At most this many arrows in a plan's picture of access changes.
const PICTURE_EDGES: usize = 40;

/// The access a plan changes, as a Mermaid flowchart for the pull request
/// (GitHub draws it): each agent, and the resources it gains actions on
/// (solid green arrows) or loses them on (dotted red), one arrow per agent,
/// resource and direction; a trust gained or lost (a principal that may
/// become the agent) points from the principal to the agent. `None` when
/// no access changes. At most [`PICTURE_EDGES`] arrows; the rest are
/// counted below it, and the text stays the reference.
fn access_picture(plan: &Plan) -> Option<String> {
    // (agent, resource, gained) → actions, in a stable order.
    let mut arrows: BTreeMap<(&str, String, bool), Vec<String>> = BTreeMap::new();
    for delta in &plan.permission_delta {
        for (gained, accesses) in [(true, &delta.gains), (false, &delta.losses)] {
            for access in accesses {
                let mut resource = format!("{} {}", access.provider, access.resource);
                if let Some(place) = access.condition.as_deref().filter(|c| c.starts_with("in ")) {
                    resource = format!("{resource} {place}");
                }
                let actions = arrows
                    .entry((delta.agent.as_str(), resource, gained))
                    .or_default();
                let mut action = access.action.clone();
                if let Some(condition) = access
                    .condition
                    .as_deref()
                    .filter(|c| !c.starts_with("in "))
                {
                    // Whom a trust admits is its condition: said whole; a
                    // grant's condition only flagged.
                    if action.starts_with(TRUST) {
                        action.push_str(&format!(" when {condition}"));
                    } else {
                        action.push_str(" (when …)");
                    }
                }
                if !actions.contains(&action) {
                    actions.push(action);
                }
            }
        }
    }
    if arrows.is_empty() {
        return None;
    }
    let text = writ_compiler::graph::mermaid_text;
    let mut out = String::from("```mermaid\nflowchart LR\n");
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut styles = Vec::new();
    for (index, ((agent, resource, gained), actions)) in
        arrows.iter().take(PICTURE_EDGES).enumerate()
    {
        let mut node = |key: String, shape: (&str, &str)| -> String {
            let next = format!("n{}", ids.len());
            match ids.get(&key) {
                Some(id) => id.clone(),
                None => {
                    ids.insert(key.clone(), next.clone());
                    format!("{next}{}{}{}", shape.0, text(&key), shape.1)
                }
            }
        };
        let trust = actions.iter().all(|a| a.starts_with(TRUST));
        let (from, to) = if trust {
            let principal = node(resource.clone(), ("([\"", "\"])"));
            (principal, node(format!("agent:{agent}"), ("[\"", "\"]")))
        } else {
            let agent = node(format!("agent:{agent}"), ("[\"", "\"]"));
            (agent, node(resource.clone(), ("[/\"", "\"/]")))
        };
        let mut label = actions
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if actions.len() > 3 {
            label.push_str(&format!(" +{}", actions.len() - 3));
        }
        let (arrow, sign, colour) = if *gained {
            ("-->", "+", "#16a34a")
        } else {
            ("-.->", "−", "#dc2626")
        };
        let _ = writeln!(out, "  {from} {arrow}|\"{sign} {}\"| {to}", text(&label));
        styles.push(format!(
            "  linkStyle {index} stroke:{colour},color:{colour}"
        ));
    }
    for style in styles {
        let _ = writeln!(out, "{style}");
    }
    out.push_str("```\n");
    if arrows.len() > PICTURE_EDGES {
        let _ = writeln!(
            out,
            "\n_{} more access changes are listed below._",
            arrows.len() - PICTURE_EDGES
        );
    }
    Some(out)
}

/// Pretty JSON of a value, for showing and diffing.
fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A line diff of two texts: the changed lines with three lines of context
/// around them, `…` between hunks. Gives up on a pathological diff after a
/// second (showing it whole) rather than hang a CI job.
fn line_diff(old: &str, new: &str) -> Vec<(ChangeTag, String)> {
    let diff = TextDiff::configure()
        .timeout(std::time::Duration::from_secs(1))
        .diff_lines(old, new);
    let mut lines = Vec::new();
    for (index, group) in diff.grouped_ops(3).iter().enumerate() {
        if index > 0 {
            lines.push((ChangeTag::Equal, "…".to_string()));
        }
        for op in group {
            for change in diff.iter_changes(op) {
                lines.push((
                    change.tag(),
                    change.value().trim_end_matches('\n').to_string(),
                ));
            }
        }
    }
    lines
}

/// The body lines of one change: attributes of a created or deleted object,
/// and for an update the changed attributes (documents as line diffs).
fn change_lines(change: &Change) -> Vec<(ChangeTag, String)> {
    let mut lines = Vec::new();
    let empty = BTreeMap::new();
    let before = change.before.as_ref().unwrap_or(&empty);
    let after = change.after.as_ref().unwrap_or(&empty);
    match change.kind_of_change() {
        ChangeKind::Create | ChangeKind::Delete => {
            let (tag, attributes) = if change.after.is_some() {
                (ChangeTag::Insert, after)
            } else {
                (ChangeTag::Delete, before)
            };
            for (key, value) in attributes
                .iter()
                .filter(|(key, _)| !writ_compiler::resource::is_observed_only(key))
            {
                let text = pretty(value);
                let mut text_lines = text.lines();
                let first = text_lines.next().unwrap_or_default();
                lines.push((tag, format!("{key} = {first}")));
                lines.extend(text_lines.map(|l| (tag, l.to_string())));
            }
        }
        ChangeKind::Update | ChangeKind::Replace | ChangeKind::Adopt => {
            for path in &change.changed_paths {
                let keyed = path
                    .split_once('.')
                    .filter(|(map, _)| writ_compiler::plan::KEYED_ATTRIBUTES.contains(map));
                if let Some((map, key)) = keyed {
                    let value =
                        |m: &BTreeMap<String, Value>| m.get(map).and_then(|t| t.get(key)).cloned();
                    let (old, new) = (value(before), value(after));
                    lines.push((
                        ChangeTag::Equal,
                        format!("{path}: {} → {}", show(old.as_ref()), show(new.as_ref())),
                    ));
                    continue;
                }
                let (old, new) = (before.get(path), after.get(path));
                // Documents and lists (policies, RBAC rules, subjects) as line diffs.
                let is_document = [old, new]
                    .iter()
                    .any(|v| v.is_some_and(|v| v.is_object() || v.is_array()));
                if is_document {
                    lines.push((ChangeTag::Equal, format!("{path}:")));
                    let old_text = old.map(pretty).unwrap_or_default();
                    let new_text = new.map(pretty).unwrap_or_default();
                    for (tag, line) in line_diff(&old_text, &new_text) {
                        lines.push((tag, format!("  {line}")));
                    }
                } else {
                    lines.push((
                        ChangeTag::Equal,
                        format!("{path}: {} → {}", show(old), show(new)),
                    ));
                }
            }
        }
    }
    lines
}

fn show(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".to_string(),
        Some(value) => value.to_string(),
    }
}

fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    if !plan.has_changes() {
        return format!("No changes: {} objects match the source.", s.unchanged);
    }
    // Said in full when that fits 80 columns, as a tally when it does not.
    let line = |to: &str| {
        let mut parts = Vec::new();
        for (count, word) in [
            (s.adopt, "adopt"),
            (s.create, "create"),
            (s.update, "update"),
            (s.replace, "replace"),
            (s.delete, "delete"),
        ] {
            if count > 0 {
                parts.push(format!("{count} {to}{word}"));
            }
        }
        parts.push(format!("{} unchanged", s.unchanged));
        format!("Plan: {}.", parts.join(", "))
    };
    let full = line("to ");
    if full.len() <= 80 {
        full
    } else {
        line("")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The plan for a terminal.
pub fn text(plan: &Plan, colour: bool) -> String {
    let style = Style { colour };
    let mut out = String::new();
    let _ = writeln!(out, "writ plan for project `{}`", plan.project);
    for line in against(plan) {
        let _ = writeln!(out, "  against {line}");
    }
    out.push('\n');
    let mut used: Vec<ChangeKind> = plan.changes.iter().map(Change::kind_of_change).collect();
    used.sort();
    used.dedup();
    if !used.is_empty() {
        let legend: Vec<String> = used
            .iter()
            .map(|kind| {
                let (sym, word, code) = symbol(*kind);
                format!("{} {word}", style.paint(code, sym))
            })
            .collect();
        let _ = writeln!(out, "Legend: {}\n", legend.join("   "));
    }
    for change in &plan.changes {
        let (sym, word, code) = symbol(change.kind_of_change());
        let owner = change
            .agent
            .as_ref()
            .map(|a| format!(" of `{a}`"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {} ({}{owner})",
            style.paint(code, sym),
            style.paint("1", &change.address),
            change.kind.noun()
        );
        let why = format!("    # {word}: {}", change.reason);
        let _ = writeln!(out, "{}", style.paint("2", &why));
        for (tag, line) in change_lines(change) {
            let (mark, colour) = match tag {
                ChangeTag::Insert => ("+ ", "32"),
                ChangeTag::Delete => ("- ", "31"),
                ChangeTag::Equal => ("  ", ""),
            };
            let line = format!("      {mark}{line}");
            let _ = writeln!(
                out,
                "{}",
                if colour.is_empty() {
                    line
                } else {
                    style.paint(colour, &line)
                }
            );
        }
        out.push('\n');
    }
    if !plan.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.paint("31;1", "Conflicts (the plan cannot be applied):")
        );
        for conflict in &plan.conflicts {
            let _ = writeln!(out, "  ✗ {}: {}", conflict.address, conflict.detail);
        }
        out.push('\n');
    }
    if !plan.revoked.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                "31;1",
                "Revoked (kept by every apply until `writ revoke --lift`):"
            )
        );
        for entry in &plan.revoked {
            let _ = writeln!(out, "  ⊘ `{}`: {}", entry.agent, entry.address);
            let _ = writeln!(out, "      {}", entry.detail);
        }
        out.push('\n');
    }
    if !plan.notes.is_empty() {
        let _ = writeln!(out, "{}", style.paint("1", "Notes:"));
        for note in &plan.notes {
            let _ = writeln!(out, "  • {note}");
        }
        out.push('\n');
    }
    if !plan.unfinished.is_empty() {
        let _ = writeln!(out, "{}", style.paint("33;1", "Unfinished runs:"));
        for run in &plan.unfinished {
            let _ = writeln!(out, "  ⚠ {}: {}", run.provider, run.detail);
        }
        out.push('\n');
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                "33;1",
                "Drift (changed outside writ; the changes above restore what writ owns):"
            )
        );
        for drift in &plan.drift {
            let what = if drift.changed_paths.is_empty() {
                String::new()
            } else {
                format!(" [{}]", drift.changed_paths.join(", "))
            };
            let _ = writeln!(out, "  ! {}: {}{what}", drift.address, drift_detail(drift));
        }
        out.push('\n');
    }
    if !plan.permission_delta.is_empty() {
        let _ = writeln!(out, "{}", style.paint("1", "Access changes:"));
        for delta in &plan.permission_delta {
            for gain in &delta.gains {
                let _ = writeln!(
                    out,
                    "  {} `{}` gains {gain}",
                    style.paint("32", "+"),
                    delta.agent
                );
            }
            for loss in &delta.losses {
                let _ = writeln!(
                    out,
                    "  {} `{}` loses {loss}",
                    style.paint("31", "-"),
                    delta.agent
                );
            }
        }
        out.push('\n');
    }
    if !plan.undeclared_access.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                "33;1",
                &format!(
                    "{UNDECLARED} ({}):",
                    plural(plan.undeclared_access.len(), "link", "links")
                )
            )
        );
        for access in &plan.undeclared_access {
            let _ = writeln!(out, "  ! {}", undeclared_words(access));
        }
        out.push('\n');
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.paint("1", "Unmanaged identities (listed, never changed):")
        );
        for entry in &plan.unmanaged {
            let bullet = if entry.stale || !entry.flags.is_empty() {
                style.paint("31", "!")
            } else {
                "•".to_string()
            };
            let flags = if entry.flags.is_empty() {
                String::new()
            } else {
                style.paint("31", &format!(" [{}]", entry.flags.join(", ")))
            };
            let _ = writeln!(out, "  {bullet} {}: {}{flags}", entry.address, entry.detail);
        }
        out.push('\n');
    }
    // The counts, then what else a reviewer must see, each said once and
    // on lines that fit 80 columns.
    let s = &plan.summary;
    let mut tail = summary_line(plan);
    if s.delete > 0 {
        for said in [
            format!("{} to delete", s.delete),
            format!("{} delete", s.delete),
        ] {
            if tail.contains(&said) {
                tail = tail.replacen(&said, &style.paint("31", &said), 1);
                break;
            }
        }
    }
    let _ = writeln!(out, "{tail}");
    let mut notes = Vec::new();
    if s.drift > 0 {
        notes.push(plural(s.drift, "object drifted", "objects drifted"));
    }
    if s.agents_gaining > 0 {
        notes.push(style.paint(
            "33",
            &plural(s.agents_gaining, "agent gains access", "agents gain access"),
        ));
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "{}.", capitalise(&notes.join("; ")));
    }
    out
}

/// The plan as a pull-request comment: summary first, then one collapsed
/// section per agent, never longer than [`MARKDOWN_LIMIT`].
pub fn markdown(plan: &Plan) -> String {
    markdown_within(plan, MARKDOWN_LIMIT)
}

pub fn markdown_within(plan: &Plan, limit: usize) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "## writ plan: `{}`\n", plan.project);
    let places = against(plan);
    if !places.is_empty() {
        let _ = writeln!(head, "Against {}.\n", places.join("; "));
    }
    let _ = writeln!(head, "**{}**\n", summary_line(plan));
    let deletes = plan.summary.delete;
    if deletes > 0
        || plan.summary.adopt > 0
        || plan.summary.replace > 0
        || plan.privilege_gain()
        || !plan.conflicts.is_empty()
        || !plan.undeclared_access.is_empty()
    {
        let mut warnings = Vec::new();
        if !plan.conflicts.is_empty() {
            warnings.push(format!(
                "{} that writ will not take over: the plan cannot be applied",
                plural(
                    plan.conflicts.len(),
                    "object has a name taken by one",
                    "objects have names taken by ones"
                )
            ));
        }
        if plan.summary.adopt > 0 {
            warnings.push(format!(
                "this plan adopts {} made outside writ: writ owns {} from then on (`writ apply --adopt`)",
                plural(plan.summary.adopt, "object", "objects"),
                if plan.summary.adopt == 1 { "it" } else { "them" }
            ));
        }
        if deletes > 0 {
            warnings.push(format!(
                "this plan deletes {}",
                plural(deletes, "object", "objects")
            ));
        }
        if plan.summary.replace > 0 {
            warnings.push(format!(
                "this plan replaces {} (deleted and made again: a replaced IAM role gets a new role id, which policies naming the old one do not match)",
                plural(plan.summary.replace, "object", "objects")
            ));
        }
        if plan.privilege_gain() {
            warnings.push(format!(
                "{} new access",
                plural(plan.summary.agents_gaining, "agent gains", "agents gain")
            ));
        }
        if !plan.undeclared_access.is_empty() {
            warnings.push(format!(
                "agents hold access the source does not declare ({}, listed below)",
                plural(plan.undeclared_access.len(), "link", "links")
            ));
        }
        let _ = writeln!(
            head,
            "> [!WARNING]\n> {}\n",
            capitalise(&warnings.join("; "))
        );
    }
    if !plan.permission_delta.is_empty() {
        let _ = writeln!(head, "| agent | gains | loses |\n| --- | --- | --- |");
        for delta in &plan.permission_delta {
            let _ = writeln!(
                head,
                "| `{}` | {} | {} |",
                delta.agent,
                delta.gains.len(),
                delta.losses.len()
            );
        }
        head.push('\n');
        // The picture's place: filled once the text is known to fit.
        head.push_str(PICTURE_HERE);
    }
    if plan.summary.drift > 0 {
        let _ = writeln!(
            head,
            "{} changed outside writ (drift); this plan restores what writ owns.\n",
            plural(plan.summary.drift, "object was", "objects were")
        );
    }
    for run in &plan.unfinished {
        let _ = writeln!(head, "⚠ `{}`: {}\n", run.provider, run.detail);
    }
    if !plan.revoked.is_empty() {
        let agents: Vec<String> = plan
            .revoked
            .iter()
            .map(|r| format!("`{}`", r.agent))
            .collect();
        let _ = writeln!(
            head,
            "Revoked with `writ revoke` (kept): {}.\n",
            agents.join(", ")
        );
    }
    for note in &plan.notes {
        let _ = writeln!(head, "> **Note:** {note}.\n");
    }

    let mut sections = Vec::new();
    let mut by_agent: BTreeMap<String, Vec<&Change>> = BTreeMap::new();
    for change in &plan.changes {
        by_agent
            .entry(change.agent.clone().unwrap_or_else(|| "(no agent)".into()))
            .or_default()
            .push(change);
    }
    for (agent, changes) in &by_agent {
        let mut section = String::new();
        let counts: Vec<String> = [
            ChangeKind::Create,
            ChangeKind::Update,
            ChangeKind::Replace,
            ChangeKind::Delete,
        ]
        .iter()
        .filter_map(|kind| {
            let n = changes
                .iter()
                .filter(|c| c.kind_of_change() == *kind)
                .count();
            let (sym, word, _) = symbol(*kind);
            (n > 0).then(|| format!("{sym}{n} {word}"))
        })
        .collect();
        let _ = writeln!(
            section,
            "<details><summary><code>{agent}</code>: {}</summary>\n",
            counts.join(", ")
        );
        if let Some(delta) = plan.permission_delta.iter().find(|d| &d.agent == agent) {
            for gain in &delta.gains {
                let _ = writeln!(section, "- gains {gain}");
            }
            for loss in &delta.losses {
                let _ = writeln!(section, "- loses {loss}");
            }
            section.push('\n');
        }
        section.push_str("```diff\n");
        for change in changes {
            let (sym, word, _) = symbol(change.kind_of_change());
            // In a diff block only `+` and `-` lines are coloured: creates and
            // deletes use them; updates and replacements show their symbol.
            let mark = match change.kind_of_change() {
                ChangeKind::Create | ChangeKind::Delete => sym.to_string(),
                _ => format!("  {sym}"),
            };
            let _ = writeln!(
                section,
                "{mark} {} ({}): {word}, {}",
                change.address,
                change.kind.noun(),
                change.reason
            );
            for (tag, line) in change_lines(change) {
                let prefix = match tag {
                    ChangeTag::Insert => "+",
                    ChangeTag::Delete => "-",
                    ChangeTag::Equal => " ",
                };
                // A fence inside the block would end it early.
                let _ = writeln!(section, "{prefix}     {}", line.replace("```", "ʼʼʼ"));
            }
        }
        section.push_str("```\n\n</details>\n\n");
        sections.push(section);
    }
    if !plan.drift.is_empty() {
        let mut section = String::from("<details><summary>Drift</summary>\n\n");
        for drift in &plan.drift {
            let what = if drift.changed_paths.is_empty() {
                String::new()
            } else {
                format!(" ({})", drift.changed_paths.join(", "))
            };
            let _ = writeln!(
                section,
                "- `{}`: {}{what}",
                drift.address,
                drift_detail(drift)
            );
        }
        section.push_str("\n</details>\n\n");
        sections.push(section);
    }
    if !plan.undeclared_access.is_empty() {
        let mut section = format!(
            "<details open><summary>{UNDECLARED} ({})</summary>\n\n",
            plural(plan.undeclared_access.len(), "link", "links")
        );
        for access in &plan.undeclared_access {
            let _ = writeln!(section, "- {}", code_span(&undeclared_words(access)));
        }
        section.push_str("\n</details>\n\n");
        sections.push(section);
    }
    if !plan.unmanaged.is_empty() {
        let mut section = format!(
            "<details><summary>Unmanaged identities ({})</summary>\n\n",
            plan.unmanaged.len()
        );
        for entry in &plan.unmanaged {
            let mut flags: Vec<String> = entry.flags.iter().map(|f| format!("**{f}**")).collect();
            if entry.stale {
                flags.insert(0, "**stale**".to_string());
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" ({})", flags.join(", "))
            };
            let _ = writeln!(section, "- `{}`: {}{flags}", entry.address, entry.detail);
        }
        section.push_str("\n</details>\n\n");
        sections.push(section);
    }
    if !plan.conflicts.is_empty() {
        let mut section = String::from("<details open><summary>Conflicts</summary>\n\n");
        for conflict in &plan.conflicts {
            let _ = writeln!(section, "- `{}`: {}", conflict.address, conflict.detail);
        }
        section.push_str("\n</details>\n\n");
        sections.push(section);
    }

    // The picture takes at most a quarter of the comment, and only room
    // the text does not need: the text is the reference, never cut for it.
    let text: usize = head.len() + sections.iter().map(String::len).sum::<usize>();
    let picture = match access_picture(plan) {
        Some(picture) if picture.len() <= limit / 4 && text + picture.len() + 300 <= limit => {
            picture + "\n"
        }
        Some(_) => "_The picture of these access changes is left out to stay within GitHub's comment limit._\n\n".to_string(),
        None => String::new(),
    };
    let head = head.replacen(PICTURE_HERE, &picture, 1);
    // Whole sections only: a cut never falls inside a code block or a
    // <details>, and a note says what was left out.
    let mut out = head;
    let total = sections.len();
    let note_room = 300;
    let mut kept = 0;
    for section in &sections {
        if out.len() + section.len() + note_room > limit {
            break;
        }
        out.push_str(section);
        kept += 1;
    }
    if kept < total {
        let _ = writeln!(
            out,
            "_{} of {total} sections left out to stay within GitHub's comment limit; the full plan is in the job summary and the JSON plan (`writ plan --format json`)._",
            total - kept
        );
    }
    out
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The plan as versioned JSON (documented in docs/plan.md).
pub fn json(plan: &Plan) -> String {
    let mut text = serde_json::to_string_pretty(plan).unwrap_or_default();
    text.push('\n');
    text
}

/// Why an object is listed as drift, in words: an interrupted run's
/// unfinished work is told apart from an edit.
fn drift_detail(drift: &Drift) -> std::borrow::Cow<'_, str> {
    match drift.cause {
        DriftCause::Edited | DriftCause::ForeignGrant => drift.detail.as_str().into(),
        DriftCause::InterruptedApply => "interrupted apply: not as writ left it, most likely a run that stopped partway (see Unfinished runs); the next apply finishes it".into(),
        DriftCause::ApplyRunning => "not as writ left it: the run that holds the lock now may be changing it (see Unfinished runs)".into(),
    }
}

/// The heading of governed objects not as writ sets them.
const GOVERNED_DRIFT: &str = "Not as the source says, on objects writ keeps no digest on (governed GitHub settings, GCP policies and pools): changed outside writ, or a source change not applied yet (writ cannot tell which)";

/// `writ drift` in words: only what changed outside writ.
pub fn drift_text(plan: &Plan, undeclared: &[Undeclared]) -> String {
    let unapplied = plan.unapplied();
    let governed = plan.unrecorded_changes();
    if plan.drift.is_empty()
        && unapplied.is_empty()
        && governed.is_empty()
        && plan.unfinished.is_empty()
        && undeclared.is_empty()
    {
        return "No drift: every object writ manages matches what writ last applied, and the source.\n".to_string();
    }
    let mut out = String::new();
    for run in &plan.unfinished {
        let _ = writeln!(out, "Unfinished run in {}: {}", run.provider, run.detail);
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(
            out,
            "Drift: {} changed outside writ since writ last applied them:",
            plan.drift.len()
        );
        for entry in &plan.drift {
            let what = if entry.changed_paths.is_empty() {
                String::new()
            } else {
                format!(" [{}]", entry.changed_paths.join(", "))
            };
            let _ = writeln!(out, "  ! {}: {}{what}", entry.address, drift_detail(entry));
        }
    }
    if !unapplied.is_empty() {
        let _ = writeln!(
            out,
            "Not as the source says, though their digest tags say writ made them so: the source changed and was not applied, or the digest was rewritten along with the object to hide an edit ({}):",
            plural(unapplied.len(), "object", "objects")
        );
        for change in unapplied {
            let _ = writeln!(out, "  ! {}: {}", change.address, change.reason);
        }
    }
    if !governed.is_empty() {
        let _ = writeln!(
            out,
            "{GOVERNED_DRIFT} ({}):",
            plural(governed.len(), "object", "objects")
        );
        for change in governed {
            let _ = writeln!(
                out,
                "  ! {}: [{}] {}",
                change.address,
                change.changed_paths.join(", "),
                change.reason
            );
        }
    }
    if !undeclared.is_empty() {
        let _ = writeln!(
            out,
            "{UNDECLARED} ({}):",
            plural(undeclared.len(), "link", "links")
        );
        for access in undeclared {
            let _ = writeln!(out, "  ! {}", undeclared_words(access));
        }
    }
    out.push_str("`writ apply` restores what writ owns and governs.\n");
    if bound_outside(undeclared) {
        out.push_str("Access bound by objects writ does not own stays until it is removed where it was made.\n");
    }
    out
}

/// How drift reports access the live state holds and the source does not.
/// Is some of the undeclared access bound in Kubernetes, where the binding
/// may be someone else's (writ's roles' policies in AWS are writ's, and
/// apply puts them back)?
fn bound_outside(undeclared: &[Undeclared]) -> bool {
    undeclared.iter().any(|u| u.workload.starts_with("k8s:"))
}

const UNDECLARED: &str = "Access the source does not declare";

fn undeclared_words(access: &Undeclared) -> String {
    // An identity reached (a deploy key that can act as an agent), or
    // access.
    let mut words = if access.actions.is_empty() {
        format!("{} may act as {}", access.workload, access.resource)
    } else {
        format!(
            "{} may do {} on {}",
            access.workload,
            access.actions.join(", "),
            access.resource
        )
    };
    if !access.names.is_empty() {
        words.push_str(&format!(" named {}", access.names.join(", ")));
    }
    words.push_str(&format!(" ({})", access.how));
    if !access.guardrails.is_empty() {
        let names: Vec<String> = access.guardrails.iter().map(|g| format!("`{g}`")).collect();
        words.push_str(&format!(
            "; guardrail {} denies it, but writ's check sees only the source",
            names.join(", ")
        ));
    }
    words
}

/// Text as a markdown code span, fenced with more backticks than it holds
/// in a row, so that nothing in it is read as markdown.
fn code_span(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if longest > 0 { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// `writ drift --format markdown`: the same report, for a pull request or
/// an issue (addresses in code spans, so nothing in them is read as
/// markdown; the details are writ's own words).
pub fn drift_markdown(plan: &Plan, undeclared: &[Undeclared]) -> String {
    let mut out = format!(
        "### writ drift for project {}\n\n",
        code_span(&plan.project)
    );
    let unapplied = plan.unapplied();
    let governed = plan.unrecorded_changes();
    if plan.drift.is_empty()
        && unapplied.is_empty()
        && governed.is_empty()
        && plan.unfinished.is_empty()
        && undeclared.is_empty()
    {
        out.push_str("**No drift**: every object writ manages matches what writ last applied, and the source.\n");
        return out;
    }
    for run in &plan.unfinished {
        let _ = writeln!(
            out,
            "**Unfinished run** in {}: {}\n",
            code_span(&run.provider),
            run.detail
        );
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(
            out,
            "**Drift**: {} changed outside writ since writ last applied them:\n",
            plan.drift.len()
        );
        for entry in &plan.drift {
            let what = if entry.changed_paths.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    entry
                        .changed_paths
                        .iter()
                        .map(|p| code_span(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let _ = writeln!(
                out,
                "- {}: {}{what}",
                code_span(&entry.address),
                drift_detail(entry)
            );
        }
        out.push('\n');
    }
    if !unapplied.is_empty() {
        let _ = writeln!(
            out,
            "**Not as the source says**, though their digest tags say writ made them so: the source changed and was not applied, or the digest was rewritten along with the object to hide an edit ({}):\n",
            plural(unapplied.len(), "object", "objects")
        );
        for change in unapplied {
            let _ = writeln!(out, "- {}: {}", code_span(&change.address), change.reason);
        }
        out.push('\n');
    }
    if !governed.is_empty() {
        let _ = writeln!(
            out,
            "**{GOVERNED_DRIFT}** ({}):\n",
            plural(governed.len(), "object", "objects")
        );
        for change in governed {
            let paths: Vec<String> = change.changed_paths.iter().map(|p| code_span(p)).collect();
            let _ = writeln!(
                out,
                "- {} ({}): {}",
                code_span(&change.address),
                paths.join(", "),
                change.reason
            );
        }
        out.push('\n');
    }
    if !undeclared.is_empty() {
        let _ = writeln!(
            out,
            "**{UNDECLARED}** ({}):\n",
            plural(undeclared.len(), "link", "links")
        );
        for access in undeclared {
            let _ = writeln!(out, "- {}", code_span(&undeclared_words(access)));
        }
        out.push('\n');
    }
    out.push_str("`writ apply` restores what writ owns and governs.\n");
    if bound_outside(undeclared) {
        out.push_str("Access bound by objects writ does not own stays until it is removed where it was made.\n");
    }
    out
}

/// `writ drift --format json`.
pub fn drift_json(plan: &Plan, undeclared: &[Undeclared]) -> String {
    let unapplied: Vec<serde_json::Value> = plan
        .unapplied()
        .into_iter()
        .map(|c| serde_json::json!({"address": c.address, "kind": c.kind, "reason": c.reason}))
        .collect();
    let governed: Vec<serde_json::Value> = plan
        .unrecorded_changes()
        .into_iter()
        .map(|c| serde_json::json!({"address": c.address, "kind": c.kind, "changed_paths": c.changed_paths, "reason": c.reason}))
        .collect();
    let body = serde_json::json!({"format_version": 1, "project": plan.project, "drift": plan.drift, "unapplied": unapplied, "unrecorded": governed, "undeclared_access": undeclared});
    format!(
        "{}\n",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    )
}

/// How an apply ended, for the pull request the applied change came from.
pub enum Applied<'a> {
    /// The source has errors.
    NotPlanned,
    /// The reviewed plan is no longer what a fresh plan would do.
    Stale(&'a [String]),
    /// The plan must not be applied (conflicts, mass deletion).
    Refused(&'a str),
    NothingToDo,
    NotConfirmed,
    /// `made`: the changes made, as `- create \`address\`` lines.
    Done {
        done: usize,
        total: usize,
        made: &'a str,
    },
    Failed {
        address: &'a str,
        error: &'a str,
        done: usize,
        total: usize,
        made: &'a str,
    },
}

/// The outcome of an apply in markdown.
pub fn apply_outcome(applied: &Applied) -> String {
    match applied {
        Applied::NotPlanned => "**Not applied**: the source has errors (see the job log).".to_string(),
        Applied::Stale(differences) => {
            let listed: String = differences.iter().map(|d| format!("- {d}\n")).collect();
            format!("**Refused**: the reviewed plan is out of date; the source or the live state changed since it was made:\n\n{listed}\nNothing was changed. Make a new plan and review it.")
        }
        Applied::Refused(refusal) => format!("**Refused**: {refusal}. Nothing was changed."),
        Applied::NothingToDo => {
            "Nothing to apply: the providers already match the source.".to_string()
        }
        Applied::NotConfirmed => "Not applied: not confirmed.".to_string(),
        Applied::Done { done, total, made } => format!("**Apply complete**: {done} of {total} changes made.\n\n<details><summary>Changes made</summary>\n\n{made}\n</details>"),
        Applied::Failed {
            address,
            error,
            done,
            total,
            made,
        } => {
            let not_made = total.saturating_sub(*done);
            let error = error.replace('`', "'");
            format!("**Apply failed** at `{address}`: {error}\n\n{done} of {total} changes made, {not_made} not made. Plan and apply again to finish: every step is safe to repeat.\n\n<details><summary>Changes made</summary>\n\n{made}\n</details>")
        }
    }
}

/// Where the plan was made, a line each: every live provider's place and
/// caller, or the snapshot.
fn against(plan: &Plan) -> Vec<String> {
    if plan
        .origin
        .as_ref()
        .is_some_and(|o| o.observed == "snapshot")
    {
        let file = plan
            .origin
            .as_ref()
            .and_then(|o| o.snapshot.as_deref())
            .map(|f| format!(" `{f}`"))
            .unwrap_or_default();
        return vec![format!(
            "the recorded snapshot{file}, not the live providers"
        )];
    }
    plan.identities
        .iter()
        .map(|identity| {
            format!(
                "`{}`: {}{}",
                identity.provider,
                identity.place,
                identity
                    .caller
                    .as_deref()
                    .map(|c| format!(", as `{c}`"))
                    .unwrap_or_default()
            )
        })
        .collect()
}
