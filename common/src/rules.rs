//! The rule table: a bit-vector classifier (one bit per rule) with an A/B generation in every key.
//!
//! For each classified field, a packet's value maps to an equivalence class (`CLASS_OF` array for
//! small integer fields, the `CLASS_TRIE` LPM trie for addresses), and each class has the bitmap of
//! the rules whose constraint on that field it satisfies (`CLASS_BITS`). The AND of the bitmaps of
//! the used fields is the set of matching rules; the lowest set bit is the first rule in file order.
//! Payload bytes, which cannot be classified, are checked per candidate rule.

use crate::config::field;
use crate::limits::{BITMAP_WORDS, MAX_CLASSES, MAX_PAYLOAD_MATCH, MAX_RULES};

/// Rule actions (`RuleMeta::action`).
pub const ACTION_DROP: u32 = 1;
pub const ACTION_PASS: u32 = 2;
/// Count the match, then keep looking (a rule in `mode: log`).
pub const ACTION_LOG: u32 = 3;
/// Per-source GCRA rate limit: pass within the rate, drop above it.
pub const ACTION_RATE_LIMIT: u32 = 4;

/// Where `RuleMeta::payload_offset` counts from.
pub const PAYLOAD_BASE_L3: u8 = 0;
pub const PAYLOAD_BASE_L4: u8 = 1;
/// The first byte after the L4 header.
pub const PAYLOAD_BASE_DATA: u8 = 2;

/// Value for "this field is absent from the packet": a port of a non-TCP/UDP packet, the TCP
/// flags of a non-TCP packet, the VLAN id of an untagged frame.
pub const ABSENT_PORT: u32 = 65_536;
pub const ABSENT_TCP_FLAGS: u32 = 256;
pub const UNTAGGED_VLAN: u32 = 4_096;

/// Number of values of each value-classified field (`field::PROTO` .. `field::IP_LEN`).
pub const VALUE_FIELD_SIZES: [u32; field::VALUE_FIELDS as usize] = [
    256,                  // PROTO
    256,                  // TTL
    ABSENT_TCP_FLAGS + 1, // TCP_FLAGS
    UNTAGGED_VLAN + 1,    // VLAN
    ABSENT_PORT + 1,      // SPORT
    ABSENT_PORT + 1,      // DPORT
    65_536,               // IP_LEN
];

const fn value_offsets() -> [u32; field::VALUE_FIELDS as usize + 1] {
    let mut out = [0u32; field::VALUE_FIELDS as usize + 1];
    let mut i = 0;
    while i < field::VALUE_FIELDS as usize {
        out[i + 1] = out[i] + VALUE_FIELD_SIZES[i];
        i += 1;
    }
    out
}
const VALUE_OFFSETS: [u32; field::VALUE_FIELDS as usize + 1] = value_offsets();

/// Entries of `CLASS_OF` per generation.
pub const CLASS_OF_PER_GEN: u32 = VALUE_OFFSETS[field::VALUE_FIELDS as usize];
/// Entries of `CLASS_BITS` per generation.
pub const CLASS_BITS_PER_GEN: u32 = field::COUNT * MAX_CLASSES;

/// Index into `CLASS_OF` for a value-classified field. `value` must be below the field's size.
#[inline(always)]
pub const fn class_of_index(generation: u32, field: u32, value: u32) -> u32 {
    generation * CLASS_OF_PER_GEN + VALUE_OFFSETS[field as usize] + value
}

/// Index into `CLASS_BITS`.
#[inline(always)]
pub const fn class_bits_index(generation: u32, field: u32, class: u32) -> u32 {
    generation * CLASS_BITS_PER_GEN + field * MAX_CLASSES + class
}

/// Index into `RULE_META`.
#[inline(always)]
pub const fn rule_index(generation: u32, rule: u32) -> u32 {
    generation * MAX_RULES + rule
}

/// The values a packet is classified on for the fields whose "absent" value is part of the
/// domain. The kernel and the host evaluator both take them from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassValues {
    pub sport: u32,
    pub dport: u32,
    pub tcp_flags: u32,
    /// The innermost VLAN id, or `UNTAGGED_VLAN`.
    pub vlan: u32,
}

