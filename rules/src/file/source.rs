//! The rule file's name and text, which turn YAML marks and expression spans into errors
//! located by file, line and column, with the offending line and a caret.

use marked_yaml::Spanned;

use super::{RuleError, RuleErrorKind};
use crate::lang::{ErrorKind, Location, Origin, Span};

/// The rule file being loaded: its name and text.
pub(super) struct Source<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Source<'_> {
    /// An error at a 1-based line/column of the file, with that line as the snippet.
    pub(super) fn at(
        &self,
        line: usize,
        column: usize,
        width: usize,
        kind: RuleErrorKind,
    ) -> RuleError {
        let src = self.text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        let caret = crate::lang::span::snippet(src, column.saturating_sub(1), width);
        let location = Location {
            file: self.file.to_string(),
            line,
            column,
            snippet: caret,
        };
        RuleError::new(location, kind)
    }

    pub(super) fn spanned<T>(&self, s: &Spanned<T>, kind: RuleErrorKind) -> RuleError {
        let (line, col) = s.span().start().map_or((0, 0), |m| (m.line(), m.column()));
        let width = self
            .text
            .lines()
            .nth(line.saturating_sub(1))
            .map_or(1, |l| l.len().saturating_sub(col.saturating_sub(1)));
        self.at(line, col, width, kind)
    }

    /// Where the expression's first character is: after an opening quote, or on the first
    /// content line of a block scalar.
    fn origin(&self, s: &Spanned<String>) -> Origin {
        let (line, col) = s.span().start().map_or((1, 1), |m| (m.line(), m.column()));
        let src_line = self.text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        let at = src_line.chars().nth(col.saturating_sub(1));
        let (line, column) = match at {
            Some('"') | Some('\'') => (line, col + 1),
            Some('|') | Some('>') => {
                let next = self.text.lines().nth(line).unwrap_or("");
                (line + 1, next.len() - next.trim_start().len() + 1)
            }
            _ => (line, col),
        };
        Origin {
            file: self.file.to_string(),
            line,
            column,
        }
    }

    pub(super) fn expr_error(&self, s: &Spanned<String>, kind: ErrorKind, span: Span) -> RuleError {
        RuleError::new(
            Location::resolve(&self.origin(s), s, span),
            RuleErrorKind::Expr(kind),
        )
    }
}
