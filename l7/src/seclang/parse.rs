//! SecLang text → [`Directive`]s. (Owned by the parser work; this is the agreed signature.)

use std::path::Path;

use super::ast::Directive;
use super::error::SecLangError;

/// Parses one file, expanding `Include` (relative to the including file's folder; globs
/// allowed) in place.
pub fn parse_file(path: &Path) -> Result<Vec<Directive>, SecLangError> {
    let _ = path;
    unimplemented!("seclang parser not written yet")
}

/// Parses text named `file` (for locations); `Include`s resolve against `base_dir`.
pub fn parse_str(text: &str, file: &str, base_dir: &Path) -> Result<Vec<Directive>, SecLangError> {
    let _ = (text, file, base_dir);
    unimplemented!("seclang parser not written yet")
}
