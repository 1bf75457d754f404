//! Fragments: the first fragment's verdict is remembered per datagram; later fragments get it.

use rampart_common::{
    frag::{FragKey, FragVerdict, NO_SLOT, VERDICT_DROP, VERDICT_PASS},
    parsed::ParsedFields,
    Reason,
};

use crate::{stats, stats::Verdict, FRAG_VERDICTS};

#[inline(always)]
fn key(p: &ParsedFields) -> FragKey {
    FragKey {
        src: p.src,
        dst: p.dst,
        id: p.ip_id,
        proto: p.proto,
        _pad: [0; 3],
    }
}

/// Verdict of a non-first fragment: its first fragment's (with the deciding rule's slot), or the
/// policy when none was seen.
#[inline(always)]
pub fn later_fragment(p: &ParsedFields, drop_unknown: bool) -> (Verdict, u32) {
    match FRAG_VERDICTS.get_ptr(key(p)) {
        Some(v) => {
            // SAFETY: the pointer came from a successful lookup; the value is plain data.
            let v = unsafe { *v };
            let drop = v.verdict == VERDICT_DROP;
            if v.rule_slot != NO_SLOT {
                stats::count_rule(v.rule_slot, drop, p.ip_len as u64);
            }
            let verdict = if drop {
                Verdict::Drop(Reason::DropFragCached)
            } else {
                Verdict::Pass(Reason::PassFragCached)
            };
            (verdict, v.rule_slot)
        }
        None if drop_unknown => (Verdict::Drop(Reason::DropFragPolicy), NO_SLOT),
        None => (Verdict::Pass(Reason::PassFragPolicy), NO_SLOT),
    }
}

#[inline(always)]
pub fn remember(p: &ParsedFields, verdict: Verdict, slot: u32) {
    let verdict = match verdict {
        Verdict::Drop(_) => VERDICT_DROP,
        Verdict::Pass(_) => VERDICT_PASS,
    };
    // A full LRU evicts the oldest datagram (its later fragments then follow the policy); an
    // outright failure is counted.
    if FRAG_VERDICTS
        .insert(
            key(p),
            FragVerdict {
                verdict,
                rule_slot: slot,
            },
            0,
        )
        .is_err()
    {
        stats::count(Reason::EvMapUpdateFailed, 0);
    }
}
