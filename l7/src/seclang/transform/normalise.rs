//! Normalisers: case, cmdLine, whitespace, NULs, paths, comments, trims and 7-bit parity.
//! Each returns `None` (or the input itself) when it has nothing to do.

use std::borrow::Cow;

use super::is_c_space;

const NBSP: u8 = 0xa0;

fn is_ws_or_nbsp(b: u8) -> bool {
    is_c_space(b) || b == NBSP
}

pub(super) fn lowercase(s: &[u8]) -> Option<Vec<u8>> {
    s.iter()
        .any(u8::is_ascii_uppercase)
        .then(|| s.to_ascii_lowercase())
}

pub(super) fn uppercase(s: &[u8]) -> Option<Vec<u8>> {
    s.iter()
        .any(u8::is_ascii_lowercase)
        .then(|| s.to_ascii_uppercase())
}

/// `cmdLine`: deletes `\ " ' ^`; deletes spaces before `/` and `(`; turns runs of
/// space/tab/CR/LF/`,`/`;` into one space; lowercases (ASCII).
pub(super) fn cmd_line(s: &[u8]) -> Option<Vec<u8>> {
    let touched = |b: u8| {
        matches!(
            b,
            b'"' | b'\'' | b'\\' | b'^' | b' ' | b',' | b';' | b'\t' | b'\r' | b'\n'
        ) || b.is_ascii_uppercase()
    };
    if !s.iter().any(|&b| touched(b)) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut space = false;
    for &c in s {
        match c {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(c);
            }
            _ => {
                out.push(c.to_ascii_lowercase());
                space = false;
            }
        }
    }
    Some(out)
}

/// `compressWhitespace`: every run of C whitespace or NBSP (0xA0) becomes one space.
pub(super) fn compress_whitespace(s: &[u8]) -> Option<Vec<u8>> {
    let needed = s
        .windows(2)
        .any(|w| is_ws_or_nbsp(w[0]) && is_ws_or_nbsp(w[1]))
        || s.iter().any(|&b| b != b' ' && is_ws_or_nbsp(b));
    if !needed {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut in_ws = false;
    for &c in s {
        if is_ws_or_nbsp(c) {
            if !in_ws {
                out.push(b' ');
                in_ws = true;
            }
        } else {
            in_ws = false;
            out.push(c);
        }
    }
    Some(out)
}

/// `removeWhitespace`: removes C whitespace and NBSP (0xA0). Like libmodsecurity v3 it also
/// removes every 0xC2 byte (the lead byte of UTF-8 U+00A0, `C2 A0`).
pub(super) fn remove_whitespace(s: &[u8]) -> Option<Vec<u8>> {
    let gone = |b: u8| is_ws_or_nbsp(b) || b == 0xc2;
    s.iter()
        .any(|&b| gone(b))
        .then(|| s.iter().copied().filter(|&b| !gone(b)).collect())
}

pub(super) fn remove_nulls(s: &[u8]) -> Option<Vec<u8>> {
    s.contains(&0)
        .then(|| s.iter().copied().filter(|&b| b != 0).collect())
}

pub(super) fn replace_nulls(s: &[u8]) -> Option<Vec<u8>> {
    s.contains(&0)
        .then(|| s.iter().map(|&b| if b == 0 { b' ' } else { b }).collect())
}

/// `trim`, `trimLeft`, `trimRight` (C whitespace); a sub-slice of borrowed input is borrowed.
pub(super) fn trim(input: Cow<'_, [u8]>, left: bool, right: bool) -> Cow<'_, [u8]> {
    let s: &[u8] = &input;
    let start = if left {
        s.iter().position(|&b| !is_c_space(b)).unwrap_or(s.len())
    } else {
        0
    };
    let end = if right {
        s.iter()
            .rposition(|&b| !is_c_space(b))
            .map_or(start, |p| p + 1)
            .max(start)
    } else {
        s.len()
    };
    if start == 0 && end == s.len() {
        return input;
    }
    match input {
        Cow::Borrowed(b) => Cow::Borrowed(&b[start..end]),
        Cow::Owned(mut v) => {
            v.truncate(end);
            v.drain(..start);
            Cow::Owned(v)
        }
    }
}

/// `normalizePath` / `normalizePathWin` (ModSecurity's `normalize_path_inplace`): removes
/// `./` segments, resolves `../` (never above the root; a relative path keeps the `..` it
/// cannot resolve), collapses repeated slashes, keeps a trailing slash only if there was
/// one. With `win`, backslashes are first turned into slashes.
pub(super) fn normalize_path(s: &[u8], win: bool) -> Option<Vec<u8>> {
    // Without a dot, a doubled slash or (on Windows) a backslash there is nothing to do.
    let busy = s.contains(&b'.') || s.windows(2).any(|w| w == b"//") || (win && s.contains(&b'\\'));
    if s.is_empty() || !busy {
        return None;
    }
    let mut b: Vec<u8> = s.to_vec();
    if win {
        for c in b.iter_mut() {
            if *c == b'\\' {
                *c = b'/';
            }
        }
    }
    let end = b.len() - 1;
    let relative = b[0] != b'/';
    let trailing = b[end] == b'/';
    let (mut src, mut dst): (usize, usize) = (0, 0);
    let mut hitroot = false;
    let mut done = false;
    'outer: while !done && src <= end && dst <= end {
        'copy: {
            if src == end {
                done = true;
            } else if b.get(src + 1) != Some(&b'/') {
                break 'copy;
            }
            if src != end && b[src] == b'/' {
                break 'copy;
            }
            if b[src] == b'.' {
                if dst > 0 && b[dst - 1] == b'.' {
                    // Back-reference.
                    if relative && (hitroot || dst <= 2) {
                        hitroot = true;
                        break 'copy;
                    }
                    let mut d = dst.saturating_sub(3);
                    while d > 0 && b[d] != b'/' {
                        d -= 1;
                    }
                    if d == 0 {
                        hitroot = true;
                        if !relative && src == end {
                            d = 1;
                        }
                    }
                    dst = d;
                    if done {
                        continue 'outer;
                    }
                    src += 1;
                } else if dst == 0 {
                    // Relative self-reference.
                    if done {
                        continue 'outer;
                    }
                    src += 1;
                } else if b[dst - 1] == b'/' {
                    // Self-reference.
                    if done {
                        continue 'outer;
                    }
                    dst -= 1;
                    src += 1;
                }
            } else if dst > 0 {
                hitroot = false;
            }
        }
        // Copy the byte, skipping to the last of several slashes.
        if b.get(src) == Some(&b'/') {
            while src < end && b[src + 1] == b'/' {
                src += 1;
            }
            if relative && dst == 0 {
                src += 1;
                continue;
            }
        }
        if let (Some(&c), true) = (b.get(src), dst < b.len()) {
            b[dst] = c;
            dst += 1;
        }
        src += 1;
    }
    if !trailing && dst > 0 && b.get(dst - 1) == Some(&b'/') {
        dst -= 1;
    }
    b.truncate(dst);
    Some(b)
}

