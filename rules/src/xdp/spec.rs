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

/// An L3/L4 rule. `None` leaves a field unconstrained. A port or TCP-flag constraint matches only
/// packets that carry that header (TCP/UDP, TCP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub id: u32,
    pub action: Action,
    pub proto: Option<u8>,
    pub src: Option<Prefix>,
    pub dst: Option<Prefix>,
    /// Inclusive ranges.
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
    /// `(mask, value)`: matches when `flags & mask == value`.
    pub tcp_flags: Option<(u8, u8)>,
    pub ttl: Option<(u8, u8)>,
    pub ip_len: Option<(u16, u16)>,
    /// The innermost VLAN id; the rule then matches tagged frames only.
    pub vlan: Option<u16>,
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
