//! [`Crafter`]: one frame per call for each attack shape.

use super::*;

/// Builds attack frames for one interface, drawing every random field from its own seeded [`Rng`].
/// Payload lengths above what fits in one packet of the veth MTU are cut to fit.
#[derive(Clone, Debug)]
pub struct Crafter {
    l2: L2,
    rng: Rng,
}

impl Crafter {
    pub fn new(l2: L2, seed: u64) -> Crafter {
        Crafter {
            l2,
            rng: Rng::new(seed),
        }
    }

    pub fn l2(&self) -> L2 {
        self.l2
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// A Linux sender (initial TTL 64) 1 to 15 hops away.
    fn ttl(&mut self) -> u8 {
        self.rng.range(49, 63) as u8
    }

    fn ip(&mut self, src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Ipv4 {
        Ipv4 {
            ttl: self.ttl(),
            id: self.rng.next_u16(),
            ..Ipv4::new(src, dst, proto)
        }
    }

    /// A Linux client's SYN from a random address of `src` and a random ephemeral port to
    /// `dst:dport`: window 64240, options MSS 1460, SACK permitted, timestamps, window scale 7.
    pub fn syn(&mut self, src: &Ipv4Prefix, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
        let s = src.pick(&mut self.rng);
        let ts = self.rng.next_u32().to_be_bytes();
        let mut options = vec![2, 4, 0x05, 0xb4, 4, 2, 8, 10];
        options.extend_from_slice(&ts);
        options.extend_from_slice(&[0, 0, 0, 0, 1, 3, 3, 7]);
        let t = Tcp {
            sport: self.rng.ephemeral_port(),
            dport,
            seq: self.rng.next_u32(),
            ack: 0,
            flags: TCP_SYN,
            window: SYN_WINDOW,
            options,
        };
        let ip = self.ip(s, dst, IPPROTO_TCP);
        ipv4_frame(&self.l2, &ip, &tcp_segment(s, dst, &t, &[]))
    }

    /// A bare ACK of an established connection that does not exist: random address of `src`,
    /// random ephemeral port, random sequence and acknowledgment numbers, window 502, timestamps.
    pub fn ack(&mut self, src: &Ipv4Prefix, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
        let s = src.pick(&mut self.rng);
        let mut options = vec![1, 1, 8, 10];
        options.extend_from_slice(&self.rng.next_u32().to_be_bytes());
        options.extend_from_slice(&self.rng.next_u32().to_be_bytes());
        let t = Tcp {
            sport: self.rng.ephemeral_port(),
            dport,
            seq: self.rng.next_u32(),
            ack: self.rng.next_u32(),
            flags: TCP_ACK,
            window: ACK_WINDOW,
            options,
        };
        let ip = self.ip(s, dst, IPPROTO_TCP);
        ipv4_frame(&self.l2, &ip, &tcp_segment(s, dst, &t, &[]))
    }

    /// A reflected response: from the service port `sport` of a random "reflector" in `src` to
    /// `dst:dport`, with a `payload_len`-byte payload shaped like that service's reply.
    pub fn udp_reflection(
        &mut self,
        src: &Ipv4Prefix,
        dst: Ipv4Addr,
        sport: u16,
        dport: u16,
        payload_len: usize,
    ) -> Vec<u8> {
        let s = src.pick(&mut self.rng);
        let payload = reflection_payload(sport, payload_len.min(MAX_UDP_PAYLOAD), &mut self.rng);
        let ip = self.ip(s, dst, IPPROTO_UDP);
        ipv4_frame(&self.l2, &ip, &udp_datagram(s, dst, sport, dport, &payload))
    }

    /// A stub resolver's query for `name` (type A, EDNS) to `dst:dport` (53 for DNS), from a
    /// random address of `src`, a random ephemeral port and a random transaction id.
    pub fn dns_query(
        &mut self,
        src: &Ipv4Prefix,
        dst: Ipv4Addr,
        dport: u16,
        name: &DnsName,
    ) -> Vec<u8> {
        let s = src.pick(&mut self.rng);
        let sport = self.rng.ephemeral_port();
        let msg = dns_query(self.rng.next_u16(), name, DNS_TYPE_A, true);
        let ip = self.ip(s, dst, IPPROTO_UDP);
        ipv4_frame(&self.l2, &ip, &udp_datagram(s, dst, sport, dport, &msg))
    }

    /// Carpet bombing: like [`Crafter::udp_reflection`], to a random address of `dsts` and a
    /// random ephemeral port.
    pub fn carpet(
        &mut self,
        src: &Ipv4Prefix,
        dsts: &Ipv4Prefix,
        sport: u16,
        payload_len: usize,
    ) -> Vec<u8> {
        let dst = dsts.pick(&mut self.rng);
        let dport = self.rng.ephemeral_port();
        self.udp_reflection(src, dst, sport, dport, payload_len)
    }

    /// One UDP datagram of `payload_len` bytes (at most 65507) from `src:sport` to `dst:dport`,
    /// split into fragments that fit the MTU: the first carries the UDP header (whose checksum
    /// covers the whole datagram), all share a random IP ID. Fewer than two fragments when it fits.
    pub fn fragmented_udp(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sport: u16,
        dport: u16,
        payload_len: usize,
    ) -> Vec<Vec<u8>> {
        let mut payload = vec![0u8; payload_len.min(65_507)];
        self.rng.fill(&mut payload);
        let mut udp = udp_unchecked(sport, dport, &payload);
        set_udp_checksum(src, dst, &mut udp);
        let mut ip = self.ip(src, dst, IPPROTO_UDP);
        ip.dont_fragment = false;
        let chunks: Vec<&[u8]> = udp.chunks(MAX_FRAGMENT_DATA).collect();
        let last = chunks.len() - 1;
        chunks
            .iter()
            .enumerate()
            .map(|(i, data)| {
                let frag = Ipv4 {
                    more_fragments: i < last,
                    frag_offset: (i * MAX_FRAGMENT_DATA / 8) as u16,
                    ..ip
                };
                ipv4_frame(&self.l2, &frag, data)
            })
            .collect()
    }

    /// A non-first fragment of a UDP datagram that was never sent: random address of `src`,
    /// random IP ID, offset 1480, 2960, 4440 (more fragments follow) or 5920 (the last), and
    /// `data_len` random bytes (cut to a multiple of 8 unless last, at most 1480, at least 8).
    pub fn later_fragment(&mut self, src: &Ipv4Prefix, dst: Ipv4Addr, data_len: usize) -> Vec<u8> {
        let s = src.pick(&mut self.rng);
        let k = self.rng.range(1, 4) as usize;
        let more = k < 4;
        let mut len = data_len.clamp(8, MAX_FRAGMENT_DATA);
        if more {
            len = len / 8 * 8;
        }
        let mut data = vec![0u8; len];
        self.rng.fill(&mut data);
        let ip = Ipv4 {
            dont_fragment: false,
            more_fragments: more,
            frag_offset: (k * MAX_FRAGMENT_DATA / 8) as u16,
            ..self.ip(s, dst, IPPROTO_UDP)
        };
        ipv4_frame(&self.l2, &ip, &data)
    }
}
