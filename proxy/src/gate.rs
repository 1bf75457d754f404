//! Request shapes the proxy refuses before anything goes to an origin, and the one authority it
//! forwards.
//!
//! - Method names must be upper case letters, `-` and `_` (as nginx parses them): `get` is not
//!   `GET` (RFC 9110 §9.1: methods are case-sensitive), and an origin that folds case would
//!   answer a request the rules never saw as GET. 400.
//! - `TRACE` (reflects credentials back, RFC 9110 §9.3.8) and `CONNECT` (a tunnel, not a request
//!   for a reverse proxy to forward) are not proxied: 405 with `Allow`.
//! - Host (RFC 9112 §3.2): none on an HTTP/1.1 request, more than one, or a value that is not
//!   `host[:port]` (userinfo included) is a 400. HTTP/1.0 may omit it; an empty value is allowed
//!   (RFC 9112 §3.2: a target without authority).
//! - Userinfo in the target's authority (RFC 9110 §4.2.4, RFC 9113 §8.3.1): 400.
//!
//! The authority forwarded is the target's (absolute-form, HTTP/2 `:authority`) when it has
//! one, else the Host header: the same one the engine reads as `http.host` (RFC 9112 §3.2.2,
//! RFC 9113 §8.3.1), so a decoy Host header cannot route past a rule on the host.

use http::header::HOST;
use http::request::Parts;
use http::uri::Authority;
use http::{HeaderValue, Method, StatusCode, Version};

/// The methods a 405 lists in `Allow`: the usual ones; any other extension method is forwarded
/// too, but these are the ones worth naming.
pub(crate) const ALLOW: &str = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

/// Why a request was refused before forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("method {method} is not proxied")]
    MethodNotAllowed { method: &'static str },
    #[error("method names are upper-case letters, '-' and '_'")]
    MalformedMethod,
    #[error("HTTP/1.1 request without a Host header")]
    MissingHost,
    #[error("{count} Host headers")]
    DuplicateHost { count: usize },
    #[error("Host header is not host[:port]")]
    InvalidHost,
    #[error("the request target's authority carries userinfo")]
    Userinfo,
    #[error("malformed or incomplete request body")]
    BrokenBody,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// What the counters file it under.
    pub fn kind(self) -> RefusalKind {
        match self {
            Refusal::MethodNotAllowed { .. } | Refusal::MalformedMethod => RefusalKind::Method,
            Refusal::MissingHost
            | Refusal::DuplicateHost { .. }
            | Refusal::InvalidHost
            | Refusal::Userinfo => RefusalKind::Host,
            Refusal::BrokenBody => RefusalKind::Body,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefusalKind {
    Method,
    Host,
    Body,
}

/// Checks the request's method and authority.
pub(crate) fn check(parts: &Parts) -> Result<(), Refusal> {
    let method = parts.method.as_str();
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
    {
        return Err(Refusal::MalformedMethod);
    }
    if parts.method == Method::TRACE {
        return Err(Refusal::MethodNotAllowed { method: "TRACE" });
    }
    if parts.method == Method::CONNECT {
        return Err(Refusal::MethodNotAllowed { method: "CONNECT" });
    }
    if parts
        .uri
        .authority()
        .is_some_and(|a| a.as_str().contains('@'))
    {
        return Err(Refusal::Userinfo);
    }
    let hosts = parts.headers.get_all(HOST);
    let count = hosts.iter().count();
    match count {
        0 if parts.version == Version::HTTP_11 => return Err(Refusal::MissingHost),
        0 => {}
        1 => {
            let value = hosts.iter().next().map_or(&[][..], HeaderValue::as_bytes);
            if !value.is_empty() && !is_host_port(value) {
                return Err(Refusal::InvalidHost);
            }
        }
        _ => return Err(Refusal::DuplicateHost { count }),
    }
    Ok(())
}

/// `host[:port]` (RFC 9112 §3.2): an authority without userinfo whose port, if any, is digits.
fn is_host_port(value: &[u8]) -> bool {
    if value.contains(&b'@') {
        return false;
    }
    let Ok(a) = Authority::try_from(value) else {
        return false;
    };
    // The `http` crate checks the port's digits only when asked for it.
    let port = &a.as_str()[a.host().len()..];
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The authority to forward: the target's when it has one, else the Host header.
pub(crate) fn authority(parts: &Parts) -> Option<HeaderValue> {
    match parts.uri.authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => parts.headers.get(HOST).cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn methods() {
        let ok = parts(http::Request::get("/").header("host", "a"));
        assert_eq!(check(&ok), Ok(()));
        let ext = parts(
            http::Request::builder()
                .method("PROPFIND")
                .header("host", "a"),
        );
        assert_eq!(check(&ext), Ok(()));
        for m in ["get", "Get", "GE!T"] {
            let p = parts(http::Request::builder().method(m).header("host", "a"));
            assert_eq!(check(&p), Err(Refusal::MalformedMethod), "{m}");
        }
        let trace = parts(http::Request::builder().method("TRACE").header("host", "a"));
        assert_eq!(
            check(&trace).map_err(Refusal::status),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
    }

    #[test]
    fn hosts() {
        let none = parts(http::Request::get("/"));
        assert_eq!(check(&none), Err(Refusal::MissingHost));
        let old = parts(http::Request::get("/").version(Version::HTTP_10));
        assert_eq!(check(&old), Ok(()));
        let h2 = parts(http::Request::get("http://a.example/").version(Version::HTTP_2));
        assert_eq!(check(&h2), Ok(()));
        let two = parts(
            http::Request::get("/")
                .header("host", "a")
                .header("host", "b"),
        );
        assert_eq!(check(&two), Err(Refusal::DuplicateHost { count: 2 }));
        for bad in ["a b", "u@a", "a:x", "a:1:2", "a/b", "[::1"] {
            let p = parts(http::Request::get("/").header("host", bad));
            assert_eq!(check(&p), Err(Refusal::InvalidHost), "{bad}");
        }
        for good in ["", "a.example", "a.example:8080", "[::1]:80", "10.0.0.1"] {
            let p = parts(http::Request::get("/").header("host", good));
            assert_eq!(check(&p), Ok(()), "{good:?}");
        }
        let userinfo = parts(http::Request::get("http://u@a.example/").header("host", "a"));
        assert_eq!(check(&userinfo), Err(Refusal::Userinfo));
    }

    #[test]
    fn the_target_authority_wins() {
        let p = parts(http::Request::get("http://public.example/").header("host", "internal"));
        assert_eq!(authority(&p).unwrap(), "public.example");
        let p = parts(http::Request::get("/").header("host", "origin-form.example"));
        assert_eq!(authority(&p).unwrap(), "origin-form.example");
        assert_eq!(authority(&parts(http::Request::get("/"))), None);
    }
}
