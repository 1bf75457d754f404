//! `cargo xtask bench`: the XDP per-packet bench beside xdp-filter and the floor (root), the rule
//! file scale bench, the detector bench (root: attacks in namespaces), the WAF corpus report, the
//! reverse proxy beside nginx under wrk (and a 60 s soak), OWASP CRS in Rampart beside nginx +
//! ModSecurity, the host criterion benches (rules, L7 engine, CRS), and a bounded fuzz run of
//! the rule parser. Every figure comes from a run that checked its own result.

use anyhow::Result;

use crate::{build, setup};

pub fn run(repeat: u32) -> Result<()> {
    setup::run()?;
    build::ebpf()?;
    // proxy-bench's origin is `rampart origin`, which execs the `rampart-lab` binary.
    build::cmd(
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "rampart",
            "-p",
            "rampart-lab",
            "-p",
            "rampart-benches",
            "--bins",
        ],
    )
    .status_ok()?;
    build::cmd(
        "target/release/xdp-bench",
        &["--repeat", &repeat.to_string()],
    )
    .status_ok()?;
    build::cmd("target/release/rules-bench", &[]).status_ok()?;
    // The detector end to end in namespaces: coverage, collateral, time to mitigate, expiry.
    build::cmd("target/release/detector-bench", &[]).status_ok()?;
    // Detection and false-positive rates of the default WAF rules on the libinjection lists.
    build::cmd("target/release/waf-report", &[]).status_ok()?;
    // The reverse proxy beside nginx under wrk, then 60 s at saturation (memory sampled).
    build::cmd(
        "target/release/proxy-bench",
        &["--seconds", "10", "--soak", "60"],
    )
    .status_ok()?;
    // OWASP CRS v4 at PL1: CPU per request in rampart run and in nginx + ModSecurity, beside
    // each server without CRS, and the engine alone.
    build::cmd("target/release/crs-bench", &["--seconds", "5"]).status_ok()?;
    // Host criterion benches: rule compile/eval, the L7 engine (per request, 64 KiB form
    // body, rate-limit check at 1M keys), and CRS v4 through the SecLang engine.
    for bench in ["rules", "l7", "crs"] {
        let criterion = [
            "bench",
            "-p",
            "rampart-benches",
            "--bench",
            bench,
            "--",
            "--warm-up-time",
            "1",
            "--measurement-time",
            "3",
        ];
        build::cmd("cargo", &criterion).status_ok()?;
    }
    // The rule parser's fuzz targets, bounded: no crash in the run is the bar.
    crate::fuzz::run(60)
}