/// `removeComments`: removes `/* … */` and `<!-- … -->` comments; `--` or `#` outside a
/// comment ends the value (the rest is removed); an unterminated comment becomes one space.
pub(super) fn remove_comments(s: &[u8]) -> Option<Vec<u8>> {
    if !s
        .iter()
        .any(|&b| matches!(b, b'/' | b'*' | b'-' | b'#' | b'<'))
    {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    let mut in_comment = false;
    while i < s.len() {
        let rest = &s[i..];
        if !in_comment {
            if rest.starts_with(b"/*") {
                in_comment = true;
                i += 2;
            } else if rest.starts_with(b"<!--") {
                in_comment = true;
                i += 4;
            } else if rest.starts_with(b"--") || rest[0] == b'#' {
                break;
            } else {
                out.push(rest[0]);
                i += 1;
            }
        } else if rest.starts_with(b"*/") {
            in_comment = false;
            i += 2;
        } else if rest.starts_with(b"-->") {
            in_comment = false;
            i += 3;
        } else {
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    Some(out)
}

/// `removeCommentsChar`: removes the comment markers `/*`, `*/`, `<!--`, `-->`, `--`, `#`.
pub(super) fn remove_comments_char(s: &[u8]) -> Option<Vec<u8>> {
    if !s
        .iter()
        .any(|&b| matches!(b, b'/' | b'*' | b'-' | b'#' | b'<'))
    {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let skip = if rest.starts_with(b"/*") || rest.starts_with(b"*/") {
            2
        } else if rest.starts_with(b"<!--") {
            4
        } else if rest.starts_with(b"-->") {
            3
        } else if rest.starts_with(b"--") {
            2
        } else if rest[0] == b'#' {
            1
        } else {
            out.push(rest[0]);
            1
        };
        i += skip;
    }
    Some(out)
}

/// `replaceComments`: each `/* … */` becomes one space; an unterminated `/*` comment up to
/// the end becomes one space.
pub(super) fn replace_comments(s: &[u8]) -> Option<Vec<u8>> {
    if !s.windows(2).any(|w| w == b"/*") {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    let mut in_comment = false;
    while i < s.len() {
        let rest = &s[i..];
        if !in_comment {
            if rest.starts_with(b"/*") {
                in_comment = true;
                i += 2;
            } else {
                out.push(rest[0]);
                i += 1;
            }
        } else if rest.starts_with(b"*/") {
            in_comment = false;
            out.push(b' ');
            i += 2;
        } else {
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    Some(out)
}

#[derive(Clone, Copy)]
pub(super) enum Parity {
    Even,
    Odd,
    Zero,
}

/// `parityEven7bit` / `parityOdd7bit` / `parityZero7bit`, as ModSecurity computes them (the
/// parity is taken over all eight bits of the byte, then bit 7 is set or cleared).
pub(super) fn parity(s: &[u8], p: Parity) -> Option<Vec<u8>> {
    if matches!(p, Parity::Zero) && s.is_ascii() {
        return None;
    }
    Some(
        s.iter()
            .map(|&x| {
                let odd = x.count_ones() % 2 == 1;
                match p {
                    Parity::Zero => x & 0x7f,
                    Parity::Even if odd => x | 0x80,
                    Parity::Odd if !odd => x | 0x80,
                    _ => x & 0x7f,
                }
            })
            .collect(),
    )
}
