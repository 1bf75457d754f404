//! Tier (c): real captures. Every frame of the tcpdump corpus (`shared/corpora/pcaps-tcpdump`,
//! Ethernet only) runs through the XDP program with BPF_PROG_TEST_RUN and `FLAG_DEBUG_PARSE`. The
//! parse record and the error reason counted for the frame are compared with an independent parse
//! by etherparse (`LaxSlicedPacket::from_ethernet`).
//!
//! Agreement, layer by layer; a layer is compared only when both sides got that far:
//! - Run: the action is never XDP_ABORTED, the frame counts under exactly one verdict reason and
//!   under at most one error reason.
//! - Link: VLAN count and ids (outermost first), the ethertype after the tags, `l3_offset`.
//! - IPv4: version, src, dst, TTL, protocol, total length, id, DF, MF, fragment offset and kind
//!   (none / first / later), `l4_offset`.
//! - IPv6: version, src, dst, hop limit, 40 + payload length, the number of extension headers
//!   walked, the final next header, fragment id / offset / MF / kind, `l4_offset`.
//! - L4 (TCP, UDP, ICMP in IPv4, ICMPv6 in IPv6): when etherparse read the header the kernel must
//!   set `PF_HAS_L4` with the same ports, TCP flag byte (CWR..FIN), ICMP type and code and
//!   `payload_offset`. For any other protocol, and for later fragments, the kernel must not set
//!   `PF_HAS_L4` and `payload_offset == l4_offset`.
//! - Errors: the kernel counts an error reason exactly when etherparse stopped at a layer the
//!   kernel parses, and the reason names that layer: a cut VLAN tag `err_trunc_vlan`; an IPv4 header
//!   etherparse cannot read `err_trunc_ipv4` (too short) or `err_bad_ipv4_header` (version or IHL;
//!   for a header longer than the frame either, as the kernel checks the fields before skipping
//!   options); an IPv6 header `err_trunc_ipv6`; an IPv6 extension header `err_trunc_ipv6_ext`;
//!   TCP `err_trunc_tcp` / `err_bad_tcp_header` (data offset < 5); UDP `err_trunc_udp`; ICMP
//!   `err_trunc_icmp`; any of those three in a first fragment `err_tiny_fragment`. Layers the kernel
//!   does not parse (ARP, MACsec, IGMP, ...) never expect an error.
//!
//! Exceptions, each a documented difference of rule, counted and printed by name:
//! - `vlan_depth`: the kernel reads at most 2 VLAN tags and counts `err_too_many_vlans` when a third
//!   tag follows (before reading it); etherparse reads up to 3.
//! - `ipv6_ext_limit`: the kernel walks at most 6 IPv6 extension headers and counts
//!   `err_too_many_ipv6_ext` when a seventh follows (before reading it); etherparse has no limit.
//! - `ipv6_later_fragment`: after the fragment header of a non-first IPv6 fragment the kernel stops
//!   (the rest is payload of the fragment; its next header is the protocol); etherparse keeps
//!   walking extension headers inside the fragment payload.
//! - `first_fragment_l4`: etherparse never slices L4 out of a fragmented payload; the kernel reads
//!   the L4 header of a first fragment (RFC 1858 tiny-fragment check). The test slices that payload
//!   itself with the same etherparse functions (`TcpSlice::from_slice`, `UdpSlice::from_slice_lax`,
//!   `Icmpv4Slice::from_slice`, `Icmpv6Slice::from_slice`) and compares as for whole packets.
//! - `ipv4_ah`: etherparse walks an AH header in IPv4; the kernel does not (protocol 51, no L4).
//! - `icmp_family`: etherparse parses ICMPv4 inside IPv6 (and ICMPv6 inside IPv4) by protocol
//!   number alone; the kernel reads ICMP only in its own IP version.
//! - `ip_version_vs_ethertype`: etherparse chooses IPv4 or IPv6 by the version nibble; the kernel,
//!   like Linux, requires version 4 in an 0x0800 frame (`err_bad_ipv4_header`).
//! - `ipv4_total_len_below_header`: etherparse falls back to the frame length when the IPv4 total
//!   length is below the header length; the kernel, like Linux, rejects it (`err_bad_ipv4_header`).
//! - `macsec`: etherparse decodes a MACsec header (0x88e5); the kernel does not (non-IP, no error).
//!
//! Not exceptions (they fail the test): L4 or IPv6 extension headers the kernel completes with
//! bytes past the IP datagram (IPv4 total length, IPv6 payload length) where etherparse, bounding
//! the payload by that length, stops; an IPv6 frame whose version nibble is not 6.
//!
//! Frames BPF_PROG_TEST_RUN refuses are counted as not runnable, never compared: shorter than the
//! Ethernet header (EINVAL), or longer than the 3520 B linear area plus 17 (MAX_SKB_FRAGS) pages
//! (ENOMEM). A longer frame that runs shows the program only its first 3520 B (the rest is in
//! fragments the program does not read), so etherparse is given those same bytes.
//!
//! Capture files are read with pcap-file's raw packet records. The checked records additionally
//! validate timestamps and `incl_len <= snaplen`, `orig_len <= snaplen`, which concern neither the
//! frame bytes nor the link type and fail on snaplen-cut and fuzzed captures, so those findings
//! are printed, not failed. pcap-file 2 reads the 32-bit link-type field whole; per the pcap format
//! only its low 16 bits are the link type (the upper bits carry FCS information), so a field of
//! Ethernet with FCS bits and no FCS length is read as Ethernet (printed).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::Ipv6Addr;

