//! A SecLang (ModSecurity rule language) engine, to run OWASP CRS unmodified.
//!
//! Files: `ast` (directives as written), `parse` (text → ast), `actions` (action lists typed),
//! `transform` (`t:` functions), `operator` (`@rx` and friends), `vars` (the request as
//! variables), `body` (body processors), `compile` (ast → [`RuleSet`]), `prefilter` (which
//! links a value can match, from one literal search), `eval` (a request through a rule set),
//! `error` (located load errors).

pub mod actions;
pub mod ast;
mod body;
pub mod compile;
pub mod error;
pub mod eval;
pub mod load;
pub mod operator;
pub mod parse;
mod prefilter;
pub mod transform;
pub mod vars;

#[cfg(test)]
mod tests;

pub use compile::{LoadStats, RuleSet};
pub use error::{SecLangError, SecLangErrorKind};
pub use eval::{Interruption, MatchedRule, Outcome, TxMap};
pub use load::Source;
pub use vars::HttpInput;
