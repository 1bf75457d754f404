//! Feature extraction: the fields of a sampled packet the detector counts and matches on, with
//! the kernel's notion of presence (ports only on TCP/UDP with a full L4 header, TCP flags only
//! on TCP, payload bytes only inside the IP datagram).

use rampart_common::{
    addr::{as_v4, Addr16},
    parsed::{PF_HAS_L4, PF_IP},
};
use rampart_rules::packet::datagram_end;

use super::Sample;

/// Payload bytes kept per sample (from the first byte after the L4 header).
pub const PAYLOAD_KEEP: usize = 32;

/// The fields of one sampled IP packet. Small and `Copy`: reservoirs and sketches hold these,
/// never frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub dst: Addr16,
    pub src: Addr16,
    pub proto: u8,
    pub ttl: u8,
    pub ip_len: u16,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    /// `sport`/`dport` are valid (TCP or UDP with its header read).
    pub has_ports: bool,
    /// `tcp_flags` is valid (TCP with its header read).
    pub has_flags: bool,
    /// Valid bytes of `payload`.
    pub payload_len: u8,
    /// The first bytes after the L4 header, within the datagram and the sampled head.
    pub payload: [u8; PAYLOAD_KEEP],
}

impl Features {
    /// The features of a sample, or `None` when it is not IPv4/IPv6.
    pub fn extract(s: &Sample) -> Option<Features> {
        let p = &s.parsed;
        if p.flags & PF_IP == 0 || p.ip_version == 0 {
            return None;
        }
        let has_l4 = p.flags & PF_HAS_L4 != 0;
        let has_ports = has_l4 && (p.proto == 6 || p.proto == 17);
        let has_flags = has_l4 && p.proto == 6;
        let start = p.payload_offset as usize;
        let end = datagram_end(p, &s.head).min(s.head.len());
        let mut payload = [0u8; PAYLOAD_KEEP];
        let payload_len = if start < end {
            let n = (end - start).min(PAYLOAD_KEEP);
            payload[..n].copy_from_slice(&s.head[start..start + n]);
            n
        } else {
            0
        };
        Some(Features {
            dst: p.dst,
            src: p.src,
            proto: p.proto,
            ttl: p.ttl,
            ip_len: p.ip_len,
            sport: if has_ports { p.sport } else { 0 },
            dport: if has_ports { p.dport } else { 0 },
            tcp_flags: if has_flags { p.tcp_flags } else { 0 },
            has_ports,
            has_flags,
            payload_len: payload_len as u8,
            payload,
        })
    }

    pub fn is_v4(&self) -> bool {
        as_v4(&self.dst).is_some()
    }

