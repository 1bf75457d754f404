//! Proxy counters: atomics on the request path, plain snapshots for the metrics renderer.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::gate::RefusalKind;

/// Upper bounds (seconds) of the latency histogram buckets; a last `+Inf` bucket is implied.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A snapshot of every pool's counters (monotonic since the proxy was built, except gauges).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProxyStats {
    pub pools: Vec<PoolStats>,
    /// Requests routed to a target that names no pool (answered 502).
    pub unknown_target: u64,
    /// Requests refused before reaching any origin.
    pub refused: RefusedCounts,
}

/// Requests the proxy refused itself, by reason (see `gate.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefusedCounts {
    /// TRACE or CONNECT (405), or a method name that is not upper case (400).
    pub method: u64,
    /// Missing, repeated or malformed Host, or userinfo in the target (400).
    pub host: u64,
    /// The client's body failed while it streamed to the origin: malformed or cut-short
    /// chunked framing, fewer bytes than `Content-Length` (400; the origin saw an aborted
    /// message at most).
    pub body: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolStats {
    pub name: String,
    /// Attempts made on another origin after a connect failure.
    pub retries: u64,
    /// Requests refused because every origin of the pool was down (answered 502).
    pub no_healthy_origin: u64,
    pub origins: Vec<OriginStats>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OriginStats {
    /// As configured, e.g. `http://127.0.0.1:8080`.
    pub origin: String,
    pub healthy: bool,
    /// Requests sent and not yet answered in full (gauge).
    pub in_flight: u64,
    /// Responses from the origin by status class: index 0 is 1xx, 4 is 5xx.
    pub responses: [u64; 5],
    pub errors: ErrorCounts,
    /// Time from sending the request to the response head.
    pub latency: Histogram,
}

/// Upstream failures by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// The connection could not be made (refused, unreachable, connect timeout).
    pub connect: u64,
    /// No response head within `response_header_ms` (answered 504).
    pub timeout: u64,
    /// Anything else: the connection broke, a malformed response, a body cut short.
    pub other: u64,
}

/// A Prometheus-style histogram: cumulative counts per [`LATENCY_BUCKETS`] bound.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// `(upper bound in seconds, observations <= bound)`, ascending.
    pub buckets: Vec<(f64, u64)>,
    /// All observations (the `+Inf` bucket).
    pub count: u64,
    pub sum_seconds: f64,
}

/// The live refusal counters.
#[derive(Debug, Default)]
pub(crate) struct RefusedCounters {
    method: AtomicU64,
    host: AtomicU64,
    body: AtomicU64,
}

impl RefusedCounters {
    pub fn count(&self, kind: RefusalKind) {
        let c = match kind {
            RefusalKind::Method => &self.method,
            RefusalKind::Host => &self.host,
            RefusalKind::Body => &self.body,
        };
        c.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> RefusedCounts {
        RefusedCounts {
            method: self.method.load(Relaxed),
            host: self.host.load(Relaxed),
            body: self.body.load(Relaxed),
        }
    }
}

/// The live counters of one origin.
#[derive(Debug, Default)]
pub(crate) struct OriginCounters {
    pub responses: [AtomicU64; 5],
    pub connect_errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub other_errors: AtomicU64,
    pub latency: LatencyCounters,
}

impl OriginCounters {
    pub fn response(&self, status: http::StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }

    pub fn errors(&self) -> ErrorCounts {
        ErrorCounts {
            connect: self.connect_errors.load(Relaxed),
            timeout: self.timeouts.load(Relaxed),
            other: self.other_errors.load(Relaxed),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct LatencyCounters {
    /// Per bucket (not cumulative), then the overflow bucket.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl LatencyCounters {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    pub fn snapshot(&self) -> Histogram {
        let mut total = 0;
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, n)| {
                total += n.load(Relaxed);
                (bound, total)
            })
            .collect();
        total += self.buckets[LATENCY_BUCKETS.len()].load(Relaxed);
        Histogram {
            buckets,
            count: total,
            sum_seconds: self.sum_micros.load(Relaxed) as f64 / 1e6,
        }
    }
}
