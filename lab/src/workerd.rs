//! workerd (Cloudflare's Workers runtime, from the npm registry) as a route target for the lab
//! and the tests: a one-worker config on one HTTP socket, started in a namespace, stopped and
//! cleaned up on drop. `userspace/docs/workerd.md` shows the same for an operator's own workerd.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::netns::LabError;

/// The Worker the lab runs: it answers with what it saw.
pub const WORKER_JS: &str = r#"export default {
  async fetch(request) {
    const url = new URL(request.url);
    const xff = request.headers.get("x-forwarded-for") || "-";
    return new Response(`hello from workerd: ${request.method} ${url.pathname} xff=${xff}\n`, {
      headers: { "content-type": "text/plain" },
    });
  },
};
"#;

/// A workerd config serving `worker.js` on `addr`.
pub fn config(addr: SocketAddr) -> String {
    format!(
        r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .edgeWorker) ],
  sockets = [ (name = "http", address = "{addr}", http = (), service = "main") ],
);

const edgeWorker :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "worker.js") ],
  compatibilityDate = "2024-09-01",
);
"#
    )
}

/// Where `cargo xtask setup` installs workerd (override with `RAMPART_WORKERD`).
pub fn default_bin() -> PathBuf {
    match std::env::var_os("RAMPART_WORKERD") {
        Some(p) => p.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/workerd/node_modules/.bin/workerd"),
    }
}

pub struct Workerd {
    child: Child,
    dir: PathBuf,
}

impl Workerd {
    /// Starts workerd on `addr` (inside `netns` when given) and waits until it answers, at most
    /// `ready_within`.
    pub fn start(
        bin: &Path,
        addr: SocketAddr,
        netns: Option<&str>,
        ready_within: Duration,
    ) -> Result<Workerd, LabError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| LabError::Io { what, source }
        };
        let dir = std::env::temp_dir().join(format!(
            "rampart-workerd-{}-{}",
            std::process::id(),
            addr.port()
        ));
        std::fs::create_dir_all(&dir).map_err(io("creating the workerd folder"))?;
        std::fs::write(dir.join("worker.js"), WORKER_JS).map_err(io("writing worker.js"))?;
        std::fs::write(dir.join("config.capnp"), config(addr))
            .map_err(io("writing config.capnp"))?;
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .args(["serve", "config.capnp"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io(&format!("starting {}", bin.display())))?;
        let w = Workerd { child, dir };
        let deadline = Instant::now() + ready_within;
        loop {
            let up = match netns {
                Some(ns) => super::netns::Netns::named(ns).enter(|| {
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                })?,
                None => {
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                }
            };
            if up {
                return Ok(w);
            }
            if Instant::now() > deadline {
                return Err(LabError::Io {
                    what: format!("workerd on {addr} did not come up within {ready_within:?}"),
                    source: std::io::Error::other("timeout"),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
