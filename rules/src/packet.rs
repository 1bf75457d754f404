//! L3/L4 field values of one packet, for the host evaluator: the kernel's parse record plus the
//! frame bytes. A field is absent exactly when the kernel cannot read it (no ports on ICMP, no
//! TCP fields on UDP, nothing of L4 in a non-first fragment).

use std::borrow::Cow;

use rampart_common::{
    addr::as_v4,
    frag::FRAG_LATER,
    parsed::{ParsedFields, PF_DF, PF_HAS_L4, PF_MF},
    Reason,
};

use crate::lang::{Field, FieldSource, Value};

pub struct PacketView<'a> {
    pub parsed: &'a ParsedFields,
    /// The whole Ethernet frame.
    pub frame: &'a [u8],
}

impl PacketView<'_> {
    fn l4(&self, proto: u8) -> bool {
        let p = self.parsed;
        p.flags & PF_HAS_L4 != 0 && p.proto == proto && p.frag != FRAG_LATER
    }
}

/// Where the IP datagram ends in the frame: bytes past it (Ethernet padding) are not payload.
pub fn datagram_end(p: &ParsedFields, frame: &[u8]) -> usize {
    (p.l3_offset as usize + p.ip_len as usize).min(frame.len())
}

impl FieldSource for PacketView<'_> {
    /// Packet values are small and built from the parse record: none is lent.
    fn field(&self, f: Field) -> Option<Cow<'_, Value>> {
        self.value(f).map(Cow::Owned)
    }
}

impl PacketView<'_> {
    fn value(&self, f: Field) -> Option<Value> {
        let p = self.parsed;
        if p.ip_version == 0 {
            return match f {
                Field::VlanId if p.vlan_count > 0 => {
                    Some(Value::Int(p.vlan_ids[p.vlan_count as usize - 1] as i64))
                }
                _ => None,
            };
        }
        let int = |v: u64| Some(Value::Int(v as i64));
        let tcp = self.l4(6);
        let udp = self.l4(17);
        let bit = |b: u8| {
            if tcp {
                Some(Value::Bool(p.tcp_flags & b != 0))
            } else {
                None
            }
        };
        match f {
            Field::IpSrc => Some(Value::Ip(p.src)),
            Field::IpDst => Some(Value::Ip(p.dst)),
            Field::IpProto => int(p.proto as u64),
            Field::IpLen => int(p.ip_len as u64),
            Field::IpTtl => int(p.ttl as u64),
            Field::IpVersion => int(p.ip_version as u64),
            Field::IpId if p.ip_version == 4 => int(p.ip_id as u64),
            Field::IpFlagsDf if p.ip_version == 4 => Some(Value::Bool(p.flags & PF_DF != 0)),
            Field::IpFlagsMf => Some(Value::Bool(p.flags & PF_MF != 0)),
            Field::IpFragOffset => int(p.frag_offset as u64),
            Field::TcpSrcPort if tcp => int(p.sport as u64),
            Field::TcpDstPort if tcp => int(p.dport as u64),
            Field::UdpSrcPort if udp => int(p.sport as u64),
            Field::UdpDstPort if udp => int(p.dport as u64),
            Field::TcpFlags if tcp => int(p.tcp_flags as u64),
            Field::TcpFlagsFin => bit(0x01),
            Field::TcpFlagsSyn => bit(0x02),
            Field::TcpFlagsRst => bit(0x04),
            Field::TcpFlagsPsh => bit(0x08),
            Field::TcpFlagsAck => bit(0x10),
            Field::TcpFlagsUrg => bit(0x20),
            Field::TcpFlagsEce => bit(0x40),
            Field::TcpFlagsCwr => bit(0x80),
            Field::TcpWindow if tcp => {
                let at = p.l4_offset as usize + 14;
                self.frame
                    .get(at..at + 2)
                    .map(|w| Value::Int(u16::from_be_bytes([w[0], w[1]]) as i64))
            }
            Field::IcmpType | Field::IcmpCode
                if (self.l4(1) && as_v4(&p.src).is_some())
                    || (self.l4(58) && p.ip_version == 6) =>
            {
                int(if f == Field::IcmpType {
                    p.icmp_type
                } else {
                    p.icmp_code
                } as u64)
            }
            Field::VlanId if p.vlan_count > 0 => int(p.vlan_ids[p.vlan_count as usize - 1] as u64),
            Field::Payload => self
                .frame
                .get(p.payload_offset as usize..datagram_end(p, self.frame))
                .map(|b| Value::Bytes(b.to_vec())),
            _ => None,
        }
    }
}

