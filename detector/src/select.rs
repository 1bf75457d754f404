//! Selection: from the lattice's candidates, pick the most specific fingerprints that cover the
//! unmitigated attack traffic of a tick and match (almost) none of the victim's calm traffic.
//!
//! Coverage is measured on the tick's unmitigated samples, net of the calm traffic expected among
//! them (`baseline_units`): `(matched − collateral × baseline) / (remaining − baseline)`. A round
//! walks the candidates from most to least specific and takes the first whose coverage reaches
//! `min_coverage` (or, when no single fingerprint does — a multi-vector attack — `min_coverage`
//! times the best coverage found); its samples are removed and the next round looks at the rest,
//! until what remains is within `1 − min_coverage` of the attack.

use super::config::DetectorConfig;
use super::features::Features;
use super::fingerprint::{Fingerprint, PayloadBytes};

/// Where the collateral of a fingerprint was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferenceKind {
    /// The victim's own calm samples.
    Victim,
    /// The calm samples of the victim's prefix, destination ignored.
    Prefix,
    /// The site-wide calm samples, destination ignored.
    Site,
}

/// Calm samples to measure collateral on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reference<'a> {
    pub samples: &'a [Features],
    pub kind: ReferenceKind,
}

impl Reference<'_> {
    /// The share of reference samples the fingerprint matches.
    pub(crate) fn collateral(&self, fp: &Fingerprint) -> f64 {
        if self.samples.is_empty() {
            return 1.0;
        }
        let ignore_dst = self.kind != ReferenceKind::Victim;
        let hit = self
            .samples
            .iter()
            .filter(|f| {
                if ignore_dst {
                    fp.matches_ignoring_dst(f)
                } else {
                    fp.matches(f)
                }
            })
            .count();
        hit as f64 / self.samples.len() as f64
    }
}

/// One tick's selection problem for one victim.
pub(crate) struct Round<'a> {
    /// Unmitigated samples of the tick (a uniform sample of them).
    pub residual: Vec<&'a Features>,
    /// Calm samples expected among `residual` (baseline rate / residual rate × samples).
    pub baseline_units: f64,
    /// The whole attack (mitigated or not) above baseline, in units of `residual` samples.
    pub attack_units: f64,
    /// Most specific first.
    pub candidates: Vec<Fingerprint>,
    pub reference: Reference<'a>,
    /// Fingerprints this round may add.
    pub max_picks: usize,
}

/// A chosen fingerprint and the figures that justified it.
#[derive(Clone, Debug)]
pub(crate) struct Pick {
    pub fingerprint: Fingerprint,
    /// Share of the unmitigated attack (net of calm traffic) it covers.
    pub coverage: f64,
    /// Share of the reference's calm samples it matches.
    pub collateral: f64,
    /// Share of the tick's unmitigated samples it matches.
    pub matched_share: f64,
}

/// Payload extension needs at least this many matched samples (no fitting to a handful).
const MIN_EXTEND_SAMPLES: usize = 16;

/// The picks of a round, and whether more than `1 − min_coverage` of the attack is left
/// uncovered after them (an attack the lattice cannot fingerprint within the bounds).
pub(crate) struct Selection {
    pub picks: Vec<Pick>,
    pub uncovered: bool,
}

pub(crate) fn select(round: &Round<'_>, cfg: &DetectorConfig) -> Selection {
    let b = round.baseline_units;
    let total = round.residual.len().max(1) as f64;
    let mut remaining = round.residual.clone();
    let mut collateral: Vec<Option<f64>> = vec![None; round.candidates.len()];
    let mut taken = vec![false; round.candidates.len()];
    let mut picks = Vec::new();
    let left = |remaining: &Vec<&Features>| {
        let excess = remaining.len() as f64 - b;
        (excess > 0.0 && excess > (1.0 - cfg.min_coverage) * round.attack_units).then_some(excess)
    };
    while picks.len() < round.max_picks {
        let Some(excess) = left(&remaining) else {
            break;
        };
        // (candidate, coverage, collateral, vector share of the attack)
        let mut viable: Vec<(usize, f64, f64)> = Vec::new();
        for (i, fp) in round.candidates.iter().enumerate() {
            if taken[i] {
                continue;
            }
            let m = remaining.iter().filter(|f| fp.matches(f)).count();
            if m == 0 {
                continue;
            }
            let coll = *collateral[i].get_or_insert_with(|| round.reference.collateral(fp));
            if coll > cfg.max_collateral {
                continue;
            }
            let net = m as f64 - coll * b;
            let vector = net / round.attack_units.max(1.0);
            if vector < cfg.min_vector_share {
                continue;
            }
            viable.push((i, (net / excess).clamp(0.0, 1.0), coll));
        }
        let best = viable.iter().map(|v| v.1).fold(0.0f64, f64::max);
        if viable.is_empty() {
            break;
        }
        let bar = if best >= cfg.min_coverage {
            cfg.min_coverage
        } else {
            cfg.min_coverage * best
        };
        // The most specific passing candidate; then the best coverage; then the earliest node.
        let (i, coverage, coll) = *viable
            .iter()
            .filter(|v| v.1 >= bar)
            .max_by(|a, b| {
                let spec = |v: &(usize, f64, f64)| round.candidates[v.0].specificity();
                spec(a)
                    .cmp(&spec(b))
                    .then(a.1.total_cmp(&b.1))
                    .then(b.0.cmp(&a.0))
            })
            .expect("the best candidate passes the bar");
        taken[i] = true;
        let mut fp = round.candidates[i];
        let matched: Vec<&Features> = remaining
            .iter()
            .copied()
            .filter(|f| fp.matches(f))
            .collect();
        let mut coll = coll;
        if let Some(ext) = extend_payload(&fp, &matched, cfg) {
            coll = round.reference.collateral(&ext);
            fp = ext;
        }
        let matched_share = matched.len() as f64 / total;
        remaining.retain(|f| !fp.matches(f));
        picks.push(Pick {
            fingerprint: fp,
            coverage,
            collateral: coll,
            matched_share,
        });
    }
    Selection {
        uncovered: left(&remaining).is_some(),
        picks,
    }
}

/// Grows a payload fingerprint over the bytes every matched sample shares, right then left, up
/// to `max_payload_match` bytes (a fixed DNS query name beyond the first window, say). Coverage
/// on the matched samples is unchanged; specificity only grows.
fn extend_payload(
    fp: &Fingerprint,
    matched: &[&Features],
    cfg: &DetectorConfig,
) -> Option<Fingerprint> {
    let p = fp.payload()?;
    if matched.len() < MIN_EXTEND_SAMPLES {
        return None;
    }
    let (mut start, mut end) = (p.offset() as usize, p.offset() as usize + p.bytes().len());
    let shared = |at: usize| -> Option<u8> {
        let first = *matched[0].payload_at(at, 1)?.first()?;
        matched
            .iter()
            .all(|f| f.payload_at(at, 1) == Some(&[first][..]))
            .then_some(first)
    };
    while end - start < cfg.max_payload_match && shared(end).is_some() {
        end += 1;
    }
    while end - start < cfg.max_payload_match && start > 0 && shared(start - 1).is_some() {
        start -= 1;
    }
    if (start, end) == (p.offset() as usize, p.offset() as usize + p.bytes().len()) {
        return None;
    }
    let bytes = matched[0].payload_at(start, end - start)?;
    Some(fp.with_payload(PayloadBytes::new(start as u16, bytes)?))
}
