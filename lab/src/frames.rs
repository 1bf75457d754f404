//! Frame builders for the lab's attack generators: Ethernet + IPv4 frames written byte by byte, with
//! real checksums, addressed with the MACs of the veth pair they are sent on. Everything random
//! comes from a seeded [`Rng`], so a seed always gives the same frames.
//!
//! [`Crafter`] builds one frame per call for each attack shape (SYN, ACK, UDP reflection, DNS query,
//! fragments, carpet bombing); the lower-level builders ([`ipv4_frame`], [`tcp_segment`],
//! [`udp_datagram`], [`dns_query`]) are there for anything else.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::netns::{LabError, Netns};

mod addresses;
mod crafter;

pub use addresses::{link_mac, neighbor_mac, parse_mac, Ipv4Prefix, Mac, PrefixParseError, L2};
pub use crafter::Crafter;

/// Ethernet header length (no VLAN tag).
pub const ETH_HLEN: usize = 14;
/// IPv4 header length (no options).
pub const IPV4_HLEN: usize = 20;
/// The veth MTU: the largest IPv4 packet a lab frame carries.
pub const MTU: usize = 1500;
/// The largest UDP payload that fits in one unfragmented packet.
pub const MAX_UDP_PAYLOAD: usize = MTU - IPV4_HLEN - 8;
/// The largest fragment data (a multiple of 8) that fits in one packet.
pub const MAX_FRAGMENT_DATA: usize = (MTU - IPV4_HLEN) / 8 * 8;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

/// The window a Linux client advertises in its SYN (MSS 1460 × 44).
pub const SYN_WINDOW: u16 = 64_240;
/// The (scaled) window of an established Linux connection, as ACK floods copy it.
pub const ACK_WINDOW: u16 = 502;
/// DNS record type A.
pub const DNS_TYPE_A: u16 = 1;

// ---- Randomness ----

/// xorshift64*: small, fast and deterministic for a seed. Not for anything secret.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Any seed, including 0, gives a usable (non-zero) state: the seed is mixed by splitmix64.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 0x9e37_79b9_7f4a_7c15 } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    pub fn next_u16(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }

    /// Uniform in `lo..=hi` (the bounds are swapped if given the wrong way round).
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        let span = u64::from(hi - lo) + 1;
        lo + ((u64::from(self.next_u32()) * span) >> 32) as u32
    }

    /// A port in Linux's default ephemeral range (32768–60999).
    pub fn ephemeral_port(&mut self) -> u16 {
        self.range(32_768, 60_999) as u16
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

// ---- Checksums ----

pub(crate) fn sum16(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// The one's-complement of the folded sum: the checksum to write, or 0 when `acc` already
/// includes a correct one.
pub(crate) fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The Internet checksum (RFC 1071) of `data`; 0 when `data` already carries a correct one.
pub fn internet_checksum(data: &[u8]) -> u16 {
    fold(sum16(0, data))
}

/// TCP/UDP checksum over the IPv4 pseudo-header and `l4` (whose checksum field must be zero).
fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> u16 {
    let mut acc = sum16(0, &src.octets());
    acc = sum16(acc, &dst.octets());
    acc += u64::from(proto) + l4.len() as u64;
    fold(sum16(acc, l4))
}

// ---- Headers ----

/// IPv4 header fields; length and checksum are computed by [`ipv4_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    pub id: u16,
    pub tos: u8,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
}

impl Ipv4 {
    /// TTL 64, ID 0, DF set (what Linux sends), not a fragment.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Ipv4 {
        Ipv4 {
            src,
            dst,
            proto,
            ttl: 64,
            id: 0,
            tos: 0,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
        }
    }
}

/// Ethernet + IPv4 header + `l4` (the IP payload, carrying its own checksum if it has one).
pub fn ipv4_frame(l2: &L2, ip: &Ipv4, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + IPV4_HLEN + l4.len());
    f.extend_from_slice(&l2.dst);
    f.extend_from_slice(&l2.src);
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let total = u16::try_from(IPV4_HLEN + l4.len()).unwrap_or(u16::MAX);
    let frag = (u16::from(ip.dont_fragment) << 14)
        | (u16::from(ip.more_fragments) << 13)
        | (ip.frag_offset & 0x1fff);
    f.extend_from_slice(&[0x45, ip.tos]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&ip.id.to_be_bytes());
    f.extend_from_slice(&frag.to_be_bytes());
    f.extend_from_slice(&[ip.ttl, ip.proto, 0, 0]);
    f.extend_from_slice(&ip.src.octets());
    f.extend_from_slice(&ip.dst.octets());
    let csum = internet_checksum(&f[ETH_HLEN..ETH_HLEN + IPV4_HLEN]);
    f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&csum.to_be_bytes());
    f.extend_from_slice(l4);
    f
}

