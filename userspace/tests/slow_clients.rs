//! Issue 17 item 8, the listener side: clients that send nothing, trickle a head, stall a
//! body or read nothing are closed by the listener's timeouts; a slow origin is not a slow
//! client; the connection caps (in all and per client address) shed the oldest idle
//! connection or refuse a new one, and every such close is counted in `ServeStats`.
//!
//! Raw TCP on 127.0.0.0/8 only; every wait is bounded in time and every loop in count.

mod support;

use support::h2c;
use support::h2c::{frame, DATA, END_HEADERS, END_STREAM, HEADERS, PING, PREFACE, SETTINGS};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart::proxy::{ServeCounts, ServeOptions, ServeStats};
use rampart_rules::Prefix;
use support::raw_http::{exchange, find, read_answer, RecordingOrigin, Stack, StackConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Slack for timing checks on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(4);

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
const STALLED_POST: &[u8] =
    b"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n0123456789";

/// Options with every timeout long and caps off unless a test sets them.
fn opts(stats: &Arc<ServeStats>) -> ServeOptions {
    ServeOptions {
        header_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        send_timeout: Duration::from_secs(30),
        // Tests end with connections still held open on purpose.
        shutdown_grace: Duration::from_millis(500),
        stats: Arc::clone(stats),
        ..ServeOptions::default()
    }
}

async fn stack(origin: &RecordingOrigin, serve: ServeOptions) -> Stack {
    Stack::start(
        origin,
        StackConfig {
            serve,
            ..StackConfig::default()
        },
    )
    .await
}

/// A client socket bound to `src` (any 127/8 address works on Linux's loopback).
async fn connect_from(src: Ipv4Addr, dst: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(IpAddr::V4(src), 0)).unwrap();
    s.connect(dst).await.unwrap()
}

