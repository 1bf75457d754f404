//! Replaying outside captures through the lab: captured frames are rewritten to the lab's
//! addresses by a [`Rewriter`], then sent in capture order, looped and paced by a [`ReplayPlan`],
//! through [`super::attacks::send_frames`] (bounded in count and time like every lab sender).
//!
//! What a rewrite changes, and why:
//! - **Ethernet addresses** become the lab veth's: source = the sending interface, destination =
//!   its peer on the edge (an [`L2`]). Broadcast and multicast MACs are replaced too: on a veth
//!   every frame reaches the peer anyway, and the edge's stack then treats it as its own.
//! - **VLAN tags are kept.** A veth carries tagged frames as they are, the XDP program reads up to
//!   two tags like a trunk port would (and counts a third), and some captures are about the tags
//!   (a fragment evasion inside 802.1Q, Q-in-Q-in-Q). Stripping them would replay another packet.
//!   Up to [`MAX_TAGS`] tags are walked to find the IP header.
//! - **Destinations are mapped** to the lab, per address family: the capture's main victim (its
//!   most frequent unicast destination; the first seen on a tie) becomes [`LabTargets`]' victim,
//!   its network (/24, /64) becomes the lab victim's network, and every other network becomes the
//!   next lab network in order of first appearance (at most [`MAX_OTHER_NETS`], later ones share
//!   the last). Host bits are XORed with `victim ^ lab victim`: a bijection on each network that
//!   sends the victim exactly onto the lab victim and every aligned block (a carpet-bombed /24,
//!   /25, …) onto an aligned block of the same size. Multicast, broadcast and unspecified
//!   destinations are kept: they name no host to map. A destination is rewritten exactly when
//!   the XDP program reads it (the same header checks as its parser).
//! - **Sources are kept as captured.** They are the attack (spoofed, random or a reflector set)
//!   and their cardinality is what the detector must notice; they never leave the namespaces (the
//!   edge has no route back to them and does not forward).
//! - **Checksums stay as valid as they were.** The IPv4 header checksum is recomputed when it was
//!   correct; a deliberately wrong one is adjusted by RFC 1624 so it stays wrong by the same
//!   amount. The TCP/UDP (and ICMPv6) checksum, whose pseudo-header holds the destination, is
//!   recomputed when the whole segment is in the frame and was correct; otherwise (first
//!   fragments, cut frames, bad checksums) it is adjusted incrementally, which keeps a correct one
//!   correct over the whole datagram and a wrong one wrong. A UDP checksum of zero (none) stays
//!   zero; under an IPv6 routing header with segments left the checksum covers the final address,
//!   which is not rewritten, so it is left alone. XDP checks none of them; valid frames keep the
//!   lab's stack and any later reader honest.
//! - **Frames the veth cannot carry are skipped, counted by reason**: shorter than an Ethernet
//!   header (`AF_PACKET` refuses them), or longer than [`MAX_FRAME`] bytes ([`MAX_TAGGED_FRAME`]
//!   under an outer 802.1Q tag, the limit `AF_PACKET` and veth apply), as captures taken with
//!   GRO/LRO hold. Cutting them would send a packet whose IP length the frame does not carry,
//!   another packet, so they are not truncated.
//!
//! Not rewritten: addresses inside payloads (the packet an ICMP error quotes, tunnelled inner
//! packets, routing-header segments, ARP): the XDP program classifies on the outer headers only.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::attacks::{send_frames, AttackReport, Pacing, HARD_TIME_LIMIT};
use super::frames::{fold as finish, sum16, ETH_HLEN, L2, MTU};
use super::netns::{LabError, Netns};

mod addr_map;
mod headers;

pub use addr_map::{AddrMap, LabTargets};
use headers::*;

/// VLAN tags walked to find the IP header.
pub const MAX_TAGS: usize = 8;
/// Networks besides the victim's that get a lab network of their own.
pub const MAX_OTHER_NETS: u128 = 255;
/// The longest untagged frame the veth takes.
pub const MAX_FRAME: usize = ETH_HLEN + MTU;
/// The longest frame with an outer 802.1Q tag (`AF_PACKET` allows one tag beyond the MTU).
pub const MAX_TAGGED_FRAME: usize = MAX_FRAME + VLAN_HLEN;