/// TCP header fields; the data offset and checksum are computed by [`tcp_segment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// `TCP_*` bits.
    pub flags: u8,
    pub window: u16,
    /// Option bytes (padded with end-of-options to a multiple of 4, at most 40).
    pub options: Vec<u8>,
}

/// A TCP header and `payload`, checksummed for `src` → `dst`.
pub fn tcp_segment(src: Ipv4Addr, dst: Ipv4Addr, t: &Tcp, payload: &[u8]) -> Vec<u8> {
    let opts = &t.options[..t.options.len().min(40)];
    let hlen = 20 + opts.len().div_ceil(4) * 4;
    let mut s = Vec::with_capacity(hlen + payload.len());
    s.extend_from_slice(&t.sport.to_be_bytes());
    s.extend_from_slice(&t.dport.to_be_bytes());
    s.extend_from_slice(&t.seq.to_be_bytes());
    s.extend_from_slice(&t.ack.to_be_bytes());
    s.extend_from_slice(&[((hlen / 4) as u8) << 4, t.flags]);
    s.extend_from_slice(&t.window.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    s.extend_from_slice(opts);
    s.resize(hlen, 0);
    s.extend_from_slice(payload);
    let csum = l4_checksum(src, dst, IPPROTO_TCP, &s);
    s[16..18].copy_from_slice(&csum.to_be_bytes());
    s
}

fn udp_unchecked(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap_or(u16::MAX);
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn set_udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, u: &mut [u8]) {
    let csum = match l4_checksum(src, dst, IPPROTO_UDP, u) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&csum.to_be_bytes());
}

/// A UDP header and `payload`, checksummed for `src` → `dst`.
pub fn udp_datagram(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut u = udp_unchecked(sport, dport, payload);
    set_udp_checksum(src, dst, &mut u);
    u
}

// ---- DNS ----

/// A domain name in DNS wire encoding (length-prefixed labels, ending with the root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsName(Vec<u8>);

