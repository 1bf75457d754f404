//! `cargo xtask setup`: every install step the project needs, each checked first so a second run
//! only checks. A failing step says which one and why.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::build::{cmd, workspace_root};

/// Debian packages: LLVM 22 for bpf-linker, bpftool and xdp-tools for the bench baseline,
/// iproute2 for the namespace lab, nginx and wrk for the proxy bench, ModSecurity v3 with CRS
/// 3.3.4 (the WAF anchor, and CRS 3.3 rule files the SecLang engine must load), nats-server
/// for multi-host sync (npm: see `workerd`).
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "bpftool",
    "xdp-tools",
    "iproute2",
    "libelf-dev",
    "zlib1g-dev",
    "nginx",
    "wrk",
    "modsecurity-crs",
    "libnginx-mod-http-modsecurity",
    "nats-server",
];
/// Cloudflare's Workers runtime from the npm registry (the package ships the binary).
const WORKERD_VERSION: &str = "1.20261117.1";
const BPF_LINKER_VERSION: &str = "0.13";

pub fn run() -> Result<()> {
    step("apt packages", apt)?;
    step("rust-src for nightly", rust_src)?;
    step("bpf-linker", bpf_linker)?;
    step("bpffs mount", bpffs)?;
    step("workerd", workerd)?;
    Ok(())
}

/// Where `workerd` is installed: `target/workerd/node_modules/.bin/workerd`.
pub fn workerd_bin() -> std::path::PathBuf {
    workspace_root().join("target/workerd/node_modules/.bin/workerd")
}

fn workerd() -> Result<String> {
    let bin = workerd_bin();
    if let Ok(o) = Command::new(&bin).arg("--version").output() {
        if o.status.success() {
            return Ok(format!(
                "already installed ({})",
                String::from_utf8_lossy(&o.stdout).trim()
            ));
        }
    }
    // A machine may carry its own Node.js with npm (Debian's `npm` conflicts with it): install
    // Debian's only when there is no npm at all.
    if Command::new("npm").arg("--version").output().is_err() {
        cmd(
            "apt-get",
            &[
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "nodejs",
                "npm",
            ],
        )
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status_ok()?;
    }
    let prefix = workspace_root().join("target/workerd");
    std::fs::create_dir_all(&prefix).context("creating target/workerd")?;
    let prefix = prefix.display().to_string();
    let pkg = format!("workerd@{WORKERD_VERSION}");
    cmd(
        "npm",
        &[
            "install",
            "--prefix",
            &prefix,
            "--no-audit",
            "--no-fund",
            &pkg,
        ],
    )
    .status_ok()?;
    let o = Command::new(&bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !o.status.success() {
        bail!("{} --version failed after npm install", bin.display());
    }
    Ok(format!(
        "installed {}",
        String::from_utf8_lossy(&o.stdout).trim()
    ))
}

fn step(name: &str, f: fn() -> Result<String>) -> Result<()> {
    let what = f().with_context(|| format!("setup step `{name}` failed"))?;
    println!("setup: {name}: {what}");
    Ok(())
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn apt() -> Result<String> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        return Ok("already installed".into());
    }
    cmd("apt-get", &["update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status_ok()?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    cmd("apt-get", &args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status_ok()?;
    Ok(format!("installed {}", missing.join(" ")))
}

fn rust_src() -> Result<String> {
    let out = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .context("running rustup (is the nightly toolchain installed?)")?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with("rust-src"))
    {
        return Ok("already installed".into());
    }
    cmd(
        "rustup",
        &["component", "add", "rust-src", "--toolchain", "nightly"],
    )
    .status_ok()?;
    Ok("installed".into())
}

fn bpf_linker() -> Result<String> {
    if let Ok(o) = Command::new("bpf-linker").arg("--version").output() {
        let v = String::from_utf8_lossy(&o.stdout);
        if v.contains(&format!("bpf-linker {BPF_LINKER_VERSION}")) {
            return Ok(format!("already installed ({})", v.trim()));
        }
    }
    // Built against Debian's LLVM 22 (the recipe verified on this machine kind).
    let path = format!(
        "/usr/lib/llvm-22/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    cmd(
        "cargo",
        &[
            "install",
            "bpf-linker",
            "--locked",
            "--version",
            &format!("^{BPF_LINKER_VERSION}"),
            "--no-default-features",
            "--features",
            "llvm-22",
        ],
    )
    .env("LLVM_PREFIX", "/usr/lib/llvm-22")
    .env("PATH", path)
    .current_dir(workspace_root())
    .status_ok()?;
    Ok("built and installed".into())
}

fn bpffs() -> Result<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("bpf"))
    {
        return Ok("already mounted".into());
    }
    if !cmd("mount", &["-t", "bpf", "bpf", "/sys/fs/bpf"])
        .status()?
        .success()
    {
        bail!("mount -t bpf bpf /sys/fs/bpf failed (are you root?)");
    }
    Ok("mounted /sys/fs/bpf".into())
}
