//! `cargo xtask test`: set up, build the XDP object, lint, then every test tier in one
//! `cargo test` (host unit tests; root tiers in `tests/`: kernel fixtures, captures, namespaces).
//! `cargo xtask lab`: the README main command.

use anyhow::Result;

use crate::{build, setup};

pub fn run() -> Result<()> {
    setup::run()?;
    build::ebpf()?;
    build::clippy()?;
    build::cmd("cargo", &["test", "--no-fail-fast"]).status_ok()
}

pub fn lab() -> Result<()> {
    setup::run()?;
    build::ebpf()?;
    // `rampart lab` execs the `rampart-lab` binary beside it: build both.
    build::cmd(
        "cargo",
        &["build", "--release", "-p", "rampart", "-p", "rampart-lab"],
    )
    .status_ok()?;
    build::cmd("target/release/rampart", &["lab"]).status_ok()
}
