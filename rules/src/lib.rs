//! Rampart's rules: one language for the XDP filter and the L7 engine. A rule file (YAML, see
//! `rules/docs/reference.md`) is loaded as a whole into a [`RuleSet`]: every expression parsed
//! and type-checked, each rule placed where it runs — packet rules compiled into the kernel's
//! tables ([`xdp`]), HTTP rules kept as typed trees for the L7 engine — with the host evaluators
//! giving the same verdicts as the kernel program and the engine.
//!
//! Parse → compile → evaluate, end to end:
//!
//! ```
//! use std::borrow::Cow;
//! use std::path::Path;
//!
//! use rampart_common::parsed::{ParsedFields, PF_HAS_L4, PF_IP};
//! use rampart_rules::{eval_bool, load_str, xdp, Field, FieldSource, Prefix, Target, Value};
//!
//! let text = r#"
//! version: 1
//! rules:
//!   - id: 1001
//!     ref: ntp-amplification
//!     expression: udp.srcport eq 123 and ip.dst in {203.0.113.0/24}
//!     action: drop
//!   - id: 1002
//!     ref: admin-closed
//!     expression: starts_with(lower(http.request.uri.path), "/admin")
//!     action: block
//! "#;
//! // Parse and check the whole file, and compile its packet rules into the XDP tables.
//! let set = load_str(text, "site.yaml", Path::new(".")).expect("the file loads");
//! assert_eq!(set.rules[0].target, Target::Xdp { entries: 1 });
//! assert_eq!(set.rules[1].target, Target::L7);
//! assert_eq!(set.xdp.rule_count(), 1);
//!
//! // A packet, as the kernel program parses it, through the host evaluator of the XDP tables.
//! let mut p = ParsedFields { ip_version: 4, proto: 17, sport: 123, dport: 4444, ..Default::default() };
//! p.flags = PF_IP | PF_HAS_L4;
//! p.dst = "203.0.113.9/32".parse::<Prefix>().unwrap().addr;
//! let verdict = xdp::evaluate(&set.xdp_entries, &p, &[], |_, _| true);
//! assert_eq!(verdict.rule_id, Some(1001));
//!
//! // A request, as any source of field values, through the L7 rule.
//! struct Request<'a> {
//!     path: &'a str,
//! }
//! impl FieldSource for Request<'_> {
//!     fn field(&self, f: Field) -> Option<Cow<'_, Value>> {
//!         match f {
//!             Field::HttpPath => Some(Cow::Owned(Value::Bytes(self.path.as_bytes().to_vec()))),
//!             _ => None,
//!         }
//!     }
//! }
//! let admin = set.l7_rules().next().unwrap();
//! assert!(eval_bool(&admin.expr, &Request { path: "/Admin/users" }));
//! assert!(!eval_bool(&admin.expr, &Request { path: "/shop" }));
//!
//! // Errors name the file, line and column, and show the text with a caret.
//! let err = load_str("version: 1\nrules:\n  - { id: 7, expression: http.hots eq \"a\", action: block }\n", "bad.yaml", Path::new("."))
//!     .unwrap_err();
//! assert_eq!((err.file(), err.line()), ("bad.yaml", 3));
//! assert!(err.to_string().contains("unknown field `http.hots`"));
//! ```
//!
//! The modules hold the rest: [`lang`] (the expression language: lexer, checker, host evaluator,
//! detectors), [`xdp`] (the L3/L4 rule model, its table compiler and the kernel's semantics on
//! the host), [`packet`] (the kernel parser's host twin), [`prefix`] (IPv4/IPv6 prefixes).

pub mod file;
pub mod lang;
pub mod packet;
pub mod prefix;
pub mod xdp;

// The common paths, short: loading a file and what it gives, the expression language's entry
// points, and the types every caller names. The modules stay public for the rest.
pub use file::{
    check_ids_beside, load_file, load_str, L7Attrs, L7RateLimit, Mode, RateLimitExprs, Rule,
    RuleAction, RuleError, RuleErrorKind, RuleSet, ScoreClass, Target, DEFAULT_RULE_IDS,
    FILE_VERSION,
};
pub use lang::{
    compile_expr, eval_bool, ExprError, Field, FieldSource, Layer, Lists, TExpr, Value,
};
pub use packet::parse_frame;
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
