//! The audit log file: checked by `run --check` and before start, created owner-only (0600),
//! and never left readable by other users (it names clients, paths and matched values).

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {why}")]
pub struct AuditFileError {
    pub path: PathBuf,
    pub why: String,
}

/// Mode of a new audit log.
pub const MODE: u32 = 0o600;

fn err(path: &Path, why: impl Into<String>) -> AuditFileError {
    AuditFileError {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// Checks that `path` can be appended to (or created) without changing anything; returns a
/// warning when an existing file is readable or writable by other users.
///
/// # Errors
/// A folder, a special file, a missing or read-only folder, a file we cannot write.
pub fn check(path: &Path) -> Result<Option<String>, AuditFileError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(err(path, "is a folder")),
        Ok(m) if !m.is_file() => Err(err(path, "is not a regular file")),
        Ok(m) => {
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| err(path, format!("cannot append: {e}")))?;
            Ok(loose(&m).then(|| {
                format!(
                    "audit log {}: mode {:04o} lets other users read or write it; rampart run removes their access",
                    path.display(),
                    m.mode() & 0o7777
                )
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => crate::control::writable(dir).map_err(|w| err(path, w))?,
                Ok(_) => return Err(err(path, format!("{} is not a folder", dir.display()))),
                Err(e) => return Err(err(path, format!("folder {}: {e}", dir.display()))),
            }
            Ok(None)
        }
        Err(e) => Err(err(path, e.to_string())),
    }
}

fn loose(m: &std::fs::Metadata) -> bool {
    m.mode() & 0o007 != 0
}

/// Opens the log for appending: a new file gets [`MODE`]; an existing one loses other users'
/// permissions (group ones are the operator's choice, e.g. a log shipper's group).
///
/// # Errors
/// The file cannot be opened or its mode changed.
pub fn open(path: &Path) -> Result<File, AuditFileError> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(MODE)
        .open(path)
        .map_err(|e| err(path, e.to_string()))?;
    let m = f.metadata().map_err(|e| err(path, e.to_string()))?;
    if !m.is_file() {
        return Err(err(path, "is not a regular file"));
    }
    if loose(&m) {
        let mode = m.mode() & 0o7770;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| err(path, format!("removing other users' access: {e}")))?;
        log::warn!(
            "audit log {}: was mode {:04o}, now {mode:04o} (other users removed)",
            path.display(),
            m.mode() & 0o7777
        );
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rampart-audit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_new_log_is_owner_only_whatever_the_umask() {
        let d = dir("new");
        let p = d.join("audit.log");
        assert_eq!(check(&p).unwrap(), None);
        assert!(!p.exists(), "check creates nothing");
        // SAFETY: umask has no preconditions; the test restores it.
        let old = unsafe { libc::umask(0o002) };
        let f = open(&p);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        drop(f.unwrap());
        assert_eq!(mode(&p), 0o600);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_existing_world_readable_log_is_warned_about_then_tightened() {
        let d = dir("loose");
        let p = d.join("audit.log");
        std::fs::write(&p, "old line\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = check(&p).unwrap().unwrap();
        assert!(
            w.contains("mode 0644 lets other users read or write it"),
            "{w}"
        );
        assert_eq!(mode(&p), 0o644, "check changes nothing");
        drop(open(&p).unwrap());
        assert_eq!(mode(&p), 0o640);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "old line\n",
            "appended, not truncated"
        );
        assert_eq!(check(&p).unwrap(), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn unusable_paths_are_refused() {
        let d = dir("bad");
        let e = check(&d).unwrap_err().to_string();
        assert!(e.ends_with(": is a folder"), "{e}");
        let e = check(&d.join("no/such/audit.log")).unwrap_err().to_string();
        assert!(e.contains("No such file or directory"), "{e}");
        let e = check(Path::new("/proc/self/audit.log"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot write in /proc/self"), "{e}");
        let file = d.join("file");
        std::fs::write(&file, "").unwrap();
        let e = check(&file.join("audit.log")).unwrap_err().to_string();
        assert!(e.contains("Not a directory"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
