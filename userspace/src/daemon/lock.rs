//! One `rampart run` per control socket: an exclusive `flock` on `<socket>.lock`, held for the
//! life of the process (the kernel drops it when the process dies, however it dies), with the
//! holder's pid written in the file for the refusal message.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another `rampart run` (pid {pid}) holds {path}: one configuration runs once (stop it first, or give this one another `[control] socket`)")]
    Held { path: PathBuf, pid: String },
    #[error("lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held until dropped; the file is removed on drop while still locked.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    path: PathBuf,
}

/// The lock file that guards `socket`.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

impl InstanceLock {
    /// Takes the lock guarding `socket` without waiting.
    ///
    /// # Errors
    /// [`LockError::Held`] when another process holds it; I/O errors otherwise.
    pub fn acquire(socket: &Path) -> Result<InstanceLock, LockError> {
        let path = lock_path(socket);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // A holder that exits removes the file; one that opened the old file before that
        // removal must not think it holds the lock, so the locked file must still be the one
        // at the path. Three tries are plenty: each retry means another process won a race.
        for _ in 0..3 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(io)?;
            // SAFETY: a valid open descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    let mut pid = String::new();
                    let _ = file.read_to_string(&mut pid);
                    let pid = pid.trim();
                    return Err(LockError::Held {
                        path,
                        pid: if pid.is_empty() {
                            "unknown".into()
                        } else {
                            pid.chars().take(20).collect()
                        },
                    });
                }
                return Err(io(e));
            }
            let held = file.metadata().map_err(io)?;
            match std::fs::symlink_metadata(&path) {
                Ok(now) if (now.dev(), now.ino()) == (held.dev(), held.ino()) => {
                    file.set_len(0).map_err(io)?;
                    file.rewind().map_err(io)?;
                    writeln!(file, "{}", std::process::id()).map_err(io)?;
                    return Ok(InstanceLock { file, path });
                }
                _ => continue,
            }
        }
        Err(io(std::io::Error::other(
            "the lock file kept changing under us",
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        // Removed while still locked (the descriptor closes after this), and only if the
        // path still names our file.
        if let (Ok(held), Ok(now)) = (self.file.metadata(), std::fs::symlink_metadata(&self.path)) {
            if (now.dev(), now.ino()) == (held.dev(), held.ino()) {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rampart-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let d = dir("second");
        let sock = d.join("ctl.sock");
        let first = InstanceLock::acquire(&sock).unwrap();
        assert_eq!(first.path(), d.join("ctl.sock.lock"));
        let text = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        // flock conflicts between two open files even in one process.
        let e = InstanceLock::acquire(&sock).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "another `rampart run` (pid {}) holds",
                std::process::id()
            )),
            "{e}"
        );
        drop(first);
        assert!(
            !d.join("ctl.sock.lock").exists(),
            "the holder removes its file"
        );
        let again = InstanceLock::acquire(&sock).unwrap();
        drop(again);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_symlinked_lock_file_is_not_followed() {
        let d = dir("symlink");
        let target = d.join("victim");
        std::fs::write(&target, "keep me\n").unwrap();
        std::os::unix::fs::symlink(&target, d.join("ctl.sock.lock")).unwrap();
        let e = InstanceLock::acquire(&d.join("ctl.sock")).unwrap_err();
        assert!(matches!(e, LockError::Io { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
        let _ = std::fs::remove_dir_all(&d);
    }
}
