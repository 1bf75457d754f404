//! `rampart lab`: builds the lab, attaches the program, and runs three phases, every step bounded
//! in count and time:
//!
//! 1. **Operator rules**: hand-written rules, a denied source and bounded UDP traffic; the
//!    counters show what was dropped where.
//! 2. **Detector**: a fresh data plane with no operator rule and the detection loop; each attack
//!    kind in turn, legitimate traffic throughout, live progress once a second, and a table per
//!    attack (fingerprints, coverage, collateral, time to mitigate, expiry). Fragment floods are
//!    reported as they are: a generated rule cannot drop non-first fragments; the fragment policy
//!    can, and the lab shows it.
//! 3. **HTTP** ([`super::http`]): `rampart run` on an edge of its own, in front of two origins and
//!    workerd; legitimate clients, WAF payloads, a login brute force and a flood; the report
//!    shows what each layer did.
//!
//! Checks at the end; any failure makes the lab exit non-zero with the reasons. The namespaces
//! are deleted on every path (on drop), after the program is detached. SIGINT or SIGTERM stop
//! the lab at the next step (the current attack or second of traffic ends first) and clean up; a
//! second one aborts at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rampart_common::Reason;
use rampart_rules::xdp::{compile, one, range, Action, RuleSpec};

use super::attacks::AttackKind;
use super::http::{run_http_phase, HttpLabError, HttpPlan};
use super::netns::{add_addr, static_neighbor, Netns};
use super::scenario::{
    fragment_policy_demo, loop_config, run_scenario, spoofed_sources, FragPolicyResult, LabNet,
    Scenario, ScenarioError, ScenarioResult, LEGIT_STREAMS, VICTIM,
};
use super::traffic::{send_udp, Receiver};
use rampart::counters::Snapshot;
use rampart::detection_loop::{DetectionLoop, LoopError};
use rampart::kernel::{Dataplane, LoadOptions};

