//! The kernel fixture table: cases that seed the maps (rules, allow/deny, policies) and frames
//! with the XDP action and the exact reason and rule counter deltas each must give. The kernel
//! fixtures test (`tests/kernel/kernel_fixtures.rs`) checks them; `xdp-bench --fixtures` times
//! the same frames (as Katran's fixtures feed its tests and perf runs).

use std::time::Duration;

use rampart::kernel::Dataplane;
use rampart_common::{
    config::{POLICY_DROP, POLICY_PASS},
    Reason,
    Reason::*,
};
use rampart_rules::{
    xdp::{compile, flags, one, range, Action, PayloadBase, PayloadMatch, RuleSpec},
    Prefix,
};

use crate::packets::*;

pub const PASS: u32 = 2;
pub const DROP: u32 = 1;

pub struct Step {
    pub frame: Vec<u8>,
    pub action: u32,
    /// Reasons counted for this frame (a reason may repeat).
    pub reasons: Vec<Reason>,
    /// (rule id, matched, dropped) deltas; every other rule must not move.
    pub rules: Vec<(u32, u64, u64)>,
}

pub fn step(frame: Vec<u8>, action: u32, reasons: &[Reason]) -> Step {
    Step {
        frame,
        action,
        reasons: reasons.to_vec(),
        rules: Vec::new(),
    }
}

pub fn hit(frame: Vec<u8>, action: u32, reasons: &[Reason], rule: u32) -> Step {
    let dropped = (action == DROP) as u64;
    Step {
        frame,
        action,
        reasons: reasons.to_vec(),
        rules: vec![(rule, 1, dropped)],
    }
}

