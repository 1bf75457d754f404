//! The per-transaction cache of transformed request values, and its pooled storage.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Transformed request values, one row per (variable, transformation list) with a slot per
/// entry: a rule walking a collection reads its slots in order, not scattered over one big
/// table.
pub(super) type TransformCache = RefCell<Rows>;

#[derive(Default)]
pub(super) struct Rows {
    /// (variable << 16 | transformation list) → index in `rows`.
    pub(super) index: HashMap<u32, usize, BuildHasherDefault<PackedKeyHasher>>,
    /// `rows[..used]` are in use; the rest are emptied rows kept for their allocations.
    pub(super) rows: Vec<Vec<Slot>>,
    pub(super) used: usize,
    /// Every transformed value, one after the other (a row's values end up next to each
    /// other, as the first rule to ask transforms them in entry order).
    pub(super) bytes: Vec<u8>,
    /// (variable << 16 | prefilter group) → offset in `pf_bits` of that variable's bit sets:
    /// first the union over its entries, then one per entry, `words` each.
    pub(super) pf_index: HashMap<u32, u32, BuildHasherDefault<PackedKeyHasher>>,
    pub(super) pf_bits: Vec<u64>,
}

/// A value in `Rows::bytes`, or one of the markers below (8 bytes, so a row stays compact).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) off: u32,
    pub(super) len: u32,
}

/// Not transformed yet.
pub(super) const UNKNOWN: Slot = Slot {
    off: 0,
    len: u32::MAX,
};
/// The transformations changed nothing: the value is the raw one.
pub(super) const SAME: Slot = Slot {
    off: 0,
    len: u32::MAX - 1,
};

impl Rows {
    pub(super) fn get(&self, var: u16, chain: u32, idx: usize) -> Option<Slot> {
        let row = *self.index.get(&row_key(var, chain))?;
        self.rows[row].get(idx).copied().filter(|s| *s != UNKNOWN)
    }

    pub(super) fn value(&self, s: Slot) -> &[u8] {
        let off = s.off as usize;
        &self.bytes[off..off + s.len as usize]
    }

    /// Stores `v`; `None` when the table would outgrow its 32-bit offsets (then not cached).
    pub(super) fn push(&mut self, v: &[u8]) -> Option<Slot> {
        let off = u32::try_from(self.bytes.len()).ok()?;
        let len = u32::try_from(v.len()).ok().filter(|l| *l < u32::MAX - 1)?;
        off.checked_add(len)?;
        self.bytes.extend_from_slice(v);
        Some(Slot { off, len })
    }

    pub(super) fn insert(&mut self, var: u16, chain: u32, idx: usize, len: usize, slot: Slot) {
        let next = self.used;
        let row = *self.index.entry(row_key(var, chain)).or_insert(next);
        if row == next {
            self.used += 1;
            if next == self.rows.len() {
                self.rows.push(Vec::new());
            }
            self.rows[next].resize(len, UNKNOWN);
        }
        let r = &mut self.rows[row];
        if r.len() <= idx {
            r.resize(idx + 1, UNKNOWN);
        }
        r[idx] = slot;
    }

    /// Empties every row, keeping the allocations (and dropping those a big request grew).
    pub(super) fn reset(&mut self) {
        self.index.clear();
        for r in &mut self.rows[..self.used] {
            r.clear();
        }
        self.used = 0;
        self.bytes.clear();
        self.pf_index.clear();
        self.pf_bits.clear();
        if self.rows.iter().map(Vec::capacity).sum::<usize>() > MAX_POOLED_SLOTS
            || self.bytes.capacity() > MAX_POOLED_BYTES
            || self.pf_bits.capacity() > MAX_POOLED_SLOTS
        {
            *self = Rows::default();
        }
    }
}

/// The most transformed bytes a thread keeps room for between transactions.
pub(super) const MAX_POOLED_BYTES: usize = 16 << 20;

/// The most slots a thread keeps between transactions (8 bytes each).
pub(super) const MAX_POOLED_SLOTS: usize = 1 << 18;

thread_local! {
    /// Each thread keeps its last (emptied) transform cache, so a transaction reuses the rows
    /// the previous one allocated.
    pub(super) static CACHE_POOL: std::cell::Cell<Rows> = std::cell::Cell::new(Rows::default());
}

/// The `pf_index` keys of a variable's words row and joined row (prefilter groups stop
/// below them).
pub(super) const WORDS_ROW: u32 = u16::MAX as u32;
pub(super) const JOINED_ROW: u32 = u16::MAX as u32 - 1;

pub(super) fn row_key(var: u16, chain: u32) -> u32 {
    (u32::from(var) << 16) | (chain & 0xffff)
}

/// The cache's keys are already unique small integers: one wide multiply spreads them,
/// instead of SipHash's dozens of rounds per lookup.
#[derive(Default)]
pub(super) struct PackedKeyHasher(u64);

impl Hasher for PackedKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        // The 128-bit product folded: every bit of the key reaches the low bits (the table
        // index) and the top bits (the tag). A plain multiply leaves the low bits to the low
        // key bits (the entry index) only, so keys of one entry collide on one probe chain.
        let m = u128::from(self.0 ^ n) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}
