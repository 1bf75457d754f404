//! The client's address, resolved through the proxies we trust.
//!
//! Rules, rate limits and the audit log key on the client address. Behind a load balancer the
//! TCP peer is the balancer, and the real client is only known from what it tells us (a PROXY
//! header, `X-Forwarded-For`, `Forwarded`). Anyone can send those, so a hop's word is believed
//! only when the hop itself is in `trusted_proxies`: an untrusted peer can never choose the
//! address it is attributed to.
//!
//! A PROXY header is different: the server reads one only from the peers a listener lists in
//! `proxy_protocol_from` (anyone else's first bytes are HTTP), so a header that reaches us was
//! stated by a peer the operator named for exactly that, and its source is the client whether
//! or not the balancer is also in `trusted_proxies`. Only when that source is itself trusted is
//! the forwarding header walked on from it.
//!
//! The walk goes from the peer outwards, right to left through the forwarding header, and stops
//! at the first untrusted hop. When it meets something it cannot read (garbage, `unknown`, an
//! obfuscated `_name`, a `Forwarded` element without a single `for=`), it stops there too and
//! blames the last trusted hop, the one that reported the unreadable entry: we never invent an
//! address and never skip past an entry we cannot judge.

use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;
use rampart_rules::Prefix;

use super::engine::ProxyHeader;

/// Entries looked at from the right of the forwarding header; deeper chains stop as on garbage.
const MAX_HOPS: usize = 32;

/// Which forwarding header trusted proxies set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded`.
    Forwarded,
    /// Only the connection / PROXY header.
    None,
}

#[derive(Clone, Debug, Default)]
pub struct ClientIpConfig {
    /// Peers (and hops) whose word is believed. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<Prefix>,
    pub header: ForwardedHeader,
}

/// How the address was found (for the audit log / debugging).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIpSource {
    Peer,
    ProxyProtocol,
    Header,
}

/// Resolves the client address of a request that arrived from `peer`, with `proxy` the PROXY
/// header of its connection (if any; present only from a `proxy_protocol_from` peer, see the
/// module doc). IPv4-mapped IPv6 addresses come back as IPv4.
pub fn resolve(
    cfg: &ClientIpConfig,
    peer: IpAddr,
    proxy: Option<&ProxyHeader>,
    headers: &HeaderMap,
) -> (IpAddr, ClientIpSource) {
    let trusted = |ip: IpAddr| {
        let addr = Prefix::from_ip(ip).addr;
        cfg.trusted_proxies.iter().any(|p| p.contains_addr(&addr))
    };
    let (mut client, mut source) = match proxy {
        Some(h) => (h.source.ip().to_canonical(), ClientIpSource::ProxyProtocol),
        None => (peer.to_canonical(), ClientIpSource::Peer),
    };
    if !trusted(client) {
        return (client, source);
    }
    let (name, forwarded) = match cfg.header {
        ForwardedHeader::XForwardedFor => ("x-forwarded-for", false),
        ForwardedHeader::Forwarded => ("forwarded", true),
        ForwardedHeader::None => return (client, source),
    };

    // Keep the last MAX_HOPS entries of all lines of the header, in order.
    let mut tail = Tail::default();
    for line in headers.get_all(name) {
        let line = line.as_bytes();
        if forwarded {
            // Quotes do not span lines: an open quote from a client cannot swallow the
            // entries a proxy appended on a later line.
            split_unquoted(line, b',', |e| tail.push(e));
        } else {
            line.split(|&b| b == b',').for_each(|e| tail.push(e));
        }
    }

    for entry in tail.rightmost_first() {
        let ip = if forwarded {
            forwarded_for(entry)
        } else {
            node(entry, false)
        };
        // Unreadable: the trusted hop that reported it is the best we can say (module doc).
        let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
            return (client, source);
        };
        client = ip;
        source = ClientIpSource::Header;
        if !trusted(ip) {
            return (client, source);
        }
    }
    // Every entry looked at was trusted: the leftmost is the client, or, when the chain was
    // longer than MAX_HOPS, the last one we looked at (stopping as on garbage).
    (client, source)
}

/// The last `MAX_HOPS` non-empty list entries pushed, without allocating.
#[derive(Default)]
struct Tail<'a> {
    ring: [&'a [u8]; MAX_HOPS],
    pushed: usize,
}

impl<'a> Tail<'a> {
    fn push(&mut self, entry: &'a [u8]) {
        let entry = entry.trim_ascii();
        // HTTP lists may carry empty elements ("a, , b"); they are not hops.
        if !entry.is_empty() {
            self.ring[self.pushed % MAX_HOPS] = entry;
            self.pushed += 1;
        }
    }

