//! Escalation end to end on the kernel: a brute-force client limited by an L7 rate limit is
//! jailed, and the XDP program (through BPF_PROG_TEST_RUN) then drops its packets while another
//! client's still pass.

use std::path::Path;
use std::sync::Arc;

use rampart::l7::{ConnInfo, Decision, Engine, EngineConfig, TablesJailer};
use rampart_testkit::{fresh_dataplane, packets::tcp4, pin_to_cpu0, root_or_skip};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

#[test]
fn rate_limit_offender_is_dropped_in_xdp() {
    if !root_or_skip("rate_limit_offender_is_dropped_in_xdp") {
        return;
    }
    pin_to_cpu0();
    let rules = rampart_rules::load_str(
        r#"version: 1
rules:
  - id: 2100
    ref: login-bruteforce
    expression: http.request.method eq "POST" and http.request.uri.path eq "/login"
    action: ratelimit
    ratelimit: { characteristics: [ip.src], period: 60, requests_per_period: 3, mitigation_timeout: 1, jail_after: 1, jail_duration: 300 }
"#,
        "jail.yaml",
        Path::new("."),
    )
    .expect("rules");
    let dp = Arc::new(TablesJailer::new(fresh_dataplane()));
    let engine = Engine::with_jailer(&[&rules], EngineConfig::default(), Box::new(dp.clone()))
        .expect("engine");

    let attacker = ConnInfo::new("198.51.100.66:50000".parse().unwrap());
    let (parts, ()) = http::Request::post("/login").body(()).unwrap().into_parts();
    let mut decisions = Vec::new();
    for _ in 0..5 {
        let mut tx = engine.begin(&attacker, &parts);
        decisions.push(tx.on_request_body(b"", true));
    }
    assert!(
        decisions[..3].iter().all(|d| *d == Decision::Continue),
        "{decisions:?}"
    );
    assert!(matches!(
        decisions[3],
        Decision::RateLimited { rule_id: 2100, .. }
    ));
    assert_eq!(engine.stats().jailed, 1);

    dp.with_tables(|dp| {
        let listed = dp.deny_list().expect("deny list");
        assert_eq!(listed.len(), 1, "{listed:?}");
        let from_attacker = tcp4("198.51.100.66", "192.0.2.1", 50000, 443, true, b"");
        let from_other = tcp4("198.51.100.67", "192.0.2.1", 50000, 443, true, b"");
        assert_eq!(
            dp.test_run(&from_attacker, 1).expect("test run").0,
            XDP_DROP
        );
        assert_eq!(dp.test_run(&from_other, 1).expect("test run").0, XDP_PASS);
    });
}
