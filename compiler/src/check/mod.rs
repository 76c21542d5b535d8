//! The checker: resolves names across every file of a project, checks each
//! form against what its provider offers, and builds the [`Model`]. Every
//! finding is reported; none stops the others.

mod agents;
mod memo;

pub use memo::Memo;

/// The fields each kind of block takes (for an editor's completion).
pub mod fields {
    pub use super::agents::{AGENT_FIELDS, DELEGATES_FIELDS, GUARDRAIL_FIELDS};
}
mod diagnostics;
mod grants;

use crate::diagnostic::{sort_in_source_order, Code, Diagnostic};
use crate::facts::ProviderKind;
use crate::model::{self, Model, ProviderSettings};
use crate::source::{SourceMap, Span};
use crate::syntax::ast::{self, ItemKind, Stmt, StmtKind, ValueKind};
use crate::syntax::parse_file;
use crate::values::{Date, Duration};
use std::collections::HashMap;

/// What the caller knows that the compiler may not find out for itself.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Today's date (UTC): agents whose `expires` is on or before it are retired.
    pub today: Date,
}

/// The result of checking a project: the model (complete when there are no
/// errors), the parsed files, and every diagnostic in source order.
#[derive(Debug, Clone)]
pub struct Checked {
    pub model: Model,
    pub files: Vec<Option<ast::SourceFile>>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses and checks every file of `sources`.
pub fn check(sources: &SourceMap, options: &CheckOptions) -> Checked {
    check_with(sources, options, 1)
}

/// As [`check`], parsing the files on up to `threads` threads (the caller
/// knows the machine); the result is the same for any number.
pub fn check_with(sources: &SourceMap, options: &CheckOptions, threads: usize) -> Checked {
    let parsed = parse_all(sources, threads);
    let (model, diagnostics) = check_parsed(&parsed, options);
    Checked {
        model,
        files: parsed.into_iter().map(Result::ok).collect(),
        diagnostics,
    }
}

/// As [`check`], from each file of a map already parsed, in the map's order
/// (by [`crate::syntax::parse_file`]), borrowed: an editor keeps the trees,
/// and parses again only the file that changed. The model, and every
/// finding in source order.
pub fn check_parsed<'a>(
    parsed: impl IntoIterator<Item = &'a Parsed>,
    options: &CheckOptions,
) -> (Model, Vec<Diagnostic>) {
    check_files(parsed.into_iter().map(|p| (p, None)), options, None)
}

/// As [`check_parsed`], with each file's text hash, reusing what `memo`
/// kept from the last check of the same workspace (see [`Memo`]): the
/// result is the same as [`check_parsed`]'s, found faster when little
/// changed. The memo is updated for the next check.
pub fn check_incremental<'a>(
    parsed: impl IntoIterator<Item = (&'a Parsed, u64)>,
    options: &CheckOptions,
    memo: &mut Memo,
) -> (Model, Vec<Diagnostic>) {
    check_files(
        parsed.into_iter().map(|(p, hash)| (p, Some(hash))),
        options,
        Some(memo),
    )
}

fn check_files<'a>(
    parsed: impl IntoIterator<Item = (&'a Parsed, Option<u64>)>,
    options: &CheckOptions,
    memo: Option<&mut Memo>,
) -> (Model, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut files = Vec::new();
    for (parsed, hash) in parsed {
        match parsed {
            Ok(parsed) => files.push((parsed, hash)),
            Err(error) => diagnostics.push(Diagnostic::clone(error)),
        }
    }
    let syntax_failed = !diagnostics.is_empty();
    let mut checker = Checker::new(options);
    // Taken for the check, and put back with what it kept.
    let mut memo = memo;
    checker.memo = memo.as_mut().map(|m| std::mem::take(&mut **m));
    checker.run(&files);
    if let (Some(memo), Some(kept)) = (memo, checker.memo.take()) {
        *memo = kept;
    }
    let mut found = checker.diagnostics;
    if syntax_failed {
        // A file that does not parse may hold the definitions that other
        // files refer to: do not guess at names or uses until it parses.
        found.retain(|d| !matches!(d.code, Code::UnknownName | Code::UnusedScope));
    }
    diagnostics.extend(found);
    sort_in_source_order(&mut diagnostics);
    (checker.model, diagnostics)
}

/// A file parsed, or its syntax error.
pub type Parsed = Result<ast::SourceFile, Box<Diagnostic>>;

