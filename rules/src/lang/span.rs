//! Byte spans inside one expression, and where that expression sits in its file, so every error
//! can name file, line and column and show the text with a caret.

use core::fmt;

/// Half-open byte range in the expression source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// Where an expression's first byte is in its file (1-based line and column).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

/// The source line and a caret line under `width` characters from `col0` (0-based, in chars).
/// A long line (a one-line list, a generated expression) is cut to a window around the caret.
pub fn snippet(text: &str, col0: usize, width: usize) -> String {
    const WINDOW: usize = 100;
    let chars: Vec<char> = text.chars().collect();
    let (start, lead) = if chars.len() > WINDOW && col0 > WINDOW / 3 {
        (col0 - WINDOW / 3, "…")
    } else {
        (0, "")
    };
    let end = (start + WINDOW).min(chars.len());
    let tail = if end < chars.len() { "…" } else { "" };
    let shown: String = chars[start.min(end)..end].iter().collect();
    let caret_at = lead.chars().count() + col0.saturating_sub(start);
    let width = width.max(1).min(end.saturating_sub(col0).max(1));
    format!(
        "  {lead}{shown}{tail}\n  {}{}",
        " ".repeat(caret_at),
        "^".repeat(width)
    )
}

/// A resolved position with the text of its line and a caret under the span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The source line and a caret line under the offending text.
    pub snippet: String,
}

impl Location {
    /// Resolves `span` inside `source`, an expression that starts at `origin`.
    pub fn resolve(origin: &Origin, source: &str, span: Span) -> Location {
        let start = span.start.min(source.len());
        let before = &source[..start];
        let line_in_expr = before.matches('\n').count();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let text = &source[line_start..line_end];
        let col_in_line = source[line_start..start].chars().count();
        let width = source[start..span.end.clamp(start, line_end)]
            .chars()
            .count()
            .max(1);
        let (line, column) = if line_in_expr == 0 {
            (origin.line, origin.column + col_in_line)
        } else {
            (origin.line + line_in_expr, col_in_line + 1)
        };
        let snippet = snippet(text, col_in_line, width);
        Location {
            file: origin.file.clone(),
            line,
            column,
            snippet,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let line = format!("{}BAD{}", "a".repeat(500), "b".repeat(500));
        let s = snippet(&line, 500, 3);
        let mut rows = s.lines();
        let (text, caret) = (rows.next().unwrap(), rows.next().unwrap());
        assert!(text.len() < 120 * 3 && text.contains("BAD"));
        let at = caret.find('^').unwrap(); // spaces: bytes == chars
        assert_eq!(text.chars().skip(at).take(3).collect::<String>(), "BAD");
    }

    #[test]
    fn resolves_columns_and_draws_a_caret() {
        let origin = Origin {
            file: "r.yaml".into(),
            line: 7,
            column: 17,
        };
        let loc = Location::resolve(&origin, "tcp.dstport eq \"x\"", Span::new(15, 18));
        assert_eq!(loc.to_string(), "r.yaml:7:32");
        assert_eq!(loc.snippet, "  tcp.dstport eq \"x\"\n                 ^^^");
    }
}
