//! Bounded store behind Cloudflare-style HTTP rate limits in the L7 engine.
//!
//! Keys are hashes of attacker-controlled values (client IPs, headers, cookies), so a per-key map
//! would let any client grow our memory without limit. This store is instead a fixed-size,
//! set-associative cache allocated once in [`RateStore::with_memory`]: a key maps to one set of
//! eight entries, a new key takes an empty way or evicts that set's least recently used way
//! (counted in [`StoreStats::evictions`]), and an evicted key simply starts fresh. Flooding the
//! store with new keys can make it forget counters, never exhaust memory.
//!
//! A key in its penalty box is not evicted while its set holds a key that is not: otherwise a
//! flood of unique keys would let a boxed client out early (the LRU way passed over for this is
//! counted in [`StoreStats::penalty_kept`]). Residual: when all eight ways of a set are boxed,
//! the least recently used boxed key is evicted after all and its next request starts fresh
//! (counted in [`StoreStats::penalty_evictions`]). Filling a set with boxed keys takes, per
//! key, more requests than its limit, and the sets are picked by a hash of the key. Keys of
//! limits without a timeout (limited only while over the rate) are not protected: eviction
//! gives such a key a new window.
//!
//! Semantics:
//! - **Windows** are `period_ms` long and aligned per key at first sight; they advance by whole
//!   periods, and a key idle for two periods restarts at `now` as if new. The estimated rate is
//!   `cur + floor(prev * (period - elapsed) / period)`, `elapsed` being the time into the
//!   current window (the usual Cloudflare sliding-window approximation).
//! - A request is **limited** when the estimate, after counting it, exceeds
//!   `requests_per_period`: exactly that many requests per period pass.
//! - **Limited requests are not counted** by [`RateStore::check`], so with
//!   `mitigation_timeout_ms == 0` a client that keeps hammering is throttled to the limit instead
//!   of being locked out forever. [`RateStore::record`] counts every call (the request was served).
//! - **Penalty box**: with a timeout, going over blocks the key until `now + timeout` whatever its
//!   rate; when the box ends the counts start fresh. `offenses` survives until eviction.
//! - A box entered by `record` is reported (`entered == true`) on the next limited `check`.
//! - A clock that goes backwards reads as "no time passed" and never stretches a box beyond one
//!   full timeout. All arithmetic saturates. Zero `period_ms` or `requests_per_period` act as 1.
//! - The caller must fold the rule id into the key, and use one `Limit` per key.

use std::mem::size_of;
use std::sync::{Mutex, MutexGuard};

/// Entries per set: a lookup scans at most this many (four cache lines).
const WAYS: usize = 8;
/// Shard count when the budget allows it; enough that many threads rarely share a lock.
const MAX_SHARDS: usize = 256;

/// One rate-limit rule's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Window length in ms (> 0; 0 acts as 1).
    pub period_ms: u64,
    /// Requests allowed per period (> 0; 0 acts as 1).
    pub requests_per_period: u64,
    /// Penalty box length once over the limit; 0 = block only while over the rate.
    pub mitigation_timeout_ms: u64,
}

/// The decision for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateVerdict {
    /// Under the limit.
    Allowed,
    /// Over the limit or in the penalty box. `retry_after_ms` is until the box ends (or until the
    /// rate falls under the limit when mitigation_timeout is 0; at least 1 ms). `entered` is true on
    /// the call that put the key into the box; `offenses` counts how many times this key has
    /// entered the box since the entry was created (used to escalate repeat offenders).
    Limited {
        retry_after_ms: u64,
        entered: bool,
        offenses: u32,
    },
}

/// A snapshot of the store's occupancy and footprint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Keys currently held (never above `capacity`).
    pub entries: usize,
    pub capacity: usize,
    /// Keys pushed out of a full set to make room for a new one.
    pub evictions: u64,
    /// Bytes allocated by the store (never above the budget, except [`RateStore::MIN_MEMORY_BYTES`]).
    pub memory_bytes: usize,
    /// New entries created; always `evictions + entries`.
    pub insertions: u64,
    /// Evictions (of `evictions`) that passed over the set's least recently used key because it
    /// was in its penalty box, and evicted an unboxed key instead.
    pub penalty_kept: u64,
    /// Evictions (of `evictions`) of a key still in its penalty box, because every way of its
    /// set was boxed: that key's next request starts fresh.
    pub penalty_evictions: u64,
}

