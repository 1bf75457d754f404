//! The tower layer in front of an axum router, served by hyper on loopback: clean requests reach
//! the handler with their bodies intact, attacks are refused before it, audit events come out,
//! and a `route` decision reaches the handler in the request's extensions.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{extract::Request, routing::any, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rampart_l7::{tower::RampartLayer, AuditEvent, ConnInfo, Decision, Engine, EngineConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use tower_layer::Layer;

async fn echo(req: Request) -> String {
    let route = match req.extensions().get::<Decision>() {
        Some(Decision::Route { target, .. }) => target.clone(),
        _ => "default".into(),
    };
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    format!(
        "route={route} len={} sum={}",
        body.len(),
        body.iter().map(|b| *b as u64).sum::<u64>()
    )
}

/// Serves the app on 127.0.0.1 with a bounded accept loop; returns the address.
async fn serve(engine: Engine, audit: Arc<Mutex<Vec<AuditEvent>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/{*path}", any(echo))
        .route("/", any(echo));
    let layer = RampartLayer::new(engine).on_audit(move |e| audit.lock().unwrap().push(e));
    let app = layer.layer(router);
    tokio::spawn(async move {
        for _ in 0..64 {
            let Ok(Ok((stream, peer))) =
                tokio::time::timeout(Duration::from_secs(20), listener.accept()).await
            else {
                return;
            };
            let svc = ServiceBuilder::new()
                .map_request(move |mut r: http::Request<hyper::body::Incoming>| {
                    r.extensions_mut().insert(ConnInfo::new(peer));
                    r
                })
                .service(app.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                    .await;
            });
        }
    });
    addr
}

async fn send(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{head}\r\nHost: shop.example\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test]
async fn layer_over_axum_and_hyper() {
    let site = rampart_rules::load_str(
        "version: 1\nrules:\n  - id: 7\n    expression: 'starts_with(http.request.uri.path, \"/edge/\")'\n    action: route\n    target: workers\n",
        "site.yaml",
        std::path::Path::new("."),
    )
    .unwrap();
    let waf = rampart_rules::default_waf();
    let cfg = EngineConfig {
        body_limit: 64 * 1024,
        ..EngineConfig::default()
    };
    let engine = Engine::new(&[&site, &waf], cfg).unwrap();
    let audit = Arc::new(Mutex::new(Vec::new()));
    let addr = serve(engine.clone(), audit.clone()).await;

    let (status, body) = send(addr, "GET /hello?q=shoes HTTP/1.1", b"").await;
    assert_eq!((status, body.as_str()), (200, "route=default len=0 sum=0"));

    let (status, _) = send(
        addr,
        "GET /search?q=1%27%20OR%20%271%27%3D%271 HTTP/1.1",
        b"",
    )
    .await;
    assert_eq!(status, 403);

    let form = b"comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let (status, _) = send(
        addr,
        "POST /post HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
        form,
    )
    .await;
    assert_eq!(status, 403);

    // A clean body of 40 KiB arrives whole, in order.
    let big: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let want = big.iter().map(|b| *b as u64).sum::<u64>();
    let (status, body) = send(
        addr,
        "POST /upload HTTP/1.1\r\nContent-Type: text/plain",
        &big,
    )
    .await;
    assert_eq!(
        (status, body),
        (200, format!("route=default len=40000 sum={want}"))
    );

    // Over the limit: refused by the default policy.
    let huge = vec![b'x'; 70_000];
    let (status, _) = send(
        addr,
        "POST /upload HTTP/1.1\r\nContent-Type: text/plain",
        &huge,
    )
    .await;
    assert_eq!(status, 413);

    let (status, body) = send(addr, "GET /edge/app HTTP/1.1", b"").await;
    assert_eq!((status, body.as_str()), (200, "route=workers len=0 sum=0"));

    let events = audit.lock().unwrap().clone();
    assert_eq!(events.len(), 6);
    let blocked: Vec<_> = events.iter().filter(|e| e.action == "block").collect();
    assert_eq!(blocked.len(), 3);
    assert!(blocked.iter().all(|e| e.client_ip.is_loopback()));
    assert!(events
        .iter()
        .any(|e| e.matches.iter().any(|m| m.rule_id == 900202)));
    let s = engine.stats();
    assert_eq!((s.requests, s.blocked, s.routed), (6, 3, 1));
}
