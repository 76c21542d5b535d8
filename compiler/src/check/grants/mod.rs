//! Checking one grant (or guardrail deny) against what its provider offers:
//! actions, resources, qualifiers, conditions, and the lints a grant may
//! waive. What is particular to one provider kind lives in a file of its own
//! beside this one; this file dispatches to them.

mod aws;
mod escalation;
mod gcp;
mod github;
mod kubernetes;

use super::{diagnostics, docs_text, Checker};
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::{self, ProviderKind};
use crate::model::{self, Placement, ProviderSettings};
use crate::pattern;
use crate::source::Span;
use crate::syntax::ast::{self, ConditionOp, QualifierKind, Stmt, ValueKind};

impl<'a> Checker<'a> {
    pub(crate) fn grant(
        &mut self,
        grant: &'a ast::Grant,
        stmt: &'a Stmt,
        role: Role,
    ) -> Option<model::Grant> {
        let waivers = self.waivers(&grant.waivers, GRANT_LINTS, "a grant");
        let provider_id = self.resolve_provider(&grant.provider)?;
        let provider = self.model.providers[provider_id].clone();
        let lint = |code: Code| role == Role::Access && !waivers.iter().any(|w| w.lint == code);
        let mut ok = true;
        for action in &grant.actions {
            ok &= self.action(provider.kind, action, lint(Code::WildcardAction));
        }
        if !ok {
            // Unknown actions make resource checks guesswork.
            self.qualifiers(provider.kind, grant);
            return None;
        }
        let (placement, resource_names) = self.qualifiers(provider.kind, grant)?;
        self.conditions(provider.kind, grant);
        let resources_ok = match &provider.settings {
            ProviderSettings::Aws {
                account, partition, ..
            } => self.aws_resources(grant, account, partition, lint(Code::WildcardResource)),
            ProviderSettings::Kubernetes { .. } => {
                self.kubernetes_resources(grant, &placement, lint(Code::WildcardResource))
            }
            ProviderSettings::Github { org } => {
                self.github_resources(grant, org, lint(Code::WildcardResource))
            }
            ProviderSettings::Gcp { .. } => self.gcp_resources(grant, lint(Code::WildcardResource)),
        };
        if lint(Code::PrivilegeEscalation) {
            self.escalation(&provider, grant);
        }
        if !resources_ok {
            return None;
        }
        if provider.kind == ProviderKind::Kubernetes && !resource_names.is_empty() {
            self.names_restrictable(grant);
        }
        let keep = self.keep(grant);
        let rate = self.grant_rate(grant, role);
        Some(model::Grant {
            provider: provider_id,
            actions: grant.actions.iter().map(|a| a.text.clone()).collect(),
            resources: grant.resources.iter().map(|r| r.value.clone()).collect(),
            placement,
            resource_names,
            conditions: grant
                .conditions
                .iter()
                .map(|c| model::Condition {
                    key: c.key.text.clone(),
                    op: c.op,
                    values: condition_values(&c.value),
                })
                .collect(),
            waivers,
            keep,
            rate,
            docs: docs_text(&stmt.docs),
            span: stmt.span,
            via: Vec::new(),
        })
    }

    /// A grant's `@rate(100/min)`: at most one, a valid rate, on access
    /// (a ceiling's grants bound what delegates hold; `rate` in the
    /// `delegates` block bounds how often).
    fn grant_rate(&mut self, grant: &ast::Grant, role: Role) -> Option<model::Rate> {
        let mut found: Option<(&ast::GrantRate, Option<model::Rate>)> = None;
        for rate in &grant.rates {
            if let Some((first, _)) = found {
                self.report(diagnostics::set_twice("@rate", rate.span, first.span));
                continue;
            }
            if role == Role::Ceiling {
                self.report(
                    diagnostics::invalid_value(
                        "a grant of a `delegates` ceiling takes no `@rate`",
                        rate.span,
                        "a bound, not access",
                    )
                    .with_help("set `rate = …` in the `delegates` block, or `@rate(…)` on the delegate's own grant"),
                );
                continue;
            }
            let parsed = match model::Rate::parse(&rate.text, rate.value_span) {
                Ok(parsed) => Some(parsed),
                Err(reason) => {
                    self.report(
                        diagnostics::invalid_value(
                            format!("`{}` is not a valid rate: {reason}", rate.text),
                            rate.value_span,
                            "invalid rate",
                        )
                        .with_help("rates are written like `600/min`, `10/s` or `5000/h`"),
                    );
                    None
                }
            };
            found = Some((rate, parsed));
        }
        found.and_then(|(_, parsed)| parsed)
    }

