//! Host-side costs: compiling the 1,000-rule set into kernel tables, the entry-level evaluator,
//! and the language-level evaluator (`rules test`, the kernel's oracle) over a 1,000-rule file.
//! Each iteration checks its result, so a bench never measures nothing.

use std::fmt::Write as _;

use criterion::{criterion_group, criterion_main, Criterion};
use rampart::rulesets::decide;
use rampart_benches::{rule_drop_frame, rule_set, LAST_RULE_ID, LAST_RULE_PORT};
use rampart_common::parsed::{ParsedFields, PF_HAS_L4, PF_IP};
use rampart_rules::{
    packet::{parse_frame, PacketView},
    xdp::{compile, evaluate},
};

/// A 1,000-rule file whose last rule drops UDP to `LAST_RULE_PORT`.
fn rule_file() -> rampart_rules::RuleSet {
    let mut f = String::from("version: 1\nrules:\n");
    for i in 0..999u32 {
        let expr = match i % 4 {
            0 => format!("udp.dstport eq {}", 20_000 + i),
            1 => format!("tcp.dstport eq 22 and ip.src in {{100.{}.{}.0/24}}", 64 + i / 256, i % 256),
            2 => format!("udp.srcport eq {} and ip.ttl le 5", 30_000 + i),
            _ => format!("tcp.flags.syn and not tcp.flags.ack and ip.len ge 1200 and ip.dst in {{198.18.{}.0/24}}", i % 256),
        };
        let _ = writeln!(
            f,
            "  - id: {}\n    expression: {expr}\n    action: drop",
            1_000 + i
        );
    }
    let _ = writeln!(
        f,
        "  - id: {LAST_RULE_ID}\n    expression: udp.dstport eq {LAST_RULE_PORT}\n    action: drop"
    );
    rampart_rules::load_str(&f, "bench.yaml", std::path::Path::new(".")).expect("bench rules load")
}

fn benches(c: &mut Criterion) {
    let rules = rule_set(1_000);
    c.bench_function("compile 1000 rules", |b| {
        b.iter(|| {
            let t = compile(&rules).expect("compiles");
            assert_eq!(t.rule_count(), 1_000);
            t
        })
    });
    let mut p = ParsedFields {
        ip_version: 4,
        proto: 17,
        ttl: 64,
        sport: 40_000,
        dport: LAST_RULE_PORT,
        ip_len: 28,
        ..Default::default()
    };
    p.flags = PF_IP | PF_HAS_L4;
    p.src = rampart_common::addr::v4_mapped([192, 0, 2, 7]);
    p.dst = rampart_common::addr::v4_mapped([198, 51, 100, 1]);
    c.bench_function("entry evaluator, 1000 rules, last rule hits", |b| {
        b.iter(|| {
            let v = evaluate(&rules, &p, &[], |_, _| true);
            assert_eq!(v.rule_id, Some(LAST_RULE_ID));
            v
        })
    });
    let set = rule_file();
    let frame = rule_drop_frame();
    c.bench_function(
        "language evaluator, 1000 rules, parse + last rule hits",
        |b| {
            b.iter(|| {
                let (parsed, err) = parse_frame(&frame);
                assert!(err.is_none());
                let d = decide(
                    &set,
                    &PacketView {
                        parsed: &parsed,
                        frame: &frame,
                    },
                );
                assert_eq!((d.drop, d.rule), (true, Some(LAST_RULE_ID)));
                d
            })
        },
    );
}

criterion_group!(rules, benches);
criterion_main!(rules);
