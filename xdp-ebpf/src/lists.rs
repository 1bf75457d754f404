//! Allowlist and denylist: LPM tries over IPv4-mapped/IPv6 source addresses.

use aya_ebpf::{helpers::bpf_ktime_get_ns, maps::lpm_trie::Key};
use rampart_common::{Addr16, LpmKeyData};

use crate::{ALLOW, DENY};

#[inline(always)]
pub fn allowed(src: &Addr16) -> bool {
    ALLOW
        .get(Key::new(128, LpmKeyData { addr: *src }))
        .is_some()
}

/// A deny entry counts until its expiry (0: never expires). Expired entries are removed by
/// userspace; until then they are ignored here.
#[inline(always)]
pub fn denied(src: &Addr16) -> bool {
    match DENY.get(Key::new(128, LpmKeyData { addr: *src })) {
        // SAFETY: reading the helper's clock has no preconditions.
        Some(e) => e.expires_ns == 0 || unsafe { bpf_ktime_get_ns() } < e.expires_ns,
        None => false,
    }
}