    /// A grant's `@keep("reason")`: at most one, with a reason.
    fn keep(&mut self, grant: &ast::Grant) -> Option<String> {
        let mut kept: Option<&ast::Keep> = None;
        for keep in &grant.keeps {
            if let Some(first) = kept {
                self.report(diagnostics::set_twice("@keep", keep.span, first.span));
                continue;
            }
            if keep.reason.value.trim().is_empty() {
                self.report(
                    diagnostics::invalid_value("`@keep` needs a reason", keep.reason.span, "empty reason")
                        .with_help("say why `writ tighten` must leave this grant as it is (a yearly job, a break-glass path)"),
                );
                continue;
            }
            kept = Some(keep);
        }
        kept.map(|k| k.reason.value.clone())
    }

    /// The waivers written on a grant or a `runs_on` (`what`), for the lints
    /// that can be said there (`lints`).
    pub(crate) fn waivers(
        &mut self,
        written: &[ast::Waiver],
        lints: &[Code],
        what: &str,
    ) -> Vec<model::Waiver> {
        let mut waivers = Vec::new();
        for waiver in written {
            let Some(code) = Code::from_name(&waiver.lint.text) else {
                let lints = Code::ALL
                    .iter()
                    .filter(|c| c.is_waivable())
                    .map(|c| c.short_name());
                self.report(diagnostics::unknown_name(
                    "lint",
                    &waiver.lint.text,
                    waiver.lint.span,
                    lints,
                ));
                continue;
            };
            if !lints.contains(&code) {
                let names: Vec<String> = lints
                    .iter()
                    .map(|c| format!("`{}`", c.short_name()))
                    .collect();
                let list = match names.as_slice() {
                    [one] => one.clone(),
                    [init @ .., last] => format!("{} and {last}", init.join(", ")),
                    [] => String::new(),
                };
                let (message, label) = if code.is_waivable() {
                    (
                        format!("`{code}` is not a lint of {what}"),
                        "not a lint of this",
                    )
                } else {
                    (format!("`{code}` cannot be waived"), "not a waivable lint")
                };
                self.report(
                    diagnostics::invalid_value(message, waiver.lint.span, label).with_help(
                        if lints.len() == 1 {
                            format!("only the lint {list} can be waived on {what}")
                        } else {
                            format!("only the lints {list} can be waived")
                        },
                    ),
                );
                continue;
            }
            if waiver.reason.value.trim().is_empty() {
                self.report(
                    diagnostics::invalid_value(
                        "a waiver needs a reason",
                        waiver.reason.span,
                        "empty reason",
                    )
                    .with_help("say why this grant is acceptable; the reason shows in plans"),
                );
                continue;
            }
            waivers.push(model::Waiver {
                lint: code,
                reason: waiver.reason.value.clone(),
            });
        }
        waivers
    }

