//! Per-source rate limits: GCRA state per (rule, source) in an LRU map, so a spoofed flood evicts
//! old buckets instead of growing the map. Updates race benignly across CPUs (a few packets may
//! slip through at the edge of the rate); no atomics on the packet path.

use aya_ebpf::helpers::bpf_ktime_get_ns;
use rampart_common::{
    ratelimit::{gcra_check, RateKey, RateState},
    rules::RuleMeta,
    Addr16, Reason,
};

use crate::{stats, RATE_BUCKETS};

#[inline(always)]
pub fn conforms(meta: &RuleMeta, src: &Addr16) -> bool {
    // SAFETY: reading the helper's clock has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let key = RateKey {
        counter_slot: meta.counter_slot,
        src: *src,
    };
    let (iv, tol) = (meta.rate_interval_ns, meta.rate_tolerance_ns);
    match RATE_BUCKETS.get_ptr_mut(key) {
        Some(state) => {
            // SAFETY: the pointer came from a successful lookup; the value is plain data.
            let tat = unsafe { (*state).tat_ns };
            match gcra_check(tat, now, iv, tol) {
                Some(next) => {
                    // SAFETY: as above.
                    unsafe { (*state).tat_ns = next };
                    true
                }
                None => false,
            }
        }
        None => {
            let next = gcra_check(0, now, iv, tol).unwrap_or(now);
            if RATE_BUCKETS
                .insert(key, RateState { tat_ns: next }, 0)
                .is_err()
            {
                stats::count(Reason::EvMapUpdateFailed, 0);
            }
            true
        }
    }
}