use etherparse::{
    err::{packet::SliceError, Layer, LenError},
    Icmpv4Slice, Icmpv6Slice, Ipv6ExtensionSlice, LaxIpPayloadSlice, LaxLinkExtSlice, LaxNetSlice,
    LaxSlicedPacket, LenSource, LinkSlice, TcpSlice, TransportSlice, UdpSlice,
};
use rampart::kernel::{Dataplane, KernelError};
use rampart_common::{
    addr::v4_mapped,
    config::FLAG_DEBUG_PARSE,
    frag::{FRAG_FIRST, FRAG_LATER, FRAG_NONE},
    limits::{MAX_IPV6_EXT_HDRS, MAX_VLAN_DEPTH},
    parsed::{ParsedFields, PF_DF, PF_HAS_L4, PF_IP, PF_MF},
    Reason,
    Reason::*,
};
use rampart_testkit::captures::{read_capture, read_index, ReadError};
use rampart_testkit::{corpora_dir, fresh_dataplane, pin_to_cpu0, root_or_skip};

const XDP_ABORTED: u32 = 0;
const ETH_HLEN: usize = 14;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_MACSEC: u16 = 0x88e5;
/// The linear area BPF_PROG_TEST_RUN gives an XDP frame: one page minus 256 B headroom and the
/// skb_shared_info tailroom (3520 B on x86_64). Longer frames go on in page-sized fragments, at most
/// MAX_SKB_FRAGS (17) of them; beyond that the kernel returns ENOMEM.
const LINEAR_AREA: usize = 3520;
/// Mismatch lines printed (all are counted).
const PRINT_CAP: usize = 50;

// ---------------------------------------------------------------------------------------------
// Comparison

enum Expect {
    /// No error reason.
    Nothing,
    /// One of these reasons, and why.
    OneOf(Vec<Reason>, String),
    /// Not compared (a disagreement was already recorded for this frame).
    Any,
}

struct Cmp<'a> {
    k: &'a ParsedFields,
    /// (field, kernel, etherparse)
    diffs: Vec<(&'static str, String, String)>,
    exceptions: Vec<&'static str>,
    /// What was compared (coverage of the run).
    covered: Vec<&'static str>,
    expect: Expect,
}

impl<'a> Cmp<'a> {
    fn eq<T: PartialEq + Debug>(&mut self, field: &'static str, kernel: T, ether: T) {
        if kernel != ether {
            self.diffs
                .push((field, format!("{kernel:?}"), format!("{ether:?}")));
        }
    }

    fn addr(&mut self, field: &'static str, kernel: [u8; 16], ether: [u8; 16]) {
        if kernel != ether {
            self.diffs
                .push((field, show_addr(kernel), show_addr(ether)));
        }
    }

    fn flag(&mut self, field: &'static str, bit: u8, ether: bool) {
        self.eq(field, self.k.flags & bit != 0, ether);
    }

    fn diff(&mut self, field: &'static str, kernel: String, ether: String) {
        self.diffs.push((field, kernel, ether));
    }

    fn expect(&mut self, reasons: &[Reason], why: impl Into<String>) {
        self.expect = Expect::OneOf(reasons.to_vec(), why.into());
    }

    /// No L4 header read: `PF_HAS_L4` clear and the payload starts at L4.
    fn no_l4(&mut self) {
        self.flag("PF_HAS_L4", PF_HAS_L4, false);
        self.eq("payload_offset", self.k.payload_offset, self.k.l4_offset);
    }

    fn finish(&mut self, kerr: Option<Reason>) {
        let l4 = self.k.flags & PF_HAS_L4 != 0;
        let name = |r: Option<Reason>| match r {
            Some(r) => r.name().to_string(),
            None if l4 => "none, PF_HAS_L4 set".to_string(),
            None => "none".to_string(),
        };
        match &self.expect {
            Expect::Nothing => {
                if kerr.is_some() {
                    self.diffs.push((
                        "error",
                        name(kerr),
                        "none (etherparse read every layer the kernel parses)".into(),
                    ));
                }
            }
            Expect::OneOf(set, why) => {
                if !kerr.is_some_and(|r| set.contains(&r)) {
                    let want: Vec<&str> = set.iter().map(|r| r.name()).collect();
                    let e = format!("{} ({why})", want.join("|"));
                    self.diffs.push(("error", name(kerr), e));
                }
            }
            Expect::Any => {}
        }
    }
}