    /// Checks one action for its provider kind; `false` if it is unknown.
    pub(crate) fn action(
        &mut self,
        kind: ProviderKind,
        action: &ast::Ident,
        lint_wildcard: bool,
    ) -> bool {
        let text = action.text.as_str();
        let known = match kind {
            ProviderKind::Aws => self.aws_action(action),
            ProviderKind::Kubernetes => self.kubernetes_action(action),
            ProviderKind::Github => self.github_action(action),
            ProviderKind::Gcp => self.gcp_action(action),
        };
        if known && lint_wildcard && pattern::has_wildcard(text) {
            self.report(
                Diagnostic::new(
                    Code::WildcardAction,
                    format!("`{text}` grants every action it matches, including ones added later"),
                    Label::new(action.span, "wildcard action"),
                )
                .with_help("list the actions the agent needs, or accept it with `@waive(wildcard_action, \"why\")`"),
            );
        }
        known
    }

    /// Checks qualifiers; returns the placement and resource names.
    fn qualifiers(
        &mut self,
        kind: ProviderKind,
        grant: &ast::Grant,
    ) -> Option<(Placement, Vec<String>)> {
        let mut placement: Option<(Placement, Span)> = None;
        let mut names = Vec::new();
        let mut ok = true;
        for qualifier in &grant.qualifiers {
            if kind != ProviderKind::Kubernetes {
                let form = match qualifier.kind {
                    QualifierKind::Named(_) => "`named`",
                    QualifierKind::Namespace(_) => "`in namespace`",
                    QualifierKind::Cluster => "`in cluster`",
                };
                self.report(diagnostics::unsupported(
                    format!("{form} is a Kubernetes qualifier; `{kind}` grants cannot take it"),
                    qualifier.span,
                    "not for this provider",
                    "remove it",
                ));
                ok = false;
                continue;
            }
            let this = match &qualifier.kind {
                QualifierKind::Named(list) => {
                    // RBAC's `resourceNames` are literal names.
                    for name in list {
                        if name.value.contains(['*', '?']) || name.value.is_empty() {
                            self.report(
                                diagnostics::invalid_value(
                                    format!("`{}`: RBAC matches resource names literally, so it would match only an object of exactly that name", name.value),
                                    name.span,
                                    "not a literal name",
                                )
                                .with_help("list the objects by name, or leave `named` out to grant every object of the resource"),
                            );
                            ok = false;
                        }
                    }
                    names.extend(list.iter().map(|s| s.value.clone()));
                    continue;
                }
                QualifierKind::Namespace(namespace) => {
                    if !facts::kubernetes::is_dns_label(&namespace.value) {
                        self.report(
                            diagnostics::invalid_value(
                                format!("`{}` is not a valid namespace name", namespace.value),
                                namespace.span,
                                "invalid namespace",
                            )
                            .with_help("namespaces are lowercase letters, digits and `-`, at most 63 characters"),
                        );
                        ok = false;
                    } else if crate::ownership::kubernetes::RESERVED_NAMESPACES
                        .contains(&namespace.value.as_str())
                    {
                        self.report(diagnostics::reserved_namespace(
                            &namespace.value,
                            namespace.span,
                            "grant access in the namespaces the agent works in",
                        ));
                        ok = false;
                    }
                    Placement::Namespace(namespace.value.clone())
                }
                QualifierKind::Cluster => Placement::Cluster,
            };
            if let Some((_, first)) = &placement {
                self.report(
                    diagnostics::invalid_value(
                        "a grant applies in one namespace or in the whole cluster, not both",
                        qualifier.span,
                        "second placement",
                    )
                    .with_label(*first, "first placement")
                    .with_help("write one grant for each namespace"),
                );
                ok = false;
                continue;
            }
            placement = Some((this, qualifier.span));
        }
        if kind == ProviderKind::Kubernetes && placement.is_none() {
            self.report(
                Diagnostic::new(
                    Code::MissingField,
                    "a Kubernetes grant needs a placement",
                    Label::new(
                        grant.provider.span.to(grant
                            .resources
                            .last()
                            .map_or(grant.provider.span, |r| r.span)),
                        "where does this apply?",
                    ),
                )
                .with_help("add `in namespace \"…\"` or `in cluster`"),
            );
            return None;
        }
        ok.then(|| (placement.map_or(Placement::None, |(p, _)| p), names))
    }