/// Every file parsed, in the map's order: on `threads` threads, each
/// taking a run of consecutive files of about the same total length.
fn parse_all(sources: &SourceMap, threads: usize) -> Vec<Parsed> {
    let files: Vec<(crate::source::FileId, &crate::source::SourceFile)> = sources.files().collect();
    let parse = |run: &[(crate::source::FileId, &crate::source::SourceFile)]| -> Vec<Parsed> {
        run.iter()
            .map(|(id, file)| parse_file(*id, &file.text))
            .collect()
    };
    let threads = threads.clamp(1, files.len().max(1));
    if threads == 1 {
        return parse(&files);
    }
    let total: usize = files.iter().map(|(_, f)| f.text.len()).sum();
    let share = total.div_ceil(threads).max(1);
    let mut runs: Vec<&[(crate::source::FileId, &crate::source::SourceFile)]> = Vec::new();
    let (mut start, mut length) = (0, 0);
    for (index, (_, file)) in files.iter().enumerate() {
        length += file.text.len();
        if length >= share || index + 1 == files.len() {
            runs.push(&files[start..=index]);
            (start, length) = (index + 1, 0);
        }
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|run| {
                // The grammar recurses with nesting: the main thread's stack.
                std::thread::Builder::new()
                    .stack_size(8 << 20)
                    .spawn_scoped(scope, move || parse(run))
            })
            .collect();
        let mut parsed = Vec::with_capacity(files.len());
        for (run, handle) in runs.iter().zip(handles) {
            match handle {
                Ok(handle) => match handle.join() {
                    Ok(done) => parsed.extend(done),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                // No thread to be had: parsed here instead.
                Err(_) => parsed.extend(parse(run)),
            }
        }
        parsed
    })
}

pub(crate) struct Checker<'a> {
    today: Date,
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) model: Model,
    providers: HashMap<(ProviderKind, &'a str), model::ProviderId>,
    scopes: HashMap<&'a str, model::ScopeId>,
    agents: HashMap<&'a str, model::AgentId>,
    /// For each scope, the `include` names as written, to resolve after all
    /// scopes are known.
    scope_items: Vec<&'a ast::Item>,
    agent_items: Vec<&'a ast::Item>,
    /// Which scopes something uses, for `writ::unused_scope`.
    used_scopes: Vec<bool>,
    /// Per-scope include edges with the span of each `include` name.
    include_edges: Vec<Vec<(model::ScopeId, Span)>>,
    action_cache: HashMap<String, bool>,
    /// Where each scope's and agent's item is, when bodies may be reused.
    scope_keys: Vec<Option<memo::BodyKey>>,
    agent_keys: Vec<Option<memo::BodyKey>>,
    /// What an editor keeps between checks, while checking.
    memo: Option<Memo>,
    /// Every scope marked used, in order (what a body used is the part
    /// its check added).
    uses: Vec<model::ScopeId>,
    /// Every scope whose body another item's check read (a `delegates`
    /// block copies its grants), in order.
    reads: Vec<model::ScopeId>,
    /// Which scopes' bodies this check reused unchanged.
    reused_scopes: Vec<bool>,
}

