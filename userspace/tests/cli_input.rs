//! Bad CLI input is refused with a message before anything touches the kernel.

use std::process::Command;

fn rampart(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running rampart");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn malformed_prefixes_are_refused_with_the_reason() {
    let (ok, err) = rampart(&["--pin-dir", "/nonexistent", "deny", "add", "10.0.0.1/8"]);
    assert!(!ok);
    assert!(
        err.contains("`10.0.0.1/8` has bits set past its prefix length (did you mean 10.0.0.0/8?)"),
        "{err}"
    );
    let (ok, err) = rampart(&[
        "--pin-dir",
        "/nonexistent",
        "allow",
        "add",
        "2001:db8::/129",
    ]);
    assert!(!ok);
    assert!(
        err.contains("prefix length `129` is not a number from 0 to 128"),
        "{err}"
    );
    let (ok, err) = rampart(&["--pin-dir", "/nonexistent", "deny", "remove", "300.1.2.3"]);
    assert!(!ok);
    assert!(
        err.contains("`300.1.2.3` is not an IPv4 or IPv6 address"),
        "{err}"
    );
}

#[test]
fn out_of_range_values_are_refused() {
    // Issue 17 item 13: TTLs are 1 s to 30 days (before: 1..=31536000, and u64::MAX went to
    // the kernel side of `ctl` as nonsense).
    for ttl in ["0", "2592001", "18446744073709551615"] {
        let (ok, err) = rampart(&["deny", "add", "192.0.2.0/24", "--ttl", ttl]);
        assert!(!ok);
        assert!(
            err.contains(&format!("TTL {ttl} s is not from 1 to 2592000 (30 days)")),
            "{err}"
        );
    }
    let (ok, err) = rampart(&["deny", "add", "192.0.2.0/24", "--ttl", "10m"]);
    assert!(!ok);
    assert!(err.contains("`10m` is not a number of seconds"), "{err}");
    let (ok, err) = rampart(&["attach", "--iface", "lo", "--mode", "turbo"]);
    assert!(!ok);
    assert!(err.contains("invalid value 'turbo'"), "{err}");
    let (ok, err) = rampart(&["allow", "add", "192.0.2.0/24", "--ttl", "5"]);
    assert!(!ok);
    assert!(err.contains("--ttl applies to deny entries only"), "{err}");
}

#[test]
fn commands_without_a_running_instance_say_so() {
    let (ok, err) = rampart(&["--pin-dir", "/nonexistent/rampart", "stats"]);
    assert!(!ok);
    assert!(
        err.contains("no Rampart instance is pinned at /nonexistent/rampart"),
        "{err}"
    );
}

/// Issue 17 item 13: catch-all and very wide prefixes need `--force`, checked before the
/// pinned maps are even looked for. Before: `deny add 0.0.0.0/0` and `::/0` went through.
#[test]
fn catch_all_prefixes_need_force() {
    for (args, want) in [
        (
            &["deny", "add", "0.0.0.0/0"][..],
            "refusing 0.0.0.0/0: an IPv4 prefix shorter than /8; add --force if you mean it",
        ),
        (
            &["deny", "add", "192.0.2.0/24", "::/0"][..],
            "refusing ::/0: it holds every IPv4 address (as IPv4-mapped IPv6); add --force",
        ),
        (
            &["deny", "add", "2000::/3"][..],
            "refusing 2000::/3: an IPv6 prefix shorter than /16",
        ),
        (&["allow", "add", "0.0.0.0/0"][..], "refusing 0.0.0.0/0"),
    ] {
        let mut full = vec!["--pin-dir", "/nonexistent"];
        full.extend_from_slice(args);
        let (ok, err) = rampart(&full);
        assert!(!ok);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // With --force the prefix passes the check and the command goes on to the (absent) maps.
    let (ok, err) = rampart(&[
        "--pin-dir",
        "/nonexistent",
        "deny",
        "add",
        "0.0.0.0/0",
        "--force",
    ]);
    assert!(!ok);
    assert!(
        err.contains("no Rampart instance is pinned at /nonexistent"),
        "{err}"
    );
}