fn show_addr(a: [u8; 16]) -> String {
    let a = Ipv6Addr::from(a);
    match a.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => a.to_string(),
    }
}

fn offset_in(frame: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - frame.as_ptr() as usize
}

fn frag_kind(offset: u16, more: bool) -> u8 {
    match (offset, more) {
        (0, false) => FRAG_NONE,
        (0, true) => FRAG_FIRST,
        _ => FRAG_LATER,
    }
}

fn describe(stop: &(SliceError, Layer)) -> String {
    format!("{:?}: {}", stop.1, stop.0)
}

fn describe_len(e: &LenError) -> String {
    let bound = match e.len_source {
        LenSource::Slice => "frame end".to_string(),
        other => format!("{other:?}"),
    };
    format!(
        "{:?} needs {} B, {} B up to {bound}",
        e.layer, e.required_len, e.len
    )
}

/// Compares the kernel record and error reason of one frame with etherparse.
fn compare<'a>(frame: &[u8], k: &'a ParsedFields, kerr: Option<Reason>) -> Cmp<'a> {
    let mut c = Cmp {
        k,
        diffs: Vec::new(),
        exceptions: Vec::new(),
        covered: Vec::new(),
        expect: Expect::Nothing,
    };
    walk(&mut c, frame);
    c.finish(kerr);
    c
}

fn walk(c: &mut Cmp, frame: &[u8]) {
    let k = c.k;
    let pkt = match LaxSlicedPacket::from_ethernet(frame) {
        Ok(p) => p,
        Err(e) => {
            c.diff("ethernet", "ran".into(), format!("etherparse: {e}"));
            c.expect = Expect::Any;
            return;
        }
    };
    let Some(LinkSlice::Ethernet2(eth)) = &pkt.link else {
        c.diff("ethernet", "ran".into(), format!("{:?}", pkt.link));
        c.expect = Expect::Any;
        return;
    };
    let mut ethertype = eth.ether_type().0;
    let mut vlans: Vec<u16> = Vec::new();
    let mut macsec = false;
    for ext in &pkt.link_exts {
        match ext {
            LaxLinkExtSlice::Vlan(v) => {
                vlans.push(v.vlan_identifier().value());
                ethertype = v.ether_type().0;
            }
            LaxLinkExtSlice::Macsec(_) => {
                macsec = true;
                break;
            }
        }
    }
    let stop = pkt.stop_err.as_ref();
    let vlan_cut = stop.is_some_and(|s| s.1 == Layer::VlanHeader);
    let mut kernel_ids = k.vlan_ids;
    kernel_ids[usize::from(k.vlan_count).min(MAX_VLAN_DEPTH)..].fill(0);

    if vlans.len() > MAX_VLAN_DEPTH || (vlans.len() == MAX_VLAN_DEPTH && vlan_cut) {
        c.exceptions.push("vlan_depth");
        c.eq("vlan_count", usize::from(k.vlan_count), MAX_VLAN_DEPTH);
        c.eq("vlan_ids", &kernel_ids[..], &vlans[..MAX_VLAN_DEPTH]);
        c.expect(&[ErrTooManyVlans], "a third VLAN tag");
        return;
    }
    c.eq("vlan_count", usize::from(k.vlan_count), vlans.len());
    let mut ether_ids = [0u16; MAX_VLAN_DEPTH];
    ether_ids[..vlans.len()].copy_from_slice(&vlans);
    c.eq("vlan_ids", kernel_ids, ether_ids);
    if !vlans.is_empty() {
        c.covered.push("vlan");
    }
    if vlan_cut {
        c.expect(&[ErrTruncVlan], describe(stop.expect("stop")));
        return;
    }
    c.eq("ethertype", k.ethertype, ethertype);
    let l3 = ETH_HLEN + 4 * vlans.len();
    c.eq("l3_offset", usize::from(k.l3_offset), l3);
    if macsec {
        // The tags before the MACsec header were compared; the kernel stops at its ethertype.
        c.exceptions.push("macsec");
        c.eq("ethertype", k.ethertype, ETH_P_MACSEC);
        c.eq("ip_version", k.ip_version, 0);
        c.flag("PF_IP", PF_IP, false);
        return;
    }
    let l3_len = frame.len() - l3;
    match ethertype {
        ETH_P_IPV4 => ipv4(c, frame, &pkt, l3, l3_len),
        ETH_P_IPV6 => ipv6(c, frame, &pkt, l3, l3_len),
        _ => {
            c.covered.push("non_ip");
            c.eq("ip_version", k.ip_version, 0);
            c.flag("PF_IP", PF_IP, false);
        }
    }
}