/// `at` holds the penalty-box end instead of the window start (counts are unused while boxed).
const BOXED: u16 = 1;
/// Timeout-0 key currently over its rate, so the next limited call is not a new offense.
const OVER: u16 = 2;
/// `record` put the key in the box; the next limited `check` reports `entered`.
const NOTIFY: u16 = 4;

/// One key's state: 32 bytes, so a set is four cache lines.
#[derive(Clone, Copy, Default)]
struct Entry {
    key: u64,
    /// Current window start, or the end of the penalty box when `BOXED`.
    at: u64,
    cur: u32,
    prev: u32,
    /// Shard tick at last use, for LRU; 0 marks an empty way.
    stamp: u32,
    /// Saturates at `u16::MAX`, far beyond any escalation ladder.
    offenses: u16,
    flags: u16,
}

#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Set([Entry; WAYS]);

struct Shard {
    sets: Box<[Set]>,
    tick: u32,
    len: usize,
    insertions: u64,
    evictions: u64,
    penalty_kept: u64,
    penalty_evictions: u64,
}

/// A shard lock on its own cache line, so neighbouring shards don't false-share.
#[repr(align(64))]
struct Padded(Mutex<Shard>);

/// Fixed-capacity, sharded, set-associative rate-limit state. See the module docs.
pub struct RateStore {
    shards: Box<[Padded]>,
    /// Sets over all shards; shards differ by at most one set so no budget is lost to rounding.
    sets: usize,
}

impl std::fmt::Debug for RateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateStore")
            .field("shards", &self.shards.len())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// `limit` with zeros made harmless.
struct Rule {
    period: u64,
    max: u64,
    timeout: u64,
}

impl Rule {
    fn new(l: &Limit) -> Rule {
        Rule {
            period: l.period_ms.max(1),
            max: l.requests_per_period.max(1),
            timeout: l.mitigation_timeout_ms,
        }
    }
}

/// Maps 32 hash bits onto `0..n` without a division (Lemire's multiply-shift).
fn fast_range(x: u32, n: usize) -> usize {
    ((u64::from(x) * n as u64) >> 32) as usize
}

/// `floor(count * rem / period)`, in u128 only when u64 would overflow.
fn weighted(count: u32, rem: u64, period: u64) -> u64 {
    match u64::from(count).checked_mul(rem) {
        Some(x) => x / period,
        None => (u128::from(count) * u128::from(rem) / u128::from(period)) as u64,
    }
}

/// First time `x` in `0..=period` into a window at which `floor(c * (period - x) / period) <= r`.
fn falls_below(c: u64, r: u64, period: u64) -> u64 {
    if c == 0 {
        return 0;
    }
    // floor(c(p-x)/p) <= r  <=>  c(p-x) <= (r+1)p - 1  <=>  p-x <= ((r+1)p - 1) / c
    let room = ((u128::from(r) + 1) * u128::from(period) - 1) / u128::from(c);
    period.saturating_sub(room.min(u128::from(period)) as u64)
}

impl Entry {
    /// Advances the window to `now`; returns the time elapsed in the current window.
    fn roll(&mut self, now: u64, period: u64) -> u64 {
        let elapsed = now.saturating_sub(self.at); // clock went back: no time passed
        if elapsed < period {
            return elapsed;
        }
        if elapsed < period.saturating_mul(2) {
            self.prev = self.cur;
            self.cur = 0;
            self.at = self.at.saturating_add(period);
            return elapsed - period;
        }
        self.prev = 0;
        self.cur = 0;
        self.at = now;
        0
    }

    /// In a penalty box that has not ended at `now`.
    fn boxed_at(&self, now: u64) -> bool {
        self.flags & BOXED != 0 && self.at > now
    }

    /// Resets counts and flags, keeping identity, LRU stamp and offenses.
    fn restart(&mut self, at: u64, flags: u16) {
        *self = Entry {
            key: self.key,
            at,
            stamp: self.stamp,
            offenses: self.offenses,
            flags,
            ..Entry::default()
        };
    }

    /// Smallest wait (>= 1 ms) until the estimate, `elapsed` into the window, is at most `t`.
    /// The estimate never rises with time alone, so this is exact.
    fn retry_after(&self, elapsed: u64, t: u64, period: u64) -> u64 {
        let (prev, cur) = (u64::from(self.prev), u64::from(self.cur));
        let wait = if cur <= t {
            falls_below(prev, t - cur, period).saturating_sub(elapsed)
        } else {
            // Only the next window's decaying `prev` (today's `cur`) can bring it under.
            (period - elapsed).saturating_add(falls_below(cur, t, period))
        };
        wait.max(1)
    }