impl<'a> Checker<'a> {
    fn new(options: &CheckOptions) -> Checker<'a> {
        Checker {
            today: options.today,
            diagnostics: Vec::new(),
            model: Model::default(),
            providers: HashMap::new(),
            scopes: HashMap::new(),
            agents: HashMap::new(),
            scope_items: Vec::new(),
            agent_items: Vec::new(),
            used_scopes: Vec::new(),
            include_edges: Vec::new(),
            action_cache: HashMap::new(),
            scope_keys: Vec::new(),
            agent_keys: Vec::new(),
            memo: None,
            uses: Vec::new(),
            reads: Vec::new(),
            reused_scopes: Vec::new(),
        }
    }

    pub(crate) fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn run(&mut self, files: &[(&'a ast::SourceFile, Option<u64>)]) {
        let items: Vec<(&'a ast::Item, Option<memo::BodyKey>)> = files
            .iter()
            .flat_map(|(file, hash)| {
                file.items.iter().enumerate().map(move |(ordinal, item)| {
                    let key = hash.map(|hash| memo::BodyKey::new(item.span.file, hash, ordinal));
                    (item, key)
                })
            })
            .collect();
        // Declarations first, so that every reference can be resolved
        // whatever the order of files and items.
        for &(item, key) in &items {
            self.declare(item, key);
        }
        let items: Vec<&'a ast::Item> = items.into_iter().map(|(item, _)| item).collect();
        self.settle_context(&items);
        for index in 0..self.scope_items.len() {
            self.scope_body(index);
        }
        self.include_cycles();
        for index in 0..self.agent_items.len() {
            self.agent_body(index);
        }
        let mut guardrails = Vec::new();
        let mut tests = Vec::new();
        for item in &items {
            match &item.kind {
                ItemKind::Guardrail { name, body } => {
                    if let Some(guardrail) = self.guardrail(item, name, body, &guardrails) {
                        guardrails.push(guardrail);
                    }
                }
                ItemKind::Test { name, body } => {
                    if let Some(test) = self.test(name, body, &tests) {
                        tests.push(test);
                    }
                }
                _ => {}
            }
        }
        self.model.guardrails = guardrails;
        self.model.tests = tests;
        self.effective_grants();
        self.agent_checks();
        self.unused_scopes();
        self.prune_memo();
    }

    fn declare(&mut self, item: &'a ast::Item, key: Option<memo::BodyKey>) {
        let docs = docs_text(&item.docs);
        match &item.kind {
            ItemKind::Provider { kind, name, body } => {
                let Some(provider_kind) = ProviderKind::parse(&kind.text) else {
                    self.report(
                        diagnostics::unknown_name(
                            "provider kind",
                            &kind.text,
                            kind.span,
                            ProviderKind::ALL.iter().map(|k| k.as_str()),
                        )
                        .with_help(
                            match crate::suggest::closest(
                                &kind.text,
                                ProviderKind::ALL.iter().map(|k| k.as_str()),
                            ) {
                                Some(best) => format!("did you mean `{best}`?"),
                                None => {
                                    "provider kinds are `aws`, `gcp`, `kubernetes` and `github`"
                                        .to_string()
                                }
                            },
                        ),
                    );
                    return;
                };
                if let Some(&first) = self.providers.get(&(provider_kind, name.text.as_str())) {
                    let first_span = self.model.providers[first].span;
                    self.report(diagnostics::duplicate(
                        "provider",
                        &format!("{}.{}", kind.text, name.text),
                        name.span,
                        first_span,
                    ));
                    return;
                }
                let Some(settings) = self.provider_settings(provider_kind, item, body) else {
                    return;
                };
                self.providers.insert(
                    (provider_kind, name.text.as_str()),
                    self.model.providers.len(),
                );
                self.model.providers.push(model::Provider {
                    kind: provider_kind,
                    name: name.text.clone(),
                    docs,
                    span: name.span,
                    settings,
                });
            }
            ItemKind::Scope { name, .. } => {
                if let Some(&first) = self.scopes.get(name.text.as_str()) {
                    let first_span = self.model.scopes[first].span;
                    self.report(diagnostics::duplicate(
                        "scope", &name.text, name.span, first_span,
                    ));
                    return;
                }
                self.scopes.insert(&name.text, self.model.scopes.len());
                self.scope_items.push(item);
                self.scope_keys.push(key);
                self.used_scopes.push(false);
                self.reused_scopes.push(false);
                self.include_edges.push(Vec::new());
                self.model.scopes.push(model::Scope {
                    name: name.text.clone(),
                    docs,
                    span: name.span,
                    includes: Vec::new(),
                    grants: Vec::new(),
                });
            }
            ItemKind::Agent { name, .. } => {
                if let Some(&first) = self.agents.get(name.text.as_str()) {
                    let first_span = self.model.agents[first].span;
                    self.report(diagnostics::duplicate(
                        "agent", &name.text, name.span, first_span,
                    ));
                    return;
                }
                self.agents.insert(&name.text, self.model.agents.len());
                self.agent_items.push(item);
                self.agent_keys.push(key);
                self.model.agents.push(model::Agent {
                    name: name.text.clone(),
                    docs,
                    span: name.span,
                    owner: String::new(),
                    ttl: Duration(3600),
                    ttl_span: name.span,
                    expires: None,
                    retired: false,
                    expires_with: None,
                    parent: None,
                    parent_span: None,
                    frozen: false,
                    rate: None,
                    budget: None,
                    runs_on: Vec::new(),
                    adopts: Vec::new(),
                    scopes: Vec::new(),
                    grants: Vec::new(),
                    delegates: None,
                });
            }
            ItemKind::Guardrail { .. } | ItemKind::Test { .. } => {}
        }
    }

    fn provider_settings(
        &mut self,
        kind: ProviderKind,
        item: &'a ast::Item,
        body: &'a [Stmt],
    ) -> Option<ProviderSettings> {
        let article = if kind.to_string().starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        let what = format!("{article} `{kind}` provider");
        let rules = kind.rules();
        let fields = self.fields(body, rules.fields, &what);
        let Some(required_field) = fields.get(rules.identity) else {
            if agents::misspelt(body, rules.fields, rules.identity) {
                return None;
            }
            self.report(diagnostics::missing_field(
                rules.identity,
                &what,
                item.head,
                rules.example,
            ));
            return None;
        };
        let (value, span) = self.string_field(required_field)?;
        if !(rules.valid_identity)(&value) {
            let (message, help) = rules.invalid_identity;
            self.report(
                diagnostics::invalid_value(format!("`{value}`: {message}"), span, "invalid value")
                    .with_help(help),
            );
            return None;
        }
        Some(match kind {
            ProviderKind::Aws => {
                let partition = match fields.get("partition") {
                    Some(field) => {
                        let (partition, span) = self.string_field(field)?;
                        const PARTITIONS: &[&str] = &[
                            "aws",
                            "aws-cn",
                            "aws-us-gov",
                            "aws-iso",
                            "aws-iso-b",
                            "aws-iso-e",
                            "aws-iso-f",
                            "aws-eusc",
                        ];
                        if !PARTITIONS.contains(&partition.as_str()) {
                            self.report(
                                diagnostics::invalid_value(
                                    format!("`{partition}` is not an AWS partition"),
                                    span,
                                    "unknown partition",
                                )
                                .with_optional_help(
                                    crate::suggest::closest(&partition, PARTITIONS.iter().copied())
                                        .map(|p| format!("did you mean `{p}`?")),
                                ),
                            );
                        }
                        partition
                    }
                    None => "aws".to_string(),
                };
                let issuer = match fields.get("issuer") {
                    Some(field) => {
                        let (issuer, span) = self.string_field(field)?;
                        if !crate::facts::aws::is_role_arn(&issuer, &partition) {
                            self.report(
                                diagnostics::invalid_value(
                                    format!("`{issuer}` is not an IAM role's ARN in the `{partition}` partition"),
                                    span,
                                    "expected a role's ARN",
                                )
                                .with_help("the issuer is the role `writ serve` runs as, which assumes the agents' roles to issue their credentials: `arn:aws:iam::123456789012:role/writ-serve`"),
                            );
                            return None;
                        }
                        Some(issuer)
                    }
                    None => None,
                };
                ProviderSettings::Aws {
                    account: value,
                    partition,
                    issuer,
                }
            }
            ProviderKind::Gcp => ProviderSettings::Gcp { project: value },
            ProviderKind::Kubernetes => {
                let oidc_issuer = match fields.get("oidc_issuer") {
                    Some(field) => {
                        let (issuer, span) = self.string_field(field)?;
                        let host = issuer.strip_prefix("https://").unwrap_or_default();
                        if host.is_empty()
                            || host.starts_with('/')
                            || issuer.contains(char::is_whitespace)
                        {
                            self.report(
                                diagnostics::invalid_value(
                                    format!("`{issuer}` is not an OIDC issuer URL"),
                                    span,
                                    "expected an https URL",
                                )
                                .with_help("the issuer is an https URL, as `aws eks describe-cluster` shows it"),
                            );
                        }
                        Some(issuer)
                    }
                    None => None,
                };
                let workload_pool = match fields.get("workload_pool") {
                    Some(field) => {
                        let (pool, span) = self.string_field(field)?;
                        let valid = pool
                            .strip_suffix(".svc.id.goog")
                            .is_some_and(crate::facts::gcp::is_project_id);
                        if !valid {
                            self.report(
                                diagnostics::invalid_value(
                                    format!("`{pool}` is not a GKE workload identity pool"),
                                    span,
                                    "expected `PROJECT_ID.svc.id.goog`",
                                )
                                .with_help("the pool is the cluster's project id and `.svc.id.goog`, as `gcloud container clusters describe` shows it under `workloadIdentityConfig`"),
                            );
                        }
                        Some(pool)
                    }
                    None => None,
                };
                ProviderSettings::Kubernetes {
                    cluster: value,
                    oidc_issuer,
                    workload_pool,
                }
            }
            ProviderKind::Github => ProviderSettings::Github { org: value },
        })
    }

    /// The fields of a body, checked against the names the item allows.
    /// Unknown and repeated fields are reported; the first of each is kept.
    pub(crate) fn fields(
        &mut self,
        body: &'a [Stmt],
        allowed: &[&str],
        item: &str,
    ) -> HashMap<&'a str, &'a ast::Field> {
        let mut found: HashMap<&'a str, &'a ast::Field> = HashMap::new();
        for stmt in body {
            let StmtKind::Field(field) = &stmt.kind else {
                continue;
            };
            let name = field.name.text.as_str();
            if !allowed.contains(&name) {
                self.report(diagnostics::unknown_field(
                    name,
                    field.name.span,
                    item,
                    allowed,
                ));
                continue;
            }
            if let Some(first) = found.get(name) {
                self.report(diagnostics::set_twice(
                    name,
                    field.name.span,
                    first.name.span,
                ));
                continue;
            }
            found.insert(name, field);
        }
        found
    }

    pub(crate) fn string_field(&mut self, field: &ast::Field) -> Option<(String, Span)> {
        match &field.value.kind {
            ValueKind::String(text) => Some((text.clone(), field.value.span)),
            other => {
                let name = &field.name.text;
                self.report(diagnostics::wrong_type(
                    name,
                    "a string",
                    other.describe(),
                    field.value.span,
                    "\"…\"",
                ));
                None
            }
        }
    }

    /// `budget = 1000`: a whole number of requests, from 1.
    pub(crate) fn budget_field(&mut self, field: &ast::Field) -> Option<crate::model::Budget> {
        let span = field.value.span;
        match &field.value.kind {
            ValueKind::Integer(text) => {
                match text.parse::<u64>() {
                    Ok(count) if count >= 1 => Some(crate::model::Budget { count, span }),
                    _ => {
                        self.report(
                        diagnostics::invalid_value(
                            format!("`budget = {text}`: a budget is a whole number of requests, from 1"),
                            span,
                            "invalid budget",
                        )
                        .with_help("to stop an agent, freeze it"),
                    );
                        None
                    }
                }
            }
            other => {
                self.report(diagnostics::wrong_type(
                    &field.name.text,
                    "a whole number",
                    other.describe(),
                    span,
                    "1000",
                ));
                None
            }
        }
    }

    /// `rate = 600/min`.
    pub(crate) fn rate_field(&mut self, field: &ast::Field) -> Option<crate::model::Rate> {
        let span = field.value.span;
        let text = match &field.value.kind {
            ValueKind::Rate(text) | ValueKind::Malformed(text) => text,
            other => {
                self.report(diagnostics::wrong_type(
                    &field.name.text,
                    "a rate",
                    other.describe(),
                    span,
                    "600/min",
                ));
                return None;
            }
        };
        match crate::model::Rate::parse(text, span) {
            Ok(rate) => Some(rate),
            Err(reason) => {
                self.report(
                    diagnostics::invalid_value(
                        format!("`{text}` is not a valid rate: {reason}"),
                        span,
                        "invalid rate",
                    )
                    .with_help("rates are written like `600/min`, `10/s` or `5000/h`"),
                );
                None
            }
        }
    }

    pub(crate) fn duration_field(&mut self, field: &ast::Field) -> Option<(Duration, Span)> {
        let span = field.value.span;
        let text = match &field.value.kind {
            ValueKind::Duration(text) | ValueKind::Malformed(text) | ValueKind::Integer(text) => {
                text
            }
            other => {
                self.report(diagnostics::wrong_type(
                    &field.name.text,
                    "a duration",
                    other.describe(),
                    span,
                    "1h",
                ));
                return None;
            }
        };
        match Duration::parse(text) {
            Ok(duration) => Some((duration, span)),
            Err(reason) => {
                self.report(
                    diagnostics::invalid_value(
                        format!("`{text}` is not a valid duration: {reason}"),
                        span,
                        "invalid duration",
                    )
                    .with_help("durations are written like `15m`, `1h30m` or `90d`"),
                );
                None
            }
        }
    }

    pub(crate) fn date_field(&mut self, field: &ast::Field) -> Option<(Date, Span)> {
        let span = field.value.span;
        let text = match &field.value.kind {
            ValueKind::Date(text) | ValueKind::Malformed(text) | ValueKind::Integer(text) => text,
            ValueKind::String(text) => text,
            other => {
                self.report(diagnostics::wrong_type(
                    &field.name.text,
                    "a date",
                    other.describe(),
                    span,
                    "2027-06-30",
                ));
                return None;
            }
        };
        match Date::parse(text) {
            Ok(date) => {
                if matches!(field.value.kind, ValueKind::String(_)) {
                    self.report(
                        diagnostics::invalid_value(
                            format!("`{}` takes a date, not a string", field.name.text),
                            span,
                            "a quoted date",
                        )
                        .with_help(format!(
                            "write it without quotes: `{} = {text}`",
                            field.name.text
                        )),
                    );
                    return None;
                }
                Some((date, span))
            }
            Err(reason) => {
                self.report(
                    diagnostics::invalid_value(
                        format!("`{text}` is not a valid date: {reason}"),
                        span,
                        "invalid date",
                    )
                    .with_help("dates are written `YYYY-MM-DD`, as in `2027-06-30`"),
                );
                None
            }
        }
    }

    pub(crate) fn bool_field(&mut self, field: &ast::Field) -> Option<(bool, Span)> {
        match field.value.kind {
            ValueKind::Bool(value) => Some((value, field.value.span)),
            ref other => {
                self.report(diagnostics::wrong_type(
                    &field.name.text,
                    "`true` or `false`",
                    other.describe(),
                    field.value.span,
                    "true",
                ));
                None
            }
        }
    }

    /// Resolves `kind.name` to a declared provider.
    pub(crate) fn resolve_provider(
        &mut self,
        reference: &ast::ProviderRef,
    ) -> Option<model::ProviderId> {
        let kind = self.resolve_provider_kind(&reference.kind)?;
        let name = reference.name.as_ref()?;
        if let Some(&id) = self.providers.get(&(kind, name.text.as_str())) {
            return Some(id);
        }
        let candidates: Vec<String> = self
            .model
            .providers
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.name.clone())
            .collect();
        let mut diagnostic = diagnostics::unknown_name(
            "provider",
            &format!("{kind}.{}", name.text),
            reference.span,
            std::iter::empty(),
        );
        diagnostic.help =
            match crate::suggest::closest(&name.text, candidates.iter().map(String::as_str)) {
                Some(best) => Some(format!("did you mean `{kind}.{best}`?")),
                None if candidates.is_empty() => Some(format!(
                    "declare it: `provider {kind} {} {{ … }}`",
                    name.text
                )),
                None => Some(format!(
                    "declared `{kind}` providers: {}",
                    candidates
                        .iter()
                        .map(|c| format!("`{kind}.{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
        self.report(diagnostic);
        None
    }

    pub(crate) fn resolve_provider_kind(&mut self, kind: &ast::Ident) -> Option<ProviderKind> {
        let resolved = ProviderKind::parse(&kind.text);
        if resolved.is_none() {
            self.report(diagnostics::unknown_name(
                "provider kind",
                &kind.text,
                kind.span,
                ProviderKind::ALL.iter().map(|k| k.as_str()),
            ));
        }
        resolved
    }

    pub(crate) fn resolve_scope(&mut self, name: &ast::Ident) -> Option<model::ScopeId> {
        if let Some(&id) = self.scopes.get(name.text.as_str()) {
            self.used_scopes[id] = true;
            self.uses.push(id);
            return Some(id);
        }
        // Declaration order, so that ties between suggestions break the same
        // way on every run.
        let names: Vec<String> = self.model.scopes.iter().map(|s| s.name.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        // The scope the user most likely meant is not "unused": saying so
        // would be a second, misleading finding for one typo.
        if let Some(meant) = crate::suggest::closest(&name.text, names.iter().copied()) {
            let id = self.scopes[meant];
            self.used_scopes[id] = true;
            self.uses.push(id);
        }
        self.report(diagnostics::unknown_name(
            "scope",
            &name.text,
            name.span,
            names.into_iter(),
        ));
        None
    }

    pub(crate) fn resolve_agent(&mut self, name: &ast::Ident) -> Option<model::AgentId> {
        if let Some(&id) = self.agents.get(name.text.as_str()) {
            return Some(id);
        }
        let names: Vec<String> = self.model.agents.iter().map(|a| a.name.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.report(diagnostics::unknown_name(
            "agent",
            &name.text,
            name.span,
            names.into_iter(),
        ));
        None
    }

    fn check_scope_body(&mut self, index: usize) {
        let item = self.scope_items[index];
        let ItemKind::Scope { body, .. } = &item.kind else {
            return;
        };
        self.fields(body, &[], "a scope");
        let mut grants = Vec::new();
        for stmt in body {
            match &stmt.kind {
                StmtKind::Include(names) => {
                    for name in names {
                        if let Some(target) = self.resolve_scope(name) {
                            self.include_edges[index].push((target, name.span));
                            self.model.scopes[index].includes.push(target);
                        }
                    }
                }
                StmtKind::Grant(grant) => {
                    if let Some(grant) = self.grant(grant, stmt, grants::Role::Access) {
                        grants.push(grant);
                    }
                }
                _ => {}
            }
        }
        self.model.scopes[index].grants = grants;
    }

    /// Reports each cycle of `include` once, at the include that closes it.
    fn include_cycles(&mut self) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let count = self.model.scopes.len();
        let mut marks = vec![Mark::New; count];
        for start in 0..count {
            if marks[start] != Mark::New {
                continue;
            }
            // Iterative depth-first search; the stack holds (scope, next edge).
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            marks[start] = Mark::Active;
            while let Some(&mut (scope, ref mut edge)) = stack.last_mut() {
                if let Some(&(target, span)) = self.include_edges[scope].get(*edge) {
                    *edge += 1;
                    match marks[target] {
                        Mark::New => {
                            marks[target] = Mark::Active;
                            stack.push((target, 0));
                        }
                        Mark::Active => {
                            let position =
                                stack.iter().position(|(s, _)| *s == target).unwrap_or(0);
                            let cycle: Vec<usize> =
                                stack[position..].iter().map(|(s, _)| *s).collect();
                            self.report_include_cycle(&cycle, span);
                        }
                        Mark::Done => {}
                    }
                } else {
                    marks[scope] = Mark::Done;
                    stack.pop();
                }
            }
        }
    }

    fn report_include_cycle(&mut self, cycle: &[usize], closing: Span) {
        let names: Vec<String> = cycle
            .iter()
            .chain(cycle.first())
            .map(|&s| format!("`{}`", self.model.scopes[s].name))
            .collect();
        let mut diagnostic = Diagnostic::new(
            Code::IncludeCycle,
            format!("scopes include each other in a loop: {}", names.join(" → ")),
            crate::diagnostic::Label::new(closing, "this include closes the loop"),
        )
        .with_help("remove one of these `include`s; a scope cannot contain itself");
        for window in cycle.windows(2) {
            if let Some(&(_, span)) = self.include_edges[window[0]]
                .iter()
                .find(|(target, _)| *target == window[1])
            {
                diagnostic = diagnostic.with_label(
                    span,
                    format!(
                        "`{}` includes `{}`",
                        self.model.scopes[window[0]].name, self.model.scopes[window[1]].name
                    ),
                );
            }
        }
        self.report(diagnostic);
    }

    fn unused_scopes(&mut self) {
        for (id, used) in self.used_scopes.clone().into_iter().enumerate() {
            if !used {
                let scope = &self.model.scopes[id];
                let diagnostic = Diagnostic::new(
                    Code::UnusedScope,
                    format!("scope `{}` is never used", scope.name),
                    crate::diagnostic::Label::new(scope.span, "no agent or scope uses this"),
                )
                .with_help(format!(
                    "grant it to an agent with `can {}`, or remove it",
                    scope.name
                ));
                self.report(diagnostic);
            }
        }
    }

    fn test(
        &mut self,
        name: &ast::Str,
        body: &'a [Stmt],
        earlier: &[model::Test],
    ) -> Option<model::Test> {
        if let Some(first) = earlier.iter().find(|t| t.name == name.value) {
            self.report(diagnostics::duplicate(
                "test",
                &name.value,
                name.span,
                first.span,
            ));
            return None;
        }
        let mut expectations = Vec::new();
        for stmt in body {
            let StmtKind::Expect(expect) = &stmt.kind else {
                continue;
            };
            let agent = self.resolve_agent(&expect.agent);
            let provider = self.resolve_provider(&expect.provider);
            let (Some(agent), Some(provider)) = (agent, provider) else {
                continue;
            };
            let kind = self.model.providers[provider].kind;
            if !self.expectation_action(kind, &expect.action) {
                continue;
            }
            let placement = match (&expect.place, kind) {
                (Some(place), ProviderKind::Kubernetes) => match &place.kind {
                    ast::QualifierKind::Namespace(namespace) => {
                        model::Placement::Namespace(namespace.value.clone())
                    }
                    _ => model::Placement::Cluster,
                },
                (None, ProviderKind::Kubernetes) => model::Placement::Cluster,
                (Some(place), _) => {
                    self.report(diagnostics::unsupported(
                        format!(
                            "`in` places a request in a Kubernetes namespace; `{kind}` has none"
                        ),
                        place.span,
                        "not a Kubernetes provider",
                        "remove it",
                    ));
                    continue;
                }
                (None, _) => model::Placement::None,
            };
            if let (Some(named), false) = (&expect.named, kind == ProviderKind::Kubernetes) {
                self.report(diagnostics::unsupported(
                    format!("`named` asks about one Kubernetes object; `{kind}` names objects in the resource itself"),
                    named.span,
                    "not a Kubernetes provider",
                    "remove it, and put the object in the resource",
                ));
                continue;
            }
            if let Some(named) = expect
                .named
                .as_ref()
                .filter(|n| n.value.is_empty() || n.value.contains(['*', '?']))
            {
                // Asked about an object named `*`, a `cannot` would pass
                // however many objects the agent reaches.
                self.report(
                    diagnostics::invalid_value(
                        format!("`named \"{}\"`: an `expect` asks about one object, by its whole name", named.value),
                        named.span,
                        "not one object's name",
                    )
                    .with_help("name one object, or leave `named` out to ask about the resource as a whole"),
                );
                continue;
            }
            if kind == ProviderKind::Kubernetes {
                let text = &expect.resource.value;
                match crate::facts::kubernetes::ResourceRef::parse(text) {
                    Ok(reference) if reference.is_concrete() => {}
                    Ok(_) => {
                        self.report(diagnostics::unsupported(
                            "an `expect` asks about one resource, not a pattern",
                            expect.resource.span,
                            "wildcard in an expectation",
                            "name one resource, such as `\"secrets\"` or `\"deployments.apps\"`",
                        ));
                        continue;
                    }
                    Err(error) => {
                        let (message, help) = error.explain(text);
                        self.report(
                            diagnostics::invalid_value(
                                message,
                                expect.resource.span,
                                "not a resource",
                            )
                            .with_help(help),
                        );
                        continue;
                    }
                }
            } else if expect.resource.value.contains(['*', '?']) {
                // A request's resource is read literally: a wildcard here
                // would ask about an object named `*`, and a `cannot` would
                // pass however much the agent may reach.
                self.report(diagnostics::unsupported(
                    "an `expect` asks about one resource, not a pattern",
                    expect.resource.span,
                    "wildcard in an expectation",
                    "name one resource, such as an object's whole ARN",
                ));
                continue;
            }
            expectations.push(model::Expectation {
                agent,
                allowed: expect.allowed,
                provider,
                action: expect.action.text.clone(),
                resource: expect.resource.value.clone(),
                placement,
                name: expect.named.as_ref().map(|n| n.value.clone()),
                span: stmt.span,
            });
        }
        Some(model::Test {
            name: name.value.clone(),
            span: name.span,
            expectations,
        })
    }
}

pub(crate) fn docs_text(docs: &[ast::DocLine]) -> String {
    docs.iter()
        .map(|line| line.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_on_threads_changes_nothing() {
        let mut sources = SourceMap::new();
        sources.add(
            "providers.writ",
            "provider aws prod {\n  account = \"123456789012\"\n}\n",
        );
        for i in 0..7 {
            let text = if i == 3 {
                // A file that does not parse, among the others.
                "agent broken {\n  ttl = \n}\n".to_string()
            } else {
                format!(
                    "agent a{i} {{\n  owner = \"team\"\n  ttl = 1h\n  runs_on aws.prod service \"lambda.amazonaws.com\"\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::b{i}/*\"\n}}\n"
                )
            };
            sources.add(format!("team-{i}.writ"), text);
        }
        let options = CheckOptions {
            today: Date {
                year: 2026,
                month: 11,
                day: 29,
            },
        };
        let alone = check(&sources, &options);
        assert!(alone.has_errors());
        for threads in [2, 3, 8, 100] {
            let shared = check_with(&sources, &options, threads);
            assert_eq!(
                format!("{:?}", shared),
                format!("{:?}", alone),
                "{threads} threads"
            );
        }
    }
}
