//! SecLang text → [`Directive`]s: the subset OWASP CRS v3.3 and v4 use.
//!
//! `lex` joins continued lines and splits them into tokens; `parts` parses the languages inside
//! arguments (targets, operators, actions, id lists); this file maps directive names to
//! [`Directive`]s and expands `Include`.
//!
//! Errors inside an argument (a bad target, an unterminated action quote) are located at the
//! start of that argument's token.

mod lex;
mod parts;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_corpus;
#[cfg(test)]
mod tests_include;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ast::{Directive, EngineMode, Location, OperatorAst, RuleAst};
use super::error::{SecLangError, SecLangErrorKind};
use lex::{LogicalLine, Token};

/// Directives that change nothing for an engine handed requests as already parsed values
/// (body access and limits, upload and temp folders, audit and debug logs, PCRE limits,
/// formats of things the proxy decodes itself, identification strings). They are accepted,
/// and kept as [`Directive::Ignored`] so a loader can count or show them. Compared
/// case-insensitively.
pub const IGNORED_DIRECTIVES: &[&str] = &[
    "SecRequestBodyAccess",
    "SecResponseBodyAccess",
    "SecRequestBodyLimit",
    "SecRequestBodyNoFilesLimit",
    "SecRequestBodyInMemoryLimit",
    "SecRequestBodyLimitAction",
    "SecRequestBodyJsonDepthLimit",
    "SecArgumentsLimit",
    "SecResponseBodyLimit",
    "SecResponseBodyLimitAction",
    "SecResponseBodyMimeType",
    "SecResponseBodyMimeTypesClear",
    "SecPcreMatchLimit",
    "SecPcreMatchLimitRecursion",
    "SecTmpDir",
    "SecDataDir",
    "SecUploadDir",
    "SecUploadKeepFiles",
    "SecUploadFileMode",
    "SecUploadFileLimit",
    "SecAuditEngine",
    "SecAuditLog",
    "SecAuditLog2",
    "SecAuditLogParts",
    "SecAuditLogType",
    "SecAuditLogStorageDir",
    "SecAuditLogRelevantStatus",
    "SecAuditLogFormat",
    "SecAuditLogDirMode",
    "SecAuditLogFileMode",
    "SecDebugLog",
    "SecDebugLogLevel",
    "SecArgumentSeparator",
    "SecCookieFormat",
    "SecCookieV0Separator",
    "SecUnicodeMapFile",
    "SecStatusEngine",
    "SecCollectionTimeout",
    "SecServerSignature",
    "SecTmpSaveUploadedFiles",
    "SecXmlExternalEntity",
    "SecGeoLookupDb",
    "SecHttpBlKey",
    "SecWebAppId",
    "SecSensorId",
    "SecHashEngine",
];

/// How deep `Include`s may nest before the file is refused (a file including itself would
/// otherwise recurse forever).
const MAX_INCLUDE_DEPTH: u32 = 16;

/// Parses one file, expanding `Include` (relative to the including file's folder; globs
/// allowed) in place.
pub fn parse_file(path: &Path) -> Result<Vec<Directive>, SecLangError> {
    let file: Arc<str> = path.display().to_string().into();
    let at = Location {
        file: file.clone(),
        line: 1,
        column: 1,
    };
    parse_path(path, &at, 0)
}

/// Parses text named `file` (for locations); `Include`s resolve against `base_dir`.
pub fn parse_str(text: &str, file: &str, base_dir: &Path) -> Result<Vec<Directive>, SecLangError> {
    let mut out = Vec::new();
    parse_text(text, file.into(), base_dir, 0, &mut out)?;
    Ok(out)
}

/// Reads and parses `path`; `at` is where a read error is reported (the `Include`).
fn parse_path(path: &Path, at: &Location, depth: u32) -> Result<Vec<Directive>, SecLangError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SecLangError::new(
            at.clone(),
            SecLangErrorKind::Io,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    parse_text(
        &text,
        path.display().to_string().into(),
        base,
        depth,
        &mut out,
    )?;
    Ok(out)
}

fn parse_text(
    text: &str,
    file: Arc<str>,
    base_dir: &Path,
    depth: u32,
    out: &mut Vec<Directive>,
) -> Result<(), SecLangError> {
    // A UTF-8 byte order mark (editors on Windows add one) is not part of the first directive.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = lex::logical_lines(text).map_err(|(line, column)| {
        let at = Location {
            file: file.clone(),
            line,
            column,
        };
        SecLangError::new(
            at,
            SecLangErrorKind::Syntax,
            "line continued past end of file",
        )
    })?;
    for line in &lines {
        let ctx = Line {
            line,
            file: &file,
            base_dir,
            depth,
        };
        ctx.parse(out)?;
    }
    Ok(())
}

