//! What is wrong with a rule file, and where: [`RuleError`] and its kinds, and YAML errors turned
//! into the same file:line:column form with a caret.

use std::fmt;

use super::source::Source;
use super::{DEFAULT_RULE_IDS, FILE_VERSION};
use crate::lang::{ErrorKind, Location};

/// A rule-file error: where, and what. Opaque (boxed, so results stay small); read it through
/// the accessors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(Box<ErrorInner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct ErrorInner {
    location: Location,
    kind: RuleErrorKind,
}

impl RuleError {
    pub(crate) fn new(location: Location, kind: RuleErrorKind) -> RuleError {
        RuleError(Box::new(ErrorInner { location, kind }))
    }
}

/// What is wrong with a rule file; [`RuleError::kind`] gives it, the error places it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleErrorKind {
    #[error("cannot read the file: {why}")]
    Read { why: String },
    #[error("not valid YAML: {why}")]
    Yaml { why: String },
    #[error("{why}")]
    Schema { why: String },
    #[error("unsupported file version {found} (this rampart reads version {FILE_VERSION})")]
    Version { found: u32 },
    #[error(transparent)]
    Expr(#[from] ErrorKind),
    #[error("rule id {id} is already used on line {first_line}")]
    DuplicateId { id: u32, first_line: usize },
    #[error("rule id {id} is taken by rule `{other_ref}` of {other_file}, which runs beside this file (ids {} to {} are kept for the default rules)", DEFAULT_RULE_IDS.start(), DEFAULT_RULE_IDS.end())]
    IdOfOther {
        id: u32,
        other_file: String,
        other_ref: String,
    },
    #[error("rule id 0 is reserved: the L7 engine reports its own refusals (a body over the limit) as rule 0; use an id from 1")]
    ZeroId,
    #[error("unknown action `{action}` (expected one of: {expected})")]
    UnknownAction {
        action: String,
        expected: &'static str,
    },
    #[error("unknown list kind `{kind}` (expected ip, int or string)")]
    ListKind { kind: String },
    #[error("list `{list}`: `{item}` is not a valid {kind}: {why}")]
    ListItem {
        list: String,
        item: String,
        kind: &'static str,
        why: String,
    },
    #[error("{why}")]
    Action { why: String },
    #[error("the XDP back end refuses this rule: {why}")]
    Xdp { why: String },
}

impl RuleError {
    pub fn kind(&self) -> &RuleErrorKind {
        &self.0.kind
    }

    pub fn file(&self) -> &str {
        &self.0.location.file
    }

    pub fn line(&self) -> usize {
        self.0.location.line
    }

    pub fn column(&self) -> usize {
        self.0.location.column
    }

    /// The offending line and a caret under the offending text.
    pub fn snippet(&self) -> &str {
        &self.0.location.snippet
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: error: {}", self.0.location, self.0.kind)?;
        if !self.0.location.snippet.is_empty() {
            write!(f, "\n{}", self.0.location.snippet)?;
        }
        Ok(())
    }
}

// No `source()`: the display is the whole diagnostic (place, message, caret) as `rampart rules
// check` prints it, and the kinds keep no foreign error; a source repeating the message would
// print it twice in a `{:#}` chain.
impl std::error::Error for RuleError {}

pub(super) fn yaml_error(cx: &Source<'_>, e: marked_yaml::FromYamlError) -> RuleError {
    match e {
        marked_yaml::FromYamlError::ParseYaml(le) => {
            use marked_yaml::LoadError as L;
            let (mark, why) = match &le {
                L::ScanError(m, e) => (Some(*m), e.info().to_string()),
                L::DuplicateKey(d) => {
                    let first = d.prev_key.span().start().map_or(0, |m| m.line());
                    let why = format!(
                        "key `{}` is repeated (first on line {first})",
                        d.key.as_str()
                    );
                    (d.key.span().start().copied(), why)
                }
                L::TopLevelMustBeMapping(m) => (Some(*m), "the file must be a mapping".into()),
                L::TopLevelMustBeSequence(m)
                | L::UnexpectedAnchor(m)
                | L::MappingKeyMustBeScalar(m)
                | L::UnexpectedTag(m) => {
                    // The message starts with the marker; say it once.
                    let text = le.to_string();
                    let why = text
                        .split_once(": ")
                        .map_or(text.clone(), |(_, w)| w.into());
                    (Some(*m), why)
                }
            };
            let (line, column) = mark.map_or((1, 1), |m| (m.line().max(1), m.column().max(1)));
            cx.at(line, column, 1, RuleErrorKind::Yaml { why })
        }
        marked_yaml::FromYamlError::FromNode(ne) => {
            let path = ne.path().map(str::to_string);
            let inner = ne.into_inner();
            let (line, col) = inner
                .start_mark()
                .map_or((1, 1), |m| (m.line(), m.column()));
            let why = match path {
                Some(p) if !p.is_empty() => format!("at `{p}`: {inner}"),
                _ => inner.to_string(),
            };
            cx.at(line, col, 1, RuleErrorKind::Schema { why })
        }
    }
}
