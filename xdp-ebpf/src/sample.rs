//! 1-in-N packet sampling to the `SAMPLES` ring buffer for the detector. Dropped packets are
//! sampled too (tagged with verdict and rule), so the detector sees whether its rules still match.
//! A full ring is counted and skipped: the packet path never waits.

use aya_ebpf::{
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns, generated::bpf_xdp_load_bytes},
    programs::XdpContext,
};
use rampart_common::{
    sample::{SampleRecord, SAMPLE_BYTES, SAMPLE_DROP, SAMPLE_PASS},
    Reason,
};

use crate::{stats, stats::Verdict, SAMPLES};

#[inline(always)]
pub fn maybe(ctx: &XdpContext, every: u32, verdict: Verdict, slot: u32, len: u64) {
    // SAFETY: the helper has no preconditions.
    if unsafe { bpf_get_prandom_u32() } % every != 0 {
        return;
    }
    let Some(mut entry) = SAMPLES.reserve::<SampleRecord>(0) else {
        stats::count(Reason::EvSampleDropped, len);
        return;
    };
    let (reason, drop) = match verdict {
        Verdict::Pass(r) => (r, false),
        Verdict::Drop(r) => (r, true),
    };
    let rec = entry.as_mut_ptr();
    // `((n - 1) & 127) + 1` gives the verifier a proven 1..=128 (kernel 6.18, LLVM 22 fold a plain
    // zero check into a packet-pointer compare the verifier cannot use). Frames are >= 14 bytes.
    let cap = if len > SAMPLE_BYTES as u64 {
        SAMPLE_BYTES as u32
    } else {
        len as u32
    };
    let cap = (cap.wrapping_sub(1) & (SAMPLE_BYTES as u32 - 1)) + 1;
    // SAFETY: `rec` points to a reserved, exclusively owned ring-buffer record; the load helper
    // writes at most `cap` (1..=128) bytes into its 128-byte `data`.
    unsafe {
        (*rec).ts_ns = bpf_ktime_get_ns();
        (*rec).ifindex = (*ctx.ctx).ingress_ifindex;
        (*rec).wire_len = len as u32;
        (*rec).rule_slot = slot;
        (*rec).sample_every = every;
        (*rec).reason = reason as u8;
        (*rec).verdict = if drop { SAMPLE_DROP } else { SAMPLE_PASS };
        (*rec).cap_len = cap as u16;
        (*rec)._pad = 0;
        if bpf_xdp_load_bytes(ctx.ctx, 0, (*rec).data.as_mut_ptr().cast(), cap) != 0 {
            (*rec).cap_len = 0;
        }
    }
    entry.submit(0);
    stats::count(Reason::EvSampled, len);
}
