//! AWS grants: actions from the IAM catalogue, ARNs and their resource types.

use super::super::{diagnostics, Checker};
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::aws;
use crate::pattern;
use crate::syntax::ast::{self, ConditionOp};

impl<'a> Checker<'a> {
    /// An AWS `when`: a key IAM knows, an operator its type has, and values
    /// of that type.
    pub(super) fn aws_condition(&mut self, condition: &ast::Condition) {
        let key = condition.key.text.as_str();
        let catalogue = aws::catalogue();
        let Some(found) = catalogue.condition_key(key) else {
            let mut known: Vec<&str> = catalogue.condition_keys_like(key).collect();
            known.sort_unstable();
            known.dedup();
            // A known key the text starts with (`aws:SourceIpAdress`) is the
            // likeliest meaning; else the nearest by edits.
            let lower = key.to_ascii_lowercase();
            let stem = known
                .iter()
                .filter(|k| !k.contains(['$', '<']))
                .filter(|k| lower.starts_with(&k.to_ascii_lowercase()))
                .max_by_key(|k| k.len())
                .copied();
            let mut diagnostic = diagnostics::unknown_name(
                "IAM condition key",
                key,
                condition.key.span,
                known.into_iter(),
            );
            if let Some(stem) = stem {
                diagnostic.help = Some(format!("did you mean `{stem}`?"));
            }
            self.report(diagnostic);
            return;
        };
        let name = &found.name;
        let kind = found.kind;
        let text_typed = matches!(kind, aws::KeyType::String | aws::KeyType::Arn);
        if condition.op == ConditionOp::Like && !text_typed {
            self.report(diagnostics::unsupported(
                format!("`like` compares text, but `{name}` is {}", kind.as_str()),
                condition.op_span,
                "not for this key",
                "compare with `==`, `!=` or `in`",
            ));
            return;
        }
        let ordered = matches!(kind, aws::KeyType::Numeric | aws::KeyType::Date);
        if condition.op.is_ordering() && !ordered {
            self.report(diagnostics::unsupported(
                format!(
                    "`{}` orders numbers and dates, but `{name}` is {}",
                    condition.op.as_str(),
                    kind.as_str()
                ),
                condition.op_span,
                "not for this key",
                "compare with `==`, `!=` or `in`",
            ));
            return;
        }
        if condition.op == ConditionOp::NotEquals && kind == aws::KeyType::Bool {
            self.report(diagnostics::unsupported(
                format!("`!=` on `{name}` would also hold when the request does not carry it"),
                condition.op_span,
                "write what must hold",
                "write `== true` or `== false`",
            ));
            return;
        }
        for value in super::condition_values(&condition.value) {
            if value.contains("${") {
                self.report(policy_variable(condition.value.span));
                continue;
            }
            let valid = match kind {
                aws::KeyType::String => true,
                aws::KeyType::Arn => value.starts_with("arn:") || value == "*",
                aws::KeyType::Numeric => value.parse::<f64>().is_ok_and(f64::is_finite),
                aws::KeyType::Date => aws::parse_date(&value).is_some(),
                aws::KeyType::Bool => {
                    value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
                }
                aws::KeyType::IpAddress => aws::parse_cidr(&value).is_some(),
            };
            if !valid {
                let example = match kind {
                    aws::KeyType::Arn => "`\"arn:aws:iam::123456789012:role/x\"`",
                    aws::KeyType::Numeric => "`\"3600\"`",
                    aws::KeyType::Date => "`\"2027-01-01T00:00:00Z\"`",
                    aws::KeyType::Bool => "`\"true\"`",
                    aws::KeyType::IpAddress => "`\"10.0.0.0/8\"` or `\"203.0.113.7\"`",
                    aws::KeyType::String => "text",
                };
                self.report(
                    diagnostics::invalid_value(
                        format!("`{value}` is not {}, which `{name}` holds", kind.as_str()),
                        condition.value.span,
                        &format!("expected {}", kind.as_str()),
                    )
                    .with_help(format!("write it as {example}")),
                );
            }
        }
    }

    pub(super) fn aws_action(&mut self, action: &ast::Ident) -> bool {
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

    pub(super) fn report_unknown_aws_action(&mut self, action: &ast::Ident) {
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

    pub(super) fn aws_resources(
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
            if text.contains("${") {
                self.report(policy_variable(resource.span));
                ok = false;
                continue;
            }
            let Some(arn) = aws::parse_arn(text) else {
                self.report(diagnostics::not_an_arn(text, resource.span));
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
}

/// Up to three ARN templates an action acts on, for a `help`.
pub(super) fn arn_formats(service: &aws::Service, action: &aws::Action) -> String {
    action
        .resource_types
        .iter()
        .take(3)
        .flat_map(|&t| service.resource_types[t].arns.iter().take(1))
        .map(|arn| format!("`{arn}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

pub(super) fn canonical_aws(lowered: &str) -> String {
    let (service, action) = lowered.split_once(':').unwrap_or((lowered, ""));
    aws::catalogue()
        .service(service)
        .and_then(|s| s.action(action))
        .map_or_else(|| lowered.to_string(), |a| format!("{service}:{}", a.name))
}

/// IAM substitutes `${…}` in resources and condition values when it
/// evaluates a request; writ's checks and evaluator would read it as text
/// and could answer "denied" where IAM allows.
fn policy_variable(span: crate::source::Span) -> Diagnostic {
    diagnostics::unsupported(
        "IAM policy variables (`${…}`) are not supported: IAM fills them in per request, and writ could not check what they reach",
        span,
        "policy variable",
        "write the resource or value out in full",
    )
}
