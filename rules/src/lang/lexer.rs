//! Tokens of the expression language (Wireshark/Cloudflare style): field names with dots,
//! integers, strings (with escapes, and raw `r"..."`), IPv4/IPv6 addresses and CIDRs, operators in
//! word and symbol form.

use super::span::Span;
use super::ErrorKind;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    Int(i64),
    Str(Vec<u8>),
    /// An address or a CIDR, kept as text (parsed by the checker into a prefix).
    Addr(String),
    List(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    DotDot,
    Star,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Xor,
    Not,
    In,
    Contains,
    Matches,
    Wildcard,
    StrictWildcard,
    Eof,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(i) => format!("number {i}"),
            Tok::Str(_) => "a string".into(),
            Tok::Addr(a) => format!("address `{a}`"),
            Tok::List(l) => format!("list `${l}`"),
            Tok::Eof => "the end of the expression".into(),
            other => format!("`{}`", symbol(other)),
        }
    }
}

fn symbol(t: &Tok) -> &'static str {
    match t {
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Comma => ",",
        Tok::Colon => ":",
        Tok::DotDot => "..",
        Tok::Star => "*",
        Tok::Eq => "eq",
        Tok::Ne => "ne",
        Tok::Lt => "lt",
        Tok::Le => "le",
        Tok::Gt => "gt",
        Tok::Ge => "ge",
        Tok::And => "and",
        Tok::Or => "or",
        Tok::Xor => "xor",
        Tok::Not => "not",
        Tok::In => "in",
        Tok::Contains => "contains",
        Tok::Matches => "matches",
        Tok::Wildcard => "wildcard",
        Tok::StrictWildcard => "strict wildcard",
        _ => "?",
    }
}

pub fn lex(src: &str) -> Result<Vec<(Tok, Span)>, (ErrorKind, Span)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let two = |s: &str| src[i..].starts_with(s);
        let (tok, len) = if two("==") {
            (Tok::Eq, 2)
        } else if two("!=") {
            (Tok::Ne, 2)
        } else if two("<=") {
            (Tok::Le, 2)
        } else if two(">=") {
            (Tok::Ge, 2)
        } else if two("&&") {
            (Tok::And, 2)
        } else if two("||") {
            (Tok::Or, 2)
        } else if two("^^") {
            (Tok::Xor, 2)
        } else if two("..") {
            (Tok::DotDot, 2)
        } else {
            match c {
                b'(' => (Tok::LParen, 1),
                b')' => (Tok::RParen, 1),
                b'{' => (Tok::LBrace, 1),
                b'}' => (Tok::RBrace, 1),
                b'[' => (Tok::LBracket, 1),
                b']' => (Tok::RBracket, 1),
                b',' => (Tok::Comma, 1),
                b':' if !src[i..].starts_with("::") => (Tok::Colon, 1),
                b'*' => (Tok::Star, 1),
                b'<' => (Tok::Lt, 1),
                b'>' => (Tok::Gt, 1),
                b'!' => (Tok::Not, 1),
                b'~' => (Tok::Matches, 1),
                b'"' => {
                    let (s, n) = string(&src[i..])
                        .map_err(|(k, off)| (k, Span::new(i + off, i + off + 1)))?;
                    (Tok::Str(s), n)
                }
                b'r' if src[i..].starts_with("r\"") || src[i..].starts_with("r#") => {
                    let (s, n) = raw_string(&src[i..])
                        .ok_or((ErrorKind::UnterminatedString, Span::new(i, i + 1)))?;
                    (Tok::Str(s), n)
                }
                b'$' => {
                    let n = 1 + word_len(&b[i + 1..]);
                    if n == 1 {
                        return Err((
                            ErrorKind::BadToken { text: "$".into() },
                            Span::new(i, i + 1),
                        ));
                    }
                    (Tok::List(src[i + 1..i + n].to_string()), n)
                }
                _ if c.is_ascii_alphanumeric() || c == b'_' => word(src, i)?,
                // `::1`, `::/0`, `::ffff:10.0.0.0/104`: IPv6 literals may start with `::`.
                b':' if src[i..].starts_with("::") => word(src, i)?,
                _ => {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err((
                        ErrorKind::BadToken {
                            text: ch.to_string(),
                        },
                        Span::new(i, i + ch.len_utf8()),
                    ));
                }
            }
        };
        i += len;
        out.push((tok, Span::new(start, i)));
    }
    out.push((Tok::Eof, Span::new(src.len(), src.len())));
    Ok(out)
}

fn word_len(b: &[u8]) -> usize {
    b.iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count()
}

