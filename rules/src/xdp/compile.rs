//! Compiles rules into the kernel's bit-vector classifier tables (see `rampart_common::rules`).
//!
//! For each integer field, a sweep over the rules' ranges splits the value space into intervals;
//! the set of rules whose range covers an interval is its bitmap, and equal bitmaps share a class.
//! For each address field, every distinct rule prefix (plus `::/0`) becomes a trie entry whose
//! bitmap holds the unconstrained rules and the rules whose prefix contains it: the trie's longest
//! match then yields exactly the rules whose prefix contains the packet's address.

use std::collections::HashMap;

use rampart_common::{
    config::field,
    limits::{MAX_CLASSES, MAX_PAYLOAD_MATCH, MAX_RULES, UNCONSTRAINED_CLASS},
    ratelimit::gcra_params,
    rules::{
        RuleBitmap, RuleMeta, ACTION_DROP, ACTION_LOG, ACTION_PASS, ACTION_RATE_LIMIT,
        VALUE_FIELD_SIZES,
    },
};

use super::spec::{Action, RuleSpec};
use crate::Prefix;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error("{count} rules: the XDP table holds at most {max}")]
    TooManyRules { count: usize, max: u32 },
    #[error("rule {id}: {field} range {lo}..{hi} is empty or outside 0..{max}")]
    BadRange {
        id: u32,
        field: &'static str,
        lo: u32,
        hi: u32,
        max: u32,
    },
    #[error("rule {id}: {field} is constrained to an empty set, so the entry can never match")]
    EmptySet { id: u32, field: &'static str },
    #[error("rule {id}: payload match of {len} bytes; at most {max} can be compared")]
    PayloadTooLong { id: u32, len: usize, max: usize },
    #[error("rule {id}: payload mask has {mask} bytes but value has {value}")]
    PayloadShape { id: u32, mask: usize, value: usize },
    #[error("rule {id}: payload value has bits outside its mask, so it can never match")]
    PayloadUnmatchable { id: u32 },
    #[error("the rules split field {field} into more than {max} classes")]
    TooManyClasses { field: &'static str, max: u32 },
}

/// Kernel table contents for one generation (counter slots are assigned by the loader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpTables {
    /// One per rule, in rule order (bit `i` of every bitmap is `metas[i]`).
    pub metas: Vec<RuleMeta>,
    /// Bit `field::X` set when a rule constrains field X.
    pub used_fields: u32,
    /// For each value field (`field::PROTO..IP_LEN`): the class of every value; empty if unused.
    pub value_classes: Vec<Vec<u16>>,
    /// For `SRC` and `DST`: trie entries and their class; empty if unused.
    pub prefix_classes: [Vec<(Prefix, u32)>; 2],
    /// For every field: the bitmap of each class; empty if unused.
    pub bitmaps: Vec<Vec<RuleBitmap>>,
    /// For `SRC` and `DST`: the rules that do not constrain the field (written at class
    /// `UNCONSTRAINED_CLASS`; lets the program skip a trie lookup that cannot matter).
    pub unconstrained: [RuleBitmap; 2],
}

impl XdpTables {
    pub fn rule_count(&self) -> u32 {
        self.metas.len() as u32
    }

    /// Table entries the rules take (the figure `rules check` reports).
    pub fn entry_count(&self) -> usize {
        self.metas.len()
            + self.value_classes.iter().map(Vec::len).sum::<usize>()
            + self.prefix_classes.iter().map(Vec::len).sum::<usize>()
            + self.bitmaps.iter().map(Vec::len).sum::<usize>()
    }
}

const FIELD_NAMES: [&str; field::COUNT as usize] = [
    "ip.proto",
    "ip.ttl",
    "tcp.flags",
    "vlan.id",
    "src port",
    "dst port",
    "ip.len",
    "ip.src",
    "ip.dst",
];

