//! The report of the lab's HTTP phase: what the clients and the attacker saw, what the daemon
//! says (`status`, `counters`, `deny list`, `generated list` on its control socket) and what its
//! audit log recorded; the final text and the checks that make the lab fail.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::http_setup::{BRUTE_FORCE_RULE, LOGIN_FAILURES_ALLOWED};

/// Legitimate requests served / sent at or above this share pass.
pub const MIN_SERVED_SHARE: f64 = 0.99;

#[derive(Clone, Debug, Default)]
pub struct HttpReport {
    /// How long the traffic ran.
    pub duration: Duration,
    pub legit: LegitSummary,
    pub waf: WafSummary,
    pub brute: BruteSummary,
    pub flood: FloodSummary,
    /// XDP drops per reason (`drop_*` counters with packets), from `ctl counters`.
    pub xdp_drops: Vec<(String, u64)>,
    /// The daemon's own count, from `ctl status`.
    pub daemon: DaemonCounts,
    pub audit: AuditSummary,
}

#[derive(Clone, Debug, Default)]
pub struct LegitSummary {
    pub clients: usize,
    pub sent: u64,
    pub served: u64,
    pub failed: u64,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    pub origin_a: u64,
    pub origin_b: u64,
    pub workerd: u64,
    /// The first few failures, described.
    pub failures: Vec<String>,
}

impl LegitSummary {
    pub fn served_share(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.served as f64 / self.sent as f64
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct WafSummary {
    pub sent: u64,
    /// Answered 403.
    pub blocked: u64,
    /// Payloads that got anything else.
    pub passed: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct BruteSummary {
    pub attacker: String,
    /// Statuses of the login attempts until the limit (0: no answer).
    pub login_codes: Vec<u16>,
    /// The attacker's line in `deny list` (the jail), if any.
    pub deny_entry: Option<String>,
    pub after_jail_attempts: u64,
    pub after_jail_connected: u64,
}

impl BruteSummary {
    /// The attempt (1-based) that was rate limited.
    pub fn limited_at(&self) -> Option<usize> {
        self.login_codes
            .iter()
            .position(|&c| c == 429)
            .map(|i| i + 1)
    }
}

#[derive(Clone, Debug, Default)]
pub struct FloodSummary {
    pub what: String,
    pub frames: u32,
    pub rate_pps: f64,
    /// First frame → first poll of `generated list` that showed a rule.
    pub rule_after: Option<Duration>,
    /// A rule was listed before the flood's first frame (generated on legitimate traffic).
    pub rule_before_flood: bool,
    /// `generated list` at the end.
    pub rules: Vec<String>,
}

/// The numbers of the daemon's `status` reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DaemonCounts {
    pub requests: u64,
    pub blocked: u64,
    pub rate_limited: u64,
    pub routed: u64,
    pub xdp_packets: u64,
    pub xdp_dropped: u64,
    pub deny_entries: u64,
    pub jailed: u64,
    pub generated_live: u64,
}

/// The number just before `label` (`"…, 12 blocked"`), or just after it when `label` ends with
/// a space or a colon (`"generated rules live: 3"`).
fn number_at(text: &str, label: &str) -> u64 {
    let Some(at) = text.find(label) else {
        return 0;
    };
    let word = if label.ends_with(' ') || label.ends_with(':') {
        text[at + label.len()..].split_whitespace().next()
    } else {
        text[..at].split(|c: char| c.is_whitespace()).next_back()
    };
    word.map(|w| w.trim_matches(|c: char| !c.is_ascii_digit()))
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
}

impl DaemonCounts {
    /// Reads `status` text (`http: 5 requests, 2 blocked, …`; `xdp: …; 1 jailed`).
    pub fn parse(status: &str) -> DaemonCounts {
        let line = |prefix: &str| {
            status
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or("")
                .to_string()
        };
        let (http, xdp) = (line("http: "), line("xdp: "));
        DaemonCounts {
            requests: number_at(&http, " requests"),
            blocked: number_at(&http, " blocked"),
            rate_limited: number_at(&http, " rate limited"),
            routed: number_at(&http, " routed"),
            xdp_packets: number_at(&xdp, " packets"),
            xdp_dropped: number_at(&xdp, " dropped"),
            deny_entries: number_at(&xdp, " deny entries"),
            jailed: number_at(&xdp, " jailed"),
            generated_live: number_at(status, "generated rules live: "),
        }
    }
}

/// The `drop_*` reasons with packets in `counters` text (a table of reason, packets, bytes).
pub fn parse_drops(counters: &str) -> Vec<(String, u64)> {
    counters
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, packets) = (w.next()?, w.next()?.parse().ok()?);
            (name.starts_with("drop_") && packets > 0).then(|| (name.to_string(), packets))
        })
        .collect()
}

