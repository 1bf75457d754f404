//! Per-packet cost of the Rampart XDP program (10,000 deny prefixes, 1,000 rules loaded) beside
//! Debian's xdp-filter and an empty program, all through BPF_PROG_TEST_RUN in one run. Every
//! figure is checked: the verdict must be the expected one and the counter for the expected
//! reason must have moved by exactly the number of runs.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use rampart::kernel::{Dataplane, LoadOptions, FLOOR_PROGRAM};
use rampart_benches::{
    clean_frame, deny_drop_frame, deny_prefixes, rule_drop_frame, rule_set, LAST_RULE_ID,
    LAST_RULE_PORT,
};
use rampart_common::Reason;
use rampart_rules::xdp::compile;
use rampart_testkit::fixture_table;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 2_000_000)]
    repeat: u32,
    #[arg(long, default_value_t = 1_000)]
    rules: u32,
    #[arg(long, default_value_t = 10_000)]
    deny: u32,
    /// Time every frame of the kernel fixture table instead (its own maps per case).
    #[arg(long)]
    fixtures: bool,
}

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

struct Case {
    name: &'static str,
    frame: Vec<u8>,
    action: u32,
    reason: Reason,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.repeat >= 1, "--repeat must be at least 1");
    if args.fixtures {
        return fixtures(args.repeat);
    }
    let mut dp =
        Dataplane::load(&LoadOptions::default()).context("loading the XDP program (root?)")?;
    for p in deny_prefixes(args.deny) {
        dp.deny(p, None)?;
    }
    let tables = compile(&rule_set(args.rules))?;
    let report = dp.load_rules(&tables)?;
    println!(
        "loaded {} deny prefixes, {} rules ({} table entries written)",
        dp.deny_list()?.len(),
        report.rules,
        report.entries_written
    );
    let cases = [
        Case {
            name: "clean TCP (no match)",
            frame: clean_frame(),
            action: XDP_PASS,
            reason: Reason::PassNoMatch,
        },
        Case {
            name: "dropped by last rule",
            frame: rule_drop_frame(),
            action: XDP_DROP,
            reason: Reason::DropRule,
        },
        Case {
            name: "dropped by deny prefix",
            frame: deny_drop_frame(),
            action: XDP_DROP,
            reason: Reason::DropDenylist,
        },
    ];
    let filter = XdpFilter::start().context("starting the xdp-filter baseline")?;
    println!(
        "\nXDP per-packet cost, BPF_PROG_TEST_RUN, {} runs each (ns/packet)",
        args.repeat
    );
    println!(
        "{:<26} {:>10} {:>12} {:>10}",
        "packet", "rampart", "xdp-filter", "floor"
    );
    for c in &cases {
        let before = dp.counters()?;
        let (action, per_run) = dp.test_run(&c.frame, args.repeat)?;
        let delta = before.delta(&dp.counters()?);
        ensure!(
            action == c.action,
            "{}: action {action}, expected {}",
            c.name,
            c.action
        );
        let moved = delta.reason(c.reason).packets;
        ensure!(
            moved == args.repeat as u64,
            "{}: {} moved by {moved}, expected {}",
            c.name,
            c.reason.name(),
            args.repeat
        );
        if c.reason == Reason::DropRule {
            let hits = delta
                .rule(LAST_RULE_ID)
                .map(|r| r.dropped.packets)
                .unwrap_or(0);
            ensure!(
                hits == args.repeat as u64,
                "rule {LAST_RULE_ID} dropped {hits}, expected {}",
                args.repeat
            );
        }
        let (floor_action, floor) = dp.test_run_program(FLOOR_PROGRAM, &c.frame, args.repeat)?;
        ensure!(
            floor_action == XDP_PASS,
            "floor program returned {floor_action}"
        );
        let xf = filter.run(&c.frame, args.repeat, c.action)?;
        println!(
            "{:<26} {:>10} {:>12} {:>10}",
            c.name,
            per_run.as_nanos(),
            xf,
            floor.as_nanos()
        );
    }
    println!("(xdp-filter denies port {LAST_RULE_PORT} and source 10.0.5.9; its verdicts were checked too)");
    Ok(())
}

