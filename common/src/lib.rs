//! The ABI shared by the Rampart XDP program (`rampart-xdp`) and userspace (`rampart`).
//!
//! Every map key, map value and config record is defined here once, `#[repr(C)]`, with explicit
//! padding fields and a compile-time size assertion. Pod types hold no `bool`, `enum` or `Option`:
//! codes are plain integers, named by the constants beside each type. Pure maths both sides use
//! (the rate limiter, address normalisation) lives here too so it is unit-tested on the host.
#![no_std]

pub mod addr;
pub mod config;
pub mod counters;
pub mod frag;
pub mod limits;
pub mod parsed;
pub mod ratelimit;
pub mod reason;
pub mod rules;
pub mod sample;

pub use addr::{Addr16, LpmKeyData};
pub use config::{Config, GenInfo};
pub use counters::{Counter, RuleCounter};
pub use reason::Reason;

/// Bumped whenever the layout or meaning of any type in this crate changes.
pub const ABI_VERSION: u32 = 4;
/// `"RAMP"`: marks a config record written by Rampart userspace.
pub const CONFIG_MAGIC: u32 = 0x5241_4d50;

/// Implements `aya::Pod` for ABI types when building for userspace.
macro_rules! user_pod {
    ($($t:ty),* $(,)?) => {
        $(
            #[cfg(feature = "user")]
            // SAFETY: the type is `#[repr(C)]`, made only of integers and integer arrays, with every
            // padding byte an explicit field (checked by the size assertion beside its definition).
            unsafe impl aya::Pod for $t {}
        )*
    };
}
pub(crate) use user_pod;
