//! PROXY protocol (HAProxy, versions 1 and 2) header parser.
//!
//! Load balancers in front of Rampart prepend this header to a TCP connection to tell us who the
//! real peer was. The parser is incremental and strict: it reports `Incomplete` while `buf` is
//! still a valid prefix of a header, so the caller can read more, and an error as soon as the
//! bytes can no longer become one. It never reads outside `buf` and never panics. Whether the
//! header is *believed* is not decided here: see [`rampart_l7::resolve_client_ip`], which honours it
//! only from trusted peers. The value it yields, [`ProxyHeader`], belongs to the engine (it rides
//! in [`rampart_l7::ConnInfo`]); only the wire format lives here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use rampart_l7::ProxyHeader;

/// The v1 signature, including the space that must follow it.
const V1_SIG: &[u8] = b"PROXY ";
/// Longest v1 line, CRLF included (spec section 2.1).
pub const V1_MAX_LEN: usize = 107;
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V2_FIXED_LEN: usize = 16;
/// Longest v2 header: the 16 fixed bytes plus a 16-bit length. Callers size buffers with this.
pub const V2_MAX_LEN: usize = V2_FIXED_LEN + u16::MAX as usize;
/// Longest textual IPv6 address (`ffff:...:ffff:255.255.255.255`).
const V6_TEXT_MAX: usize = 45;

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete header of `consumed` bytes; `header` is None for v1 `UNKNOWN` and v2 `LOCAL`
    /// (and v2 PROXY with an address family we do not carry, e.g. AF_UNIX or AF_UNSPEC): the
    /// connection's own addresses apply.
    Complete {
        header: Option<ProxyHeader>,
        consumed: usize,
    },
    /// More bytes are needed (buf is a valid prefix of a header so far).
    Incomplete,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("no PROXY protocol signature")]
    NotProxy,
    #[error("PROXY v1 header is longer than {V1_MAX_LEN} bytes")]
    V1TooLong,
    #[error("malformed PROXY v1 header: {why}")]
    V1Malformed { why: &'static str },
    #[error("PROXY v2 header has version {0}, expected 2")]
    V2BadVersion(u8),
    #[error("PROXY v2 header has command {0:#x}, expected LOCAL (0) or PROXY (1)")]
    V2BadCommand(u8),
    #[error("PROXY v2 header has unknown address family {0:#x}")]
    V2BadFamily(u8),
    #[error("PROXY v2 header has unknown transport protocol {0:#x}")]
    V2BadTransport(u8),
    #[error("PROXY v2 header length {len} is shorter than its {need}-byte address block")]
    V2LengthMismatch { len: u16, need: u16 },
}

/// Parses a header at the start of `buf` (the first bytes read from a connection).
pub fn parse(buf: &[u8]) -> Result<Parsed, HeaderError> {
    if is_prefix_of(buf, V1_SIG) {
        parse_v1(buf)
    } else if is_prefix_of(buf, V2_SIG) {
        parse_v2(buf)
    } else {
        Err(HeaderError::NotProxy)
    }
}

/// True when `buf` and `sig` agree on their common length (so an empty `buf` matches both).
fn is_prefix_of(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf[..n] == sig[..n]
}

fn malformed(why: &'static str) -> HeaderError {
    HeaderError::V1Malformed { why }
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, HeaderError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= V1_MAX_LEN {
            return Err(HeaderError::V1TooLong);
        }
        // Check what we have so far, so garbage is refused before the caller buffers 107 bytes.
        let rest = buf.get(V1_SIG.len()..).unwrap_or_default();
        match rest.strip_suffix(b"\r") {
            // A CR must be followed by the LF: the line as it stands has to be complete.
            Some(line) => v1_line(line, true)?,
            None => v1_line(rest, false)?,
        };
        return Ok(Parsed::Incomplete);
    };
    // The signature matched in full (a '\n' cannot be part of it), so the range is never empty.
    let line = window
        .get(V1_SIG.len()..nl)
        .and_then(|l| l.strip_suffix(b"\r"))
        .ok_or(malformed("line does not end in CRLF"))?;
    let header = v1_line(line, true)?;
    Ok(Parsed::Complete {
        header,
        consumed: nl + 1,
    })
}

