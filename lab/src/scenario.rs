//! Detector scenarios, shared by the detector phase of `rampart lab` and by `detector-bench`:
//! legitimate UDP to the edge throughout, one bounded attack from spoofed sources, and the
//! detection loop driven until the attack has ended and the rules it generated have expired.
//! Every loop is bounded in count and in time.
//!
//! What is measured, and how:
//! - **coverage**: attack frames dropped by the rules generated during the scenario (their XDP
//!   counters, less the legitimate datagrams lost, which a rule may have caught, so it is never
//!   overstated) over the attack frames sent after the first generated rule was loaded (the
//!   sender counts the frames it hands to the kernel; the count is read right after the load).
//!   The share of the whole attack dropped, detection time included, is `dropped_share`. The
//!   detector's own estimate — the share of the sampled, unmitigated attack packets its
//!   fingerprint matched when it chose it — is `detector_coverage`.
//! - **collateral**: legitimate datagrams lost (sent from ordinary sockets in the client
//!   namespace, counted by sockets on the edge) over those sent. The detector's own estimate —
//!   the share of its calm reference samples the fingerprint matched — is `detector_collateral`.
//! - **time to mitigate**: the first attack frame (the sender reads CLOCK_MONOTONIC, the clock of
//!   `bpf_ktime_get_ns`, just before handing it to the kernel) → the first poll of the rule
//!   counters that shows a drop by a generated rule. Counters are polled about every 10 ms.
//! - **expiry**: the last attack frame → the expiry of the last of the scenario's rules.

use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart_common::config::POLICY_DROP;
use rampart_common::Reason;

use super::attacks::{
    send_frames, AttackKind, AttackPlan, AttackReport, Background, Pacing, HARD_TIME_LIMIT,
};
use super::frames::{Ipv4Prefix, L2};
use super::netns::{veth, End, LabError, Netns};
use super::traffic::Receiver;
use rampart::counters::Snapshot;
use rampart::detection_loop::{DetectionLoop, LoopConfig, LoopError};
use rampart::detector::{Creation, ExpiryReason, ManagerStats, VictimStatus};
use rampart::kernel::{monotonic_ns, AttachMode, Dataplane, KernelError};

mod frag_policy;
mod steps;
mod watch;

pub use frag_policy::{fragment_policy_demo, FragPolicyResult};
use steps::*;
use watch::{ms_between, Counted, Watch};

/// The attacked address: the edge's address on the attacker's link.
pub const VICTIM: Ipv4Addr = Ipv4Addr::new(10, 214, 2, 1);
/// The attacker's interface (frames are crafted and sent there).
pub const ATTACKER_IF: &str = "a0";
/// The edge's interfaces, where the XDP program is attached.
pub const EDGE_IFACES: [&str; 2] = ["ec0", "ea0"];

/// Spoofed attack sources (the benchmarking range of RFC 2544).
pub fn spoofed_sources() -> Ipv4Prefix {
    Ipv4Prefix::new(Ipv4Addr::new(198, 18, 0, 0), 15).expect("a /15 is a prefix")
}

