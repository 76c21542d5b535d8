//! The OpenID AuthZEN Authorization API 1.0, as `writ serve` answers it
//! (docs/serve.md): one decision, a batch of them with the spec's three
//! semantics, the subject and action searches, and the metadata document.
//! The mapping is fixed: `subject` `{"type": "agent", "id": AGENT}`,
//! `action` `{"name": ACTION}`, `resource` `{"type": PROVIDER, "id":
//! RESOURCE, "properties": {"namespace": NS, "cluster": true, "name":
//! OBJECT}}`, `context` the request's condition keys and their values.
//! Each function takes the request's JSON and returns the status and the
//! reply's JSON; the server does the HTTP.

use super::{Audit, Loaded, Shared};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use writ_compiler::eval::{Decision, DenyReason, Request};
use writ_compiler::facts::ProviderKind;
use writ_compiler::model::{AgentId, Placement};

/// The most entries one `evaluations` request may hold.
pub const MOST_EVALUATIONS: usize = 1_000;

/// The most condition keys a request's `context` may hold.
const MOST_CONTEXT_KEYS: usize = 64;

/// A malformed request: `400` with the message.
pub struct BadRequest(pub String);

/// One evaluation's parts, as read from a request.
struct Asked {
    subject: Value,
    action: Value,
    resource: Value,
    context: Value,
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, BadRequest> {
    value
        .as_object()
        .ok_or_else(|| BadRequest(format!("`{what}` must be an object")))
}

fn string<'a>(value: &'a Value, key: &str, what: &str) -> Result<&'a str, BadRequest> {
    match value.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(BadRequest(format!("`{what}.{key}` must be a string"))),
        None => Err(BadRequest(format!("`{what}.{key}` is required"))),
    }
}

/// `POST /access/v1/evaluation`.
pub fn evaluation(shared: &Shared, body: &Value) -> Result<Value, BadRequest> {
    object(body, "the request")?;
    let loaded = shared.loaded();
    let asked = Asked {
        subject: body.get("subject").cloned().unwrap_or(Value::Null),
        action: body.get("action").cloned().unwrap_or(Value::Null),
        resource: body.get("resource").cloned().unwrap_or(Value::Null),
        context: body.get("context").cloned().unwrap_or(Value::Null),
    };
    decide(shared, &loaded, &asked)
}

/// `POST /access/v1/evaluations`: each entry's `subject`, `action`,
/// `resource` and `context` replace the request's (whole objects); without
/// entries it is one evaluation. `options.evaluations_semantic`:
/// `execute_all` (every entry), `deny_on_first_deny` or
/// `permit_on_first_permit` (the reply stops at the deciding entry). An
/// entry that cannot be read is denied with the error in its `context`.
pub fn evaluations(shared: &Shared, body: &Value) -> Result<Value, BadRequest> {
    object(body, "the request")?;
    let semantic = match body
        .get("options")
        .and_then(|o| o.get("evaluations_semantic"))
    {
        None => "execute_all",
        Some(Value::String(s))
            if matches!(
                s.as_str(),
                "execute_all" | "deny_on_first_deny" | "permit_on_first_permit"
            ) =>
        {
            s.as_str()
        }
        Some(other) => {
            return Err(BadRequest(format!(
                "`options.evaluations_semantic` is `{other}`: one of `execute_all`, `deny_on_first_deny`, `permit_on_first_permit`"
            )))
        }
    };
    let entries = match body.get("evaluations") {
        None => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(BadRequest("`evaluations` must be an array".to_string())),
    };
    if entries.is_empty() {
        return evaluation(shared, body);
    }
    if entries.len() > MOST_EVALUATIONS {
        return Err(BadRequest(format!(
            "{} evaluations: at most {MOST_EVALUATIONS} a request",
            entries.len()
        )));
    }
    let loaded = shared.loaded();
    let default = |key: &str| body.get(key).cloned().unwrap_or(Value::Null);
    let mut answers = Vec::new();
    for entry in &entries {
        let part = |key: &str| entry.get(key).cloned().unwrap_or_else(|| default(key));
        let asked = Asked {
            subject: part("subject"),
            action: part("action"),
            resource: part("resource"),
            context: part("context"),
        };
        let answer = match entry.is_object() {
            true => decide(shared, &loaded, &asked),
            false => Err(BadRequest("an evaluation must be an object".to_string())),
        };
        let answer = answer.unwrap_or_else(|BadRequest(message)| {
            json!({"decision": false, "context": {"error": {"status": 400, "message": message}}})
        });
        let decision = answer["decision"] == true;
        answers.push(answer);
        match (semantic, decision) {
            ("deny_on_first_deny", false) | ("permit_on_first_permit", true) => break,
            _ => {}
        }
    }
    Ok(json!({"evaluations": answers}))
}

