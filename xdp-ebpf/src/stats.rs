//! Per-CPU counters and the one exit hook: every packet leaves through [`exit`] or [`error`], which
//! count it under exactly one verdict reason.

use rampart_common::{reason::REASON_SLOTS, Reason};

use crate::{REASON_COUNTERS, RULE_COUNTERS, XDP_DROP, XDP_PASS};

/// A verdict and the reason it is counted under.
#[derive(Clone, Copy)]
pub enum Verdict {
    Pass(Reason),
    Drop(Reason),
}

#[inline(always)]
pub fn count(reason: Reason, bytes: u64) {
    let idx = reason as u32;
    if idx >= REASON_SLOTS {
        return;
    }
    if let Some(c) = REASON_COUNTERS.get_ptr_mut(idx) {
        // SAFETY: per-CPU slot; XDP runs with preemption off, so no other writer on this CPU.
        unsafe { (*c).add(bytes) };
    }
}

/// Counts a rule match (and its drop when `dropped`).
#[inline(always)]
pub fn count_rule(slot: u32, dropped: bool, bytes: u64) {
    if let Some(c) = RULE_COUNTERS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, as in `count`.
        unsafe {
            (*c).matched.add(bytes);
            if dropped {
                (*c).dropped.add(bytes);
            }
        }
    }
}

#[inline(always)]
pub fn exit(verdict: Verdict, bytes: u64) -> u32 {
    match verdict {
        Verdict::Pass(r) => {
            count(r, bytes);
            XDP_PASS
        }
        Verdict::Drop(r) => {
            count(r, bytes);
            XDP_DROP
        }
    }
}

/// Counts the error reason and returns the error policy's verdict (counted at the exit).
#[inline(always)]
pub fn error(reason: Reason, drop: bool, bytes: u64) -> Verdict {
    count(reason, bytes);
    if drop {
        Verdict::Drop(Reason::DropErrorPolicy)
    } else {
        Verdict::Pass(Reason::PassErrorPolicy)
    }
}
