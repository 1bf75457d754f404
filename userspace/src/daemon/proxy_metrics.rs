//! The proxy's part of `/metrics`: origin health, in-flight requests, responses by status class,
//! upstream errors by kind, retries, and the latency histogram per origin.

use super::metrics::Exposition;
use crate::proxy::ProxyStats;

// One function on purpose (~140 lines): one metric family after another, in exposition order;
// splitting it would scatter a flat list without making any step clearer.
pub fn render(e: &mut Exposition, p: &ProxyStats) {
    let origins = || {
        p.pools
            .iter()
            .flat_map(|pool| pool.origins.iter().map(move |o| (pool.name.as_str(), o)))
    };
    e.family(
        "rampart_origin_up",
        "gauge",
        "1 when the origin passes its health checks.",
    );
    for (pool, o) in origins() {
        let v = if o.healthy { 1.0 } else { 0.0 };
        e.sample(
            "rampart_origin_up",
            &[("pool", pool), ("origin", &o.origin)],
            v,
        );
    }
    e.family(
        "rampart_origin_in_flight",
        "gauge",
        "Requests sent to the origin and not answered in full.",
    );
    for (pool, o) in origins() {
        e.sample(
            "rampart_origin_in_flight",
            &[("pool", pool), ("origin", &o.origin)],
            o.in_flight as f64,
        );
    }
    e.family(
        "rampart_origin_responses_total",
        "counter",
        "Origin responses by status class.",
    );
    for (pool, o) in origins() {
        for (i, n) in o.responses.iter().enumerate() {
            let class = format!("{}xx", i + 1);
            e.sample(
                "rampart_origin_responses_total",
                &[("pool", pool), ("origin", &o.origin), ("class", &class)],
                *n as f64,
            );
        }
    }
    e.family(
        "rampart_origin_errors_total",
        "counter",
        "Upstream failures by kind.",
    );
    for (pool, o) in origins() {
        for (kind, n) in [
            ("connect", o.errors.connect),
            ("timeout", o.errors.timeout),
            ("other", o.errors.other),
        ] {
            e.sample(
                "rampart_origin_errors_total",
                &[("pool", pool), ("origin", &o.origin), ("kind", kind)],
                n as f64,
            );
        }
    }
    e.family(
        "rampart_pool_retries_total",
        "counter",
        "Attempts on another origin after a connect failure.",
    );
    for pool in &p.pools {
        e.sample(
            "rampart_pool_retries_total",
            &[("pool", &pool.name)],
            pool.retries as f64,
        );
    }
    e.family(
        "rampart_pool_no_healthy_origin_total",
        "counter",
        "Requests refused with every origin down.",
    );
    for pool in &p.pools {
        e.sample(
            "rampart_pool_no_healthy_origin_total",
            &[("pool", &pool.name)],
            pool.no_healthy_origin as f64,
        );
    }
    e.one(
        "rampart_route_unknown_target_total",
        "counter",
        "Routes naming no pool (502).",
        p.unknown_target as f64,
    );
    e.family(
        "rampart_proxy_refused_total",
        "counter",
        "Requests the proxy refused before any origin: TRACE/CONNECT or a malformed method, \
         Host trouble, a client body that broke while streaming.",
    );
    let r = &p.refused;
    for (reason, n) in [("method", r.method), ("host", r.host), ("body", r.body)] {
        e.sample(
            "rampart_proxy_refused_total",
            &[("reason", reason)],
            n as f64,
        );
    }
    let name = "rampart_origin_latency_seconds";
    e.family(
        name,
        "histogram",
        "Time from sending a request to the origin's response head.",
    );
    for (pool, o) in origins() {
        let h = &o.latency;
        for (le, n) in &h.buckets {
            let le = le.to_string();
            e.sample(
                &format!("{name}_bucket"),
                &[("pool", pool), ("origin", &o.origin), ("le", &le)],
                *n as f64,
            );
        }
        e.sample(
            &format!("{name}_bucket"),
            &[("pool", pool), ("origin", &o.origin), ("le", "+Inf")],
            h.count as f64,
        );
        e.sample(
            &format!("{name}_sum"),
            &[("pool", pool), ("origin", &o.origin)],
            h.sum_seconds,
        );
        e.sample(
            &format!("{name}_count"),
            &[("pool", pool), ("origin", &o.origin)],
            h.count as f64,
        );
    }
}
