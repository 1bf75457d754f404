//! `cargo xtask bench`: the XDP per-packet bench (root) and the host criterion benches.

use anyhow::Result;

use crate::{build, setup};

pub fn run(repeat: u32) -> Result<()> {
    setup::run()?;
    build::ebpf()?;
    build::cmd(
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "rampart-benches",
            "--bin",
            "xdp-bench",
        ],
    )
    .status_ok()?;
    build::cmd(
        "target/release/xdp-bench",
        &["--repeat", &repeat.to_string()],
    )
    .status_ok()?;
    build::cmd(
        "cargo",
        &[
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
        ],
    )
    .status_ok()
}
