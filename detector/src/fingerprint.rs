//! Attack fingerprints: a destination plus exact values for some packet fields. A fingerprint is
//! what the lattice counts, what selection picks, and what becomes a kernel rule; it prints as a
//! rule-language expression that lowers to exactly the entry [`Fingerprint::to_spec`] builds.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use rampart_common::addr::as_v4;
use rampart_common::limits::MAX_PAYLOAD_MATCH;
use rampart_rules::xdp::{one, Action, PayloadBase, PayloadMatch, RuleSpec};
use rampart_rules::Prefix;

use super::features::Features;

/// Payload bytes at an offset from the first byte after the L4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PayloadBytes {
    offset: u16,
    len: u8,
    bytes: [u8; MAX_PAYLOAD_MATCH],
}

impl PayloadBytes {
    /// `None` when `bytes` is empty or longer than the kernel compares.
    pub fn new(offset: u16, bytes: &[u8]) -> Option<PayloadBytes> {
        if bytes.is_empty() || bytes.len() > MAX_PAYLOAD_MATCH {
            return None;
        }
        let mut b = [0u8; MAX_PAYLOAD_MATCH];
        b[..bytes.len()].copy_from_slice(bytes);
        Some(PayloadBytes {
            offset,
            len: bytes.len() as u8,
            bytes: b,
        })
    }

    pub fn offset(&self) -> u16 {
        self.offset
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    fn matches(&self, f: &Features) -> bool {
        f.payload_at(self.offset as usize, self.len as usize) == Some(self.bytes())
    }
}

/// A candidate attack signature. The destination is always constrained (the victim's address or
/// prefix); every other field is either wildcard (`None`) or one value. Ports and TCP flags
/// always come with the protocol they belong to (the constructors keep this invariant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    dst: Prefix,
    src: Option<Prefix>,
    proto: Option<u8>,
    tcp_flags: Option<u8>,
    sport: Option<u16>,
    dport: Option<u16>,
    ip_len: Option<u16>,
    ttl: Option<u8>,
    payload: Option<PayloadBytes>,
}

impl Fingerprint {
    /// Everything to `dst`.
    pub fn new(dst: Prefix) -> Fingerprint {
        Fingerprint {
            dst,
            src: None,
            proto: None,
            tcp_flags: None,
            sport: None,
            dport: None,
            ip_len: None,
            ttl: None,
            payload: None,
        }
    }

    pub fn with_src(mut self, src: Prefix) -> Self {
        self.src = Some(src);
        self
    }

    pub fn with_proto(mut self, proto: u8) -> Self {
        self.proto = Some(proto);
        if proto != 6 {
            self.tcp_flags = None;
        }
        if proto != 6 && proto != 17 {
            self.sport = None;
            self.dport = None;
        }
        self
    }

    /// Also sets the protocol to TCP.
    pub fn with_tcp_flags(mut self, flags: u8) -> Self {
        self.tcp_flags = Some(flags);
        self.with_proto(6)
    }

    /// `proto` is 6 or 17 (anything else is taken as UDP).
    pub fn with_sport(mut self, proto: u8, port: u16) -> Self {
        let proto = if proto == 6 { 6 } else { 17 };
        self = self.with_proto(proto);
        self.sport = Some(port);
        self
    }

    /// `proto` is 6 or 17 (anything else is taken as UDP).
    pub fn with_dport(mut self, proto: u8, port: u16) -> Self {
        let proto = if proto == 6 { 6 } else { 17 };
        self = self.with_proto(proto);
        self.dport = Some(port);
        self
    }

    pub fn with_ip_len(mut self, len: u16) -> Self {
        self.ip_len = Some(len);
        self
    }

    pub fn with_ttl(mut self, ttl: u8) -> Self {
        self.ttl = Some(ttl);
        self
    }

    pub fn with_payload(mut self, payload: PayloadBytes) -> Self {
        self.payload = Some(payload);
        self
    }

    pub fn dst(&self) -> Prefix {
        self.dst
    }
    pub fn src(&self) -> Option<Prefix> {
        self.src
    }
    pub fn proto(&self) -> Option<u8> {
        self.proto
    }
    pub fn tcp_flags(&self) -> Option<u8> {
        self.tcp_flags
    }
    pub fn sport(&self) -> Option<u16> {
        self.sport
    }
    pub fn dport(&self) -> Option<u16> {
        self.dport
    }
    pub fn ip_len(&self) -> Option<u16> {
        self.ip_len
    }
    pub fn ttl(&self) -> Option<u8> {
        self.ttl
    }
    pub fn payload(&self) -> Option<&PayloadBytes> {
        self.payload.as_ref()
    }

