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
