//! `@rx`: PCRE-syntax patterns on byte strings.
//!
//! Patterns go through [`translate`] (PCRE spellings regex-syntax reads differently or
//! rejects, see there), then compile with `regex_automata::meta::Regex` with Unicode off and
//! UTF-8 off: the regex matches bytes as PCRE (without `PCRE_UTF8`) does, `(?i)` folds ASCII
//! only, `\w \d \s` are ASCII and `.` is any byte but `\n`.
//!
//! A pattern regex-automata cannot take (lookaround, backreferences, atomic groups, `\Z` …)
//! falls back to `fancy_regex`, a backtracking engine, and [`Rx::uses_fallback`] says so. It
//! runs on the input decoded as Latin-1 (each byte one char `U+00XX`), so positions and
//! captures map 1:1 to the input bytes and `\xHH` in the pattern means byte `HH` as in PCRE.
//! Limitations there: `(?i)`, `\w`, `\s`, `\b` follow Unicode rules on the chars
//! `U+0080..U+00FF` (e.g. `\w` matches byte `0xE9`, `(?i)` folds `0xC0`/`0xE0`), and a match
//! that exceeds fancy-regex's backtrack limit counts as no match (as a PCRE match-limit error
//! does in ModSecurity).
//!
//! All 318 `@rx` patterns of CRS v4 compile natively; run over ~5,300 attack and benign
//! lines (libinjection corpora, CRS regression-test URIs and bodies) they matched exactly the
//! lines PCRE did (`LC_ALL=C grep -P`), checked by hand when this was written.
//!
//! PCRE's `$` (without `(?m)`) and `\Z` also match before a final `\n`; [`translate`] spells
//! that `(?:\n?\z)`, which consumes the newline (see [`PCRE_END`]).

use regex_automata::meta;
use regex_automata::util::syntax;

use super::strings::has_macro;
use super::{MatchCtx, OperatorError};

/// How many groups `capture` records after the whole match (TX.1 … TX.9).
const MAX_GROUPS: usize = 9;

#[derive(Debug)]
pub(super) enum Rx {
    Native {
        re: Box<meta::Regex>,
        /// What every match contains ([`super::needles`]), when something useful is known.
        needles: Option<Vec<Vec<u8>>>,
    },
    Fallback(Box<fancy_regex::Regex>),
    /// The pattern holds a macro: expanded, translated and compiled on every call.
    Macro(String),
}

impl Rx {
    pub(super) fn compile(pattern: &str) -> Result<Rx, OperatorError> {
        if has_macro(pattern) {
            return Ok(Rx::Macro(pattern.to_string()));
        }
        build(pattern, true)
            .map_err(|e| OperatorError::BadArgument(format!("@rx {pattern:?}: {e}")))
    }

    pub(super) fn needles(&self) -> Option<&[Vec<u8>]> {
        match self {
            Rx::Native { needles, .. } => needles.as_deref(),
            _ => None,
        }
    }

    pub(super) fn uses_fallback(&self) -> bool {
        matches!(self, Rx::Fallback(_))
    }

    pub(super) fn matches(&self, input: &[u8], ctx: &mut MatchCtx<'_>) -> bool {
        match self {
            Rx::Native { re, .. } => native_match(re, input, ctx),
            Rx::Fallback(re) => fallback_match(re, input, ctx),
            Rx::Macro(pattern) => match build(&(ctx.expand)(pattern), false) {
                Ok(Rx::Native { re, .. }) => native_match(&re, input, ctx),
                Ok(Rx::Fallback(re)) => fallback_match(&re, input, ctx),
                // An expanded pattern that does not compile matches nothing.
                _ => false,
            },
        }
    }
}

/// Translates and compiles `pattern`: natively when possible, else with the fallback;
/// `needles` finds the literals for the prefilter too (not for a pattern built per call).
fn build(pattern: &str, needles: bool) -> Result<Rx, String> {
    let translated = translate(pattern);
    let native = meta::Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            meta::Config::new()
                .utf8_empty(false)
                .nfa_size_limit(Some(64 << 20)),
        )
        .build(&translated);
    match native {
        Ok(re) => {
            // The same syntax settings as the regex's: the tree it was built from.
            let needles = needles
                .then(|| {
                    regex_syntax::ParserBuilder::new()
                        .unicode(false)
                        .utf8(false)
                        .build()
                        .parse(&translated)
                        .ok()
                })
                .flatten()
                .and_then(|h| super::needles::needles(&h));
            Ok(Rx::Native {
                re: Box::new(re),
                needles,
            })
        }
        Err(native_err) => match fancy_regex::RegexBuilder::new(&translated)
            .backtrack_limit(1_000_000)
            .build()
        {
            Ok(re) => Ok(Rx::Fallback(Box::new(re))),
            Err(e) => Err(format!("{native_err}; backtracking engine: {e}")),
        },
    }
}

fn native_match(re: &meta::Regex, input: &[u8], ctx: &mut MatchCtx<'_>) -> bool {
    // Most values do not match: answer those with the cheaper search, and only build
    // capture slots for the few that do.
    if !re.is_match(input) {
        return false;
    }
    if !ctx.capture {
        return true;
    }
    let mut caps = re.create_captures();
    re.captures(input, &mut caps);
    if !caps.is_match() {
        return false;
    }
    ctx.captures.clear();
    let groups = caps.group_len().min(MAX_GROUPS + 1);
    for i in 0..groups {
        let text = caps.get_group(i).map(|span| input[span.range()].to_vec());
        ctx.captures.push(text.unwrap_or_default());
    }
    true
}

