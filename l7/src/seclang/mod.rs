//! A SecLang (ModSecurity rule language) engine, to run OWASP CRS unmodified.
//!
//! Files: `ast` (directives as written), `parse` (text → ast), `transform` (`t:` functions),
//! `operator` (`@rx` and friends), `error` (located load errors).

pub mod ast;
pub mod error;
pub mod operator;
pub mod parse;
pub mod transform;

pub use error::{SecLangError, SecLangErrorKind};
