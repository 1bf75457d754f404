//! One request's pass through the rules: head phase, body phase, response (for counting
//! expressions), then the audit event.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_rules::lang::{eval_bool, Field, FieldSource, Value};
use rampart_rules::{Mode, RuleAction};

use super::audit::{AuditEvent, RuleMatch};
use super::body::{parse_body, BodyError, BodyView};
use super::client_ip::{resolve, ClientIpSource};
use super::compiled::{Compiled, CompiledRule, Phase};
use super::decision::Decision;
use super::decode::{codings, decode, Coding};
use super::engine::{ConnInfo, EncodedBody, OverLimit, Shared};
use super::fields::{Env, FieldCache, ResponseView, Scores};
use super::ratelimit::RateVerdict;
use super::request::RequestView;

/// Rule id reported for the engine's own refusals: a body over the limit (413), conflicting
/// `Content-Type` headers (400), a `Content-Encoding` it cannot inspect (415).
pub const ENGINE_RULE_ID: u32 = 0;

const TOO_LARGE: &str = "request body too large\n";

/// The engine's own refusal.
fn refusal(status: u16, body: &str) -> Decision {
    Decision::Block {
        status,
        body: body.into(),
        rule_id: ENGINE_RULE_ID,
    }
}

/// A request in flight. Call [`on_request_headers`](Self::on_request_headers), then
/// [`on_request_body`](Self::on_request_body) for each chunk (with `end = true` last, an empty
/// chunk for a request without body) unless a terminal decision came first, optionally
/// [`on_response`](Self::on_response), then [`finish`](Self::finish).
pub struct Transaction {
    shared: Arc<Shared>,
    rules: Arc<Compiled>,
    seclang: Option<Arc<crate::seclang::RuleSet>>,
    /// SecLang rules that matched (logged ones), for the audit event.
    seclang_matches: Vec<RuleMatch>,
    peer_port: u16,
    req: RequestView,
    client_ip: IpAddr,
    ip_source: ClientIpSource,
    body: Vec<u8>,
    body_bytes: u64,
    body_view: Option<BodyView>,
    /// The body's content codings, in the order applied (set by the head checks).
    codings: Vec<Coding>,
    over_limit: bool,
    scores: Scores,
    /// Rules that matched: (index, action, enforced). Their evidence is looked up only when
    /// the audit event is built.
    matches: Vec<(usize, &'static str, bool)>,
    decision: Decision,
    stopped: bool,
    head_done: bool,
    body_done: bool,
    /// Rate limits whose counting expression waits for the response: (rule index, key).
    pending: Vec<(usize, u64)>,
    response: Option<ResponseView>,
    started: Instant,
}

impl Transaction {
    pub(crate) fn new(
        shared: Arc<Shared>,
        conn: &ConnInfo,
        parts: &http::request::Parts,
        req: RequestView,
    ) -> Transaction {
        let (client_ip, ip_source) = resolve(
            &shared.config.client_ip,
            conn.peer.ip(),
            conn.proxy.as_ref(),
            &parts.headers,
        );
        if req.truncated.any() {
            shared.counters.truncated.fetch_add(1, Ordering::Relaxed);
        }
        Transaction {
            rules: shared.rules.load_full(),
            seclang: shared.seclang.load_full(),
            seclang_matches: Vec::new(),
            peer_port: conn.peer.port(),
            shared,
            req,
            client_ip,
            ip_source,
            body: Vec::new(),
            body_bytes: 0,
            body_view: None,
            codings: Vec::new(),
            over_limit: false,
            scores: Scores::default(),
            matches: Vec::new(),
            decision: Decision::Continue,
            stopped: false,
            head_done: false,
            body_done: false,
            pending: Vec::new(),
            response: None,
            started: Instant::now(),
        }
    }

    /// The client address, resolved through the trusted proxies.
    pub fn client_ip(&self) -> IpAddr {
        self.client_ip
    }

    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Body bytes the engine buffers for inspection.
    pub fn body_limit(&self) -> usize {
        self.shared.config.body_limit
    }

    pub fn scores(&self) -> Scores {
        self.scores
    }

    /// True when rules read the body (so it must be offered, up to the limit).
    pub fn needs_body(&self) -> bool {
        (self.rules.needs_body || self.seclang.is_some())
            && !self.decision.is_terminal()
            && !self.stopped
    }

