//! Errors from loading SecLang files: each names where in which file the problem is.

use super::ast::Location;

/// What kind of problem a SecLang file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecLangErrorKind {
    /// Could not read a file (or an `Include` glob matched nothing).
    Io,
    /// Quotes, continuations, target or action lists that do not parse.
    Syntax,
    UnknownDirective,
    UnknownVariable,
    UnknownOperator,
    UnknownTransformation,
    UnknownAction,
    /// An operator or action argument that does not compile (bad regex, bad number, bad CIDR,
    /// missing data file, unknown `skipAfter` marker, duplicate id, broken chain).
    BadArgument,
}

/// A SecLang load error with its location, e.g.
/// `rules/REQUEST-942.conf:120:5: unknown operator @rxx`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {detail}")]
pub struct SecLangError {
    location: Location,
    kind: SecLangErrorKind,
    detail: String,
}

impl SecLangError {
    pub fn new(
        location: Location,
        kind: SecLangErrorKind,
        detail: impl Into<String>,
    ) -> SecLangError {
        SecLangError {
            location,
            kind,
            detail: detail.into(),
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn kind(&self) -> SecLangErrorKind {
        self.kind
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }
}
