//! The detection loop without the rules: samples in, per-tick fingerprint proposals out.
//!
//! Per sample: the destination address and prefix victims count it; unmitigated samples of a
//! victim under (suspected) attack feed its lattice and its coverage reservoir; calm samples feed
//! the baseline reservoirs. Per tick: rates are folded into the EWMAs, anomalous victims run
//! selection (addresses first, then prefixes, so a prefix does not re-fingerprint what an address
//! rule already covers), calm ticks are learnt, idle lattices are freed.

use rampart_rules::Prefix;

use super::config::DetectorConfig;
use super::features::Features;
use super::fingerprint::Fingerprint;
use super::hash::Rng;
use super::lattice::{FieldValues, Lattice, NODES};
use super::reservoir::{Ring, TickReservoir};
use super::select::{select, Pick, Reference, ReferenceKind, Round, Selection};
use super::victim::{Attack, Victim, VictimTable};
use super::Sample;

/// Counters of the detection loop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectorStats {
    /// IP samples counted.
    pub samples: u64,
    /// Samples that were not IPv4/IPv6 (ignored).
    pub non_ip: u64,
    pub ticks: u64,
    /// Lattices allocated for suspected attacks.
    pub attacks_started: u64,
    /// Suspect ticks that found every lattice slot in use.
    pub attack_slots_full: u64,
    /// Anomalous victims with no collateral reference (no rule possible).
    pub no_reference: u64,
    /// Selections that left more than `1 − min_coverage` of an attack uncovered (no acceptable
    /// fingerprint for the rest).
    pub unexplained: u64,
    /// Victim entries evicted to make room.
    pub victims_evicted: u64,
}

/// A victim as the detector sees it now.
#[derive(Clone, Debug, PartialEq)]
pub struct VictimStatus {
    /// Address (/32, /128) or prefix.
    pub key: Prefix,
    pub pps: f64,
    pub bps: f64,
    pub baseline_pps: f64,
    pub baseline_bps: f64,
    /// The last closed tick was anomalous.
    pub anomalous: bool,
    /// Since when a lattice counts this victim's traffic (`None`: not counting).
    pub counting_since_ns: Option<u64>,
    /// High-cardinality fields left out of its fingerprints.
    pub excluded_fields: Vec<&'static str>,
    /// Calm samples in its collateral reference.
    pub baseline_samples: usize,
}

/// Memory in use against its fixed bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    pub victims: usize,
    pub victim_capacity: usize,
    pub prefix_victims: usize,
    pub prefix_victim_capacity: usize,
    pub lattices: usize,
    pub lattice_capacity: usize,
    /// Space-Saving counters in use, and the most there can be.
    pub sketch_counters: usize,
    pub sketch_capacity: usize,
    pub baseline_samples: usize,
    pub baseline_capacity: usize,
    pub coverage_samples: usize,
    pub coverage_capacity: usize,
    /// Generated rules (active) and frames they hold; filled by the manager.
    pub rules: usize,
    pub frames: usize,
}

/// What the detector proposes for one victim at the end of a tick.
#[derive(Clone, Debug)]
pub(crate) struct Proposal {
    pub victim: Prefix,
    pub pick: Pick,
    pub reference: ReferenceKind,
    pub victim_pps: f64,
    pub victim_bps: f64,
    pub baseline_pps: f64,
    pub baseline_bps: f64,
    /// Packets per second the fingerprint matched among the unmitigated traffic.
    pub matched_pps: f64,
    pub excluded_fields: Vec<&'static str>,
}

/// Outcome of selection for one victim.
enum Selected {
    Picks(Selection, ReferenceKind),
    /// No unmitigated sample this tick.
    NoSamples,
    /// No calm samples to measure collateral on: no rule is possible.
    NoReference,
}

/// Rates of the tick being closed, per victim (same order as the table).
#[derive(Clone, Copy, Debug, Default)]
struct Closed {
    pps: f64,
    bps: f64,
    rpps: f64,
    rbps: f64,
}

