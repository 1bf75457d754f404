//! `rampart.toml`: what `rampart run` protects and how. Every section has defaults, unknown keys
//! are refused, and [`load`] checks the whole file before anything uses it, so a bad file on
//! reload leaves the running configuration in place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::l7::{ClientIpConfig, EncodedBody, EngineConfig, ForwardedHeader, OverLimit};
use crate::proxy::{ProxyConfig, ServeOptions};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Parse { path: PathBuf, why: String },
    #[error("{path}: {why}")]
    Invalid { path: PathBuf, why: String },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub dataplane: DataplaneConfig,
    #[serde(default)]
    pub detector: DetectorSection,
    #[serde(default)]
    pub l7: L7Section,
    /// OWASP CRS (SecLang rule files) after the site's rules; off by default.
    #[serde(default)]
    pub crs: super::crs::CrsSection,
    /// HTTP listeners of the reverse proxy.
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    #[serde(default)]
    pub proxy: ProxyConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneConfig {
    /// Interfaces to attach XDP to; empty runs the L7 side only.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// `auto` (native, else generic), `native` or `generic`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Where the maps are pinned (state survives a restart).
    #[serde(default = "default_pin_dir")]
    pub pin_dir: PathBuf,
    /// The rule file for both layers (XDP and L7); relative paths are from the config's folder.
    #[serde(default)]
    pub rules: Option<PathBuf>,
}

fn default_mode() -> String {
    "auto".into()
}

