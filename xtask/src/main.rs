//! Project tasks: `cargo xtask setup | build-ebpf | clippy | test [--tier T] | bench | fuzz | lab`.

mod bench;
mod build;
mod fuzz;
mod setup;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the build and the tests need (idempotent; quick when done).
    Setup,
    /// Build the XDP object (nightly, bpfel-unknown-none).
    BuildEbpf,
    /// Clippy with -D warnings for host crates and for the bpf target, and rustfmt --check.
    Clippy,
    /// Every test tier (host unit tests, kernel fixtures, captures, namespace end-to-end), or one.
    Test {
        /// Only this tier: `host` (no root), `kernel` (BPF_PROG_TEST_RUN) or `netns`.
        #[arg(long, value_enum)]
        tier: Option<test::Tier>,
    },
    /// Per-packet cost next to xdp-filter and an empty program (BPF_PROG_TEST_RUN).
    Bench {
        /// Runs per measurement (at least 1,000,000 for figures worth quoting).
        #[arg(long, default_value_t = 2_000_000)]
        repeat: u32,
    },
    /// Fuzz the rule parser (cargo-fuzz, nightly): each target for `seconds`; a crash fails.
    Fuzz {
        /// Time per target, in seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Build, create the namespace lab, attach, send traffic, show counters.
    Lab,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Setup => setup::run(),
        Cmd::BuildEbpf => build::ebpf().map(|_| ()),
        Cmd::Clippy => build::clippy(),
        Cmd::Test { tier } => test::run(tier),
        Cmd::Bench { repeat } => bench::run(repeat),
        Cmd::Fuzz { seconds } => fuzz::run(seconds),
        Cmd::Lab => test::lab(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
