//! Per-source rate limiting as GCRA (the token bucket's equivalent with one timestamp of state):
//! a source may send `burst` packets back to back, then one every `interval_ns`.

use crate::Addr16;

/// Key of the `RATE_BUCKETS` LRU map: one bucket per (rule, source address).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub counter_slot: u32,
    pub src: Addr16,
}
const _: () = assert!(core::mem::size_of::<RateKey>() == 20);

/// Value of the `RATE_BUCKETS` map: the theoretical arrival time of the next conforming packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateState {
    pub tat_ns: u64,
}
const _: () = assert!(core::mem::size_of::<RateState>() == 8);

/// GCRA parameters for `packets_per_second` with a burst of `burst` packets.
/// Returns `(interval_ns, tolerance_ns)`; a rate of 0 allows nothing beyond the burst per second.
pub const fn gcra_params(packets_per_second: u64, burst: u64) -> (u64, u64) {
    let pps = if packets_per_second == 0 {
        1
    } else {
        packets_per_second
    };
    let interval = 1_000_000_000 / pps;
    let burst = if burst == 0 { 1 } else { burst };
    (interval, interval.saturating_mul(burst - 1))
}

/// Decides one packet. Returns the new `tat_ns` when it conforms, `None` when it is over the rate
/// (the state is then left as it was, so a flood does not push the bucket further out).
#[inline(always)]
pub const fn gcra_check(
    tat_ns: u64,
    now_ns: u64,
    interval_ns: u64,
    tolerance_ns: u64,
) -> Option<u64> {
    let base = if tat_ns > now_ns { tat_ns } else { now_ns };
    if base - now_ns > tolerance_ns {
        None
    } else {
        Some(base.saturating_add(interval_ns))
    }
}

crate::user_pod!(RateKey, RateState);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let (iv, tol) = gcra_params(10, 3); // 100 ms per packet, 3 back to back
        assert_eq!(iv, 100_000_000);
        let now = 5_000_000_000;
        let mut tat = 0;
        let mut allowed = 0;
        for _ in 0..10 {
            if let Some(t) = gcra_check(tat, now, iv, tol) {
                tat = t;
                allowed += 1;
            }
        }
        assert_eq!(allowed, 3);
        // 100 ms later exactly one more conforms.
        let later = now + iv;
        let t = gcra_check(tat, later, iv, tol).expect("one more after an interval");
        assert!(gcra_check(t, later, iv, tol).is_none());
    }

    #[test]
    fn idle_source_gets_full_burst_again() {
        let (iv, tol) = gcra_params(1000, 5);
        let mut tat = 0;
        for _ in 0..5 {
            tat = gcra_check(tat, 1_000, iv, tol).unwrap();
        }
        assert!(gcra_check(tat, 1_000, iv, tol).is_none());
        let mut n = 0;
        let mut t2 = tat;
        while let Some(t) = gcra_check(t2, 10_000_000_000, iv, tol) {
            t2 = t;
            n += 1;
        }
        assert_eq!(n, 5);
    }

    #[test]
    fn zero_values_are_clamped() {
        assert_eq!(gcra_params(0, 0), (1_000_000_000, 0));
    }
}