pub fn compile(rules: &[RuleSpec]) -> Result<XdpTables, CompileError> {
    if rules.len() > MAX_RULES as usize {
        return Err(CompileError::TooManyRules {
            count: rules.len(),
            max: MAX_RULES,
        });
    }
    let metas = rules.iter().map(meta).collect::<Result<Vec<_>, _>>()?;
    let mut t = XdpTables {
        metas,
        used_fields: 0,
        value_classes: vec![Vec::new(); field::VALUE_FIELDS as usize],
        prefix_classes: [Vec::new(), Vec::new()],
        bitmaps: vec![Vec::new(); field::COUNT as usize],
        unconstrained: [RuleBitmap::EMPTY; 2],
    };
    for f in 0..field::VALUE_FIELDS {
        let ranges = rules
            .iter()
            .map(|r| value_ranges(r, f))
            .collect::<Result<Vec<_>, _>>()?;
        if ranges.iter().all(Option::is_none) {
            continue;
        }
        t.used_fields |= 1 << f;
        let size = VALUE_FIELD_SIZES[f as usize];
        let (classes, bitmaps) = sweep(&ranges, size, f)?;
        t.value_classes[f as usize] = classes;
        t.bitmaps[f as usize] = bitmaps;
    }
    for (i, f) in [field::SRC, field::DST].into_iter().enumerate() {
        let prefixes: Vec<Option<&Vec<Prefix>>> = rules
            .iter()
            .map(|r| {
                if f == field::SRC {
                    r.src.as_ref()
                } else {
                    r.dst.as_ref()
                }
            })
            .collect();
        if prefixes.iter().all(Option::is_none) {
            continue;
        }
        t.used_fields |= 1 << f;
        let (entries, bitmaps) = prefix_classes(&prefixes, f)?;
        t.prefix_classes[i] = entries;
        t.bitmaps[f as usize] = bitmaps;
        for (rule, p) in prefixes.iter().enumerate() {
            if p.is_none() {
                t.unconstrained[i].set(rule);
            }
        }
    }
    Ok(t)
}

fn meta(r: &RuleSpec) -> Result<RuleMeta, CompileError> {
    let mut m = RuleMeta {
        rule_id: r.id,
        ..Default::default()
    };
    m.action = match r.action {
        Action::Drop => ACTION_DROP,
        Action::Pass => ACTION_PASS,
        Action::Log => ACTION_LOG,
        Action::RateLimit {
            packets_per_second,
            burst,
        } => {
            let (iv, tol) = gcra_params(packets_per_second, burst);
            m.rate_interval_ns = iv;
            m.rate_tolerance_ns = tol;
            ACTION_RATE_LIMIT
        }
    };
    if let Some(pm) = &r.payload {
        let len = pm.value.len();
        if len > MAX_PAYLOAD_MATCH {
            return Err(CompileError::PayloadTooLong {
                id: r.id,
                len,
                max: MAX_PAYLOAD_MATCH,
            });
        }
        if pm.mask.len() != len {
            return Err(CompileError::PayloadShape {
                id: r.id,
                mask: pm.mask.len(),
                value: len,
            });
        }
        if pm.value.iter().zip(&pm.mask).any(|(v, m)| v & !m != 0) {
            return Err(CompileError::PayloadUnmatchable { id: r.id });
        }
        m.payload_base = pm.base.code();
        m.payload_offset = pm.offset;
        m.payload_len = len as u8;
        m.payload_mask[..len].copy_from_slice(&pm.mask);
        m.payload_value[..len].copy_from_slice(&pm.value);
    }
    Ok(m)
}

/// The value set a rule accepts on a value field, or `None` when unconstrained; checked against
/// the field's kernel domain.
fn value_ranges(r: &RuleSpec, f: u32) -> Result<Option<Vec<(u32, u32)>>, CompileError> {
    let set = match f {
        field::PROTO => &r.proto,
        field::TTL => &r.ttl,
        field::TCP_FLAGS => &r.tcp_flags,
        field::VLAN => &r.vlan,
        field::SPORT => &r.sport,
        field::DPORT => &r.dport,
        field::IP_LEN => &r.ip_len,
        _ => return Ok(None),
    };
    let Some(set) = set else { return Ok(None) };
    let max = VALUE_FIELD_SIZES[f as usize] - 1;
    let name = FIELD_NAMES[f as usize];
    if set.is_empty() {
        return Err(CompileError::EmptySet {
            id: r.id,
            field: name,
        });
    }
    for &(lo, hi) in set {
        if lo > hi || hi > max {
            return Err(CompileError::BadRange {
                id: r.id,
                field: name,
                lo,
                hi,
                max,
            });
        }
    }
    Ok(Some(set.clone()))
}

struct Interner {
    classes: HashMap<RuleBitmap, u16>,
    bitmaps: Vec<RuleBitmap>,
    field: u32,
}

impl Interner {
    fn new(field: u32) -> Self {
        Interner {
            classes: HashMap::new(),
            bitmaps: Vec::new(),
            field,
        }
    }

    fn class(&mut self, bm: RuleBitmap) -> Result<u16, CompileError> {
        if let Some(c) = self.classes.get(&bm) {
            return Ok(*c);
        }
        if self.bitmaps.len() >= UNCONSTRAINED_CLASS as usize {
            let field = FIELD_NAMES[self.field as usize];
            return Err(CompileError::TooManyClasses {
                field,
                max: MAX_CLASSES,
            });
        }
        let c = self.bitmaps.len() as u16;
        self.bitmaps.push(bm);
        self.classes.insert(bm, c);
        Ok(c)
    }
}

