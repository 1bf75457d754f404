//! Attribution: everything a generated rule can say about itself — why and when it was made,
//! what it matched (hit counters and the last sampled frames, exportable as pcap), how its action
//! changed, and why it expired — plus its text as a rule-file entry for promotion.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use rampart_rules::xdp::Action;
use rampart_rules::Prefix;

use super::fingerprint::Fingerprint;
use super::select::ReferenceKind;
use super::{DetectorError, Sample};

/// Why and from what a rule was generated.
#[derive(Clone, Debug, PartialEq)]
pub struct Creation {
    /// End of the tick that produced it (monotonic ns).
    pub at_ns: u64,
    /// The victim address or prefix.
    pub victim: Prefix,
    /// Share of the unmitigated attack samples of the tick it covered.
    pub coverage: f64,
    /// Share of the calm reference samples it matched.
    pub collateral: f64,
    /// Where the collateral was measured.
    pub reference: ReferenceKind,
    /// The victim's rates in that tick and its baseline.
    pub victim_pps: f64,
    pub victim_bps: f64,
    pub baseline_pps: f64,
    pub baseline_bps: f64,
    /// Packets per second matching the fingerprint when it was chosen.
    pub attack_pps: f64,
    /// Fields left out for high cardinality (e.g. `ip.src` of a spoofed flood).
    pub excluded_fields: Vec<&'static str>,
}

/// Why a rule left the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpiryReason {
    /// No sampled packet matched for `ttl_ns` after the last match (`None`: it never matched).
    Idle {
        last_match_ns: Option<u64>,
        ttl_ns: u64,
    },
    /// An operator deleted it.
    Deleted,
    /// The rule tables could not take it next to the others (the compiler's reason).
    Refused { why: String },
}

/// When and why a rule expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub at_ns: u64,
    pub reason: ExpiryReason,
}

/// A sampled frame that matched the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedFrame {
    pub ts_ns: u64,
    pub wire_len: u32,
    /// The sampled head of the frame (at most 128 bytes).
    pub head: Vec<u8>,
}

/// A generated rule and its attribution record.
#[derive(Clone, Debug)]
pub struct GeneratedRule {
    /// Its id in the reserved range.
    pub id: u32,
    pub fingerprint: Fingerprint,
    pub created: Creation,
    /// Index of its rung in [`super::DetectorConfig::ladder`] and the rung's action.
    pub rung: usize,
    pub action: Action,
    /// When it entered its current rung.
    pub rung_since_ns: u64,
    /// Every action it had, with the time it took it (the first is the creation).
    pub actions: Vec<(u64, Action)>,
    /// Packets matched: sampled matches scaled by their sampling rate.
    pub hits: u64,
    /// Sampled packets matched.
    pub sampled_matches: u64,
    pub first_match_ns: Option<u64>,
    pub last_match_ns: Option<u64>,
    /// The gap between the last two matches.
    pub last_gap_ns: u64,
    /// Start of the current run of matches without a gap over two ticks.
    pub matching_since_ns: Option<u64>,
    /// The last matched frames, oldest first.
    pub frames: VecDeque<MatchedFrame>,
    /// Never expires while pinned.
    pub pinned: bool,
    pub expired: Option<Expiry>,
}

impl GeneratedRule {
    /// The rule-language expression of its fingerprint.
    pub fn expression(&self) -> String {
        self.fingerprint.expression()
    }

    /// When it expires if nothing more matches: `max(min_ttl, factor × last gap)` after the last
    /// match (or after creation if it never matched). `None` while pinned or once expired.
    pub fn expires_at(&self, min_ttl_ns: u64, gap_factor: u64) -> Option<u64> {
        if self.pinned || self.expired.is_some() {
            return None;
        }
        let last = self.last_match_ns.unwrap_or(self.created.at_ns);
        Some(last.saturating_add(self.ttl(min_ttl_ns, gap_factor)))
    }

    pub(crate) fn ttl(&self, min_ttl_ns: u64, gap_factor: u64) -> u64 {
        min_ttl_ns.max(self.last_gap_ns.saturating_mul(gap_factor))
    }

