//! The running daemon's shared state: configuration, engine, proxy, data-plane handle, audit
//! log, and what reload and the control socket do with them.

use std::io::{LineWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rampart_rules::RuleSet;

use super::config::{self, Config, ListenerConfig, LogConfig};
use super::kernel_side::{KernelHandle, KernelThread};
use super::preflight::{check_routes, pool_names, rule_sets};
use super::{audit_file, list_request, DaemonError};
use crate::control::ControlServer;
use crate::l7::tower::RampartLayer;
use crate::l7::{AuditEvent, AuditWriter, Engine};
use crate::proxy::{serve, Proxy, ServeStats};
use tower_layer::Layer;

type Audit = AuditWriter<Box<dyn Write + Send>>;

pub struct Daemon {
    pub config_path: PathBuf,
    config: Mutex<Config>,
    /// What was bound and built at start; reload does not change these.
    running: Running,
    pub engine: Engine,
    /// `None` when no listener is configured.
    pub proxy: Option<Proxy>,
    serve_stats: Mutex<Vec<(std::net::SocketAddr, Arc<ServeStats>)>>,
    pub kernel: Option<KernelHandle>,
    audit: Option<Audit>,
    rules: Mutex<Vec<RuleSet>>,
    control_stop: Arc<AtomicBool>,
    control_thread: Mutex<Option<JoinHandle<()>>>,
}

/// The parts of the configuration that only a restart changes, as started.
struct Running {
    listeners: Vec<ListenerConfig>,
    pools: Vec<String>,
    metrics: Option<std::net::SocketAddr>,
}

/// Logs through `tracing` (text or JSON lines); `log` records from libraries are bridged.
pub fn init_logging(cfg: &LogConfig) {
    let level: tracing::Level = cfg.level.parse().unwrap_or(tracing::Level::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    // A second init (tests, reload) keeps the first subscriber.
    let _ = if cfg.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The XDP entries of the site's rule file (the first set when the config names one).
fn operator_xdp(cfg: &Config, sets: &[RuleSet]) -> Vec<rampart_rules::xdp::RuleSpec> {
    sets.first()
        .filter(|_| cfg.dataplane.rules.is_some())
        .map(|s| s.xdp_entries.clone())
        .unwrap_or_default()
}

impl Daemon {
    /// Builds the engine, proxy and audit log from checked rule `sets`, attaches XDP, and
    /// starts answering on `control` (already bound, like every listener).
    pub fn start(
        config_path: PathBuf,
        cfg: Config,
        sets: Vec<RuleSet>,
        control: ControlServer,
    ) -> Result<(Arc<Daemon>, Option<KernelThread>), DaemonError> {
        let engine_cfg = cfg
            .engine_config()
            .map_err(|why| config::ConfigError::Invalid {
                path: config_path.clone(),
                why,
            })?;
        // Before anything starts: a CRS file that does not load stops `run` here.
        let crs =
            cfg.crs
                .load(config_dir(&config_path))
                .map_err(|why| config::ConfigError::Invalid {
                    path: config_path.clone(),
                    why,
                })?;
        let kernel = if cfg.dataplane.interfaces.is_empty() {
            log::info!("no interfaces configured: XDP not attached (L7 only)");
            None
        } else {
            let entries = operator_xdp(&cfg, &sets);
            let k = KernelThread::start(&cfg, entries)?;
            log::info!("XDP attached to {}", cfg.dataplane.interfaces.join(", "));
            Some(k)
        };
        let refs: Vec<&RuleSet> = sets.iter().collect();
        let engine = match &kernel {
            Some(k) => Engine::with_jailer(&refs, engine_cfg, Box::new(k.handle.jailer()))?,
            None => Engine::new(&refs, engine_cfg)?,
        };
        if let Some(set) = crs {
            let st = set.stats();
            log::info!(
                "crs: {} SecLang rules after the site's rules ({} on the regex fallback, {} never match here: response or persistent variables, @geoLookup/@rbl)",
                st.rules,
                st.rx_fallback,
                st.response_rules + st.persistent_rules + st.unavailable_operators
            );
            if st.ignored_directives > 0 {
                log::warn!(
                    "crs: {} directives accepted that change nothing here (body limits, audit-log settings: the [l7] section sets those)",
                    st.ignored_directives
                );
            }
            engine.set_seclang(Some(set));
        }
        let proxy = if cfg.listeners.is_empty() {
            None
        } else {
            Some(Proxy::new(&cfg.proxy)?)
        };
        let audit = match &cfg.l7.audit_log {
            None => None,
            Some(p) if p.as_os_str() == "-" => Some(AuditWriter::new(
                Box::new(std::io::stdout()) as Box<dyn Write + Send>
            )),
            Some(p) => Some(AuditWriter::new(
                Box::new(LineWriter::new(audit_file::open(p)?)) as Box<dyn Write + Send>,
            )),
        };
        let running = Running {
            listeners: cfg.listeners.clone(),
            pools: pool_names(&cfg),
            metrics: cfg.metrics.addr,
        };
        let daemon = Arc::new(Daemon {
            config_path,
            running,
            config: Mutex::new(cfg),
            engine,
            proxy,
            serve_stats: Mutex::new(Vec::new()),
            kernel: kernel.as_ref().map(|k| k.handle.clone()),
            audit,
            rules: Mutex::new(sets),
            control_stop: Arc::new(AtomicBool::new(false)),
            control_thread: Mutex::new(None),
        });
        let d = daemon.clone();
        let stop = daemon.control_stop.clone();
        let t = std::thread::Builder::new()
            .name("rampart-control".into())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    control.serve_with(|words| d.control(words));
                    std::thread::sleep(Duration::from_millis(25));
                }
            })
            .map_err(super::io("starting the control thread"))?;
        *daemon
            .control_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(t);
        Ok((daemon, kernel))
    }

    pub fn config(&self) -> Config {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The listeners as bound at start.
    pub fn listener_configs(&self) -> Vec<ListenerConfig> {
        self.running.listeners.clone()
    }

    pub fn register_listener_stats(&self, addr: std::net::SocketAddr, stats: Arc<ServeStats>) {
        self.serve_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((addr, stats));
    }

    pub fn stop_control(&self) {
        self.control_stop.store(true, Ordering::SeqCst);
        if let Some(t) = self
            .control_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = t.join();
        }
    }

    pub fn audit(&self, e: &AuditEvent) {
        if let Some(a) = &self.audit {
            if let Err(err) = a.write(e) {
                log::warn!("audit log write failed: {err}");
            }
        }
    }

    /// Re-reads the configuration and the rules; applies them only when all of it is valid.
    /// Listener, proxy-pool and engine-setting changes need a restart (said in the reply), so
    /// `route` targets are checked against the pools running now.
    pub fn reload(&self) -> Result<String, String> {
        let cfg = config::load(&self.config_path).map_err(|e| e.to_string())?;
        let sets = rule_sets(&cfg, &self.config_path).map_err(|e| e.to_string())?;
        if self.proxy.is_some() {
            check_routes(&sets, &self.running.pools).map_err(|e| {
                format!("{e}; pools change on restart, so this reload would route to nothing")
            })?;
        }
        let crs = cfg.crs.load(config_dir(&self.config_path))?;
        let refs: Vec<&RuleSet> = sets.iter().collect();
        self.engine.swap_rules(&refs).map_err(|e| e.to_string())?;
        let crs_rules = crs.as_ref().map(|s| s.stats().rules);
        self.engine.set_seclang(crs);
        let mut msg = String::new();
        if let Some(k) = &self.kernel {
            msg.push_str(&k.load_rules(operator_xdp(&cfg, &sets))?);
        }
        let l7 = sets.iter().map(|s| s.l7_rules().count()).sum::<usize>();
        msg.push_str(&format!("{l7} HTTP rules running\n"));
        if let Some(n) = crs_rules {
            msg.push_str(&format!("{n} CRS (SecLang) rules running\n"));
        }
        let old = self.config();
        let mut restart = Vec::new();
        if format!("{:?}", old.listeners) != format!("{:?}", cfg.listeners) {
            restart.push("listeners");
        }
        if format!("{:?}", old.proxy) != format!("{:?}", cfg.proxy) {
            restart.push("proxy");
        }
        if format!("{:?}", old.l7) != format!("{:?}", cfg.l7) {
            restart.push("l7 settings");
        }
        if format!("{:?}", old.dataplane.interfaces) != format!("{:?}", cfg.dataplane.interfaces) {
            restart.push("interfaces");
        }
        if !restart.is_empty() {
            msg.push_str(&format!(
                "changed {}: takes effect on restart\n",
                restart.join(", ")
            ));
        }
        for w in super::bounds::warnings(&cfg, super::host::mem_total()) {
            log::warn!("{w}");
            msg.push_str(&format!("warning: {w}\n"));
        }
        *self.rules.lock().unwrap_or_else(|e| e.into_inner()) = sets;
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = cfg;
        Ok(msg)
    }

    /// A control-socket request.
    pub fn control(&self, words: &[&str]) -> Result<String, String> {
        match words {
            ["status"] => Ok(self.status()),
            ["rules", "reload"] => self.reload(),
            ["rules", "list"] => Ok(self.rules_list()),
            // Checked here, so a bad edit is refused the same with or without XDP.
            ["deny" | "allow", ..] => {
                let req = list_request::parse(words)?;
                match &self.kernel {
                    Some(k) => k.list(req),
                    None => Err("XDP is not attached in this configuration".into()),
                }
            }
            [first, ..] if ["generated", "counters"].contains(first) => {
                match &self.kernel {
                    Some(k) => k.control(words.iter().map(|s| s.to_string()).collect()),
                    None => Err("XDP is not attached in this configuration".into()),
                }
            }
            _ => Err(format!(
                "unknown request `{}` (status, rules list|reload, deny add|remove|list, allow add|remove|list, generated list|explain|pin|unpin|delete|promote|pcap, counters)",
                words.join(" ")
            )),
        }
    }

    fn rules_list(&self) -> String {
        let rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for set in rules.iter() {
            for r in &set.rules {
                out.push_str(&format!(
                    "{:>7}  {:<6} {:<9} {:<24} {}\n",
                    r.id,
                    match r.target {
                        rampart_rules::Target::L7 => "http",
                        rampart_rules::Target::Xdp { .. } => "xdp",
                    },
                    crate::rulesets::action_name(&r.action),
                    r.reference.as_deref().unwrap_or("-"),
                    set.file
                ));
            }
        }
        out
    }

    pub fn status(&self) -> String {
        let s = self.engine.stats();
        let cfg = self.config();
        let mut out = format!(
            "config {}\nrules {}\nhttp: {} requests, {} blocked, {} rate limited, {} routed\n",
            self.config_path.display(),
            s.rules_file,
            s.requests,
            s.blocked,
            s.rate_limited,
            s.routed
        );
        // What is bound, not what the file now says (listeners change on restart).
        for l in &self.running.listeners {
            let gone = !cfg.listeners.iter().any(|c| c.addr == l.addr);
            out.push_str(&format!(
                "listener {}{}\n",
                l.addr,
                if gone {
                    " (removed from the configuration; closes on restart)"
                } else {
                    ""
                }
            ));
        }
        for c in &cfg.listeners {
            if !self.running.listeners.iter().any(|l| l.addr == c.addr) {
                out.push_str(&format!(
                    "listener {} configured, not listening until restart\n",
                    c.addr
                ));
            }
        }
        if let Some(m) = self.running.metrics {
            out.push_str(&format!("metrics {m}\n"));
        }
        let pools = self
            .proxy
            .as_ref()
            .map(|p| p.stats().pools)
            .unwrap_or_default();
        for p in pools {
            for o in &p.origins {
                out.push_str(&format!(
                    "pool {} origin {} {}\n",
                    p.name,
                    o.origin,
                    if o.healthy { "up" } else { "down" }
                ));
            }
        }
        match self.kernel.as_ref().and_then(|k| k.state()) {
            Some(k) => {
                for a in &k.attached {
                    out.push_str(&format!("xdp {} ({})\n", a.iface, a.mode));
                }
                if let Some(c) = &k.counters {
                    out.push_str(&format!(
                        "xdp: {} packets, {} dropped; {} deny entries; {} jailed\n",
                        c.packets(),
                        c.dropped(),
                        k.deny_entries,
                        k.jails
                    ));
                }
                out.push_str(&format!("generated rules live: {}\n", k.generated.len()));
            }
            None => out.push_str("xdp: not attached\n"),
        }
        out
    }

    /// Serves one listener: the engine in front of the proxy, until `shutdown`. `stats` is
    /// shared by every serving thread of this listener.
    pub async fn listen(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        l: ListenerConfig,
        stats: Arc<ServeStats>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let Some(proxy) = self.proxy.clone() else {
            return;
        };
        let mut layer = RampartLayer::new(self.engine.clone());
        if self.audit.is_some() {
            let d = self.clone();
            layer = layer.on_audit(move |e| d.audit(&e));
        }
        let svc = layer.layer(proxy);
        // Checked when the configuration was loaded.
        let Ok(mut opts) = l.serve_options() else {
            log::error!("listener {}: invalid options", l.addr);
            return;
        };
        opts.shutdown_grace = Duration::from_secs(10);
        opts.stats = stats;
        serve(listener, svc, opts, shutdown).await;
    }

    /// Serves `/metrics` (Prometheus text) and `/healthz` until `shutdown`. A scraper has
    /// `metrics.header_timeout_ms` for each request head (from accept, and between requests
    /// on a kept-alive connection); past `metrics.max_connections` open, new ones are closed.
    pub async fn serve_metrics(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        use http_body_util::Full;
        let m = self.config().metrics;
        let header_timeout = Duration::from_millis(m.header_timeout_ms);
        let slots = Arc::new(tokio::sync::Semaphore::new(m.max_connections));
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                () = &mut shutdown => return,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        log::warn!("metrics: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let d = self.clone();
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let d = d.clone();
                    async move {
                        let (status, body) = match req.uri().path() {
                            "/metrics" => {
                                let text = tokio::task::spawn_blocking(move || d.metrics())
                                    .await
                                    .unwrap_or_default();
                                (200, text)
                            }
                            "/healthz" => (200, "ok\n".to_string()),
                            _ => (404, "not found: try /metrics\n".to_string()),
                        };
                        let resp = http::Response::builder()
                            .status(status)
                            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                            .body(Full::new(bytes::Bytes::from(body)));
                        resp.map_err(|e| std::io::Error::other(e.to_string()))
                    }
                });
            tokio::spawn(async move {
                let _slot = slot;
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(io, svc)
                    .await;
            });
        }
    }

    /// The Prometheus exposition.
    pub fn metrics(&self) -> String {
        let mut e = super::metrics::Exposition::default();
        if let Some(k) = self.kernel.as_ref().and_then(|k| k.state()) {
            super::metrics::kernel(&mut e, &k);
        }
        super::metrics::engine(&mut e, &self.engine.stats());
        if let Some(p) = &self.proxy {
            super::metrics::proxy(&mut e, &p.stats());
        }
        let listeners: Vec<(String, crate::proxy::ServeCounts)> = self
            .serve_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(a, s)| (a.to_string(), s.snapshot()))
            .collect();
        type Pick = fn(&crate::proxy::ServeCounts) -> u64;
        let families: [(&str, &str, &str, Pick); 3] = [
            (
                "rampart_listener_connections_total",
                "counter",
                "Connections accepted per listener.",
                |c| c.accepted,
            ),
            (
                "rampart_listener_connections_active",
                "gauge",
                "Client connections open per listener.",
                |c| c.active,
            ),
            (
                "rampart_listener_proxy_header_errors_total",
                "counter",
                "Connections closed for a missing, malformed or late PROXY header.",
                |c| c.proxy_header_errors,
            ),
        ];
        for (name, kind, help, pick) in families {
            e.family(name, kind, help);
            for (a, c) in &listeners {
                e.sample(name, &[("listener", a)], pick(c) as f64);
            }
        }
        super::metrics::process(&mut e);
        e.finish()
    }
}

/// The folder relative paths in the configuration resolve against.
fn config_dir(config_path: &std::path::Path) -> &std::path::Path {
    config_path.parent().unwrap_or(std::path::Path::new("."))
}