/// One logical line being turned into directives, with what is needed to locate errors.
struct Line<'a> {
    line: &'a LogicalLine,
    file: &'a Arc<str>,
    base_dir: &'a Path,
    depth: u32,
}

impl Line<'_> {
    fn at(&self, offset: usize) -> Location {
        let (line, column) = self.line.position(offset);
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }

    fn err(
        &self,
        offset: usize,
        kind: SecLangErrorKind,
        detail: impl Into<String>,
    ) -> SecLangError {
        SecLangError::new(self.at(offset), kind, detail)
    }

    /// Runs an argument parser, locating its error at the argument's token.
    fn part<T>(
        &self,
        token: &Token,
        f: impl FnOnce(&str) -> parts::PartResult<T>,
    ) -> Result<T, SecLangError> {
        f(&token.text).map_err(|(kind, detail)| self.err(token.offset, kind, detail))
    }

    /// Checks the argument count: `min..=max` tokens after the name.
    fn args<'t>(
        &self,
        tokens: &'t [Token],
        min: usize,
        max: usize,
    ) -> Result<&'t [Token], SecLangError> {
        let (name, args) = (&tokens[0], &tokens[1..]);
        if args.len() < min {
            let what = if min == 1 {
                "an argument"
            } else {
                "more arguments"
            };
            return Err(self.err(
                name.offset,
                SecLangErrorKind::Syntax,
                format!("{} needs {what} (got {})", name.text, args.len()),
            ));
        }
        if args.len() > max {
            return Err(self.err(
                args[max].offset,
                SecLangErrorKind::Syntax,
                format!(
                    "{} takes at most {max} argument(s); unexpected {:?}",
                    name.text, args[max].text
                ),
            ));
        }
        Ok(args)
    }

    // One arm per directive, kept together so the accepted set reads as one table (hence the
    // length).
    fn parse(&self, out: &mut Vec<Directive>) -> Result<(), SecLangError> {
        let text = &self.line.text;
        let tokens = lex::tokenize(text).map_err(|lex::UnterminatedQuote(offset)| {
            self.err(
                offset,
                SecLangErrorKind::Syntax,
                "unterminated double quote",
            )
        })?;
        let Some(name) = tokens.first() else {
            return Ok(());
        };
        let location = self.at(name.offset);
        let lower = name.text.to_ascii_lowercase();
        let directive = match lower.as_str() {
            "secrule" => {
                let args = self.args(&tokens, 2, 3)?;
                Directive::Rule(RuleAst {
                    targets: self.part(&args[0], parts::parse_targets)?,
                    operator: self.part(&args[1], parts::parse_operator)?,
                    actions: match args.get(2) {
                        Some(a) => self.part(a, parts::parse_actions)?,
                        None => Vec::new(),
                    },
                    location,
                })
            }
            "secaction" => {
                let args = self.args(&tokens, 1, 1)?;
                Directive::Rule(RuleAst {
                    targets: Vec::new(),
                    operator: OperatorAst {
                        name: "unconditionalMatch".to_string(),
                        argument: String::new(),
                        negated: false,
                    },
                    actions: self.part(&args[0], parts::parse_actions)?,
                    location,
                })
            }
            "secmarker" => {
                let args = self.args(&tokens, 1, 1)?;
                Directive::Marker {
                    name: args[0].text.clone(),
                    location,
                }
            }
            "secdefaultaction" => {
                let args = self.args(&tokens, 1, 1)?;
                Directive::DefaultAction {
                    actions: self.part(&args[0], parts::parse_actions)?,
                    location,
                }
            }
            "seccomponentsignature" => {
                let args = self.args(&tokens, 1, 1)?;
                Directive::ComponentSignature {
                    value: args[0].text.clone(),
                    location,
                }
            }
            "secruleengine" => {
                let args = self.args(&tokens, 1, 1)?;
                let mode = match args[0].text.to_ascii_lowercase().as_str() {
                    "on" => EngineMode::On,
                    "off" => EngineMode::Off,
                    "detectiononly" => EngineMode::DetectionOnly,
                    _ => {
                        return Err(self.err(
                            args[0].offset,
                            SecLangErrorKind::BadArgument,
                            format!(
                                "SecRuleEngine takes On, Off or DetectionOnly, not {:?}",
                                args[0].text
                            ),
                        ))
                    }
                };
                Directive::RuleEngine { mode, location }
            }
            "secruleremovebyid" => {
                let args = self.args(&tokens, 1, usize::MAX)?;
                // Lone commas between spaced ids (`1 , 2`) are separators, not empty lists.
                let mut ids = Vec::new();
                for arg in args.iter().filter(|a| {
                    !a.text
                        .trim_matches(|c: char| c == ',' || c.is_whitespace())
                        .is_empty()
                }) {
                    ids.extend(self.part(arg, parts::parse_ids)?);
                }
                if ids.is_empty() {
                    let detail = "SecRuleRemoveById needs rule ids";
                    return Err(self.err(args[0].offset, SecLangErrorKind::BadArgument, detail));
                }
                Directive::RemoveById { ids, location }
            }
            "secruleremovebytag" => {
                let args = self.args(&tokens, 1, 1)?;
                Directive::RemoveByTag {
                    tag: args[0].text.clone(),
                    location,
                }
            }
            "secruleremovebymsg" => {
                let args = self.args(&tokens, 1, 1)?;
                Directive::RemoveByMsg {
                    msg: args[0].text.clone(),
                    location,
                }
            }
            "secruleupdatetargetbyid" => {
                let args = self.args(&tokens, 2, 3)?;
                Directive::UpdateTargetById {
                    ids: self.part(&args[0], parts::parse_ids)?,
                    targets: self.part(&args[1], parts::parse_targets)?,
                    replaced: match args.get(2) {
                        Some(r) => Some(self.part(r, parts::parse_targets)?),
                        None => None,
                    },
                    location,
                }
            }
            "secruleupdatetargetbytag" => {
                // ModSecurity also allows a REPLACED list here; the ast has no place for it
                // and CRS does not use it, so a third argument is refused by `args`.
                let args = self.args(&tokens, 2, 2)?;
                Directive::UpdateTargetByTag {
                    tag: args[0].text.clone(),
                    targets: self.part(&args[1], parts::parse_targets)?,
                    location,
                }
            }
            "secruleupdateactionbyid" => {
                let args = self.args(&tokens, 2, 2)?;
                Directive::UpdateActionById {
                    id: self.part(&args[0], parts::parse_single_id)?,
                    actions: self.part(&args[1], parts::parse_actions)?,
                    location,
                }
            }
            "include" | "includeoptional" => {
                let args = self.args(&tokens, 1, 1)?;
                let optional = lower == "includeoptional";
                return self.include(&args[0], optional, &location, out);
            }
            _ if IGNORED_DIRECTIVES
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&name.text)) =>
            {
                let rest = text.get(name.offset + name.text.len()..).unwrap_or("");
                let value = rest.trim().to_string();
                Directive::Ignored {
                    name: name.text.clone(),
                    value,
                    location,
                }
            }
            _ => {
                return Err(SecLangError::new(
                    location,
                    SecLangErrorKind::UnknownDirective,
                    format!("unknown directive {}", name.text),
                ))
            }
        };
        out.push(directive);
        Ok(())
    }

    /// Expands `Include PATH` in place: a glob (sorted) or one file, relative to `base_dir`.
    /// `IncludeOptional` (Apache's, used by Debian's `owasp-crs.load`) skips what is missing.
    fn include(
        &self,
        arg: &Token,
        optional: bool,
        location: &Location,
        out: &mut Vec<Directive>,
    ) -> Result<(), SecLangError> {
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(SecLangError::new(
                location.clone(),
                SecLangErrorKind::BadArgument,
                format!(
                    "Include nested deeper than {MAX_INCLUDE_DEPTH} (does a file include itself?)"
                ),
            ));
        }
        let io = |detail: String| SecLangError::new(location.clone(), SecLangErrorKind::Io, detail);
        let path = self.base_dir.join(&arg.text);
        let files: Vec<PathBuf> = if arg.text.contains(['*', '?', '[']) {
            let pattern = path.to_string_lossy();
            let matches = glob::glob(&pattern)
                .map_err(|e| io(format!("bad Include pattern {pattern:?}: {e}")))?;
            let mut files = matches
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| io(format!("cannot list {pattern:?}: {e}")))?;
            if files.is_empty() && !optional {
                return Err(io(format!("Include {pattern:?} matches no file")));
            }
            files.sort();
            files
        } else if optional && !path.exists() {
            Vec::new()
        } else {
            vec![path]
        };
        for file in files {
            out.extend(parse_path(&file, location, self.depth + 1)?);
        }
        Ok(())
    }
}
