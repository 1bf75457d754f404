//! Scenario tests: synthetic sample streams (legitimate background plus attacks) through the
//! manager, with a simulated kernel that runs the loaded entries and tags the samples it drops.
//! They assert behaviour — which fingerprint, its coverage and collateral measured on labelled
//! traffic, expiry, bounds — never timings.

use std::path::Path;

use rampart_common::parsed::{ParsedFields, PF_HAS_L4, PF_IP};
use rampart_rules::xdp::{evaluate, Action, RuleSpec};
use rampart_rules::Prefix;

use super::features::testing::Pkt;
use super::hash::Rng;
use super::*;
use rampart_tables::FakeTables;

const SEC: u64 = 1_000_000_000;
const VICTIM: [u8; 4] = [203, 0, 113, 5];

fn v4(a: [u8; 4]) -> Prefix {
    Prefix::new(rampart_common::addr::v4_mapped(a), 128)
}

/// A generator of packets.
type Gen = Box<dyn FnMut(&mut Rng) -> Pkt>;

fn pick<T: Copy>(rng: &mut Rng, v: &[T]) -> T {
    v[rng.below(v.len() as u64) as usize]
}

fn rand_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.below(256) as u8).collect()
}

fn dns_query(txid: u16, name: &[u8]) -> Vec<u8> {
    let mut q = txid.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(name);
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Legitimate traffic to `dst`: HTTPS and HTTP sessions from many clients, new HTTPS
/// connections, DNS queries for varied names, NTP replies to the host's own queries, pings.
fn legit_to(dst: [u8; 4]) -> Gen {
    Box::new(move |rng: &mut Rng| {
        let src = [
            198,
            18 + rng.below(2) as u8,
            rng.below(256) as u8,
            rng.below(256) as u8,
        ];
        let ttl = pick(rng, &[52u8, 57, 60, 64, 116, 121, 128]) - rng.below(4) as u8;
        let sport = 32_768 + rng.below(28_000) as u16;
        let base = Pkt {
            src,
            dst,
            ttl,
            sport,
            ..Default::default()
        };
        match rng.below(100) {
            0..=59 => Pkt {
                dport: 443,
                tcp_flags: pick(rng, &[0x10, 0x18, 0x11]),
                payload: {
                    let n = rng.below(60) as usize;
                    rand_bytes(rng, n)
                },
                pad_len: rng.below(1200) as u16,
                ..base
            },
            60..=64 => Pkt {
                dport: 443,
                tcp_flags: 0x02,
                pad_len: 20,
                ..base
            },
            65..=79 => Pkt {
                dport: 80,
                tcp_flags: pick(rng, &[0x10, 0x18]),
                payload: b"GET /".to_vec(),
                pad_len: rng.below(600) as u16,
                ..base
            },
            80..=91 => {
                let mut name = Vec::new();
                for _ in 0..2 {
                    let n = 3 + rng.below(10) as usize;
                    name.push(n as u8);
                    name.extend((0..n).map(|_| b'a' + rng.below(26) as u8));
                }
                name.push(0);
                Pkt {
                    proto: 17,
                    dport: 53,
                    payload: dns_query(rng.below(65_536) as u16, &name),
                    ..base
                }
            }
            92..=95 => Pkt {
                proto: 17,
                src: [192, 0, 2, 1 + rng.below(3) as u8],
                sport: 123,
                dport: sport,
                payload: rand_bytes(rng, 48),
                ..base
            },
            _ => Pkt {
                proto: 1,
                pad_len: 64,
                ..base
            },
        }
    })
}

fn random_src(rng: &mut Rng) -> [u8; 4] {
    let a = rng.next_u64() as u32;
    let mut b = a.to_be_bytes();
    b[0] = 1 + b[0] % 190;
    b
}

/// SYN flood to port 80 from spoofed random sources and ports, random TTL, 40 or 44 bytes.
fn syn_flood(dst: [u8; 4]) -> Gen {
    Box::new(move |rng: &mut Rng| Pkt {
        src: random_src(rng),
        dst,
        proto: 6,
        ttl: 32 + rng.below(224) as u8,
        sport: rng.below(65_536) as u16,
        dport: 80,
        tcp_flags: 0x02,
        payload: Vec::new(),
        pad_len: pick(rng, &[0u16, 4]),
        ipv6: false,
    })
}

/// NTP reflection: 2000 reflectors, source port 123, 468-byte datagrams, random payload.
fn ntp_reflection(dst: [u8; 4]) -> Gen {
    Box::new(move |rng: &mut Rng| {
        let r = rng.below(2000) as u32;
        Pkt {
            src: [100, 64 + (r >> 8) as u8, r as u8, 7],
            dst,
            proto: 17,
            ttl: 40 + (r % 80) as u8,
            sport: 123,
            dport: rng.below(65_536) as u16,
            tcp_flags: 0,
            payload: rand_bytes(rng, 100),
            pad_len: 340,
            ipv6: false,
        }
    })
}

/// DNS query flood for `example.com` with random transaction ids, sources and ports.
fn dns_flood(dst: [u8; 4]) -> Gen {
    Box::new(move |rng: &mut Rng| Pkt {
        src: random_src(rng),
        dst,
        proto: 17,
        ttl: 32 + rng.below(200) as u8,
        sport: 1024 + rng.below(64_000) as u16,
        dport: 53,
        tcp_flags: 0,
        payload: dns_query(rng.below(65_536) as u16, b"\x07example\x03com\x00"),
        pad_len: 0,
        ipv6: false,
    })
}

/// SSDP-like reflection spread over every address of 203.0.113.0/24.
fn carpet() -> Gen {
    Box::new(|rng: &mut Rng| Pkt {
        src: random_src(rng),
        dst: [203, 0, 113, rng.below(256) as u8],
        proto: 17,
        ttl: 30 + rng.below(200) as u8,
        sport: 1900,
        dport: rng.below(65_536) as u16,
        tcp_flags: 0,
        payload: rand_bytes(rng, 60),
        pad_len: 232,
        ipv6: false,
    })
}

/// Labelled outcome of one tick under the rules the kernel ran.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    attack: u64,
    attack_dropped: u64,
    legit: u64,
    legit_dropped: u64,
}