    /// Counts a matching sample. `continuity_ns`: a longer gap starts a new run of matches.
    pub(crate) fn record_match(&mut self, s: &Sample, keep_frames: usize, continuity_ns: u64) {
        match self.last_match_ns {
            Some(last) if s.ts_ns > last => {
                let gap = s.ts_ns - last;
                self.last_gap_ns = gap;
                if gap > continuity_ns {
                    self.matching_since_ns = Some(s.ts_ns);
                }
                self.last_match_ns = Some(s.ts_ns);
            }
            Some(_) => {}
            None => {
                self.first_match_ns = Some(s.ts_ns);
                self.matching_since_ns = Some(s.ts_ns);
                self.last_match_ns = Some(s.ts_ns);
            }
        }
        self.hits += s.sample_every.max(1) as u64;
        self.sampled_matches += 1;
        if self.frames.len() >= keep_frames {
            self.frames.pop_front();
        }
        self.frames.push_back(MatchedFrame {
            ts_ns: s.ts_ns,
            wire_len: s.wire_len,
            head: s.head.clone(),
        });
    }

    /// Writes the matched frames as a classic pcap file (Ethernet, microsecond timestamps taken
    /// from the monotonic clock, snapshot length = the sampled head).
    ///
    /// # Errors
    /// [`DetectorError::Pcap`] when writing fails.
    pub fn write_pcap(&self, w: impl Write) -> Result<(), DetectorError> {
        let mut pw = PcapWriter::new(w)?;
        for f in &self.frames {
            let orig = f.wire_len.max(f.head.len() as u32);
            pw.write_packet(&PcapPacket::new(
                Duration::from_nanos(f.ts_ns),
                orig,
                &f.head,
            ))?;
        }
        Ok(())
    }

    /// The rule as a rule-file entry with id `id` (to paste under `rules:`), with its current
    /// action. Loads with [`rampart_rules::load_str`].
    pub fn to_rule_entry(&self, id: u32) -> String {
        let c = &self.created;
        let mut s = format!("- id: {id}\n  ref: detector-{:#x}\n", self.id);
        let _ = writeln!(
            s,
            "  description: \"generated for {} at {} ns: coverage {:.4}, collateral {:.4}, {:.0} pps of {:.0} (baseline {:.0})\"",
            c.victim, c.at_ns, c.coverage, c.collateral, c.attack_pps, c.victim_pps, c.baseline_pps
        );
        let _ = writeln!(s, "  expression: '{}'", self.expression());
        match self.action {
            Action::RateLimit {
                packets_per_second,
                burst,
            } => {
                s.push_str("  action: rate_limit\n");
                let _ = writeln!(
                    s,
                    "  rate_limit: {{ packets_per_second: {packets_per_second}, burst: {burst} }}"
                );
            }
            Action::Log => s.push_str("  action: log\n"),
            Action::Pass => s.push_str("  action: allow\n"),
            Action::Drop => s.push_str("  action: drop\n"),
        }
        s
    }

    /// A human-readable account of the rule.
    pub fn explain(&self) -> String {
        let c = &self.created;
        let mut s = format!("rule {:#x}: {}\n", self.id, self.expression());
        let _ = writeln!(
            s,
            "  created at {} ns for {}: the victim received {:.0} pps / {:.0} bit/s against a baseline of {:.0} pps / {:.0} bit/s",
            c.at_ns, c.victim, c.victim_pps, c.victim_bps, c.baseline_pps, c.baseline_bps
        );
        let _ = writeln!(
            s,
            "  the fingerprint covered {:.2}% of the unmitigated attack ({:.0} pps) and matched {:.3}% of the calm reference ({:?})",
            c.coverage * 100.0,
            c.attack_pps,
            c.collateral * 100.0,
            c.reference
        );
        if !c.excluded_fields.is_empty() {
            let _ = writeln!(
                s,
                "  left out for high cardinality: {}",
                c.excluded_fields.join(", ")
            );
        }
        for (at, a) in &self.actions {
            let _ = writeln!(s, "  action {a:?} from {at} ns");
        }
        let _ = writeln!(
            s,
            "  hits: {} packets ({} sampled), last match {:?} ns, {} frames kept{}",
            self.hits,
            self.sampled_matches,
            self.last_match_ns,
            self.frames.len(),
            if self.pinned { ", pinned" } else { "" }
        );
        if let Some(e) = &self.expired {
            let _ = writeln!(s, "  expired at {} ns: {:?}", e.at_ns, e.reason);
        }
        s
    }
}
