//! The XDP back end: the L3/L4 rule model ([`RuleSpec`]), its compiler into the kernel's
//! bit-vector tables ([`compile`]) and the host evaluator with the kernel's semantics
//! ([`evaluate`]).

mod compile;
mod eval;
mod lower;
mod spec;

pub use compile::{compile, CompileError, XdpTables};
pub use eval::{evaluate, HostVerdict};
pub use lower::{lower_rule, MAX_ENTRIES_PER_RULE};
pub use spec::{flags, one, range, Action, PayloadBase, PayloadMatch, RuleSpec, ValueRanges};