/// An identifier (with dots), a keyword, an integer, or an address/CIDR.
fn word(src: &str, i: usize) -> Result<(Tok, usize), (ErrorKind, Span)> {
    let b = src.as_bytes();
    // The longest run that could be an address or CIDR: hex digits, dots, colons, a slash.
    let run = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'/' | b'_'))
        .count();
    let text = &src[i..i + run];
    // Every IPv6 literal has at least two colons; one colon is a slice `[a:b]`.
    let looks_v6 = text.matches(':').count() >= 2;
    let looks_v4 = b[i].is_ascii_digit()
        && text
            .split('/')
            .next()
            .is_some_and(|a| a.matches('.').count() == 3 && !a.contains(".."));
    if looks_v6 || looks_v4 {
        return Ok((Tok::Addr(text.to_string()), run));
    }
    if b[i].is_ascii_digit() {
        let n = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        let digits = &src[i..i + n];
        let value = if let Some(hex) = digits.strip_prefix("0x") {
            i64::from_str_radix(hex, 16).ok()
        } else {
            digits.parse::<i64>().ok()
        };
        return match value {
            Some(v) => Ok((Tok::Int(v), n)),
            None => Err((
                ErrorKind::BadNumber {
                    text: digits.to_string(),
                },
                Span::new(i, i + n),
            )),
        };
    }
    // Identifier: words joined by single dots (a `..` ends it: `x..y` is a range).
    let mut n = word_len(&b[i..]);
    while b.get(i + n) == Some(&b'.')
        && b.get(i + n + 1)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        n += 1 + word_len(&b[i + n + 1..]);
    }
    let w = &src[i..i + n];
    let tok = match w {
        "eq" => Tok::Eq,
        "ne" => Tok::Ne,
        "lt" => Tok::Lt,
        "le" => Tok::Le,
        "gt" => Tok::Gt,
        "ge" => Tok::Ge,
        "and" => Tok::And,
        "or" => Tok::Or,
        "xor" => Tok::Xor,
        "not" => Tok::Not,
        "in" => Tok::In,
        "contains" => Tok::Contains,
        "matches" => Tok::Matches,
        "wildcard" => Tok::Wildcard,
        "strict" => {
            let rest = src[i + n..].trim_start();
            let whole_word =
                |a: &str| !a.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            if let Some(after) = rest.strip_prefix("wildcard").filter(|a| whole_word(a)) {
                let consumed = src.len() - i - after.len();
                return Ok((Tok::StrictWildcard, consumed));
            }
            Tok::Ident(w.to_string())
        }
        _ => Tok::Ident(w.to_string()),
    };
    Ok((tok, n))
}

/// A `"..."` string with `\"`, `\\`, `\n`, `\r`, `\t`, `\0` and `\xHH` escapes.
fn string(s: &str) -> Result<(Vec<u8>, usize), (ErrorKind, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Ok((out, i + 1)),
            b'\\' => {
                let e = *b.get(i + 1).ok_or((ErrorKind::UnterminatedString, 0))?;
                match e {
                    b'"' | b'\\' => out.push(e),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'0' => out.push(0),
                    b'x' => {
                        let hex = s
                            .get(i + 2..i + 4)
                            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                            .ok_or((ErrorKind::BadEscape, i))?;
                        out.push(
                            u8::from_str_radix(hex, 16).map_err(|_| (ErrorKind::BadEscape, i))?,
                        );
                        i += 2;
                    }
                    _ => return Err((ErrorKind::BadEscape, i)),
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err((ErrorKind::UnterminatedString, 0))
}

/// `r"..."` or `r#"..."#` (any number of `#`): no escapes.
fn raw_string(s: &str) -> Option<(Vec<u8>, usize)> {
    let hashes = s[1..].bytes().take_while(|c| *c == b'#').count();
    let open = 1 + hashes;
    if s.as_bytes().get(open) != Some(&b'"') {
        return None;
    }
    let close = format!("\"{}", "#".repeat(hashes));
    let body_start = open + 1;
    let end = s[body_start..].find(&close)?;
    Some((
        s.as_bytes()[body_start..body_start + end].to_vec(),
        body_start + end + close.len(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn words_numbers_addresses_and_ranges() {
        assert_eq!(
            toks("tcp.flags.syn and ip.src in {10.0.0.0/8 2001:db8::/32} and tcp.dstport in {1000..2000}"),
            vec![
                Tok::Ident("tcp.flags.syn".into()),
                Tok::And,
                Tok::Ident("ip.src".into()),
                Tok::In,
                Tok::LBrace,
                Tok::Addr("10.0.0.0/8".into()),
                Tok::Addr("2001:db8::/32".into()),
                Tok::RBrace,
                Tok::And,
                Tok::Ident("tcp.dstport".into()),
                Tok::In,
                Tok::LBrace,
                Tok::Int(1000),
                Tok::DotDot,
                Tok::Int(2000),
                Tok::RBrace,
                Tok::Eof
            ]
        );
        assert_eq!(toks("fe80::1")[0], Tok::Addr("fe80::1".into()));
        assert_eq!(toks("0x1f")[0], Tok::Int(31));
    }

    #[test]
    fn strings_escapes_and_raw() {
        assert_eq!(toks(r#""a\"b\x41""#)[0], Tok::Str(b"a\"bA".to_vec()));
        assert_eq!(toks(r##"r#"a"b"#"##)[0], Tok::Str(b"a\"b".to_vec()));
        assert!(matches!(
            lex("\"open"),
            Err((ErrorKind::UnterminatedString, _))
        ));
        assert!(matches!(
            lex("a @ b"),
            Err((ErrorKind::BadToken { .. }, Span { start: 2, end: 3 }))
        ));
        assert_eq!(toks("x strict wildcard \"a*\"")[1], Tok::StrictWildcard);
    }
}
