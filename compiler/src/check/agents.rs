//! Agents: their fields and workloads, effective grants, and the checks
//! that need the whole project: ttl per provider, expiry, delegation and
//! guardrails.

use super::{diagnostics, grants::Role, Checker};
use crate::access;
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::{kubernetes, ProviderKind};
use crate::model::{self, AgentId, Placement, ProviderSettings, WorkloadKind};
use crate::source::Span;
use crate::syntax::ast::{self, ItemKind, Stmt, StmtKind, ValueKind};
use crate::values::{Date, HOUR, MINUTE};
use std::collections::{BTreeMap, HashSet};

pub const AGENT_FIELDS: &[&str] = &[
    "owner", "ttl", "expires", "parent", "frozen", "rate", "budget",
];
pub const DELEGATES_FIELDS: &[&str] = &["max_depth", "ttl", "rate", "budget"];
pub const GUARDRAIL_FIELDS: &[&str] = &["max_ttl", "require_expires"];

/// Is `field` missing because it is misspelt? Then the misspelling has been
/// reported, with `field` as its did-you-mean, and one finding is enough.
pub(super) fn misspelt(body: &[Stmt], allowed: &[&str], field: &str) -> bool {
    body.iter().any(|stmt| match &stmt.kind {
        StmtKind::Field(written) => {
            let name = written.name.text.as_str();
            !allowed.contains(&name)
                && crate::suggest::closest(name, allowed.iter().copied()) == Some(field)
        }
        _ => false,
    })
}

impl<'a> Checker<'a> {
    pub(super) fn check_agent_body(&mut self, index: usize) {
        let item = self.agent_items[index];
        let ItemKind::Agent { name, body } = &item.kind else {
            return;
        };
        let id: AgentId = self.agents[name.text.as_str()];
        let name_text = name.text.as_str();
        let fields = self.fields(body, AGENT_FIELDS, "an agent");
        match fields.get("owner") {
            Some(field) => {
                if let Some((owner, span)) = self.string_field(field) {
                    if owner.trim().is_empty() {
                        self.report(
                            diagnostics::invalid_value("`owner` cannot be empty", span, "empty owner")
                                .with_help("name the accountable team or person, as in `owner = \"team-finance\"`"),
                        );
                    }
                    self.model.agents[id].owner = owner;
                }
            }
            None if misspelt(body, AGENT_FIELDS, "owner") => {}
            None => self.report(diagnostics::missing_field(
                "owner",
                &format!("agent `{}`", name.text),
                item.head,
                "owner = \"team-…\"",
            )),
        }
        match fields.get("ttl") {
            Some(field) => {
                if let Some((ttl, span)) = self.duration_field(field) {
                    self.model.agents[id].ttl = ttl;
                    self.model.agents[id].ttl_span = span;
                }
            }
            None if misspelt(body, AGENT_FIELDS, "ttl") => {}
            None => self.report(diagnostics::missing_field(
                "ttl",
                &format!("agent `{}`", name.text),
                item.head,
                "ttl = 1h",
            )),
        }
        if let Some(field) = fields.get("expires") {
            if let Some((date, _)) = self.date_field(field) {
                self.model.agents[id].expires = Some(date);
                if date <= self.today {
                    self.model.agents[id].retired = true;
                    self.report(
                        Diagnostic::new(
                            Code::Expired,
                            format!("agent `{}` expired on {date}", name.text),
                            Label::new(field.value.span, "in the past"),
                        )
                        .with_help(
                            "plans delete its access; remove the agent, or move `expires` forward",
                        ),
                    );
                }
            }
        }
        if let Some(field) = fields.get("rate") {
            self.model.agents[id].rate = self.rate_field(field);
        }
        if let Some(field) = fields.get("budget") {
            self.model.agents[id].budget = self.budget_field(field);
        }
        if let Some(field) = fields.get("frozen") {
            if let Some((frozen, _)) = self.bool_field(field) {
                self.model.agents[id].frozen = frozen;
            }
        }
        if let Some(field) = fields.get("parent") {
            match &field.value.kind {
                ValueKind::Ident(parent) => {
                    let ident = ast::Ident {
                        text: parent.clone(),
                        span: field.value.span,
                    };
                    if let Some(parent_id) = self.resolve_agent(&ident) {
                        self.model.agents[id].parent = Some(parent_id);
                        self.model.agents[id].parent_span = Some(field.value.span);
                    }
                }
                other => self.report(diagnostics::wrong_type(
                    "parent",
                    "an agent name",
                    other.describe(),
                    field.value.span,
                    "other_agent",
                )),
            }
        }
        let mut scopes = Vec::new();
        let mut grants = Vec::new();
        let mut runs_on = Vec::new();
        let mut adopts: Vec<model::Adoption> = Vec::new();
        let mut delegates: Option<&'a Stmt> = None;
        for stmt in body {
            match &stmt.kind {
                StmtKind::Can(names) => {
                    scopes.extend(names.iter().filter_map(|n| self.resolve_scope(n)))
                }
                StmtKind::Grant(grant) => grants.extend(self.grant(grant, stmt, Role::Access)),
                StmtKind::RunsOn(workload) => runs_on.extend(self.runs_on(workload, stmt.span)),
                StmtKind::Adopts(adoption) => {
                    if let Some(adoption) = self.adoption(adoption, name_text, stmt.span) {
                        match adopts
                            .iter()
                            .find(|a: &&model::Adoption| {
                                a.provider == adoption.provider
                                    && (matches!(a.kind, model::AdoptionKind::AwsRole { .. })
                                        || a.kind == adoption.kind)
                            })
                        {
                            Some(first) => self.report(
                                Diagnostic::new(
                                    Code::DuplicateDefinition,
                                    format!(
                                        "`{name_text}` adopts twice in `{}`: an agent has one role in an AWS account, and adopts a service account once",
                                        self.model.providers[adoption.provider].address()
                                    ),
                                    Label::new(adoption.span, "adopts again here"),
                                )
                                .with_label(first.span, "first adopted here")
                                .with_help("keep the line of the object the agent is"),
                            ),
                            None => adopts.push(adoption),
                        }
                    }
                }
                StmtKind::Delegates(_) => match delegates {
                    Some(first) => {
                        self.report(diagnostics::set_twice("delegates", stmt.span, first.span))
                    }
                    None => delegates = Some(stmt),
                },
                _ => {}
            }
        }
        // A service account is adopted only as one the agent runs as.
        adopts.retain(|adoption| {
            let model::AdoptionKind::KubernetesServiceAccount { namespace, name } = &adoption.kind
            else {
                return true;
            };
            let runs_as = runs_on.iter().any(|w: &model::Workload| {
                w.provider == adoption.provider
                    && matches!(&w.kind, WorkloadKind::KubernetesServiceAccount { namespace: n, service_account: a } if n == namespace && a == name)
            });
            if !runs_as {
                let provider = self.model.providers[adoption.provider].address();
                self.report(
                    diagnostics::invalid_value(
                        format!("`{}` does not run as `{namespace}/{name}` in `{provider}`: writ adopts only a service account the agent runs as", name_text),
                        adoption.span,
                        "not its service account",
                    )
                    .with_help(format!("add `runs_on {provider} namespace \"{namespace}\" service_account \"{name}\"`, or remove the line")),
                );
            }
            runs_as
        });
        let ceiling = delegates.and_then(|stmt| self.ceiling(stmt, id));
        let agent = &mut self.model.agents[id];
        agent.scopes = scopes;
        agent.grants = grants;
        agent.runs_on = runs_on;
        agent.adopts = adopts;
        agent.delegates = ceiling;
    }

