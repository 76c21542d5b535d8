//! `writ lsp`: the language server, on standard input and output (see
//! [`crate::lsp`]).

use crate::error::Outcome;

pub fn run() -> Outcome {
    crate::lsp::run()?;
    Ok(0)
}
