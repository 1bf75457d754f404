//! The detector's input: one packet sampled by the XDP program.

/// One sampled packet.
#[derive(Clone, Debug)]
pub struct Sample {
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC) when sampled.
    pub ts_ns: u64,
    /// Frame length on the wire.
    pub wire_len: u32,
    /// This sample stands for `sample_every` packets (1-in-N sampling).
    pub sample_every: u32,
    /// The XDP verdict was drop.
    pub dropped: bool,
    /// Counter slot of the rule that decided (`u32::MAX`: none). `rule_id` is filled by the seam.
    pub rule_id: Option<u32>,
    /// The kernel-equivalent parse of `head` (`rampart_rules::packet::parse_frame(&head).0`).
    pub parsed: rampart_common::parsed::ParsedFields,
    /// The first bytes of the frame (at most 128).
    pub head: Vec<u8>,
}