/// The request as the evaluator asks it, or why it cannot be.
struct Parsed {
    agent: Option<AgentId>,
    agent_name: String,
    provider: Option<usize>,
    provider_name: String,
    action: String,
    resource: String,
    placement: Placement,
    name: Option<String>,
    context: BTreeMap<String, String>,
}

fn parse(loaded: &Loaded, asked: &Asked) -> Result<Parsed, BadRequest> {
    object(&asked.subject, "subject")?;
    object(&asked.action, "action")?;
    object(&asked.resource, "resource")?;
    let subject_type = string(&asked.subject, "type", "subject")?;
    let agent_name = string(&asked.subject, "id", "subject")?.to_string();
    let action = string(&asked.action, "name", "action")?.to_string();
    let provider_name = string(&asked.resource, "type", "resource")?.to_string();
    let resource = string(&asked.resource, "id", "resource")?.to_string();
    let properties = asked.resource.get("properties");
    let property = |key: &str| properties.and_then(|p| p.get(key));
    // An action names one action: a pattern would be matched as written.
    if action.contains(['*', '?']) {
        return Err(BadRequest(format!(
            "`action.name` `{action}` is a pattern: ask about one action"
        )));
    }
    let placement = match (property("namespace"), property("cluster")) {
        (Some(_), Some(Value::Bool(true))) => {
            return Err(BadRequest(
                "`resource.properties` has both `namespace` and `cluster`: one of them".to_string(),
            ))
        }
        (Some(Value::String(ns)), _) => Placement::Namespace(ns.clone()),
        (Some(_), _) => {
            return Err(BadRequest(
                "`resource.properties.namespace` must be a string".to_string(),
            ))
        }
        (None, Some(Value::Bool(true))) => Placement::Cluster,
        _ => Placement::None,
    };
    let name = match property("name") {
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => {
            return Err(BadRequest(
                "`resource.properties.name` must be a string".to_string(),
            ))
        }
        None => None,
    };
    let mut context = BTreeMap::new();
    match &asked.context {
        Value::Null => {}
        Value::Object(map) => {
            if map.len() > MOST_CONTEXT_KEYS {
                return Err(BadRequest(format!(
                    "`context` has {} keys: at most {MOST_CONTEXT_KEYS}",
                    map.len()
                )));
            }
            for (key, value) in map {
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    _ => {
                        return Err(BadRequest(format!(
                            "`context.{key}` must be a string, number or boolean"
                        )))
                    }
                };
                context.insert(key.clone(), text);
            }
        }
        _ => return Err(BadRequest("`context` must be an object".to_string())),
    }
    let engine = &loaded.engine;
    let provider = engine.provider(&provider_name);
    // A Kubernetes request is in a namespace or the cluster; elsewhere in
    // neither.
    let placement = match (
        provider.map(|p| engine.model().providers[p].kind),
        placement,
    ) {
        (Some(ProviderKind::Kubernetes), Placement::None) => Placement::Cluster,
        (_, placement) => placement,
    };
    Ok(Parsed {
        agent: (subject_type == "agent")
            .then(|| engine.agent(&agent_name))
            .flatten(),
        agent_name,
        provider,
        provider_name,
        action,
        resource,
        placement,
        name,
        context,
    })
}

