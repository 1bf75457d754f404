//! The engine: compiled rules behind an atomic pointer (swapped whole, never edited in place),
//! the bounded rate-limit store, the escalation path and the counters. Cheap to clone; one per
//! process, shared by every connection.

use std::collections::hash_map::RandomState;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use rampart_rules::RuleSet;

use super::audit::AuditConfig;
use super::body::BodyLimits;
use super::client_ip::ClientIpConfig;
use super::compiled::Compiled;
use super::escalate::{Escalator, Jailer};
use super::ratelimit::{RateStore, StoreStats};
use super::request::{RequestLimits, RequestView};
use super::transaction::Transaction;
use super::EngineError;

/// What to do with a body larger than [`EngineConfig::body_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OverLimit {
    /// Refuse with 413 (the safe default: an attacker cannot hide a payload past the limit).
    #[default]
    Block,
    /// Inspect the first `body_limit` bytes and let the rest through unread.
    InspectPrefix,
}

/// What to do with a request body sent with a `Content-Encoding` when rules read the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EncodedBody {
    /// Decode gzip, x-gzip, deflate and br (up to 4 layers) for inspection, each layer within
    /// the body limit (more output is over the limit, as for a long plain body); refuse other
    /// codings with 415. The origin still gets the body as sent.
    #[default]
    Decode,
    /// Refuse any coding but `identity` with 415 (for sites whose clients never compress).
    Refuse,
}

/// Engine settings. `Default` gives a sensible configuration for a single host behind no proxy.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Rules with `paranoia` above this do not run (1 to 4).
    pub paranoia: u8,
    /// Bytes of body buffered for inspection.
    pub body_limit: usize,
    pub over_limit: OverLimit,
    /// Bodies sent with a `Content-Encoding`, when rules read the body.
    pub encoded_body: EncodedBody,
    pub client_ip: ClientIpConfig,
    /// Memory for the rate-limit store, allocated once.
    pub ratelimit_memory: usize,
    pub request_limits: RequestLimits,
    pub body_limits: BodyLimits,
    /// Status and body of `block` (a rule's `status` overrides the status).
    pub block_status: u16,
    pub block_body: String,
    pub audit: AuditConfig,
    /// Jail writes to the data plane per second (burst the same).
    pub jail_writes_per_second: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            paranoia: 1,
            body_limit: 128 * 1024,
            over_limit: OverLimit::Block,
            encoded_body: EncodedBody::Decode,
            client_ip: ClientIpConfig::default(),
            ratelimit_memory: 64 << 20,
            request_limits: RequestLimits::default(),
            body_limits: BodyLimits::default(),
            block_status: 403,
            block_body: "request blocked\n".into(),
            audit: AuditConfig::default(),
            jail_writes_per_second: 100,
        }
    }
}

/// Addresses announced by a PROXY protocol header (HAProxy v1/v2): `source` is the original
/// client, `destination` the address it connected to. The wire parser is the proxy's
/// (`rampart_proxy::proxy_protocol`); the engine only needs the value, for the client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

/// The connection a request arrived on.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The PROXY protocol header read at the start of the connection, if any.
    pub proxy: Option<ProxyHeader>,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr) -> ConnInfo {
        ConnInfo { peer, proxy: None }
    }
}

/// Engine counters (monotonic since the engine was built).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub blocked: AtomicU64,
    pub rate_limited: AtomicU64,
    pub routed: AtomicU64,
    pub body_over_limit: AtomicU64,
    pub body_errors: AtomicU64,
    pub truncated: AtomicU64,
    pub body_decoded_over_limit: AtomicU64,
    pub content_type_conflicts: AtomicU64,
    pub encoding_refused: AtomicU64,
}

/// A snapshot of the engine's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub requests: u64,
    pub blocked: u64,
    pub rate_limited: u64,
    pub routed: u64,
    /// Bodies over the limit (blocked or inspected in part, by policy), announced by
    /// `Content-Length`, read, or decoded.
    pub body_over_limit: u64,
    /// Of those, bodies whose decoded form (`Content-Encoding`) was over the limit.
    pub body_decoded_over_limit: u64,
    /// Bodies that did not parse as their content type said, or did not decode.
    pub body_errors: u64,
    /// Requests with more args, headers, cookies or fields than the limits (the rest unseen).
    pub truncated: u64,
    /// Requests refused for sending `Content-Type` more than once.
    pub content_type_conflicts: u64,
    /// Requests refused for a `Content-Encoding` the engine does not decode (or by policy).
    pub encoding_refused: u64,
    pub jailed: u64,
    pub jails_throttled: u64,
    pub jail_failures: u64,
    /// `sqli()`/`xss()` calls that panicked inside the detector (counted as detections).
    pub detector_faults: u64,
    pub ratelimit: StoreStats,
    /// Matches per rule id (the current rule set).
    pub rule_hits: Vec<(u32, u64)>,
    /// The loaded rule file.
    pub rules_file: String,
    /// Rules in the SecLang set (0 when none is loaded).
    pub seclang_rules: usize,
}

