//! `rampart`: attach the XDP data plane, manage allow/deny prefixes, show counters, run the lab
//! (the `rampart-lab` binary beside this one).

mod cli_detect;
mod cli_rules;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rampart::kernel::{detach_pinned, AttachMode, Dataplane, LoadOptions, DEFAULT_PIN_DIR};
use rampart_common::config::{POLICY_DROP, POLICY_PASS};
use rampart_rules::Prefix;

#[derive(Parser)]
#[command(
    name = "rampart",
    version,
    about = "Edge security and traffic filtering on XDP"
)]
struct Cli {
    /// Where the running instance pins its maps and links.
    #[arg(long, global = true, default_value = DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    /// Work in this network namespace (`ip netns` name): interfaces are looked up there, while
    /// pins stay in this mount namespace's bpffs.
    #[arg(long, global = true)]
    netns: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon: XDP, detector, L7 reverse proxy, metrics and control, from a config file.
    Run {
        #[arg(long, default_value = "/etc/rampart/rampart.toml")]
        config: PathBuf,
        /// Check the configuration and rules, then exit.
        #[arg(long)]
        check: bool,
    },
    /// Send a request to a running daemon's control socket (e.g. `status`, `rules reload`,
    /// `deny add 192.0.2.0/24 600`, `deny add 0.0.0.0/0 --force`, `generated list`).
    Ctl {
        #[arg(long, default_value = rampart::daemon::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
        /// The request's words; everything after them (`--force` too) goes to the daemon.
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        request: Vec<String>,
    },
    /// A small HTTP origin for the lab and tests (answers with its name; `/healthz`; 401 on
    /// `POST /login`), until SIGINT/SIGTERM.
    Origin {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long, default_value = "origin")]
        name: String,
    },
    /// Load the program and attach it to interfaces; it stays attached after this command exits.
    Attach {
        #[arg(long = "iface", required = true)]
        ifaces: Vec<String>,
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        mode: Mode,
        /// XDP object to load instead of the embedded one.
        #[arg(long)]
        object: Option<PathBuf>,
        /// Verdict for packets that fail to parse.
        #[arg(long, value_enum, default_value_t = Policy::Pass)]
        error_policy: Policy,
        /// Verdict for non-first fragments whose first fragment was not seen.
        #[arg(long, value_enum, default_value_t = Policy::Pass)]
        frag_policy: Policy,
    },
    /// Detach from interfaces (maps stay pinned until `rampart unpin`).
    Detach {
        #[arg(long = "iface", required = true)]
        ifaces: Vec<String>,
    },
    /// Remove the pinned maps (after detaching everywhere).
    Unpin,
    /// Drop all traffic from prefixes.
    Deny {
        #[command(subcommand)]
        op: ListOp,
    },
    /// Pass all traffic from prefixes before any other check.
    Allow {
        #[command(subcommand)]
        op: ListOp,
    },
    /// Counters per verdict reason and per rule.
    Stats,
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
    /// Run the detector: fingerprint attacks from samples, drop them in XDP, expire the rules.
    Detect(cli_detect::DetectArgs),
    /// Generated rules of a running `rampart detect`: list, explain, pin, unpin, delete, promote, pcap.
    Generated {
        /// e.g. `list`, `pin 0x40000000`, `promote 0x40000000 [NEW_ID]`.
        #[arg(required = true)]
        request: Vec<String>,
        #[arg(long, default_value = rampart::control::DEFAULT_SOCKET)]
        control: PathBuf,
    },
    /// Rule files: check, load, watch, test against a capture.
    Rules {
        #[command(subcommand)]
        op: cli_rules::RulesOp,
    },
}

#[derive(Subcommand)]
enum ListOp {
    Add {
        #[arg(required = true)]
        prefixes: Vec<String>,
        /// Seconds until the entry expires, 1 to 2592000 (30 days) (deny only; default: never).
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<u64>,
        /// Accept a prefix that covers a large part of the address space (IPv4 shorter than
        /// /8, IPv6 shorter than /16 or holding all of IPv4, such as 0.0.0.0/0 and ::/0).
        #[arg(long)]
        force: bool,
    },
    Remove {
        #[arg(required = true)]
        prefixes: Vec<String>,
    },
    List,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Auto,
    Native,
    Generic,
}

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    Pass,
    Drop,
}

impl Policy {
    fn code(self) -> u32 {
        match self {
            Policy::Pass => POLICY_PASS,
            Policy::Drop => POLICY_DROP,
        }
    }
}

fn parse_ttl(s: &str) -> Result<u64, String> {
    let secs: u64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    rampart::daemon::list_request::check_ttl(secs)
}

fn parse_prefixes(items: &[String]) -> Result<Vec<Prefix>> {
    items
        .iter()
        .map(|s| s.parse::<Prefix>().map_err(anyhow::Error::from))
        .collect()
}

