//! The detector end to end in namespaces: legitimate traffic throughout, then a spoofed SYN flood.
//! A rule must appear by itself, drop the flood in XDP, cost the legitimate traffic nothing, and
//! expire after the attack ends. Traffic is bounded in count and time; time to mitigate is printed.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rampart::detection_loop::{DetectionLoop, LoopConfig};
use rampart::kernel::{monotonic_ns, AttachMode};
use rampart_lab::attacks::{spawn_attack, AttackKind, AttackPlan, Background};
use rampart_lab::frames::Ipv4Prefix;
use rampart_lab::netns::{veth, End, Netns};
use rampart_lab::traffic::Receiver;
use rampart_testkit::{fresh_dataplane, root_or_skip};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn a_syn_flood_is_fingerprinted_dropped_and_the_rule_expires() {
    if !root_or_skip("a_syn_flood_is_fingerprinted_dropped_and_the_rule_expires") {
        return;
    }
    let tag = std::process::id();
    let attacker = Netns::create(&format!("rd-att-{tag}")).unwrap();
    let client = Netns::create(&format!("rd-cli-{tag}")).unwrap();
    let edge = Netns::create(&format!("rd-edge-{tag}")).unwrap();
    veth(
        End {
            ns: &attacker,
            ifname: "a0",
            addr: "10.219.0.2/24",
        },
        End {
            ns: &edge,
            ifname: "ea0",
            addr: "10.219.0.1/24",
        },
    )
    .unwrap();
    veth(
        End {
            ns: &client,
            ifname: "c0",
            addr: "10.219.1.2/24",
        },
        End {
            ns: &edge,
            ifname: "ec0",
            addr: "10.219.1.1/24",
        },
    )
    .unwrap();
    let mut dp = fresh_dataplane();
    for iface in ["ea0", "ec0"] {
        edge.enter(|| dp.attach(iface, AttachMode::Native, None))
            .unwrap()
            .unwrap();
    }
    let mut cfg = LoopConfig {
        sample_budget: 5_000,
        ..LoopConfig::default()
    };
    cfg.detector.floor_pps = 2_000.0;
    cfg.detector.min_ttl_ns = 2_000_000_000;
    let mut det = DetectionLoop::start(&mut dp, cfg, Vec::new()).unwrap();

    // Legitimate UDP to the edge for the whole test: 400 pps for ~12 s.
    const LEGIT: u32 = 4_800;
    let legit_rx =
        Receiver::start(&edge, sa("10.219.1.1:8080"), LEGIT, Duration::from_secs(30)).unwrap();
    let legit = Background::start(
        &client,
        sa("10.219.1.2:40000"),
        sa("10.219.1.1:8080"),
        LEGIT,
        400,
        200,
    )
    .unwrap();
    let run_for = |det: &mut DetectionLoop, dp: &mut rampart::kernel::Dataplane, d: Duration| {
        let t = Instant::now();
        while t.elapsed() < d {
            det.pass(dp, Duration::from_millis(20)).unwrap();
        }
    };
    // A calm baseline first.
    run_for(&mut det, &mut dp, Duration::from_secs(3));
    assert!(
        det.manager.rules().is_empty(),
        "no rule for legitimate traffic: {:?}",
        det.manager
            .rules()
            .iter()
            .map(|r| r.expression())
            .collect::<Vec<_>>()
    );

    let mut plan = AttackPlan::new(
        AttackKind::SynFlood,
        Ipv4Prefix::new(Ipv4Addr::new(198, 18, 0, 0), 15).unwrap(),
        Ipv4Addr::new(10, 219, 0, 1),
    );
    plan.packets = 100_000;
    plan.rate_pps = 25_000;
    let attack = spawn_attack(&attacker, "a0", &plan).unwrap();
    let mut first_rule: Option<(u32, u64)> = None;
    let mut first_drop_ns: Option<u64> = None;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20)
        && (first_drop_ns.is_none() || !attack_done(&attack))
    {
        det.pass(&mut dp, Duration::from_millis(20)).unwrap();
        if first_rule.is_none() {
            first_rule = det.manager.rules().first().map(|r| (r.id, r.created.at_ns));
        }
        if let (Some((id, _)), None) = (first_rule, first_drop_ns) {
            if dp
                .counters()
                .unwrap()
                .rule(id)
                .is_some_and(|c| c.dropped.packets > 0)
            {
                first_drop_ns = Some(monotonic_ns().unwrap());
            }
        }
    }
    let report = attack.finish().unwrap();
    let (id, created_ns) = first_rule.expect("a rule was generated for the SYN flood");
    let rule = det.manager.rule(id).unwrap().clone();
    let expr = rule.expression();
    assert!(
        expr.contains("10.219.0.1") && (expr.contains("tcp.flags") || expr.contains("syn")),
        "fingerprint: {expr}"
    );
    assert!(
        !expr.contains("ip.src"),
        "spoofed sources must not be in the fingerprint: {expr}"
    );
    assert!(
        rule.created.coverage >= 0.95,
        "coverage {}",
        rule.created.coverage
    );
    assert!(
        rule.created.collateral <= 0.001,
        "collateral {}",
        rule.created.collateral
    );
    let dropped = dp
        .counters()
        .unwrap()
        .rule(id)
        .map_or(0, |c| c.dropped.packets);

    // The flood stops: the rule expires within its TTL (2 s floor) and some slack.
    let t = Instant::now();
    while det.manager.rule(id).is_some_and(|r| r.expired.is_none())
        && t.elapsed() < Duration::from_secs(15)
    {
        det.pass(&mut dp, Duration::from_millis(50)).unwrap();
    }
    let expired = det.manager.rule(id).and_then(|r| r.expired.clone());
    let sent_legit = legit.finish().unwrap();
    let got_legit = legit_rx.finish().unwrap();
    let first_frame = report.first_frame_ns.unwrap_or(0);
    let ttm_ms = first_drop_ns.map(|d| d.saturating_sub(first_frame) as f64 / 1e6);
    println!(
        "detector: fingerprint `{expr}` (coverage {:.3}, collateral {:.4}); rule after {:.0} ms, first drop after {:?} ms; \
         {dropped} of {} attack frames dropped by it; legitimate {got_legit}/{sent_legit} delivered; expired: {expired:?}",
        rule.created.coverage,
        rule.created.collateral,
        created_ns.saturating_sub(first_frame) as f64 / 1e6,
        ttm_ms,
        report.frames
    );
    assert!(
        first_drop_ns.is_some(),
        "the generated rule never dropped a packet"
    );
    assert!(
        dropped as f64 >= 0.5 * report.frames as f64,
        "the rule dropped {dropped} of {}",
        report.frames
    );
    assert_eq!(got_legit, sent_legit, "legitimate traffic was lost");
    assert!(
        expired.is_some(),
        "the rule did not expire after the attack ended"
    );
}

fn attack_done(h: &rampart_lab::attacks::AttackHandle) -> bool {
    h.is_finished()
}
