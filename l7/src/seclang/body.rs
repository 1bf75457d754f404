//! Request-body processors as ModSecurity names them (`URLENCODED`, `MULTIPART`, `JSON`,
//! `XML`): body bytes → `ARGS_POST` pairs and the processor's own collections.
//!
//! The body is hostile: nothing here panics or recurses without a bound; a body that does not
//! parse sets `error` (CRS reads it as `REQBODY_ERROR` and blocks in rule 200002's place) and
//! keeps what was read before the fault.

use crate::request::parse_urlencoded;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// JSON nesting read at most (deeper is an error, not a recursion).
const MAX_DEPTH: usize = 64;
/// Header lines kept per multipart part.
const MAX_PART_HEADERS: usize = 64;
/// Arguments one body yields at most (ModSecurity's `SecArgumentsLimit` plays this role).
const MAX_ARGS: usize = 10_000;

/// What a processor read.
#[derive(Debug, Default)]
pub struct BodyVars {
    pub args: Pairs,
    pub collections: Vec<(&'static str, Pairs)>,
    pub error: Option<String>,
}

pub fn urlencoded(body: &[u8]) -> BodyVars {
    BodyVars {
        args: parse_urlencoded(body, usize::MAX).0,
        ..BodyVars::default()
    }
}

/// JSON leaves as `json.a.b`, `json.list.0`, and each array as `json.list` = its length
/// (Coraza's naming).
pub fn json(body: &[u8]) -> BodyVars {
    let mut out = BodyVars::default();
    // Every leaf repeats its parents' names: bound the bytes of names so a long key over many
    // leaves cannot multiply memory.
    let mut names = body.len().saturating_mul(4).saturating_add(64 * 1024);
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => flatten(&v, b"json".to_vec(), 0, &mut names, &mut out),
        Err(e) => out.error = Some(format!("JSON parsing error: {e}")),
    }
    out
}

fn flatten(
    v: &serde_json::Value,
    name: Vec<u8>,
    depth: usize,
    names: &mut usize,
    out: &mut BodyVars,
) {
    use serde_json::Value;
    if depth > MAX_DEPTH {
        out.error = Some(format!("JSON nested deeper than {MAX_DEPTH}"));
        return;
    }
    if out.args.len() >= MAX_ARGS || name.len() > *names {
        out.error = Some(format!(
            "JSON yields more than {MAX_ARGS} arguments or too many name bytes"
        ));
        return;
    }
    *names -= name.len();
    let child = |key: &[u8]| [&name[..], b".", key].concat();
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(v, child(k.as_bytes()), depth + 1, names, out);
            }
        }
        Value::Array(items) => {
            // The array itself is an argument too (its length), as Coraza reads JSON: its
            // name must reach ARGS_NAMES even when its elements are indexed below it.
            out.args
                .push((name.clone(), items.len().to_string().into_bytes()));
            for (i, v) in items.iter().enumerate() {
                flatten(v, child(i.to_string().as_bytes()), depth + 1, names, out);
            }
        }
        Value::String(s) => out.args.push((name, s.as_bytes().to_vec())),
        Value::Null => out.args.push((name, Vec::new())),
        other => out.args.push((name, other.to_string().into_bytes())),
    }
}

