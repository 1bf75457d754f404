//! Every knob of the detector, with its default and why.

use rampart_common::limits::{MAX_PAYLOAD_MATCH, MAX_RULES};
use rampart_rules::xdp::Action;

use super::features::PAYLOAD_KEEP;
use super::DetectorError;

/// One step of the action ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rung {
    /// `Log`, `RateLimit` or `Drop` (`Pass` is refused by [`DetectorConfig::validate`]).
    pub action: Action,
    /// Move to the next rung after the rule has matched continuously for this long on this rung;
    /// `None` keeps the rule here.
    pub promote_after_ns: Option<u64>,
}

impl Rung {
    pub const fn new(action: Action, promote_after_ns: Option<u64>) -> Rung {
        Rung {
            action,
            promote_after_ns,
        }
    }
}

const SEC: u64 = 1_000_000_000;

/// Detector and mitigation-manager settings. `Default` gives the values documented per field.
///
/// Memory is bounded by these values whatever the traffic. At the defaults the worst case is
/// about 40 MB: baseline reservoirs 256 × 1088 samples × 76 B ≈ 21 MB, lattices 64 × ~220 KB
/// (45 nodes × 16 counters, 64 HyperLogLogs of 1 KiB, 1024 coverage samples) ≈ 14 MB, rules and
/// their history (320 × 64 frames of ≤ 128 B) ≈ 3 MB, victims ≈ 1 MB.
#[derive(Clone, Debug)]
pub struct DetectorConfig {
    // --- time ---
    /// Length of a counting tick (1 s): rates, sketches and selection work per tick.
    pub tick_ns: u64,

    // --- victims ---
    /// Destination addresses tracked (4096). When full, the least active eighth is evicted.
    pub max_victims: usize,
    /// Destination prefixes tracked, for carpet bombing across a prefix (1024).
    pub max_prefix_victims: usize,
    /// Prefix length of an IPv4 prefix victim (24).
    pub prefix_len_v4: u8,
    /// Prefix length of an IPv6 prefix victim (64).
    pub prefix_len_v6: u8,
    /// Static floor: no anomaly below this many packets per second (10 000).
    pub floor_pps: f64,
    /// Static floor in bits per second (100 Mbit/s); an anomaly needs either rate above its
    /// floor and above `k_baseline` times its baseline.
    pub floor_bps: f64,
    /// An anomaly is a rate above `k_baseline` × baseline (5, the published burst factor).
    pub k_baseline: f64,
    /// EWMA weight of the newest tick in the fast rate (0.7: reacts within one tick).
    pub fast_alpha: f64,
    /// EWMA weight of a calm tick in the slow baseline (0.02: a time constant of ~50 ticks).
    /// The first calm ticks of a new victim average with weight `1/n` so a baseline forms fast.
    pub slow_alpha: f64,
    /// Start counting fingerprints for a victim as soon as this fraction of the anomaly
    /// threshold is reached within the current tick (0.5), so the first tick is not lost.
    pub suspect_fraction: f64,
    /// Free a victim's lattice after this many ticks without unmitigated anomaly (5).
    pub calm_ticks: u32,
    /// An anomaly that no rule explains for this many ticks is taken as the new normal: its
    /// samples start feeding the baseline (30). Without it a victim first seen at a high but
    /// legitimate rate would never get a baseline.
    pub max_unexplained_ticks: u32,

    // --- baselines (collateral reference) ---
    /// Victims (addresses or prefixes, most active first) that keep a baseline reservoir (256).
    pub max_baselines: usize,
    /// Samples in one victim's baseline reservoir (1024, ~80 KiB).
    pub baseline_samples: usize,
    /// Samples of one calm tick committed to a victim's reservoir (64): the reservoir spans
    /// the last `baseline_samples / baseline_per_tick` calm ticks.
    pub baseline_per_tick: usize,
    /// Samples in the site-wide reservoir used when a victim has too little history (4096).
    pub global_baseline_samples: usize,
    /// Samples of one tick committed to the site-wide reservoir (128).
    pub global_per_tick: usize,
    /// A reference needs this many samples to measure collateral (64); a victim with fewer uses
    /// its prefix's reservoir, then the site-wide one, ignoring the destination. With none, no
    /// rule is generated (collateral cannot be bounded).
    pub min_reference_samples: usize,