    fn conditions(&mut self, kind: ProviderKind, grant: &ast::Grant) {
        if grant.conditions.is_empty() {
            return;
        }
        if !matches!(kind, ProviderKind::Aws | ProviderKind::Gcp) {
            let span = grant.conditions[0]
                .span
                .to(grant.conditions[grant.conditions.len() - 1].span);
            let why = match kind {
                ProviderKind::Kubernetes => "Kubernetes RBAC has no conditions",
                _ => "GitHub permissions have no conditions",
            };
            self.report(diagnostics::unsupported(
                format!("{why}: a `when` clause cannot be enforced"),
                span,
                "cannot be enforced",
                "remove the `when` clause, or narrow the grant by its resources instead",
            ));
            return;
        }
        for condition in &grant.conditions {
            if condition.op.is_ordering() && kind != ProviderKind::Aws {
                self.report(diagnostics::unsupported(
                    format!(
                        "`{}` is lowered for AWS numbers and dates only",
                        condition.op.as_str()
                    ),
                    condition.op_span,
                    "not for this provider",
                    "compare with `==`, `!=`, `in` or `like`",
                ));
                continue;
            }
            let list = matches!(condition.value.kind, ValueKind::List(_));
            let scalar_ok = |value: &ValueKind| {
                matches!(
                    value,
                    ValueKind::String(_) | ValueKind::Integer(_) | ValueKind::Bool(_)
                )
            };
            let ok = match (&condition.op, &condition.value.kind) {
                (ConditionOp::In, ValueKind::List(items)) => {
                    !items.is_empty() && items.iter().all(|v| scalar_ok(&v.kind))
                }
                (ConditionOp::In, _) => false,
                (_, value) => !list && scalar_ok(value),
            };
            if !ok {
                let (expected, help) = match condition.op {
                    ConditionOp::In => (
                        "a non-empty list of strings",
                        format!("write `{} in [\"a\", \"b\"]`", condition.key.text),
                    ),
                    op => (
                        "one string",
                        format!("write `{} {} \"…\"`", condition.key.text, op.as_str()),
                    ),
                };
                self.report(
                    diagnostics::invalid_value(
                        format!(
                            "`{}` compares with {expected}, found {}",
                            condition.op.as_str(),
                            condition.value.kind.describe()
                        ),
                        condition.value.span,
                        &format!("expected {expected}"),
                    )
                    .with_help(help),
                );
            }
            if kind == ProviderKind::Aws && !condition.key.text.contains(':') {
                self.report(
                    diagnostics::invalid_value(
                        format!("`{}` is not an AWS condition key", condition.key.text),
                        condition.key.span,
                        "expected `prefix:Key`",
                    )
                    .with_help(
                        "AWS condition keys are written `prefix:Key`, as in `aws:SourceVpc`",
                    ),
                );
            }
            if kind == ProviderKind::Aws && condition.key.text.contains(':') && ok {
                self.aws_condition(condition);
            }
        }
    }

    fn wildcard_resource(&mut self, span: Span, why: &str) {
        self.report(
            Diagnostic::new(Code::WildcardResource, format!("wildcard resource: {why}"), Label::new(span, "wildcard resource"))
                .with_help("name the resources the agent needs, or accept it with `@waive(wildcard_resource, \"why\")`"),
        );
    }

