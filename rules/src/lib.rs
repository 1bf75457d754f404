//! Rampart's rules: address prefixes, the L3/L4 rule model the XDP back end compiles, and a host
//! evaluator that gives the same verdict as the kernel program (the oracle for kernel tests).
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

pub mod file;
pub mod lang;
pub mod packet;
pub mod prefix;
pub mod xdp;

pub use file::{
    check_ids_beside, load_file, load_str, L7Attrs, L7RateLimit, Mode, RateLimitExprs, Rule,
    RuleAction, RuleError, RuleErrorKind, RuleSet, ScoreClass, Target, DEFAULT_RULE_IDS,
};
pub use prefix::{Prefix, PrefixError};

/// The text of the default detection rules (`rules/waf/default.yaml`).
pub const DEFAULT_WAF_RULES: &str = include_str!("../waf/default.yaml");

/// The default detection rules for the L7 engine: SQLi, XSS, traversal, command injection and
/// protocol anomalies as anomaly scores, and a block at `waf.score ge 5`.
pub fn default_waf() -> RuleSet {
    // The file is checked by the tests of this crate; it cannot fail at run time.
    load_str(
        DEFAULT_WAF_RULES,
        "default-waf.yaml",
        std::path::Path::new("."),
    )
    .unwrap_or_else(|e| panic!("the built-in default rules do not load: {e}"))
}
