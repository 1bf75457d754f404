//! The mitigation manager: turns the detector's proposals into generated rules, keeps them alive
//! while sampled traffic matches them, walks them up the action ladder, expires them, answers
//! operators (pin, delete, promote, pcap), and loads the merged table — the operator's entries
//! first, unchanged, then the generated ones — only when the generated set changes.

use std::collections::VecDeque;
use std::io::Write;

use rampart_common::limits::MAX_RULES;
use rampart_rules::xdp::{compile, RuleSpec};

use super::attribution::{Creation, Expiry, ExpiryReason, GeneratedRule};
use super::detector::{Detector, DetectorStats, Footprint, Proposal, VictimStatus};
use super::features::Features;
use super::fingerprint::Fingerprint;
use super::{DetectorConfig, DetectorError, Sample};
use rampart_tables::{FilterTables, RulesReport};

/// The detector loop and the rules it generated. Time comes from the samples and the caller
/// (`now_ns`, CLOCK_MONOTONIC); nothing here reads a clock.
///
/// # Examples
/// ```
/// use rampart_detector::{DetectorConfig, Manager};
/// use rampart_tables::FakeTables;
///
/// let mut m = Manager::new(DetectorConfig::default(), Vec::new()).unwrap();
/// let mut tables = FakeTables::default();
/// // for s in samples { m.ingest(&s); }
/// assert!(m.poll(1_000_000_000, &mut tables).unwrap().is_none()); // nothing to load yet
/// assert!(m.rules().is_empty());
/// ```
#[derive(Debug)]
pub struct Manager {
    cfg: DetectorConfig,
    operator: Vec<RuleSpec>,
    detector: Detector,
    active: Vec<GeneratedRule>,
    history: VecDeque<GeneratedRule>,
    /// Next id offset in the reserved range.
    next_id: u32,
    /// The generated entries the kernel runs (`None`: unknown, load at the next sync).
    loaded: Option<Vec<RuleSpec>>,
    /// Proposals refused because the generated-rule cap was reached.
    refused: u64,
    reloads: u64,
}

impl Manager {
    /// A manager for `operator` entries, which the kernel is assumed to run already: nothing is
    /// loaded until the generated set changes.
    ///
    /// # Errors
    /// [`DetectorError::Config`] for a bad config; [`DetectorError::ReservedId`] when an operator
    /// entry uses the generated range; [`DetectorError::TooManyOperatorEntries`].
    pub fn new(cfg: DetectorConfig, operator: Vec<RuleSpec>) -> Result<Manager, DetectorError> {
        cfg.validate()?;
        check_operator(&cfg, &operator)?;
        Ok(Manager {
            detector: Detector::new(&cfg),
            cfg,
            operator,
            active: Vec::new(),
            history: VecDeque::new(),
            next_id: 0,
            loaded: Some(Vec::new()),
            refused: 0,
            reloads: 0,
        })
    }

