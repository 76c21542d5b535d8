//! The `writ` command line: configuration, project loading, rendering and
//! the commands. This is the only part of writ that reads files for the
//! compiler, prints, exits, or reads `writ.toml` and the environment; the
//! compiler (`writ-compiler`) stays pure.

pub mod cli;
pub mod config;
pub mod github;
pub mod live;
pub mod project;
pub mod render;
pub mod report;