/// One decision, audited and counted.
fn decide(shared: &Shared, loaded: &Loaded, asked: &Asked) -> Result<Value, BadRequest> {
    let parsed = parse(loaded, asked)?;
    let id = shared.next_id();
    // A credential's session (`subject.properties.session`), checked
    // before anything is counted; its budget is counted below.
    let session = match asked
        .subject
        .get("properties")
        .and_then(|p| p.get("session"))
    {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) => {
            super::credentials::session_of_decision(shared, token, &parsed.agent_name)
                .map_err(BadRequest)?
        }
        Some(_) => {
            return Err(BadRequest(
                "`subject.properties.session` must be a string".to_string(),
            ))
        }
    };
    let (decision, reason, mut details) = verdict(shared, loaded, &parsed);
    // The deciding grant's `@rate`, counted apart from the agent's.
    let grant_index = details
        .as_mut()
        .and_then(|d| d.as_object_mut())
        .and_then(|d| d.remove("grant_index"))
        .and_then(|i| i.as_u64());
    // An agent's `rate`: past it, refused until a request is free again;
    // a revoked, expired or frozen agent is refused for that first.
    let stopped = details.as_ref().is_some_and(|d| {
        d.get("revoked").is_some() || d.get("expired").is_some() || d.get("frozen").is_some()
    });
    let limited = parsed.agent.filter(|_| !stopped).and_then(|agent| {
        let rate = loaded.engine.model().agents[agent].rate?;
        shared
            .take(&parsed.agent_name, rate)
            .err()
            .map(|wait| (rate, wait, false))
    });
    // Only what the agent's own rate let through counts against a grant's.
    let limited = limited.or_else(|| {
        let agent = parsed.agent?;
        let index = usize::try_from(grant_index?).ok()?;
        let grant = loaded.engine.model().agents[agent].grants.get(index)?;
        let rate = grant.rate?;
        // Keyed by what the grant says, which a reload that moves it keeps.
        let key = format!(
            "{}#{}",
            parsed.agent_name,
            writ_compiler::usage::grant_words(loaded.engine.model(), grant)
        );
        shared.take(&key, rate).err().map(|wait| (rate, wait, true))
    });
    let spent = match (&session, &limited) {
        (Some(session), None) if !stopped => {
            super::credentials::spend_on_decision(shared, session).err()
        }
        _ => None,
    };
    let (decision, reason, details) = match (limited, &spent) {
        (None, Some(why)) => (false, why.clone(), Some(json!({"budget_spent": true}))),
        (Some((rate, wait, by_grant)), _) => (
            false,
            format!(
                "`{}` is past {} rate of {}: try again in {wait} s",
                parsed.agent_name,
                if by_grant {
                    "the grant's (`@rate`)"
                } else {
                    "its"
                },
                rate.text()
            ),
            Some(match by_grant {
                true => json!({"rate_limited": rate.text(), "by": "grant"}),
                false => json!({"rate_limited": rate.text()}),
            }),
        ),
        (None, None) => (decision, reason, details),
    };
    shared.metrics.decided(decision);
    shared.audit(Audit {
        id: &id,
        generation: loaded.generation,
        agent: &parsed.agent_name,
        provider: &parsed.provider_name,
        action: &parsed.action,
        resource: &parsed.resource,
        placement: &parsed.placement,
        name: parsed.name.as_deref(),
        context: &parsed.context,
        decision,
        reason: &reason,
    });
    let mut context = json!({"id": id, "reason_admin": {"en": reason}});
    if let Some(details) = details {
        context["writ"] = details;
    }
    if let Some((_, wait, _)) = limited {
        context["error"] = json!({"status": 429, "message": reason, "retry_after": wait});
    } else if spent.is_some() {
        // Waiting does not help: a new credential does.
        context["error"] = json!({"status": 429, "message": reason});
    }
    Ok(json!({"decision": decision, "context": context}))
}

