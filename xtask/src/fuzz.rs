//! `cargo xtask fuzz`: each cargo-fuzz target of the rule parser (`rules/fuzz/`), bounded in
//! time. A crash, a timeout or a memory blow-up fails the run and names the artifact to reproduce
//! (`cargo +nightly fuzz run <target> <artifact>` from `rules/`) and to turn into a regression
//! test in `rules/tests/fuzz_regressions.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

use crate::build::{cmd, workspace_root};

/// The targets in `rules/fuzz/fuzz_targets/`, run in this order.
pub const TARGETS: &[&str] = &["parse_expr", "parse_ruleset"];

pub fn run(seconds: u64) -> Result<()> {
    install_cargo_fuzz()?;
    let rules = workspace_root().join("rules");
    // Artifact paths in messages read better without `xtask/..`.
    let rules = rules.canonicalize().unwrap_or(rules);
    let fuzz_dir = rules.join("fuzz");
    let dict = fuzz_dir.join("rules.dict");
    let mut found = Vec::new();
    for target in TARGETS {
        let artifacts = fuzz_dir.join("artifacts").join(target);
        let started = SystemTime::now();
        println!("fuzz: {target} for {seconds} s");
        let status = nightly_cargo(&rules)
            .args(["fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .arg("-rss_limit_mb=2048")
            // One input taking this long is a finding (the default is 20 minutes).
            .arg("-timeout=10")
            .arg(format!("-dict={}", dict.display()))
            .arg("-print_final_stats=1")
            .status()
            .with_context(|| format!("running `cargo +nightly fuzz run {target}`"))?;
        // Written during this run (a crash found again keeps its file name, so compare times).
        let new = written_since(&artifacts, started);
        if !status.success() || !new.is_empty() {
            if new.is_empty() {
                bail!("`cargo +nightly fuzz run {target}` failed ({status}) without a crash artifact (a build error?)");
            }
            for a in &new {
                found.push(format!(
                    "{target}: {} (reproduce from rules/: cargo +nightly fuzz run {target} {}; minimise: cargo +nightly fuzz tmin {target} {})",
                    a.display(),
                    a.display(),
                    a.display()
                ));
            }
        }
    }
    if !found.is_empty() {
        bail!(
            "fuzzing found {} crash(es); add each as a test in rules/tests/fuzz_regressions.rs:\n  {}",
            found.len(),
            found.join("\n  ")
        );
    }
    println!("fuzz: no crash in {seconds} s per target");
    Ok(())
}

/// `cargo +nightly` in `dir`, without the variables that pin cargo's toolchain (set when this
/// runs under `cargo xtask`): with them, rustup's proxy would ignore `+nightly`.
fn nightly_cargo(dir: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.arg("+nightly")
        .current_dir(dir)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER");
    c
}

/// Installs cargo-fuzz unless `cargo fuzz --version` already works.
fn install_cargo_fuzz() -> Result<()> {
    let works = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Ok(());
    }
    println!("fuzz: installing cargo-fuzz");
    cmd("cargo", &["install", "cargo-fuzz", "--locked"])
        .status_ok()
        .context("installing cargo-fuzz")
}

/// Files in `dir` modified at or after `since`, sorted.
fn written_since(dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    e.metadata()
                        .is_ok_and(|m| m.is_file() && m.modified().is_ok_and(|t| t >= since))
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
