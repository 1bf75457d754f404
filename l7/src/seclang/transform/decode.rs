//! Decoders: urlDecode(Uni), htmlEntityDecode, jsDecode, cssDecode, escapeSeqDecode,
//! base64Decode(Ext), hexDecode, sqlHexDecode. Each returns `None` when it has nothing to do.

use super::{hex_val, is_c_space, is_hex, unicode_low_byte, x2c};

/// Four bytes from `s[at..]`, if they are all hex digits.
fn hex4(s: &[u8], at: usize) -> Option<[u8; 4]> {
    let d = s.get(at..at.checked_add(4)?)?;
    if d.iter().all(|&b| is_hex(b)) {
        Some([d[0], d[1], d[2], d[3]])
    } else {
        None
    }
}

/// Two hex digits at `s[at..]` decoded.
fn hex2(s: &[u8], at: usize) -> Option<u8> {
    let hi = *s.get(at)?;
    let lo = *s.get(at.checked_add(1)?)?;
    if is_hex(hi) && is_hex(lo) {
        Some(x2c(hi, lo))
    } else {
        None
    }
}

fn is_odigit(b: Option<&u8>) -> bool {
    matches!(b, Some(b'0'..=b'7'))
}

/// `urlDecode` (`uni == false`) and `urlDecodeUni`: `%HH`, `+` → space; with `uni` also
/// IIS `%uHHHH` (low byte, full-width ASCII folded). Invalid sequences are left as they are.
pub(super) fn url_decode(s: &[u8], uni: bool) -> Option<Vec<u8>> {
    if !s.iter().any(|&b| b == b'%' || b == b'+') {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        match c {
            b'%' if uni && matches!(s.get(i + 1), Some(b'u' | b'U')) => {
                if let Some(d) = hex4(s, i + 2) {
                    out.push(unicode_low_byte(&d));
                    i += 6;
                } else {
                    // Invalid or too short: keep "%u" and go on after it.
                    out.extend_from_slice(&s[i..i + 2]);
                    i += 2;
                }
            }
            b'%' => {
                if let Some(b) = hex2(s, i + 1) {
                    out.push(b);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// C `strtol` of a digit run, saturating like it does at `LONG_MAX`, then cast to a byte.
fn strtol_byte(digits: &[u8], radix: u32) -> u8 {
    let mut v: i64 = 0;
    for &d in digits {
        let dv = match hex_val(d) {
            Some(x) if u32::from(x) < radix => i64::from(x),
            _ => break,
        };
        v = v
            .checked_mul(i64::from(radix))
            .and_then(|v| v.checked_add(dv))
            .unwrap_or(i64::MAX);
        if v == i64::MAX {
            break;
        }
    }
    (v & 0xff) as u8
}

/// `htmlEntityDecode`: `&#DDD;`, `&#xHH;` (the `;` optional; the low byte is kept), and the
/// named `&quot; &amp; &lt; &gt; &nbsp;` (→ 0xA0, ModSecurity's NBSP) plus `&apos;`.
/// Anything else is copied as it is.
pub(super) fn html_entity_decode(s: &[u8]) -> Option<Vec<u8>> {
    if !s.contains(&b'&') {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        // How many input bytes to copy raw when no entity is recognised here.
        let mut copy = 1;
        if s[i] == b'&' && i + 1 < s.len() {
            let mut j = i + 1;
            if s[j] == b'#' {
                copy = 2;
                j += 1;
                let hex = matches!(s.get(j), Some(b'x' | b'X'));
                if hex {
                    copy = 3;
                    j += 1;
                }
                let k = j;
                let radix = if hex { 16 } else { 10 };
                while j < s.len() && hex_val(s[j]).is_some_and(|v| u32::from(v) < radix) {
                    j += 1;
                }
                if j > k && j <= s.len() {
                    out.push(strtol_byte(&s[k..j], radix));
                    i = if s.get(j) == Some(&b';') { j + 1 } else { j };
                    continue;
                }
            } else {
                let k = j;
                while j < s.len() && s[j].is_ascii_alphanumeric() {
                    j += 1;
                }
                if j > k {
                    let name = &s[k..j];
                    let ch = [
                        (&b"quot"[..], b'"'),
                        (b"amp", b'&'),
                        (b"lt", b'<'),
                        (b"gt", b'>'),
                        (b"nbsp", 0xa0),
                        (b"apos", b'\''),
                    ]
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|&(_, c)| c);
                    match ch {
                        Some(c) => {
                            out.push(c);
                            i = if s.get(j) == Some(&b';') { j + 1 } else { j };
                            continue;
                        }
                        None => copy = j - k + 1,
                    }
                }
            }
        }
        let end = (i + copy).min(s.len());
        out.extend_from_slice(&s[i..end]);
        i = end;
    }
    Some(out)
}

/// Up to `max` octal digits at `s[at..]`: (value, digits used).
fn octal(s: &[u8], at: usize, max: usize) -> (u32, usize) {
    let mut v = 0u32;
    let mut n = 0;
    while n < max && is_odigit(s.get(at + n)) {
        v = v * 8 + u32::from(s[at + n] - b'0');
        n += 1;
    }
    (v, n)
}

fn c_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'a' => 0x07,
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        b'\\' | b'?' | b'\'' | b'"' => c,
        _ => return None,
    })
}

/// `jsDecode`: `\uHHHH` (low byte, full-width folded), `\xHH`, `\OOO` (one byte: at most
/// three digits, two if the first is above 3), C escapes, and `\c` → `c` otherwise.
pub(super) fn js_decode(s: &[u8]) -> Option<Vec<u8>> {
    if !s.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let next = s.get(i + 1).copied();
        if let (Some(b'u'), Some(d)) = (next, hex4(s, i + 2)) {
            out.push(unicode_low_byte(&d));
            i += 6;
        } else if let (Some(b'x'), Some(b)) = (next, hex2(s, i + 2)) {
            out.push(b);
            i += 4;
        } else if is_odigit(s.get(i + 1)) {
            let (mut v, mut n) = octal(s, i + 1, 3);
            if n == 3 && s[i + 1] > b'3' {
                let (v2, n2) = octal(s, i + 1, 2);
                v = v2;
                n = n2;
            }
            out.push((v & 0xff) as u8);
            i += 1 + n;
        } else if let Some(n) = next {
            out.push(c_escape(n).unwrap_or(n));
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Some(out)
}

/// `cssDecode` (CSS 2.x): `\` + 1–6 hex digits (the last two give the byte; full-width ASCII
/// folded), one whitespace after it swallowed; `\` + newline removed; `\c` → `c`; a lone
/// trailing `\` removed.
pub(super) fn css_decode(s: &[u8]) -> Option<Vec<u8>> {
    if !s.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&n) = s.get(i) else { break };
        let mut j = 0;
        while j < 6 && s.get(i + j).is_some_and(|&b| is_hex(b)) {
            j += 1;
        }
        if j > 0 {
            let h = &s[i..i + j];
            let mut b = if j == 1 {
                hex_val(h[0]).unwrap_or(0)
            } else {
                x2c(h[j - 2], h[j - 1])
            };
            let full_check = match j {
                4 => true,
                5 => h[0] == b'0',
                6 => h[0] == b'0' && h[1] == b'0',
                _ => false,
            };
            if full_check
                && b > 0
                && b < 0x5f
                && matches!(h[j - 3], b'f' | b'F')
                && matches!(h[j - 4], b'f' | b'F')
            {
                b += 0x20;
            }
            out.push(b);
            if s.get(i + j).is_some_and(|&b| is_c_space(b)) {
                j += 1;
            }
            i += j;
        } else if n == b'\n' {
            i += 1;
        } else {
            out.push(n);
            i += 1;
        }
    }
    Some(out)
}