impl Outcome {
    fn add(&mut self, o: Outcome) {
        self.attack += o.attack;
        self.attack_dropped += o.attack_dropped;
        self.legit += o.legit;
        self.legit_dropped += o.legit_dropped;
    }
    fn coverage(&self) -> f64 {
        self.attack_dropped as f64 / self.attack.max(1) as f64
    }
    fn collateral(&self) -> f64 {
        self.legit_dropped as f64 / self.legit.max(1) as f64
    }
}

/// The manager, a fake table, and a simulated kernel running the last loaded entries.
struct Lab {
    m: Manager,
    tables: FakeTables,
    kernel: Vec<RuleSpec>,
    now: u64,
    rng: Rng,
    loads: u32,
}

impl Lab {
    fn new(cfg: DetectorConfig) -> Lab {
        Lab::with_operator(cfg, Vec::new())
    }

    fn with_operator(cfg: DetectorConfig, operator: Vec<RuleSpec>) -> Lab {
        Lab {
            m: Manager::new(cfg, operator.clone()).unwrap(),
            tables: FakeTables::default(),
            kernel: operator,
            now: 100 * SEC,
            rng: Rng::new(42),
            loads: 0,
        }
    }

    /// One second of traffic: `flows` of (generator, packets/s, is_attack), sampled 1 in
    /// `every`, interleaved in time; then a poll at the tick's end.
    fn second(&mut self, flows: &mut [(&mut Gen, u64, bool)], every: u32) -> Outcome {
        let counts: Vec<u64> = flows.iter().map(|f| f.1 / every as u64).collect();
        let total: u64 = counts.iter().sum();
        let mut left = counts.clone();
        let mut out = Outcome::default();
        for k in 0..total {
            // Pick a flow in proportion to what it has left.
            let mut r = self.rng.below(left.iter().sum::<u64>());
            let mut i = 0;
            while r >= left[i] {
                r -= left[i];
                i += 1;
            }
            left[i] -= 1;
            let pkt = (flows[i].0)(&mut self.rng);
            let ts = self.now + k * SEC / total.max(1);
            let mut s = pkt.sample(ts, every);
            let v = evaluate(&self.kernel, &s.parsed, &s.head, |_, _| false);
            s.dropped = v.drop;
            s.rule_id = v.rule_id;
            if flows[i].2 {
                out.attack += 1;
                out.attack_dropped += v.drop as u64;
            } else {
                out.legit += 1;
                out.legit_dropped += v.drop as u64;
            }
            self.m.ingest(&s);
        }
        self.now += SEC;
        self.poll();
        out
    }

    fn poll(&mut self) {
        if self.m.poll(self.now, &mut self.tables).unwrap().is_some() {
            self.loads += 1;
            self.kernel = self.m.entries();
        }
    }

    /// Advances time with no traffic.
    fn idle(&mut self, secs: u64) {
        for _ in 0..secs {
            self.now += SEC;
            self.poll();
        }
    }
}

/// Warm-up of `secs` seconds of background traffic at `pps` to each of `dsts`.
fn warm(lab: &mut Lab, dsts: &[[u8; 4]], pps: u64, secs: u32) {
    let mut gens: Vec<Gen> = dsts.iter().map(|d| legit_to(*d)).collect();
    for _ in 0..secs {
        let mut flows: Vec<(&mut Gen, u64, bool)> =
            gens.iter_mut().map(|g| (g, pps, false)).collect();
        lab.second(&mut flows, 1);
    }
}

/// Runs `attack` at `attack_pps` over background 2k pps to `VICTIM` for `secs` seconds; returns
/// the labelled outcome of the seconds after the first rule was loaded.
fn attack_run(lab: &mut Lab, attack: &mut Gen, attack_pps: u64, secs: u32) -> Outcome {
    let mut legit = legit_to(VICTIM);
    let mut after = Outcome::default();
    for _ in 0..secs {
        let mitigating = !lab.m.rules().is_empty();
        let o = lab.second(
            &mut [(&mut legit, 2_000, false), (attack, attack_pps, true)],
            10,
        );
        if mitigating {
            after.add(o);
        }
    }
    after
}

