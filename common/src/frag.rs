//! First-fragment verdicts remembered for the fragments that follow (LRU map `FRAG_VERDICTS`).
//! Ports are never read from a non-first fragment: it gets its datagram's remembered verdict.

use crate::Addr16;

/// `ParsedFields::frag` values.
pub const FRAG_NONE: u8 = 0;
/// Offset 0 with more fragments to come.
pub const FRAG_FIRST: u8 = 1;
/// Offset above 0.
pub const FRAG_LATER: u8 = 2;

/// Identifies one fragmented datagram.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: Addr16,
    pub dst: Addr16,
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    pub proto: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<FragKey>() == 40);

pub const VERDICT_PASS: u32 = 0;
pub const VERDICT_DROP: u32 = 1;
/// `FragVerdict::rule_slot` when no rule decided.
pub const NO_SLOT: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragVerdict {
    /// `VERDICT_PASS` or `VERDICT_DROP`.
    pub verdict: u32,
    /// Counter slot of the rule that decided, or [`NO_SLOT`].
    pub rule_slot: u32,
}
const _: () = assert!(core::mem::size_of::<FragVerdict>() == 8);

crate::user_pod!(FragKey, FragVerdict);
