//! `rampart detect`: the detector in the foreground against the running (pinned) instance. It
//! owns the rule tables while it runs: the operator's rule file (if any) comes first, generated
//! rules after. On exit it writes, per generated rule, its matched samples as a pcap and its
//! promotion to a rule-file entry.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use rampart::detection_loop::{DetectionLoop, LoopConfig};
use rampart::kernel::Dataplane;
use rampart_rules::load_file;

#[derive(Args)]
pub struct DetectArgs {
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long)]
    duration: Option<u64>,
    /// The operator's rule file, kept first in the tables.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Where to write per-rule pcaps and promotions on exit.
    #[arg(long, default_value = "rampart-detect")]
    report_dir: PathBuf,
    /// Packets per second a destination must exceed before it can be an attack victim.
    #[arg(long, default_value_t = 10_000.0)]
    floor_pps: f64,
    /// Seconds a generated rule lives after its last sampled match (at least).
    #[arg(long, default_value_t = 60)]
    min_ttl: u64,
    /// Control socket for `rampart generated …` (root only).
    #[arg(long, default_value = rampart::control::DEFAULT_SOCKET)]
    control: PathBuf,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn run(pin_dir: &Path, args: DetectArgs) -> Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let operator = match &args.rules {
        Some(f) => load_file(f)?.xdp_entries,
        None => Vec::new(),
    };
    let mut dp = Dataplane::open_pinned(pin_dir)?;
    let mut cfg = LoopConfig::default();
    cfg.detector.floor_pps = args.floor_pps;
    cfg.detector.min_ttl_ns = args.min_ttl.saturating_mul(1_000_000_000);
    let mut det = DetectionLoop::start(&mut dp, cfg, operator)?;
    let control = rampart::control::ControlServer::bind(&args.control)?;
    let started = Instant::now();
    let (mut seen, mut gone) = (HashSet::new(), HashSet::new());
    println!(
        "detecting: victims above {} pps, rules live >= {} s after their last match; SIGINT stops",
        args.floor_pps, args.min_ttl
    );
    while !STOP.load(Ordering::SeqCst)
        && args
            .duration
            .is_none_or(|d| started.elapsed() < Duration::from_secs(d))
    {
        det.pass(&mut dp, Duration::from_millis(50))?;
        control.serve(&mut det.manager);
        for r in det.manager.rules().iter().chain(det.manager.history()) {
            if seen.insert(r.id) {
                let c = &r.created;
                println!(
                    "+ rule {:#x}: {}  (coverage {:.3}, collateral {:.4})",
                    r.id,
                    r.expression(),
                    c.coverage,
                    c.collateral
                );
            }
            if r.expired.is_some() && gone.insert(r.id) {
                println!(
                    "- rule {:#x} expired: {:?}",
                    r.id,
                    r.expired.as_ref().map(|e| &e.reason)
                );
            }
        }
    }
    std::fs::create_dir_all(&args.report_dir)
        .with_context(|| format!("creating {}", args.report_dir.display()))?;
    let mut written = 0;
    for r in det.manager.rules().iter().chain(det.manager.history()) {
        let base = args.report_dir.join(format!("rule-{:x}", r.id));
        r.write_pcap(std::fs::File::create(base.with_extension("pcap"))?)?;
        std::fs::write(base.with_extension("yaml"), r.to_rule_entry(r.id))?;
        std::fs::write(base.with_extension("txt"), r.explain())?;
        written += 1;
    }
    println!(
        "stopped; {written} generated rules written to {} (pcap, yaml, txt)",
        args.report_dir.display()
    );
    Ok(())
}