/// `XML:/*` (every text node, joined by nothing as libxml2's string value does) and
/// `XML://@*` (every attribute value). Not a validating parser: enough structure to tell
/// text from markup and to refuse what is not well formed.
pub fn xml(body: &[u8]) -> BodyVars {
    let mut out = BodyVars::default();
    let mut text = Vec::new();
    let mut attrs: Pairs = Vec::new();
    let mut depth: i64 = 0;
    let mut i = 0;
    let mut seen_element = false;
    while i < body.len() {
        if body[i] != b'<' {
            let end = body[i..]
                .iter()
                .position(|&c| c == b'<')
                .map_or(body.len(), |p| i + p);
            text.extend_from_slice(&decode_entities(&body[i..end]));
            i = end;
            continue;
        }
        let rest = &body[i..];
        let (end, marker_len) = if rest.starts_with(b"<!--") {
            (find(rest, b"-->"), 3)
        } else if rest.starts_with(b"<![CDATA[") {
            (find(rest, b"]]>"), 3)
        } else if rest.starts_with(b"<?") {
            (find(rest, b"?>"), 2)
        } else {
            // Tags, declarations (`<!DOCTYPE`) and end tags close at a `>` outside quotes.
            (tag_end(rest), 1)
        };
        let Some(end) = end else {
            out.error = Some("XML parsing error: unterminated markup".into());
            break;
        };
        let inner = &rest[..end];
        if inner.starts_with(b"<![CDATA[") {
            text.extend_from_slice(&inner[9..]);
        } else if !(inner.starts_with(b"<!") || inner.starts_with(b"<?")) {
            seen_element = true;
            if inner.starts_with(b"</") {
                depth -= 1;
            } else if !inner.ends_with(b"/") {
                depth += 1;
            }
            attributes(inner, &mut attrs);
        }
        i += end + marker_len;
    }
    if out.error.is_none() && (depth != 0 || !seen_element) {
        out.error = Some("XML parsing error: document is not well formed".into());
    }
    out.collections.push(("XML", vec![(b"/*".to_vec(), text)]));
    let attr_values = attrs
        .into_iter()
        .map(|(_, v)| (b"//@*".to_vec(), v))
        .collect();
    out.collections.push(("XML", attr_values));
    out
}

/// The `>` closing a tag, skipping quoted attribute values.
fn tag_end(tag: &[u8]) -> Option<usize> {
    let mut quote = None;
    for (i, &c) in tag.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'>' => return Some(i),
            None => {}
        }
    }
    None
}

/// XML's predefined and numeric character references, as the parser hands values to
/// ModSecurity (numeric ones as UTF-8); an unknown or broken reference stays as written.
fn decode_entities(raw: &[u8]) -> Vec<u8> {
    if !raw.contains(&b'&') {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'&' {
            if let Some(len) = raw[i..].iter().take(12).position(|&c| c == b';') {
                let name = &raw[i + 1..i + len];
                let ch = match name {
                    b"lt" => Some('<'),
                    b"gt" => Some('>'),
                    b"amp" => Some('&'),
                    b"quot" => Some('"'),
                    b"apos" => Some('\''),
                    [b'#', b'x' | b'X', hex @ ..] => std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .and_then(char::from_u32),
                    [b'#', dec @ ..] => std::str::from_utf8(dec)
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .and_then(char::from_u32),
                    _ => None,
                };
                if let Some(ch) = ch {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    i += len + 1;
                    continue;
                }
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// `name="value"` pairs inside a start tag.
fn attributes(tag: &[u8], out: &mut Pairs) {
    let mut i = tag
        .iter()
        .position(|c| c.is_ascii_whitespace())
        .unwrap_or(tag.len());
    while i < tag.len() {
        let Some(eq) = tag[i..].iter().position(|&c| c == b'=') else {
            return;
        };
        let name = tag[i..i + eq].trim_ascii().to_vec();
        let mut j = i + eq + 1;
        while j < tag.len() && tag[j].is_ascii_whitespace() {
            j += 1;
        }
        let Some(&quote) = tag.get(j) else { return };
        if quote != b'"' && quote != b'\'' {
            return;
        }
        let Some(len) = tag[j + 1..].iter().position(|&c| c == quote) else {
            return;
        };
        out.push((name, decode_entities(&tag[j + 1..j + 1 + len])));
        i = j + 1 + len + 1;
    }
}

/// `multipart/form-data`: ARGS_POST for fields, FILES/FILES_NAMES/FILES_SIZES for file parts,
/// MULTIPART_PART_HEADERS for every part's header lines, and the strictness flags.
// One pass over the parts filling eight collections side by side (hence the length).
pub fn multipart(content_type: &[u8], body: &[u8]) -> BodyVars {
    let mut out = BodyVars::default();
    let mut files = Pairs::new();
    let mut file_names = Pairs::new();
    let mut sizes = Pairs::new();
    let mut part_headers = Pairs::new();
    let mut names = Pairs::new();
    let mut filenames = Pairs::new();
    let mut strict = false;
    let mut unmatched = false;
    let boundary = boundary(content_type);
    let flag = |b: bool| if b { b"1".to_vec() } else { b"0".to_vec() };
    let Some(boundary) = boundary else {
        out.error = Some("Multipart: boundary not found in Content-Type".into());
        out.collections
            .push(("MULTIPART_STRICT_ERROR", vec![(Vec::new(), flag(true))]));
        return out;
    };
    let delim = [&b"--"[..], &boundary].concat();
    let mut parts = split_on(body, &delim);
    // Before the first delimiter: preamble (allowed but unusual).
    let preamble = parts.remove(0);
    let mut closed = false;
    for part in parts {
        if part.starts_with(b"--") {
            closed = true;
            break;
        }
        let part = part
            .strip_prefix(b"\r\n")
            .or_else(|| part.strip_prefix(b"\n"))
            .unwrap_or(part);
        let part = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part);
        let (head, content) = match find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => match find(part, b"\n\n") {
                Some(i) => (&part[..i], &part[i + 2..]),
                None => {
                    strict = true;
                    continue;
                }
            },
        };
        let mut name = None;
        let mut filename = None;
        let mut header_lines = Vec::new();
        for line in head.split(|&c| c == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            // Headers per part are few; more is hostile (each would copy the part's name).
            if header_lines.len() >= MAX_PART_HEADERS {
                strict = true;
                continue;
            }
            header_lines.push(line.to_vec());
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                strict = true;
                continue;
            };
            if line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(b"content-disposition")
            {
                let params = &line[colon + 1..];
                name = param(params, b"name");
                filename = param(params, b"filename");
            }
        }
        let Some(name) = name else {
            strict = true;
            continue;
        };
        for h in header_lines {
            part_headers.push((name.clone(), h));
        }
        names.push((Vec::new(), name.clone()));
        match filename {
            Some(f) => {
                filenames.push((Vec::new(), f.clone()));
                files.push((name.clone(), f));
                file_names.push((name.clone(), name.clone()));
                sizes.push((name, content.len().to_string().into_bytes()));
            }
            None => out.args.push((name, content.to_vec())),
        }
    }
    if !closed {
        unmatched = true;
        strict = true;
        out.error = Some("Multipart: final boundary missing".into());
    }
    let _ = preamble;
    out.collections.extend([
        ("FILES", files),
        ("FILES_NAMES", file_names),
        ("FILES_SIZES", sizes),
        ("MULTIPART_PART_HEADERS", part_headers),
        ("MULTIPART_NAME", names),
        ("MULTIPART_FILENAME", filenames),
        ("MULTIPART_STRICT_ERROR", vec![(Vec::new(), flag(strict))]),
        (
            "MULTIPART_UNMATCHED_BOUNDARY",
            vec![(Vec::new(), flag(unmatched))],
        ),
    ]);
    out
}

fn boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    let b = param(content_type, b"boundary")?;
    (!b.is_empty() && b.len() <= 70).then_some(b)
}

