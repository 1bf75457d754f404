//! The lab's HTTP phase: the whole product on one edge. `rampart run` on the edge (XDP on both
//! veths, the detector, the L7 engine with the default WAF rules in front of two lab origins and
//! workerd); legitimate clients in `rl-client`; from `rl-attacker`, SQLi and XSS payloads, a login
//! brute force and a spoofed UDP flood. A live line every second, then a report: what was
//! served and how fast, what the WAF blocked and by which rule, the rate limit and the jail,
//! the rule the detector generated for the flood and how long it took, XDP drops per reason.
//!
//! Bounded: the traffic stops at the plan's duration (or on SIGINT, see
//! [`super::run::interrupted`]), every request has short timeouts, the flood has a frame count
//! and a time limit. The stage (`http_setup::Stage`) tears everything down on every path.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::attacks::{spawn_attack, AttackKind, AttackPlan, AttackReport};
use super::frames::Ipv4Prefix;
use super::http_clients::{attacker, legit_client, AttackerStats, LegitStats};
use super::http_report::{
    parse_drops, AuditSummary, BruteSummary, DaemonCounts, FloodSummary, HttpReport, LegitSummary,
    WafSummary,
};
use super::http_setup::{
    Stage, StageConfig, ATTACKER_IF, ATTACKER_IP, ATTACKER_NS, CLIENT_NS, EDGE_ATTACKER_SIDE,
    EDGE_CLIENT_SIDE, PROXY_PORT,
};
use super::netns::{enter_thread, LabError};
use super::run::interrupted;
use rampart::control::{request as ctl, ControlError};
use rampart::kernel::monotonic_ns;

#[derive(Debug, thiserror::Error)]
pub enum HttpLabError {
    #[error(
        "workerd is not installed at {0}: run `cargo xtask setup` (it installs workerd under \
         target/workerd), or point RAMPART_WORKERD at a workerd binary"
    )]
    WorkerdMissing(PathBuf),
    #[error("the rampart binary {0} does not exist (build it: cargo build -p rampart)")]
    RampartMissing(PathBuf),
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("the daemon's control socket: {0}")]
    Control(#[from] ControlError),
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    #[error("interrupted; the phase's processes, namespaces and files were removed")]
    Interrupted,
}

/// What the phase runs; every count and time is bounded.
#[derive(Clone, Debug)]
pub struct HttpPlan {
    /// The binary started for `rampart run` and the origins (the lab's own, normally).
    pub rampart_bin: PathBuf,
    pub workerd_bin: PathBuf,
    /// How long the traffic runs (setup and teardown come on top, a few seconds each).
    pub duration: Duration,
    pub legit_clients: usize,
    /// Requests per second of each legitimate client.
    pub legit_rate: u32,
    /// The flood: frames per second and how long.
    pub flood_pps: u32,
    pub flood_for: Duration,
    /// The detector's floor (packets per second); the flood must exceed it, the HTTP traffic not.
    pub floor_pps: u32,
}

impl Default for HttpPlan {
    fn default() -> Self {
        HttpPlan {
            rampart_bin: rampart_beside(),
            workerd_bin: super::workerd::default_bin(),
            duration: Duration::from_secs(20),
            legit_clients: 4,
            legit_rate: 20,
            flood_pps: 10_000,
            flood_for: Duration::from_secs(4),
            floor_pps: 2_000,
        }
    }
}

/// The `rampart` binary beside the running one (`rampart-lab` is built and installed next to
/// it), else `rampart` from `PATH`.
pub fn rampart_beside() -> PathBuf {
    std::env::current_exe()
        .map(|exe| exe.with_file_name("rampart"))
        .unwrap_or_else(|_| PathBuf::from("rampart"))
}

impl HttpPlan {
    /// When the flood starts: after the detector has seen some calm traffic (its collateral
    /// reference), early enough that the rule shows up within the run.
    fn flood_at(&self) -> Duration {
        (self.duration / 4).clamp(Duration::from_secs(2), Duration::from_secs(5))
    }
}

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("lab address literal"), port)
}

/// The first generated rule the watcher saw, with `CLOCK_MONOTONIC` at that poll.
type FirstRule = Mutex<Option<u64>>;

