//! Grants that let an agent widen its own access (privilege escalation).

use super::super::Checker;
use super::aws::canonical_aws;
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::{aws, gcp, github, kubernetes, ProviderKind};
use crate::model::{self, ProviderSettings};
use crate::pattern;
use crate::syntax::ast;

impl<'a> Checker<'a> {
    pub(super) fn escalation(&mut self, provider: &model::Provider, grant: &ast::Grant) {
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
                            let ProviderSettings::Aws {
                                account, partition, ..
                            } = &provider.settings
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
                        && grant.resources.iter().any(|r| mints_tokens(&r.value))
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
}

/// Does a Kubernetes grant's resource, read as RBAC reads it, include
/// `serviceaccounts/token` (`"*.*"` and `"serviceaccounts.*/token"` do)?
fn mints_tokens(resource: &str) -> bool {
    kubernetes::ResourceRef::parse(resource).is_ok_and(|reference| {
        reference.matches(&kubernetes::Requested {
            group: "",
            resource: "serviceaccounts",
            subresource: Some("token"),
        })
    })
}