/// How long the rule counters may go unread while an attack runs.
const COUNTER_POLL: Duration = Duration::from_millis(10);
/// The shortest time between two passes of the loop (it would otherwise spin on every sample,
/// competing with the traffic it measures for the CPUs).
const MIN_PASS_GAP: Duration = Duration::from_millis(5);
/// How long after the attack the scenario waits for a rule that never came.
const NO_RULE_GRACE: Duration = Duration::from_secs(2);
/// Receivers wait this long past the planned end of the legitimate traffic.
const RECEIVER_SLACK: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Detect(#[from] LoopError),
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

/// The lab's three namespaces: a client, an attacker and the edge between them.
///
/// - client `c0` 10.214.1.2/24 ↔ edge `ec0` 10.214.1.1/24 (the client reaches 10.214.2.0/24
///   through the edge);
/// - attacker `a0` 10.214.2.2/24 ↔ edge `ea0` 10.214.2.1/24 (the victim, [`VICTIM`]).
///
/// The namespaces are deleted on drop. Drop the [`Dataplane`] attached in them first (declare it
/// after the `LabNet`, or drop it explicitly): the links hold the veths.
#[derive(Debug)]
pub struct LabNet {
    pub client: Netns,
    pub attacker: Netns,
    pub edge: Netns,
}

impl LabNet {
    /// Creates `{prefix}-client`, `{prefix}-attacker` and `{prefix}-edge` (leftovers of an
    /// interrupted run with those names are deleted first).
    pub fn create(prefix: &str) -> Result<LabNet, LabError> {
        let net = LabNet {
            client: Netns::create(&format!("{prefix}-client"))?,
            attacker: Netns::create(&format!("{prefix}-attacker"))?,
            edge: Netns::create(&format!("{prefix}-edge"))?,
        };
        veth(
            End {
                ns: &net.client,
                ifname: "c0",
                addr: "10.214.1.2/24",
            },
            End {
                ns: &net.edge,
                ifname: "ec0",
                addr: "10.214.1.1/24",
            },
        )?;
        veth(
            End {
                ns: &net.attacker,
                ifname: ATTACKER_IF,
                addr: "10.214.2.2/24",
            },
            End {
                ns: &net.edge,
                ifname: "ea0",
                addr: "10.214.2.1/24",
            },
        )?;
        // Legitimate clients of the victim come in through the edge's client-side link.
        net.client.ip(&[
            "route",
            "add",
            "10.214.2.0/24",
            "via",
            "10.214.1.1",
            "dev",
            "c0",
        ])?;
        Ok(net)
    }

    /// Attaches `dp`'s program on the edge's interfaces; returns one line per interface.
    pub fn attach(&self, dp: &mut Dataplane) -> Result<Vec<String>, ScenarioError> {
        let mut lines = Vec::new();
        for iface in EDGE_IFACES {
            let r = self
                .edge
                .enter(|| dp.attach(iface, AttachMode::Auto, None))??;
            lines.push(match r.fallback {
                Some(why) => format!("{iface}: attached in GENERIC mode (native failed: {why})"),
                None => format!("{iface}: attached in {} mode", r.mode),
            });
        }
        Ok(lines)
    }
}

/// The detection loop settings of the lab: a 2 000 pps floor (the lab's legitimate traffic is
/// well below it, its attacks well above), a 2 s minimum TTL so rules expire within a scenario,
/// and a budget of 5 000 samples per second.
pub fn loop_config() -> LoopConfig {
    let mut cfg = LoopConfig {
        sample_budget: 5_000,
        ..LoopConfig::default()
    };
    cfg.detector.floor_pps = 2_000.0;
    cfg.detector.min_ttl_ns = 2_000_000_000;
    cfg
}

/// One legitimate stream: ordinary UDP sockets, client namespace → edge.
#[derive(Clone, Copy, Debug)]
pub struct LegitStream {
    pub what: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub len: usize,
}

/// The legitimate traffic of every scenario: to a service on the victim itself (so the victim
/// has a calm baseline and any over-broad fingerprint would catch it), and to another host.
/// Their ports are ones no attack sends to (attacks use 53, 80, 443 and 32768–60999).
pub const LEGIT_STREAMS: [LegitStream; 2] = [
    LegitStream {
        what: "to the victim's service",
        from: "10.214.1.2:40001",
        to: "10.214.2.1:7000",
        len: 120,
    },
    LegitStream {
        what: "to another host",
        from: "10.214.1.2:40000",
        to: "10.214.1.1:8080",
        len: 200,
    },
];

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("lab address literal")
}

/// One scenario: the attack and the legitimate traffic around it.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub kind: AttackKind,
    /// Frames the attack sends (75 000).
    pub attack_packets: u32,
    /// Its rate (25 000 frames per second: 3 s).
    pub attack_pps: u32,
    /// Datagrams per second of each legitimate stream (400).
    pub legit_pps: u32,
    /// Calm time before the attack starts (2 s).
    pub calm: Duration,
    /// The legitimate traffic goes on this long after the attack's planned end (3 s).
    pub legit_after: Duration,
    /// Stop waiting for the rules to expire this long after the attack ended (12 s).
    pub expiry_timeout: Duration,
    pub seed: u64,
}

impl Scenario {
    pub fn new(kind: AttackKind) -> Scenario {
        Scenario {
            kind,
            attack_packets: 75_000,
            attack_pps: 25_000,
            legit_pps: 400,
            calm: Duration::from_secs(2),
            legit_after: Duration::from_secs(3),
            expiry_timeout: Duration::from_secs(12),
            seed: 1,
        }
    }

    fn attack_time(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.attack_packets) / f64::from(self.attack_pps.max(1)))
    }

    fn legit_time(&self) -> Duration {
        self.calm + self.attack_time() + self.legit_after
    }
}