/// Checks the part of a v1 line after `PROXY ` and before CRLF. With `complete` false the line
/// may stop anywhere: its last field only has to be a plausible beginning of a field.
fn v1_line(line: &[u8], complete: bool) -> Result<Option<ProxyHeader>, HeaderError> {
    if line.contains(&b'\r') {
        return Err(malformed("stray CR"));
    }
    if !line.is_ascii() {
        return Err(malformed("non-ASCII byte"));
    }
    let line = std::str::from_utf8(line).map_err(|_| malformed("non-ASCII byte"))?;
    let mut fields = line.split(' ');
    let proto = fields.next().unwrap_or_default();
    let last = |rest: &std::str::Split<'_, char>| rest.clone().next().is_none();
    if !complete && last(&fields) {
        return if ["TCP4", "TCP6", "UNKNOWN"]
            .iter()
            .any(|p| p.starts_with(proto))
        {
            Ok(None)
        } else {
            Err(malformed("unknown protocol"))
        };
    }
    let v6 = match proto {
        // The spec has receivers ignore whatever follows UNKNOWN up to the CRLF.
        "UNKNOWN" => return Ok(None),
        "TCP4" => false,
        "TCP6" => true,
        _ => return Err(malformed("unknown protocol")),
    };
    let mut addrs = [IpAddr::V4(Ipv4Addr::UNSPECIFIED); 2];
    let mut ports = [0u16; 2];
    for i in 0..4 {
        let Some(field) = fields.next() else {
            return if complete {
                Err(malformed("missing field"))
            } else {
                Ok(None)
            };
        };
        if !complete && last(&fields) {
            return if plausible_field_start(field, i, v6) {
                Ok(None)
            } else {
                Err(malformed("bad address or port"))
            };
        }
        if i < 2 {
            addrs[i] = v1_addr(field, v6)?;
        } else {
            ports[i - 2] = v1_port(field)?;
        }
    }
    if fields.next().is_some() {
        return Err(malformed("trailing field"));
    }
    Ok(Some(ProxyHeader {
        source: SocketAddr::new(addrs[0], ports[0]),
        destination: SocketAddr::new(addrs[1], ports[1]),
    }))
}

fn v1_addr(field: &str, v6: bool) -> Result<IpAddr, HeaderError> {
    let ip = if v6 {
        Ipv6Addr::from_str(field).map(IpAddr::V6)
    } else {
        Ipv4Addr::from_str(field).map(IpAddr::V4)
    };
    ip.map_err(|_| malformed("bad address for the announced family"))
}

/// Decimal 0..=65535, no sign and no leading zero (the spec's examples; anything else is noise).
fn v1_port(field: &str) -> Result<u16, HeaderError> {
    let digits = !field.is_empty() && field.len() <= 5 && field.bytes().all(|b| b.is_ascii_digit());
    if !digits || (field.len() > 1 && field.starts_with('0')) {
        return Err(malformed("bad port"));
    }
    field.parse().map_err(|_| malformed("port out of range"))
}