    // --- lattice and counting ---
    /// Victims with a live lattice at once (64); more suspects wait for a free slot.
    pub max_attacks: usize,
    /// Counters per lattice node (Space-Saving k = 16).
    pub topk: usize,
    /// Sketch counts are multiplied by this at each tick end (0.5: an EWMA over ticks).
    pub sketch_decay: f64,
    /// Lattice updates per victim and tick (8192); above it samples are sub-sampled, weights
    /// scaled back, so CPU per victim is bounded whatever the sample rate.
    pub sketch_budget: u32,
    /// Unmitigated samples of the current tick kept per attacked victim to measure coverage
    /// exactly (1024).
    pub attack_samples: usize,
    /// HyperLogLog precision per field and protocol class (10: 1 KiB, ~3% error).
    pub hll_precision: u8,
    /// HyperLogLog window in ticks (10); the estimate spans the current and the previous window.
    pub hll_window_ticks: u32,
    /// A field is high-cardinality (left out of fingerprints) above this many distinct values...
    pub high_cardinality_min: f64,
    /// ...when that is also above this fraction of the samples counted (0.5): nearly every
    /// sample brings a new value, so no value carries signal (spoofed sources, random ports).
    pub high_cardinality_ratio: f64,
    /// Payload offsets (from the first byte after the L4 header) of the two 4-byte windows the
    /// lattice looks at ([0, 12]: protocol magic, and a DNS query name after the 12-byte header).
    pub payload_offsets: [u16; 2],

    // --- selection ---
    /// A fingerprint must cover this share of the unmitigated attack traffic (0.9).
    pub min_coverage: f64,
    /// ...and match at most this share of the victim's pre-attack baseline samples (0.001).
    pub max_collateral: f64,
    /// Keys holding at least this share of a node's sketch are candidates (0.05).
    pub candidate_share: f64,
    /// A vector of a multi-vector attack must be at least this share of the attack (0.1).
    pub min_vector_share: f64,
    /// Fingerprints per victim and tick (4).
    pub max_rules_per_victim: usize,
    /// Bytes a payload fingerprint may grow to by extension over bytes constant in the matched
    /// samples (16, the kernel's limit).
    pub max_payload_match: usize,

    // --- rules ---
    /// Generated rules at once (64); never more than the table holds next to the operator's.
    pub max_rules: usize,
    /// First id of the reserved range of generated rules (0x4000_0000); the range spans
    /// `rule_id_span` ids.
    pub rule_id_base: u32,
    pub rule_id_span: u32,
    /// The action ladder (default log → rate_limit 1000/s → drop, each promoted after 10 s).
    pub ladder: Vec<Rung>,
    /// The rung new rules start on (default 2: drop). A cautious site starts at 0 (log).
    pub start_rung: usize,
    /// A rule expires `max(min_ttl_ns, ttl_gap_factor × last inter-match gap)` after its last
    /// match (60 s, 3).
    pub min_ttl_ns: u64,
    pub ttl_gap_factor: u64,
    /// Matching sampled frames kept per rule for pcap export (64).
    pub frames_per_rule: usize,
    /// Expired rules kept for attribution (256).
    pub history: usize,
    /// Seed of the detector's hashing and sampling (deterministic for a given stream).
    pub seed: u64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            tick_ns: SEC,
            max_victims: 4096,
            max_prefix_victims: 1024,
            prefix_len_v4: 24,
            prefix_len_v6: 64,
            floor_pps: 10_000.0,
            floor_bps: 100e6,
            k_baseline: 5.0,
            fast_alpha: 0.7,
            slow_alpha: 0.02,
            suspect_fraction: 0.5,
            calm_ticks: 5,
            max_unexplained_ticks: 30,
            max_baselines: 256,
            baseline_samples: 1024,
            baseline_per_tick: 64,
            global_baseline_samples: 4096,
            global_per_tick: 128,
            min_reference_samples: 64,
            max_attacks: 64,
            topk: 16,
            sketch_decay: 0.5,
            sketch_budget: 8192,
            attack_samples: 1024,
            hll_precision: 10,
            hll_window_ticks: 10,
            high_cardinality_min: 256.0,
            high_cardinality_ratio: 0.5,
            payload_offsets: [0, 12],
            min_coverage: 0.9,
            max_collateral: 0.001,
            candidate_share: 0.05,
            min_vector_share: 0.1,
            max_rules_per_victim: 4,
            max_payload_match: MAX_PAYLOAD_MATCH,
            max_rules: 64,
            rule_id_base: 0x4000_0000,
            rule_id_span: 0x1000_0000,
            ladder: vec![
                Rung::new(Action::Log, Some(10 * SEC)),
                Rung::new(
                    Action::RateLimit {
                        packets_per_second: 1000,
                        burst: 2000,
                    },
                    Some(10 * SEC),
                ),
                Rung::new(Action::Drop, None),
            ],
            start_rung: 2,
            min_ttl_ns: 60 * SEC,
            ttl_gap_factor: 3,
            frames_per_rule: 64,
            history: 256,
            seed: 0x5eed_0fd0_5d00,
        }
    }
}

