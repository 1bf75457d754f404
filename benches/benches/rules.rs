//! Host-side costs: compiling the 1,000-rule set into kernel tables, and the host evaluator's
//! verdict for one packet against it. Both check their result, so a bench never measures nothing.

use criterion::{criterion_group, criterion_main, Criterion};
use rampart_benches::{rule_set, LAST_RULE_ID, LAST_RULE_PORT};
use rampart_common::parsed::{ParsedFields, PF_HAS_L4, PF_IP};
use rampart_rules::xdp::{compile, evaluate};

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
    c.bench_function("host evaluate, 1000 rules, last rule hits", |b| {
        b.iter(|| {
            let v = evaluate(&rules, &p, &[], |_, _| true);
            assert_eq!(v.rule_id, Some(LAST_RULE_ID));
            v
        })
    });
}

criterion_group!(rules, benches);
criterion_main!(rules);
