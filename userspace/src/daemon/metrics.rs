//! Prometheus text exposition (format 0.0.4) of the daemon's state: XDP counters per reason and
//! per rule, the detector and its generated rules, L7 decisions per rule and action, the
//! rate-limit store, proxy latency histograms and origin health, and the process's memory.

use std::fmt::Write;

use super::kernel_side::KernelState;
use crate::l7::EngineStats;
use crate::proxy::ProxyStats;

/// Builds one exposition; each family is announced once with HELP and TYPE.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exposition {
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    pub fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

// One function on purpose (~135 lines): one XDP metric family after another, in exposition
// order; a flat list reads best whole.
pub fn kernel(e: &mut Exposition, k: &KernelState) {
    if let Some(c) = &k.counters {
        e.family(
            "rampart_xdp_packets_total",
            "counter",
            "Packets by XDP verdict reason.",
        );
        for (r, v) in &c.reasons {
            e.sample(
                "rampart_xdp_packets_total",
                &[("reason", r.name())],
                v.packets as f64,
            );
        }
        e.family(
            "rampart_xdp_bytes_total",
            "counter",
            "Bytes by XDP verdict reason.",
        );
        for (r, v) in &c.reasons {
            e.sample(
                "rampart_xdp_bytes_total",
                &[("reason", r.name())],
                v.bytes as f64,
            );
        }
        e.family(
            "rampart_xdp_rule_matches_total",
            "counter",
            "Packets matched per XDP rule (operator and generated).",
        );
        for (id, rc) in &c.rules {
            let id = id.to_string();
            e.sample(
                "rampart_xdp_rule_matches_total",
                &[("rule_id", &id)],
                rc.matched.packets as f64,
            );
        }
        e.family(
            "rampart_xdp_rule_dropped_total",
            "counter",
            "Packets dropped per XDP rule (operator and generated).",
        );
        for (id, rc) in &c.rules {
            let id = id.to_string();
            e.sample(
                "rampart_xdp_rule_dropped_total",
                &[("rule_id", &id)],
                rc.dropped.packets as f64,
            );
        }
        let dropped = c.dropped() as f64;
        e.one(
            "rampart_xdp_dropped_packets_total",
            "counter",
            "Packets dropped by XDP, all reasons.",
            dropped,
        );
    }
    e.family(
        "rampart_xdp_attached",
        "gauge",
        "Interfaces the program is attached to.",
    );
    for a in &k.attached {
        e.sample(
            "rampart_xdp_attached",
            &[("iface", &a.iface), ("mode", a.mode)],
            1.0,
        );
    }
    e.one(
        "rampart_deny_entries",
        "gauge",
        "Entries in the XDP denylist.",
        k.deny_entries as f64,
    );
    e.one(
        "rampart_jails_total",
        "counter",
        "L7 offenders jailed in XDP.",
        k.jails as f64,
    );
    e.one(
        "rampart_jail_errors_total",
        "counter",
        "Jail writes that failed.",
        k.jail_errors as f64,
    );
    if let Some(d) = &k.detector {
        e.one(
            "rampart_detector_samples_total",
            "counter",
            "Packet samples the detector counted.",
            d.detector.samples as f64,
        );
        e.one(
            "rampart_detector_attacks_started_total",
            "counter",
            "Suspected attacks the detector began fingerprinting.",
            d.detector.attacks_started as f64,
        );
        e.one(
            "rampart_detector_table_loads_total",
            "counter",
            "Rule-table loads by the mitigation manager.",
            d.reloads as f64,
        );
        e.one(
            "rampart_generated_rules",
            "gauge",
            "Generated rules live in XDP.",
            k.generated.len() as f64,
        );
        e.one(
            "rampart_generated_rules_total",
            "counter",
            "Generated rules since start (live and expired).",
            k.generated_total as f64,
        );
        e.family(
            "rampart_generated_rule_hits",
            "gauge",
            "Sampled matches of each live generated rule.",
        );
        for (id, expr, hits, action) in &k.generated {
            let id = format!("{id:#x}");
            e.sample(
                "rampart_generated_rule_hits",
                &[("rule_id", &id), ("action", action), ("expression", expr)],
                *hits as f64,
            );
        }
    }
}