fn ipv4(c: &mut Cmp, frame: &[u8], pkt: &LaxSlicedPacket, l3: usize, l3_len: usize) {
    let k = c.k;
    let ip = match &pkt.net {
        Some(LaxNetSlice::Ipv4(ip)) => ip,
        Some(LaxNetSlice::Ipv6(_)) => {
            c.exceptions.push("ip_version_vs_ethertype");
            c.expect(&[ErrBadIpv4Header], "version 6 in an IPv4 frame");
            return;
        }
        other => {
            let Some(stop) = pkt.stop_err.as_ref() else {
                c.diff("ip", "parsed".into(), format!("{other:?}"));
                c.expect = Expect::Any;
                return;
            };
            let why = describe(stop);
            if l3_len < 20 {
                c.expect(&[ErrTruncIpv4], why);
            } else {
                match &stop.0 {
                    SliceError::Ip(_) => c.expect(&[ErrBadIpv4Header], why),
                    SliceError::Len(_) => c.expect(&[ErrTruncIpv4, ErrBadIpv4Header], why),
                    _ => {
                        c.diff("ip", "?".into(), why);
                        c.expect = Expect::Any;
                    }
                }
            }
            return;
        }
    };
    let h = ip.header();
    let hlen = h.slice().len();
    if usize::from(h.total_len()) < hlen {
        c.exceptions.push("ipv4_total_len_below_header");
        c.expect(
            &[ErrBadIpv4Header],
            format!("total length {} < header {hlen}", h.total_len()),
        );
        return;
    }
    c.eq("ip_version", k.ip_version, 4);
    c.flag("PF_IP", PF_IP, true);
    c.addr("src", k.src, v4_mapped(h.source()));
    c.addr("dst", k.dst, v4_mapped(h.destination()));
    c.eq("ttl", k.ttl, h.ttl());
    c.eq("proto", k.proto, h.protocol().0);
    c.eq("ip_len", k.ip_len, h.total_len());
    c.eq("ip_id", k.ip_id, u32::from(h.identification()));
    let off = h.fragments_offset().value();
    c.eq("frag_offset", k.frag_offset, off);
    c.flag("PF_DF", PF_DF, h.dont_fragment());
    c.flag("PF_MF", PF_MF, h.more_fragments());
    let kind = frag_kind(off, h.more_fragments());
    c.eq("frag", k.frag, kind);
    c.covered.push("ipv4");
    if kind != FRAG_NONE {
        c.covered.push("fragment");
    }
    c.eq("ext_hdrs", k.ext_hdrs, 0);
    let l4 = l3 + hlen;
    c.eq("l4_offset", usize::from(k.l4_offset), l4);
    if kind == FRAG_LATER {
        c.no_l4();
        return;
    }
    if h.protocol() == etherparse::ip_number::AUTH {
        c.exceptions.push("ipv4_ah");
        c.no_l4();
        return;
    }
    transport(
        c,
        frame,
        pkt,
        ip.payload(),
        4,
        h.protocol().0,
        kind == FRAG_FIRST,
        l4,
    );
}