const VLAN_HLEN: usize = 4;
const TPID_8021Q: u16 = 0x8100;
const VLAN_TPIDS: [u16; 3] = [TPID_8021Q, 0x88a8, 0x9100];
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// IPv6 extension headers walked to find the upper-layer checksum.
const MAX_EXT_HDRS: usize = 8;
/// Network prefix lengths of the destination map.
const NET_BITS_V4: u32 = 24;
const NET_BITS_V6: u32 = 64;

// ---- Rewriting ----

/// What a rewrite did to a capture, frame by frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RewriteStats {
    /// Frames read.
    pub frames: usize,
    /// Frames rewritten and ready to send.
    pub kept: usize,
    /// Skipped: shorter than an Ethernet header.
    pub runt: usize,
    /// Skipped: longer than the veth takes ([`MAX_FRAME`], [`MAX_TAGGED_FRAME`]).
    pub oversize: usize,
    /// Kept frames with at least one VLAN tag (kept).
    pub vlan_tagged: usize,
    pub ipv4: usize,
    pub ipv6: usize,
    /// An IP ethertype whose header the XDP program cannot read either (cut before the
    /// addresses, bad version or lengths): only the MACs were rewritten.
    pub ip_unreadable: usize,
    /// Not IP (ARP, LLC, loopback, MPLS, …, a cut VLAN tag or more than [`MAX_TAGS`]): MACs only.
    pub not_ip: usize,
    /// IP destinations mapped to the lab.
    pub dst_mapped: usize,
    /// IP destinations kept (multicast, broadcast, unspecified).
    pub dst_kept: usize,
    /// IPv4 header checksums that were wrong as captured and stay wrong (adjusted).
    pub ip_checksum_bad_kept: usize,
    /// TCP/UDP/ICMPv6 checksums recomputed over a whole, correct segment.
    pub l4_recomputed: usize,
    /// Adjusted incrementally: the segment is not whole in the frame (a first fragment, a cut
    /// frame); a correct checksum over the datagram stays correct.
    pub l4_adjusted: usize,
    /// Wrong as captured over a whole segment, adjusted so they stay wrong.
    pub l4_bad_kept: usize,
}

impl fmt::Display for RewriteStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} frames: {} kept, {} runt and {} oversize skipped; IPv4 {}, IPv6 {}, unreadable IP {}, not IP {}, VLAN-tagged {}; \
             destinations mapped {}, kept {}; L4 checksums recomputed {}, adjusted {}, bad kept bad {}; bad IPv4 header checksums kept bad {}",
            self.frames,
            self.kept,
            self.runt,
            self.oversize,
            self.ipv4,
            self.ipv6,
            self.ip_unreadable,
            self.not_ip,
            self.vlan_tagged,
            self.dst_mapped,
            self.dst_kept,
            self.l4_recomputed,
            self.l4_adjusted,
            self.l4_bad_kept,
            self.ip_checksum_bad_kept
        )
    }
}

/// Rewrites one capture's frames for one lab interface.
#[derive(Clone, Debug)]
pub struct Rewriter {
    l2: L2,
    map: AddrMap,
}

impl Rewriter {
    /// Learns the destination map of `capture` for frames sent with `l2`.
    pub fn new(l2: L2, targets: LabTargets, capture: &[Vec<u8>]) -> Rewriter {
        Rewriter {
            l2,
            map: AddrMap::learn(capture, targets),
        }
    }

    pub fn map(&self) -> &AddrMap {
        &self.map
    }

    /// Every frame of `capture` that can be sent, rewritten, in capture order.
    pub fn rewrite_all(&self, capture: &[Vec<u8>]) -> (Vec<Vec<u8>>, RewriteStats) {
        let mut stats = RewriteStats::default();
        let frames = capture
            .iter()
            .filter_map(|f| self.rewrite(f, &mut stats))
            .collect();
        (frames, stats)
    }

