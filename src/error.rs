//! The one error type of the command line: every failure that ends a
//! command (exit 1, in every command) with `error: …` on standard error.

use crate::config::ConfigError;
use crate::project::LoadError;
use writ_provider_core::ProviderError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Writing to standard output or error failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Anything else, in words.
    #[error("{0}")]
    Message(String),
}

impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError::Message(message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> CliError {
        CliError::Message(message.to_string())
    }
}

/// A command's exit code, or the error that ended it.
pub type Outcome = Result<i32, CliError>;
