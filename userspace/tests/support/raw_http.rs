//! Raw-bytes harness for hostile-input tests: a recording origin that answers every request it
//! can frame and keeps the exact bytes it received, and the engine + proxy stack as
//! `rampart run` wires it (`RampartLayer` in front of `Proxy`, served by `proxy::serve`), all on
//! 127.0.0.1. Clients are raw TCP, so nothing normalises the bytes on the way in.
//!
//! Every wait is bounded in time, every loop in count.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the harness"
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart::l7::{tower::RampartLayer, Engine, EngineConfig};
use rampart::proxy::{serve, PoolConfig, Proxy, ProxyConfig, ServeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_layer::Layer;

/// How long a raw client waits for more bytes before it takes the answer as complete.
pub const QUIET: Duration = Duration::from_millis(700);
/// Upper bound on any one exchange.
pub const EXCHANGE_LIMIT: Duration = Duration::from_secs(10);

/// One request as the origin received it: the head's bytes and the body after de-framing.
#[derive(Clone, Debug, Default)]
pub struct Received {
    /// The request line and headers, exactly as sent to the origin, up to and with CRLFCRLF.
    pub head: Vec<u8>,
    /// The body as the origin read it (chunked framing removed).
    pub body: Vec<u8>,
    /// The origin could not frame what followed the head (truncated or malformed body).
    pub broken: bool,
}

impl Received {
    pub fn head_str(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }

    /// Values of header `name` (case-insensitive) in the head, in order.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.head_str()
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// The request line.
    pub fn request_line(&self) -> String {
        self.head_str().lines().next().unwrap_or("").to_owned()
    }
}

/// An origin that records every request and answers `200 ok` to each one it can frame.
pub struct RecordingOrigin {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl RecordingOrigin {
    pub async fn start() -> RecordingOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            for _ in 0..10_000 {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(origin_conn(stream, Arc::clone(&log)));
            }
        });
        RecordingOrigin { addr, seen, task }
    }

    /// Everything received so far, health checks left out.
    pub fn requests(&self) -> Vec<Received> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| !r.request_line().starts_with("GET /health "))
            .cloned()
            .collect()
    }
}

impl Drop for RecordingOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn origin_conn(mut stream: TcpStream, log: Arc<Mutex<Vec<Received>>>) {
    let mut buf = Vec::new();
    for _ in 0..1_000 {
        let Some(head_len) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        let head = buf[..head_len].to_vec();
        buf.drain(..head_len);
        let (body, ok) = read_body(&mut stream, &mut buf, &head).await;
        log.lock().unwrap().push(Received {
            head: head.clone(),
            body,
            broken: !ok,
        });
        if !ok {
            return;
        }
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok";
        if stream.write_all(resp).await.is_err() {
            return;
        }
    }
}

/// Reads until a head is complete; returns its length (with the CRLFCRLF).
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    for _ in 0..10_000 {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            return Some(i + 4);
        }
        if !fill(stream, buf).await {
            return None;
        }
    }
    None
}

/// Reads the body the head announces; false when it cannot be framed or the peer left early.
async fn read_body(stream: &mut TcpStream, buf: &mut Vec<u8>, head: &[u8]) -> (Vec<u8>, bool) {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let header = |name: &str| {
        text.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    if header("transfer-encoding").is_some_and(|te| te.ends_with("chunked")) {
        return read_chunked(stream, buf).await;
    }
    let Some(len) = header("content-length") else {
        return (Vec::new(), true);
    };
    let Ok(len) = len.parse::<usize>() else {
        return (Vec::new(), false);
    };
    while buf.len() < len {
        if !fill(stream, buf).await {
            return (std::mem::take(buf), false);
        }
    }
    (buf.drain(..len).collect(), true)
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    for _ in 0..100_000 {
        let line_end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            if !fill(stream, buf).await {
                return (body, false);
            }
        };
        let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return (body, false);
        };
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                if let Some(i) = find(buf, b"\r\n") {
                    buf.drain(..i + 2);
                    if i == 0 {
                        return (body, true);
                    }
                    continue;
                }
                if !fill(stream, buf).await {
                    return (body, false);
                }
            }
        }
        while buf.len() < size + 2 {
            if !fill(stream, buf).await {
                return (body, false);
            }
        }
        body.extend(buf.drain(..size));
        if buf.drain(..2).as_slice() != b"\r\n" {
            return (body, false);
        }
    }
    (body, false)
}

