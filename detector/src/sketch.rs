//! Bounded counting: a Space-Saving top-k sketch (heavy hitters of one lattice node) and a
//! HyperLogLog (distinct values of one field). Both take a fixed amount of memory whatever the
//! stream: a spoofed flood with a new source address in every packet cannot grow them.

/// One monitored key of a [`SpaceSaving`] sketch.
#[derive(Clone, Debug)]
pub struct Counter<T> {
    /// The key's 64-bit hash: keys are compared by hash (a collision between two heavy keys of one
    /// node and victim has probability about `k² / 2⁶⁴`).
    pub hash: u64,
    /// Estimated weight: never below the true weight.
    pub count: u64,
    /// Overestimation bound: `count - error` is never above the true weight.
    pub error: u64,
    /// What the key stands for (the first sample that brought it into the sketch).
    pub item: T,
}

impl<T> Counter<T> {
    /// The guaranteed part of the weight (a lower bound on the true weight).
    pub fn guaranteed(&self) -> u64 {
        self.count - self.error
    }
}

/// Space-Saving (Metwally, Agrawal, El Abbadi 2005) over weighted updates, with `capacity`
/// counters. Guarantees, for a stream of total weight `N`: every key whose true weight exceeds
/// `N / capacity` is monitored; for a monitored key, `count - error <= true <= count`; and
/// `error <= N / capacity`. Capacity is small (16 by default), so keys live in a flat array.
#[derive(Clone, Debug)]
pub struct SpaceSaving<T> {
    capacity: usize,
    entries: Vec<Counter<T>>,
    total: u64,
}

impl<T> SpaceSaving<T> {
    /// A sketch of `capacity` counters (at least 1).
    pub fn new(capacity: usize) -> SpaceSaving<T> {
        let capacity = capacity.max(1);
        SpaceSaving {
            capacity,
            entries: Vec::with_capacity(capacity),
            total: 0,
        }
    }

    /// Adds `weight` to the key with hash `hash`. `item` is called only when the key enters the
    /// sketch (replacing the counter with the smallest count when all are in use).
    pub fn offer(&mut self, hash: u64, weight: u64, item: impl FnOnce() -> T) {
        self.total += weight;
        if let Some(e) = self.entries.iter_mut().find(|e| e.hash == hash) {
            e.count += weight;
            return;
        }
        if self.entries.len() < self.capacity {
            self.entries.push(Counter {
                hash,
                count: weight,
                error: 0,
                item: item(),
            });
            return;
        }
        let min = self
            .entries
            .iter_mut()
            .min_by_key(|e| e.count)
            .expect("capacity is at least 1");
        let floor = min.count;
        *min = Counter {
            hash,
            count: floor + weight,
            error: floor,
            item: item(),
        };
    }

    /// Total weight offered (after decay).
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, hash: u64) -> Option<&Counter<T>> {
        self.entries.iter().find(|e| e.hash == hash)
    }

    /// Monitored keys, heaviest first.
    pub fn top(&self) -> Vec<&Counter<T>> {
        let mut v: Vec<&Counter<T>> = self.entries.iter().collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.count));
        v
    }

    /// Multiplies every count, error and the total by `factor` (an EWMA over ticks). The
    /// guarantees hold for the decayed stream, up to rounding.
    pub fn decay(&mut self, factor: f64) {
        let f = |x: u64| (x as f64 * factor) as u64;
        for e in &mut self.entries {
            e.count = f(e.count);
            e.error = f(e.error).min(e.count);
        }
        self.entries.retain(|e| e.count > 0);
        self.total = f(self.total);
    }
}

/// HyperLogLog (Flajolet et al. 2007) with `2^precision` one-byte registers and the linear
/// counting correction for small cardinalities. Standard error about `1.04 / sqrt(2^precision)`.
#[derive(Clone, Debug)]
pub struct Hll {
    precision: u8,
    registers: Box<[u8]>,
}

impl Hll {
    /// `precision` is clamped to 4..=16 (16 B to 64 KiB).
    pub fn new(precision: u8) -> Hll {
        let precision = precision.clamp(4, 16);
        Hll {
            precision,
            registers: vec![0u8; 1 << precision].into_boxed_slice(),
        }
    }

    /// Adds a value by its 64-bit hash (which must be well mixed: the top bits pick a register).
    pub fn insert_hash(&mut self, hash: u64) {
        let p = self.precision as u32;
        let idx = (hash >> (64 - p)) as usize;
        let rest = hash << p;
        let rank = (rest.leading_zeros() + 1).min(64 - p + 1) as u8;
        if self.registers[idx] < rank {
            self.registers[idx] = rank;
        }
    }