/// Cheap check that `field` (address if `index` < 2, else port) could still grow into a valid one.
fn plausible_field_start(field: &str, index: usize, v6: bool) -> bool {
    if index >= 2 {
        return field.len() <= 5
            && field.bytes().all(|b| b.is_ascii_digit())
            && !(field.len() > 1 && field.starts_with('0'));
    }
    if v6 {
        field.len() <= V6_TEXT_MAX
            && field
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b".:".contains(&b))
    } else {
        field.len() <= 15 && field.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    }
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, HeaderError> {
    // Validate each fixed byte as soon as it arrives.
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(Parsed::Incomplete);
    };
    if ver_cmd >> 4 != 2 {
        return Err(HeaderError::V2BadVersion(ver_cmd >> 4));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        cmd => return Err(HeaderError::V2BadCommand(cmd)),
    };
    let Some(&fam) = buf.get(13) else {
        return Ok(Parsed::Incomplete);
    };
    // LOCAL (health checks from the proxy itself) ignores the family byte, per the spec.
    let need: u16 = if local {
        0
    } else {
        match fam & 0x0f {
            0..=2 => {}
            t => return Err(HeaderError::V2BadTransport(t)),
        }
        match fam >> 4 {
            0 => 0,
            1 => 12,
            2 => 36,
            3 => 216,
            f => return Err(HeaderError::V2BadFamily(f)),
        }
    };
    let (Some(&hi), Some(&lo)) = (buf.get(14), buf.get(15)) else {
        return Ok(Parsed::Incomplete);
    };
    let len = u16::from_be_bytes([hi, lo]);
    if len < need {
        return Err(HeaderError::V2LengthMismatch { len, need });
    }
    let total = V2_FIXED_LEN + usize::from(len);
    let Some(block) = buf.get(V2_FIXED_LEN..total) else {
        return Ok(Parsed::Incomplete);
    };
    // TLVs after the address block are consumed unread: nothing here needs them.
    let header = if local {
        None
    } else {
        v2_addresses(fam >> 4, block)
    };
    Ok(Parsed::Complete {
        header,
        consumed: total,
    })
}