#[derive(Debug)]
pub(crate) struct Detector {
    cfg: DetectorConfig,
    addrs: VictimTable,
    nets: VictimTable,
    global_pending: TickReservoir<Features>,
    /// Last tick's site-wide calm samples, committed only if their victims stay calm one more
    /// tick (the tick an attack starts in may look calm; see `Victim::held`).
    global_held: Vec<Features>,
    global: Ring<Features>,
    tick_start: Option<u64>,
    rng: Rng,
    lattices: usize,
    stats: DetectorStats,
}

impl Detector {
    pub(crate) fn new(cfg: &DetectorConfig) -> Detector {
        Detector {
            addrs: VictimTable::new(cfg.max_victims, cfg.seed ^ 1),
            nets: VictimTable::new(cfg.max_prefix_victims, cfg.seed ^ 2),
            global_pending: TickReservoir::new(cfg.global_per_tick),
            global_held: Vec::new(),
            global: Ring::new(cfg.global_baseline_samples),
            tick_start: None,
            rng: Rng::new(cfg.seed),
            lattices: 0,
            stats: DetectorStats::default(),
            cfg: cfg.clone(),
        }
    }

    fn net_of(&self, addr: &[u8; 16], v4: bool) -> Prefix {
        let len = if v4 {
            96 + self.cfg.prefix_len_v4
        } else {
            self.cfg.prefix_len_v6
        };
        Prefix::new(*addr, len)
    }

    /// End of the current tick (`None` before the first sample).
    pub(crate) fn tick_end(&self) -> Option<u64> {
        self.tick_start.map(|s| s + self.cfg.tick_ns)
    }

    /// Counts one sample. `mitigated`: dropped, or matched by a generated rule.
    pub(crate) fn observe(&mut self, f: &Features, s: &Sample, mitigated: bool) {
        if self.tick_start.is_none() {
            self.tick_start = Some(s.ts_ns - s.ts_ns % self.cfg.tick_ns);
        }
        self.stats.samples += 1;
        let w = s.sample_every.max(1) as f64;
        let bytes = s.wire_len as f64 * w;
        let residual = !mitigated;
        let keys = [Prefix::new(f.dst, 128), self.net_of(&f.dst, f.is_v4())];
        let mut fv: Option<FieldValues> = None;
        for (t, key) in keys.into_iter().enumerate() {
            let table = if t == 0 {
                &mut self.addrs
            } else {
                &mut self.nets
            };
            let (i, freed) = table.entry(key);
            self.lattices -= freed;
            let v = &mut table.victims[i];
            if v.count(f, w, bytes, residual, &self.cfg, &mut self.rng) {
                if self.lattices < self.cfg.max_attacks {
                    v.attack = Some(Box::new(Attack {
                        lattice: Lattice::new(&self.cfg),
                        tick_samples: TickReservoir::new(self.cfg.attack_samples),
                        sketch_p: 1.0,
                        calm: 0,
                        started_ns: s.ts_ns,
                    }));
                    self.lattices += 1;
                    self.stats.attacks_started += 1;
                } else if !v.tick.slot_refused {
                    v.tick.slot_refused = true;
                    self.stats.attack_slots_full += 1;
                }
            }
            // Non-first fragments count toward the rate but not toward fingerprints: XDP rules
            // never see them (they follow their first fragment's verdict or the fragment
            // policy), so a fingerprint of them could never drop anything.
            let classifiable = s.parsed.frag != rampart_common::frag::FRAG_LATER;
            if residual && classifiable && v.attack.is_some() {
                let fv = fv.get_or_insert_with(|| FieldValues::of(f, &self.cfg));
                v.observe_attack(f, fv, w, &mut self.rng);
            }
        }
        if residual {
            self.global_pending.offer(*f, &mut self.rng);
        }
    }

