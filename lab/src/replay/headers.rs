//! Header walking and checksum arithmetic for the rewrite: where the IP header and the
//! destination are, and how a checksum follows a changed address (RFC 1624).

use super::*;

pub(super) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

// ---- Checksums ----

/// RFC 1624 eqn. 3: the checksum `csum` after the words `old` became `new` (same even length).
pub(super) fn adjust(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = u64::from(!csum);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += u64::from(!u16::from_be_bytes([o[0], o[1]]));
        acc += u64::from(u16::from_be_bytes([n[0], n[1]]));
    }
    finish(acc)
}

/// The pseudo-header sum (IPv4: RFC 793/768; IPv6: RFC 8200 §8.1) for a segment of `len` bytes.
pub(super) fn pseudo(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u64 {
    let acc = sum16(sum16(0, src), dst) + u64::from(proto);
    acc + (len as u64 & 0xffff) + (len as u64 >> 16)
}

// ---- Finding the IP header ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ip {
    V4 { l3: usize, ihl: usize },
    V6 { l3: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum L3 {
    Ip(Ip),
    /// An IP ethertype whose header is cut before the addresses or malformed (version, lengths).
    Unreadable,
    NotIp,
}

/// The IP header of a frame of at least [`ETH_HLEN`] bytes, and the number of VLAN tags before it.
pub(super) fn locate(f: &[u8]) -> (L3, usize) {
    let mut at = 12;
    let mut tags = 0;
    let mut ethertype = be16(f, at);
    while VLAN_TPIDS.contains(&ethertype) && tags < MAX_TAGS {
        at += VLAN_HLEN;
        if at + 2 > f.len() {
            return (L3::NotIp, tags);
        }
        tags += 1;
        ethertype = be16(f, at);
    }
    let l3 = at + 2;
    let l3_kind = match ethertype {
        ETHERTYPE_IPV4 => {
            // What the XDP program reads the addresses of: version 4, a header length of at
            // least 20 and a total length not below it (options may be cut).
            let ihl = f.get(l3).map_or(0, |b| usize::from(b & 0x0f) * 4);
            let ok = f.len() >= l3 + 20
                && f[l3] >> 4 == 4
                && ihl >= 20
                && usize::from(be16(f, l3 + 2)) >= ihl;
            if ok {
                L3::Ip(Ip::V4 { l3, ihl })
            } else {
                L3::Unreadable
            }
        }
        ETHERTYPE_IPV6 if f.len() >= l3 + 40 && f[l3] >> 4 == 6 => L3::Ip(Ip::V6 { l3 }),
        ETHERTYPE_IPV6 => L3::Unreadable,
        _ => L3::NotIp,
    };
    (l3_kind, tags)
}

pub(super) fn dst_of(f: &[u8], ip: Ip) -> Dst {
    match ip {
        Ip::V4 { l3, .. } => {
            let mut a = [0u8; 4];
            a.copy_from_slice(&f[l3 + 16..l3 + 20]);
            Dst::V4(Ipv4Addr::from(a))
        }
        Ip::V6 { l3 } => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&f[l3 + 24..l3 + 40]);
            Dst::V6(Ipv6Addr::from(a))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dst {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

pub(super) fn mappable_v4(a: Ipv4Addr) -> bool {
    !(a.is_multicast() || a.is_broadcast() || a.is_unspecified())
}

pub(super) fn mappable_v6(a: Ipv6Addr) -> bool {
    !(a.is_multicast() || a.is_unspecified())
}

/// Where the upper-layer checksum of a packet is, and over what.
pub(super) struct L4Sum {
    /// Offset of the checksum field in the frame.
    pub(super) field: usize,
    /// The whole segment `[start, end)` is in the frame (not a fragment, not cut).
    pub(super) whole: Option<(usize, usize)>,
    pub(super) proto: u8,
    /// UDP, whose zero checksum means "none".
    pub(super) udp: bool,
}

/// The TCP/UDP/ICMPv6 checksum of a packet whose pseudo-header holds the IP destination, when
/// its field is in the frame (and inside the IP datagram).
pub(super) fn l4_sum(f: &[u8], ip: Ip) -> Option<L4Sum> {
    let (proto, start, datagram_end, fragmented) = match ip {
        Ip::V4 { l3, ihl } => {
            let frag = be16(f, l3 + 6);
            if frag & 0x1fff != 0 {
                return None; // a later fragment carries no L4 header
            }
            let total = usize::from(be16(f, l3 + 2));
            (f[l3 + 9], l3 + ihl, l3 + total, frag & 0x2000 != 0)
        }
        Ip::V6 { l3 } => {
            let plen = usize::from(be16(f, l3 + 4));
            // A payload length of 0 (jumbogram) leaves the frame as the bound.
            let end = if plen == 0 {
                usize::MAX
            } else {
                l3 + 40 + plen
            };
            let limit = end.min(f.len());
            let (mut next, mut pos, mut fragmented) = (f[l3 + 6], l3 + 40, false);
            for _ in 0..MAX_EXT_HDRS {
                let len = match next {
                    0 | 60 | 43 | 51 if pos + 4 > limit => return None,
                    0 | 60 => (usize::from(f[pos + 1]) + 1) * 8,
                    // Segments left: the pseudo-header holds the final address, not rewritten.
                    43 if f[pos + 3] != 0 => return None,
                    43 => (usize::from(f[pos + 1]) + 1) * 8,
                    51 => (usize::from(f[pos + 1]) + 2) * 4,
                    44 if pos + 8 > limit => return None,
                    44 => {
                        let off = be16(f, pos + 2);
                        if off >> 3 != 0 {
                            return None;
                        }
                        fragmented |= off & 1 != 0;
                        8
                    }
                    _ => break,
                };
                next = f[pos];
                pos += len;
            }
            if plen == 0 {
                fragmented = true; // no length to bound the segment by: never "whole"
            }
            (next, pos, end, fragmented)
        }
    };
    let (field, udp) = match proto {
        6 => (start + 16, false),
        17 => (start + 6, true),
        58 if matches!(ip, Ip::V6 { .. }) => (start + 2, false),
        _ => return None,
    };
    if field + 2 > f.len() || field + 2 > datagram_end {
        return None;
    }
    let min_header = if proto == 6 { 20 } else { 8 };
    let whole = (!fragmented && datagram_end <= f.len() && datagram_end >= start + min_header)
        .then_some((start, datagram_end));
    Some(L4Sum {
        field,
        whole,
        proto,
        udp,
    })
}