    fn rightmost_first(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let n = self.pushed;
        (1..=n.min(MAX_HOPS)).map(move |i| self.ring[(n - i) % MAX_HOPS])
    }
}

/// Calls `f` on each part of `s` between `sep` bytes that are outside a quoted string.
fn split_unquoted<'a>(s: &'a [u8], sep: u8, mut f: impl FnMut(&'a [u8])) {
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in s.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            f(&s[start..i]);
            start = i + 1;
        }
    }
    f(&s[start..]);
}

/// The address in the single `for=` parameter of a `Forwarded` element.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    let mut value = None;
    let mut count = 0;
    split_unquoted(element, b';', |pair| {
        let pair = pair.trim_ascii();
        if pair.len() > 4 && pair[..4].eq_ignore_ascii_case(b"for=") {
            value = Some(&pair[4..]);
            count += 1;
        }
    });
    // Repeated `for=` is invalid (RFC 7239 section 4); parsers that pick different ones disagree.
    if count != 1 {
        return None;
    }
    let value = value?;
    let value = match value.strip_prefix(b"\"") {
        // A backslash never belongs in an address, so quoted-pairs need no unescaping.
        Some(q) => q.strip_suffix(b"\"").filter(|v| !v.contains(&b'\\'))?,
        None => value,
    };
    node(value, true)
}

