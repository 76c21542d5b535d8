//! Byte offsets (writ's spans) and LSP positions (lines and UTF-16 code
//! units, as the protocol counts them by default) of one text.

use lsp_types::{Position, Range};

/// Where each line of a text starts.
pub struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(at, _)| at + 1));
        Lines { starts }
    }

    /// The position of a byte offset (clamped to the text, and to a
    /// character boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let column: usize = text[self.starts[line]..offset]
            .chars()
            .map(char::len_utf16)
            .sum();
        Position::new(to_u32(line), to_u32(column))
    }

    pub fn range(&self, text: &str, start: usize, end: usize) -> Range {
        Range::new(self.position(text, start), self.position(text, end))
    }

    /// The byte offset of a position; a column past the line's end is its
    /// end, a line past the text's end is the text's end.
    pub fn offset(&self, text: &str, position: Position) -> usize {
        let Some(&start) = self.starts.get(position.line as usize) else {
            return text.len();
        };
        let end = self
            .starts
            .get(position.line as usize + 1)
            .map_or(text.len(), |next| next - 1);
        let mut units = 0usize;
        for (at, c) in text[start..end].char_indices() {
            if units >= position.character as usize {
                return start + at;
            }
            units += c.len_utf16();
        }
        end
    }
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units_and_round_trip() {
        let text = "ab\n€x𝄞y\n\nlast";
        let lines = Lines::new(text);
        for offset in [0, 1, 2, 3, 6, 7, 11, 12, 13, 14, text.len()] {
            let position = lines.position(text, offset);
            assert_eq!(lines.offset(text, position), offset, "{offset}");
        }
        // `€` is one unit, `𝄞` two.
        assert_eq!(lines.position(text, 11), Position::new(1, 4));
        // Past the end of a line: its end; past the last line: the end.
        assert_eq!(lines.offset(text, Position::new(0, 99)), 2);
        assert_eq!(lines.offset(text, Position::new(9, 0)), text.len());
        // Inside a character: the character's start.
        assert_eq!(lines.position(text, 4), Position::new(1, 0));
    }
}
