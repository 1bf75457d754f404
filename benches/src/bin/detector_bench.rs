//! The detector end to end (root): one namespace lab, the XDP program attached natively on the
//! edge, the detection loop, and each lab attack run `--runs` times (3) with legitimate traffic
//! throughout and a cool-down between runs (a run ends once its rules have expired). Per attack
//! it prints coverage (min/median), collateral (max), time to mitigate (p50/max) and expiry,
//! beside the detector's own estimates and the targets of the issue (coverage >= 95%,
//! collateral <= 0.1%, p50 time to mitigate <= 1 s), whether they are met or not.
//!
//! Definitions are those of `rampart_lab::scenario`. The work is checked: every run of every
//! attack but the fragment flood must have a generated rule that dropped attack frames, and the
//! fragment policy must drop the fragment flood; otherwise the bench exits non-zero. The
//! targets are reported, not asserted.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use rampart::detection_loop::DetectionLoop;
use rampart::kernel::{Dataplane, LoadOptions};
use rampart_lab::attacks::AttackKind;
use rampart_lab::scenario::{
    fragment_policy_demo, loop_config, run_scenario, spoofed_sources, FragPolicyResult, LabNet,
    Scenario, ScenarioResult, VICTIM,
};

#[derive(Parser)]
struct Args {
    /// Runs of each attack.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Frames of each attack.
    #[arg(long, default_value_t = 75_000)]
    attack_packets: u32,
    /// Frames per second of each attack.
    #[arg(long, default_value_t = 25_000)]
    attack_pps: u32,
    /// Datagrams per second of each legitimate stream.
    #[arg(long, default_value_t = 400)]
    legit_pps: u32,
}

