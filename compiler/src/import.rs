//! `writ import`: source for identities made outside writ, read from a
//! snapshot or live. An AWS role becomes an agent whose `runs_on` are its
//! trust, whose grants are its policies' statements, wildcards and
//! conditions as written, and whose `ttl` is its session length; a
//! Kubernetes service account becomes an agent whose grants are the rules
//! of the roles bound to it. What the language cannot say (a `Deny`, a
//! `NotAction`, a condition operator writ lacks, a trust in another
//! account) is written as a comment holding the original, and reported
//! with which way the imported source differs: never dropped in silence,
//! never widened in silence.
//!
//! The source is checked as `writ check` checks it, with the project it
//! joins: a grant the checker refuses (one a guardrail denies, say) is
//! commented out with the checker's reason, until the whole checks.

use crate::facts::aws::catalogue;
use crate::model::{Model, ProviderSettings};
use crate::ownership;
use crate::resource::{Resource, ResourceKind};
use crate::values::Date;
use crate::{CheckOptions, SourceMap};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these providers (`aws.prod`); all when empty.
    pub providers: Vec<String>,
    /// Only objects whose name (a role's; a service account's
    /// `NAMESPACE/NAME`) matches one of these patterns (`*`, `?`); all but
    /// the providers' own when empty.
    pub select: Vec<String>,
    /// The name of the file the source will be written to, for findings.
    pub file: String,
}

/// The source written, and what each imported object became.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Import {
    /// `.writ` source, not yet laid out by `writ fmt`.
    pub source: String,
    pub objects: Vec<Imported>,
    /// Objects left out, with why (`aws.prod/role/x: another writ project's`).
    pub skipped: Vec<String>,
    /// Errors of the checker in the source that taking out a grant or a
    /// `runs_on` does not mend:
    /// the source does not check until they are.
    pub unresolved: Vec<String>,
}

/// One imported object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Imported {
    /// The object's address (`aws.prod/role/jenkins-deployer`).
    pub address: String,
    /// The agent it became.
    pub agent: String,
    /// Does the imported source allow exactly what the object allows?
    pub exact: bool,
    /// The imported source allows less: something it could not say was
    /// left out, or commented out.
    pub narrower: bool,
    /// The imported source allows more: a restriction it could not say (a
    /// `Deny`, a permissions boundary) was left out.
    pub wider: bool,
    /// What differs, and why, one line each.
    pub notes: Vec<String>,
}

/// An agent being written.
#[derive(Default)]
struct Draft {
    name: String,
    address: String,
    docs: Vec<String>,
    owner: Option<String>,
    /// Its session length, in seconds.
    ttl: i64,
    /// Every object it was imported from, the first its own.
    addresses: Vec<String>,
    runs_on: Vec<String>,
    /// `adopts` lines: the objects it was imported from, taken over where
    /// they are.
    adopts: Vec<String>,
    /// Each grant's text (one line, no indentation).
    grants: Vec<String>,
    /// Lines written as comments (the original, for what writ cannot say).
    comments: Vec<String>,
    notes: Vec<String>,
    narrower: bool,
    wider: bool,
}

impl Draft {
    /// Something the imported source does not hold, and allows less for.
    fn narrower(&mut self, note: String, original: Option<&Value>) {
        self.narrower = true;
        self.left_out(note, original);
    }

    /// Something the imported source does not hold, and allows more for.
    fn wider(&mut self, note: String, original: Option<&Value>) {
        self.wider = true;
        self.left_out(note, original);
    }

    fn left_out(&mut self, note: String, original: Option<&Value>) {
        self.comments.push(format!("not imported: {note}"));
        if let Some(original) = original {
            for line in serde_json::to_string(original).unwrap_or_default().lines() {
                self.comments.push(format!("  {line}"));
            }
        }
        self.notes.push(note);
    }
}