    /// Runs the rules that need only the head, between the engine's own head checks: two
    /// `Content-Type` headers are refused first, whatever the rules say; then, if the body is
    /// still to be read (no head rule ended evaluation, and some rule reads the body), a
    /// `Content-Encoding` the engine does not decode (or any, by policy) and a `Content-Length`
    /// over the body limit (when the over-limit policy is `Block`). A refusal here comes before
    /// the body is read, so an HTTP/1.1 client that sent `Expect: 100-continue` gets it instead
    /// of `100 Continue`.
    pub fn on_request_headers(&mut self) -> Decision {
        if !self.head_done {
            self.head_done = true;
            if self.req.content_types.len() > 1 {
                let c = &self.shared.counters;
                c.content_type_conflicts.fetch_add(1, Ordering::Relaxed);
                self.set_terminal(refusal(400, "conflicting Content-Type headers\n"));
                return self.decision.clone();
            }
            self.run(Phase::Head);
            if self.needs_body() {
                self.check_body_head();
            }
        }
        self.decision.clone()
    }

    /// The head checks for a body the engine will read (see `on_request_headers`).
    fn check_body_head(&mut self) {
        let cfg = &self.shared.config;
        let counters = &self.shared.counters;
        if self.req.content_length() == Some(0) {
            return;
        }
        match codings(self.req.content_encodings.iter().map(Vec::as_slice)) {
            Ok(list) if list.is_empty() || cfg.encoded_body == EncodedBody::Decode => {
                self.codings = list;
            }
            _ => {
                counters.encoding_refused.fetch_add(1, Ordering::Relaxed);
                self.set_terminal(refusal(415, "unsupported content encoding\n"));
                return;
            }
        }
        let limit = cfg.body_limit as u64;
        if cfg.over_limit == OverLimit::Block
            && self.req.content_length().is_some_and(|n| n > limit)
        {
            self.over_limit = true;
            counters.body_over_limit.fetch_add(1, Ordering::Relaxed);
            self.set_terminal(refusal(413, TOO_LARGE));
        }
    }

