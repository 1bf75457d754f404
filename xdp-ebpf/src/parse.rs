//! Packet parsing into [`ParsedFields`]: Ethernet, up to two VLAN tags, IPv4 with options, IPv6
//! with up to six extension headers, then TCP, UDP, ICMP or ICMPv6. Ports are never read from a
//! non-first fragment. Every failure is a named [`Reason`].

use aya_ebpf::programs::XdpContext;
use rampart_common::{
    frag::{FRAG_FIRST, FRAG_LATER, FRAG_NONE},
    limits::{MAX_IPV6_EXT_HDRS, MAX_VLAN_DEPTH},
    parsed::{ParsedFields, PF_DF, PF_HAS_L4, PF_IP, PF_MF},
    Reason,
};

use crate::cursor::{copy_addr16, copy_addr4_mapped, Cursor};

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ outer tag, still seen in the field.
const ETH_P_QINQ_OLD: u16 = 0x9100;

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;

#[repr(C)]
struct EthHdr {
    _dst: [u8; 6],
    _src: [u8; 6],
    ethertype: [u8; 2],
}

#[repr(C)]
struct VlanHdr {
    tci: [u8; 2],
    ethertype: [u8; 2],
}

#[repr(C)]
struct Ipv4Hdr {
    ver_ihl: u8,
    _tos: u8,
    total_len: [u8; 2],
    id: [u8; 2],
    frag: [u8; 2],
    ttl: u8,
    proto: u8,
    _csum: [u8; 2],
    src: [u8; 4],
    dst: [u8; 4],
}

#[repr(C)]
struct Ipv6Hdr {
    vtc_flow: [u8; 4],
    payload_len: [u8; 2],
    next: u8,
    hop_limit: u8,
    src: [u8; 16],
    dst: [u8; 16],
}

/// The first two bytes every IPv6 extension header starts with.
#[repr(C)]
struct ExtHdr {
    next: u8,
    len: u8,
}

#[repr(C)]
struct FragHdr {
    next: u8,
    _res: u8,
    off_flags: [u8; 2],
    id: [u8; 4],
}

#[repr(C)]
struct TcpHdr {
    sport: [u8; 2],
    dport: [u8; 2],
    _seq: [u8; 4],
    _ack: [u8; 4],
    doff_res: u8,
    flags: u8,
    _window: [u8; 2],
    _csum: [u8; 2],
    _urg: [u8; 2],
}

#[repr(C)]
struct UdpHdr {
    sport: [u8; 2],
    dport: [u8; 2],
    _len: [u8; 2],
    _csum: [u8; 2],
}

/// ICMP and ICMPv6 share the first four bytes; the rest of the 8-byte header varies by type.
#[repr(C)]
struct IcmpHdr {
    typ: u8,
    code: u8,
    _csum: [u8; 2],
    _rest: [u8; 4],
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Parses the frame into `p`. On error `p` holds what was parsed before the failure.
#[inline(always)]
pub fn parse(ctx: &XdpContext, p: &mut ParsedFields) -> Result<(), Reason> {
    let mut cur = Cursor::new(ctx);
    let eth = cur.next::<EthHdr>().ok_or(Reason::ErrTruncEthernet)?;
    // SAFETY: `next` checked the header lies inside the frame.
    let mut ethertype = be16(unsafe { (*eth).ethertype });
    for i in 0..MAX_VLAN_DEPTH {
        if !is_vlan(ethertype) {
            break;
        }
        let tag = cur.next::<VlanHdr>().ok_or(Reason::ErrTruncVlan)?;
        // SAFETY: bounds checked by `next`.
        let tag = unsafe { &*tag };
        p.vlan_ids[i] = be16(tag.tci) & 0x0fff;
        p.vlan_count += 1;
        ethertype = be16(tag.ethertype);
    }
    if is_vlan(ethertype) {
        return Err(Reason::ErrTooManyVlans);
    }
    p.ethertype = ethertype;
    p.l3_offset = cur.offset();
    match ethertype {
        ETH_P_IPV4 => parse_ipv4(&mut cur, p)?,
        ETH_P_IPV6 => parse_ipv6(&mut cur, p)?,
        _ => return Ok(()),
    }
    p.l4_offset = cur.offset();
    p.payload_offset = p.l4_offset;
    if p.frag == FRAG_LATER {
        return Ok(());
    }
    parse_l4(&mut cur, p)
}

#[inline(always)]
fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD || ethertype == ETH_P_QINQ_OLD
}

#[inline(always)]
fn parse_ipv4(cur: &mut Cursor, p: &mut ParsedFields) -> Result<(), Reason> {
    let ip = cur.next::<Ipv4Hdr>().ok_or(Reason::ErrTruncIpv4)?;
    // SAFETY: bounds checked by `next`.
    let ip = unsafe { &*ip };
    let ihl = (ip.ver_ihl & 0x0f) as usize * 4;
    let total_len = be16(ip.total_len);
    if ip.ver_ihl >> 4 != 4 || ihl < 20 || (total_len as usize) < ihl {
        return Err(Reason::ErrBadIpv4Header);
    }
    p.ip_version = 4;
    p.flags |= PF_IP;
    copy_addr4_mapped(&mut p.src, core::ptr::addr_of!(ip.src));
    copy_addr4_mapped(&mut p.dst, core::ptr::addr_of!(ip.dst));
    p.proto = ip.proto;
    p.ttl = ip.ttl;
    p.ip_len = total_len;
    p.ip_id = be16(ip.id) as u32;
    let frag = be16(ip.frag);
    if frag & 0x4000 != 0 {
        p.flags |= PF_DF;
    }
    p.frag_offset = frag & 0x1fff;
    let more = frag & 0x2000 != 0;
    if more {
        p.flags |= PF_MF;
    }
    p.frag = frag_kind(p.frag_offset, more);
    cur.limit_to(p.l3_offset as usize + total_len as usize);
    // Options: the header is `ihl` bytes (at most 60).
    cur.skip(ihl - 20, 40).ok_or(Reason::ErrTruncIpv4)
}