pub(crate) struct Shared {
    pub rules: ArcSwap<Compiled>,
    /// A SecLang rule set (OWASP CRS) run after the engine's own rules, swapped whole.
    pub seclang: ArcSwapOption<crate::seclang::RuleSet>,
    pub config: EngineConfig,
    pub store: RateStore,
    pub escalator: Escalator,
    pub counters: Counters,
    pub hasher: RandomState,
    pub epoch: Instant,
}

impl Shared {
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// The L7 engine. See the [module docs](super) for a complete example.
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
}

impl Engine {
    /// An engine running the HTTP rules of `rule_sets`, in order (e.g. a site's own rules,
    /// then [`rampart_rules::default_waf`]).
    ///
    /// # Errors
    /// A rule id used in two of the sets.
    pub fn new(rule_sets: &[&RuleSet], config: EngineConfig) -> Result<Engine, EngineError> {
        Engine::build(rule_sets, config, None)
    }

    /// As [`Engine::new`], and `jail` rules and repeat rate-limit offenders reach the data
    /// plane through `jailer`.
    pub fn with_jailer(
        rule_sets: &[&RuleSet],
        config: EngineConfig,
        jailer: Box<dyn Jailer>,
    ) -> Result<Engine, EngineError> {
        Engine::build(rule_sets, config, Some(jailer))
    }

    fn build(
        rule_sets: &[&RuleSet],
        config: EngineConfig,
        jailer: Option<Box<dyn Jailer>>,
    ) -> Result<Engine, EngineError> {
        let compiled = Compiled::new(rule_sets, config.paranoia)?;
        Ok(Engine {
            shared: Arc::new(Shared {
                rules: ArcSwap::from_pointee(compiled),
                seclang: ArcSwapOption::empty(),
                store: RateStore::with_memory(config.ratelimit_memory),
                escalator: Escalator::new(jailer, config.jail_writes_per_second),
                counters: Counters::default(),
                hasher: RandomState::new(),
                epoch: Instant::now(),
                config,
            }),
        })
    }

    /// Replaces the rules atomically: requests already begun finish on the old set. Rate-limit
    /// counters survive (they are keyed by rule id).
    ///
    /// # Errors
    /// As [`Engine::new`]; the running rules stay in place.
    pub fn swap_rules(&self, rule_sets: &[&RuleSet]) -> Result<(), EngineError> {
        let compiled = Compiled::new(rule_sets, self.shared.config.paranoia)?;
        self.shared.rules.store(Arc::new(compiled));
        Ok(())
    }

    /// Runs `set` (e.g. OWASP CRS loaded with [`crate::seclang::RuleSet::load`]) on every
    /// request after the engine's own rules, or none. Swapped atomically like
    /// [`swap_rules`](Self::swap_rules): a set that failed to load never gets here, so the
    /// running one stays.
    pub fn set_seclang(&self, set: Option<crate::seclang::RuleSet>) {
        self.shared.seclang.store(set.map(Arc::new));
    }

    /// Starts a transaction for a request head.
    pub fn begin(&self, conn: &ConnInfo, parts: &http::request::Parts) -> Transaction {
        self.shared
            .counters
            .requests
            .fetch_add(1, Ordering::Relaxed);
        let req = RequestView::from_parts(parts, &self.shared.config.request_limits);
        Transaction::new(self.shared.clone(), conn, parts, req)
    }

    /// True when some rule reads the body (adapters may skip buffering otherwise).
    pub fn needs_body(&self) -> bool {
        self.shared.rules.load().needs_body || self.shared.seclang.load().is_some()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.shared.counters;
        let e = &self.shared.escalator;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let rules = self.shared.rules.load();
        EngineStats {
            requests: get(&c.requests),
            blocked: get(&c.blocked),
            rate_limited: get(&c.rate_limited),
            routed: get(&c.routed),
            body_over_limit: get(&c.body_over_limit),
            body_errors: get(&c.body_errors),
            truncated: get(&c.truncated),
            body_decoded_over_limit: get(&c.body_decoded_over_limit),
            content_type_conflicts: get(&c.content_type_conflicts),
            encoding_refused: get(&c.encoding_refused),
            jailed: get(&e.jailed),
            jails_throttled: get(&e.throttled),
            jail_failures: get(&e.failed),
            detector_faults: rampart_rules::lang::detect::faults(),
            ratelimit: self.shared.store.stats(),
            rule_hits: rules.rules.iter().map(|r| (r.id, get(&r.hits))).collect(),
            rules_file: rules.file.clone(),
            seclang_rules: self
                .shared
                .seclang
                .load()
                .as_ref()
                .map_or(0, |s| s.stats().rules),
        }
    }
}
