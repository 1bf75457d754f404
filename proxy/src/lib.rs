//! The reverse proxy: origin pools with balancing, active and passive health checks, retries
//! and timeouts, as a `tower::Service` that goes behind [`rampart_l7::tower::RampartLayer`];
//! and [`serve`], the HTTP/1.1 + h2c listener with PROXY protocol and graceful shutdown.
//!
//! The engine's `route` decision (a [`rampart_l7::Decision::Route`] request extension) picks
//! the pool; without one the default pool serves. Bodies stream both ways. Failures come back
//! as generic plain-text answers, `502 Bad Gateway` (connect failures on every candidate, no
//! healthy origin, a route target that names no pool) and `504 Gateway Timeout` (no response
//! head in time); the origin, pool and error chain go to the log at warn, never to the client.
//! Requests whose shape the proxy refuses (TRACE, CONNECT, Host trouble, a broken body) get
//! 400 or 405 and reach no origin (see `gate.rs`).
//!
//! The crate brings no runtime of its own: the caller (the `rampart` daemon) builds the tokio
//! runtimes and installs the signal handlers; [`proxy_protocol`] is the PROXY header's wire parser
//! (the value it yields, [`rampart_l7::ProxyHeader`], is the engine's).
//!
//! ```no_run
//! use rampart_l7::{tower::RampartLayer, Engine, EngineConfig};
//! use rampart_proxy::{serve, Proxy, ProxyConfig, ServeOptions};
//! use tower_layer::Layer;
//!
//! # async fn run(config: ProxyConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let proxy = Proxy::new(&config)?;
//! let checks = proxy.spawn_health_checks(std::future::pending());
//! let engine = Engine::new(&[&rampart_rules::default_waf()], EngineConfig::default())?;
//! let app = RampartLayer::new(engine).layer(proxy.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, app, ServeOptions::default(), std::future::pending()).await;
//! # drop(checks);
//! # Ok(())
//! # }
//! ```

mod body;
mod config;
mod conn_service;
mod forward;
mod gate;
mod headers;
mod health;
mod limits;
mod pool;
pub mod proxy_protocol;
mod server;
mod stats;
mod timed_io;
mod timeouts;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{combinators::UnsyncBoxBody, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower_service::Service;

use body::Outgoing;
use pool::Pool;
use stats::RefusedCounters;

pub use config::{Balance, HealthConfig, PoolConfig, ProxyConfig, ProxyError, Timeouts};
pub use server::{serve, ServeCounts, ServeOptions, ServeStats};
pub use stats::{
    ErrorCounts, Histogram, OriginStats, PoolStats, ProxyStats, RefusedCounts, LATENCY_BUCKETS,
};

/// The error type of the bodies the proxy streams: the same type as
/// [`rampart_l7::tower::BoxError`], so bodies pass between the engine's layer and the proxy as
/// they are.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body of a [`Proxy`]: the origin's body streamed, or the proxy's own text.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The reverse proxy. Cheap to clone: clones share pools, connections and counters.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pools: Vec<Pool>,
    by_name: HashMap<String, usize>,
    default_pool: usize,
    /// One origin client per serving thread: a pooled connection's task lives on the runtime
    /// that opened it, so sharing one pool across threads would bounce every request between
    /// threads.
    clients: thread_local::ThreadLocal<Client<HttpConnector, Outgoing>>,
    connector: HttpConnector,
    idle: Duration,
    max_idle: usize,
    /// Fresh connection per check: a check proves the origin still accepts connections.
    health_client: Client<HttpConnector, Empty<Bytes>>,
    via: String,
    retries: u32,
    response_header_timeout: Duration,
    unknown_target: AtomicU64,
    refused: RefusedCounters,
}

impl Inner {
    /// This thread's origin client (built on first use).
    fn client(&self) -> &Client<HttpConnector, Outgoing> {
        self.clients.get_or(|| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(self.idle)
                .pool_max_idle_per_host(self.max_idle)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .build(self.connector.clone())
        })
    }

    fn pool(&self, name: &str) -> Option<&Pool> {
        self.by_name.get(name).map(|&i| &self.pools[i])
    }
}

impl Proxy {
    /// Builds the pools and the origin client. Needs no runtime; requests and health checks do.
    ///
    /// # Errors
    /// An invalid configuration (see [`ProxyConfig::validate`]).
    pub fn new(config: &ProxyConfig) -> Result<Proxy, ProxyError> {
        let valid = config.validated()?;
        let t = &config.timeouts;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(t.connect_ms)));
        connector.set_nodelay(true);
        let connector_for_clients = connector.clone();
        let health_client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .timer(TokioTimer::new())
            .build(connector);
        let pools: Vec<Pool> = valid
            .pools
            .into_iter()
            .map(|(cfg, addrs)| Pool::new(&cfg, addrs))
            .collect();
        let by_name = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        Ok(Proxy {
            inner: Arc::new(Inner {
                pools,
                by_name,
                default_pool: valid.default_pool,
                clients: thread_local::ThreadLocal::new(),
                connector: connector_for_clients,
                idle: Duration::from_millis(t.idle_ms),
                max_idle: config.max_idle_per_origin,
                health_client,
                via: config.via.clone(),
                retries: config.retries,
                response_header_timeout: Duration::from_millis(t.response_header_ms),
                unknown_target: AtomicU64::new(0),
                refused: RefusedCounters::default(),
            }),
        })
    }

    /// A snapshot of every pool's and origin's counters.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            pools: self.inner.pools.iter().map(Pool::stats).collect(),
            unknown_target: self.inner.unknown_target.load(Relaxed),
            refused: self.inner.refused.snapshot(),
        }
    }
}

impl<B> Service<Request<B>> for Proxy
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    /// Failures are answers (502/504), never errors.
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { Ok(forward::forward(inner, req).await) })
    }
}

#[cfg(test)]
mod tests;
