//! The expression language: lexer → AST with spans → type check → typed tree, and the host
//! evaluator. The reference for rule writers is `rules/docs/reference.md`.

pub mod ast;
pub mod check;
pub mod detect;
pub mod eval;
pub mod fields;
pub mod functions;
mod lexer;
mod parser;
pub mod path;
pub mod sets;
pub mod span;
pub mod types;

pub use check::{check_rule, ListDef, Lists, TExpr, TKind};
pub use eval::{eval_bool, FieldSource};
pub use fields::{Field, Layer};
pub use parser::parse;
pub use span::{Location, Origin, Span};
pub use types::{Ty, Value};

/// What is wrong with an expression (the span says where).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("unexpected character `{text}`")]
    BadToken { text: String },
    #[error("`{text}` is not a number")]
    BadNumber { text: String },
    #[error("unterminated string")]
    UnterminatedString,
    #[error("bad escape in a string (use \\\", \\\\, \\n, \\r, \\t, \\0 or \\xHH)")]
    BadEscape,
    #[error("expected {expected}, found {found}")]
    Expected {
        expected: &'static str,
        found: String,
    },
    #[error("nesting deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("unknown field `{name}`{hint}")]
    UnknownField { name: String, hint: String },
    #[error("unknown function `{name}`")]
    UnknownFunction { name: String },
    #[error("unknown list `${name}`")]
    UnknownList { name: String },
    #[error("type error: {what}")]
    Type { what: String },
    #[error("`{text}` is not a valid address or CIDR: {why}")]
    BadAddr { text: String, why: String },
    #[error("regex cannot be compiled for linear-time matching: {why}")]
    BadRegex { why: String },
    #[error("set of {count} items; inline sets hold at most {max} (put it in a list)")]
    SetTooLarge { count: usize, max: usize },
    #[error("the XDP back end cannot express this exactly: {why}")]
    NotXdp { why: String },
}

/// An expression that does not compile: what is wrong with it ([`ExprError::kind`]) and where
/// in its text ([`ExprError::span`]). It shows as the kind's message; a rule file's error
/// ([`crate::RuleError`]) adds the file, line, column and caret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ExprError {
    kind: ErrorKind,
    span: Span,
}

impl ExprError {
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The offending bytes of the expression's text.
    pub fn span(&self) -> Span {
        self.span
    }
}

impl From<(ErrorKind, Span)> for ExprError {
    fn from((kind, span): (ErrorKind, Span)) -> ExprError {
        ExprError { kind, span }
    }
}

/// Parses and checks one expression.
pub fn compile_expr(src: &str, lists: &Lists) -> Result<TExpr, ExprError> {
    let ast = parse(src)?;
    Ok(check_rule(&ast, lists)?)
}