#[derive(Debug, thiserror::Error)]
pub enum LabRunError {
    #[error(transparent)]
    Lab(#[from] super::netns::LabError),
    #[error(transparent)]
    Kernel(#[from] rampart::kernel::KernelError),
    #[error("rules: {0}")]
    Rules(#[from] rampart_rules::xdp::CompileError),
    #[error(transparent)]
    Detect(#[from] LoopError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Http(#[from] HttpLabError),
    #[error("the lab did not behave: {0}")]
    Check(String),
    #[error("interrupted; the lab's namespaces were removed")]
    Interrupted,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(sig: libc::c_int) {
    // A second signal means "now": back to the default action, which ends the process.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: signal(2) and raise(3) are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

/// Makes SIGINT and SIGTERM set the flag [`interrupted`] reads, so the lab stops at its next
/// step and its drops clean up (the default action would leave namespaces and pins behind).
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches an atomic and calls async-signal-safe functions.
        unsafe { libc::signal(sig, on_interrupt as *const () as libc::sighandler_t) };
    }
}

/// Whether SIGINT or SIGTERM came since [`catch_interrupts`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// What the lab sends; every count is bounded.
#[derive(Clone, Copy, Debug)]
pub struct LabPlan {
    pub legit: u32,
    pub reflection: u32,
    pub denied: u32,
    pub flood: u32,
    /// Detector phase: frames of each attack and their rate.
    pub attack_packets: u32,
    pub attack_pps: u32,
    /// Detector phase: datagrams per second of each legitimate stream.
    pub legit_pps: u32,
    /// Frames of the fragment flood sent with `frag_policy = drop`.
    pub frag_policy_packets: u32,
    /// Run the HTTP phase only.
    pub http_only: bool,
    /// How long the HTTP phase's traffic runs.
    pub http_duration: Duration,
}

impl Default for LabPlan {
    fn default() -> Self {
        LabPlan {
            legit: 2_000,
            reflection: 5_000,
            denied: 1_000,
            flood: 3_000,
            attack_packets: 75_000,
            attack_pps: 25_000,
            legit_pps: 400,
            frag_policy_packets: 25_000,
            http_only: false,
            http_duration: Duration::from_secs(20),
        }
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("lab address literal")
}

/// The lab's rule set: what an operator facing these attacks would load.
fn lab_rules() -> Vec<RuleSpec> {
    let mut reflection = RuleSpec::new(100, Action::Drop);
    reflection.proto = one(17);
    reflection.sport = one(123);
    reflection.ip_len = range(401, 65_535);
    let mut limit = RuleSpec::new(
        101,
        Action::RateLimit {
            packets_per_second: 100,
            burst: 100,
        },
    );
    limit.proto = one(17);
    limit.dport = one(9_000);
    vec![reflection, limit]
}

pub fn run(plan: LabPlan) -> Result<(), LabRunError> {
    let started = Instant::now();
    let http = HttpPlan {
        duration: plan.http_duration,
        ..HttpPlan::default()
    };
    // The last phase needs workerd: say so before the first phase, not minutes later.
    if !http.workerd_bin.is_file() {
        return Err(HttpLabError::WorkerdMissing(http.workerd_bin).into());
    }
    catch_interrupts();
    let mut failed = Vec::new();
    if !plan.http_only {
        println!("lab: creating namespaces rampart-lab-{{client,attacker,edge}}");
        // Declared before any data plane: locals drop in reverse order, so on every path the
        // program is detached before the namespaces are deleted.
        let net = LabNet::create("rampart-lab")?;
        add_addr(&net.attacker, "a0", "10.214.2.66/24")?;
        static_neighbor(&net.edge, "ea0", "10.214.2.66", "02:00:00:00:00:66")?;
        failed.extend(operator_phase(&net, &plan)?);
        if !interrupted() {
            failed.extend(detector_phase(&net, &plan)?);
        }
        drop(net);
        println!("lab: detached; namespaces rampart-lab-* removed");
    }
    if !interrupted() {
        match http_phase(&http) {
            Ok(f) => failed.extend(f),
            Err(LabRunError::Http(HttpLabError::Interrupted)) => {}
            Err(e) => return Err(e),
        }
    }
    if interrupted() {
        return Err(LabRunError::Interrupted);
    }
    println!("lab: done in {:.0} s", started.elapsed().as_secs_f64());
    if !failed.is_empty() {
        return Err(LabRunError::Check(failed.join("; ")));
    }
    println!("lab: OK");
    Ok(())
}

/// Phase 1: hand-written rules. Returns the checks that failed.
fn operator_phase(net: &LabNet, plan: &LabPlan) -> Result<Vec<String>, LabRunError> {
    let (client, attacker, edge) = (&net.client, &net.attacker, &net.edge);
    println!("\nlab: phase 1: operator rules");
    let mut dp = Dataplane::load(&LoadOptions::default())?;
    let report = dp.load_rules(&compile(&lab_rules())?)?;
    dp.deny("10.214.2.66/32".parse().expect("prefix literal"), None)?;
    println!(
        "lab: loaded {} rules (generation {}), denied 10.214.2.66/32",
        report.rules, report.generation
    );
    for line in net.attach(&mut dp)? {
        println!("lab: {line}");
    }

    let before = dp.counters()?;
    let legit_rx = Receiver::start(
        edge,
        sa("10.214.1.1:8080"),
        plan.legit,
        Duration::from_secs(10),
    )?;
    let sink = |port: u16| {
        Receiver::start(
            edge,
            sa(&format!("10.214.2.1:{port}")),
            u32::MAX,
            Duration::from_secs(3),
        )
    };
    let (ntp_rx, flood_rx) = (sink(4444)?, sink(9000)?);
    let steps: [(&str, &Netns, &str, &str, u32, usize); 4] = [
        (
            "legitimate UDP to :8080",
            client,
            "10.214.1.2:40000",
            "10.214.1.1:8080",
            plan.legit,
            200,
        ),
        (
            "NTP-style reflection (sport 123, 468 B)",
            attacker,
            "10.214.2.2:123",
            "10.214.2.1:4444",
            plan.reflection,
            440,
        ),
        (
            "from a denied source",
            attacker,
            "10.214.2.66:40000",
            "10.214.2.1:4444",
            plan.denied,
            100,
        ),
        (
            "flood on :9000 (rate-limited per source)",
            attacker,
            "10.214.2.2:40001",
            "10.214.2.1:9000",
            plan.flood,
            64,
        ),
    ];
    for (what, ns, from, to, count, len) in steps {
        let sent = send_udp(ns, sa(from), sa(to), count, len)?;
        let now = before.delta(&dp.counters()?);
        println!(
            "lab: sent {sent:>6} {what:<42} dropped so far {:>6}",
            now.dropped()
        );
    }
    let legit = legit_rx.finish()?;
    let (ntp, flood) = (ntp_rx.finish()?, flood_rx.finish()?);
    let delta = before.delta(&dp.counters()?);

    println!("\nlab report (XDP counters, this run)\n{}", delta.render());
    println!(
        "delivered to sockets on the edge: legitimate {legit}/{}, reflection {ntp}, flood {flood}",
        plan.legit
    );
    let failed = operator_checks(plan, &delta, legit, ntp);
    if failed.is_empty() {
        println!(
            "lab: phase 1 OK: {} dropped in XDP, all {legit} legitimate datagrams delivered",
            delta.dropped()
        );
    }
    // Detaches from the edge's interfaces.
    drop(dp);
    Ok(failed)
}

/// Phase 1's checks on the XDP counters and the sockets: the ones that failed.
fn operator_checks(plan: &LabPlan, delta: &Snapshot, legit: u32, ntp: u32) -> Vec<String> {
    let checks = [
        (
            legit == plan.legit,
            format!("legitimate delivered {legit} of {}", plan.legit),
        ),
        (
            delta.reason(Reason::DropRule).packets == u64::from(plan.reflection),
            "every reflection packet dropped by rule 100".into(),
        ),
        (
            delta.reason(Reason::DropDenylist).packets == u64::from(plan.denied),
            "every packet from the denied source dropped".into(),
        ),
        (
            delta.reason(Reason::DropRateLimit).packets > 0,
            "the flood was rate-limited".into(),
        ),
        (ntp == 0, "no reflection packet reached a socket".into()),
    ];
    let failed: Vec<String> = checks
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, w)| format!("operator rules: {w}"))
        .collect();
    failed
}

/// Phase 2: the detector against every attack kind. Returns the checks that failed.
fn detector_phase(net: &LabNet, plan: &LabPlan) -> Result<Vec<String>, LabRunError> {
    println!(
        "\nlab: phase 2: the detector (a fresh data plane with no operator rule: every drop below \
         is a generated rule's or the fragment policy's)"
    );
    let mut dp = Dataplane::load(&LoadOptions::default())?;
    for line in net.attach(&mut dp)? {
        println!("lab: {line}");
    }
    let cfg = loop_config();
    println!(
        "lab: detector: floor {} pps, rules start at drop, minimum TTL {:.0} s, {} samples/s budget",
        cfg.detector.floor_pps,
        cfg.detector.min_ttl_ns as f64 / 1e9,
        cfg.sample_budget
    );
    let mut det = DetectionLoop::start(&mut dp, cfg, Vec::new())?;
    let streams: Vec<String> = LEGIT_STREAMS
        .iter()
        .map(|s| format!("{} ({}, {} B)", s.to, s.what, s.len))
        .collect();
    println!(
        "lab: legitimate UDP throughout, {} datagrams/s to each of {}",
        plan.legit_pps,
        streams.join(" and ")
    );
    println!(
        "lab: each attack: {} frames at {} frames/s from spoofed {} to {VICTIM} (carpet bomb: its /24)",
        plan.attack_packets,
        plan.attack_pps,
        spoofed_sources()
    );

    println!(
        "lab: progress once a second: the phase now, then the packets per second the XDP program \
         saw at the edge (both links) and dropped over the last second"
    );
    let mut results = Vec::new();
    let mut frag: Option<FragPolicyResult> = None;
    for (i, kind) in AttackKind::ALL.into_iter().enumerate() {
        if interrupted() {
            break;
        }
        let mut sc = Scenario::new(kind);
        sc.attack_packets = plan.attack_packets;
        sc.attack_pps = plan.attack_pps;
        sc.legit_pps = plan.legit_pps;
        sc.seed = 1 + i as u64;
        if i == 0 {
            // The first calm period also builds the victim's baseline.
            sc.calm = Duration::from_secs(3);
        }
        println!("\nlab: --- {kind} ---");
        let r = run_scenario(net, &mut dp, &mut det, &sc, |p| println!("  {p}"))?;
        for f in &r.fingerprints {
            println!("  fingerprint: {f}");
        }
        println!(
            "  {} attack frames ({:.0}/s); {} dropped by generated rules; legitimate {}/{} \
             delivered; longest loop pass {:.0} ms",
            r.attack.frames,
            r.attack.rate_pps(),
            r.attack_dropped,
            r.legit_delivered,
            r.legit_sent,
            r.longest_pass_ms
        );
        if kind == AttackKind::FragmentFlood {
            let f = frag_policy_again(net, &mut dp, &mut det, plan)?;
            frag = Some(f);
        }
        results.push(r);
    }
    drop(det);
    drop(dp);

    println!("\n{}", render_table(&results, frag.as_ref()));
    let failed = detector_checks(&results, frag.as_ref());
    if failed.is_empty() {
        println!(
            "lab: phase 2 OK: every attack but the fragment flood was fingerprinted and dropped by a \
             generated rule that then expired; the fragment policy dropped the fragment flood; no \
             legitimate datagram was lost"
        );
    }
    Ok(failed)
}

/// After the fragment flood's scenario: the same flood again under `frag_policy = drop`.
fn frag_policy_again(
    net: &LabNet,
    dp: &mut Dataplane,
    det: &mut DetectionLoop,
    plan: &LabPlan,
) -> Result<FragPolicyResult, LabRunError> {
    println!(
        "  the same flood again with frag_policy = drop ({} frames):",
        plan.frag_policy_packets
    );
    let f = fragment_policy_demo(net, dp, det, plan.frag_policy_packets, plan.attack_pps)?;
    println!(
        "  {} of {} fragments dropped by the fragment policy ({:.2}%); policy back to pass",
        f.dropped_by_policy,
        f.attack.frames,
        f.share() * 100.0
    );
    Ok(f)
}

/// Phase 3: the daemon end to end. Returns the checks that failed.
fn http_phase(plan: &HttpPlan) -> Result<Vec<String>, LabRunError> {
    println!(
        "\nlab: phase 3: HTTP: `rampart run` on an edge (XDP, detector, WAF, rate limits, reverse \
         proxy) in front of two origins and workerd"
    );
    let report = run_http_phase(plan, |line| println!("  {line}"))?;
    println!("\n{}", report.render());
    let failed = report.failures();
    if failed.is_empty() {
        println!(
            "lab: phase 3 OK: legitimate requests served, every payload blocked by the WAF, the \
             brute force rate limited and jailed in XDP, the flood dropped by a generated rule"
        );
    }
    Ok(failed)
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.0} ms"))
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), pct)
}

