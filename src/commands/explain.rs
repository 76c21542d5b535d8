//! `writ explain`: whether an agent may perform an action on a resource,
//! and why; or, without a request, everything about one agent.
//!
//! A request is checked exactly as an `expect` of `writ test` is: it is
//! written as one, in a file of its own (`writ explain`), and checked with
//! the project, so that a misspelt action, a pattern for a resource or a
//! `--name` for a provider without named objects gets the same finding, and
//! the same did-you-mean, as in a test.

use crate::describe::{agent_text, at, facts_of, one_line};
use crate::error::{CliError, Outcome};
use crate::pipeline::{checked, load, show_findings};
use crate::project::Project;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use writ_compiler::eval::{self, Decision};
use writ_compiler::model::{AgentId, Expectation, Model, Placement};
use writ_compiler::syntax::ast;
use writ_compiler::{Checked, FileId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainFormat {
    /// For people.
    Text,
    /// One JSON object (docs/cli.md).
    Json,
}

/// The request part: `PROVIDER ACTION RESOURCE` and its qualifiers.
pub struct Request<'a> {
    pub provider: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    /// Kubernetes only.
    pub namespace: Option<String>,
    /// Kubernetes only: one object's name.
    pub name: Option<String>,
}

/// What `writ explain` was asked.
pub struct Asked<'a> {
    pub agent: &'a str,
    pub request: Option<Request<'a>>,
    pub format: ExplainFormat,
    /// Exit 1 for DENIED.
    pub exit_code: bool,
}

/// The name of the file a request is checked in.
const REQUEST_FILE: &str = "writ explain";
/// The name of the test a request is written in.
const REQUEST_TEST: &str = "writ explain: the request";

pub fn run(out: &mut impl Write, path: &Path, asked: Asked) -> Outcome {
    let mut project = load(path)?;
    let request_file = match &asked.request {
        Some(request) => Some(
            project
                .sources
                .add(REQUEST_FILE, as_expectation(asked.agent, request)?),
        ),
        None => None,
    };
    let checked = checked(&project)?;
    if checked.has_errors() {
        let errors: Vec<_> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .cloned()
            .collect();
        show_findings(&project, &errors)?;
        let in_request = request_file.is_some_and(|file| {
            checked
                .diagnostics
                .iter()
                .any(|d| d.is_error() && d.primary.span.file == file)
        });
        return Err(if in_request {
            "the request is not one writ can answer (see above)".into()
        } else {
            "the project has errors (see above); `writ check` lists them".into()
        });
    }
    match request_file {
        Some(file) => request(out, &project, &checked, file, &asked),
        None => {
            let agent = agent_named(&checked.model, asked.agent)?;
            describe(out, &project, &checked.model, agent, asked.format)
        }
    }
}

/// The agent of that name, or an error with the closest name.
fn agent_named(model: &Model, name: &str) -> Result<AgentId, CliError> {
    model.agent_id(name).ok_or_else(|| {
        let closest =
            writ_compiler::suggest::closest(name, model.agents.iter().map(|a| a.name.as_str()));
        CliError::Message(match closest {
            Some(closest) => format!("no agent named `{name}`; did you mean `{closest}`?"),
            None => format!("no agent named `{name}`"),
        })
    })
}

/// A string literal of the language.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The request as the one `expect` of a test.
fn as_expectation(agent: &str, request: &Request) -> Result<String, CliError> {
    let word = |w: &str| !w.is_empty() && !w.contains(char::is_whitespace);
    if !word(agent) || !word(request.provider) || !word(request.action) {
        return Err("an agent, a provider and an action are each one word".into());
    }
    if !request.provider.contains('.') {
        return Err(format!(
            "`{}` is not a provider; write `kind.name`, as in `aws.prod`",
            request.provider
        )
        .into());
    }
    let mut line = format!(
        "  expect {agent} can {} {} on {}",
        request.provider,
        request.action,
        literal(request.resource)
    );
    if let Some(name) = &request.name {
        line.push_str(&format!(" named {}", literal(name)));
    }
    if let Some(namespace) = &request.namespace {
        line.push_str(&format!(" in namespace {}", literal(namespace)));
    }
    let text = format!("test {} {{\n{line}\n}}\n", literal(REQUEST_TEST));
    // Read back, the source must say exactly the request, one expectation
    // and nothing more: a word that the language reads as two (a comment,
    // a character it skips) would otherwise add statements of its own. A
    // source that does not parse is reported by the check, in place.
    if let Ok(parsed) = writ_compiler::syntax::parse_file(FileId(0), &text) {
        if !reads_as(&parsed, agent, request) {
            return Err(format!(
                "`{agent} {} {}` is not a request writ can read: an agent, a provider (`kind.name`) and an action are each one plain word",
                request.provider, request.action
            )
            .into());
        }
    }
    Ok(text)
}

/// Does the parsed request file hold exactly the one expectation asked?
fn reads_as(parsed: &ast::SourceFile, agent: &str, request: &Request) -> bool {
    let [item] = parsed.items.as_slice() else {
        return false;
    };
    let ast::ItemKind::Test { body, .. } = &item.kind else {
        return false;
    };
    let [stmt] = body.as_slice() else {
        return false;
    };
    let ast::StmtKind::Expect(expect) = &stmt.kind else {
        return false;
    };
    let namespace = match expect.place.as_ref().map(|p| &p.kind) {
        Some(ast::QualifierKind::Namespace(namespace)) => Some(namespace.value.as_str()),
        _ => None,
    };
    expect.agent.text == agent
        && expect.provider.display() == request.provider
        && expect.action.text == request.action
        && expect.resource.value == request.resource
        && expect.named.as_ref().map(|n| n.value.as_str()) == request.name.as_deref()
        && namespace == request.namespace.as_deref()
}