/// Imports every object of `observed` the options select that no writ
/// project owns, as source to add to the project in `sources`.
pub fn import(
    sources: &SourceMap,
    today: Date,
    project: &str,
    observed: &[Resource],
    options: &Options,
) -> Import {
    let checked = crate::check(sources, &CheckOptions { today });
    let model = &checked.model;
    let mut taken: BTreeSet<String> = model
        .agents
        .iter()
        .map(|a| a.name.clone())
        .chain(model.scopes.iter().map(|s| s.name.clone()))
        .collect();
    let mut drafts = Vec::new();
    let mut skipped = Vec::new();
    // The provider an object is in, as the source declares it; said
    // when it does not.
    let declared = |object: &Resource, skipped: &mut Vec<String>| {
        let found = model
            .providers
            .iter()
            .position(|p| p.address() == object.provider);
        if found.is_none() {
            skipped.push(format!(
                "{}: the source declares no provider `{}`",
                object.address, object.provider
            ));
        }
        found
    };
    let wanted = |provider: &str| {
        options.providers.is_empty() || options.providers.iter().any(|p| p == provider)
    };
    let selected = |name: &str| {
        options.select.is_empty()
            || options
                .select
                .iter()
                .any(|pattern| crate::pattern::matches(pattern, name))
    };
    for role in observed
        .iter()
        .filter(|r| r.kind == ResourceKind::AwsRole && wanted(&r.provider))
    {
        let name = role.string("name").unwrap_or_default();
        let path = role.string("path").unwrap_or("/");
        let tags = role.tags();
        let tag = |key: &str| tags.get(key).map(String::as_str);
        if !selected(name) {
            continue;
        }
        if path.starts_with("/aws-service-role/") || path.starts_with("/aws-reserved/") {
            if !options.select.is_empty() {
                skipped.push(format!("{}: a role AWS keeps for a service", role.address));
            }
            continue;
        }
        if path.starts_with(ownership::aws::PATH_ROOT) || tag(ownership::aws::PROJECT_TAG).is_some()
        {
            let whose = match tag(ownership::aws::PROJECT_TAG) {
                // This project's own: nothing to say.
                Some(p) if p == project => continue,
                Some(p) => format!("writ project `{p}`'s"),
                None => "under writ's path".to_string(),
            };
            skipped.push(format!("{}: {whose}", role.address));
            continue;
        }
        let Some(provider) = declared(role, &mut skipped) else {
            continue;
        };
        let mut draft = aws::role(model, provider, role, observed);
        draft.name = unique(&mut taken, name);
        // Adopted where it is: IAM cannot move or rename a role, and writ
        // will not take over one it would have to widen or cut off.
        let kept_out = if draft.name != name {
            Some(format!(
                "not adopted: an adopted role keeps its name, and `{name}` is not a free agent name (the agent is `{}`); `writ plan` makes a new role",
                draft.name
            ))
        } else if role.string("permissions_boundary").is_some() {
            Some("not adopted: writ would remove its permissions boundary; `writ plan` makes a new role".to_string())
        } else if !strings(role.attribute("instance_profiles")).is_empty() {
            Some("not adopted: writ would take it out of its instance profiles; `writ plan` makes a new role".to_string())
        } else {
            let related = crate::plan::aws::related(role, observed);
            crate::plan::aws::restrictions_lost(role, &related)
                .map(|lost| format!("not adopted: {lost}; `writ plan` makes a new role"))
        };
        match kept_out {
            Some(note) => draft.notes.push(note),
            None => draft.adopts.push(format!(
                "adopts {} role {}",
                model.providers[provider].address(),
                quoted(&format!("{path}{name}"))
            )),
        }
        drafts.push(draft);
    }
    for account in observed
        .iter()
        .filter(|r| r.kind == ResourceKind::KubernetesServiceAccount && wanted(&r.provider))
    {
        let namespace = account.string("namespace").unwrap_or_default();
        let name = account.string("name").unwrap_or_default();
        let labels = labels(account);
        let label = |key: &str| labels.get(key).cloned();
        if ownership::kubernetes::is_reserved(Some(namespace), name) {
            continue;
        }
        // Every namespace has one; only on request.
        if name == "default" && options.select.is_empty() {
            continue;
        }
        if !selected(&format!("{namespace}/{name}")) {
            continue;
        }
        if label(ownership::kubernetes::MANAGED_BY).as_deref()
            == Some(ownership::kubernetes::MANAGER)
        {
            if label(ownership::kubernetes::PROJECT_LABEL).as_deref() != Some(project) {
                skipped.push(format!("{}: another writ project's", account.address));
            }
            continue;
        }
        let Some(provider) = declared(account, &mut skipped) else {
            continue;
        };
        let mut draft = kubernetes::account(model, provider, account, observed);
        draft.name = unique(&mut taken, name);
        match label(ownership::kubernetes::MANAGED_BY) {
            Some(manager) => draft.notes.push(format!(
                "not adopted: it is labelled `{}: {manager}`, which would undo writ's labels; `writ plan` shows it as taken",
                ownership::kubernetes::MANAGED_BY
            )),
            None => draft.adopts.push(format!(
                "adopts {} service_account {}",
                model.providers[provider].address(),
                quoted(&format!("{namespace}/{name}"))
            )),
        }
        drafts.push(draft);
    }
    merge_accounts(&mut drafts);
    // A session longer than the guardrails let any agent hold is cut to
    // their `max_ttl`.
    let longest = model
        .guardrails
        .iter()
        .filter_map(|g| g.max_ttl.as_ref())
        .map(|(ttl, _)| i64::try_from(ttl.seconds()).unwrap_or(i64::MAX))
        .min();
    for draft in &mut drafts {
        if let Some(longest) = longest.filter(|&l| draft.ttl > l) {
            let was = draft.ttl;
            draft.ttl = longest;
            draft.narrower = true;
            draft.notes.push(format!(
                "session length {} cut to the guardrails' `max_ttl` of {}",
                duration(was),
                duration(longest)
            ));
        }
    }
    let mut import = Import {
        skipped,
        ..Import::default()
    };
    // Checked with the project, what the checker refuses (a grant a
    // guardrail denies, a `runs_on` it cannot take) is commented out with
    // its reason, until it checks: each round takes out a line at least,
    // so this ends. Then grants several agents hold alike become scopes.
    loop {
        let (source, origins) = write(&[], &drafts);
        let mut with = sources.clone();
        let id = with.add(options.file.clone(), source);
        let checked = crate::check(&with, &CheckOptions { today });
        // Lowering's errors too (a service account two agents run as).
        let lowered = crate::lower::lower(&checked.model, project);
        let file = with.file(id);
        let mut refused: Vec<(Origin, String)> = Vec::new();
        let mut unresolved = Vec::new();
        for diagnostic in checked
            .diagnostics
            .iter()
            .chain(&lowered.diagnostics)
            .filter(|d| d.is_error())
        {
            if diagnostic.primary.span.file != id {
                continue;
            }
            let (line, _) = file.line_column(diagnostic.primary.span.start);
            let reason = format!("{}: {}", diagnostic.code, diagnostic.message);
            match origins.get(line.saturating_sub(1)).copied().flatten() {
                Some(origin) => refused.push((origin, reason)),
                None => {
                    let text = file
                        .text
                        .lines()
                        .nth(line.saturating_sub(1))
                        .unwrap_or_default()
                        .trim();
                    unresolved.push(format!("`{text}`: {reason}"));
                }
            }
        }
        if refused.is_empty() {
            import.unresolved = unresolved;
            break;
        }
        refuse(&mut drafts, refused);
    }
    let scopes = shared_scopes(&mut drafts, &mut taken);
    import.source = write(&scopes, &drafts).0;
    // As written, with its scopes: it must still check.
    let mut with = sources.clone();
    let id = with.add(options.file.clone(), import.source.clone());
    let checked = crate::check(&with, &CheckOptions { today });
    for diagnostic in checked.diagnostics.iter().filter(|d| d.is_error()) {
        if diagnostic.primary.span.file == id {
            let reason = format!("{}: {}", diagnostic.code, diagnostic.message);
            if !import.unresolved.contains(&reason) {
                import.unresolved.push(reason);
            }
        }
    }
    for draft in drafts {
        for address in std::iter::once(&draft.address).chain(&draft.addresses) {
            import.objects.push(Imported {
                address: address.clone(),
                agent: draft.name.clone(),
                exact: !draft.narrower && !draft.wider,
                narrower: draft.narrower,
                wider: draft.wider,
                notes: draft.notes.clone(),
            });
        }
    }
    import
}

