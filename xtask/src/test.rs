//! `cargo xtask test [--tier host|kernel|netns]`: set up, build the XDP object, lint, then the
//! tests. With no tier, every tier in one `cargo test` (host unit tests, doc tests, and the root
//! tiers in `tests/`). A tier is a folder of `tests/`; its files are the test targets of that tier.
//! `cargo xtask lab`: the README main command.

use anyhow::{bail, Context, Result};

use crate::{build, setup};

/// A folder of `tests/`, named by what its tests need.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Tier {
    /// No root: every crate's unit, doc and integration tests, and `tests/host/`.
    Host,
    /// Root: `tests/kernel/`, the XDP program loaded and run with BPF_PROG_TEST_RUN.
    Kernel,
    /// Root: `tests/netns/`, network namespaces and real traffic.
    Netns,
}

impl Tier {
    fn folder(self) -> &'static str {
        match self {
            Tier::Host => "host",
            Tier::Kernel => "kernel",
            Tier::Netns => "netns",
        }
    }
}

pub fn run(tier: Option<Tier>) -> Result<()> {
    setup::run()?;
    // The host tier never loads the program, so it needs no XDP object.
    if !matches!(tier, Some(Tier::Host)) {
        build::ebpf()?;
    }
    build::clippy()?;
    // Tests run the `rampart` binary, and `rampart lab`/`rampart origin` exec `rampart-lab`
    // beside it; `cargo test` builds a package's binary only for that package's own tests.
    build::cmd("cargo", &["build", "-p", "rampart", "-p", "rampart-lab"]).status_ok()?;
    let Some(tier) = tier else {
        return build::cmd("cargo", &["test", "--no-fail-fast"]).status_ok();
    };
    let targets = tier_targets(tier)?;
    let mut args = vec!["test", "--no-fail-fast", "-p", "rampart-tests"];
    for t in &targets {
        args.extend(["--test", t.as_str()]);
    }
    match tier {
        Tier::Host => {
            // Every other crate's tests are host tests; the kernel crate cannot build here.
            let others = build::cmd(
                "cargo",
                &[
                    "test",
                    "--no-fail-fast",
                    "--workspace",
                    "--exclude",
                    "rampart-xdp",
                    "--exclude",
                    "rampart-tests",
                ],
            )
            .status_ok();
            let own = build::cmd("cargo", &args).status_ok();
            others.and(own)
        }
        Tier::Kernel => build::cmd("cargo", &args).status_ok(),
        Tier::Netns => build::cmd("cargo", &args).status_ok(),
    }
}

/// The test targets of a tier: the file stems of its folder (each is a `[[test]]` of that name).
fn tier_targets(tier: Tier) -> Result<Vec<String>> {
    let dir = build::workspace_root().join("tests").join(tier.folder());
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_owned());
            }
        }
    }
    if names.is_empty() {
        bail!("no tests in {}", dir.display());
    }
    names.sort();
    Ok(names)
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