    /// `len` payload bytes at `offset`, when the sample has them.
    pub fn payload_at(&self, offset: usize, len: usize) -> Option<&[u8]> {
        let end = offset.checked_add(len)?;
        (end <= self.payload_len as usize).then(|| &self.payload[offset..end])
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Frame builders for the detector's tests: Ethernet + IPv4 + TCP/UDP, parsed by the
    //! kernel-equivalent parser into a [`Sample`].

    use rampart_common::parsed::ParsedFields;
    use rampart_rules::packet::parse_frame;

    use crate::Sample;

    /// Header fields of a test packet.
    #[derive(Clone, Debug)]
    pub struct Pkt {
        pub src: [u8; 4],
        pub dst: [u8; 4],
        /// 6 (TCP), 17 (UDP) or anything else (no L4 header written).
        pub proto: u8,
        pub ttl: u8,
        pub sport: u16,
        pub dport: u16,
        pub tcp_flags: u8,
        pub payload: Vec<u8>,
        /// Extra bytes counted in the IP length beyond the payload (large datagrams whose bytes
        /// past the sampled head are not in the sample).
        pub pad_len: u16,
        /// Send as IPv6, `a.b.c.d` becoming `2001:db8:aabb:cc00::dd` (hex) (so a /24 maps to a /64).
        pub ipv6: bool,
    }

    /// The IPv6 address a test IPv4 address stands for.
    pub fn v6_of(a: [u8; 4]) -> [u8; 16] {
        let mut v = [0u8; 16];
        v[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v[4..7].copy_from_slice(&a[..3]);
        v[15] = a[3];
        v
    }

    impl Default for Pkt {
        fn default() -> Self {
            Pkt {
                src: [198, 51, 100, 1],
                dst: [203, 0, 113, 5],
                proto: 6,
                ttl: 64,
                sport: 40_000,
                dport: 443,
                tcp_flags: 0x10,
                payload: Vec::new(),
                pad_len: 0,
                ipv6: false,
            }
        }
    }

    impl Pkt {
        /// The Ethernet frame, truncated to the 128-byte head the kernel samples.
        pub fn frame(&self) -> (Vec<u8>, u32) {
            let l4_len = match self.proto {
                6 => 20,
                17 => 8,
                _ => 0,
            };
            let l4_total = l4_len + self.payload.len() + self.pad_len as usize;
            let ip_len = if self.ipv6 { 40 } else { 20 } + l4_total;
            let mut f = Vec::with_capacity(14 + ip_len);
            f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
            if self.ipv6 {
                f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
                f.extend_from_slice(&(l4_total as u16).to_be_bytes());
                f.extend_from_slice(&[self.proto, self.ttl]);
                f.extend_from_slice(&v6_of(self.src));
                f.extend_from_slice(&v6_of(self.dst));
            } else {
                f.extend_from_slice(&[0x08, 0x00]);
                f.extend_from_slice(&[0x45, 0, (ip_len >> 8) as u8, ip_len as u8, 0, 1, 0, 0]);
                f.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
                f.extend_from_slice(&self.src);
                f.extend_from_slice(&self.dst);
            }
            let (sp, dp) = (self.sport.to_be_bytes(), self.dport.to_be_bytes());
            match self.proto {
                6 => {
                    f.extend_from_slice(&[sp[0], sp[1], dp[0], dp[1], 0, 0, 0, 1, 0, 0, 0, 0]);
                    f.extend_from_slice(&[0x50, self.tcp_flags, 0xff, 0xff, 0, 0, 0, 0]);
                }
                17 => {
                    let ul = (8 + self.payload.len() + self.pad_len as usize) as u16;
                    let ul = ul.to_be_bytes();
                    f.extend_from_slice(&[sp[0], sp[1], dp[0], dp[1], ul[0], ul[1], 0, 0]);
                }
                _ => {}
            }
            f.extend_from_slice(&self.payload);
            let wire = (14 + ip_len) as u32;
            f.truncate(128);
            (f, wire)
        }

        pub fn sample(&self, ts_ns: u64, sample_every: u32) -> Sample {
            let (head, wire_len) = self.frame();
            let parsed: ParsedFields = parse_frame(&head).0;
            Sample {
                ts_ns,
                wire_len,
                sample_every,
                dropped: false,
                rule_id: None,
                parsed,
                head,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Pkt;
    use super::*;

    #[test]
    fn features_stay_small() {
        // The memory bound documented on `DetectorConfig` counts 76 bytes per sample.
        assert_eq!(std::mem::size_of::<Features>(), 76);
    }

    #[test]
    fn extracts_kernel_presence_of_fields() {
        let udp = Pkt {
            proto: 17,
            sport: 123,
            dport: 5555,
            payload: b"\x17\x00\x03\x2aabcd".to_vec(),
            ..Default::default()
        };
        let f = Features::extract(&udp.sample(0, 1)).unwrap();
        assert!(f.has_ports && !f.has_flags);
        assert_eq!((f.sport, f.dport, f.ip_len), (123, 5555, 36));
        assert_eq!(f.payload_at(0, 4), Some(&b"\x17\x00\x03\x2a"[..]));
        assert_eq!(f.payload_at(4, 5), None);
        let syn = Pkt {
            tcp_flags: 0x02,
            ..Default::default()
        };
        let f = Features::extract(&syn.sample(0, 1)).unwrap();
        assert!(f.has_ports && f.has_flags && f.tcp_flags == 2 && f.payload_len == 0);
        let icmp = Pkt {
            proto: 1,
            ..Default::default()
        };
        let f = Features::extract(&icmp.sample(0, 1)).unwrap();
        assert!(!f.has_ports && !f.has_flags);
        // Bytes past the sampled head are not payload the detector can see.
        let big = Pkt {
            proto: 17,
            payload: vec![7; 200],
            ..Default::default()
        };
        let s = big.sample(0, 1);
        assert_eq!(s.head.len(), 128);
        let f = Features::extract(&s).unwrap();
        assert_eq!(f.payload_len as usize, PAYLOAD_KEEP);
    }
}