/// Ground truth on fresh traffic: `n` packets of each generator through the kernel's entries.
fn probe(lab: &mut Lab, legit: &mut [Gen], attack: &mut Gen, n: u32) -> Outcome {
    let mut o = Outcome::default();
    for i in 0..n {
        for (is_attack, g) in [
            (false, &mut legit[i as usize % legit.len()]),
            (true, attack),
        ] {
            let s = g(&mut lab.rng).sample(0, 1);
            let drop = evaluate(&lab.kernel, &s.parsed, &s.head, |_, _| false).drop;
            if is_attack {
                o.attack += 1;
                o.attack_dropped += drop as u64;
            } else {
                o.legit += 1;
                o.legit_dropped += drop as u64;
            }
        }
    }
    o
}

/// Coverage >= 0.95 and collateral <= 0.001, on the traffic mixed in while the rules ran and
/// on 20 000 fresh packets of each kind.
fn assert_mitigated(lab: &mut Lab, mixed: &Outcome, legit: &mut [Gen], attack: &mut Gen) {
    assert!(
        mixed.attack > 1000 && mixed.legit > 100,
        "measured {mixed:?}"
    );
    assert!(
        mixed.coverage() >= 0.95,
        "coverage {} ({mixed:?})",
        mixed.coverage()
    );
    assert!(
        mixed.collateral() <= 0.001,
        "collateral {} ({mixed:?})",
        mixed.collateral()
    );
    let o = probe(lab, legit, attack, 20_000);
    assert!(o.coverage() >= 0.95, "coverage {} ({o:?})", o.coverage());
    assert!(
        o.collateral() <= 0.001,
        "collateral {} ({o:?})",
        o.collateral()
    );
}

fn test_cfg() -> DetectorConfig {
    DetectorConfig {
        min_ttl_ns: 5 * SEC,
        ..Default::default()
    }
}

fn only_rule(lab: &Lab) -> &GeneratedRule {
    assert_eq!(lab.m.rules().len(), 1, "rules: {:#?}", expressions(lab));
    &lab.m.rules()[0]
}

fn expressions(lab: &Lab) -> Vec<String> {
    lab.m.rules().iter().map(|r| r.expression()).collect()
}

#[test]
fn syn_flood_from_spoofed_sources_gets_proto_flags_dport_not_the_source() {
    let mut lab = Lab::new(test_cfg());
    warm(&mut lab, &[VICTIM], 2_000, 10);
    let start = lab.now;
    let after = attack_run(&mut lab, &mut syn_flood(VICTIM), 100_000, 4);
    let r = only_rule(&lab).clone();
    // Made at the end of the attack's first tick, loaded before the second.
    assert_eq!(r.created.at_ns, start + SEC);
    assert_eq!(lab.loads, 1);
    let fp = r.fingerprint;
    assert_eq!(fp.dst(), v4(VICTIM));
    assert_eq!(
        (fp.proto(), fp.tcp_flags(), fp.dport()),
        (Some(6), Some(0x02), Some(80))
    );
    assert_eq!((fp.src(), fp.sport()), (None, None));
    assert_eq!(
        r.expression(),
        "ip.dst eq 203.0.113.5 and tcp.flags eq 0x02 and tcp.dstport eq 80"
    );
    assert!(
        r.created.excluded_fields.contains(&"ip.src"),
        "{:?}",
        r.created
    );
    assert_eq!(r.created.reference, ReferenceKind::Victim);
    assert!(r.created.coverage >= 0.9 && r.created.collateral <= 0.001);
    assert_eq!(r.action, Action::Drop);
    assert_mitigated(
        &mut lab,
        &after,
        &mut [legit_to(VICTIM)],
        &mut syn_flood(VICTIM),
    );
    // The detector's own view: hits are sampled matches scaled back.
    assert!(r.hits >= 10 * r.sampled_matches && r.sampled_matches > 0);
}

/// The same generator over IPv6.
fn over_v6(mut g: Gen) -> Gen {
    Box::new(move |rng: &mut Rng| Pkt {
        ipv6: true,
        ..g(rng)
    })
}

