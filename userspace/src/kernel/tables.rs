//! Writes compiled rule tables into the inactive generation, then flips `Config::active_gen`, so a
//! packet sees the old rule set or the new one, never a mix. Each rule id keeps its counter slot
//! across reloads; a new rule gets a free slot with zeroed counters.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aya::maps::lpm_trie::Key;
use rampart_common::{
    addr::{ClassKeyData, CLASS_KEY_HEADER_BITS, DIR_DST, DIR_SRC},
    config::field,
    limits::{MAX_RULE_SLOTS, UNCONSTRAINED_CLASS},
    rules::{class_bits_index, class_of_index, rule_index, RuleMeta},
    GenInfo, RuleCounter,
};
use rampart_rules::{xdp::XdpTables, Prefix};
use rampart_tables::RulesReport;

use super::{maps::per_cpu, maps::Maps, KernelError};

/// A packet that read the old `active_gen` may still be using that generation for a few
/// microseconds after a flip; the next swap writes into it, so it waits this long after the last
/// flip (packets run under RCU and finish far sooner).
const GRACE: Duration = Duration::from_millis(5);
static LAST_FLIP: Mutex<Option<Instant>> = Mutex::new(None);

/// A stamp different from `old`, from the clock and the process id (no RNG dependency needed).
fn new_stamp(old: u32) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let s = nanos ^ std::process::id().rotate_left(16) ^ 0x9e37_79b9;
    if s == old || s == 0 {
        s.wrapping_add(1).max(1)
    } else {
        s
    }
}

impl Maps {
    /// The rules of a generation: (rule id, counter slot), in rule order.
    pub fn rules_of(&self, generation: u32) -> Result<Vec<RuleMeta>, KernelError> {
        let info = self
            .gen_info
            .get(&generation, 0)
            .map_err(KernelError::map("GEN_INFO"))?;
        (0..info.rule_count)
            .map(|i| {
                self.rule_meta
                    .get(&rule_index(generation, i), 0)
                    .map_err(KernelError::map("RULE_META"))
            })
            .collect()
    }

