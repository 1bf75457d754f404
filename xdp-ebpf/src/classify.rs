//! The rule table lookup: AND the class bitmaps of the fields the generation uses, then walk the
//! set bits in rule order, checking payload bytes, until a rule decides.

use aya_ebpf::{helpers::generated::bpf_xdp_load_bytes, maps::lpm_trie::Key, programs::XdpContext};
use rampart_common::{
    addr::{ClassKeyData, CLASS_KEY_HEADER_BITS, DIR_DST, DIR_SRC},
    config::field,
    frag::NO_SLOT,
    limits::{BITMAP_WORDS, MAX_PAYLOAD_MATCH, MAX_RULE_CANDIDATES, UNCONSTRAINED_CLASS},
    parsed::ParsedFields,
    rules::{
        class_bits_index, class_of_index, rule_index, ClassValues, RuleBitmap, RuleMeta,
        ACTION_DROP, ACTION_LOG, ACTION_RATE_LIMIT, PAYLOAD_BASE_L3, PAYLOAD_BASE_L4,
    },
    Addr16, Reason,
};

use crate::{
    ratelimit, stats, stats::Verdict, CLASS_BITS, CLASS_OF, CLASS_TRIE, GEN_INFO, RULE_META,
};

type Acc = [u64; BITMAP_WORDS];

// One function on purpose (~100 lines): the verifier wants one straight, bounded path through
// field ANDs and the candidate loop, and everything is `#[inline(always)]` anyway.
/// Returns the verdict and the counter slot of the deciding rule (`NO_SLOT` when none decided).
#[inline(always)]
pub fn classify(
    ctx: &XdpContext,
    generation: u32,
    p: &ParsedFields,
    acc: &mut RuleBitmap,
    bytes: u64,
) -> Result<(Verdict, u32), Reason> {
    let info = GEN_INFO.get(generation).ok_or(Reason::ErrMapLookup)?;
    let no_match = Ok((Verdict::Pass(Reason::PassNoMatch), NO_SLOT));
    if info.rule_count == 0 {
        return no_match;
    }
    let used = info.used_fields;
    let ClassValues {
        sport,
        dport,
        tcp_flags,
        vlan,
    } = ClassValues::of(p);
    let acc = &mut acc.words;
    crate::cursor::fill_u64(acc, u64::MAX);
    // Cheap array-classified fields first, the two trie lookups last; stop as soon as no rule
    // is left (most clean packets leave after a field or two).
    // Written out, not looped: a constant field keeps `class_of_index` free of bounds checks
    // (a runtime field index brings a panic path the verifier refuses).
    let g = generation;
    macro_rules! and_or_leave {
        ($field:expr, $value:expr) => {
            if !and_value(acc, g, used, $field, $value)? {
                return no_match;
            }
        };
    }
    and_or_leave!(field::PROTO, p.proto as u32);
    and_or_leave!(field::DPORT, dport);
    and_or_leave!(field::TCP_FLAGS, tcp_flags);
    and_or_leave!(field::SPORT, sport);
    and_or_leave!(field::TTL, p.ttl as u32);
    and_or_leave!(field::IP_LEN, p.ip_len as u32);
    and_or_leave!(field::VLAN, vlan);
    if !and_prefix(acc, g, used, field::SRC, DIR_SRC, &p.src)? {
        return no_match;
    }
    if !and_prefix(acc, g, used, field::DST, DIR_DST, &p.dst)? {
        return no_match;
    }

    let mut w = 0usize;
    // A rule may span several entries (one per alternative); a log rule counts once per packet.
    let mut logged_slot = NO_SLOT;
    for _ in 0..MAX_RULE_CANDIDATES {
        while w < BITMAP_WORDS && acc[w] == 0 {
            w += 1;
        }
        if w >= BITMAP_WORDS {
            return no_match;
        }
        let word = acc[w];
        acc[w] = word & (word - 1);
        let rule = w as u32 * 64 + word.trailing_zeros();
        if rule >= info.rule_count {
            return no_match;
        }
        let meta = RULE_META
            .get(rule_index(generation, rule))
            .ok_or(Reason::ErrMapLookup)?;
        if meta.payload_len != 0 && !payload_matches(ctx, p, meta) {
            continue;
        }
        let slot = meta.counter_slot;
        match meta.action {
            ACTION_LOG => {
                if slot != logged_slot {
                    logged_slot = slot;
                    stats::count_rule(slot, false, bytes);
                    stats::count(Reason::EvLogOnly, bytes);
                }
            }
            ACTION_DROP => {
                stats::count_rule(slot, true, bytes);
                return Ok((Verdict::Drop(Reason::DropRule), slot));
            }
            ACTION_RATE_LIMIT => {
                let ok = ratelimit::conforms(meta, &p.src);
                stats::count_rule(slot, !ok, bytes);
                let v = if ok {
                    Verdict::Pass(Reason::PassRateLimit)
                } else {
                    Verdict::Drop(Reason::DropRateLimit)
                };
                return Ok((v, slot));
            }
            _ => {
                stats::count_rule(slot, false, bytes);
                return Ok((Verdict::Pass(Reason::PassRule), slot));
            }
        }
    }
    stats::count(Reason::EvCandidateLimit, bytes);
    no_match
}

