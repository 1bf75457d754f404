//! Per-CPU counters: one per verdict or error reason, one per rule slot.

/// Packets and bytes (array map `REASON_COUNTERS`, index = [`crate::Reason`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}
const _: () = assert!(core::mem::size_of::<Counter>() == 16);

impl Counter {
    #[inline(always)]
    pub fn add(&mut self, bytes: u64) {
        self.packets = self.packets.wrapping_add(1);
        self.bytes = self.bytes.wrapping_add(bytes);
    }

    /// Sum of per-CPU values.
    pub fn sum<'a>(values: impl IntoIterator<Item = &'a Counter>) -> Counter {
        values
            .into_iter()
            .fold(Counter::default(), |acc, c| Counter {
                packets: acc.packets.wrapping_add(c.packets),
                bytes: acc.bytes.wrapping_add(c.bytes),
            })
    }
}

/// Per rule slot (array map `RULE_COUNTERS`): packets the rule matched, and of those the ones it
/// dropped (a rate-limit rule drops only the packets over its rate; a log-mode rule drops none).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCounter {
    pub matched: Counter,
    pub dropped: Counter,
}
const _: () = assert!(core::mem::size_of::<RuleCounter>() == 32);

impl RuleCounter {
    pub fn sum<'a>(values: impl IntoIterator<Item = &'a RuleCounter>) -> RuleCounter {
        values
            .into_iter()
            .fold(RuleCounter::default(), |acc, c| RuleCounter {
                matched: Counter::sum([&acc.matched, &c.matched]),
                dropped: Counter::sum([&acc.dropped, &c.dropped]),
            })
    }
}

crate::user_pod!(Counter, RuleCounter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_cpu_values() {
        let mut a = Counter::default();
        a.add(60);
        a.add(40);
        let b = Counter {
            packets: 1,
            bytes: 1500,
        };
        assert_eq!(
            Counter::sum([&a, &b]),
            Counter {
                packets: 3,
                bytes: 1600
            }
        );
    }
}