    /// Closes the current tick: returns the fingerprints proposed (at most `room`), given the
    /// generated rules in force (`active`), whose matches are not attack left to cover.
    pub(crate) fn close_tick(&mut self, active: &[Fingerprint], room: usize) -> Vec<Proposal> {
        self.stats.ticks += 1;
        let closed = self.fold_rates();
        let proposals = self.propose(&closed, active, room);
        let covering: Vec<Fingerprint> = active
            .iter()
            .copied()
            .chain(proposals.iter().map(|p| p.pick.fingerprint))
            .collect();
        for (t, closed_t) in closed.iter().enumerate() {
            let table = if t == 0 {
                &mut self.addrs
            } else {
                &mut self.nets
            };
            for (v, c) in table.victims.iter_mut().zip(closed_t.iter()) {
                self.lattices -= end_tick(v, c, &covering, &self.cfg) as usize;
            }
        }
        self.commit_global();
        self.assign_baseline_slots();
        self.stats.victims_evicted = self.addrs.evicted + self.nets.evicted;
        let tick = self.cfg.tick_ns;
        self.tick_start = self.tick_start.map(|s| s + tick);
        proposals
    }

    /// Folds the tick's counts into every victim's rates and anomaly flag; returns the tick's
    /// rates per victim of each table.
    fn fold_rates(&mut self) -> [Vec<Closed>; 2] {
        let cfg = &self.cfg;
        let secs = cfg.tick_secs();
        [&mut self.addrs, &mut self.nets].map(|t| {
            t.victims
                .iter_mut()
                .map(|v| {
                    let (pps, bps) = v.rates(cfg);
                    let (rpps, rbps) = (v.tick.resid_pkts / secs, v.tick.resid_bytes * 8.0 / secs);
                    v.anomalous = v.is_anomalous(pps, bps, cfg)
                        || v.is_anomalous(v.fast_pps, v.fast_bps, cfg);
                    if let Some(a) = &mut v.attack {
                        a.lattice.update_exclusion(cfg);
                    }
                    Closed {
                        pps,
                        bps,
                        rpps,
                        rbps,
                    }
                })
                .collect()
        })
    }

    /// Runs selection for the anomalous victims with a lattice: addresses first, then prefixes
    /// (which then see the address rules just proposed as covering), biggest excess first.
    fn propose(
        &mut self,
        closed: &[Vec<Closed>; 2],
        active: &[Fingerprint],
        room: usize,
    ) -> Vec<Proposal> {
        let mut proposals: Vec<Proposal> = Vec::new();
        let mut fresh: Vec<Fingerprint> = Vec::new();
        for (t, closed_t) in closed.iter().enumerate() {
            let table = if t == 0 { &self.addrs } else { &self.nets };
            let mut order: Vec<usize> = (0..table.victims.len())
                .filter(|i| table.victims[*i].anomalous && table.victims[*i].attack.is_some())
                .collect();
            order.sort_by(|a, b| {
                let ex = |i: &usize| closed_t[*i].rpps - table.victims[*i].base_pps;
                ex(b).total_cmp(&ex(a))
            });
            for i in order {
                if proposals.len() >= room {
                    break;
                }
                let (v, c) = (&table.victims[i], &closed_t[i]);
                let left = room - proposals.len();
                let (sel, reference) = match self.select_for(v, t == 1, c, active, &fresh, left) {
                    Selected::Picks(p, r) => (p, r),
                    Selected::NoSamples => continue,
                    Selected::NoReference => {
                        self.stats.no_reference += 1;
                        continue;
                    }
                };
                if sel.uncovered {
                    self.stats.unexplained += 1;
                }
                let excluded = v
                    .attack
                    .as_ref()
                    .map(|a| a.lattice.excluded_fields())
                    .unwrap_or_default();
                for pick in sel.picks {
                    fresh.push(pick.fingerprint);
                    proposals.push(Proposal {
                        victim: v.key,
                        matched_pps: pick.matched_share * c.rpps,
                        pick,
                        reference,
                        victim_pps: c.pps,
                        victim_bps: c.bps,
                        baseline_pps: v.base_pps,
                        baseline_bps: v.base_bps,
                        excluded_fields: excluded.clone(),
                    });
                }
            }
        }
        proposals
    }

