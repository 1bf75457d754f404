//! L3/L4 field values of one packet, for the host evaluator: the kernel's parse record plus the
//! frame bytes. A field is absent exactly when the kernel cannot read it (no ports on ICMP, no
//! TCP fields on UDP, nothing of L4 in a non-first fragment).

use rampart_common::{
    addr::as_v4,
    frag::FRAG_LATER,
    parsed::{ParsedFields, PF_DF, PF_HAS_L4, PF_MF},
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

impl FieldSource for PacketView<'_> {
    fn field(&self, f: Field) -> Option<Value> {
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
                .get(p.payload_offset as usize..)
                .map(|b| Value::Bytes(b.to_vec())),
            _ => None,
        }
    }
}
