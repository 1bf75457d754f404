//! What the host gives the daemon: its open-file limit (raised at start) and its memory (the
//! bound for memory budgets in the configuration).

/// The open-file limit before and after [`raise_nofile`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileLimit {
    pub before: u64,
    pub after: u64,
    pub hard: u64,
}

/// Raises the soft RLIMIT_NOFILE to the hard limit: every client and every origin connection
/// is a descriptor, and the usual soft default (1024) runs out under load.
///
/// # Errors
/// `getrlimit`/`setrlimit` failed.
pub fn raise_nofile() -> std::io::Result<NofileLimit> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = r.rlim_cur;
    // An unlimited hard limit still stops at the kernel's nr_open.
    let target = if r.rlim_max == libc::RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    } else {
        r.rlim_max
    };
    if r.rlim_cur < target {
        r.rlim_cur = target;
        // SAFETY: a valid rlimit; the soft limit stays within the hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(NofileLimit {
        before,
        after: r.rlim_cur,
        hard: r.rlim_max,
    })
}

/// `MemTotal` of /proc/meminfo in bytes, when it can be read.
pub fn mem_total() -> Option<u64> {
    parse_mem_total(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => n.checked_mul(1024),
        None => Some(n),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_bytes() {
        let text = "MemTotal:       24683584 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_mem_total(text), Some(24_683_584 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_mem_total("MemTotal: x kB\n"), None);
        assert!(mem_total().is_some_and(|m| m > 0));
    }

    #[test]
    fn nofile_soft_limit_ends_at_the_hard_limit() {
        let l = raise_nofile().unwrap();
        assert!(l.after >= l.before);
        if l.hard != libc::RLIM_INFINITY {
            assert_eq!(l.after, l.hard);
        }
        // Idempotent.
        assert_eq!(raise_nofile().unwrap().before, l.after);
    }
}
