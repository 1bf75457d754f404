//! SecLang operators (`@rx`, `@pm`, `@eq`, `@detectSQLi` …), compiled once at load.
//!
//! Files: `rx` (regular expressions, PCRE syntax translation and the backtracking fallback),
//! `pm` (phrase lists and their data files), `ip` (`@ipMatch`), `validate` (the
//! `@validate*` operators), `strings` (the byte-exact string and number comparisons).
//!
//! Names are matched case-insensitively, as ModSecurity does. Negation (`!@op`) is applied in
//! [`Operator::matches`]. Arguments holding a macro (`%{tx.paranoia_level}`) are expanded
//! through [`MatchCtx::expand`] on every call; for `@rx` that means the pattern is compiled on
//! every call too (no cache; CRS v4 has no `@rx` with a macro, so this costs nothing there).

use std::path::Path;

use super::ast::OperatorAst;

mod ip;
mod needles;
mod pm;
mod rx;
mod strings;
mod validate;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

use ip::IpSet;
use pm::Phrases;
use rx::Rx;
pub(in crate::seclang) use strings::parse_int;
use strings::{Arg, NumOp, StrOp};
use validate::ByteSet;

/// Why an operator did not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// No operator of that name.
    #[error("unknown or unsupported operator @{0}")]
    Unknown(String),
    /// The argument does not compile (bad regex, number, CIDR, missing data file …).
    #[error("bad operator argument: {0}")]
    BadArgument(String),
}

/// What an operator may need from the transaction while matching.
pub struct MatchCtx<'a> {
    /// Expands macros (`%{tx.paranoia_level}`, `%{MATCHED_VAR}`) in arguments that hold them.
    pub expand: &'a dyn Fn(&str) -> String,
    /// True when the rule has `capture`: fill `captures` on a match (`@rx`: TX.0 the whole
    /// match, TX.1..9 the groups; `@pm`: TX.0 the phrase; `@detectSQLi`: TX.0 the fingerprint).
    pub capture: bool,
    pub captures: &'a mut Vec<Vec<u8>>,
}

/// A compiled operator, negation included.
#[derive(Debug)]
pub struct Operator {
    name: &'static str,
    negated: bool,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Rx(Rx),
    Pm(Phrases),
    Str(StrOp, Arg),
    Num(NumOp, Arg),
    Ip(IpSet),
    ByteRange(ByteSet),
    UrlEncoding,
    Utf8Encoding,
    Sqli,
    Xss,
    Always,
    Never,
    /// Needs what this engine does not have (a GeoIP database, DNS blocklist lookups):
    /// never matches, negated or not, and the compiler counts it.
    Unavailable,
}

/// The operators this module knows, by lower-cased name, with their canonical spelling.
const NAMES: &[(&str, &str)] = &[
    ("rx", "rx"),
    ("pm", "pm"),
    ("pmfromfile", "pmFromFile"),
    ("pmf", "pmFromFile"),
    ("streq", "streq"),
    ("contains", "contains"),
    ("beginswith", "beginsWith"),
    ("endswith", "endsWith"),
    ("containsword", "containsWord"),
    ("within", "within"),
    ("strmatch", "strmatch"),
    ("eq", "eq"),
    ("ge", "ge"),
    ("gt", "gt"),
    ("lt", "lt"),
    ("le", "le"),
    ("ipmatch", "ipMatch"),
    ("ipmatchfromfile", "ipMatchFromFile"),
    ("ipmatchf", "ipMatchFromFile"),
    ("validatebyterange", "validateByteRange"),
    ("validateurlencoding", "validateUrlEncoding"),
    ("validateutf8encoding", "validateUtf8Encoding"),
    ("detectsqli", "detectSQLi"),
    ("detectxss", "detectXSS"),
    ("unconditionalmatch", "unconditionalMatch"),
    ("nomatch", "noMatch"),
    ("geolookup", "geoLookup"),
    ("rbl", "rbl"),
];