/// A service account that an imported role trusts (IRSA) is one agent with
/// the role: its Kubernetes grants join the role's agent, as writ models
/// an agent that runs as a service account and holds AWS access.
fn merge_accounts(drafts: &mut Vec<Draft>) {
    let mut index = 0;
    while index < drafts.len() {
        let account = &drafts[index];
        let Some(runs_on) = account
            .runs_on
            .first()
            .filter(|_| account.address.contains("/serviceaccounts/"))
            .cloned()
        else {
            index += 1;
            continue;
        };
        let role = drafts
            .iter()
            .position(|d| !d.address.contains("/serviceaccounts/") && d.runs_on.contains(&runs_on));
        match role {
            Some(role) => {
                let account = drafts.remove(index);
                let role = if role > index { role - 1 } else { role };
                let into = &mut drafts[role];
                into.docs.extend(account.docs.into_iter().take(1));
                into.grants.extend(account.grants);
                into.adopts.extend(account.adopts);
                into.comments.extend(account.comments);
                into.notes.extend(account.notes);
                into.narrower |= account.narrower;
                into.wider |= account.wider;
                into.addresses.push(account.address);
                if into.owner.is_none() {
                    into.owner = account.owner;
                }
                // Writ binds an agent's cluster grants to every service
                // account it runs as there: the others the role trusts get
                // this one's.
                let cluster = runs_on
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let others: Vec<String> = into
                    .runs_on
                    .iter()
                    .filter(|r| {
                        *r != &runs_on && r.split_whitespace().nth(1) == Some(cluster.as_str())
                    })
                    .cloned()
                    .collect();
                if !others.is_empty() {
                    into.wider = true;
                    into.notes.push(format!(
                        "the service account's RBAC now binds also to the role's other service accounts in `{cluster}` ({}): writ gives an agent's cluster grants to every account it runs as",
                        others.join("; ")
                    ));
                }
            }
            None => index += 1,
        }
    }
}

/// Comments out the lines the checker refused, each with its reason (the
/// latest first within a draft, so that indices hold).
fn refuse(drafts: &mut [Draft], mut refused: Vec<(Origin, String)>) {
    refused.sort_by_key(|(origin, _)| {
        std::cmp::Reverse(match origin {
            Origin::RunsOn(d, n) => (*d, 0, *n),
            Origin::Adopts(d, n) => (*d, 1, *n),
            Origin::Grant(d, n) => (*d, 2, *n),
        })
    });
    refused.dedup_by(|a, b| a.0 == b.0);
    for (origin, reason) in refused {
        match origin {
            Origin::Grant(d, n) => {
                let grant = drafts[d].grants.remove(n);
                drafts[d].narrower(
                    format!("`{grant}`: the checker refuses it ({reason})"),
                    None,
                );
            }
            Origin::Adopts(d, n) => {
                let adopts = drafts[d].adopts.remove(n);
                drafts[d]
                    .notes
                    .push(format!("`{adopts}` left out: {reason}"));
            }
            Origin::RunsOn(d, n) => {
                let runs_on = drafts[d].runs_on.remove(n);
                drafts[d].narrower(
                    format!("`{runs_on}`: the checker refuses it ({reason})"),
                    None,
                );
            }
        }
    }
}