fn ipv6(c: &mut Cmp, frame: &[u8], pkt: &LaxSlicedPacket, l3: usize, l3_len: usize) {
    let k = c.k;
    let ip = match &pkt.net {
        Some(LaxNetSlice::Ipv6(ip)) => ip,
        Some(LaxNetSlice::Ipv4(_)) => {
            // The kernel does not check the version nibble of IPv6.
            c.diff(
                "ip_version",
                k.ip_version.to_string(),
                "4 (version nibble 4 in an IPv6 frame)".into(),
            );
            c.expect = Expect::Any;
            return;
        }
        other => {
            let Some(stop) = pkt.stop_err.as_ref() else {
                c.diff("ip", "parsed".into(), format!("{other:?}"));
                c.expect = Expect::Any;
                return;
            };
            let why = describe(stop);
            if l3_len < 40 {
                c.expect(&[ErrTruncIpv6], why);
            } else {
                c.diff("ip_version", k.ip_version.to_string(), why);
                c.expect = Expect::Any;
            }
            return;
        }
    };
    let h = ip.header();
    c.eq("ip_version", k.ip_version, 6);
    c.flag("PF_IP", PF_IP, true);
    c.addr("src", k.src, h.source());
    c.addr("dst", k.dst, h.destination());
    c.eq("ttl", k.ttl, h.hop_limit());
    c.eq("ip_len", k.ip_len, h.payload_length().saturating_add(40));
    c.flag("PF_DF", PF_DF, false);

    // The extension headers etherparse read, walked with the kernel's limits.
    let exts: Vec<Ipv6ExtensionSlice> = ip.extensions().clone().into_iter().collect();
    let ext_stop = pkt.stop_err.as_ref().filter(|s| !is_l4_layer(s.1));
    let mut walked = 0usize;
    let mut next = h.next_header().0;
    let mut end = l3 + 40;
    let mut frag: Option<(u16, bool, u32)> = None;
    let mut later = false;
    for e in &exts {
        if walked == MAX_IPV6_EXT_HDRS {
            break;
        }
        walked += 1;
        let (s, nh) = match e {
            Ipv6ExtensionSlice::HopByHop(s)
            | Ipv6ExtensionSlice::Routing(s)
            | Ipv6ExtensionSlice::DestinationOptions(s) => (s.slice(), s.next_header()),
            Ipv6ExtensionSlice::Authentication(s) => (s.slice(), s.next_header()),
            Ipv6ExtensionSlice::Fragment(f) => {
                frag = Some((
                    f.fragment_offset().value(),
                    f.more_fragments(),
                    f.identification(),
                ));
                (f.slice(), f.next_header())
            }
        };
        next = nh.0;
        end = offset_in(frame, s) + s.len();
        if frag.is_some_and(|(off, _, _)| off != 0) {
            later = true;
            break;
        }
    }
    let beyond = exts.len() > walked || ext_stop.is_some();
    if !later && walked == MAX_IPV6_EXT_HDRS && beyond {
        c.exceptions.push("ipv6_ext_limit");
        c.eq("ext_hdrs", usize::from(k.ext_hdrs), walked);
        c.expect(&[ErrTooManyIpv6Ext], "a seventh extension header");
        return;
    }
    if later && beyond {
        c.exceptions.push("ipv6_later_fragment");
    }
    c.eq("ext_hdrs", usize::from(k.ext_hdrs), walked);
    let (off, more, id) = frag.unwrap_or((0, false, 0));
    let kind = frag_kind(off, more);
    c.eq("frag_offset", k.frag_offset, off);
    c.flag("PF_MF", PF_MF, more);
    c.eq("ip_id", k.ip_id, id);
    c.eq("frag", k.frag, kind);
    c.covered.push("ipv6");
    if walked > 0 {
        c.covered.push("ipv6_ext");
    }
    if kind != FRAG_NONE {
        c.covered.push("fragment");
    }
    if !later {
        if let Some(stop) = ext_stop {
            let why = describe(stop);
            match &stop.0 {
                SliceError::Len(_) => c.expect(&[ErrTruncIpv6Ext], why),
                _ => {
                    c.diff("ipv6_ext", "?".into(), why);
                    c.expect = Expect::Any;
                }
            }
            return;
        }
    }
    c.eq("proto", k.proto, next);
    c.eq("l4_offset", usize::from(k.l4_offset), end);
    if later {
        c.no_l4();
        return;
    }
    if next != ip.payload().ip_number.0 || end != offset_in(frame, ip.payload().payload) {
        c.diff(
            "etherparse_ipv6_payload",
            format!("proto {next} at {end}"),
            format!(
                "proto {} at {}",
                ip.payload().ip_number.0,
                offset_in(frame, ip.payload().payload)
            ),
        );
    }
    transport(
        c,
        frame,
        pkt,
        ip.payload(),
        6,
        next,
        kind == FRAG_FIRST,
        end,
    );
}

fn is_l4_layer(l: Layer) -> bool {
    matches!(
        l,
        Layer::TcpHeader
            | Layer::UdpHeader
            | Layer::UdpPayload
            | Layer::Icmpv4
            | Layer::Icmpv4Timestamp
            | Layer::Icmpv4TimestampReply
            | Layer::Icmpv6
            | Layer::Igmp
    )
}

/// What etherparse read at L4.
enum EtherL4 {
    Tcp {
        at: usize,
        sport: u16,
        dport: u16,
        flags: u8,
        hlen: usize,
    },
    Udp {
        at: usize,
        sport: u16,
        dport: u16,
    },
    Icmp {
        at: usize,
        typ: u8,
        code: u8,
    },
    /// Header cut short.
    Trunc(String),
    /// TCP data offset below 5.
    BadTcp(String),
    /// Nothing read and no error (should not happen for the protocols compared).
    Missing(String),
}

fn tcp_l4(frame: &[u8], t: &TcpSlice) -> EtherL4 {
    let flags = [
        t.cwr(),
        t.ece(),
        t.urg(),
        t.ack(),
        t.psh(),
        t.rst(),
        t.syn(),
        t.fin(),
    ]
    .iter()
    .fold(0u8, |acc, b| (acc << 1) | u8::from(*b));
    EtherL4::Tcp {
        at: offset_in(frame, t.slice()),
        sport: t.source_port(),
        dport: t.destination_port(),
        flags,
        hlen: t.header_slice().len(),
    }
}