/// Polls `generated list` every 100 ms until `stop`, noting when a rule first appears.
fn watch_rules(socket: &std::path::Path, stop: &AtomicBool, first: &FirstRule) {
    while !stop.load(Relaxed) {
        if let Ok(list) = ctl(socket, "generated list") {
            if !list.trim().is_empty() {
                if let Ok(now) = monotonic_ns() {
                    *first.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
                }
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `f` on a scoped thread that first enters namespace `ns`.
fn in_ns<'s, 'e>(
    s: &'s std::thread::Scope<'s, 'e>,
    ns: &'static str,
    f: impl FnOnce() + Send + 's,
) -> std::thread::ScopedJoinHandle<'s, Result<(), LabError>> {
    s.spawn(move || {
        enter_thread(ns)?;
        f();
        Ok(())
    })
}

/// Runs the phase; `progress` gets the live lines. The report says what happened; its
/// [`HttpReport::failures`] say what should have happened and did not.
///
/// # Errors
/// workerd or the binary is missing, the stage could not be built (namespaces, processes, the
/// daemon not serving), the control socket did not answer, or the run was interrupted.
pub fn run_http_phase(
    plan: &HttpPlan,
    mut progress: impl FnMut(&str),
) -> Result<HttpReport, HttpLabError> {
    if !plan.workerd_bin.is_file() {
        return Err(HttpLabError::WorkerdMissing(plan.workerd_bin.clone()));
    }
    if !plan.rampart_bin.is_file() {
        return Err(HttpLabError::RampartMissing(plan.rampart_bin.clone()));
    }
    progress(&format!(
        "creating namespaces {CLIENT_NS}, {ATTACKER_NS}, rl-edge; starting two origins, workerd \
         and `rampart run` in rl-edge"
    ));
    let mut stage = Stage::start(&StageConfig {
        rampart_bin: plan.rampart_bin.clone(),
        workerd_bin: plan.workerd_bin.clone(),
        floor_pps: plan.floor_pps,
        ready_within: Duration::from_secs(20),
    })?;
    let flood_plan = flood_plan(plan);
    announce(plan, &stage, &flood_plan, &mut progress);

    let legit = LegitStats::default();
    let attack = AttackerStats::default();
    let first_rule = FirstRule::default();
    let stop = AtomicBool::new(false);
    let (front_c, front_a) = (
        sa(EDGE_CLIENT_SIDE, PROXY_PORT),
        sa(EDGE_ATTACKER_SIDE, PROXY_PORT),
    );
    let socket = stage.socket.clone();
    let flood = std::thread::scope(|s| -> Result<Option<AttackReport>, HttpLabError> {
        let mut threads = Vec::new();
        for id in 0..plan.legit_clients {
            let (stop, legit) = (&stop, &legit);
            threads.push(in_ns(s, CLIENT_NS, move || {
                legit_client(front_c, id, plan.legit_rate, stop, legit)
            }));
        }
        let (stop_r, attack_r) = (&stop, &attack);
        threads.push(in_ns(s, ATTACKER_NS, move || {
            std::thread::sleep(Duration::from_secs(1));
            attacker(front_a, stop_r, attack_r)
        }));
        let (stop_w, first_w, socket_w) = (&stop, &first_rule, &socket);
        s.spawn(move || watch_rules(socket_w, stop_w, first_w));

        let result = drive(plan, &stage, &flood_plan, &legit, &mut progress);
        stop.store(true, Relaxed);
        for t in threads {
            t.join().map_err(|_| HttpLabError::Panicked("client"))??;
        }
        result
    })?;
    if interrupted() {
        return Err(HttpLabError::Interrupted);
    }

    // The daemon's view, then stop it (graceful: the audit log is complete after that).
    let status = ctl(&stage.socket, "status")?;
    let counters = ctl(&stage.socket, "counters")?;
    let generated = ctl(&stage.socket, "generated list")?;
    let deny = ctl(&stage.socket, "deny list")?;
    stage.stop_daemon();
    let audit = std::fs::read_to_string(&stage.audit_log).unwrap_or_default();

    let flood = flood.unwrap_or_default();
    let seen = *first_rule.lock().unwrap_or_else(|e| e.into_inner());
    Ok(HttpReport {
        duration: plan.duration,
        legit: legit_summary(plan, &legit),
        waf: WafSummary {
            sent: attack.waf_sent.load(Relaxed),
            blocked: attack.waf_blocked.load(Relaxed),
            passed: attack.waf_passed(),
        },
        brute: BruteSummary {
            attacker: ATTACKER_IP.into(),
            login_codes: attack.login_codes(),
            deny_entry: deny
                .lines()
                .find(|l| l.starts_with(&format!("{ATTACKER_IP}/")))
                .map(str::to_string),
            after_jail_attempts: attack.after_jail_attempts.load(Relaxed),
            after_jail_connected: attack.after_jail_connected.load(Relaxed),
        },
        flood: flood_summary(&flood_plan, &flood, seen, &generated),
        xdp_drops: parse_drops(&counters),
        daemon: DaemonCounts::parse(&status),
        audit: AuditSummary::parse(&audit),
    })
}

/// The phase's opening lines: where the daemon serves, and what traffic is coming.
fn announce(
    plan: &HttpPlan,
    stage: &Stage,
    flood_plan: &AttackPlan,
    progress: &mut impl FnMut(&str),
) {
    progress(&format!(
        "daemon serving on :{PROXY_PORT} (XDP native on ec0 and ea0, detector floor {} pps, \
         default WAF rules); files in {}",
        plan.floor_pps,
        stage.dir.display()
    ));
    progress(&format!(
        "{} legitimate clients ({CLIENT_NS}) at {} req/s each for {:.0} s; attacker \
         {ATTACKER_IP}: {} SQLi/XSS requests, then a login brute force; at {:.0} s a UDP \
         reflection flood ({} frames at {}/s from spoofed {}) to {EDGE_ATTACKER_SIDE}",
        plan.legit_clients,
        plan.legit_rate,
        plan.duration.as_secs_f64(),
        super::http_payloads::attacks().len(),
        plan.flood_at().as_secs_f64(),
        flood_plan.packets,
        flood_plan.rate_pps,
        flood_plan.src_prefix,
    ));
    progress("live, once a second: legitimate requests served (p50 latency so far) | WAF blocks | rate-limited | jailed | XDP drops | generated rules");
}

/// What the legitimate clients saw.
fn legit_summary(plan: &HttpPlan, legit: &LegitStats) -> LegitSummary {
    LegitSummary {
        clients: plan.legit_clients,
        sent: legit.sent.load(Relaxed),
        served: legit.served.load(Relaxed),
        failed: legit.failed.load(Relaxed),
        p50: legit.latency(0.5),
        p99: legit.latency(0.99),
        origin_a: legit.origin_a.load(Relaxed),
        origin_b: legit.origin_b.load(Relaxed),
        workerd: legit.workerd.load(Relaxed),
        failures: legit.failures(),
    }
}

/// What became of the flood: how fast the first generated rule came after its first frame.
fn flood_summary(
    flood_plan: &AttackPlan,
    flood: &AttackReport,
    seen: Option<u64>,
    generated: &str,
) -> FloodSummary {
    let (rule_after, rule_before_flood) = match (seen, flood.first_frame_ns) {
        (Some(seen), Some(first)) if seen >= first => {
            (Some(Duration::from_nanos(seen - first)), false)
        }
        (Some(_), _) => (None, true),
        (None, _) => (None, false),
    };
    FloodSummary {
        what: format!(
            "{} from spoofed {} to {}",
            flood_plan.kind, flood_plan.src_prefix, flood_plan.dst
        ),
        frames: flood.frames,
        rate_pps: flood.rate_pps(),
        rule_after,
        rule_before_flood,
        rules: generated
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

/// An NTP-style reflection flood from the benchmarking range (RFC 2544) to the edge's
/// attacker-side address: spoofed sources, so the jail of the attacker's own address does not
/// stop it; only a generated rule does.
fn flood_plan(plan: &HttpPlan) -> AttackPlan {
    let victim: Ipv4Addr = EDGE_ATTACKER_SIDE.parse().expect("lab address literal");
    let spoofed = Ipv4Prefix::new(Ipv4Addr::new(198, 18, 0, 0), 15).expect("a /15 is a prefix");
    let mut p = AttackPlan::new(AttackKind::UdpReflection, spoofed, victim);
    p.rate_pps = plan.flood_pps;
    p.packets = (u64::from(plan.flood_pps) * plan.flood_for.as_millis() as u64 / 1_000) as u32;
    p.time_limit = plan.flood_for + Duration::from_secs(2);
    p.seed = 7;
    p
}

/// The main thread's part while the clients run: the live line once a second, the flood at its
/// time, until the duration has passed or SIGINT came. Returns the flood's report.
fn drive(
    plan: &HttpPlan,
    stage: &Stage,
    flood_plan: &AttackPlan,
    legit: &LegitStats,
    progress: &mut impl FnMut(&str),
) -> Result<Option<AttackReport>, HttpLabError> {
    let start = Instant::now();
    let mut flood = None;
    let mut tick = 1;
    while start.elapsed() < plan.duration && !interrupted() {
        if flood.is_none() && start.elapsed() >= plan.flood_at() {
            flood = Some(spawn_attack(&stage.attacker, ATTACKER_IF, flood_plan)?);
        }
        let next = start + Duration::from_secs(tick);
        while Instant::now() < next && !interrupted() {
            std::thread::sleep(Duration::from_millis(20));
        }
        tick += 1;
        if interrupted() {
            break;
        }
        let d = ctl(&stage.socket, "status")
            .map(|s| DaemonCounts::parse(&s))
            .unwrap_or_default();
        let p50 = legit.latency(0.5).map_or_else(
            || "-".into(),
            |l| format!("{:.1} ms", l.as_secs_f64() * 1e3),
        );
        progress(&format!(
            "t={:>2} s  served {:>5} (p50 {p50}), failed {} | WAF blocks {:>3} | rate-limited {} | \
             jailed {} | XDP drops {:>6} | generated rules {}",
            start.elapsed().as_secs(),
            legit.served.load(Relaxed),
            legit.failed.load(Relaxed),
            d.blocked,
            d.rate_limited,
            d.jailed,
            d.xdp_dropped,
            d.generated_live
        ));
    }
    // The flood ends by its own count and time limit, even when interrupted.
    flood.map(|f| f.finish()).transpose().map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flood_fits_the_run_and_exceeds_the_detector_floor() {
        for secs in [8, 12, 20, 30] {
            let plan = HttpPlan {
                duration: Duration::from_secs(secs),
                ..HttpPlan::default()
            };
            let f = flood_plan(&plan);
            assert!(plan.flood_at() + plan.flood_for < plan.duration, "{secs} s");
            assert!(f.rate_pps > plan.floor_pps * 2);
            assert_eq!(f.packets, 40_000);
            f.check().expect("a valid attack plan");
        }
    }
}