impl DnsName {
    /// `None` unless every label is 1–63 ASCII letters, digits, `-` or `_`, and the encoding is at
    /// most 255 bytes. A trailing dot is allowed.
    pub fn new(name: &str) -> Option<DnsName> {
        let name = name.strip_suffix('.').unwrap_or(name);
        let mut wire = Vec::with_capacity(name.len() + 2);
        for label in name.split('.') {
            let ok = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
            if label.is_empty() || label.len() > 63 || !label.bytes().all(ok) {
                return None;
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
        wire.push(0);
        (wire.len() <= 255).then_some(DnsName(wire))
    }

    pub fn wire(&self) -> &[u8] {
        &self.0
    }
}

/// A recursive DNS query message for `name` (class IN) as a stub resolver sends it: RD set, one
/// question, and with `edns` an OPT record advertising a 1232-byte UDP size.
pub fn dns_query(txid: u16, name: &DnsName, qtype: u16, edns: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(12 + name.0.len() + 4 + 11);
    m.extend_from_slice(&txid.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    m.extend_from_slice(&name.0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        // Root name, type OPT (41), UDP size 1232, extended RCODE/version/flags 0, no data.
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    m
}

/// `len` bytes shaped like the response of the service on `sport` (NTP monlist, DNS, SNMP,
/// SSDP, CLDAP, memcached; other ports get random bytes), as reflection attacks deliver them.
pub fn reflection_payload(sport: u16, len: usize, rng: &mut Rng) -> Vec<u8> {
    let head: Vec<u8> = match sport {
        // NTP mode 7 (private), MON_GETLIST_1 response: 6 items of 72 bytes.
        123 => vec![0xd7, 0x00, 0x03, 0x2a, 0x00, 0x06, 0x00, 0x48],
        // DNS response: QR, RD, RA, one question, many answers (an ANY reply).
        53 => {
            let mut h = rng.next_u16().to_be_bytes().to_vec();
            h.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 0x1c, 0, 0, 0, 1]);
            h
        }
        // SNMPv2c GetBulk response, community "public".
        161 => {
            let l = (len.saturating_sub(4) as u16).to_be_bytes();
            let mut h = vec![0x30, 0x82, l[0], l[1], 0x02, 0x01, 0x01, 0x04, 0x06];
            h.extend_from_slice(b"public");
            h.push(0xa2);
            h
        }
        1900 => b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nLOCATION: http://192.168.1.1:1900/rootDesc.xml\r\nSERVER: Linux/3.14 UPnP/1.0 MiniUPnPd/1.9\r\nST: upnp:rootdevice\r\n".to_vec(),
        // CLDAP searchResEntry.
        389 => vec![0x30, 0x84, 0x00, 0x00, 0x0b, 0xc5, 0x02, 0x01, 0x01, 0x64, 0x84],
        11211 => b"VALUE a 0 1048576\r\n".to_vec(),
        _ => Vec::new(),
    };
    let mut p = vec![0u8; len];
    rng.fill(&mut p);
    let n = head.len().min(len);
    p[..n].copy_from_slice(&head[..n]);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const L2_TEST: L2 = L2 {
        src: [2, 0, 0, 0, 0, 1],
        dst: [2, 0, 0, 0, 0, 2],
    };

    fn pfx(s: &str) -> Ipv4Prefix {
        s.parse().unwrap()
    }

    fn ip_of(frame: &[u8]) -> &[u8] {
        &frame[ETH_HLEN..]
    }

    fn addr(b: &[u8]) -> Ipv4Addr {
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Checks the IPv4 header and, for an unfragmented packet, the L4 checksum.
    fn check_sums(frame: &[u8]) {
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        let ip = ip_of(frame);
        assert_eq!(internet_checksum(&ip[..20]), 0, "IPv4 header checksum");
        assert_eq!(
            u16::from_be_bytes([ip[2], ip[3]]) as usize,
            ip.len(),
            "total length"
        );
        let frag = u16::from_be_bytes([ip[6], ip[7]]);
        if frag & 0x3fff == 0 {
            let (src, dst) = (addr(&ip[12..16]), addr(&ip[16..20]));
            let mut acc = sum16(0, &src.octets());
            acc = sum16(acc, &dst.octets());
            acc += u64::from(ip[9]) + (ip.len() - 20) as u64;
            assert_eq!(fold(sum16(acc, &ip[20..])), 0, "L4 checksum");
        }
    }

    #[test]
    fn rng_is_deterministic_and_ranges_hold() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(0).next_u64(), Rng::new(1).next_u64());
        let mut r = Rng::new(0);
        for _ in 0..10_000 {
            assert!((32_768..=60_999).contains(&r.ephemeral_port()));
            assert!((5..=9).contains(&r.range(9, 5)));
        }
    }

    #[test]
    fn prefixes_parse_pick_and_contain() {
        let p = pfx("198.18.7.9/15");
        assert_eq!(p.to_string(), "198.18.0.0/15");
        assert_eq!(p.size(), 1 << 17);
        assert_eq!(pfx("10.0.0.1").prefix_len(), 32);
        assert_eq!(pfx("0.0.0.0/0").size(), 1 << 32);
        assert!("10.0.0.0/33".parse::<Ipv4Prefix>().is_err());
        assert!("10.0.0/8".parse::<Ipv4Prefix>().is_err());
        let mut r = Rng::new(3);
        let mut low = 0;
        for _ in 0..1000 {
            let a = p.pick(&mut r);
            assert!(p.contains(a));
            low += usize::from(pfx("198.18.0.0/16").contains(a));
        }
        assert!((400..600).contains(&low), "spread over the prefix: {low}");
        assert_eq!(
            Ipv4Prefix::host(Ipv4Addr::new(1, 2, 3, 4)).pick(&mut r),
            Ipv4Addr::new(1, 2, 3, 4)
        );
    }

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:ab:00:00:00:ff"),
            Some([2, 0xab, 0, 0, 0, 0xff])
        );
        assert_eq!(parse_mac("02:ab:00:00:00"), None);
        assert_eq!(parse_mac("02:ab:00:00:00:ff:00"), None);
    }

    #[test]
    fn syn_and_ack_look_like_linux_segments() {
        let mut c = Crafter::new(L2_TEST, 1);
        let src = pfx("198.18.0.0/15");
        let f = c.syn(&src, Ipv4Addr::new(10, 0, 0, 1), 80);
        check_sums(&f);
        assert_eq!(&f[..6], &L2_TEST.dst);
        assert_eq!(&f[6..12], &L2_TEST.src);
        let ip = ip_of(&f);
        assert_eq!(ip.len(), 60, "20 IP + 40 TCP");
        assert!(src.contains(addr(&ip[12..16])));
        assert!((49..=63).contains(&ip[8]));
        assert_eq!(ip[6] & 0x40, 0x40, "DF");
        let tcp = &ip[20..];
        assert_eq!(u16::from_be_bytes([tcp[2], tcp[3]]), 80);
        assert_eq!(tcp[12] >> 4, 10);
        assert_eq!(tcp[13], TCP_SYN);
        assert_eq!(u16::from_be_bytes([tcp[14], tcp[15]]), SYN_WINDOW);
        assert_eq!(&tcp[20..24], &[2, 4, 0x05, 0xb4]);

        let f = c.ack(&src, Ipv4Addr::new(10, 0, 0, 1), 443);
        check_sums(&f);
        let tcp = &ip_of(&f)[20..];
        assert_eq!(tcp[13], TCP_ACK);
        assert_eq!(tcp[12] >> 4, 8);
    }

    #[test]
    fn reflection_dns_and_carpet_frames() {
        let mut c = Crafter::new(L2_TEST, 2);
        let src = pfx("198.18.0.0/15");
        let dst = Ipv4Addr::new(10, 0, 0, 1);
        let f = c.udp_reflection(&src, dst, 123, 4444, 468);
        check_sums(&f);
        let ip = ip_of(&f);
        assert_eq!(ip.len(), 20 + 8 + 468);
        assert_eq!(&ip[20..24], &[0, 123, 0x11, 0x5c]);
        assert_eq!(&ip[28..32], &[0xd7, 0x00, 0x03, 0x2a]);
        assert_eq!(ip_of(&c.udp_reflection(&src, dst, 9, 1, 10_000)).len(), MTU);

        let name = DnsName::new("www.example.com.").unwrap();
        assert_eq!(name.wire(), b"\x03www\x07example\x03com\x00");
        let f = c.dns_query(&src, dst, 53, &name);
        check_sums(&f);
        let udp = &ip_of(&f)[20..];
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 53);
        let dns = &udp[8..];
        assert_eq!(&dns[2..12], &[1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&dns[12..29], name.wire());
        assert_eq!(&dns[29..33], &[0, 1, 0, 1]);
        assert_eq!(dns.len(), 12 + 17 + 4 + 11);

        let dsts = pfx("10.0.1.0/24");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let f = c.carpet(&src, &dsts, 53, 512);
            check_sums(&f);
            let d = addr(&ip_of(&f)[16..20]);
            assert!(dsts.contains(d));
            seen.insert(d);
        }
        assert!(seen.len() > 100, "destinations spread: {}", seen.len());
    }

    #[test]
    fn bad_dns_names_are_refused() {
        for bad in [
            "",
            "a..b",
            "a b.com",
            &"x".repeat(64),
            &["abc"; 70].join("."),
        ] {
            assert_eq!(DnsName::new(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fragments_reassemble_to_the_datagram() {
        let mut c = Crafter::new(L2_TEST, 4);
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        let frags = c.fragmented_udp(src, dst, 5000, 7777, 4000);
        assert_eq!(frags.len(), 3);
        let mut whole = Vec::new();
        let id = ip_of(&frags[0])[4..6].to_vec();
        for (i, f) in frags.iter().enumerate() {
            check_sums(f);
            assert!(f.len() <= ETH_HLEN + MTU);
            let ip = ip_of(f);
            assert_eq!(&ip[4..6], id.as_slice(), "one IP ID");
            let frag = u16::from_be_bytes([ip[6], ip[7]]);
            assert_eq!((frag & 0x1fff) as usize * 8, whole.len());
            assert_eq!(frag & 0x2000 != 0, i < 2, "MF on all but the last");
            whole.extend_from_slice(&ip[20..]);
        }
        assert_eq!(whole.len(), 8 + 4000);
        let mut acc = sum16(0, &src.octets());
        acc = sum16(acc, &dst.octets());
        acc += u64::from(IPPROTO_UDP) + whole.len() as u64;
        assert_eq!(
            fold(sum16(acc, &whole)),
            0,
            "UDP checksum over the datagram"
        );

        let one = c.fragmented_udp(src, dst, 5000, 7777, 100);
        assert_eq!(one.len(), 1);
        check_sums(&one[0]);
    }

    #[test]
    fn later_fragments_have_random_ids_and_offsets() {
        let mut c = Crafter::new(L2_TEST, 5);
        let src = pfx("198.18.0.0/15");
        let mut ids = std::collections::HashSet::new();
        for _ in 0..200 {
            let f = c.later_fragment(&src, Ipv4Addr::new(10, 0, 0, 1), 1001);
            check_sums(&f);
            let ip = ip_of(&f);
            let frag = u16::from_be_bytes([ip[6], ip[7]]);
            let off = frag & 0x1fff;
            assert!([185, 370, 555, 740].contains(&off));
            assert_eq!(frag & 0x2000 != 0, off != 740);
            assert_eq!(ip.len() - 20, if off == 740 { 1001 } else { 1000 });
            ids.insert([ip[4], ip[5]]);
        }
        assert!(ids.len() > 190, "random IDs: {}", ids.len());
    }

    #[test]
    fn same_seed_same_frames() {
        let src = pfx("198.18.0.0/15");
        let run = |seed| {
            let mut c = Crafter::new(L2_TEST, seed);
            (0..20)
                .map(|_| c.syn(&src, Ipv4Addr::new(10, 0, 0, 1), 80))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
