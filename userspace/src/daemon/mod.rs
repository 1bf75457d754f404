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
    Kernel(#[from] kernel_side::StartError),
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
    // The main runtime runs signals, reload, metrics and health checks; requests are served
    // by one single-threaded runtime per core (see `listen_threads`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(1)
        .thread_name("rampart-main")
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
    let servers = listen_threads(&daemon, &stopped)?;
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
    tokio::task::spawn_blocking(move || {
        for s in servers {
            let _ = s.join();
        }
    })
    .await
    .ok();
    Ok(())
}

/// A listening socket with SO_REUSEPORT, so each serving thread has its own and the kernel
/// spreads connections over them. Needs the thread's runtime.
fn reuseport_listener(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// One thread per core, each with a single-threaded runtime serving every listener: a request
/// is read, checked, forwarded and answered without crossing threads (as nginx's workers are).
/// Returns once every thread has bound its sockets, or the first bind error.
fn listen_threads<F, Fut>(
    daemon: &Arc<Daemon>,
    stopped: &F,
) -> Result<Vec<std::thread::JoinHandle<()>>, DaemonError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listeners = daemon.config().listeners;
    if listeners.is_empty() {
        return Ok(Vec::new());
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut threads = Vec::new();
    for i in 0..workers {
        let (d, cfgs, ready) = (daemon.clone(), listeners.clone(), ready_tx.clone());
        let stops: Vec<Fut> = cfgs.iter().map(|_| stopped()).collect();
        let t = std::thread::Builder::new()
            .name(format!("rampart-io-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(io("starting a serving runtime")(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut bound = Vec::new();
                    for c in &cfgs {
                        match reuseport_listener(c.addr) {
                            Ok(l) => bound.push(l),
                            Err(e) => {
                                let _ = ready.send(Err(io(format!("listening on {}", c.addr))(e)));
                                return;
                            }
                        }
                    }
                    let _ = ready.send(Ok(()));
                    let serving = bound
                        .into_iter()
                        .zip(cfgs)
                        .zip(stops)
                        .map(|((l, c), stop)| d.clone().listen(l, c, stop));
                    futures_join_all(serving).await;
                });
            })
            .map_err(io("starting a serving thread"))?;
        threads.push(t);
    }
    drop(ready_tx);
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => break,
        }
    }
    for l in &listeners {
        log::info!("proxy listening on {} ({workers} serving threads)", l.addr);
    }
    Ok(threads)
}

/// Runs the futures concurrently on the current (single-threaded) runtime until all end.
async fn futures_join_all<F: std::future::Future<Output = ()> + 'static>(
    futs: impl Iterator<Item = F>,
) {
    let local = tokio::task::LocalSet::new();
    for f in futs {
        local.spawn_local(f);
    }
    local.await;
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