impl DetectorConfig {
    /// Checks every value is in its range.
    ///
    /// # Errors
    /// [`DetectorError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), DetectorError> {
        let bad =
            |field: &'static str, why: &'static str| Err(DetectorError::Config { field, why });
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        let share = |x: f64| x > 0.0 && x <= 1.0;
        if self.tick_ns < 1_000_000 {
            return bad("tick_ns", "must be at least 1 ms");
        }
        if self.max_victims == 0 || self.max_prefix_victims == 0 {
            return bad("max_victims", "and max_prefix_victims must be above 0");
        }
        if !(1..=32).contains(&self.prefix_len_v4) || !(1..=128).contains(&self.prefix_len_v6) {
            return bad(
                "prefix_len_v4",
                "must be 1..=32 (and prefix_len_v6 1..=128)",
            );
        }
        if !(self.floor_pps >= 0.0 && self.floor_bps >= 0.0 && self.k_baseline >= 1.0) {
            return bad("k_baseline", "must be at least 1, floors at least 0");
        }
        if !(share(self.fast_alpha) && share(self.slow_alpha)) {
            return bad("fast_alpha", "and slow_alpha must be in (0, 1]");
        }
        if !share(self.suspect_fraction) {
            return bad("suspect_fraction", "must be in (0, 1]");
        }
        if self.baseline_samples == 0 || self.baseline_per_tick == 0 || self.attack_samples == 0 {
            return bad(
                "baseline_samples",
                "baseline_per_tick and attack_samples must be above 0",
            );
        }
        if !unit(self.sketch_decay) || !unit(self.high_cardinality_ratio) {
            return bad(
                "sketch_decay",
                "and high_cardinality_ratio must be in [0, 1]",
            );
        }
        if !(4..=16).contains(&self.hll_precision) {
            return bad("hll_precision", "must be 4..=16");
        }
        if self.topk == 0 || self.sketch_budget == 0 || self.hll_window_ticks == 0 {
            return bad("topk", "sketch_budget and hll_window_ticks must be above 0");
        }
        if self
            .payload_offsets
            .iter()
            .any(|o| *o as usize + 4 > PAYLOAD_KEEP)
        {
            return bad(
                "payload_offsets",
                "windows must end within the first 32 payload bytes",
            );
        }
        let shares = [
            self.max_collateral,
            self.candidate_share,
            self.min_vector_share,
        ];
        if !share(self.min_coverage) || !shares.into_iter().all(unit) {
            return bad("min_coverage", "and the other shares must be in [0, 1]");
        }
        if self.max_rules_per_victim == 0 {
            return bad("max_rules_per_victim", "must be above 0");
        }
        if !(4..=MAX_PAYLOAD_MATCH).contains(&self.max_payload_match) {
            return bad("max_payload_match", "must be 4..=16");
        }
        if self.max_rules > MAX_RULES as usize {
            return bad("max_rules", "is above the kernel table size");
        }
        if self.rule_id_span == 0 || self.rule_id_base.checked_add(self.rule_id_span).is_none() {
            return bad(
                "rule_id_span",
                "must be above 0 and the range must fit in u32",
            );
        }
        if self.ladder.is_empty() || self.start_rung >= self.ladder.len() {
            return bad("start_rung", "must index a rung of a non-empty ladder");
        }
        if self.ladder.iter().any(|r| r.action == Action::Pass) {
            return bad("ladder", "rungs are log, rate_limit or drop");
        }
        if self.frames_per_rule == 0 {
            return bad("frames_per_rule", "must be above 0");
        }
        Ok(())
    }

    pub(crate) fn tick_secs(&self) -> f64 {
        self.tick_ns as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        DetectorConfig::default().validate().unwrap();
        let cfg = DetectorConfig {
            start_rung: 3,
            ..Default::default()
        };
        let e = cfg.validate().unwrap_err();
        assert!(e.to_string().contains("start_rung"), "{e}");
        let cfg = DetectorConfig {
            payload_offsets: [0, 30],
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
    }
}