/// Reads (and discards) until the server closes; the time it took, or None if still open
/// after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 16 * 1024];
    for _ in 0..100_000 {
        let left = limit.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Polls `f` every 20 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

fn counts(stats: &ServeStats) -> ServeCounts {
    stats.snapshot()
}

/// One request as the slow origin read it.
#[derive(Clone, Debug)]
struct OriginSaw {
    head: String,
    body: Vec<u8>,
}

/// An origin that reads a whole Content-Length request, waits `delay`, then answers 200 with
/// `body_len` bytes.
async fn slow_origin(delay: Duration, body_len: usize) -> (SocketAddr, Arc<Mutex<Vec<OriginSaw>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<OriginSaw>>> = Arc::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        for _ in 0..100 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                for _ in 0..10 {
                    let head_len = loop {
                        if let Some(i) = find(&buf, b"\r\n\r\n") {
                            break i + 4;
                        }
                        match tokio::time::timeout(Duration::from_secs(20), s.read(&mut chunk))
                            .await
                        {
                            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
                    buf.drain(..head_len);
                    let len = head
                        .to_ascii_lowercase()
                        .split("\r\n")
                        .find_map(|l| {
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    while buf.len() < len {
                        match tokio::time::timeout(Duration::from_secs(20), s.read(&mut chunk))
                            .await
                        {
                            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                    let body: Vec<u8> = buf.drain(..len).collect();
                    log.lock().unwrap().push(OriginSaw { head, body });
                    tokio::time::sleep(delay).await;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {body_len}\r\ncontent-type: text/plain\r\n\r\n"
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                    let block = vec![b'x'; 64 * 1024];
                    let mut left = body_len;
                    while left > 0 {
                        let n = left.min(block.len());
                        let Ok(Ok(())) =
                            tokio::time::timeout(Duration::from_secs(30), s.write_all(&block[..n]))
                                .await
                        else {
                            return;
                        };
                        left -= n;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A stack whose proxy points at `origin_addr` (the recording origin is started only to
/// borrow the harness's wiring; its address is swapped for `origin_addr`).
async fn stack_for(origin_addr: SocketAddr, serve: ServeOptions) -> (Stack, RecordingOrigin) {
    let mut stand_in = RecordingOrigin::start().await;
    stand_in.addr = origin_addr;
    let s = stack(&stand_in, serve).await;
    (s, stand_in)
}

#[tokio::test]
async fn silent_connection_is_closed_after_header_timeout() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            header_timeout: Duration::from_millis(300),
            ..opts(&stats)
        },
    )
    .await;
    let mut s = TcpStream::connect(stack.addr).await.unwrap();
    let took = closed_within(&mut s, Duration::from_millis(300) + SLACK).await;
    println!("silent connection closed after {took:?}");
    let took = took.expect("a connection that sends nothing must be closed");
    assert!(
        took >= Duration::from_millis(250),
        "closed too early: {took:?}"
    );
    assert_eq!(counts(&stats).header_timeouts, 1);
    assert!(origin.requests().is_empty());
    stack.shutdown().await;
}

#[tokio::test]
async fn slowloris_head_is_closed_by_header_timeout() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            header_timeout: Duration::from_millis(500),
            ..opts(&stats)
        },
    )
    .await;
    let mut s = TcpStream::connect(stack.addr).await.unwrap();
    let head = b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let start = Instant::now();
    let mut cut_after = None;
    // One byte every 100 ms: 100 bytes would take 10 s.
    for b in head.iter() {
        if s.write_all(&[*b]).await.is_err() {
            cut_after = Some(start.elapsed());
            break;
        }
        let mut probe = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut_after = Some(start.elapsed());
                break;
            }
            _ => {}
        }
    }
    println!("slow-loris head cut after {cut_after:?}");
    let cut = cut_after.expect("a head trickled at 10 bytes/s must be cut");
    assert!(cut < Duration::from_millis(500) + SLACK, "{cut:?}");
    assert_eq!(counts(&stats).header_timeouts, 1);
    assert!(origin.requests().is_empty());
    stack.shutdown().await;
}

#[tokio::test]
async fn stalled_body_is_closed_after_body_timeout() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            body_timeout: Duration::from_millis(400),
            ..opts(&stats)
        },
    )
    .await;
    let mut s = TcpStream::connect(stack.addr).await.unwrap();
    s.write_all(STALLED_POST).await.unwrap();
    let took = closed_within(&mut s, Duration::from_millis(400) + SLACK).await;
    println!("stalled body (CL 1000, 10 sent) closed after {took:?}");
    let took = took.expect("a body stalled mid-way must be cut");
    assert!(
        took >= Duration::from_millis(350),
        "closed too early: {took:?}"
    );
    assert_eq!(counts(&stats).body_timeouts, 1);
    // The origin never got a complete request.
    for r in origin.requests() {
        assert!(r.broken, "origin got a complete request: {}", r.head_str());
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn slow_origin_still_answers_a_client_that_sent_its_whole_request() {
    let (origin_addr, seen) = slow_origin(Duration::from_millis(1500), 2).await;
    let stats = Arc::new(ServeStats::default());
    let (stack, _stand_in) = stack_for(
        origin_addr,
        ServeOptions {
            header_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(300),
            ..opts(&stats)
        },
    )
    .await;
    let start = Instant::now();
    let mut s = TcpStream::connect(stack.addr).await.unwrap();
    s.write_all(
        b"POST /slow HTTP/1.1\r\nHost: a.test\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await
    .unwrap();
    let a = read_answer(&mut s, Duration::from_secs(3)).await;
    println!(
        "slow origin (1.5 s) behind body_timeout 300 ms: {:?} after {:?}",
        a.statuses(),
        start.elapsed()
    );
    assert_eq!(a.status(), 200, "client got {}", a.text());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, b"hello");
    assert!(seen[0].head.starts_with("POST /slow "));
    let c = counts(&stats);
    assert_eq!((c.body_timeouts, c.header_timeouts), (0, 0), "{c:?}");
    stack.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(1500),
            ..opts(&stats)
        },
    )
    .await;
    let mut s = TcpStream::connect(stack.addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    // The answer, then silence: still open past header_timeout (idle is not a slow head) ...
    let a = read_answer(&mut s, Duration::from_millis(800)).await;
    assert_eq!(a.status(), 200, "{}", a.text());
    assert!(!a.closed, "closed before idle_timeout: {a:?}");
    // ... and a second request on it works, then it is closed idle.
    s.write_all(GET).await.unwrap();
    let start = Instant::now();
    let a = read_answer(&mut s, Duration::from_millis(1500) + SLACK).await;
    println!(
        "idle keep-alive closed: {} after {:?}",
        a.closed,
        start.elapsed()
    );
    assert_eq!(a.status(), 200, "{}", a.text());
    assert!(a.closed, "an idle keep-alive connection must be closed");
    assert!(start.elapsed() >= Duration::from_millis(1400));
    let c = counts(&stats);
    assert_eq!((c.idle_closed, c.header_timeouts), (1, 0), "{c:?}");
    assert_eq!(origin.requests().len(), 2);
    stack.shutdown().await;
}

#[tokio::test]
async fn slow_reader_is_closed_after_send_timeout() {
    // 64 MiB: more than the loopback socket buffers on both hops hold.
    let (origin_addr, _seen) = slow_origin(Duration::ZERO, 64 << 20).await;
    let stats = Arc::new(ServeStats::default());
    let (stack, _stand_in) = stack_for(
        origin_addr,
        ServeOptions {
            send_timeout: Duration::from_millis(500),
            ..opts(&stats)
        },
    )
    .await;
    let mut s = TcpStream::connect(stack.addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    // Read nothing for a while, then see whether the server gave up on us.
    let gave_up = eventually(Duration::from_millis(500) + SLACK, || {
        counts(&stats).send_timeouts == 1
    })
    .await;
    println!(
        "slow reader: send_timeouts {}",
        counts(&stats).send_timeouts
    );
    assert!(gave_up, "a client that reads nothing must be cut");
    // What it can still read is bounded (buffers), then EOF.
    assert!(closed_within(&mut s, SLACK).await.is_some());
    stack.shutdown().await;
}

// ---- h2c (prior knowledge) -------------------------------------------------------------------

/// HPACK for `POST /` on `a.test` with `content-length: {len}` (static-table names, no
/// Huffman).
fn post_headers(len: &str) -> Vec<u8> {
    let mut h = vec![0x83, 0x86, 0x84, 0x01, 6];
    h.extend_from_slice(b"a.test");
    h.extend_from_slice(&[0x0f, 0x0d, len.len() as u8]);
    h.extend_from_slice(len.as_bytes());
    h
}

/// Reads frames until EOF or `limit`; returns them as (type, flags, stream, payload) and
/// whether the server closed.
async fn h2_read(s: &mut TcpStream, limit: Duration) -> (Vec<(u8, u8, u32, Vec<u8>)>, bool) {
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut closed = false;
    for _ in 0..10_000 {
        let Some(left) = limit.checked_sub(start.elapsed()) else {
            break;
        };
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    (h2c::frames(&buf), closed)
}

#[tokio::test]
async fn h2c_connection_without_a_request_is_closed_after_header_timeout() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            header_timeout: Duration::from_millis(500),
            ..opts(&stats)
        },
    )
    .await;
    let mut s = TcpStream::connect(stack.addr).await.unwrap();
    s.write_all(PREFACE).await.unwrap();
    s.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    // PINGs every 100 ms do not make a request.
    let start = Instant::now();
    let mut closed_after = None;
    for i in 0..100u64 {
        if s.write_all(&frame(PING, 0, 0, &i.to_be_bytes()))
            .await
            .is_err()
        {
            closed_after = Some(start.elapsed());
            break;
        }
        if let (_, true) = h2_read(&mut s, Duration::from_millis(100)).await {
            closed_after = Some(start.elapsed());
            break;
        }
    }
    println!("h2c preface + pings, no request: closed after {closed_after:?}");
    let took = closed_after.expect("an h2c connection that never sends a request must be closed");
    assert!(took < Duration::from_millis(500) + SLACK, "{took:?}");
    assert_eq!(counts(&stats).header_timeouts, 1);
    stack.shutdown().await;
}

