//! The connection table: caps on open client connections in all and per client address.
//!
//! At a cap the listener keeps accepting: it sheds the connection that has waited longest for
//! a request head (idle keep-alive, or accepted and silent), or, when every connection has a
//! request in flight, closes the new one at once. Either way the close is counted, so a flood
//! of idle sockets costs the attacker its own oldest sockets instead of everyone's service.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::time::Instant;

use super::server::ServeStats;
use super::timeouts::Clock;

/// Why a new connection was closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refused {
    #[error("{open} connections open (max_connections) and none idle")]
    Total { open: usize },
    #[error("{open} connections open from {ip} (max_connections_per_ip) and none idle")]
    PerIp { ip: IpAddr, open: usize },
}

pub(super) struct Table {
    /// 0: no cap.
    max_total: usize,
    /// 0: no cap.
    max_per_ip: usize,
    /// Weak: the stats hold the table (so every `serve` sharing them shares the caps).
    stats: Weak<ServeStats>,
    inner: Mutex<Inner>,
    /// Seconds (since `epoch`) of the last "cap reached" warning, to log at most every 10 s.
    warned_at: AtomicU64,
    epoch: Instant,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    conns: HashMap<u64, Entry>,
    /// Connections waiting for a request head, oldest wait first.
    idle: BTreeSet<(Instant, u64)>,
    ips: HashMap<IpAddr, PerIp>,
    /// Shed but not closed yet: still in `conns`, no longer counted against a cap.
    leaving: usize,
}

struct Entry {
    /// The address the per-address cap counts this connection under; None for a trusted
    /// PROXY peer until its header names the client (and for LOCAL/UNKNOWN headers).
    ip: Option<IpAddr>,
    idle_since: Option<Instant>,
    leaving: bool,
    clock: Arc<Clock>,
}

#[derive(Default)]
struct PerIp {
    open: usize,
    leaving: usize,
    idle: BTreeSet<(Instant, u64)>,
}

/// A connection's place in the table, held by the connection's task; dropping it (the
/// connection closed) frees the place even if request tasks still hold its [`Member`].
pub(super) struct Slot {
    member: Arc<Member>,
}

/// What a connection's requests report through: they go busy and idle.
pub(super) struct Member {
    table: Arc<Table>,
    id: u64,
    pub clock: Arc<Clock>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("max_total", &self.max_total)
            .field("max_per_ip", &self.max_per_ip)
            .finish_non_exhaustive()
    }
}

