//! The L7 engine: WAF rules, SQLi/XSS detection, anomaly scores and bounded rate limits on HTTP
//! requests, from the same rule files as the XDP layer. A synchronous core, no runtime needed,
//! to embed in any Rust proxy; the `tower` module (feature `tower`) has a `tower::Layer` for axum
//! and hyper.
//!
//! Phases follow Pingora's hooks: [`Engine::begin`] on a request head gives a [`Transaction`];
//! [`Transaction::on_request_headers`], [`Transaction::on_request_body`] (bounded buffer),
//! [`Transaction::on_response`] (for rate limits that count on the response) and
//! [`Transaction::finish`] (the [`AuditEvent`]) follow.
//!
//! ```
//! use rampart_l7::{ConnInfo, Decision, Engine, EngineConfig};
//! use std::path::Path;
//!
//! let site = rampart_rules::load_str(
//!     r#"
//! version: 1
//! rules:
//!   - id: 100
//!     ref: admin-closed
//!     expression: starts_with(lower(http.request.uri.path), "/admin")
//!     action: block
//!   - id: 101
//!     ref: login-bruteforce
//!     expression: http.request.method eq "POST" and http.request.uri.path eq "/login"
//!     action: ratelimit
//!     ratelimit: { characteristics: [ip.src], period: 60, requests_per_period: 5, mitigation_timeout: 600 }
//! "#,
//!     "site.yaml",
//!     Path::new("."),
//! )
//! .expect("rules load");
//! let waf = rampart_rules::default_waf();
//! let engine = Engine::new(&[&site, &waf], EngineConfig::default()).expect("no duplicate ids");
//!
//! let conn = ConnInfo::new("192.0.2.10:40000".parse().unwrap());
//! let (parts, ()) = http::Request::get("/search?q=1'%20OR%20'1'%3D'1")
//!     .header("host", "example.com")
//!     .body(())
//!     .unwrap()
//!     .into_parts();
//! let mut tx = engine.begin(&conn, &parts);
//! let mut decision = tx.on_request_headers();
//! if !decision.is_terminal() {
//!     decision = tx.on_request_body(b"", true);
//! }
//! assert!(matches!(decision, Decision::Block { status: 403, .. }));
//! let audit = tx.finish();
//! assert_eq!(audit.scores.sqli, 5);
//! assert!(audit.to_json().contains(r#""ruleId":900100"#));
//! ```

mod audit;
mod body;
mod client_ip;
mod compiled;
mod decision;
mod decode;
mod engine;
mod escalate;
mod fields;
mod multipart;
mod ratelimit;
mod request;
pub mod seclang;
#[cfg(feature = "tower")]
pub mod tower;
mod transaction;

pub use audit::{AuditConfig, AuditEvent, AuditWriter, RuleMatch, ScoreReport};
pub use body::{BodyError, BodyKind, BodyLimits, BodyTruncation, BodyView};
pub use client_ip::{
    resolve as resolve_client_ip, ClientIpConfig, ClientIpSource, ForwardedHeader,
};
pub use decision::Decision;
pub use decode::{Coding, CodingError, DecodeError, Decoded};
pub use engine::{
    ConnInfo, EncodedBody, Engine, EngineConfig, EngineStats, OverLimit, ProxyHeader,
};
pub use escalate::{Jailer, TablesJailer};
pub use fields::Scores;
pub use ratelimit::{Limit, RateStore, RateVerdict, StoreStats};
pub use request::{RequestLimits, RequestView, Truncation};
pub use transaction::{Transaction, ENGINE_RULE_ID};

/// Why an engine could not be built from rule sets: read it through [`EngineError::kind`] and
/// the accessors (the details stay private so kinds can grow).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct EngineError(Inner);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Inner {
    #[error("rule id {id} is in both {first} and {second}")]
    DuplicateRuleId {
        id: u32,
        first: String,
        second: String,
    },
}

/// What kind of failure an [`EngineError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineErrorKind {
    /// Two rule sets (or one, twice) hold a rule with the same id; [`EngineError::rule_id`]
    /// says which.
    DuplicateRuleId,
}

impl EngineError {
    pub(crate) fn duplicate_rule_id(id: u32, first: String, second: String) -> EngineError {
        EngineError(Inner::DuplicateRuleId { id, first, second })
    }

    pub fn kind(&self) -> EngineErrorKind {
        match self.0 {
            Inner::DuplicateRuleId { .. } => EngineErrorKind::DuplicateRuleId,
        }
    }

    /// The rule the error is about.
    pub fn rule_id(&self) -> Option<u32> {
        match self.0 {
            Inner::DuplicateRuleId { id, .. } => Some(id),
        }
    }
}
#[cfg(test)]
mod tests;
