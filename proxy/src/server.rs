//! The listener: HTTP/1.1 and h2c (prior knowledge) on one port, an optional PROXY protocol
//! header from trusted peers, a [`ConnInfo`] on every request, and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rampart_rules::Prefix;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower_service::Service;

use super::conn_service::WithConn;
use super::limits::{Slot, Table};
use super::timed_io::Timed;
use super::timeouts::{supervise, Clock, Ended, Expired, Limits};
use crate::proxy_protocol::{self, HeaderError, Parsed};
use crate::BoxError;
use rampart_l7::{ConnInfo, ProxyHeader};

/// Listener settings.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Expect a PROXY protocol (v1 or v2) header from trusted peers. Other peers speak HTTP
    /// straight away; a trusted peer's missing or bad header closes its connection.
    pub proxy_protocol: bool,
    pub trusted_proxy_protocol_peers: Vec<Prefix>,
    /// Time a trusted peer has to send its PROXY header.
    pub proxy_header_timeout: Duration,
    /// After shutdown, how long in-flight requests may take before connections are closed.
    pub shutdown_grace: Duration,
    /// Time to a complete request head: from accept for the first request (a PROXY header
    /// counts against it too), from the first byte for later ones (HTTP/2: from the first
    /// HEADERS frame). Bounds clients that send nothing and slow-loris heads. Zero: off.
    pub header_timeout: Duration,
    /// Longest silence from a client while we wait on it for request body bytes; the timer
    /// does not run while the request waits on the origin or the origin is slow to take the
    /// body (HTTP/1). Zero: off.
    pub body_timeout: Duration,
    /// Keep-alive: how long a connection may wait, after a response, for the next request to
    /// start. Zero: off.
    pub idle_timeout: Duration,
    /// Open client connections in all. At the cap a new connection sheds the one that has
    /// waited longest for a request head, or is closed at once if every connection has a
    /// request in flight. Zero: no cap.
    pub max_connections: usize,
    /// Open client connections from one client address, shed or refused as for
    /// `max_connections` but among that address's connections only. A trusted PROXY peer is
    /// not counted as one client: each of its connections counts under the client address its
    /// header names (none for LOCAL/UNKNOWN headers). Zero: no cap.
    pub max_connections_per_ip: usize,
    /// Longest a response write may wait on a client that takes no bytes (slow readers).
    /// Zero: off.
    pub send_timeout: Duration,
    /// Shared with the caller, who reads it for metrics.
    pub stats: Arc<ServeStats>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            proxy_protocol: false,
            trusted_proxy_protocol_peers: Vec::new(),
            proxy_header_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            send_timeout: Duration::from_secs(60),
            stats: Arc::default(),
        }
    }
}