impl Table {
    pub fn new(max_total: usize, max_per_ip: usize, stats: Weak<ServeStats>) -> Table {
        Table {
            max_total,
            max_per_ip,
            stats,
            inner: Mutex::default(),
            warned_at: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Adds one to a listener counter (the stats are gone only while the listener shuts down).
    fn bump(&self, counter: fn(&ServeStats) -> &AtomicU64) {
        if let Some(s) = self.stats.upgrade() {
            counter(&s).fetch_add(1, Relaxed);
        }
    }

    fn store_idle(&self, n: usize) {
        if let Some(s) = self.stats.upgrade() {
            s.idle.store(n as u64, Relaxed);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The table holds no invariant a panicking holder could break halfway that matters
        // more than serving: carry on with what is there.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection (idle, waiting for its first head), shedding an idle one if a
    /// cap is reached. `ip` None: not capped per address (yet).
    pub fn admit(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        clock: Arc<Clock>,
        now: Instant,
    ) -> Result<Slot, Refused> {
        let mut t = self.lock();
        let made = self.make_room(&mut t, ip, true);
        if let Err(e) = made {
            drop(t);
            self.count_refused(e);
            return Err(e);
        }
        let id = t.next_id;
        t.next_id += 1;
        t.idle.insert((now, id));
        if let Some(ip) = ip {
            let p = t.ips.entry(ip).or_default();
            p.open += 1;
            p.idle.insert((now, id));
        }
        t.conns.insert(
            id,
            Entry {
                ip,
                idle_since: Some(now),
                leaving: false,
                clock: Arc::clone(&clock),
            },
        );
        self.store_idle(t.idle.len());
        Ok(Slot {
            member: Arc::new(Member {
                table: Arc::clone(self),
                id,
                clock,
            }),
        })
    }

    /// Counts the connection under `ip` from now on (a client named by a PROXY header),
    /// shedding one of that address's idle connections if it is at its cap.
    pub fn assign_ip(&self, slot: &Slot, ip: IpAddr) -> Result<(), Refused> {
        let slot = &slot.member;
        let mut t = self.lock();
        if t.conns
            .get(&slot.id)
            .is_none_or(|e| e.ip.is_some() || e.leaving)
        {
            return Ok(());
        }
        if let Err(e) = self.make_room(&mut t, Some(ip), false) {
            drop(t);
            self.count_refused(e);
            return Err(e);
        }
        let idle_since = match t.conns.get_mut(&slot.id) {
            Some(e) => {
                e.ip = Some(ip);
                e.idle_since
            }
            None => return Ok(()),
        };
        let p = t.ips.entry(ip).or_default();
        p.open += 1;
        if let Some(at) = idle_since {
            p.idle.insert((at, slot.id));
        }
        self.store_idle(t.idle.len());
        Ok(())
    }

    /// Makes room for one more connection from `ip` (and, if `new`, one more in all).
    fn make_room(&self, t: &mut Inner, ip: Option<IpAddr>, new: bool) -> Result<(), Refused> {
        if let (Some(ip), true) = (ip, self.max_per_ip > 0) {
            let (live, oldest) = t.ips.get(&ip).map_or((0, None), |p| {
                (p.open - p.leaving, p.idle.first().map(|&(_, id)| id))
            });
            if live >= self.max_per_ip {
                match oldest {
                    Some(id) => self.shed(t, id),
                    None => return Err(Refused::PerIp { ip, open: live }),
                }
            }
        }
        let live = t.conns.len() - t.leaving;
        if new && self.max_total > 0 && live >= self.max_total {
            match t.idle.first().map(|&(_, id)| id) {
                Some(id) => self.shed(t, id),
                None => return Err(Refused::Total { open: live }),
            }
        }
        Ok(())
    }

    fn shed(&self, t: &mut Inner, id: u64) {
        let Some(e) = t.conns.get_mut(&id) else {
            return;
        };
        e.leaving = true;
        let (ip, since) = (e.ip, e.idle_since.take());
        e.clock.shed();
        t.leaving += 1;
        if let Some(at) = since {
            t.idle.remove(&(at, id));
        }
        if let Some(p) = ip.and_then(|ip| t.ips.get_mut(&ip)) {
            p.leaving += 1;
            if let Some(at) = since {
                p.idle.remove(&(at, id));
            }
        }
        self.bump(|s| &s.shed);
        self.warn_capped();
    }

    fn count_refused(&self, e: Refused) {
        match e {
            Refused::Total { .. } => self.bump(|s| &s.refused_total),
            Refused::PerIp { .. } => self.bump(|s| &s.refused_per_ip),
        };
        log::debug!("proxy: connection refused: {e}");
        self.warn_capped();
    }

    /// Says once in a while that a cap is being hit: anyone can trigger it, so not per event.
    fn warn_capped(&self) {
        let now = self.epoch.elapsed().as_secs() + 10;
        let last = self.warned_at.load(Relaxed);
        if now >= last + 10
            && self
                .warned_at
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            let c = self
                .stats
                .upgrade()
                .map(|s| s.snapshot())
                .unwrap_or_default();
            log::warn!(
                "proxy: connection cap reached ({} in all, {} per address): {} idle shed, {} refused at the total cap, {} at the per-address cap so far",
                self.max_total,
                self.max_per_ip,
                c.shed,
                c.refused_total,
                c.refused_per_ip
            );
        }
    }

    /// The connection got a request head: it is no longer a candidate for shedding.
    fn set_busy(&self, id: u64) {
        let mut t = self.lock();
        let Some(e) = t.conns.get_mut(&id) else {
            return;
        };
        let (ip, since) = (e.ip, e.idle_since.take());
        if let Some(at) = since {
            t.idle.remove(&(at, id));
            if let Some(p) = ip.and_then(|ip| t.ips.get_mut(&ip)) {
                p.idle.remove(&(at, id));
            }
        }
        self.store_idle(t.idle.len());
    }

    /// The connection's last response ended: it waits for a head again.
    fn set_idle(&self, id: u64, now: Instant) {
        let mut t = self.lock();
        let Some(e) = t.conns.get_mut(&id) else {
            return;
        };
        if e.leaving || e.idle_since.is_some() {
            return;
        }
        e.idle_since = Some(now);
        let ip = e.ip;
        t.idle.insert((now, id));
        if let Some(p) = ip.and_then(|ip| t.ips.get_mut(&ip)) {
            p.idle.insert((now, id));
        }
        self.store_idle(t.idle.len());
    }

    fn remove(&self, id: u64) {
        let mut t = self.lock();
        let Some(e) = t.conns.remove(&id) else {
            return;
        };
        if e.leaving {
            t.leaving -= 1;
        }
        if let Some(at) = e.idle_since {
            t.idle.remove(&(at, id));
        }
        if let Some(ip) = e.ip {
            if let Some(p) = t.ips.get_mut(&ip) {
                p.open -= 1;
                if e.leaving {
                    p.leaving -= 1;
                }
                if let Some(at) = e.idle_since {
                    p.idle.remove(&(at, id));
                }
                if p.open == 0 {
                    t.ips.remove(&ip);
                }
            }
        }
        self.store_idle(t.idle.len());
    }

    #[cfg(test)]
    fn open(&self) -> (usize, usize, usize) {
        let t = self.lock();
        (t.conns.len(), t.leaving, t.ips.len())
    }
}

impl Slot {
    pub fn table(&self) -> &Table {
        &self.member.table
    }

    pub fn clock(&self) -> &Arc<Clock> {
        &self.member.clock
    }

    pub fn member(&self) -> Arc<Member> {
        Arc::clone(&self.member)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.member.table.remove(self.member.id);
    }
}

impl Member {
    pub fn request_started(&self) {
        if self.clock.request_started() {
            self.table.set_busy(self.id);
        }
    }

    pub fn request_ended(&self) {
        let now = Instant::now();
        if self.clock.request_ended(now) {
            self.table.set_idle(self.id, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::super::timeouts::Limits;
    use super::*;

    fn clock() -> Arc<Clock> {
        Arc::new(Clock::new(Limits::default(), Instant::now()))
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    #[tokio::test]
    async fn total_cap_sheds_the_longest_idle_then_refuses_when_all_are_busy() {
        let stats = Arc::new(ServeStats::default());
        let t = Arc::new(Table::new(2, 0, Arc::downgrade(&stats)));
        let t0 = Instant::now();
        let a = t.admit(ip(1), clock(), t0).unwrap();
        let b = t
            .admit(ip(2), clock(), t0 + Duration::from_millis(1))
            .unwrap();
        // a is the longest idle: shed for c.
        let c = t
            .admit(ip(3), clock(), t0 + Duration::from_millis(2))
            .unwrap();
        assert!(a.clock().is_shed() && !b.clock().is_shed());
        assert_eq!(stats.snapshot().shed, 1);
        drop(a);
        assert_eq!(t.open(), (2, 0, 2));
        b.member.request_started();
        c.member.request_started();
        assert_eq!(stats.snapshot().idle, 0);
        assert_eq!(
            t.admit(ip(4), clock(), Instant::now()).err(),
            Some(Refused::Total { open: 2 })
        );
        assert_eq!(stats.snapshot().refused_total, 1);
        // b's response ends: idle again, so the next newcomer sheds it.
        b.member.request_ended();
        let _d = t.admit(ip(4), clock(), Instant::now()).unwrap();
        assert!(b.clock().is_shed() && !c.clock().is_shed());
        assert_eq!(stats.snapshot().shed, 2);
    }

    #[tokio::test]
    async fn per_address_cap_sheds_only_that_addresses_idle() {
        let stats = Arc::new(ServeStats::default());
        let t = Arc::new(Table::new(0, 2, Arc::downgrade(&stats)));
        let now = Instant::now();
        let other = t.admit(ip(1), clock(), now).unwrap();
        let a = t
            .admit(ip(2), clock(), now + Duration::from_millis(1))
            .unwrap();
        let b = t
            .admit(ip(2), clock(), now + Duration::from_millis(2))
            .unwrap();
        let c = t
            .admit(ip(2), clock(), now + Duration::from_millis(3))
            .unwrap();
        assert!(a.clock().is_shed() && !b.clock().is_shed() && !other.clock().is_shed());
        b.member.request_started();
        c.member.request_started();
        assert!(matches!(
            t.admit(ip(2), clock(), Instant::now()),
            Err(Refused::PerIp { open: 2, .. })
        ));
        // The shed one still holds its place until it closes, but not against the cap.
        assert_eq!(t.open(), (4, 1, 2));
        drop(a);
        assert_eq!(t.open(), (3, 0, 2));
        let c = stats.snapshot();
        assert_eq!((c.shed, c.refused_per_ip), (1, 1));
    }

    #[tokio::test]
    async fn proxy_clients_join_their_addresses_cap_after_the_header() {
        let stats = Arc::new(ServeStats::default());
        let t = Arc::new(Table::new(0, 1, Arc::downgrade(&stats)));
        let now = Instant::now();
        // Both from the balancer, not capped per address at accept.
        let a = t.admit(None, clock(), now).unwrap();
        let b = t.admit(None, clock(), now).unwrap();
        t.assign_ip(&a, ip(9).unwrap()).unwrap();
        a.member.request_started();
        assert!(matches!(
            t.assign_ip(&b, ip(9).unwrap()),
            Err(Refused::PerIp { open: 1, .. })
        ));
        t.assign_ip(&b, ip(8).unwrap()).unwrap();
        assert_eq!(stats.snapshot().refused_per_ip, 1);
    }
}
