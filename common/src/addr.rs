//! Addresses as 16 bytes: IPv6 as is, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), so one trie and
//! one key type serve both families.

/// An IPv4 or IPv6 address in IPv6 form, network byte order.
pub type Addr16 = [u8; 16];

/// Prefix bits that an IPv4-mapped address spends before the IPv4 bits.
pub const V4_MAPPED_PREFIX_BITS: u32 = 96;

/// Maps an IPv4 address (network byte order) into its IPv4-mapped IPv6 form.
#[inline(always)]
pub const fn v4_mapped(v4: [u8; 4]) -> Addr16 {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4[0], v4[1], v4[2], v4[3],
    ]
}

/// Returns the IPv4 address if `a` is IPv4-mapped.
pub const fn as_v4(a: &Addr16) -> Option<[u8; 4]> {
    let mut i = 0;
    while i < 10 {
        if a[i] != 0 {
            return None;
        }
        i += 1;
    }
    if a[10] == 0xff && a[11] == 0xff {
        Some([a[12], a[13], a[14], a[15]])
    } else {
        None
    }
}

/// Data of an LPM-trie key for the allow and deny tries (the trie prefix length comes first in the
/// kernel key; it is `aya`'s `Key` wrapper on each side).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LpmKeyData {
    pub addr: Addr16,
}
const _: () = assert!(core::mem::size_of::<LpmKeyData>() == 16);

/// Data of an LPM-trie key for the rule-class tries: the generation and the direction are matched
/// in full before the address bits, so one trie holds both generations and both directions.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClassKeyData {
    pub generation: u8,
    /// [`DIR_SRC`] or [`DIR_DST`].
    pub direction: u8,
    pub _pad: [u8; 2],
    pub addr: Addr16,
}
const _: () = assert!(core::mem::size_of::<ClassKeyData>() == 20);

pub const DIR_SRC: u8 = 0;
pub const DIR_DST: u8 = 1;
/// Bits of [`ClassKeyData`] before the address.
pub const CLASS_KEY_HEADER_BITS: u32 = 32;

/// Value of the `DENY` trie. The prefix length is stored so userspace can tell an exact entry from
/// a covering one (a trie lookup returns the longest match).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DenyEntry {
    /// `bpf_ktime_get_ns` time after which the entry no longer counts; 0 for never.
    pub expires_ns: u64,
    pub prefix_len: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<DenyEntry>() == 16);

/// Value of the `ALLOW` trie.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllowEntry {
    pub prefix_len: u32,
}
const _: () = assert!(core::mem::size_of::<AllowEntry>() == 4);

crate::user_pod!(LpmKeyData, ClassKeyData, DenyEntry, AllowEntry);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_mapping_round_trips() {
        let a = v4_mapped([192, 0, 2, 7]);
        assert_eq!(as_v4(&a), Some([192, 0, 2, 7]));
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        assert_eq!(as_v4(&v6), None);
    }
}