/// Requests of one rule in the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleCount {
    pub reference: String,
    pub requests: u64,
}

/// What the audit log says about the phase's requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditSummary {
    pub lines: u64,
    /// Blocked requests by the rule that decided.
    pub blocks: BTreeMap<u32, RuleCount>,
    /// Detections (matched scoring rules) in the blocked requests.
    pub detections: BTreeMap<u32, RuleCount>,
    /// Rate-limited requests by rule.
    pub rate_limited: BTreeMap<u32, RuleCount>,
}

impl AuditSummary {
    /// Reads the audit log's JSON lines (unreadable lines are skipped).
    pub fn parse(text: &str) -> AuditSummary {
        let mut s = AuditSummary::default();
        let bump = |m: &mut BTreeMap<u32, RuleCount>, id: u64, reference: &str| {
            let e = m.entry(id as u32).or_default();
            e.requests += 1;
            if e.reference.is_empty() {
                e.reference = reference.to_string();
            }
        };
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            s.lines += 1;
            let matches = v["matches"].as_array().cloned().unwrap_or_default();
            let reference = |id: u64| {
                matches
                    .iter()
                    .find(|m| m["ruleId"].as_u64() == Some(id))
                    .and_then(|m| m["ref"].as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let Some(id) = v["ruleId"].as_u64() else {
                continue;
            };
            match v["action"].as_str() {
                Some("block") => {
                    bump(&mut s.blocks, id, &reference(id));
                    for m in matches.iter().filter(|m| m["action"] == "score") {
                        if let Some(mid) = m["ruleId"].as_u64() {
                            bump(&mut s.detections, mid, m["ref"].as_str().unwrap_or(""));
                        }
                    }
                }
                Some("ratelimit") => bump(&mut s.rate_limited, id, &reference(id)),
                _ => {}
            }
        }
        s
    }

    pub fn blocked(&self) -> u64 {
        self.blocks.values().map(|c| c.requests).sum()
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".into(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1e3),
    )
}

fn by_rule(m: &BTreeMap<u32, RuleCount>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(id, c)| format!("{id} {} ×{}", c.reference, c.requests))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a drop reason means in this phase.
fn reason_hint(reason: &str) -> &'static str {
    match reason {
        "drop_denylist" => " (the jail)",
        "drop_rule" => " (the generated rule)",
        _ => "",
    }
}

