//! OWASP CRS v4 (the corpora's copy, unmodified, PL1, anomaly scoring) in Rampart and in
//! nginx + ModSecurity v3 (Debian's `libnginx-mod-http-modsecurity`), from one run: CPU per
//! request of the server process under wrk on loopback, for a typical browser GET and a
//! 64 KiB urlencoded form, each beside the same server without CRS, so the figure that
//! matters is what CRS adds per request. Rampart's engine alone (in-process, thread CPU) is
//! printed too.
//!
//! The work is checked before anything is measured: both servers refuse a SQL injection with
//! 403 and pass the benign requests with 200; wrk must report no errors and no non-2xx.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use rampart::l7::seclang::{HttpInput, RuleSet, Source};
use rampart_lab::process::Proc;

#[derive(Parser)]
struct Args {
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

const ORIGIN: &str = "127.0.0.1:18501";
const NGINX: &str = "127.0.0.1:18502";
const NGINX_MS: &str = "127.0.0.1:18503";
const RAMPART: &str = "127.0.0.1:18504";
const RAMPART_CRS: &str = "127.0.0.1:18505";
const GET_TARGET: &str = "/shop/items?category=shoes&size=42&sort=price_asc&page=2";
const SQLI_TARGET: &str = "/shop/items?id=1%27%20or%20%271%27%3D%271";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn corpora() -> PathBuf {
    std::env::var_os("RAMPART_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpora"))
        })
}

fn form() -> String {
    rampart_benches::form_64k().0
}