#[test]
fn ipv6_syn_flood_and_carpet_bombing_across_a_64() {
    let mut lab = Lab::new(test_cfg());
    let mut legit = over_v6(legit_to(VICTIM));
    for _ in 0..10 {
        lab.second(&mut [(&mut legit, 2_000, false)], 1);
    }
    let mut syn = over_v6(syn_flood(VICTIM));
    let mut spread = over_v6(carpet());
    for _ in 0..3 {
        lab.second(
            &mut [(&mut legit, 2_000, false), (&mut syn, 60_000, true)],
            10,
        );
    }
    for _ in 0..3 {
        lab.second(
            &mut [(&mut legit, 2_000, false), (&mut spread, 150_000, true)],
            10,
        );
    }
    let v6 = Prefix::new(super::features::testing::v6_of(VICTIM), 128);
    let net = Prefix::new(v6.addr, 64);
    let ex = expressions(&lab);
    assert_eq!(lab.m.rules().len(), 2, "{ex:#?}");
    assert_eq!(
        ex[0],
        "ip.dst eq 2001:db8:cb00:7100::5 and tcp.flags eq 0x02 and tcp.dstport eq 80"
    );
    assert_eq!(lab.m.rules()[1].fingerprint.dst(), net);
    assert_eq!(lab.m.rules()[1].fingerprint.sport(), Some(1900));
    let both: Gen = Box::new(move |rng: &mut Rng| {
        if rng.below(2) == 0 {
            syn(rng)
        } else {
            spread(rng)
        }
    });
    let o = probe(&mut lab, &mut [legit], &mut { both }, 20_000);
    assert!(o.coverage() >= 0.95 && o.collateral() <= 0.001, "{o:?}");
}

#[test]
fn collateral_narrows_the_fingerprint_when_legitimate_syns_share_the_port() {
    let mut lab = Lab::new(test_cfg());
    // Legitimate clients also open connections to port 80 (60-byte SYNs with options).
    let syn80: Gen = Box::new(|rng: &mut Rng| Pkt {
        src: [198, 18, rng.below(256) as u8, rng.below(256) as u8],
        dst: VICTIM,
        dport: 80,
        tcp_flags: 0x02,
        pad_len: 20,
        sport: 40_000 + rng.below(20_000) as u16,
        ..Default::default()
    });
    let mut syn80 = syn80;
    let mut legit = legit_to(VICTIM);
    let mut fixed_len: Gen = Box::new(|rng: &mut Rng| Pkt {
        pad_len: 0,
        ..syn_flood(VICTIM)(rng)
    });
    for _ in 0..10 {
        lab.second(
            &mut [(&mut legit, 2_000, false), (&mut syn80, 100, false)],
            1,
        );
    }
    let mut after = Outcome::default();
    for _ in 0..4 {
        let mitigating = !lab.m.rules().is_empty();
        let o = lab.second(
            &mut [
                (&mut legit, 2_000, false),
                (&mut syn80, 100, false),
                (&mut fixed_len, 100_000, true),
            ],
            10,
        );
        if mitigating {
            after.add(o);
        }
    }
    let fp = only_rule(&lab).fingerprint;
    assert_eq!(
        (fp.tcp_flags(), fp.dport(), fp.ip_len()),
        (Some(2), Some(80), Some(40))
    );
    assert_mitigated(&mut lab, &after, &mut [legit, syn80], &mut fixed_len);
}

#[test]
fn ntp_reflection_gets_udp_source_port_and_length() {
    let mut lab = Lab::new(test_cfg());
    warm(&mut lab, &[VICTIM], 2_000, 10);
    let after = attack_run(&mut lab, &mut ntp_reflection(VICTIM), 80_000, 4);
    let fp = only_rule(&lab).fingerprint;
    assert_eq!(
        (fp.proto(), fp.sport(), fp.ip_len()),
        (Some(17), Some(123), Some(468))
    );
    assert_eq!((fp.src(), fp.dport()), (None, None));
    assert!(only_rule(&lab)
        .expression()
        .contains("udp.srcport eq 123 and ip.len eq 468"));
    assert_mitigated(
        &mut lab,
        &after,
        &mut [legit_to(VICTIM)],
        &mut ntp_reflection(VICTIM),
    );
}

#[test]
fn dns_query_flood_gets_the_query_name_from_payload_bytes() {
    let mut lab = Lab::new(test_cfg());
    warm(&mut lab, &[VICTIM], 2_000, 10);
    let after = attack_run(&mut lab, &mut dns_flood(VICTIM), 60_000, 4);
    let r = only_rule(&lab).clone();
    let fp = r.fingerprint;
    assert_eq!((fp.proto(), fp.dport()), (Some(17), Some(53)));
    let p = fp.payload().expect("a payload match");
    let name = b"\x07example\x03com";
    assert!(
        p.bytes().windows(name.len()).any(|w| w == name),
        "payload {:?}",
        r.expression()
    );
    assert!(r
        .expression()
        .contains("payload[12:28] eq \"\\x07example\\x03com"));
    assert_mitigated(
        &mut lab,
        &after,
        &mut [legit_to(VICTIM)],
        &mut dns_flood(VICTIM),
    );
}