/// ANDs the class bitmap into `acc`; returns whether any rule is left.
#[inline(always)]
fn and_bitmap(acc: &mut Acc, generation: u32, field: u32, class: u32) -> Result<bool, Reason> {
    let bm = CLASS_BITS
        .get(class_bits_index(generation, field, class))
        .ok_or(Reason::ErrMapLookup)?;
    // All 16 words, always: a bound that varies with the rule count multiplies the paths the
    // verifier walks past its limit (kernel 6.18).
    let mut any = 0u64;
    for (a, b) in acc.iter_mut().zip(bm.words.iter()) {
        *a &= *b;
        any |= *a;
    }
    Ok(any != 0)
}

#[inline(always)]
fn and_value(
    acc: &mut Acc,
    generation: u32,
    used: u32,
    field: u32,
    value: u32,
) -> Result<bool, Reason> {
    if used & (1 << field) == 0 {
        return Ok(true);
    }
    let class = CLASS_OF
        .get(class_of_index(generation, field, value))
        .ok_or(Reason::ErrMapLookup)?;
    and_bitmap(acc, generation, field, *class as u32)
}

#[inline(always)]
fn and_prefix(
    acc: &mut Acc,
    generation: u32,
    used: u32,
    field: u32,
    direction: u8,
    addr: &Addr16,
) -> Result<bool, Reason> {
    if used & (1 << field) == 0 {
        return Ok(true);
    }
    // If every rule still in the running leaves this address unconstrained, the lookup cannot
    // remove any: skip it (an LPM lookup costs tens of ns, this check a few).
    let free = CLASS_BITS
        .get(class_bits_index(generation, field, UNCONSTRAINED_CLASS))
        .ok_or(Reason::ErrMapLookup)?;
    let mut constrained = 0u64;
    for (a, u) in acc.iter().zip(free.words.iter()) {
        constrained |= *a & !*u;
    }
    if constrained == 0 {
        return Ok(true);
    }
    let key = ClassKeyData {
        generation: generation as u8,
        direction,
        _pad: [0; 2],
        addr: *addr,
    };
    let class = CLASS_TRIE
        .get(Key::new(CLASS_KEY_HEADER_BITS + 128, key))
        .ok_or(Reason::ErrMapLookup)?;
    and_bitmap(acc, generation, field, *class)
}

/// `packet[base + offset ..][..len] & mask == value`. Userspace zeroes mask and value past `len`,
/// so all 16 bytes are compared; too few bytes in the packet is no match.
#[inline(always)]
fn payload_matches(ctx: &XdpContext, p: &ParsedFields, meta: &RuleMeta) -> bool {
    let base = match meta.payload_base {
        PAYLOAD_BASE_L3 => p.l3_offset,
        PAYLOAD_BASE_L4 => p.l4_offset,
        _ => p.payload_offset,
    };
    let len = meta.payload_len as u32;
    if len == 0 || len > MAX_PAYLOAD_MATCH as u32 {
        return len == 0;
    }
    let mut buf = [0u8; MAX_PAYLOAD_MATCH];
    let offset = base as u32 + meta.payload_offset as u32;
    // Bytes past the IP datagram (Ethernet padding, trailers) are not payload.
    if offset + len > p.l3_offset as u32 + p.ip_len as u32 {
        return false;
    }
    // SAFETY: the helper bounds-checks `offset..offset+len` against the frame and writes at most
    // `len` (<= 16) bytes into `buf`.
    let rc = unsafe { bpf_xdp_load_bytes(ctx.ctx, offset, buf.as_mut_ptr().cast(), len) };
    if rc != 0 {
        return false;
    }
    let mut differ = 0u8;
    for ((b, m), v) in buf
        .iter()
        .zip(meta.payload_mask.iter())
        .zip(meta.payload_value.iter())
    {
        differ |= (b & m) ^ v;
    }
    differ == 0
}
