//! The stage of the lab's HTTP phase: three namespaces, the daemon's configuration and rule
//! file, and the child processes (two lab origins, workerd, `rampart run`). [`Stage`] owns all
//! of it and tears it down in a safe order on drop: the daemon first (it detaches XDP from the
//! edge's veths), then the origins and workerd, then the namespaces, then the pins and files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::netns::{veth, End, LabError, Netns};
use super::process::{Proc, RemoveDir};
use super::workerd::Workerd;

pub const CLIENT_NS: &str = "rl-client";
pub const ATTACKER_NS: &str = "rl-attacker";
pub const EDGE_NS: &str = "rl-edge";

/// Client `c0` 10.216.1.2/24 ↔ edge `ec0` 10.216.1.1/24.
pub const CLIENT_IP: &str = "10.216.1.2";
pub const EDGE_CLIENT_SIDE: &str = "10.216.1.1";
/// Attacker `a0` 10.216.2.2/24 ↔ edge `ea0` 10.216.2.1/24 (the flood's victim).
pub const ATTACKER_IP: &str = "10.216.2.2";
pub const EDGE_ATTACKER_SIDE: &str = "10.216.2.1";
pub const ATTACKER_IF: &str = "a0";
/// The daemon's listener (every address of the edge, so both links reach it).
pub const PROXY_PORT: u16 = 8080;
const ORIGINS: [(&str, &str); 2] = [("a", "127.0.0.1:18101"), ("b", "127.0.0.1:18102")];
const WORKERD_ADDR: &str = "127.0.0.1:18787";

/// The ids of the site rules the phase loads (the report names them).
pub const ROUTE_RULE: u32 = 3001;
pub const BRUTE_FORCE_RULE: u32 = 3002;
/// The brute-force limit: failed logins allowed per minute before the limit (and the jail).
pub const LOGIN_FAILURES_ALLOWED: u32 = 5;

/// What the stage needs from outside.
#[derive(Clone, Debug)]
pub struct StageConfig {
    pub rampart_bin: PathBuf,
    pub workerd_bin: PathBuf,
    /// The detector's static floor (packets per second).
    pub floor_pps: u32,
    /// How long the daemon may take to serve its first request.
    pub ready_within: Duration,
}

/// Everything the phase runs on. Fields drop in declaration order, which is the teardown order.
pub struct Stage {
    pub daemon: Option<Proc>,
    _origins: Vec<Proc>,
    _workerd: Workerd,
    pub client: Netns,
    pub attacker: Netns,
    _edge: Netns,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub audit_log: PathBuf,
    _pins: RemoveDir,
    _files: RemoveDir,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io {
        what: what.to_string(),
        source,
    }
}

impl Stage {
    /// Creates the namespaces and files and starts the origins, workerd and the daemon; returns
    /// once the daemon has proxied a request from the client namespace.
    pub fn start(cfg: &StageConfig) -> Result<Stage, LabError> {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("rampart-lab-http-{pid}"));
        std::fs::create_dir_all(&dir).map_err(io("creating the phase's folder"))?;
        let files = RemoveDir(dir.clone());
        let pins = RemoveDir(PathBuf::from(format!("/sys/fs/bpf/rampart-lab-http-{pid}")));
        let (client, attacker, edge) = namespaces()?;
        let config = write_files(&dir, &pins.0, cfg.floor_pps)?;

