//! The lab's attack generators: every kind's frames parse as intended (etherparse, no root), and
//! end to end (root) each attack sent into our own namespaces arrives at the XDP program frame for
//! frame, counted by log rules that describe it, beside legitimate background traffic that keeps
//! flowing. Every sender is bounded in count and time; nothing leaves the namespaces.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use rampart::counters::Snapshot;
use rampart::kernel::{AttachMode, Dataplane};
use rampart_common::Reason;
use rampart_lab::attacks::{
    send_attack, send_frames, spawn_attack, AttackKind, AttackPlan, AttackReport, Background,
    Pacing,
};
use rampart_lab::frames::{Crafter, Ipv4Prefix, L2};
use rampart_lab::netns::{veth, End, Netns};
use rampart_lab::traffic::Receiver;
use rampart_testkit::{fresh_dataplane, root_or_skip};

const SPOOFED: &str = "198.18.0.0/15";
const VICTIM: Ipv4Addr = Ipv4Addr::new(10, 218, 0, 1);
const CARPET: &str = "10.218.1.0/24";
const ATTACK_FRAMES: u32 = 500;
const LEGIT: u32 = 200;

fn plan(kind: AttackKind) -> AttackPlan {
    let mut p = AttackPlan::new(kind, SPOOFED.parse().unwrap(), VICTIM);
    p.dst_prefix = CARPET.parse().unwrap();
    p.packets = ATTACK_FRAMES;
    p.rate_pps = 5_000;
    p.time_limit = Duration::from_secs(10);
    p.seed = 0x5eed + kind as u64;
    p
}

// ---- Frames, without root ----

#[test]
fn every_attack_frame_parses_as_intended() {
    let l2 = L2 {
        src: [2, 0, 0, 0, 0, 1],
        dst: [2, 0, 0, 0, 0, 2],
    };
    let spoofed: Ipv4Prefix = SPOOFED.parse().unwrap();
    let carpet: Ipv4Prefix = CARPET.parse().unwrap();
    for kind in AttackKind::ALL {
        let p = plan(kind);
        let mut sources = HashSet::new();
        let mut dsts = HashSet::new();
        for frame in p.frames(l2).unwrap() {
            let s = SlicedPacket::from_ethernet(&frame).unwrap_or_else(|e| panic!("{kind}: {e:?}"));
            let Some(NetSlice::Ipv4(ip)) = &s.net else {
                panic!("{kind}: not IPv4");
            };
            let h = ip.header();
            let hdr = h.to_header();
            assert_eq!(
                hdr.calc_header_checksum(),
                h.header_checksum(),
                "{kind}: IPv4 checksum"
            );
            let (src, dst) = (h.source_addr(), h.destination_addr());
            assert!(spoofed.contains(src), "{kind}: {src} is spoofed");
            sources.insert(src);
            dsts.insert(dst);
            let payload = ip.payload().payload;
            match (kind, &s.transport) {
                (AttackKind::SynFlood, Some(TransportSlice::Tcp(t))) => {
                    assert!(t.syn() && !t.ack() && !t.rst() && !t.fin());
                    assert_eq!((t.destination_port(), t.window_size()), (80, 64_240));
                    assert_eq!(t.options().len(), 20, "MSS, SACK, TS, NOP, WS");
                    assert_eq!(
                        t.calc_checksum_ipv4(src.octets(), dst.octets()).unwrap(),
                        t.checksum()
                    );
                }
                (AttackKind::AckFlood, Some(TransportSlice::Tcp(t))) => {
                    assert!(t.ack() && !t.syn() && !t.rst() && !t.fin() && !t.psh());
                    assert_eq!(t.destination_port(), 443);
                    assert_eq!(
                        t.calc_checksum_ipv4(src.octets(), dst.octets()).unwrap(),
                        t.checksum()
                    );
                }
                (AttackKind::UdpReflection, Some(TransportSlice::Udp(u))) => {
                    assert_eq!(u.source_port(), 123);
                    assert_eq!(u.payload().len(), 468);
                    assert_eq!(hdr.total_len, 496);
                    assert_eq!(
                        u.to_header().calc_checksum_ipv4(&hdr, u.payload()).unwrap(),
                        u.checksum()
                    );
                }
                (AttackKind::DnsQueryFlood, Some(TransportSlice::Udp(u))) => {
                    assert_eq!(u.destination_port(), 53);
                    let q = u.payload();
                    assert_eq!(&q[2..4], &[0x01, 0x00], "standard query, RD");
                    assert_eq!(&q[12..29], b"\x03www\x07example\x03com\x00");
                    assert_eq!(
                        u.to_header().calc_checksum_ipv4(&hdr, q).unwrap(),
                        u.checksum()
                    );
                }
                (AttackKind::FragmentFlood, None) => {
                    assert!(h.fragments_offset().value() > 0, "a later fragment");
                    assert!(!h.dont_fragment());
                    assert!(payload.len() >= 8);
                }
                (AttackKind::CarpetBomb, Some(TransportSlice::Udp(u))) => {
                    assert!(carpet.contains(dst));
                    assert_eq!((u.source_port(), u.payload().len()), (53, 512));
                }
                (k, t) => panic!("{k}: unexpected transport {t:?}"),
            }
        }
        let n = ATTACK_FRAMES as usize;
        assert!(sources.len() > n * 95 / 100, "{kind}: sources spread");
        if kind == AttackKind::CarpetBomb {
            assert!(dsts.len() > 200, "{kind}: destinations spread");
        } else {
            assert_eq!(dsts.len(), 1, "{kind}: one victim");
        }
    }
}

