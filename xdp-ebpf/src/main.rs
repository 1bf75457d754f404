//! The Rampart XDP program: entry point and map definitions only. Parsing, list checks, the rule
//! table, fragments and counters live in their own modules.
#![no_std]
#![no_main]

mod classify;
mod cursor;
mod frag;
mod lists;
mod parse;
mod ratelimit;
mod sample;
mod stats;

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use rampart_common::{
    addr::{AllowEntry, ClassKeyData, DenyEntry, LpmKeyData},
    config::{GenInfo, FLAG_DEBUG_PARSE, POLICY_DROP},
    frag::{FragKey, FragVerdict, FRAG_FIRST, FRAG_LATER, NO_SLOT},
    limits::*,
    parsed::ParsedFields,
    ratelimit::{RateKey, RateState},
    reason::REASON_SLOTS,
    rules::{RuleBitmap, RuleMeta, CLASS_BITS_PER_GEN, CLASS_OF_PER_GEN},
    Config, Counter, Reason, RuleCounter,
};

use crate::stats::Verdict;

#[map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);
#[map]
static GEN_INFO: Array<GenInfo> = Array::with_max_entries(GENERATIONS, 0);
#[map]
static REASON_COUNTERS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(REASON_SLOTS, 0);
#[map]
static RULE_COUNTERS: PerCpuArray<RuleCounter> = PerCpuArray::with_max_entries(MAX_RULE_SLOTS, 0);
#[map]
static ALLOW: LpmTrie<LpmKeyData, AllowEntry> = LpmTrie::with_max_entries(MAX_ALLOW_ENTRIES, 0);
#[map]
static DENY: LpmTrie<LpmKeyData, DenyEntry> = LpmTrie::with_max_entries(MAX_DENY_ENTRIES, 0);
#[map]
static CLASS_OF: Array<u16> = Array::with_max_entries(GENERATIONS * CLASS_OF_PER_GEN, 0);
#[map]
static CLASS_TRIE: LpmTrie<ClassKeyData, u32> =
    LpmTrie::with_max_entries(MAX_PREFIX_CLASS_ENTRIES, 0);
#[map]
static CLASS_BITS: Array<RuleBitmap> = Array::with_max_entries(GENERATIONS * CLASS_BITS_PER_GEN, 0);
#[map]
static RULE_META: Array<RuleMeta> = Array::with_max_entries(GENERATIONS * MAX_RULES, 0);
#[map]
static FRAG_VERDICTS: LruHashMap<FragKey, FragVerdict> =
    LruHashMap::with_max_entries(MAX_FRAG_ENTRIES, 0);
#[map]
static RATE_BUCKETS: LruHashMap<RateKey, RateState> =
    LruHashMap::with_max_entries(MAX_RATE_BUCKETS, 0);
/// Packet samples for the detector (`Config::sample_every`).
#[map]
static SAMPLES: RingBuf = RingBuf::with_byte_size(rampart_common::sample::SAMPLE_RING_BYTES, 0);
/// Written only with `FLAG_DEBUG_PARSE` (tests).
#[map]
static PARSE_DEBUG: PerCpuArray<ParsedFields> = PerCpuArray::with_max_entries(1, 0);
/// Per-packet working memory: the BPF stack (512 bytes) is too small for it.
#[map]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Kernel-private (never read by userspace), so it lives here rather than in `common`.
#[repr(C)]
pub struct Scratch {
    pub parsed: ParsedFields,
    pub acc: RuleBitmap,
}

#[xdp]
pub fn rampart(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    let Some(cfg) = CONFIG.get(0).filter(|c| c.is_valid()) else {
        return stats::exit(Verdict::Pass(Reason::PassNotConfigured), len);
    };
    let drop_errors = cfg.error_policy == POLICY_DROP;
    let (verdict, slot) = match SCRATCH.get_ptr_mut(0) {
        // SAFETY: per-CPU scratch; XDP runs with preemption off, so this packet is its only user.
        Some(scratch) => match try_rampart(&ctx, cfg, unsafe { &mut *scratch }, len) {
            Ok(decided) => decided,
            Err(reason) => (stats::error(reason, drop_errors, len), NO_SLOT),
        },
        None => (
            stats::error(Reason::ErrMapLookup, drop_errors, len),
            NO_SLOT,
        ),
    };
    if cfg.sample_every != 0 {
        sample::maybe(&ctx, cfg.sample_every, verdict, slot, len);
    }
    stats::exit(verdict, len)
}

/// The benchmark floor: does nothing but pass, so benches show the cost of an empty program run
/// beside Rampart's.
#[xdp]
pub fn rampart_floor(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

#[inline(always)]
fn try_rampart(
    ctx: &XdpContext,
    cfg: &Config,
    scratch: &mut Scratch,
    bytes: u64,
) -> Result<(Verdict, u32), Reason> {
    let p = &mut scratch.parsed;
    // SAFETY: ParsedFields is 72 bytes of integers, 8-aligned in the map value; all-zero is its
    // default. Word stores, because a struct assignment becomes a byte-at-a-time memset.
    cursor::fill_u64(
        unsafe { &mut *(p as *mut ParsedFields as *mut [u64; 9]) },
        0,
    );
    let parsed = parse::parse(ctx, p);
    if cfg.flags & FLAG_DEBUG_PARSE != 0 {
        if let Some(slot) = PARSE_DEBUG.get_ptr_mut(0) {
            // SAFETY: a per-CPU array slot, written only by this program on this CPU.
            unsafe { *slot = *p };
        }
    }
    parsed?;
    if p.ip_version == 0 {
        return Ok((Verdict::Pass(Reason::PassNotIp), NO_SLOT));
    }
    if cfg.allow_entries != 0 && lists::allowed(&p.src) {
        return Ok((Verdict::Pass(Reason::PassAllowlist), NO_SLOT));
    }
    if cfg.deny_entries != 0 && lists::denied(&p.src) {
        return Ok((Verdict::Drop(Reason::DropDenylist), NO_SLOT));
    }
    if p.frag == FRAG_LATER {
        return Ok(frag::later_fragment(p, cfg.frag_policy == POLICY_DROP));
    }
    // Read the generation once: the packet sees one whole rule set.
    let generation = cfg.active_gen & 1;
    let (verdict, slot) =
        classify::classify(ctx, generation, &scratch.parsed, &mut scratch.acc, bytes)?;
    if scratch.parsed.frag == FRAG_FIRST {
        frag::remember(&scratch.parsed, verdict, slot);
    }
    Ok((verdict, slot))
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach this; it exists only to satisfy no_std.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// Keeps `xdp_action` in scope for modules that return raw actions.
pub(crate) const XDP_PASS: u32 = xdp_action::XDP_PASS;
pub(crate) const XDP_DROP: u32 = xdp_action::XDP_DROP;

/// Read from the ELF by userspace before loading: it refuses an object built for another ABI.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".rodata")]
static RAMPART_ABI_VERSION: u32 = rampart_common::ABI_VERSION;
