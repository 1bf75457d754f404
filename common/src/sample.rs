//! Packet samples the XDP program sends to userspace through the `SAMPLES` ring buffer: 1 in
//! `Config::sample_every` packets per CPU, dropped ones included, tagged with their verdict.

/// Frame bytes copied into a sample.
pub const SAMPLE_BYTES: usize = 128;
/// Size of the `SAMPLES` ring buffer (a power of two, page aligned).
pub const SAMPLE_RING_BYTES: u32 = 8 << 20;

/// `SampleRecord::verdict`.
pub const SAMPLE_PASS: u8 = 0;
pub const SAMPLE_DROP: u8 = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleRecord {
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    pub ifindex: u32,
    /// Frame length.
    pub wire_len: u32,
    /// Counter slot of the rule that decided, or `frag::NO_SLOT`.
    pub rule_slot: u32,
    /// The sampling rate in force: this sample stands for that many packets.
    pub sample_every: u32,
    /// `reason::Reason` the packet was counted under.
    pub reason: u8,
    /// `SAMPLE_PASS` or `SAMPLE_DROP`.
    pub verdict: u8,
    /// Bytes of `data` that hold the frame's start.
    pub cap_len: u16,
    pub _pad: u32,
    pub data: [u8; SAMPLE_BYTES],
}
const _: () = assert!(core::mem::size_of::<SampleRecord>() == 32 + SAMPLE_BYTES);

crate::user_pod!(SampleRecord);