// ---- End to end, as root ----

const RULES: &str = r#"
version: 1
rules:
  - id: 1
    ref: syn-flood
    expression: tcp.flags.syn and not tcp.flags.ack and tcp.dstport eq 80 and ip.len eq 60 and ip.ttl in {49..63}
    action: log
  - id: 2
    ref: ack-flood
    expression: tcp.flags eq 16 and tcp.dstport eq 443
    action: log
  - id: 3
    ref: ntp-reflection
    expression: udp.srcport eq 123 and ip.len eq 496 and ip.dst in {10.218.0.1}
    action: log
  - id: 4
    ref: dns-query-www-example-com
    expression: 'udp.dstport eq 53 and payload[12:28] eq "\x03www\x07example\x03com"'
    action: log
  - id: 5
    ref: carpet-bomb
    expression: ip.dst in {10.218.1.0/24} and udp.srcport eq 53 and ip.len eq 540
    action: log
  - id: 6
    ref: spoofed
    expression: ip.src in {198.18.0.0/15}
    action: log
  - id: 7
    ref: spoofed-lower-half
    expression: ip.src in {198.18.0.0/16}
    action: log
  - id: 8
    ref: carpet-lower-half
    expression: ip.dst in {10.218.1.0/25}
    action: log
  - id: 9
    ref: first-fragments
    expression: udp.dstport eq 7777 and ip.len eq 1500
    action: log
  - id: 10
    ref: legitimate
    expression: ip.src in {10.218.0.2} and udp.dstport eq 8080
    action: log
"#;

const SPOOFED_ALL: u32 = 6;
const SPOOFED_LOW: u32 = 7;
const CARPET_LOW: u32 = 8;
const FIRST_FRAGMENTS: u32 = 9;
const LEGITIMATE: u32 = 10;