#[test]
fn carpet_bombing_across_a_prefix_gets_a_prefix_rule() {
    let mut lab = Lab::new(test_cfg());
    let hosts = [[203, 0, 113, 5], [203, 0, 113, 6], [203, 0, 113, 80]];
    warm(&mut lab, &hosts, 1_000, 10);
    let mut gens: Vec<Gen> = hosts.iter().map(|d| legit_to(*d)).collect();
    let mut atk = carpet();
    let mut after = Outcome::default();
    for _ in 0..4 {
        let mitigating = !lab.m.rules().is_empty();
        let mut flows: Vec<(&mut Gen, u64, bool)> =
            gens.iter_mut().map(|g| (g, 1_000, false)).collect();
        flows.push((&mut atk, 150_000, true));
        let o = lab.second(&mut flows, 10);
        if mitigating {
            after.add(o);
        }
    }
    let fp = only_rule(&lab).fingerprint;
    assert_eq!(fp.dst(), "203.0.113.0/24".parse::<Prefix>().unwrap());
    assert_eq!((fp.proto(), fp.sport()), (Some(17), Some(1900)));
    assert!(only_rule(&lab)
        .expression()
        .starts_with("ip.dst in {203.0.113.0/24}"));
    assert_mitigated(&mut lab, &after, &mut gens, &mut atk);
}

#[test]
fn multi_vector_attack_gets_two_rules() {
    let mut lab = Lab::new(test_cfg());
    warm(&mut lab, &[VICTIM], 2_000, 10);
    let mut legit = legit_to(VICTIM);
    let (mut syn, mut ntp) = (syn_flood(VICTIM), ntp_reflection(VICTIM));
    let mut after = Outcome::default();
    for _ in 0..4 {
        let mitigating = !lab.m.rules().is_empty();
        let o = lab.second(
            &mut [
                (&mut legit, 2_000, false),
                (&mut syn, 60_000, true),
                (&mut ntp, 50_000, true),
            ],
            10,
        );
        if mitigating {
            after.add(o);
        }
    }
    assert_eq!(lab.m.rules().len(), 2, "{:#?}", expressions(&lab));
    let ex = expressions(&lab).join("\n");
    assert!(
        ex.contains("tcp.flags eq 0x02 and tcp.dstport eq 80"),
        "{ex}"
    );
    assert!(ex.contains("udp.srcport eq 123 and ip.len eq 468"), "{ex}");
    let mut both: Gen = Box::new(move |rng: &mut Rng| {
        if rng.below(2) == 0 {
            syn(rng)
        } else {
            ntp(rng)
        }
    });
    assert_mitigated(&mut lab, &after, &mut [legit], &mut both);
}

#[test]
fn legitimate_traffic_alone_gets_no_rule_even_at_a_high_rate() {
    let mut lab = Lab::new(test_cfg());
    let other = [192, 0, 2, 10];
    let (mut a, mut b) = (legit_to(VICTIM), legit_to(other));
    // VICTIM builds a baseline at 5k pps, then runs at 20k (4×, normal); `other` appears at
    // 30k pps with no history at all (learnt once it stays unexplained).
    for _ in 0..10 {
        lab.second(&mut [(&mut a, 5_000, false)], 5);
    }
    for _ in 0..45 {
        lab.second(&mut [(&mut a, 20_000, false), (&mut b, 30_000, false)], 10);
        assert!(lab.m.rules().is_empty(), "{:#?}", expressions(&lab));
    }
    assert_eq!(lab.m.history().count(), 0);
    assert_eq!(lab.loads, 0);
    // Not vacuous: the new host was anomalous and went through selection (no reference at
    // first, then collateral refused every fingerprint of its traffic).
    let st = lab.m.stats().detector;
    assert!(st.attacks_started >= 1, "{st:?}");
    assert!(st.no_reference + st.unexplained >= 1, "{st:?}");
    let st = lab.m.victims();
    let b_status = st.iter().find(|v| v.key == v4(other)).unwrap();
    assert!(
        !b_status.anomalous,
        "the new host's rate became its baseline: {b_status:?}"
    );
}

#[test]
fn rules_expire_after_the_attack_stops_and_live_while_it_continues() {
    let mut lab = Lab::new(DetectorConfig {
        min_ttl_ns: 3 * SEC,
        ..Default::default()
    });
    warm(&mut lab, &[VICTIM], 2_000, 10);
    let mut atk = syn_flood(VICTIM);
    // Ten seconds of attack: more than three TTLs, and the rule stays, refreshed by the drops.
    attack_run(&mut lab, &mut atk, 50_000, 10);
    let r = only_rule(&lab).clone();
    assert!(r.last_match_ns.unwrap() >= lab.now - SEC);
    assert!(r.last_match_ns.unwrap() - r.created.at_ns >= 8 * SEC);
    // The attack stops; background continues.
    warm(&mut lab, &[VICTIM], 2_000, 2);
    assert_eq!(lab.m.rules().len(), 1, "not yet: the TTL is 3 s");
    warm(&mut lab, &[VICTIM], 2_000, 3);
    assert!(lab.m.rules().is_empty());
    let gone = lab.m.rule(r.id).unwrap();
    let e = gone.expired.as_ref().unwrap();
    assert_eq!(
        e.reason,
        ExpiryReason::Idle {
            last_match_ns: r.last_match_ns,
            ttl_ns: 3 * SEC
        }
    );
    assert!(e.at_ns >= r.last_match_ns.unwrap() + 3 * SEC);
    assert!(
        lab.kernel.is_empty(),
        "the kernel table was reloaded without it"
    );
    assert!(gone.explain().contains("expired at"));
}

