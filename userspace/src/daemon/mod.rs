//! `rampart run`: one process that protects a host end to end. A data-plane thread owns XDP
//! (attach, rule tables, detector, jails); a tokio runtime serves the L7 reverse proxy on the
//! configured listeners (engine in front, origin pools or a Worker runtime behind), Prometheus
//! `/metrics`, and the control socket. SIGHUP (or `rampart ctl rules reload`) reloads the
//! configuration and rules: anything invalid keeps the running state and says why. SIGINT and
//! SIGTERM stop accepting, let requests in flight finish, and detach.

mod audit_file;
pub mod bounds;
pub mod config;
pub mod crs;
mod host;
pub mod kernel_side;
pub mod list_request;
mod lock;
pub mod metrics;
pub mod preflight;
mod proxy_metrics;
mod state;

pub use state::init_logging;

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use config::{Config, ConfigError};
pub use kernel_side::{KernelHandle, KernelState, KernelThread};
pub use lock::LockError;
pub use state::Daemon;

use crate::control::ControlServer;
use crate::proxy::ServeStats;

/// Where `rampart run` listens for control requests by default.
pub const DEFAULT_CONTROL_SOCKET: &str = crate::control::DEFAULT_SOCKET;

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
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Audit(#[from] audit_file::AuditFileError),
    #[error(
        "{file}: rule {rule} routes to `{target}`, which names no origin pool (pools: {pools})"
    )]
    RouteTarget {
        file: String,
        rule: u32,
        target: String,
        pools: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// Runs the daemon until SIGINT or SIGTERM.
///
/// Order: configuration and every check of `run --check`; the instance lock; every socket
/// (listeners, metrics, control) bound; only then XDP, and serving. A failure at any step
/// leaves nothing behind that this process did not create.
///
/// # Errors
/// Start-up failures: configuration, rules, data plane, listeners.
pub fn run(config_path: &Path) -> Result<(), DaemonError> {
    let cfg = config::load(config_path)?;
    state::init_logging(&cfg.log);
    raise_nofile(&cfg);
    // Static checks of the socket path first, so a bad path is named as such, not as a lock.
    crate::control::inspect_socket_path(&cfg.control.socket)?;
    let lock = lock::InstanceLock::acquire(&cfg.control.socket)?;
    log::info!("holding {}", lock.path().display());
    let checked = preflight::check(&cfg, config_path)?;
    for w in &checked.warnings {
        log::warn!("{w}");
    }
    // The main runtime runs signals, reload, metrics and health checks; requests are served
    // by one single-threaded runtime per core (see `listen_threads`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(1)
        .thread_name("rampart-main")
        .build()
        .map_err(io("starting the runtime"))?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bound = Bound::all(&cfg, workers)?;
    let (daemon, kernel) =
        Daemon::start(config_path.to_path_buf(), cfg, checked.sets, bound.control)?;
    let result = rt.block_on(serve(daemon.clone(), bound.listeners, bound.metrics));
    daemon.stop_control();
    if let Some(k) = kernel {
        k.stop();
    }
    drop(lock);
    log::info!("stopped");
    result
}

/// `rampart run --check`: the summary line and the warnings.
///
/// # Errors
/// The first check that failed.
pub fn check(config_path: &Path) -> Result<(String, Vec<String>), DaemonError> {
    preflight::check_only(config_path)
}

fn raise_nofile(cfg: &Config) {
    match host::raise_nofile() {
        Ok(l) => {
            if l.after > l.before {
                log::info!("open-file limit raised from {} to {}", l.before, l.after);
            } else {
                log::info!("open-file limit {}", l.after);
            }
            // Each client connection may hold an origin connection too.
            let want: u64 = cfg
                .listeners
                .iter()
                .map(|l| 2 * l.max_connections as u64)
                .sum::<u64>()
                + 256;
            if cfg.listeners.is_empty() || l.after >= want {
                return;
            }
            log::warn!(
                "open-file limit {} is below the {want} descriptors the listeners' max_connections may need (raise LimitNOFILE)",
                l.after
            );
        }
        Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// Every socket the daemon serves on, bound before any is served.
struct Bound {
    control: ControlServer,
    /// Per serving thread, one socket per configured listener (in order).
    listeners: Vec<Vec<std::net::TcpListener>>,
    metrics: Option<std::net::TcpListener>,
}

impl Bound {
    fn all(cfg: &Config, workers: usize) -> Result<Bound, DaemonError> {
        let mut listeners: Vec<Vec<std::net::TcpListener>> =
            (0..workers).map(|_| Vec::new()).collect();
        for l in &cfg.listeners {
            // SO_REUSEPORT would let us join a socket someone else (another rampart with
            // another config) listens on and split its traffic: be the first, or fail.
            preflight::probe(l.addr).map_err(io(format!("listening on {}", l.addr)))?;
            for per_thread in &mut listeners {
                per_thread.push(
                    reuseport_listener(l.addr).map_err(io(format!("listening on {}", l.addr)))?,
                );
            }
        }
        let metrics = match cfg.metrics.addr {
            None => None,
            Some(addr) => {
                let l =
                    std::net::TcpListener::bind(addr).map_err(io(format!("metrics on {addr}")))?;
                l.set_nonblocking(true)
                    .map_err(io(format!("metrics on {addr}")))?;
                Some(l)
            }
        };
        let control = ControlServer::bind(&cfg.control.socket)?;
        Ok(Bound {
            control,
            listeners,
            metrics,
        })
    }
}

async fn serve(
    daemon: Arc<Daemon>,
    listeners: Vec<Vec<std::net::TcpListener>>,
    metrics: Option<std::net::TcpListener>,
) -> Result<(), DaemonError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tasks = Vec::new();
    if let Some(l) = metrics {
        let addr = l.local_addr().map_err(io("metrics"))?;
        let listener =
            tokio::net::TcpListener::from_std(l).map_err(io(format!("metrics on {addr}")))?;
        log::info!("metrics on http://{addr}/metrics");
        tasks.push(tokio::spawn(
            daemon.clone().serve_metrics(listener, stopped()),
        ));
    }
    let servers = listen_threads(&daemon, listeners, &stopped)?;
    if let Some(p) = &daemon.proxy {
        p.spawn_health_checks(stopped());
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
/// spreads connections over them. Made without a runtime; each thread registers its own.
fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    // SAFETY: `into_raw_fd` hands over a valid, bound TCP socket we now own.
    let l = unsafe { std::net::TcpListener::from_raw_fd(socket.into_raw_fd()) };
    // SAFETY: a valid socket descriptor.
    if unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&l), 4096) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    l.set_nonblocking(true)?;
    Ok(l)
}

/// One thread per core, each with a single-threaded runtime serving every listener: a request
/// is read, checked, forwarded and answered without crossing threads (as nginx's workers are).
/// Every thread registers its sockets, then waits until all have before any serves; returns
/// the threads, or the first error (the others then exit without serving).
fn listen_threads<F, Fut>(
    daemon: &Arc<Daemon>,
    per_thread: Vec<Vec<std::net::TcpListener>>,
    stopped: &F,
) -> Result<Vec<std::thread::JoinHandle<()>>, DaemonError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listeners = daemon.listener_configs();
    if listeners.is_empty() {
        return Ok(Vec::new());
    }
    // One counter set per listener, shared by its threads (one series per listener).
    let stats: Vec<Arc<ServeStats>> = listeners.iter().map(|_| Arc::default()).collect();
    for (l, s) in listeners.iter().zip(&stats) {
        daemon.register_listener_stats(l.addr, s.clone());
    }
    let workers = per_thread.len();
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut threads = Vec::new();
    let mut gos = Vec::new();
    for (i, sockets) in per_thread.into_iter().enumerate() {
        let (d, cfgs, stats, ready) = (
            daemon.clone(),
            listeners.clone(),
            stats.clone(),
            ready_tx.clone(),
        );
        let stops: Vec<Fut> = cfgs.iter().map(|_| stopped()).collect();
        let (go_tx, go_rx) = mpsc::channel::<bool>();
        gos.push(go_tx);
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
                    for (s, c) in sockets.into_iter().zip(&cfgs) {
                        match tokio::net::TcpListener::from_std(s) {
                            Ok(l) => bound.push(l),
                            Err(e) => {
                                let _ = ready.send(Err(io(format!("listening on {}", c.addr))(e)));
                                return;
                            }
                        }
                    }
                    let _ = ready.send(Ok(()));
                    if go_rx.recv() != Ok(true) {
                        return;
                    }
                    let serving = bound
                        .into_iter()
                        .zip(cfgs)
                        .zip(stats)
                        .zip(stops)
                        .map(|(((l, c), s), stop)| d.clone().listen(l, c, s, stop));
                    futures_join_all(serving).await;
                });
            })
            .map_err(io("starting a serving thread"))?;
        threads.push(t);
    }
    drop(ready_tx);
    let mut result = Ok(());
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                result = Err(e);
                break;
            }
            Err(_) => break,
        }
    }
    let go = result.is_ok();
    for g in gos {
        let _ = g.send(go);
    }
    result?;
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
