//! `writ explain`: whether an agent may perform an action on a resource,
//! and why; or, without a request, everything about one agent.

use crate::error::{CliError, Outcome};
use crate::pipeline::{checked, load, print_diagnostics};
use crate::project::Project;
use crate::report::Format;
use std::io::Write;
use std::path::Path;
use writ_compiler::eval;
use writ_compiler::model::AgentId;
use writ_compiler::Checked;

/// A checked project and one of its agents; `None` (after printing them)
/// when the project has errors.
fn checked_agent(
    out: &mut impl Write,
    path: &Path,
    agent: &str,
) -> Result<Option<(Project, Checked, AgentId)>, CliError> {
    let project = load(path)?;
    let checked = checked(&project)?;
    if checked.has_errors() {
        print_diagnostics(out, &project, &checked.diagnostics, Format::Human)?;
        return Ok(None);
    }
    let id = checked
        .model
        .agent_id(agent)
        .ok_or_else(|| CliError::Message(format!("no agent named `{agent}`")))?;
    Ok(Some((project, checked, id)))
}

/// `writ explain AGENT`: everything about one agent, in words.
pub fn describe(out: &mut impl Write, path: &Path, agent: &str) -> Outcome {
    let Some((project, checked, id)) = checked_agent(out, path, agent)? else {
        return Ok(1);
    };
    let model = &checked.model;
    let a = &model.agents[id];
    let at = |span: writ_compiler::Span| {
        let file = project.sources.file(span.file);
        let (line, column) = file.line_column(span.start);
        format!("{}:{line}:{column}", file.name)
    };
    writeln!(out, "agent `{}` ({})", a.name, at(a.span))?;
    for line in a.docs.lines() {
        writeln!(out, "  /// {line}")?;
    }
    writeln!(out, "  owner: {}", a.owner)?;
    let aws = a
        .grants
        .iter()
        .any(|g| model.providers[g.provider].kind == writ_compiler::facts::ProviderKind::Aws);
    if aws && a.ttl.seconds() < writ_compiler::values::HOUR {
        // Said as AWS holds it, not as written.
        writeln!(
            out,
            "  credentials live at most {} when asked for so; AWS holds its role's sessions to 1h",
            a.ttl
        )?;
    } else {
        writeln!(out, "  credentials live at most {}", a.ttl)?;
    }
    let with = match a.expires_with {
        Some(ancestor) if a.parent == Some(ancestor) => {
            format!(" with its parent `{}`", model.agents[ancestor].name)
        }
        Some(ancestor) => format!(" with its ancestor `{}`", model.agents[ancestor].name),
        None => String::new(),
    };
    match (a.expires, a.retired) {
        (Some(date), true) => writeln!(
            out,
            "  expired on {date}{with}: it holds no access and plans delete it"
        ),
        (Some(date), false) => writeln!(out, "  expires on {date}{with}"),
        (None, _) => writeln!(out, "  never expires"),
    }?;
    if a.frozen {
        writeln!(out, "  frozen: declared, holding no access")?;
    }
    for workload in &a.runs_on {
        writeln!(
            out,
            "  runs on {} ({})",
            project
                .sources
                .snippet(workload.span)
                .trim_start_matches("runs_on ")
                .trim(),
            at(workload.span)
        )?;
    }
    let ancestors = model.ancestors(id);
    if !ancestors.is_empty() {
        let chain: Vec<String> = ancestors
            .iter()
            .map(|&p| format!("`{}`", model.agents[p].name))
            .collect();
        writeln!(out, "  a delegate of {}", chain.join(" ← "))?;
    }
    writeln!(out, "  grants:")?;
    if a.grants.is_empty() {
        writeln!(out, "    (none)")?;
    }
    for grant in &a.grants {
        let origin = match grant.via.as_slice() {
            [] => "written in the agent".to_string(),
            via => format!("through scope `{}`", via.join("` → `")),
        };
        let text = project
            .sources
            .snippet(grant.span)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(out, "    {text}\n      {origin} ({})", at(grant.span))?;
    }
    if let Some(ceiling) = &a.delegates {
        writeln!(
            out,
            "  its delegates may be {} deep, live at most {}, and hold at most {} grant{}",
            ceiling.max_depth,
            ceiling.ttl,
            ceiling.grants.len(),
            if ceiling.grants.len() == 1 { "" } else { "s" }
        )?;
    }
    for guardrail in &model.guardrails {
        writeln!(
            out,
            "  bounded by guardrail `{}` ({})",
            guardrail.name,
            at(guardrail.span)
        )?;
    }
    Ok(0)
}

