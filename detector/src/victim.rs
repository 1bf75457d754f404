//! Victims: per destination address (and per destination prefix), the packet and bit rates of
//! the current tick, a fast EWMA, a slow baseline learnt on calm ticks, a reservoir of recent
//! calm samples (the collateral reference), and the lattice while under attack. The table has a
//! fixed capacity: when full, the least active eighth is evicted (never a victim under attack).

use std::collections::HashMap;

use rampart_rules::Prefix;

use super::config::DetectorConfig;
use super::features::Features;
use super::hash::{MixState, Rng};
use super::lattice::{sampled, FieldValues, Lattice};
use super::reservoir::{Ring, TickReservoir};

/// Counts of the current tick, in packets and bytes the samples stand for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TickCounts {
    pub pkts: f64,
    pub bytes: f64,
    /// Not dropped and not matched by a generated rule.
    pub resid_pkts: f64,
    pub resid_bytes: f64,
    pub resid_samples: u32,
    /// A lattice was wanted this tick but every slot was in use.
    pub slot_refused: bool,
}

/// The lattice and the coverage sample of a victim under (suspected) attack.
#[derive(Debug)]
pub(crate) struct Attack {
    pub lattice: Lattice,
    /// Unmitigated samples of the current tick.
    pub tick_samples: TickReservoir<Features>,
    /// Sketch sub-sampling probability for this tick.
    pub sketch_p: f64,
    /// Consecutive ticks without unmitigated anomaly.
    pub calm: u32,
    pub started_ns: u64,
}

#[derive(Debug)]
pub(crate) struct Victim {
    pub key: Prefix,
    pub tick: TickCounts,
    pub fast_pps: f64,
    pub fast_bps: f64,
    pub base_pps: f64,
    pub base_bps: f64,
    /// Calm ticks learnt into the baseline.
    pub learnt_ticks: u32,
    /// Consecutive anomalous ticks with no generated rule for this victim.
    pub unexplained: u32,
    /// The last closed tick was anomalous (total traffic).
    pub anomalous: bool,
    /// Calm samples of the current tick, committed to `baseline` if the tick stays calm.
    pub pending: Option<TickReservoir<Features>>,
    pub baseline: Option<Ring<Features>>,
    /// The last calm tick, learnt only when the tick after it is calm too: an attack that starts
    /// late in a tick leaves that tick under the threshold, and its samples must not become the
    /// reference the attack's fingerprint is checked against.
    pub held: Option<HeldTick>,
    pub attack: Option<Box<Attack>>,
}

#[derive(Debug)]
pub(crate) struct HeldTick {
    pps: f64,
    bps: f64,
    samples: Vec<Features>,
}

impl Victim {
    fn new(key: Prefix) -> Victim {
        Victim {
            key,
            tick: TickCounts::default(),
            fast_pps: 0.0,
            fast_bps: 0.0,
            base_pps: 0.0,
            base_bps: 0.0,
            learnt_ticks: 0,
            unexplained: 0,
            anomalous: false,
            pending: None,
            baseline: None,
            held: None,
            attack: None,
        }
    }

    /// Activity used to pick eviction victims and baseline slots.
    pub(crate) fn activity(&self) -> f64 {
        self.fast_pps.max(self.base_pps) + self.tick.pkts
    }

    /// The packet and bit thresholds of an anomaly.
    pub(crate) fn thresholds(&self, cfg: &DetectorConfig) -> (f64, f64) {
        (
            cfg.floor_pps.max(cfg.k_baseline * self.base_pps),
            cfg.floor_bps.max(cfg.k_baseline * self.base_bps),
        )
    }

    pub(crate) fn is_anomalous(&self, pps: f64, bps: f64, cfg: &DetectorConfig) -> bool {
        let (tp, tb) = self.thresholds(cfg);
        pps > tp || bps > tb
    }

    /// Counts one sample. Returns true when the victim just became a suspect (its unmitigated
    /// count this tick reached `suspect_fraction` of the threshold) and wants a lattice.
    pub(crate) fn count(
        &mut self,
        f: &Features,
        weight: f64,
        bytes: f64,
        residual: bool,
        cfg: &DetectorConfig,
        rng: &mut Rng,
    ) -> bool {
        self.tick.pkts += weight;
        self.tick.bytes += bytes;
        if !residual {
            return false;
        }
        self.tick.resid_pkts += weight;
        self.tick.resid_bytes += bytes;
        self.tick.resid_samples += 1;
        if let Some(p) = &mut self.pending {
            p.offer(*f, rng);
        }
        if self.attack.is_some() {
            return false;
        }
        let (tp, tb) = self.thresholds(cfg);
        let secs = cfg.tick_secs() * cfg.suspect_fraction;
        self.tick.resid_pkts >= tp * secs || self.tick.resid_bytes * 8.0 >= tb * secs
    }

    /// Feeds an unmitigated sample to the lattice, if any.
    pub(crate) fn observe_attack(
        &mut self,
        f: &Features,
        fv: &FieldValues,
        weight: f64,
        rng: &mut Rng,
    ) {
        if let Some(a) = &mut self.attack {
            a.tick_samples.offer(*f, rng);
            if sampled(a.sketch_p, rng) {
                let w = (weight / a.sketch_p).round().max(1.0) as u64;
                a.lattice.observe(f, fv, w);
            }
        }
    }

