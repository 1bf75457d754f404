//! Deterministic 64-bit hashing and a small PRNG. The detector needs the same answers for the same
//! sample stream (tests replay streams), so nothing here reads the clock or the OS entropy pool;
//! the seed comes from [`super::DetectorConfig::seed`].

use std::hash::{BuildHasher, Hasher};

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit, which the
/// HyperLogLog needs (it reads the leading bits).
#[inline]
pub(crate) fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Combines a running hash with one more word.
#[inline]
pub(crate) fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(23) ^ fmix64(word.wrapping_add(K))).wrapping_mul(K)
}

/// A fast [`Hasher`] for the detector's own maps (keys are destination prefixes, which only our
/// own address space supplies). Seeded per map, finalised with [`fmix64`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mix64 {
    h: u64,
}

impl Hasher for Mix64 {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.h = mix(self.h, u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.h = mix(self.h, u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.h = mix(self.h, i as u64);
    }

    fn write_u16(&mut self, i: u16) {
        self.h = mix(self.h, i as u64);
    }

    fn write_u32(&mut self, i: u32) {
        self.h = mix(self.h, i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        self.h = mix(self.h, i);
    }

    fn write_usize(&mut self, i: usize) {
        self.h = mix(self.h, i as u64);
    }

    fn finish(&self) -> u64 {
        fmix64(self.h)
    }
}

/// Builds [`Mix64`] hashers from a seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MixState {
    seed: u64,
}

impl MixState {
    pub(crate) fn new(seed: u64) -> MixState {
        MixState { seed }
    }
}

impl BuildHasher for MixState {
    type Hasher = Mix64;

    fn build_hasher(&self) -> Mix64 {
        Mix64 { h: self.seed }
    }
}

/// SplitMix64: small, fast, and good enough for reservoir sampling and sketch sub-sampling.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(K);
        fmix64(self.state)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`), by the multiply-shift method.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_deterministic_and_spread() {
        let s = MixState::new(7);
        let h = |v: u32| s.hash_one(v);
        assert_eq!(h(1), h(1));
        assert_ne!(h(1), h(2));
        // Leading bits of consecutive keys are balanced (what the HyperLogLog reads).
        let ones = (0..10_000u32).filter(|v| h(*v) >> 63 == 1).count();
        assert!((4_500..5_500).contains(&ones), "{ones}");
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut r = Rng::new(1);
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            buckets[r.below(10) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|b| (9_000..11_000).contains(b)),
            "{buckets:?}"
        );
        assert!((0..1000).map(|_| r.unit()).all(|u| (0.0..1.0).contains(&u)));
    }
}
