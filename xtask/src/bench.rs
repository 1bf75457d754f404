//! `cargo xtask bench`: the XDP per-packet bench beside xdp-filter and the floor (root), the rule
//! file scale bench, the detector bench (root: attacks in namespaces), the host criterion benches,
//! and a bounded fuzz run of the rule parser. Every figure comes from a run that checked its own
//! result.

use anyhow::Result;

use crate::{build, setup};

pub fn run(repeat: u32) -> Result<()> {
    setup::run()?;
    build::ebpf()?;
    build::cmd(
        "cargo",
        &["build", "--release", "-p", "rampart-benches", "--bins"],
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
    let criterion = [
        "bench",
        "-p",
        "rampart-benches",
        "--bench",
        "rules",
        "--",
        "--warm-up-time",
        "1",
        "--measurement-time",
        "3",
    ];
    build::cmd("cargo", &criterion).status_ok()?;
    // The rule parser's fuzz targets, bounded: no crash in the run is the bar.
    crate::fuzz::run(60)
}