/// The final table of the detector phase: one row per attack, its fingerprints below it.
pub fn render_table(results: &[ScenarioResult], frag: Option<&FragPolicyResult>) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "detector report: coverage = attack frames dropped by generated rules / attack frames sent \
         after the first rule was loaded (detector's estimate in brackets); whole attack = dropped / \
         all frames sent, detection time included; collateral = legitimate datagrams lost / sent; \
         TTM = first attack frame -> first drop counted for a generated rule; expired = last attack \
         frame -> rule expiry"
    );
    let _ = writeln!(
        s,
        "{:<16} {:>7} {:>10} {:>9} {:>9} {:>10} {:>7} {:>11} {:>8} {:>10} {:>9}",
        "attack",
        "frames",
        "rule after",
        "TTM",
        "coverage",
        "(detector)",
        "whole",
        "legit lost",
        "collat.",
        "(detector)",
        "expired"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<16} {:>7} {:>10} {:>9} {:>9} {:>10} {:>7} {:>11} {:>8} {:>10} {:>9}",
            r.kind.name(),
            r.attack.frames,
            ms(r.rule_after_ms),
            ms(r.ttm_ms),
            pct(r.coverage),
            opt_pct(r.detector_coverage),
            format!("{:.1}%", r.dropped_share * 100.0),
            format!("{}/{}", r.legit_lost(), r.legit_sent),
            pct(r.collateral),
            opt_pct(r.detector_collateral),
            r.expired_after_ms
                .map_or_else(|| "-".into(), |v| format!("{:.2} s", v / 1e3)),
        );
        if r.fingerprints.is_empty() {
            let _ = writeln!(s, "    no rule generated");
        }
        for (f, rule) in r.fingerprints.iter().zip(r.attack_rules()) {
            let _ = writeln!(
                s,
                "    {f}    [rule {:#x}: matched {}, dropped {}]",
                rule.id, rule.matched, rule.dropped
            );
        }
        if r.kind == AttackKind::FragmentFlood {
            match frag {
                Some(f) => {
                    let _ = writeln!(
                        s,
                        "    NOT mitigated by a generated rule (XDP rules never see non-first \
                         fragments); with frag_policy = drop: {} of {} fragments dropped ({})",
                        f.dropped_by_policy,
                        f.attack.frames,
                        pct(f.share())
                    );
                }
                None => {
                    let _ = writeln!(s, "    NOT mitigated by a generated rule");
                }
            }
        }
        for n in &r.notes {
            let _ = writeln!(s, "    note: {n}");
        }
    }
    s
}