/// The daemon allocates per request (headers, bodies, rule values); mimalloc's per-thread heaps
/// suit its thread-per-core serving better than glibc's allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // One logging stack: tracing (libraries' `log` records are bridged into it). The daemon
    // takes format and level from its config; other commands read a level from RUST_LOG.
    if !matches!(cli.cmd, Cmd::Run { .. }) {
        rampart::daemon::init_logging(&rampart::daemon::config::LogConfig {
            format: "text".into(),
            level: std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        });
    }
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn enter_netns(name: &str) -> Result<()> {
    use std::os::fd::AsRawFd;
    let path = format!("/var/run/netns/{name}");
    let f = std::fs::File::open(&path)
        .with_context(|| format!("network namespace `{name}` ({path})"))?;
    // SAFETY: a valid namespace fd; the process is still single-threaded here.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!(
            "entering network namespace `{name}`: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

// One function on purpose (~120 lines): a match with one short arm per subcommand; the long
// ones already call out to their own modules.
fn run(cli: Cli) -> Result<()> {
    if let Some(ns) = &cli.netns {
        enter_netns(ns)?;
    }
    match cli.cmd {
        Cmd::Attach {
            ifaces,
            mode,
            object,
            error_policy,
            frag_policy,
        } => {
            let mode = match mode {
                Mode::Auto => AttachMode::Auto,
                Mode::Native => AttachMode::Native,
                Mode::Generic => AttachMode::Generic,
            };
            let mut dp = Dataplane::load(&LoadOptions {
                object,
                pin_dir: Some(cli.pin_dir.clone()),
            })?;
            dp.update_config(|c| {
                c.error_policy = error_policy.code();
                c.frag_policy = frag_policy.code();
            })?;
            for iface in &ifaces {
                let r = dp.attach(iface, mode, Some(&cli.pin_dir))?;
                match &r.fallback {
                    Some(why) => println!(
                        "{}: attached in GENERIC mode (native failed: {why})",
                        r.iface
                    ),
                    None => println!("{}: attached in {} mode", r.iface, r.mode),
                }
            }
        }
        Cmd::Detach { ifaces } => {
            for iface in &ifaces {
                if detach_pinned(&cli.pin_dir, iface)? {
                    println!("{iface}: detached");
                } else {
                    bail!(
                        "{iface}: nothing attached (no pinned link under {})",
                        cli.pin_dir.display()
                    );
                }
            }
        }
        Cmd::Unpin => {
            if cli.pin_dir.exists() {
                if std::fs::read_dir(&cli.pin_dir)?
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("link_"))
                {
                    bail!("still attached somewhere; run `rampart detach` first");
                }
                std::fs::remove_dir_all(&cli.pin_dir)
                    .with_context(|| format!("removing {}", cli.pin_dir.display()))?;
            }
            println!("unpinned {}", cli.pin_dir.display());
        }
        Cmd::Deny { op } => list_op(&cli.pin_dir, op, true)?,
        Cmd::Allow { op } => list_op(&cli.pin_dir, op, false)?,
        Cmd::Lab {
            http_only,
            http_seconds,
        } => {
            let mut args = vec!["lab".to_string(), format!("--http-seconds={http_seconds}")];
            if http_only {
                args.push("--http-only".into());
            }
            exec_lab(&args)?
        }
        Cmd::Run { config, check } => {
            if check {
                let (summary, warnings) = rampart::daemon::check(&config)?;
                for w in warnings {
                    eprintln!("warning: {w}");
                }
                println!("{summary}");
            } else {
                rampart::daemon::run(&config)?
            }
        }
        Cmd::Origin { addr, name } => exec_lab(&[
            "origin".into(),
            format!("--addr={addr}"),
            format!("--name={name}"),
        ])?,
        Cmd::Ctl { socket, request } => {
            print!(
                "{}",
                rampart::control::request(&socket, &request.join(" "))?
            )
        }
        Cmd::Rules { op } => cli_rules::run(&cli.pin_dir, op)?,
        Cmd::Detect(args) => cli_detect::run(&cli.pin_dir, args)?,
        Cmd::Generated { request, control } => print!(
            "{}",
            rampart::control::request(&control, &request.join(" "))?
        ),
        Cmd::Stats => {
            let dp = Dataplane::open_pinned(&cli.pin_dir)?;
            print!("{}", dp.counters()?.render());
        }
    }
    Ok(())
}

/// Runs the `rampart-lab` binary beside this one in place of this process (same pid, so signals
/// and exit status are the lab's). The lab lives in its own crate over this one's library; this
/// binary linking it would be a package cycle.
fn exec_lab(args: &[String]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("finding the rampart binary's own path")?;
    let bin = exe.with_file_name("rampart-lab");
    if !bin.is_file() {
        bail!(
            "{} is missing: the lab is its own binary; build it with `cargo build -p rampart-lab` \
             (same profile as rampart)",
            bin.display()
        );
    }
    let err = std::process::Command::new(&bin).args(args).exec();
    Err(anyhow::Error::from(err).context(format!("running {}", bin.display())))
}

fn list_op(pin_dir: &std::path::Path, op: ListOp, deny: bool) -> Result<()> {
    match op {
        ListOp::Add {
            prefixes,
            ttl,
            force,
        } => {
            let prefixes = parse_prefixes(&prefixes)?;
            if ttl.is_some() && !deny {
                bail!("--ttl applies to deny entries only");
            }
            if !force {
                if let Some(why) = prefixes
                    .iter()
                    .find_map(rampart::daemon::list_request::too_wide)
                {
                    bail!("{why}");
                }
            }
            let mut dp = Dataplane::open_pinned(pin_dir)?;
            for p in prefixes {
                if deny {
                    dp.deny(p, ttl.map(Duration::from_secs))?;
                } else {
                    dp.allow(p)?;
                }
                println!("added {p}");
            }
        }
        ListOp::Remove { prefixes } => {
            let prefixes = parse_prefixes(&prefixes)?;
            let mut dp = Dataplane::open_pinned(pin_dir)?;
            for p in prefixes {
                let removed = if deny { dp.undeny(p)? } else { dp.unallow(p)? };
                println!("{} {p}", if removed { "removed" } else { "not present:" });
            }
        }
        ListOp::List => {
            let dp = Dataplane::open_pinned(pin_dir)?;
            if deny {
                for d in dp.deny_list()? {
                    match d.expires_in {
                        Some(t) => println!("{}  expires in {}s", d.prefix, t.as_secs()),
                        None => println!("{}", d.prefix),
                    }
                }
            } else {
                for p in dp.allow_list()? {
                    println!("{p}");
                }
            }
        }
    }
    Ok(())
}
