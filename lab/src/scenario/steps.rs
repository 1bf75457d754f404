//! The steps of [`run_scenario`](super::run_scenario): legitimate traffic, the attack, the
//! watch after it, and the notes and timings of the result.

use super::*;

/// Samples the ring dropped since `before` (the loop fell behind), noted when there were any.
pub(super) fn samples_lost(
    dp: &Dataplane,
    before: &Snapshot,
    notes: &mut Vec<String>,
) -> Result<u64, ScenarioError> {
    let samples_lost = before
        .delta(&dp.counters()?)
        .reason(Reason::EvSampleDropped)
        .packets;
    if samples_lost > 0 {
        notes.push(format!(
            "{samples_lost} samples were lost in the ring (the loop fell behind)"
        ));
    }
    Ok(samples_lost)
}

/// Rules that came on legitimate traffic alone, before the attack.
pub(super) fn before_attack_notes(rules: &[RuleOutcome], notes: &mut Vec<String>) {
    for r in rules.iter().filter(|r| r.before_attack) {
        notes.push(format!(
            "rule {:#x} `{}` appeared BEFORE the attack, on legitimate traffic alone",
            r.id, r.expression
        ));
    }
}

/// Steps the loop after the attack until every rule of the scenario has expired (or none came
/// within [`NO_RULE_GRACE`]) and the legitimate traffic is over, or `expiry_timeout` has passed.
pub(super) fn watch_after<P: FnMut(&Progress)>(
    dp: &mut Dataplane,
    det: &mut DetectionLoop,
    sc: &Scenario,
    watch: &mut Watch<'_, P>,
    legit_time: Duration,
    taken: &AtomicU64,
) -> Result<(), ScenarioError> {
    let after = Instant::now();
    loop {
        let rules_done = if watch.rules.is_empty() {
            after.elapsed() >= NO_RULE_GRACE
        } else {
            watch.rules.iter().all(|r| r.expired_ns.is_some())
        };
        let legit_done = watch.start.elapsed() >= legit_time;
        if (rules_done && legit_done) || after.elapsed() >= sc.expiry_timeout {
            return Ok(());
        }
        watch.step(dp, det, "after", taken)?;
    }
}

/// Time to mitigate, first rule and last expiry, in ms: see the module documentation.
pub(super) fn timings(
    attack: &AttackReport,
    start_ns: u64,
    rules: &[RuleOutcome],
    for_attack: &[&RuleOutcome],
    first: Option<&RuleOutcome>,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let first_frame = attack.first_frame_ns.unwrap_or(start_ns);
    let ttm_ms = for_attack
        .iter()
        .filter_map(|r| r.first_drop_ns)
        .min()
        .map(|d| ms_between(first_frame, d));
    let rule_after_ms = first.map(|r| ms_between(first_frame, r.loaded_ns));
    let expired_after_ms = match (rules.is_empty(), attack.last_frame_ns) {
        (false, Some(last)) if rules.iter().all(|r| r.expired_ns.is_some()) => rules
            .iter()
            .filter_map(|r| r.expired_ns)
            .max()
            .map(|e| ms_between(last, e)),
        _ => None,
    };
    (ttm_ms, rule_after_ms, expired_after_ms)
}

/// Starts the legitimate streams ([`LEGIT_STREAMS`]) for `legit_time`: their senders, and
/// their receivers on the edge.
pub(super) fn start_legit(
    net: &LabNet,
    sc: &Scenario,
    legit_time: Duration,
) -> Result<(Vec<Background>, Vec<Receiver>), ScenarioError> {
    let legit_count = (f64::from(sc.legit_pps) * legit_time.as_secs_f64()).ceil() as u32;
    let mut receivers = Vec::new();
    for s in LEGIT_STREAMS {
        receivers.push(Receiver::start(
            &net.edge,
            sa(s.to),
            legit_count,
            legit_time + RECEIVER_SLACK,
        )?);
    }
    let mut senders = Vec::new();
    for s in LEGIT_STREAMS {
        senders.push(Background::start(
            &net.client,
            sa(s.from),
            sa(s.to),
            legit_count,
            sc.legit_pps,
            s.len,
        )?);
    }
    Ok((senders, receivers))
}