/// One read with a bound; false on EOF, error or silence.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match tokio::time::timeout(EXCHANGE_LIMIT, stream.read(&mut chunk)).await {
        Ok(Ok(n)) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The engine and proxy in front of one origin, served on 127.0.0.1.
pub struct Stack {
    pub addr: SocketAddr,
    pub engine: Engine,
    pub proxy: Proxy,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

/// What a stack is built from; `Default` is the default rules and a plain engine.
#[derive(Default)]
pub struct StackConfig {
    /// Site rules (YAML) loaded beside the default WAF rules.
    pub site_rules: Option<&'static str>,
    pub engine: EngineConfig,
    pub serve: ServeOptions,
}

impl Stack {
    pub async fn start(origin: &RecordingOrigin, cfg: StackConfig) -> Stack {
        let waf = rampart_rules::default_waf();
        let site = cfg.site_rules.map(|y| {
            rampart_rules::load_str(y, "site.yaml", std::path::Path::new(".")).expect("site rules")
        });
        let mut sets = vec![&waf];
        if let Some(s) = &site {
            sets.insert(0, s);
        }
        let engine = Engine::new(&sets, cfg.engine).expect("engine");
        let pool: PoolConfig = serde_json::from_value(serde_json::json!({
            "name": "origin",
            "origins": [format!("http://{}", origin.addr)],
        }))
        .unwrap();
        let proxy = Proxy::new(&ProxyConfig {
            pools: vec![pool],
            ..ProxyConfig::default()
        })
        .expect("proxy config");
        let svc = RampartLayer::new(engine.clone()).layer(proxy.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, svc, cfg.serve, async {
            let _ = stopped.await;
        }));
        Stack {
            addr,
            engine,
            proxy,
            stop: Some(stop),
            server,
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), &mut self.server).await;
    }
}

/// What a raw client got back.
#[derive(Debug)]
pub struct Answer {
    pub bytes: Vec<u8>,
    /// The server closed the connection (EOF or reset) within the wait.
    pub closed: bool,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Status codes of every response in the bytes, in order (interim 1xx included).
    pub fn statuses(&self) -> Vec<u16> {
        let text = self.text();
        let mut out = Vec::new();
        for (i, _) in text.match_indices("HTTP/1.1 ") {
            let at_line_start = i == 0 || text[..i].ends_with('\n');
            if let Some(code) = text.get(i + 9..i + 12).and_then(|c| c.parse().ok()) {
                if at_line_start {
                    out.push(code);
                }
            }
        }
        out
    }

    /// The first status code, 0 when none came back.
    pub fn status(&self) -> u16 {
        self.statuses().first().copied().unwrap_or(0)
    }
}

/// Sends `bytes`, optionally half-closes, and reads until the server closes or stays quiet for
/// [`QUIET`].
pub async fn exchange(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    if half_close {
        let _ = s.shutdown().await;
    }
    read_answer(&mut s, QUIET).await
}

/// Reads until EOF, reset, or `quiet` without a byte (bounded by [`EXCHANGE_LIMIT`] in all).
pub async fn read_answer(s: &mut TcpStream, quiet: Duration) -> Answer {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + EXCHANGE_LIMIT;
    loop {
        let wait = quiet.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Answer {
                    bytes,
                    closed: true,
                }
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
            Err(_) => {
                return Answer {
                    bytes,
                    closed: false,
                }
            }
        }
    }
}
