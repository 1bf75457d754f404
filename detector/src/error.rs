//! The detector's errors.

use rampart_rules::xdp::CompileError;

use rampart_tables::TablesError;

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    /// A [`super::DetectorConfig`] value is out of its range.
    #[error("detector config: `{field}` {why}")]
    Config {
        field: &'static str,
        why: &'static str,
    },
    /// An operator entry uses an id of the range reserved for generated rules.
    #[error("operator rule id {id:#x} is inside the range reserved for generated rules ({base:#x}..{end:#x})")]
    ReservedId { id: u32, base: u32, end: u32 },
    /// The operator's entries leave no room in the kernel table.
    #[error("{count} operator entries: the XDP table holds at most {max}")]
    TooManyOperatorEntries { count: usize, max: u32 },
    /// No generated rule (active or in the history) has this id.
    #[error("no generated rule has id {id:#x}")]
    UnknownRule { id: u32 },
    /// The rule has expired: it can be explained, not changed.
    #[error("generated rule {id:#x} has expired")]
    Expired { id: u32 },
    /// The merged entries do not compile even without generated rules.
    #[error("the operator's entries do not compile: {0}")]
    Compile(#[from] CompileError),
    #[error("loading the rule tables failed: {0}")]
    Tables(#[from] TablesError),
    #[error("writing the pcap file failed: {0}")]
    Pcap(#[from] pcap_file::PcapError),
}