/// Listener counters.
#[derive(Debug, Default)]
pub struct ServeStats {
    accepted: AtomicU64,
    active: AtomicU64,
    proxy_header_errors: AtomicU64,
    /// Connections still open at the end of the shutdown grace, closed by force.
    forced_closed: AtomicU64,
    pub(super) idle: AtomicU64,
    pub(super) header_timeouts: AtomicU64,
    pub(super) body_timeouts: AtomicU64,
    pub(super) idle_closed: AtomicU64,
    pub(super) send_timeouts: AtomicU64,
    pub(super) shed: AtomicU64,
    pub(super) refused_total: AtomicU64,
    pub(super) refused_per_ip: AtomicU64,
    /// The connection caps, made by the first `serve` given these stats: every `serve` that
    /// shares them (the daemon runs one per core for a listener) counts against one set of caps.
    pub(super) conn_table: OnceLock<Arc<Table>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeCounts {
    pub accepted: u64,
    /// Open connections (gauge).
    pub active: u64,
    /// Connections closed for a missing, malformed or late PROXY header.
    pub proxy_header_errors: u64,
    pub forced_closed: u64,
    /// Open connections waiting for a request head (gauge): the ones a cap may shed.
    pub idle: u64,
    /// Closed for no complete request head within `header_timeout` (counted from accept for
    /// the first request, from the first byte for later ones).
    pub header_timeouts: u64,
    /// Closed because the client sent no request body bytes for `body_timeout` while we
    /// waited for them.
    pub body_timeouts: u64,
    /// Keep-alive connections closed after `idle_timeout` without a new request.
    pub idle_closed: u64,
    /// Closed because the client took no response bytes for `send_timeout`.
    pub send_timeouts: u64,
    /// Idle connections closed to make room for a new one at a cap (total or per address).
    pub shed: u64,
    /// New connections closed at once at `max_connections` with none idle to shed.
    pub refused_total: u64,
    /// New connections closed at once at `max_connections_per_ip` with none of that
    /// address's idle to shed.
    pub refused_per_ip: u64,
}

impl ServeStats {
    pub fn snapshot(&self) -> ServeCounts {
        ServeCounts {
            accepted: self.accepted.load(Relaxed),
            active: self.active.load(Relaxed),
            proxy_header_errors: self.proxy_header_errors.load(Relaxed),
            forced_closed: self.forced_closed.load(Relaxed),
            idle: self.idle.load(Relaxed),
            header_timeouts: self.header_timeouts.load(Relaxed),
            body_timeouts: self.body_timeouts.load(Relaxed),
            idle_closed: self.idle_closed.load(Relaxed),
            send_timeouts: self.send_timeouts.load(Relaxed),
            shed: self.shed.load(Relaxed),
            refused_total: self.refused_total.load(Relaxed),
            refused_per_ip: self.refused_per_ip.load(Relaxed),
        }
    }
}

/// Serves `service` on `listener` until `shutdown` completes, then stops accepting and gives
/// open connections `opts.shutdown_grace` to finish their requests before closing them.
///
/// `service` is any tower service, e.g. `RampartLayer::new(engine).layer(proxy)`; each request
/// carries a [`ConnInfo`] extension. Accept errors (such as running out of file descriptors)
/// are logged and retried, never fatal. Connections run under the timeouts and caps of
/// `opts` (see [`ServeOptions`]); every connection they close is counted in `opts.stats`.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Our own clock bounds heads (see `timeouts`); hyper's would cut keep-alive at the header
    // timeout. Half-close on: otherwise, once a request body is complete, hyper reads the
    // socket to spot a client leaving, and that read could not be told from one waiting for
    // body bytes — the body timer must not run while we wait on the origin.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .half_close(true);
    builder.http2().timer(TokioTimer::new());
    let table = Arc::clone(opts.stats.conn_table.get_or_init(|| {
        Arc::new(Table::new(
            opts.max_connections,
            opts.max_connections_per_ip,
            Arc::downgrade(&opts.stats),
        ))
    }));
    let limits = Limits::from_options(&opts);
    let shared = Arc::new(Shared {
        builder,
        opts,
        table,
        limits,
    });
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    shared.opts.stats.accepted.fetch_add(1, Relaxed);
                    if let Some(slot) = shared.admit(peer) {
                        let conn = connection(Arc::clone(&shared), stream, peer, slot, service.clone(), graceful.watcher());
                        conns.spawn(conn);
                    }
                    // Refused: `stream` drops here, closing it at once (counted by the table).
                }
                Err(e) => {
                    log::warn!("proxy: accept failed: {e}");
                    // Out of descriptors and the like: back off rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let grace = shared.opts.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        let n = conns.len() as u64;
        shared.opts.stats.forced_closed.fetch_add(n, Relaxed);
        log::warn!("proxy: {n} connections still open after {grace:?} of shutdown grace; closing");
    }
    conns.shutdown().await;
}

struct Shared {
    builder: auto::Builder<TokioExecutor>,
    opts: ServeOptions,
    table: Arc<Table>,
    limits: Limits,
}

impl Shared {
    fn trusts(&self, peer: SocketAddr) -> bool {
        let addr = Prefix::from_ip(peer.ip()).addr;
        self.opts
            .trusted_proxy_protocol_peers
            .iter()
            .any(|p| p.contains_addr(&addr))
    }

    fn reads_proxy_header(&self, peer: SocketAddr) -> bool {
        self.opts.proxy_protocol && self.trusts(peer)
    }

