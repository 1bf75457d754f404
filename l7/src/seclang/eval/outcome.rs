//! What evaluating a request gives: the rules that matched, the interruption, `TX`.

use std::collections::HashMap;

use super::super::actions::Disruptive;
use super::super::operator::parse_int;

/// `TX` by name: foldhash, not SipHash (a transaction reads and writes it hundreds of
/// times), seeded per process since rules put request data (header names) in its keys.
pub type TxMap = HashMap<String, Vec<u8>, foldhash::fast::RandomState>;

/// A rule that matched (whole chain), as the audit log reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedRule {
    pub id: u32,
    pub phase: u8,
    pub msg: String,
    pub data: String,
    /// The last variable that matched, e.g. `ARGS:id`.
    pub var_name: String,
    pub severity: Option<String>,
    /// False for `nolog` rules (flow-control and setup rules CRS hides from its log).
    pub logged: bool,
}

/// A disruptive action that stopped the request (engine `On` only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interruption {
    pub rule_id: u32,
    pub status: u16,
    pub action: Disruptive,
}

/// What evaluating a request gave.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub matched: Vec<MatchedRule>,
    pub interruption: Option<Interruption>,
    /// `TX` at the end (lower-cased names), e.g. `blocking_inbound_anomaly_score`.
    pub tx: TxMap,
    /// `setvar` on a persistent collection (`ip.`, `session.` …), which this engine skips.
    pub skipped_setvars: u32,
}

impl Outcome {
    pub fn tx_int(&self, name: &str) -> i64 {
        self.tx.get(name).map(|v| parse_int(v)).unwrap_or(0)
    }

    pub fn logged_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.matched.iter().filter(|m| m.logged).map(|m| m.id)
    }
}