#[test]
fn ttl_stretches_to_three_inter_match_gaps() {
    let mut lab = Lab::new(DetectorConfig {
        min_ttl_ns: 5 * SEC,
        ..Default::default()
    });
    warm(&mut lab, &[VICTIM], 2_000, 10);
    let mut atk = syn_flood(VICTIM);
    attack_run(&mut lab, &mut atk, 50_000, 2);
    let id = only_rule(&lab).id;
    // One matching packet 4 s later: the gap is now 4 s, so the TTL becomes 12 s.
    lab.idle(4);
    let mut one = syn_flood(VICTIM);
    let s = one(&mut lab.rng).sample(lab.now, 1);
    lab.m.ingest(&s);
    let r = lab.m.rule(id).unwrap();
    assert!(r.last_gap_ns >= 3 * SEC, "{}", r.last_gap_ns);
    assert!(r.expired.is_none());
    assert_eq!(r.expires_at(5 * SEC, 3), Some(lab.now + 3 * r.last_gap_ns));
    lab.idle(10);
    assert!(lab.m.rule(id).unwrap().expired.is_none());
    lab.idle(3);
    assert!(lab.m.rule(id).unwrap().expired.is_some());
}

#[test]
fn pinned_rules_never_expire_and_deleted_ones_go_at_once() {
    let mut lab = Lab::new(DetectorConfig {
        min_ttl_ns: 2 * SEC,
        ..Default::default()
    });
    warm(&mut lab, &[VICTIM], 2_000, 10);
    attack_run(&mut lab, &mut syn_flood(VICTIM), 50_000, 3);
    let id = only_rule(&lab).id;
    lab.m.pin(id).unwrap();
    lab.idle(120);
    assert_eq!(only_rule(&lab).id, id);
    assert!(only_rule(&lab).pinned);
    lab.m.delete(id, lab.now).unwrap();
    lab.poll();
    assert!(lab.m.rules().is_empty() && lab.kernel.is_empty());
    assert_eq!(
        lab.m.rule(id).unwrap().expired.as_ref().unwrap().reason,
        ExpiryReason::Deleted
    );
    assert!(matches!(lab.m.pin(id), Err(DetectorError::Expired { .. })));
    assert!(matches!(
        lab.m.pin(7),
        Err(DetectorError::UnknownRule { id: 7 })
    ));
}

#[test]
fn the_ladder_promotes_log_to_rate_limit_to_drop_while_matching_continues() {
    let rl = Action::RateLimit {
        packets_per_second: 100,
        burst: 100,
    };
    let mut lab = Lab::new(DetectorConfig {
        ladder: vec![
            Rung::new(Action::Log, Some(2 * SEC)),
            Rung::new(rl, Some(2 * SEC)),
            Rung::new(Action::Drop, None),
        ],
        start_rung: 0,
        ..test_cfg()
    });
    warm(&mut lab, &[VICTIM], 2_000, 10);
    let mut atk = syn_flood(VICTIM);
    attack_run(&mut lab, &mut atk, 50_000, 2);
    assert_eq!(only_rule(&lab).action, Action::Log);
    assert_eq!(lab.kernel.last().unwrap().action, Action::Log);
    // Two seconds of matching on a rung promote it (checked at tick ends).
    attack_run(&mut lab, &mut atk, 50_000, 2);
    assert_eq!(only_rule(&lab).action, rl);
    assert_eq!(lab.kernel.last().unwrap().action, rl);
    attack_run(&mut lab, &mut atk, 50_000, 2);
    let r = only_rule(&lab);
    assert_eq!(r.action, Action::Drop);
    let steps: Vec<Action> = r.actions.iter().map(|a| a.1).collect();
    assert_eq!(steps, vec![Action::Log, rl, Action::Drop]);
    // One load per change: creation and two promotions.
    assert_eq!(lab.loads, 3);
    assert_eq!(lab.kernel.last().unwrap().action, Action::Drop);
    // A log-rung rule does not drop, yet the detector did not make a second rule for the
    // traffic it was watching.
    assert_eq!(lab.m.history().count(), 0);
}