    pub fn load_rules(&mut self, t: &XdpTables) -> Result<RulesReport, KernelError> {
        if let Some(last) = *LAST_FLIP.lock().unwrap_or_else(|e| e.into_inner()) {
            if let Some(rest) = GRACE.checked_sub(last.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        let mut cfg = self.config()?;
        let active = cfg.active_gen & 1;
        let next = active ^ 1;
        let metas = self.assign_slots(active, &t.metas)?;
        let mut written = 0;

        // What this process last wrote into `next`: only differences need writing.
        let found = self
            .gen_info
            .get(&next, 0)
            .map_err(KernelError::map("GEN_INFO"))?
            .stamp;
        let old = match self.shadow[next as usize].take() {
            Some((stamp, tables)) if stamp == found => Some(tables),
            _ => None,
        };
        let stamp = new_stamp(found);
        for f in 0..field::VALUE_FIELDS {
            let before = old.as_ref().map(|o| &o.value_classes[f as usize]);
            for (v, c) in t.value_classes[f as usize].iter().enumerate() {
                if before.and_then(|b| b.get(v)) == Some(c) {
                    continue;
                }
                self.class_of
                    .set(class_of_index(next, f, v as u32), *c, 0)
                    .map_err(KernelError::map("CLASS_OF"))?;
                written += 1;
            }
        }
        for f in 0..field::COUNT {
            let before = old.as_ref().map(|o| &o.bitmaps[f as usize]);
            for (c, bm) in t.bitmaps[f as usize].iter().enumerate() {
                if before.and_then(|b| b.get(c)) == Some(bm) {
                    continue;
                }
                self.class_bits
                    .set(class_bits_index(next, f, c as u32), bm, 0)
                    .map_err(KernelError::map("CLASS_BITS"))?;
                written += 1;
            }
        }
        for (i, f) in [field::SRC, field::DST].into_iter().enumerate() {
            if old.as_ref().map(|o| &o.unconstrained[i]) != Some(&t.unconstrained[i]) {
                self.class_bits
                    .set(
                        class_bits_index(next, f, UNCONSTRAINED_CLASS),
                        t.unconstrained[i],
                        0,
                    )
                    .map_err(KernelError::map("CLASS_BITS"))?;
                written += 1;
            }
        }
        written += self.write_class_trie(next, t, old.as_ref())?;
        for (i, m) in metas.iter().enumerate() {
            self.rule_meta
                .set(rule_index(next, i as u32), m, 0)
                .map_err(KernelError::map("RULE_META"))?;
            written += 1;
        }
        let info = GenInfo {
            rule_count: t.rule_count(),
            used_fields: t.used_fields,
            stamp,
            _pad: 0,
        };
        self.gen_info
            .set(next, info, 0)
            .map_err(KernelError::map("GEN_INFO"))?;
        // The flip: one aligned u32 the program reads once per packet.
        cfg.active_gen = next;
        self.set_config(cfg)?;
        *LAST_FLIP.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.shadow[next as usize] = Some((stamp, t.clone()));
        Ok(RulesReport {
            generation: next,
            rules: metas.len(),
            entries_written: written,
        })
    }

    fn assign_slots(
        &mut self,
        active: u32,
        metas: &[RuleMeta],
    ) -> Result<Vec<RuleMeta>, KernelError> {
        let current: HashMap<u32, u32> = self
            .rules_of(active)?
            .iter()
            .map(|m| (m.rule_id, m.counter_slot))
            .collect();
        let mut taken: HashSet<u32> = current.values().copied().collect();
        let mut free = (0..MAX_RULE_SLOTS)
            .filter(|s| !taken.contains(s))
            .collect::<Vec<_>>()
            .into_iter();
        let mut out = metas.to_vec();
        // Entries of one rule (same id) share its slot.
        let mut assigned: HashMap<u32, u32> = HashMap::new();
        for m in &mut out {
            m.counter_slot = match assigned.get(&m.rule_id).or_else(|| current.get(&m.rule_id)) {
                Some(slot) => *slot,
                None => {
                    let slot = free.next().ok_or(KernelError::NoCounterSlot {
                        rule_id: m.rule_id,
                        max: MAX_RULE_SLOTS,
                    })?;
                    self.rule_counters
                        .set(slot, per_cpu(RuleCounter::default())?, 0)
                        .map_err(KernelError::map("RULE_COUNTERS"))?;
                    slot
                }
            };
            taken.insert(m.counter_slot);
            assigned.insert(m.rule_id, m.counter_slot);
        }
        Ok(out)
    }

    /// Brings the class trie entries of `generation` to `t`'s: with a record of what was there
    /// (`old`), only changed entries are written; without one, the generation's entries are
    /// listed from the kernel, removed and written anew.
    fn write_class_trie(
        &mut self,
        generation: u32,
        t: &XdpTables,
        old: Option<&XdpTables>,
    ) -> Result<usize, KernelError> {
        let key = |dir: u8, p: &Prefix| {
            let data = ClassKeyData {
                generation: generation as u8,
                direction: dir,
                _pad: [0; 2],
                addr: p.addr,
            };
            Key::new(CLASS_KEY_HEADER_BITS + p.len as u32, data)
        };
        let dirs = [DIR_SRC, DIR_DST];
        let mut want: HashMap<(u8, Prefix), u32> = HashMap::new();
        for (i, entries) in t.prefix_classes.iter().enumerate() {
            for (p, c) in entries {
                want.insert((dirs[i], *p), *c);
            }
        }
        let have: HashMap<(u8, Prefix), u32> = match old {
            Some(o) => o
                .prefix_classes
                .iter()
                .enumerate()
                .flat_map(|(i, e)| e.iter().map(move |(p, c)| ((dirs[i], *p), *c)))
                .collect(),
            None => {
                let mut stale = HashMap::new();
                for k in self.class_trie.keys().filter_map(Result::ok) {
                    let d = k.data();
                    if d.generation as u32 == generation {
                        // Unknown class: forces a rewrite if the prefix is still wanted.
                        stale.insert(
                            (
                                d.direction,
                                Prefix::new(d.addr, (k.prefix_len() - CLASS_KEY_HEADER_BITS) as u8),
                            ),
                            u32::MAX,
                        );
                    }
                }
                stale
            }
        };
        let mut n = 0;
        for (dir_prefix, _) in have.iter().filter(|(k, _)| !want.contains_key(k)) {
            self.class_trie
                .remove(&key(dir_prefix.0, &dir_prefix.1))
                .map_err(KernelError::map("CLASS_TRIE"))?;
            n += 1;
        }
        for ((dir, p), c) in &want {
            if have.get(&(*dir, *p)) != Some(c) {
                self.class_trie
                    .insert(&key(*dir, p), c, 0)
                    .map_err(KernelError::map("CLASS_TRIE"))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