    /// One frame rewritten, or `None` when the veth cannot carry it (counted in `stats`).
    pub fn rewrite(&self, frame: &[u8], stats: &mut RewriteStats) -> Option<Vec<u8>> {
        stats.frames += 1;
        if frame.len() < ETH_HLEN {
            stats.runt += 1;
            return None;
        }
        let limit = if be16(frame, 12) == TPID_8021Q {
            MAX_TAGGED_FRAME
        } else {
            MAX_FRAME
        };
        if frame.len() > limit {
            stats.oversize += 1;
            return None;
        }
        let mut f = frame.to_vec();
        f[..6].copy_from_slice(&self.l2.dst);
        f[6..12].copy_from_slice(&self.l2.src);
        stats.kept += 1;
        let (l3, tags) = locate(&f);
        if tags > 0 {
            stats.vlan_tagged += 1;
        }
        match l3 {
            L3::Ip(ip) => self.rewrite_ip(&mut f, ip, stats),
            L3::Unreadable => stats.ip_unreadable += 1,
            L3::NotIp => stats.not_ip += 1,
        }
        Some(f)
    }

    fn rewrite_ip(&self, f: &mut [u8], ip: Ip, stats: &mut RewriteStats) {
        let (old, new, at) = match (ip, dst_of(f, ip)) {
            (Ip::V4 { l3, .. }, Dst::V4(a)) => {
                stats.ipv4 += 1;
                (
                    a.octets().to_vec(),
                    self.map.map_v4(a).octets().to_vec(),
                    l3 + 16,
                )
            }
            (Ip::V6 { l3 }, Dst::V6(a)) => {
                stats.ipv6 += 1;
                (
                    a.octets().to_vec(),
                    self.map.map_v6(a).octets().to_vec(),
                    l3 + 24,
                )
            }
            _ => return,
        };
        if old == new {
            stats.dst_kept += 1;
            return;
        }
        stats.dst_mapped += 1;
        // Judge the checksums against the captured destination before writing the new one.
        let l4 = l4_sum(f, ip);
        let l4_was_ok =
            l4.as_ref()
                .and_then(|s| s.whole.map(|w| (s, w)))
                .map(|(s, (start, end))| {
                    let src = match ip {
                        Ip::V4 { l3, .. } => &f[l3 + 12..l3 + 16],
                        Ip::V6 { l3 } => &f[l3 + 8..l3 + 24],
                    };
                    finish(sum16(
                        pseudo(src, &old, s.proto, end - start),
                        &f[start..end],
                    )) == 0
                });
        // `None`: options cut by the capture, the checksum cannot be judged.
        let header_ok = match ip {
            Ip::V4 { l3, ihl } if l3 + ihl <= f.len() => {
                Some(finish(sum16(0, &f[l3..l3 + ihl])) == 0)
            }
            _ => None,
        };
        f[at..at + old.len()].copy_from_slice(&new);
        if let Ip::V4 { l3, ihl } = ip {
            let csum = match header_ok {
                Some(true) => {
                    f[l3 + 10..l3 + 12].fill(0);
                    finish(sum16(0, &f[l3..l3 + ihl]))
                }
                Some(false) => {
                    stats.ip_checksum_bad_kept += 1;
                    adjust(be16(f, l3 + 10), &old, &new)
                }
                None => adjust(be16(f, l3 + 10), &old, &new),
            };
            f[l3 + 10..l3 + 12].copy_from_slice(&csum.to_be_bytes());
        }
        let Some(s) = l4 else { return };
        let captured = be16(f, s.field);
        if s.udp && captured == 0 {
            return;
        }
        let csum = match (s.whole, l4_was_ok) {
            (Some((start, end)), Some(true)) => {
                stats.l4_recomputed += 1;
                let src = match ip {
                    Ip::V4 { l3, .. } => f[l3 + 12..l3 + 16].to_vec(),
                    Ip::V6 { l3 } => f[l3 + 8..l3 + 24].to_vec(),
                };
                f[s.field..s.field + 2].fill(0);
                finish(sum16(
                    pseudo(&src, &new, s.proto, end - start),
                    &f[start..end],
                ))
            }
            (Some(_), _) => {
                stats.l4_bad_kept += 1;
                adjust(captured, &old, &new)
            }
            (None, _) => {
                stats.l4_adjusted += 1;
                adjust(captured, &old, &new)
            }
        };
        let csum = if s.udp && csum == 0 { 0xffff } else { csum };
        f[s.field..s.field + 2].copy_from_slice(&csum.to_be_bytes());
    }
}