#[tokio::test]
async fn h2c_stalled_body_is_closed_after_body_timeout() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            body_timeout: Duration::from_millis(400),
            ..opts(&stats)
        },
    )
    .await;
    let mut s = TcpStream::connect(stack.addr).await.unwrap();
    let mut req = PREFACE.to_vec();
    req.extend(frame(SETTINGS, 0, 0, &[]));
    req.extend(frame(HEADERS, END_HEADERS, 1, &post_headers("1000")));
    req.extend(frame(DATA, 0, 1, b"0123456789"));
    s.write_all(&req).await.unwrap();
    let start = Instant::now();
    let (frames, closed) = h2_read(&mut s, Duration::from_millis(400) + SLACK).await;
    println!(
        "h2c stalled body: closed {closed} after {:?}; frames {:?}",
        start.elapsed(),
        frames.iter().map(|f| (f.0, f.1, f.2)).collect::<Vec<_>>()
    );
    assert!(closed, "an h2c request body stalled mid-way must be cut");
    assert!(start.elapsed() >= Duration::from_millis(350));
    assert_eq!(counts(&stats).body_timeouts, 1);
    for r in origin.requests() {
        assert!(r.broken, "origin got a complete request: {}", r.head_str());
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn h2c_slow_origin_still_answers_a_complete_request() {
    let (origin_addr, seen) = slow_origin(Duration::from_millis(1500), 2).await;
    let stats = Arc::new(ServeStats::default());
    let (stack, _stand_in) = stack_for(
        origin_addr,
        ServeOptions {
            header_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(300),
            ..opts(&stats)
        },
    )
    .await;
    let mut s = TcpStream::connect(stack.addr).await.unwrap();
    let mut req = PREFACE.to_vec();
    req.extend(frame(SETTINGS, 0, 0, &[]));
    req.extend(frame(HEADERS, END_HEADERS, 1, &post_headers("5")));
    req.extend(frame(DATA, END_STREAM, 1, b"hello"));
    s.write_all(&req).await.unwrap();
    let (frames, _) = h2_read(&mut s, Duration::from_secs(3)).await;
    let status_200 = frames
        .iter()
        .any(|(t, _, id, p)| *t == HEADERS && *id == 1 && p.first() == Some(&0x88));
    println!(
        "h2c slow origin: frames {:?}",
        frames.iter().map(|f| (f.0, f.1, f.2)).collect::<Vec<_>>()
    );
    assert!(status_200, "no :status 200 on stream 1");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, b"hello");
    let c = counts(&stats);
    assert_eq!((c.body_timeouts, c.header_timeouts), (0, 0), "{c:?}");
    stack.shutdown().await;
}