/// Allowed or not, why in words, and what decided it.
fn verdict(shared: &Shared, loaded: &Loaded, parsed: &Parsed) -> (bool, String, Option<Value>) {
    let model = loaded.engine.model();
    let Some(agent) = parsed.agent else {
        return (
            false,
            format!("no agent `{}` in the source", parsed.agent_name),
            None,
        );
    };
    let Some(provider) = parsed.provider else {
        return (
            false,
            format!("no provider `{}` in the source", parsed.provider_name),
            None,
        );
    };
    if let Some((revoked, why)) = shared.revoked_over(model, agent) {
        return (false, why, Some(json!({"revoked": revoked})));
    }
    // `expires` as of now, not as of the model's loading: a day may have
    // come since, and a reload may have failed.
    if let Some((date, whose)) = expiry(model, agent) {
        if crate::clock::today().map_or(true, |today| today >= date) {
            let name = &model.agents[agent].name;
            let reason = match whose == agent {
                true => format!("`{name}` expired on {date} and holds no access"),
                false => format!(
                    "`{name}` expired on {date} with `{}`, and holds no access",
                    model.agents[whose].name
                ),
            };
            return (false, reason, Some(json!({"expired": date.to_string()})));
        }
    }
    let request = Request {
        provider,
        action: &parsed.action,
        resource: &parsed.resource,
        placement: &parsed.placement,
        name: parsed.name.as_deref(),
        context: Some(&parsed.context),
    };
    let decision = loaded.engine.decide(agent, &request);
    let reason = writ_compiler::eval::explain_decision(model, agent, &decision);
    let details = match &decision {
        Decision::Allowed { grant: index } => {
            let grant = &model.agents[agent].grants[*index];
            let file = loaded.sources.file(grant.span.file);
            let (line, _) = file.line_column(grant.span.start);
            let mut details = json!({
                "grant": writ_compiler::usage::grant_words(model, grant),
                "at": format!("{}:{line}", file.name),
            });
            if !grant.via.is_empty() {
                details["via"] = json!(grant.via);
            }
            if let Some(rate) = grant.rate {
                details["grant_rate"] = json!(rate.text());
                // Which grant's allowance to take (taken out before the
                // answer).
                details["grant_index"] = json!(index);
            }
            details
        }
        Decision::Mints { delegate } => {
            // Minting a revoked delegate's tokens is the delegate's access.
            if let Some((revoked, why)) = shared.revoked_over(model, *delegate) {
                return (false, why, Some(json!({"revoked": revoked})));
            }
            json!({"mints_for": model.agents[*delegate].name})
        }
        Decision::Denied(DenyReason::Guardrail { guardrail, .. }) => {
            json!({"guardrail": model.guardrails[*guardrail].name})
        }
        Decision::Denied(DenyReason::OutsideCeiling { ancestor }) => {
            json!({"outside_ceiling_of": model.agents[*ancestor].name})
        }
        Decision::Denied(DenyReason::Retired(date)) => json!({"expired": date.to_string()}),
        Decision::Denied(DenyReason::Frozen) => json!({"frozen": true}),
        Decision::Denied(DenyReason::NoGrant) => json!({"no_grant": true}),
    };
    (decision.is_allowed(), reason, Some(details))
}

/// The earliest `expires` that holds for an agent: its own, or an
/// ancestor's, with whose it is.
fn expiry(
    model: &writ_compiler::model::Model,
    agent: AgentId,
) -> Option<(writ_compiler::values::Date, AgentId)> {
    std::iter::once(agent)
        .chain(model.ancestors(agent))
        .filter_map(|a| model.agents[a].expires.map(|date| (date, a)))
        .min_by_key(|(date, _)| *date)
}

/// Pages of search results: `page.token` is where the last page ended,
/// `page.limit` how many to give (default 100).
fn page(body: &Value, results: Vec<Value>) -> Result<Value, BadRequest> {
    let token = body.get("page").and_then(|p| p.get("token"));
    let start: usize = match token {
        None => 0,
        Some(Value::String(t)) if t.is_empty() => 0,
        Some(Value::String(t)) => t
            .parse()
            .map_err(|_| BadRequest(format!("`page.token` `{t}` is not one writ gave")))?,
        Some(_) => return Err(BadRequest("`page.token` must be a string".to_string())),
    };
    let limit = match body.get("page").and_then(|p| p.get("limit")) {
        None => 100,
        Some(value) => value
            .as_u64()
            .filter(|&l| l > 0)
            .map(|l| l as usize)
            .ok_or_else(|| {
                BadRequest("`page.limit` must be a whole number, at least 1".to_string())
            })?,
    };
    let total = results.len();
    let end = start.saturating_add(limit).min(total);
    let next = match end < total {
        true => end.to_string(),
        false => String::new(),
    };
    let slice: Vec<Value> = results
        .into_iter()
        .skip(start.min(total))
        .take(end.saturating_sub(start))
        .collect();
    Ok(json!({
        "page": {"next_token": next, "count": slice.len(), "total": total},
        "results": slice,
    }))
}

