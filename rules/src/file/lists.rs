//! List files and list items of a rule file: where a list file may be (inside the rule file's
//! folder, a regular file), and how a bad item is reported (a short, escaped excerpt).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use marked_yaml::Spanned;

use super::source::Source;
use super::yaml_doc::ListDoc;
use super::{RuleError, RuleErrorKind};
use crate::lang::sets::{IpSet, ValueSet};
use crate::lang::{ListDef, Location};
use crate::Prefix;

/// Largest list file read (a million prefixes take about 16 MB).
const MAX_LIST_FILE: u64 = 256 << 20;

/// Reads a list file: `name` relative to the rule file's folder `dir`, and after resolving
/// symlinks still inside it (a rule file must not make the loader read `/etc/shadow` through a
/// link, or block on a FIFO, or read `/dev/zero`); a regular file of bounded size, UTF-8. The
/// errors name the path and say why; they never hold the file's bytes. Returns the path to
/// show and the text.
fn read_list_file(dir: &Path, name: &str) -> Result<(String, String), String> {
    let rel = Path::new(name);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "list file `{name}`: give a path relative to the rule file's directory, without `..`"
        ));
    }
    let path = dir.join(rel);
    let shown = path.display().to_string();
    // `Path::new("")` (a rule file named without a folder) is the current folder.
    let root = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let root = root
        .canonicalize()
        .map_err(|e| format!("list file {shown}: the rule file's folder: {e}"))?;
    let real = path
        .canonicalize()
        .map_err(|e| format!("list file {shown}: {e}"))?;
    if !real.starts_with(&root) {
        return Err(format!(
            "list file {shown} leads outside the rule file's folder {} (it resolves to {}); list files must stay inside it",
            root.display(),
            real.display()
        ));
    }
    let not_regular = || format!("list file {shown} is not a regular file");
    // `real` has no symlinks left, so this is what `open` will find (short of a race).
    let meta = std::fs::symlink_metadata(&real).map_err(|e| format!("list file {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(&real).map_err(|e| format!("list file {shown}: {e}"))?;
    // Check what was opened as well, in case the path changed since.
    let meta = file
        .metadata()
        .map_err(|e| format!("list file {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    if meta.len() > MAX_LIST_FILE {
        return Err(format!(
            "list file {shown} is {} bytes; at most {MAX_LIST_FILE}",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_LIST_FILE + 1),
        &mut bytes,
    )
    .map_err(|e| format!("list file {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_LIST_FILE {
        return Err(format!(
            "list file {shown} grew past {MAX_LIST_FILE} bytes while read"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "list file {shown} is not UTF-8 text (at byte {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok((shown, text))
}

/// Characters of a list item (or of the parser's message about it) an error repeats.
const EXCERPT_CHARS: usize = 40;

/// At most `max` characters of `s`, every character but printable ASCII escaped (`\u{1b}`),
/// so an error can't spill a file or drive a terminal.
fn excerpt(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Where a list item was written, resolved into an error only if the item is bad (resolving
/// scans the file, which must not happen per item for million-item lists).
enum ItemAt<'a> {
    Inline(&'a Spanned<String>),
    File { line: usize, column: usize },
}

pub(super) fn load_list(
    cx: &Source<'_>,
    name: &str,
    l: &ListDoc,
    dir: &Path,
) -> Result<ListDef, RuleError> {
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        let why = format!("list name `{name}`: use letters, digits and `_` (it is written `${name}` in expressions)");
        return Err(cx.spanned(&l.kind, RuleErrorKind::Schema { why }));
    }
    let mut items: Vec<(&str, ItemAt<'_>)> = l
        .items
        .iter()
        .map(|it| (it.as_str(), ItemAt::Inline(it)))
        .collect();
    let mut file_text = String::new();
    let mut file_name = String::new();
    if let Some(f) = &l.file {
        (file_name, file_text) = read_list_file(dir, f.as_str())
            .map_err(|why| cx.spanned(f, RuleErrorKind::Read { why }))?;
    }
    for (i, raw) in file_text.lines().enumerate() {
        let item = raw.split('#').next().unwrap_or("").trim();
        if !item.is_empty() {
            let column = raw.find(item).unwrap_or(0) + 1;
            items.push((
                item,
                ItemAt::File {
                    line: i + 1,
                    column,
                },
            ));
        }
    }
    // The item and the parser's words on it (which repeat it) are cut short and escaped; for
    // a list file, the snippet is that excerpt alone, not the line around it.
    let bad = |item: &str, at: &ItemAt<'_>, k: &'static str, why: String| {
        let shown = excerpt(item, EXCERPT_CHARS);
        let kind = RuleErrorKind::ListItem {
            list: name.to_string(),
            item: shown.clone(),
            kind: k,
            why: excerpt(&why, 2 * EXCERPT_CHARS),
        };
        match at {
            ItemAt::Inline(s) => cx.spanned(*s, kind),
            ItemAt::File { line, column, .. } => {
                let width = shown.chars().count();
                let location = Location {
                    file: file_name.clone(),
                    line: *line,
                    column: *column,
                    snippet: crate::lang::span::snippet(&shown, 0, width),
                };
                RuleError::new(location, kind)
            }
        }
    };
    Ok(match l.kind.as_str() {
        "ip" => {
            let mut prefixes = Vec::with_capacity(items.len());
            for (item, at) in &items {
                prefixes.push(
                    item.parse::<Prefix>()
                        .map_err(|e| bad(item, at, "prefix", e.to_string()))?,
                );
            }
            ListDef::Ip(Arc::new(ValueSet::Ip(IpSet::new(prefixes))))
        }
        "int" => {
            let mut ranges = Vec::with_capacity(items.len());
            for (item, at) in &items {
                let v: i64 = item.parse().map_err(|e: std::num::ParseIntError| {
                    bad(item, at, "integer", e.to_string())
                })?;
                ranges.push((v, v));
            }
            ListDef::Int(Arc::new(ValueSet::ints(ranges)))
        }
        "string" => ListDef::Bytes(Arc::new(ValueSet::Bytes(
            items
                .iter()
                .map(|(s, _)| s.as_bytes().to_vec())
                .collect::<HashSet<_>>(),
        ))),
        other => {
            return Err(cx.spanned(
                &l.kind,
                RuleErrorKind::ListKind {
                    kind: other.to_string(),
                },
            ))
        }
    })
}