    /// `adopts aws.P role "/PATH/NAME"`: an IAM role made outside writ, which
    /// keeps its path (IAM cannot move a role) and its name (the agent's);
    /// `adopts kubernetes.K service_account "NS/NAME"`: a service account
    /// the agent runs as (checked against its `runs_on` by the caller).
    fn adoption(
        &mut self,
        adoption: &ast::RunsOn,
        agent: &str,
        span: Span,
    ) -> Option<model::Adoption> {
        let provider = self.resolve_provider(&adoption.provider)?;
        let kind = self.model.providers[provider].kind;
        let attribute = match kind {
            ProviderKind::Aws => "role",
            ProviderKind::Kubernetes => "service_account",
            ProviderKind::Github | ProviderKind::Gcp => {
                self.report(
                    Diagnostic::new(
                        Code::Unsupported,
                        format!("writ adopts AWS roles and Kubernetes service accounts, not {kind} objects"),
                        Label::new(adoption.provider.span, "nothing to adopt here"),
                    )
                    .with_help(format!(
                        "remove the line: writ makes `{agent}`'s {kind} objects itself (see docs/import.md)"
                    )),
                );
                return None;
            }
        };
        let mut value: Option<&ast::Str> = None;
        for written in &adoption.attributes {
            if written.name.text != attribute {
                self.report(diagnostics::unknown_field(
                    &written.name.text,
                    written.name.span,
                    &format!("`adopts {kind}`"),
                    &[attribute],
                ));
                return None;
            }
            if let Some(first) = value {
                self.report(diagnostics::set_twice(
                    attribute,
                    written.name.span,
                    first.span,
                ));
                return None;
            }
            value = Some(&written.value);
        }
        let value = value?;
        let text = value.value.as_str();
        if kind == ProviderKind::Kubernetes {
            let Some((namespace, name)) = text.split_once('/') else {
                self.report(
                    diagnostics::invalid_value(
                        format!("`{text}` is not a service account's namespace and name"),
                        value.span,
                        "expected `NAMESPACE/NAME`",
                    )
                    .with_help(format!("write it as `\"ci/{agent}\"`")),
                );
                return None;
            };
            return Some(model::Adoption {
                provider,
                kind: model::AdoptionKind::KubernetesServiceAccount {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                },
                span,
            });
        }
        let (path, name) = match text.rfind('/') {
            Some(slash) if text.starts_with('/') => (&text[..=slash], &text[slash + 1..]),
            _ => {
                self.report(
                    diagnostics::invalid_value(
                        format!("`{text}` is not a role's path and name"),
                        value.span,
                        "expected `/PATH/NAME`",
                    )
                    .with_help(format!(
                        "write the role's path and name, as `\"/{agent}\"` or `\"/ci/{agent}\"`"
                    )),
                );
                return None;
            }
        };
        if name != agent {
            self.report(
                diagnostics::invalid_value(
                    format!(
                        "an adopted role keeps its name: `{name}` is not the agent's, `{agent}`"
                    ),
                    value.span,
                    "another name",
                )
                .with_help(format!(
                    "name the agent `{name}`, or write `\"{path}{agent}\"` if that is the role"
                )),
            );
            return None;
        }
        let valid_path = path.len() <= 512
            && !path.contains("//")
            && path.chars().all(|c| ('!'..='~').contains(&c));
        if !valid_path {
            self.report(
                diagnostics::invalid_value(
                    format!("`{path}` is not an IAM path"),
                    value.span,
                    "invalid path",
                )
                .with_help("an IAM path is `/`, or `/` and names each ending in `/`, at most 512 printable characters"),
            );
            return None;
        }
        if path.starts_with(crate::ownership::aws::PATH_ROOT) {
            self.report(
                diagnostics::invalid_value(
                    format!(
                        "`{path}` is writ's own path: a role there is a writ project's already"
                    ),
                    value.span,
                    "writ's path",
                )
                .with_help("remove the line: writ makes and keeps the agent's role there itself"),
            );
            return None;
        }
        Some(model::Adoption {
            provider,
            kind: model::AdoptionKind::AwsRole {
                path: path.to_string(),
            },
            span,
        })
    }