    /// Runs selection for one anomalous victim.
    fn select_for(
        &self,
        v: &Victim,
        is_net: bool,
        c: &Closed,
        active: &[Fingerprint],
        fresh: &[Fingerprint],
        room: usize,
    ) -> Selected {
        let Some(a) = v.attack.as_ref() else {
            return Selected::NoSamples;
        };
        let samples = a.tick_samples.items();
        if samples.is_empty() || c.rpps <= 0.0 {
            return Selected::NoSamples;
        }
        let Some(reference) = self.reference_for(v, is_net) else {
            return Selected::NoReference;
        };
        let residual: Vec<&Features> = samples
            .iter()
            .filter(|f| !active.iter().chain(fresh.iter()).any(|fp| fp.matches(f)))
            .collect();
        let n = samples.len() as f64;
        let round = Round {
            residual,
            baseline_units: n * (v.base_pps / c.rpps).min(1.0),
            attack_units: n * ((c.pps - v.base_pps).max(0.0) / c.rpps),
            candidates: a.lattice.candidates(v.key, &self.cfg),
            reference,
            max_picks: self.cfg.max_rules_per_victim.min(room),
        };
        Selected::Picks(select(&round, &self.cfg), reference.kind)
    }

    /// The victim's own calm samples, else its prefix's, else the site's.
    fn reference_for<'a>(&'a self, v: &'a Victim, is_net: bool) -> Option<Reference<'a>> {
        let min = self.cfg.min_reference_samples.max(1);
        if v.reference().len() >= min {
            return Some(Reference {
                samples: v.reference(),
                kind: ReferenceKind::Victim,
            });
        }
        if !is_net {
            let net = self.net_of(&v.key.addr, v.key.is_v4());
            if let Some(n) = self.nets.get(&net) {
                if n.reference().len() >= min {
                    return Some(Reference {
                        samples: n.reference(),
                        kind: ReferenceKind::Prefix,
                    });
                }
            }
        }
        (self.global.len() >= min).then(|| Reference {
            samples: self.global.as_slice(),
            kind: ReferenceKind::Site,
        })
    }

    /// Commits last tick's site-wide calm samples whose victims were not anomalous in this tick
    /// either, then holds this tick's.
    fn commit_global(&mut self) {
        let held = std::mem::replace(&mut self.global_held, self.global_pending.take());
        for f in held {
            let hot = |t: &VictimTable, k: Prefix| t.get(&k).is_some_and(|v| v.anomalous);
            let net = self.net_of(&f.dst, f.is_v4());
            if !hot(&self.addrs, Prefix::new(f.dst, 128)) && !hot(&self.nets, net) {
                self.global.push(f);
            }
        }
    }

    /// Gives a baseline reservoir to the `max_baselines` most active victims (victims under
    /// attack keep theirs: it is their pre-attack reference).
    fn assign_baseline_slots(&mut self) {
        let mut rank: Vec<(f64, usize, usize)> = Vec::new();
        for (t, table) in [&self.addrs, &self.nets].into_iter().enumerate() {
            for (i, v) in table.victims.iter().enumerate() {
                let keep = v.anomalous && v.baseline.is_some();
                let score = if keep { f64::INFINITY } else { v.activity() };
                rank.push((score, t, i));
            }
        }
        let n = self.cfg.max_baselines;
        if rank.len() > n {
            rank.select_nth_unstable_by(n, |a, b| b.0.total_cmp(&a.0));
        }
        for (k, (_, t, i)) in rank.into_iter().enumerate() {
            let table = if t == 0 {
                &mut self.addrs
            } else {
                &mut self.nets
            };
            table.victims[i].set_baseline_slot(k < n, &self.cfg);
        }
    }

    /// Skips `n` ticks without samples.
    pub(crate) fn skip_idle(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        let cfg = &self.cfg;
        let n32 = n.min(u32::MAX as u64) as u32;
        let keep = (1.0 - cfg.slow_alpha).powi(n32.min(i32::MAX as u32) as i32);
        for table in [&mut self.addrs, &mut self.nets] {
            for v in &mut table.victims {
                v.idle(n32, cfg);
                v.anomalous = false;
                v.unexplained = 0;
                v.base_pps *= keep;
                v.base_bps *= keep;
                if let Some(a) = &mut v.attack {
                    a.calm = a.calm.saturating_add(n32);
                    if a.calm >= cfg.calm_ticks {
                        v.attack = None;
                        self.lattices -= 1;
                    }
                }
            }
        }
        self.tick_start = self.tick_start.map(|s| s + n * cfg.tick_ns);
    }