// One function on purpose (~115 lines): one L7 engine metric family after another, in
// exposition order; a flat list reads best whole.
pub fn engine(e: &mut Exposition, s: &EngineStats) {
    e.one(
        "rampart_http_requests_total",
        "counter",
        "Requests seen by the L7 engine.",
        s.requests as f64,
    );
    e.family(
        "rampart_http_decisions_total",
        "counter",
        "L7 decisions by action.",
    );
    for (action, n) in [
        ("block", s.blocked),
        ("ratelimit", s.rate_limited),
        ("route", s.routed),
    ] {
        e.sample(
            "rampart_http_decisions_total",
            &[("action", action)],
            n as f64,
        );
    }
    e.family(
        "rampart_http_rule_matches_total",
        "counter",
        "Matches per L7 rule.",
    );
    for (id, n) in &s.rule_hits {
        let id = id.to_string();
        e.sample(
            "rampart_http_rule_matches_total",
            &[("rule_id", &id)],
            *n as f64,
        );
    }
    e.one(
        "rampart_http_body_over_limit_total",
        "counter",
        "Bodies over the inspection limit.",
        s.body_over_limit as f64,
    );
    e.one(
        "rampart_http_body_errors_total",
        "counter",
        "Bodies that did not parse as their type.",
        s.body_errors as f64,
    );
    e.one(
        "rampart_http_body_decoded_over_limit_total",
        "counter",
        "Encoded bodies whose decoded form passed the inspection limit.",
        s.body_decoded_over_limit as f64,
    );
    e.one(
        "rampart_http_content_type_conflicts_total",
        "counter",
        "Requests refused for more than one Content-Type header.",
        s.content_type_conflicts as f64,
    );
    e.one(
        "rampart_http_encoding_refused_total",
        "counter",
        "Requests refused for a Content-Encoding the engine does not inspect.",
        s.encoding_refused as f64,
    );
    e.one(
        "rampart_http_truncated_total",
        "counter",
        "Requests with more fields than the limits.",
        s.truncated as f64,
    );
    e.one(
        "rampart_http_detector_faults_total",
        "counter",
        "SQLi/XSS detector panics (counted as detections).",
        s.detector_faults as f64,
    );
    e.one(
        "rampart_ratelimit_entries",
        "gauge",
        "Keys live in the rate-limit store.",
        s.ratelimit.entries as f64,
    );
    e.one(
        "rampart_ratelimit_capacity",
        "gauge",
        "Keys the rate-limit store can hold.",
        s.ratelimit.capacity as f64,
    );
    e.one(
        "rampart_ratelimit_evictions_total",
        "counter",
        "Keys evicted from the full store.",
        s.ratelimit.evictions as f64,
    );
    e.one(
        "rampart_ratelimit_penalty_evictions_total",
        "counter",
        "Keys evicted inside their penalty box (every key of their set was boxed).",
        s.ratelimit.penalty_evictions as f64,
    );
    e.one(
        "rampart_ratelimit_memory_bytes",
        "gauge",
        "Memory of the rate-limit store.",
        s.ratelimit.memory_bytes as f64,
    );
    e.one(
        "rampart_jails_throttled_total",
        "counter",
        "Jails over the write budget.",
        s.jails_throttled as f64,
    );
}

pub fn proxy(e: &mut Exposition, p: &ProxyStats) {
    super::proxy_metrics::render(e, p);
}

/// Resident memory of this process, from /proc (Linux).
pub fn process(e: &mut Exposition) {
    let rss_pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        });
    if let Some(pages) = rss_pages {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        e.one(
            "rampart_process_resident_memory_bytes",
            "gauge",
            "Resident memory of the daemon.",
            (pages * page) as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let mut e = Exposition::default();
        e.family("x_total", "counter", "An x.");
        e.sample("x_total", &[("a", "q\"uote"), ("b", "2")], 3.0);
        e.one("y", "gauge", "A y.", 1.5);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_total An x.\n# TYPE x_total counter\nx_total{a=\"q\\\"uote\",b=\"2\"} 3\n# HELP y A y.\n# TYPE y gauge\ny 1.5\n"
        );
    }
}