fn detector_checks(results: &[ScenarioResult], frag: Option<&FragPolicyResult>) -> Vec<String> {
    let mut failed = Vec::new();
    for r in results {
        let k = r.kind.name();
        if r.legit_lost() > 0 {
            failed.push(format!(
                "{k}: {} of {} legitimate datagrams lost",
                r.legit_lost(),
                r.legit_sent
            ));
        }
        if r.rules.iter().any(|x| x.before_attack) {
            failed.push(format!("{k}: a rule appeared on legitimate traffic alone"));
        }
        if r.kind == AttackKind::FragmentFlood {
            match frag {
                Some(f)
                    if f.attack.frames > 0 && f.dropped_by_policy >= u64::from(f.attack.frames) => {
                }
                Some(f) => failed.push(format!(
                    "{k}: the fragment policy dropped {} of {} fragments",
                    f.dropped_by_policy, f.attack.frames
                )),
                None => failed.push(format!("{k}: the fragment policy was not tried")),
            }
            continue;
        }
        if r.fingerprints.is_empty() {
            failed.push(format!("{k}: no rule was generated"));
        } else if r.attack_dropped == 0 {
            failed.push(format!("{k}: the generated rule dropped no attack frame"));
        }
        if !r.all_expired() {
            failed.push(format!(
                "{k}: a generated rule did not expire after the attack"
            ));
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::super::attacks::AttackReport;
    use super::super::scenario::RuleOutcome;
    use super::*;
    use rampart::detector::{Creation, ReferenceKind};

    fn result(kind: AttackKind, dropped: u64, lost: u64) -> ScenarioResult {
        let created = Creation {
            at_ns: 0,
            victim: "10.214.2.1/32".parse().unwrap(),
            coverage: 1.0,
            collateral: 0.0,
            reference: ReferenceKind::Victim,
            victim_pps: 25_000.0,
            victim_bps: 0.0,
            baseline_pps: 400.0,
            baseline_bps: 0.0,
            attack_pps: 25_000.0,
            excluded_fields: Vec::new(),
        };
        let rule = RuleOutcome {
            id: 0x4000_0000,
            expression: "ip.dst eq 10.214.2.1".into(),
            created,
            loaded_ns: 1,
            frames_before: 100,
            before_attack: false,
            matched: dropped,
            dropped,
            detector_hits: dropped,
            first_drop_ns: (dropped > 0).then_some(2),
            expired_ns: Some(3),
            expiry: Some("idle".into()),
        };
        ScenarioResult {
            kind,
            fingerprints: vec![rule.expression.clone()],
            rules: vec![rule],
            attack: AttackReport {
                frames: 1_000,
                ..AttackReport::default()
            },
            frames_after_rule: Some(900),
            attack_dropped: dropped,
            coverage: dropped as f64 / 900.0,
            dropped_share: dropped as f64 / 1_000.0,
            detector_coverage: Some(1.0),
            legit_sent: 100,
            legit_delivered: 100 - lost,
            collateral: lost as f64 / 100.0,
            detector_collateral: Some(0.0),
            ttm_ms: (dropped > 0).then_some(500.0),
            rule_after_ms: Some(490.0),
            expired_after_ms: Some(2_000.0),
            longest_pass_ms: 20.0,
            samples_lost: 0,
            notes: Vec::new(),
        }
    }

    #[test]
    fn checks_name_every_failure_and_pass_a_clean_run() {
        let frag = FragPolicyResult {
            attack: AttackReport {
                frames: 50,
                ..AttackReport::default()
            },
            dropped_by_policy: 50,
        };
        let good = vec![
            result(AttackKind::SynFlood, 900, 0),
            result(AttackKind::FragmentFlood, 0, 0),
        ];
        assert!(detector_checks(&good, Some(&frag)).is_empty());

        let bad = vec![
            result(AttackKind::SynFlood, 0, 0),
            result(AttackKind::AckFlood, 900, 3),
            result(AttackKind::FragmentFlood, 0, 0),
        ];
        let failed = detector_checks(&bad, None).join("; ");
        assert!(failed.contains("syn-flood: the generated rule dropped no attack frame"));
        assert!(failed.contains("ack-flood: 3 of 100 legitimate datagrams lost"));
        assert!(failed.contains("fragment-flood: the fragment policy was not tried"));

        let table = render_table(&good, Some(&frag));
        assert!(table.contains("NOT mitigated by a generated rule"));
        assert!(table.contains("ip.dst eq 10.214.2.1"));
    }
}
