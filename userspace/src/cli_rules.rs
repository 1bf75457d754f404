//! `rampart rules …`: check, load, watch and test rule files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use rampart::kernel::Dataplane;
use rampart::rulesets::{check_file, test_capture};
use rampart_rules::{load_file, RuleErrorKind, RuleSet};

#[derive(Subcommand)]
pub enum RulesOp {
    /// Validate files and print where each rule runs (XDP entries or L7).
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The files run without the default rules (`l7.default_rules = false`): do not refuse
        /// the ids those use.
        #[arg(long)]
        no_default_rules: bool,
    },
    /// Compile a file and swap it into the running instance atomically (a bad file changes nothing).
    Load { file: PathBuf },
    /// Load a file, then reload it on SIGHUP or when it changes, until SIGINT/SIGTERM.
    Watch {
        file: PathBuf,
        /// How often to look at the file's modification time.
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
    },
    /// Run a capture through the rules on the host and print per-rule hits.
    Test {
        file: PathBuf,
        #[arg(long)]
        pcap: PathBuf,
    },
}

pub fn run(pin_dir: &Path, op: RulesOp) -> Result<()> {
    match op {
        RulesOp::Check {
            files,
            no_default_rules,
        } => {
            let mut failed = 0;
            for f in &files {
                match check_file(f, !no_default_rules) {
                    Ok(checked) => {
                        print!("{}", checked.report);
                        checked.warnings.iter().for_each(|w| eprintln!("{w}"));
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        if matches!(e.kind(), RuleErrorKind::IdOfOther { .. }) {
                            eprintln!("  (with `l7.default_rules = false` in the config, check with --no-default-rules)");
                        }
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} files have errors", files.len());
            }
        }
        RulesOp::Load { file } => {
            let set = load_file(&file)?;
            let mut dp = Dataplane::open_pinned(pin_dir)?;
            let r = dp.load_rules(&set.xdp)?;
            println!(
                "{}: {} xdp entries active (generation {}), {} map entries written",
                file.display(),
                r.rules,
                r.generation,
                r.entries_written
            );
        }
        RulesOp::Watch { file, poll_ms } => {
            watch(pin_dir, &file, Duration::from_millis(poll_ms.max(50)))?
        }
        RulesOp::Test { file, pcap } => {
            let set = load_file(&file)?;
            print!("{}", test_capture(&set, &pcap)?.render());
        }
    }
    Ok(())
}

static HUP: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        HUP.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn watch(pin_dir: &Path, file: &Path, poll: Duration) -> Result<()> {
    for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to atomics, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let mut dp = Dataplane::open_pinned(pin_dir)?;
    let apply = |dp: &mut Dataplane, why: &str| -> Result<RuleSet> {
        let set = load_file(file)?;
        let r = dp
            .load_rules(&set.xdp)
            .context("swapping the rule set in")?;
        println!(
            "{why}: {} xdp entries active (generation {}), {} map entries written",
            r.rules, r.generation, r.entries_written
        );
        Ok(set)
    };
    apply(&mut dp, "loaded")?;
    let mut seen = modified(file);
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(poll);
        let now = modified(file);
        let hup = HUP.swap(false, Ordering::SeqCst);
        if hup || now != seen {
            seen = now;
            // A bad file is reported and the running rules stay as they are.
            if let Err(e) = apply(
                &mut dp,
                if hup {
                    "reloaded (SIGHUP)"
                } else {
                    "reloaded (file changed)"
                },
            ) {
                eprintln!("reload refused, the running rules stay: {e:#}");
            }
        }
    }
    println!("stopped");
    Ok(())
}