/// Joins the legitimate streams: datagrams sent, datagrams delivered.
pub(super) fn finish_legit(
    senders: Vec<Background>,
    receivers: Vec<Receiver>,
) -> Result<(u64, u64), ScenarioError> {
    let mut legit_sent = 0u64;
    for s in senders {
        legit_sent += u64::from(s.finish()?);
    }
    let mut legit_delivered = 0u64;
    for r in receivers {
        legit_delivered += u64::from(r.finish()?);
    }
    Ok((legit_sent, legit_delivered))
}

/// Sends the scenario's attack from the attacker namespace, stepping the loop while it runs.
pub(super) fn send_attack<P: FnMut(&Progress)>(
    net: &LabNet,
    dp: &mut Dataplane,
    det: &mut DetectionLoop,
    sc: &Scenario,
    watch: &mut Watch<'_, P>,
    taken: &AtomicU64,
) -> Result<AttackReport, ScenarioError> {
    let mut plan = AttackPlan::new(sc.kind, spoofed_sources(), VICTIM);
    plan.packets = sc.attack_packets;
    plan.rate_pps = sc.attack_pps;
    plan.seed = sc.seed;
    plan.time_limit = (sc.attack_time() * 2 + Duration::from_secs(2)).min(HARD_TIME_LIMIT);
    let frames = plan.frames(L2::resolve(&net.attacker, ATTACKER_IF, VICTIM)?)?;
    std::thread::scope(|s| -> Result<AttackReport, ScenarioError> {
        let counted = Counted {
            inner: frames,
            taken,
        };
        let (attacker, pacing) = (&net.attacker, Pacing::of(&plan));
        let sender = s.spawn(move || send_frames(attacker, ATTACKER_IF, pacing, counted));
        drive_while_sending(sender, "attack", || watch.step(dp, det, "attack", taken))
    })
}

/// Rules the tables refused never showed up as active: say so.
pub(super) fn refused_rule_notes(
    det: &DetectionLoop,
    start_ns: u64,
    rules: &[RuleOutcome],
    notes: &mut Vec<String>,
) {
    for g in det.manager.history() {
        let ours = g.created.at_ns >= start_ns && !rules.iter().any(|r| r.id == g.id);
        if let (true, Some(e)) = (ours, &g.expired) {
            notes.push(format!(
                "rule {:#x} `{}` left at once: {:?}",
                g.id,
                g.expression(),
                e.reason
            ));
        }
    }
}

/// Notes on the attack itself: rules the detector matched but XDP never used, fragment floods
/// no rule can drop, an attack cut short by its time limit.
pub(super) fn attack_notes(
    sc: &Scenario,
    attack: &AttackReport,
    for_attack: &[&RuleOutcome],
    notes: &mut Vec<String>,
) {
    for r in for_attack {
        if r.dropped == 0 && r.detector_hits > 0 {
            notes.push(format!(
                "rule {:#x}: the detector counted ~{} packets as matching it (sampled packets \
                 are matched against the fingerprint in userspace), but XDP dropped none",
                r.id, r.detector_hits
            ));
        }
    }
    if sc.kind == AttackKind::FragmentFlood {
        notes.push(
            "XDP rules never classify non-first fragments: they get their first fragment's \
             verdict, or the fragment policy when it was never seen (xdp-ebpf/src/frag.rs), so \
             a generated rule cannot drop this flood; only `frag_policy = drop` can"
                .into(),
        );
    }
    if attack.timed_out {
        notes.push(format!(
            "the attack hit its time limit after {} of {} frames",
            attack.frames, sc.attack_packets
        ));
    }
}