/// One request (`Connection: close`); the status.
fn status(addr: &str, method: &str, target: &str, body: &str) -> Result<u16> {
    let addr: SocketAddr = addr.parse()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let ct = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    write!(s, "{method} {target} HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: {UA}\r\nAccept: text/html\r\n{ct}Connection: close\r\n\r\n{body}")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

fn wait_up(addr: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if status(addr, "GET", "/healthz", "").is_ok_and(|s| s == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{addr} did not answer within 30 s")
}

/// utime + stime of `pid` and its children's threads, in seconds (`/proc/PID/stat`).
fn cpu_seconds(pids: &[u32]) -> Result<f64> {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total = 0.0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let after = stat.rsplit_once(") ").context("stat")?.1;
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
        total += ticks / tick;
    }
    Ok(total)
}

/// nginx's workers: the master's children.
fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit_once(") ")
                    .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

struct Load {
    rps: f64,
    requests: u64,
    cpu_us: f64,
}

/// wrk (1 thread, 8 connections) for `seconds`; CPU of `pids` per completed request.
fn load(addr: &str, script: &Path, seconds: u64, pids: &[u32]) -> Result<Load> {
    let before = cpu_seconds(pids)?;
    let out = Command::new("wrk")
        .args([
            "-t1",
            "-c8",
            "--timeout",
            "30s",
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(script)
        .arg(format!("http://{addr}{GET_TARGET}"))
        .output()
        .context("running wrk (installed by `cargo xtask setup`)")?;
    let used = cpu_seconds(pids)? - before;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(out.status.success(), "wrk failed: {text}");
    ensure!(
        !text.contains("Socket errors") && !text.contains("Non-2xx"),
        "{addr}: {text}"
    );
    let rps: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .context("wrk: no Requests/sec")?;
    let requests: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .context("wrk: no request count")?;
    ensure!(requests > 0, "{addr}: no request completed");
    Ok(Load {
        rps,
        requests,
        cpu_us: used * 1e6 / requests as f64,
    })
}

/// The engine alone: mean thread CPU per evaluation over a bounded loop.
fn engine_cpu_us(set: &RuleSet, input: &HttpInput) -> f64 {
    let thread_cpu = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid timespec out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
    };
    let (start, wall) = (thread_cpu(), Instant::now());
    let mut n = 0u32;
    while n < 20 || (wall.elapsed() < Duration::from_secs(2) && n < 100_000) {
        std::hint::black_box(set.evaluate(std::hint::black_box(input)));
        n += 1;
    }
    (thread_cpu() - start) * 1e6 / f64::from(n)
}

fn input(method: &str, target: &str, body: &str) -> HttpInput {
    let mut headers = vec![
        (b"Host".to_vec(), b"shop.example".to_vec()),
        (b"User-Agent".to_vec(), UA.as_bytes().to_vec()),
        (b"Accept".to_vec(), b"text/html".to_vec()),
    ];
    if !body.is_empty() {
        headers.push((
            b"Content-Type".to_vec(),
            b"application/x-www-form-urlencoded".to_vec(),
        ));
        headers.push((
            b"Content-Length".to_vec(),
            body.len().to_string().into_bytes(),
        ));
    }
    HttpInput {
        headers,
        ..HttpInput::simple(method, target, &[], body.as_bytes())
    }
}

/// CRS v4 loaded into the engine, with the checks that it passes the benign requests and
/// denies a SQL injection.
fn engine_checked(crs: &Path, form: &str) -> Result<(RuleSet, HttpInput, HttpInput)> {
    let set = RuleSet::load(&[
        Source::File(crs.join("crs-setup.conf.example")),
        Source::Dir(crs.join("rules")),
    ])
    .map_err(|e| anyhow::anyhow!("CRS v4 loads: {e}"))?;
    let get = input("GET", GET_TARGET, "");
    let post = input("POST", "/shop/checkout", form);
    ensure!(
        set.evaluate(&get).interruption.is_none(),
        "engine: the GET passes"
    );
    ensure!(
        set.evaluate(&post).interruption.is_none(),
        "engine: the form passes"
    );
    let attack = set.evaluate(&input("GET", SQLI_TARGET, ""));
    ensure!(
        attack.interruption.map(|i| i.rule_id) == Some(949110),
        "engine: SQLi denied by 949110"
    );

    Ok((set, get, post))
}

/// The origin, nginx (plain and with ModSecurity + CRS, one worker) and two `rampart run`
/// (without and with `[crs]`), each checked: SQLi refused where CRS runs, benign requests pass.
struct Servers {
    _origin: Proc,
    _nginx: Proc,
    nginx_workers: Vec<u32>,
    rampart: Proc,
    rampart_crs: Proc,
}

fn start_servers(dir: &Path, bin: &Path, crs: &Path, form: &str) -> Result<Servers> {
    let d = dir.display();
    let origin = Proc::spawn(
        bin,
        &["origin", "--addr", ORIGIN, "--name", "bench"],
        &dir.join("origin.log"),
    )?;
    // ModSecurity as its recommended configuration sets it up, then CRS as shipped.
    std::fs::write(
        dir.join("modsec.conf"),
        format!(
            "SecRuleEngine On\nSecRequestBodyAccess On\nSecRequestBodyLimit 13107200\nSecRequestBodyNoFilesLimit 131072\nSecRequestBodyLimitAction Reject\nSecAuditEngine Off\n\
             SecRule REQUEST_HEADERS:Content-Type \"^(?:application(?:/soap\\+|/)|text/)xml\" \"id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n\
             SecRule REQUEST_HEADERS:Content-Type \"^application/json\" \"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
             Include {}/crs-setup.conf.example\nInclude {}/rules/*.conf\n",
            crs.display(),
            crs.display()
        ),
    )?;
    let server = |addr: &str, modsec: bool| {
        let m = if modsec {
            format!("modsecurity on; modsecurity_rules_file {d}/modsec.conf;")
        } else {
            String::new()
        };
        format!("server {{ listen {addr}; client_body_buffer_size 128k; {m} location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}\n")
    };
    // One worker: CPU per request is one process's, and wrk has the other core.
    std::fs::write(
        dir.join("nginx/nginx.conf"),
        format!(
            "load_module modules/ngx_http_modsecurity_module.so;\nuser root;\nworker_processes 1;\ndaemon off;\npid {d}/nginx/nginx.pid;\nerror_log {d}/nginx/error.log warn;\nevents {{ worker_connections 1024; }}\nhttp {{\n access_log off;\n client_body_temp_path {d}/nginx/body;\n proxy_temp_path {d}/nginx/proxy;\n upstream origin {{ server {ORIGIN}; keepalive 32; }}\n {}\n {}\n}}\n",
            server(NGINX, false),
            server(NGINX_MS, true)
        ),
    )?;
    let nginx_conf = dir.join("nginx/nginx.conf").display().to_string();
    let nginx = Proc::spawn(
        Path::new("nginx"),
        &["-c", &nginx_conf],
        &dir.join("nginx.log"),
    )?;
    let rampart_conf = |name: &str, addr: &str, crs_on: bool| -> Result<PathBuf> {
        let section = if crs_on {
            format!(
                "[crs]\nenabled = true\nsetup = \"{}\"\nrules = \"{}\"\n",
                crs.join("crs-setup.conf.example").display(),
                crs.join("rules").display()
            )
        } else {
            String::new()
        };
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "{section}[detector]\nenabled = false\n[l7]\ndefault_rules = false\n[[listeners]]\naddr = \"{addr}\"\n[[proxy.pools]]\nname = \"app\"\norigins = [\"http://{ORIGIN}\"]\n[control]\nsocket = \"{d}/{name}.sock\"\n[log]\nlevel = \"warn\"\n"
            ),
        )?;
        Ok(path)
    };
    let plain_conf = rampart_conf("plain", RAMPART, false)?.display().to_string();
    let crs_conf = rampart_conf("crs", RAMPART_CRS, true)?
        .display()
        .to_string();
    let rampart = Proc::spawn(
        bin,
        &["run", "--config", &plain_conf],
        &dir.join("plain.log"),
    )?;
    let rampart_crs = Proc::spawn(bin, &["run", "--config", &crs_conf], &dir.join("crs.log"))?;
    for a in [ORIGIN, NGINX, NGINX_MS, RAMPART, RAMPART_CRS] {
        wait_up(a)?;
    }
    let nginx_workers = children(nginx.id());
    ensure!(
        nginx_workers.len() == 1,
        "one nginx worker, found {nginx_workers:?}"
    );
    for (addr, want) in [
        (NGINX_MS, 403),
        (RAMPART_CRS, 403),
        (NGINX, 200),
        (RAMPART, 200),
    ] {
        let s = status(addr, "GET", SQLI_TARGET, "")?;
        ensure!(s == want, "{addr}: SQLi answered {s}, expected {want}");
    }
    for addr in [NGINX_MS, RAMPART_CRS] {
        ensure!(
            status(addr, "GET", GET_TARGET, "")? == 200,
            "{addr}: GET must pass"
        );
        ensure!(
            status(addr, "POST", "/shop/checkout", form)? == 200,
            "{addr}: form must pass"
        );
    }

    Ok(Servers {
        _origin: origin,
        _nginx: nginx,
        nginx_workers,
        rampart,
        rampart_crs,
    })
}

/// A wrk script sending the bench's headers (and the form, for a POST).
fn lua(dir: &Path, name: &str, method: &str, body: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    let mut s = format!("wrk.method = \"{method}\"\nwrk.headers[\"Host\"] = \"shop.example\"\nwrk.headers[\"User-Agent\"] = \"{UA}\"\nwrk.headers[\"Accept\"] = \"text/html\"\n");
    if !body.is_empty() {
        s.push_str(&format!("wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\nwrk.body = \"{body}\"\n"));
        s.push_str("request = function() return wrk.format(nil, \"/shop/checkout\") end\n");
    }
    std::fs::write(&path, s)?;
    Ok(path)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let crs = corpora().join("crs-v4");
    let dir = std::env::temp_dir().join(format!("rampart-crs-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("nginx"))?;
    let bin = std::env::current_exe()?
        .parent()
        .context("bin dir")?
        .join("rampart");
    ensure!(
        bin.is_file(),
        "{} missing: build with `cargo build --release -p rampart`",
        bin.display()
    );
    let form = form();

    let (set, get, post) = engine_checked(&crs, &form)?;

    let servers = start_servers(&dir, &bin, &crs, &form)?;
    let workers = &servers.nginx_workers;

    let get_lua = lua(&dir, "get.lua", "GET", "")?;
    let form_lua = lua(&dir, "form.lua", "POST", &form)?;
    println!(
        "== OWASP CRS v4 PL1: CPU per request (wrk -t1 -c8 -d{}s on loopback, one run) ==",
        args.seconds
    );
    let mut added = Vec::new();
    for (what, script, engine_in) in [
        ("typical GET", &get_lua, &get),
        ("64 KiB form", &form_lua, &post),
    ] {
        let n = load(NGINX, script, args.seconds, workers)?;
        let nm = load(NGINX_MS, script, args.seconds, workers)?;
        let r = load(RAMPART, script, args.seconds, &[servers.rampart.id()])?;
        let rc = load(
            RAMPART_CRS,
            script,
            args.seconds,
            &[servers.rampart_crs.id()],
        )?;
        let engine = engine_cpu_us(&set, engine_in);
        println!("{what}:");
        for (name, l) in [
            ("nginx (no WAF)", &n),
            ("nginx + ModSecurity + CRS", &nm),
            ("rampart run (no WAF)", &r),
            ("rampart run + CRS", &rc),
        ] {
            println!(
                "  {name:<28} {:>9.0} req/s  {:>9.1} µs CPU/request  ({} requests)",
                l.rps, l.cpu_us, l.requests
            );
        }
        let ms_add = nm.cpu_us - n.cpu_us;
        let rc_add = rc.cpu_us - r.cpu_us;
        println!("  CRS adds: ModSecurity {ms_add:.1} µs, Rampart {rc_add:.1} µs ({:.1}x less); Rampart's engine alone {engine:.1} µs", ms_add / rc_add.max(0.1));
        added.push((what, ms_add, rc_add, engine));
    }
    let targets = [("typical GET", 50.0), ("64 KiB form", 1000.0)];
    for ((what, ms, rc, engine), (_, target)) in added.iter().zip(targets) {
        println!("target {what}: engine {engine:.1} µs vs ≤ {target} µs ({}); ModSecurity/Rampart added CPU {:.1}x (target ≥ 10x)", if *engine <= target { "met" } else { "not met" }, ms / rc.max(0.1));
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