/// A `; key=value` or `; key="value"` parameter (case-insensitive key). Quoted values may
/// hold `;` (CRS tests send HTML entities in part names), so the split respects quotes.
fn param(params: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let mut i = 0;
    while i < params.len() {
        // One `key=value` segment, up to an unquoted `;`.
        let start = i;
        let mut eq = None;
        let mut value = Vec::new();
        let mut quoted = false;
        let mut in_value = false;
        while i < params.len() {
            let c = params[i];
            if quoted {
                if c == b'\\' && matches!(params.get(i + 1), Some(b'"' | b'\\')) {
                    value.push(params[i + 1]);
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    quoted = false;
                } else {
                    value.push(c);
                }
            } else if c == b';' {
                break;
            } else if c == b'=' && eq.is_none() {
                eq = Some(i);
                in_value = true;
            } else if in_value && c == b'"' && value.iter().all(u8::is_ascii_whitespace) {
                value.clear();
                quoted = true;
            } else if in_value {
                value.push(c);
            }
            i += 1;
        }
        i += 1;
        let Some(eq) = eq else { continue };
        if params[start..eq].trim_ascii().eq_ignore_ascii_case(key) {
            return Some(value.trim_ascii().to_vec());
        }
    }
    None
}

/// Splits on `sep` where it starts a line (offset 0 or after `\n`), as RFC 2046 delimiters
/// do: a `--BOUNDARY` inside a value does not end its part (the origin would not split there
/// either, so a payload after it would pass unseen).
fn split_on<'a>(hay: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut from = 0;
    while let Some(i) = find(&hay[from..], sep) {
        let at = from + i;
        if at == 0 || hay[at - 1] == b'\n' {
            out.push(&hay[start..at]);
            start = at + sep.len();
            from = start;
        } else {
            from = at + 1;
        }
    }
    out.push(&hay[start..]);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u8]) -> String {
        String::from_utf8_lossy(v).into()
    }

    #[test]
    fn json_leaves_are_dotted_args() {
        let b = json(br#"{"a":{"b":["x",2]},"c":null}"#);
        let args: Vec<_> = b.args.iter().map(|(k, v)| (s(k), s(v))).collect();
        assert_eq!(
            args,
            [
                ("json.a.b".into(), "2".into()),
                ("json.a.b.0".into(), "x".into()),
                ("json.a.b.1".into(), "2".into()),
                ("json.c".into(), "".into())
            ]
        );
        assert!(b.error.is_none());
        assert!(json(b"{").error.is_some());
    }

    #[test]
    fn xml_text_and_attributes() {
        let b = xml(br#"<?xml version="1.0"?><a x="1&gt;&#x7B;"><b>hi &amp;</b><![CDATA[<q>]]><!-- c --></a>"#);
        assert!(b.error.is_none(), "{:?}", b.error);
        assert_eq!(s(&b.collections[0].1[0].1), "hi &<q>");
        assert_eq!(s(&b.collections[1].1[0].1), "1>{");
        assert!(xml(b"<a><b></a>").error.is_some());
        assert!(xml(b"not xml").error.is_some());
    }

    #[test]
    fn multipart_fields_files_and_errors() {
        let body = b"--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv1\r\n--B\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--B--\r\n";
        let b = multipart(b"multipart/form-data; boundary=B", body);
        assert!(b.error.is_none());
        assert_eq!(
            (s(&b.args[0].0), s(&b.args[0].1)),
            ("f".into(), "v1".into())
        );
        let files = &b.collections.iter().find(|c| c.0 == "FILES").unwrap().1;
        assert_eq!(s(&files[0].1), "a.php");
        let headers = &b
            .collections
            .iter()
            .find(|c| c.0 == "MULTIPART_PART_HEADERS")
            .unwrap()
            .1;
        assert_eq!(headers.len(), 3);
        let cut = multipart(
            b"multipart/form-data; boundary=B",
            b"--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv",
        );
        assert!(cut.error.is_some());
        assert!(multipart(b"multipart/form-data", body).error.is_some());
    }

    #[test]
    fn a_boundary_inside_a_value_does_not_end_the_part() {
        let body = b"--a\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nfoo--a--bar' OR 1=1\r\n--a--\r\n";
        let b = multipart(b"multipart/form-data; boundary=a", body);
        assert!(b.error.is_none(), "{:?}", b.error);
        assert_eq!(s(&b.args[0].1), "foo--a--bar' OR 1=1");
    }

    #[test]
    fn hostile_bodies_stay_bounded() {
        // A long key over many leaves: refused once the names pass their budget.
        let key = "k".repeat(60_000);
        let leaves = vec!["0"; 30_000].join(",");
        let body = format!("{{\"{key}\":[{leaves}]}}");
        let b = json(body.as_bytes());
        assert!(b.error.is_some());
        let bytes: usize = b.args.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(
            bytes <= body.len() * 4 + 64 * 1024 + 60_000,
            "{bytes} bytes of arguments"
        );
        // Many header lines in one part: kept up to the cap, flagged strict.
        let mut mp = format!(
            "--B\r\nContent-Disposition: form-data; name=\"{}\"\r\n",
            "n".repeat(1000)
        );
        mp.push_str(&"a: b\r\n".repeat(10_000));
        mp.push_str("\r\nv\r\n--B--\r\n");
        let b = multipart(b"multipart/form-data; boundary=B", mp.as_bytes());
        let headers = &b
            .collections
            .iter()
            .find(|c| c.0 == "MULTIPART_PART_HEADERS")
            .unwrap()
            .1;
        assert_eq!(headers.len(), MAX_PART_HEADERS);
        let strict = &b
            .collections
            .iter()
            .find(|c| c.0 == "MULTIPART_STRICT_ERROR")
            .unwrap()
            .1;
        assert_eq!(s(&strict[0].1), "1");
    }
}