#[test]
fn the_manager_loads_only_on_change_with_operator_entries_first() {
    let mut op1 = RuleSpec::new(1001, Action::Drop);
    op1.proto = rampart_rules::xdp::one(47);
    let mut op2 = RuleSpec::new(1002, Action::Pass);
    op2.src = Some(vec!["192.0.2.0/24".parse().unwrap()]);
    let operator = vec![op1, op2];
    let mut lab = Lab::with_operator(test_cfg(), operator.clone());
    warm(&mut lab, &[VICTIM], 2_000, 10);
    assert_eq!(lab.loads, 0, "nothing generated, nothing loaded");
    assert!(lab.tables.rules.is_none());
    attack_run(&mut lab, &mut syn_flood(VICTIM), 50_000, 5);
    assert_eq!(
        lab.loads, 1,
        "one load for the one new rule, none while it just matches"
    );
    let entries = lab.m.entries();
    assert_eq!(
        &entries[..2],
        &operator[..],
        "operator entries first, unchanged"
    );
    let loaded = lab.tables.rules.as_ref().unwrap();
    let ids: Vec<u32> = loaded.metas.iter().map(|m| m.rule_id).collect();
    assert_eq!(ids, vec![1001, 1002, only_rule(&lab).id]);
    assert!(only_rule(&lab).id >= 0x4000_0000);
    // Nothing changes: no load.
    assert!(lab.m.poll(lab.now, &mut lab.tables).unwrap().is_none());
    // The operator's entries change: reload, generated rules kept after them.
    lab.m.set_operator_rules(operator[..1].to_vec()).unwrap();
    lab.poll();
    assert_eq!(lab.loads, 2);
    let ids: Vec<u32> = lab
        .tables
        .rules
        .as_ref()
        .unwrap()
        .metas
        .iter()
        .map(|m| m.rule_id)
        .collect();
    assert_eq!(ids, vec![1001, only_rule(&lab).id]);
    // Operator ids may not use the generated range.
    let bad = vec![RuleSpec::new(0x4000_0001, Action::Drop)];
    assert!(matches!(
        lab.m.set_operator_rules(bad),
        Err(DetectorError::ReservedId { .. })
    ));
}

#[test]
fn generated_rules_respect_the_cap() {
    let mut lab = Lab::new(DetectorConfig {
        max_rules: 1,
        ..test_cfg()
    });
    warm(&mut lab, &[VICTIM], 2_000, 10);
    let mut legit = legit_to(VICTIM);
    let (mut syn, mut ntp) = (syn_flood(VICTIM), ntp_reflection(VICTIM));
    for _ in 0..3 {
        lab.second(
            &mut [
                (&mut legit, 2_000, false),
                (&mut syn, 60_000, true),
                (&mut ntp, 50_000, true),
            ],
            10,
        );
    }
    assert_eq!(lab.m.rules().len(), 1);
    assert!(lab.m.stats().refused >= 1);
}

#[test]
fn lattice_slots_are_bounded() {
    let mut lab = Lab::new(DetectorConfig {
        max_attacks: 1,
        ..test_cfg()
    });
    let other = [192, 0, 2, 10];
    warm(&mut lab, &[VICTIM, other], 1_000, 10);
    let (mut a, mut b) = (legit_to(VICTIM), legit_to(other));
    let (mut syn, mut ntp) = (syn_flood(VICTIM), ntp_reflection(other));
    for _ in 0..3 {
        lab.second(
            &mut [
                (&mut a, 1_000, false),
                (&mut b, 1_000, false),
                (&mut syn, 60_000, true),
                (&mut ntp, 60_000, true),
            ],
            10,
        );
        assert!(lab.m.footprint().lattices <= 1);
    }
    // The first suspect got the only lattice; the others were refused and counted.
    assert_eq!(lab.m.rules().len(), 1, "{:#?}", expressions(&lab));
    assert!(lab.m.stats().detector.attack_slots_full >= 1);
}

#[test]
fn promote_text_loads_as_a_rule_file_entry() {
    let mut lab = Lab::new(test_cfg());
    warm(&mut lab, &[VICTIM], 2_000, 10);
    attack_run(&mut lab, &mut dns_flood(VICTIM), 60_000, 3);
    let r = only_rule(&lab).clone();
    let text = lab.m.promote(r.id, 9001).unwrap();
    assert!(text.starts_with("- id: 9001\n"), "{text}");
    assert!(text.contains("action: drop"), "{text}");
    let file = format!("version: 1\nrules:\n{text}");
    let set = rampart_rules::load_str(&file, "promoted.yaml", Path::new("."))
        .unwrap_or_else(|e| panic!("{e}\n{file}"));
    assert_eq!(
        set.xdp_entries,
        vec![r.fingerprint.to_spec(9001, Action::Drop)]
    );
    assert!(matches!(
        lab.m.promote(r.id, 0x4000_0000),
        Err(DetectorError::ReservedId { .. })
    ));
    // Every ladder action prints as a loadable entry too.
    for action in [
        Action::Log,
        Action::RateLimit {
            packets_per_second: 10,
            burst: 20,
        },
    ] {
        let mut g = r.clone();
        g.action = action;
        let file = format!("version: 1\nrules:\n{}", g.to_rule_entry(9002));
        let set = rampart_rules::load_str(&file, "p.yaml", Path::new(".")).unwrap();
        assert_eq!(set.xdp_entries, vec![r.fingerprint.to_spec(9002, action)]);
    }
}