        let mut origins = Vec::new();
        for (name, addr) in ORIGINS {
            let args = ["--netns", EDGE_NS, "origin", "--addr", addr, "--name", name];
            let log = dir.join(format!("origin-{name}.log"));
            origins.push(Proc::spawn(&cfg.rampart_bin, &args, &log)?);
        }
        let workerd = Workerd::start(
            &cfg.workerd_bin,
            sa(WORKERD_ADDR),
            Some(EDGE_NS),
            Duration::from_secs(20),
        )?;
        let config_s = config.to_string_lossy();
        let args = ["--netns", EDGE_NS, "run", "--config", config_s.as_ref()];
        let daemon = Proc::spawn(&cfg.rampart_bin, &args, &dir.join("daemon.log"))?;
        let stage = Stage {
            daemon: Some(daemon),
            _origins: origins,
            _workerd: workerd,
            client,
            attacker,
            _edge: edge,
            socket: dir.join("ctl.sock"),
            audit_log: dir.join("audit.log"),
            dir,
            _pins: pins,
            _files: files,
        };
        stage.wait_ready(cfg.ready_within)
    }

    /// Waits for the daemon to proxy `/healthz` from the client and answer on its socket; on
    /// failure the stage is torn down and the daemon's last log lines say why.
    fn wait_ready(mut self, within: Duration) -> Result<Stage, LabError> {
        let front = sa(&format!("{EDGE_CLIENT_SIDE}:{PROXY_PORT}"));
        let deadline = Instant::now() + within;
        loop {
            let exited = self.daemon.as_mut().is_some_and(Proc::exited);
            let status = if exited {
                0
            } else {
                self.client.enter(|| {
                    super::http_clients::request(
                        front,
                        &super::http_clients::Request::get("/healthz"),
                        Duration::from_millis(300),
                    )
                    .status
                })?
            };
            if status == 200 && rampart::control::request(&self.socket, "status").is_ok() {
                return Ok(self);
            }
            if exited || Instant::now() > deadline {
                let tail = self
                    .daemon
                    .as_ref()
                    .map(|d| d.log_tail(15))
                    .unwrap_or_default();
                return Err(LabError::Command {
                    cmd: format!("rampart --netns {EDGE_NS} run (not serving within {within:?})"),
                    stderr: tail,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the daemon (SIGTERM, graceful: it detaches XDP and flushes the audit log).
    pub fn stop_daemon(&mut self) {
        self.daemon = None;
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("lab address literal")
}

fn namespaces() -> Result<(Netns, Netns, Netns), LabError> {
    let client = Netns::create(CLIENT_NS)?;
    let attacker = Netns::create(ATTACKER_NS)?;
    let edge = Netns::create(EDGE_NS)?;
    veth(
        End {
            ns: &client,
            ifname: "c0",
            addr: &format!("{CLIENT_IP}/24"),
        },
        End {
            ns: &edge,
            ifname: "ec0",
            addr: &format!("{EDGE_CLIENT_SIDE}/24"),
        },
    )?;
    veth(
        End {
            ns: &attacker,
            ifname: ATTACKER_IF,
            addr: &format!("{ATTACKER_IP}/24"),
        },
        End {
            ns: &edge,
            ifname: "ea0",
            addr: &format!("{EDGE_ATTACKER_SIDE}/24"),
        },
    )?;
    Ok((client, attacker, edge))
}

/// The site's rules: `/edge/` goes to workerd; failed logins (401) are rate limited per source
/// and the first source over the limit is jailed in XDP.
fn rules_yaml() -> String {
    format!(
        r#"version: 1
rules:
  - id: {ROUTE_RULE}
    ref: edge-to-workers
    expression: starts_with(http.request.uri.path, "/edge/")
    action: route
    target: workers
  - id: {BRUTE_FORCE_RULE}
    ref: login-bruteforce
    expression: http.request.method eq "POST" and http.request.uri.path eq "/login"
    action: ratelimit
    ratelimit: {{ characteristics: [ip.src], period: 60, requests_per_period: {LOGIN_FAILURES_ALLOWED}, mitigation_timeout: 10, counting_expression: 'http.response.code eq 401', jail_after: 1, jail_duration: 300 }}
"#
    )
}

/// Writes `rules.yaml` and `rampart.toml` into `dir`; returns the config's path.
fn write_files(dir: &Path, pins: &Path, floor_pps: u32) -> Result<PathBuf, LabError> {
    let [(_, a), (_, b)] = ORIGINS;
    std::fs::write(dir.join("rules.yaml"), rules_yaml()).map_err(io("writing rules.yaml"))?;
    // The detector's floor is low so the lab's flood (thousands of pps, not millions) counts as
    // an attack; the lab's HTTP traffic stays far below it. Health checks are fast so the pool
    // is known healthy before the traffic starts.
    let cfg = format!(
        r#"[dataplane]
interfaces = ["ec0", "ea0"]
mode = "native"
pin_dir = "{pins}"
rules = "rules.yaml"

[detector]
enabled = true
floor_pps = {floor_pps}
min_ttl = 30
sample_budget = 5000

[l7]
default_rules = true
audit_log = "{audit}"

[[listeners]]
addr = "0.0.0.0:{PROXY_PORT}"

[proxy]
default_pool = "app"
retries = 1

[[proxy.pools]]
name = "app"
origins = ["http://{a}", "http://{b}"]
balance = "round_robin"
[proxy.pools.health]
path = "/healthz"
interval_ms = 500
timeout_ms = 300
unhealthy_after = 3
healthy_after = 1

[[proxy.pools]]
name = "workers"
origins = ["http://{WORKERD_ADDR}"]

[control]
socket = "{sock}"

[log]
format = "text"
"#,
        pins = pins.display(),
        audit = dir.join("audit.log").display(),
        sock = dir.join("ctl.sock").display(),
    );
    let path = dir.join("rampart.toml");
    std::fs::write(&path, cfg).map_err(io("writing rampart.toml"))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_configuration_is_one_the_daemon_accepts() {
        let dir = std::env::temp_dir().join(format!("rampart-lab-http-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _rm = RemoveDir(dir.clone());
        let path = write_files(&dir, Path::new("/sys/fs/bpf/x"), 2_000).unwrap();
        let cfg = rampart::daemon::config::load(&path).expect("valid rampart.toml");
        assert_eq!(cfg.dataplane.interfaces, ["ec0", "ea0"]);
        assert_eq!(cfg.detector.floor_pps, 2_000.0);
        let rules = rampart_rules::load_file(&dir.join("rules.yaml")).expect("valid rules.yaml");
        assert_eq!(rules.rules.len(), 2);
        assert_eq!(
            rules.l7_rules().count(),
            2,
            "both rules run in the L7 engine"
        );
    }
}
