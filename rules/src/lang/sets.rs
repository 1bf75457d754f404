//! Value sets for `in {...}` and `in $list`: integer ranges, byte strings, IP prefixes.

use std::collections::{HashMap, HashSet};

use rampart_common::Addr16;

use crate::Prefix;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSet {
    /// Sorted, merged, inclusive ranges.
    Int(Vec<(i64, i64)>),
    Bytes(HashSet<Vec<u8>>),
    Ip(IpSet),
}

impl ValueSet {
    pub fn ints(mut ranges: Vec<(i64, i64)>) -> ValueSet {
        ranges.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        ValueSet::Int(out)
    }

    pub fn len(&self) -> usize {
        match self {
            ValueSet::Int(r) => r.len(),
            ValueSet::Bytes(b) => b.len(),
            ValueSet::Ip(p) => p.prefixes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn int_contains(ranges: &[(i64, i64)], v: i64) -> bool {
    let i = ranges.partition_point(|(lo, _)| *lo <= v);
    i > 0 && ranges[i - 1].1 >= v
}

/// Prefixes with a lookup by length: a membership test costs one hash probe per length present.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpSet {
    pub prefixes: Vec<Prefix>,
    by_len: HashMap<u8, HashSet<Addr16>>,
    lens: Vec<u8>,
}

impl IpSet {
    pub fn new(mut prefixes: Vec<Prefix>) -> IpSet {
        prefixes.sort_unstable();
        prefixes.dedup();
        let mut by_len: HashMap<u8, HashSet<Addr16>> = HashMap::new();
        for p in &prefixes {
            by_len.entry(p.len).or_default().insert(p.addr);
        }
        let mut lens: Vec<u8> = by_len.keys().copied().collect();
        lens.sort_unstable();
        IpSet {
            prefixes,
            by_len,
            lens,
        }
    }

    pub fn contains(&self, addr: &Addr16) -> bool {
        self.lens.iter().any(|len| {
            let masked = Prefix::new(*addr, *len).addr;
            self.by_len.get(len).is_some_and(|s| s.contains(&masked))
        })
    }
}
