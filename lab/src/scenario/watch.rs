//! The loop's bookkeeping across the phases of one scenario: which rules are the scenario's,
//! when they first dropped and expired, the busiest victims seen, and why no rule came.

use super::*;

/// Counts the frames the sender takes, so the count at any moment says how many were handed to
/// the kernel (at most one more: the frame waiting for its turn).
pub(super) struct Counted<'a, I> {
    pub(super) inner: I,
    pub(super) taken: &'a AtomicU64,
}

impl<I: Iterator<Item = Vec<u8>>> Iterator for Counted<'_, I> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let f = self.inner.next();
        if f.is_some() {
            self.taken.fetch_add(1, Ordering::SeqCst);
        }
        f
    }
}

/// State of the loop across the phases of one scenario.
pub(super) struct Watch<'p, P: FnMut(&Progress)> {
    pub(super) kind: AttackKind,
    pub(super) start: Instant,
    /// Rules active before the scenario: not its own.
    pub(super) pre: HashSet<u32>,
    pub(super) rules: Vec<RuleOutcome>,
    pub(super) last_pass: Option<Instant>,
    pub(super) last_poll: Option<Instant>,
    pub(super) last_tick: (Instant, Snapshot),
    pub(super) sample_every: u32,
    /// The longest pass (wait for samples, ingest, tick, table load).
    pub(super) longest_pass: Duration,
    /// The busiest address and prefix victims the detector saw during the attack and after (at
    /// progress times), and at how many of those times each was anomalous.
    pub(super) peaks: [Option<VictimStatus>; 2],
    pub(super) anomalous_ticks: [u32; 2],
    pub(super) noted: u32,
    pub(super) progress: &'p mut P,
}

impl<'p, P: FnMut(&Progress)> Watch<'p, P> {
    /// The state at the start of a scenario: `pre` are the rules already active, `counters`
    /// the data plane's counters now.
    pub(super) fn new(
        kind: AttackKind,
        start: Instant,
        pre: HashSet<u32>,
        counters: Snapshot,
        progress: &'p mut P,
    ) -> Self {
        Watch {
            kind,
            start,
            pre,
            rules: Vec::new(),
            last_pass: None,
            last_poll: None,
            last_tick: (Instant::now(), counters),
            sample_every: 0,
            longest_pass: Duration::ZERO,
            peaks: [None, None],
            anomalous_ticks: [0, 0],
            noted: 0,
            progress,
        }
    }

    /// One pass of the loop, then the rule bookkeeping; `taken`: attack frames sent so far, read
    /// after the pass (a pass that ingests a backlog of samples lasts a while).
    pub(super) fn step(
        &mut self,
        dp: &mut Dataplane,
        det: &mut DetectionLoop,
        phase: &'static str,
        taken: &AtomicU64,
    ) -> Result<(), ScenarioError> {
        if let Some(rest) = self
            .last_pass
            .and_then(|t| MIN_PASS_GAP.checked_sub(t.elapsed()))
        {
            std::thread::sleep(rest);
        }
        let began = Instant::now();
        self.last_pass = Some(began);
        let pass = det.pass(dp, Duration::from_millis(20))?;
        let frames = taken.load(Ordering::SeqCst);
        let now = monotonic_ns()?;
        self.longest_pass = self.longest_pass.max(began.elapsed());
        self.sample_every = pass.sample_every;
        for g in det.manager.rules() {
            if self.pre.contains(&g.id) || self.rules.iter().any(|r| r.id == g.id) {
                continue;
            }
            self.rules.push(RuleOutcome {
                id: g.id,
                expression: g.expression(),
                created: g.created.clone(),
                loaded_ns: now,
                frames_before: frames,
                before_attack: phase == "calm",
                matched: 0,
                dropped: 0,
                detector_hits: 0,
                first_drop_ns: None,
                expired_ns: None,
                expiry: None,
            });
        }
        let due = pass.reloaded || self.last_poll.is_none_or(|t| t.elapsed() >= COUNTER_POLL);
        if due {
            let snap = dp.counters()?;
            let now = monotonic_ns()?;
            self.last_poll = Some(Instant::now());
            for r in self.rules.iter_mut().filter(|r| r.expired_ns.is_none()) {
                if let Some(c) = snap.rule(r.id) {
                    r.matched = r.matched.max(c.matched.packets);
                    r.dropped = r.dropped.max(c.dropped.packets);
                    if r.dropped > 0 && r.first_drop_ns.is_none() {
                        r.first_drop_ns = Some(now);
                    }
                }
            }
            let secs = self.last_tick.0.elapsed().as_secs_f64();
            if secs >= 1.0 {
                let d = self.last_tick.1.delta(&snap);
                (self.progress)(&Progress {
                    kind: self.kind,
                    phase,
                    elapsed: self.start.elapsed(),
                    edge_pps: d.packets() as f64 / secs,
                    dropped_pps: d.dropped() as f64 / secs,
                    rules_active: det.manager.rules().len(),
                    sample_every: self.sample_every,
                });
                self.last_tick = (Instant::now(), snap);
                if phase != "calm" {
                    self.note_victims(det);
                }
            }
        }
        for r in self.rules.iter_mut() {
            let Some(g) = det.manager.rule(r.id) else {
                continue;
            };
            r.detector_hits = g.hits;
            if r.expired_ns.is_none() {
                if let Some(e) = &g.expired {
                    r.expired_ns = Some(e.at_ns);
                    r.expiry = Some(match &e.reason {
                        ExpiryReason::Idle { ttl_ns, .. } => format!(
                            "idle: no sampled match for its TTL of {:.1} s",
                            *ttl_ns as f64 / 1e9
                        ),
                        ExpiryReason::Deleted => "deleted".into(),
                        ExpiryReason::Refused { why } => format!("refused by the tables: {why}"),
                    });
                }
            }
        }
        Ok(())
    }
}

