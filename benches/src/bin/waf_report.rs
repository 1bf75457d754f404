//! Detection and false-positive rates of the default WAF rules on the libinjection corpora, per
//! list and in total, at paranoia levels 1 and 2.
//!
//! `waf-report [--corpora DIR] [--paranoia N] [--show-misses]`

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use clap::Parser;
use rampart_benches::waf::{run, Kind};

#[derive(Parser)]
struct Args {
    /// The `libinjection/data` folder (default: ../shared/corpora/libinjection/data).
    #[arg(long)]
    corpora: Option<PathBuf>,
    /// Only this paranoia level (default: 1 and 2).
    #[arg(long)]
    paranoia: Option<u8>,
    /// Print the inputs missed (attacks) or blocked (benign).
    #[arg(long)]
    show_misses: bool,
}

fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = args.corpora.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/libinjection/data")
    });
    let levels = args.paranoia.map_or(vec![1, 2], |p| vec![p]);
    for p in levels {
        let report = run(&dir, p).with_context(|| format!("reading {}", dir.display()))?;
        ensure!(
            !report.lists.is_empty(),
            "no corpus lists in {}",
            dir.display()
        );
        println!("== default WAF rules, paranoia {p} ==");
        println!(
            "{:<36} {:>6} {:>7} {:>8}",
            "list", "inputs", "blocked", "rate"
        );
        for l in &report.lists {
            let what = match l.kind {
                Kind::Benign => "FP",
                _ => "TP",
            };
            println!(
                "{:<36} {:>6} {:>7} {:>7.2}% {what}",
                l.file,
                l.inputs,
                l.blocked,
                pct(l.blocked, l.inputs)
            );
            if args.show_misses {
                for m in &l.misses {
                    println!("    {m}");
                }
            }
        }
        for (kind, label) in [
            (Kind::Sqli, "SQLi detection"),
            (Kind::Xss, "XSS detection"),
            (Kind::Benign, "false positives"),
        ] {
            let (n, b) = report.total(kind);
            println!("{label:<20} {b}/{n} = {:.2}%", pct(b, n));
        }
    }
    Ok(())
}