    /// A place in the connection table, or None if the caps refuse the connection.
    ///
    /// A trusted PROXY peer (a balancer) speaks for many clients: it is not capped per address
    /// itself; each of its connections joins the cap of the client its header names.
    fn admit(&self, peer: SocketAddr) -> Option<Slot> {
        let now = Instant::now();
        let clock = Arc::new(Clock::new(self.limits, now));
        let ip = (!self.reads_proxy_header(peer)).then(|| peer.ip().to_canonical());
        // Refusals are counted by the table.
        self.table.admit(ip, clock, now).ok()
    }

    fn count_expired(&self, why: Expired, peer: SocketAddr) {
        let s = &self.opts.stats;
        let counter = match why {
            Expired::Header => &s.header_timeouts,
            Expired::Body => &s.body_timeouts,
            Expired::Idle => &s.idle_closed,
            Expired::Send => &s.send_timeouts,
        };
        counter.fetch_add(1, Relaxed);
        // Anyone can cause these: debug only, the counters carry the numbers.
        log::debug!("proxy: closing connection from {peer}: {why}");
    }
}

async fn connection<S, B>(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    service: S,
    watcher: Watcher,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let stats = &shared.opts.stats;
    stats.active.fetch_add(1, Relaxed);
    let _active = Active(stats);
    let _ = stream.set_nodelay(true);
    let clock = Arc::clone(slot.clock());
    let (io, proxy) = if shared.reads_proxy_header(peer) {
        let mut stream = stream;
        let read = read_proxy_header(&mut stream, shared.opts.proxy_header_timeout);
        // The header counts against header_timeout too, and a cap may shed us meanwhile.
        let read = match supervise(&clock, read).await {
            Ended::Done(r) => r,
            Ended::Expired(why) => return shared.count_expired(why, peer),
            Ended::Shed => return,
        };
        match read {
            Ok((header, rest)) => {
                let client = header.map(|h| h.source.ip().to_canonical());
                if let Some(ip) = client {
                    if slot.table().assign_ip(&slot, ip).is_err() {
                        return; // counted by the table
                    }
                }
                (Rewind::new(stream, rest), header)
            }
            Err(e) => {
                // Counted before the socket closes; not logged above debug, as anyone on a
                // trusted path can send junk.
                stats.proxy_header_errors.fetch_add(1, Relaxed);
                log::debug!("proxy: closing connection from {peer}: {e}");
                return;
            }
        }
    } else {
        (Rewind::new(stream, Bytes::new()), None)
    };
    let svc = TowerToHyperService::new(WithConn::new(
        service,
        ConnInfo { peer, proxy },
        slot.member(),
    ));
    let io = Timed::new(io, Arc::clone(&clock));
    let conn = shared.builder.serve_connection(TokioIo::new(io), svc);
    match supervise(&clock, watcher.watch(conn)).await {
        Ended::Done(Ok(())) | Ended::Shed => {}
        Ended::Done(Err(e)) => log::debug!("proxy: connection from {peer}: {e}"),
        Ended::Expired(why) => shared.count_expired(why, peer),
    }
}

struct Active<'a>(&'a ServeStats);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
enum ReadHeaderError {
    #[error("bad PROXY header: {0}")]
    Parse(#[from] HeaderError),
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
    #[error("connection closed inside the PROXY header")]
    Closed,
    #[error("no complete PROXY header within {0:?}")]
    Timeout(Duration),
}

/// Reads the PROXY header; returns it with the bytes read past it, for the HTTP parser.
async fn read_proxy_header(
    stream: &mut TcpStream,
    limit: Duration,
) -> Result<(Option<ProxyHeader>, Bytes), ReadHeaderError> {
    let mut buf = BytesMut::with_capacity(512);
    let read = async {
        loop {
            // The parser refuses garbage early and bounds the length (V2_MAX_LEN).
            if let Parsed::Complete { header, consumed } = proxy_protocol::parse(&buf)? {
                buf.advance(consumed);
                return Ok(header);
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(ReadHeaderError::Closed);
            }
        }
    };
    let header = tokio::time::timeout(limit, read)
        .await
        .map_err(|_| ReadHeaderError::Timeout(limit))??;
    Ok((header, buf.freeze()))
}

/// A stream with bytes to hand out before its own.
struct Rewind {
    prefix: Bytes,
    inner: TcpStream,
}

impl Rewind {
    fn new(inner: TcpStream, prefix: Bytes) -> Rewind {
        Rewind { prefix, inner }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
