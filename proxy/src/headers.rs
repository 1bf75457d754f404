//! Header rewriting between client and origin: hop-by-hop headers out, `Via` and the
//! `X-Forwarded-*` family in.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Version;

/// Hop-by-hop headers (RFC 9110 section 7.6.1) that never cross the proxy, besides those
/// `Connection` lists and any `Proxy-*`.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
];

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes hop-by-hop headers, including the ones named in `Connection`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

/// The `Via` entry for a message received over `version` (RFC 9110 section 7.6.3).
pub(crate) fn via_value(version: Version, via: &str) -> HeaderValue {
    let proto = match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    };
    // `via` was checked to be a token when the proxy was built.
    HeaderValue::from_str(&format!("{proto} {via}")).unwrap_or(HeaderValue::from_static("1.1 -"))
}

/// Appends `client` to `X-Forwarded-For` (one header, existing entries kept), unless it is
/// already the last entry: a trusted balancer in front may have added it, and the origin
/// reads the rightmost entry either way.
pub(crate) fn append_forwarded_for(headers: &mut HeaderMap, client: IpAddr) {
    let client = client.to_canonical().to_string();
    let mut entries: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if entries.last() != Some(&client.as_str()) {
        entries.push(&client);
    }
    if let Ok(v) = HeaderValue::from_str(&entries.join(", ")) {
        headers.insert(X_FORWARDED_FOR, v);
    }
}
