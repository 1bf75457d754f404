//! Escalation to the data plane: a `jail` rule or a repeat rate-limit offender puts the client's
//! address into the XDP denylist with an expiry. Writes go through the kernel seam
//! ([`FilterTables`]), so unit tests use the in-memory fake and an integration test the kernel.
//!
//! An attack can make many clients offend at once; the writes are shaped by a GCRA limiter
//! (governor) so the map writer cannot be flooded, and an address jailed moments ago is not
//! written again. Both are counted.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rampart_rules::Prefix;

use rampart_tables::{FilterTables, TablesError};

/// Puts an address into the data plane's denylist.
pub trait Jailer: Send + Sync {
    fn jail(&self, ip: IpAddr, duration: Duration) -> Result<(), TablesError>;
}

/// A shared jailer (the caller keeps a handle, e.g. to read the tables in tests).
impl<J: Jailer + ?Sized> Jailer for std::sync::Arc<J> {
    fn jail(&self, ip: IpAddr, duration: Duration) -> Result<(), TablesError> {
        (**self).jail(ip, duration)
    }
}

/// A [`Jailer`] over any [`FilterTables`]: the kernel's, or the fake.
pub struct TablesJailer<T> {
    tables: Mutex<T>,
}

impl<T: FilterTables + Send> TablesJailer<T> {
    pub fn new(tables: T) -> Self {
        TablesJailer {
            tables: Mutex::new(tables),
        }
    }

    /// Runs `f` on the tables (tests read the fake's contents this way).
    pub fn with_tables<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.tables.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<T: FilterTables + Send> Jailer for TablesJailer<T> {
    fn jail(&self, ip: IpAddr, duration: Duration) -> Result<(), TablesError> {
        self.with_tables(|t| t.deny(Prefix::from_ip(ip), Some(duration)))
    }
}

/// Outcome of one escalation request, for counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JailOutcome {
    Jailed,
    /// Jailed already within the last second.
    Recent,
    /// Over the write budget.
    Throttled,
    Failed,
    /// No jailer configured (library use without a data plane).
    NoJailer,
}

/// Recently jailed addresses: a small ring, enough to absorb a burst of requests from one client
/// that were in flight when it was jailed.
const RECENT: usize = 256;

pub(crate) struct Escalator {
    jailer: Option<Box<dyn Jailer>>,
    budget: DefaultDirectRateLimiter,
    recent: Mutex<(usize, Vec<(IpAddr, Instant)>)>,
    pub(crate) jailed: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) failed: AtomicU64,
}

impl Escalator {
    pub(crate) fn new(jailer: Option<Box<dyn Jailer>>, writes_per_second: u32) -> Escalator {
        let rate = NonZeroU32::new(writes_per_second).unwrap_or(NonZeroU32::MIN);
        Escalator {
            jailer,
            budget: RateLimiter::direct(Quota::per_second(rate)),
            recent: Mutex::new((0, Vec::with_capacity(RECENT))),
            jailed: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    pub(crate) fn jail(&self, ip: IpAddr, duration: Duration) -> JailOutcome {
        let Some(jailer) = &self.jailer else {
            return JailOutcome::NoJailer;
        };
        let now = Instant::now();
        {
            let mut r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = |t: &Instant| now.duration_since(*t) < Duration::from_secs(1);
            if r.1.iter().any(|(a, t)| *a == ip && fresh(t)) {
                return JailOutcome::Recent;
            }
            if self.budget.check().is_err() {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                return JailOutcome::Throttled;
            }
            let (next, ring) = &mut *r;
            if ring.len() < RECENT {
                ring.push((ip, now));
            } else {
                ring[*next] = (ip, now);
            }
            *next = (*next + 1) % RECENT;
        }
        match jailer.jail(ip, duration) {
            Ok(()) => {
                self.jailed.fetch_add(1, Ordering::Relaxed);
                JailOutcome::Jailed
            }
            Err(e) => {
                log::warn!("jailing {ip} failed: {e}");
                self.failed.fetch_add(1, Ordering::Relaxed);
                JailOutcome::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_tables::FakeTables;
    use std::sync::Arc;

    #[test]
    fn jails_once_and_shapes_writes() {
        let tables = Arc::new(TablesJailer::new(FakeTables::default()));
        let esc = Escalator::new(Some(Box::new(tables.clone())), 3);
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(esc.jail(a, Duration::from_secs(60)), JailOutcome::Jailed);
        assert_eq!(esc.jail(a, Duration::from_secs(60)), JailOutcome::Recent);
        let denied = tables.with_tables(|t| t.denied.clone());
        assert_eq!(
            denied.get(&Prefix::from_ip(a)),
            Some(&Some(Duration::from_secs(60)))
        );
        // A burst of distinct offenders: the budget (3 per second) admits the first few.
        let outcomes: Vec<_> = (1..=10u8)
            .map(|i| esc.jail(IpAddr::from([198, 51, 100, i]), Duration::from_secs(1)))
            .collect();
        let jailed = outcomes
            .iter()
            .filter(|o| **o == JailOutcome::Jailed)
            .count();
        assert!((1..=3).contains(&jailed), "{outcomes:?}");
        assert_eq!(esc.throttled.load(Ordering::Relaxed) as usize, 10 - jailed);
        assert_eq!(
            Escalator::new(None, 1).jail(a, Duration::from_secs(1)),
            JailOutcome::NoJailer
        );
    }
}