/// A valid agent name, unique among `taken`, from an object's name.
fn unique(taken: &mut BTreeSet<String>, name: &str) -> String {
    let mut base: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        base.insert_str(0, "imported_");
    }
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// Grants held, as written, by several imported agents become a scope each
/// set of them includes: `(scope name, grants, agents)`.
fn shared_scopes(drafts: &mut [Draft], taken: &mut BTreeSet<String>) -> Vec<(String, Vec<String>)> {
    let mut holders: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for (index, draft) in drafts.iter().enumerate() {
        for grant in &draft.grants {
            holders.entry(grant.as_str()).or_default().insert(index);
        }
    }
    // Grants by the set of agents that hold them.
    let mut groups: BTreeMap<Vec<usize>, Vec<String>> = BTreeMap::new();
    for (grant, agents) in holders {
        if agents.len() > 1 {
            groups
                .entry(agents.into_iter().collect())
                .or_default()
                .push(grant.to_string());
        }
    }
    let mut scopes = Vec::new();
    for (agents, grants) in groups {
        let name = unique(taken, &format!("shared_{}", drafts[agents[0]].name));
        for &agent in &agents {
            drafts[agent].grants.retain(|g| !grants.contains(g));
            drafts[agent].runs_on.push(format!("can {name}"));
        }
        scopes.push((name, grants));
    }
    scopes
}

/// Where a line of the written source comes from: a draft's `runs_on`
/// (or `can`) line, or one of its grants, by index.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    RunsOn(usize, usize),
    Adopts(usize, usize),
    Grant(usize, usize),
}

/// A line of doc or comment text, on one line whatever it held.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The source text, and where each of its lines (0-based) comes from.
fn write(scopes: &[(String, Vec<String>)], drafts: &[Draft]) -> (String, Vec<Option<Origin>>) {
    let mut out = String::new();
    let mut origins: Vec<Option<Origin>> = Vec::new();
    let mut line = |out: &mut String, text: String, origin: Option<Origin>| {
        out.push_str(&text);
        out.push('\n');
        origins.push(origin);
    };
    for (name, grants) in scopes {
        line(
            &mut out,
            "/// Grants several imported agents held alike.".to_string(),
            None,
        );
        line(&mut out, format!("scope {name} {{"), None);
        for grant in grants {
            line(&mut out, format!("  {grant}"), None);
        }
        line(&mut out, "}".to_string(), None);
        line(&mut out, String::new(), None);
    }
    for (index, draft) in drafts.iter().enumerate() {
        // A description may hold line breaks: each line its own doc line,
        // never source.
        for doc in &draft.docs {
            for part in doc.lines() {
                line(&mut out, format!("/// {}", one_line(part)), None);
            }
        }
        line(&mut out, format!("agent {} {{", draft.name), None);
        match &draft.owner {
            Some(owner) => line(&mut out, format!("  owner = {}", quoted(owner)), None),
            None => {
                line(
                    &mut out,
                    "  // No tag or label names an owner: name the team that answers for it."
                        .to_string(),
                    None,
                );
                line(&mut out, "  owner = \"unknown\"".to_string(), None);
            }
        }
        line(&mut out, format!("  ttl = {}", duration(draft.ttl)), None);
        for (n, text) in draft.adopts.iter().enumerate() {
            line(
                &mut out,
                format!("  {text}"),
                Some(Origin::Adopts(index, n)),
            );
        }
        for (n, text) in draft.runs_on.iter().enumerate() {
            line(
                &mut out,
                format!("  {text}"),
                Some(Origin::RunsOn(index, n)),
            );
        }
        for (n, grant) in draft.grants.iter().enumerate() {
            line(
                &mut out,
                format!("  {grant}"),
                Some(Origin::Grant(index, n)),
            );
        }
        for comment in &draft.comments {
            line(&mut out, format!("  // {}", one_line(comment)), None);
        }
        line(&mut out, "}".to_string(), None);
        line(&mut out, String::new(), None);
    }
    (out, origins)
}

/// A string as the language writes it.
fn quoted(text: &str) -> String {
    crate::format::string(text)
}