/// Splits `0..size` into intervals of equal rule sets. Unconstrained rules cover everything,
/// including the "absent" value at the end of the port, flag and VLAN domains.
fn sweep(
    ranges: &[Option<Vec<(u32, u32)>>],
    size: u32,
    f: u32,
) -> Result<(Vec<u16>, Vec<RuleBitmap>), CompileError> {
    // events[v] = rules that start or stop covering at value v.
    let mut events: Vec<(u32, usize, bool)> = Vec::new();
    let mut always = RuleBitmap::EMPTY;
    for (rule, r) in ranges.iter().enumerate() {
        match r {
            None => always.set(rule),
            Some(list) => {
                for &(lo, hi) in list {
                    events.push((lo, rule, true));
                    events.push((hi + 1, rule, false));
                }
            }
        }
    }
    events.sort_unstable_by_key(|e| (e.0, e.2));
    let mut interner = Interner::new(f);
    let mut classes = vec![0u16; size as usize];
    let mut current = always;
    let mut depth = vec![0u32; ranges.len()];
    let mut ev = 0;
    let mut v = 0u32;
    while v < size {
        while ev < events.len() && events[ev].0 == v {
            let (_, rule, start) = events[ev];
            if start {
                depth[rule] += 1;
                current.set(rule);
            } else {
                depth[rule] -= 1;
                if depth[rule] == 0 {
                    current.words[rule / 64] &= !(1u64 << (rule % 64));
                }
            }
            ev += 1;
        }
        let next = events.get(ev).map_or(size, |e| e.0.min(size));
        let class = interner.class(current)?;
        classes[v as usize..next as usize].fill(class);
        v = next;
    }
    Ok((classes, interner.bitmaps))
}

/// An address field's trie entries (prefix, class) and its class bitmaps.
type PrefixClasses = (Vec<(Prefix, u32)>, Vec<RuleBitmap>);