    /// A guardrail's `deny`: checked like a grant, without lints or account
    /// checks, and for every provider of a kind when written `kind.*`.
    pub(crate) fn deny(&mut self, grant: &ast::Grant, stmt: &Stmt) -> Option<model::Deny> {
        let kind = self.resolve_provider_kind(&grant.provider.kind)?;
        let selector = match &grant.provider.name {
            None => model::ProviderSelector::Kind(kind),
            Some(_) => model::ProviderSelector::One(self.resolve_provider(&grant.provider)?),
        };
        let mut ok = true;
        for action in &grant.actions {
            ok &= self.action(kind, action, false);
        }
        if !grant.conditions.is_empty() {
            let span = grant.conditions[0]
                .span
                .to(grant.conditions[grant.conditions.len() - 1].span);
            self.report(diagnostics::unsupported(
                "a guardrail denies unconditionally: `when` is not allowed in a `deny`",
                span,
                "condition on a deny",
                "remove the `when` clause",
            ));
            ok = false;
        }
        let mut placement = Placement::None;
        for qualifier in &grant.qualifiers {
            match (&qualifier.kind, kind) {
                (QualifierKind::Namespace(ns), ProviderKind::Kubernetes) => {
                    placement = Placement::Namespace(ns.value.clone())
                }
                (QualifierKind::Cluster, ProviderKind::Kubernetes) => {
                    placement = Placement::Cluster
                }
                _ => {
                    self.report(diagnostics::unsupported(
                        "a `deny` takes only `in namespace` or `in cluster`, and only for Kubernetes",
                        qualifier.span,
                        "not allowed here",
                        "remove it",
                    ));
                    ok = false;
                }
            }
        }
        if kind == ProviderKind::Kubernetes && placement == Placement::None {
            // A Kubernetes deny without a placement applies everywhere.
            placement = Placement::Cluster;
        }
        if kind == ProviderKind::Kubernetes {
            // A deny is compared with grants as RBAC reads resources: it
            // must be written so that it can be.
            for resource in &grant.resources {
                if let Err(error) = facts::kubernetes::ResourceRef::parse(&resource.value) {
                    self.report(diagnostics::not_a_kubernetes_resource(
                        &error,
                        &resource.value,
                        resource.span,
                    ));
                    ok = false;
                }
            }
        }
        if kind == ProviderKind::Aws {
            // Written into every agent's policy: IAM refuses a policy with a
            // resource that is not an ARN, and writ would read it otherwise
            // than IAM does.
            for resource in &grant.resources {
                let text = resource.value.as_str();
                if text != "*" && facts::aws::parse_arn(text).is_none() {
                    self.report(diagnostics::not_an_arn(text, resource.span));
                    ok = false;
                }
            }
        }
        ok.then(|| model::Deny {
            providers: selector,
            kind,
            actions: grant.actions.iter().map(|a| a.text.clone()).collect(),
            resources: grant.resources.iter().map(|r| r.value.clone()).collect(),
            placement,
            span: stmt.span,
        })
    }

    /// An `expect`'s action: one concrete action the provider has.
    pub(crate) fn expectation_action(&mut self, kind: ProviderKind, action: &ast::Ident) -> bool {
        if !self.action(kind, action, false) {
            return false;
        }
        if pattern::has_wildcard(&action.text) {
            self.report(diagnostics::unsupported(
                "an `expect` asks about one action, not a pattern",
                action.span,
                "wildcard in an expectation",
                "name one action, such as `s3:GetObject`",
            ));
            return false;
        }
        true
    }
}

/// The lints a grant may waive.
const GRANT_LINTS: &[Code] = &[
    Code::WildcardAction,
    Code::WildcardResource,
    Code::PrivilegeEscalation,
];

/// What a grant is for, which decides the lints it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Access an agent holds: linted.
    Access,
    /// A delegation ceiling: a bound, not access, so wildcards are expected.
    Ceiling,
}

pub(super) fn condition_values(value: &ast::Value) -> Vec<String> {
    match &value.kind {
        ValueKind::List(items) => items.iter().flat_map(condition_values).collect(),
        ValueKind::String(text)
        | ValueKind::Integer(text)
        | ValueKind::Duration(text)
        | ValueKind::Rate(text)
        | ValueKind::Date(text)
        | ValueKind::Ident(text)
        | ValueKind::Malformed(text) => vec![text.clone()],
        ValueKind::Bool(value) => vec![value.to_string()],
    }
}