struct Lab {
    attacker: Netns,
    edge: Netns,
    dp: Dataplane,
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn matched(d: &Snapshot, rule: u32) -> u64 {
    d.rule(rule)
        .unwrap_or_else(|| panic!("rule {rule} is loaded"))
        .matched
        .packets
}

impl Lab {
    /// The counters since `before`, once `expected` packets have been counted (XDP on the veth
    /// runs from its peer's queue, a moment after the send returns) or 3 s have passed.
    fn settle(&self, before: &Snapshot, expected: u64) -> Snapshot {
        let end = Instant::now() + Duration::from_secs(3);
        loop {
            let d = before.delta(&self.dp.counters().unwrap());
            if d.packets() >= expected || Instant::now() >= end {
                return d;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs `attack` (on this thread) while 200 legitimate datagrams go from the attacker's real
    /// address to a socket on the edge; checks that both arrived whole and that nothing else did.
    fn phase(&self, what: &str, attack: impl FnOnce() -> Vec<AttackReport>) -> Snapshot {
        let before = self.dp.counters().unwrap();
        let rx = Receiver::start(
            &self.edge,
            sa("10.218.0.1:8080"),
            LEGIT,
            Duration::from_secs(10),
        )
        .unwrap();
        let bg = Background::start(
            &self.attacker,
            sa("10.218.0.2:40000"),
            sa("10.218.0.1:8080"),
            LEGIT,
            2_000,
            200,
        )
        .unwrap();
        let reports = attack();
        let legit_sent = bg.finish().unwrap();
        let legit_got = rx.finish().unwrap();
        let frames: u64 = reports.iter().map(|r| u64::from(r.frames)).sum();
        let d = self.settle(&before, frames + u64::from(legit_sent));
        for r in &reports {
            assert!(!r.timed_out, "{what}: {r}");
            let (first, last) = (r.first_frame_ns.unwrap(), r.last_frame_ns.unwrap());
            assert!(first <= last, "{what}: first frame time before the last");
        }
        println!(
            "{what:<28} {} | legitimate {legit_got}/{LEGIT} | XDP saw {} packets",
            reports
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(" + "),
            d.packets()
        );
        assert_eq!(
            legit_sent, LEGIT,
            "{what}: background accepted by the kernel"
        );
        assert_eq!(legit_got, LEGIT, "{what}: background delivered whole");
        assert_eq!(matched(&d, LEGITIMATE), u64::from(LEGIT), "{what}");
        assert_eq!(
            d.packets(),
            frames + u64::from(LEGIT),
            "{what}: exactly the attack and the background crossed the veth\n{}",
            d.render()
        );
        assert_eq!(d.dropped(), 0, "{what}: log rules drop nothing");
        d
    }
}

/// `n` spread uniformly over two halves lands in each with ~N(n/2, √n/2): 30–70 % is > 8σ.
fn spread(what: &str, half: u64, n: u64) {
    assert!(
        half * 10 > n * 3 && half * 10 < n * 7,
        "{what}: {half} of {n} in one half"
    );
}

#[test]
fn attacks_reach_xdp_frame_for_frame_beside_background_traffic() {
    if !root_or_skip("attacks_reach_xdp_frame_for_frame_beside_background_traffic") {
        return;
    }
    let tag = std::process::id();
    let attacker = Netns::create(&format!("rt-atk-a-{tag}")).unwrap();
    let edge = Netns::create(&format!("rt-atk-e-{tag}")).unwrap();
    veth(
        End {
            ns: &attacker,
            ifname: "a0",
            addr: "10.218.0.2/24",
        },
        End {
            ns: &edge,
            ifname: "e0",
            addr: "10.218.0.1/24",
        },
    )
    .unwrap();

    let mut dp = fresh_dataplane();
    let set = rampart_rules::load_str(RULES, "lab_attacks.yaml", Path::new("."))
        .unwrap_or_else(|e| panic!("{e}"));
    dp.load_rules(&set.xdp).unwrap();
    let report = edge
        .enter(|| dp.attach("e0", AttachMode::Native, None))
        .unwrap()
        .unwrap();
    assert_eq!(report.mode, "native", "veth supports native XDP");
    let lab = Lab { attacker, edge, dp };
    let n = u64::from(ATTACK_FRAMES);

    for kind in AttackKind::ALL {
        let p = plan(kind);
        let d = lab.phase(kind.name(), || {
            vec![send_attack(&lab.attacker, "a0", &p).unwrap()]
        });
        let own_rule = match kind {
            AttackKind::SynFlood => Some(1),
            AttackKind::AckFlood => Some(2),
            AttackKind::UdpReflection => Some(3),
            AttackKind::DnsQueryFlood => Some(4),
            AttackKind::CarpetBomb => Some(5),
            AttackKind::FragmentFlood => None,
        };
        match own_rule {
            Some(id) => {
                assert_eq!(matched(&d, id), n, "{kind}: rule {id} counts every frame");
                assert_eq!(matched(&d, SPOOFED_ALL), n, "{kind}: every source spoofed");
                spread(kind.name(), matched(&d, SPOOFED_LOW), n);
                // One log event per matching rule: own rule, spoofed, lower half, background
                // (plus the carpet's lower half of destinations).
                let logged = [id, SPOOFED_ALL, SPOOFED_LOW, CARPET_LOW, LEGITIMATE]
                    .iter()
                    .map(|r| matched(&d, *r))
                    .sum::<u64>();
                assert_eq!(d.reason(Reason::EvLogOnly).packets, logged, "{kind}");
            }
            None => {
                // Later fragments never reach the rules: with no first fragment seen, the
                // fragment policy (pass) decides each one.
                assert_eq!(d.reason(Reason::PassFragPolicy).packets, n, "{kind}");
                assert_eq!(matched(&d, SPOOFED_ALL), 0, "{kind}");
            }
        }
        if kind == AttackKind::CarpetBomb {
            spread("carpet destinations", matched(&d, CARPET_LOW), n);
        } else {
            assert_eq!(matched(&d, CARPET_LOW), 0, "{kind}");
        }
        for id in 1..=5 {
            if Some(id) != own_rule {
                assert_eq!(matched(&d, id), 0, "{kind}: rule {id} is another attack's");
            }
        }
    }

    // Multi-vector: a SYN flood and NTP reflection at once, each on its own thread.
    let d = lab.phase("syn-flood + udp-reflection", || {
        let syn = spawn_attack(&lab.attacker, "a0", &plan(AttackKind::SynFlood)).unwrap();
        let ntp = spawn_attack(&lab.attacker, "a0", &plan(AttackKind::UdpReflection)).unwrap();
        vec![syn.finish().unwrap(), ntp.finish().unwrap()]
    });
    assert_eq!((matched(&d, 1), matched(&d, 3)), (n, n));
    assert_eq!(matched(&d, SPOOFED_ALL), 2 * n);

    // Whole fragmented datagrams: the first fragment meets the rules, the later ones follow its
    // remembered verdict.
    let l2 = L2::resolve(&lab.attacker, "a0", VICTIM).unwrap();
    let mut c = Crafter::new(l2, 77);
    let datagrams = 100;
    let frames: Vec<Vec<u8>> = (0..datagrams)
        .flat_map(|_| c.fragmented_udp(Ipv4Addr::new(10, 218, 0, 2), VICTIM, 5_000, 7_777, 4_000))
        .collect();
    assert_eq!(frames.len(), 3 * datagrams);
    let d = lab.phase("fragmented datagrams", || {
        let pacing = Pacing {
            rate_pps: 5_000,
            time_limit: Duration::from_secs(10),
        };
        vec![send_frames(&lab.attacker, "a0", pacing, frames).unwrap()]
    });
    let datagrams = datagrams as u64;
    assert_eq!(matched(&d, FIRST_FRAGMENTS), datagrams);
    assert_eq!(d.reason(Reason::PassFragCached).packets, 2 * datagrams);

    // Unpaced, the sender still delivers exactly its count (a full peer queue is retried).
    let mut fast = plan(AttackKind::UdpReflection);
    fast.rate_pps = 0;
    fast.packets = 10_000;
    let before = lab.dp.counters().unwrap();
    let r = send_attack(&lab.attacker, "a0", &fast).unwrap();
    let d = lab.settle(&before, 10_000);
    println!(
        "{:<28} {r} | XDP saw {} packets",
        "unpaced udp-reflection",
        d.packets()
    );
    assert_eq!(
        (r.frames, d.packets(), matched(&d, 3)),
        (10_000, 10_000, 10_000)
    );

    // A time limit stops a sender before its count.
    let mut slow = plan(AttackKind::SynFlood);
    slow.rate_pps = 100;
    slow.time_limit = Duration::from_millis(300);
    let t = Instant::now();
    let r = send_attack(&lab.attacker, "a0", &slow).unwrap();
    assert!(r.timed_out && r.frames < ATTACK_FRAMES, "{r}");
    assert!(t.elapsed() < Duration::from_secs(2));

    // Detach first (the link holds the veth), then the namespaces go.
    let Lab { attacker, edge, dp } = lab;
    drop(dp);
    drop((attacker, edge));
}