// ---- connection caps -----------------------------------------------------------------------

/// Raises this process's descriptor soft limit to its hard limit (at most `want`); returns
/// the soft limit in force.
fn raise_nofile(want: libc::rlim_t) -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        let target = want.min(lim.rlim_max);
        if lim.rlim_cur < target {
            let raised = libc::rlimit {
                rlim_cur: target,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return target;
            }
        }
        lim.rlim_cur
    }
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn idle_flood_at_max_connections_sheds_the_oldest_and_a_normal_client_is_served() {
    let limit = raise_nofile(16_384);
    // Each flood socket costs this process one descriptor (the server side is shed).
    let flood = 5_000.min(limit.saturating_sub(500) as usize);
    println!("RLIMIT_NOFILE soft limit {limit}; opening {flood} idle connections");
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            max_connections: 50,
            ..opts(&stats)
        },
    )
    .await;
    let rss_before = vm_rss_kib();
    let mut idle = Vec::with_capacity(flood);
    for _ in 0..flood {
        idle.push(TcpStream::connect(stack.addr).await.unwrap());
    }
    let all_in = eventually(Duration::from_secs(20), || {
        counts(&stats).accepted >= flood as u64
    })
    .await;
    assert!(all_in, "{:?}", counts(&stats));
    let a = exchange(stack.addr, GET, false).await;
    let rss_after = vm_rss_kib();
    let c = counts(&stats);
    println!(
        "after {flood} idle connections at max_connections 50: normal client got {:?}; {c:?}; \
         VmRSS {rss_before} kB -> {rss_after} kB",
        a.statuses()
    );
    assert_eq!(a.status(), 200, "{}", a.text());
    assert_eq!(origin.requests().len(), 1);
    assert_eq!(c.shed, flood as u64 + 1 - 50, "{c:?}");
    assert_eq!((c.refused_total, c.refused_per_ip), (0, 0), "{c:?}");
    let settled = eventually(Duration::from_secs(10), || counts(&stats).active <= 51).await;
    assert!(settled, "{:?}", counts(&stats));
    // The oldest flood connection was shed: the server closed it.
    assert!(closed_within(&mut idle[0], Duration::from_secs(2))
        .await
        .is_some());
    // Generous: 5,000 connections must not cost anything like the 300 MB the issue saw.
    assert!(
        rss_after.saturating_sub(rss_before) < 200 * 1024,
        "VmRSS {rss_before} kB -> {rss_after} kB"
    );
    drop(idle);
    stack.shutdown().await;
}