impl Operator {
    /// Compiles `ast`; data files (`@pmFromFile`, `@ipMatchFromFile`) resolve against `base_dir`.
    pub fn compile(ast: &OperatorAst, base_dir: &Path) -> Result<Operator, OperatorError> {
        let lower = ast.name.to_ascii_lowercase();
        let name = NAMES
            .iter()
            .find(|(l, _)| *l == lower)
            .map(|(_, canonical)| *canonical)
            .ok_or_else(|| OperatorError::Unknown(ast.name.clone()))?;
        let arg = ast.argument.as_str();
        let kind = match name {
            "rx" => Kind::Rx(Rx::compile(arg)?),
            "pm" => Kind::Pm(Phrases::from_list(arg)?),
            "pmFromFile" => Kind::Pm(Phrases::from_files(arg, base_dir)?),
            "streq" => Kind::Str(StrOp::Eq, Arg::new(arg)),
            "contains" => Kind::Str(StrOp::Contains, Arg::new(arg)),
            "beginsWith" => Kind::Str(StrOp::BeginsWith, Arg::new(arg)),
            "endsWith" => Kind::Str(StrOp::EndsWith, Arg::new(arg)),
            "containsWord" => Kind::Str(StrOp::ContainsWord, Arg::new(arg)),
            "within" => Kind::Str(StrOp::Within, Arg::new(arg)),
            "strmatch" => Kind::Str(StrOp::Contains, Arg::new(arg)),
            "eq" => Kind::Num(NumOp::Eq, Arg::number(arg)?),
            "ge" => Kind::Num(NumOp::Ge, Arg::number(arg)?),
            "gt" => Kind::Num(NumOp::Gt, Arg::number(arg)?),
            "lt" => Kind::Num(NumOp::Lt, Arg::number(arg)?),
            "le" => Kind::Num(NumOp::Le, Arg::number(arg)?),
            "ipMatch" => Kind::Ip(IpSet::from_list(arg)?),
            "ipMatchFromFile" => Kind::Ip(IpSet::from_files(arg, base_dir)?),
            "validateByteRange" => Kind::ByteRange(ByteSet::parse(arg)?),
            "validateUrlEncoding" => Kind::UrlEncoding,
            "validateUtf8Encoding" => Kind::Utf8Encoding,
            "detectSQLi" => Kind::Sqli,
            "detectXSS" => Kind::Xss,
            "unconditionalMatch" => Kind::Always,
            "geoLookup" | "rbl" => Kind::Unavailable,
            _ => Kind::Never,
        };
        Ok(Operator {
            name,
            negated: ast.negated,
            kind,
        })
    }

    /// True when `input` matches (after negation).
    pub fn matches(&self, input: &[u8], ctx: &mut MatchCtx<'_>) -> bool {
        if matches!(self.kind, Kind::Unavailable) {
            return false;
        }
        self.raw_match(input, ctx) != self.negated
    }

    /// True for `@geoLookup` and `@rbl`, which never match here (no GeoIP database, no DNS
    /// blocklist lookups): CRS 3.3's IP-reputation rules load and stay silent.
    pub fn unavailable(&self) -> bool {
        matches!(self.kind, Kind::Unavailable)
    }

    /// Literals one of which (ASCII case folded) every value this operator matches contains:
    /// `@rx` when its pattern says, `@pm`'s phrases. `None` for negated operators and when
    /// nothing is known.
    pub fn needles(&self) -> Option<&[Vec<u8>]> {
        if self.negated {
            return None;
        }
        match &self.kind {
            Kind::Rx(rx) => rx.needles(),
            Kind::Pm(p) if !p.lowered.iter().any(Vec::is_empty) => Some(&p.lowered),
            _ => None,
        }
    }

    /// True when this is an `@rx` that needed the backtracking fallback (PCRE-only syntax).
    pub fn uses_fallback(&self) -> bool {
        matches!(&self.kind, Kind::Rx(rx) if rx.uses_fallback())
    }

    /// The operator's canonical name (`rx`, `pmFromFile`, `detectSQLi`), aliases resolved.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// True for `!@op`.
    pub fn negated(&self) -> bool {
        self.negated
    }

    fn raw_match(&self, input: &[u8], ctx: &mut MatchCtx<'_>) -> bool {
        match &self.kind {
            Kind::Rx(rx) => rx.matches(input, ctx),
            Kind::Pm(phrases) => phrases.matches(input, ctx),
            Kind::Str(op, arg) => op.matches(input, &arg.resolve(ctx)),
            Kind::Num(op, arg) => op.matches(parse_int(input), arg.resolve_int(ctx)),
            Kind::Ip(set) => set.matches(input),
            Kind::ByteRange(set) => set.any_outside(input),
            Kind::UrlEncoding => validate::invalid_url_encoding(input),
            Kind::Utf8Encoding => std::str::from_utf8(input).is_err(),
            Kind::Sqli => {
                let hit = rampart_rules::lang::detect::sqli(input);
                if hit && ctx.capture {
                    let fingerprint = rampart_rules::lang::detect::sqli_fingerprint(input);
                    ctx.captures.clear();
                    ctx.captures.push(fingerprint.into_bytes());
                }
                hit
            }
            Kind::Xss => rampart_rules::lang::detect::xss(input),
            Kind::Always => true,
            Kind::Never | Kind::Unavailable => false,
        }
    }
}

/// Splits a file-list argument (`a.data b.data`) and reads each file relative to `base_dir`,
/// calling `line` for every non-blank, non-`#` line, trimmed.
fn read_data_files(
    argument: &str,
    base_dir: &Path,
    mut line: impl FnMut(&str) -> Result<(), OperatorError>,
) -> Result<(), OperatorError> {
    let mut any = false;
    for name in argument.split_ascii_whitespace() {
        any = true;
        if name.starts_with("http://") || name.starts_with("https://") {
            return Err(OperatorError::BadArgument(format!(
                "data file {name}: remote data files are not supported"
            )));
        }
        let path = base_dir.join(name);
        let text = std::fs::read(&path).map_err(|e| {
            OperatorError::BadArgument(format!("data file {}: {e}", path.display()))
        })?;
        let text = String::from_utf8_lossy(&text);
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            line(l)?;
        }
    }
    if !any {
        return Err(OperatorError::BadArgument("no data file named".into()));
    }
    Ok(())
}
