//! The fields the XDP parser extracts from a packet. The program classifies on this record, and
//! with `FLAG_DEBUG_PARSE` writes it to the `PARSE_DEBUG` map so tests compare it with etherparse.

use crate::Addr16;

/// `ParsedFields::flags` bits.
/// Ports, TCP flags or ICMP type/code were read (TCP, UDP, ICMP, ICMPv6 with a full header).
pub const PF_HAS_L4: u8 = 1 << 0;
/// IPv4 don't-fragment bit.
pub const PF_DF: u8 = 1 << 1;
/// More-fragments bit (IPv4 header or IPv6 fragment header).
pub const PF_MF: u8 = 1 << 2;
/// The frame is IPv4 or IPv6 (otherwise only `vlan_*` and `ethertype` are set).
pub const PF_IP: u8 = 1 << 3;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParsedFields {
    /// IPv4-mapped for IPv4.
    pub src: Addr16,
    pub dst: Addr16,
    /// 4 or 6; 0 for non-IP.
    pub ip_version: u8,
    /// IPv4 protocol, or the IPv6 next header after the extension headers.
    pub proto: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    pub tcp_flags: u8,
    pub vlan_count: u8,
    /// `frag::FRAG_*`.
    pub frag: u8,
    /// `PF_*` bits.
    pub flags: u8,
    /// IPv6 extension headers walked.
    pub ext_hdrs: u8,
    /// VLAN ids, outermost first.
    pub vlan_ids: [u16; 2],
    pub sport: u16,
    pub dport: u16,
    /// IPv4 total length, or 40 + IPv6 payload length.
    pub ip_len: u16,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// IPv4 identification or IPv6 fragment identification.
    pub ip_id: u32,
    /// Offsets from the start of the frame.
    pub l3_offset: u16,
    pub l4_offset: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// Ethertype after the VLAN tags (host order).
    pub ethertype: u16,
    /// First byte after the L4 header (TCP data offset, UDP/ICMP 8 bytes); `l4_offset` otherwise.
    pub payload_offset: u16,
    pub _pad: [u8; 6],
}
const _: () = assert!(core::mem::size_of::<ParsedFields>() == 72);

crate::user_pod!(ParsedFields);
