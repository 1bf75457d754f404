//! Counter snapshots: per verdict/error reason and per rule, summed over CPUs.

use std::fmt::Write as _;

use rampart_common::{reason::Reason, Counter, RuleCounter};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every reason, with its totals.
    pub reasons: Vec<(Reason, Counter)>,
    /// Rules of the active generation: (rule id, counters).
    pub rules: Vec<(u32, RuleCounter)>,
}

impl Snapshot {
    pub fn reason(&self, r: Reason) -> Counter {
        self.reasons
            .iter()
            .find(|(x, _)| *x == r)
            .map(|(_, c)| *c)
            .unwrap_or_default()
    }

    pub fn rule(&self, id: u32) -> Option<RuleCounter> {
        self.rules.iter().find(|(x, _)| *x == id).map(|(_, c)| *c)
    }

    /// Total packets over verdict reasons (each packet counts under exactly one).
    pub fn packets(&self) -> u64 {
        self.reasons
            .iter()
            .filter(|(r, _)| (*r as u32) < Reason::EvMapUpdateFailed as u32)
            .map(|(_, c)| c.packets)
            .sum()
    }

    pub fn dropped(&self) -> u64 {
        self.reasons
            .iter()
            .filter(|(r, _)| r.is_drop())
            .map(|(_, c)| c.packets)
            .sum()
    }

    /// `after - self`, reason by reason and rule by rule.
    pub fn delta(&self, after: &Snapshot) -> Snapshot {
        let sub = |a: Counter, b: Counter| Counter {
            packets: b.packets.wrapping_sub(a.packets),
            bytes: b.bytes.wrapping_sub(a.bytes),
        };
        Snapshot {
            reasons: after
                .reasons
                .iter()
                .map(|(r, c)| (*r, sub(self.reason(*r), *c)))
                .collect(),
            rules: after
                .rules
                .iter()
                .map(|(id, c)| {
                    let b = self.rule(*id).unwrap_or_default();
                    (
                        *id,
                        RuleCounter {
                            matched: sub(b.matched, c.matched),
                            dropped: sub(b.dropped, c.dropped),
                        },
                    )
                })
                .collect(),
        }
    }

    /// A table of the non-zero counters.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{:<24} {:>12} {:>14}", "reason", "packets", "bytes");
        for (r, c) in self.reasons.iter().filter(|(_, c)| c.packets != 0) {
            let _ = writeln!(out, "{:<24} {:>12} {:>14}", r.name(), c.packets, c.bytes);
        }
        if !self.rules.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<10} {:>12} {:>12} {:>14}",
                "rule", "matched", "dropped", "dropped bytes"
            );
            for (id, c) in &self.rules {
                let _ = writeln!(
                    out,
                    "{:<10} {:>12} {:>12} {:>14}",
                    id, c.matched.packets, c.dropped.packets, c.dropped.bytes
                );
            }
        }
        out
    }
}