// ---- Replay ----

/// How a capture is replayed: in capture order at `rate_pps`, looped until `duration` worth of
/// frames, at least one whole pass, at most `max_frames`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayPlan {
    pub rate_pps: u32,
    pub duration: Duration,
    pub max_frames: u32,
}

impl ReplayPlan {
    /// Frames sent for a capture of `capture_frames` (rewritten) frames.
    pub fn frame_count(&self, capture_frames: usize) -> u32 {
        if capture_frames == 0 {
            return 0;
        }
        let want = (f64::from(self.rate_pps) * self.duration.as_secs_f64()) as u64;
        want.max(capture_frames as u64)
            .min(u64::from(self.max_frames)) as u32
    }

    /// The pacing for `count` frames: twice their time at the rate plus a second of slack, capped
    /// at [`HARD_TIME_LIMIT`].
    pub fn pacing(&self, count: u32) -> Pacing {
        let secs = f64::from(count) / f64::from(self.rate_pps.max(1));
        Pacing {
            rate_pps: self.rate_pps,
            time_limit: Duration::from_secs_f64(2.0 * secs + 1.0).min(HARD_TIME_LIMIT),
        }
    }

    /// The frames to send: `frames` looped, [`ReplayPlan::frame_count`] in all.
    pub fn frames(&self, frames: Vec<Vec<u8>>) -> Looped {
        let total = self.frame_count(frames.len()) as usize;
        Looped::new(frames, total)
    }
}

/// A capture's frames over and over, in capture order, `total` in all.
#[derive(Clone, Debug)]
pub struct Looped {
    frames: Vec<Vec<u8>>,
    next: usize,
    remaining: usize,
}

impl Looped {
    pub fn new(frames: Vec<Vec<u8>>, total: usize) -> Looped {
        let remaining = if frames.is_empty() { 0 } else { total };
        Looped {
            frames,
            next: 0,
            remaining,
        }
    }
}

impl Iterator for Looped {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let f = self.frames[self.next].clone();
        self.next = (self.next + 1) % self.frames.len();
        Some(f)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Looped {}

/// Replays rewritten `frames` on `ifname` inside `ns` as `plan` says, and waits for the end.
pub fn replay(
    ns: &Netns,
    ifname: &str,
    plan: &ReplayPlan,
    frames: Vec<Vec<u8>>,
) -> Result<AttackReport, LabError> {
    let looped = plan.frames(frames);
    let pacing = plan.pacing(looped.len() as u32);
    send_frames(ns, ifname, pacing, looped)
}

#[cfg(test)]
mod tests {
    use super::super::frames::{
        internet_checksum, ipv4_frame, tcp_segment, udp_datagram, Crafter, Ipv4, Tcp, TCP_SYN,
    };
    use super::*;

    const L2_CAPTURED: L2 = L2 {
        src: [0, 0x50, 0x54, 1, 2, 3],
        dst: [0xff; 6],
    };
    const L2_LAB: L2 = L2 {
        src: [2, 0, 0, 0, 0, 1],
        dst: [2, 0, 0, 0, 0, 2],
    };
    const TARGETS: LabTargets = LabTargets {
        victim_v4: Ipv4Addr::new(10, 220, 0, 1),
        victim_v6: Ipv6Addr::new(0xfd00, 0x220, 0, 0, 0, 0, 0, 1),
    };

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn syn(l2: &L2, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let t = Tcp {
            sport: 40_000,
            dport: 25_565,
            seq: 7,
            ack: 0,
            flags: TCP_SYN,
            window: 64_240,
            options: vec![2, 4, 5, 0xb4],
        };
        ipv4_frame(l2, &Ipv4::new(src, dst, 6), &tcp_segment(src, dst, &t, &[]))
    }

    fn udp(l2: &L2, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        ipv4_frame(
            l2,
            &Ipv4::new(src, dst, 17),
            &udp_datagram(src, dst, 161, 54_609, payload),
        )
    }