    fn ceiling(&mut self, stmt: &'a Stmt, agent: AgentId) -> Option<model::Ceiling> {
        let StmtKind::Delegates(body) = &stmt.kind else {
            return None;
        };
        let fields = self.fields(body, DELEGATES_FIELDS, "a `delegates` block");
        let mut ceiling = model::Ceiling {
            // Like `ttl`: what the agent itself may not exceed, its
            // delegates may not either.
            rate: self.model.agents[agent].rate,
            budget: self.model.agents[agent].budget,
            max_depth: 1,
            max_depth_span: None,
            ttl: self.model.agents[agent].ttl,
            ttl_span: None,
            grants: Vec::new(),
            span: stmt.span,
        };
        if let Some(field) = fields.get("max_depth") {
            match &field.value.kind {
                ValueKind::Integer(text) => match text.parse::<u32>() {
                    Ok(depth) if depth >= 1 => {
                        ceiling.max_depth = depth;
                        ceiling.max_depth_span = Some(field.value.span);
                    }
                    _ => self.report(
                        diagnostics::invalid_value(
                            format!("`max_depth = {text}`: the depth is a whole number from 1"),
                            field.value.span,
                            "invalid depth",
                        )
                        .with_help("to allow no delegates, remove the `delegates` block"),
                    ),
                },
                other => self.report(diagnostics::wrong_type(
                    "max_depth",
                    "a whole number",
                    other.describe(),
                    field.value.span,
                    "1",
                )),
            }
        }
        if let Some(field) = fields.get("ttl") {
            if let Some((ttl, span)) = self.duration_field(field) {
                ceiling.ttl = ttl;
                ceiling.ttl_span = Some(span);
            }
        }
        if let Some(field) = fields.get("rate") {
            ceiling.rate = self.rate_field(field);
        }
        if let Some(field) = fields.get("budget") {
            ceiling.budget = self.budget_field(field);
        }
        for inner in body {
            match &inner.kind {
                StmtKind::Can(names) => {
                    for name in names {
                        if let Some(scope) = self.resolve_scope(name) {
                            let via = vec![self.model.scopes[scope].name.clone()];
                            let mut visited = HashSet::new();
                            ceiling
                                .grants
                                .extend(self.scope_grants(scope, &via, &mut visited));
                            // Other items' bodies, read (see `memo`).
                            self.reads.extend(visited);
                        }
                    }
                }
                StmtKind::Grant(grant) => {
                    ceiling
                        .grants
                        .extend(self.grant(grant, inner, Role::Ceiling))
                }
                _ => {}
            }
        }
        Some(ceiling)
    }

