//! Functions: transformations on bytes (applied element-wise to arrays), `len`, prefix/suffix
//! tests, `concat`, the detectors `sqli`/`xss` (see [`super::detect`]), and `any`/`all` over
//! arrays of bools.

use std::borrow::Cow;

use super::check::TExpr;
use super::types::{Ty, Value};

pub use super::path::normalize_path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Lower,
    Upper,
    Len,
    StartsWith,
    EndsWith,
    Concat,
    UrlDecode,
    HtmlEntityDecode,
    Base64Decode,
    NormalizePath,
    CompressWhitespace,
    RemoveNulls,
    Sqli,
    Xss,
    Any,
    All,
}

const NAMES: &[(&str, Func)] = &[
    ("lower", Func::Lower),
    ("upper", Func::Upper),
    ("len", Func::Len),
    ("starts_with", Func::StartsWith),
    ("ends_with", Func::EndsWith),
    ("concat", Func::Concat),
    ("url_decode", Func::UrlDecode),
    ("html_entity_decode", Func::HtmlEntityDecode),
    ("base64_decode", Func::Base64Decode),
    ("normalize_path", Func::NormalizePath),
    ("compress_whitespace", Func::CompressWhitespace),
    ("remove_nulls", Func::RemoveNulls),
    ("sqli", Func::Sqli),
    ("xss", Func::Xss),
    ("any", Func::Any),
    ("all", Func::All),
];

impl Func {
    pub fn lookup(name: &str) -> Option<Func> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(n, _)| *n)
    }

    fn is_transform(self) -> bool {
        matches!(
            self,
            Func::Lower
                | Func::Upper
                | Func::UrlDecode
                | Func::HtmlEntityDecode
                | Func::Base64Decode
                | Func::NormalizePath
                | Func::CompressWhitespace
                | Func::RemoveNulls
        )
    }

    /// The result type, and whether the call is lifted over an array first argument.
    pub fn check(self, args: &[TExpr]) -> Result<(Ty, bool), String> {
        let arity = |n: usize| {
            if args.len() != n {
                Err(format!("{self:?} takes {n} argument(s), got {}", args.len()).to_lowercase())
            } else {
                Ok(())
            }
        };
        let bytes_or_array = |t: &Ty| match t {
            Ty::Bytes => Ok(false),
            Ty::Array(inner) if **inner == Ty::Bytes => Ok(true),
            other => Err(format!("expected bytes or an array of bytes, got {other}")),
        };
        let wrap = |lifted: bool, t: Ty| if lifted { Ty::Array(Box::new(t)) } else { t };
        match self {
            f if f.is_transform() => {
                arity(1)?;
                let lifted = bytes_or_array(&args[0].ty)?;
                Ok((wrap(lifted, Ty::Bytes), lifted))
            }
            Func::Len => {
                arity(1)?;
                match &args[0].ty {
                    Ty::Bytes | Ty::Array(_) | Ty::Map(_) => Ok((Ty::Int, false)),
                    other => Err(format!("len takes bytes, an array or a map, got {other}")),
                }
            }
            Func::Sqli | Func::Xss => {
                arity(1)?;
                let lifted = bytes_or_array(&args[0].ty)?;
                Ok((wrap(lifted, Ty::Bool), lifted))
            }
            Func::StartsWith | Func::EndsWith => {
                arity(2)?;
                let lifted = bytes_or_array(&args[0].ty)?;
                if args[1].ty != Ty::Bytes {
                    return Err(format!(
                        "the second argument must be bytes, got {}",
                        args[1].ty
                    ));
                }
                Ok((wrap(lifted, Ty::Bool), lifted))
            }
            Func::Concat => {
                if args.len() < 2 {
                    return Err("concat takes at least 2 arguments".into());
                }
                if let Some(a) = args.iter().find(|a| a.ty != Ty::Bytes) {
                    return Err(format!("concat takes bytes, got {}", a.ty));
                }
                Ok((Ty::Bytes, false))
            }
            Func::Any | Func::All => {
                arity(1)?;
                match &args[0].ty {
                    Ty::Array(inner) if **inner == Ty::Bool => Ok((Ty::Bool, false)),
                    other => {
                        Err(format!("{self:?} takes an array of bools, got {other}").to_lowercase())
                    }
                }
            }
            _ => Err("unreachable function kind".into()),
        }
    }

    /// Applies the function to evaluated arguments (`None`: an argument was absent). The
    /// arguments are lent: only the result is built.
    pub fn apply(self, args: &[&Value]) -> Option<Value> {
        let arg = |i: usize| as_bytes(args[i]);
        Some(match self {
            Func::Lower => Value::Bytes(arg(0)?.to_ascii_lowercase()),
            Func::Upper => Value::Bytes(arg(0)?.to_ascii_uppercase()),
            Func::UrlDecode => Value::Bytes(url_decode(arg(0)?)),
            Func::HtmlEntityDecode => Value::Bytes(html_entity_decode(arg(0)?)),
            Func::Base64Decode => Value::Bytes(base64_decode(arg(0)?)),
            Func::NormalizePath => Value::Bytes(normalize_path(arg(0)?)),
            Func::CompressWhitespace => Value::Bytes(compress_whitespace(arg(0)?)),
            Func::RemoveNulls => {
                Value::Bytes(arg(0)?.iter().copied().filter(|b| *b != 0).collect())
            }
            Func::Len => Value::Int(match args[0] {
                Value::Bytes(b) => b.len() as i64,
                Value::Array(a) => a.len() as i64,
                Value::Map(m) => m.len() as i64,
                _ => return None,
            }),
            Func::Sqli => Value::Bool(super::detect::sqli(arg(0)?)),
            Func::Xss => Value::Bool(super::detect::xss(arg(0)?)),
            Func::StartsWith => Value::Bool(arg(0)?.starts_with(arg(1)?)),
            Func::EndsWith => Value::Bool(arg(0)?.ends_with(arg(1)?)),
            Func::Concat => {
                let mut out = Vec::new();
                for a in args {
                    out.extend_from_slice(as_bytes(a)?);
                }
                Value::Bytes(out)
            }
            Func::Any | Func::All => {
                let Value::Array(items) = args[0] else {
                    return None;
                };
                let truth = items.iter().map(|v| matches!(v, Value::Bool(true)));
                Value::Bool(if self == Func::Any {
                    truth.into_iter().any(|t| t)
                } else {
                    truth.into_iter().all(|t| t)
                })
            }
        })
    }

    /// As [`apply`](Self::apply), but a transformation that would leave its argument unchanged
    /// gives it back lent instead of copied.
    pub fn apply_lent<'v>(self, args: &[&'v Value]) -> Option<Cow<'v, Value>> {
        let unchanged = |b: &[u8]| match self {
            Func::Lower => !b.iter().any(u8::is_ascii_uppercase),
            Func::Upper => !b.iter().any(u8::is_ascii_lowercase),
            Func::UrlDecode => !b.iter().any(|c| matches!(c, b'%' | b'+')),
            Func::HtmlEntityDecode => !b.contains(&b'&'),
            Func::RemoveNulls => !b.contains(&0),
            _ => false,
        };
        match args {
            [a @ Value::Bytes(b)] if unchanged(b) => Some(Cow::Borrowed(*a)),
            _ => self.apply(args).map(Cow::Owned),
        }
    }
}

fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Bytes(b) => Some(b),
        _ => None,
    }
}

/// `%XX` to bytes and `+` to space; a malformed escape is kept as written.
pub fn url_decode(s: &[u8]) -> Vec<u8> {
    decode(s, true)
}

/// `%XX` to bytes, `+` kept (it means a space only in form-encoded data, not in a path); a
/// malformed escape is kept as written.
pub fn percent_decode(s: &[u8]) -> Vec<u8> {
    decode(s, false)
}

fn decode(s: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Named entities `&lt; &gt; &amp; &quot; &apos; &nbsp;` and numeric `&#NN;` / `&#xHH;`.
pub fn html_entity_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'&' {
            if let Some(end) = s[i + 1..].iter().take(10).position(|c| *c == b';') {
                let name = &s[i + 1..i + 1 + end];
                let decoded: Option<Vec<u8>> = match name {
                    b"lt" => Some(b"<".to_vec()),
                    b"gt" => Some(b">".to_vec()),
                    b"amp" => Some(b"&".to_vec()),
                    b"quot" => Some(b"\"".to_vec()),
                    b"apos" => Some(b"'".to_vec()),
                    b"nbsp" => Some(b" ".to_vec()),
                    [b'#', b'x' | b'X', rest @ ..] => num(rest, 16),
                    [b'#', rest @ ..] => num(rest, 10),
                    _ => None,
                };
                if let Some(d) = decoded {
                    out.extend(d);
                    i += end + 2;
                    continue;
                }
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn num(digits: &[u8], radix: u32) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(digits).ok()?;
    let c = char::from_u32(u32::from_str_radix(text, radix).ok()?)?;
    let mut buf = [0u8; 4];
    Some(c.encode_utf8(&mut buf).as_bytes().to_vec())
}

/// Standard and URL-safe alphabets, padding optional; stops at the first byte outside them.
pub fn base64_decode(s: &[u8]) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        let Some(v) = val(c) else { break };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Runs of ASCII whitespace become one space.
pub fn compress_whitespace(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        if c.is_ascii_whitespace() {
            if out.last() != Some(&b' ') {
                out.push(b' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transformations() {
        assert_eq!(url_decode(b"a%20b+c%2"), b"a b c%2");
        assert_eq!(url_decode(b"%3Cscript%3E"), b"<script>");
        assert_eq!(
            html_entity_decode(b"&lt;a&#62;&#x41;&bogus;"),
            b"<a>A&bogus;"
        );
        assert_eq!(base64_decode(b"aGVsbG8="), b"hello");
        assert_eq!(percent_decode(b"a%20b+c%2"), b"a b+c%2");
        assert_eq!(normalize_path(b"/a//b/../c/./d"), b"/a/c/d");
        assert_eq!(normalize_path(b"/;x/secret"), b"/secret");
        assert_eq!(normalize_path(b"/\\secret"), b"/secret");
        assert_eq!(compress_whitespace(b"a \t\n b"), b"a b");
    }

    #[test]
    fn lent_results_equal_built_ones() {
        // Every string of up to 4 bytes over an alphabet holding each byte that can make a
        // transformation change its input.
        let alphabet = b"aZ%2+&;#x0 \0\t/.";
        let mut inputs = vec![Vec::new()];
        for len in 1..=4u32 {
            for n in 0..alphabet.len().pow(len) {
                let (mut n, mut s) = (n, Vec::new());
                for _ in 0..len {
                    s.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                inputs.push(s);
            }
        }
        for f in Func::names()
            .filter_map(Func::lookup)
            .filter(|f| f.is_transform())
        {
            for input in &inputs {
                let v = Value::Bytes(input.clone());
                assert_eq!(
                    f.apply_lent(&[&v]).map(Cow::into_owned),
                    f.apply(&[&v]),
                    "{f:?} of {input:?}"
                );
            }
        }
    }
}