fn request(
    out: &mut impl Write,
    project: &Project,
    checked: &Checked,
    file: FileId,
    asked: &Asked,
) -> Outcome {
    let model = &checked.model;
    let expectation: &Expectation = model
        .tests
        .iter()
        .filter(|t| t.span.file == file)
        .flat_map(|t| &t.expectations)
        .next()
        .ok_or("the request could not be read")?;
    let agent = expectation.agent;
    let provider = &model.providers[expectation.provider];
    let asked_for = eval::Request {
        provider: expectation.provider,
        action: &expectation.action,
        resource: &expectation.resource,
        placement: &expectation.placement,
        name: expectation.name.as_deref(),
        context: None,
    };
    let decision = eval::evaluate(model, agent, &asked_for);
    let allowed = decision.is_allowed();
    let why = eval::explain_decision(model, agent, &decision);
    // Denied as asked (cluster-wide, or for the resource as a whole):
    // where a narrower request is allowed.
    let elsewhere = eval::reachable_elsewhere(model, agent, &asked_for);
    let grant = match decision {
        Decision::Allowed { grant } => Some(&model.agents[agent].grants[grant]),
        _ => None,
    };
    let agent_name = &model.agents[agent].name;
    let address = provider.address();
    match asked.format {
        ExplainFormat::Json => {
            let body = json!({
                "agent": agent_name,
                "provider": address,
                "action": expectation.action,
                "resource": expectation.resource,
                "namespace": match &expectation.placement {
                    Placement::Namespace(namespace) => Value::from(namespace.as_str()),
                    _ => Value::Null,
                },
                "name": expectation.name,
                "decision": if allowed { "allowed" } else { "denied" },
                "reason": why,
                "grant": grant.map(|g| json!({
                    "text": one_line(&project.sources, g.span),
                    "at": at(&project.sources, g.span),
                    "via": g.via,
                })),
                "allowed_narrower": elsewhere.iter().map(|reach| json!({
                    "namespace": reach.namespace,
                    "name": reach.name,
                    "reason": eval::explain_decision(model, agent, &reach.decision),
                })).collect::<Vec<_>>(),
            });
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            )?;
        }
        ExplainFormat::Text => {
            let verdict = if allowed { "ALLOWED" } else { "DENIED" };
            let mut what = format!("`{}` on `{}`", expectation.action, expectation.resource);
            if let Some(name) = &expectation.name {
                what.push_str(&format!(" named `{name}`"));
            }
            match &expectation.placement {
                Placement::Namespace(namespace) => {
                    what.push_str(&format!(" in namespace `{namespace}`"))
                }
                Placement::Cluster => what.push_str(" cluster-wide"),
                Placement::None => {}
            }
            writeln!(out, "{verdict}: `{agent_name}` {address} {what}")?;
            writeln!(out, "  {why}")?;
            if let Some(grant) = grant {
                writeln!(
                    out,
                    "  at {}: {}",
                    at(&project.sources, grant.span),
                    project
                        .sources
                        .snippet(grant.span)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim()
                )?;
                if !grant.docs.is_empty() {
                    writeln!(out, "  /// {}", grant.docs.replace('\n', "\n  /// "))?;
                }
            }
            if !elsewhere.is_empty() {
                writeln!(out, "  allowed only more narrowly than asked:")?;
                for reach in &elsewhere {
                    let mut flags = String::new();
                    if let Some(namespace) = &reach.namespace {
                        flags.push_str(&format!(" --namespace {namespace}"));
                    }
                    if let Some(name) = &reach.name {
                        flags.push_str(&format!(" --name {name}"));
                    }
                    writeln!(
                        out,
                        "    {} (ask with `{}`)",
                        reach.describe(),
                        flags.trim()
                    )?;
                }
            }
        }
    }
    Ok(i32::from(asked.exit_code && !allowed))
}

/// `writ explain AGENT`: everything about one agent.
fn describe(
    out: &mut impl Write,
    project: &Project,
    model: &Model,
    id: AgentId,
    format: ExplainFormat,
) -> Outcome {
    let a = &model.agents[id];
    let (_, _, runs_on, ancestors) = facts_of(&project.sources, model, id);
    if format == ExplainFormat::Json {
        let body = json!({
            "agent": a.name,
            "at": at(&project.sources, a.span),
            "docs": a.docs,
            "owner": a.owner,
            "ttl": a.ttl.to_string(),
            "ttl_seconds": a.ttl.seconds(),
            "expires": a.expires.map(|d| d.to_string()),
            "expires_with": a.expires_with.map(|p| model.agents[p].name.clone()),
            "retired": a.retired,
            "frozen": a.frozen,
            "rate": a.rate.map(|r| r.text()),
            "budget": a.budget.map(|b| b.count),
            "runs_on": runs_on.iter().map(|(text, at)| json!({"text": text, "at": at})).collect::<Vec<_>>(),
            "delegate_of": ancestors,
            "grants": a.grants.iter().map(|g| json!({
                "text": one_line(&project.sources, g.span),
                "at": at(&project.sources, g.span),
                "via": g.via,
            })).collect::<Vec<_>>(),
            "delegates": a.delegates.as_ref().map(|c| json!({
                "max_depth": c.max_depth,
                "ttl": c.ttl.to_string(),
                "rate": c.rate.map(|r| r.text()),
                "budget": c.budget.map(|b| b.count),
                "grants": c.grants.iter().map(|g| one_line(&project.sources, g.span)).collect::<Vec<_>>(),
            })),
            "guardrails": model.guardrails.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        )?;
        return Ok(0);
    }
    write!(out, "{}", agent_text(&project.sources, model, id))?;
    Ok(0)
}