    /// The rate-limit decision. `count` counts the request if it is allowed; `served` counts it
    /// even when over the limit (`record`: the request already happened).
    fn decide(&mut self, l: &Rule, now: u64, count: bool, served: bool) -> RateVerdict {
        if self.flags & BOXED != 0 {
            // A clock that stepped back must not stretch the box past one full timeout.
            let left = self.at.saturating_sub(now).min(l.timeout);
            if left > 0 {
                self.at = now.saturating_add(left);
                return RateVerdict::Limited {
                    retry_after_ms: left,
                    entered: false,
                    offenses: self.offenses.into(),
                };
            }
            self.restart(now, 0);
        }
        let elapsed = self.roll(now, l.period);
        let estimate =
            weighted(self.prev, l.period - elapsed, l.period).saturating_add(self.cur.into());
        if estimate.saturating_add(count.into()) <= l.max {
            if count {
                self.cur = self.cur.saturating_add(1);
            }
            self.flags &= !(OVER | NOTIFY);
            return RateVerdict::Allowed;
        }
        if served {
            self.cur = self.cur.saturating_add(1);
        }
        if l.timeout > 0 {
            self.offenses = self.offenses.saturating_add(1);
            self.restart(now.saturating_add(l.timeout), BOXED);
            return RateVerdict::Limited {
                retry_after_ms: l.timeout,
                entered: true,
                offenses: self.offenses.into(),
            };
        }
        let entered = self.flags & OVER == 0;
        if entered {
            self.offenses = self.offenses.saturating_add(1);
            self.flags |= OVER;
        }
        // After a clock step back the window starts in the future: wait for that too.
        let wait = self.retry_after(elapsed, l.max - u64::from(count), l.period);
        RateVerdict::Limited {
            retry_after_ms: wait.saturating_add(self.at.saturating_sub(now)),
            entered,
            offenses: self.offenses.into(),
        }
    }
}

impl Shard {
    /// Finds `key` in set `set`; when absent and `insert`, takes an empty way or evicts the LRU one.
    fn find(&mut self, set: usize, key: u64, now: u64, insert: bool) -> Option<&mut Entry> {
        self.tick = self.tick.wrapping_add(1).max(1);
        let tick = self.tick;
        let ways = &mut self.sets[set].0;
        // Ways are filled in order and never vacated, so the occupied ones form a prefix: a hit
        // usually touches only the set's first lines and a miss stops at the first hole.
        let (mut hit, mut hole) = (None, None);
        for (way, e) in ways.iter().enumerate() {
            if e.stamp == 0 {
                hole = Some(way);
                break;
            }
            if e.key == key {
                hit = Some(way);
                break;
            }
        }
        let way = match (hit, hole) {
            (Some(way), _) => way,
            _ if !insert => return None,
            (None, Some(way)) => {
                self.len += 1;
                way
            }
            (None, None) => {
                // Ages wrap after 2^32 shard operations; a very stale way may then look young,
                // which only makes the choice less than perfectly LRU.
                self.evictions += 1;
                let age = |e: &Entry| tick.wrapping_sub(e.stamp);
                let lru = ways.iter().enumerate().max_by_key(|(_, e)| age(e))?.0;
                if !ways[lru].boxed_at(now) {
                    lru
                } else if let Some((way, _)) = ways
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| !e.boxed_at(now))
                    .max_by_key(|(_, e)| age(e))
                {
                    self.penalty_kept += 1;
                    way
                } else {
                    self.penalty_evictions += 1;
                    lru
                }
            }
        };
        let entry = &mut ways[way];
        if hit.is_none() {
            self.insertions += 1;
            *entry = Entry {
                key,
                at: now,
                ..Entry::default()
            };
        }
        entry.stamp = tick;
        Some(entry)
    }
}

impl RateStore {
    /// The smallest store [`RateStore::with_memory`] builds (one shard of one set), whatever the
    /// budget.
    pub const MIN_MEMORY_BYTES: usize =
        size_of::<RateStore>() + size_of::<Padded>() + size_of::<Set>();

