//! Network namespaces and veth pairs for the lab and the end-to-end tests. Everything created here
//! is deleted on drop; traffic only ever flows between namespaces made here.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("`{cmd}` failed: {stderr}")]
    Command { cmd: String, stderr: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn run(cmd: &str, args: &[&str]) -> Result<String, LabError> {
    let line = format!("{cmd} {}", args.join(" "));
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|source| LabError::Io {
            what: format!("running `{line}`"),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(LabError::Command { cmd: line, stderr });
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// A network namespace of our own; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `name`, deleting a leftover of the same name first (an interrupted earlier run).
    pub fn create(name: &str) -> Result<Netns, LabError> {
        let _ = run("ip", &["netns", "del", name]);
        run("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A handle to an existing namespace that is not deleted on drop.
    pub fn named(name: &str) -> Borrowed {
        Borrowed {
            name: name.to_string(),
        }
    }

    /// `ip -n <ns> ...`
    pub fn ip(&self, args: &[&str]) -> Result<String, LabError> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Runs `f` on a thread that has entered this namespace (setns affects only that thread).
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        enter_named(&self.name, f)
    }
}

fn enter_named<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_thread(name)?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| {
            Err(LabError::Io {
                what: "lab thread panicked".into(),
                source: std::io::Error::other("panic"),
            })
        })
    })
}

/// An existing namespace this process did not create (kept on drop).
pub struct Borrowed {
    pub name: String,
}

impl Borrowed {
    /// As [`Netns::enter`].
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        enter_named(&self.name, f)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// One end of a veth pair.
pub struct End<'a> {
    pub ns: &'a Netns,
    pub ifname: &'a str,
    /// Address with prefix length, e.g. `10.213.0.1/24`.
    pub addr: &'a str,
}

fn mac(ns: &Netns, ifname: &str) -> Result<String, LabError> {
    let out = ns.ip(&["-o", "link", "show", ifname])?;
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| LabError::Command {
            cmd: format!("ip link show {ifname}"),
            stderr: "no MAC address".into(),
        })
}

/// Connects `a` and `b` with a veth pair: addresses, IPv6 off and static neighbours, so the only
/// packets on the wire are the ones a test sends (no ARP, no neighbour discovery).
pub fn veth(a: End<'_>, b: End<'_>) -> Result<(), LabError> {
    a.ns.ip(&[
        "link", "add", a.ifname, "type", "veth", "peer", "name", b.ifname, "netns", &b.ns.name,
    ])?;
    for e in [&a, &b] {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &e.ns.name,
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv6.conf.{}.disable_ipv6=1", e.ifname),
            ],
        )?;
        e.ns.ip(&["addr", "add", e.addr, "dev", e.ifname])?;
        e.ns.ip(&["link", "set", e.ifname, "up"])?;
    }
    let (mac_a, mac_b) = (mac(a.ns, a.ifname)?, mac(b.ns, b.ifname)?);
    let host = |s: &str| s.split('/').next().unwrap_or(s).to_string();
    static_neighbor(a.ns, a.ifname, &host(b.addr), &mac_b)?;
    static_neighbor(b.ns, b.ifname, &host(a.addr), &mac_a)?;
    Ok(())
}

/// A permanent neighbour entry, so no ARP crosses the wire for `ip`.
pub fn static_neighbor(ns: &Netns, ifname: &str, ip: &str, mac: &str) -> Result<(), LabError> {
    ns.ip(&[
        "neigh",
        "replace",
        ip,
        "lladdr",
        mac,
        "dev",
        ifname,
        "nud",
        "permanent",
    ])
    .map(|_| ())
}

/// Moves the calling thread into the named network namespace (only this thread).
pub fn enter_thread(name: &str) -> Result<(), LabError> {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path).map_err(|source| LabError::Io {
        what: format!("opening {path}"),
        source,
    })?;
    // SAFETY: a valid namespace fd; setns changes only the calling thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let source = std::io::Error::last_os_error();
        return Err(LabError::Io {
            what: format!("entering namespace {name}"),
            source,
        });
    }
    Ok(())
}

/// Adds another address (e.g. a second source for an attacker) to an interface.
pub fn add_addr(ns: &Netns, ifname: &str, addr: &str) -> Result<(), LabError> {
    ns.ip(&["addr", "add", addr, "dev", ifname]).map(|_| ())
}
