//! `rampart detect` as an operator runs it: against a pinned instance, a spoofed SYN flood in the
//! lab namespaces; the command prints the generated rule and, on exit, writes its pcap, its
//! rule-file promotion and its explanation. Bounded traffic and time.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rampart_lab::attacks::{spawn_attack, AttackKind, AttackPlan, Background};
use rampart_lab::frames::Ipv4Prefix;
use rampart_lab::netns::{veth, End, Netns};
use rampart_testkit::{rampart_bin, rampart_cli, root_or_skip};

#[test]
fn detect_command_generates_explains_and_exports_a_rule() {
    if !root_or_skip("detect_command_generates_explains_and_exports_a_rule") {
        return;
    }
    let tag = std::process::id();
    let att = Netns::create(&format!("rk-att-{tag}")).unwrap();
    let edge = Netns::create(&format!("rk-edge-{tag}")).unwrap();
    veth(
        End {
            ns: &att,
            ifname: "a0",
            addr: "10.221.0.2/24",
        },
        End {
            ns: &edge,
            ifname: "e0",
            addr: "10.221.0.1/24",
        },
    )
    .unwrap();
    let pin = PathBuf::from(format!("/sys/fs/bpf/rampart-detect-test-{tag}"));
    let report = std::env::temp_dir().join(format!("rampart-detect-report-{tag}"));
    let control = std::env::temp_dir().join(format!("rampart-detect-{tag}.sock"));
    let generated = |req: &[&str]| {
        let out = Command::new(rampart_bin())
            .arg("generated")
            .args(req)
            .arg("--control")
            .arg(&control)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = rampart_cli(
        &pin,
        &[
            "--netns", &edge.name, "attach", "--iface", "e0", "--mode", "native",
        ],
    );
    assert!(ok, "{out}");
    let child = Command::new(rampart_bin())
        .arg("--pin-dir")
        .arg(&pin)
        .args([
            "detect",
            "--duration",
            "10",
            "--floor-pps",
            "2000",
            "--min-ttl",
            "2",
            "--report-dir",
        ])
        .arg(&report)
        .arg("--control")
        .arg(&control)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Calm traffic for a baseline, then the flood.
    let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
    let calm = Background::start(
        &att,
        sa("10.221.0.2:40000"),
        sa("10.221.0.1:8080"),
        2_400,
        400,
        200,
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut plan = AttackPlan::new(
        AttackKind::SynFlood,
        Ipv4Prefix::new(Ipv4Addr::new(198, 18, 0, 0), 15).unwrap(),
        Ipv4Addr::new(10, 221, 0, 1),
    );
    plan.packets = 60_000;
    plan.rate_pps = 20_000;
    let attack = spawn_attack(&att, "a0", &plan).unwrap().finish().unwrap();
    // Through the control socket: the rule is listed, explained, pinned (so it outlives its
    // 2 s TTL after the flood) and promoted to a rule-file entry.
    let (ok, list) = generated(&["list"]);
    assert!(ok && list.contains("tcp.flags eq 0x02"), "{list}");
    let id = list.split_whitespace().next().unwrap().to_string();
    let (ok, why) = generated(&["explain", &id]);
    assert!(
        ok && why.contains("covered") && why.contains("high cardinality"),
        "{why}"
    );
    assert!(generated(&["pin", &id]).0);
    let (ok, entry) = generated(&["promote", &id, "9001"]);
    assert!(
        ok && entry.contains("id: 9001") && entry.contains("action: drop"),
        "{entry}"
    );
    let (ok, err) = generated(&["pin", "0x12345"]);
    assert!(
        !ok && err.contains("no generated rule has id 0x12345"),
        "{err}"
    );
    calm.finish().unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    println!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(attack.frames == 60_000);
    assert!(
        text.contains("+ rule 0x4") && text.contains("tcp.flags eq 0x02"),
        "{text}"
    );
    assert!(!text.contains("expired"), "a pinned rule expired: {text}");
    assert!(!control.exists(), "the control socket is removed on exit");
    let files: Vec<_> = std::fs::read_dir(&report)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    let yaml = files
        .iter()
        .find(|f| f.ends_with(".yaml"))
        .expect("a promotion was written");
    let promoted = std::fs::read_to_string(report.join(yaml)).unwrap();
    let as_file = format!(
        "version: 1\nrules:\n{}",
        promoted
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    rampart_rules::load_str(&as_file, "promoted.yaml", &report)
        .unwrap_or_else(|e| panic!("{e}\n{as_file}"));
    let pcap = files.iter().find(|f| f.ends_with(".pcap")).unwrap();
    assert!(
        std::fs::metadata(report.join(pcap)).unwrap().len() > 24 + 16,
        "the pcap holds matched samples"
    );
    assert!(rampart_cli(&pin, &["--netns", &edge.name, "detach", "--iface", "e0"]).0);
    assert!(rampart_cli(&pin, &["unpin"]).0);
    std::fs::remove_dir_all(&report).unwrap();
}
