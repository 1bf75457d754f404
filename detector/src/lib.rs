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
//!
//! # Example
//!
//! Calm QUIC traffic to one address, then a DNS flood from spoofed sources: the manager
//! generates one rule for the flood and loads it through the (fake) tables.
//!
//! ```
//! use rampart_detector::{DetectorConfig, Manager, Sample};
//! use rampart_tables::FakeTables;
//!
//! /// A 64-byte Ethernet + IPv4 + UDP frame from `src` to 203.0.113.5:`dport`, sampled 1 in 10.
//! fn sample(ts_ns: u64, src: [u8; 4], dport: u16) -> Sample {
//!     let mut head = vec![0u8; 12];
//!     head.extend([0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
//!     head.extend(src.iter().chain(&[203, 0, 113, 5]));
//!     head.extend(40_000u16.to_be_bytes().iter().chain(&dport.to_be_bytes()));
//!     head.extend([0, 8, 0, 0]);
//!     let parsed = rampart_rules::packet::parse_frame(&head).0;
//!     let (wire_len, sample_every) = (64, 10);
//!     Sample { ts_ns, wire_len, sample_every, dropped: false, rule_id: None, parsed, head }
//! }
//!
//! let mut m = Manager::new(DetectorConfig::default(), Vec::new())?;
//! let (mut tables, mut x, sec) = (FakeTables::default(), 1u32, 1_000_000_000u64);
//! for t in 100..140 {
//!     // 2k pps from 64 clients; from t = 130 also 50k pps to port 53 from anywhere.
//!     let n = if t < 130 { 200 } else { 5_200 };
//!     for i in 0..n {
//!         x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
//!         let [a, b, c, d] = x.to_be_bytes();
//!         let (src, dport) = match i {
//!             0..200 => ([198, 18, 0, i as u8 % 64], 443),
//!             _ => ([1 + a % 190, b, c, d], 53),
//!         };
//!         m.ingest(&sample(t * sec + i * 100_000, src, dport));
//!     }
//!     m.poll((t + 1) * sec, &mut tables)?;
//! }
//! assert_eq!(m.rules().len(), 1);
//! let rule = m.rules()[0].expression();
//! assert!(rule.starts_with("ip.dst eq 203.0.113.5 and udp.dstport eq 53"), "{rule}");
//! assert!(tables.rules.is_some(), "the generated rule was loaded");
//! # Ok::<(), rampart_detector::DetectorError>(())
//! ```

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