fn from_transport(frame: &[u8], t: &TransportSlice) -> EtherL4 {
    match t {
        TransportSlice::Tcp(t) => tcp_l4(frame, t),
        TransportSlice::Udp(u) => EtherL4::Udp {
            at: offset_in(frame, u.slice()),
            sport: u.source_port(),
            dport: u.destination_port(),
        },
        TransportSlice::Icmpv4(i) => EtherL4::Icmp {
            at: offset_in(frame, i.slice()),
            typ: i.type_u8(),
            code: i.code_u8(),
        },
        TransportSlice::Icmpv6(i) => EtherL4::Icmp {
            at: offset_in(frame, i.slice()),
            typ: i.type_u8(),
            code: i.code_u8(),
        },
        other => EtherL4::Missing(format!("{other:?}")),
    }
}

/// Slices L4 out of a fragmented payload with the functions `LaxSlicedPacket` uses.
fn slice_first_fragment(frame: &[u8], p: &LaxIpPayloadSlice, proto: u8) -> EtherL4 {
    let len_err = |mut e: LenError| {
        if e.len_source == LenSource::Slice {
            e.len_source = p.len_source;
        }
        EtherL4::Trunc(describe_len(&e))
    };
    match proto {
        6 => match TcpSlice::from_slice(p.payload) {
            Ok(t) => tcp_l4(frame, &t),
            Err(etherparse::err::tcp::HeaderSliceError::Len(e)) => len_err(e),
            Err(etherparse::err::tcp::HeaderSliceError::Content(e)) => {
                EtherL4::BadTcp(e.to_string())
            }
        },
        17 => match UdpSlice::from_slice_lax(p.payload) {
            Ok(u) => from_transport(frame, &TransportSlice::Udp(u)),
            Err(e) => len_err(e),
        },
        1 => match Icmpv4Slice::from_slice(p.payload) {
            Ok(i) => from_transport(frame, &TransportSlice::Icmpv4(i)),
            Err(e) => len_err(e),
        },
        _ => match Icmpv6Slice::from_slice(p.payload) {
            Ok(i) => from_transport(frame, &TransportSlice::Icmpv6(i)),
            Err(e) => len_err(e),
        },
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one comparison per transport header field, each from its own parser; a struct would only rename them"
)]
fn transport(
    c: &mut Cmp,
    frame: &[u8],
    pkt: &LaxSlicedPacket,
    payload: &LaxIpPayloadSlice,
    version: u8,
    proto: u8,
    first: bool,
    l4: usize,
) {
    let k = c.k;
    let kernel_reads =
        matches!(proto, 6 | 17) || (proto, version) == (1, 4) || (proto, version) == (58, 6);
    if !kernel_reads {
        if matches!(
            pkt.transport,
            Some(TransportSlice::Icmpv4(_) | TransportSlice::Icmpv6(_))
        ) {
            c.exceptions.push("icmp_family");
        }
        c.no_l4();
        return;
    }
    let e = if first {
        c.exceptions.push("first_fragment_l4");
        slice_first_fragment(frame, payload, proto)
    } else if let Some(t) = &pkt.transport {
        from_transport(frame, t)
    } else {
        match pkt.stop_err.as_ref() {
            Some((SliceError::Len(e), _)) => EtherL4::Trunc(describe_len(e)),
            Some((SliceError::Tcp(e), _)) => EtherL4::BadTcp(e.to_string()),
            Some(s) => EtherL4::Missing(describe(s)),
            None => EtherL4::Missing("no transport, no error".into()),
        }
    };
    let trunc = |r: Reason| if first { ErrTinyFragment } else { r };
    let (at, l4_len) = match e {
        EtherL4::Tcp {
            at,
            sport,
            dport,
            flags,
            hlen,
        } => {
            c.eq("sport", k.sport, sport);
            c.eq("dport", k.dport, dport);
            c.eq("tcp_flags", k.tcp_flags, flags);
            c.covered.push("tcp");
            (at, hlen)
        }
        EtherL4::Udp { at, sport, dport } => {
            c.eq("sport", k.sport, sport);
            c.eq("dport", k.dport, dport);
            c.covered.push("udp");
            (at, 8)
        }
        EtherL4::Icmp { at, typ, code } => {
            c.eq("icmp_type", k.icmp_type, typ);
            c.eq("icmp_code", k.icmp_code, code);
            c.covered.push("icmp");
            (at, 8)
        }
        EtherL4::Trunc(why) => {
            let r = match proto {
                6 => ErrTruncTcp,
                17 => ErrTruncUdp,
                _ => ErrTruncIcmp,
            };
            c.expect(&[trunc(r)], why);
            return;
        }
        EtherL4::BadTcp(why) => {
            c.expect(&[ErrBadTcpHeader], why);
            return;
        }
        EtherL4::Missing(why) => {
            c.diff("l4", "kernel reads this protocol".into(), why);
            c.expect = Expect::Any;
            return;
        }
    };
    c.flag("PF_HAS_L4", PF_HAS_L4, true);
    c.eq("etherparse_l4_offset", l4, at);
    c.eq("payload_offset", usize::from(k.payload_offset), at + l4_len);
}

