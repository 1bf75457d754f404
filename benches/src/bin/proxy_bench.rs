//! The reverse proxy under wrk on loopback, beside nginx (Debian's package) as a plain reverse
//! proxy to the same origin, in the same run: requests per second and p99 latency for
//! `rampart run` with the default WAF rules and a rate limit on, and for nginx. `--soak SECONDS`
//! then holds Rampart at saturation and samples its resident memory every 5 s.
//!
//! The work is checked: Rampart must block a SQLi request (WAF on) and count at least as many
//! requests as wrk completed; wrk must report no socket errors and no non-2xx responses.
//! Otherwise the bench exits non-zero. The target (Rampart >= 1.0x nginx) is reported.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_lab::process::Proc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// wrk connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// Then hold Rampart at saturation this long, sampling memory (0: skip).
    #[arg(long, default_value_t = 0)]
    soak: u64,
}

const ORIGIN: &str = "127.0.0.1:18301";
const RAMPART: &str = "127.0.0.1:18302";
const NGINX: &str = "127.0.0.1:18303";
const METRICS: &str = "127.0.0.1:18309";

fn rampart_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent().expect("bin dir").join("rampart")
}

fn spawn(bin: &Path, args: &[&str], log: &Path) -> Result<Proc> {
    Proc::spawn(bin, args, log).with_context(|| format!("starting {}", bin.display()))
}

fn get(addr: &str, target: &str) -> Result<(u16, String)> {
    let addr: SocketAddr = addr.parse()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((
        status,
        out.split_once("\r\n\r\n").map_or("", |x| x.1).to_string(),
    ))
}

