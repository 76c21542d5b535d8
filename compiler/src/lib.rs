//! The writ language: parser, checker, evaluator and formatter.
//!
//! This crate is a pure function from source text (and the current date) to
//! diagnostics and a checked [`model::Model`]. It must never touch the file
//! system, the network, the clock or the environment, and must never be
//! async or depend on a cloud SDK: callers pass everything in. That keeps it
//! deterministic in CI, fast to test, and usable from an editor.

// A library never prints: what it has to say goes to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod access;
pub mod address;
pub mod check;
pub mod diagnostic;
pub mod facts;
pub mod model;
pub mod pattern;
pub mod source;
pub mod suggest;
pub mod syntax;
pub mod values;

pub use check::{
    check, check_incremental, check_parsed, check_with, CheckOptions, Checked, Memo, Parsed,
};
pub use diagnostic::{Code, Diagnostic, Label, Severity};
pub use source::{FileId, SourceFile, SourceMap, Span};
pub mod decide;
pub mod eval;
pub mod format;
pub mod graph;
pub mod import;
pub mod lower;
pub mod ownership;
pub mod plan;
pub mod policy;
pub mod resource;
pub mod snapshot;
pub mod usage;
