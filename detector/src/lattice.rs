//! The candidate lattice: a fixed list of fingerprint templates ("nodes"), each a set of fields
//! taken exactly while the others are wildcards, ordered from most to least specific. Per
//! attacked victim, every node has a Space-Saving sketch of the values its fields take, and every
//! field a HyperLogLog so high-cardinality fields (spoofed sources, random ports) are left out.
//! A sample costs O(nodes): one hash per field, one combination and one sketch update per node.

use rampart_rules::Prefix;

use super::config::DetectorConfig;
use super::features::Features;
use super::fingerprint::{Fingerprint, PayloadBytes};
use super::hash::{mix, Rng};
use super::sketch::{Hll, SpaceSaving};

/// Fields of the lattice (bit positions of a node mask).
const PROTO: u16 = 1 << 0;
const FLAGS: u16 = 1 << 1;
const SPORT: u16 = 1 << 2;
const DPORT: u16 = 1 << 3;
const LEN: u16 = 1 << 4;
const TTL: u16 = 1 << 5;
const PAY0: u16 = 1 << 6;
const PAY1: u16 = 1 << 7;
const SRC: u16 = 1 << 8;
const SRCNET: u16 = 1 << 9;
const FIELDS: usize = 10;
/// Fields with a cardinality estimate (protocol and TCP flags have small domains).
const COUNTED: [u16; 8] = [SPORT, DPORT, LEN, TTL, PAY0, PAY1, SRC, SRCNET];

/// Field names, for reports.
pub(crate) const FIELD_NAMES: [&str; FIELDS] = [
    "ip.proto",
    "tcp.flags",
    "srcport",
    "dstport",
    "ip.len",
    "ip.ttl",
    "payload window 0",
    "payload window 1",
    "ip.src",
    "ip.src prefix",
];

/// The lattice, most specific first (the destination is implicit in every node). Ports and TCP
/// flags always come with the protocol; the source appears only in a few nodes, and only while
/// its cardinality is low (a single attacking host or network).
pub(crate) const NODES: [u16; 45] = [
    // five fields
    PROTO | FLAGS | DPORT | LEN | TTL,
    // four
    PROTO | FLAGS | DPORT | LEN,
    PROTO | FLAGS | DPORT | TTL,
    PROTO | FLAGS | SPORT | DPORT,
    PROTO | SPORT | LEN | TTL,
    PROTO | DPORT | LEN | TTL,
    PROTO | SPORT | DPORT | LEN,
    PROTO | DPORT | LEN | PAY0,
    PROTO | DPORT | LEN | PAY1,
    PROTO | SPORT | LEN | PAY0,
    PROTO | SPORT | LEN | PAY1,
    PROTO | FLAGS | DPORT | PAY0,
    PROTO | FLAGS | LEN | TTL,
    SRC | PROTO | FLAGS | DPORT,
    // three
    PROTO | FLAGS | DPORT,
    PROTO | FLAGS | SPORT,
    PROTO | FLAGS | LEN,
    PROTO | FLAGS | TTL,
    PROTO | SPORT | LEN,
    PROTO | SPORT | TTL,
    PROTO | SPORT | DPORT,
    PROTO | DPORT | LEN,
    PROTO | DPORT | TTL,
    PROTO | DPORT | PAY0,
    PROTO | DPORT | PAY1,
    PROTO | SPORT | PAY0,
    PROTO | SPORT | PAY1,
    PROTO | LEN | TTL,
    SRC | PROTO | DPORT,
    SRC | PROTO | SPORT,
    SRCNET | PROTO | DPORT,
    SRCNET | PROTO | SPORT,
    // two
    PROTO | FLAGS,
    PROTO | SPORT,
    PROTO | DPORT,
    PROTO | LEN,
    PROTO | TTL,
    PROTO | PAY0,
    PROTO | PAY1,
    SRC | PROTO,
    SRCNET | PROTO,
    // one
    PROTO,
    SRC,
    SRCNET,
    LEN,
];

/// The per-field hashes of one sample and which fields it has.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldValues {
    hashes: [u64; FIELDS],
    present: u16,
}

fn src_prefix_len(f: &Features, cfg: &DetectorConfig) -> u8 {
    if f.is_v4() {
        96 + cfg.prefix_len_v4
    } else {
        cfg.prefix_len_v6
    }
}

fn addr_hash(seed: u64, a: &[u8; 16]) -> u64 {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&a[..8]);
    hi.copy_from_slice(&a[8..]);
    mix(mix(seed, u64::from_le_bytes(lo)), u64::from_le_bytes(hi))
}

