//! Physical lines → logical lines (comments, blank lines, `\` continuations) → tokens.

/// Where a physical line starts in the logical text. Each physical line is kept whole (only
/// a trailing `\` dropped), so a byte's column is counted from its segment's start.
#[derive(Clone, Copy, Debug)]
struct Segment {
    offset: usize,
    line: u32,
}

/// One directive's text with continuations joined, and a map back to physical positions.
#[derive(Debug)]
pub(super) struct LogicalLine {
    pub text: String,
    segments: Vec<Segment>,
}

impl LogicalLine {
    /// The physical (line, column) of a byte offset in `text`; columns count characters.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let idx = self
            .segments
            .partition_point(|s| s.offset <= offset)
            .saturating_sub(1);
        let seg = self.segments[idx];
        let end = offset.min(self.text.len());
        let column = self.text[seg.offset..end].chars().count() as u32 + 1;
        (seg.line, column)
    }
}

/// A logical line left open by a `\` on the last line of the file: (line, column) of it.
pub(super) type DanglingContinuation = (u32, u32);

/// Splits text into logical lines. A `#` after optional whitespace starts a comment line
/// (only where a logical line starts: inside a continuation it is ordinary text); a trailing
/// `\` joins the next physical line (both removed, the indentation kept as a separator).
pub(super) fn logical_lines(text: &str) -> Result<Vec<LogicalLine>, DanglingContinuation> {
    let mut out = Vec::new();
    let mut current: Option<LogicalLine> = None;
    let mut last_backslash = (0, 0);
    for (idx, raw) in text.split('\n').enumerate() {
        let line_no = idx as u32 + 1;
        let physical = raw.strip_suffix('\r').unwrap_or(raw);
        let mut logical = match current.take() {
            Some(open) => open,
            None => {
                let trimmed = physical.trim_start();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                LogicalLine {
                    text: String::new(),
                    segments: Vec::new(),
                }
            }
        };
        logical.segments.push(Segment {
            offset: logical.text.len(),
            line: line_no,
        });
        match physical.strip_suffix('\\') {
            Some(body) => {
                last_backslash = (line_no, body.chars().count() as u32 + 1);
                logical.text.push_str(body);
                current = Some(logical);
            }
            None => {
                logical.text.push_str(physical);
                out.push(logical);
            }
        }
    }
    match current {
        Some(_) => Err(last_backslash),
        None => Ok(out),
    }
}

/// One whitespace-separated word or double-quoted string of a logical line. Text right after a
/// closing quote (`"a"b`) starts the next token: lenient, and CRS never writes that.
#[derive(Debug, Clone)]
pub(super) struct Token {
    /// The value: quotes removed and `\"` unescaped; other `\x` kept as written, since
    /// regexes (`\d`, `\\`) must reach the operator unchanged (as in ModSecurity).
    pub text: String,
    /// Byte offset in the logical line where the token (its opening quote) starts.
    pub offset: usize,
}

/// Error from tokenising: the byte offset of an unterminated quote.
pub(super) struct UnterminatedQuote(pub usize);

pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, UnterminatedQuote> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if bytes[i] == b'"' {
            let mut value = String::new();
            i += 1;
            let mut closed = false;
            let mut chunk = i;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        closed = true;
                        break;
                    }
                    b'\\' if bytes.get(i + 1) == Some(&b'"') => {
                        value.push_str(&text[chunk..i]);
                        value.push('"');
                        i += 2;
                        chunk = i;
                    }
                    // `\\` is kept, and its second backslash cannot escape a quote.
                    b'\\' if bytes.get(i + 1) == Some(&b'\\') => i += 2,
                    _ => i += 1,
                }
            }
            if !closed {
                return Err(UnterminatedQuote(start));
            }
            value.push_str(&text[chunk..i]);
            i += 1;
            tokens.push(Token {
                text: value,
                offset: start,
            });
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            tokens.push(Token {
                text: text[start..i].to_string(),
                offset: start,
            });
        }
    }
    Ok(tokens)
}
