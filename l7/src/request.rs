//! The WAF's view of a request head: the values rules read as `http.request.uri*`,
//! `http.request.headers`, `http.request.cookies`, `http.host`, `http.user_agent` and
//! `http.request.version`, built once per request from `http::request::Parts`.
//!
//! Everything is bytes: rules match attack payloads, which are often not UTF-8. The input is
//! hostile, so nothing here panics and every list is capped by [`RequestLimits`]; a cap that is
//! hit is reported in [`Truncation`] rather than silently hiding the rest.
//!
//! Path semantics: `http::Uri` has already validated the target, and we take the path from
//! `Uri::path()`. That means an absolute-form target without a path (`http://h.com`, or
//! `http://h.com?x`) reads as `/` (the `http` crate normalises it), an authority-form target
//! (`CONNECT h.com:443`) has an empty path, and `*` stays `*`. Fragments never reach us.

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, USER_AGENT};
use http::{HeaderMap, Version};
use rampart_rules::lang::functions::url_decode;

/// Name/value pairs in the order they were sent; a name may repeat.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What the WAF reads of a request head. Built once per request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestView {
    pub method: Vec<u8>,
    /// Path and query as sent (`/a%20b?x=1`): [`Self::path_raw`], then `?` and the query if the
    /// target had one. For absolute-form / authority-form targets, only path and query.
    pub uri: Vec<u8>,
    /// Raw path as sent (`/a%20b`); see the module docs for the normalised cases.
    pub path_raw: Vec<u8>,
    /// Normalised path (`rampart_rules::lang::path::request_path`): percent-decoded once (`+`
    /// stays `+`, `%2F` becomes `/`, `%00` a NUL byte, a malformed escape stays as sent), then
    /// `\` as `/`, `;` path parameters cut, empty and `.` segments removed, `..` resolved
    /// below `/`; case kept. `*` and the empty CONNECT path are only decoded.
    pub path: Vec<u8>,
    /// Raw query without `?`; None when the target has no `?` (Some(empty) for a trailing `?`).
    pub query: Option<Vec<u8>>,
    /// Decoded query args in order (`a=1&b=2` split and decoded, in order; `max_args` at most).
    pub args: Pairs,
    /// Header names lower-cased, values as sent, repeated names kept. Order: names in order of
    /// first appearance, and all values of a name together in the order sent (that is how
    /// `http::HeaderMap` stores them).
    pub headers: Pairs,
    /// From every `Cookie` header, in order: `name=value` pairs split on `;`, trimmed of spaces
    /// and tabs; values not decoded, but one pair of surrounding double quotes is stripped; a
    /// pair without `=` is a name with an empty value.
    pub cookies: Pairs,
    /// The URI authority when the target has one (absolute-form, and HTTP/2 `:authority`), else
    /// the first `Host` header; as sent, port included.
    pub host: Option<Vec<u8>>,
    /// The first `User-Agent` header.
    pub user_agent: Option<Vec<u8>>,
    /// "HTTP/0.9", "HTTP/1.0", "HTTP/1.1", "HTTP/2" or "HTTP/3".
    pub version: &'static str,
    /// Limits hit while building (counted by the caller, and the request may be blocked by policy).
    pub truncated: Truncation,
    /// Every `Content-Type`, `Content-Encoding` and `Content-Length` value, in order, read from
    /// the whole header map: how the body is framed and parsed must not depend on whether the
    /// header came before or after `max_headers`.
    pub content_types: Vec<Vec<u8>>,
    pub content_encodings: Vec<Vec<u8>>,
    pub content_lengths: Vec<Vec<u8>>,
}

/// Which lists of a [`RequestView`] were cut at their limit; rules read the names in
/// `http.request.truncated`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Truncation {
    /// `args`: more than `max_args` query arguments.
    pub args: bool,
    /// `headers`: more than `max_headers` header values.
    pub headers: bool,
    /// `cookies`: more than `max_cookies` cookie pairs.
    pub cookies: bool,
}

impl Truncation {
    /// The names of the lists cut, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.args, "args"),
            (self.headers, "headers"),
            (self.cookies, "cookies"),
        ]
        .into_iter()
        .filter_map(|(cut, name)| cut.then_some(name))
        .collect()
    }

    pub fn any(&self) -> bool {
        self.args || self.headers || self.cookies
    }
}

