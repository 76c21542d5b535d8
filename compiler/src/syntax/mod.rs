//! Parsing: source text to [`ast::SourceFile`], or one `writ::syntax` diagnostic.

pub mod ast;
mod parser;
pub mod trivia;

pub use parser::{parse_file, unescape_string};
