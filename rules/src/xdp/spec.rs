//! One L3/L4 rule as the kernel table can express it: every field is either unconstrained or one
//! range (a mask/value for TCP flags, one prefix per address), plus an optional payload match.

use rampart_common::rules::{PAYLOAD_BASE_DATA, PAYLOAD_BASE_L3, PAYLOAD_BASE_L4};

use crate::Prefix;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Drop,
    Pass,
    /// Count and keep looking (`mode: log`).
    Log,
    /// Per-source limit: `packets_per_second` with bursts of `burst` packets.
    RateLimit {
        packets_per_second: u64,
        burst: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadBase {
    /// The IP header.
    L3,
    /// The TCP/UDP/ICMP header.
    L4,
    /// The first byte after the L4 header.
    Data,
}

impl PayloadBase {
    pub fn code(self) -> u8 {
        match self {
            PayloadBase::L3 => PAYLOAD_BASE_L3,
            PayloadBase::L4 => PAYLOAD_BASE_L4,
            PayloadBase::Data => PAYLOAD_BASE_DATA,
        }
    }
}

/// `packet[base + offset ..][..value.len()] & mask == value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadMatch {
    pub base: PayloadBase,
    pub offset: u16,
    pub mask: Vec<u8>,
    pub value: Vec<u8>,
}

/// Inclusive ranges over a field's kernel domain, which includes the "absent" value
/// (`rampart_common::rules::ABSENT_PORT`, `ABSENT_TCP_FLAGS`, `UNTAGGED_VLAN`).
pub type ValueRanges = Vec<(u32, u32)>;

/// One value.
pub fn one(v: u32) -> Option<ValueRanges> {
    Some(vec![(v, v)])
}

/// `lo..=hi`.
pub fn range(lo: u32, hi: u32) -> Option<ValueRanges> {
    Some(vec![(lo, hi)])
}

/// TCP flag bytes with `flags & mask == value` (absent flags never match).
pub fn flags(mask: u8, value: u8) -> Option<ValueRanges> {
    Some(
        (0u32..256)
            .filter(|v| (*v as u8) & mask == value)
            .map(|v| (v, v))
            .collect(),
    )
}

/// An L3/L4 rule table entry as the kernel can express it: every field is unconstrained (`None`)
/// or a set of values of its kernel domain; addresses are a set of prefixes; plus an optional
/// payload match. One language rule may compile to several entries with the same id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub id: u32,
    pub action: Action,
    pub proto: Option<ValueRanges>,
    pub src: Option<Vec<Prefix>>,
    pub dst: Option<Vec<Prefix>>,
    pub sport: Option<ValueRanges>,
    pub dport: Option<ValueRanges>,
    pub tcp_flags: Option<ValueRanges>,
    pub ttl: Option<ValueRanges>,
    pub ip_len: Option<ValueRanges>,
    /// The innermost VLAN id (4096: untagged).
    pub vlan: Option<ValueRanges>,
    pub payload: Option<PayloadMatch>,
}

impl RuleSpec {
    /// A rule that matches every IP packet.
    pub fn new(id: u32, action: Action) -> RuleSpec {
        RuleSpec {
            id,
            action,
            proto: None,
            src: None,
            dst: None,
            sport: None,
            dport: None,
            tcp_flags: None,
            ttl: None,
            ip_len: None,
            vlan: None,
            payload: None,
        }
    }
}