#[inline(always)]
fn frag_kind(offset: u16, more: bool) -> u8 {
    if offset != 0 {
        FRAG_LATER
    } else if more {
        FRAG_FIRST
    } else {
        FRAG_NONE
    }
}

#[inline(always)]
fn parse_ipv6(cur: &mut Cursor, p: &mut ParsedFields) -> Result<(), Reason> {
    let ip = cur.next::<Ipv6Hdr>().ok_or(Reason::ErrTruncIpv6)?;
    // SAFETY: bounds checked by `next`.
    let ip = unsafe { &*ip };
    if ip.vtc_flow[0] >> 4 != 6 {
        return Err(Reason::ErrBadIpv6Header);
    }
    p.ip_version = 6;
    p.flags |= PF_IP;
    copy_addr16(&mut p.src, core::ptr::addr_of!(ip.src));
    copy_addr16(&mut p.dst, core::ptr::addr_of!(ip.dst));
    p.ttl = ip.hop_limit;
    let payload_len = be16(ip.payload_len);
    p.ip_len = payload_len.saturating_add(40);
    // A zero payload length means a jumbogram (RFC 2675), whose length is in an option: no bound.
    if payload_len != 0 {
        cur.limit_to(p.l3_offset as usize + 40 + payload_len as usize);
    }
    let mut next = ip.next;
    for _ in 0..MAX_IPV6_EXT_HDRS {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_AH => {
                let h = cur.peek::<ExtHdr>().ok_or(Reason::ErrTruncIpv6Ext)?;
                // SAFETY: bounds checked by `peek`.
                let h = unsafe { &*h };
                let len = if next == IPPROTO_AH {
                    (h.len as usize + 2) * 4
                } else {
                    (h.len as usize + 1) * 8
                };
                next = h.next;
                cur.skip(len, 2048).ok_or(Reason::ErrTruncIpv6Ext)?;
            }
            IPPROTO_FRAGMENT => {
                let f = cur.next::<FragHdr>().ok_or(Reason::ErrTruncIpv6Ext)?;
                // SAFETY: bounds checked by `next`.
                let f = unsafe { &*f };
                let off_flags = be16(f.off_flags);
                p.frag_offset = off_flags >> 3;
                let more = off_flags & 1 != 0;
                if more {
                    p.flags |= PF_MF;
                }
                p.frag = frag_kind(p.frag_offset, more);
                p.ip_id = u32::from_be_bytes(f.id);
                next = f.next;
            }
            _ => break,
        }
        p.ext_hdrs += 1;
        if p.frag == FRAG_LATER {
            // The rest of a later fragment is payload, not headers.
            p.proto = next;
            return Ok(());
        }
    }
    if matches!(
        next,
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_AH | IPPROTO_FRAGMENT
    ) {
        return Err(Reason::ErrTooManyIpv6Ext);
    }
    p.proto = next;
    Ok(())
}

#[inline(always)]
fn parse_l4(cur: &mut Cursor, p: &mut ParsedFields) -> Result<(), Reason> {
    // A first fragment too short for its L4 header is the tiny-fragment attack (RFC 1858).
    let trunc = |r: Reason| {
        if p.frag == FRAG_FIRST {
            Reason::ErrTinyFragment
        } else {
            r
        }
    };
    match p.proto {
        IPPROTO_TCP => {
            let t = cur
                .next::<TcpHdr>()
                .ok_or_else(|| trunc(Reason::ErrTruncTcp))?;
            // SAFETY: bounds checked by `next`.
            let t = unsafe { &*t };
            let doff = (t.doff_res >> 4) as usize * 4;
            if doff < 20 {
                return Err(Reason::ErrBadTcpHeader);
            }
            p.sport = be16(t.sport);
            p.dport = be16(t.dport);
            p.tcp_flags = t.flags;
            p.flags |= PF_HAS_L4;
            cur.skip(doff - 20, 40)
                .ok_or_else(|| trunc(Reason::ErrTruncTcp))?;
        }
        IPPROTO_UDP => {
            let u = cur
                .next::<UdpHdr>()
                .ok_or_else(|| trunc(Reason::ErrTruncUdp))?;
            // SAFETY: bounds checked by `next`.
            let u = unsafe { &*u };
            p.sport = be16(u.sport);
            p.dport = be16(u.dport);
            p.flags |= PF_HAS_L4;
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 if (p.proto == IPPROTO_ICMP) == (p.ip_version == 4) => {
            let i = cur
                .next::<IcmpHdr>()
                .ok_or_else(|| trunc(Reason::ErrTruncIcmp))?;
            // SAFETY: bounds checked by `next`.
            let i = unsafe { &*i };
            p.icmp_type = i.typ;
            p.icmp_code = i.code;
            p.flags |= PF_HAS_L4;
        }
        _ => {}
    }
    p.payload_offset = cur.offset();
    Ok(())
}
