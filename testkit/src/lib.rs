//! Shared harness for the integration tests in `tests/` (every tier): root checks that explain a
//! skip, a loaded data plane pinned to one CPU, the `rampart` binary, the outside corpora, frame
//! builders ([`packets`]), capture readers ([`captures`]) and the rule corpus ([`rule_corpus`]).

pub mod captures;
pub mod fixture_table;
pub mod packets;
pub mod rule_corpus;

use rampart::kernel::{Dataplane, LoadOptions};

/// Returns true when the test may run. As root it always runs; otherwise it prints why it skips.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    eprintln!(
        "SKIP {test}: needs root (BPF_PROG_TEST_RUN, XDP attach, network namespaces); run as root"
    );
    false
}

/// Pins the calling thread to CPU 0, so per-CPU values written by a test run are at index 0.
pub fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A freshly loaded program with its own (unpinned) maps.
pub fn fresh_dataplane() -> Dataplane {
    match Dataplane::load(&LoadOptions::default()) {
        Ok(dp) => dp,
        Err(e) => panic!("loading the XDP program failed: {e}"),
    }
}

/// The `rampart` binary beside the running test binary (`cargo test` builds it with the
/// workspace).
pub fn rampart_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir")
        .join("rampart");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p rampart -p rampart-lab` (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// Runs `rampart --pin-dir PIN ARGS…`; returns success and stdout+stderr.
pub fn rampart_cli(pin: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(rampart_bin())
        .arg("--pin-dir")
        .arg(pin)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running rampart");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Directory of the outside corpora (`shared/corpora` beside the repository, or
/// `RAMPART_CORPORA`). Panics with one line saying where to put them when they are absent, so a
/// clone without them fails clearly instead of with a bare `NotFound`.
pub fn corpora_dir() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir: std::path::PathBuf = match std::env::var_os("RAMPART_CORPORA") {
        Some(p) => p.into(),
        None => here.join("../../shared/corpora"),
    };
    assert!(
        dir.join("MANIFEST.md").is_file(),
        "outside corpora missing: no MANIFEST.md in {}; put the corpora folder (shared/corpora) beside the repository or set RAMPART_CORPORA to it",
        dir.display()
    );
    dir
}
