//! The table seam: what the detector and the L7 engine need from a data plane, without the data
//! plane. The kernel side (`rampart::kernel::Dataplane`, the only aya user) implements
//! [`FilterTables`]; [`FakeTables`] implements it in memory, so code built on the seam is unit
//! tested without root and embedders of the L7 engine never link the kernel loader.
//!
//! ```
//! use std::time::Duration;
//! use rampart_tables::{FakeTables, FilterTables};
//!
//! let mut tables = FakeTables::default();
//! let offender: rampart_rules::Prefix = "192.0.2.7/32".parse().unwrap();
//! tables.deny(offender, Some(Duration::from_secs(600))).unwrap();
//! assert!(tables.denied.contains_key(&offender));
//! assert!(tables.undeny(offender).unwrap());
//! ```

mod error;
mod fake;

use std::time::Duration;

use rampart_rules::{xdp::XdpTables, Prefix};

pub use error::{TablesError, TablesErrorKind};
pub use fake::FakeTables;

/// The operations the rest of Rampart needs from the data plane.
pub trait FilterTables {
    /// Drops every packet from `prefix`, until `ttl` has passed if given.
    ///
    /// # Errors
    /// The table is full or the data plane cannot be written ([`TablesError::kind`]).
    fn deny(&mut self, prefix: Prefix, ttl: Option<Duration>) -> Result<(), TablesError>;
    /// Returns whether the prefix was present.
    ///
    /// # Errors
    /// The data plane cannot be written.
    fn undeny(&mut self, prefix: Prefix) -> Result<bool, TablesError>;
    /// Passes every packet from `prefix` before any other check.
    ///
    /// # Errors
    /// The table is full or the data plane cannot be written.
    fn allow(&mut self, prefix: Prefix) -> Result<(), TablesError>;
    /// Returns whether the prefix was present.
    ///
    /// # Errors
    /// The data plane cannot be written.
    fn unallow(&mut self, prefix: Prefix) -> Result<bool, TablesError>;
    /// Replaces the whole rule set atomically: packets see the old set or the new one.
    ///
    /// # Errors
    /// The tables do not fit or cannot be written; the old set stays active.
    fn load_rules(&mut self, tables: &XdpTables) -> Result<RulesReport, TablesError>;
}

/// What a rule-set swap did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesReport {
    /// The generation now active.
    pub generation: u32,
    pub rules: usize,
    /// Map entries written into the new generation.
    pub entries_written: usize,
}