fn fallback_match(re: &fancy_regex::Regex, input: &[u8], ctx: &mut MatchCtx<'_>) -> bool {
    let text: String = input.iter().map(|&b| char::from(b)).collect();
    if !ctx.capture {
        return re.is_match(&text).unwrap_or(false);
    }
    let Ok(Some(caps)) = re.captures(&text) else {
        return false;
    };
    ctx.captures.clear();
    let groups = caps.len().min(MAX_GROUPS + 1);
    for i in 0..groups {
        let group = caps.get(i).map(|m| latin1_bytes(m.as_str()));
        ctx.captures.push(group.unwrap_or_default());
    }
    true
}

/// Back from the Latin-1 view to bytes (every char there is `<= U+00FF`).
fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars().map(|c| u32::from(c) as u8).collect()
}

/// Rewrites the PCRE spellings that regex-syntax rejects or reads differently, keeping the
/// PCRE meaning:
///
/// - a non-ASCII char (the pattern is UTF-8 text, PCRE sees its bytes) → one `\xHH` a byte;
/// - `\x{HH}` up to `\x{FF}` → `\xHH` (regex-syntax takes only that form as a byte);
/// - `\<` `\>` (literal in PCRE, word boundaries in regex-syntax) → `<` `>`;
/// - an escaped non-ASCII char → its bytes, as above;
/// - in a class: `[` that does not open `[:name:]` → `\[` (PCRE has no nested classes), `&`
///   and `~` → escaped (regex-syntax's `&&` `~~` set operators), a `-` followed by `-` → `\-`,
///   a `]` right after the opening `[` or `[^` → `\]`;
/// - outside a class: a `{` that does not open a `{n}`, `{n,}` or `{n,m}` quantifier → `\{`
///   (PCRE reads it as a literal);
/// - `$` (unless the pattern turns on `(?m)`) and `\Z` → [`PCRE_END`].
pub(super) fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let multiline = enables_multiline(pattern);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            match chars.get(i + 1) {
                None => out.push('\\'),
                Some('Z') => out.push_str(PCRE_END),
                Some('<') => out.push('<'),
                Some('>') => out.push('>'),
                Some(&n) if !n.is_ascii() => push_bytes(&mut out, n),
                // `\x{…}`, `\p{…}`: copied whole, the braces are not a quantifier.
                Some(&n) if matches!(n, 'x' | 'p' | 'P') && chars.get(i + 2) == Some(&'{') => {
                    let end = chars[i..]
                        .iter()
                        .position(|&c| c == '}')
                        .map_or(chars.len(), |p| i + p + 1);
                    let inner: String = chars
                        .get(i + 3..end.saturating_sub(1))
                        .unwrap_or_default()
                        .iter()
                        .collect();
                    match u8::from_str_radix(&inner, 16) {
                        // regex-syntax reads only the two-digit form as a byte.
                        Ok(b) if n == 'x' && chars.get(end - 1) == Some(&'}') => {
                            out.push_str(&format!("\\x{b:02X}"));
                        }
                        _ => out.extend(&chars[i..end]),
                    }
                    i = end;
                    continue;
                }
                Some(&n) => {
                    out.push('\\');
                    out.push(n);
                }
            }
            i += 2;
            continue;
        }
        if !c.is_ascii() {
            push_bytes(&mut out, c);
            i += 1;
            continue;
        }
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                '[' => {
                    if let Some(len) = posix_class_len(&chars[i..]) {
                        out.extend(&chars[i..i + len]);
                        i += len;
                        continue;
                    }
                    out.push_str("\\[");
                }
                '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '-' if chars.get(i + 1) == Some(&'-') => out.push_str("\\-"),
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                continue;
            }
            '{' if !is_quantifier(&chars[i..]) => out.push_str("\\{"),
            '$' if !multiline => out.push_str(PCRE_END),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// PCRE's `$` outside multiline mode, and `\Z`: at the end or before a final `\n`. The
/// newline is consumed (regex-automata has no lookahead), so a whole-match capture includes
/// it and a pattern matching `\n` right after `$` no longer does (none in CRS v4).
const PCRE_END: &str = "(?:\\n?\\z)";

/// True when a `(?m)` / `(?im:` … flag group turns multiline mode on somewhere; `$` then keeps
/// regex-syntax's meaning, which equals PCRE's in multiline mode (`\n` line ends).
fn enables_multiline(pattern: &str) -> bool {
    pattern.match_indices("(?").any(|(at, _)| {
        let flags = pattern[at + 2..]
            .split([':', ')'])
            .next()
            .unwrap_or_default();
        flags.bytes().all(|c| c.is_ascii_alphabetic() || c == b'-')
            && flags.split('-').next().is_some_and(|on| on.contains('m'))
    })
}

fn push_bytes(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&format!("\\x{b:02X}"));
    }
}

/// The length of a `[:name:]` / `[:^name:]` POSIX class at the start of `s`, if one is there.
fn posix_class_len(s: &[char]) -> Option<usize> {
    if s.get(1) != Some(&':') {
        return None;
    }
    let mut j = 2;
    if s.get(j) == Some(&'^') {
        j += 1;
    }
    let start = j;
    while s.get(j).is_some_and(char::is_ascii_alphabetic) {
        j += 1;
    }
    (j > start && s.get(j) == Some(&':') && s.get(j + 1) == Some(&']')).then_some(j + 2)
}

/// True when `s` starts with `{n}`, `{n,}` or `{n,m}`.
fn is_quantifier(s: &[char]) -> bool {
    let mut j = 1;
    let digits = |j: &mut usize| {
        let start = *j;
        while s.get(*j).is_some_and(char::is_ascii_digit) {
            *j += 1;
        }
        *j > start
    };
    if !digits(&mut j) {
        return false;
    }
    if s.get(j) == Some(&',') {
        j += 1;
        digits(&mut j);
    }
    s.get(j) == Some(&'}')
}