    /// Replaces the operator's entries; the next sync reloads the merged table.
    ///
    /// # Errors
    /// As [`Manager::new`].
    pub fn set_operator_rules(&mut self, operator: Vec<RuleSpec>) -> Result<(), DetectorError> {
        check_operator(&self.cfg, &operator)?;
        self.operator = operator;
        self.loaded = None;
        Ok(())
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// Counts one sampled packet: refreshes the generated rules it matches, then feeds the
    /// detector. Ticks that ended before the sample are closed first.
    pub fn ingest(&mut self, s: &Sample) {
        self.advance_ticks(s.ts_ns);
        let Some(f) = Features::extract(s) else {
            self.detector.count_non_ip();
            return;
        };
        let continuity = 2 * self.cfg.tick_ns;
        let mut mitigated = s.dropped;
        for r in &mut self.active {
            // The kernel's tag is authoritative; untagged samples are matched against the
            // fingerprint (log rungs do not decide, and samples may predate the load).
            let hit = s.rule_id == Some(r.id) || (s.rule_id.is_none() && r.fingerprint.matches(&f));
            if hit {
                r.record_match(s, self.cfg.frames_per_rule, continuity);
                mitigated = true;
            }
        }
        self.detector.observe(&f, s, mitigated);
    }

    /// Closes the ticks that ended by `now_ns`, then expires and promotes rules at `now_ns`.
    pub fn advance(&mut self, now_ns: u64) {
        self.advance_ticks(now_ns);
        self.maintain(now_ns);
    }

    /// Loads operator + generated entries if the generated set changed since the last load.
    /// Returns the load report, or `None` when nothing changed.
    ///
    /// # Errors
    /// [`DetectorError::Tables`] when loading fails (retried at the next sync);
    /// [`DetectorError::Compile`] when even the operator's entries alone do not compile.
    /// Generated rules that keep the table from compiling are expired, newest first, with
    /// [`ExpiryReason::Refused`].
    pub fn sync(
        &mut self,
        tables: &mut (impl FilterTables + ?Sized),
    ) -> Result<Option<RulesReport>, DetectorError> {
        loop {
            let generated = self.generated_entries();
            if self.loaded.as_ref() == Some(&generated) {
                return Ok(None);
            }
            let mut all = self.operator.clone();
            all.extend(generated.iter().cloned());
            match compile(&all) {
                Ok(t) => {
                    let report = tables.load_rules(&t)?;
                    self.loaded = Some(generated);
                    self.reloads += 1;
                    return Ok(Some(report));
                }
                Err(e) if !self.active.is_empty() => {
                    let at = self.active.last().map_or(0, |r| r.created.at_ns);
                    let why = e.to_string();
                    let i = self.active.len() - 1;
                    self.expire(i, at, ExpiryReason::Refused { why });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// [`Manager::advance`] then [`Manager::sync`].
    ///
    /// # Errors
    /// As [`Manager::sync`].
    pub fn poll(
        &mut self,
        now_ns: u64,
        tables: &mut (impl FilterTables + ?Sized),
    ) -> Result<Option<RulesReport>, DetectorError> {
        self.advance(now_ns);
        self.sync(tables)
    }

    /// The merged table: the operator's entries, then one entry per active generated rule.
    pub fn entries(&self) -> Vec<RuleSpec> {
        let mut all = self.operator.clone();
        all.extend(self.generated_entries());
        all
    }

    fn generated_entries(&self) -> Vec<RuleSpec> {
        self.active
            .iter()
            .map(|r| r.fingerprint.to_spec(r.id, r.action))
            .collect()
    }

    /// Active generated rules, oldest first.
    pub fn rules(&self) -> &[GeneratedRule] {
        &self.active
    }

    /// Expired rules, oldest first (the last [`DetectorConfig::history`]).
    pub fn history(&self) -> impl Iterator<Item = &GeneratedRule> {
        self.history.iter()
    }

    /// An active or expired rule.
    pub fn rule(&self, id: u32) -> Option<&GeneratedRule> {
        self.active
            .iter()
            .find(|r| r.id == id)
            .or_else(|| self.history.iter().rev().find(|r| r.id == id))
    }

    fn active_mut(&mut self, id: u32) -> Result<&mut GeneratedRule, DetectorError> {
        let known = self.history.iter().any(|r| r.id == id);
        self.active.iter_mut().find(|r| r.id == id).ok_or(if known {
            DetectorError::Expired { id }
        } else {
            DetectorError::UnknownRule { id }
        })
    }

    /// Keeps the rule until deleted or unpinned.
    ///
    /// # Errors
    /// [`DetectorError::UnknownRule`], [`DetectorError::Expired`].
    pub fn pin(&mut self, id: u32) -> Result<(), DetectorError> {
        self.active_mut(id)?.pinned = true;
        Ok(())
    }

    /// Lets the rule expire again (its TTL runs from its last match).
    ///
    /// # Errors
    /// [`DetectorError::UnknownRule`], [`DetectorError::Expired`].
    pub fn unpin(&mut self, id: u32) -> Result<(), DetectorError> {
        self.active_mut(id)?.pinned = false;
        Ok(())
    }

    /// Removes the rule now (pinned or not); the next sync unloads it.
    ///
    /// # Errors
    /// [`DetectorError::UnknownRule`], [`DetectorError::Expired`].
    pub fn delete(&mut self, id: u32, now_ns: u64) -> Result<(), DetectorError> {
        self.active_mut(id)?;
        let i = self
            .active
            .iter()
            .position(|r| r.id == id)
            .expect("found above");
        self.expire(i, now_ns, ExpiryReason::Deleted);
        Ok(())
    }

    /// The rule (active or expired) as a rule-file entry with the permanent id `new_id`.
    ///
    /// # Errors
    /// [`DetectorError::UnknownRule`]; [`DetectorError::ReservedId`] when `new_id` is in the
    /// generated range.
    pub fn promote(&self, id: u32, new_id: u32) -> Result<String, DetectorError> {
        let (base, end) = id_range(&self.cfg);
        if (base..end).contains(&new_id) {
            return Err(DetectorError::ReservedId {
                id: new_id,
                base,
                end,
            });
        }
        let r = self.rule(id).ok_or(DetectorError::UnknownRule { id })?;
        Ok(r.to_rule_entry(new_id))
    }

    /// Writes the rule's last matched frames as a pcap file.
    ///
    /// # Errors
    /// [`DetectorError::UnknownRule`], [`DetectorError::Pcap`].
    pub fn write_pcap(&self, id: u32, w: impl Write) -> Result<(), DetectorError> {
        self.rule(id)
            .ok_or(DetectorError::UnknownRule { id })?
            .write_pcap(w)
    }

    /// Victims tracked (addresses and prefixes).
    pub fn victims(&self) -> Vec<VictimStatus> {
        self.detector.victims()
    }

    pub fn stats(&self) -> ManagerStats {
        ManagerStats {
            detector: self.detector.stats().clone(),
            refused: self.refused,
            reloads: self.reloads,
        }
    }

    /// Memory in use against its bounds.
    pub fn footprint(&self) -> Footprint {
        let mut f = self.detector.footprint();
        f.rules = self.active.len();
        f.frames = self
            .active
            .iter()
            .chain(self.history.iter())
            .map(|r| r.frames.len())
            .sum();
        f
    }

    /// How many generated rules may exist now.
    fn cap(&self) -> usize {
        self.cfg
            .max_rules
            .min((MAX_RULES as usize).saturating_sub(self.operator.len()))
    }

    fn advance_ticks(&mut self, now_ns: u64) {
        while let Some(end) = self.detector.tick_end() {
            if now_ns < end {
                break;
            }
            let active: Vec<Fingerprint> = self.active.iter().map(|r| r.fingerprint).collect();
            let room = self.cap().saturating_sub(self.active.len());
            let proposals = self.detector.close_tick(&active, room.max(1));
            for p in proposals {
                self.create(p, end);
            }
            self.maintain(end);
            // Ticks that passed with no sample at all.
            let idle = (now_ns - end) / self.cfg.tick_ns;
            if idle > 1 {
                self.detector.skip_idle(idle - 1);
            }
        }
    }

    fn create(&mut self, p: Proposal, at_ns: u64) {
        if self.active.len() >= self.cap() {
            self.refused += 1;
            return;
        }
        if self
            .active
            .iter()
            .any(|r| r.fingerprint == p.pick.fingerprint)
        {
            return;
        }
        let Some(id) = self.next_free_id() else {
            self.refused += 1;
            return;
        };
        let rung = self.cfg.start_rung;
        let action = self.cfg.ladder[rung].action;
        let rule = GeneratedRule {
            id,
            fingerprint: p.pick.fingerprint,
            created: Creation {
                at_ns,
                victim: p.victim,
                coverage: p.pick.coverage,
                collateral: p.pick.collateral,
                reference: p.reference,
                victim_pps: p.victim_pps,
                victim_bps: p.victim_bps,
                baseline_pps: p.baseline_pps,
                baseline_bps: p.baseline_bps,
                attack_pps: p.matched_pps,
                excluded_fields: p.excluded_fields,
            },
            rung,
            action,
            rung_since_ns: at_ns,
            actions: vec![(at_ns, action)],
            hits: 0,
            sampled_matches: 0,
            first_match_ns: None,
            last_match_ns: None,
            last_gap_ns: 0,
            matching_since_ns: None,
            frames: VecDeque::new(),
            pinned: false,
            expired: None,
        };
        log::info!(
            "detector: rule {:#x} for {} ({:?}): {} — coverage {:.3}, collateral {:.4}",
            id,
            p.victim,
            action,
            rule.fingerprint,
            rule.created.coverage,
            rule.created.collateral
        );
        self.active.push(rule);
    }

    fn next_free_id(&mut self) -> Option<u32> {
        for _ in 0..self.cfg.rule_id_span.min(1 << 20) {
            let id = self.cfg.rule_id_base + self.next_id;
            self.next_id = (self.next_id + 1) % self.cfg.rule_id_span;
            if !self.active.iter().any(|r| r.id == id) {
                return Some(id);
            }
        }
        None
    }

    /// Expiry and ladder promotion at `now_ns`.
    fn maintain(&mut self, now_ns: u64) {
        let (ttl, factor) = (self.cfg.min_ttl_ns, self.cfg.ttl_gap_factor);
        let mut i = 0;
        while i < self.active.len() {
            let r = &self.active[i];
            match r.expires_at(ttl, factor) {
                Some(at) if now_ns >= at => {
                    let reason = ExpiryReason::Idle {
                        last_match_ns: r.last_match_ns,
                        ttl_ns: r.ttl(ttl, factor),
                    };
                    self.expire(i, now_ns, reason);
                }
                _ => i += 1,
            }
        }
        let continuity = 2 * self.cfg.tick_ns;
        for r in &mut self.active {
            let Some(after) = self.cfg.ladder[r.rung].promote_after_ns else {
                continue;
            };
            if r.rung + 1 >= self.cfg.ladder.len() {
                continue;
            }
            let (Some(since), Some(last)) = (r.matching_since_ns, r.last_match_ns) else {
                continue;
            };
            let still = now_ns.saturating_sub(last) <= continuity;
            if still && now_ns.saturating_sub(since.max(r.rung_since_ns)) >= after {
                r.rung += 1;
                r.action = self.cfg.ladder[r.rung].action;
                r.rung_since_ns = now_ns;
                r.actions.push((now_ns, r.action));
                log::info!("detector: rule {:#x} promoted to {:?}", r.id, r.action);
            }
        }
    }

    fn expire(&mut self, i: usize, at_ns: u64, reason: ExpiryReason) {
        let mut r = self.active.remove(i);
        log::info!("detector: rule {:#x} expired: {:?}", r.id, reason);
        r.expired = Some(Expiry { at_ns, reason });
        if self.history.len() >= self.cfg.history.max(1) {
            self.history.pop_front();
        }
        self.history.push_back(r);
    }
}

/// Counters of the manager and its detector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagerStats {
    pub detector: DetectorStats,
    /// Proposals refused for lack of room (rule cap or id range).
    pub refused: u64,
    /// Table loads done.
    pub reloads: u64,
}

fn id_range(cfg: &DetectorConfig) -> (u32, u32) {
    (cfg.rule_id_base, cfg.rule_id_base + cfg.rule_id_span)
}

fn check_operator(cfg: &DetectorConfig, operator: &[RuleSpec]) -> Result<(), DetectorError> {
    let (base, end) = id_range(cfg);
    if let Some(r) = operator.iter().find(|r| (base..end).contains(&r.id)) {
        return Err(DetectorError::ReservedId {
            id: r.id,
            base,
            end,
        });
    }
    if operator.len() >= MAX_RULES as usize {
        return Err(DetectorError::TooManyOperatorEntries {
            count: operator.len(),
            max: MAX_RULES,
        });
    }
    Ok(())
}