/// A list of strings, quoted, comma-separated.
fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| quoted(s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A JSON value's strings: one string, or a list of them.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Seconds as a writ duration: `1h`, `90m`, `3600s` as `1h`.
fn duration(seconds: i64) -> String {
    match seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A Kubernetes object's labels.
fn labels(object: &Resource) -> BTreeMap<String, String> {
    object
        .attribute("labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The owner an object's tags or labels name, if any does.
fn owner_of<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Option<String> {
    const KEYS: &[&str] = &[
        "owner",
        "team",
        "writ:owner",
        "app.kubernetes.io/owner",
        "owner-team",
    ];
    pairs
        .filter(|(_, v)| !v.is_empty())
        .find(|(k, _)| KEYS.iter().any(|key| k.eq_ignore_ascii_case(key)))
        .map(|(_, v)| v.to_string())
}

mod aws {
    use super::*;

    /// An AWS role as a draft agent.
    pub(super) fn role(
        model: &Model,
        provider: usize,
        role: &Resource,
        observed: &[Resource],
    ) -> Draft {
        let address = model.providers[provider].address();
        let name = role.string("name").unwrap_or_default();
        let path = role.string("path").unwrap_or("/");
        let mut draft = Draft {
            address: role.address.clone(),
            ..Draft::default()
        };
        draft.docs.push(format!(
            "Imported from {address} role {path}{name}{}.",
            role.string("arn")
                .map(|a| format!(" ({a})"))
                .unwrap_or_default()
        ));
        if let Some(description) = role.string("description").filter(|d| !d.is_empty()) {
            draft.docs.push(description.to_string());
        }
        let tags = role.tags();
        draft.owner = owner_of(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let seconds = role
            .attribute("max_session_duration")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        draft.ttl = seconds;
        match role.attribute("assume_role_policy") {
            Some(trust) if !trust.is_null() => self::trust(model, provider, trust, &mut draft),
            _ => draft.narrower(
                "the role's trust was not read (a snapshot that leaves it out): no `runs_on`"
                    .to_string(),
                None,
            ),
        }
        if let Some(boundary) = role.string("permissions_boundary") {
            draft.wider(
                format!("the permissions boundary `{boundary}`: writ bounds only delegates, so the imported agent is not held to it"),
                None,
            );
        }
        for profile in strings(role.attribute("instance_profiles")) {
            draft.notes.push(format!(
                "instance profile `{profile}` holds the role: EC2 instances use it as far as the trust lets them"
            ));
        }
        let mut policies: Vec<&Resource> = observed
            .iter()
            .filter(|r| {
                r.kind == ResourceKind::AwsRolePolicy
                    && r.provider == role.provider
                    && r.string("role") == Some(name)
            })
            .collect();
        policies.sort_by(|a, b| a.address.cmp(&b.address));
        for policy in policies {
            let policy_name = policy.string("name").unwrap_or_default();
            match policy.attribute("policy") {
                Some(document) if !document.is_null() => statements(
                    model,
                    provider,
                    document,
                    &format!("inline policy `{policy_name}`"),
                    &mut draft,
                ),
                _ => draft.narrower(
                    format!("inline policy `{policy_name}`: its document was not read"),
                    None,
                ),
            }
        }
        for arn in strings(role.attribute("attached_policies")) {
            let document = observed
                .iter()
                .find(|r| {
                    r.kind == ResourceKind::AwsManagedPolicy
                        && r.provider == role.provider
                        && (r.string("arn") == Some(arn.as_str())
                            || arn.ends_with(&format!(
                                "{}{}",
                                r.string("path").unwrap_or("/"),
                                r.string("name").unwrap_or_default()
                            )))
                })
                .and_then(|r| r.attribute("policy"))
                .filter(|d| !d.is_null());
            match document {
                Some(document) => statements(
                    model,
                    provider,
                    document,
                    &format!("attached policy `{arn}`"),
                    &mut draft,
                ),
                None => draft.narrower(
                    format!("attached policy `{arn}`: its document is not in what was read (writ reads the account's own policies, not AWS's managed ones); write its grants by hand"),
                    None,
                ),
            }
        }
        draft
    }

    /// The trust's statements as `runs_on`, where the language has one.
    fn trust(model: &Model, provider: usize, trust: &Value, draft: &mut Draft) {
        let ProviderSettings::Aws {
            account, partition, ..
        } = &model.providers[provider].settings
        else {
            return;
        };
        let address = model.providers[provider].address();
        let statements = match trust.get("Statement") {
            Some(Value::Array(list)) => list.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => Vec::new(),
        };
        for statement in &statements {
            let effect = statement
                .get("Effect")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if effect == "Deny" {
                draft.wider(
                    "a `Deny` in the trust: writ writes no denies into a trust".to_string(),
                    Some(statement),
                );
                continue;
            }
            if effect != "Allow" {
                draft.narrower(
                    "a trust statement with no `Effect` writ knows".to_string(),
                    Some(statement),
                );
                continue;
            }
            if statement.get("NotPrincipal").is_some() || statement.get("NotAction").is_some() {
                draft.narrower(
                    "a trust statement with `NotPrincipal` or `NotAction`".to_string(),
                    Some(statement),
                );
                continue;
            }
            let actions = strings(statement.get("Action"));
            let principal = statement.get("Principal");
            let condition = statement
                .get("Condition")
                .filter(|c| c.as_object().is_some_and(|m| !m.is_empty()));
            let principals = |key: &str| strings(principal.and_then(|p| p.get(key)));
            let assumes = |action: &str| {
                actions
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(action) || a == "sts:*" || a == "*")
            };
            let mut written = Vec::new();
            let mut understood = true;
            if assumes("sts:AssumeRole") && condition.is_none() {
                for service in principals("Service") {
                    written.push(format!("runs_on {address} service {}", quoted(&service)));
                }
                let user_prefix = format!("arn:{partition}:iam::{account}:user/");
                for arn in principals("AWS") {
                    match arn.strip_prefix(&user_prefix) {
                        Some(user) if !user.contains('*') => {
                            written.push(format!("runs_on {address} user {}", quoted(user)))
                        }
                        _ => understood = false,
                    }
                }
            } else if !principals("Service").is_empty() || !principals("AWS").is_empty() {
                understood = false;
            }
            let federated = principals("Federated");
            if !federated.is_empty() {
                match (assumes("sts:AssumeRoleWithWebIdentity"), condition) {
                    (true, Some(condition)) => {
                        for arn in &federated {
                            match web_identity(model, account, arn, condition) {
                                Some(lines) => written.extend(lines),
                                None => understood = false,
                            }
                        }
                    }
                    _ => understood = false,
                }
            }
            if principal.is_some_and(|p| p.as_str() == Some("*")) {
                understood = false;
            }
            if understood && !written.is_empty() {
                draft.runs_on.extend(written);
            } else {
                draft.narrower(
                    "a trust statement writ's `runs_on` cannot say (another account, a role, a condition, a wildcard): who it admits does not run as the agent".to_string(),
                    Some(statement),
                );
            }
        }
    }

    /// `runs_on` for a web-identity trust: a cluster's service account
    /// (its issuer is a Kubernetes provider's `oidc_issuer`) or GitHub
    /// Actions, when its conditions are exactly the `sub` (and `aud`) writ
    /// would write.
    fn web_identity(
        model: &Model,
        account: &str,
        arn: &str,
        condition: &Value,
    ) -> Option<Vec<String>> {
        let (head, host) = arn.split_once(":oidc-provider/")?;
        // The identity provider of this account.
        if head.split(':').nth(4) != Some(account) {
            return None;
        }
        let object = condition.as_object()?;
        // Two operators on `sub` must both hold (IAM ands them), which
        // writ's `runs_on`, each admitting on its own, cannot say.
        let on_sub = object
            .values()
            .filter(|keys| keys.get(format!("{host}:sub")).is_some())
            .count();
        if on_sub > 1 {
            return None;
        }
        let mut subjects: Vec<(bool, String)> = Vec::new();
        for (operator, keys) in object {
            let like = match operator.as_str() {
                "StringEquals" => false,
                "StringLike" => true,
                _ => return None,
            };
            for (key, values) in keys.as_object()? {
                let claim = key.strip_prefix(host)?.strip_prefix(':')?;
                match claim {
                    "aud" if strings(Some(values)) == ["sts.amazonaws.com"] && !like => {}
                    "sub" => subjects.extend(strings(Some(values)).into_iter().map(|s| (like, s))),
                    _ => return None,
                }
            }
        }
        if subjects.is_empty() {
            return None;
        }
        let mut lines = Vec::new();
        if host == crate::lower::aws::GITHUB_OIDC {
            for (like, subject) in subjects {
                let rest = subject.strip_prefix("repo:")?;
                let (repository, pin) = rest.split_once(':')?;
                let (org, _) = repository.split_once('/')?;
                let github = model.providers.iter().find(|p| {
                    matches!(&p.settings, ProviderSettings::Github { org: o } if o.eq_ignore_ascii_case(org))
                })?;
                let address = github.address();
                let line = match (like, pin.split_once(':')) {
                    (true, None) if pin == "*" => {
                        format!("runs_on {address} repo {}", quoted(repository))
                    }
                    (false, Some(("environment", environment)))
                        if !environment.contains(['*', '?']) =>
                    {
                        format!(
                            "runs_on {address} repo {} environment {}",
                            quoted(repository),
                            quoted(environment)
                        )
                    }
                    (false, Some(("ref", git_ref))) if !git_ref.contains(['*', '?']) => format!(
                        "runs_on {address} repo {} ref {}",
                        quoted(repository),
                        quoted(git_ref)
                    ),
                    _ => return None,
                };
                lines.push(line);
            }
            return Some(lines);
        }
        let cluster = model.providers.iter().find(|p| {
            matches!(&p.settings, ProviderSettings::Kubernetes { oidc_issuer: Some(issuer), .. }
                if issuer.trim_start_matches("https://").trim_end_matches('/') == host)
        })?;
        for (like, subject) in subjects {
            let rest = subject.strip_prefix("system:serviceaccount:")?;
            let (namespace, name) = rest.split_once(':')?;
            if like && (subject.contains(['*', '?'])) {
                return None;
            }
            lines.push(format!(
                "runs_on {} namespace {} service_account {}",
                cluster.address(),
                quoted(namespace),
                quoted(name)
            ));
        }
        Some(lines)
    }

    /// A policy document's statements as grants.
    pub(super) fn statements(
        model: &Model,
        provider: usize,
        document: &Value,
        origin: &str,
        draft: &mut Draft,
    ) {
        let list = match document.get("Statement") {
            Some(Value::Array(list)) => list.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => Vec::new(),
        };
        for statement in &list {
            statement_grants(model, provider, statement, origin, draft);
        }
    }

    fn statement_grants(
        model: &Model,
        provider: usize,
        statement: &Value,
        origin: &str,
        draft: &mut Draft,
    ) {
        let address = model.providers[provider].address();
        let effect = statement
            .get("Effect")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if effect == "Deny" {
            draft.wider(
                format!("a `Deny` in {origin}: writ denies only in guardrails, for every agent; the imported agent may do what it denied"),
                Some(statement),
            );
            return;
        }
        if effect != "Allow" {
            draft.narrower(
                format!("a statement in {origin} with no `Effect` writ knows"),
                Some(statement),
            );
            return;
        }
        for key in ["NotAction", "NotResource", "NotPrincipal", "Principal"] {
            if statement.get(key).is_some() {
                draft.narrower(
                    format!(
                        "a statement in {origin} with `{key}`: the language names what it allows"
                    ),
                    Some(statement),
                );
                return;
            }
        }
        let actions = strings(statement.get("Action"));
        let resources = strings(statement.get("Resource"));
        if resources.iter().any(|r| r.contains("${")) {
            draft.narrower(
                format!("a statement in {origin} with a policy variable in a resource: IAM fills it in per request, and writ cannot check what it reaches"),
                Some(statement),
            );
            return;
        }
        let when = match statement.get("Condition") {
            None => String::new(),
            Some(condition) => match conditions(condition) {
                Ok(when) => when,
                Err(why) => {
                    draft.narrower(format!("a statement in {origin}: {why}"), Some(statement));
                    return;
                }
            },
        };
        // Actions IAM does not know grant nothing; those the catalogue does
        // not know writ cannot check.
        let catalogue = catalogue();
        let (known, unknown): (Vec<String>, Vec<String>) = actions
            .into_iter()
            .partition(|a| a == "*" || !catalogue.expand(a).is_empty());
        if !unknown.is_empty() {
            draft.narrower(
                format!(
                    "{} in {origin}: not in writ's catalogue of IAM actions",
                    unknown
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None,
            );
        }
        // One grant per set of resources the actions can act on: a pairing
        // of an action with a resource it cannot act on allows nothing.
        let mut by_resources: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for action in known {
            let fits: Vec<String> = resources
                .iter()
                .filter(|r| {
                    crate::usage::aws_admits(std::slice::from_ref(r), std::slice::from_ref(&action))
                })
                .cloned()
                .collect();
            if fits.is_empty() {
                draft.notes.push(format!(
                    "`{action}` in {origin} acts on none of the statement's resources: IAM allows nothing by it, and it is left out"
                ));
            } else {
                by_resources.entry(fits).or_default().push(action);
            }
        }
        for (resources, actions) in by_resources {
            draft.grants.push(format!(
                "{address} allow {} on {}{when}",
                actions.join(", "),
                quoted_list(&resources)
            ));
        }
    }

    /// A statement's `Condition` as a `when` clause (with its leading
    /// space), or why it cannot be one.
    fn conditions(condition: &Value) -> Result<String, String> {
        use crate::syntax::ast::ConditionOp;
        let object = condition
            .as_object()
            .ok_or_else(|| "a `Condition` that is not an object".to_string())?;
        let mut terms = Vec::new();
        for (operator, keys) in object {
            let keys = keys
                .as_object()
                .ok_or_else(|| format!("`{operator}` is not an object of keys"))?;
            for (key, values) in keys {
                let values = match values {
                    Value::Array(list) => list.clone(),
                    one => vec![one.clone()],
                };
                let text: Vec<String> = values
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                if text.iter().any(|v| v.contains("${")) {
                    return Err(format!("a policy variable in the values of `{key}`"));
                }
                if catalogue().condition_key(key).is_none() {
                    return Err(format!("the condition key `{key}` is not one writ knows"));
                }
                // Of the principal itself: the imported agent's role has
                // another ARN, path and tags, so it would mean otherwise.
                let lower = key.to_ascii_lowercase();
                if lower.starts_with("aws:principal")
                    || matches!(
                        lower.as_str(),
                        "aws:userid" | "aws:username" | "aws:sourceidentity"
                    )
                {
                    return Err(format!(
                        "a condition on `{key}`, the principal's own: the imported agent's role is another principal"
                    ));
                }
                // The writ operator that lowers to exactly this one.
                let op = [
                    ConditionOp::Equals,
                    ConditionOp::NotEquals,
                    ConditionOp::Like,
                    ConditionOp::Less,
                    ConditionOp::LessOrEqual,
                    ConditionOp::Greater,
                    ConditionOp::GreaterOrEqual,
                ]
                .into_iter()
                .find(|op| crate::lower::aws::iam_operator(*op, key) == *operator)
                .ok_or_else(|| {
                    format!("`{operator}` on `{key}` is not an operator writ lowers to")
                })?;
                let literal = |v: &str| -> String {
                    let kind = catalogue().condition_key(key).map(|k| k.kind);
                    match kind {
                        Some(crate::facts::aws::KeyType::Bool) if v == "true" || v == "false" => {
                            v.to_string()
                        }
                        Some(crate::facts::aws::KeyType::Numeric) if v.parse::<i64>().is_ok() => {
                            v.to_string()
                        }
                        _ => quoted(v),
                    }
                };
                let term = match (op, text.as_slice()) {
                    (_, []) => return Err(format!("`{operator}` on `{key}` with no value")),
                    (ConditionOp::Equals, [one]) => format!("{key} == {}", literal(one)),
                    (ConditionOp::Equals, many) => format!(
                        "{key} in [{}]",
                        many.iter().map(|v| literal(v)).collect::<Vec<_>>().join(", ")
                    ),
                    (op, [one]) => format!("{key} {} {}", op.as_str(), literal(one)),
                    (_, _) => {
                        return Err(format!(
                            "`{operator}` on `{key}` with several values (either of them), which writ's `{}` cannot say",
                            op.as_str()
                        ))
                    }
                };
                terms.push(term);
            }
        }
        // Two conditions on one key lower to one IAM key: not both.
        let mut keys = BTreeSet::new();
        for term in &terms {
            let key = term.split_whitespace().next().unwrap_or_default();
            if !keys.insert(key.to_string()) {
                return Err(format!(
                    "two conditions on `{key}` (writ lowers each key once)"
                ));
            }
        }
        Ok(match terms.is_empty() {
            true => String::new(),
            false => format!(" when {}", terms.join(" and ")),
        })
    }
}

mod kubernetes {
    use super::*;

    /// A service account, with the rules of the roles bound to it, as a
    /// draft agent.
    pub(super) fn account(
        model: &Model,
        provider: usize,
        account: &Resource,
        observed: &[Resource],
    ) -> Draft {
        let address = model.providers[provider].address();
        let namespace = account.string("namespace").unwrap_or_default();
        let name = account.string("name").unwrap_or_default();
        let mut draft = Draft {
            address: account.address.clone(),
            ..Draft::default()
        };
        draft.docs.push(format!(
            "Imported from {address} service account {namespace}/{name}."
        ));
        let labels = labels(account);
        draft.owner = owner_of(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // A service account's tokens are the cluster's: an hour, as
        // projected tokens default to.
        draft.ttl = 3600;
        draft.runs_on.push(format!(
            "runs_on {address} namespace {} service_account {}",
            quoted(namespace),
            quoted(name)
        ));
        let bindings = observed.iter().filter(|r| {
            r.provider == account.provider
                && matches!(
                    r.kind,
                    ResourceKind::KubernetesRoleBinding
                        | ResourceKind::KubernetesClusterRoleBinding
                )
        });
        for binding in bindings {
            let cluster_wide = binding.kind == ResourceKind::KubernetesClusterRoleBinding;
            let binding_namespace = binding.string("namespace").unwrap_or_default();
            let subjects = binding
                .attribute("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let named = subjects.iter().any(|s| {
                let field = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or_default();
                field("kind") == "ServiceAccount"
                    && field("name") == name
                    && (if field("namespace").is_empty() {
                        binding_namespace
                    } else {
                        field("namespace")
                    }) == namespace
            });
            let group = subjects.iter().any(|s| {
                crate::graph::observed::subject_applies(s, binding_namespace, namespace, name)
            });
            let binding_name = binding.string("name").unwrap_or_default();
            if !named {
                if group {
                    draft.notes.push(format!(
                        "binding `{binding_name}` applies to it through a group (every service account, or every one of its namespace): left to the binding, not imported"
                    ));
                }
                continue;
            }
            let (role_kind, role_name) = crate::graph::observed::role_ref(binding);
            let role = observed.iter().find(|r| {
                r.provider == account.provider
                    && r.string("name") == Some(role_name)
                    && match role_kind {
                        "ClusterRole" => r.kind == ResourceKind::KubernetesClusterRole,
                        _ => {
                            r.kind == ResourceKind::KubernetesRole
                                && r.string("namespace") == Some(binding_namespace)
                        }
                    }
            });
            let Some(role) = role else {
                draft.narrower(
                    format!("binding `{binding_name}` names {role_kind} `{role_name}`, which was not read"),
                    None,
                );
                continue;
            };
            let place = match cluster_wide {
                true => "in cluster".to_string(),
                false => format!("in namespace {}", quoted(binding_namespace)),
            };
            let rules = role
                .attribute("rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for rule in &rules {
                rule_grants(
                    &address,
                    rule,
                    &place,
                    &format!("{role_kind} `{role_name}`"),
                    &mut draft,
                );
            }
        }
        draft
    }

    /// Verbs RBAC cannot hold to names.
    const UNNAMEABLE: &[&str] = &["create", "list", "watch", "deletecollection", "*"];

    fn rule_grants(address: &str, rule: &Value, place: &str, origin: &str, draft: &mut Draft) {
        let verbs = strings(rule.get("verbs"));
        let groups = strings(rule.get("api_groups"));
        let resources = strings(rule.get("resources"));
        let names = strings(rule.get("resource_names"));
        let urls = strings(rule.get("non_resource_urls"));
        if !urls.is_empty() {
            draft.narrower(
                format!("a rule of {origin} on paths of the API server ({}): the language grants resources", urls.join(", ")),
                Some(rule),
            );
        }
        if resources.is_empty() || verbs.is_empty() {
            return;
        }
        let mut written: Vec<String> = Vec::new();
        for group in &groups {
            for resource in &resources {
                let text = match group.as_str() {
                    "" => resource.clone(),
                    "*" if resource.contains('/') => {
                        let (main, sub) = resource.split_once('/').unwrap_or_default();
                        format!("{main}.*/{sub}")
                    }
                    group => crate::graph::observed::writ_resource(resource, group),
                };
                if !written.contains(&text) {
                    written.push(text);
                }
            }
        }
        let (nameable, not): (Vec<String>, Vec<String>) = verbs
            .iter()
            .cloned()
            .partition(|v| !UNNAMEABLE.contains(&v.as_str()));
        match names.is_empty() {
            true => draft.grants.push(format!(
                "{address} allow {} on {} {place}",
                verbs.join(", "),
                quoted_list(&written)
            )),
            false => {
                if !not.is_empty() {
                    draft.narrower(
                        format!(
                            "{} with names in a rule of {origin}: RBAC cannot hold them to names, and writ refuses them named",
                            not.join(", ")
                        ),
                        Some(rule),
                    );
                }
                if !nameable.is_empty() {
                    draft.grants.push(format!(
                        "{address} allow {} on {} named {} {place}",
                        nameable.join(", "),
                        quoted_list(&written),
                        quoted_list(&names)
                    ));
                }
            }
        }
    }
}
