//! The lab's HTTP phase, shortened: `rampart run` in `rl-edge` with two origins and workerd,
//! legitimate clients, WAF payloads, a login brute force and a spoofed UDP flood. Checks the
//! report: legitimate requests served, every payload blocked (with its rules in the audit log),
//! the brute force limited and its source jailed in XDP, a generated rule for the flood, workerd
//! answering its route; and that the phase leaves no namespace behind.

use std::path::PathBuf;
use std::time::Duration;

use rampart_lab::http_payloads::attacks;
use rampart_lab::{run_http_phase, HttpLabError, HttpPlan};
use rampart_testkit::{rampart_bin, root_or_skip};

const ATTACKER: &str = "10.216.2.2";

fn drops(r: &rampart_lab::HttpReport, reason: &str) -> u64 {
    r.xdp_drops
        .iter()
        .find(|(name, _)| name == reason)
        .map_or(0, |(_, n)| *n)
}

#[test]
fn http_phase_shows_every_layer_at_work() {
    if !root_or_skip("http_phase_shows_every_layer_at_work") {
        return;
    }
    let plan = HttpPlan {
        rampart_bin: rampart_bin(),
        duration: Duration::from_secs(12),
        ..HttpPlan::default()
    };
    let r = run_http_phase(&plan, |line| eprintln!("{line}"))
        .expect("the HTTP phase (workerd comes from `cargo xtask setup`)");
    let text = r.render();
    eprintln!("{text}");

    // Legitimate clients: (nearly) everything served, by both origins and by workerd.
    let l = &r.legit;
    assert!(l.sent > 300, "{text}");
    assert!(l.served_share() >= 0.99, "{text}");
    assert!(
        l.origin_a > 0 && l.origin_b > 0,
        "round robin over both origins: {text}"
    );
    assert!(l.workerd > 0, "workerd answered /edge/: {text}");
    assert!(
        l.p50.is_some_and(|p| p < Duration::from_millis(500)),
        "{text}"
    );

    // WAF: every SQLi and XSS payload, as a query argument and as a form field, blocked; the
    // audit log names the threshold rule and the detection behind each.
    let payloads = attacks().len() as u64;
    assert_eq!((r.waf.sent, r.waf.blocked), (payloads, payloads), "{text}");
    assert!(r.waf.passed.is_empty(), "{:?}", r.waf.passed);
    assert_eq!(r.audit.blocks[&900_999].requests, payloads, "{text}");
    for (rule, reference) in [
        (900_100, "sqli-args"),
        (900_102, "sqli-body"),
        (900_200, "xss-args"),
        (900_202, "xss-body"),
    ] {
        let c = &r.audit.detections[&rule];
        assert_eq!(
            (c.reference.as_str(), c.requests),
            (reference, 20),
            "{text}"
        );
    }

    // Brute force: six failures answered (401), the seventh attempt limited, the source jailed in
    // XDP, and its later connections never open.
    assert_eq!(
        r.brute.login_codes,
        [401, 401, 401, 401, 401, 401, 429],
        "{text}"
    );
    assert!(r.audit.rate_limited[&3002].requests >= 1, "{text}");
    let jail = r.brute.deny_entry.as_deref().unwrap_or("");
    assert!(jail.starts_with(&format!("{ATTACKER}/32")), "{text}");
    assert!(r.brute.after_jail_attempts > 0, "{text}");
    assert_eq!(r.brute.after_jail_connected, 0, "{text}");
    assert!(drops(&r, "drop_denylist") > 0, "{text}");
    assert!(r.daemon.jailed >= 1 && r.daemon.rate_limited >= 1, "{text}");

    // Flood: a rule generated after the flood began (none before), naming the victim, and
    // dropping most of the flood in XDP.
    assert!(!r.flood.rule_before_flood, "{text}");
    let ttm = r.flood.rule_after.expect("a generated rule");
    assert!(ttm < Duration::from_secs(4), "{text}");
    assert!(
        r.flood
            .rules
            .iter()
            .any(|l| l.contains("ip.dst eq 10.216.2.1")),
        "{text}"
    );
    assert!(
        drops(&r, "drop_rule") > u64::from(r.flood.frames) / 2,
        "most of the flood dropped by the generated rule: {text}"
    );

    // The report's own checks agree; nothing is left behind.
    assert_eq!(r.failures(), Vec::<String>::new(), "{text}");
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&netns.stdout);
    assert!(!listed.lines().any(|l| l.starts_with("rl-")), "{listed}");
}

#[test]
fn a_missing_workerd_names_the_setup_command() {
    let plan = HttpPlan {
        workerd_bin: PathBuf::from("/nonexistent/workerd"),
        ..HttpPlan::default()
    };
    let err = run_http_phase(&plan, |_| {}).expect_err("no workerd");
    assert!(matches!(err, HttpLabError::WorkerdMissing(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("cargo xtask setup") && msg.contains("/nonexistent/workerd"),
        "{msg}"
    );
}