    /// An IPv6 frame (after `tags`) with `ext` extension-header bytes and an upper-layer
    /// `l4` whose checksum at `csum_at` is set for `src` → `dst`.
    fn v6_frame(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        first_next: u8,
        ext: &[u8],
        proto: u8,
        mut l4: Vec<u8>,
        csum_at: usize,
    ) -> Vec<u8> {
        let s = finish(sum16(
            pseudo(&src.octets(), &dst.octets(), proto, l4.len()),
            &l4,
        ));
        l4[csum_at..csum_at + 2].copy_from_slice(&s.to_be_bytes());
        let mut f = Vec::new();
        f.extend_from_slice(&L2_CAPTURED.dst);
        f.extend_from_slice(&L2_CAPTURED.src);
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[first_next, 64]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&dst.octets());
        f.extend_from_slice(ext);
        f.extend_from_slice(&l4);
        f
    }

    fn l4_ok_v6(f: &[u8], l4_at: usize, proto: u8) -> bool {
        let plen = usize::from(be16(f, 18));
        let seg = &f[l4_at..54 + plen];
        finish(sum16(pseudo(&f[22..38], &f[38..54], proto, seg.len()), seg)) == 0
    }

    #[test]
    fn a_whole_segment_equals_the_frame_built_for_the_lab() {
        let src = v4("198.51.100.7");
        let capture = vec![syn(&L2_CAPTURED, src, v4("10.10.10.10"))];
        let rw = Rewriter::new(L2_LAB, TARGETS, &capture);
        let (out, stats) = rw.rewrite_all(&capture);
        assert_eq!(out, vec![syn(&L2_LAB, src, TARGETS.victim_v4)]);
        assert_eq!(
            (stats.kept, stats.dst_mapped, stats.l4_recomputed),
            (1, 1, 1)
        );
        let capture = vec![udp(&L2_CAPTURED, src, v4("10.10.10.10"), b"x\x01\x02")];
        let (out, _) = Rewriter::new(L2_LAB, TARGETS, &capture).rewrite_all(&capture);
        assert_eq!(
            out,
            vec![udp(&L2_LAB, src, TARGETS.victim_v4, b"x\x01\x02")]
        );
    }

    #[test]
    fn the_victim_lands_on_the_lab_victim_and_prefixes_stay_prefixes() {
        let src = v4("198.51.100.7");
        let mut capture: Vec<Vec<u8>> = (0..=255u8)
            .map(|h| syn(&L2_CAPTURED, src, Ipv4Addr::new(192, 0, 2, h)))
            .collect();
        // The victim: the most frequent destination.
        capture.extend((0..5).map(|_| syn(&L2_CAPTURED, src, v4("192.0.2.77"))));
        capture.push(syn(&L2_CAPTURED, src, v4("203.0.113.9")));
        capture.push(syn(&L2_CAPTURED, src, v4("224.0.0.5")));
        let rw = Rewriter::new(L2_LAB, TARGETS, &capture);
        let m = rw.map();
        assert_eq!(m.victim_v4(), Some((v4("192.0.2.77"), TARGETS.victim_v4)));
        assert_eq!(m.map_v4(v4("192.0.2.77")), TARGETS.victim_v4);
        let lab: std::collections::HashSet<Ipv4Addr> = (0..=255u8)
            .map(|h| m.map_v4(Ipv4Addr::new(192, 0, 2, h)))
            .collect();
        assert_eq!(lab.len(), 256, "a bijection on the /24");
        assert!(lab.iter().all(|a| a.octets()[..3] == [10, 220, 0]));
        // An aligned /25 stays an aligned /25.
        let low: std::collections::HashSet<u8> = (0..128u8)
            .map(|h| m.map_v4(Ipv4Addr::new(192, 0, 2, h)).octets()[3] & 0x80)
            .collect();
        assert_eq!(low.len(), 1);
        assert_eq!(m.map_v4(v4("203.0.113.9")).octets()[..3], [10, 220, 1]);
        assert_eq!(m.map_v4(v4("224.0.0.5")), v4("224.0.0.5"), "multicast kept");
        assert_eq!(m.map_v4(v4("255.255.255.255")), v4("255.255.255.255"));
        let (_, stats) = rw.rewrite_all(&capture);
        assert_eq!((stats.dst_mapped, stats.dst_kept), (262, 1));
        assert!(m.to_string().contains("192.0.2.77 -> 10.220.0.1"), "{m}");
    }

