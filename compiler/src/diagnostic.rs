//! The diagnostic type every phase reports, and the catalogue of stable codes.
//!
//! Codes are a public interface: editors and CI match on them. A code's
//! severity is fixed by the code; `--deny-warnings` is the caller's business.

use crate::source::Span;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

macro_rules! codes {
    ($($variant:ident => $name:literal, $severity:ident, $summary:literal;)*) => {
        /// Every diagnostic code writ reports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable name, such as `writ::unknown_name`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => concat!("writ::", $name),)* }
            }

            /// The name without the `writ::` prefix, as written in `@waive`.
            pub fn short_name(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// One line on when the code is reported.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            /// Looks a code up by its name, with or without the `writ::` prefix.
            pub fn from_name(name: &str) -> Option<Code> {
                let short = name.strip_prefix("writ::").unwrap_or(name);
                Code::ALL.iter().copied().find(|code| code.short_name() == short)
            }
        }
    };
}

codes! {
    Syntax => "syntax", Error, "the text does not parse";
    DuplicateDefinition => "duplicate_definition", Error, "two items of one kind share a name";
    UnknownName => "unknown_name", Error, "a scope, agent or provider that is not declared";
    InvalidValue => "invalid_value", Error, "a bad duration, date, account id, repository or ARN";
    MissingField => "missing_field", Error, "a required field is absent";
    UnknownField => "unknown_field", Error, "a field that the item does not have";
    UnknownAction => "unknown_action", Error, "an action that the provider does not have";
    ResourceMismatch => "resource_mismatch", Error, "the resource cannot be the target of that action";
    Unsupported => "unsupported", Error, "a form that the provider cannot express";
    TtlOutOfRange => "ttl_out_of_range", Error, "a ttl that the provider cannot enforce";
    IncludeCycle => "include_cycle", Error, "scopes include each other in a loop";
    DelegationUndeclared => "delegation_undeclared", Error, "a `parent` without a `delegates` block";
    DelegationExceeds => "delegation_exceeds", Error, "a delegate's grant, ttl or depth is outside its ceiling";
    DelegationCycle => "delegation_cycle", Error, "`parent` links form a loop";
    GuardrailViolation => "guardrail_violation", Error, "an agent's grant meets a guardrail";
    TestFailed => "test_failed", Error, "an `expect` does not hold";
    WildcardAction => "wildcard_action", Warning, "an action with a wildcard";
    WildcardResource => "wildcard_resource", Warning, "a resource `*`, or a wildcard in an account or bucket position";
    PrivilegeEscalation => "privilege_escalation", Warning, "a grant that lets an agent widen its own or others' access";
    UnusedScope => "unused_scope", Warning, "a scope that nothing uses";
    Expired => "expired", Warning, "an agent whose `expires` date has passed";
    OutlivesParent => "outlives_parent", Warning, "a delegate that would outlive its parent, and so expires with it";
    TtlNotEnforced => "ttl_not_enforced", Warning, "a ttl shorter than the provider can enforce";
    BroadTrust => "broad_trust", Warning, "a workload trusted more widely than one branch or environment";
    TrustCycle => "trust_cycle", Warning, "agents whose grants let them become one another (`writ check --graph`, plans)";
    UnusedGrant => "unused_grant", Warning, "a grant no agent used in the usage logs' window (`writ check --usage`)";
    WideReach => "wide_reach", Warning, "a workload that can act as more agents than `[graph] max_identities` allows (`writ check --graph`, plans)";
}

impl Code {
    /// Lint codes are the warnings a grant (or, for `broad_trust`, a
    /// `runs_on`) may `@waive`.
    pub fn is_waivable(self) -> bool {
        matches!(
            self,
            Code::WildcardAction
                | Code::WildcardResource
                | Code::PrivilegeEscalation
                | Code::BroadTrust
        )
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A span with a short message, drawn under the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

impl Label {
    pub fn new(span: Span, message: impl Into<String>) -> Label {
        Label {
            span,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// Lowercase, terse, identifiers in backticks.
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    /// What to write instead, where there is something to say.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>, primary: Label) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            primary,
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label::new(span, message));
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_optional_help(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Puts diagnostics in source order: by file, then position, then code, so
/// that output is stable whatever order the phases found them in.
pub fn sort_in_source_order(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (
            a.primary.span.file,
            a.primary.span.start,
            a.primary.span.end,
            a.code,
        )
            .cmp(&(
                b.primary.span.file,
                b.primary.span.start,
                b.primary.span.end,
                b.code,
            ))
    });
}
