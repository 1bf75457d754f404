//! `rampart run`: one process that protects a host end to end. A data-plane thread owns XDP
//! (attach, rule tables, detector, jails); a tokio runtime serves the L7 reverse proxy on the
//! configured listeners (engine in front, origin pools or a Worker runtime behind), Prometheus
//! `/metrics`, and the control socket. SIGHUP (or `rampart ctl rules reload`) reloads the
//! configuration and rules: anything invalid keeps the running state and says why. SIGINT and
//! SIGTERM stop accepting, let requests in flight finish, and detach.

pub mod config;
pub mod kernel_side;
pub mod metrics;
mod proxy_metrics;
mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use config::{Config, ConfigError};
pub use kernel_side::{KernelHandle, KernelState, KernelThread};
pub use state::Daemon;

/// Where `rampart run` listens for control requests by default.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/rampart/rampart.sock";

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rules(#[from] rampart_rules::RuleError),
    #[error("data plane: {0}")]
    Kernel(#[from] crate::kernel::KernelError),
    #[error(transparent)]
    Engine(#[from] crate::l7::EngineError),
    #[error("proxy: {0}")]
    Proxy(#[from] crate::proxy::ProxyError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// Runs the daemon until SIGINT or SIGTERM.
///
/// # Errors
/// Start-up failures: configuration, rules, data plane, listeners.
pub fn run(config_path: &Path) -> Result<(), DaemonError> {
    let cfg = config::load(config_path)?;
    state::init_logging(&cfg.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .thread_name("rampart-io")
        .build()
        .map_err(io("starting the runtime"))?;
    let (daemon, kernel) = Daemon::start(config_path.to_path_buf(), cfg)?;
    let result = rt.block_on(serve(daemon.clone()));
    daemon.stop_control();
    if let Some(k) = kernel {
        k.stop();
    }
    log::info!("stopped");
    result
}

async fn serve(daemon: Arc<Daemon>) -> Result<(), DaemonError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    if let Some(p) = &daemon.proxy {
        p.spawn_health_checks(stopped());
    }
    let mut tasks = Vec::new();
    for l in &daemon.config().listeners {
        let listener = tokio::net::TcpListener::bind(l.addr)
            .await
            .map_err(io(format!("listening on {}", l.addr)))?;
        log::info!("proxy listening on {}", l.addr);
        tasks.push(tokio::spawn(daemon.clone().listen(
            listener,
            l.clone(),
            stopped(),
        )));
    }
    if let Some(addr) = daemon.config().metrics.addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(io(format!("metrics on {addr}")))?;
        log::info!("metrics on http://{addr}/metrics");
        tasks.push(tokio::spawn(
            daemon.clone().serve_metrics(listener, stopped()),
        ));
    }
    let mut hup = signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    log::info!("running; SIGHUP reloads, SIGINT/SIGTERM stop");
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let d = daemon.clone();
                match tokio::task::spawn_blocking(move || d.reload()).await {
                    Ok(Ok(msg)) => log::info!("reloaded: {}", msg.trim_end()),
                    Ok(Err(why)) => log::error!("reload refused, still running the previous configuration: {why}"),
                    Err(e) => log::error!("reload failed: {e}"),
                }
            }
            _ = int.recv() => break,
            _ = term.recv() => break,
        }
    }
    log::info!("stopping: no new connections, waiting for requests in flight");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    Ok(())
}

fn signal(
    kind: tokio::signal::unix::SignalKind,
) -> Result<tokio::signal::unix::Signal, DaemonError> {
    tokio::signal::unix::signal(kind).map_err(io("installing a signal handler"))
}

/// The rule-file path and config folder of a configuration file.
pub fn config_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}
