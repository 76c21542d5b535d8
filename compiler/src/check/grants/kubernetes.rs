//! Kubernetes grants: resources with their API groups and subresources, and
//! what `named` can restrict.

use super::super::{diagnostics, Checker};
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::kubernetes;
use crate::model::Placement;
use crate::syntax::ast::{self, QualifierKind};

impl<'a> Checker<'a> {
    /// A Kubernetes verb; `false` (reported) if it is not one.
    pub(super) fn kubernetes_action(&mut self, action: &ast::Ident) -> bool {
        let text = action.text.as_str();
        if kubernetes::VERBS.contains(&text) {
            return true;
        }
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

    pub(super) fn kubernetes_resources(
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
            let reference = match kubernetes::ResourceRef::parse(text) {
                Ok(reference) => reference,
                Err(error) => {
                    self.report(diagnostics::not_a_kubernetes_resource(
                        &error,
                        text,
                        resource.span,
                    ));
                    ok = false;
                    continue;
                }
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
    pub(super) fn names_restrictable(&mut self, grant: &ast::Grant) {
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
}

pub(super) fn group_name(group: &str) -> String {
    if group.is_empty() {
        "core".to_string()
    } else {
        format!("`{group}`")
    }
}