    /// Constrained fields besides the destination (a payload match counts once).
    pub fn specificity(&self) -> u32 {
        [
            self.src.is_some(),
            self.proto.is_some(),
            self.tcp_flags.is_some(),
            self.sport.is_some(),
            self.dport.is_some(),
            self.ip_len.is_some(),
            self.ttl.is_some(),
            self.payload.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count() as u32
    }

    /// True when the packet matches, with the kernel's semantics (an absent field never equals a
    /// value). Payload bytes past the first [`super::features::PAYLOAD_KEEP`] are not seen.
    pub fn matches(&self, f: &Features) -> bool {
        self.dst.contains_addr(&f.dst) && self.matches_ignoring_dst(f)
    }

    /// [`Fingerprint::matches`] on every field but the destination (collateral measured on a
    /// neighbour's or the site's traffic).
    pub fn matches_ignoring_dst(&self, f: &Features) -> bool {
        self.src.is_none_or(|p| p.contains_addr(&f.src))
            && self.proto.is_none_or(|v| v == f.proto)
            && self
                .tcp_flags
                .is_none_or(|v| f.has_flags && v == f.tcp_flags)
            && self.sport.is_none_or(|v| f.has_ports && v == f.sport)
            && self.dport.is_none_or(|v| f.has_ports && v == f.dport)
            && self.ip_len.is_none_or(|v| v == f.ip_len)
            && self.ttl.is_none_or(|v| v == f.ttl)
            && self.payload.as_ref().is_none_or(|p| p.matches(f))
    }

    /// The kernel table entry for this fingerprint.
    pub fn to_spec(&self, id: u32, action: Action) -> RuleSpec {
        let mut r = RuleSpec::new(id, action);
        r.dst = Some(vec![self.dst]);
        r.src = self.src.map(|p| vec![p]);
        r.proto = self.proto.and_then(|v| one(v as u32));
        r.tcp_flags = self.tcp_flags.and_then(|v| one(v as u32));
        r.sport = self.sport.and_then(|v| one(v as u32));
        r.dport = self.dport.and_then(|v| one(v as u32));
        r.ip_len = self.ip_len.and_then(|v| one(v as u32));
        r.ttl = self.ttl.and_then(|v| one(v as u32));
        r.payload = self.payload.map(|p| PayloadMatch {
            base: PayloadBase::Data,
            offset: p.offset,
            mask: vec![0xff; p.len as usize],
            value: p.bytes().to_vec(),
        });
        r
    }

    /// The rule-language expression, e.g.
    /// `ip.dst eq 203.0.113.5 and tcp.flags eq 0x02 and tcp.dstport eq 80`.
    pub fn expression(&self) -> String {
        let mut parts = vec![addr_test("ip.dst", &self.dst)];
        if let Some(p) = &self.src {
            parts.push(addr_test("ip.src", p));
        }
        let l4 = match self.proto {
            Some(6) => "tcp",
            _ => "udp",
        };
        // A port test implies its protocol; otherwise the protocol is written out.
        if let Some(p) = self.proto {
            if self.sport.is_none() && self.dport.is_none() {
                parts.push(format!("ip.proto eq {p}"));
            }
        }
        if let Some(v) = self.tcp_flags {
            parts.push(format!("tcp.flags eq {v:#04x}"));
        }
        if let Some(v) = self.sport {
            parts.push(format!("{l4}.srcport eq {v}"));
        }
        if let Some(v) = self.dport {
            parts.push(format!("{l4}.dstport eq {v}"));
        }
        if let Some(v) = self.ip_len {
            parts.push(format!("ip.len eq {v}"));
        }
        if let Some(v) = self.ttl {
            parts.push(format!("ip.ttl eq {v}"));
        }
        if let Some(p) = &self.payload {
            let (a, b) = (p.offset as usize, p.offset as usize + p.len as usize);
            parts.push(format!("payload[{a}:{b}] eq \"{}\"", escape(p.bytes())));
        }
        parts.join(" and ")
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression())
    }
}

fn addr_test(field: &str, p: &Prefix) -> String {
    let v4 = as_v4(&p.addr);
    match v4 {
        Some(a) if p.len == 128 => format!("{field} eq {}", Ipv4Addr::from(a)),
        None if p.len == 128 => format!("{field} eq {}", Ipv6Addr::from(p.addr)),
        _ => format!("{field} in {{{p}}}"),
    }
}