/// A second of a running scenario, for live progress lines.
#[derive(Clone, Debug)]
pub struct Progress {
    pub kind: AttackKind,
    /// `calm`, `attack` or `after`.
    pub phase: &'static str,
    pub elapsed: Duration,
    /// Packets per second the XDP program saw at the edge (both interfaces) over the last second.
    pub edge_pps: f64,
    /// ...and dropped.
    pub dropped_pps: f64,
    /// Generated rules in the kernel tables.
    pub rules_active: usize,
    /// The sampling rate (1 in N).
    pub sample_every: u32,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<16} {:<6} t={:>5.1}s  edge {:>8.0} pps  dropped {:>8.0} pps  rules active {}  (sampling 1 in {})",
            self.kind.name(),
            self.phase,
            self.elapsed.as_secs_f64(),
            self.edge_pps,
            self.dropped_pps,
            self.rules_active,
            self.sample_every
        )
    }
}

/// What became of one rule generated during a scenario.
#[derive(Clone, Debug)]
pub struct RuleOutcome {
    pub id: u32,
    pub expression: String,
    /// Why the detector made it (its coverage and collateral estimates, rates).
    pub created: Creation,
    /// When the loop saw it in the kernel tables (CLOCK_MONOTONIC ns).
    pub loaded_ns: u64,
    /// Attack frames handed to the kernel before it was loaded.
    pub frames_before: u64,
    /// It appeared before the attack started (a false positive on legitimate traffic).
    pub before_attack: bool,
    /// Its XDP counters (packets), last read before it left the tables.
    pub matched: u64,
    pub dropped: u64,
    /// Sampled packets the detector counted as matching it (hits, scaled by the sampling rate).
    pub detector_hits: u64,
    pub first_drop_ns: Option<u64>,
    /// When it expired (CLOCK_MONOTONIC ns), and why.
    pub expired_ns: Option<u64>,
    pub expiry: Option<String>,
}

/// The outcome of one scenario; see the module documentation for the definitions.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    pub kind: AttackKind,
    /// The expressions of the rules generated for the attack, in order of creation.
    pub fingerprints: Vec<String>,
    /// Every rule generated during the scenario, before the attack included.
    pub rules: Vec<RuleOutcome>,
    pub attack: AttackReport,
    /// Attack frames sent after the first rule was loaded (`None`: no rule during the attack).
    pub frames_after_rule: Option<u64>,
    /// Attack frames dropped by the generated rules.
    pub attack_dropped: u64,
    /// `attack_dropped / frames_after_rule` (0 without a rule).
    pub coverage: f64,
    /// `attack_dropped / attack.frames`: the whole attack, detection time included.
    pub dropped_share: f64,
    /// The detector's estimate for its first rule.
    pub detector_coverage: Option<f64>,
    pub legit_sent: u64,
    pub legit_delivered: u64,
    /// Legitimate datagrams lost over sent.
    pub collateral: f64,
    /// The largest estimate among the generated rules.
    pub detector_collateral: Option<f64>,
    /// First attack frame → first drop counted for a generated rule.
    pub ttm_ms: Option<f64>,
    /// First attack frame → the first rule seen loaded.
    pub rule_after_ms: Option<f64>,
    /// Last attack frame → the last rule's expiry (`None` unless all expired).
    pub expired_after_ms: Option<f64>,
    /// The longest pass of the loop during the scenario: a bound on how late a decision can be
    /// loaded after its tick closed.
    pub longest_pass_ms: f64,
    /// Samples the XDP program could not put in the ring (`ev_sample_dropped`).
    pub samples_lost: u64,
    pub notes: Vec<String>,
}

impl ScenarioResult {
    pub fn legit_lost(&self) -> u64 {
        self.legit_sent.saturating_sub(self.legit_delivered)
    }

    /// Rules generated for the attack (not before it).
    pub fn attack_rules(&self) -> impl Iterator<Item = &RuleOutcome> {
        self.rules.iter().filter(|r| !r.before_attack)
    }

    /// Every rule generated during the scenario has expired.
    pub fn all_expired(&self) -> bool {
        self.rules.iter().all(|r| r.expired_ns.is_some())
    }
}

