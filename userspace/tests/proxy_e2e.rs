//! The reverse proxy end to end on 127.0.0.1: tiny hyper origins, the proxy served by
//! `rampart::proxy::serve`, real clients (HTTP/1.1, h2c, raw TCP for PROXY headers). Every wait
//! is bounded in time, every loop in count.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart::l7::{tower::RampartLayer, ClientIpConfig, Decision, Engine, EngineConfig};
use rampart::proxy::{
    serve, Balance, OriginStats, PoolConfig, Proxy, ProxyConfig, ServeOptions, ServeStats,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceBuilder;
use tower_layer::Layer;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestBody = UnsyncBoxBody<Bytes, BoxError>;

/// Upper bound for any one test.
const TEST_LIMIT: Duration = Duration::from_secs(40);

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, f)
        .await
        .expect("test finished in time")
}

/// Polls `cond` every 20 ms for at most `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- origins ------------------------------------------------------------------------------

/// An origin server; aborting its task closes the listener and every connection.
struct Origin {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Origin {
    async fn start(name: &'static str) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Origin::serve(name, listener)
    }

    /// Starts again on the same port (bounded retries while the old socket lingers).
    async fn restart(name: &'static str, addr: SocketAddr) -> Origin {
        for _ in 0..50 {
            if let Ok(l) = TcpListener::bind(addr).await {
                return Origin::serve(name, l);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("could not rebind {addr}");
    }

    fn serve(name: &'static str, listener: TcpListener) -> Origin {
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            for _ in 0..1000 {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                conns.spawn(async move {
                    let svc = service_fn(move |req| origin_handler(name, req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Origin { addr, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn kill(self) -> SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }
}

fn text(s: impl Into<Bytes>) -> TestBody {
    Full::new(s.into()).map_err(|e| match e {}).boxed_unsync()
}

/// `/slow?ms=N` sleeps first; `/headers` echoes the request head (and answers with
/// hop-by-hop headers of its own); `/echo` streams the request body back; anything else
/// answers the origin's name.
async fn origin_handler(
    name: &'static str,
    req: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let mut resp = match path.as_str() {
        "/slow" => {
            let ms: u64 = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(text(name))
        }
        "/headers" => {
            let mut s = format!("{} {}\n", req.method(), req.uri());
            for (k, v) in req.headers() {
                let _ = writeln!(s, "{k}: {}", v.to_str().unwrap_or("?"));
            }
            let mut r = Response::new(text(s));
            let h = r.headers_mut();
            h.insert("connection", "x-hop".parse().unwrap());
            h.insert("x-hop", "1".parse().unwrap());
            h.insert("keep-alive", "timeout=9".parse().unwrap());
            h.insert("proxy-authenticate", "Basic".parse().unwrap());
            r
        }
        "/echo" => Response::new(req.into_body().map_err(BoxError::from).boxed_unsync()),
        _ => Response::new(text(name)),
    };
    resp.headers_mut().insert("x-origin", name.parse().unwrap());
    Ok(resp)
}

// ---- the proxy ----------------------------------------------------------------------------

fn pool(name: &str, origins: &[&Origin]) -> PoolConfig {
    pool_of(name, origins.iter().map(|o| o.url()).collect())
}

fn pool_of(name: &str, origins: Vec<String>) -> PoolConfig {
    let mut p: PoolConfig = serde_json::from_value(serde_json::json!({
        "name": name,
        "origins": origins,
        "health": { "path": "/health", "interval_ms": 100, "timeout_ms": 200,
                    "unhealthy_after": 2, "healthy_after": 2 }
    }))
    .unwrap();
    p.balance = Balance::RoundRobin;
    p
}

fn config(pools: Vec<PoolConfig>) -> ProxyConfig {
    ProxyConfig {
        pools,
        ..ProxyConfig::default()
    }
}

struct Running {
    addr: SocketAddr,
    proxy: Proxy,
    stats: Arc<ServeStats>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

impl Running {
    fn origin(&self, pool: &str, origin: &Origin) -> OriginStats {
        let url = origin.url();
        self.proxy
            .stats()
            .pools
            .into_iter()
            .find(|p| p.name == pool)
            .and_then(|p| p.origins.into_iter().find(|o| o.origin == url))
            .expect("origin in stats")
    }

    fn in_flight(&self) -> u64 {
        let stats = self.proxy.stats();
        stats
            .pools
            .iter()
            .flat_map(|p| &p.origins)
            .map(|o| o.in_flight)
            .sum()
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.server)
            .await
            .expect("server stops")
            .unwrap();
    }
}

/// A `route` decision from the `x-route` request header, as the engine would insert it.
fn route_from_header(mut req: Request<Incoming>) -> Request<Incoming> {
    let target = req
        .headers()
        .get("x-route")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(target) = target {
        req.extensions_mut().insert(Decision::Route {
            target,
            rule_id: 42,
        });
    }
    req
}

async fn start_proxy(cfg: ProxyConfig, opts: ServeOptions) -> Running {
    let proxy = Proxy::new(&cfg).expect("valid config");
    let svc = ServiceBuilder::new()
        .map_request(route_from_header)
        .service(proxy.clone());
    start_service(proxy, svc, opts).await
}

async fn start_service<S, B>(proxy: Proxy, svc: S, opts: ServeOptions) -> Running
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::clone(&opts.stats);
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, svc, opts, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        proxy,
        stats,
        stop: Some(tx),
        server,
    }
}

// ---- clients ------------------------------------------------------------------------------

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn origin(&self) -> &str {
        self.headers
            .get("x-origin")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    }
}

/// One HTTP/1.1 request on a fresh connection.
async fn send<B>(addr: SocketAddr, req: Request<B>) -> Answer
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = tx.send_request(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("whole body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn req(method: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "shop.example")
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    send(addr, req("GET", path).body(Empty::<Bytes>::new()).unwrap()).await
}

async fn get_routed(addr: SocketAddr, path: &str, target: &str) -> Answer {
    let r = req("GET", path)
        .header("x-route", target)
        .body(Empty::<Bytes>::new())
        .unwrap();
    send(addr, r).await
}

/// Raw bytes in, everything the server sent until it closed out.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("server answered or closed in time");
    String::from_utf8_lossy(&out).into_owned()
}

/// A deterministic body produced on demand, `chunk` bytes per frame: never held whole.
struct Pattern {
    left: usize,
    pos: u64,
    chunk: usize,
}

fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

impl Body for Pattern {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let n = this.left.min(this.chunk);
        let data: Vec<u8> = (0..n as u64).map(|i| pattern_byte(this.pos + i)).collect();
        this.pos += n as u64;
        this.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(data)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown length: the body goes chunked, as a streamed upload would.
        SizeHint::default()
    }
}

/// FNV-1a, 64 bits.
fn fnv(hash: u64, data: &[u8]) -> u64 {
    data.iter()
        .fold(hash, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

// ---- tests --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_alternates_origins() {
    bounded(async {
        let (a, b) = (Origin::start("a").await, Origin::start("b").await);
        let p = start_proxy(
            config(vec![pool("web", &[&a, &b])]),
            ServeOptions::default(),
        )
        .await;
        let mut seen = Vec::new();
        for _ in 0..6 {
            let ans = get(p.addr, "/").await;
            assert_eq!(ans.status, 200);
            assert_eq!(ans.body, ans.origin());
            seen.push(ans.body);
        }
        assert_eq!(seen, ["a", "b", "a", "b", "a", "b"]);
        let sa = p.origin("web", &a);
        assert_eq!(sa.responses, [0, 3, 0, 0, 0]);
        assert_eq!(sa.latency.count, 3);
        assert!(sa.healthy);
        assert_eq!(p.origin("web", &b).responses[1], 3);
        assert_eq!(p.stats.snapshot().accepted, 6);
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_outstanding_prefers_the_idle_origin() {
    bounded(async {
        let (a, b) = (Origin::start("a").await, Origin::start("b").await);
        let mut web = pool("web", &[&a, &b]);
        web.balance = Balance::LeastOutstanding;
        let p = start_proxy(config(vec![web]), ServeOptions::default()).await;
        let addr = p.addr;
        let slow = tokio::spawn(async move { get(addr, "/slow?ms=1500").await });
        wait_for("the slow request in flight", Duration::from_secs(5), || {
            p.in_flight() == 1
        })
        .await;
        let busy = if p.origin("web", &a).in_flight == 1 {
            "a"
        } else {
            "b"
        };
        for _ in 0..5 {
            let ans = get(p.addr, "/").await;
            assert_eq!(ans.status, 200);
            assert_ne!(ans.body, busy, "a request went to the busy origin");
        }
        let slow = slow.await.unwrap();
        assert_eq!((slow.status.as_u16(), slow.body.as_str()), (200, busy));
        wait_for("in-flight back to zero", Duration::from_secs(5), || {
            p.in_flight() == 0
        })
        .await;
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_take_a_dead_origin_out_and_back() {
    bounded(async {
        let (a, b) = (Origin::start("a").await, Origin::start("b").await);
        let p = start_proxy(
            config(vec![pool("web", &[&a, &b])]),
            ServeOptions::default(),
        )
        .await;
        let (stop_checks, checks_rx) = oneshot::channel::<()>();
        let checks = p.proxy.spawn_health_checks(async move {
            let _ = checks_rx.await;
        });
        let b_url = b.url();
        let b_addr = b.kill().await;
        let down_at = Instant::now();
        wait_for("b marked down", Duration::from_secs(3), || {
            !p.proxy.stats().pools[0]
                .origins
                .iter()
                .find(|o| o.origin == b_url)
                .unwrap()
                .healthy
        })
        .await;
        // 2 failures at 100 ms intervals: well inside a few intervals.
        assert!(down_at.elapsed() < Duration::from_millis(1500));
        for _ in 0..6 {
            let ans = get(p.addr, "/").await;
            assert_eq!((ans.status.as_u16(), ans.body.as_str()), (200, "a"));
        }

        let b = Origin::restart("b", b_addr).await;
        wait_for("b back up", Duration::from_secs(3), || {
            p.origin("web", &b).healthy
        })
        .await;
        let mut from_b = 0;
        for _ in 0..4 {
            let ans = get(p.addr, "/").await;
            assert_eq!(ans.status, 200);
            from_b += usize::from(ans.body == "b");
        }
        assert_eq!(from_b, 2, "round robin resumes over both");
        stop_checks.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), checks)
            .await
            .expect("checkers stop")
            .unwrap();
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_healthy_origin_is_a_clear_502() {
    bounded(async {
        let a = Origin::start("a").await;
        let p = start_proxy(config(vec![pool("solo", &[&a])]), ServeOptions::default()).await;
        let (_stop, rx) = oneshot::channel::<()>();
        let _checks = p.proxy.spawn_health_checks(async move {
            let _ = rx.await;
        });
        let url = a.url();
        a.kill().await;
        wait_for("a marked down", Duration::from_secs(3), || {
            !p.proxy.stats().pools[0].origins[0].healthy
        })
        .await;
        let ans = get(p.addr, "/").await;
        assert_eq!(ans.status, 502);
        // Which pool and why go to the log, not to the client.
        assert_eq!(ans.body, "502 Bad Gateway\n");
        assert_eq!(ans.headers["content-type"], "text/plain; charset=utf-8");
        let stats = p.proxy.stats();
        assert_eq!(stats.pools[0].no_healthy_origin, 1);
        assert_eq!(stats.pools[0].origins[0].origin, url);
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failures_retry_idempotent_requests_only() {
    bounded(async {
        // A port nobody listens on: connections are refused.
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_url = format!("http://{}", dead.local_addr().unwrap());
        drop(dead);
        let live = Origin::start("live").await;
        let web = pool_of("web", vec![dead_url.clone(), live.url()]);
        let mut cfg = config(vec![web]);
        // Attempts are bounded by the pool's size, however many retries are allowed.
        cfg.retries = u32::MAX;
        let p = start_proxy(cfg, ServeOptions::default()).await;

        for _ in 0..4 {
            let ans = get(p.addr, "/").await;
            assert_eq!((ans.status.as_u16(), ans.body.as_str()), (200, "live"));
        }
        // A PUT's body waits untouched while the connection fails, so it is sent whole again.
        let put = req("PUT", "/echo")
            .body(Full::new(Bytes::from_static(b"replayed body")))
            .unwrap();
        let ans = send(p.addr, put).await;
        assert_eq!(
            (ans.status.as_u16(), ans.body.as_str()),
            (200, "replayed body")
        );
        let stats = p.proxy.stats();
        let retries = stats.pools[0].retries;
        assert!(retries >= 1, "{stats:?}");
        let dead_stats = &stats.pools[0].origins[0];
        assert_eq!(dead_stats.errors.connect, retries);
        assert!(
            dead_stats.healthy,
            "no active checks: passive failures alone never mark down"
        );

        // POST is not idempotent: the one that lands on the dead origin fails.
        let mut statuses = Vec::new();
        for _ in 0..2 {
            let post = req("POST", "/")
                .body(Full::new(Bytes::from_static(b"x=1")))
                .unwrap();
            let ans = send(p.addr, post).await;
            if ans.status == 502 {
                assert_eq!(ans.body, "502 Bad Gateway\n");
                assert!(!ans.body.contains(&dead_url), "{}", ans.body);
            }
            statuses.push(ans.status.as_u16());
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 502]);
        assert_eq!(
            p.proxy.stats().pools[0].retries,
            retries,
            "POST was retried"
        );
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_origin_gives_504() {
    bounded(async {
        let a = Origin::start("a").await;
        let mut cfg = config(vec![pool("web", &[&a])]);
        cfg.timeouts.response_header_ms = 300;
        let p = start_proxy(cfg, ServeOptions::default()).await;
        let start = Instant::now();
        let ans = get(p.addr, "/slow?ms=3000").await;
        assert_eq!(ans.status, 504);
        assert!(start.elapsed() < Duration::from_millis(2000));
        assert_eq!(ans.body, "504 Gateway Timeout\n");
        assert_eq!(p.origin("web", &a).errors.timeout, 1);
        // A quick answer on the same pool still works.
        assert_eq!(get(p.addr, "/").await.body, "a");
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_added_and_hop_by_hop_removed() {
    bounded(async {
        let a = Origin::start("a").await;
        let p = start_proxy(config(vec![pool("web", &[&a])]), ServeOptions::default()).await;
        let r = req("GET", "/headers?x=1")
            .header("connection", "keep-alive, x-secret")
            .header("x-secret", "s3cret")
            .header("keep-alive", "timeout=5")
            .header("proxy-authorization", "Basic Zm9vOmJhcg==")
            .header("te", "trailers")
            .header("x-forwarded-for", "203.0.113.9")
            .header("via", "1.0 corp-proxy")
            .header("x-app", "kept")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let ans = send(p.addr, r).await;
        assert_eq!(ans.status, 200);
        let seen: Vec<&str> = ans.body.lines().collect();
        assert_eq!(seen[0], "GET /headers?x=1");
        for want in [
            "host: shop.example",
            "via: 1.0 corp-proxy",
            "via: 1.1 rampart",
            "x-forwarded-for: 203.0.113.9, 127.0.0.1",
            "x-forwarded-proto: http",
            "x-forwarded-host: shop.example",
            "x-app: kept",
        ] {
            assert!(
                seen.contains(&want),
                "origin did not see {want:?}: {seen:?}"
            );
        }
        for gone in [
            "x-secret:",
            "keep-alive:",
            "proxy-authorization:",
            "te:",
            "connection:",
        ] {
            assert!(
                !seen.iter().any(|l| l.starts_with(gone)),
                "{gone} reached the origin: {seen:?}"
            );
        }
        // The origin's own hop-by-hop headers stop at the proxy too.
        assert_eq!(ans.headers["via"], "1.1 rampart");
        assert_eq!(ans.headers["x-origin"], "a");
        for gone in ["x-hop", "keep-alive", "proxy-authenticate"] {
            assert!(!ans.headers.contains_key(gone), "{gone} reached the client");
        }
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_streams_both_ways_intact() {
    bounded(async {
        const LEN: usize = 10 << 20;
        let a = Origin::start("a").await;
        let p = start_proxy(config(vec![pool("web", &[&a])]), ServeOptions::default()).await;
        let expected = (0..LEN as u64).fold(FNV_START, |h, i| fnv(h, &[pattern_byte(i)]));
        let body = Pattern {
            left: LEN,
            pos: 0,
            chunk: 64 * 1024,
        };
        let stream = TcpStream::connect(p.addr).await.unwrap();
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = tx
            .send_request(req("POST", "/echo").body(body).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let (mut len, mut hash, mut frames) = (0usize, FNV_START, 0u32);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("frame").into_data() {
                len += data.len();
                hash = fnv(hash, &data);
                frames += 1;
            }
        }
        assert_eq!(len, LEN);
        assert_eq!(hash, expected, "bytes changed on the way");
        assert!(
            frames > 1,
            "the response arrived in pieces, not as one buffer"
        );
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_client() {
    bounded(async {
        let a = Origin::start("a").await;
        let p = start_proxy(config(vec![pool("web", &[&a])]), ServeOptions::default()).await;
        let stream = TcpStream::connect(p.addr).await.unwrap();
        let (mut tx, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        for _ in 0..3 {
            let r = Request::get(format!("http://h2.example:{}/headers", p.addr.port()))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let resp = tx.send_request(r).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.version(), Version::HTTP_2);
            assert_eq!(resp.headers()["via"], "1.1 rampart");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let body = String::from_utf8_lossy(&body);
            let host = format!("host: h2.example:{}", p.addr.port());
            for want in ["via: 2 rampart", "x-forwarded-for: 127.0.0.1", &host] {
                assert!(body.lines().any(|l| l == want), "{want:?} not in {body}");
            }
        }
        assert_eq!(
            p.stats.snapshot().accepted,
            1,
            "three streams on one connection"
        );
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_decision_picks_the_pool() {
    bounded(async {
        let (a, b) = (Origin::start("a").await, Origin::start("b").await);
        let mut cfg = config(vec![pool("api", &[&b]), pool("web", &[&a])]);
        cfg.default_pool = Some("web".into());
        let p = start_proxy(cfg, ServeOptions::default()).await;
        assert_eq!(get(p.addr, "/").await.body, "a");
        assert_eq!(get_routed(p.addr, "/", "api").await.body, "b");
        assert_eq!(get_routed(p.addr, "/", "web").await.body, "a");
        let ans = get_routed(p.addr, "/", "image-resizer").await;
        assert_eq!(ans.status, 502);
        assert_eq!(ans.body, "502 Bad Gateway\n");
        assert_eq!(p.proxy.stats().unknown_target, 1);
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_the_slow_request_finish() {
    bounded(async {
        let a = Origin::start("a").await;
        let p = start_proxy(config(vec![pool("web", &[&a])]), ServeOptions::default()).await;
        let addr = p.addr;
        let slow = tokio::spawn(async move { get(addr, "/slow?ms=800").await });
        wait_for("the slow request in flight", Duration::from_secs(5), || {
            p.in_flight() == 1
        })
        .await;
        let stats = Arc::clone(&p.stats);
        let started = Instant::now();
        p.shutdown().await;
        let ans = slow.await.unwrap();
        assert_eq!((ans.status.as_u16(), ans.body.as_str()), (200, "a"));
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "shutdown waited"
        );
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "still accepting after shutdown"
        );
        let counts = stats.snapshot();
        assert_eq!((counts.active, counts.forced_closed), (0, 0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_from_trusted_peers() {
    bounded(async {
        let a = Origin::start("a").await;
        let opts = ServeOptions {
            proxy_protocol: true,
            trusted_proxy_protocol_peers: vec!["127.0.0.0/8".parse().unwrap()],
            proxy_header_timeout: Duration::from_millis(500),
            ..ServeOptions::default()
        };
        let p = start_proxy(config(vec![pool("web", &[&a])]), opts).await;
        let http = "GET /headers HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n";
        // Header and request in one write: what follows the header must reach HTTP intact.
        let out = raw(
            p.addr,
            format!("PROXY TCP4 198.51.100.20 127.0.0.1 40000 80\r\n{http}").as_bytes(),
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains("\nx-forwarded-for: 198.51.100.20\n"), "{out}");

        // v2 LOCAL (a balancer's own health check): the connection's address applies.
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00".to_vec();
        v2.extend_from_slice(http.as_bytes());
        let out = raw(p.addr, &v2).await;
        assert!(out.contains("\nx-forwarded-for: 127.0.0.1\n"), "{out}");

        assert_eq!(p.stats.snapshot().proxy_header_errors, 0);
        let out = raw(p.addr, b"PROXY TCP4 not-an-address\r\n").await;
        assert_eq!(out, "", "a bad header closes the connection");
        let out = raw(p.addr, http.as_bytes()).await;
        assert_eq!(out, "", "a trusted peer must send the header");
        assert_eq!(p.stats.snapshot().proxy_header_errors, 2);
        p.shutdown().await;

        // An untrusted peer is not asked for a header, and cannot choose its address.
        let opts = ServeOptions {
            proxy_protocol: true,
            trusted_proxy_protocol_peers: vec!["10.0.0.0/8".parse().unwrap()],
            ..ServeOptions::default()
        };
        let p = start_proxy(config(vec![pool("web", &[&a])]), opts).await;
        let out = raw(p.addr, http.as_bytes()).await;
        assert!(out.contains("\nx-forwarded-for: 127.0.0.1\n"), "{out}");
        let out = raw(
            p.addr,
            format!("PROXY TCP4 198.51.100.20 127.0.0.1 40000 80\r\n{http}").as_bytes(),
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        p.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_engine_layer() {
    bounded(async {
        let a = Origin::start("a").await;
        let proxy = Proxy::new(&config(vec![pool("web", &[&a])])).unwrap();
        let engine = Engine::new(
            &[&rampart_rules::default_waf()],
            EngineConfig {
                client_ip: ClientIpConfig {
                    trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
                    ..ClientIpConfig::default()
                },
                ..EngineConfig::default()
            },
        )
        .unwrap();
        let app = RampartLayer::new(engine).layer(proxy.clone());
        let p = start_service(proxy, app, ServeOptions::default()).await;

        let attack = get(p.addr, "/?q=%3Cscript%3Ealert(1)%3C/script%3E").await;
        assert_eq!(attack.status, 403);
        assert_eq!(attack.origin(), "-", "refused before the proxy");

        // The engine resolves the client through the trusted hop; the origin gets the same.
        let r = req("GET", "/headers")
            .header("x-forwarded-for", "203.0.113.7")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let ans = send(p.addr, r).await;
        assert_eq!(ans.status, 200);
        assert!(
            ans.body
                .lines()
                .any(|l| l == "x-forwarded-for: 203.0.113.7"),
            "{}",
            ans.body
        );
        assert_eq!(p.origin("web", &a).responses[1], 1);
        p.shutdown().await;
    })
    .await;
}
