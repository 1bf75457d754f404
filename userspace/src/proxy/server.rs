//! The listener: HTTP/1.1 and h2c (prior knowledge) on one port, an optional PROXY protocol
//! header from trusted peers, a [`ConnInfo`] on every request, and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
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
use tower_service::Service;

use crate::l7::proxy_protocol::{self, Parsed, ProxyError as HeaderError};
use crate::l7::tower::BoxError;
use crate::l7::{ConnInfo, ProxyHeader};

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
    /// Time from accept (or from the end of the previous response) to a complete request head:
    /// bounds clients that send nothing and slow-loris heads.
    pub header_timeout: Duration,
    /// Longest silence from a client while its request body is being read.
    pub body_timeout: Duration,
    /// Keep-alive: how long an idle connection stays open between requests.
    pub idle_timeout: Duration,
    /// Open client connections in all; at the cap the oldest idle one is shed.
    pub max_connections: usize,
    /// Open client connections from one client address.
    pub max_connections_per_ip: usize,
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
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeCounts {
    pub accepted: u64,
    /// Open connections (gauge).
    pub active: u64,
    /// Connections closed for a missing, malformed or late PROXY header.
    pub proxy_header_errors: u64,
    pub forced_closed: u64,
}

impl ServeStats {
    pub fn snapshot(&self) -> ServeCounts {
        ServeCounts {
            accepted: self.accepted.load(Relaxed),
            active: self.active.load(Relaxed),
            proxy_header_errors: self.proxy_header_errors.load(Relaxed),
            forced_closed: self.forced_closed.load(Relaxed),
        }
    }
}

/// Serves `service` on `listener` until `shutdown` completes, then stops accepting and gives
/// open connections `opts.shutdown_grace` to finish their requests before closing them.
///
/// `service` is any tower service, e.g. `RampartLayer::new(engine).layer(proxy)`; each request
/// carries a [`ConnInfo`] extension. Accept errors (such as running out of file descriptors)
/// are logged and retried, never fatal.
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
    // The timers enable HTTP/1 header read timeouts (slow-loris) and HTTP/2 keep-alive.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let shared = Arc::new(Shared { builder, opts });
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    shared.opts.stats.accepted.fetch_add(1, Relaxed);
                    let conn = connection(Arc::clone(&shared), stream, peer, service.clone(), graceful.watcher());
                    conns.spawn(conn);
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
}

impl Shared {
    fn trusts(&self, peer: SocketAddr) -> bool {
        let addr = Prefix::from_ip(peer.ip()).addr;
        self.opts
            .trusted_proxy_protocol_peers
            .iter()
            .any(|p| p.contains_addr(&addr))
    }
}

async fn connection<S, B>(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
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
    let (io, proxy) = if shared.opts.proxy_protocol && shared.trusts(peer) {
        let mut stream = stream;
        match read_proxy_header(&mut stream, shared.opts.proxy_header_timeout).await {
            Ok((header, rest)) => (Rewind::new(stream, rest), header),
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
    let svc = TowerToHyperService::new(WithConn {
        inner: service,
        conn: ConnInfo { peer, proxy },
    });
    let conn = shared.builder.serve_connection(TokioIo::new(io), svc);
    if let Err(e) = watcher.watch(conn).await {
        log::debug!("proxy: connection from {peer}: {e}");
    }
}

struct Active<'a>(&'a ServeStats);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// Puts the connection's [`ConnInfo`] into each request.
#[derive(Clone)]
struct WithConn<S> {
    inner: S,
    conn: ConnInfo,
}

impl<S, B> Service<Request<B>> for WithConn<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        req.extensions_mut().insert(self.conn);
        self.inner.call(req)
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