    /// A store holding at most as many entries as fit in `max_bytes` (all memory allocated here,
    /// never later). Panics never; a tiny budget still gives a small working store (>= 1 set, see
    /// [`RateStore::MIN_MEMORY_BYTES`]).
    pub fn with_memory(max_bytes: usize) -> RateStore {
        let avail = max_bytes.saturating_sub(size_of::<RateStore>());
        let mut shards = MAX_SHARDS;
        while shards > 1 && shards * (size_of::<Padded>() + size_of::<Set>()) > avail {
            shards /= 2;
        }
        // fast_range maps 32 key bits, so a shard holds at most 2^32 sets.
        let sets = (avail.saturating_sub(shards * size_of::<Padded>()) / size_of::<Set>())
            .clamp(shards, shards.saturating_mul(u32::MAX as usize));
        let shard_sets = |i: usize| sets / shards + usize::from(i < sets % shards);
        let shards = (0..shards)
            .map(|i| {
                Padded(Mutex::new(Shard {
                    sets: vec![Set::default(); shard_sets(i)].into_boxed_slice(),
                    tick: 0,
                    len: 0,
                    insertions: 0,
                    evictions: 0,
                    penalty_kept: 0,
                    penalty_evictions: 0,
                }))
            })
            .collect();
        RateStore { shards, sets }
    }

    /// Maximum number of keys held at once.
    pub fn capacity(&self) -> usize {
        self.sets * WAYS
    }

    /// The shard (from the key's high bits) and set (from its low bits) holding `key`.
    fn locate(&self, key: u64) -> (MutexGuard<'_, Shard>, usize) {
        let shard = &self.shards[fast_range((key >> 32) as u32, self.shards.len())].0;
        let guard = shard.lock().unwrap_or_else(|e| e.into_inner());
        let set = fast_range(key as u32, guard.sets.len());
        (guard, set)
    }

    /// Decides one request at `now_ms` (a monotonic clock in ms supplied by the caller). When
    /// `count` is true, the request is counted first (the usual case); when false the request is
    /// only checked (rules whose counting expression is evaluated later on the response).
    pub fn check(&self, key: u64, limit: &Limit, now_ms: u64, count: bool) -> RateVerdict {
        let (mut shard, set) = self.locate(key);
        // An unseen key that is only checked cannot be over: don't spend a way on it.
        let Some(entry) = shard.find(set, key, now_ms, count) else {
            return RateVerdict::Allowed;
        };
        let mut verdict = entry.decide(&Rule::new(limit), now_ms, count, false);
        if let RateVerdict::Limited { entered, .. } = &mut verdict {
            if entry.flags & NOTIFY != 0 {
                entry.flags &= !NOTIFY;
                *entered = true;
            }
        }
        verdict
    }

    /// Counts one request for `key` without deciding (response-time counting expression); may
    /// put the key into the penalty box so the *next* check is limited.
    pub fn record(&self, key: u64, limit: &Limit, now_ms: u64) {
        let (mut shard, set) = self.locate(key);
        if let Some(entry) = shard.find(set, key, now_ms, true) {
            let verdict = entry.decide(&Rule::new(limit), now_ms, true, true);
            if let RateVerdict::Limited { entered: true, .. } = verdict {
                entry.flags |= NOTIFY;
            }
        }
    }