/// `POST /access/v1/search/subject`: the agents that may do the action on
/// the resource (`subject.type` must be `agent`; any `id` is ignored).
pub fn search_subject(shared: &Shared, body: &Value) -> Result<Value, BadRequest> {
    object(body, "the request")?;
    let subject = body.get("subject").cloned().unwrap_or(Value::Null);
    object(&subject, "subject")?;
    let subject_type = string(&subject, "type", "subject")?;
    let loaded = shared.loaded();
    let mut results = Vec::new();
    if subject_type == "agent" {
        let model = loaded.engine.model();
        for agent in &model.agents {
            let mut with_id = subject.clone();
            with_id["id"] = json!(agent.name);
            let asked = Asked {
                subject: with_id,
                action: body.get("action").cloned().unwrap_or(Value::Null),
                resource: body.get("resource").cloned().unwrap_or(Value::Null),
                context: body.get("context").cloned().unwrap_or(Value::Null),
            };
            let parsed = parse(&loaded, &asked)?;
            if verdict(shared, &loaded, &parsed).0 {
                results.push(json!({"type": "agent", "id": agent.name}));
            }
        }
    }
    page(body, results)
}

/// `POST /access/v1/search/action`: the actions the agent may do on the
/// resource. In AWS, each action writ's catalogue knows that the agent's
/// grants (and the grants by which it mints its delegates' tokens) name or
/// match; elsewhere, the actions as they are written (Kubernetes verbs,
/// GitHub permissions, GCP roles), `*` among them as written.
pub fn search_action(shared: &Shared, body: &Value) -> Result<Value, BadRequest> {
    object(body, "the request")?;
    let loaded = shared.loaded();
    let model = loaded.engine.model();
    let subject = body.get("subject").cloned().unwrap_or(Value::Null);
    let resource = body.get("resource").cloned().unwrap_or(Value::Null);
    let context = body.get("context").cloned().unwrap_or(Value::Null);
    let probe = Asked {
        subject: subject.clone(),
        action: json!({"name": ""}),
        resource: resource.clone(),
        context: context.clone(),
    };
    let parsed = parse(&loaded, &probe)?;
    let (Some(agent), Some(provider)) = (parsed.agent, parsed.provider) else {
        return page(body, Vec::new());
    };
    let kind = model.providers[provider].kind;
    let mut candidates: Vec<String> = Vec::new();
    let mut written: Vec<&String> = model.agents[agent]
        .grants
        .iter()
        .filter(|g| g.provider == provider)
        .flat_map(|g| g.actions.iter())
        .collect();
    let minting = model.minting_grants(agent);
    written.extend(
        minting
            .iter()
            .filter(|(_, g)| g.provider == provider)
            .flat_map(|(_, g)| g.actions.iter()),
    );
    for action in written {
        match kind {
            ProviderKind::Aws => {
                for (service, named) in writ_compiler::facts::aws::catalogue().expand(action) {
                    candidates.push(format!("{}:{}", service.prefix, named.name));
                }
            }
            // A pattern is not an action to ask about: a Kubernetes one
            // stands for the verbs it matches; others' are left out.
            ProviderKind::Kubernetes if action.contains(['*', '?']) => candidates.extend(
                writ_compiler::facts::kubernetes::VERBS
                    .iter()
                    .filter(|verb| !verb.contains('*'))
                    .filter(|verb| writ_compiler::pattern::matches(action, verb))
                    .map(|verb| verb.to_string()),
            ),
            _ if action.contains(['*', '?']) => {}
            _ => candidates.push(action.clone()),
        }
    }
    candidates.sort();
    candidates.dedup();
    let mut results = Vec::new();
    for action in candidates {
        let asked = Asked {
            subject: subject.clone(),
            action: json!({"name": action}),
            resource: resource.clone(),
            context: context.clone(),
        };
        let parsed = parse(&loaded, &asked)?;
        if verdict(shared, &loaded, &parsed).0 {
            results.push(json!({"name": action}));
        }
    }
    page(body, results)
}

/// `GET /.well-known/authzen-configuration`, for a server reached at
/// `base` (`http://127.0.0.1:8181`).
pub fn metadata(base: &str) -> Value {
    json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
        "search_subject_endpoint": format!("{base}/access/v1/search/subject"),
        "search_action_endpoint": format!("{base}/access/v1/search/action"),
    })
}