#[derive(Default)]
pub struct Case {
    pub name: &'static str,
    pub rules: Vec<RuleSpec>,
    pub deny: Vec<(&'static str, Option<Duration>)>,
    pub allow: Vec<&'static str>,
    pub error_drop: bool,
    pub frag_drop: bool,
    pub steps: Vec<Step>,
}

pub fn rule(id: u32, action: Action, f: impl FnOnce(&mut RuleSpec)) -> RuleSpec {
    let mut r = RuleSpec::new(id, action);
    f(&mut r);
    r
}

pub fn pfx(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn udp53_drop(id: u32) -> RuleSpec {
    rule(id, Action::Drop, |r| {
        r.proto = one(17);
        r.dport = range(53, 53);
    })
}

pub const C: &str = "192.0.2.7";
pub const S: &str = "198.51.100.1";
pub const C6: &str = "2001:db8::7";
pub const S6: &str = "2001:db8:1::1";

fn v4frag(id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let h = V4 {
        id,
        frag,
        ..V4::new(C, S, 17)
    };
    eth(ETH_IPV4, &ipv4(&h, payload))
}

pub const MF: u16 = 0x2000;

/// Every fixture case, in order.
pub fn cases() -> Vec<Case> {
    let udp = |dport| udp4(C, S, 1000, dport, b"payload");
    let mut v = vec![
        Case {
            name: "every protocol passes with no rules",
            steps: vec![
                step(udp(53), PASS, &[PassNoMatch]),
                step(tcp4(C, S, 1000, 80, true, b""), PASS, &[PassNoMatch]),
                step(icmp4_echo(C, S), PASS, &[PassNoMatch]),
                step(udp6(C6, S6, 1000, 53, b"x"), PASS, &[PassNoMatch]),
                step(tcp6(C6, S6, 1000, 443), PASS, &[PassNoMatch]),
                step(icmp6_echo(C6, S6), PASS, &[PassNoMatch]),
                step(eth(0x0806, &[0u8; 28]), PASS, &[PassNotIp]),
            ],
            ..Default::default()
        },
        Case {
            name: "other IP protocol matched by protocol",
            rules: vec![rule(1, Action::Drop, |r| r.proto = one(47))],
            steps: vec![
                hit(
                    eth(ETH_IPV4, &ipv4(&V4::new(C, S, 47), &[0u8; 8])),
                    DROP,
                    &[DropRule],
                    1,
                ),
                step(udp(53), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
    ];
    // Truncated and malformed headers at every layer (fail-open: counted, then passed).
    let mut bad_ihl = ipv4(&V4::new(C, S, 17), &udp_hdr(1, 2, b""));
    bad_ihl[0] = 0x44;
    let mut bad_version = ipv4(&V4::new(C, S, 17), &udp_hdr(1, 2, b""));
    bad_version[0] = 0x65;
    let mut short_total = ipv4(&V4::new(C, S, 17), &udp_hdr(1, 2, b""));
    short_total[2..4].copy_from_slice(&10u16.to_be_bytes());
    let mut opts_cut = ipv4(&V4::new(C, S, 17), &[]);
    opts_cut[0] = 0x4f; // a 60-byte header (total length says so too) in a 20-byte frame
    opts_cut[2..4].copy_from_slice(&60u16.to_be_bytes());
    let mut too_many_ext = udp_hdr(1, 53, b"");
    for _ in 0..7 {
        too_many_ext = ext8(if too_many_ext.len() == 8 { 17 } else { 60 }, &too_many_ext);
    }
    let three_tags = {
        let mut t = vec![0, 1, 0x81, 0x00, 0, 2, 0x81, 0x00, 0, 3, 0x08, 0x00];
        t.extend(ipv4(&V4::new(C, S, 17), &udp_hdr(1, 2, b"")));
        eth(0x88a8, &t)
    };
    let tcp = |t: Vec<u8>| eth(ETH_IPV4, &ipv4(&V4::new(C, S, 6), &t));
    let tiny_first = eth(
        ETH_IPV4,
        &ipv4(
            &V4 {
                frag: MF,
                ..V4::new(C, S, 6)
            },
            &[0u8; 8],
        ),
    );
    v.push(Case {
        name: "malformed and truncated headers are counted by name",
        steps: vec![
            step(eth(ETH_IPV4, &[]), PASS, &[ErrTruncIpv4, PassErrorPolicy]),
            step(eth(0x8100, &[0, 5]), PASS, &[ErrTruncVlan, PassErrorPolicy]),
            step(three_tags, PASS, &[ErrTooManyVlans, PassErrorPolicy]),
            step(
                eth(ETH_IPV4, &bad_ihl),
                PASS,
                &[ErrBadIpv4Header, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV4, &bad_version),
                PASS,
                &[ErrBadIpv4Header, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV4, &short_total),
                PASS,
                &[ErrBadIpv4Header, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV4, &opts_cut),
                PASS,
                &[ErrTruncIpv4, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV6, &[0x60; 20]),
                PASS,
                &[ErrTruncIpv6, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV6, &ipv6(C6, S6, 0, &[])),
                PASS,
                &[ErrTruncIpv6Ext, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV6, &ipv6(C6, S6, 60, &too_many_ext)),
                PASS,
                &[ErrTooManyIpv6Ext, PassErrorPolicy],
            ),
            step(tcp(vec![0u8; 10]), PASS, &[ErrTruncTcp, PassErrorPolicy]),
            step(
                tcp(tcp_hdr(1, 80, 0x02, 4, b"")),
                PASS,
                &[ErrBadTcpHeader, PassErrorPolicy],
            ),
            step(
                tcp(tcp_hdr(1, 80, 0x02, 15, b"")[..20].to_vec()),
                PASS,
                &[ErrTruncTcp, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV4, &ipv4(&V4::new(C, S, 17), &[0u8; 5])),
                PASS,
                &[ErrTruncUdp, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV4, &ipv4(&V4::new(C, S, 1), &[8, 0, 0])),
                PASS,
                &[ErrTruncIcmp, PassErrorPolicy],
            ),
            step(tiny_first, PASS, &[ErrTinyFragment, PassErrorPolicy]),
        ],
        ..Default::default()
    });
    // The datagram's own length bounds every header: nothing is read out of Ethernet padding.
    let padded = |proto: u8, l4: &[u8]| {
        let mut ip = ipv4(&V4::new(C, S, proto), &l4[..3]);
        ip.extend_from_slice(&l4[3..]); // bytes past the total length: padding
        eth(ETH_IPV4, &ip)
    };
    let mut v6_short = ipv6(C6, S6, 17, &udp_hdr(1, 53, b""));
    v6_short[5] = 3; // payload length 3: the UDP header lies past the datagram
    let mut v6_ext_short = ipv6(C6, S6, 0, &ext8(17, &udp_hdr(1, 53, b"")));
    v6_ext_short[5] = 4;
    let mut v6_bad_version = ipv6(C6, S6, 17, &udp_hdr(1, 53, b""));
    v6_bad_version[0] = 0x40;
    v.push(Case {
        name: "headers past the ip length are not read from padding",
        steps: vec![
            step(
                padded(1, &[8, 0, 0, 0, 0, 0, 0, 0]),
                PASS,
                &[ErrTruncIcmp, PassErrorPolicy],
            ),
            step(
                padded(17, &udp_hdr(1, 53, b"")),
                PASS,
                &[ErrTruncUdp, PassErrorPolicy],
            ),
            step(
                padded(6, &tcp_hdr(1, 80, 2, 5, b"")),
                PASS,
                &[ErrTruncTcp, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV6, &v6_short),
                PASS,
                &[ErrTruncUdp, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV6, &v6_ext_short),
                PASS,
                &[ErrTruncIpv6Ext, PassErrorPolicy],
            ),
            step(
                eth(ETH_IPV6, &v6_bad_version),
                PASS,
                &[ErrBadIpv6Header, PassErrorPolicy],
            ),
        ],
        ..Default::default()
    });
    v.push(Case {
        name: "error policy drop",
        error_drop: true,
        steps: vec![step(
            tcp(vec![0u8; 10]),
            DROP,
            &[ErrTruncTcp, DropErrorPolicy],
        )],
        ..Default::default()
    });
    // VLANs: the innermost id is matched.
    v.push(Case {
        name: "vlan single and double tags",
        rules: vec![rule(10, Action::Drop, |r| r.vlan = one(100))],
        steps: vec![
            hit(vlan_udp4(&[100], C, S, 53), DROP, &[DropRule], 10),
            hit(vlan_udp4(&[7, 100], C, S, 53), DROP, &[DropRule], 10),
            step(vlan_udp4(&[100, 7], C, S, 53), PASS, &[PassNoMatch]),
            step(vlan_udp4(&[200], C, S, 53), PASS, &[PassNoMatch]),
            step(udp(53), PASS, &[PassNoMatch]),
        ],
        ..Default::default()
    });
    // IPv6 extension headers are walked to the transport header.
    let u = udp_hdr(1000, 53, b"q");
    let v6 = |next: u8, rest: Vec<u8>| eth(ETH_IPV6, &ipv6(C6, S6, next, &rest));
    v.push(Case {
        name: "ipv6 each extension header",
        rules: vec![udp53_drop(20)],
        steps: vec![
            hit(v6(0, ext8(17, &u)), DROP, &[DropRule], 20),
            hit(v6(43, ext8(17, &u)), DROP, &[DropRule], 20),
            hit(v6(60, ext8(17, &u)), DROP, &[DropRule], 20),
            hit(v6(51, ah(17, &u)), DROP, &[DropRule], 20),
            hit(v6(44, frag6(17, 0, false, 9, &u)), DROP, &[DropRule], 20),
            hit(
                v6(0, ext8(60, &ext8(43, &ext8(17, &u)))),
                DROP,
                &[DropRule],
                20,
            ),
            step(
                v6(0, ext8(17, &udp_hdr(1000, 54, b""))),
                PASS,
                &[PassNoMatch],
            ),
        ],
        ..Default::default()
    });
    // Fragments: the first fragment decides; later ones follow it, never read for ports.
    let first = |id, dport| v4frag(id, MF, &udp_hdr(1000, dport, &[0u8; 16]));
    v.push(Case {
        name: "ipv4 fragments first middle last",
        rules: vec![udp53_drop(30)],
        steps: vec![
            hit(first(0x0101, 53), DROP, &[DropRule], 30),
            hit(
                v4frag(0x0101, MF | 3, &[0u8; 24]),
                DROP,
                &[DropFragCached],
                30,
            ),
            hit(v4frag(0x0101, 6, &[0u8; 8]), DROP, &[DropFragCached], 30),
            step(first(0x0102, 80), PASS, &[PassNoMatch]),
            step(v4frag(0x0102, 3, &[0u8; 8]), PASS, &[PassFragCached]),
        ],
        ..Default::default()
    });
    v.push(Case {
        name: "ipv4 fragments out of order and overlapping",
        rules: vec![udp53_drop(31)],
        steps: vec![
            // A later fragment before its first: no verdict yet, so the policy (pass).
            step(v4frag(0x0201, 3, &[0u8; 8]), PASS, &[PassFragPolicy]),
            hit(first(0x0201, 53), DROP, &[DropRule], 31),
            hit(v4frag(0x0201, 3, &[0u8; 8]), DROP, &[DropFragCached], 31),
            // Offset 1 overlaps the UDP header; it still gets the datagram's verdict.
            hit(
                v4frag(0x0201, MF | 1, &udp_hdr(1000, 80, b"")),
                DROP,
                &[DropFragCached],
                31,
            ),
        ],
        ..Default::default()
    });
    v.push(Case {
        name: "fragment policy drop",
        frag_drop: true,
        steps: vec![step(v4frag(0x0301, 3, &[0u8; 8]), DROP, &[DropFragPolicy])],
        ..Default::default()
    });
    v.push(Case {
        name: "ipv6 fragments",
        rules: vec![udp53_drop(32)],
        steps: vec![
            hit(
                v6(44, frag6(17, 0, true, 0x77, &udp_hdr(1000, 53, &[0u8; 8]))),
                DROP,
                &[DropRule],
                32,
            ),
            hit(
                v6(44, frag6(17, 2, false, 0x77, &[0u8; 8])),
                DROP,
                &[DropFragCached],
                32,
            ),
            step(
                v6(44, frag6(17, 2, false, 0x78, &[0u8; 8])),
                PASS,
                &[PassFragPolicy],
            ),
        ],
        ..Default::default()
    });
    v.extend(field_cases());
    v.extend(action_and_list_cases());
    v
}

fn field_cases() -> Vec<Case> {
    let udp = |src: &str, sport, dport, payload: &[u8]| udp4(src, S, sport, dport, payload);
    let ttl = |t: u8| {
        eth(
            ETH_IPV4,
            &ipv4(
                &V4 {
                    ttl: t,
                    ..V4::new(C, S, 17)
                },
                &udp_hdr(1, 2, b""),
            ),
        )
    };
    let tcp_flags = |flags: u8| {
        eth(
            ETH_IPV4,
            &ipv4(&V4::new(C, S, 6), &tcp_hdr(1000, 80, flags, 5, b"")),
        )
    };
    let data = |p: &[u8]| tcp4(C, S, 1000, 80, false, p);
    vec![
        Case {
            name: "field: protocol",
            rules: vec![rule(40, Action::Drop, |r| r.proto = one(17))],
            steps: vec![
                hit(udp(C, 1, 2, b""), DROP, &[DropRule], 40),
                step(data(b""), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
        Case {
            name: "field: source prefix",
            rules: vec![rule(41, Action::Drop, |r| {
                r.src = Some(vec![pfx("192.0.2.0/24")])
            })],
            steps: vec![
                hit(udp(C, 1, 2, b""), DROP, &[DropRule], 41),
                step(udp("203.0.113.9", 1, 2, b""), PASS, &[PassNoMatch]),
                step(udp6(C6, S6, 1, 2, b""), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
        Case {
            name: "field: destination prefix v6",
            rules: vec![rule(42, Action::Drop, |r| {
                r.dst = Some(vec![pfx("2001:db8:1::/48")])
            })],
            steps: vec![
                hit(udp6(C6, "2001:db8:1::5", 1, 2, b""), DROP, &[DropRule], 42),
                step(udp6(C6, "2001:db8:2::5", 1, 2, b""), PASS, &[PassNoMatch]),
                step(udp(C, 1, 2, b""), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
        Case {
            name: "field: source port range (absent on icmp)",
            rules: vec![rule(43, Action::Drop, |r| r.sport = range(1000, 2000))],
            steps: vec![
                hit(udp(C, 1500, 2, b""), DROP, &[DropRule], 43),
                hit(udp(C, 2000, 2, b""), DROP, &[DropRule], 43),
                step(udp(C, 999, 2, b""), PASS, &[PassNoMatch]),
                step(icmp4_echo(C, S), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
        Case {
            name: "field: destination port",
            rules: vec![rule(44, Action::Drop, |r| r.dport = range(443, 443))],
            steps: vec![
                hit(tcp4(C, S, 1000, 443, true, b""), DROP, &[DropRule], 44),
                step(tcp4(C, S, 1000, 444, true, b""), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
        Case {
            name: "field: tcp flags syn without ack",
            rules: vec![rule(45, Action::Drop, |r| r.tcp_flags = flags(0x12, 0x02))],
            steps: vec![
                hit(tcp_flags(0x02), DROP, &[DropRule], 45),
                hit(tcp_flags(0x02 | 0x08), DROP, &[DropRule], 45),
                step(tcp_flags(0x12), PASS, &[PassNoMatch]),
                step(udp(C, 1, 2, b""), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
        Case {
            name: "field: ttl range",
            rules: vec![rule(46, Action::Drop, |r| r.ttl = range(1, 10))],
            steps: vec![
                hit(ttl(5), DROP, &[DropRule], 46),
                step(ttl(64), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
        Case {
            name: "field: ip length",
            rules: vec![rule(47, Action::Drop, |r| r.ip_len = range(401, 65535))],
            steps: vec![
                hit(udp(C, 1, 2, &[0u8; 500]), DROP, &[DropRule], 47),
                step(udp(C, 1, 2, &[0u8; 10]), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
        Case {
            name: "field: payload bytes after the l4 header",
            rules: vec![rule(48, Action::Drop, |r| {
                r.proto = one(6);
                r.payload = Some(PayloadMatch {
                    base: PayloadBase::Data,
                    offset: 0,
                    mask: vec![0xff; 4],
                    value: b"GET ".to_vec(),
                });
            })],
            steps: vec![
                hit(data(b"GET /index.html"), DROP, &[DropRule], 48),
                step(data(b"POST /"), PASS, &[PassNoMatch]),
                step(data(b"GE"), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
        Case {
            name: "field: masked bytes at an l4 offset",
            rules: vec![rule(49, Action::Drop, |r| {
                r.proto = one(17);
                // UDP destination port with the low byte masked: 0x3500..0x35ff.
                r.payload = Some(PayloadMatch {
                    base: PayloadBase::L4,
                    offset: 2,
                    mask: vec![0xff, 0],
                    value: vec![0x35, 0],
                });
            })],
            steps: vec![
                hit(udp(C, 1, 0x3512, b""), DROP, &[DropRule], 49),
                step(udp(C, 1, 0x3612, b""), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
    ]
}

fn action_and_list_cases() -> Vec<Case> {
    let udp = |src: &str, dport| udp4(src, S, 1000, dport, b"x");
    let log_rules: Vec<RuleSpec> = (60..69)
        .map(|id| rule(id, Action::Log, |r| r.proto = one(17)))
        .collect();
    let mut limit = log_rules.clone();
    limit.push(udp53_drop(69));
    let mut limit_steps_rules: Vec<(u32, u64, u64)> = (60..68).map(|id| (id, 1, 0)).collect();
    limit_steps_rules.push((68, 0, 0));
    let mut cand = vec![EvLogOnly; 8];
    cand.extend([EvCandidateLimit, PassNoMatch]);
    let rate = Action::RateLimit {
        packets_per_second: 1,
        burst: 3,
    };
    vec![
        Case {
            name: "pass rule before a drop rule",
            rules: vec![
                rule(50, Action::Pass, |r| r.dport = range(22, 22)),
                rule(51, Action::Drop, |r| r.proto = one(17)),
            ],
            steps: vec![
                hit(udp(C, 22), PASS, &[PassRule], 50),
                hit(udp(C, 23), DROP, &[DropRule], 51),
            ],
            ..Default::default()
        },
        Case {
            name: "log mode counts and continues",
            rules: vec![rule(52, Action::Log, |r| r.proto = one(17)), udp53_drop(53)],
            steps: vec![
                Step {
                    frame: udp(C, 53),
                    action: DROP,
                    reasons: vec![EvLogOnly, DropRule],
                    rules: vec![(52, 1, 0), (53, 1, 1)],
                },
                Step {
                    frame: udp(C, 54),
                    action: PASS,
                    reasons: vec![EvLogOnly, PassNoMatch],
                    rules: vec![(52, 1, 0)],
                },
            ],
            ..Default::default()
        },
        Case {
            name: "candidate limit stops the search",
            rules: limit,
            steps: vec![Step {
                frame: udp(C, 53),
                action: PASS,
                reasons: cand,
                rules: limit_steps_rules,
            }],
            ..Default::default()
        },
        Case {
            name: "rate limit crosses its bucket per source",
            rules: vec![rule(54, rate, |r| r.dport = range(9999, 9999))],
            steps: vec![
                hit(udp(C, 9999), PASS, &[PassRateLimit], 54),
                hit(udp(C, 9999), PASS, &[PassRateLimit], 54),
                hit(udp(C, 9999), PASS, &[PassRateLimit], 54),
                hit(udp(C, 9999), DROP, &[DropRateLimit], 54),
                hit(udp(C, 9999), DROP, &[DropRateLimit], 54),
                hit(udp("192.0.2.8", 9999), PASS, &[PassRateLimit], 54),
            ],
            ..Default::default()
        },
        Case {
            name: "denylist v4 and v6",
            deny: vec![("203.0.113.0/24", None), ("2001:db8:bad::/48", None)],
            steps: vec![
                step(udp("203.0.113.50", 1), DROP, &[DropDenylist]),
                step(
                    udp6("2001:db8:bad::1", S6, 1, 2, b""),
                    DROP,
                    &[DropDenylist],
                ),
                step(udp(C, 1), PASS, &[PassNoMatch]),
            ],
            ..Default::default()
        },
        Case {
            name: "allowlist beats denylist and rules",
            allow: vec!["192.0.2.0/24"],
            deny: vec![("192.0.2.7/32", None)],
            rules: vec![udp53_drop(55)],
            steps: vec![
                step(udp(C, 53), PASS, &[PassAllowlist]),
                hit(udp("203.0.113.1", 53), DROP, &[DropRule], 55),
            ],
            ..Default::default()
        },
        Case {
            name: "expired deny entry no longer drops",
            deny: vec![
                ("203.0.113.0/24", Some(Duration::from_nanos(1))),
                ("198.18.0.0/15", Some(Duration::from_secs(600))),
            ],
            steps: vec![
                step(udp("203.0.113.5", 1), PASS, &[PassNoMatch]),
                step(udp("198.18.1.1", 1), DROP, &[DropDenylist]),
            ],
            ..Default::default()
        },
    ]
}

/// Seeds the maps for `c`: its deny and allow prefixes, policies and rules (nothing of the case
/// before stays). Panics on a map error: a fixture that cannot be seeded is a broken harness.
pub fn seed(dp: &mut Dataplane, c: &Case) {
    for d in dp.deny_list().unwrap() {
        dp.undeny(d.prefix).unwrap();
    }
    for p in dp.allow_list().unwrap() {
        dp.unallow(p).unwrap();
    }
    for (p, ttl) in &c.deny {
        dp.deny(pfx(p), *ttl).unwrap();
    }
    for p in &c.allow {
        dp.allow(pfx(p)).unwrap();
    }
    dp.update_config(|cfg| {
        cfg.error_policy = if c.error_drop {
            POLICY_DROP
        } else {
            POLICY_PASS
        };
        cfg.frag_policy = if c.frag_drop {
            POLICY_DROP
        } else {
            POLICY_PASS
        };
    })
    .unwrap();
    dp.load_rules(&compile(&c.rules).unwrap()).unwrap();
}