impl FieldValues {
    pub(crate) fn of(f: &Features, cfg: &DetectorConfig) -> FieldValues {
        let mut v = FieldValues {
            hashes: [0; FIELDS],
            present: PROTO | LEN | TTL | SRC | SRCNET,
        };
        let h = |bit: u16, x: u64| mix(0x1000 + bit as u64, x);
        v.hashes[0] = h(PROTO, f.proto as u64);
        v.hashes[4] = h(LEN, f.ip_len as u64);
        v.hashes[5] = h(TTL, f.ttl as u64);
        v.hashes[8] = addr_hash(SRC as u64, &f.src);
        let net = Prefix::new(f.src, src_prefix_len(f, cfg));
        v.hashes[9] = addr_hash(SRCNET as u64, &net.addr);
        if f.has_flags {
            v.present |= FLAGS;
            v.hashes[1] = h(FLAGS, f.tcp_flags as u64);
        }
        if f.has_ports {
            v.present |= SPORT | DPORT;
            v.hashes[2] = h(SPORT, f.sport as u64);
            v.hashes[3] = h(DPORT, f.dport as u64);
        }
        for (i, bit) in [(6, PAY0), (7, PAY1)] {
            let off = cfg.payload_offsets[i - 6] as usize;
            if let Some(w) = f.payload_at(off, 4) {
                v.present |= bit;
                v.hashes[i] = h(bit, u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64);
            }
        }
        v
    }

    /// The hash of the node's key, or `None` when the sample lacks one of its fields.
    fn node_hash(&self, node: u16) -> Option<u64> {
        if self.present & node != node {
            return None;
        }
        let mut h = node as u64;
        let mut bits = node;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            h = mix(h, self.hashes[i]);
            bits &= bits - 1;
        }
        Some(h)
    }
}

/// The fingerprint of node `node` for the sample `f`, to destination `dst`.
pub(crate) fn project(node: u16, f: &Features, dst: Prefix, cfg: &DetectorConfig) -> Fingerprint {
    let mut fp = Fingerprint::new(dst);
    if node & SRC != 0 {
        fp = fp.with_src(Prefix::new(f.src, 128));
    }
    if node & SRCNET != 0 {
        fp = fp.with_src(Prefix::new(f.src, src_prefix_len(f, cfg)));
    }
    if node & PROTO != 0 {
        fp = fp.with_proto(f.proto);
    }
    if node & FLAGS != 0 && f.has_flags {
        fp = fp.with_tcp_flags(f.tcp_flags);
    }
    if node & SPORT != 0 && f.has_ports {
        fp = fp.with_sport(f.proto, f.sport);
    }
    if node & DPORT != 0 && f.has_ports {
        fp = fp.with_dport(f.proto, f.dport);
    }
    if node & LEN != 0 {
        fp = fp.with_ip_len(f.ip_len);
    }
    if node & TTL != 0 {
        fp = fp.with_ttl(f.ttl);
    }
    for (i, bit) in [PAY0, PAY1].into_iter().enumerate() {
        let off = cfg.payload_offsets[i];
        if node & bit != 0 {
            if let Some(p) = f
                .payload_at(off as usize, 4)
                .and_then(|w| PayloadBytes::new(off, w))
            {
                fp = fp.with_payload(p);
            }
        }
    }
    fp
}

/// Cardinality classes: a field can be random in one protocol's traffic and constant in
/// another's (a SYN flood's source ports next to an NTP reflection's), so estimates are kept per
/// protocol class, plus one over everything for the nodes without a protocol.
const CLASSES: usize = 4;
const ALL: usize = 3;

fn class_of(proto: u8) -> usize {
    match proto {
        6 => 0,
        17 => 1,
        _ => 2,
    }
}

/// The class whose exclusions apply to `node` for a sample of protocol `proto`.
fn node_class(node: u16, proto: u8) -> usize {
    if node & PROTO != 0 {
        class_of(proto)
    } else {
        ALL
    }
}

/// Counting state of one attacked victim.
#[derive(Debug)]
pub(crate) struct Lattice {
    sketches: Vec<SpaceSaving<Features>>,
    /// Weight offered to the lattice (decayed like the sketches).
    total: u64,
    /// `CLASSES × COUNTED` estimators for the current and the previous window.
    hll: Vec<Hll>,
    hll_prev: Vec<Hll>,
    counted: [[u64; COUNTED.len()]; CLASSES],
    counted_prev: [[u64; COUNTED.len()]; CLASSES],
    window_age: u32,
    /// Fields currently left out, per class (bits of a node mask).
    excluded: [u16; CLASSES],
}

impl Lattice {
    pub(crate) fn new(cfg: &DetectorConfig) -> Lattice {
        let hlls = || {
            (0..CLASSES * COUNTED.len())
                .map(|_| Hll::new(cfg.hll_precision))
                .collect()
        };
        Lattice {
            sketches: NODES.iter().map(|_| SpaceSaving::new(cfg.topk)).collect(),
            total: 0,
            hll: hlls(),
            hll_prev: hlls(),
            counted: [[0; COUNTED.len()]; CLASSES],
            counted_prev: [[0; COUNTED.len()]; CLASSES],
            window_age: 0,
            excluded: [0; CLASSES],
        }
    }