fn default_pin_dir() -> PathBuf {
    PathBuf::from("/sys/fs/bpf/rampart")
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            interfaces: Vec::new(),
            mode: default_mode(),
            pin_dir: default_pin_dir(),
            rules: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSection {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Packets per second a destination must exceed before it can be an attack victim.
    #[serde(default = "default_floor")]
    pub floor_pps: f64,
    /// Seconds a generated rule lives after its last sampled match, at least.
    #[serde(default = "default_min_ttl")]
    pub min_ttl: u64,
    /// Samples per second the detector is sized for.
    #[serde(default = "default_budget")]
    pub sample_budget: u64,
}

fn yes() -> bool {
    true
}
fn default_floor() -> f64 {
    10_000.0
}
fn default_min_ttl() -> u64 {
    60
}
fn default_budget() -> u64 {
    50_000
}

impl Default for DetectorSection {
    fn default() -> Self {
        DetectorSection {
            enabled: true,
            floor_pps: default_floor(),
            min_ttl: default_min_ttl(),
            sample_budget: default_budget(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L7Section {
    /// Run `rules/waf/default.yaml` after the site's rules.
    #[serde(default = "yes")]
    pub default_rules: bool,
    #[serde(default = "one")]
    pub paranoia: u8,
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// `block` (413) or `inspect_prefix`.
    #[serde(default = "default_over_limit")]
    pub over_limit: String,
    /// `decode` (gzip, deflate, br inspected within the body limit) or `refuse` (415).
    #[serde(default = "default_encoded_body")]
    pub encoded_body: String,
    /// Proxies whose forwarding headers are believed (CIDRs).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// `x-forwarded-for`, `forwarded` or `none`.
    #[serde(default = "default_forwarded")]
    pub forwarded_header: String,
    #[serde(default = "default_rl_memory")]
    pub ratelimit_memory: usize,
    /// Audit log file (one JSON line per request); `-` for standard output; unset: none.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
}

fn one() -> u8 {
    1
}
fn default_body_limit() -> usize {
    128 * 1024
}
fn default_over_limit() -> String {
    "block".into()
}
fn default_encoded_body() -> String {
    "decode".into()
}
fn default_forwarded() -> String {
    "x-forwarded-for".into()
}
fn default_rl_memory() -> usize {
    64 << 20
}

impl Default for L7Section {
    fn default() -> Self {
        L7Section {
            default_rules: true,
            paranoia: 1,
            body_limit: default_body_limit(),
            over_limit: default_over_limit(),
            encoded_body: default_encoded_body(),
            trusted_proxies: Vec::new(),
            forwarded_header: default_forwarded(),
            ratelimit_memory: default_rl_memory(),
            audit_log: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub addr: SocketAddr,
    /// Expect a PROXY protocol header (v1 or v2) from these peers (CIDRs). Their header names
    /// the client (see `l7::client_ip`).
    #[serde(default)]
    pub proxy_protocol_from: Vec<String>,
    /// From accept (or the end of the previous response) to a complete request head.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_ms: u64,
    /// Longest silence while a request body is read.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_ms: u64,
    /// Keep-alive: how long an idle connection stays open between requests.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// Longest a response write waits on a client that takes no bytes (slow readers).
    #[serde(default = "default_send_timeout")]
    pub send_timeout_ms: u64,
    /// Open client connections on this listener.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open client connections from one client address on this listener.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
}

fn serve_defaults() -> ServeOptions {
    ServeOptions::default()
}
fn default_header_timeout() -> u64 {
    ms(serve_defaults().header_timeout)
}
fn default_body_timeout() -> u64 {
    ms(serve_defaults().body_timeout)
}
fn default_idle_timeout() -> u64 {
    ms(serve_defaults().idle_timeout)
}
fn default_send_timeout() -> u64 {
    ms(serve_defaults().send_timeout)
}
fn default_max_connections() -> usize {
    serve_defaults().max_connections
}
fn default_max_connections_per_ip() -> usize {
    serve_defaults().max_connections_per_ip
}
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ListenerConfig {
    /// The serving options of this listener (`stats` is the caller's to share).
    pub fn serve_options(&self) -> Result<ServeOptions, String> {
        let peers = parse_prefixes(&self.proxy_protocol_from, "listeners.proxy_protocol_from")?;
        Ok(ServeOptions {
            proxy_protocol: !peers.is_empty(),
            trusted_proxy_protocol_peers: peers,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            send_timeout: Duration::from_millis(self.send_timeout_ms),
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            ..ServeOptions::default()
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Prometheus `/metrics`; unset: no endpoint.
    #[serde(default)]
    pub addr: Option<SocketAddr>,
    /// Time a scraper has to send its request head (from accept, and between requests).
    #[serde(default = "default_metrics_header_timeout")]
    pub header_timeout_ms: u64,
    /// Open scrape connections at once; more are closed at accept.
    #[serde(default = "default_metrics_connections")]
    pub max_connections: usize,
}

fn default_metrics_header_timeout() -> u64 {
    10_000
}
fn default_metrics_connections() -> usize {
    64
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            addr: None,
            header_timeout_ms: default_metrics_header_timeout(),
            max_connections: default_metrics_connections(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
}

fn default_socket() -> PathBuf {
    PathBuf::from(super::DEFAULT_CONTROL_SOCKET)
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_socket(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(default = "default_format")]
    pub format: String,
    /// `error`, `warn`, `info`, `debug`, `trace`.
    #[serde(default = "default_level")]
    pub level: String,
}

fn default_format() -> String {
    "text".into()
}
fn default_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: default_format(),
            level: default_level(),
        }
    }
}

impl Config {
    /// The engine settings this configuration asks for.
    pub fn engine_config(&self) -> Result<EngineConfig, String> {
        let l = &self.l7;
        let trusted = parse_prefixes(&l.trusted_proxies, "l7.trusted_proxies")?;
        let header = match l.forwarded_header.as_str() {
            "x-forwarded-for" => ForwardedHeader::XForwardedFor,
            "forwarded" => ForwardedHeader::Forwarded,
            "none" => ForwardedHeader::None,
            other => {
                return Err(format!(
                    "l7.forwarded_header `{other}` (expected x-forwarded-for, forwarded or none)"
                ))
            }
        };
        let over_limit = match l.over_limit.as_str() {
            "block" => OverLimit::Block,
            "inspect_prefix" => OverLimit::InspectPrefix,
            other => {
                return Err(format!(
                    "l7.over_limit `{other}` (expected block or inspect_prefix)"
                ))
            }
        };
        let encoded_body = match l.encoded_body.as_str() {
            "decode" => EncodedBody::Decode,
            "refuse" => EncodedBody::Refuse,
            other => {
                return Err(format!(
                    "l7.encoded_body `{other}` (expected decode or refuse)"
                ))
            }
        };
        if !(1..=4).contains(&l.paranoia) {
            return Err(format!("l7.paranoia {} (expected 1 to 4)", l.paranoia));
        }
        Ok(EngineConfig {
            paranoia: l.paranoia,
            body_limit: l.body_limit,
            over_limit,
            encoded_body,
            client_ip: ClientIpConfig {
                trusted_proxies: trusted,
                header,
            },
            ratelimit_memory: l.ratelimit_memory,
            ..EngineConfig::default()
        })
    }

    /// The rule file, resolved against the config file's folder.
    pub fn rules_path(&self, config_dir: &Path) -> Option<PathBuf> {
        self.dataplane.rules.as_ref().map(|p| config_dir.join(p))
    }
}

pub fn parse_prefixes(items: &[String], what: &str) -> Result<Vec<rampart_rules::Prefix>, String> {
    items
        .iter()
        .map(|s| s.parse().map_err(|e| format!("{what}: {e}")))
        .collect()
}

/// Reads and checks a configuration file.
///
/// # Errors
/// The file cannot be read, is not valid TOML for this schema, or names impossible settings.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and checks configuration text (`path` names it in errors).
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    let invalid = |why: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        why,
    };
    cfg.engine_config().map_err(invalid)?;
    cfg.crs.check().map_err(invalid)?;
    super::bounds::check(&cfg, super::host::mem_total()).map_err(invalid)?;
    if !["auto", "native", "generic"].contains(&cfg.dataplane.mode.as_str()) {
        return Err(invalid(format!(
            "dataplane.mode `{}` (expected auto, native or generic)",
            cfg.dataplane.mode
        )));
    }
    if !["text", "json"].contains(&cfg.log.format.as_str()) {
        return Err(invalid(format!(
            "log.format `{}` (expected text or json)",
            cfg.log.format
        )));
    }
    for l in &cfg.listeners {
        parse_prefixes(&l.proxy_protocol_from, "listeners.proxy_protocol_from").map_err(invalid)?;
    }
    if !cfg.listeners.is_empty() {
        cfg.proxy
            .validate()
            .map_err(|e| invalid(format!("proxy: {e}")))?;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packaged_example_config_is_valid() {
        let text = include_str!("../../../packaging/rampart.toml");
        let cfg = parse(text, Path::new("packaging/rampart.toml")).expect("example config");
        assert_eq!(cfg.listeners.len(), 1);
        assert_eq!(cfg.proxy.pools.len(), 2);
        assert_eq!(cfg.log.format, "json");
        // The example documents the defaults: written out or left out, the same values.
        let l = &cfg.listeners[0];
        let d = ServeOptions::default();
        assert_eq!(
            (
                l.header_timeout_ms,
                l.body_timeout_ms,
                l.idle_timeout_ms,
                l.send_timeout_ms
            ),
            (
                ms(d.header_timeout),
                ms(d.body_timeout),
                ms(d.idle_timeout),
                ms(d.send_timeout)
            )
        );
        assert_eq!(
            (l.max_connections, l.max_connections_per_ip),
            (d.max_connections, d.max_connections_per_ip)
        );
        let m = MetricsConfig::default();
        assert_eq!(
            (cfg.metrics.header_timeout_ms, cfg.metrics.max_connections),
            (m.header_timeout_ms, m.max_connections)
        );
    }

    #[test]
    fn listener_keys_reach_the_serving_options() {
        let text = "[[listeners]]\naddr = \"127.0.0.1:8080\"\nproxy_protocol_from = [\"10.0.0.0/8\"]\nheader_timeout_ms = 1500\nbody_timeout_ms = 2500\nidle_timeout_ms = 3500\nmax_connections = 40\nmax_connections_per_ip = 4\n[[proxy.pools]]\nname = \"app\"\norigins = [\"http://127.0.0.1:9\"]\n";
        let cfg = parse(text, Path::new("t.toml")).expect("config");
        let o = cfg.listeners[0].serve_options().unwrap();
        assert!(o.proxy_protocol);
        assert_eq!(
            o.trusted_proxy_protocol_peers,
            vec!["10.0.0.0/8".parse().unwrap()]
        );
        assert_eq!(o.header_timeout, Duration::from_millis(1500));
        assert_eq!(o.body_timeout, Duration::from_millis(2500));
        assert_eq!(o.idle_timeout, Duration::from_millis(3500));
        assert_eq!((o.max_connections, o.max_connections_per_ip), (40, 4));
    }

    #[test]
    fn bad_settings_are_refused_with_the_key() {
        let cases = [
            ("[l7]\nparanoia = 7\n", "l7.paranoia 7"),
            ("[l7]\nover_limit = \"drop\"\n", "l7.over_limit"),
            ("[dataplane]\nmode = \"turbo\"\n", "dataplane.mode"),
            ("[log]\nformat = \"xml\"\n", "log.format"),
            (
                "[l7]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
                "l7.trusted_proxies",
            ),
            ("[[listeners]]\naddr = \"127.0.0.1:80\"\n", "proxy: "),
            ("[dataplane]\nbogus = 1\n", "unknown field"),
        ];
        for (text, want) in cases {
            let e = parse(text, Path::new("t.toml"))
                .expect_err(text)
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
