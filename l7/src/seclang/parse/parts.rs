//! The inner languages of directive arguments: target lists, operator strings, action lists
//! and id lists. Errors carry no location; the caller puts the argument's position on them.

use crate::seclang::ast::{ActionAst, IdRange, OperatorAst, Selector, Target};
use crate::seclang::error::SecLangErrorKind;

pub(super) type PartError = (SecLangErrorKind, String);
pub(super) type PartResult<T> = Result<T, PartError>;

fn syntax(detail: impl Into<String>) -> PartError {
    (SecLangErrorKind::Syntax, detail.into())
}

fn bad(detail: impl Into<String>) -> PartError {
    (SecLangErrorKind::BadArgument, detail.into())
}

/// Splits `A|B:/x|y/|!C:'k|v'` on the `|`s that are not inside a `/regex/` or `'key'`
/// selector. `XML:` selectors are XPath (`XML:/*`, `XML://@*`), so they run to the next `|`.
fn split_targets(text: &str) -> Result<Vec<&str>, PartError> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'|' => {
                parts.push(&text[start..i]);
                start = i + 1;
                i += 1;
            }
            b':' => {
                let collection = text[start..i].trim().trim_start_matches(['!', '&']);
                i += 1;
                match bytes.get(i) {
                    Some(b'/') if !collection.eq_ignore_ascii_case("XML") => {
                        // Find the closing unescaped `/`; without one it is a plain key.
                        let mut j = i + 1;
                        while j < bytes.len() && bytes[j] != b'/' {
                            j += if bytes[j] == b'\\' { 2 } else { 1 };
                        }
                        if j < bytes.len() {
                            i = j + 1;
                        }
                    }
                    Some(b'\'') => match text[i + 1..].find('\'') {
                        Some(close) => i += close + 2,
                        None => {
                            return Err(syntax(format!("unterminated quote in target {text:?}")))
                        }
                    },
                    _ => {}
                }
                // The rest of this part (up to `|`) is consumed by the normal loop.
                while i < bytes.len() && bytes[i] != b'|' {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// Parses the first `SecRule` argument (also `SecRuleUpdateTarget*` lists).
pub(super) fn parse_targets(text: &str) -> Result<Vec<Target>, PartError> {
    split_targets(text)?.into_iter().map(parse_target).collect()
}

fn parse_target(part: &str) -> Result<Target, PartError> {
    let mut rest = part.trim();
    if rest.is_empty() {
        return Err(syntax("empty target (stray `|`?)"));
    }
    let (mut negated, mut count) = (false, false);
    loop {
        if let Some(r) = rest.strip_prefix('!') {
            negated = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('&') {
            count = true;
            rest = r;
        } else {
            break;
        }
    }
    let (name, selector) = match rest.split_once(':') {
        None => (rest, Selector::All),
        Some((name, sel)) => {
            let sel = sel.trim();
            let selector = if sel.is_empty() {
                return Err(syntax(format!("target {part:?} has an empty selector")));
            } else if !name.trim().eq_ignore_ascii_case("XML")
                && sel.len() >= 2
                && sel.starts_with('/')
                && sel.ends_with('/')
            {
                Selector::Regex(sel[1..sel.len() - 1].to_string())
            } else if sel.len() >= 2 && sel.starts_with('\'') && sel.ends_with('\'') {
                Selector::Key(sel[1..sel.len() - 1].to_string())
            } else {
                Selector::Key(sel.to_string())
            };
            (name, selector)
        }
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(syntax(format!("target {part:?} has no variable name")));
    }
    Ok(Target {
        collection: name.to_ascii_uppercase(),
        selector,
        negated,
        count,
    })
}

/// `@name arg`, `!@name arg`, or a bare regex (which is `@rx`).
pub(super) fn parse_operator(text: &str) -> Result<OperatorAst, PartError> {
    let mut rest = text.trim_start();
    let negated = match rest.strip_prefix('!') {
        Some(r) => {
            rest = r.trim_start();
            true
        }
        None => false,
    };
    let Some(named) = rest.strip_prefix('@') else {
        return Ok(OperatorAst {
            name: "rx".to_string(),
            argument: rest.to_string(),
            negated,
        });
    };
    let end = named
        .find(|c: char| c.is_whitespace())
        .unwrap_or(named.len());
    let name = &named[..end];
    if name.is_empty() {
        return Err(syntax(format!("operator {text:?} has no name after `@`")));
    }
    // Drop the one separating whitespace character; anything more belongs to the argument.
    let mut argument = named[end..].chars();
    argument.next();
    Ok(OperatorAst {
        name: name.to_string(),
        argument: argument.as_str().to_string(),
        negated,
    })
}

/// Comma-separated `name` / `name:value` actions; commas inside `'...'` do not split.
/// Empty actions (`a,,b`, a trailing comma) are skipped: CRS v4 has none (its corpus test
/// passes either way), but hand-written files often end a continued action list with one.
/// Any `'` opens a quote (so an apostrophe in an unquoted value, `msg:it's`, is an unterminated
/// quote); a value that does not start with `'` keeps its quotes (`ctl:...;ARGS:'a,b'`).
pub(super) fn parse_actions(text: &str) -> Result<Vec<ActionAst>, PartError> {
    let bytes = text.as_bytes();
    let mut actions = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut i = 0;
    while i <= bytes.len() {
        match bytes.get(i) {
            Some(b'\\') if in_quote => i += 1,
            Some(b'\'') => in_quote = !in_quote,
            Some(b',') | None if !in_quote => {
                if let Some(action) = parse_action(&text[start..i])? {
                    actions.push(action);
                }
                start = i + 1;
            }
            None => return Err(syntax(format!("unterminated quote in actions {text:?}"))),
            _ => {}
        }
        i += 1;
    }
    Ok(actions)
}

fn parse_action(text: &str) -> Result<Option<ActionAst>, PartError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (name, argument) = match text.split_once(':') {
        None => (text, None),
        Some((name, value)) => (name, Some(unquote(value.trim())?)),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(syntax(format!("action {text:?} has no name")));
    }
    Ok(Some(ActionAst {
        name: name.to_ascii_lowercase(),
        argument,
    }))
}

/// `'it\'s'` → `it's`; an unquoted value is kept as is.
fn unquote(value: &str) -> Result<String, PartError> {
    let Some(inner) = value.strip_prefix('\'') else {
        return Ok(value.to_string());
    };
    match inner.strip_suffix('\'') {
        Some(inner) if !inner.ends_with('\\') || inner.ends_with("\\\\") => {
            Ok(inner.replace("\\'", "'"))
        }
        _ => Err(syntax(format!(
            "action value {value:?} has text after its closing quote"
        ))),
    }
}

/// `1 2,3 100-200` (spaces and/or commas) → ranges. Several arguments are joined by the
/// caller with spaces.
pub(super) fn parse_ids(text: &str) -> Result<Vec<IdRange>, PartError> {
    let ids = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(parse_range)
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Err(bad("no rule ids given"));
    }
    Ok(ids)
}

fn parse_range(text: &str) -> Result<IdRange, PartError> {
    let number = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| bad(format!("bad rule id {s:?} in {text:?}")))
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let n = number(text)?;
            (n, n)
        }
    };
    if first > last {
        return Err(bad(format!("id range {text:?} runs backwards")));
    }
    Ok(IdRange { first, last })
}

/// `SecRuleUpdateActionById` takes one plain id (ModSecurity's `ID:offset` form, which picks a
/// rule of a chain, is refused: the compiler could not honour it).
pub(super) fn parse_single_id(text: &str) -> Result<u32, PartError> {
    text.trim()
        .parse::<u32>()
        .map_err(|_| bad(format!("expected one rule id, got {text:?}")))
}