// ---------------------------------------------------------------------------------------------
// Running

fn errno(e: &KernelError) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.raw_os_error();
        }
        cur = err.source();
    }
    None
}

struct Mismatch {
    file: String,
    index: usize,
    field: &'static str,
    kernel: String,
    ether: String,
}

#[derive(Default)]
struct Totals {
    files: usize,
    packets: usize,
    agreed: usize,
    disagreed: usize,
    too_short: usize,
    too_long: Vec<usize>,
    largest_run: usize,
    /// Frames that ran but are longer than the linear area.
    beyond_linear: usize,
    errors: BTreeMap<&'static str, usize>,
    /// Exception -> frames it applied to (`file#index`).
    exceptions: BTreeMap<&'static str, Vec<String>>,
    covered: BTreeMap<&'static str, usize>,
    mismatches: Vec<Mismatch>,
    file_failures: Vec<String>,
    unsupported: Vec<String>,
    /// File -> raw link-type field with FCS bits.
    fcs_bits: Vec<(String, u32)>,
    /// Checked-reader finding -> (records, files).
    unchecked: BTreeMap<String, (usize, Vec<String>)>,
}

fn run_frame(
    dp: &mut Dataplane,
    before: &mut rampart::counters::Snapshot,
    t: &mut Totals,
    file: &str,
    index: usize,
    frame: &[u8],
) {
    let fail = |t: &mut Totals, field: &'static str, kernel: String, ether: String| {
        t.mismatches.push(Mismatch {
            file: file.to_string(),
            index,
            field,
            kernel,
            ether,
        });
    };
    dp.clear_parse_debug().expect("clearing PARSE_DEBUG");
    let action = match dp.test_run(frame, 1) {
        Ok((action, _)) => action,
        Err(e) if errno(&e) == Some(libc::EINVAL) && frame.len() < ETH_HLEN => {
            t.too_short += 1;
            return;
        }
        Err(e) if errno(&e) == Some(libc::ENOMEM) && frame.len() > LINEAR_AREA => {
            t.too_long.push(frame.len());
            return;
        }
        Err(e) => {
            t.disagreed += 1;
            fail(
                t,
                "test_run",
                format!("{e}, errno {:?} ({} B)", errno(&e), frame.len()),
                "runs".into(),
            );
            return;
        }
    };
    t.packets += 1;
    t.largest_run = t.largest_run.max(frame.len());
    let after = dp.counters().expect("reading counters");
    let delta = before.delta(&after);
    *before = after;
    let errors: Vec<(Reason, u64)> = delta
        .reasons
        .iter()
        .filter(|(r, c)| r.is_error() && c.packets != 0)
        .map(|(r, c)| (*r, c.packets))
        .collect();
    for (r, _) in &errors {
        *t.errors.entry(r.name()).or_default() += 1;
    }
    let parsed = dp.parse_debug(0).expect("reading PARSE_DEBUG");
    // The program sees the linear area only; etherparse gets the same bytes.
    if frame.len() > LINEAR_AREA {
        t.beyond_linear += 1;
    }
    let seen = &frame[..frame.len().min(LINEAR_AREA)];
    let mut c = compare(seen, &parsed, errors.first().map(|(r, _)| *r));
    if action == XDP_ABORTED {
        c.diff("action", "XDP_ABORTED".into(), "pass or drop".into());
    }
    if delta.packets() != 1 {
        c.diff(
            "verdicts",
            format!("{} verdict reasons counted", delta.packets()),
            "exactly 1".into(),
        );
    }
    if errors.len() > 1 || errors.iter().any(|(_, n)| *n != 1) {
        c.diff(
            "errors",
            format!("{errors:?}"),
            "at most one error reason".into(),
        );
    }
    for e in &c.exceptions {
        t.exceptions
            .entry(e)
            .or_default()
            .push(format!("{file}#{index}"));
    }
    for what in &c.covered {
        *t.covered.entry(what).or_default() += 1;
    }
    if c.diffs.is_empty() {
        t.agreed += 1;
    } else {
        t.disagreed += 1;
        for (field, kernel, ether) in c.diffs {
            fail(t, field, kernel, ether);
        }
    }
}