    #[test]
    fn bad_checksums_stay_bad_and_fragments_stay_valid_over_the_datagram() {
        let src = v4("198.51.100.7");
        let mut bad = syn(&L2_CAPTURED, src, v4("10.10.10.10"));
        bad[14 + 10] ^= 0x55; // IPv4 header checksum
        bad[14 + 20 + 16] ^= 0x33; // TCP checksum
        let rw = Rewriter::new(L2_LAB, TARGETS, std::slice::from_ref(&bad));
        let (out, stats) = rw.rewrite_all(std::slice::from_ref(&bad));
        // Wrong by the same amount: the one's-complement residue of each sum is unchanged.
        let residue = |f: &[u8]| {
            let ip = internet_checksum(&f[14..34]);
            let tcp = finish(sum16(
                pseudo(&f[26..30], &f[30..34], 6, f.len() - 34),
                &f[34..],
            ));
            (ip, tcp)
        };
        let (ip, tcp) = residue(&out[0]);
        assert!(ip != 0 && tcp != 0);
        assert_eq!((ip, tcp), residue(&bad));
        assert_eq!(&out[0][30..34], &TARGETS.victim_v4.octets());
        assert_eq!((stats.ip_checksum_bad_kept, stats.l4_bad_kept), (1, 1));

        // Fragments of one datagram: the first's UDP checksum covers all of them.
        let (orig, lab) = (v4("10.10.10.10"), TARGETS.victim_v4);
        let frags = Crafter::new(L2_CAPTURED, 9).fragmented_udp(src, orig, 53, 4444, 3000);
        let expect = Crafter::new(L2_LAB, 9).fragmented_udp(src, lab, 53, 4444, 3000);
        let rw = Rewriter::new(L2_LAB, TARGETS, &frags);
        let (out, stats) = rw.rewrite_all(&frags);
        assert_eq!(out, expect);
        assert_eq!((stats.l4_adjusted, stats.l4_recomputed), (1, 0));
        for f in &out {
            assert_eq!(internet_checksum(&f[14..34]), 0);
        }
    }

    #[test]
    fn udp_without_checksum_keeps_none() {
        let src = v4("198.51.100.7");
        let mut f = udp(&L2_CAPTURED, src, v4("10.10.10.10"), b"abc");
        f[14 + 20 + 6..14 + 20 + 8].fill(0);
        let (out, _) = Rewriter::new(L2_LAB, TARGETS, std::slice::from_ref(&f)).rewrite_all(&[f]);
        assert_eq!(&out[0][14 + 20 + 6..14 + 20 + 8], &[0, 0]);
        assert_eq!(internet_checksum(&out[0][14..34]), 0);
    }