impl<P: FnMut(&Progress)> Watch<'_, P> {
    /// Why no rule came for the attack, when none did (from what the detector saw).
    pub(super) fn diagnosis(
        &self,
        det: &DetectionLoop,
        stats_before: &ManagerStats,
        samples_lost: u64,
    ) -> Option<String> {
        self.rules.iter().all(|r| r.before_attack).then(|| {
            no_rule_diagnosis(
                &self.peaks,
                self.anomalous_ticks,
                self.noted,
                det.manager.config().floor_pps,
                stats_before,
                &det.manager.stats(),
                samples_lost,
            )
        })
    }

    /// Keeps the busiest address victim and the busiest prefix victim, and counts the progress
    /// times at which some victim of each kind was anomalous.
    pub(super) fn note_victims(&mut self, det: &DetectionLoop) {
        let mut anomalous = [false; 2];
        for v in det.manager.victims() {
            let slot = usize::from(v.key.len != 128);
            anomalous[slot] |= v.anomalous;
            if self.peaks[slot].as_ref().is_none_or(|p| v.pps > p.pps) {
                self.peaks[slot] = Some(v);
            }
        }
        for (n, a) in self.anomalous_ticks.iter_mut().zip(anomalous) {
            *n += u32::from(a);
        }
        self.noted += 1;
    }
}

/// Why no rule came, from what the detector saw: for a result without one.
fn no_rule_diagnosis(
    peaks: &[Option<VictimStatus>; 2],
    anomalous: [u32; 2],
    noted: u32,
    floor_pps: f64,
    before: &ManagerStats,
    after: &ManagerStats,
    samples_lost: u64,
) -> String {
    let (b, a) = (&before.detector, &after.detector);
    let victims: Vec<String> = peaks
        .iter()
        .zip(anomalous)
        .zip(["address", "prefix"])
        .filter_map(|((v, n), kind)| v.as_ref().map(|v| (v, n, kind)))
        .map(|(v, n, kind)| {
            format!(
                "the busiest {kind} victim, {}, peaked at {:.0} pps (baseline {:.0} pps, {} calm \
                 reference samples, left out: {}); some {kind} victim was anomalous at {n} of \
                 {noted} progress ticks",
                v.key,
                v.pps,
                v.baseline_pps,
                v.baseline_samples,
                if v.excluded_fields.is_empty() {
                    "nothing".to_string()
                } else {
                    v.excluded_fields.join(", ")
                }
            )
        })
        .collect();
    format!(
        "no rule: {} (floor {floor_pps:.0} pps); during the scenario the detector counted {} \
         samples, started {} lattices, had {} anomalies without a collateral reference and {} \
         selections that left the attack uncovered; {} proposals were refused; {samples_lost} \
         samples were lost in the ring",
        if victims.is_empty() {
            "the detector tracked no victim".to_string()
        } else {
            victims.join("; ")
        },
        a.samples.saturating_sub(b.samples),
        a.attacks_started.saturating_sub(b.attacks_started),
        a.no_reference.saturating_sub(b.no_reference),
        a.unexplained.saturating_sub(b.unexplained),
        after.refused.saturating_sub(before.refused)
    )
}

pub(super) fn ms_between(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 / 1e6
}