const TARGET_COVERAGE: f64 = 0.95;
const TARGET_COLLATERAL: f64 = 0.001;
const TARGET_TTM_P50_MS: f64 = 1_000.0;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Nearest-rank percentile of a non-empty slice.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn run_line(r: &ScenarioResult) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.0} ms"));
    format!(
        "rule after {:>7}, TTM {:>7}, coverage {:>7} (detector {}), whole attack {:>6}, legit lost {}/{}, expired {} after; longest pass {:.0} ms; {}",
        ms(r.rule_after_ms),
        ms(r.ttm_ms),
        pct(r.coverage),
        r.detector_coverage.map_or_else(|| "-".into(), pct),
        format!("{:.1}%", r.dropped_share * 100.0),
        r.legit_lost(),
        r.legit_sent,
        r.expired_after_ms
            .map_or_else(|| "never".into(), |v| format!("{:.2} s", v / 1e3)),
        r.longest_pass_ms,
        if r.fingerprints.is_empty() {
            "no rule".to_string()
        } else {
            r.fingerprints.join(" | ")
        }
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.runs >= 1, "--runs must be at least 1");
    if !is_root() {
        bail!("detector-bench needs root (network namespaces, XDP attach)");
    }
    let started = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "detector-bench: Linux {}, {cpus} CPUs; {} runs per attack of {} frames at {}/s from \
         spoofed {} to {VICTIM}; legitimate UDP at {}/s on each of two streams",
        kernel.trim(),
        args.runs,
        args.attack_packets,
        args.attack_pps,
        spoofed_sources(),
        args.legit_pps
    );

    // The namespaces outlive the data plane (declared first, dropped last).
    let net = LabNet::create("rampart-bench").context("creating the lab namespaces")?;
    let mut dp =
        Dataplane::load(&LoadOptions::default()).context("loading the XDP program (root?)")?;
    for line in net.attach(&mut dp)? {
        println!("detector-bench: {line}");
    }
    let cfg = loop_config();
    println!(
        "detector-bench: floor {} pps, rules start at drop, minimum TTL {:.0} s, {} samples/s \
         budget, {:.0} ms ticks",
        cfg.detector.floor_pps,
        cfg.detector.min_ttl_ns as f64 / 1e9,
        cfg.sample_budget,
        cfg.detector.tick_ns as f64 / 1e6
    );
    let mut det = DetectionLoop::start(&mut dp, cfg, Vec::new())?;

    let mut all: Vec<(AttackKind, Vec<ScenarioResult>, Vec<FragPolicyResult>)> = Vec::new();
    let mut first = true;
    let total = args.runs as usize * AttackKind::ALL.len();
    for (k, kind) in AttackKind::ALL.into_iter().enumerate() {
        let mut results = Vec::new();
        let mut frag = Vec::new();
        for run in 0..args.runs {
            let mut sc = Scenario::new(kind);
            sc.attack_packets = args.attack_packets;
            sc.attack_pps = args.attack_pps;
            sc.legit_pps = args.legit_pps;
            sc.seed = 1 + u64::from(run);
            // Time to mitigate depends on where in the detector's 1 s tick the attack starts:
            // spread the starts over the tick, run by run and attack by attack.
            let slot = (run as usize * AttackKind::ALL.len() + k) % total;
            sc.calm = Duration::from_secs(if first { 3 } else { 2 })
                + Duration::from_millis((slot * 1_000 / total) as u64);
            first = false;
            let r = run_scenario(&net, &mut dp, &mut det, &sc, |_| {})
                .with_context(|| format!("{kind} run {}", run + 1))?;
            println!("{:<16} #{}: {}", kind.name(), run + 1, run_line(&r));
            for n in &r.notes {
                println!("{:<16}     note: {n}", "");
            }
            if kind == AttackKind::FragmentFlood {
                let f = fragment_policy_demo(
                    &net,
                    &mut dp,
                    &mut det,
                    args.attack_pps,
                    args.attack_pps,
                )?;
                println!(
                    "{:<16}     with frag_policy = drop: {} of {} fragments dropped ({})",
                    "",
                    f.dropped_by_policy,
                    f.attack.frames,
                    pct(f.share())
                );
                frag.push(f);
            }
            results.push(r);
        }
        all.push((kind, results, frag));
    }
    drop(det);
    drop(dp);
    drop(net);

    println!(
        "\ndetector-bench summary ({} runs each; coverage = attack frames dropped by generated rules / \
         attack frames sent after the first rule was loaded; whole = share of all attack frames \
         dropped, detection time included; collateral = legitimate datagrams lost / sent; TTM = first \
         attack frame -> first drop counted for a generated rule; expiry = last attack frame -> rule \
         expired)",
        args.runs
    );
    println!(
        "{:<16} {:>17} {:>11} {:>12} {:>17} {:>13} {:>17} {:>11} {:>11}",
        "attack",
        "coverage min/med",
        "whole med",
        "(det.) min",
        "collateral max",
        "(det.) max",
        "TTM p50/max",
        "expiry max",
        "targets"
    );
    let mut failed = Vec::new();
    let mut ttms = Vec::new();
    for (kind, results, frag) in &all {
        let coverage: Vec<f64> = results.iter().map(|r| r.coverage).collect();
        let whole: Vec<f64> = results.iter().map(|r| r.dropped_share).collect();
        let det_cov: Vec<f64> = results.iter().filter_map(|r| r.detector_coverage).collect();
        let collateral: Vec<f64> = results.iter().map(|r| r.collateral).collect();
        let det_col: Vec<f64> = results
            .iter()
            .filter_map(|r| r.detector_collateral)
            .collect();
        let ttm: Vec<f64> = results.iter().filter_map(|r| r.ttm_ms).collect();
        let expiry: Vec<f64> = results.iter().filter_map(|r| r.expired_after_ms).collect();
        let lost: u64 = results.iter().map(ScenarioResult::legit_lost).sum();
        let sent: u64 = results.iter().map(|r| r.legit_sent).sum();
        let or_dash = |v: &[f64], f: &dyn Fn(&[f64]) -> String| {
            if v.is_empty() {
                "-".to_string()
            } else {
                f(v)
            }
        };
        let ttm_p50 = (!ttm.is_empty()).then(|| percentile(&ttm, 50.0));
        let mut misses = Vec::new();
        if min(&coverage) < TARGET_COVERAGE {
            misses.push("coverage");
        }
        if max(&collateral) > TARGET_COLLATERAL {
            misses.push("collateral");
        }
        if ttm_p50.is_none_or(|p| p > TARGET_TTM_P50_MS) || ttm.len() < results.len() {
            misses.push("TTM");
        }
        println!(
            "{:<16} {:>17} {:>11} {:>12} {:>17} {:>13} {:>17} {:>11} {:>11}",
            kind.name(),
            format!(
                "{} / {}",
                pct(min(&coverage)),
                pct(percentile(&coverage, 50.0))
            ),
            format!("{:.1}%", percentile(&whole, 50.0) * 100.0),
            or_dash(&det_cov, &|v| pct(min(v))),
            format!("{} ({lost}/{sent})", pct(max(&collateral))),
            or_dash(&det_col, &|v| pct(max(v))),
            or_dash(&ttm, &|v| format!(
                "{:.0} / {:.0} ms",
                percentile(v, 50.0),
                max(v)
            )),
            if expiry.len() == results.len() {
                format!("{:.2} s", max(&expiry) / 1e3)
            } else {
                format!("{} never", results.len() - expiry.len())
            },
            if misses.is_empty() {
                "met".to_string()
            } else {
                format!("MISSED: {}", misses.join(", "))
            }
        );
        ttms.extend(ttm.iter().copied());
        if *kind == AttackKind::FragmentFlood {
            let dropped: u64 = frag.iter().map(|f| f.dropped_by_policy).sum();
            let frames: u64 = frag.iter().map(|f| u64::from(f.attack.frames)).sum();
            println!(
                "{:<16} no generated rule can drop non-first fragments (XDP gives them their first \
                 fragment's verdict or the fragment policy); frag_policy = drop dropped {dropped} \
                 of {frames} fragments",
                ""
            );
            if frames == 0 || dropped < frames {
                failed.push(format!(
                    "{kind}: the fragment policy dropped {dropped} of {frames} fragments"
                ));
            }
            continue;
        }
        for (i, r) in results.iter().enumerate() {
            if r.attack_dropped == 0 {
                failed.push(format!(
                    "{kind} run {}: no generated rule dropped attack frames",
                    i + 1
                ));
            }
        }
    }
    if !ttms.is_empty() {
        println!(
            "time to mitigate over every run with a drop ({} runs): p50 {:.0} ms, max {:.0} ms \
             (target p50 <= {TARGET_TTM_P50_MS:.0} ms)",
            ttms.len(),
            percentile(&ttms, 50.0),
            max(&ttms)
        );
    }
    println!(
        "detector-bench: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        bail!("the work did not happen: {}", failed.join("; "));
    }
    Ok(())
}