    pub(crate) fn stats(&self) -> &DetectorStats {
        &self.stats
    }

    pub(crate) fn count_non_ip(&mut self) {
        self.stats.non_ip += 1;
    }

    pub(crate) fn victims(&self) -> Vec<VictimStatus> {
        [&self.addrs, &self.nets]
            .into_iter()
            .flat_map(|t| t.victims.iter())
            .map(|v| VictimStatus {
                key: v.key,
                pps: v.fast_pps,
                bps: v.fast_bps,
                baseline_pps: v.base_pps,
                baseline_bps: v.base_bps,
                anomalous: v.anomalous,
                counting_since_ns: v.attack.as_ref().map(|a| a.started_ns),
                excluded_fields: v
                    .attack
                    .as_ref()
                    .map(|a| a.lattice.excluded_fields())
                    .unwrap_or_default(),
                baseline_samples: v.reference().len(),
            })
            .collect()
    }

    pub(crate) fn footprint(&self) -> Footprint {
        let all = || self.addrs.victims.iter().chain(self.nets.victims.iter());
        let cfg = &self.cfg;
        Footprint {
            victims: self.addrs.len(),
            victim_capacity: self.addrs.capacity(),
            prefix_victims: self.nets.len(),
            prefix_victim_capacity: self.nets.capacity(),
            lattices: all().filter(|v| v.attack.is_some()).count(),
            lattice_capacity: cfg.max_attacks,
            sketch_counters: all()
                .filter_map(|v| v.attack.as_ref())
                .map(|a| a.lattice.monitored())
                .sum(),
            sketch_capacity: cfg.max_attacks * NODES.len() * cfg.topk,
            baseline_samples: all()
                .map(|v| v.reference().len() + v.pending.as_ref().map_or(0, |p| p.len()))
                .sum::<usize>()
                + self.global.len()
                + self.global_pending.len()
                + self.global_held.len(),
            baseline_capacity: cfg.max_baselines * (cfg.baseline_samples + cfg.baseline_per_tick)
                + cfg.global_baseline_samples
                + cfg.global_per_tick,
            coverage_samples: all()
                .filter_map(|v| v.attack.as_ref())
                .map(|a| a.tick_samples.len())
                .sum(),
            coverage_capacity: cfg.max_attacks * cfg.attack_samples,
            rules: 0,
            frames: 0,
        }
    }
}

/// Ends the tick for one victim: learning, lattice lifecycle, counters. Returns true when its
/// lattice was freed.
fn end_tick(v: &mut Victim, c: &Closed, covering: &[Fingerprint], cfg: &DetectorConfig) -> bool {
    let has_rule = covering
        .iter()
        .any(|fp| fp.dst().contains(&v.key) || v.key.contains(&fp.dst()));
    if !v.anomalous {
        v.unexplained = 0;
    } else if !has_rule {
        v.unexplained = v.unexplained.saturating_add(1);
    }
    let learn = !v.anomalous || (v.unexplained >= cfg.max_unexplained_ticks && !has_rule);
    if learn {
        v.learn(c.pps, c.bps, cfg);
    } else {
        v.forget_held();
    }
    let mut freed = false;
    let resid_anomalous = v.is_anomalous(c.rpps, c.rbps, cfg);
    let resid_samples = v.tick.resid_samples;
    if let Some(a) = &mut v.attack {
        a.calm = if resid_anomalous { 0 } else { a.calm + 1 };
        if a.calm >= cfg.calm_ticks {
            v.attack = None;
            freed = true;
        } else {
            a.lattice.end_tick(cfg);
            a.sketch_p = (cfg.sketch_budget as f64 / resid_samples.max(1) as f64).min(1.0);
            a.tick_samples.clear();
        }
    }
    v.reset_tick();
    freed
}