#[test]
fn tcpdump_captures_parse_like_etherparse() {
    if !root_or_skip("tcpdump_captures_parse_like_etherparse") {
        return;
    }
    pin_to_cpu0();
    let dir = corpora_dir().join("pcaps-tcpdump");
    let index = read_index(&dir);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no captures in {}", dir.display());

    let mut t = Totals::default();
    for n in index.keys().filter(|n| !names.contains(n)) {
        t.file_failures
            .push(format!("{n}: listed in index.tsv but missing"));
    }

    let mut dp = fresh_dataplane();
    dp.update_config(|c| c.flags |= FLAG_DEBUG_PARSE)
        .expect("setting FLAG_DEBUG_PARSE");
    let mut before = dp.counters().expect("reading counters");
    for name in &names {
        let cap = match read_capture(&dir.join(name)) {
            Ok(cap) => cap,
            Err(ReadError::Unsupported(why)) => {
                t.unsupported.push(format!("{name}: {why}"));
                continue;
            }
            Err(ReadError::Broken(why)) => {
                t.file_failures.push(format!("{name}: {why}"));
                continue;
            }
        };
        t.files += 1;
        match index.get(name) {
            Some(&n) if n == cap.frames.len() => {}
            Some(&n) => t.file_failures.push(format!(
                "{name}: read {} packets, index.tsv says {n}",
                cap.frames.len()
            )),
            None => t
                .file_failures
                .push(format!("{name}: not listed in index.tsv")),
        }
        if let Some(raw) = cap.fcs_bits {
            t.fcs_bits.push((name.clone(), raw));
        }
        for why in cap.unchecked {
            let e = t.unchecked.entry(why).or_default();
            e.0 += 1;
            if !e.1.contains(name) {
                e.1.push(name.clone());
            }
        }
        for (i, frame) in cap.frames.iter().enumerate() {
            run_frame(&mut dp, &mut before, &mut t, name, i, frame);
        }
    }

    // Report.
    let join = |m: &BTreeMap<&str, usize>| {
        if m.is_empty() {
            return "none".to_string();
        }
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let not_runnable = t.too_short + t.too_long.len();
    println!(
        "tcpdump corpus: {} files, {} packets run, {} agreed, {} not runnable by test run ({} \
         shorter than the {ETH_HLEN} B Ethernet header: EINVAL; {} of {:?} B, more than the \
         {LINEAR_AREA} B linear area plus 17 (MAX_SKB_FRAGS) pages: ENOMEM), kernel error \
         reasons: {}",
        t.files,
        t.packets,
        t.agreed,
        not_runnable,
        t.too_short,
        t.too_long.len(),
        t.too_long,
        join(&t.errors),
    );
    println!(
        "compared: {}; {} frames longer than the {LINEAR_AREA} B linear area compared on that area",
        join(&t.covered),
        t.beyond_linear
    );
    let exceptions: Vec<String> = t
        .exceptions
        .iter()
        .map(|(name, at)| {
            let more = if at.len() > 3 { ", ..." } else { "" };
            format!(
                "{name} {} ({}{more})",
                at.len(),
                at[..at.len().min(3)].join(", ")
            )
        })
        .collect();
    println!(
        "documented exceptions applied: {}",
        if exceptions.is_empty() {
            "none".to_string()
        } else {
            exceptions.join("; ")
        }
    );
    if t.unsupported.is_empty() {
        println!("captures pcap-file cannot represent: none");
    }
    for u in &t.unsupported {
        println!("capture pcap-file cannot represent (skipped): {u}");
    }
    if !t.fcs_bits.is_empty() {
        println!(
            "read as Ethernet, link-type field with FCS bits (low 16 bits = 1, no FCS length): {}",
            t.fcs_bits
                .iter()
                .map(|(f, raw)| format!("{f} ({raw:#010x})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (why, (n, files)) in &t.unchecked {
        println!(
            "{n} packet records fail pcap-file's checked reader with `{why}` (frames used as \
             captured): {}",
            files.join(", ")
        );
    }
    if let Some(&smallest) = t.too_long.iter().min() {
        assert!(
            smallest > t.largest_run,
            "a {smallest} B frame was refused but a {} B frame ran: the refusal is not the size limit",
            t.largest_run
        );
    }
    for f in &t.file_failures {
        println!("FILE FAILURE {f}");
    }
    for m in t.mismatches.iter().take(PRINT_CAP) {
        println!(
            "MISMATCH {} #{} {}: kernel {} / etherparse {}",
            m.file, m.index, m.field, m.kernel, m.ether
        );
    }
    if t.mismatches.len() > PRINT_CAP {
        println!("... {} more mismatch lines", t.mismatches.len() - PRINT_CAP);
    }
    assert!(
        t.file_failures.is_empty() && t.mismatches.is_empty(),
        "{} file failures, {} packets disagree ({} mismatch lines)",
        t.file_failures.len(),
        t.disagreed,
        t.mismatches.len()
    );
}
