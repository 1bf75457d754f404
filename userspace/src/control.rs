//! The detector's control socket: a root-only Unix socket through which the CLI lists, pins,
//! unpins, deletes, promotes and exports the generated rules of a running `rampart detect`.
//! One request line per connection (`pin 0x40000000`), a text reply, then close. The loop serves
//! it between passes without blocking.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::detector::Manager;
use crate::kernel::monotonic_ns;

/// Where `rampart detect` listens by default.
pub const DEFAULT_SOCKET: &str = "/run/rampart/detect.sock";

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no `rampart detect` is listening on {path} ({source})")]
    NotRunning {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlServer {
    /// Binds `path` (replacing a stale socket) with mode 0600: only root may steer the detector.
    pub fn bind(path: &Path) -> Result<ControlServer, ControlError> {
        let io = |source| ControlError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Answers every pending request; never blocks on an idle socket.
    pub fn serve(&self, m: &mut Manager) {
        self.serve_with(|words| generated_command(m, words));
    }

    /// Answers every pending request with `handle` (the request's words → reply text or why it
    /// was refused); never blocks on an idle socket.
    pub fn serve_with(&self, mut handle: impl FnMut(&[&str]) -> Result<String, String>) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = answer(stream, &mut handle);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn parse_id(s: Option<&str>) -> Result<u32, String> {
    let s = s.ok_or("missing rule id")?;
    let v = match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    v.map_err(|_| format!("`{s}` is not a rule id"))
}

fn answer(
    stream: UnixStream,
    handle: &mut impl FnMut(&[&str]) -> Result<String, String>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(&stream).take(4096).read_line(&mut line)?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let reply = handle(&words);
    let mut w = &stream;
    match reply {
        Ok(text) => write!(w, "ok\n{text}"),
        Err(why) => write!(w, "error\n{why}\n"),
    }
}

/// The generated-rule requests: `list`, `explain ID`, `pin ID`, `unpin ID`, `delete ID`,
/// `promote ID [NEW_ID]`, `pcap ID`.
pub fn generated_command(m: &mut Manager, words: &[&str]) -> Result<String, String> {
    let mut words = words.iter().copied();
    let cmd = words.next().unwrap_or("");
    let id = parse_id(words.next());
    match cmd {
        "list" => Ok(m
            .rules()
            .iter()
            .chain(m.history())
            .map(|r| {
                let state = match (&r.expired, r.pinned) {
                    (Some(e), _) => format!("expired ({:?})", e.reason),
                    (None, true) => "pinned".into(),
                    (None, false) => format!("active, {:?}", r.action),
                };
                format!(
                    "{:#x}  {}  hits {}  [{state}]\n",
                    r.id,
                    r.expression(),
                    r.hits
                )
            })
            .collect()),
        "explain" => id.and_then(|id| {
            m.rule(id)
                .map(|r| r.explain())
                .ok_or_else(|| format!("no generated rule {id:#x}"))
        }),
        "pin" => id.and_then(|id| {
            m.pin(id)
                .map(|_| format!("pinned {id:#x}\n"))
                .map_err(|e| e.to_string())
        }),
        "unpin" => id.and_then(|id| {
            m.unpin(id)
                .map(|_| format!("unpinned {id:#x}\n"))
                .map_err(|e| e.to_string())
        }),
        "delete" => id.and_then(|id| {
            let now = monotonic_ns().map_err(|e| e.to_string())?;
            m.delete(id, now)
                .map(|_| format!("deleted {id:#x}\n"))
                .map_err(|e| e.to_string())
        }),
        "promote" => id.and_then(|id| {
            let new_id = parse_id(words.next()).unwrap_or(id & 0x0fff_ffff);
            m.promote(id, new_id).map_err(|e| e.to_string())
        }),
        "pcap" => id.and_then(|id| {
            let mut buf = Vec::new();
            m.write_pcap(id, &mut buf).map_err(|e| e.to_string())?;
            let path = std::env::temp_dir().join(format!("rampart-rule-{id:x}.pcap"));
            std::fs::write(&path, buf).map_err(|e| e.to_string())?;
            Ok(format!("{}\n", path.display()))
        }),
        other => Err(format!(
            "unknown request `{other}` (list, explain, pin, unpin, delete, promote, pcap)"
        )),
    }
}

use std::io::Read as _;

/// Sends one request to a running `rampart detect` and returns its reply.
pub fn request(path: &Path, line: &str) -> Result<String, ControlError> {
    let mut s = UnixStream::connect(path).map_err(|source| ControlError::NotRunning {
        path: path.to_path_buf(),
        source,
    })?;
    let io = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    writeln!(s, "{line}").map_err(io)?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(io)?;
    match reply.split_once('\n') {
        Some(("ok", rest)) => Ok(rest.to_string()),
        Some(("error", why)) => Err(ControlError::Refused(why.trim_end().to_string())),
        _ => Err(ControlError::Refused(format!("malformed reply: {reply:?}"))),
    }
}