/// `escapeSeqDecode`: ANSI C escapes `\a \b \f \n \r \t \v \\ \? \' \"`, `\xHH`, `\OOO`
/// (up to three octal digits, low byte); any other `\c` → `c`.
pub(super) fn escape_seq_decode(s: &[u8]) -> Option<Vec<u8>> {
    if !s.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        let next = match s.get(i + 1) {
            Some(&n) if c == b'\\' => n,
            _ => {
                out.push(c);
                i += 1;
                continue;
            }
        };
        if let Some(e) = c_escape(next) {
            out.push(e);
            i += 2;
        } else if let (b'x' | b'X', Some(b)) = (next, hex2(s, i + 2)) {
            out.push(b);
            i += 4;
        } else if is_odigit(Some(&next)) {
            let (v, n) = octal(s, i + 1, 3);
            out.push((v & 0xff) as u8);
            i += 1 + n;
        } else {
            out.push(next);
            i += 2;
        }
    }
    Some(out)
}

fn b64_val(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// `base64Decode` (standard alphabet; stops at the first character outside it, `=` included,
/// and needs no padding) and, with `forgiving`, `base64DecodeExt` (skips such characters).
/// Incomplete trailing bits are dropped.
pub(super) fn base64_decode(s: &[u8], forgiving: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in s {
        let Some(v) = b64_val(c) else {
            if forgiving {
                continue;
            }
            break;
        };
        acc = (acc << 6 | v) & 0xff_ffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// `hexDecode`: each pair of characters to one byte (ModSecurity's unvalidated `x2c`); an odd
/// trailing character is dropped.
pub(super) fn hex_decode(s: &[u8]) -> Vec<u8> {
    s.chunks_exact(2).map(|p| x2c(p[0], p[1])).collect()
}

/// `sqlHexDecode`: `0xHHHH…` (at least one pair of hex digits) decoded pair by pair; an odd
/// trailing digit and anything else are left as they are.
pub(super) fn sql_hex_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    let mut changed = false;
    while let Some(&c) = s.get(i) {
        if c == b'0' && matches!(s.get(i + 1), Some(b'x' | b'X')) && hex2(s, i + 2).is_some() {
            i += 2;
            while let Some(b) = hex2(s, i) {
                out.push(b);
                i += 2;
            }
            changed = true;
        } else {
            out.push(c);
            i += 1;
        }
    }
    changed.then_some(out)
}
