//! Sanity bounds on `rampart.toml` values that parse but cannot be meant: a zero body limit,
//! NaN rates, timeouts of zero or of days, a rate-limit budget larger than the host's memory
//! (which would abort at allocation). [`check`] refuses those; [`warnings`] names settings that
//! work but hand the client's address to anyone (a catch-all trusted proxy).

use std::collections::HashSet;

use super::config::{parse_prefixes, Config};

/// Largest `l7.body_limit`: 1 GiB (each request may buffer this much).
pub const MAX_BODY_LIMIT: usize = 1 << 30;
/// Largest `l7.ratelimit_memory` on any host: 64 GiB. It is also held to half of `MemTotal`.
pub const MAX_RATELIMIT_MEMORY: u64 = 64 << 30;
/// Longest listener timeout: one hour.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// Most connections a listener may be configured for.
pub const MAX_CONNECTIONS: usize = 10_000_000;
/// Longest `detector.min_ttl`: 30 days.
pub const MAX_MIN_TTL: u64 = 30 * 24 * 3600;
/// Most samples per second `detector.sample_budget` may ask for.
pub const MAX_SAMPLE_BUDGET: u64 = 10_000_000;

pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

fn range<T: PartialOrd + std::fmt::Display>(key: &str, v: T, lo: T, hi: T) -> Result<(), String> {
    if v < lo || v > hi {
        return Err(format!("{key} {v} (expected {lo} to {hi})"));
    }
    Ok(())
}

/// Refuses values no operator means. `mem_total` is the host's memory in bytes (if known).
pub fn check(cfg: &Config, mem_total: Option<u64>) -> Result<(), String> {
    if !LOG_LEVELS.contains(&cfg.log.level.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "log.level `{}` (expected {})",
            cfg.log.level,
            LOG_LEVELS.join(", ")
        ));
    }
    let l = &cfg.l7;
    range("l7.body_limit", l.body_limit, 1, MAX_BODY_LIMIT)?;
    let rl = l.ratelimit_memory as u64;
    if rl > MAX_RATELIMIT_MEMORY {
        return Err(format!(
            "l7.ratelimit_memory {rl} bytes is over the {MAX_RATELIMIT_MEMORY}-byte maximum"
        ));
    }
    if let Some(total) = mem_total {
        if rl > total / 2 {
            return Err(format!(
                "l7.ratelimit_memory {rl} bytes is over half of this host's memory ({total} bytes in /proc/meminfo)"
            ));
        }
    }
    let d = &cfg.detector;
    if !d.floor_pps.is_finite() || d.floor_pps < 0.0 {
        return Err(format!(
            "detector.floor_pps {} (expected a finite number of packets per second, 0 or more)",
            d.floor_pps
        ));
    }
    range("detector.min_ttl", d.min_ttl, 1, MAX_MIN_TTL)?;
    range(
        "detector.sample_budget",
        d.sample_budget,
        1,
        MAX_SAMPLE_BUDGET,
    )?;
    let mut seen = HashSet::new();
    for li in &cfg.listeners {
        let at = |k: &str| format!("listeners[{}].{k}", li.addr);
        if !seen.insert(li.addr) {
            // Two sockets with SO_REUSEPORT on one address would split its traffic.
            return Err(format!("listeners: {} is listed twice", li.addr));
        }
        range(
            &at("header_timeout_ms"),
            li.header_timeout_ms,
            1,
            MAX_TIMEOUT_MS,
        )?;
        range(
            &at("body_timeout_ms"),
            li.body_timeout_ms,
            1,
            MAX_TIMEOUT_MS,
        )?;
        range(
            &at("idle_timeout_ms"),
            li.idle_timeout_ms,
            1,
            MAX_TIMEOUT_MS,
        )?;
        range(
            &at("send_timeout_ms"),
            li.send_timeout_ms,
            1,
            MAX_TIMEOUT_MS,
        )?;
        range(
            &at("max_connections"),
            li.max_connections,
            1,
            MAX_CONNECTIONS,
        )?;
        range(
            &at("max_connections_per_ip"),
            li.max_connections_per_ip,
            1,
            li.max_connections,
        )?;
    }
    let m = &cfg.metrics;
    if let Some(addr) = m.addr {
        if seen.contains(&addr) {
            return Err(format!("metrics.addr {addr} is also a listener"));
        }
    }
    range(
        "metrics.header_timeout_ms",
        m.header_timeout_ms,
        1,
        MAX_TIMEOUT_MS,
    )?;
    range("metrics.max_connections", m.max_connections, 1, 10_000)?;
    Ok(())
}