/// Trie entries and class bitmaps for one address field. Every distinct prefix (and `::/0`)
/// becomes an entry whose bitmap holds the unconstrained rules and every rule with a prefix that
/// contains it. Sorted by (address, length), an ancestor comes before its descendants, so one walk
/// with a stack of enclosing prefixes builds every bitmap in O(n log n).
fn prefix_classes(
    prefixes: &[Option<&Vec<Prefix>>],
    f: u32,
) -> Result<PrefixClasses, CompileError> {
    let mut unconstrained = RuleBitmap::EMPTY;
    // (prefix, rule) pairs, 20 bytes each: a million-prefix list stays small to sort.
    let mut pairs: Vec<(Prefix, u32)> = vec![(Prefix::ANY, u32::MAX)];
    for (rule, set) in prefixes.iter().enumerate() {
        match set {
            None => unconstrained.set(rule),
            Some(list) => pairs.extend(list.iter().map(|p| (*p, rule as u32))),
        }
    }
    pairs.sort_unstable_by_key(|(p, r)| (p.addr, p.len, *r));
    let mut interner = Interner::new(f);
    let mut entries = Vec::new();
    let mut stack: Vec<(Prefix, RuleBitmap)> = Vec::new();
    let mut i = 0;
    while i < pairs.len() {
        let q = pairs[i].0;
        while stack.last().is_some_and(|(p, _)| !p.contains(&q)) {
            stack.pop();
        }
        let mut bm = stack.last().map_or(unconstrained, |(_, b)| *b);
        while i < pairs.len() && pairs[i].0 == q {
            if pairs[i].1 != u32::MAX {
                bm.set(pairs[i].1 as usize);
            }
            i += 1;
        }
        entries.push((q, interner.class(bm)? as u32));
        stack.push((q, bm));
    }
    Ok((entries, interner.bitmaps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdp::spec::{flags, one, range, PayloadBase, PayloadMatch};
    use rampart_common::rules::{ABSENT_PORT, ABSENT_TCP_FLAGS};

    fn rule(id: u32) -> RuleSpec {
        RuleSpec::new(id, Action::Drop)
    }

    fn bits_of(t: &XdpTables, f: u32, class: usize, n: usize) -> Vec<usize> {
        let bm = t.bitmaps[f as usize][class];
        (0..n).filter(|r| bm.get(*r)).collect()
    }

    #[test]
    fn port_ranges_split_into_classes() {
        let mut a = rule(1);
        a.dport = range(80, 90);
        let mut b = rule(2);
        b.dport = range(85, 100);
        let t = compile(&[a, b, rule(3)]).unwrap();
        assert_eq!(t.used_fields, 1 << field::DPORT);
        let classes = &t.value_classes[field::DPORT as usize];
        let bits = |v: usize| bits_of(&t, field::DPORT, classes[v] as usize, 3);
        assert_eq!(bits(79), vec![2]);
        assert_eq!(bits(80), vec![0, 2]);
        assert_eq!(bits(85), vec![0, 1, 2]);
        assert_eq!(bits(91), vec![1, 2]);
        assert_eq!(bits(101), vec![2]);
        assert_eq!(bits(ABSENT_PORT as usize), vec![2]);
        // {2}, {0,2}, {0,1,2}, {1,2}: {2} before and after share a class.
        assert_eq!(t.bitmaps[field::DPORT as usize].len(), 4);
    }

    #[test]
    fn prefixes_nest() {
        let mut a = rule(1);
        a.src = Some(vec!["10.0.0.0/8".parse().unwrap()]);
        let mut b = rule(2);
        b.src = Some(vec![
            "10.1.0.0/16".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ]);
        let t = compile(&[a, b, rule(3)]).unwrap();
        let bm = |p: &str| {
            let p: Prefix = p.parse().unwrap();
            let (_, c) = t.prefix_classes[0].iter().find(|(q, _)| *q == p).unwrap();
            bits_of(&t, field::SRC, *c as usize, 3)
        };
        assert_eq!(bm("10.1.0.0/16"), vec![0, 1, 2]);
        assert_eq!(bm("10.0.0.0/8"), vec![0, 2]);
        assert_eq!(bm("2001:db8::/32"), vec![1, 2]);
        assert_eq!(bm("::/0"), vec![2]);
    }

    #[test]
    fn sibling_prefixes_do_not_inherit_each_other() {
        let mut a = rule(1);
        a.dst = Some(vec![
            "10.0.0.0/16".parse().unwrap(),
            "10.0.1.0/24".parse().unwrap(),
        ]);
        let mut b = rule(2);
        b.dst = Some(vec!["10.0.0.0/24".parse().unwrap()]);
        let t = compile(&[a, b]).unwrap();
        let bm = |p: &str| {
            let p: Prefix = p.parse().unwrap();
            let (_, c) = t.prefix_classes[1].iter().find(|(q, _)| *q == p).unwrap();
            bits_of(&t, field::DST, *c as usize, 2)
        };
        assert_eq!(bm("10.0.0.0/24"), vec![0, 1]);
        assert_eq!(bm("10.0.1.0/24"), vec![0]);
    }

    #[test]
    fn tcp_flags_mask_value() {
        let mut a = rule(1);
        a.tcp_flags = flags(0x12, 0x02); // SYN without ACK
        let t = compile(&[a]).unwrap();
        let classes = &t.value_classes[field::TCP_FLAGS as usize];
        let hit = |v: usize| t.bitmaps[field::TCP_FLAGS as usize][classes[v] as usize].get(0);
        assert!(
            hit(0x02)
                && hit(0x02 | 0x08)
                && !hit(0x12)
                && !hit(0)
                && !hit(ABSENT_TCP_FLAGS as usize)
        );
    }

    #[test]
    fn refuses_bad_rules() {
        let mut a = rule(1);
        a.sport = range(10, 5);
        assert!(matches!(
            compile(&[a]),
            Err(CompileError::BadRange { id: 1, .. })
        ));
        let mut v = rule(3);
        v.vlan = one(5000);
        assert!(matches!(
            compile(&[v]),
            Err(CompileError::BadRange {
                id: 3,
                hi: 5000,
                max: 4096,
                ..
            })
        ));
        let mut e = rule(4);
        e.proto = Some(vec![]);
        assert!(matches!(
            compile(&[e]),
            Err(CompileError::EmptySet { id: 4, .. })
        ));
        let many: Vec<_> = (0..=MAX_RULES).map(rule).collect();
        assert!(matches!(
            compile(&many),
            Err(CompileError::TooManyRules { .. })
        ));
        let mut p = rule(2);
        p.payload = Some(PayloadMatch {
            base: PayloadBase::Data,
            offset: 0,
            mask: vec![0x0f],
            value: vec![0xf0],
        });
        assert_eq!(
            compile(&[p]),
            Err(CompileError::PayloadUnmatchable { id: 2 })
        );
    }

    #[test]
    fn repeated_ids_are_entries_of_one_rule() {
        let mut a = rule(9);
        a.dport = one(80);
        let mut b = rule(9);
        b.dport = one(443);
        let t = compile(&[a, b]).unwrap();
        assert_eq!(t.metas.iter().filter(|m| m.rule_id == 9).count(), 2);
    }
}