/// Reads the address block of family `family`; `block` is at least as long as it requires.
fn v2_addresses(family: u8, block: &[u8]) -> Option<ProxyHeader> {
    let (src, dst, ports): (IpAddr, IpAddr, &[u8]) = match family {
        1 => {
            let src: [u8; 4] = block.get(0..4)?.try_into().ok()?;
            let dst: [u8; 4] = block.get(4..8)?.try_into().ok()?;
            (src.into(), dst.into(), block.get(8..12)?)
        }
        2 => {
            let src: [u8; 16] = block.get(0..16)?.try_into().ok()?;
            let dst: [u8; 16] = block.get(16..32)?.try_into().ok()?;
            (src.into(), dst.into(), block.get(32..36)?)
        }
        // AF_UNSPEC, AF_UNIX: no IP addresses to report.
        _ => return None,
    };
    let sport = u16::from_be_bytes([*ports.first()?, *ports.get(1)?]);
    let dport = u16::from_be_bytes([*ports.get(2)?, *ports.get(3)?]);
    Some(ProxyHeader {
        source: SocketAddr::new(src, sport),
        destination: SocketAddr::new(dst, dport),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn complete(buf: &[u8]) -> (Option<ProxyHeader>, usize) {
        match parse(buf) {
            Ok(Parsed::Complete { header, consumed }) => (header, consumed),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn v1_err(buf: &[u8]) -> HeaderError {
        parse(buf).expect_err(&String::from_utf8_lossy(buf))
    }

    fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
        let mut b = V2_SIG.to_vec();
        b.extend_from_slice(&[ver_cmd, fam]);
        b.extend_from_slice(&(block.len() as u16).to_be_bytes());
        b.extend_from_slice(block);
        b
    }

    fn v4_block() -> Vec<u8> {
        let mut b = vec![192, 0, 2, 1, 198, 51, 100, 2];
        b.extend_from_slice(&56324u16.to_be_bytes());
        b.extend_from_slice(&443u16.to_be_bytes());
        b
    }

    fn v6_block() -> Vec<u8> {
        let mut b = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        b.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&1234u16.to_be_bytes());
        b.extend_from_slice(&80u16.to_be_bytes());
        b
    }

    /// Valid headers of every kind, used for the prefix and fuzz tests.
    fn samples() -> Vec<Vec<u8>> {
        let mut with_tlv = v4_block();
        with_tlv.extend_from_slice(&[0x04, 0x00, 0x03, b'a', b'b', b'c']); // PP2_TYPE_NOOP
        vec![
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n".to_vec(),
            b"PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n".to_vec(),
            b"PROXY UNKNOWN\r\n".to_vec(),
            b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 ::1 65535 65535\r\n"
                .to_vec(),
            v2(0x21, 0x11, &v4_block()),
            v2(0x21, 0x21, &v6_block()),
            v2(0x21, 0x11, &with_tlv),
            v2(0x20, 0x00, &[]),
            v2(0x21, 0x31, &[0u8; 216]),
        ]
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let (h, n) = complete(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /");
        assert_eq!(n, 45);
        let h = h.unwrap();
        assert_eq!(h.source, sa("192.0.2.1:56324"));
        assert_eq!(h.destination, sa("198.51.100.2:443"));

        let (h, _) = complete(b"PROXY TCP6 2001:db8::1 2001:db8::2 1234 0\r\n");
        assert_eq!(h.unwrap().source, sa("[2001:db8::1]:1234"));
        assert_eq!(h.unwrap().destination.port(), 0);

        assert_eq!(complete(b"PROXY UNKNOWN\r\n"), (None, 15));
        let any = b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n";
        assert_eq!(complete(any), (None, any.len()));
    }

    #[test]
    fn v1_strictness() {
        for bad in [
            &b"PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n"[..], // double space
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n",      // trailing space
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",         // missing port
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n",     // extra field
            b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",     // family mismatch
            b"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",
            b"PROXY TCP4 192.0.2.01 198.51.100.2 1 2\r\n", // leading zero in octet
            b"PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n", // bare LF
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1\r2\r\n",
            b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
            b"PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",
            b"PROXY \r\n",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.\xc3\xa9 1 2\r\n",
        ] {
            assert!(
                matches!(v1_err(bad), HeaderError::V1Malformed { .. }),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(v1_err(b"PROXYTCP4"), HeaderError::NotProxy);
    }

    #[test]
    fn v1_too_long_and_early_rejection() {
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX_LEN, b'x');
        assert_eq!(v1_err(&long), HeaderError::V1TooLong);
        // Exactly 107 bytes with the CRLF is fine.
        long.truncate(V1_MAX_LEN - 2);
        long.extend_from_slice(b"\r\n");
        assert_eq!(complete(&long), (None, V1_MAX_LEN));
        // Hopeless prefixes are refused without waiting for the CRLF.
        assert!(matches!(
            v1_err(b"PROXY TCP5"),
            HeaderError::V1Malformed { .. }
        ));
        assert!(matches!(
            v1_err(b"PROXY TCP4 1.2.3.x"),
            HeaderError::V1Malformed { .. }
        ));
        assert!(matches!(
            v1_err(b"PROXY TCP4 1.2.3.4\r"),
            HeaderError::V1Malformed { .. }
        ));
        assert!(matches!(
            v1_err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 "),
            HeaderError::V1Malformed { .. }
        ));
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"),
            Ok(Parsed::Incomplete)
        );
    }

    #[test]
    fn v2_proxy_v4_v6_with_tlvs() {
        let (h, n) = complete(&v2(0x21, 0x11, &v4_block()));
        assert_eq!(n, 28);
        assert_eq!(h.unwrap().source, sa("192.0.2.1:56324"));
        assert_eq!(h.unwrap().destination, sa("198.51.100.2:443"));

        let mut buf = v2(0x21, 0x21, &v6_block());
        let n6 = buf.len();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (h, n) = complete(&buf);
        assert_eq!(n, n6);
        assert_eq!(h.unwrap().source, sa("[2001:db8::1]:1234"));
        assert_eq!(h.unwrap().destination, sa("[2001:db8::2]:80"));

        let mut with_tlv = v4_block();
        with_tlv.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2', 0x04, 0x00, 0x00]);
        let buf = v2(0x21, 0x12, &with_tlv); // DGRAM is reported too
        assert_eq!(complete(&buf), (h_v4(), buf.len()));
    }

    fn h_v4() -> Option<ProxyHeader> {
        Some(ProxyHeader {
            source: sa("192.0.2.1:56324"),
            destination: sa("198.51.100.2:443"),
        })
    }

    #[test]
    fn v2_local_unix_unspec_give_no_addresses() {
        assert_eq!(complete(&v2(0x20, 0x00, &[])), (None, 16));
        // LOCAL ignores family and block (a health check may still send addresses).
        assert_eq!(complete(&v2(0x20, 0x11, &v4_block())), (None, 28));
        assert_eq!(complete(&v2(0x20, 0xff, &[])), (None, 16));
        let mut unix = vec![0u8; 216];
        unix.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]);
        assert_eq!(complete(&v2(0x21, 0x31, &unix)), (None, 16 + 216 + 4));
        assert_eq!(complete(&v2(0x21, 0x00, &[])), (None, 16));
    }

    #[test]
    fn v2_errors() {
        assert_eq!(
            parse(&v2(0x11, 0x11, &v4_block())),
            Err(HeaderError::V2BadVersion(1))
        );
        assert_eq!(
            parse(&v2(0x22, 0x11, &v4_block())),
            Err(HeaderError::V2BadCommand(2))
        );
        assert_eq!(
            parse(&v2(0x21, 0x41, &v4_block())),
            Err(HeaderError::V2BadFamily(4))
        );
        assert_eq!(
            parse(&v2(0x21, 0x13, &v4_block())),
            Err(HeaderError::V2BadTransport(3))
        );
        assert_eq!(
            parse(&v2(0x21, 0x21, &v4_block())),
            Err(HeaderError::V2LengthMismatch { len: 12, need: 36 })
        );
        // Errors show up as soon as the offending byte arrives.
        assert_eq!(
            parse(&v2(0x31, 0x11, &[])[..13]),
            Err(HeaderError::V2BadVersion(3))
        );
        let mut bad_sig = v2(0x21, 0x11, &v4_block());
        bad_sig[8] = b'X';
        assert_eq!(parse(&bad_sig), Err(HeaderError::NotProxy));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(HeaderError::NotProxy));
        assert_eq!(parse(b"\r\n\r\nX"), Err(HeaderError::NotProxy));
    }

    #[test]
    fn v2_truncated_and_huge_length() {
        let full = v2(0x21, 0x21, &v6_block());
        assert_eq!(parse(&full[..full.len() - 1]), Ok(Parsed::Incomplete));
        // The maximum length is accepted; we simply wait for the bytes.
        let mut huge = v2(0x21, 0x11, &v4_block());
        huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(parse(&huge), Ok(Parsed::Incomplete));
        huge.resize(V2_MAX_LEN, 0);
        assert_eq!(complete(&huge), (h_v4(), V2_MAX_LEN));
    }

    #[test]
    fn every_prefix_is_incomplete() {
        assert_eq!(parse(b""), Ok(Parsed::Incomplete));
        for s in samples() {
            for n in 0..s.len() {
                assert_eq!(parse(&s[..n]), Ok(Parsed::Incomplete), "{:?}", &s[..n]);
            }
            assert!(
                matches!(parse(&s), Ok(Parsed::Complete { consumed, .. }) if consumed == s.len())
            );
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let samples = samples();
        let mut buf = Vec::new();
        for i in 0..20_000 {
            buf.clear();
            let len = (next() % 300) as usize;
            match i % 3 {
                // Pure noise, mostly NotProxy.
                0 => buf.extend((0..len).map(|_| next() as u8)),
                // A signature followed by noise, to reach the inner parsers.
                1 => {
                    buf.extend_from_slice(if i % 2 == 0 { V1_SIG } else { V2_SIG });
                    buf.extend((0..len).map(|_| next() as u8));
                }
                // A valid header with a few bytes flipped and a random cut.
                _ => {
                    buf.extend_from_slice(&samples[(next() as usize) % samples.len()]);
                    for _ in 0..1 + next() % 3 {
                        let at = (next() as usize) % buf.len();
                        buf[at] = next() as u8;
                    }
                    buf.truncate((next() as usize) % (buf.len() + 1));
                }
            }
            if let Ok(Parsed::Complete { consumed, .. }) = parse(&buf) {
                assert!(consumed <= buf.len());
            }
        }
    }
}
