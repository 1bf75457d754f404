//! Control sockets: a root-only Unix socket through which the CLI steers a running `rampart run`
//! or `rampart detect` (for the detector: list, pin, unpin, delete, promote and export generated
//! rules).
//! One request line per connection (`pin 0x40000000`), a text reply, then close. The loop serves
//! it between passes without blocking.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::detector::Manager;
use crate::kernel::monotonic_ns;

/// Where `rampart run` and `rampart detect` listen, and `rampart generated` connects, by default:
/// one path, so `rampart generated` reaches whichever daemon runs (the two never run together,
/// since both own the XDP program).
pub const DEFAULT_SOCKET: &str = "/run/rampart/rampart.sock";

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nothing is listening on {path} ({source}); is rampart running with this socket?")]
    NotRunning {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: {why}")]
    Unusable { path: PathBuf, why: String },
    #[error("control socket {path}: another process is listening there (stop it, or pick another `socket`)")]
    InUse { path: PathBuf },
    #[error("{0}")]
    Refused(String),
}

/// `sun_path` holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// What is at a socket path now.
#[derive(Debug, PartialEq, Eq)]
pub enum SocketPath {
    Free,
    /// A socket file nobody accepts on (connect was refused): safe to replace.
    Stale,
    /// A socket someone accepts on.
    Live,
}

/// Looks at `path` without changing anything: refuses a path that cannot hold a socket (too
/// long, a folder that cannot exist) and anything there that is not a socket, so a typo never
/// costs a file.
///
/// # Errors
/// [`ControlError::Unusable`] with the reason.
pub fn inspect_socket_path(path: &Path) -> Result<SocketPath, ControlError> {
    use std::os::unix::fs::FileTypeExt;
    let unusable = |why: String| ControlError::Unusable {
        path: path.to_path_buf(),
        why,
    };
    let len = path.as_os_str().len();
    if len == 0 || len > MAX_SOCKET_PATH {
        return Err(unusable(format!(
            "{len} bytes long; a Unix socket path is 1 to {MAX_SOCKET_PATH} bytes"
        )));
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            check_parent(path).map_err(unusable)?;
            Ok(SocketPath::Free)
        }
        Err(e) => Err(unusable(e.to_string())),
        Ok(m) if !m.file_type().is_socket() => Err(unusable(format!(
            "exists and is {}, not a socket; refusing to replace it",
            kind(&m.file_type())
        ))),
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => Ok(SocketPath::Live),
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Ok(SocketPath::Stale),
            Err(e) => Err(unusable(format!(
                "a socket that neither accepts nor refuses a connection ({e}); refusing to replace it"
            ))),
        },
    }
}

fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_fifo() {
        "a FIFO"
    } else {
        "a device"
    }
}

/// The socket's folder exists as a folder, or its nearest existing ancestor is one we may
/// create it in.
fn check_parent(path: &Path) -> Result<(), String> {
    let Some(mut dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut missing = false;
    for _ in 0..256 {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() && missing && pseudo_fs(dir) => {
                return Err(format!(
                    "{} does not exist and cannot be made in {} (a kernel filesystem)",
                    path.parent().unwrap_or(dir).display(),
                    dir.display()
                ))
            }
            Ok(m) if m.is_dir() => return writable(dir),
            Ok(_) => return Err(format!("{} is not a folder", dir.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match dir.parent() {
                Some(up) if !up.as_os_str().is_empty() => {
                    missing = true;
                    dir = up;
                }
                _ => return Ok(()),
            },
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
    }
    Err("the folder is nested too deep".into())
}

/// procfs and sysfs: no folder can be made there, though `access` may say it can.
fn pseudo_fs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a plain C struct, for which all zeroes is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: statfs fills `st`; the path is NUL-terminated.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    #[allow(
        clippy::useless_conversion,
        reason = "f_type's width differs between targets"
    )]
    let t = i64::from(st.f_type);
    t == PROC_SUPER_MAGIC || t == SYSFS_MAGIC
}