/// ns/packet for every frame of the kernel fixture table (`rampart_testkit::fixture_table`), the
/// maps seeded per case as the fixtures test does. Each case's frames first run once in order
/// and must give the fixture's action; then each is timed. A frame whose verdict depends on state
/// (fragment cache, rate limits) may decide differently when repeated: its timed action is shown.
fn fixtures(repeat: u32) -> Result<()> {
    let mut dp =
        Dataplane::load(&LoadOptions::default()).context("loading the XDP program (root?)")?;
    println!("\nkernel fixtures, BPF_PROG_TEST_RUN, {repeat} runs each (ns/packet)");
    let (mut frames, mut total_ns) = (0u32, 0u128);
    for c in fixture_table::cases() {
        fixture_table::seed(&mut dp, &c);
        for (i, s) in c.steps.iter().enumerate() {
            let (action, _) = dp.test_run(&s.frame, 1)?;
            ensure!(
                action == s.action,
                "[{}] step {i}: action {action}, expected {}",
                c.name,
                s.action
            );
        }
        for (i, s) in c.steps.iter().enumerate() {
            let (action, per_run) = dp.test_run(&s.frame, repeat)?;
            let note = if action == s.action {
                String::new()
            } else {
                format!("  (repeated: action {action})")
            };
            println!("{:>6}  {} #{i}{note}", per_run.as_nanos(), c.name);
            frames += 1;
            total_ns += per_run.as_nanos();
        }
    }
    ensure!(frames > 0, "the fixture table is empty");
    println!(
        "{frames} frames, mean {} ns/packet",
        total_ns / u128::from(frames)
    );
    Ok(())
}

/// xdp-filter loaded on a veth inside a namespace of our own (no traffic is sent; the program is
/// only run through BPF_PROG_TEST_RUN by id).
struct XdpFilter {
    ns: String,
    prog_id: String,
}

impl XdpFilter {
    fn start() -> Result<XdpFilter> {
        let ns = format!("rampart-bench-{}", std::process::id());
        sh(&format!("ip netns add {ns} && ip -n {ns} link add xb0 type veth peer name xb1 && ip -n {ns} link set xb0 up && ip -n {ns} link set xb1 up"))?;
        let mut f = XdpFilter {
            ns: ns.clone(),
            prog_id: String::new(),
        };
        // One shell in the namespace: `ip netns exec` makes a fresh mount namespace each time,
        // and xdp-filter finds its maps through pins in bpffs.
        sh(&format!(
            "ip netns exec {ns} sh -c 'mount -t bpf bpf /sys/fs/bpf && xdp-filter load xb0 --mode skb -f tcp,udp,ipv4,ipv6 && xdp-filter port {LAST_RULE_PORT} && xdp-filter ip 10.0.5.9 -m src'"
        ))?;
        let out = Command::new("bpftool")
            .args(["prog", "show"])
            .output()
            .context("running bpftool")?;
        let text = String::from_utf8_lossy(&out.stdout);
        f.prog_id = text
            .lines()
            .filter(|l| l.contains("name xdpfilt_"))
            .filter_map(|l| l.split(':').next())
            .next_back()
            .context("xdp-filter's program is not listed by bpftool")?
            .trim()
            .to_string();
        Ok(f)
    }

    /// ns per packet, after checking the verdict.
    fn run(&self, frame: &[u8], repeat: u32, want: u32) -> Result<String> {
        let path = std::env::temp_dir().join(format!("rampart-bench-{}.bin", std::process::id()));
        std::fs::write(&path, frame)?;
        let out = Command::new("bpftool")
            .args(["prog", "run", "id", &self.prog_id, "data_in"])
            .arg(Path::new(&path))
            .args(["repeat", &repeat.to_string()])
            .output()
            .context("running bpftool prog run")?;
        let _ = std::fs::remove_file(&path);
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let rv: u32 = field(&text, "Return value: ", ',').context(text.clone())?;
        ensure!(rv == want, "xdp-filter returned {rv}, expected {want}");
        let ns: u64 = field(&text, "duration (average): ", 'n').context(text.clone())?;
        Ok(ns.to_string())
    }
}

fn field<T: std::str::FromStr>(text: &str, key: &str, end: char) -> Option<T> {
    let rest = &text[text.find(key)? + key.len()..];
    rest[..rest.find(end)?].trim().parse().ok()
}

impl Drop for XdpFilter {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth, which detaches and frees the program.
        let _ = sh(&format!("ip netns del {}", self.ns));
    }
}

fn sh(script: &str) -> Result<()> {
    let s = Command::new("sh")
        .args(["-c", script])
        .status()
        .with_context(|| format!("running `{script}`"))?;
    if !s.success() {
        bail!("`{script}` failed ({s})");
    }
    Ok(())
}