/// Caps on the lists of a [`RequestView`]; over a cap the first entries are kept.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    pub max_args: usize,
    pub max_headers: usize,
    pub max_cookies: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_args: 512,
            max_headers: 256,
            max_cookies: 256,
        }
    }
}

impl RequestView {
    /// Builds the view; never fails: whatever `http` accepted, we can read.
    pub fn from_parts(parts: &http::request::Parts, limits: &RequestLimits) -> RequestView {
        let path_raw = parts.uri.path().as_bytes().to_vec();
        let query = parts.uri.query().map(|q| q.as_bytes().to_vec());
        // Rebuilt from path and query rather than `path_and_query()`, which for `http://h?x`
        // gives `?x` while `path()` gives `/`; this keeps `uri == path_raw [+ ? + query]`.
        let mut uri = path_raw.clone();
        if let Some(q) = &query {
            uri.push(b'?');
            uri.extend_from_slice(q);
        }
        let (args, args_cut) = match &query {
            Some(q) => parse_urlencoded(q, limits.max_args),
            None => (Vec::new(), false),
        };
        let (headers, headers_cut) = collect_headers(&parts.headers, limits.max_headers);
        let (cookies, cookies_cut) = parse_cookies(&parts.headers, limits.max_cookies);
        // RFC 9112 §3.2.2 and RFC 9113 §8.3.1: the target's authority wins over `Host`, so a
        // rule on `http.host` sees what an origin routes on, not a decoy `Host` header.
        let host = match parts.uri.authority() {
            Some(a) => Some(a.as_str().as_bytes().to_vec()),
            None => first(&parts.headers, HOST),
        };
        RequestView {
            method: parts.method.as_str().as_bytes().to_vec(),
            uri,
            path: rampart_rules::lang::path::request_path(&path_raw),
            path_raw,
            query,
            args,
            headers,
            cookies,
            host,
            user_agent: first(&parts.headers, USER_AGENT),
            version: version_str(parts.version),
            truncated: Truncation {
                args: args_cut,
                headers: headers_cut,
                cookies: cookies_cut,
            },
            content_types: all(&parts.headers, CONTENT_TYPE),
            content_encodings: all(&parts.headers, CONTENT_ENCODING),
            content_lengths: all(&parts.headers, CONTENT_LENGTH),
        }
    }

    /// Header values by name (compared case-insensitively), in order. Only the headers kept
    /// under `max_headers` are searched.
    pub fn header<'a>(&'a self, name: &[u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first `Content-Type` value.
    pub fn content_type(&self) -> Option<&[u8]> {
        self.content_types.first().map(Vec::as_slice)
    }

    /// `Content-Length` when every value (and every item of a comma list, RFC 9110 §8.6) is the
    /// same plain decimal number; None when absent, malformed, conflicting or overflowing.
    pub fn content_length(&self) -> Option<u64> {
        let mut found: Option<u64> = None;
        for value in &self.content_lengths {
            for item in value.split(|&c| c == b',') {
                let item = trim(item);
                // `u64::from_str` would accept a leading `+`; a length is digits only.
                if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let n: u64 = std::str::from_utf8(item).ok()?.parse().ok()?;
                if found.is_some_and(|f| f != n) {
                    return None;
                }
                found = Some(n);
            }
        }
        found
    }
}

/// Splits `a=1&b=2` (query strings and urlencoded bodies) into decoded pairs, at most `max`;
/// returns (pairs, truncated). `a=1&a=2` gives two entries; `a` and `a=` give an empty value;
/// empty segments (`&&`) are skipped; names and values are both decoded with `url_decode`
/// (`%XX` → byte, `+` → space, malformed escapes kept). Only `&` separates (not `;`).
pub fn parse_urlencoded(s: &[u8], max: usize) -> (Pairs, bool) {
    let mut pairs = Vec::new();
    for seg in s.split(|&c| c == b'&').filter(|seg| !seg.is_empty()) {
        if pairs.len() >= max {
            return (pairs, true);
        }
        let (name, value) = split_once(seg, b'=');
        pairs.push((url_decode(name), url_decode(value)));
    }
    (pairs, false)
}

/// Percent-decodes a path without turning `+` into space: `url_decode` each `+`-separated piece
/// (no escape can span a `+`, since `%+X` is malformed anyway) and join them back with `+`.
/// Also used for RFC 8187 `filename*` values in multipart bodies.
pub(crate) fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, piece) in raw.split(|&c| c == b'+').enumerate() {
        if i > 0 {
            out.push(b'+');
        }
        out.extend_from_slice(&url_decode(piece));
    }
    out
}

