//! Adaptive sampling: the XDP program sends 1 in N packets; N is chosen each second so the
//! samples stay under a budget (e.g. 50k/s) however large the flood, and comes back down when the
//! traffic does, so the detector keeps seeing small attacks at normal load.

/// Chooses `Config::sample_every` from the samples seen in the last second.
#[derive(Clone, Debug)]
pub struct RateController {
    /// Samples per second the detector is sized for.
    pub budget: u64,
    /// The smallest N (most detail at low rates).
    pub min_every: u32,
    /// The largest N (a bound on how coarse sampling gets).
    pub max_every: u32,
    every: u32,
}

impl RateController {
    pub fn new(budget: u64, min_every: u32, max_every: u32) -> RateController {
        let min_every = min_every.max(1);
        RateController {
            budget: budget.max(1),
            min_every,
            max_every: max_every.max(min_every),
            every: min_every,
        }
    }

    pub fn every(&self) -> u32 {
        self.every
    }

    /// Given the samples received over the last `secs` seconds at the current N, returns the N
    /// to use next. Rises at once to what fits the budget (a flood must not overflow the ring),
    /// falls by halves (so one quiet second does not swing it back).
    pub fn update(&mut self, samples: u64, secs: f64) -> u32 {
        let per_sec = samples as f64 / secs.max(1e-3);
        let packets_per_sec = per_sec * self.every as f64;
        let needed = (packets_per_sec / self.budget as f64).ceil().max(1.0) as u64;
        let next = if needed > self.every as u64 {
            needed.next_power_of_two()
        } else if needed <= (self.every / 2) as u64 {
            (self.every / 2) as u64
        } else {
            self.every as u64
        };
        self.every = (next.min(self.max_every as u64) as u32).max(self.min_every);
        self.every
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_at_once_and_falls_by_halves() {
        let mut c = RateController::new(50_000, 1, 1 << 16);
        assert_eq!(c.update(10_000, 1.0), 1, "under budget at 1 in 1");
        // A 3 Mpps flood seen at 1 in 1 (the ring delivered what it could: 3M).
        let n = c.update(3_000_000, 1.0);
        assert_eq!(n, 64, "3M pps needs 1 in 60 to stay under 50k/s");
        assert!(3_000_000 / n as u64 <= 50_000);
        // The flood stops: 1k pps at 1 in 64 is ~16 samples/s.
        assert_eq!(c.update(16, 1.0), 32);
        assert_eq!(c.update(31, 1.0), 16);
        for _ in 0..10 {
            c.update(62, 1.0);
        }
        assert_eq!(c.every(), 1);
    }

    #[test]
    fn stays_within_bounds() {
        let mut c = RateController::new(1_000, 4, 256);
        assert_eq!(c.update(0, 1.0), 4);
        assert_eq!(c.update(10_000_000, 1.0), 256);
    }
}
