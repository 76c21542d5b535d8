//! One file per subcommand. Each takes its parsed arguments and an output
//! stream, and returns its exit code; the shared steps are in
//! [`crate::pipeline`] (load, check, lower, plan), [`crate::live`]
//! (providers) and [`crate::actions`] (GitHub Actions).

pub mod apply;
pub mod check;
pub mod drift;
pub mod explain;
pub mod fmt;
pub mod graph;
pub mod import;
pub mod init;
pub mod lower;
pub mod lsp;
pub mod plan;
pub mod revoke;
pub mod serve;
pub mod snapshot;
pub mod test;
pub mod tighten;
pub mod token;
pub mod unlock;
pub mod usage;