    #[test]
    fn vlan_tags_are_kept_and_sizes_bounded() {
        let src = v4("198.51.100.7");
        let plain = syn(&L2_CAPTURED, src, v4("10.10.10.10"));
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x81, 0x00, 0x00, 0x65]);
        tagged.extend_from_slice(&plain[12..]);
        let rw = Rewriter::new(L2_LAB, TARGETS, std::slice::from_ref(&tagged));
        let (out, stats) = rw.rewrite_all(std::slice::from_ref(&tagged));
        let mut expect = syn(&L2_LAB, src, TARGETS.victim_v4);
        expect.splice(12..12, [0x81, 0x00, 0x00, 0x64, 0x81, 0x00, 0x00, 0x65]);
        assert_eq!(out, vec![expect]);
        assert_eq!(stats.vlan_tagged, 1);

        let mut stats = RewriteStats::default();
        assert!(rw.rewrite(&[0u8; 13], &mut stats).is_none());
        let big = |len: usize, tpid: u16| {
            let mut f = vec![0u8; len];
            f[12..14].copy_from_slice(&tpid.to_be_bytes());
            f
        };
        assert!(rw.rewrite(&big(MAX_FRAME, 0x0800), &mut stats).is_some());
        assert!(rw
            .rewrite(&big(MAX_FRAME + 1, 0x0800), &mut stats)
            .is_none());
        assert!(rw
            .rewrite(&big(MAX_TAGGED_FRAME, 0x8100), &mut stats)
            .is_some());
        assert!(rw
            .rewrite(&big(MAX_TAGGED_FRAME + 1, 0x8100), &mut stats)
            .is_none());
        assert!(rw
            .rewrite(&big(MAX_FRAME + 1, 0x88a8), &mut stats)
            .is_none());
        assert_eq!((stats.runt, stats.oversize, stats.kept), (1, 3, 2));
        // Non-IP frames and cut IP headers get new MACs only.
        let mut arp = big(60, 0x0806);
        arp[20] = 0xaa;
        let out = rw.rewrite(&arp, &mut stats).unwrap();
        assert_eq!((&out[..6], &out[6..12]), (&L2_LAB.dst[..], &L2_LAB.src[..]));
        assert_eq!(&out[12..], &arp[12..]);
        assert!(rw.rewrite(&plain[..30], &mut stats).is_some());
        assert_eq!((stats.not_ip, stats.ip_unreadable), (2, 2));
    }

    #[test]
    fn ipv6_destinations_and_checksums() {
        let src: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let mut echo = vec![128, 0, 0, 0, 0xfa, 0xce, 0, 1];
        echo.extend_from_slice(b"payload!");
        // AH (next header ICMPv6, 16 bytes) then ICMPv6 echo.
        let ah = [58, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let f = v6_frame(src, dst, 51, &ah, 58, echo.clone(), 2);
        let mut udp6 = vec![0x30, 0x39, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4];
        let u = v6_frame(src, dst, 17, &[], 17, udp6.clone(), 6);
        // A first fragment: the checksum covers more than this frame.
        udp6[4..6].copy_from_slice(&100u16.to_be_bytes());
        let frag_hdr = [17, 0, 0, 1, 0, 0, 0, 9];
        let first = v6_frame(src, dst, 44, &frag_hdr, 17, udp6, 6);
        let mcast: Ipv6Addr = "ff02::1".parse().unwrap();
        let m = v6_frame(src, mcast, 58, &[], 58, echo.clone(), 2);
        // Routing header with segments left: the checksum holds the final address.
        let rh = [
            58, 2, 0, 1, 0, 0, 0, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
        ];
        let routed = v6_frame(src, dst, 43, &rh, 58, echo, 2);
        let capture = vec![f, u, first, m, routed.clone()];
        let rw = Rewriter::new(L2_LAB, TARGETS, &capture);
        assert_eq!(rw.map().victim_v6(), Some((dst, TARGETS.victim_v6)));
        let (out, stats) = rw.rewrite_all(&capture);
        for o in &out[..2] {
            assert_eq!(&o[38..54], &TARGETS.victim_v6.octets());
        }
        assert!(l4_ok_v6(&out[0], 54 + 16, 58));
        assert!(l4_ok_v6(&out[1], 54, 17));
        assert_eq!(&out[3][38..54], &mcast.octets(), "multicast kept");
        assert_eq!(
            &out[4][54 + 24..],
            &routed[54 + 24..],
            "routed: L4 untouched"
        );
        assert_eq!((stats.ipv6, stats.dst_mapped, stats.dst_kept), (5, 4, 1));
        assert_eq!((stats.l4_recomputed, stats.l4_adjusted), (2, 1));
    }

    #[test]
    fn replay_loops_in_order_bounded() {
        let plan = ReplayPlan {
            rate_pps: 1_000,
            duration: Duration::from_secs(2),
            max_frames: 5_000,
        };
        assert_eq!(plan.frame_count(3), 2_000);
        assert_eq!(plan.frame_count(3_000), 3_000, "at least one pass");
        assert_eq!(plan.frame_count(9_000), 5_000, "at most max_frames");
        assert_eq!(plan.frame_count(0), 0);
        let frames: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i]).collect();
        let got: Vec<u8> = Looped::new(frames, 7).map(|f| f[0]).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(Looped::new(Vec::new(), 7).count(), 0);
        let p = plan.pacing(2_000);
        assert_eq!(p.rate_pps, 1_000);
        assert_eq!(p.time_limit, Duration::from_secs(5));
    }
}
