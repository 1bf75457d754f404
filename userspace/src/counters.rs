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

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(pass: u64, drop: u64, rule: (u64, u64)) -> Snapshot {
        let c = |p: u64| Counter {
            packets: p,
            bytes: p * 100,
        };
        Snapshot {
            reasons: vec![
                (Reason::PassNoMatch, c(pass)),
                (Reason::DropRule, c(drop)),
                (Reason::ErrTruncTcp, c(1)),
                (Reason::EvLogOnly, c(5)),
            ],
            rules: vec![(
                7,
                RuleCounter {
                    matched: c(rule.0),
                    dropped: c(rule.1),
                },
            )],
        }
    }

    #[test]
    fn delta_subtracts_reason_by_reason_and_rule_by_rule() {
        let d = snap(10, 4, (6, 4)).delta(&snap(15, 9, (11, 9)));
        assert_eq!(d.reason(Reason::PassNoMatch).packets, 5);
        assert_eq!(
            d.reason(Reason::DropRule),
            Counter {
                packets: 5,
                bytes: 500
            }
        );
        assert_eq!(d.reason(Reason::ErrTruncTcp).packets, 0);
        assert_eq!(d.rule(7).unwrap().dropped.packets, 5);
        assert_eq!(d.rule(8), None);
    }

    #[test]
    fn packets_counts_verdicts_only() {
        // Error and event reasons are counted beside a verdict, so they are not packets.
        let s = snap(10, 4, (0, 0));
        assert_eq!(s.packets(), 14);
        assert_eq!(s.dropped(), 4);
    }

    #[test]
    fn render_lists_non_zero_counters_and_rules() {
        let text = snap(0, 3, (3, 3)).render();
        assert!(text.contains("drop_rule"));
        assert!(!text.contains("pass_no_match"));
        assert!(text.lines().any(|l| l.starts_with("7 ") && l.contains('3')));
    }
}