/// A string literal body: printable ASCII as is, everything else (and the quote characters and
/// backslash) as `\xHH`, so the text is safe inside YAML single quotes too.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for b in bytes {
        match b {
            b'"' | b'\\' | b'\'' => s.push_str(&format!("\\x{b:02x}")),
            0x20..=0x7e => s.push(*b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::testing::Pkt;
    use crate::hash::Rng;

    fn v4(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn prints_the_rule_language() {
        let fp = Fingerprint::new(v4("203.0.113.5"))
            .with_tcp_flags(0x02)
            .with_dport(6, 80);
        assert_eq!(
            fp.expression(),
            "ip.dst eq 203.0.113.5 and tcp.flags eq 0x02 and tcp.dstport eq 80"
        );
        let fp = Fingerprint::new(v4("203.0.113.0/24"))
            .with_proto(17)
            .with_ip_len(468)
            .with_payload(PayloadBytes::new(12, b"\x07ex\"a").unwrap());
        assert_eq!(
            fp.expression(),
            "ip.dst in {203.0.113.0/24} and ip.proto eq 17 and ip.len eq 468 and payload[12:17] eq \"\\x07ex\\x22a\""
        );
        assert_eq!(fp.specificity(), 3);
    }

    /// The printed expression lowers, through the rule-file loader, to exactly `to_spec`.
    #[test]
    fn expressions_lower_to_the_same_entry() {
        let v6: Prefix = "2001:db8::1".parse().unwrap();
        let fps = [
            Fingerprint::new(v4("203.0.113.5"))
                .with_tcp_flags(0x12)
                .with_ttl(3),
            Fingerprint::new(v4("203.0.113.0/24"))
                .with_src(v4("198.51.100.0/24"))
                .with_sport(17, 1900)
                .with_dport(17, 5),
            Fingerprint::new(v6).with_proto(58).with_ip_len(1280),
            Fingerprint::new("2001:db8:1::/64".parse().unwrap())
                .with_dport(6, 443)
                .with_payload(PayloadBytes::new(3, b"a\"'\x00\xffb").unwrap()),
            Fingerprint::new(v4("192.0.2.1")).with_src(v6),
        ];
        for fp in fps {
            let file = format!(
                "version: 1\nrules:\n- id: 7\n  expression: '{}'\n  action: drop\n",
                fp.expression()
            );
            let set = rampart_rules::load_str(&file, "fp.yaml", std::path::Path::new("."))
                .unwrap_or_else(|e| panic!("{e}\n{file}"));
            assert_eq!(set.xdp_entries, vec![fp.to_spec(7, Action::Drop)], "{fp}");
        }
    }

    /// `matches` agrees with the kernel-equivalent evaluator of the entry it compiles to.
    #[test]
    fn matching_agrees_with_the_rule_entry() {
        let mut rng = Rng::new(5);
        let mut agree = 0;
        for i in 0..4000u32 {
            let proto = [6u8, 17, 1][rng.below(3) as usize];
            let pkt = Pkt {
                src: [198, 51, 100, rng.below(4) as u8],
                dst: [203, 0, 113, rng.below(3) as u8],
                proto,
                ttl: 60 + rng.below(3) as u8,
                sport: 100 + rng.below(3) as u16,
                dport: 80 + rng.below(2) as u16,
                tcp_flags: [0x02, 0x10, 0x12][rng.below(3) as usize],
                payload: (0..rng.below(20))
                    .map(|_| b'a' + rng.below(2) as u8)
                    .collect(),
                pad_len: 0,
                ipv6: i % 5 == 0,
            };
            let s = pkt.sample(0, 1);
            let f = Features::extract(&s).unwrap();
            let dst = [
                "203.0.113.1",
                "203.0.113.0/24",
                "2001:db8:cb00:7100::1",
                "2001:db8:cb00:7100::/64",
            ];
            let mut fp = Fingerprint::new(v4(dst[(i % 2 + 2 * (i % 5 == 0) as u32) as usize]));
            if rng.below(2) == 0 {
                fp = fp.with_src(v4("198.51.100.2"));
            }
            match rng.below(4) {
                0 => fp = fp.with_tcp_flags(0x02),
                1 => fp = fp.with_sport([6, 17][rng.below(2) as usize], 101),
                2 => fp = fp.with_dport([6, 17][rng.below(2) as usize], 80),
                _ => fp = fp.with_proto([6, 17, 1][rng.below(3) as usize]),
            }
            if rng.below(2) == 0 {
                fp = fp.with_ttl(61);
            }
            if rng.below(2) == 0 {
                fp = fp.with_payload(PayloadBytes::new(rng.below(3) as u16, b"ab").unwrap());
            }
            let spec = fp.to_spec(1, Action::Drop);
            let kernel = spec.matches_fields(&s.parsed) && spec.matches_payload(&s.parsed, &s.head);
            assert_eq!(fp.matches(&f), kernel, "{fp} on {pkt:?}");
            agree += kernel as u32;
        }
        assert!(agree > 50, "the property test exercised matches ({agree})");
    }
}
