//! The abstract syntax tree: what the user wrote, with a span on every node.
//! Nothing here is checked yet; the checker turns it into a `model::Model`.

use crate::source::Span;

/// A name as written, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub text: String,
    pub span: Span,
}

/// A string literal: its decoded value and the span of the whole literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str {
    pub value: String,
    pub span: Span,
}

/// One `///` line, without the slashes and the one space after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocLine {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub docs: Vec<DocLine>,
    pub kind: ItemKind,
    /// The keyword and the name: where "this item" is pointed at.
    pub head: Span,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    Provider {
        kind: Ident,
        name: Ident,
        body: Vec<Stmt>,
    },
    Scope {
        name: Ident,
        body: Vec<Stmt>,
    },
    Agent {
        name: Ident,
        body: Vec<Stmt>,
    },
    Guardrail {
        name: Ident,
        body: Vec<Stmt>,
    },
    Test {
        name: Str,
        body: Vec<Stmt>,
    },
}

impl ItemKind {
    pub fn body(&self) -> &[Stmt] {
        match self {
            ItemKind::Provider { body, .. }
            | ItemKind::Scope { body, .. }
            | ItemKind::Agent { body, .. }
            | ItemKind::Guardrail { body, .. }
            | ItemKind::Test { body, .. } => body,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub docs: Vec<DocLine>,
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StmtKind {
    /// `name = value`
    Field(Field),
    /// `include a, b`
    Include(Vec<Ident>),
    /// `can a, b`
    Can(Vec<Ident>),
    /// `aws.prod allow … on …` (or, in a guardrail, `deny aws.* … on …`).
    Grant(Grant),
    /// `runs_on kubernetes.prod namespace "x" service_account "y"`
    RunsOn(RunsOn),
    /// `adopts aws.prod role "/ci/deployer"`: an existing object writ takes
    /// ownership of (the attributes are a `runs_on`'s; no waivers).
    Adopts(RunsOn),
    /// `delegates { … }`
    Delegates(Vec<Stmt>),
    /// `expect agent can aws.prod s3:GetObject on "…"`
    Expect(Expect),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Ident,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    String(String),
    /// Digits as written; the checker decides whether they fit.
    Integer(String),
    Bool(bool),
    /// A duration as written (`1h30m`); checked later, so that `0h` gets a
    /// diagnostic with a span instead of a syntax error.
    Duration(String),
    /// A date as written (`2027-06-30`).
    Date(String),
    /// A rate as written (`600/min`).
    Rate(String),
    /// A bare name (`parent = billing_bot`).
    Ident(String),
    List(Vec<Value>),
    /// Something number-like that is no literal (`1x`, `15mins`).
    Malformed(String),
}

impl ValueKind {
    /// What sort of value this is, in words, for "expected …, found …".
    pub fn describe(&self) -> &'static str {
        match self {
            ValueKind::String(_) => "a string",
            ValueKind::Integer(_) => "an integer",
            ValueKind::Bool(_) => "`true` or `false`",
            ValueKind::Duration(_) => "a duration",
            ValueKind::Rate(_) => "a rate",
            ValueKind::Date(_) => "a date",
            ValueKind::Ident(_) => "a name",
            ValueKind::List(_) => "a list",
            ValueKind::Malformed(_) => "a malformed literal",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `kind.name`, or in a guardrail `kind.*` (then `name` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRef {
    pub kind: Ident,
    pub name: Option<Ident>,
    pub span: Span,
}

impl ProviderRef {
    pub fn display(&self) -> String {
        match &self.name {
            Some(name) => format!("{}.{}", self.kind.text, name.text),
            None => format!("{}.*", self.kind.text),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub waivers: Vec<Waiver>,
    /// `@keep("reason")`: `writ tighten` leaves the grant as it is.
    pub keeps: Vec<Keep>,
    /// `@rate(100/min)`: how often `writ serve` decides requests the
    /// grant allows, at most.
    pub rates: Vec<GrantRate>,
    pub effect: Effect,
    pub provider: ProviderRef,
    pub actions: Vec<Ident>,
    pub resources: Vec<Str>,
    pub qualifiers: Vec<Qualifier>,
    pub conditions: Vec<Condition>,
}

/// `@rate(100/min)`, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRate {
    pub text: String,
    /// The rate's own span.
    pub value_span: Span,
    pub span: Span,
}

/// `@keep("used each quarter by the audit")`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keep {
    pub reason: Str,
    pub span: Span,
}

/// `@waive(wildcard_action, "reason")`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    pub lint: Ident,
    pub reason: Str,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualifier {
    pub kind: QualifierKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QualifierKind {
    /// `named "a", "b"`
    Named(Vec<Str>),
    /// `in namespace "ns"`
    Namespace(Str),
    /// `in cluster`
    Cluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConditionOp {
    Equals,
    NotEquals,
    In,
    Like,
    /// `<`, `<=`, `>`, `>=`: for numbers and dates.
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl ConditionOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionOp::Equals => "==",
            ConditionOp::NotEquals => "!=",
            ConditionOp::In => "in",
            ConditionOp::Like => "like",
            ConditionOp::Less => "<",
            ConditionOp::LessOrEqual => "<=",
            ConditionOp::Greater => ">",
            ConditionOp::GreaterOrEqual => ">=",
        }
    }

    /// `<`, `<=`, `>` or `>=`.
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            ConditionOp::Less
                | ConditionOp::LessOrEqual
                | ConditionOp::Greater
                | ConditionOp::GreaterOrEqual
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub key: Ident,
    pub op: ConditionOp,
    pub op_span: Span,
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunsOn {
    /// Lints accepted for this workload (`@waive(broad_trust, "…")`).
    pub waivers: Vec<Waiver>,
    pub provider: ProviderRef,
    pub attributes: Vec<RunsOnAttribute>,
}

/// One `keyword "value"` pair of a `runs_on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunsOnAttribute {
    pub name: Ident,
    pub value: Str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub agent: Ident,
    pub allowed: bool,
    pub provider: ProviderRef,
    pub action: Ident,
    pub resource: Str,
    /// `named "x"`: the request is about this one object.
    pub named: Option<Str>,
    pub place: Option<Qualifier>,
}