    /// Offers a body chunk; `end` marks the last. Returns the decision so far (final once `end`
    /// has been seen or the body passed the limit).
    pub fn on_request_body(&mut self, chunk: &[u8], end: bool) -> Decision {
        if !self.head_done {
            self.on_request_headers();
        }
        if self.body_done || self.decision.is_terminal() {
            return self.decision.clone();
        }
        self.body_bytes = self.body_bytes.saturating_add(chunk.len() as u64);
        let limit = self.shared.config.body_limit;
        let room = limit.saturating_sub(self.body.len());
        if chunk.len() > room {
            self.over_limit = true;
            self.shared
                .counters
                .body_over_limit
                .fetch_add(1, Ordering::Relaxed);
            if self.shared.config.over_limit == OverLimit::Block {
                self.body_done = true;
                self.set_terminal(refusal(413, TOO_LARGE));
                return self.decision.clone();
            }
            self.body.extend_from_slice(&chunk[..room]);
        } else {
            self.body.extend_from_slice(chunk);
        }
        if end || self.over_limit {
            self.body_done = true;
            self.parse_body();
            self.run(Phase::Body);
            self.run_seclang();
            if let Decision::Route { .. } = self.decision {
                self.shared.counters.routed.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.decision.clone()
    }

    /// Shows the response to rate limits that count on it.
    pub fn on_response(&mut self, parts: &http::response::Parts) {
        self.response = Some(ResponseView::from_parts(parts));
        let pending = std::mem::take(&mut self.pending);
        let now = self.shared.now_ms();
        for (i, key) in pending {
            let rule = &self.rules.rules[i];
            let Some(rl) = &rule.ratelimit else { continue };
            let counts = rl
                .exprs
                .counting
                .as_ref()
                .is_some_and(|c| eval_bool(c, &self.env(None)));
            if counts {
                self.shared.store.record(key, &rl.limit, now);
            }
        }
    }

    /// Ends the transaction: the audit event for the log.
    pub fn finish(mut self) -> AuditEvent {
        let cache = FieldCache::default();
        let mut matches: Vec<RuleMatch> = self
            .matches
            .iter()
            .map(|&(i, action, enforced)| {
                let rule = &self.rules.rules[i];
                RuleMatch::new(rule, action, enforced, self.evidence(rule, &cache))
            })
            .collect();
        matches.append(&mut self.seclang_matches);
        AuditEvent::new(
            &self.shared.config.audit,
            &self.req,
            self.client_ip,
            self.ip_source,
            &self.decision,
            &self.scores,
            matches,
            self.response.as_ref().map(|r| r.status),
            self.body_bytes,
            self.started.elapsed(),
        )
    }

    /// The SecLang set (CRS) over the whole request, once the engine's own rules let it
    /// through: its logged matches go to the audit event, and a `deny` (CRS 949110 when the
    /// anomaly score reaches the threshold) blocks with the engine's block body.
    fn run_seclang(&mut self) {
        let Some(set) = self.seclang.clone() else {
            return;
        };
        if self.stopped {
            return;
        }
        let req = &self.req;
        let mut uri = req.uri.clone();
        if uri.is_empty() {
            uri.push(b'/');
        }
        let input = crate::seclang::HttpInput {
            remote_addr: self.client_ip,
            remote_port: self.peer_port,
            server_port: 0,
            method: req.method.clone(),
            uri,
            protocol: req.version.as_bytes().to_vec(),
            headers: req.headers.clone(),
            body: self.body.clone(),
        };
        let outcome = set.evaluate(&input);
        let blocked_by = outcome.interruption.as_ref().map(|i| i.rule_id);
        for m in outcome.matched.iter().filter(|m| m.logged) {
            let blocked = blocked_by == Some(m.id);
            self.seclang_matches
                .push(RuleMatch::seclang(m, blocked, true));
        }
        if let Some(i) = outcome.interruption {
            let body = self.shared.config.block_body.clone();
            self.set_terminal(Decision::Block {
                status: i.status,
                body,
                rule_id: i.rule_id,
            });
        }
    }

    /// Decodes the buffered body (its `Content-Encoding`) and parses it for the body rules;
    /// may refuse a body whose decoded form is over the limit.
    fn parse_body(&mut self) {
        let shared = Arc::clone(&self.shared);
        let (cfg, counters) = (&shared.config, &shared.counters);
        let mut complete = !self.over_limit;
        let mut view = None;
        if !self.codings.is_empty() {
            match decode(&self.codings, &self.body, complete, cfg.body_limit) {
                Ok(decoded) => {
                    if decoded.over_limit {
                        counters.body_over_limit.fetch_add(1, Ordering::Relaxed);
                        counters
                            .body_decoded_over_limit
                            .fetch_add(1, Ordering::Relaxed);
                        if cfg.over_limit == OverLimit::Block {
                            self.over_limit = true;
                            self.set_terminal(refusal(413, TOO_LARGE));
                            return;
                        }
                        complete = false;
                    }
                    // Rules read the decoded body (`http.request.body.raw` too).
                    self.body = decoded.bytes;
                }
                // Rules still see the body as sent, and no fields.
                Err(e) => {
                    view = Some(BodyView {
                        error: Some(BodyError::Encoding { why: e.to_string() }),
                        ..BodyView::default()
                    });
                }
            }
        }
        let view = view.unwrap_or_else(|| {
            parse_body(
                self.req.content_type(),
                &self.body,
                complete,
                &cfg.body_limits,
            )
        });
        if view.error.is_some() {
            counters.body_errors.fetch_add(1, Ordering::Relaxed);
        }
        if view.truncated.any_cap() {
            counters.truncated.fetch_add(1, Ordering::Relaxed);
        }
        self.body_view = Some(view);
    }

    fn env(&self, narrow: Option<(Field, Value)>) -> Env<'_> {
        Env {
            req: &self.req,
            body: self.body_view.as_ref(),
            body_raw: &self.body,
            client_ip: self.client_ip,
            scores: &self.scores,
            response: self.response.as_ref(),
            narrow,
            cache: None,
        }
    }

    /// As [`env`](Self::env), with the field values built so far in this phase.
    fn cached_env<'a>(&'a self, cache: &'a FieldCache, narrow: Option<(Field, Value)>) -> Env<'a> {
        Env {
            cache: Some(cache),
            ..self.env(narrow)
        }
    }

    fn set_terminal(&mut self, d: Decision) {
        let c = &self.shared.counters;
        match d {
            Decision::Block { .. } => c.blocked.fetch_add(1, Ordering::Relaxed),
            Decision::RateLimited { .. } => c.rate_limited.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        self.decision = d;
        self.stopped = true;
    }

    fn run(&mut self, phase: Phase) {
        let rules = self.rules.clone();
        // The request does not change during a phase: its field values are built once.
        let cache = FieldCache::default();
        for (i, rule) in rules.rules.iter().enumerate() {
            if self.stopped {
                return;
            }
            if rule.phase != phase || !eval_bool(&rule.expr, &self.cached_env(&cache, None)) {
                continue;
            }
            rule.hits.fetch_add(1, Ordering::Relaxed);
            let enforce = rule.mode == Mode::Enforce;
            let action = self.apply(i, rule, enforce);
            if let Some(action) = action {
                self.matches.push((i, action, enforce));
            }
        }
    }

    /// Applies a matching rule; returns the action name to record (`None`: nothing happened
    /// worth recording, e.g. a rate limit under its threshold).
    fn apply(&mut self, i: usize, rule: &CompiledRule, enforce: bool) -> Option<&'static str> {
        let cfg = &self.shared.config;
        Some(match &rule.action {
            RuleAction::Allow => {
                if enforce {
                    self.stopped = true;
                }
                "allow"
            }
            RuleAction::Log => "log",
            RuleAction::Skip => {
                if enforce {
                    self.stopped = true;
                }
                "skip"
            }
            RuleAction::Score(n) => {
                if enforce {
                    self.scores.add(rule.class, *n);
                }
                "score"
            }
            RuleAction::Block | RuleAction::Jail { .. } => {
                if enforce {
                    if let RuleAction::Jail { seconds } = rule.action {
                        let d = Duration::from_secs(seconds);
                        self.shared.escalator.jail(self.client_ip, d);
                    }
                    self.set_terminal(Decision::Block {
                        status: rule.status.unwrap_or(cfg.block_status),
                        body: cfg.block_body.clone(),
                        rule_id: rule.id,
                    });
                }
                if matches!(rule.action, RuleAction::Jail { .. }) {
                    "jail"
                } else {
                    "block"
                }
            }
            RuleAction::Route { target } => {
                if enforce && !matches!(self.decision, Decision::Route { .. }) {
                    self.decision = Decision::Route {
                        target: target.clone(),
                        rule_id: rule.id,
                    };
                }
                "route"
            }
            RuleAction::L7RateLimit(_) => return self.rate_limit(i, rule, enforce),
            // XDP actions never reach the engine (the loader gives them an XDP target).
            RuleAction::Drop | RuleAction::RateLimit { .. } => return None,
        })
    }

    fn rate_limit(&mut self, i: usize, rule: &CompiledRule, enforce: bool) -> Option<&'static str> {
        let rl = rule.ratelimit.as_ref()?;
        let env = self.env(None);
        let values: Vec<Option<Value>> = rl
            .exprs
            .keys
            .iter()
            .map(|k| rampart_rules::lang::eval::eval(k, &env))
            .collect();
        let key = self.shared.hasher.hash_one((rule.id, values));
        let counts_later = rl.exprs.counting.is_some();
        let now = self.shared.now_ms();
        let verdict = self.shared.store.check(key, &rl.limit, now, !counts_later);
        if counts_later {
            self.pending.push((i, key));
        }
        let RateVerdict::Limited {
            retry_after_ms,
            offenses,
            ..
        } = verdict
        else {
            return None;
        };
        if enforce {
            if let Some(after) = rl.jail_after {
                if offenses >= after {
                    let d = Duration::from_secs(rl.jail_seconds);
                    self.shared.escalator.jail(self.client_ip, d);
                }
            }
            self.set_terminal(Decision::RateLimited {
                status: rule.status.unwrap_or(429),
                retry_after: Duration::from_millis(retry_after_ms),
                rule_id: rule.id,
            });
        }
        Some("ratelimit")
    }

    /// Which field value made the rule match: each field the rule reads is narrowed to one of
    /// its values in turn until the rule still matches. Runs only when the audit event is built. The
    /// `cache` serves the fields not narrowed (a narrowed field never reads it).
    fn evidence(&self, rule: &CompiledRule, cache: &FieldCache) -> Option<(String, Value)> {
        for f in &rule.fields {
            for (label, v) in self.cached_env(cache, None).candidates(*f) {
                if eval_bool(&rule.expr, &self.cached_env(cache, Some((*f, v.clone())))) {
                    return Some((label, v));
                }
            }
        }
        let f = rule.fields.first()?;
        let v = self.cached_env(cache, None).field(*f)?.into_owned();
        Some((f.name().to_string(), v))
    }
}