/// Parses a frame on the host exactly as the XDP program does (`xdp-ebpf/src/parse.rs`): same
/// limits (2 VLAN tags, 6 IPv6 extension headers), same bounds (the frame and the IP datagram
/// length), same error reasons. Tests hold it to the kernel's own parse record.
pub fn parse_frame(frame: &[u8]) -> (ParsedFields, Option<Reason>) {
    let mut p = ParsedFields::default();
    let r = parse_into(frame, &mut p).err();
    (p, r)
}

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    limit: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        if end > self.b.len() || end > self.limit {
            return None;
        }
        let s = &self.b[self.pos..end];
        self.pos = end;
        Some(s)
    }

    fn peek(&self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        if end > self.b.len() || end > self.limit {
            return None;
        }
        Some(&self.b[self.pos..end])
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn frag_kind(offset: u16, more: bool) -> u8 {
    use rampart_common::frag::{FRAG_FIRST, FRAG_NONE};
    if offset != 0 {
        FRAG_LATER
    } else if more {
        FRAG_FIRST
    } else {
        FRAG_NONE
    }
}

/// The kernel parser's steps, in its order: Ethernet and VLAN tags, the IP header (and IPv6
/// extension headers), the L4 header.
fn parse_into(frame: &[u8], p: &mut ParsedFields) -> Result<(), Reason> {
    let mut c = Cur {
        b: frame,
        pos: 0,
        limit: usize::MAX,
    };
    let ethertype = ethernet(&mut c, p)?;
    p.ethertype = ethertype;
    p.l3_offset = c.pos as u16;
    match ethertype {
        0x0800 => ipv4(&mut c, p)?,
        0x86dd => {
            if ipv6(&mut c, p)? == Ipv6::LaterFragment {
                return Ok(());
            }
        }
        _ => return Ok(()),
    }
    p.l4_offset = c.pos as u16;
    p.payload_offset = p.l4_offset;
    if p.frag == FRAG_LATER {
        return Ok(());
    }
    l4(&mut c, p)
}

/// The Ethernet header and up to `MAX_VLAN_DEPTH` VLAN tags; gives the inner ethertype.
fn ethernet(c: &mut Cur<'_>, p: &mut ParsedFields) -> Result<u16, Reason> {
    use rampart_common::limits::MAX_VLAN_DEPTH;
    let eth = c.take(14).ok_or(Reason::ErrTruncEthernet)?;
    let is_vlan = |t: u16| t == 0x8100 || t == 0x88a8 || t == 0x9100;
    let mut ethertype = be16(&eth[12..]);
    for i in 0..MAX_VLAN_DEPTH {
        if !is_vlan(ethertype) {
            break;
        }
        let tag = c.take(4).ok_or(Reason::ErrTruncVlan)?;
        p.vlan_ids[i] = be16(tag) & 0x0fff;
        p.vlan_count += 1;
        ethertype = be16(&tag[2..]);
    }
    if is_vlan(ethertype) {
        return Err(Reason::ErrTooManyVlans);
    }
    p.ethertype = ethertype;
    Ok(ethertype)
}

fn ipv4(c: &mut Cur<'_>, p: &mut ParsedFields) -> Result<(), Reason> {
    use rampart_common::{addr::v4_mapped, parsed::PF_IP};
    let ip = c.take(20).ok_or(Reason::ErrTruncIpv4)?;
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let total = be16(&ip[2..]);
    if ip[0] >> 4 != 4 || ihl < 20 || (total as usize) < ihl {
        return Err(Reason::ErrBadIpv4Header);
    }
    p.ip_version = 4;
    p.flags |= PF_IP;
    p.src = v4_mapped([ip[12], ip[13], ip[14], ip[15]]);
    p.dst = v4_mapped([ip[16], ip[17], ip[18], ip[19]]);
    p.proto = ip[9];
    p.ttl = ip[8];
    p.ip_len = total;
    p.ip_id = be16(&ip[4..]) as u32;
    let frag = be16(&ip[6..]);
    if frag & 0x4000 != 0 {
        p.flags |= PF_DF;
    }
    p.frag_offset = frag & 0x1fff;
    let more = frag & 0x2000 != 0;
    if more {
        p.flags |= PF_MF;
    }
    p.frag = frag_kind(p.frag_offset, more);
    c.limit = p.l3_offset as usize + total as usize;
    c.take(ihl - 20).ok_or(Reason::ErrTruncIpv4)?;
    Ok(())
}

/// Whether the IPv6 walk ended in a later fragment (no L4 header to read).
#[derive(PartialEq, Eq)]
enum Ipv6 {
    Header,
    LaterFragment,
}

/// The IPv6 header and up to `MAX_IPV6_EXT_HDRS` extension headers.
fn ipv6(c: &mut Cur<'_>, p: &mut ParsedFields) -> Result<Ipv6, Reason> {
    use rampart_common::{limits::MAX_IPV6_EXT_HDRS, parsed::PF_IP};
    let ip = c.take(40).ok_or(Reason::ErrTruncIpv6)?;
    if ip[0] >> 4 != 6 {
        return Err(Reason::ErrBadIpv6Header);
    }
    p.ip_version = 6;
    p.flags |= PF_IP;
    p.src.copy_from_slice(&ip[8..24]);
    p.dst.copy_from_slice(&ip[24..40]);
    p.ttl = ip[7];
    let payload_len = be16(&ip[4..]);
    p.ip_len = payload_len.saturating_add(40);
    if payload_len != 0 {
        c.limit = p.l3_offset as usize + 40 + payload_len as usize;
    }
    let mut next = ip[6];
    for _ in 0..MAX_IPV6_EXT_HDRS {
        match next {
            0 | 43 | 60 | 51 => {
                let h = c.peek(2).ok_or(Reason::ErrTruncIpv6Ext)?;
                let len = if next == 51 {
                    (h[1] as usize + 2) * 4
                } else {
                    (h[1] as usize + 1) * 8
                };
                next = h[0];
                c.take(len).ok_or(Reason::ErrTruncIpv6Ext)?;
            }
            44 => {
                let f = c.take(8).ok_or(Reason::ErrTruncIpv6Ext)?;
                let off_flags = be16(&f[2..]);
                p.frag_offset = off_flags >> 3;
                let more = off_flags & 1 != 0;
                if more {
                    p.flags |= PF_MF;
                }
                p.frag = frag_kind(p.frag_offset, more);
                p.ip_id = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                next = f[0];
            }
            _ => break,
        }
        p.ext_hdrs += 1;
        if p.frag == FRAG_LATER {
            p.proto = next;
            p.l4_offset = c.pos as u16;
            p.payload_offset = p.l4_offset;
            return Ok(Ipv6::LaterFragment);
        }
    }
    if matches!(next, 0 | 43 | 60 | 51 | 44) {
        return Err(Reason::ErrTooManyIpv6Ext);
    }
    p.proto = next;
    Ok(Ipv6::Header)
}

/// The TCP, UDP or ICMP header; the payload starts after it.
fn l4(c: &mut Cur<'_>, p: &mut ParsedFields) -> Result<(), Reason> {
    use rampart_common::frag::FRAG_FIRST;
    let trunc = |r: Reason| {
        if p.frag == FRAG_FIRST {
            Reason::ErrTinyFragment
        } else {
            r
        }
    };
    match p.proto {
        6 => {
            let t = c.take(20).ok_or_else(|| trunc(Reason::ErrTruncTcp))?;
            let doff = (t[12] >> 4) as usize * 4;
            if doff < 20 {
                return Err(Reason::ErrBadTcpHeader);
            }
            p.sport = be16(t);
            p.dport = be16(&t[2..]);
            p.tcp_flags = t[13];
            p.flags |= PF_HAS_L4;
            c.take(doff - 20)
                .ok_or_else(|| trunc(Reason::ErrTruncTcp))?;
        }
        17 => {
            let u = c.take(8).ok_or_else(|| trunc(Reason::ErrTruncUdp))?;
            p.sport = be16(u);
            p.dport = be16(&u[2..]);
            p.flags |= PF_HAS_L4;
        }
        1 | 58 if (p.proto == 1) == (p.ip_version == 4) => {
            let i = c.take(8).ok_or_else(|| trunc(Reason::ErrTruncIcmp))?;
            p.icmp_type = i[0];
            p.icmp_code = i[1];
            p.flags |= PF_HAS_L4;
        }
        _ => {}
    }
    p.payload_offset = c.pos as u16;
    Ok(())
}