/// `access(W_OK|X_OK)`: also catches read-only mounts (EROFS), as a sandbox leaves them.
pub fn writable(dir: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| format!("{} has a NUL byte", dir.display()))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot write in {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ))
    }
}

pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file we made: we only ever delete that file.
    id: (u64, u64),
}

impl ControlServer {
    /// Binds `path` with mode 0600 (only root may steer the daemon). A stale socket (connect
    /// refused) is replaced; a live one, or anything that is not a socket, is refused.
    pub fn bind(path: &Path) -> Result<ControlServer, ControlError> {
        use std::os::unix::fs::MetadataExt;
        let io = |source| ControlError::Io {
            path: path.to_path_buf(),
            source,
        };
        match inspect_socket_path(path)? {
            SocketPath::Live => {
                return Err(ControlError::InUse {
                    path: path.to_path_buf(),
                })
            }
            SocketPath::Stale => std::fs::remove_file(path).map_err(io)?,
            SocketPath::Free => {}
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        let m = std::fs::symlink_metadata(path).map_err(io)?;
        let server = ControlServer {
            listener,
            path: path.to_path_buf(),
            id: (m.dev(), m.ino()),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        server.listener.set_nonblocking(true).map_err(io)?;
        Ok(server)
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
    /// Removes the socket file only if it is still the one this server made.
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rampart-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Issue 17 item 9: `[control] socket` naming an existing file deleted the file.
    #[test]
    fn anything_but_a_socket_is_left_alone() {
        let d = dir("nonsocket");
        let file = d.join("precious.txt");
        std::fs::write(&file, "precious\n").unwrap();
        let e = ControlServer::bind(&file).err().unwrap().to_string();
        assert!(
            e.ends_with("exists and is a regular file, not a socket; refusing to replace it"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious\n");
        let e = ControlServer::bind(&d).err().unwrap().to_string();
        assert!(e.contains("exists and is a folder"), "{e}");
        let link = d.join("link.sock");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let e = ControlServer::bind(&link).err().unwrap().to_string();
        assert!(e.contains("exists and is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious\n");
        let long = d.join("x".repeat(120));
        let e = inspect_socket_path(&long).unwrap_err().to_string();
        assert!(e.contains("a Unix socket path is 1 to 107 bytes"), "{e}");
        let e = inspect_socket_path(Path::new("/proc/x/y.sock"))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("/proc/x does not exist and cannot be made in /proc (a kernel filesystem)"),
            "{e}"
        );
        let under_file = file.join("ctl.sock");
        let e = inspect_socket_path(&under_file).unwrap_err().to_string();
        assert!(
            e.contains("Not a directory") || e.contains("is not a folder"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let d = dir("stale");
        let path = d.join("ctl.sock");
        // A socket file nobody listens on any more (its listener closed, file left behind).
        drop(UnixListener::bind(&path).unwrap());
        assert_eq!(inspect_socket_path(&path).unwrap(), SocketPath::Stale);
        let server = ControlServer::bind(&path).unwrap();
        assert_eq!(inspect_socket_path(&path).unwrap(), SocketPath::Live);
        let e = ControlServer::bind(&path).err().unwrap();
        assert!(matches!(e, ControlError::InUse { .. }), "{e}");
        assert!(path.exists(), "a refused bind leaves the live socket");
        server.serve_with(|_| Ok(String::new()));
        drop(server);
        assert_eq!(inspect_socket_path(&path).unwrap(), SocketPath::Free);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Issue 17 item 10: the socket file is removed on exit only if it is still ours.
    #[test]
    fn drop_removes_only_the_socket_this_server_made() {
        let d = dir("ours");
        let path = d.join("ctl.sock");
        let first = ControlServer::bind(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        drop(first);
        assert!(path.exists(), "another process's socket survives our exit");
        assert!(UnixStream::connect(&path).is_ok());
        drop(other);
        let _ = std::fs::remove_dir_all(&d);
    }
}
