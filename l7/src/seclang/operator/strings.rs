//! Byte-exact string comparisons (`@streq`, `@contains`, `@within` …) and integer comparisons
//! (`@eq`, `@lt` …), with arguments that may hold macros.

use std::borrow::Cow;

use super::{MatchCtx, OperatorError};

/// An operator argument: fixed, or holding a macro and expanded on every call.
#[derive(Debug)]
pub(super) enum Arg {
    Fixed(String),
    Macro(String),
    /// A number known at load time (`@lt 2`).
    Int(i64),
}

impl Arg {
    pub(super) fn new(argument: &str) -> Arg {
        if has_macro(argument) {
            Arg::Macro(argument.to_string())
        } else {
            Arg::Fixed(argument.to_string())
        }
    }

    /// A numeric argument: a macro, or text that must start with an integer.
    pub(super) fn number(argument: &str) -> Result<Arg, OperatorError> {
        if has_macro(argument) {
            return Ok(Arg::Macro(argument.to_string()));
        }
        let trimmed = argument.trim_start();
        let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
        if !digits.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(OperatorError::BadArgument(format!(
                "{argument:?} is not an integer"
            )));
        }
        Ok(Arg::Int(parse_int(argument.as_bytes())))
    }

    pub(super) fn resolve<'s>(&'s self, ctx: &MatchCtx<'_>) -> Cow<'s, str> {
        match self {
            Arg::Fixed(s) => Cow::Borrowed(s),
            Arg::Macro(s) => Cow::Owned((ctx.expand)(s)),
            Arg::Int(n) => Cow::Owned(n.to_string()),
        }
    }

    pub(super) fn resolve_int(&self, ctx: &MatchCtx<'_>) -> i64 {
        match self {
            Arg::Int(n) => *n,
            Arg::Fixed(s) => parse_int(s.as_bytes()),
            Arg::Macro(s) => parse_int((ctx.expand)(s).as_bytes()),
        }
    }
}

/// True when `s` holds a `%{name}` macro: a name starting with a letter or `_`, then letters,
/// digits, `_ . : -` (so the regex quantifier in `%{1,2}` is not a macro).
pub(super) fn has_macro(s: &str) -> bool {
    s.match_indices("%{").any(|(at, _)| {
        let rest = &s.as_bytes()[at + 2..];
        let len = rest
            .iter()
            .take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-'))
            .count();
        len > 0
            && (rest[0].is_ascii_alphabetic() || rest[0] == b'_')
            && rest.get(len) == Some(&b'}')
    })
}

/// Parses an integer the way ModSecurity (`atoi`) does: leading whitespace skipped, an
/// optional sign, then digits up to the first non-digit; no digits → 0. Saturates at the
/// `i64` bounds instead of overflowing.
pub(in crate::seclang) fn parse_int(input: &[u8]) -> i64 {
    let mut i = 0;
    while i < input.len() && matches!(input[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let negative = match input.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut n: i64 = 0;
    while let Some(d) = input.get(i).filter(|c| c.is_ascii_digit()) {
        let d = i64::from(d - b'0');
        n = if negative {
            n.saturating_mul(10).saturating_sub(d)
        } else {
            n.saturating_mul(10).saturating_add(d)
        };
        i += 1;
    }
    n
}

#[derive(Clone, Copy, Debug)]
pub(super) enum StrOp {
    Eq,
    Contains,
    BeginsWith,
    EndsWith,
    ContainsWord,
    /// The input is found within the argument.
    Within,
}

impl StrOp {
    pub(super) fn matches(self, input: &[u8], arg: &str) -> bool {
        let arg = arg.as_bytes();
        match self {
            StrOp::Eq => input == arg,
            StrOp::Contains => find(input, arg).is_some(),
            StrOp::BeginsWith => input.starts_with(arg),
            StrOp::EndsWith => input.ends_with(arg),
            StrOp::ContainsWord => contains_word(input, arg),
            StrOp::Within => find(arg, input).is_some(),
        }
    }
}

/// The first position of `needle` in `haystack` (an empty needle is found at 0).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `@containsWord`: `word` occurs with a non-word byte (or the input's edge) on both sides,
/// word bytes being ASCII letters, digits and `_` (ModSecurity v2). An empty word matches.
fn contains_word(input: &[u8], word: &[u8]) -> bool {
    if word.is_empty() {
        return true;
    }
    let mut start = 0;
    while let Some(at) = find(&input[start..], word) {
        let at = start + at;
        let end = at + word.len();
        let before_ok = at == 0 || !is_word(input[at - 1]);
        let after_ok = end == input.len() || !is_word(input[end]);
        if before_ok && after_ok {
            return true;
        }
        start = at + 1;
    }
    false
}

#[derive(Clone, Copy, Debug)]
pub(super) enum NumOp {
    Eq,
    Ge,
    Gt,
    Lt,
    Le,
}

impl NumOp {
    pub(super) fn matches(self, input: i64, arg: i64) -> bool {
        match self {
            NumOp::Eq => input == arg,
            NumOp::Ge => input >= arg,
            NumOp::Gt => input > arg,
            NumOp::Lt => input < arg,
            NumOp::Le => input <= arg,
        }
    }
}
