//! Rule-file scale: parse + check + compile time and peak memory for 10,000 rules (1,001 compiled
//! to XDP, the table's capacity being 1,024 entries; 9,000 HTTP rules) and a 1,000,000-prefix
//! list. Each run is checked (rule, entry and list counts) so a figure always measures real work.
//! Peak memory is read (VmHWM) in a child process that only loads the file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use rampart_rules::{lang::sets::ValueSet, lang::ListDef, load_file, Target};

const XDP_RULES: u32 = 1_000;
const L7_RULES: u32 = 9_000;
const PREFIXES: u32 = 1_000_000;

fn write_inputs(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut list = String::with_capacity(PREFIXES as usize * 16);
    for i in 0..PREFIXES {
        let _ = writeln!(
            list,
            "10.{}.{}.{}",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        );
    }
    std::fs::write(dir.join("big.txt"), list)?;
    let mut f = String::from("version: 1\nlists:\n  big: { kind: ip, file: big.txt }\nrules:\n");
    let _ = writeln!(
        f,
        "  - id: 1\n    expression: ip.src in $big\n    action: drop"
    );
    for i in 0..XDP_RULES {
        let expr = match i % 4 {
            0 => format!("udp.dstport eq {}", 20_000 + i),
            1 => format!(
                "tcp.dstport in {{22 {}}} and ip.src in {{100.{}.{}.0/24}}",
                1_000 + i,
                64 + i / 256,
                i % 256
            ),
            2 => format!(
                "tcp.flags.syn and not tcp.flags.ack and ip.len gt {}",
                100 + i
            ),
            _ => format!(
                "ip.dst in {{198.18.{}.0/24}} and ip.ttl lt {}",
                i % 256,
                2 + i % 60
            ),
        };
        let _ = writeln!(
            f,
            "  - id: {}\n    expression: {expr}\n    action: drop",
            10 + i
        );
    }
    for i in 0..L7_RULES {
        let _ = writeln!(
            f,
            "  - id: {}\n    expression: http.host eq \"h{i}.example\" and starts_with(lower(http.request.uri.path), \"/p{i}/\")\n    action: block",
            100_000 + i
        );
    }
    let path = dir.join("rules.yaml");
    std::fs::write(&path, f)?;
    Ok(path)
}

fn load_checked(path: &Path) -> Result<()> {
    let set = load_file(path)?;
    ensure!(
        set.rules.len() == (1 + XDP_RULES + L7_RULES) as usize,
        "rules loaded: {}",
        set.rules.len()
    );
    ensure!(
        set.xdp.rule_count() == 1 + XDP_RULES,
        "xdp entries: {}",
        set.xdp.rule_count()
    );
    ensure!(set.l7_rules().count() == L7_RULES as usize);
    ensure!(matches!(set.rules[0].target, Target::Xdp { entries: 1 }));
    match set.lists.get("big") {
        Some(ListDef::Ip(s)) if matches!(s.as_ref(), ValueSet::Ip(p) if p.prefixes.len() == PREFIXES as usize) =>
            {}
        _ => anyhow::bail!("the 1,000,000-prefix list did not load whole"),
    }
    ensure!(
        set.xdp.prefix_classes[0].len() > PREFIXES as usize,
        "prefix trie entries: {}",
        set.xdp.prefix_classes[0].len()
    );
    Ok(())
}

fn peak_rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM missing")?;
    Ok(kb / 1024.0)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, path] = args.as_slice() {
        if flag == "--load-once" {
            load_checked(Path::new(path))?;
            println!("{:.0}", peak_rss_mib()?);
            return Ok(());
        }
    }
    let dir = std::env::temp_dir().join(format!("rampart-rules-bench-{}", std::process::id()));
    let path = write_inputs(&dir)?;
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        load_checked(&path)?;
        times.push(t.elapsed());
    }
    times.sort();
    let child = Command::new(std::env::current_exe()?)
        .arg("--load-once")
        .arg(&path)
        .output()?;
    ensure!(
        child.status.success(),
        "child load failed: {}",
        String::from_utf8_lossy(&child.stderr)
    );
    let peak = String::from_utf8_lossy(&child.stdout).trim().to_string();
    println!(
        "rule file: {} rules ({} xdp + 1 list rule, {} l7) and a {}-prefix list: parse+check+compile median {:?} (min {:?}), peak memory {} MiB",
        1 + XDP_RULES + L7_RULES,
        XDP_RULES,
        L7_RULES,
        PREFIXES,
        times[1],
        times[0],
        peak
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