/// Runs one scenario on a lab whose edge has `dp` attached and `det` reading its samples:
/// legitimate streams ([`LEGIT_STREAMS`]) for `calm`, the attack, and `legit_after`; the loop
/// runs until the attack has ended and every rule generated during the scenario has expired (or
/// `expiry_timeout` after the attack). `progress` gets one line's worth per second.
pub fn run_scenario(
    net: &LabNet,
    dp: &mut Dataplane,
    det: &mut DetectionLoop,
    sc: &Scenario,
    mut progress: impl FnMut(&Progress),
) -> Result<ScenarioResult, ScenarioError> {
    let mut notes = Vec::new();
    let pre: HashSet<u32> = det.manager.rules().iter().map(|r| r.id).collect();
    if !pre.is_empty() {
        notes.push(format!(
            "{} generated rule(s) of an earlier scenario were still active at the start",
            pre.len()
        ));
    }
    let start = Instant::now();
    let start_ns = monotonic_ns()?;
    let stats_before = det.manager.stats();
    let counters_before = dp.counters()?;
    let legit_time = sc.legit_time();
    let (senders, receivers) = start_legit(net, sc, legit_time)?;

    let mut watch = Watch::new(sc.kind, start, pre, dp.counters()?, &mut progress);
    let taken = AtomicU64::new(0);
    while start.elapsed() < sc.calm {
        watch.step(dp, det, "calm", &taken)?;
    }
    let attack = send_attack(net, dp, det, sc, &mut watch, &taken)?;

    watch_after(dp, det, sc, &mut watch, legit_time, &taken)?;
    let longest_pass_ms = watch.longest_pass.as_secs_f64() * 1e3;
    let samples_lost = samples_lost(dp, &counters_before, &mut notes)?;
    notes.extend(watch.diagnosis(det, &stats_before, samples_lost));
    let rules = watch.rules;

    let (legit_sent, legit_delivered) = finish_legit(senders, receivers)?;
    let legit_lost = legit_sent.saturating_sub(legit_delivered);
    refused_rule_notes(det, start_ns, &rules, &mut notes);

    let for_attack: Vec<&RuleOutcome> = rules.iter().filter(|r| !r.before_attack).collect();
    before_attack_notes(&rules, &mut notes);
    let rule_drops: u64 = rules.iter().map(|r| r.dropped).sum();
    let attack_dropped = rule_drops.saturating_sub(legit_lost);
    let sent = u64::from(attack.frames);
    let first = for_attack.iter().min_by_key(|r| r.loaded_ns);
    let frames_after_rule = first.map(|r| sent.saturating_sub(r.frames_before));
    let coverage = match frames_after_rule {
        Some(n) if n > 0 => attack_dropped.min(n) as f64 / n as f64,
        _ => 0.0,
    };
    if frames_after_rule == Some(0) {
        notes.push("the first rule came after the last attack frame".into());
    }
    let (ttm_ms, rule_after_ms, expired_after_ms) =
        timings(&attack, start_ns, &rules, &for_attack, first.copied());
    if !rules.iter().all(|r| r.expired_ns.is_some()) {
        notes.push(format!(
            "not every rule expired within {:.0} s of the attack's end",
            sc.expiry_timeout.as_secs_f64()
        ));
    }
    attack_notes(sc, &attack, &for_attack, &mut notes);
    Ok(ScenarioResult {
        kind: sc.kind,
        fingerprints: for_attack.iter().map(|r| r.expression.clone()).collect(),
        detector_coverage: first.map(|r| r.created.coverage),
        detector_collateral: for_attack
            .iter()
            .map(|r| r.created.collateral)
            .fold(None, |m, c| Some(m.map_or(c, |m: f64| m.max(c)))),
        frames_after_rule,
        attack_dropped,
        coverage,
        dropped_share: if sent > 0 {
            attack_dropped.min(sent) as f64 / sent as f64
        } else {
            0.0
        },
        legit_sent,
        legit_delivered,
        collateral: if legit_sent > 0 {
            legit_lost as f64 / legit_sent as f64
        } else {
            0.0
        },
        ttm_ms,
        rule_after_ms,
        expired_after_ms,
        longest_pass_ms,
        samples_lost,
        rules,
        attack,
        notes,
    })
}

/// Runs `step` until the scoped `sender` thread has stopped by itself (count or time limit), then
/// joins it. A failing step stops the stepping, not the bounded sender.
fn drive_while_sending<E>(
    sender: std::thread::ScopedJoinHandle<'_, Result<AttackReport, E>>,
    what: &'static str,
    mut step: impl FnMut() -> Result<(), ScenarioError>,
) -> Result<AttackReport, ScenarioError>
where
    ScenarioError: From<E>,
{
    let mut stepped = Ok(());
    while !sender.is_finished() {
        if let Err(e) = step() {
            stepped = Err(e);
            break;
        }
    }
    let report = sender.join().map_err(|_| ScenarioError::Panicked(what))??;
    stepped?;
    Ok(report)
}
