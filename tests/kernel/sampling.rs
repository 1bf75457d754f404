//! Sampling to the ring buffer: 1-in-N per CPU, dropped packets tagged with verdict and rule, the
//! frame's first bytes copied, and a full ring counted (never waited on).

use std::collections::HashMap;

use rampart_common::{
    frag::NO_SLOT,
    sample::{SampleRecord, SAMPLE_BYTES, SAMPLE_DROP, SAMPLE_PASS},
    Reason,
};
use rampart_rules::load_str;
use rampart_testkit::{fresh_dataplane, packets::*, root_or_skip};

#[test]
fn samples_carry_verdict_rule_and_bytes_and_a_full_ring_is_counted() {
    if !root_or_skip("samples_carry_verdict_rule_and_bytes_and_a_full_ring_is_counted") {
        return;
    }
    let mut dp = fresh_dataplane();
    let set = load_str(
        "version: 1\nrules:\n  - id: 77\n    expression: udp.dstport eq 53\n    action: drop\n",
        "s.yaml",
        std::path::Path::new("."),
    )
    .unwrap();
    dp.load_rules(&set.xdp).unwrap();
    let mut sampler = dp.sampler().unwrap();
    let mut out: Vec<SampleRecord> = Vec::new();

    // 1 in 1: every packet, tagged.
    dp.set_sample_every(1).unwrap();
    let dropped = udp4("192.0.2.7", "198.51.100.1", 1000, 53, &[7u8; 300]);
    let passed = tcp4("192.0.2.8", "198.51.100.1", 1000, 80, true, b"");
    for _ in 0..50 {
        assert_eq!(dp.test_run(&dropped, 1).unwrap().0, 1);
        assert_eq!(dp.test_run(&passed, 1).unwrap().0, 2);
    }
    sampler.drain(10_000, &mut out);
    assert_eq!(out.len(), 100);
    let slots: HashMap<u32, usize> = out.iter().fold(HashMap::new(), |mut m, r| {
        *m.entry(r.rule_slot).or_default() += 1;
        m
    });
    assert_eq!(slots.get(&NO_SLOT), Some(&50));
    for r in &out {
        let frame = if r.verdict == SAMPLE_DROP {
            &dropped
        } else {
            &passed
        };
        assert_eq!(r.wire_len as usize, frame.len());
        assert_eq!(r.sample_every, 1);
        let cap = frame.len().min(SAMPLE_BYTES);
        assert_eq!(r.cap_len as usize, cap);
        assert_eq!(&r.data[..cap], &frame[..cap]);
        if r.verdict == SAMPLE_DROP {
            assert_eq!(r.reason, Reason::DropRule as u8);
            assert_ne!(r.rule_slot, NO_SLOT);
        } else {
            assert_eq!(
                (r.verdict, r.reason),
                (SAMPLE_PASS, Reason::PassNoMatch as u8)
            );
        }
        assert!(r.ts_ns > 0);
    }

    // 1 in 4: about a quarter (binomial, 4000 packets: mean 1000, sd ~27).
    out.clear();
    dp.set_sample_every(4).unwrap();
    let before = dp.counters().unwrap();
    for _ in 0..40 {
        dp.test_run(&passed, 100).unwrap();
    }
    sampler.drain(100_000, &mut out);
    let sampled = before
        .delta(&dp.counters().unwrap())
        .reason(Reason::EvSampled)
        .packets;
    assert_eq!(out.len() as u64, sampled);
    assert!(
        (850..1150).contains(&out.len()),
        "{} samples of 4000 at 1 in 4",
        out.len()
    );
    assert!(out.iter().all(|r| r.sample_every == 4));

    // A ring nobody drains fills up; further samples are counted as dropped.
    dp.set_sample_every(1).unwrap();
    let before = dp.counters().unwrap();
    dp.test_run(&passed, 100_000).unwrap();
    let d = before.delta(&dp.counters().unwrap());
    let (sent, lost) = (
        d.reason(Reason::EvSampled).packets,
        d.reason(Reason::EvSampleDropped).packets,
    );
    assert_eq!(sent + lost, 100_000);
    assert!(lost > 0 && sent > 10_000, "sent {sent}, lost {lost}");
    assert_eq!(
        d.reason(Reason::PassNoMatch).packets,
        100_000,
        "a full ring never changes the verdict"
    );
    out.clear();
    assert_eq!(sampler.drain(usize::MAX, &mut out) as u64, sent);
    println!("sampling: 1-in-1 exact, full ring: {sent} sent, {lost} counted as dropped");
}