/// Opens a connection from `src` that holds a request in flight (a body it never finishes).
async fn busy_from(src: Ipv4Addr, dst: SocketAddr) -> TcpStream {
    let mut s = connect_from(src, dst).await;
    s.write_all(STALLED_POST).await.unwrap();
    s
}

#[tokio::test]
async fn max_connections_refuses_a_new_connection_when_none_is_idle() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            max_connections: 3,
            ..opts(&stats)
        },
    )
    .await;
    let local = Ipv4Addr::LOCALHOST;
    let mut busy = Vec::new();
    for _ in 0..3 {
        busy.push(busy_from(local, stack.addr).await);
    }
    assert!(
        eventually(SLACK, || counts(&stats).idle == 0
            && counts(&stats).active == 3)
        .await
    );
    let mut extra = TcpStream::connect(stack.addr).await.unwrap();
    let _ = extra.write_all(GET).await;
    let closed = closed_within(&mut extra, Duration::from_secs(2)).await;
    let c = counts(&stats);
    println!("4th connection with 3 busy at max_connections 3: closed after {closed:?}; {c:?}");
    assert!(closed.is_some(), "must be refused");
    assert_eq!((c.refused_total, c.shed), (1, 0), "{c:?}");
    // The busy ones are untouched.
    for s in &mut busy {
        assert!(closed_within(s, Duration::from_millis(200)).await.is_none());
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn per_ip_cap_sheds_that_addresses_idle_connection_and_spares_others() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            max_connections_per_ip: 3,
            ..opts(&stats)
        },
    )
    .await;
    let crowd = Ipv4Addr::new(127, 0, 0, 2);
    let mut other = connect_from(Ipv4Addr::LOCALHOST, stack.addr).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(connect_from(crowd, stack.addr).await);
        // Distinct idle-since times, so "oldest" is well defined.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(eventually(SLACK, || counts(&stats).active == 4).await);
    let mut fourth = connect_from(crowd, stack.addr).await;
    let first_closed = closed_within(&mut mine[0], Duration::from_secs(2)).await;
    let c = counts(&stats);
    println!("4th idle connection from 127.0.0.2 at per-ip cap 3: oldest closed after {first_closed:?}; {c:?}");
    assert!(
        first_closed.is_some(),
        "the oldest idle connection of 127.0.0.2 must be shed"
    );
    assert_eq!((c.shed, c.refused_per_ip), (1, 0), "{c:?}");
    // The newest from 127.0.0.2 and the idle one from 127.0.0.1 both still work.
    fourth.write_all(GET).await.unwrap();
    assert_eq!(
        read_answer(&mut fourth, Duration::from_millis(700))
            .await
            .status(),
        200
    );
    other.write_all(GET).await.unwrap();
    assert_eq!(
        read_answer(&mut other, Duration::from_millis(700))
            .await
            .status(),
        200
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn per_ip_cap_refuses_when_that_address_has_nothing_idle() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            max_connections_per_ip: 3,
            ..opts(&stats)
        },
    )
    .await;
    let crowd = Ipv4Addr::new(127, 0, 0, 2);
    let mut busy = Vec::new();
    for _ in 0..3 {
        busy.push(busy_from(crowd, stack.addr).await);
    }
    assert!(
        eventually(SLACK, || counts(&stats).idle == 0
            && counts(&stats).active == 3)
        .await
    );
    let mut refused = connect_from(crowd, stack.addr).await;
    let _ = refused.write_all(GET).await;
    let a = read_answer(&mut refused, Duration::from_secs(2)).await;
    let c = counts(&stats);
    println!("4th connection from 127.0.0.2 with 3 busy at per-ip cap 3: {a:?}; {c:?}");
    assert!(
        a.closed && a.bytes.is_empty(),
        "must be closed at once: {a:?}"
    );
    assert_eq!((c.refused_per_ip, c.shed), (1, 0), "{c:?}");
    // Another address is not affected.
    let mut other = connect_from(Ipv4Addr::LOCALHOST, stack.addr).await;
    other.write_all(GET).await.unwrap();
    assert_eq!(
        read_answer(&mut other, Duration::from_millis(700))
            .await
            .status(),
        200
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn proxy_protocol_clients_are_capped_by_their_own_address_not_the_balancers() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let stack = stack(
        &origin,
        ServeOptions {
            proxy_protocol: true,
            trusted_proxy_protocol_peers: vec![Prefix::from_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))],
            max_connections_per_ip: 2,
            ..opts(&stats)
        },
    )
    .await;
    let via_balancer = |client: &str| {
        let mut b = format!("PROXY TCP4 {client} 127.0.0.1 40000 80\r\n").into_bytes();
        b.extend_from_slice(STALLED_POST);
        b
    };
    // Four busy connections from the one balancer address, for four clients: all admitted.
    let mut held = Vec::new();
    for client in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"] {
        let mut s = TcpStream::connect(stack.addr).await.unwrap();
        s.write_all(&via_balancer(client)).await.unwrap();
        held.push(s);
    }
    assert!(
        eventually(SLACK, || counts(&stats).active == 4
            && counts(&stats).idle == 0)
        .await
    );
    // A second busy one for 192.0.2.1 fits its cap of 2; a third does not.
    let mut second = TcpStream::connect(stack.addr).await.unwrap();
    second.write_all(&via_balancer("192.0.2.1")).await.unwrap();
    assert!(
        eventually(SLACK, || counts(&stats).active == 5
            && counts(&stats).idle == 0)
        .await
    );
    let mut third = TcpStream::connect(stack.addr).await.unwrap();
    third.write_all(&via_balancer("192.0.2.1")).await.unwrap();
    let closed = closed_within(&mut third, Duration::from_secs(2)).await;
    let c = counts(&stats);
    println!("PROXY clients behind one balancer at per-ip cap 2: third for 192.0.2.1 closed after {closed:?}; {c:?}");
    assert!(closed.is_some());
    assert_eq!((c.refused_per_ip, c.shed), (1, 0), "{c:?}");
    for s in &mut held {
        assert!(closed_within(s, Duration::from_millis(100)).await.is_none());
    }
    stack.shutdown().await;
}

