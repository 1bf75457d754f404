//! Everything `rampart run` checks before it binds or attaches anything, shared with
//! `rampart run --check` so that a configuration the check passes is one the daemon starts:
//! the rule file (readable, valid, accepted by the engine), `route` targets naming real pools,
//! the audit log, the control socket's path, and (check only, as a running daemon holds them)
//! whether the listeners' and metrics' ports are free.

use std::net::SocketAddr;
use std::path::Path;

use rampart_rules::{RuleAction, RuleSet};

use super::config::Config;
use super::{audit_file, bounds, host, DaemonError};
use crate::control::{inspect_socket_path, SocketPath};
use crate::l7::Engine;

/// What the checks found.
pub struct Checked {
    /// The rule sets the engine runs, in order.
    pub sets: Vec<RuleSet>,
    /// Accepted, but the operator should hear about them.
    pub warnings: Vec<String>,
}

/// The rule sets the engine runs: the site's file, then the default WAF rules if enabled.
pub fn rule_sets(cfg: &Config, path: &Path) -> Result<Vec<RuleSet>, rampart_rules::RuleError> {
    let mut sets = Vec::new();
    if let Some(p) = cfg.rules_path(&super::config_dir(path)) {
        sets.push(rampart_rules::load_file(&p)?);
    }
    if cfg.l7.default_rules {
        sets.push(rampart_rules::default_waf());
    }
    Ok(sets)
}

/// Every enabled `route` rule names one of `pools` (a route to nothing is a 502 at runtime).
pub fn check_routes(sets: &[RuleSet], pools: &[String]) -> Result<(), DaemonError> {
    for set in sets {
        for r in set.l7_rules() {
            if let RuleAction::Route { target } = &r.action {
                if !pools.contains(target) {
                    return Err(DaemonError::RouteTarget {
                        file: set.file.clone(),
                        rule: r.id,
                        target: target.clone(),
                        pools: pools.join(", "),
                    });
                }
            }
        }
    }
    Ok(())
}

pub fn pool_names(cfg: &Config) -> Vec<String> {
    cfg.proxy.pools.iter().map(|p| p.name.clone()).collect()
}

/// The checks `rampart run` makes before binding anything.
///
/// # Errors
/// The first check that failed.
pub fn check(cfg: &Config, config_path: &Path) -> Result<Checked, DaemonError> {
    let sets = rule_sets(cfg, config_path)?;
    if !cfg.listeners.is_empty() {
        check_routes(&sets, &pool_names(cfg))?;
    }
    let mut warnings = bounds::warnings(cfg, host::mem_total());
    match &cfg.l7.audit_log {
        Some(p) if p.as_os_str() != "-" => warnings.extend(audit_file::check(p)?),
        _ => {}
    }
    inspect_socket_path(&cfg.control.socket)?;
    Ok(Checked { sets, warnings })
}

/// `rampart run --check`: [`check`], then what only starting would otherwise show: the engine
/// accepts the rules, and the ports are free (unless this configuration is already running).
/// Returns the summary line and the warnings.
///
/// # Errors
/// The first check that failed.
pub fn check_only(config_path: &Path) -> Result<(String, Vec<String>), DaemonError> {
    let cfg = super::config::load(config_path)?;
    let checked = check(&cfg, config_path)?;
    let engine_cfg = cfg
        .engine_config()
        .map_err(|why| super::ConfigError::Invalid {
            path: config_path.to_path_buf(),
            why,
        })?;
    let refs: Vec<&RuleSet> = checked.sets.iter().collect();
    drop(Engine::new(&refs, engine_cfg)?);
    let dir = config_path.parent().unwrap_or(Path::new("."));
    let crs = cfg
        .crs
        .load(dir)
        .map_err(|why| super::ConfigError::Invalid {
            path: config_path.to_path_buf(),
            why,
        })?;
    let http_rules: usize = checked.sets.iter().map(|s| s.l7_rules().count()).sum();
    let running = inspect_socket_path(&cfg.control.socket)? == SocketPath::Live;
    let mut warnings = checked.warnings;
    if running {
        warnings.push(format!(
            "a daemon answers on {}: ports not probed; `rampart ctl rules reload` applies this file (listener, pool and l7 changes need a restart)",
            cfg.control.socket.display()
        ));
    } else {
        let ports = cfg.listeners.iter().map(|l| ("listener", l.addr));
        for (what, addr) in ports.chain(cfg.metrics.addr.map(|a| ("metrics", a))) {
            probe(addr).map_err(super::io(format!("{what} {addr}")))?;
        }
    }
    let crs_rules = crs
        .map(|s| format!(", {} CRS rules", s.stats().rules))
        .unwrap_or_default();
    let summary = format!(
        "{}: ok ({} listeners, {} interfaces, {} HTTP rules{crs_rules})",
        config_path.display(),
        cfg.listeners.len(),
        cfg.dataplane.interfaces.len(),
        http_rules
    );
    Ok((summary, warnings))
}

/// Binds `addr` alone and lets it go: fails when anything listens there, even with
/// SO_REUSEPORT (which would otherwise let us join it and split its traffic).
pub fn probe(addr: SocketAddr) -> std::io::Result<()> {
    std::net::TcpListener::bind(addr).map(drop)
}
