//! Path normalisation: the value of `http.request.uri.path` and the `normalize_path` function.
//!
//! A rule on a path must see every spelling an origin may resolve to the same resource, or
//! `//admin`, `/./admin`, `/;x/admin` and `/%5cadmin` walk past `starts_with(…, "/admin")`. The
//! steps, in order, each documented in `rules/docs/reference.md` (HTTP fields):
//!
//! 1. percent-decode once (`%2e` → `.`, `%2F` → `/`, `%5c` → `\`; `+` stays `+`; a malformed
//!    escape stays as sent) — the request field only, `normalize_path` does not decode;
//! 2. `\` is a separator, as `/` (IIS, and many Windows-hosted frameworks, read it so);
//! 3. path parameters are cut: in each segment, `;` and what follows it up to the next separator
//!    (`/a;jsessionid=1/b` → `/a/b`, `/..;/` → `/../`, as Tomcat and Jetty resolve them);
//! 4. empty segments merge (`//a` → `/a`) and `.` segments go;
//! 5. `..` removes the segment before it and never climbs above `/` (RFC 3986 §5.2.4).
//!
//! The result starts with `/`, and ends with `/` when the input's last segment was empty, `.`
//! or `..` (`/a/b/..` → `/a/`, as RFC 3986). Case is kept: origins may be case-sensitive, so a
//! rule that means "any case" says `lower(...)`. Applying `normalize_path` to a normalised path
//! changes nothing.

use super::functions::percent_decode;

/// `http.request.uri.path` for a raw path as sent: decoded once, then [`normalize_path`]. A
/// target that is not a path (`*` for `OPTIONS *`, the empty path of `CONNECT host:port`) is
/// only decoded, so it stays what it is.
pub fn request_path(raw: &[u8]) -> Vec<u8> {
    let decoded = percent_decode(raw);
    if raw.starts_with(b"/") {
        normalize_path(&decoded)
    } else {
        decoded
    }
}

/// Steps 2–5 of the module docs: `\` as `/`, path parameters cut, empty and `.` segments
/// removed, `..` resolved without climbing above `/`. Does not decode.
pub fn normalize_path(s: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut ends_in_dir = false;
    for seg in s.split(|c| matches!(c, b'/' | b'\\')) {
        let seg = match seg.iter().position(|c| *c == b';') {
            Some(i) => &seg[..i],
            None => seg,
        };
        ends_in_dir = matches!(seg, b"" | b"." | b"..");
        match seg {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = Vec::with_capacity(s.len() + 1);
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() || ends_in_dir {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        String::from_utf8(normalize_path(s.as_bytes())).unwrap()
    }

    fn req(s: &str) -> String {
        String::from_utf8_lossy(&request_path(s.as_bytes())).into_owned()
    }

    #[test]
    fn each_step() {
        // Merged slashes and `.` segments.
        assert_eq!(norm("//admin"), "/admin");
        assert_eq!(norm("/./admin"), "/admin");
        assert_eq!(norm("/a//b/../c/./d"), "/a/c/d");
        // `..` never above the root.
        assert_eq!(norm("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(norm("/a/b/../../../c"), "/c");
        // Backslash is a separator.
        assert_eq!(norm("/\\admin"), "/admin");
        assert_eq!(norm("\\a\\..\\b"), "/b");
        // Path parameters are cut, also on `.` and `..` segments.
        assert_eq!(norm("/;x/admin"), "/admin");
        assert_eq!(norm("/admin;jsessionid=1/x"), "/admin/x");
        assert_eq!(norm("/a/..;x/b"), "/b");
        assert_eq!(norm("/a/.;x/b"), "/a/b");
        // Trailing `/` as RFC 3986 keeps it.
        assert_eq!(norm("/a/"), "/a/");
        assert_eq!(norm("/a/b/.."), "/a/");
        assert_eq!(norm("/a/."), "/a/");
        assert_eq!(norm("/a;x/"), "/a/");
        assert_eq!(norm("/a/b;x"), "/a/b");
        assert_eq!(norm("/.."), "/");
        assert_eq!(norm(""), "/");
        assert_eq!(norm("/"), "/");
        // Case and other bytes are kept.
        assert_eq!(norm("/ADMIN/x%41"), "/ADMIN/x%41");
        assert_eq!(norm("/a..b/.c/..."), "/a..b/.c/...");
    }

    #[test]
    fn request_field_decodes_once_then_normalises() {
        assert_eq!(req("/%2e/admin"), "/admin");
        assert_eq!(req("/%2E%2E/%2e%2e/admin"), "/admin");
        assert_eq!(req("/%5cadmin"), "/admin");
        assert_eq!(req("/a/%2e%2e%2fsecret"), "/secret");
        assert_eq!(req("/a%3bx/b"), "/a/b");
        // One decode only: `%252e` is `%2e`, not a dot segment.
        assert_eq!(req("/%252e%252e/admin"), "/%2e%2e/admin");
        // `+` is not a space in a path; a malformed escape stays.
        assert_eq!(req("/a+b/%zz/%4"), "/a+b/%zz/%4");
        assert_eq!(req("/a%20b"), "/a b");
        // Why an exemption compares the raw path: these reach `/healthz` here, and an origin
        // that keeps `%2F` or `\` as data routes them under `/admin`.
        assert_eq!(req("/admin%2f..%2fhealthz"), "/healthz");
        assert_eq!(req("/admin\\..\\healthz"), "/healthz");
        // Not a path: kept, decoded.
        assert_eq!(req("*"), "*");
        assert_eq!(req(""), "");
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        let alphabet = b"a/\\.;%2e";
        for len in 0..=6u32 {
            for n in 0..alphabet.len().pow(len) {
                let (mut n, mut s) = (n, Vec::new());
                for _ in 0..len {
                    s.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                let once = normalize_path(&s);
                assert_eq!(normalize_path(&once), once, "{s:?}");
                assert!(once.starts_with(b"/"), "{s:?}");
                assert!(!once.contains(&b'\\') && !once.contains(&b';'), "{s:?}");
                let r = request_path(&s);
                if s.starts_with(b"/") {
                    assert_eq!(normalize_path(&r), r, "{s:?}");
                }
            }
        }
    }
}