    fn runs_on(&mut self, workload: &ast::RunsOn, span: Span) -> Option<model::Workload> {
        let waivers = self.waivers(&workload.waivers, &[Code::BroadTrust], "a `runs_on`");
        let provider_id = self.resolve_provider(&workload.provider)?;
        let provider = self.model.providers[provider_id].clone();
        let rules = provider.kind.rules();
        let (allowed, required) = (rules.runs_on, rules.runs_on_required);
        let what = format!("`runs_on {}`", provider.kind);
        let mut values: BTreeMap<&str, &ast::Str> = BTreeMap::new();
        let mut first_spans: BTreeMap<&str, Span> = BTreeMap::new();
        let mut ok = true;
        for attribute in &workload.attributes {
            let name = attribute.name.text.as_str();
            let Some(known) = allowed.iter().find(|a| **a == name) else {
                self.report(diagnostics::unknown_field(
                    name,
                    attribute.name.span,
                    &what,
                    allowed,
                ));
                ok = false;
                continue;
            };
            if let Some(first) = first_spans.get(known) {
                self.report(diagnostics::set_twice(name, attribute.name.span, *first));
                ok = false;
                continue;
            }
            first_spans.insert(known, attribute.name.span);
            values.insert(known, &attribute.value);
        }
        for field in required {
            // A misspelt attribute is most likely the missing one: it has been
            // reported, with a suggestion, so do not report it twice.
            if !values.contains_key(field) && ok {
                self.report(diagnostics::missing_field(
                    field,
                    &what,
                    workload.provider.span,
                    &format!("{field} \"…\""),
                ));
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let get = |name: &str| values.get(name).map(|s| s.value.clone());
        let kind = match provider.kind {
            ProviderKind::Kubernetes => {
                let namespace = values["namespace"];
                let account = values["service_account"];
                if !kubernetes::is_dns_label(&namespace.value) {
                    self.report(
                        diagnostics::invalid_value(format!("`{}` is not a valid namespace name", namespace.value), namespace.span, "invalid namespace")
                            .with_help("namespaces are lowercase letters, digits and `-`, at most 63 characters"),
                    );
                    return None;
                }
                if crate::ownership::kubernetes::RESERVED_NAMESPACES
                    .contains(&namespace.value.as_str())
                {
                    self.report(diagnostics::reserved_namespace(
                        &namespace.value,
                        namespace.span,
                        "run the agent in a namespace of its own",
                    ));
                    return None;
                }
                if !kubernetes::is_dns_subdomain(&account.value) {
                    self.report(
                        diagnostics::invalid_value(
                            format!("`{}` is not a valid service account name", account.value),
                            account.span,
                            "invalid name",
                        )
                        .with_help(
                            "service account names are lowercase letters, digits, `-` and `.`",
                        ),
                    );
                    return None;
                }
                WorkloadKind::KubernetesServiceAccount {
                    namespace: namespace.value.clone(),
                    service_account: account.value.clone(),
                }
            }
            ProviderKind::Github => {
                let ProviderSettings::Github { org } = &provider.settings else {
                    return None;
                };
                // An App's installation, or a repository's workflows.
                match (values.get("app"), values.get("repo")) {
                    (Some(app), None) => {
                        let extra: Vec<&str> = ["workflow", "ref", "environment"]
                            .into_iter()
                            .filter(|k| values.contains_key(k))
                            .collect();
                        if let Some(first) = extra.first() {
                            self.report(
                                diagnostics::invalid_value(
                                    format!("`{first}` pins a workflow's token; an App's tokens have none"),
                                    values[first].span,
                                    "not for an App",
                                )
                                .with_help("remove it: the App's grants say what its tokens may do"),
                            );
                            return None;
                        }
                        // `broad_trust` is about a workflow's branches; an
                        // App has none, so a waiver of it waives nothing.
                        if let Some(waiver) = workload.waivers.first() {
                            self.report(
                                diagnostics::invalid_value(
                                    format!("`@waive({})` waives nothing on an App's `runs_on`: `broad_trust` is about a repository's branches", waiver.lint.text),
                                    waiver.lint.span,
                                    "nothing to waive",
                                )
                                .with_help("remove it"),
                            );
                            return None;
                        }
                        let slug = &app.value;
                        let valid = !slug.is_empty()
                            && slug
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                        if !valid {
                            self.report(
                                diagnostics::invalid_value(
                                    format!("`{slug}` is not an App's slug"),
                                    app.span,
                                    "expected lowercase letters, digits and hyphens",
                                )
                                .with_help(
                                    "write the App's slug, as in its URL `github.com/apps/SLUG`",
                                ),
                            );
                            return None;
                        }
                        return Some(model::Workload {
                            provider: provider_id,
                            kind: WorkloadKind::GithubApp { slug: slug.clone() },
                            span,
                        });
                    }
                    (Some(app), Some(repo)) => {
                        self.report(
                            diagnostics::invalid_value(
                                "a `runs_on github` is a repository's workflows or an App's installation, not both",
                                app.span,
                                "second principal",
                            )
                            .with_label(repo.span, "the repository")
                            .with_help("write one `runs_on` for each"),
                        );
                        return None;
                    }
                    (None, None) => {
                        self.report(diagnostics::missing_field(
                            "repo",
                            &what,
                            workload.provider.span,
                            "repo \"org/repository\"",
                        ).with_help(format!("add `repo \"{org}/repository\"` (the workflows of a repository), or `app \"slug\"` (a GitHub App installed in `{org}`)")));
                        return None;
                    }
                    (None, Some(_)) => {}
                }
                let repo = values["repo"];
                if !crate::facts::github::is_repository(&repo.value)
                    || crate::pattern::has_wildcard(&repo.value)
                {
                    self.report(
                        diagnostics::invalid_value(
                            format!("`{}` is not a repository", repo.value),
                            repo.span,
                            "expected `org/repo`",
                        )
                        .with_help(format!("write `repo \"{org}/repository\"`")),
                    );
                    return None;
                }
                if !repo
                    .value
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .eq_ignore_ascii_case(org)
                {
                    self.report(
                        Diagnostic::new(
                            Code::ResourceMismatch,
                            format!(
                                "`{}` is not in the organisation `{org}` of `{}`",
                                repo.value,
                                provider.address()
                            ),
                            Label::new(repo.span, "another organisation"),
                        )
                        .with_help("use the provider of the repository's organisation"),
                    );
                    return None;
                }
                // The pins are compared with GitHub's claims as written: a
                // wildcard would quietly widen (or, inside a value, void)
                // the trust.
                for field in ["workflow", "ref", "environment"] {
                    if let Some(value) = values.get(field) {
                        if crate::pattern::has_wildcard(&value.value) {
                            self.report(
                                diagnostics::invalid_value(
                                    format!("`{}`: the `{field}` pin names one {field}, not a pattern", value.value),
                                    value.span,
                                    "wildcard in a pin",
                                )
                                .with_help("name it exactly; for several, declare one `runs_on` each, or drop the pin and accept it with `@waive(broad_trust, \"why\")`"),
                            );
                            return None;
                        }
                    }
                }
                if let Some(workflow) = values.get("workflow") {
                    // The `job_workflow_ref` claim names the workflow by its
                    // path in the repository, and GitHub runs workflows only
                    // from `.github/workflows/` itself.
                    let path = &workflow.value;
                    let file = path.strip_prefix(".github/workflows/");
                    let is_workflow = |name: &str| {
                        (name.ends_with(".yml") || name.ends_with(".yaml"))
                            && !name.contains(['/', '\\', '@'])
                            && !name.contains(char::is_whitespace)
                            && !name.starts_with('.')
                    };
                    if !file.is_some_and(is_workflow) {
                        let name = path.rsplit('/').next().unwrap_or(path);
                        let help = if is_workflow(name) {
                            format!("write the path from the repository's root: `workflow \".github/workflows/{name}\"`")
                        } else {
                            "name the workflow file by its path, as in `workflow \".github/workflows/deploy.yml\"`".to_string()
                        };
                        self.report(
                            diagnostics::invalid_value(
                                format!("`{path}` is not a workflow file under `.github/workflows/`: the role could never be assumed"),
                                workflow.span,
                                "expected `.github/workflows/NAME.yml`",
                            )
                            .with_help(help),
                        );
                        return None;
                    }
                }
                if !values.contains_key("ref")
                    && !values.contains_key("environment")
                    && !waivers.iter().any(|w| w.lint == Code::BroadTrust)
                {
                    self.report(
                        Diagnostic::new(
                            Code::BroadTrust,
                            format!(
                                "every branch, tag and pull request of `{}` may act as this agent",
                                repo.value
                            ),
                            Label::new(span, "pinned to no branch and no environment"),
                        )
                        .with_help("pin it with `ref \"refs/heads/main\"` or `environment \"production\"`, or accept it with `@waive(broad_trust, \"why\")`"),
                    );
                }
                if let Some(git_ref) = values.get("ref") {
                    if !git_ref.value.starts_with("refs/") {
                        self.report(
                            diagnostics::invalid_value(
                                format!("`{}` is not a full git ref", git_ref.value),
                                git_ref.span,
                                "expected `refs/…`",
                            )
                            .with_help(format!("write `ref \"refs/heads/{}\"`", git_ref.value)),
                        );
                        return None;
                    }
                    // With `environment` too, both hold: the `sub` of a job
                    // in an environment names only the environment, and
                    // the trust checks the `ref` claim beside it.
                }
                WorkloadKind::GithubActions {
                    repository: repo.value.clone(),
                    workflow: get("workflow"),
                    git_ref: get("ref"),
                    environment: get("environment"),
                }
            }
            ProviderKind::Aws => {
                let service = match (values.get("service"), values.get("user")) {
                    (Some(service), None) => *service,
                    (None, Some(user)) => return self.aws_user(provider_id, user, span),
                    (Some(service), Some(user)) => {
                        self.report(
                            diagnostics::invalid_value(
                                "a `runs_on aws` names a service or an IAM user, not both",
                                user.span,
                                "second principal",
                            )
                            .with_label(service.span, "the service")
                            .with_help("write one `runs_on` for each"),
                        );
                        return None;
                    }
                    (None, None) => {
                        self.report(
                            diagnostics::missing_field(
                                "service",
                                &what,
                                workload.provider.span,
                                "service \"lambda.amazonaws.com\"",
                            )
                            .with_help("add `service \"lambda.amazonaws.com\"` (an AWS service), or `user \"NAME\"` (an IAM user whose access keys the agent signs with)"),
                        );
                        return None;
                    }
                };
                if !service.value.ends_with(".amazonaws.com")
                    || service.value.contains(char::is_whitespace)
                {
                    self.report(
                        diagnostics::invalid_value(
                            format!("`{}` is not an AWS service principal", service.value),
                            service.span,
                            "expected `….amazonaws.com`",
                        )
                        .with_help(
                            "write the service principal, as in `service \"lambda.amazonaws.com\"`",
                        ),
                    );
                    return None;
                }
                WorkloadKind::AwsService {
                    service: service.value.clone(),
                }
            }
            ProviderKind::Gcp => WorkloadKind::GcpWorkloadIdentity {
                pool: values["workload_pool"].value.clone(),
                subject: values["subject"].value.clone(),
            },
        };
        Some(model::Workload {
            provider: provider_id,
            kind,
            span,
        })
    }

    /// `runs_on aws.P user "NAME"`: an IAM user whose access keys the agent
    /// signs with. Its keys live until someone rotates them, which the
    /// agent's ttl cannot change: a warning says so.
    fn aws_user(
        &mut self,
        provider: model::ProviderId,
        user: &ast::Str,
        span: Span,
    ) -> Option<model::Workload> {
        if !crate::facts::aws::is_user_name(&user.value) {
            self.report(
                diagnostics::invalid_value(
                    format!("`{}` is not an IAM user name", user.value),
                    user.span,
                    "expected a name of letters, digits and `+=,.@_-`, after an optional path",
                )
                .with_help("write the user's name, as in `user \"ci-deployer\"`, or `\"path/name\"` for a user under a path"),
            );
            return None;
        }
        self.report(
            Diagnostic::new(
                Code::TtlNotEnforced,
                format!(
                    "the access keys of IAM user `{}` live until someone rotates them: the agent's ttl holds only for the role sessions it starts",
                    user.value
                ),
                Label::new(user.span, "long-lived keys"),
            )
            .with_help("prefer a workload identity (`runs_on kubernetes…`, `runs_on github…`, `service \"…\"`); `writ revoke` disables this user's keys"),
        );
        Some(model::Workload {
            provider,
            kind: WorkloadKind::AwsUser {
                user: user.value.clone(),
            },
            span,
        })
    }

    pub(super) fn guardrail(
        &mut self,
        item: &'a ast::Item,
        name: &ast::Ident,
        body: &'a [Stmt],
        earlier: &[model::Guardrail],
    ) -> Option<model::Guardrail> {
        if let Some(first) = earlier.iter().find(|g| g.name == name.text) {
            self.report(diagnostics::duplicate(
                "guardrail",
                &name.text,
                name.span,
                first.span,
            ));
            return None;
        }
        let fields = self.fields(body, GUARDRAIL_FIELDS, "a guardrail");
        let max_ttl = fields.get("max_ttl").and_then(|f| self.duration_field(f));
        let require_expires = match fields.get("require_expires") {
            Some(field) => match self.bool_field(field) {
                Some((true, span)) => Some(span),
                _ => None,
            },
            None => None,
        };
        let mut denies = Vec::new();
        for stmt in body {
            if let StmtKind::Grant(grant) = &stmt.kind {
                denies.extend(self.deny(grant, stmt));
            }
        }
        Some(model::Guardrail {
            name: name.text.clone(),
            docs: super::docs_text(&item.docs),
            span: name.span,
            denies,
            max_ttl,
            require_expires,
        })
    }

    /// The grants a scope holds, its own and its includes', transitively;
    /// `via` is the chain of scopes they came through.
    fn scope_grants(
        &self,
        scope: usize,
        via: &[String],
        visited: &mut HashSet<usize>,
    ) -> Vec<model::Grant> {
        if !visited.insert(scope) {
            return Vec::new();
        }
        let mut out: Vec<model::Grant> = self.model.scopes[scope]
            .grants
            .iter()
            .cloned()
            .map(|mut grant| {
                grant.via = via.to_vec();
                grant
            })
            .collect();
        for &included in &self.model.scopes[scope].includes {
            let mut chain = via.to_vec();
            chain.push(self.model.scopes[included].name.clone());
            out.extend(self.scope_grants(included, &chain, visited));
        }
        out
    }

    pub(super) fn effective_grants(&mut self) {
        for id in 0..self.model.agents.len() {
            let mut visited = HashSet::new();
            let mut extra = Vec::new();
            for &scope in &self.model.agents[id].scopes.clone() {
                let via = vec![self.model.scopes[scope].name.clone()];
                extra.extend(self.scope_grants(scope, &via, &mut visited));
            }
            self.model.agents[id].grants.extend(extra);
        }
    }

    pub(super) fn agent_checks(&mut self) {
        let in_cycle = self.delegation_cycles();
        let declared: Vec<Option<Date>> = self.model.agents.iter().map(|a| a.expires).collect();
        for id in 0..self.model.agents.len() {
            self.ttl_ranges(id);
            if !in_cycle.contains(&id) {
                self.expiry_of_chain(id, &declared);
                self.delegation(id);
            }
        }
        self.guardrail_checks();
    }

    /// A delegate lives only while every agent above it does: its parent's
    /// role is what it is trusted through, and its parent's ceiling what
    /// bounds it. When an ancestor's `expires` comes first, the delegate
    /// expires then too, so that an expired parent retires its delegates
    /// with it rather than leaving them with no trusted principal. Said
    /// ahead of the date (`outlives_parent`), and on it (`expired`).
    fn expiry_of_chain(&mut self, id: AgentId, declared: &[Option<Date>]) {
        let own = declared[id];
        let Some((ancestor, date)) = self
            .model
            .ancestors(id)
            .into_iter()
            .filter_map(|a| declared[a].map(|date| (a, date)))
            .min_by_key(|&(_, date)| date)
        else {
            return;
        };
        if own.is_some_and(|own| own <= date) {
            return;
        }
        let agent = &mut self.model.agents[id];
        agent.expires = Some(date);
        agent.expires_with = Some(ancestor);
        let name = agent.name.clone();
        let span = agent.parent_span.unwrap_or(agent.span);
        let ancestor_name = self.model.agents[ancestor].name.clone();
        let relation = if self.model.agents[id].parent == Some(ancestor) {
            "parent"
        } else {
            "ancestor"
        };
        if date <= self.today {
            if self.model.agents[id].retired {
                return;
            }
            self.model.agents[id].retired = true;
            self.report(
                Diagnostic::new(
                    Code::Expired,
                    format!("agent `{name}` expired on {date} with its {relation} `{ancestor_name}`"),
                    Label::new(span, format!("its {relation} expired on {date}")),
                )
                .with_help(format!(
                    "plans delete its access with `{ancestor_name}`'s; remove it, or give it a parent that has not expired"
                )),
            );
            return;
        }
        let own = match own {
            Some(own) => format!("before its own `expires = {own}`"),
            None => "although it declares no `expires`".to_string(),
        };
        self.report(
            Diagnostic::new(
                Code::OutlivesParent,
                format!("`{name}` expires on {date} with its {relation} `{ancestor_name}`, {own}"),
                Label::new(span, format!("its {relation} expires on {date}")),
            )
            .with_help(format!(
                "write `expires = {date}` on `{name}`, so that its end is read where it is declared; or move `{ancestor_name}`'s forward"
            )),
        );
    }

    /// Does every AWS role of the agent trust `writ serve`'s issuer alone,
    /// so that each of its sessions is one the server issued, for no
    /// longer than the ttl: an `issuer` in each AWS provider it holds
    /// grants in, no workload of its that the role trusts, and no parent
    /// whose role may chain to it?
    fn sessions_only_from_issuer(&self, id: AgentId) -> bool {
        let model = &self.model;
        let agent = &model.agents[id];
        let held = |agent: &crate::model::Agent, provider: usize| {
            agent.grants.iter().any(|g| g.provider == provider)
                || agent.runs_on.iter().any(|w| w.provider == provider)
        };
        (0..model.providers.len())
            .filter(|&p| model.providers[p].kind == ProviderKind::Aws && held(agent, p))
            .all(|p| {
                matches!(
                    model.providers[p].settings,
                    crate::model::ProviderSettings::Aws {
                        issuer: Some(_),
                        ..
                    }
                ) && !agent
                    .runs_on
                    .iter()
                    .any(|w| crate::graph::obtains(model, id, w).contains(&p))
                    && !agent
                        .parent
                        .is_some_and(|parent| held(&model.agents[parent], p))
            })
    }

    /// Checks that a ttl can be enforced by every provider the agent uses.
    fn ttl_ranges(&mut self, id: AgentId) {
        let agent = &self.model.agents[id];
        let ttl = agent.ttl;
        let first_of = |kind: ProviderKind| -> Option<Span> {
            agent
                .grants
                .iter()
                .find(|g| self.model.providers[g.provider].kind == kind)
                .map(|g| g.span)
        };
        let kubernetes_use = first_of(ProviderKind::Kubernetes).or_else(|| {
            agent
                .runs_on
                .iter()
                .find(|w| matches!(w.kind, WorkloadKind::KubernetesServiceAccount { .. }))
                .map(|w| w.span)
        });
        let mut problems: Vec<(String, Span, String, String)> = Vec::new();
        let mut unenforced = Vec::new();
        if let Some(span) = first_of(ProviderKind::Aws) {
            if ttl.seconds() < 15 * MINUTE {
                problems.push((
                    "AWS sessions last at least 15m".into(),
                    span,
                    "AWS access granted here".into(),
                    "set `ttl` to 15m or more".into(),
                ));
            } else if ttl.seconds() > 12 * HOUR {
                problems.push((
                    "AWS sessions last at most 12h".into(),
                    span,
                    "AWS access granted here".into(),
                    "set `ttl` to 12h or less".into(),
                ));
            } else if agent.parent.is_some() && ttl.seconds() > HOUR {
                problems.push((
                    "a delegate reaches AWS by role chaining, which caps sessions at 1h".into(),
                    span,
                    "AWS access granted here".into(),
                    "set `ttl` to 1h or less".into(),
                ));
            } else if ttl.seconds() < HOUR && !self.sessions_only_from_issuer(id) {
                // Never rounded silently: say what AWS holds instead.
                unenforced.push(
                    Diagnostic::new(
                        Code::TtlNotEnforced,
                        format!(
                            "`{}` has ttl {ttl}, but AWS lets its role's sessions last up to 1h: a role's `MaxSessionDuration` cannot be less, so only a caller that asks for {ttl} gets it",
                            agent.name
                        ),
                        Label::new(agent.ttl_span, "not enforced: sessions may last 1h"),
                    )
                    .with_label(span, "AWS access granted here")
                    .with_help("set `ttl = 1h`, which is what AWS enforces; shorter sessions are for the caller to ask for (`DurationSeconds`)"),
                );
            }
        }
        if let Some(span) = kubernetes_use {
            if ttl.seconds() < 10 * MINUTE {
                problems.push((
                    "Kubernetes service account tokens live at least 10m".into(),
                    span,
                    "Kubernetes access here".into(),
                    "set `ttl` to 10m or more".into(),
                ));
            }
        }
        if let Some(span) = first_of(ProviderKind::Github) {
            if ttl.seconds() < HOUR {
                problems.push((
                    "GitHub installation tokens always live 1h; a shorter ttl cannot be enforced"
                        .into(),
                    span,
                    "GitHub access granted here".into(),
                    "set `ttl` to 1h or more".into(),
                ));
            }
        }
        if let Some(span) = first_of(ProviderKind::Gcp) {
            if ttl.seconds() > 12 * HOUR {
                problems.push((
                    "GCP short-lived credentials live at most 12h".into(),
                    span,
                    "GCP access granted here".into(),
                    "set `ttl` to 12h or less".into(),
                ));
            } else if ttl.seconds() < HOUR {
                // A token for a service account lasts 1h unless its caller
                // asks for less (`lifetime`): said, never rounded.
                unenforced.push(
                    Diagnostic::new(
                        Code::TtlNotEnforced,
                        format!(
                            "`{}` has ttl {ttl}, but GCP's tokens for its service account last 1h unless the caller asks for less: nothing in IAM caps them shorter",
                            agent.name
                        ),
                        Label::new(agent.ttl_span, "not enforced: tokens may last 1h"),
                    )
                    .with_label(span, "GCP access granted here")
                    .with_help("set `ttl = 1h`, which is what GCP enforces; shorter tokens are for the caller to ask for (`lifetime` in `generateAccessToken`)"),
                );
            }
        }
        let name = agent.name.clone();
        let ttl_span = agent.ttl_span;
        for diagnostic in unenforced {
            self.report(diagnostic);
        }
        for (why, span, label, help) in problems {
            self.report(
                Diagnostic::new(
                    Code::TtlOutOfRange,
                    format!("`{name}` has ttl {ttl}, but {why}"),
                    Label::new(ttl_span, "ttl cannot be enforced"),
                )
                .with_label(span, label)
                .with_help(help),
            );
        }
    }

    /// Finds `parent` loops, reports each once, and returns their members.
    fn delegation_cycles(&mut self) -> HashSet<AgentId> {
        let mut in_cycle = HashSet::new();
        for start in 0..self.model.agents.len() {
            if in_cycle.contains(&start) {
                continue;
            }
            let mut path = vec![start];
            let mut current = self.model.agents[start].parent;
            while let Some(next) = current {
                if let Some(position) = path.iter().position(|&a| a == next) {
                    let cycle: Vec<AgentId> = path[position..].to_vec();
                    if cycle.iter().any(|a| in_cycle.contains(a)) {
                        break;
                    }
                    in_cycle.extend(cycle.iter().copied());
                    self.report_delegation_cycle(&cycle);
                    break;
                }
                if in_cycle.contains(&next) {
                    break;
                }
                path.push(next);
                current = self.model.agents[next].parent;
            }
        }
        in_cycle
    }

    fn report_delegation_cycle(&mut self, cycle: &[AgentId]) {
        // Point at the member written first, so the report is stable.
        let first = *cycle
            .iter()
            .min_by_key(|&&a| self.model.agents[a].parent_span.map(|s| (s.file, s.start)))
            .unwrap_or(&cycle[0]);
        let start = cycle.iter().position(|&a| a == first).unwrap_or(0);
        let ordered: Vec<AgentId> = cycle[start..]
            .iter()
            .chain(&cycle[..start])
            .copied()
            .collect();
        let names: Vec<String> = ordered
            .iter()
            .chain(ordered.first())
            .map(|&a| format!("`{}`", self.model.agents[a].name))
            .collect();
        let agent = &self.model.agents[first];
        let mut diagnostic = Diagnostic::new(
            Code::DelegationCycle,
            format!("agents are each other's parents: {}", names.join(" → ")),
            Label::new(
                agent.parent_span.unwrap_or(agent.span),
                "this `parent` is part of the loop",
            ),
        )
        .with_help("a delegation chain must end at an agent without `parent`");
        for &member in &ordered[1..] {
            let other = &self.model.agents[member];
            if let Some(span) = other.parent_span {
                diagnostic = diagnostic.with_label(
                    span,
                    format!(
                        "`{}` is a delegate of `{}`",
                        other.name,
                        self.model.agents[other.parent.unwrap_or(member)].name
                    ),
                );
            }
        }
        self.report(diagnostic);
    }

    fn delegation(&mut self, id: AgentId) {
        let agent = &self.model.agents[id];
        let (Some(parent), Some(parent_span)) = (agent.parent, agent.parent_span) else {
            return;
        };
        if self.model.agents[parent].delegates.is_none() {
            let parent_agent = &self.model.agents[parent];
            self.report(
                Diagnostic::new(
                    Code::DelegationUndeclared,
                    format!("`{}` is a delegate of `{}`, which declares no `delegates` block", agent.name, parent_agent.name),
                    Label::new(parent_span, "delegation not allowed by the parent"),
                )
                .with_label(parent_agent.span, format!("`{}` has no `delegates` block", parent_agent.name))
                .with_help(format!(
                    "add `delegates {{ max_depth = 1  ttl = …  can … }}` to `{}`, bounding what its delegates may hold",
                    parent_agent.name
                )),
            );
            return;
        }
        let ancestors = self.model.ancestors(id);
        let mut reported_depth = false;
        let mut reported_ttl = false;
        let mut reported_rate = false;
        let mut reported_budget = false;
        let mut reported_grants: HashSet<Span> = HashSet::new();
        let mut found = Vec::new();
        for (distance, &ancestor) in ancestors.iter().enumerate() {
            let distance = distance as u32 + 1;
            let Some(ceiling) = &self.model.agents[ancestor].delegates else {
                continue;
            };
            let ancestor_name = &self.model.agents[ancestor].name;
            let agent = &self.model.agents[id];
            if distance > ceiling.max_depth && !reported_depth {
                reported_depth = true;
                found.push(
                    Diagnostic::new(
                        Code::DelegationExceeds,
                        format!(
                            "`{}` is {distance} levels below `{ancestor_name}`, whose delegates may be at most {} deep",
                            agent.name, ceiling.max_depth
                        ),
                        Label::new(parent_span, "too deep"),
                    )
                    .with_label(ceiling.max_depth_span.unwrap_or(ceiling.span), format!("`{ancestor_name}` allows depth {}", ceiling.max_depth))
                    .with_help(format!("raise `max_depth` in `{ancestor_name}`'s `delegates`, or attach `{}` higher up", agent.name)),
                );
            }
            if let Some(bound) = ceiling.rate.filter(|_| !reported_rate) {
                let over = match agent.rate {
                    Some(rate) => rate.exceeds(&bound).then(|| {
                        (
                            format!("`{}` may make {} requests, more than the {} its delegator `{ancestor_name}` allows", agent.name, rate.text(), bound.text()),
                            rate.span,
                        )
                    }),
                    None => Some((
                        format!("`{}` declares no `rate`, and its delegator `{ancestor_name}` bounds its delegates to {}", agent.name, bound.text()),
                        parent_span,
                    )),
                };
                if let Some((message, span)) = over {
                    reported_rate = true;
                    found.push(
                        Diagnostic::new(
                            Code::DelegationExceeds,
                            message,
                            Label::new(span, "beyond the ceiling"),
                        )
                        .with_label(
                            bound.span,
                            format!(
                                "`{ancestor_name}`'s delegates make at most {}",
                                bound.text()
                            ),
                        )
                        .with_help(format!("set `rate = {}` or less", bound.text())),
                    );
                }
            }
            if let Some(bound) = ceiling.budget.filter(|_| !reported_budget) {
                let over = match agent.budget {
                    Some(budget) => (budget.count > bound.count).then(|| {
                        (
                            format!("`{}` has a budget of {} requests a credential, more than the {} its delegator `{ancestor_name}` allows", agent.name, budget.count, bound.count),
                            budget.span,
                        )
                    }),
                    None => Some((
                        format!("`{}` declares no `budget`, and its delegator `{ancestor_name}` bounds its delegates' credentials to {} requests", agent.name, bound.count),
                        parent_span,
                    )),
                };
                if let Some((message, span)) = over {
                    reported_budget = true;
                    found.push(
                        Diagnostic::new(
                            Code::DelegationExceeds,
                            message,
                            Label::new(span, "beyond the ceiling"),
                        )
                        .with_label(
                            bound.span,
                            format!("`{ancestor_name}`'s delegates' credentials make at most {} requests", bound.count),
                        )
                        .with_help(format!("set `budget = {}` or less", bound.count)),
                    );
                }
            }
            if agent.ttl > ceiling.ttl && !reported_ttl {
                reported_ttl = true;
                found.push(
                    Diagnostic::new(
                        Code::DelegationExceeds,
                        format!("`{}` has ttl {}, more than the {} its delegator `{ancestor_name}` allows", agent.name, agent.ttl, ceiling.ttl),
                        Label::new(agent.ttl_span, "longer than the ceiling"),
                    )
                    .with_label(ceiling.ttl_span.unwrap_or(ceiling.span), format!("`{ancestor_name}`'s delegates live at most {}", ceiling.ttl))
                    .with_help(format!("set `ttl = {}` or less", ceiling.ttl)),
                );
            }
            for grant in &agent.grants {
                if reported_grants.contains(&grant.span) {
                    continue;
                }
                let kind = self.model.providers[grant.provider].kind;
                if let Some((action, resource)) =
                    access::first_uncovered(kind, &ceiling.grants, grant)
                {
                    reported_grants.insert(grant.span);
                    let provider = self.model.providers[grant.provider].address();
                    let mut diagnostic = Diagnostic::new(
                        Code::DelegationExceeds,
                        format!(
                            "`{}` leaks outside the ceiling of `{ancestor_name}`: {provider} `{action}` on `{resource}`{}",
                            agent.name,
                            placement_words(&grant.placement)
                        ),
                        Label::new(grant.span, "not within the delegation ceiling"),
                    )
                    .with_label(ceiling.span, format!("what `{ancestor_name}`'s delegates may hold"))
                    .with_help(format!("narrow the grant, or widen `{ancestor_name}`'s `delegates` to cover it"));
                    if !grant.via.is_empty() {
                        diagnostic
                            .message
                            .push_str(&format!(" (through scope `{}`)", grant.via.join("` → `")));
                    }
                    found.push(diagnostic);
                }
            }
        }
        for diagnostic in found {
            self.report(diagnostic);
        }
    }

    fn guardrail_checks(&mut self) {
        // One report per (grant, deny), naming every agent that holds it.
        let mut meets: BTreeMap<(Span, Span), (Vec<String>, String, String)> = BTreeMap::new();
        let mut found = Vec::new();
        let minting = self.model.all_minting_grants();
        for (id, agent) in self.model.agents.iter().enumerate() {
            for guardrail in &self.model.guardrails {
                if let Some((max_ttl, span)) = guardrail.max_ttl {
                    if agent.ttl > max_ttl {
                        found.push(
                            Diagnostic::new(
                                Code::GuardrailViolation,
                                format!(
                                    "`{}` has ttl {}, more than guardrail `{}` allows ({max_ttl})",
                                    agent.name, agent.ttl, guardrail.name
                                ),
                                Label::new(agent.ttl_span, "too long"),
                            )
                            .with_label(span, format!("`{}` sets the limit", guardrail.name))
                            .with_help(format!("set `ttl = {max_ttl}` or less")),
                        );
                    }
                }
                if let Some(span) = guardrail.require_expires {
                    if agent.expires.is_none() {
                        found.push(
                            Diagnostic::new(
                                Code::GuardrailViolation,
                                format!(
                                    "`{}` has no `expires`, which guardrail `{}` requires",
                                    agent.name, guardrail.name
                                ),
                                Label::new(agent.span, "no expiry date"),
                            )
                            .with_label(span, "required here")
                            .with_help("add `expires = YYYY-MM-DD`"),
                        );
                    }
                }
                if agent.retired || agent.frozen {
                    continue;
                }
                for grant in &agent.grants {
                    for deny in &guardrail.denies {
                        if let Some((action, resource)) = deny_meets(&self.model, deny, grant) {
                            let entry = meets.entry((grant.span, deny.span)).or_insert_with(|| {
                                (
                                    Vec::new(),
                                    guardrail.name.clone(),
                                    format!("`{action}` on `{resource}`"),
                                )
                            });
                            if !entry.0.contains(&agent.name) {
                                entry.0.push(agent.name.clone());
                            }
                        }
                    }
                }
                // What the agent holds without writing it: its delegates'
                // tokens, minted in the cluster.
                for (delegate, grant) in &minting[id] {
                    for deny in &guardrail.denies {
                        if deny_meets(&self.model, deny, grant).is_some() {
                            found.push(
                                Diagnostic::new(
                                    Code::GuardrailViolation,
                                    format!(
                                        "`{}` mints the tokens of its delegate `{}` (`create` on `serviceaccounts/token` named `{}`), which guardrail `{}` denies",
                                        agent.name,
                                        self.model.agents[*delegate].name,
                                        grant.resource_names.join("`, `"),
                                        guardrail.name
                                    ),
                                    Label::new(grant.span, "the delegate runs here"),
                                )
                                .with_label(deny.span, format!("`{}` denies this", guardrail.name))
                                .with_help("a parent mints the tokens of delegates that run in a cluster; run the delegate elsewhere, or narrow the guardrail"),
                            );
                        }
                    }
                }
            }
        }
        for ((grant_span, deny_span), (agents, guardrail, what)) in meets {
            let holders = agents
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ");
            found.push(
                Diagnostic::new(
                    Code::GuardrailViolation,
                    format!(
                        "grant meets guardrail `{guardrail}`: {what} is denied (held by {holders})"
                    ),
                    Label::new(grant_span, "denied by a guardrail"),
                )
                .with_label(deny_span, format!("`{guardrail}` denies this"))
                .with_help("remove or narrow the grant; guardrails cannot be waived"),
            );
        }
        for diagnostic in found {
            self.report(diagnostic);
        }
    }
}

/// The first (action, resource) of `grant` that `deny` forbids, if any.
pub(crate) fn deny_meets<'g>(
    model: &model::Model,
    deny: &model::Deny,
    grant: &'g model::Grant,
) -> Option<(&'g str, &'g str)> {
    if !deny.providers.selects(model, grant.provider)
        || !access::placement_meets(&deny.placement, &grant.placement)
    {
        return None;
    }
    let action = grant.actions.iter().find(|a| {
        deny.actions
            .iter()
            .any(|d| access::action_meets(deny.kind, a, d))
    })?;
    let resource = grant.resources.iter().find(|r| {
        deny.resources
            .iter()
            .any(|d| access::resource_meets(deny.kind, r, d))
    })?;
    Some((action, resource))
}

fn placement_words(placement: &Placement) -> String {
    match placement {
        Placement::None => String::new(),
        Placement::Namespace(namespace) => format!(" in namespace `{namespace}`"),
        Placement::Cluster => " in the whole cluster".to_string(),
    }
}