impl ClassValues {
    #[inline(always)]
    pub fn of(p: &crate::parsed::ParsedFields) -> ClassValues {
        let has_l4 = p.flags & crate::parsed::PF_HAS_L4 != 0;
        let has_ports = has_l4 && (p.proto == 6 || p.proto == 17);
        let (sport, dport) = if has_ports {
            (p.sport as u32, p.dport as u32)
        } else {
            (ABSENT_PORT, ABSENT_PORT)
        };
        let tcp_flags = if has_l4 && p.proto == 6 {
            p.tcp_flags as u32
        } else {
            ABSENT_TCP_FLAGS
        };
        let vlan = match p.vlan_count {
            0 => UNTAGGED_VLAN,
            1 => p.vlan_ids[0] as u32,
            _ => p.vlan_ids[1] as u32,
        };
        ClassValues {
            sport,
            dport,
            tcp_flags,
            vlan,
        }
    }
}

/// One bit per rule of a generation.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleBitmap {
    pub words: [u64; BITMAP_WORDS],
}
const _: () = assert!(core::mem::size_of::<RuleBitmap>() == 128);

impl RuleBitmap {
    pub const EMPTY: RuleBitmap = RuleBitmap {
        words: [0; BITMAP_WORDS],
    };

    pub fn set(&mut self, rule: usize) {
        self.words[rule / 64] |= 1u64 << (rule % 64);
    }

    pub fn get(&self, rule: usize) -> bool {
        self.words[rule / 64] & (1u64 << (rule % 64)) != 0
    }
}

impl Default for RuleBitmap {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// What a rule does once its classified fields match (`RULE_META`, index [`rule_index`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleMeta {
    /// The rule's `id` from the rule file (reported, never used as an index).
    pub rule_id: u32,
    /// Index into `RULE_COUNTERS`; stable for a rule id across reloads.
    pub counter_slot: u32,
    /// `ACTION_*`.
    pub action: u32,
    pub payload_offset: u16,
    /// `PAYLOAD_BASE_*`.
    pub payload_base: u8,
    /// Bytes compared, 0 for none (at most [`MAX_PAYLOAD_MATCH`]).
    pub payload_len: u8,
    /// Rate limit as GCRA: nanoseconds per packet and the burst tolerance.
    pub rate_interval_ns: u64,
    pub rate_tolerance_ns: u64,
    /// The packet matches when `bytes & mask == value` over `payload_len` bytes.
    pub payload_mask: [u8; MAX_PAYLOAD_MATCH],
    pub payload_value: [u8; MAX_PAYLOAD_MATCH],
}
const _: () = assert!(core::mem::size_of::<RuleMeta>() == 64);

impl RuleMeta {
    /// Host-side payload check, the same as the kernel's (`bytes` holds what the packet has at
    /// the rule's offset; too few bytes is no match).
    pub fn payload_matches(&self, bytes: &[u8]) -> bool {
        let n = self.payload_len as usize;
        if n == 0 {
            return true;
        }
        if bytes.len() < n {
            return false;
        }
        (0..n).all(|i| bytes[i] & self.payload_mask[i] == self.payload_value[i])
    }
}

crate::user_pod!(RuleBitmap, RuleMeta);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::GENERATIONS;

    #[test]
    fn class_of_indices_do_not_overlap() {
        let last = class_of_index(0, field::IP_LEN, 65_535);
        assert_eq!(last + 1, CLASS_OF_PER_GEN);
        assert_eq!(class_of_index(1, field::PROTO, 0), CLASS_OF_PER_GEN);
        assert_eq!(
            class_of_index(0, field::SPORT, ABSENT_PORT) + 1,
            class_of_index(0, field::DPORT, 0)
        );
        assert!(
            class_bits_index(GENERATIONS - 1, field::DST, MAX_CLASSES - 1)
                < GENERATIONS * CLASS_BITS_PER_GEN
        );
    }

    #[test]
    fn payload_check_masks_and_needs_enough_bytes() {
        let mut m = RuleMeta {
            payload_len: 2,
            ..Default::default()
        };
        m.payload_mask[..2].copy_from_slice(&[0xff, 0xf0]);
        m.payload_value[..2].copy_from_slice(&[0x17, 0x20]);
        assert!(m.payload_matches(&[0x17, 0x2f, 0x00]));
        assert!(!m.payload_matches(&[0x17, 0x30]));
        assert!(!m.payload_matches(&[0x17]));
        let mut bm = RuleBitmap::EMPTY;
        bm.set(70);
        assert!(bm.get(70) && !bm.get(69));
    }
}