#[test]
fn matched_frames_export_as_pcap() {
    let mut lab = Lab::new(test_cfg());
    warm(&mut lab, &[VICTIM], 2_000, 10);
    attack_run(&mut lab, &mut syn_flood(VICTIM), 50_000, 3);
    let r = only_rule(&lab);
    assert_eq!(r.frames.len(), 64);
    let mut buf = Vec::new();
    lab.m.write_pcap(r.id, &mut buf).unwrap();
    let mut rd = pcap_file::pcap::PcapReader::new(&buf[..]).unwrap();
    let mut n = 0;
    while let Some(p) = rd.next_packet() {
        let p = p.unwrap();
        let f = &r.frames[n];
        assert_eq!(&p.data[..], &f.head[..]);
        assert_eq!(p.orig_len, f.wire_len);
        let s = super::Sample {
            ts_ns: 0,
            wire_len: p.orig_len,
            sample_every: 1,
            dropped: false,
            rule_id: None,
            parsed: rampart_rules::packet::parse_frame(&p.data).0,
            head: p.data.to_vec(),
        };
        assert!(r.fingerprint.matches(&Features::extract(&s).unwrap()));
        n += 1;
    }
    assert_eq!(n, 64);
    assert!(matches!(
        lab.m.write_pcap(1, Vec::new()),
        Err(DetectorError::UnknownRule { id: 1 })
    ));
}

/// A sample built from parse fields directly (no frame): cheap enough for a million.
fn raw_syn(ts: u64, src: u32, dst: [u8; 4], sport: u16) -> Sample {
    let mut p = ParsedFields {
        src: rampart_common::addr::v4_mapped(src.to_be_bytes()),
        dst: rampart_common::addr::v4_mapped(dst),
        ip_version: 4,
        proto: 6,
        ttl: (src % 200) as u8 + 30,
        tcp_flags: 0x02,
        sport,
        dport: 80,
        ip_len: 40,
        l3_offset: 14,
        l4_offset: 34,
        payload_offset: 54,
        ethertype: 0x0800,
        ..Default::default()
    };
    p.flags = PF_IP | PF_HAS_L4;
    Sample {
        ts_ns: ts,
        wire_len: 60,
        sample_every: 16,
        dropped: false,
        rule_id: None,
        parsed: p,
        head: Vec::new(),
    }
}

#[test]
fn memory_stays_bounded_under_a_million_spoofed_sources() {
    let cfg = DetectorConfig {
        max_victims: 1024,
        max_prefix_victims: 256,
        ..test_cfg()
    };
    let mut lab = Lab::new(cfg);
    warm(&mut lab, &[VICTIM], 2_000, 10);
    let mut rng = Rng::new(11);
    let n = 1_000_000u64;
    let start = lab.now;
    for i in 0..n {
        let ts = start + i * (20 * SEC) / n;
        let src = rng.next_u64() as u32;
        // Half to the victim, half to random destinations across 10.0.0.0/8.
        let dst = if i % 2 == 0 {
            VICTIM
        } else {
            let d = (rng.next_u64() as u32).to_be_bytes();
            [10, d[1], d[2], d[3]]
        };
        let mut s = raw_syn(ts, src, dst, rng.below(65_536) as u16);
        let v = evaluate(&lab.kernel, &s.parsed, &s.head, |_, _| false);
        s.dropped = v.drop;
        s.rule_id = v.rule_id;
        lab.m.ingest(&s);
        if i % 100_000 == 0 {
            let f = lab.m.footprint();
            assert!(f.victims <= f.victim_capacity, "{f:?}");
            assert!(f.prefix_victims <= f.prefix_victim_capacity, "{f:?}");
            assert!(f.sketch_counters <= f.sketch_capacity, "{f:?}");
            assert!(f.baseline_samples <= f.baseline_capacity, "{f:?}");
            assert!(f.coverage_samples <= f.coverage_capacity, "{f:?}");
            assert!(f.lattices <= f.lattice_capacity, "{f:?}");
        }
        if ts >= lab.now + SEC {
            lab.now += SEC;
            lab.poll();
        }
    }
    let f = lab.m.footprint();
    assert!(f.victims <= 1024 && f.prefix_victims <= 256, "{f:?}");
    assert!(f.frames <= 64 * (f.rules + 256));
    assert!(lab.m.stats().detector.victims_evicted > 0);
    // The flood to the victim was still fingerprinted, without the source.
    let to_victim: Vec<&GeneratedRule> = lab
        .m
        .rules()
        .iter()
        .filter(|r| r.fingerprint.dst() == v4(VICTIM))
        .collect();
    assert_eq!(to_victim.len(), 1, "{:#?}", expressions(&lab));
    assert_eq!(to_victim[0].fingerprint.src(), None);
    assert_eq!(to_victim[0].fingerprint.dport(), Some(80));
}

#[test]
fn non_ip_samples_are_counted_and_ignored() {
    let mut m = Manager::new(test_cfg(), Vec::new()).unwrap();
    let s = Sample {
        ts_ns: 1,
        wire_len: 60,
        sample_every: 1,
        dropped: false,
        rule_id: None,
        parsed: ParsedFields::default(),
        head: vec![0; 60],
    };
    m.ingest(&s);
    assert_eq!(m.stats().detector.non_ip, 1);
    assert!(m.victims().is_empty());
}
