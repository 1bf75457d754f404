//! Engine tests: every field, function and action on real parsed requests; rate-limit semantics
//! through the engine; escalation to a fake data plane; audit evidence and redaction.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_rules::{load_str, Prefix, RuleSet};

use super::*;
use crate::kernel::FakeTables;

fn rules(body: &str) -> RuleSet {
    let text = format!("version: 1\nrules:\n{body}");
    load_str(&text, "test.yaml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn engine(body: &str) -> Engine {
    Engine::new(&[&rules(body)], EngineConfig::default()).unwrap()
}

/// One rule `id: 1` with this expression and action `block`.
fn blocker(expr: &str) -> Engine {
    engine(&format!(
        "  - id: 1\n    expression: '{}'\n    action: block\n",
        expr.replace('\'', "''")
    ))
}

struct Req {
    method: &'static str,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    peer: &'static str,
}

fn get(uri: &str) -> Req {
    Req {
        method: "GET",
        uri: uri.into(),
        headers: vec![("host", "shop.example".into())],
        body: Vec::new(),
        peer: "192.0.2.10:40000",
    }
}

impl Req {
    fn header(mut self, n: &'static str, v: &str) -> Req {
        self.headers.push((n, v.into()));
        self
    }

    fn post(mut self, ct: &str, body: &[u8]) -> Req {
        self.method = "POST";
        self.headers.push(("content-type", ct.into()));
        self.body = body.to_vec();
        self
    }

    fn peer(mut self, p: &'static str) -> Req {
        self.peer = p;
        self
    }

    fn tx(&self, e: &Engine) -> Transaction {
        let mut b = http::Request::builder()
            .method(self.method)
            .uri(self.uri.as_str());
        for (n, v) in &self.headers {
            b = b.header(*n, v.as_str());
        }
        let (parts, ()) = b.body(()).unwrap().into_parts();
        e.begin(&ConnInfo::new(self.peer.parse().unwrap()), &parts)
    }

    /// Runs head and body phases (body in two chunks); returns the decision and audit.
    fn run(&self, e: &Engine) -> (Decision, AuditEvent) {
        let mut tx = self.tx(e);
        let mut d = tx.on_request_headers();
        if !d.is_terminal() {
            let mid = self.body.len() / 2;
            d = tx.on_request_body(&self.body[..mid], false);
            if !d.is_terminal() {
                d = tx.on_request_body(&self.body[mid..], true);
            }
        }
        (d, tx.finish())
    }

    fn blocked(&self, e: &Engine) -> bool {
        matches!(self.run(e).0, Decision::Block { .. })
    }
}

#[test]
fn request_fields() {
    let cases: &[(&str, Req, bool)] = &[
        (r#"http.request.method eq "GET""#, get("/"), true),
        (r#"http.host eq "shop.example""#, get("/"), true),
        (
            r#"http.request.uri eq "/a%20b?x=1""#,
            get("/a%20b?x=1"),
            true,
        ),
        (
            r#"http.request.uri.path eq "/a b""#,
            get("/a%20b?x=1"),
            true,
        ),
        (
            r#"http.request.uri.path.raw eq "/a%20b""#,
            get("/a%20b"),
            true,
        ),
        (r#"http.request.uri.query eq "x=1&y""#, get("/?x=1&y"), true),
        (
            r#"http.request.uri.args["x"][1] eq "2""#,
            get("/?x=1&x=2"),
            true,
        ),
        (
            r#"any(http.request.uri.args["y"][*] eq "")"#,
            get("/?x=1&y"),
            true,
        ),
        (
            r#"any(http.request.uri.args.names[*] eq "a b")"#,
            get("/?a%20b=1"),
            true,
        ),
        (
            r#"any(http.request.uri.args.values[*] eq "<x>")"#,
            get("/?q=%3Cx%3E"),
            true,
        ),
        (
            r#"http.request.headers["x-token"][0] eq "t1""#,
            get("/").header("X-Token", "t1"),
            true,
        ),
        (
            r#"len(http.request.headers["x-a"]) eq 2"#,
            get("/").header("x-a", "1").header("X-A", "2"),
            true,
        ),
        (
            r#"any(http.request.headers.names[*] eq "x-a")"#,
            get("/").header("X-A", "1"),
            true,
        ),
        (
            r#"http.request.cookies["sid"][0] eq "abc""#,
            get("/").header("cookie", "a=1; sid=abc"),
            true,
        ),
        (
            r#"http.user_agent contains "curl""#,
            get("/").header("user-agent", "curl/8.0"),
            true,
        ),
        (r#"http.request.version eq "HTTP/1.1""#, get("/"), true),
        (r#"ip.src in {192.0.2.0/24}"#, get("/"), true),
        (r#"ip.src in {198.51.100.0/24}"#, get("/"), false),
        (
            r#"http.request.body.raw contains "needle""#,
            get("/").post("text/plain", b"hay needle hay"),
            true,
        ),
        (
            r#"http.request.body.form["user"][0] eq "bob""#,
            get("/").post("application/x-www-form-urlencoded", b"user=bob&pw=x"),
            true,
        ),
        (
            r#"http.request.body.form["user.tags[1]"][0] eq "b""#,
            get("/").post("application/json", br#"{"user":{"tags":["a","b"]}}"#),
            true,
        ),
    ];
    for (expr, req, want) in cases {
        assert_eq!(req.blocked(&blocker(expr)), *want, "{expr} on {}", req.uri);
    }
}

#[test]
fn multipart_field_names_and_values() {
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n1' OR '1'='1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile bytes\r\n--XyZ--\r\n";
    let req = get("/").post("multipart/form-data; boundary=XyZ", body);
    assert!(req.blocked(&blocker(
        r#"http.request.body.form["upload"][0] eq "a.txt""#
    )));
    let waf = Engine::new(&[&rampart_rules::default_waf()], EngineConfig::default()).unwrap();
    let (d, audit) = req.run(&waf);
    assert!(
        matches!(
            d,
            Decision::Block {
                rule_id: 900999,
                ..
            }
        ),
        "{d:?}"
    );
    let m = &audit.matches[0];
    assert_eq!(
        (m.rule_id, m.field.as_deref()),
        (900102, Some(r#"http.request.body.form["comment"]"#))
    );
    assert_eq!(m.value.as_deref(), Some("1' OR '1'='1"));
}

#[test]
fn functions_on_requests() {
    let cases: &[(&str, Req)] = &[
        (r#"lower(http.request.uri.path) eq "/admin""#, get("/ADMIN")),
        (r#"upper(http.request.method) eq "GET""#, get("/")),
        (r#"len(http.request.uri.args) eq 2"#, get("/?a=1&b=2")),
        (
            r#"starts_with(http.request.uri.path, "/api/")"#,
            get("/api/v1"),
        ),
        (r#"ends_with(http.request.uri.path, ".php")"#, get("/x.php")),
        (
            r#"concat(http.request.method, " ", http.request.uri.path) eq "GET /""#,
            get("/"),
        ),
        (
            r#"any(url_decode(http.request.uri.args.values)[*] eq "<")"#,
            get("/?q=%253C"),
        ),
        (
            r#"any(html_entity_decode(http.request.uri.args.values)[*] eq "<b>")"#,
            get("/?q=%26lt%3Bb%26gt%3B"),
        ),
        (
            r#"any(base64_decode(http.request.uri.args.values)[*] eq "hello")"#,
            get("/?q=aGVsbG8%3D"),
        ),
        (
            r#"normalize_path(http.request.uri.path) eq "/etc/passwd""#,
            get("/a/../../etc/passwd"),
        ),
        (
            r#"any(compress_whitespace(http.request.uri.args.values)[*] eq "a b")"#,
            get("/?q=a%20%20%09b"),
        ),
        (
            r#"any(remove_nulls(http.request.uri.args.values)[*] eq "ab")"#,
            get("/?q=a%00b"),
        ),
        (
            r#"any(sqli(http.request.uri.args.values))"#,
            get("/?id=1%20UNION%20SELECT%20pw%20FROM%20users--"),
        ),
        (
            r#"any(xss(http.request.uri.args.values))"#,
            get("/?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"),
        ),
        (
            r#"http.request.uri.path matches "^/u/[0-9]+$""#,
            get("/u/42"),
        ),
        (r#"http.host wildcard "*.example""#, get("/")),
    ];
    for (expr, req) in cases {
        assert!(req.blocked(&blocker(expr)), "{expr} on {}", req.uri);
    }
    for clean in ["/?id=42", "/?q=O%27Reilly", "/?q=a%20%3C%20b"] {
        assert!(
            !get(clean).blocked(&blocker(
                "any(sqli(http.request.uri.args.values)) or any(xss(http.request.uri.args.values))"
            )),
            "{clean}"
        );
    }
}

#[test]
fn actions_allow_skip_log_score_route() {
    let e = engine(
        r#"  - id: 1
    expression: 'ip.src in {192.0.2.99} and http.request.method eq "GET"'
    action: allow
  - id: 2
    expression: 'http.request.uri.path eq "/skip"'
    action: skip
  - id: 3
    expression: 'http.request.uri.path eq "/watched"'
    action: block
    mode: log
  - id: 4
    expression: 'any(sqli(http.request.uri.args.values))'
    action: score
    score: 3
  - id: 5
    expression: 'any(http.request.uri.args.names[*] eq "debug")'
    action: score
    score: 2
    class: protocol
  - id: 6
    expression: 'starts_with(http.request.uri.path, "/edge")'
    action: route
    target: workers
  - id: 7
    expression: 'waf.score ge 5'
    action: block
    status: 406
  - id: 8
    expression: 'http.request.uri.path eq "/skip" or http.request.uri.path eq "/watched" or ip.src in {192.0.2.99}'
    action: block
"#,
    );
    let attack = "/edge?id=1%27%20OR%20%271%27%3D%271&debug=1";
    // Allowed source: nothing after rule 1 runs.
    assert_eq!(
        get(attack).peer("192.0.2.99:1").run(&e).0,
        Decision::Continue
    );
    // Skip: the remaining rules do not run.
    assert_eq!(get("/skip").run(&e).0, Decision::Continue);
    // Log mode: recorded, not enforced; rule 8 then blocks.
    let (d, audit) = get("/watched").run(&e);
    assert_eq!(d.rule_id(), Some(8));
    assert!(audit.matches.iter().any(|m| m.rule_id == 3 && !m.enforced));
    // Scores add up per class; 3 + 2 reaches the threshold.
    let (d, audit) = get(attack).run(&e);
    assert!(
        matches!(
            d,
            Decision::Block {
                status: 406,
                rule_id: 7,
                ..
            }
        ),
        "{d:?}"
    );
    assert_eq!(
        (audit.scores.total, audit.scores.sqli, audit.scores.protocol),
        (5, 3, 2)
    );
    // One score alone stays under; the route stands.
    let (d, _) = get("/edge?debug=1").run(&e);
    assert_eq!(
        d,
        Decision::Route {
            target: "workers".into(),
            rule_id: 6
        }
    );
    let s = e.stats();
    assert_eq!(s.routed, 1);
    assert!(s.rule_hits.contains(&(4, 1)));
}

#[test]
fn paranoia_levels() {
    let set = rules(
        "  - id: 1\n    expression: 'http.request.uri.path eq \"/p2\"'\n    action: block\n    paranoia: 2\n",
    );
    let p1 = Engine::new(&[&set], EngineConfig::default()).unwrap();
    let cfg = EngineConfig {
        paranoia: 2,
        ..EngineConfig::default()
    };
    let p2 = Engine::new(&[&set], cfg).unwrap();
    assert!(!get("/p2").blocked(&p1));
    assert!(get("/p2").blocked(&p2));
}

#[test]
fn body_limit_policies() {
    let big = vec![b'a'; 300];
    let mut cfg = EngineConfig {
        body_limit: 100,
        ..EngineConfig::default()
    };
    let set = rules(
        "  - id: 1\n    expression: 'http.request.body.raw contains \"zz\"'\n    action: block\n",
    );
    let e = Engine::new(&[&set], cfg.clone()).unwrap();
    let (d, _) = get("/").post("text/plain", &big).run(&e);
    assert!(matches!(
        d,
        Decision::Block {
            status: 413,
            rule_id: ENGINE_RULE_ID,
            ..
        }
    ));
    cfg.over_limit = OverLimit::InspectPrefix;
    let e = Engine::new(&[&set], cfg).unwrap();
    let mut tail_attack = big.clone();
    tail_attack.extend_from_slice(b"zz");
    assert_eq!(
        get("/").post("text/plain", &tail_attack).run(&e).0,
        Decision::Continue
    );
    let mut head_attack = b"zz".to_vec();
    head_attack.extend_from_slice(&big);
    assert!(get("/").post("text/plain", &head_attack).blocked(&e));
    assert_eq!(e.stats().body_over_limit, 2);
}

#[test]
fn rate_limit_burst_and_penalty_box() {
    let e = engine(
        r#"  - id: 10
    expression: 'http.request.uri.path eq "/api"'
    action: ratelimit
    ratelimit: { characteristics: [ip.src, 'http.request.headers["x-key"]'], period: 60, requests_per_period: 3, mitigation_timeout: 30 }
"#,
    );
    let r = |peer, key| get("/api").peer(peer).header("x-key", key);
    for _ in 0..3 {
        assert_eq!(r("192.0.2.1:1", "a").run(&e).0, Decision::Continue);
    }
    match r("192.0.2.1:1", "a").run(&e).0 {
        Decision::RateLimited {
            status: 429,
            retry_after,
            rule_id: 10,
        } => {
            assert!(retry_after <= Duration::from_secs(30) && retry_after > Duration::from_secs(25))
        }
        other => panic!("{other:?}"),
    }
    // Other characteristics values have their own counters.
    assert_eq!(r("192.0.2.1:1", "b").run(&e).0, Decision::Continue);
    assert_eq!(r("192.0.2.2:1", "a").run(&e).0, Decision::Continue);
    // Other paths are not subject to the rule.
    assert_eq!(
        get("/other").peer("192.0.2.1:1").run(&e).0,
        Decision::Continue
    );
    let resp = r("192.0.2.1:1", "a")
        .run(&e)
        .0
        .response()
        .expect("a refusal");
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(e.stats().rate_limited, 2);
}

#[test]
fn counting_expression_and_escalation_to_xdp() {
    let set = rules(
        r#"  - id: 20
    ref: login-bruteforce
    expression: 'http.request.method eq "POST" and http.request.uri.path eq "/login"'
    action: ratelimit
    ratelimit: { characteristics: [ip.src], period: 60, requests_per_period: 2, mitigation_timeout: 1, counting_expression: 'http.response.code eq 401', jail_after: 1, jail_duration: 600 }
"#,
    );
    let tables = Arc::new(TablesJailer::new(FakeTables::default()));
    let e =
        Engine::with_jailer(&[&set], EngineConfig::default(), Box::new(tables.clone())).unwrap();
    let login = || get("/login").post("application/x-www-form-urlencoded", b"u=a&p=b");
    let respond = |tx: &mut Transaction, code: u16| {
        let (parts, ()) = http::Response::builder()
            .status(code)
            .body(())
            .unwrap()
            .into_parts();
        tx.on_response(&parts);
    };
    // Successful logins do not count.
    for _ in 0..5 {
        let mut tx = login().tx(&e);
        assert_eq!(tx.on_request_body(b"u=a&p=b", true), Decision::Continue);
        respond(&mut tx, 200);
    }
    // Two failures are allowed; the third request is limited and the client jailed.
    for _ in 0..3 {
        let mut tx = login().tx(&e);
        assert_eq!(tx.on_request_body(b"", true), Decision::Continue);
        respond(&mut tx, 401);
    }
    let mut tx = login().tx(&e);
    assert!(matches!(
        tx.on_request_body(b"", true),
        Decision::RateLimited { rule_id: 20, .. }
    ));
    let denied = tables.with_tables(|t| t.denied.clone());
    let me = Prefix::from_ip("192.0.2.10".parse().unwrap());
    assert_eq!(denied.get(&me), Some(&Some(Duration::from_secs(600))));
    assert_eq!(e.stats().jailed, 1);
}

#[test]
fn jail_action_blocks_and_jails() {
    let tables = Arc::new(TablesJailer::new(FakeTables::default()));
    let set = rules("  - id: 30\n    expression: 'http.request.uri.path eq \"/wp-login.php\"'\n    action: jail\n    duration: 120\n");
    let e =
        Engine::with_jailer(&[&set], EngineConfig::default(), Box::new(tables.clone())).unwrap();
    assert!(get("/wp-login.php").blocked(&e));
    let denied = tables.with_tables(|t| t.denied.clone());
    assert_eq!(denied.len(), 1);
    assert_eq!(
        denied.values().next(),
        Some(&Some(Duration::from_secs(120)))
    );
}

#[test]
fn client_ip_through_trusted_proxy_reaches_rules_and_audit() {
    let set = rules("  - id: 1\n    expression: 'ip.src in {203.0.113.7}'\n    action: block\n");
    let cfg = EngineConfig {
        client_ip: ClientIpConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            header: ForwardedHeader::XForwardedFor,
        },
        ..EngineConfig::default()
    };
    let e = Engine::new(&[&set], cfg).unwrap();
    let via_proxy = get("/")
        .peer("10.1.2.3:1")
        .header("x-forwarded-for", "203.0.113.7, 10.9.9.9");
    let (d, audit) = via_proxy.run(&e);
    assert_eq!(d.rule_id(), Some(1));
    assert_eq!(
        (audit.client_ip.to_string().as_str(), audit.client_ip_source),
        ("203.0.113.7", "header")
    );
    // The same header from an untrusted peer is ignored.
    let spoof = get("/")
        .peer("198.51.100.1:1")
        .header("x-forwarded-for", "203.0.113.7");
    assert_eq!(spoof.run(&e).0, Decision::Continue);
}

#[test]
fn audit_redacts_secrets_and_truncates() {
    let e = engine(
        r#"  - id: 1
    expression: 'any(http.request.headers["authorization"][*] contains "evil")'
    action: block
  - id: 2
    expression: 'any(http.request.uri.args.values[*] contains "zzz")'
    action: block
"#,
    );
    let (_, audit) = get("/")
        .header("authorization", "Bearer evil-secret")
        .run(&e);
    let line = audit.to_json();
    assert!(!line.contains("evil-secret"), "{line}");
    assert!(line.contains("[redacted]"), "{line}");
    let long = format!("/?q={}zzz", "a".repeat(500));
    let (_, audit) = get(&long).run(&e);
    let v = audit.matches[0].value.clone().unwrap();
    assert!(v.len() < 200 && v.ends_with("(503 bytes)"), "{v}");
    let json: serde_json::Value = serde_json::from_str(&audit.to_json()).unwrap();
    assert_eq!(json["ruleId"], 2);
    assert_eq!(json["action"], "block");
    assert_eq!(
        json["matches"][0]["field"],
        "http.request.uri.args.values[0]"
    );
    assert_eq!(json["clientIp"], "192.0.2.10");
}

#[test]
fn hot_swap_keeps_transactions_on_their_rules() {
    let e = blocker(r#"http.request.uri.path eq "/a""#);
    let mut old = get("/a").tx(&e);
    e.swap_rules(&[&rules(
        "  - id: 2\n    expression: 'http.request.uri.path eq \"/b\"'\n    action: block\n",
    )])
    .unwrap();
    assert!(old.on_request_body(b"", true).is_terminal());
    assert!(!get("/a").blocked(&e));
    assert!(get("/b").blocked(&e));
    let dup =
        rules("  - id: 2\n    expression: 'http.request.uri.path eq \"/c\"'\n    action: block\n");
    assert!(matches!(
        e.swap_rules(&[&dup, &dup]),
        Err(EngineError::DuplicateRuleId { id: 2, .. })
    ));
    assert!(
        get("/b").blocked(&e),
        "a refused swap keeps the running rules"
    );
}

#[test]
fn hostile_requests_are_counted_not_fatal() {
    let waf = Engine::new(&[&rampart_rules::default_waf()], EngineConfig::default()).unwrap();
    let many_args: String = (0..5000).map(|i| format!("a{i}=1&")).collect();
    assert_eq!(
        get(&format!("/?{many_args}")).run(&waf).0,
        Decision::Continue
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (d, _) = get("/").post("application/json", deep.as_bytes()).run(&waf);
    assert_eq!(d, Decision::Continue);
    let bad_multipart = get("/").post("multipart/form-data", b"--x\r\nnonsense");
    assert_eq!(bad_multipart.run(&waf).0, Decision::Continue);
    let s = waf.stats();
    assert!(s.truncated >= 1 && s.body_errors >= 2, "{s:?}");
}