fn wait_up(addr: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if get(addr, "/healthz").is_ok_and(|(s, _)| s == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{addr} did not answer within 20 s")
}

struct WrkResult {
    rps: f64,
    p99_ms: f64,
    requests: u64,
    errors: String,
}

fn wrk(addr: &str, seconds: u64, connections: u32) -> Result<WrkResult> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
        ])
        .arg(format!("http://{addr}/shop/items?category=shoes&page=2"))
        .output()
        .context("running wrk (installed by `cargo xtask setup`)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(out.status.success(), "wrk failed: {text}");
    let field = |key: &str| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .map(|l| l.trim_start()[key.len()..].trim().to_string())
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .context("wrk: no Requests/sec")?;
    let p99 = field("99%").context("wrk: no p99")?;
    let p99_ms = if let Some(us) = p99.strip_suffix("us") {
        us.parse::<f64>()? / 1000.0
    } else if let Some(ms) = p99.strip_suffix("ms") {
        ms.parse()?
    } else if let Some(s) = p99.strip_suffix('s') {
        s.parse::<f64>()? * 1000.0
    } else {
        bail!("wrk: p99 `{p99}`")
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("wrk: no request count")?;
    let errors = text
        .lines()
        .filter(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
        .collect::<Vec<_>>()
        .join("; ");
    Ok(WrkResult {
        rps,
        p99_ms,
        requests,
        errors,
    })
}

fn metric(name: &str) -> Result<f64> {
    let (_, body) = get(METRICS, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("metric {name}"))
}

fn rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    Ok(kb / 1024.0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("rampart-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("nginx"))?;
    let bin = rampart_bin();
    ensure!(
        bin.is_file(),
        "{} missing: build with `cargo build --release -p rampart`",
        bin.display()
    );

    let _origin = spawn(
        &bin,
        &["origin", "--addr", ORIGIN, "--name", "bench"],
        &dir.join("origin.log"),
    )?;
    std::fs::write(
        dir.join("rules.yaml"),
        "version: 1\nrules:\n  - id: 5001\n    ref: per-client-limit\n    expression: starts_with(http.request.uri.path, \"/\")\n    action: ratelimit\n    ratelimit: { characteristics: [ip.src], period: 10, requests_per_period: 100000000 }\n",
    )?;
    std::fs::write(
        dir.join("rampart.toml"),
        format!(
            "[dataplane]\nrules = \"rules.yaml\"\n[detector]\nenabled = false\n[[listeners]]\naddr = \"{RAMPART}\"\n[proxy]\n[[proxy.pools]]\nname = \"app\"\norigins = [\"http://{ORIGIN}\"]\n[metrics]\naddr = \"{METRICS}\"\n[control]\nsocket = \"{}\"\n[log]\nlevel = \"warn\"\n",
            dir.join("ctl.sock").display()
        ),
    )?;
    let config = dir.join("rampart.toml");
    let rampart = spawn(
        &bin,
        &["run", "--config", &config.display().to_string()],
        &dir.join("rampart.log"),
    )?;
    std::fs::write(
        dir.join("nginx/nginx.conf"),
        format!(
            "user root;\nworker_processes 2;\ndaemon off;\npid {d}/nginx/nginx.pid;\nerror_log {d}/nginx/error.log warn;\nevents {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/nginx/body;\n  proxy_temp_path {d}/nginx/proxy;\n  upstream origin {{ server {ORIGIN}; keepalive 64; }}\n  server {{\n    listen {NGINX};\n    location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }}\n  }}\n}}\n",
            d = dir.display()
        ),
    )?;
    let nginx_conf = dir.join("nginx/nginx.conf");
    let _nginx = spawn(
        Path::new("nginx"),
        &["-c", &nginx_conf.display().to_string()],
        &dir.join("nginx.log"),
    )?;
    wait_up(ORIGIN)?;
    wait_up(RAMPART)?;
    wait_up(NGINX)?;

    let (status, _) = get(RAMPART, "/search?q=1%27%20OR%20%271%27%3D%271")?;
    ensure!(status == 403, "the WAF must block SQLi (got {status})");
    let before = metric("rampart_http_requests_total")?;

    println!(
        "== proxy throughput (wrk -t2 -c{} -d{}s, loopback, origin: rampart's lab origin) ==",
        args.connections, args.seconds
    );
    let r = wrk(RAMPART, args.seconds, args.connections)?;
    let n = wrk(NGINX, args.seconds, args.connections)?;
    let counted = metric("rampart_http_requests_total")? - before;
    println!(
        "rampart (default WAF + rate limit): {:>9.0} req/s  p99 {:>7.2} ms  {} requests {}",
        r.rps, r.p99_ms, r.requests, r.errors
    );
    println!(
        "nginx (plain reverse proxy):        {:>9.0} req/s  p99 {:>7.2} ms  {} requests {}",
        n.rps, n.p99_ms, n.requests, n.errors
    );
    println!(
        "rampart / nginx: {:.2}x req/s (target >= 1.0x)",
        r.rps / n.rps
    );
    ensure!(
        counted >= r.requests as f64,
        "rampart counted {counted} requests, wrk completed {}",
        r.requests
    );
    ensure!(r.errors.is_empty(), "rampart: {}", r.errors);
    let limited = metric("rampart_http_rule_matches_total{rule_id=\"5001\"}")?;
    ensure!(
        limited >= r.requests as f64,
        "the rate-limit rule saw {limited} of {} requests",
        r.requests
    );

    if args.soak > 0 {
        println!(
            "== soak: {} s at saturation on rampart, resident memory every 5 s ==",
            args.soak
        );
        let pid = rampart.id();
        let mut samples = vec![rss_mib(pid)?];
        let soak = std::thread::spawn({
            let s = args.soak;
            let c = args.connections;
            move || wrk(RAMPART, s, c)
        });
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(args.soak) {
            std::thread::sleep(Duration::from_secs(5));
            samples.push(rss_mib(pid)?);
        }
        let w = soak.join().map_err(|_| anyhow::anyhow!("wrk thread"))??;
        let txt: Vec<String> = samples.iter().map(|m| format!("{m:.1}")).collect();
        println!("rss MiB: {}", txt.join(" "));
        println!(
            "soak: {:.0} req/s, p99 {:.2} ms, {} requests, errors: {}",
            w.rps,
            w.p99_ms,
            w.requests,
            if w.errors.is_empty() {
                "none"
            } else {
                &w.errors
            }
        );
        ensure!(w.errors.is_empty(), "rampart under soak: {}", w.errors);
    }
    drop(rampart);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
