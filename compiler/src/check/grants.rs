//! Checking one grant (or guardrail deny) against what its provider offers:
//! actions, resources, qualifiers, conditions, and the lints a grant may
//! waive.

use super::{diagnostics, docs_text, Checker};
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::{aws, gcp, github, kubernetes, ProviderKind};
use crate::model::{self, Placement, ProviderSettings};
use crate::pattern;
use crate::source::Span;
use crate::syntax::ast::{self, ConditionOp, QualifierKind, Stmt, ValueKind};

/// What a grant is for, which decides the lints it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Access an agent holds: linted.
    Access,
    /// A delegation ceiling: a bound, not access, so wildcards are expected.
    Ceiling,
}

impl<'a> Checker<'a> {
    pub(crate) fn grant(
        &mut self,
        grant: &'a ast::Grant,
        stmt: &'a Stmt,
        role: Role,
    ) -> Option<model::Grant> {
        let waivers = self.waivers(grant);
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
            ProviderSettings::Aws { account, partition } => {
                self.aws_resources(grant, account, partition, lint(Code::WildcardResource))
            }
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
            docs: docs_text(&stmt.docs),
            span: stmt.span,
            via: Vec::new(),
        })
    }

    fn waivers(&mut self, grant: &ast::Grant) -> Vec<model::Waiver> {
        let mut waivers = Vec::new();
        for waiver in &grant.waivers {
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
            if !code.is_waivable() {
                self.report(
                    diagnostics::invalid_value(
                        format!("`{code}` cannot be waived"),
                        waiver.lint.span,
                        "not a waivable lint",
                    )
                    .with_help("only the lints `wildcard_action`, `wildcard_resource` and `privilege_escalation` can be waived"),
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
            ProviderKind::Kubernetes => {
                if kubernetes::VERBS.contains(&text) {
                    true
                } else {
                    self.report(
                        Diagnostic::new(
                            Code::UnknownAction,
                            format!("`{text}` is not a Kubernetes verb"),
                            Label::new(action.span, "unknown verb"),
                        )
                        .with_help(
                            match crate::suggest::closest(text, kubernetes::VERBS.iter().copied()) {
                                Some(best) => format!("did you mean `{best}`?"),
                                None => format!("verbs are {}", kubernetes::VERBS.join(", ")),
                            },
                        ),
                    );
                    false
                }
            }
            ProviderKind::Github => self.github_action(action),
            ProviderKind::Gcp => {
                if gcp::is_role_name(text) {
                    true
                } else {
                    self.report(
                        Diagnostic::new(
                            Code::UnknownAction,
                            format!("`{text}` is not a GCP role"),
                            Label::new(action.span, "expected a role name"),
                        )
                        .with_help("GCP grants name roles: `roles/storage.objectViewer`, `projects/P/roles/R` or `organizations/O/roles/R`"),
                    );
                    false
                }
            }
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

    fn aws_action(&mut self, action: &ast::Ident) -> bool {
        let text = action.text.as_str();
        if let Some(&known) = self.action_cache.get(text) {
            if !known {
                self.report_unknown_aws_action(action);
            }
            return known;
        }
        let catalogue = aws::catalogue();
        let known = if text == "*" {
            true
        } else if !text.contains(':') {
            false
        } else {
            !catalogue.expand(text).is_empty()
        };
        self.action_cache.insert(text.to_string(), known);
        if !known {
            self.report_unknown_aws_action(action);
        }
        known
    }

    fn report_unknown_aws_action(&mut self, action: &ast::Ident) {
        let text = action.text.as_str();
        let catalogue = aws::catalogue();
        let (message, label) = match text.split_once(':') {
            None => (
                format!("`{text}` is not an AWS action"),
                "expected `service:Action`".to_string(),
            ),
            Some((service, _)) if catalogue.service(service).is_none() => (
                format!("`{service}` is not an AWS service prefix"),
                "unknown service".to_string(),
            ),
            Some((service, name)) if pattern::has_wildcard(name) => (
                format!("`{text}` matches no `{service}` action"),
                "matches nothing".to_string(),
            ),
            Some((service, _)) => (
                format!("`{service}` has no action `{text}`"),
                "unknown action".to_string(),
            ),
        };
        let help = match catalogue.suggest(text) {
            Some(best) => format!("did you mean `{best}`?"),
            None => "AWS actions are written `service:Action`, as in `s3:GetObject`".to_string(),
        };
        self.report(
            Diagnostic::new(Code::UnknownAction, message, Label::new(action.span, label))
                .with_help(help),
        );
    }

    fn github_action(&mut self, action: &ast::Ident) -> bool {
        let text = action.text.as_str();
        let names = || github::PERMISSIONS.iter().map(|(name, _)| *name);
        let Some((permission, level)) = text.split_once(':') else {
            let help = match crate::suggest::closest(text, names()) {
                Some(best) => format!("write a permission and a level, as in `{best}:read`"),
                None => "write a permission and a level, as in `contents:read`".to_string(),
            };
            self.report(
                Diagnostic::new(
                    Code::UnknownAction,
                    format!("`{text}` is not a GitHub permission"),
                    Label::new(action.span, "expected `permission:level`"),
                )
                .with_help(help),
            );
            return false;
        };
        if pattern::has_wildcard(text) {
            self.report(diagnostics::unsupported(
                format!("GitHub permissions cannot be wildcards: `{text}`"),
                action.span,
                "wildcard permission",
                "name each permission and its level, as in `contents:read`",
            ));
            return false;
        }
        let Some(levels) = github::levels(permission) else {
            self.report(
                Diagnostic::new(
                    Code::UnknownAction,
                    format!("GitHub has no permission `{permission}`"),
                    Label::new(action.span, "unknown permission"),
                )
                .with_optional_help(
                    crate::suggest::closest(permission, names())
                        .map(|best| format!("did you mean `{best}:{level}`?")),
                ),
            );
            return false;
        };
        if !levels.contains(&level) {
            self.report(
                Diagnostic::new(
                    Code::UnknownAction,
                    format!("GitHub permission `{permission}` has no level `{level}`"),
                    Label::new(action.span, "unknown level"),
                )
                .with_help(format!(
                    "`{permission}` takes {}",
                    levels
                        .iter()
                        .map(|l| format!("`{permission}:{l}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )),
            );
            return false;
        }
        true
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
                    names.extend(list.iter().map(|s| s.value.clone()));
                    continue;
                }
                QualifierKind::Namespace(namespace) => {
                    if !kubernetes::is_dns_label(&namespace.value) {
                        self.report(
                            diagnostics::invalid_value(
                                format!("`{}` is not a valid namespace name", namespace.value),
                                namespace.span,
                                "invalid namespace",
                            )
                            .with_help("namespaces are lowercase letters, digits and `-`, at most 63 characters"),
                        );
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
        }
    }

    fn aws_resources(
        &mut self,
        grant: &ast::Grant,
        account: &str,
        partition: &str,
        lint: bool,
    ) -> bool {
        let catalogue = aws::catalogue();
        let expanded: Vec<(&aws::Service, &aws::Action)> = grant
            .actions
            .iter()
            .flat_map(|a| catalogue.expand(&a.text))
            .collect();
        let mut ok = true;
        let mut concrete = Vec::new();
        for resource in &grant.resources {
            let text = resource.value.as_str();
            if text == "*" {
                // Actions without resource-level permissions take only `"*"`:
                // nothing narrower can be written, so there is nothing to warn of.
                let only_star = !expanded.is_empty()
                    && expanded.iter().all(|(_, a)| a.resource_types.is_empty());
                if lint && !only_star {
                    self.wildcard_resource(
                        resource.span,
                        "`\"*\"` is every resource of every account",
                    );
                }
                continue;
            }
            let Some(arn) = aws::parse_arn(text) else {
                self.report(
                    diagnostics::invalid_value(
                        format!("`{text}` is not an ARN"),
                        resource.span,
                        "expected an ARN",
                    )
                    .with_help(
                        "AWS resources are ARNs, as in `\"arn:aws:s3:::bucket/key\"`, or `\"*\"`",
                    ),
                );
                ok = false;
                continue;
            };
            if !pattern::has_wildcard(arn.partition) && arn.partition != partition {
                self.report(
                    Diagnostic::new(
                        Code::ResourceMismatch,
                        format!(
                            "ARN of partition `{}`, but `{}` is in partition `{partition}`",
                            arn.partition,
                            grant.provider.display()
                        ),
                        Label::new(resource.span, "another partition"),
                    )
                    .with_help(format!("write `arn:{partition}:…`")),
                );
                ok = false;
                continue;
            }
            if !arn.account.is_empty()
                && !pattern::has_wildcard(arn.account)
                && arn.account != account
            {
                self.report(
                    Diagnostic::new(
                        Code::ResourceMismatch,
                        format!(
                            "ARN of account `{}`, but `{}` is account `{account}`",
                            arn.account,
                            grant.provider.display()
                        ),
                        Label::new(resource.span, "another account"),
                    )
                    .with_help(
                        "grant it through the provider of that account, or fix the account id",
                    ),
                );
                ok = false;
                continue;
            }
            if lint {
                let bucket = (arn.service == "s3")
                    .then(|| arn.resource.split('/').next().unwrap_or_default());
                if pattern::has_wildcard(arn.account) || pattern::has_wildcard(arn.service) {
                    self.wildcard_resource(
                        resource.span,
                        "a wildcard in the account or service reaches other accounts' resources",
                    );
                } else if bucket.is_some_and(pattern::has_wildcard) {
                    self.wildcard_resource(
                        resource.span,
                        "a wildcard in the bucket name reaches every matching bucket",
                    );
                }
            }
            concrete.push(resource);
        }
        // Each concrete resource must be something some action of the grant
        // can act on, and each named action must have something to act on.
        for resource in &concrete {
            let text = resource.value.as_str();
            let admitted = expanded.iter().any(|(service, action)| {
                action
                    .resource_types
                    .iter()
                    .any(|&t| service.resource_types[t].admits(text))
            });
            if admitted || expanded.is_empty() {
                continue;
            }
            ok = false;
            let takes_only_star = expanded
                .iter()
                .all(|(_, action)| action.resource_types.is_empty());
            let (service, action) = expanded[0];
            let mut diagnostic = Diagnostic::new(
                Code::ResourceMismatch,
                if expanded.len() == 1 {
                    format!(
                        "`{}:{}` cannot act on `{text}`",
                        service.prefix, action.name
                    )
                } else {
                    format!("no action of this grant can act on `{text}`")
                },
                Label::new(resource.span, "wrong kind of resource"),
            );
            diagnostic.help = Some(if takes_only_star {
                format!(
                    "`{}:{}` does not support resource-level permissions; write `\"*\"`",
                    service.prefix, action.name
                )
            } else {
                format!(
                    "`{}:{}` acts on {}",
                    service.prefix,
                    action.name,
                    arn_formats(service, action)
                )
            });
            self.report(diagnostic);
        }
        // Each named action must act on something in the grant; worth saying
        // only when every resource is concrete and suits some action (else
        // the resource has been reported already).
        let every_resource_admitted = concrete.len() == grant.resources.len()
            && concrete.iter().all(|r| {
                expanded.iter().any(|(s, a)| {
                    a.resource_types
                        .iter()
                        .any(|&t| s.resource_types[t].admits(&r.value))
                })
            });
        if every_resource_admitted && !concrete.is_empty() {
            for action in &grant.actions {
                if pattern::has_wildcard(&action.text) {
                    continue;
                }
                let Some((service, found)) = catalogue.expand(&action.text).into_iter().next()
                else {
                    continue;
                };
                let fits = concrete.iter().any(|r| {
                    found
                        .resource_types
                        .iter()
                        .any(|&t| service.resource_types[t].admits(&r.value))
                });
                if !fits {
                    ok = false;
                    let help = if found.resource_types.is_empty() {
                        format!("`{}:{}` does not support resource-level permissions: grant it on `\"*\"` in a grant of its own", service.prefix, found.name)
                    } else {
                        format!("it acts on {}", arn_formats(service, found))
                    };
                    self.report(
                        Diagnostic::new(
                            Code::ResourceMismatch,
                            format!("`{}` cannot act on any resource of this grant", action.text),
                            Label::new(action.span, "nothing to act on"),
                        )
                        .with_help(help),
                    );
                }
            }
        }
        ok
    }

    fn wildcard_resource(&mut self, span: Span, why: &str) {
        self.report(
            Diagnostic::new(Code::WildcardResource, format!("wildcard resource: {why}"), Label::new(span, "wildcard resource"))
                .with_help("name the resources the agent needs, or accept it with `@waive(wildcard_resource, \"why\")`"),
        );
    }

    fn kubernetes_resources(
        &mut self,
        grant: &ast::Grant,
        placement: &Placement,
        lint: bool,
    ) -> bool {
        let mut ok = true;
        for resource in &grant.resources {
            let text = resource.value.as_str();
            if text == "*" {
                if lint {
                    self.wildcard_resource(
                        resource.span,
                        "`\"*\"` is every resource type, including secrets",
                    );
                }
                continue;
            }
            let Some(reference) = kubernetes::ResourceRef::parse(text) else {
                self.report(
                    diagnostics::invalid_value(format!("`{text}` is not a Kubernetes resource"), resource.span, "invalid resource")
                        .with_help("write `resource[.group][/subresource]` in lower case, as in `\"deployments.apps\"` or `\"pods/log\"`"),
                );
                ok = false;
                continue;
            };
            match kubernetes::check_resource(&reference) {
                kubernetes::ResourceCheck::Known(kubernetes::ResourceScope::Cluster) => {
                    if let Placement::Namespace(namespace) = placement {
                        self.report(
                            Diagnostic::new(
                                Code::ResourceMismatch,
                                format!("`{text}` is cluster-scoped: a grant in namespace `{namespace}` cannot reach it"),
                                Label::new(resource.span, "cluster-scoped resource"),
                            )
                            .with_help("grant it `in cluster`"),
                        );
                        ok = false;
                    }
                }
                kubernetes::ResourceCheck::Known(_) | kubernetes::ResourceCheck::Custom => {}
                kubernetes::ResourceCheck::Wildcard => {
                    if lint {
                        self.wildcard_resource(
                            resource.span,
                            "a wildcard resource reaches every matching type",
                        );
                    }
                }
                kubernetes::ResourceCheck::WrongGroup { suggestion } => {
                    self.report(
                        diagnostics::invalid_value(
                            format!(
                                "`{}` is not in the {} API group",
                                reference.resource,
                                group_name(&reference.group)
                            ),
                            resource.span,
                            "wrong API group",
                        )
                        .with_help(format!("did you mean `{suggestion}`?")),
                    );
                    ok = false;
                }
                kubernetes::ResourceCheck::UnknownResource { suggestion } => {
                    self.report(
                        diagnostics::invalid_value(
                            format!(
                                "the {} API group has no resource `{}`",
                                group_name(&reference.group),
                                reference.resource
                            ),
                            resource.span,
                            "unknown resource",
                        )
                        .with_optional_help(suggestion.map(|s| format!("did you mean `{s}`?"))),
                    );
                    ok = false;
                }
                kubernetes::ResourceCheck::UnknownSubresource { suggestion } => {
                    self.report(
                        diagnostics::invalid_value(
                            format!(
                                "`{}` has no subresource `{}`",
                                reference.resource,
                                reference.subresource.as_deref().unwrap_or_default()
                            ),
                            resource.span,
                            "unknown subresource",
                        )
                        .with_optional_help(suggestion.map(|s| format!("did you mean `{s}`?"))),
                    );
                    ok = false;
                }
            }
        }
        ok
    }

    /// `named` cannot restrict every verb: Kubernetes would grant more than
    /// written (or nothing), so such a grant is refused.
    fn names_restrictable(&mut self, grant: &ast::Grant) {
        for action in &grant.actions {
            let verb = action.text.as_str();
            if kubernetes::VERBS_UNRESTRICTABLE_BY_NAME.contains(&verb) || verb == "*" {
                let named_span = grant
                    .qualifiers
                    .iter()
                    .find(|q| matches!(q.kind, QualifierKind::Named(_)))
                    .map_or(action.span, |q| q.span);
                self.report(
                    diagnostics::unsupported(
                        format!("Kubernetes cannot restrict `{verb}` by resource name"),
                        action.span,
                        "not restricted by `named`",
                        &format!("grant `{verb}` in a grant of its own without `named`, if the agent needs it"),
                    )
                    .with_label(named_span, "names given here"),
                );
            }
        }
    }

    fn github_resources(&mut self, grant: &ast::Grant, org: &str, lint: bool) -> bool {
        let mut ok = true;
        for resource in &grant.resources {
            let text = resource.value.as_str();
            if text == "*" {
                if lint {
                    self.wildcard_resource(
                        resource.span,
                        "`\"*\"` is every repository of the organisation",
                    );
                }
                continue;
            }
            if !github::is_repository(text) {
                self.report(
                    diagnostics::invalid_value(
                        format!("`{text}` is not a repository"),
                        resource.span,
                        "expected `org/repo`",
                    )
                    .with_help(format!("write `\"{org}/repository\"`")),
                );
                ok = false;
                continue;
            }
            let (owner, repo) = text.split_once('/').unwrap_or_default();
            if !owner.eq_ignore_ascii_case(org) {
                self.report(
                    Diagnostic::new(
                        Code::ResourceMismatch,
                        format!(
                            "`{text}` belongs to `{owner}`, but `{}` is the organisation `{org}`",
                            grant.provider.display()
                        ),
                        Label::new(resource.span, "another organisation"),
                    )
                    .with_help(format!(
                        "write `\"{org}/{repo}\"`, or declare a provider for `{owner}`"
                    )),
                );
                ok = false;
            } else if lint && pattern::has_wildcard(repo) {
                self.wildcard_resource(resource.span, "a wildcard repository name reaches every matching repository, including new ones");
            }
        }
        ok
    }

    fn gcp_resources(&mut self, grant: &ast::Grant, lint: bool) -> bool {
        let mut ok = true;
        for resource in &grant.resources {
            let text = resource.value.as_str();
            if text == "*" {
                if lint {
                    self.wildcard_resource(resource.span, "`\"*\"` is every resource");
                }
                continue;
            }
            if !gcp::is_resource_name(text) {
                self.report(
                    diagnostics::invalid_value(format!("`{text}` is not a GCP resource name"), resource.span, "invalid resource name")
                        .with_help("write a resource name such as `\"projects/my-project\"` or `\"projects/_/buckets/my-bucket\"`"),
                );
                ok = false;
            } else if lint && pattern::has_wildcard(text) {
                self.wildcard_resource(
                    resource.span,
                    "a wildcard resource name reaches every matching resource",
                );
            }
        }
        ok
    }

    fn escalation(&mut self, provider: &model::Provider, grant: &ast::Grant) {
        for action in &grant.actions {
            let text = action.text.as_str();
            let why: Option<String> = match provider.kind {
                ProviderKind::Aws => {
                    let lowered = text.to_ascii_lowercase();
                    let hit = aws::ESCALATION_ACTIONS
                        .iter()
                        .find(|e| pattern::intersects(&lowered, e));
                    match hit {
                        Some(hit) => Some(if lowered == *hit {
                            format!("`{text}` lets the agent widen its own or others' access")
                        } else {
                            format!(
                                "`{text}` includes `{}`, which lets the agent widen access",
                                canonical_aws(hit)
                            )
                        }),
                        None => {
                            let assumes = pattern::intersects(&lowered, "sts:assumerole");
                            let ProviderSettings::Aws { account, partition } = &provider.settings
                            else {
                                continue;
                            };
                            let wide = || {
                                let any_role = format!("arn:{partition}:iam::{account}:role/*");
                                grant
                                    .resources
                                    .iter()
                                    .any(|r| pattern::contains(&r.value, &any_role))
                            };
                            (assumes && wide()).then(|| {
                                format!("`{text}` on every role lets the agent become any role")
                            })
                        }
                    }
                }
                ProviderKind::Kubernetes => {
                    if let Some(verb) = kubernetes::ESCALATION_VERBS
                        .iter()
                        .find(|v| text == **v || text == "*")
                    {
                        Some(if text == "*" {
                            format!("`*` includes `{verb}`, which lets the agent widen access")
                        } else {
                            format!("`{text}` lets the agent widen its own or others' access")
                        })
                    } else if (text == "create" || text == "*")
                        && grant
                            .resources
                            .iter()
                            .any(|r| pattern::matches(&r.value, "serviceaccounts/token"))
                    {
                        Some("creating service account tokens lets the agent act as those service accounts".to_string())
                    } else {
                        None
                    }
                }
                ProviderKind::Github => {
                    let (permission, level) = text.split_once(':').unwrap_or((text, ""));
                    github::ESCALATION
                        .iter()
                        .find(|(p, l)| {
                            *p == permission && github::level_rank(level) >= github::level_rank(l)
                        })
                        .map(|_| format!("`{text}` lets the agent change who has access"))
                }
                ProviderKind::Gcp => gcp::ESCALATION_ROLES
                    .iter()
                    .find(|role| pattern::matches(text, role))
                    .map(|role| {
                        if text == *role {
                            format!("`{text}` lets the agent widen its own or others' access")
                        } else {
                            format!("`{text}` includes `{role}`, which lets the agent widen access")
                        }
                    }),
            };
            if let Some(why) = why {
                self.report(
                    Diagnostic::new(Code::PrivilegeEscalation, why, Label::new(action.span, "privilege escalation"))
                        .with_help("narrow it to the exact resources needed, or accept it with `@waive(privilege_escalation, \"why\")`"),
                );
            }
        }
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

/// Up to three ARN templates an action acts on, for a `help`.
fn arn_formats(service: &aws::Service, action: &aws::Action) -> String {
    action
        .resource_types
        .iter()
        .take(3)
        .flat_map(|&t| service.resource_types[t].arns.iter().take(1))
        .map(|arn| format!("`{arn}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn canonical_aws(lowered: &str) -> String {
    let (service, action) = lowered.split_once(':').unwrap_or((lowered, ""));
    aws::catalogue()
        .service(service)
        .and_then(|s| s.action(action))
        .map_or_else(|| lowered.to_string(), |a| format!("{service}:{}", a.name))
}

fn group_name(group: &str) -> String {
    if group.is_empty() {
        "core".to_string()
    } else {
        format!("`{group}`")
    }
}

fn condition_values(value: &ast::Value) -> Vec<String> {
    match &value.kind {
        ValueKind::List(items) => items.iter().flat_map(condition_values).collect(),
        ValueKind::String(text)
        | ValueKind::Integer(text)
        | ValueKind::Duration(text)
        | ValueKind::Date(text)
        | ValueKind::Ident(text)
        | ValueKind::Malformed(text) => vec![text.clone()],
        ValueKind::Bool(value) => vec![value.to_string()],
    }
}
