//! `rampart-lab`: the binary behind `rampart lab` and `rampart origin`, which exec it with these
//! arguments (network namespace already entered). It sits beside `rampart`, which the lab starts
//! for `rampart run`.

use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rampart-lab",
    version,
    about = "The namespace lab and its HTTP origin (run through `rampart lab` / `rampart origin`)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a namespace lab, attach, send bounded legitimate and attack traffic, show counters;
    /// last, `rampart run` end to end under HTTP traffic, WAF payloads, brute force and a flood.
    Lab {
        /// Run only the HTTP phase (the daemon end to end).
        #[arg(long)]
        http_only: bool,
        /// Seconds of traffic in the HTTP phase.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(8..=120))]
        http_seconds: u64,
    },
    /// A small HTTP origin for the lab and tests (answers with its name; `/healthz`; 401 on
    /// `POST /login`), until SIGINT/SIGTERM.
    Origin {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long, default_value = "origin")]
        name: String,
    },
}

/// The origin serves the proxy bench's backend, as it did inside `rampart`: the same allocator
/// keeps its numbers comparable.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The same logging stack as `rampart` (tracing; `log` records bridged).
    rampart::daemon::init_logging(&rampart::daemon::config::LogConfig {
        format: "text".into(),
        level: std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
    });
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Lab {
            http_only,
            http_seconds,
        } => rampart_lab::run(rampart_lab::LabPlan {
            http_only,
            http_duration: Duration::from_secs(http_seconds),
            ..rampart_lab::LabPlan::default()
        })?,
        Cmd::Origin { addr, name } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async {
                let stop = async {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                            .expect("signal handler");
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                };
                rampart_lab::origin::serve(addr, &name, stop).await
            })?
        }
    }
    Ok(())
}