fn collect_headers(map: &HeaderMap, max: usize) -> (Pairs, bool) {
    let headers = map
        .iter()
        .take(max)
        .map(|(name, value)| (name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()))
        .collect();
    // `HeaderMap::len` counts values, not names, so this is exactly "something was left out".
    (headers, map.len() > max)
}

fn parse_cookies(map: &HeaderMap, max: usize) -> (Pairs, bool) {
    let mut cookies = Vec::new();
    for value in map.get_all(COOKIE) {
        for seg in value.as_bytes().split(|&c| c == b';') {
            let seg = trim(seg);
            if seg.is_empty() {
                continue;
            }
            if cookies.len() >= max {
                return (cookies, true);
            }
            let (name, value) = split_once(seg, b'=');
            cookies.push((trim(name).to_vec(), unquote(trim(value)).to_vec()));
        }
    }
    (cookies, false)
}

fn all(map: &HeaderMap, name: http::header::HeaderName) -> Vec<Vec<u8>> {
    map.get_all(name)
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect()
}

fn first(map: &HeaderMap, name: http::header::HeaderName) -> Option<Vec<u8>> {
    map.get(name).map(|v| v.as_bytes().to_vec())
}

fn version_str(v: Version) -> &'static str {
    if v == Version::HTTP_09 {
        "HTTP/0.9"
    } else if v == Version::HTTP_10 {
        "HTTP/1.0"
    } else if v == Version::HTTP_2 {
        "HTTP/2"
    } else if v == Version::HTTP_3 {
        "HTTP/3"
    } else {
        // HTTP_11, and the default should `http` ever add a version.
        "HTTP/1.1"
    }
}

