//! `rampart run` end to end in network namespaces: a client namespace talks to the edge, where
//! the daemon has XDP attached natively to the veth, the L7 engine in front of a reverse proxy,
//! two origins (our lab origin) and workerd behind it. Checks: clean requests reach an origin and
//! workerd; SQLi is blocked with the rule id in the audit log; a brute force is rate limited and
//! then jailed in XDP (the client's SYNs are dropped); a killed origin is marked down and traffic
//! goes to the other; reloads under traffic keep serving; metrics and the control socket answer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rampart_lab::netns::{veth, End, Netns};
use rampart_lab::process::{Proc, RemoveDir};
use rampart_lab::workerd::{default_bin, Workerd};
use rampart_testkit::{rampart_bin, root_or_skip};

const EDGE_IP: &str = "10.77.0.2";
const CLIENT_IP: &str = "10.77.0.1";

fn spawn(args: &[&str], log: &Path) -> Proc {
    Proc::spawn(&rampart_bin(), args, log).expect("spawn rampart")
}

/// One HTTP/1.1 request with `Connection: close`; (status, body). Status 0: no connection.
fn http(addr: SocketAddr, method: &str, target: &str, timeout: Duration) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("{method} {target} HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ctl(socket: &Path, req: &str) -> String {
    let out = Command::new(rampart_bin())
        .args(["ctl", "--socket"])
        .arg(socket)
        .args(req.split_whitespace())
        .output()
        .expect("rampart ctl");
    assert!(
        out.status.success(),
        "ctl {req}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_config(dir: &Path, pin: &Path, iface: &str) -> PathBuf {
    std::fs::write(
        dir.join("rules.yaml"),
        r#"version: 1
rules:
  - id: 3001
    ref: edge-to-workers
    expression: starts_with(http.request.uri.path, "/edge/")
    action: route
    target: workers
  - id: 3002
    ref: login-bruteforce
    expression: http.request.method eq "POST" and http.request.uri.path eq "/login"
    action: ratelimit
    ratelimit: { characteristics: [ip.src], period: 60, requests_per_period: 5, mitigation_timeout: 2, counting_expression: 'http.response.code eq 401', jail_after: 1, jail_duration: 300 }
"#,
    )
    .unwrap();
    let cfg = format!(
        r#"[dataplane]
interfaces = ["{iface}"]
mode = "native"
pin_dir = "{pin}"
rules = "rules.yaml"

[detector]
enabled = true

[l7]
audit_log = "{audit}"

[[listeners]]
addr = "{EDGE_IP}:8080"

[proxy]
default_pool = "app"
retries = 1

[[proxy.pools]]
name = "app"
origins = ["http://127.0.0.1:18001", "http://127.0.0.1:18002"]
balance = "round_robin"
[proxy.pools.health]
path = "/healthz"
interval_ms = 100
timeout_ms = 200
unhealthy_after = 2
healthy_after = 1

[[proxy.pools]]
name = "workers"
origins = ["http://127.0.0.1:18787"]

[metrics]
addr = "127.0.0.1:19101"

[control]
socket = "{sock}"

[log]
format = "json"
"#,
        pin = pin.display(),
        audit = dir.join("audit.log").display(),
        sock = dir.join("ctl.sock").display(),
    );
    let path = dir.join("rampart.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[test]
fn daemon_protects_the_edge_end_to_end() {
    if !root_or_skip("daemon_protects_the_edge_end_to_end") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rampart-d6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pin = PathBuf::from(format!("/sys/fs/bpf/rampart-d6-{}", std::process::id()));
    let _cleanup = (RemoveDir(pin.clone()), RemoveDir(dir.clone()));
    let client = Netns::create("rd6-client").expect("netns");
    let edge = Netns::create("rd6-edge").expect("netns");
    veth(
        End {
            ns: &client,
            ifname: "c0",
            addr: &format!("{CLIENT_IP}/24"),
        },
        End {
            ns: &edge,
            ifname: "e0",
            addr: &format!("{EDGE_IP}/24"),
        },
    )
    .expect("veth");
    let config = write_config(&dir, &pin, "e0");

    let origin_a = spawn(
        &[
            "--netns",
            "rd6-edge",
            "origin",
            "--addr",
            "127.0.0.1:18001",
            "--name",
            "a",
        ],
        &dir.join("a.log"),
    );
    let _origin_b = spawn(
        &[
            "--netns",
            "rd6-edge",
            "origin",
            "--addr",
            "127.0.0.1:18002",
            "--name",
            "b",
        ],
        &dir.join("b.log"),
    );
    let _workerd = Workerd::start(
        &default_bin(),
        "127.0.0.1:18787".parse().unwrap(),
        Some("rd6-edge"),
        Duration::from_secs(20),
    )
    .expect("workerd (installed by `cargo xtask setup`)");
    let daemon = spawn(
        &[
            "--netns",
            "rd6-edge",
            "run",
            "--config",
            config.to_str().unwrap(),
        ],
        &dir.join("daemon.log"),
    );
    let front: SocketAddr = format!("{EDGE_IP}:8080").parse().unwrap();
    let get = |method: &'static str, target: &str| {
        let target = target.to_string();
        client
            .enter(move || http(front, method, &target, Duration::from_secs(2)))
            .expect("client namespace")
    };
    wait_until("the daemon's listener", Duration::from_secs(20), || {
        get("GET", "/healthz").0 == 200
    });

    // Clean requests reach both origins (round robin) and workerd.
    let bodies: Vec<String> = (0..4).map(|_| get("GET", "/shop").1).collect();
    assert!(
        bodies.iter().any(|b| b.starts_with("origin a:")),
        "{bodies:?}"
    );
    assert!(
        bodies.iter().any(|b| b.starts_with("origin b:")),
        "{bodies:?}"
    );
    assert!(
        bodies[0].contains(&format!("xff={CLIENT_IP}")),
        "{bodies:?}"
    );
    let (status, body) = get("GET", "/edge/hello");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("hello from workerd: GET /edge/hello"),
        "{body}"
    );

    // SQLi: blocked, with the rule id in the audit log.
    let (status, _) = get("GET", "/search?q=1%27%20OR%20%271%27%3D%271");
    assert_eq!(status, 403);
    let audit = std::fs::read_to_string(dir.join("audit.log")).expect("audit log");
    let line = audit
        .lines()
        .find(|l| l.contains(r#""action":"block""#))
        .expect("a block line");
    assert!(
        line.contains(r#""ruleId":900999"#) && line.contains(r#""ruleId":900100"#),
        "{line}"
    );
    assert!(
        line.contains(&format!(r#""clientIp":"{CLIENT_IP}""#)),
        "{line}"
    );

    // Reloads under traffic keep serving.
    let sock = dir.join("ctl.sock");
    let served = std::thread::scope(|s| {
        let t = s.spawn(|| (0..150).filter(|_| get("GET", "/shop").0 == 200).count());
        for _ in 0..5 {
            assert!(ctl(&sock, "rules reload").contains("HTTP rules running"));
            std::thread::sleep(Duration::from_millis(100));
        }
        t.join().expect("traffic thread")
    });
    assert_eq!(served, 150, "requests served during 5 reloads");

    // A bad rule file is refused on reload; the running rules stay and traffic is served.
    let rules = dir.join("rules.yaml");
    let good = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, "version: 1\nrules:\n  - id: 1\n    expression: http.request.uri.pth eq \"/\"\n    action: block\n").unwrap();
    let out = Command::new(rampart_bin())
        .args(["ctl", "--socket"])
        .arg(&sock)
        .args(["rules", "reload"])
        .output()
        .expect("rampart ctl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unknown field"),
        "{err}"
    );
    assert_eq!(
        get("GET", "/edge/still").0,
        200,
        "the running rules stay after a refused reload"
    );
    std::fs::write(&rules, good).unwrap();

    // A killed origin is marked down by the health checks; requests go to the other.
    drop(origin_a);
    wait_until("origin a marked down", Duration::from_secs(5), || {
        ctl(&sock, "status").contains("origin http://127.0.0.1:18001 down")
    });
    let after: Vec<String> = (0..10).map(|_| get("GET", "/shop").1).collect();
    assert!(
        after.iter().all(|b| b.starts_with("origin b:")),
        "{after:?}"
    );
    let metrics = edge
        .enter(|| {
            http(
                "127.0.0.1:19101".parse().unwrap(),
                "GET",
                "/metrics",
                Duration::from_secs(2),
            )
        })
        .expect("edge namespace")
        .1;
    assert!(
        metrics.contains(r#"rampart_origin_up{pool="app",origin="http://127.0.0.1:18001"} 0"#),
        "metrics"
    );
    assert!(
        metrics.contains("rampart_xdp_packets_total{reason="),
        "XDP counters in metrics"
    );

    // Brute force: failures are counted on the response (401); the sixth failure goes over the
    // limit of five, so the seventh attempt is limited and the client jailed in XDP.
    let codes: Vec<u16> = (0..7).map(|_| get("POST", "/login").0).collect();
    assert_eq!(&codes[..6], &[401; 6], "{codes:?}");
    assert_eq!(codes[6], 429, "{codes:?}");
    let mut listed = String::new();
    wait_until(
        "the client's address in the XDP denylist",
        Duration::from_secs(3),
        || {
            listed = ctl(&sock, "deny list");
            listed.contains(CLIENT_IP)
        },
    );
    let (status, _) = client
        .enter(|| http(front, "GET", "/shop", Duration::from_millis(800)))
        .expect("client namespace");
    assert_eq!(status, 0, "the jailed client's connection must not open");
    let counters = ctl(&sock, "counters");
    assert!(counters.contains("deny"), "{counters}");

    drop(daemon);
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    assert!(log.contains("stopped"), "graceful stop: {log}");
}