    /// Counts one unmitigated sample of weight `weight` (packets it stands for).
    pub(crate) fn observe(&mut self, f: &Features, fv: &FieldValues, weight: u64) {
        self.total += weight;
        let class = class_of(f.proto);
        for c in [class, ALL] {
            for (i, bit) in COUNTED.iter().enumerate() {
                if fv.present & bit != 0 {
                    let idx = bit.trailing_zeros() as usize;
                    self.hll[c * COUNTED.len() + i].insert_hash(fv.hashes[idx]);
                    self.counted[c][i] += 1;
                }
            }
        }
        for (node, sketch) in NODES.iter().zip(self.sketches.iter_mut()) {
            if node & self.excluded[node_class(*node, f.proto)] != 0 {
                continue;
            }
            if let Some(h) = fv.node_hash(*node) {
                sketch.offer(h, weight, || *f);
            }
        }
    }

    /// Recomputes which fields are high-cardinality over the current and previous window.
    pub(crate) fn update_exclusion(&mut self, cfg: &DetectorConfig) {
        for c in 0..CLASSES {
            self.excluded[c] = 0;
            for (i, bit) in COUNTED.iter().enumerate() {
                let k = c * COUNTED.len() + i;
                let est = self.hll[k].union_estimate(&self.hll_prev[k]);
                let n = (self.counted[c][i] + self.counted_prev[c][i]) as f64;
                if est > cfg.high_cardinality_min && est > cfg.high_cardinality_ratio * n {
                    self.excluded[c] |= bit;
                }
            }
        }
    }

    /// Names of the fields left out (in some protocol's traffic).
    pub(crate) fn excluded_fields(&self) -> Vec<&'static str> {
        let any = self.excluded.iter().fold(0, |a, b| a | b);
        (0..FIELDS)
            .filter(|i| any & (1 << i) != 0)
            .map(|i| FIELD_NAMES[i])
            .collect()
    }

    /// Candidate fingerprints, most specific node first: the keys holding at least
    /// `candidate_share` of the lattice's weight, in nodes without a high-cardinality field.
    pub(crate) fn candidates(&self, dst: Prefix, cfg: &DetectorConfig) -> Vec<Fingerprint> {
        let min = (cfg.candidate_share * self.total as f64).max(1.0);
        let mut out = Vec::new();
        for (node, sketch) in NODES.iter().zip(self.sketches.iter()) {
            for c in sketch.top() {
                if node & self.excluded[node_class(*node, c.item.proto)] != 0 {
                    continue;
                }
                // The guaranteed part: a key that merely inherited an evicted counter's count
                // (random values of a spoofed field) is not a candidate.
                if c.guaranteed() as f64 >= min {
                    let fp = project(*node, &c.item, dst, cfg);
                    if !out.contains(&fp) {
                        out.push(fp);
                    }
                }
            }
        }
        out
    }

    /// Ends a tick: decays the sketches and rotates the cardinality window.
    pub(crate) fn end_tick(&mut self, cfg: &DetectorConfig) {
        for s in &mut self.sketches {
            s.decay(cfg.sketch_decay);
        }
        self.total = (self.total as f64 * cfg.sketch_decay) as u64;
        self.window_age += 1;
        if self.window_age >= cfg.hll_window_ticks {
            self.window_age = 0;
            std::mem::swap(&mut self.hll, &mut self.hll_prev);
            self.hll.iter_mut().for_each(Hll::clear);
            self.counted_prev = self.counted;
            self.counted = [[0; COUNTED.len()]; CLASSES];
        }
    }

    /// Monitored keys over all nodes (bounded by nodes × k).
    pub(crate) fn monitored(&self) -> usize {
        self.sketches.iter().map(SpaceSaving::len).sum()
    }
}

/// Whether a sample goes to the sketches: `p` is the sub-sampling probability set from the
/// previous tick's sample count (see [`DetectorConfig::sketch_budget`]).
pub(crate) fn sampled(p: f64, rng: &mut Rng) -> bool {
    p >= 1.0 || rng.unit() < p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specificity(node: u16) -> u32 {
        (node & !(PAY0 | PAY1 | SRC | SRCNET)).count_ones()
            + (node & (PAY0 | PAY1) != 0) as u32
            + (node & (SRC | SRCNET) != 0) as u32
    }

    #[test]
    fn the_lattice_is_bounded_and_ordered_most_specific_first() {
        assert!((32..=64).contains(&NODES.len()));
        for w in NODES.windows(2) {
            assert!(
                specificity(w[0]) >= specificity(w[1]),
                "{:#x} {:#x}",
                w[0],
                w[1]
            );
        }
        for (i, n) in NODES.iter().enumerate() {
            assert!(!NODES[..i].contains(n), "duplicate node {n:#x}");
            // Ports and flags always come with the protocol.
            if n & (FLAGS | SPORT | DPORT) != 0 {
                assert!(n & PROTO != 0);
            }
        }
    }
}