    /// Folds the tick into the EWMAs; returns the tick's total `(pps, bps)`.
    pub(crate) fn rates(&mut self, cfg: &DetectorConfig) -> (f64, f64) {
        let secs = cfg.tick_secs();
        let (pps, bps) = (self.tick.pkts / secs, self.tick.bytes * 8.0 / secs);
        self.fast_pps += cfg.fast_alpha * (pps - self.fast_pps);
        self.fast_bps += cfg.fast_alpha * (bps - self.fast_bps);
        (pps, bps)
    }

    /// A calm tick: learns the tick held back before it (now confirmed calm by this one), and
    /// holds this one back in turn.
    pub(crate) fn learn(&mut self, pps: f64, bps: f64, cfg: &DetectorConfig) {
        if let Some(h) = self.held.take() {
            self.commit(h, cfg);
        }
        let samples = self
            .pending
            .as_mut()
            .map(TickReservoir::take)
            .unwrap_or_default();
        self.held = Some(HeldTick { pps, bps, samples });
    }

    /// An anomalous tick: the calm tick held before it may hold the attack's onset; forget it.
    pub(crate) fn forget_held(&mut self) {
        self.held = None;
    }

    /// Learns one tick: baseline rates, and its samples into the reservoir.
    fn commit(&mut self, h: HeldTick, cfg: &DetectorConfig) {
        let a = cfg.slow_alpha.max(1.0 / (self.learnt_ticks as f64 + 1.0));
        self.base_pps += a * (h.pps - self.base_pps);
        self.base_bps += a * (h.bps - self.base_bps);
        self.learnt_ticks = self.learnt_ticks.saturating_add(1);
        if let Some(b) = &mut self.baseline {
            for f in h.samples {
                b.push(f);
            }
        }
    }

    /// Starts the next tick.
    pub(crate) fn reset_tick(&mut self) {
        self.tick = TickCounts::default();
        if let Some(p) = &mut self.pending {
            p.clear();
        }
    }

    /// Decays the fast rates over `n` empty ticks (after an idle gap).
    pub(crate) fn idle(&mut self, n: u32, cfg: &DetectorConfig) {
        let keep = (1.0 - cfg.fast_alpha).powi(n as i32);
        self.fast_pps *= keep;
        self.fast_bps *= keep;
    }

    /// Gives or takes the baseline reservoir slot.
    pub(crate) fn set_baseline_slot(&mut self, on: bool, cfg: &DetectorConfig) {
        match (on, self.baseline.is_some()) {
            (true, false) => {
                self.baseline = Some(Ring::new(cfg.baseline_samples));
                self.pending = Some(TickReservoir::new(cfg.baseline_per_tick));
            }
            (false, true) => {
                self.baseline = None;
                self.pending = None;
            }
            _ => {}
        }
    }

    /// Samples in the baseline reservoir.
    pub(crate) fn reference(&self) -> &[Features] {
        self.baseline.as_ref().map_or(&[], Ring::as_slice)
    }
}

/// A fixed-capacity table of victims keyed by address or prefix.
#[derive(Debug)]
pub(crate) struct VictimTable {
    capacity: usize,
    pub victims: Vec<Victim>,
    index: HashMap<Prefix, usize, MixState>,
    pub evicted: u64,
}

impl VictimTable {
    pub(crate) fn new(capacity: usize, seed: u64) -> VictimTable {
        VictimTable {
            capacity: capacity.max(1),
            victims: Vec::new(),
            index: HashMap::with_hasher(MixState::new(seed)),
            evicted: 0,
        }
    }

    pub(crate) fn get(&self, key: &Prefix) -> Option<&Victim> {
        self.index.get(key).map(|i| &self.victims[*i])
    }

    /// The victim for `key`, created (evicting the least active eighth when full) if needed.
    /// Returns its index and how many lattices eviction freed (none unless nearly every
    /// victim has one: victims under attack are evicted last).
    pub(crate) fn entry(&mut self, key: Prefix) -> (usize, usize) {
        if let Some(i) = self.index.get(&key) {
            return (*i, 0);
        }
        let mut freed = 0;
        if self.victims.len() >= self.capacity {
            freed = self.evict();
        }
        self.victims.push(Victim::new(key));
        let i = self.victims.len() - 1;
        self.index.insert(key, i);
        (i, freed)
    }

    /// Evicts the least active eighth; returns how many of them held an attack state.
    fn evict(&mut self) -> usize {
        let n = (self.capacity / 8).max(1);
        let mut order: Vec<(bool, f64, usize)> = self
            .victims
            .iter()
            .enumerate()
            .map(|(i, v)| (v.attack.is_some(), v.activity(), i))
            .collect();
        let cmp = |a: &(bool, f64, usize), b: &(bool, f64, usize)| {
            a.0.cmp(&b.0).then(a.1.total_cmp(&b.1))
        };
        if n < order.len() {
            order.select_nth_unstable_by(n, cmp);
        }
        let mut gone: Vec<usize> = order[..n.min(order.len())].iter().map(|e| e.2).collect();
        gone.sort_unstable_by(|a, b| b.cmp(a));
        let mut freed = 0;
        for i in gone {
            let v = self.victims.swap_remove(i);
            freed += v.attack.is_some() as usize;
        }
        self.evicted += n as u64;
        self.index.clear();
        for (i, v) in self.victims.iter().enumerate() {
            self.index.insert(v.key, i);
        }
        freed
    }

    pub(crate) fn len(&self) -> usize {
        self.victims.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}
