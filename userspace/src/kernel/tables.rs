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
    limits::MAX_RULE_SLOTS,
    rules::{class_bits_index, class_of_index, rule_index, RuleMeta},
    GenInfo, RuleCounter,
};
use rampart_rules::xdp::XdpTables;

use super::{maps::per_cpu, maps::Maps, KernelError};

/// What a rule-set swap did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesReport {
    /// The generation now active.
    pub generation: u32,
    pub rules: usize,
    /// Map entries written into the new generation.
    pub entries_written: usize,
}

/// A packet that read the old `active_gen` may still be using that generation for a few
/// microseconds after a flip; the next swap writes into it, so it waits this long after the last
/// flip (packets run under RCU and finish far sooner).
const GRACE: Duration = Duration::from_millis(5);
static LAST_FLIP: Mutex<Option<Instant>> = Mutex::new(None);

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

        for f in 0..field::VALUE_FIELDS {
            for (v, c) in t.value_classes[f as usize].iter().enumerate() {
                self.class_of
                    .set(class_of_index(next, f, v as u32), *c, 0)
                    .map_err(KernelError::map("CLASS_OF"))?;
                written += 1;
            }
        }
        for f in 0..field::COUNT {
            for (c, bm) in t.bitmaps[f as usize].iter().enumerate() {
                self.class_bits
                    .set(class_bits_index(next, f, c as u32), bm, 0)
                    .map_err(KernelError::map("CLASS_BITS"))?;
                written += 1;
            }
        }
        written += self.write_class_trie(next, t)?;
        for (i, m) in metas.iter().enumerate() {
            self.rule_meta
                .set(rule_index(next, i as u32), m, 0)
                .map_err(KernelError::map("RULE_META"))?;
            written += 1;
        }
        let info = GenInfo {
            rule_count: t.rule_count(),
            used_fields: t.used_fields,
        };
        self.gen_info
            .set(next, info, 0)
            .map_err(KernelError::map("GEN_INFO"))?;
        // The flip: one aligned u32 the program reads once per packet.
        cfg.active_gen = next;
        self.set_config(cfg)?;
        *LAST_FLIP.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
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

    fn write_class_trie(&mut self, generation: u32, t: &XdpTables) -> Result<usize, KernelError> {
        let stale: Vec<Key<ClassKeyData>> = self
            .class_trie
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.data().generation as u32 == generation)
            .collect();
        for k in stale {
            self.class_trie
                .remove(&k)
                .map_err(KernelError::map("CLASS_TRIE"))?;
        }
        let mut n = 0;
        for (dir, entries) in [
            (DIR_SRC, &t.prefix_classes[0]),
            (DIR_DST, &t.prefix_classes[1]),
        ] {
            for (prefix, class) in entries {
                let data = ClassKeyData {
                    generation: generation as u8,
                    direction: dir,
                    _pad: [0; 2],
                    addr: prefix.addr,
                };
                let key = Key::new(CLASS_KEY_HEADER_BITS + prefix.len as u32, data);
                self.class_trie
                    .insert(&key, class, 0)
                    .map_err(KernelError::map("CLASS_TRIE"))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
