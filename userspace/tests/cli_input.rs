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
    let (ok, err) = rampart(&["deny", "add", "192.0.2.0/24", "--ttl", "0"]);
    assert!(!ok);
    assert!(err.contains("0 is not in 1..=31536000"), "{err}");
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
