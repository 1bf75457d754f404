//! Frame builders for fixtures (etherparse does the header work).

use etherparse::PacketBuilder;

pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

pub fn v4(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>()
        .expect("ipv4 literal")
        .octets()
}

pub fn v6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>()
        .expect("ipv6 literal")
        .octets()
}

pub fn tcp4(src: &str, dst: &str, sport: u16, dport: u16, syn: bool, payload: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(v4(src), v4(dst), 64)
        .tcp(sport, dport, 1, 65535);
    if syn {
        b = b.syn();
    } else {
        b = b.ack(1);
    }
    build(b, payload)
}

pub fn udp4(src: &str, dst: &str, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    build(
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(v4(src), v4(dst), 64)
            .udp(sport, dport),
        payload,
    )
}

pub fn udp6(src: &str, dst: &str, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    build(
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(v6(src), v6(dst), 64)
            .udp(sport, dport),
        payload,
    )
}

pub fn build<B: Buildable>(b: B, payload: &[u8]) -> Vec<u8> {
    b.write_to_vec(payload)
}

/// The builders' common final step.
pub trait Buildable {
    fn write_to_vec(self, payload: &[u8]) -> Vec<u8>;
}

impl<T> Buildable for etherparse::PacketBuilderStep<T>
where
    etherparse::PacketBuilderStep<T>: BuilderFinal,
{
    fn write_to_vec(self, payload: &[u8]) -> Vec<u8> {
        BuilderFinal::finish(self, payload)
    }
}

/// Implemented for the builder steps that can write a packet (UDP, TCP, ICMP).
pub trait BuilderFinal {
    fn finish(self, payload: &[u8]) -> Vec<u8>;
}

macro_rules! finals {
    ($($t:ty),*) => {$(
        impl BuilderFinal for etherparse::PacketBuilderStep<$t> {
            fn finish(self, payload: &[u8]) -> Vec<u8> {
                let mut out = Vec::with_capacity(self.size(payload.len()));
                self.write(&mut out, payload).expect("writing to a Vec cannot fail");
                out
            }
        }
    )*};
}
finals!(
    etherparse::UdpHeader,
    etherparse::TcpHeader,
    etherparse::Icmpv4Header,
    etherparse::Icmpv6Header
);

pub fn vlan_udp4(ids: &[u16], src: &str, dst: &str, dport: u16) -> Vec<u8> {
    use etherparse::{EtherType, VlanId};
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B);
    let vid = |i: u16| VlanId::try_new(i).expect("vlan id");
    let b = match ids {
        [one] => b.single_vlan(vid(*one)),
        [outer, inner] => b.double_vlan(vid(*outer), vid(*inner)),
        _ => panic!("one or two tags"),
    };
    let _ = EtherType::IPV4;
    build(b.ipv4(v4(src), v4(dst), 64).udp(1000, dport), b"vlan")
}

pub fn icmp4_echo(src: &str, dst: &str) -> Vec<u8> {
    build(
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(v4(src), v4(dst), 64)
            .icmpv4_echo_request(7, 1),
        b"ping",
    )
}

pub fn icmp6_echo(src: &str, dst: &str) -> Vec<u8> {
    build(
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(v6(src), v6(dst), 64)
            .icmpv6_echo_request(7, 1),
        b"ping",
    )
}

pub fn tcp6(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    build(
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(v6(src), v6(dst), 64)
            .tcp(sport, dport, 1, 1024)
            .syn(),
        b"",
    )
}

// ---- Raw builders for malformed frames, fragments and extension headers. ----

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86dd;

pub fn eth(ethertype: u16, rest: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + rest.len());
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(rest);
    f
}

/// Raw IPv4 fields for [`ipv4`].
#[derive(Clone)]
pub struct V4 {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub proto: u8,
    pub ttl: u8,
    pub id: u16,
    /// Flags and fragment offset (8-byte units), as on the wire.
    pub frag: u16,
    /// Option bytes (a multiple of 4).
    pub options: Vec<u8>,
}

impl V4 {
    pub fn new(src: &str, dst: &str, proto: u8) -> V4 {
        V4 {
            src: v4(src),
            dst: v4(dst),
            proto,
            ttl: 64,
            id: 0x1234,
            frag: 0,
            options: Vec::new(),
        }
    }
}

pub fn ipv4(h: &V4, payload: &[u8]) -> Vec<u8> {
    let ihl = 5 + h.options.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut b = vec![0x40 | ihl as u8, 0];
    b.extend_from_slice(&total.to_be_bytes());
    b.extend_from_slice(&h.id.to_be_bytes());
    b.extend_from_slice(&h.frag.to_be_bytes());
    b.extend_from_slice(&[h.ttl, h.proto, 0, 0]);
    b.extend_from_slice(&h.src);
    b.extend_from_slice(&h.dst);
    b.extend_from_slice(&h.options);
    b.extend_from_slice(payload);
    b
}

pub fn ipv6(src: &str, dst: &str, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0x60, 0, 0, 0];
    b.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    b.extend_from_slice(&[next, 64]);
    b.extend_from_slice(&v6(src));
    b.extend_from_slice(&v6(dst));
    b.extend_from_slice(payload);
    b
}

/// An 8-byte generic extension header (hop-by-hop, routing, destination options) before `rest`.
pub fn ext8(next: u8, rest: &[u8]) -> Vec<u8> {
    let mut b = vec![next, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(rest);
    b
}

/// An AH header (12 bytes: length field 1 means (1+2)*4) before `rest`.
pub fn ah(next: u8, rest: &[u8]) -> Vec<u8> {
    let mut b = vec![next, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    b.extend_from_slice(rest);
    b
}

pub fn frag6(next: u8, offset8: u16, more: bool, id: u32, rest: &[u8]) -> Vec<u8> {
    let off = (offset8 << 3) | more as u16;
    let mut b = vec![next, 0];
    b.extend_from_slice(&off.to_be_bytes());
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(rest);
    b
}

pub fn udp_hdr(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(payload);
    b
}

/// A TCP header with data offset `doff` words (options zero-filled) and `flags`.
pub fn tcp_hdr(sport: u16, dport: u16, flags: u8, doff: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b.extend_from_slice(&[
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        doff << 4,
        flags,
        0xff,
        0xff,
        0,
        0,
        0,
        0,
    ]);
    b.resize(b.len().max(doff as usize * 4), 0);
    b.extend_from_slice(payload);
    b
}
