//! SecLang operators (`@rx`, `@pm`, `@eq`, `@detectSQLi` …), compiled once at load.
//! (Owned by the operators work; this is the agreed signature.)

use std::path::Path;

use super::ast::OperatorAst;

/// Why an operator did not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorError {
    /// No operator of that name.
    Unknown(String),
    /// The argument does not compile (bad regex, number, CIDR, missing data file …).
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
    _private: (),
}

impl Operator {
    /// Compiles `ast`; data files (`@pmFromFile`, `@ipMatchFromFile`) resolve against `base_dir`.
    pub fn compile(ast: &OperatorAst, base_dir: &Path) -> Result<Operator, OperatorError> {
        let _ = (ast, base_dir);
        unimplemented!("seclang operators not written yet")
    }

    /// True when `input` matches (after negation).
    pub fn matches(&self, input: &[u8], ctx: &mut MatchCtx<'_>) -> bool {
        let _ = (input, ctx);
        unimplemented!("seclang operators not written yet")
    }

    /// True when this is an `@rx` that needed the backtracking fallback (PCRE-only syntax).
    pub fn uses_fallback(&self) -> bool {
        unimplemented!("seclang operators not written yet")
    }
}
