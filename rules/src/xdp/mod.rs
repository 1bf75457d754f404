//! The XDP back end: the L3/L4 rule model ([`RuleSpec`]), its compiler into the kernel's
//! bit-vector tables ([`compile`]) and the host evaluator with the kernel's semantics
//! ([`evaluate`]). Rule files give [`RuleSpec`]s through [`crate::load_str`]; they can also be
//! built by hand:
//!
//! ```
//! use rampart_rules::{Prefix, xdp::{RuleSpec, Action, compile, evaluate, one}};
//! use rampart_common::parsed::{ParsedFields, PF_IP, PF_HAS_L4};
//!
//! let mut rule = RuleSpec::new(1001, Action::Drop);
//! rule.proto = one(17);
//! rule.sport = one(123);
//! rule.dst = Some(vec!["203.0.113.0/24".parse::<Prefix>().unwrap()]);
//! let tables = compile(&[rule.clone()]).unwrap();
//! assert_eq!(tables.rule_count(), 1);
//!
//! let mut p = ParsedFields { ip_version: 4, proto: 17, sport: 123, dport: 4444, ..Default::default() };
//! p.flags = PF_IP | PF_HAS_L4;
//! p.dst = "203.0.113.9/32".parse::<Prefix>().unwrap().addr;
//! let v = evaluate(&[rule], &p, &[], |_, _| true);
//! assert_eq!(v.rule_id, Some(1001));
//! ```

mod compile;
mod eval;
mod lower;
mod spec;

pub use compile::{compile, CompileError, XdpTables};
pub use eval::{evaluate, HostVerdict};
pub use lower::{lower_rule, MAX_ENTRIES_PER_RULE};
pub use spec::{flags, one, range, Action, PayloadBase, PayloadMatch, RuleSpec, ValueRanges};
