//! Pools of origins: health state, in-flight counts and the balancing choice.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use super::config::{Balance, HealthConfig, OriginAddr, PoolConfig};
use super::stats::{OriginCounters, OriginStats, PoolStats};

pub(crate) struct Origin {
    /// As configured, for logs, stats and error bodies.
    pub name: String,
    pub addr: OriginAddr,
    healthy: AtomicBool,
    in_flight: AtomicU64,
    streak: Mutex<Streak>,
    pub counters: OriginCounters,
}

/// Consecutive check results since the last change of direction.
#[derive(Default)]
struct Streak {
    failures: u32,
    successes: u32,
}

impl Origin {
    pub fn new(name: String, addr: OriginAddr) -> Origin {
        Origin {
            name,
            addr,
            // Up until proven down, so traffic flows before the first check completes.
            healthy: AtomicBool::new(true),
            in_flight: AtomicU64::new(0),
            streak: Mutex::new(Streak::default()),
            counters: OriginCounters::default(),
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    /// Counts a request as in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Records a health observation and flips the state after enough in a row. Returns the new
    /// state when it changed.
    pub fn observe(&self, ok: bool, cfg: &HealthConfig) -> Option<bool> {
        let mut s = self.streak.lock().unwrap_or_else(PoisonError::into_inner);
        let healthy = self.is_healthy();
        if ok {
            s.failures = 0;
            s.successes = s.successes.saturating_add(1);
            if !healthy && s.successes >= cfg.healthy_after {
                self.healthy.store(true, Relaxed);
                return Some(true);
            }
        } else {
            s.successes = 0;
            s.failures = s.failures.saturating_add(1);
            if healthy && s.failures >= cfg.unhealthy_after {
                self.healthy.store(false, Relaxed);
                return Some(false);
            }
        }
        None
    }

    pub fn stats(&self) -> OriginStats {
        OriginStats {
            origin: self.name.clone(),
            healthy: self.is_healthy(),
            in_flight: self.in_flight(),
            responses: std::array::from_fn(|i| self.counters.responses[i].load(Relaxed)),
            errors: self.counters.errors(),
            latency: self.counters.latency.snapshot(),
        }
    }
}

/// One request in flight on an origin.
pub(crate) struct InFlight(Arc<Origin>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

pub(crate) struct Pool {
    pub name: String,
    pub origins: Vec<Arc<Origin>>,
    pub balance: Balance,
    pub health: HealthConfig,
    /// Round-robin cursor; also where least-outstanding starts looking, to spread ties.
    next: AtomicUsize,
    pub retries: AtomicU64,
    pub no_healthy: AtomicU64,
    /// Passive failures count only while active checks run: nothing else could bring a
    /// passively downed origin back.
    pub checked: AtomicBool,
}

/// The balancer's answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    Origin(usize),
    /// Every origin is down.
    NoneHealthy,
    /// Healthy origins exist but all were tried already.
    Exhausted,
}

impl Pool {
    pub fn new(cfg: &PoolConfig, addrs: Vec<OriginAddr>) -> Pool {
        Pool {
            name: cfg.name.clone(),
            origins: cfg
                .origins
                .iter()
                .zip(addrs)
                .map(|(name, addr)| Arc::new(Origin::new(name.clone(), addr)))
                .collect(),
            balance: cfg.balance,
            health: cfg.health.clone(),
            next: AtomicUsize::new(0),
            retries: AtomicU64::new(0),
            no_healthy: AtomicU64::new(0),
            checked: AtomicBool::new(false),
        }
    }

    /// Chooses a healthy origin not in `tried` (indices into `origins`).
    pub fn pick(&self, tried: &[usize]) -> Pick {
        let n = self.origins.len();
        let start = self.next.fetch_add(1, Relaxed);
        let mut any_healthy = false;
        let mut best: Option<(usize, u64)> = None;
        for i in 0..n {
            let idx = start.wrapping_add(i) % n;
            let o = &self.origins[idx];
            if !o.is_healthy() {
                continue;
            }
            any_healthy = true;
            if tried.contains(&idx) {
                continue;
            }
            match self.balance {
                Balance::RoundRobin => return Pick::Origin(idx),
                Balance::LeastOutstanding => {
                    let load = o.in_flight();
                    if best.is_none_or(|(_, b)| load < b) {
                        best = Some((idx, load));
                    }
                }
            }
        }
        match best {
            Some((idx, _)) => Pick::Origin(idx),
            None if any_healthy => Pick::Exhausted,
            None => Pick::NoneHealthy,
        }
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            name: self.name.clone(),
            retries: self.retries.load(Relaxed),
            no_healthy_origin: self.no_healthy.load(Relaxed),
            origins: self.origins.iter().map(|o| o.stats()).collect(),
        }
    }

    /// Records a check (or, while checks run, a passive connect failure) and logs a change.
    pub fn observe(&self, idx: usize, ok: bool, why: &dyn std::fmt::Display) {
        let o = &self.origins[idx];
        match o.observe(ok, &self.health) {
            Some(true) => log::info!(
                "proxy: origin {} in pool `{}` is up after {} good checks",
                o.name,
                self.name,
                self.health.healthy_after
            ),
            Some(false) => log::warn!(
                "proxy: origin {} in pool `{}` is down after {} failures (last: {why})",
                o.name,
                self.name,
                self.health.unhealthy_after
            ),
            None => {}
        }
    }

    /// A connect failure seen on the request path.
    pub fn passive_failure(&self, idx: usize, why: &dyn std::fmt::Display) {
        if self.checked.load(Relaxed) {
            self.observe(idx, false, why);
        }
    }
}
