//! GitHub grants: fine-grained permissions and their levels, repositories.

use super::super::{diagnostics, Checker};
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::github;
use crate::pattern;
use crate::syntax::ast;

impl<'a> Checker<'a> {
    pub(super) fn github_action(&mut self, action: &ast::Ident) -> bool {
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

    pub(super) fn github_resources(&mut self, grant: &ast::Grant, org: &str, lint: bool) -> bool {
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
}