/// An address with an optional port: `1.2.3.4`, `1.2.3.4:80`, `[v6]`, `[v6]:80`, and in
/// `X-Forwarded-For` also a bare `v6`. `unknown`, `_obfuscated` and anything else: None.
fn node(s: &[u8], forwarded: bool) -> Option<IpAddr> {
    let s = std::str::from_utf8(s).ok()?;
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port_ok =
            after.is_empty() || after.strip_prefix(':').is_some_and(|p| port(p, forwarded));
        if !port_ok {
            return None;
        }
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    // RFC 7239 requires brackets around IPv6, else `a::b:80` would be ambiguous.
    match s.parse::<IpAddr>() {
        Ok(ip) if ip.is_ipv4() || !forwarded => return Some(ip),
        _ => {}
    }
    let (v4, p) = s.split_once(':')?;
    if !port(p, forwarded) {
        return None;
    }
    v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A decimal port, or in `Forwarded` an obfuscated one (`_abc`).
fn port(p: &str, forwarded: bool) -> bool {
    let obf = |c: u8| c.is_ascii_alphanumeric() || b"._-".contains(&c);
    match p.strip_prefix('_') {
        Some(o) => forwarded && !o.is_empty() && o.bytes().all(obf),
        None => {
            p.len() <= 5
                && !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    const PEER_LB: &str = "10.0.0.5";
    const ATTACKER: &str = "203.0.113.66";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cfg(header: ForwardedHeader) -> ClientIpConfig {
        ClientIpConfig {
            trusted_proxies: ["10.0.0.0/8", "2001:db8:ffff::/48"]
                .iter()
                .map(|p| p.parse().unwrap())
                .collect(),
            header,
        }
    }

    fn headers(name: &'static str, lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(name, l.parse().unwrap());
        }
        h
    }

    fn xff(peer: &str, lines: &[&str]) -> (IpAddr, ClientIpSource) {
        let h = headers("x-forwarded-for", lines);
        resolve(&cfg(ForwardedHeader::XForwardedFor), ip(peer), None, &h)
    }

    fn fwd(peer: &str, lines: &[&str]) -> (IpAddr, ClientIpSource) {
        let h = headers("forwarded", lines);
        resolve(&cfg(ForwardedHeader::Forwarded), ip(peer), None, &h)
    }

    fn proxy_from(src: &str) -> ProxyHeader {
        ProxyHeader {
            source: SocketAddr::new(ip(src), 4000),
            destination: "192.0.2.80:443".parse().unwrap(),
        }
    }

    use ClientIpSource::{Header, Peer, ProxyProtocol};

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let peer = ip(ATTACKER);
        assert_eq!(xff(ATTACKER, &["198.51.100.1"]), (peer, Peer));
        assert_eq!(fwd(ATTACKER, &["for=198.51.100.1"]), (peer, Peer));
        // With no trusted proxies at all, the peer is the client (no PROXY header).
        let h = headers("x-forwarded-for", &["198.51.100.1"]);
        let none = ClientIpConfig::default();
        assert_eq!(resolve(&none, ip(PEER_LB), None, &h), (ip(PEER_LB), Peer));
    }

    /// Issue 17 item 12: a balancer in `proxy_protocol_from` but not in `trusted_proxies`.
    /// Its PROXY header names the client (the server reads one from no one else); the
    /// forwarding header is still believed only from trusted addresses.
    #[test]
    fn a_proxy_header_names_the_client_without_trusted_proxies() {
        let none = ClientIpConfig::default();
        let xff = headers("x-forwarded-for", &["1.1.1.1"]);
        let p = proxy_from("198.51.100.1");
        assert_eq!(
            resolve(&none, ip(PEER_LB), Some(&p), &xff),
            (ip("198.51.100.1"), ProxyProtocol)
        );
        let p6 = proxy_from("2001:db8::7");
        assert_eq!(
            resolve(&none, ip(PEER_LB), Some(&p6), &xff),
            (ip("2001:db8::7"), ProxyProtocol)
        );
        // The balancer being untrusted for headers changes nothing about its PROXY header.
        let c = cfg(ForwardedHeader::XForwardedFor);
        assert_eq!(
            resolve(&c, ip(ATTACKER), Some(&p), &xff),
            (ip("198.51.100.1"), ProxyProtocol)
        );
        // A client behind the balancer cannot pick its address with X-Forwarded-For.
        let spoof = headers("x-forwarded-for", &["10.9.9.9"]);
        assert_eq!(
            resolve(&c, ip(PEER_LB), Some(&p), &spoof),
            (ip("198.51.100.1"), ProxyProtocol)
        );
    }

    #[test]
    fn xff_chain_from_the_right() {
        assert_eq!(
            xff(PEER_LB, &["198.51.100.1, 10.1.2.3"]),
            (ip("198.51.100.1"), Header)
        );
        // The spoofed left part is never reached: the first untrusted hop wins.
        assert_eq!(
            xff(PEER_LB, &["1.1.1.1, 198.51.100.1, 10.1.2.3"]),
            (ip("198.51.100.1"), Header)
        );
        assert_eq!(
            xff(PEER_LB, &["10.9.9.9, 10.1.2.3"]),
            (ip("10.9.9.9"), Header)
        );
        assert_eq!(xff(PEER_LB, &[]), (ip(PEER_LB), Peer));
        let c = cfg(ForwardedHeader::None);
        let h = headers("x-forwarded-for", &["198.51.100.1"]);
        assert_eq!(resolve(&c, ip(PEER_LB), None, &h), (ip(PEER_LB), Peer));
    }

    #[test]
    fn garbage_stops_at_the_reporting_hop() {
        assert_eq!(
            xff(PEER_LB, &["198.51.100.1, nonsense"]),
            (ip(PEER_LB), Peer)
        );
        assert_eq!(
            xff(PEER_LB, &["198.51.100.1, garbage, 10.1.2.3"]),
            (ip("10.1.2.3"), Header)
        );
        assert_eq!(
            xff(PEER_LB, &["198.51.100.1, 1.2.3.4:99999"]),
            (ip(PEER_LB), Peer)
        );
        assert_eq!(
            xff(PEER_LB, &["198.51.100.1, 2001:db8::1:80:1:2:3:4:5"]),
            (ip(PEER_LB), Peer)
        );
        // Empty list elements are not hops.
        assert_eq!(
            xff(PEER_LB, &["198.51.100.1, , 10.1.2.3,"]),
            (ip("198.51.100.1"), Header)
        );
    }

    #[test]
    fn xff_ports_brackets_and_v6() {
        assert_eq!(
            xff(PEER_LB, &["198.51.100.1:4711"]),
            (ip("198.51.100.1"), Header)
        );
        assert_eq!(
            xff(PEER_LB, &["[2001:db8::1]:4711"]),
            (ip("2001:db8::1"), Header)
        );
        assert_eq!(
            xff(PEER_LB, &["[2001:db8::1]"]),
            (ip("2001:db8::1"), Header)
        );
        assert_eq!(xff(PEER_LB, &["2001:db8::1"]), (ip("2001:db8::1"), Header));
        assert_eq!(
            xff(PEER_LB, &["2001:db8::1,\t2001:db8:ffff::9"]),
            (ip("2001:db8::1"), Header)
        );
        assert_eq!(xff(PEER_LB, &["[2001:db8::1]:x"]), (ip(PEER_LB), Peer));
        assert_eq!(xff(PEER_LB, &["198.51.100.1:_x"]), (ip(PEER_LB), Peer));
    }

    #[test]
    fn multiple_lines_concatenate_in_order() {
        let r = xff(PEER_LB, &["1.1.1.1, 198.51.100.1", "10.1.1.1", "10.2.2.2"]);
        assert_eq!(r, (ip("198.51.100.1"), Header));
        let r = fwd(PEER_LB, &["for=198.51.100.1", "for=10.1.1.1;proto=https"]);
        assert_eq!(r, (ip("198.51.100.1"), Header));
        // An unclosed quote on a client's line does not swallow the proxy's next line.
        let r = fwd(PEER_LB, &["for=\"1.1.1.1, for=", "for=198.51.100.1"]);
        assert_eq!(r, (ip("198.51.100.1"), Header));
    }

    #[test]
    fn forwarded_values() {
        let r = fwd(PEER_LB, &["for=\"[2001:db8::1]:4711\""]);
        assert_eq!(r, (ip("2001:db8::1"), Header));
        let r = fwd(
            PEER_LB,
            &["For=198.51.100.1;Proto=https;by=10.0.0.5, for=10.1.1.1"],
        );
        assert_eq!(r, (ip("198.51.100.1"), Header));
        assert_eq!(
            fwd(PEER_LB, &["proto=https; for=\"198.51.100.1:_p\""]),
            (ip("198.51.100.1"), Header)
        );
        // `unknown` / obfuscated: an untrusted hop we cannot name, so the reporter is blamed.
        assert_eq!(
            fwd(PEER_LB, &["for=198.51.100.1, for=unknown"]),
            (ip(PEER_LB), Peer)
        );
        assert_eq!(
            fwd(PEER_LB, &["for=_hidden, for=10.1.1.1"]),
            (ip("10.1.1.1"), Header)
        );
        for bad in [
            "for=2001:db8::1",              // IPv6 must be bracketed
            "for=\"[2001:db8::1]:4711",     // unclosed quote
            "for=198.51.100.1;for=1.1.1.1", // repeated parameter
            "proto=https",                  // no for=
            "for=\"198.51.100.1\\\"\"",     // quoted-pair
            "for=",
        ] {
            assert_eq!(fwd(PEER_LB, &[bad]), (ip(PEER_LB), Peer), "{bad}");
        }
        // A quoted comma or semicolon does not split the element.
        let r = fwd(PEER_LB, &["for=198.51.100.7;ext=\"a,b;c\", for=10.1.1.1"]);
        assert_eq!(r, (ip("198.51.100.7"), Header));
    }

    #[test]
    fn ipv4_mapped_is_normalised() {
        assert_eq!(xff(ATTACKER, &[]).0, ip(ATTACKER));
        let mapped_peer = ip("::ffff:203.0.113.66");
        let c = cfg(ForwardedHeader::XForwardedFor);
        assert_eq!(
            resolve(&c, mapped_peer, None, &HeaderMap::new()),
            (ip(ATTACKER), Peer)
        );
        // A mapped trusted peer is still trusted, and mapped header entries come back as IPv4.
        assert_eq!(
            xff("::ffff:10.0.0.5", &["::ffff:198.51.100.1"]),
            (ip("198.51.100.1"), Header)
        );
        assert_eq!(
            xff(PEER_LB, &["::ffff:198.51.100.1, ::ffff:10.1.1.1"]),
            (ip("198.51.100.1"), Header)
        );
    }

    #[test]
    fn proxy_header_source_then_the_forwarding_header() {
        let c = cfg(ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["1.1.1.1"]);
        // Trusted LB, client in the PROXY header: headers from the client are ignored.
        let p = proxy_from("198.51.100.1");
        assert_eq!(
            resolve(&c, ip(PEER_LB), Some(&p), &h),
            (ip("198.51.100.1"), ProxyProtocol)
        );
        // PROXY source is itself a trusted proxy: its header is walked.
        let p = proxy_from("10.2.2.2");
        assert_eq!(
            resolve(&c, ip(PEER_LB), Some(&p), &h),
            (ip("1.1.1.1"), Header)
        );
        let p = proxy_from("::ffff:10.2.2.2");
        let g = headers("x-forwarded-for", &["junk"]);
        assert_eq!(
            resolve(&c, ip(PEER_LB), Some(&p), &g),
            (ip("10.2.2.2"), ProxyProtocol)
        );
        // A PROXY source that is a trusted proxy has its header walked whoever the peer is.
        assert_eq!(
            resolve(&c, ip(ATTACKER), Some(&p), &h),
            (ip("1.1.1.1"), Header)
        );
    }

    #[test]
    fn long_chains_are_bounded() {
        let trusted: Vec<String> = (0..40).map(|i| format!("10.0.1.{i}")).collect();
        // All trusted and within the bound: the leftmost.
        let line = trusted[..MAX_HOPS].join(", ");
        assert_eq!(xff(PEER_LB, &[&line]), (ip("10.0.1.0"), Header));
        // Beyond the bound the walk stops at the 32nd entry from the right.
        let line = format!("198.51.100.1, {}", trusted.join(", "));
        assert_eq!(xff(PEER_LB, &[&line]), (ip("10.0.1.8"), Header));
        // The bound counts entries across lines too.
        let lines: Vec<&str> = trusted.iter().map(String::as_str).collect();
        assert_eq!(xff(PEER_LB, &lines), (ip("10.0.1.8"), Header));
    }
}
