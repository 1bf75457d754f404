//! The HTTP traffic of the lab's HTTP phase: a minimal HTTP/1.1 client (one request per
//! connection, so every request also shows what XDP does to a new connection), paced
//! legitimate clients that record status and latency, and the attacker (the WAF payloads, then a
//! login brute force until it is limited and jailed, then attempts that must not connect).
//! Every loop is bounded in count or by the phase's stop flag and short timeouts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::http_payloads::{attacks, percent_encode, Carrier};
use super::http_setup::LOGIN_FAILURES_ALLOWED;

/// How long a request may wait for its answer once connected.
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts after the jail: how many, how far apart, how long each waits for the SYN-ACK.
const AFTER_JAIL_ATTEMPTS: u32 = 3;
const AFTER_JAIL_GAP: Duration = Duration::from_millis(300);
const AFTER_JAIL_CONNECT: Duration = Duration::from_millis(500);
/// Failure messages kept for the report.
const KEPT_FAILURES: usize = 5;

/// One request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: &'static str,
    pub target: String,
    pub form: Option<String>,
}

impl Request {
    pub fn get(target: &str) -> Request {
        Request {
            method: "GET",
            target: target.to_string(),
            form: None,
        }
    }

    pub fn post(target: &str, form: Option<String>) -> Request {
        Request {
            method: "POST",
            target: target.to_string(),
            form,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let body = self.form.as_deref().unwrap_or("");
        let ctype = match self.form {
            Some(_) => "Content-Type: application/x-www-form-urlencoded\r\n",
            None => "",
        };
        format!(
            "{} {} HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: rampart-lab\r\n{ctype}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.method,
            self.target,
            body.len()
        )
        .into_bytes()
    }
}

/// What came back. `status` 0: no answer (`connected` says whether the connection opened).
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub connected: bool,
    pub status: u16,
    pub body: String,
    pub latency: Duration,
}

/// Sends `req` to `addr` on a new connection and reads the whole answer.
pub fn request(addr: SocketAddr, req: &Request, connect_timeout: Duration) -> Response {
    let start = Instant::now();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, connect_timeout) else {
        return Response {
            latency: start.elapsed(),
            ..Response::default()
        };
    };
    let mut r = Response {
        connected: true,
        ..Response::default()
    };
    let _ = s.set_read_timeout(Some(READ_TIMEOUT));
    if s.write_all(&req.bytes()).is_ok() {
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        r.status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        r.body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
    }
    r.latency = start.elapsed();
    r
}

/// What the legitimate clients saw, shared by their threads and read by the live summary.
#[derive(Debug, Default)]
pub struct LegitStats {
    pub sent: AtomicU64,
    pub served: AtomicU64,
    pub failed: AtomicU64,
    /// Answers by who produced them (the lab origins and workerd say their name).
    pub origin_a: AtomicU64,
    pub origin_b: AtomicU64,
    pub workerd: AtomicU64,
    /// Latency of every served request, in microseconds.
    latencies_us: Mutex<Vec<u64>>,
    failures: Mutex<Vec<String>>,
}