/// The daemon runs one `serve` per core for each listener, all sharing the listener's stats:
/// the caps count across them, not per serving thread.
#[tokio::test]
async fn caps_count_across_every_serve_sharing_the_stats() {
    let origin = RecordingOrigin::start().await;
    let stats = Arc::new(ServeStats::default());
    let capped = || ServeOptions {
        max_connections: 3,
        ..opts(&stats)
    };
    let first = stack(&origin, capped()).await;
    let second = stack(&origin, capped()).await;
    let local = Ipv4Addr::LOCALHOST;
    let mut busy = vec![
        busy_from(local, first.addr).await,
        busy_from(local, first.addr).await,
        busy_from(local, second.addr).await,
    ];
    assert!(
        eventually(SLACK, || counts(&stats).idle == 0
            && counts(&stats).active == 3)
        .await
    );
    let mut extra = TcpStream::connect(second.addr).await.unwrap();
    let _ = extra.write_all(GET).await;
    let closed = closed_within(&mut extra, Duration::from_secs(2)).await;
    let c = counts(&stats);
    assert!(
        closed.is_some(),
        "the 4th connection across both must be refused: {c:?}"
    );
    assert_eq!((c.refused_total, c.shed), (1, 0), "{c:?}");
    for s in &mut busy {
        assert!(closed_within(s, Duration::from_millis(200)).await.is_none());
    }
    first.shutdown().await;
    second.shutdown().await;
}
