//! The `writ` command line: configuration, project loading, rendering and
//! the commands. This is the only part of writ that reads files for the
//! compiler, prints, exits, or reads `writ.toml`, the environment and the
//! clock; the compiler (`writ-compiler`) stays pure.
//!
//! Modules call only downwards:
//! `main → cli → commands → {pipeline, live, actions} → {render, report,
//! term, clock, project → config, error}`.

pub mod actions;
pub mod brake;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod describe;
pub mod error;
pub mod live;
pub mod logs;
pub mod lsp;
pub mod pipeline;
pub mod project;
pub mod render;
pub mod report;
pub mod serve;
pub mod term;
