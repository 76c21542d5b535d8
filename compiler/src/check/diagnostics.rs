//! Constructors for the diagnostics that several checks share, so that the
//! wording of each code is written once.

use crate::diagnostic::{Code, Diagnostic, Label};
use crate::source::Span;
use crate::suggest;

pub fn duplicate(what: &str, name: &str, span: Span, first: Span) -> Diagnostic {
    Diagnostic::new(
        Code::DuplicateDefinition,
        format!("{what} `{name}` is defined more than once"),
        Label::new(span, "defined again here"),
    )
    .with_label(first, "first defined here")
    .with_help(format!("rename one of them, or merge them into one {what}"))
}

pub fn unknown_name<'a>(
    what: &str,
    name: &str,
    span: Span,
    candidates: impl Iterator<Item = &'a str>,
) -> Diagnostic {
    Diagnostic::new(
        Code::UnknownName,
        format!("no {what} named `{name}`"),
        Label::new(span, format!("unknown {what}")),
    )
    .with_optional_help(suggest::closest(name, candidates).map(|s| format!("did you mean `{s}`?")))
}

pub fn unknown_field(name: &str, span: Span, item: &str, allowed: &[&str]) -> Diagnostic {
    let help = match suggest::closest(name, allowed.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if allowed.is_empty() => format!("{item} takes no fields"),
        None => format!(
            "{item} takes {}",
            allowed
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Diagnostic::new(
        Code::UnknownField,
        format!("{item} has no field `{name}`"),
        Label::new(span, "unknown field"),
    )
    .with_help(help)
}

pub fn missing_field(field: &str, item: &str, span: Span, example: &str) -> Diagnostic {
    Diagnostic::new(
        Code::MissingField,
        format!("{item} is missing `{field}`"),
        Label::new(span, format!("`{field}` is required here")),
    )
    .with_help(format!("add `{example}`"))
}

pub fn invalid_value(message: impl Into<String>, span: Span, label: &str) -> Diagnostic {
    Diagnostic::new(Code::InvalidValue, message, Label::new(span, label))
}

pub fn wrong_type(
    field: &str,
    expected: &str,
    found: &str,
    span: Span,
    example: &str,
) -> Diagnostic {
    Diagnostic::new(
        Code::InvalidValue,
        format!("`{field}` takes {expected}, found {found}"),
        Label::new(span, format!("expected {expected}")),
    )
    .with_help(format!("write `{field} = {example}`"))
}

pub fn set_twice(field: &str, span: Span, first: Span) -> Diagnostic {
    Diagnostic::new(
        Code::DuplicateDefinition,
        format!("`{field}` is set more than once"),
        Label::new(span, "set again here"),
    )
    .with_label(first, "first set here")
    .with_help("keep one of them")
}

pub fn unsupported(message: impl Into<String>, span: Span, label: &str, help: &str) -> Diagnostic {
    Diagnostic::new(Code::Unsupported, message, Label::new(span, label)).with_help(help)
}

/// A Kubernetes namespace the cluster keeps for itself.
pub fn reserved_namespace(namespace: &str, span: Span, help: &str) -> Diagnostic {
    invalid_value(
        format!("`{namespace}` is the cluster's own namespace: writ never manages objects there"),
        span,
        "reserved namespace",
    )
    .with_help(help)
}

/// A resource that is not an ARN (nor `"*"`), given to an AWS provider.
pub fn not_an_arn(text: &str, span: Span) -> Diagnostic {
    invalid_value(format!("`{text}` is not an ARN"), span, "expected an ARN")
        .with_help("AWS resources are ARNs, as in `\"arn:aws:s3:::bucket/key\"`, or `\"*\"`")
}

/// A Kubernetes resource RBAC could not match as written.
pub fn not_a_kubernetes_resource(
    error: &crate::facts::kubernetes::ResourceError,
    text: &str,
    span: Span,
) -> Diagnostic {
    let (message, help) = error.explain(text);
    invalid_value(message, span, "not a resource RBAC can match").with_help(help)
}