    /// Occupancy, eviction count and real footprint (locks each shard briefly).
    pub fn stats(&self) -> StoreStats {
        let mut stats = StoreStats {
            capacity: self.capacity(),
            memory_bytes: size_of::<RateStore>()
                + self.shards.len() * size_of::<Padded>()
                + self.sets * size_of::<Set>(),
            ..StoreStats::default()
        };
        for shard in self.shards.iter() {
            let shard = shard.0.lock().unwrap_or_else(|e| e.into_inner());
            stats.entries += shard.len;
            stats.evictions += shard.evictions;
            stats.insertions += shard.insertions;
            stats.penalty_kept += shard.penalty_kept;
            stats.penalty_evictions += shard.penalty_evictions;
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    const fn lim(period_ms: u64, requests_per_period: u64, mitigation_timeout_ms: u64) -> Limit {
        Limit {
            period_ms,
            requests_per_period,
            mitigation_timeout_ms,
        }
    }

    fn limited(retry_after_ms: u64, entered: bool, offenses: u32) -> RateVerdict {
        RateVerdict::Limited {
            retry_after_ms,
            entered,
            offenses,
        }
    }

    fn is_allowed(v: RateVerdict) -> bool {
        v == RateVerdict::Allowed
    }

    /// Counted checks at `now` until the first limited one; returns how many were allowed.
    fn allowed_burst(s: &RateStore, key: u64, l: &Limit, now: u64) -> u64 {
        (0..1_000_000)
            .take_while(|_| is_allowed(s.check(key, l, now, true)))
            .count() as u64
    }

    fn splitmix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    #[test]
    fn store_is_send_sync_and_entries_small() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RateStore>();
        assert_eq!(size_of::<Entry>(), 32);
        assert_eq!(size_of::<Set>(), 32 * WAYS);
    }

    #[test]
    fn exact_burst_then_limited() {
        let s = RateStore::with_memory(1 << 20);
        let l = lim(1000, 10, 0);
        for _ in 0..10 {
            assert_eq!(s.check(7, &l, 0, true), RateVerdict::Allowed);
        }
        let RateVerdict::Limited {
            entered: true,
            offenses: 1,
            retry_after_ms,
        } = s.check(7, &l, 0, true)
        else {
            panic!("11th request must be limited");
        };
        assert!(retry_after_ms >= 1);
        assert!(matches!(
            s.check(7, &l, 0, true),
            RateVerdict::Limited {
                entered: false,
                offenses: 1,
                ..
            }
        ));
        // Other keys are independent.
        assert_eq!(allowed_burst(&s, 8, &l, 0), 10);
    }

    #[test]
    fn window_slides() {
        let s = RateStore::with_memory(1 << 20);
        let l = lim(1000, 10, 0);
        assert_eq!(allowed_burst(&s, 1, &l, 0), 10);
        // Right at the next window the previous one still weighs fully.
        assert!(!is_allowed(s.check(1, &l, 1000, true)));
        // Half a period into it, half the previous count weighs in: 5 more fit.
        assert_eq!(allowed_burst(&s, 1, &l, 1500), 5);
        // Two periods after the burst window, a key is fully recovered.
        assert_eq!(allowed_burst(&s, 2, &l, 0), 10);
        assert_eq!(allowed_burst(&s, 2, &l, 2000), 10);
        // Windows advance by whole periods: at 2999 the 2000 window is current, prev is empty.
        assert!(!is_allowed(s.check(2, &l, 2999, true)));
    }

    #[test]
    fn penalty_box_holds_then_releases_fresh() {
        let s = RateStore::with_memory(1 << 20);
        // Timeout shorter than the period, so a release without a reset would still be over.
        let l = lim(10_000, 5, 1000);
        assert_eq!(allowed_burst(&s, 3, &l, 0), 5); // the 6th enters the box
        assert_eq!(s.check(3, &l, 500, false), limited(500, false, 1));
        assert_eq!(s.check(3, &l, 999, true), limited(1, false, 1));
        assert_eq!(allowed_burst(&s, 3, &l, 1000), 5);
        // Entering again is a second offense.
        assert_eq!(s.check(3, &l, 1000, false), limited(1000, false, 2));
        assert_eq!(allowed_burst(&s, 3, &l, 2000), 5);
        assert_eq!(s.check(3, &l, 2000, false), limited(1000, false, 3));
    }

    #[test]
    fn box_entry_reports_entered_and_counts_offenses() {
        let s = RateStore::with_memory(1 << 20);
        let l = lim(1000, 2, 5000);
        for round in 1..=4u32 {
            let t = u64::from(round) * 10_000;
            assert!(is_allowed(s.check(9, &l, t, true)));
            assert!(is_allowed(s.check(9, &l, t, true)));
            assert_eq!(s.check(9, &l, t, true), limited(5000, true, round));
            assert_eq!(s.check(9, &l, t + 1, true), limited(4999, false, round));
        }
    }

    #[test]
    fn timeout_zero_limits_only_while_over_and_rejects_do_not_count() {
        let s = RateStore::with_memory(1 << 20);
        let l = lim(1000, 5, 0);
        assert_eq!(allowed_burst(&s, 4, &l, 0), 5);
        // Hammering while limited neither counts nor adds offenses.
        for _ in 0..100 {
            assert!(matches!(
                s.check(4, &l, 10, true),
                RateVerdict::Limited {
                    entered: false,
                    offenses: 1,
                    ..
                }
            ));
        }
        // Had the 100 rejects counted, prev would be 106 and this would stay limited.
        assert_eq!(allowed_burst(&s, 4, &l, 1500), 3); // floor(5 * 0.5) = 2 weighs in
        assert!(matches!(
            s.check(4, &l, 1500, true),
            RateVerdict::Limited {
                entered: false,
                offenses: 2,
                ..
            }
        ));
        // Limited exactly until retry_after: prev must weigh <= 1, i.e. 5 * (1000 - x) < 2000.
        assert_eq!(s.check(4, &l, 1500, true), limited(101, false, 2));
        assert!(!is_allowed(s.check(4, &l, 1600, true)));
        assert!(is_allowed(s.check(4, &l, 1601, true)));
    }

    #[test]
    fn record_then_check_without_counting() {
        let s = RateStore::with_memory(1 << 20);
        let l = lim(1000, 3, 5000);
        // Checking an unseen key does not take a way.
        assert!(is_allowed(s.check(5, &l, 0, false)));
        assert_eq!(s.stats().entries, 0);
        for _ in 0..3 {
            s.record(5, &l, 0);
            assert!(is_allowed(s.check(5, &l, 0, false)));
        }
        s.record(5, &l, 1); // over: boxed by the response-time count
        assert_eq!(s.check(5, &l, 2, false), limited(4999, true, 1));
        assert_eq!(s.check(5, &l, 3, false), limited(4998, false, 1));
        assert!(is_allowed(s.check(5, &l, 5001, false)));

        // Timeout 0: limited while the recorded rate is over, entered reported once.
        let l0 = lim(1000, 3, 0);
        for _ in 0..4 {
            s.record(6, &l0, 0);
        }
        assert!(matches!(
            s.check(6, &l0, 0, false),
            RateVerdict::Limited {
                entered: true,
                offenses: 1,
                ..
            }
        ));
        assert!(matches!(
            s.check(6, &l0, 0, false),
            RateVerdict::Limited {
                entered: false,
                offenses: 1,
                ..
            }
        ));
        assert!(is_allowed(s.check(6, &l0, 2000, false)));
    }

    #[test]
    fn clock_backwards_and_extremes_never_panic() {
        let s = RateStore::with_memory(1 << 20);
        let l = lim(1000, 3, 0);
        assert_eq!(allowed_burst(&s, 10, &l, 10_000), 3);
        // Going back reads as no time passed: still over, still the same window.
        assert!(!is_allowed(s.check(10, &l, 5_000, true)));
        assert!(!is_allowed(s.check(10, &l, 0, true)));
        assert!(is_allowed(s.check(10, &l, 0, false))); // exactly at the limit
        assert_eq!(allowed_burst(&s, 10, &l, 12_000), 3);

        // A box never lasts longer than one timeout after the clock steps back.
        let lb = lim(1000, 1, 700);
        assert!(is_allowed(s.check(11, &lb, 50_000, true)));
        assert_eq!(s.check(11, &lb, 50_000, true), limited(700, true, 1));
        assert_eq!(s.check(11, &lb, 0, false), limited(700, false, 1));
        assert!(is_allowed(s.check(11, &lb, 700, true)));

        // Saturation at the edges of u64 and degenerate limits.
        let huge = lim(u64::MAX, u64::MAX, u64::MAX);
        let zero = lim(0, 0, 0);
        for now in [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX, 3] {
            for l in [huge, zero, lim(u64::MAX, 1, u64::MAX), lim(1, 1, u64::MAX)] {
                let _ = s.check(12, &l, now, true);
                let _ = s.check(12, &l, now, false);
                s.record(12, &l, now);
                if let RateVerdict::Limited { retry_after_ms, .. } = s.check(12, &l, now, true) {
                    assert!(retry_after_ms >= 1);
                }
            }
        }
        // Zero acts as one: one request per ms.
        assert_eq!(allowed_burst(&s, 13, &zero, 0), 1);
        assert_eq!(allowed_burst(&s, 13, &zero, 2), 1);
    }

    #[test]
    fn full_set_evicts_least_recently_used() {
        // The minimum store is one shard of one set: every key lands in the same set.
        let s = RateStore::with_memory(0);
        assert_eq!(s.capacity(), WAYS);
        let l = lim(1_000_000, 1, 0);
        for key in 1..=WAYS as u64 {
            assert!(is_allowed(s.check(key, &l, key, true)));
        }
        assert!(is_allowed(s.check(1, &l, 20, false))); // touch: key 2 is now the LRU way
        let before = s.stats();
        assert_eq!((before.entries, before.evictions), (WAYS, 0));
        assert!(is_allowed(s.check(100, &l, 21, true)));
        let after = s.stats();
        assert_eq!(
            (after.entries, after.evictions, after.insertions),
            (WAYS, 1, WAYS as u64 + 1)
        );
        // Key 1 kept its count; key 2 was forgotten and starts fresh (evicting key 3).
        assert!(!is_allowed(s.check(1, &l, 22, true)));
        assert!(is_allowed(s.check(2, &l, 23, true)));
        assert!(!is_allowed(s.check(2, &l, 23, true)));
        assert!(is_allowed(s.check(3, &l, 24, true)));
        assert_eq!(s.stats().evictions, 3);
    }

    /// Issue 17 item 6: a flood of unique keys must not push a key out of its penalty box.
    #[test]
    fn key_flood_does_not_release_a_penalised_key() {
        // One set of eight ways: every flood key competes with the boxed one for a way.
        let s = RateStore::with_memory(0);
        let l = lim(1000, 2, 60_000);
        let boxed = 0xB0C5;
        assert_eq!(allowed_burst(&s, boxed, &l, 0), 2); // the third enters the box until 60 s
        for round in 0..3u64 {
            // 1,000 unique keys, one request each, never touching the boxed key.
            for i in 0..1000u64 {
                let _ = s.check(splitmix(round * 1000 + i), &l, 1 + round * 1000 + i, true);
            }
            let now = 10_000 + round * 20_000;
            assert_eq!(
                s.check(boxed, &l, now, true),
                limited(60_000 - now, false, 1),
                "after flood {round}"
            );
        }
        for i in 0..1000u64 {
            let _ = s.check(splitmix(10_000 + i), &l, 59_000 + i / 2, true);
        }
        assert_eq!(s.check(boxed, &l, 59_999, true), limited(1, false, 1));
        let st = s.stats();
        assert!(st.penalty_kept > 0, "{st:?}");
        assert_eq!(st.penalty_evictions, 0);
        assert_eq!(st.evictions, st.insertions - st.entries as u64);
        assert_eq!(allowed_burst(&s, boxed, &l, 60_000), 2);
    }

    /// The residual: when every way of a set is boxed, one boxed key is evicted after all, and
    /// that is counted apart.
    #[test]
    fn a_set_full_of_boxed_keys_evicts_one_and_counts_it() {
        let s = RateStore::with_memory(0);
        let l = lim(1000, 1, 60_000);
        for key in 1..=WAYS as u64 {
            assert!(is_allowed(s.check(key, &l, key, true)));
            assert_eq!(s.check(key, &l, key, true), limited(60_000, true, 1));
        }
        let counters = |s: &RateStore| {
            let st = s.stats();
            (st.evictions, st.penalty_kept, st.penalty_evictions)
        };
        // Every way is boxed: the least recently used boxed key (1) goes, counted.
        assert!(is_allowed(s.check(100, &l, 20, true)));
        assert_eq!(counters(&s), (1, 0, 1));
        // Key 1 starts fresh inside what was its box. Coming back, it passes over the boxed
        // LRU key 2 and evicts the only unboxed key, 100.
        assert!(is_allowed(s.check(1, &l, 21, true)));
        assert_eq!(counters(&s), (2, 1, 1));
        assert_eq!(s.check(2, &l, 22, true), limited(60_002 - 22, false, 1));
        // A box that has ended protects nothing: plain LRU (key 3) again.
        assert!(is_allowed(s.check(200, &l, 70_000, true)));
        assert_eq!(counters(&s), (3, 1, 1));
        assert!(is_allowed(s.check(3, &l, 70_001, true)));
    }

    /// The same in a store of many sets: boxed keys keep their boxes through a flood of four
    /// times the capacity.
    #[test]
    fn boxed_keys_survive_a_flood_of_the_whole_store() {
        let s = RateStore::with_memory(1 << 16);
        let l = lim(1000, 1, 100_000);
        let boxed: Vec<u64> = (0..16).map(|i| splitmix(1_000_000 + i)).collect();
        for &k in &boxed {
            assert!(is_allowed(s.check(k, &l, 0, true)));
            assert_eq!(s.check(k, &l, 0, true), limited(100_000, true, 1));
        }
        let flood = 4 * s.capacity() as u64;
        for i in 0..flood {
            let _ = s.check(splitmix(i), &l, i * 50_000 / flood, true);
        }
        for &k in &boxed {
            assert_eq!(s.check(k, &l, 60_000, true), limited(40_000, false, 1));
        }
    }

    #[test]
    fn memory_never_exceeds_budget() {
        let mut last_capacity = 0;
        for budget in [
            0,
            1,
            100,
            400,
            1000,
            4096,
            10_000,
            65_536,
            1 << 20,
            3_000_000,
            16 << 20,
        ] {
            let s = RateStore::with_memory(budget);
            let st = s.stats();
            assert!(
                st.memory_bytes <= budget.max(RateStore::MIN_MEMORY_BYTES),
                "{budget}: {st:?}"
            );
            assert!(st.capacity >= WAYS && st.capacity == s.capacity());
            assert!(st.capacity >= last_capacity);
            assert!(st.capacity * size_of::<Entry>() <= st.memory_bytes);
            last_capacity = st.capacity;
            if budget >= 1 << 20 {
                // Overheads stay small: at least 95% of a big budget holds entries.
                assert!(
                    st.capacity * size_of::<Entry>() >= budget / 100 * 95,
                    "{budget}: {st:?}"
                );
            }
        }
        assert_eq!(
            RateStore::with_memory(0).stats().memory_bytes,
            RateStore::MIN_MEMORY_BYTES
        );
    }

    #[test]
    fn concurrent_checks_are_consistent() {
        let s = Arc::new(RateStore::with_memory(4 << 20));
        let shared = lim(u64::MAX, 5000, 0);
        let own = lim(u64::MAX, 1000, 0);
        let shared_allowed = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (s, shared_allowed) = (Arc::clone(&s), Arc::clone(&shared_allowed));
                std::thread::spawn(move || {
                    let mut own_allowed = 0;
                    for i in 0..2000u64 {
                        if is_allowed(s.check(42, &shared, i, true)) {
                            shared_allowed.fetch_add(1, Ordering::Relaxed);
                        }
                        own_allowed += u64::from(is_allowed(s.check(splitmix(t), &own, i, true)));
                        // Churn through distinct keys too (well under capacity).
                        s.record(splitmix(1000 + t * 10_000 + i), &own, i);
                    }
                    own_allowed
                })
            })
            .collect();
        for th in threads {
            assert_eq!(th.join().ok(), Some(1000));
        }
        assert_eq!(shared_allowed.load(Ordering::Relaxed), 5000);
        let st = s.stats();
        assert_eq!(st.insertions, st.entries as u64 + st.evictions);
        assert_eq!(st.entries as u64 + st.evictions, 1 + 4 + 4 * 2000);
    }

    proptest! {
        #[test]
        fn bounded_under_key_flood(
            budget in prop_oneof![Just(0usize), 300usize..3000, 3000usize..20_000],
            ops in prop::collection::vec((0u64..5000, 0u8..3, 0u64..300, 0usize..3), 1..2000),
        ) {
            let s = RateStore::with_memory(budget);
            let limits = [lim(1000, 3, 0), lim(500, 2, 2000), lim(1, 1, 1)];
            let mut now = 0u64;
            for (key, op, advance, rule) in ops {
                // Sometimes step the clock back.
                now = if advance == 299 { now.saturating_sub(1000) } else { now + advance };
                let (key, l) = (splitmix(key), &limits[rule]);
                match op {
                    0 => { let _ = s.check(key, l, now, true); }
                    1 => { let _ = s.check(key, l, now, false); }
                    _ => s.record(key, l, now),
                }
                let st = s.stats();
                prop_assert!(st.entries <= st.capacity);
                prop_assert!(st.memory_bytes <= budget.max(RateStore::MIN_MEMORY_BYTES));
                prop_assert_eq!(st.evictions, st.insertions - st.entries as u64);
                // Both penalty counters are kinds of eviction.
                prop_assert!(st.penalty_kept + st.penalty_evictions <= st.evictions);
            }
        }

        #[test]
        fn timeout_zero_retry_after_is_exact(
            period in 1u64..5000,
            max in 1u64..20,
            steps in prop::collection::vec((0u64..3000, any::<bool>(), 1u64..30, any::<bool>()), 1..8),
        ) {
            let s = RateStore::with_memory(1 << 16);
            let l = lim(period, max, 0);
            let mut now: u64 = 10_000;
            for (advance, back, burst, count) in steps {
                now = if back { now.saturating_sub(advance) } else { now + advance };
                for _ in 0..burst {
                    let _ = s.check(1, &l, now, true);
                }
                if let RateVerdict::Limited { retry_after_ms: wait, .. } = s.check(1, &l, now, count) {
                    prop_assert!(wait >= 1);
                    // Limited checks don't count, so probing just before leaves the state as is.
                    if wait > 1 {
                        prop_assert!(!is_allowed(s.check(1, &l, now + wait - 1, count)));
                    }
                    prop_assert!(is_allowed(s.check(1, &l, now + wait, count)));
                    now += wait;
                }
            }
        }
    }
}