impl LegitStats {
    fn record(&self, req: &Request, r: &Response) {
        self.sent.fetch_add(1, Relaxed);
        if r.status != 200 {
            self.failed.fetch_add(1, Relaxed);
            let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if f.len() < KEPT_FAILURES {
                let what = if r.connected {
                    "answered"
                } else {
                    "no connection"
                };
                f.push(format!(
                    "{} {}: {what}, status {}",
                    req.method, req.target, r.status
                ));
            }
            return;
        }
        self.served.fetch_add(1, Relaxed);
        let us = u64::try_from(r.latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies_us
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(us);
        let by = if r.body.starts_with("origin a:") {
            &self.origin_a
        } else if r.body.starts_with("origin b:") {
            &self.origin_b
        } else if r.body.starts_with("hello from workerd:") {
            &self.workerd
        } else {
            return;
        };
        by.fetch_add(1, Relaxed);
    }

    /// The `q` quantile (0..=1) of the latencies so far.
    pub fn latency(&self, q: f64) -> Option<Duration> {
        let mut v = self
            .latencies_us
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        quantile(&mut v, q).map(Duration::from_micros)
    }

    pub fn failures(&self) -> Vec<String> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Nearest-rank quantile; `None` for no values.
pub fn quantile(v: &mut [u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = (q * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// One legitimate client: `rate` requests per second until `stop`, every fourth to the Worker
/// (`/edge/…`), the rest to the shop on the origins. Call on a thread inside the client's
/// namespace.
pub fn legit_client(
    front: SocketAddr,
    id: usize,
    rate: u32,
    stop: &AtomicBool,
    stats: &LegitStats,
) {
    let gap = Duration::from_secs(1) / rate.max(1);
    let start = Instant::now();
    let mut i: u32 = 0;
    while !stop.load(Relaxed) {
        let target = if i % 4 == 3 {
            format!("/edge/hello?client={id}&n={i}")
        } else {
            format!("/shop/item/{}?client={id}&ref=home", i % 50)
        };
        let req = Request::get(&target);
        let r = request(front, &req, Duration::from_secs(1));
        stats.record(&req, &r);
        i += 1;
        let due = start + gap * i;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

/// What the attacker saw.
#[derive(Debug, Default)]
pub struct AttackerStats {
    pub waf_sent: AtomicU64,
    pub waf_blocked: AtomicU64,
    /// Payloads answered with anything but 403: `class carrier payload -> status`.
    waf_passed: Mutex<Vec<String>>,
    /// Statuses of the login attempts before the jail, in order (0: no answer).
    login_codes: Mutex<Vec<u16>>,
    pub after_jail_attempts: AtomicU64,
    pub after_jail_connected: AtomicU64,
}

impl AttackerStats {
    pub fn waf_passed(&self) -> Vec<String> {
        self.waf_passed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn login_codes(&self) -> Vec<u16> {
        self.login_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn push_login(&self, code: u16) {
        self.login_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(code);
    }
}

/// The attacker, in order (a jailed address cannot connect, so the WAF payloads go first): every
/// SQLi and XSS payload as a query argument and as a form field; then failed logins until one is
/// limited (429); then a few attempts that the XDP jail must stop. Call on a thread inside the
/// attacker's namespace.
pub fn attacker(front: SocketAddr, stop: &AtomicBool, stats: &AttackerStats) {
    for (class, carrier, payload) in attacks() {
        if stop.load(Relaxed) {
            return;
        }
        let enc = percent_encode(payload);
        let (req, name) = match carrier {
            Carrier::Query => (Request::get(&format!("/search?q={enc}")), "query"),
            Carrier::Form => (Request::post("/search", Some(format!("q={enc}"))), "form"),
        };
        let r = request(front, &req, Duration::from_secs(1));
        stats.waf_sent.fetch_add(1, Relaxed);
        if r.status == 403 {
            stats.waf_blocked.fetch_add(1, Relaxed);
        } else {
            stats
                .waf_passed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{class} {name} {payload:?} -> {}", r.status));
        }
    }
    let login = Request::post("/login", Some("user=admin&password=guess".into()));
    for _ in 0..LOGIN_FAILURES_ALLOWED + 5 {
        if stop.load(Relaxed) {
            return;
        }
        let code = request(front, &login, Duration::from_secs(1)).status;
        stats.push_login(code);
        if code == 429 {
            break;
        }
    }
    for _ in 0..AFTER_JAIL_ATTEMPTS {
        std::thread::sleep(AFTER_JAIL_GAP);
        if stop.load(Relaxed) {
            return;
        }
        let r = request(front, &login, AFTER_JAIL_CONNECT);
        stats.after_jail_attempts.fetch_add(1, Relaxed);
        if r.connected {
            stats.after_jail_connected.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), Some(50));
        assert_eq!(quantile(&mut v, 0.99), Some(99));
        assert_eq!(quantile(&mut v, 1.0), Some(100));
        assert_eq!(quantile(&mut v, 0.0), Some(1));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn requests_are_complete_http11_messages() {
        let text = String::from_utf8(Request::post("/login", Some("a=1".into())).bytes()).unwrap();
        assert!(text.starts_with("POST /login HTTP/1.1\r\nHost: shop.example\r\n"));
        assert!(text.contains("Content-Type: application/x-www-form-urlencoded\r\n"));
        assert!(text.ends_with("Content-Length: 3\r\nConnection: close\r\n\r\na=1"));
        let get = String::from_utf8(Request::get("/x").bytes()).unwrap();
        assert!(!get.contains("Content-Type") && get.ends_with("\r\n\r\n"));
    }

    #[test]
    fn legitimate_answers_are_sorted_by_who_served_them() {
        let s = LegitStats::default();
        let req = Request::get("/");
        let ok = |body: &str| Response {
            connected: true,
            status: 200,
            body: body.into(),
            latency: Duration::from_millis(2),
        };
        s.record(&req, &ok("origin a: GET /"));
        s.record(&req, &ok("hello from workerd: GET /edge/x"));
        s.record(&req, &Response::default());
        assert_eq!(s.sent.load(Relaxed), 3);
        assert_eq!(s.served.load(Relaxed), 2);
        assert_eq!((s.origin_a.load(Relaxed), s.workerd.load(Relaxed)), (1, 1));
        assert_eq!(s.latency(0.5), Some(Duration::from_millis(2)));
        assert_eq!(s.failures(), ["GET /: no connection, status 0"]);
    }
}
