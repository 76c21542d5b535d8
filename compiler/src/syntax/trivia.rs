//! A lexical pass that tells code from strings and comments, shared by the
//! parser's nesting check and the formatter's comment finder, so that both
//! agree on where a comment or a string begins and ends.

/// What the scan finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// A `//` or `/* */` comment, as a byte range; `doc` for `///` lines.
    Comment { start: usize, end: usize, doc: bool },
    /// One byte of code (outside strings and comments) and its offset.
    Code { at: usize, byte: u8 },
}

/// Calls `visit` for every comment and every byte of code, in order.
/// Strings are skipped whole (an unterminated one ends at its line's end).
pub fn scan(text: &str, mut visit: impl FnMut(Piece)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                let doc = bytes.get(i + 2) == Some(&b'/') && bytes.get(i + 3) != Some(&b'/');
                visit(Piece::Comment { start: i, end, doc });
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .map_or(text.len(), |n| i + 2 + n + 2);
                visit(Piece::Comment {
                    start: i,
                    end,
                    doc: false,
                });
                i = end;
            }
            byte => {
                visit(Piece::Code { at: i, byte });
                i += 1;
            }
        }
    }
}