    /// Estimated number of distinct values inserted.
    pub fn estimate(&self) -> f64 {
        estimate(self.registers.iter().copied())
    }

    /// Estimated distinct values of the union of `self` and `other` (same precision).
    pub fn union_estimate(&self, other: &Hll) -> f64 {
        if other.precision != self.precision {
            return self.estimate().max(other.estimate());
        }
        estimate(
            self.registers
                .iter()
                .zip(other.registers.iter())
                .map(|(a, b)| *a.max(b)),
        )
    }

    pub fn clear(&mut self) {
        self.registers.fill(0);
    }

    /// Bytes of registers.
    pub fn size(&self) -> usize {
        self.registers.len()
    }
}

fn estimate(registers: impl ExactSizeIterator<Item = u8>) -> f64 {
    let m = registers.len() as f64;
    let (mut sum, mut zeros) = (0.0f64, 0u32);
    for r in registers {
        sum += 1.0 / (1u64 << r) as f64;
        zeros += (r == 0) as u32;
    }
    let alpha = match m as usize {
        16 => 0.673,
        32 => 0.697,
        64 => 0.709,
        _ => 0.7213 / (1.0 + 1.079 / m),
    };
    let raw = alpha * m * m / sum;
    if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{fmix64, Rng};
    use std::collections::HashMap;

    #[test]
    fn space_saving_bounds_hold_and_capacity_is_never_exceeded() {
        let mut ss: SpaceSaving<u64> = SpaceSaving::new(16);
        let mut truth: HashMap<u64, u64> = HashMap::new();
        let mut rng = Rng::new(3);
        // 1M distinct keys of weight 1 mixed with three heavy keys.
        for i in 0..1_000_000u64 {
            let key = match i % 10 {
                0..=2 => 1u64 << 40,
                3 | 4 => 2u64 << 40,
                5 => 3u64 << 40,
                _ => rng.next_u64() >> 24,
            };
            let w = 1 + (i % 3);
            *truth.entry(key).or_default() += w;
            ss.offer(fmix64(key), w, || key);
            assert!(ss.len() <= ss.capacity());
        }
        let n = ss.total();
        assert_eq!(n, truth.values().sum::<u64>());
        let bound = n / ss.capacity() as u64;
        for c in ss.top() {
            let t = truth[&c.item];
            assert!(c.count >= t, "overestimate holds");
            assert!(c.guaranteed() <= t, "error bound holds");
            assert!(c.error <= bound);
        }
        // Every key above N/k is monitored, and the top three are the heavy keys in order.
        for (k, t) in &truth {
            if *t > bound {
                assert!(ss.get(fmix64(*k)).is_some(), "heavy key {k} monitored");
            }
        }
        let top: Vec<u64> = ss.top().iter().take(3).map(|c| c.item).collect();
        assert_eq!(top, vec![1 << 40, 2 << 40, 3 << 40]);
    }

    #[test]
    fn space_saving_decay_keeps_order_and_drops_empty_counters() {
        let mut ss: SpaceSaving<u8> = SpaceSaving::new(4);
        ss.offer(1, 100, || 1);
        ss.offer(2, 1, || 2);
        ss.decay(0.4);
        assert_eq!(ss.len(), 1);
        assert_eq!(ss.top()[0].count, 40);
        assert_eq!(ss.total(), 40);
    }

    #[test]
    fn hll_is_within_five_percent_at_100k() {
        for precision in [10u8, 12] {
            let mut h = Hll::new(precision);
            for i in 0..100_000u64 {
                h.insert_hash(fmix64(i ^ 0xabcdef));
                // Duplicates do not count.
                h.insert_hash(fmix64(i ^ 0xabcdef));
            }
            let e = h.estimate();
            assert!(
                (e - 100_000.0).abs() / 100_000.0 < 0.05,
                "p={precision}: {e}"
            );
        }
    }

    #[test]
    fn hll_small_counts_and_union() {
        let mut a = Hll::new(10);
        let mut b = Hll::new(10);
        for i in 0..100u64 {
            a.insert_hash(fmix64(i));
            b.insert_hash(fmix64(i + 50));
        }
        assert!((a.estimate() - 100.0).abs() < 5.0, "{}", a.estimate());
        assert!((a.union_estimate(&b) - 150.0).abs() < 8.0);
        a.clear();
        assert_eq!(a.estimate(), 0.0);
        assert_eq!(a.size(), 1024);
    }
}
