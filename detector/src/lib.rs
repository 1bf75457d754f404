//! The detector ("dosd" loop of `DETECTOR.md`): sampled packets in, ephemeral XDP rules out.
//! It sees the kernel only through the [`rampart_tables::FilterTables`] seam, so it runs (and is
//! tested) against [`rampart_tables::FakeTables`]; the loop that drains the XDP ring and the
//! `rampart detect` command live in the `rampart` crate.
//!
//! - [`Sample`]s (1-in-N packets from the XDP ring buffer, dropped ones included and tagged with
//!   the deciding rule) become [`Features`].
//! - Victims (destination addresses, and destination prefixes for carpet bombing) keep an EWMA
//!   of packets and bits per second and a slow baseline; an anomaly is a rate above a static
//!   floor and above `k` × baseline.
//! - An attacked victim gets a bounded lattice of fingerprint templates, each with a Space-Saving
//!   top-k sketch per tick, and a HyperLogLog per field so high-cardinality fields (spoofed
//!   sources, random ports) are never part of a fingerprint.
//! - Selection takes the most specific fingerprint covering at least `min_coverage` of the
//!   unmitigated attack while matching at most `max_collateral` of the victim's calm traffic,
//!   and repeats for multi-vector attacks.
//! - The [`Manager`] turns fingerprints into [`rampart_rules::xdp::RuleSpec`] entries after the
//!   operator's, walks them up the action ladder, expires them when sampled traffic stops
//!   matching, explains them ([`GeneratedRule`]), and loads the table through
//!   [`FilterTables`](rampart_tables::FilterTables) only when the generated set changes.
//!
//! Memory is bounded whatever the traffic: every table has a fixed capacity with eviction
//! ([`Footprint`] reports use against bounds). Nothing reads a clock: time is the samples'
//! `ts_ns` and the `now_ns` the caller passes, so a replayed stream gives the same rules.

mod attribution;
mod config;
mod detector;
mod error;
mod features;
mod fingerprint;
mod hash;
mod lattice;
mod manager;
mod reservoir;
mod sample;
pub mod sampling;
mod select;
mod sketch;
mod victim;

#[cfg(test)]
mod tests;

pub use attribution::{Creation, Expiry, ExpiryReason, GeneratedRule, MatchedFrame};
pub use config::{DetectorConfig, Rung};
pub use detector::{DetectorStats, Footprint, VictimStatus};
pub use error::DetectorError;
pub use features::{Features, PAYLOAD_KEEP};
pub use fingerprint::{Fingerprint, PayloadBytes};
pub use manager::{Manager, ManagerStats};
pub use sample::Sample;
pub use select::ReferenceKind;
pub use sketch::{Counter, Hll, SpaceSaving};
