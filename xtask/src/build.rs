//! Building the kernel crate and running clippy on both targets.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};

use anyhow::{bail, Context, Result};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A command rooted at the workspace, with a helper that fails with the command line.
pub struct Cmd(Command, String);

pub fn cmd(program: &str, args: &[&str]) -> Cmd {
    let mut c = Command::new(program);
    c.args(args).current_dir(workspace_root());
    Cmd(c, format!("{program} {}", args.join(" ")))
}

impl Cmd {
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.0.env(k, v);
        self
    }

    pub fn current_dir(mut self, d: PathBuf) -> Self {
        self.0.current_dir(d);
        self
    }

    pub fn status(&mut self) -> Result<ExitStatus> {
        self.0
            .status()
            .with_context(|| format!("running `{}`", self.1))
    }

    pub fn status_ok(&mut self) -> Result<()> {
        let s = self.status()?;
        if !s.success() {
            bail!("`{}` failed ({s})", self.1);
        }
        Ok(())
    }
}

const BPF_TARGET_ARGS: &[&str] = &[
    "-p",
    "rampart-xdp",
    "--target",
    "bpfel-unknown-none",
    "-Z",
    "build-std=core",
    "--release",
];

/// Builds the XDP object and returns its path.
pub fn ebpf() -> Result<PathBuf> {
    let mut args = vec!["+nightly", "build"];
    args.extend(BPF_TARGET_ARGS);
    // rustup's proxy picks the toolchain from `+nightly`; clear a RUSTUP_TOOLCHAIN override.
    let mut c = cmd("cargo", &args);
    c.0.env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER");
    c.status_ok()
        .context("building the XDP object (did `cargo xtask setup` run?)")?;
    let obj = workspace_root().join("target/bpfel-unknown-none/release/rampart-xdp");
    if !obj.is_file() {
        bail!("build succeeded but {} is missing", obj.display());
    }
    Ok(obj)
}

pub fn clippy() -> Result<()> {
    cmd("cargo", &["fmt", "--all", "--check"]).status_ok()?;
    // Default members only: the kernel crate cannot build for the host target.
    cmd(
        "cargo",
        &["clippy", "--all-targets", "--", "-D", "warnings"],
    )
    .status_ok()?;
    let mut args = vec!["+nightly", "clippy"];
    args.extend(BPF_TARGET_ARGS);
    args.extend(["--", "-D", "warnings"]);
    let mut c = cmd("cargo", &args);
    c.0.env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER");
    c.status_ok()
}