/// `(before, after)` the first `sep`; `(s, "")` when there is none.
fn split_once(s: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match s.iter().position(|&c| c == sep) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

/// Trims spaces and tabs (HTTP's optional whitespace).
fn trim(s: &[u8]) -> &[u8] {
    let is_ows = |c: &u8| *c == b' ' || *c == b'\t';
    let start = s.iter().position(|c| !is_ows(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !is_ows(c)).map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// Strips one pair of surrounding double quotes (RFC 6265 allows a quoted cookie value).
fn unquote(s: &[u8]) -> &[u8] {
    match s {
        [b'"', inner @ .., b'"'] => inner,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(b: http::request::Builder) -> http::request::Parts {
        b.body(()).expect("test request").into_parts().0
    }

    fn view(b: http::request::Builder) -> RequestView {
        RequestView::from_parts(&parts(b), &RequestLimits::default())
    }

    fn get(uri: &str) -> RequestView {
        view(http::Request::builder().uri(uri))
    }

    fn p(pairs: &[(&str, &str)]) -> Pairs {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn raw_and_decoded_path() {
        let v = get("/a%20b/%2F..%2Fetc/%00x/c+d/%zz/%4?q=1");
        assert_eq!(v.path_raw, b"/a%20b/%2F..%2Fetc/%00x/c+d/%zz/%4");
        assert_eq!(v.path, b"/etc/\0x/c+d/%zz/%4");
        assert_eq!(v.uri, b"/a%20b/%2F..%2Fetc/%00x/c+d/%zz/%4?q=1");
        // `%2B` decodes to `+`, a literal `+` stays; decoding happens once only.
        assert_eq!(get("/%2B+%252F").path, b"/++%2F");
        assert_eq!(get("/%c0%af").path, b"/\xc0\xaf");
    }

    #[test]
    fn query_absent_empty_trailing() {
        let v = get("/a");
        assert_eq!((v.query, v.args, v.uri), (None, vec![], b"/a".to_vec()));
        let v = get("/a?");
        assert_eq!(v.query.as_deref(), Some(&b""[..]));
        assert!(v.args.is_empty());
        assert_eq!(v.uri, b"/a?");
        let v = get("/a?x=%41+b");
        assert_eq!(v.query.as_deref(), Some(&b"x=%41+b"[..]));
        assert_eq!(v.args, p(&[("x", "A b")]));
    }

    #[test]
    fn normalised_targets() {
        let v = get("http://h.com");
        assert_eq!(
            (v.uri.as_slice(), v.path_raw.as_slice()),
            (&b"/"[..], &b"/"[..])
        );
        assert_eq!(get("http://h.com?x").uri, b"/?x");
        assert_eq!(get("http://h.com/p?q").uri, b"/p?q");
        let v = view(http::Request::builder().method("CONNECT").uri("h.com:443"));
        assert_eq!((v.uri.as_slice(), v.path.as_slice()), (&b""[..], &b""[..]));
        assert_eq!(v.method, b"CONNECT");
        assert_eq!(v.host.as_deref(), Some(&b"h.com:443"[..]));
        assert_eq!(
            view(http::Request::builder().method("OPTIONS").uri("*")).uri,
            b"*"
        );
    }

    #[test]
    fn repeated_and_empty_args() {
        let v = get("/?a&b=&c=1&&c=2&=x&");
        assert_eq!(
            v.args,
            p(&[("a", ""), ("b", ""), ("c", "1"), ("c", "2"), ("", "x")])
        );
        assert!(!v.truncated.args);
    }

    #[test]
    fn encoded_names_and_values() {
        let (pairs, cut) = parse_urlencoded(b"%61%62=1%3D2&x%26y=%26&k=a=b&u=%ff%00&m=%4g", 10);
        assert!(!cut);
        let want: Pairs = vec![
            (b"ab".to_vec(), b"1=2".to_vec()),
            (b"x&y".to_vec(), b"&".to_vec()),
            (b"k".to_vec(), b"a=b".to_vec()),
            (b"u".to_vec(), b"\xff\0".to_vec()),
            (b"m".to_vec(), b"%4g".to_vec()),
        ];
        assert_eq!(pairs, want);
    }

    #[test]
    fn headers_case_and_repeats() {
        let v = view(
            http::Request::builder()
                .uri("/")
                .header("X-Test", "1")
                .header("Accept", "*/*")
                .header("x-TEST", "2")
                .header("x-bin", &b"\xff\x80"[..]),
        );
        assert_eq!(
            v.headers[..3],
            p(&[("x-test", "1"), ("x-test", "2"), ("accept", "*/*")])[..]
        );
        assert_eq!(v.headers[3], (b"x-bin".to_vec(), b"\xff\x80".to_vec()));
        let got: Vec<&[u8]> = v.header(b"X-Test").collect();
        assert_eq!(got, vec![&b"1"[..], &b"2"[..]]);
        assert_eq!(v.header(b"nope").count(), 0);
    }

    #[test]
    fn cookies_from_every_header() {
        let v = view(
            http::Request::builder()
                .uri("/")
                .header("Cookie", "a=1; b=\"two words\";c")
                .header("cookie", " d = x=y ;; e=\"\" ; f=\"half ; =g"),
        );
        assert_eq!(
            v.cookies,
            p(&[
                ("a", "1"),
                ("b", "two words"),
                ("c", ""),
                ("d", "x=y"),
                ("e", ""),
                ("f", "\"half"),
                ("", "g"),
            ])
        );
        assert_eq!(get("/").cookies, vec![]);
        // Values are not decoded.
        let v = view(
            http::Request::builder()
                .uri("/")
                .header("cookie", "s=%27+1"),
        );
        assert_eq!(v.cookies, p(&[("s", "%27+1")]));
    }

    #[test]
    fn host_and_user_agent() {
        let v = view(
            http::Request::builder()
                .uri("/")
                .header("host", "Example.COM:8080")
                .header("host", "second")
                .header("user-agent", "curl/8"),
        );
        assert_eq!(v.host.as_deref(), Some(&b"Example.COM:8080"[..]));
        assert_eq!(v.user_agent.as_deref(), Some(&b"curl/8"[..]));
        // HTTP/2 `:authority` (or an absolute-form target) wins over a `Host` header.
        let v = view(
            http::Request::builder()
                .uri("https://real.example:8443/x")
                .header("host", "decoy"),
        );
        assert_eq!(v.host.as_deref(), Some(&b"real.example:8443"[..]));
        let v = get("/");
        assert_eq!((v.host, v.user_agent), (None, None));
    }

    #[test]
    fn versions() {
        for (ver, s) in [
            (Version::HTTP_09, "HTTP/0.9"),
            (Version::HTTP_10, "HTTP/1.0"),
            (Version::HTTP_11, "HTTP/1.1"),
            (Version::HTTP_2, "HTTP/2"),
            (Version::HTTP_3, "HTTP/3"),
        ] {
            assert_eq!(
                view(http::Request::builder().uri("/").version(ver)).version,
                s
            );
        }
    }

    #[test]
    fn content_type_and_length() {
        let v = view(
            http::Request::builder()
                .uri("/")
                .header("content-type", "application/json")
                .header("content-length", "42"),
        );
        assert_eq!(v.content_type(), Some(&b"application/json"[..]));
        assert_eq!(v.content_length(), Some(42));
        let cl = |vals: &[&str]| {
            let mut b = http::Request::builder().uri("/");
            for val in vals {
                b = b.header("content-length", *val);
            }
            view(b).content_length()
        };
        assert_eq!(cl(&["7, 7", "7"]), Some(7));
        assert_eq!(cl(&["7", "8"]), None);
        assert_eq!(cl(&["+7"]), None);
        assert_eq!(cl(&["-1"]), None);
        assert_eq!(cl(&[""]), None);
        assert_eq!(cl(&["99999999999999999999999"]), None);
        assert_eq!(cl(&[]), None);
        assert_eq!(get("/").content_type(), None);
    }

    #[test]
    fn limits_truncate() {
        let limits = RequestLimits {
            max_args: 2,
            max_headers: 3,
            max_cookies: 2,
        };
        let b = http::Request::builder()
            .uri("/?a=1&b=2&c=3")
            .header("cookie", "x=1; y=2")
            .header("cookie", "z=3")
            .header("h1", "1")
            .header("h2", "2");
        let v = RequestView::from_parts(&parts(b), &limits);
        assert_eq!(v.args, p(&[("a", "1"), ("b", "2")]));
        assert_eq!(v.cookies, p(&[("x", "1"), ("y", "2")]));
        assert_eq!(v.headers.len(), 3);
        assert_eq!(
            v.truncated,
            Truncation {
                args: true,
                headers: true,
                cookies: true
            }
        );
        // Exactly at the limit is not truncated; trailing empty segments don't count.
        let b = http::Request::builder()
            .uri("/?a=1&b=2&&")
            .header("cookie", "x=1; y=2;")
            .header("h1", "1");
        let v = RequestView::from_parts(&parts(b), &limits);
        assert_eq!(v.truncated, Truncation::default());
        assert_eq!(parse_urlencoded(b"a=1", 0), (vec![], true));
        assert_eq!(parse_urlencoded(b"&&", 0), (vec![], false));
    }

    #[test]
    fn trim_and_unquote_edges() {
        assert_eq!(trim(b""), b"");
        assert_eq!(trim(b" \t "), b"");
        assert_eq!(trim(b" a b\t"), b"a b");
        assert_eq!(unquote(b"\""), b"\"");
        assert_eq!(unquote(b"\"\""), b"");
        assert_eq!(unquote(b"\"\"\"\""), b"\"\"");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // A small alphabet makes separators and escapes frequent.
        const ALPHA: &[u8] = b"&=%+;\" 0aF\xff\x00";
        for _ in 0..5000 {
            let len = (next() % 64) as usize;
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 4 == 0 {
                        r as u8
                    } else {
                        ALPHA[(r >> 8) as usize % ALPHA.len()]
                    }
                })
                .collect();
            let max = (next() % 8) as usize;
            let (pairs, cut) = parse_urlencoded(&s, max);
            let segments = s.split(|&c| c == b'&').filter(|g| !g.is_empty()).count();
            assert_eq!((pairs.len(), cut), (segments.min(max), segments > max));
            assert!(percent_decode(&s).len() <= s.len());
            // Whatever `http` accepts as a header value must build a view.
            if let Ok(value) = http::HeaderValue::from_bytes(&s) {
                let mut parts = parts(http::Request::builder().uri("/"));
                parts.headers.append(COOKIE, value.clone());
                parts.headers.append(HOST, value.clone());
                parts.headers.append(CONTENT_LENGTH, value);
                let limits = RequestLimits {
                    max_args: max,
                    max_headers: max,
                    max_cookies: max,
                };
                let v = RequestView::from_parts(&parts, &limits);
                assert!(v.cookies.len() <= max && v.headers.len() <= max);
                let _ = v.content_length();
            }
        }
    }
}