impl HttpReport {
    /// The final report, for people.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let (l, w, b, f, d) = (
            &self.legit,
            &self.waf,
            &self.brute,
            &self.flood,
            &self.daemon,
        );
        let _ = writeln!(
            s,
            "HTTP phase report ({:.0} s of traffic)",
            self.duration.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "  legitimate: {} clients, {} requests, {} served ({:.2}%), {} failed; latency p50 {}, p99 {}",
            l.clients,
            l.sent,
            l.served,
            l.served_share() * 100.0,
            l.failed,
            ms(l.p50),
            ms(l.p99)
        );
        let _ = writeln!(
            s,
            "    answered by origin a {}, origin b {}, workerd {} (route rule for /edge/)",
            l.origin_a, l.origin_b, l.workerd
        );
        for why in &l.failures {
            let _ = writeln!(s, "    failed: {why}");
        }
        let _ = writeln!(
            s,
            "  WAF: {} of {} SQLi/XSS requests blocked (403); audit log: blocked by {}",
            w.blocked,
            w.sent,
            by_rule(&self.audit.blocks)
        );
        let _ = writeln!(s, "    detections: {}", by_rule(&self.audit.detections));
        for p in &w.passed {
            let _ = writeln!(s, "    NOT blocked: {p}");
        }
        let codes: Vec<String> = b.login_codes.iter().map(u16::to_string).collect();
        let _ = writeln!(
            s,
            "  login brute force from {}: statuses {}; rate limited at attempt {}; audit log: {}",
            b.attacker,
            codes.join(" "),
            b.limited_at().map_or_else(|| "-".into(), |n| n.to_string()),
            by_rule(&self.audit.rate_limited)
        );
        let _ = writeln!(
            s,
            "    jail: {}; {} later attempts, {} connected",
            b.deny_entry.as_deref().map_or_else(
                || "not in the XDP deny list".to_string(),
                |e| format!("XDP deny list has `{e}`")
            ),
            b.after_jail_attempts,
            b.after_jail_connected
        );
        let _ = writeln!(
            s,
            "  L3/L4 flood: {}: {} frames ({:.0}/s); first generated rule {} after the first frame{}",
            f.what,
            f.frames,
            f.rate_pps,
            ms(f.rule_after),
            if f.rule_before_flood { " (a rule existed BEFORE the flood)" } else { "" }
        );
        for r in &f.rules {
            let _ = writeln!(s, "    generated: {r}");
        }
        let drops: Vec<String> = self
            .xdp_drops
            .iter()
            .map(|(r, n)| format!("{r} {n}{}", reason_hint(r)))
            .collect();
        let _ = writeln!(
            s,
            "  XDP drops by reason: {}",
            if drops.is_empty() {
                "none".into()
            } else {
                drops.join(", ")
            }
        );
        let _ = writeln!(
            s,
            "  daemon: {} HTTP requests, {} blocked, {} rate limited, {} routed; XDP {} packets, {} dropped, {} jailed",
            d.requests, d.blocked, d.rate_limited, d.routed, d.xdp_packets, d.xdp_dropped, d.jailed
        );
        s
    }

    /// The checks that failed, described (empty: the phase showed what it should).
    pub fn failures(&self) -> Vec<String> {
        let (l, w, b, f) = (&self.legit, &self.waf, &self.brute, &self.flood);
        // Failures are counted on the response: the one that goes over the limit is still
        // answered by the origin (401); the attempt after it is limited.
        let failures = LOGIN_FAILURES_ALLOWED as usize + 1;
        let checks = [
            (
                l.sent > 0 && l.served_share() >= MIN_SERVED_SHARE,
                format!(
                    "legitimate requests served {} of {} (at least {:.0}% expected)",
                    l.served,
                    l.sent,
                    MIN_SERVED_SHARE * 100.0
                ),
            ),
            (
                l.origin_a > 0 && l.origin_b > 0,
                "both origins answered".into(),
            ),
            (l.workerd > 0, "workerd answered the /edge/ requests".into()),
            (
                w.sent > 0 && w.blocked == w.sent && w.passed.is_empty(),
                format!(
                    "every SQLi/XSS payload blocked ({} of {})",
                    w.blocked, w.sent
                ),
            ),
            (
                self.audit.blocked() >= w.sent,
                format!(
                    "the audit log names the blocking rule of every payload ({} of {})",
                    self.audit.blocked(),
                    w.sent
                ),
            ),
            (
                b.login_codes.len() == failures + 1
                    && b.login_codes[..failures].iter().all(|&c| c == 401)
                    && b.limited_at() == Some(failures + 1),
                format!(
                    "the brute force got {failures} × 401 then 429 (got {:?})",
                    b.login_codes
                ),
            ),
            (
                self.audit.rate_limited.contains_key(&BRUTE_FORCE_RULE),
                format!("the audit log shows rule {BRUTE_FORCE_RULE} rate limiting"),
            ),
            (
                b.deny_entry.is_some(),
                format!("{} jailed in the XDP deny list", b.attacker),
            ),
            (
                b.after_jail_attempts > 0 && b.after_jail_connected == 0,
                format!(
                    "no connection from the jailed attacker ({} of {} connected)",
                    b.after_jail_connected, b.after_jail_attempts
                ),
            ),
            (
                f.rule_after.is_some() && !f.rules.is_empty(),
                "the detector generated a rule for the flood".into(),
            ),
            (
                !f.rule_before_flood,
                "no rule generated on legitimate traffic alone".into(),
            ),
            (
                self.xdp_drops.iter().any(|(r, _)| r == "drop_denylist"),
                "XDP dropped the jailed attacker's packets".into(),
            ),
        ];
        checks
            .into_iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, what)| format!("http: {what}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "config /tmp/x/rampart.toml\nrules /tmp/x/rules.yaml\n\
        http: 1200 requests, 80 blocked, 1 rate limited, 300 routed\nlistener 0.0.0.0:8080\n\
        xdp ec0 (native)\nxdp: 90000 packets, 41000 dropped; 1 deny entries; 1 jailed\n\
        generated rules live: 2\n";

    #[test]
    fn status_numbers_are_read_by_their_labels() {
        let d = DaemonCounts::parse(STATUS);
        assert_eq!(
            d,
            DaemonCounts {
                requests: 1200,
                blocked: 80,
                rate_limited: 1,
                routed: 300,
                xdp_packets: 90_000,
                xdp_dropped: 41_000,
                deny_entries: 1,
                jailed: 1,
                generated_live: 2,
            }
        );
        assert_eq!(DaemonCounts::parse(""), DaemonCounts::default());
    }

    #[test]
    fn drops_are_the_drop_reasons_with_packets() {
        let text = "reason                        packets          bytes\n\
            pass_no_match                   500          60000\n\
            drop_denylist                    12            888\n\
            drop_rule                     40000       20000000\n\
            drop_rate_limit                   0              0\n\n\
            rule            matched      dropped  dropped bytes\n\
            1073741824        40000        40000       20000000\n";
        assert_eq!(
            parse_drops(text),
            [
                ("drop_denylist".to_string(), 12),
                ("drop_rule".to_string(), 40_000)
            ]
        );
    }

    #[test]
    fn the_audit_log_is_counted_by_deciding_and_detecting_rule() {
        let log = [
            r#"{"clientIp":"10.216.2.2","action":"block","ruleId":900999,"matches":[{"ruleId":900100,"ref":"sqli-args","action":"score","enforced":true},{"ruleId":900999,"ref":"anomaly-threshold","action":"block","enforced":true}]}"#,
            r#"{"clientIp":"10.216.2.2","action":"block","ruleId":900999,"matches":[{"ruleId":900202,"ref":"xss-body","action":"score","enforced":true},{"ruleId":900999,"ref":"anomaly-threshold","action":"block","enforced":true}]}"#,
            r#"{"clientIp":"10.216.2.2","action":"ratelimit","ruleId":3002,"matches":[{"ruleId":3002,"ref":"login-bruteforce","action":"ratelimit","enforced":true}]}"#,
            r#"{"clientIp":"10.216.1.2","action":"continue","matches":[]}"#,
            "not json",
        ]
        .join("\n");
        let a = AuditSummary::parse(&log);
        assert_eq!(a.lines, 4);
        assert_eq!(a.blocked(), 2);
        assert_eq!(a.blocks[&900_999].reference, "anomaly-threshold");
        assert_eq!(a.detections[&900_100].requests, 1);
        assert_eq!(a.detections[&900_202].reference, "xss-body");
        assert_eq!(a.rate_limited[&3002].requests, 1);
    }

    fn good() -> HttpReport {
        let mut login_codes = vec![401; LOGIN_FAILURES_ALLOWED as usize + 1];
        login_codes.push(429);
        HttpReport {
            duration: Duration::from_secs(20),
            legit: LegitSummary {
                clients: 4,
                sent: 1000,
                served: 1000,
                origin_a: 375,
                origin_b: 375,
                workerd: 250,
                p50: Some(Duration::from_micros(900)),
                p99: Some(Duration::from_millis(3)),
                ..LegitSummary::default()
            },
            waf: WafSummary {
                sent: 80,
                blocked: 80,
                passed: Vec::new(),
            },
            brute: BruteSummary {
                attacker: "10.216.2.2".into(),
                login_codes,
                deny_entry: Some("10.216.2.2/32  expires in 299 s".into()),
                after_jail_attempts: 3,
                after_jail_connected: 0,
            },
            flood: FloodSummary {
                what: "udp-reflection".into(),
                frames: 40_000,
                rate_pps: 10_000.0,
                rule_after: Some(Duration::from_millis(900)),
                rule_before_flood: false,
                rules: vec!["0x40000000  udp.srcport eq 123  hits 10  [active, Drop]".into()],
            },
            xdp_drops: vec![("drop_denylist".into(), 3), ("drop_rule".into(), 30_000)],
            daemon: DaemonCounts::parse(STATUS),
            audit: AuditSummary::parse(
                &std::iter::repeat_n(r#"{"action":"block","ruleId":900999,"matches":[]}"#, 80)
                    .chain([r#"{"action":"ratelimit","ruleId":3002,"matches":[]}"#])
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        }
    }

    #[test]
    fn a_clean_run_passes_and_renders_every_section() {
        let r = good();
        assert_eq!(r.failures(), Vec::<String>::new());
        let text = r.render();
        for want in [
            "1000 served (100.00%)",
            "80 of 80 SQLi/XSS requests blocked",
            "rate limited at attempt 7",
            "XDP deny list has `10.216.2.2/32",
            "first generated rule 900.0 ms after",
            "drop_rule 30000",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
    }

    #[test]
    fn every_broken_promise_is_named() {
        let mut r = good();
        r.legit.served = 980;
        r.waf.blocked = 79;
        r.waf.passed = vec!["xss query \"<svg>\" -> 200".into()];
        r.brute.login_codes = vec![401; 10];
        r.brute.deny_entry = None;
        r.brute.after_jail_connected = 1;
        r.flood.rule_after = None;
        r.flood.rule_before_flood = true;
        let failed = r.failures().join("; ");
        for want in [
            "served 980 of 1000",
            "every SQLi/XSS payload blocked (79 of 80)",
            "then 429",
            "10.216.2.2 jailed",
            "no connection from the jailed attacker (1 of 3",
            "generated a rule for the flood",
            "no rule generated on legitimate traffic alone",
        ] {
            assert!(failed.contains(want), "{want} in {failed}");
        }
    }
}