/// Settings that are accepted but that the operator should hear about, loudly.
pub fn warnings(cfg: &Config, mem_total: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    let catch_all = |items: &[String], key: &str, out: &mut Vec<String>, what: &str| {
        for p in parse_prefixes(items, key).unwrap_or_default() {
            if p.len == 0 || (p.is_v4() && p.len == 96) {
                out.push(format!("{key} contains {p}: {what}"));
            }
        }
    };
    catch_all(
        &cfg.l7.trusted_proxies,
        "l7.trusted_proxies",
        &mut out,
        "every client can choose the address it is judged, rate limited and jailed by (X-Forwarded-For/Forwarded)",
    );
    for li in &cfg.listeners {
        catch_all(
            &li.proxy_protocol_from,
            "listeners.proxy_protocol_from",
            &mut out,
            "every client must send a PROXY header and can name any source address in it",
        );
    }
    if let Some(total) = mem_total {
        let worst: u128 = cfg
            .listeners
            .iter()
            .map(|l| l.max_connections as u128 * cfg.l7.body_limit as u128)
            .sum();
        if worst > u128::from(total) {
            out.push(format!(
                "listeners' max_connections x l7.body_limit = {worst} bytes of buffered bodies at worst, more than this host's {total} bytes"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const GIB: u64 = 1 << 30;

    fn cfg(text: &str) -> Config {
        // `parse` applies the bounds against this host; these tests pick their own host.
        toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn refused(text: &str, mem: Option<u64>) -> String {
        check(&cfg(text), mem).expect_err(text)
    }

    #[test]
    fn values_no_one_means_are_refused_with_the_key() {
        let host = Some(16 * GIB);
        for (text, want) in [
            ("[log]\nlevel = \"loud\"\n", "log.level `loud` (expected error, warn, info, debug, trace)"),
            ("[l7]\nbody_limit = 0\n", "l7.body_limit 0 (expected 1 to 1073741824)"),
            ("[l7]\nbody_limit = 2147483648\n", "l7.body_limit 2147483648 (expected 1 to 1073741824)"),
            ("[detector]\nfloor_pps = nan\n", "detector.floor_pps NaN (expected a finite number"),
            ("[detector]\nfloor_pps = inf\n", "detector.floor_pps inf"),
            ("[detector]\nfloor_pps = -1.0\n", "detector.floor_pps -1"),
            ("[detector]\nmin_ttl = 0\n", "detector.min_ttl 0 (expected 1 to 2592000)"),
            ("[detector]\nsample_budget = 0\n", "detector.sample_budget 0"),
            (
                "[l7]\nratelimit_memory = 9000000000000000000\n",
                "l7.ratelimit_memory 9000000000000000000 bytes is over the 68719476736-byte maximum",
            ),
            (
                "[l7]\nratelimit_memory = 17179869184\n",
                "l7.ratelimit_memory 17179869184 bytes is over half of this host's memory (17179869184 bytes",
            ),
            (
                "[[listeners]]\naddr = \"127.0.0.1:80\"\n[[listeners]]\naddr = \"127.0.0.1:80\"\n",
                "listeners: 127.0.0.1:80 is listed twice",
            ),
            (
                "[[listeners]]\naddr = \"127.0.0.1:80\"\nheader_timeout_ms = 0\n",
                "listeners[127.0.0.1:80].header_timeout_ms 0 (expected 1 to 3600000)",
            ),
            (
                "[[listeners]]\naddr = \"127.0.0.1:80\"\nidle_timeout_ms = 86400000\n",
                "listeners[127.0.0.1:80].idle_timeout_ms 86400000",
            ),
            (
                "[[listeners]]\naddr = \"127.0.0.1:80\"\nmax_connections = 0\n",
                "listeners[127.0.0.1:80].max_connections 0",
            ),
            (
                "[[listeners]]\naddr = \"127.0.0.1:80\"\nmax_connections = 10\nmax_connections_per_ip = 11\n",
                "listeners[127.0.0.1:80].max_connections_per_ip 11 (expected 1 to 10)",
            ),
            (
                "[[listeners]]\naddr = \"127.0.0.1:80\"\n[metrics]\naddr = \"127.0.0.1:80\"\n",
                "metrics.addr 127.0.0.1:80 is also a listener",
            ),
            ("[metrics]\nheader_timeout_ms = 0\n", "metrics.header_timeout_ms 0"),
        ] {
            let e = refused(text, host);
            assert!(e.starts_with(want), "{text}: {e}");
        }
        // Without /proc/meminfo only the fixed maximum applies.
        assert!(check(&cfg("[l7]\nratelimit_memory = 17179869184\n"), None).is_ok());
        // Defaults, and the level in any case, pass.
        assert!(check(&cfg(""), host).is_ok());
        assert!(check(&cfg("[log]\nlevel = \"DEBUG\"\n"), host).is_ok());
    }

    #[test]
    fn catch_all_trust_is_accepted_with_a_warning() {
        let c = cfg(
            "[l7]\ntrusted_proxies = [\"0.0.0.0/0\", \"::/0\", \"10.0.0.0/8\"]\n[[listeners]]\naddr = \"127.0.0.1:80\"\nproxy_protocol_from = [\"0.0.0.0/0\"]\n",
        );
        assert!(check(&c, Some(16 * GIB)).is_ok());
        let w = warnings(&c, Some(16 * GIB));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("l7.trusted_proxies contains 0.0.0.0/0: every client can choose"));
        assert!(w[1].starts_with("l7.trusted_proxies contains ::/0: "));
        assert!(w[2].starts_with(
            "listeners.proxy_protocol_from contains 0.0.0.0/0: every client must send"
        ));
        assert!(warnings(&cfg(""), Some(16 * GIB)).is_empty());
    }

    #[test]
    fn buffered_bodies_beyond_the_host_are_a_warning() {
        let c = cfg("[l7]\nbody_limit = 1048576\n[[listeners]]\naddr = \"127.0.0.1:80\"\nmax_connections = 100000\n");
        let w = warnings(&c, Some(16 * GIB));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("104857600000 bytes of buffered bodies"),
            "{w:?}"
        );
    }

    #[test]
    fn parse_applies_the_bounds() {
        let e = super::super::config::parse("[l7]\nbody_limit = 0\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "t.toml: l7.body_limit 0 (expected 1 to 1073741824)");
    }
}
