//! `multipart/form-data` bodies (RFC 7578) for [`super::body`]: one form entry per part.

use super::body::{param, params, BodyError, BodyLimits, BodyView};
use super::request::percent_decode;

/// RFC 2046 §5.1.1: boundaries are 1 to 70 characters.
const MAX_BOUNDARY: usize = 70;

/// Adds the parts' entries to `view.form`; an `Err` keeps the entries read before it.
pub(super) fn parse_multipart(
    ct_params: &[u8],
    raw: &[u8],
    complete: bool,
    limits: &BodyLimits,
    view: &mut BodyView,
) -> Result<(), BodyError> {
    let malformed = |why| BodyError::MultipartMalformed { why };
    let boundary = match param(&params(ct_params), b"boundary") {
        Some(b) if !b.is_empty() => b,
        _ => return Err(BodyError::MultipartNoBoundary),
    };
    if boundary.len() > MAX_BOUNDARY {
        return Err(malformed("boundary longer than 70 bytes"));
    }
    let delim = [&b"--"[..], boundary].concat();
    // The first delimiter opens the body or ends a line of preamble.
    let mut pos = if raw.starts_with(&delim) {
        delim.len()
    } else {
        match find_delimiter(raw, 0, &delim) {
            Some((_, after)) => after,
            None if complete => return Err(malformed("no opening boundary")),
            None => return Ok(()),
        }
    };
    loop {
        // After a delimiter: `--` closes the body (the epilogue is ignored); else optional
        // transport padding and a line break open a part.
        let rest = &raw[pos..];
        if rest.starts_with(b"--") {
            return Ok(());
        }
        // RFC 2046 transport padding.
        let rest = &rest[rest
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count()..];
        let line_break = if rest.starts_with(b"\r\n") {
            2
        } else if rest.starts_with(b"\n") {
            1
        } else if !complete && rest.len() < 2 {
            return Ok(()); // cut inside `--` or CRLF
        } else if rest.is_empty() {
            return Err(malformed("missing closing boundary"));
        } else {
            return Err(malformed("junk after boundary"));
        };
        let headers_start = raw.len() - rest.len() + line_break;
        let Some((disposition, content_start)) = part_headers(raw, headers_start) else {
            if complete {
                return Err(malformed("part headers not terminated"));
            }
            return Ok(());
        };
        let (content, next) = match find_delimiter(raw, content_start, &delim) {
            Some((end, after)) => (&raw[content_start..end], Some(after)),
            None => (&raw[content_start..], None),
        };
        if !add_part(disposition, content, limits, view) {
            return Ok(());
        }
        match next {
            Some(after) => pos = after,
            None if complete => return Err(malformed("missing closing boundary")),
            None => return Ok(()),
        }
    }
}

/// The next delimiter at or after `from` that starts a line: (end of the content before it,
/// without its line break; index just past the delimiter).
fn find_delimiter(raw: &[u8], from: usize, delim: &[u8]) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(off) = raw.get(i..)?.iter().position(|&c| c == b'\n') {
        let lf = i + off;
        if raw[lf + 1..].starts_with(delim) {
            let cr = lf > from && raw[lf - 1] == b'\r';
            return Some((lf - usize::from(cr), lf + 1 + delim.len()));
        }
        i = lf + 1;
    }
    None
}

/// Reads part headers from `start` to the blank line: (the `Content-Disposition` value if any,
/// index where the content starts). None when the blank line is missing.
fn part_headers(raw: &[u8], start: usize) -> Option<(Option<&[u8]>, usize)> {
    let mut disposition = None;
    let mut i = start;
    loop {
        let off = raw.get(i..)?.iter().position(|&c| c == b'\n')?;
        let line = &raw[i..i + off];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        i += off + 1;
        if line.is_empty() {
            return Some((disposition, i));
        }
        if let Some(colon) = line.iter().position(|&c| c == b':') {
            let name = line[..colon].trim_ascii();
            if disposition.is_none() && name.eq_ignore_ascii_case(b"content-disposition") {
                disposition = Some(&line[colon + 1..]);
            }
        }
    }
}

/// Adds the entries of one part; false once `max_fields` is hit.
fn add_part(
    disposition: Option<&[u8]>,
    content: &[u8],
    limits: &BodyLimits,
    view: &mut BodyView,
) -> bool {
    // `form-data; name="x"; filename="y"`: the leading type is a parameter without `=`.
    let disp = params(disposition.unwrap_or_default());
    let name = param(&disp, b"name").unwrap_or_default();
    let filename = param(&disp, b"filename");
    // RFC 8187 `charset'lang'percent-encoded`; the WAF wants the decoded name.
    let filename_ext = param(&disp, b"filename*").map(|v| {
        let encoded = v.splitn(3, |&c| c == b'\'').nth(2).unwrap_or(v);
        percent_decode(encoded)
    });
    let mut values = Vec::new();
    if filename.is_none() && filename_ext.is_none() {
        let kept = content.len().min(limits.max_value);
        view.truncated.value |= kept < content.len();
        values.push(content[..kept].to_vec());
    }
    values.extend(filename.map(<[u8]>::to_vec));
    values.extend(filename_ext);
    for value in values {
        if view.form.len() >= limits.max_fields {
            view.truncated.fields = true;
            return false;
        }
        view.form.push((name.to_vec(), value));
    }
    true
}
