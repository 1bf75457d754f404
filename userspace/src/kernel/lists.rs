//! Allow and deny prefixes, and the [`FilterTables`] implementation on the kernel maps.

use std::time::Duration;

use aya::maps::lpm_trie::Key;
use rampart_common::addr::{AllowEntry, DenyEntry, LpmKeyData};
use rampart_rules::{xdp::XdpTables, Prefix};

use super::{Dataplane, FilterTables, KernelError, RulesReport, TablesError};

fn key(p: &Prefix) -> Key<LpmKeyData> {
    Key::new(p.len as u32, LpmKeyData { addr: p.addr })
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `bpf_ktime_get_ns` reads.
pub fn monotonic_ns() -> Result<u64, KernelError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Err(KernelError::Clock(std::io::Error::last_os_error()));
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// A deny entry as listed: the prefix and the time left, if it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenyListing {
    pub prefix: Prefix,
    pub expires_in: Option<Duration>,
}

impl Dataplane {
    fn set_counts(&mut self, allow: i64, deny: i64) -> Result<(), KernelError> {
        self.update_config(|c| {
            c.allow_entries = (c.allow_entries as i64 + allow).max(0) as u32;
            c.deny_entries = (c.deny_entries as i64 + deny).max(0) as u32;
        })?;
        Ok(())
    }

    pub fn deny_list(&self) -> Result<Vec<DenyListing>, KernelError> {
        let now = monotonic_ns()?;
        let mut out = Vec::new();
        for item in self.maps.deny.iter() {
            let (k, v) = item.map_err(KernelError::map("DENY"))?;
            let expires_in =
                (v.expires_ns != 0).then(|| Duration::from_nanos(v.expires_ns.saturating_sub(now)));
            out.push(DenyListing {
                prefix: Prefix::new(k.data().addr, k.prefix_len() as u8),
                expires_in,
            });
        }
        out.sort_by_key(|d| d.prefix);
        Ok(out)
    }

    pub fn allow_list(&self) -> Result<Vec<Prefix>, KernelError> {
        let mut out = Vec::new();
        for k in self.maps.allow.keys() {
            let k = k.map_err(KernelError::map("ALLOW"))?;
            out.push(Prefix::new(k.data().addr, k.prefix_len() as u8));
        }
        out.sort();
        Ok(out)
    }

    /// Removes deny entries whose time has passed; returns how many.
    pub fn expire_denies(&mut self) -> Result<usize, KernelError> {
        let expired: Vec<Prefix> = self
            .deny_list()?
            .into_iter()
            .filter(|d| d.expires_in == Some(Duration::ZERO))
            .map(|d| d.prefix)
            .collect();
        for p in &expired {
            self.undeny(*p)?;
        }
        Ok(expired.len())
    }
}

/// The list and rule-table writes, with the kernel's own error; the [`FilterTables`] seam below
/// hands the same operations to code that must not know the kernel.
impl Dataplane {
    pub fn deny(&mut self, prefix: Prefix, ttl: Option<Duration>) -> Result<(), KernelError> {
        let k = key(&prefix);
        let existed = self
            .maps
            .deny
            .get(&k, 0)
            .is_ok_and(|e| e.prefix_len == prefix.len as u32);
        let expires_ns = match ttl {
            Some(d) => monotonic_ns()?.saturating_add(d.as_nanos() as u64).max(1),
            None => 0,
        };
        let entry = DenyEntry {
            expires_ns,
            prefix_len: prefix.len as u32,
            _pad: 0,
        };
        self.maps.deny.insert(&k, entry, 0).map_err(|e| {
            full_or(
                e,
                "the denylist",
                rampart_common::limits::MAX_DENY_ENTRIES,
                "DENY",
            )
        })?;
        if !existed {
            self.set_counts(0, 1)?;
        }
        Ok(())
    }

    pub fn undeny(&mut self, prefix: Prefix) -> Result<bool, KernelError> {
        let removed = self.maps.deny.remove(&key(&prefix)).is_ok();
        if removed {
            self.set_counts(0, -1)?;
        }
        Ok(removed)
    }

    pub fn allow(&mut self, prefix: Prefix) -> Result<(), KernelError> {
        let k = key(&prefix);
        let existed = self
            .maps
            .allow
            .get(&k, 0)
            .is_ok_and(|e| e.prefix_len == prefix.len as u32);
        let entry = AllowEntry {
            prefix_len: prefix.len as u32,
        };
        self.maps.allow.insert(&k, entry, 0).map_err(|e| {
            full_or(
                e,
                "the allowlist",
                rampart_common::limits::MAX_ALLOW_ENTRIES,
                "ALLOW",
            )
        })?;
        if !existed {
            self.set_counts(1, 0)?;
        }
        Ok(())
    }

    pub fn unallow(&mut self, prefix: Prefix) -> Result<bool, KernelError> {
        let removed = self.maps.allow.remove(&key(&prefix)).is_ok();
        if removed {
            self.set_counts(-1, 0)?;
        }
        Ok(removed)
    }

    pub fn load_rules(&mut self, tables: &XdpTables) -> Result<RulesReport, KernelError> {
        self.maps.load_rules(tables)
    }
}

impl FilterTables for Dataplane {
    fn deny(&mut self, prefix: Prefix, ttl: Option<Duration>) -> Result<(), TablesError> {
        Ok(Dataplane::deny(self, prefix, ttl)?)
    }

    fn undeny(&mut self, prefix: Prefix) -> Result<bool, TablesError> {
        Ok(Dataplane::undeny(self, prefix)?)
    }

    fn allow(&mut self, prefix: Prefix) -> Result<(), TablesError> {
        Ok(Dataplane::allow(self, prefix)?)
    }

    fn unallow(&mut self, prefix: Prefix) -> Result<bool, TablesError> {
        Ok(Dataplane::unallow(self, prefix)?)
    }

    fn load_rules(&mut self, tables: &XdpTables) -> Result<RulesReport, TablesError> {
        Ok(Dataplane::load_rules(self, tables)?)
    }
}

fn full_or(
    e: aya::maps::MapError,
    what: &'static str,
    max: u32,
    name: &'static str,
) -> KernelError {
    let is_full = matches!(&e, aya::maps::MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(libc::ENOSPC));
    if is_full {
        KernelError::Full { what, max }
    } else {
        KernelError::map(name)(e)
    }
}
