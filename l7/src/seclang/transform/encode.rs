//! Encoders and digests: utf8toUnicode, base64Encode, hexEncode, urlEncode, sha1, md5.

use base64::Engine as _;
use md5::Digest as _;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `utf8toUnicode`: each valid multi-byte UTF-8 sequence (no overlongs, no surrogates, at
/// most U+10FFFF) becomes `%uXXXX` (lowercase hex, at least four digits); ASCII and invalid
/// bytes are left as they are.
pub(super) fn utf8_to_unicode(s: &[u8]) -> Option<Vec<u8>> {
    if s.is_ascii() {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 2);
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        let (len, init) = match c {
            0xc0..=0xdf => (2, u32::from(c & 0x1f)),
            0xe0..=0xef => (3, u32::from(c & 0x0f)),
            0xf0..=0xf7 => (4, u32::from(c & 0x07)),
            _ => (1, 0),
        };
        let cont = s
            .get(i + 1..i + len)
            .filter(|t| len > 1 && t.iter().all(|&b| b & 0xc0 == 0x80));
        let code = cont.map(|t| t.iter().fold(init, |d, &b| d << 6 | u32::from(b & 0x3f)));
        let min = match len {
            2 => 0x80,
            3 => 0x800,
            _ => 0x1_0000,
        };
        match code {
            Some(d) if d >= min && d <= 0x10_ffff && !(0xd800..=0xdfff).contains(&d) => {
                out.extend_from_slice(format!("%u{d:04x}").as_bytes());
                i += len;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

pub(super) fn base64_encode(s: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(s)
        .into_bytes()
}

pub(super) fn hex_encode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 2);
    for &b in s {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
    out
}

/// `urlEncode` (ModSecurity): space → `+`; ASCII letters, digits and `*` kept; every other
/// byte → `%hh` (lowercase hex).
pub(super) fn url_encode(s: &[u8]) -> Option<Vec<u8>> {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b == b'*';
    if s.iter().all(|&b| keep(b)) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3);
    for &b in s {
        if b == b' ' {
            out.push(b'+');
        } else if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
    Some(out)
}

/// `sha1`: the raw 20-byte digest.
pub(super) fn sha1(s: &[u8]) -> Vec<u8> {
    sha1::Sha1::digest(s).to_vec()
}

/// `md5`: the raw 16-byte digest.
pub(super) fn md5(s: &[u8]) -> Vec<u8> {
    md5::Md5::digest(s).to_vec()
}