/// One request to explain.
pub struct Asked<'a> {
    pub agent: &'a str,
    pub provider: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    /// Kubernetes only.
    pub namespace: Option<String>,
    /// Kubernetes only: the object's name.
    pub name: Option<String>,
}

pub fn request(out: &mut impl Write, path: &Path, asked: Asked) -> Outcome {
    let Asked {
        agent,
        provider,
        action,
        resource,
        namespace,
        name: object,
    } = asked;
    let Some((project, checked, agent_id)) = checked_agent(out, path, agent)? else {
        return Ok(1);
    };
    let model = &checked.model;
    let (kind, name) = provider.split_once('.').ok_or_else(|| {
        CliError::Message(format!(
            "`{provider}` is not a provider; write `kind.name`, as in `aws.prod`"
        ))
    })?;
    let provider_id = writ_compiler::facts::ProviderKind::parse(kind)
        .and_then(|kind| model.provider_id(kind, name))
        .ok_or_else(|| CliError::Message(format!("no provider `{provider}`")))?;
    let placement = match (namespace, model.providers[provider_id].kind) {
        (Some(ns), writ_compiler::facts::ProviderKind::Kubernetes) => {
            writ_compiler::model::Placement::Namespace(ns)
        }
        (None, writ_compiler::facts::ProviderKind::Kubernetes) => {
            writ_compiler::model::Placement::Cluster
        }
        (Some(_), _) => return Err("`--namespace` is only for Kubernetes providers".into()),
        (None, _) => writ_compiler::model::Placement::None,
    };
    if model.providers[provider_id].kind == writ_compiler::facts::ProviderKind::Kubernetes {
        // One concrete resource, read as RBAC reads it.
        match writ_compiler::facts::kubernetes::ResourceRef::parse(resource) {
            Ok(reference) if reference.is_concrete() => {}
            Ok(_) => {
                return Err(format!(
                    "`{resource}`: explain one resource, such as `secrets` or `deployments.apps`, not a pattern"
                )
                .into())
            }
            Err(error) => return Err(error.explain(resource).0.into()),
        }
    } else if object.is_some() {
        return Err("`--name` is only for Kubernetes providers".into());
    } else if resource.contains(['*', '?']) {
        // A request's resource is read literally: a pattern would be
        // answered for an object named `*`, not for what it matches.
        return Err(format!(
            "`{resource}`: explain one resource, such as an object's whole ARN, not a pattern"
        )
        .into());
    }
    let request = eval::Request {
        provider: provider_id,
        action,
        resource,
        placement: &placement,
        name: object.as_deref(),
        context: None,
    };
    let decision = eval::evaluate(model, agent_id, &request);
    let verdict = if decision.is_allowed() {
        "ALLOWED"
    } else {
        "DENIED"
    };
    let why = eval::explain_decision(model, agent_id, &decision);
    let object = match &object {
        Some(name) => format!(" named `{name}`"),
        None => String::new(),
    };
    writeln!(
        out,
        "{verdict}: `{agent}` {provider} `{action}` on `{resource}`{object}"
    )?;
    writeln!(out, "  {why}")?;
    // Asked about the whole resource, which a grant limited with `named`
    // does not allow: say which objects it does.
    if let Some((name, _)) = eval::some_named_object(model, agent_id, &request) {
        writeln!(
            out,
            "  only the objects a grant names are allowed, such as `{name}`: ask with `--name {name}`"
        )?;
    }
    if let eval::Decision::Allowed { grant } = decision {
        let grant = &model.agents[agent_id].grants[grant];
        let file = project.sources.file(grant.span.file);
        let (line, column) = file.line_column(grant.span.start);
        writeln!(
            out,
            "  at {}:{line}:{column}: {}",
            file.name,
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
    Ok(0)
}
