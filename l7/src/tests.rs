//! Engine tests: every field, function and action on real parsed requests; rate-limit semantics
//! through the engine; escalation to a fake data plane; audit evidence and redaction.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_rules::{load_str, Prefix, RuleSet};

use super::*;
use rampart_tables::FakeTables;

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
    let err = e.swap_rules(&[&dup, &dup]).unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::DuplicateRuleId);
    assert_eq!(err.rule_id(), Some(2));
    assert_eq!(
        err.to_string(),
        "rule id 2 is in both test.yaml and test.yaml"
    );
    assert!(
        get("/b").blocked(&e),
        "a refused swap keeps the running rules"
    );
}

#[test]
fn hostile_requests_are_counted_and_refused() {
    let waf = Engine::new(&[&rampart_rules::default_waf()], EngineConfig::default()).unwrap();
    let refused_by = |r: &Req| match r.run(&waf).0 {
        Decision::Block {
            status, rule_id, ..
        } => (status, rule_id),
        other => panic!("{other:?}"),
    };
    let many_args: String = (0..5000).map(|i| format!("a{i}=1&")).collect();
    assert_eq!(refused_by(&get(&format!("/?{many_args}"))), (403, 900600));
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let r = get("/").post("application/json", deep.as_bytes());
    assert_eq!(refused_by(&r), (403, 900602));
    let bad_multipart = get("/").post("multipart/form-data", b"--x\r\nnonsense");
    assert_eq!(refused_by(&bad_multipart), (403, 900602));
    let many_fields: String = (0..2000).map(|i| format!("f{i}=1&")).collect();
    let r = get("/").post("application/x-www-form-urlencoded", many_fields.as_bytes());
    assert_eq!(refused_by(&r), (403, 900601));
    let s = waf.stats();
    assert_eq!((s.truncated, s.body_errors), (2, 2), "{s:?}");
}

/// The fields that make every parsing cap and parse failure visible to rules.
#[test]
fn truncation_and_body_error_fields() {
    let limits = RequestLimits {
        max_args: 2,
        max_headers: 3,
        max_cookies: 1,
    };
    let cfg = EngineConfig {
        request_limits: limits,
        body_limits: BodyLimits {
            max_fields: 2,
            max_value: 4,
            ..BodyLimits::default()
        },
        ..EngineConfig::default()
    };
    let names = |expr: &str, r: &Req| {
        let set = rules(&format!(
            "  - id: 1\n    expression: '{}'\n    action: block\n",
            expr.replace('\'', "''")
        ));
        let e = Engine::new(&[&set], cfg.clone()).unwrap();
        matches!(r.run(&e).0, Decision::Block { .. })
    };
    let head = r#"all(http.request.truncated eq "args") and len(http.request.truncated) eq 1"#;
    assert!(names(head, &get("/?a=1&b=2&c=3")));
    assert!(!names(head, &get("/?a=1&b=2")));
    let cookies = r#"any(http.request.truncated eq "cookies")"#;
    assert!(names(cookies, &get("/").header("cookie", "a=1; b=2")));
    let headers = r#"any(http.request.truncated eq "headers")"#;
    let r = get("/").header("a", "1").header("b", "2").header("c", "3");
    assert!(names(headers, &r));
    assert!(!names("len(http.request.truncated) gt 0", &get("/?a=1")));
    let fields = r#"any(http.request.body.truncated eq "fields")"#;
    let form = "application/x-www-form-urlencoded";
    assert!(names(fields, &get("/").post(form, b"a=1&b=2&c=3")));
    assert!(!names(fields, &get("/").post(form, b"a=1&b=2")));
    let value = r#"any(http.request.body.truncated eq "value")"#;
    let mp = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nlong value\r\n--b--";
    assert!(names(
        value,
        &get("/").post("multipart/form-data; boundary=b", mp)
    ));
    let error = |code: &str| format!(r#"http.request.body.error eq "{code}""#);
    let json = "application/json";
    assert!(names(&error("json"), &get("/").post(json, b"{")));
    let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
    assert!(names(
        &error("json.depth"),
        &get("/").post(json, deep.as_bytes())
    ));
    let no_boundary = get("/").post("multipart/form-data", b"x");
    assert!(names(&error("multipart.boundary"), &no_boundary));
    let bad = get("/").post("multipart/form-data; boundary=b", b"junk");
    assert!(names(&error("multipart"), &bad));
    let gz = get("/")
        .post(form, b"\x1f\x8b not really")
        .header("content-encoding", "gzip");
    assert!(names(&error("encoding"), &gz));
    // A body that parsed has no error: the field is absent, so comparisons are false.
    assert!(!names(
        "len(http.request.body.error) ge 0",
        &get("/").post(json, b"{}")
    ));
    assert!(names("not len(http.request.body.error) ge 0", &get("/")));
}

/// Refusals the engine makes on the head, before any rule and before the body is read.
#[test]
fn head_checks_refuse_before_the_body() {
    let body_rule =
        "  - id: 1\n    expression: 'http.request.body.raw contains \"zz\"'\n    action: log\n";
    let head_rule =
        "  - id: 1\n    expression: 'http.request.uri.path eq \"/x\"'\n    action: log\n";
    let cfg = EngineConfig {
        body_limit: 100,
        ..EngineConfig::default()
    };
    let head = |e: &Engine, r: &Req| r.tx(e).on_request_headers();
    let refusal = |want: u16| move |d: Decision| matches!(d, Decision::Block { status, rule_id: ENGINE_RULE_ID, .. } if status == want);
    let body_engine = Engine::new(&[&rules(body_rule)], cfg.clone()).unwrap();
    let head_engine = Engine::new(&[&rules(head_rule)], cfg.clone()).unwrap();
    // Two Content-Type headers: 400, whatever the rules read.
    let two = get("/")
        .post("text/plain", b"a=1")
        .header("content-type", "application/x-www-form-urlencoded");
    assert!(refusal(400)(head(&body_engine, &two)));
    assert!(refusal(400)(head(&head_engine, &two)));
    assert_eq!(head_engine.stats().content_type_conflicts, 1);
    // Content-Length over the limit: 413 at once when the body would be inspected.
    let big = get("/")
        .post("text/plain", b"")
        .header("content-length", "101");
    assert!(refusal(413)(head(&body_engine, &big)));
    assert_eq!(head(&head_engine, &big), Decision::Continue);
    let at_limit = get("/")
        .post("text/plain", b"")
        .header("content-length", "100");
    assert_eq!(head(&body_engine, &at_limit), Decision::Continue);
    assert_eq!(body_engine.stats().body_over_limit, 1);
    let prefix = Engine::new(
        &[&rules(body_rule)],
        EngineConfig {
            over_limit: OverLimit::InspectPrefix,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_eq!(head(&prefix, &big), Decision::Continue);
    // A head rule that ends evaluation (an `allow` for uploads) means no body is read, so no
    // body check either; the Content-Type check still comes first.
    let allow_then_body = format!(
        "  - id: 2\n    expression: 'http.request.uri.path eq \"/upload\"'\n    action: allow\n{body_rule}"
    );
    let allow = Engine::new(&[&rules(&allow_then_body)], cfg.clone()).unwrap();
    let mut upload = get("/upload")
        .post("text/plain", b"")
        .header("content-length", "101");
    assert_eq!(head(&allow, &upload), Decision::Continue);
    upload = upload.header("content-type", "text/html");
    assert!(refusal(400)(head(&allow, &upload)));
    // Content codings the engine cannot decode, or any with `Refuse`.
    let zstd = get("/")
        .post("text/plain", b"x")
        .header("content-encoding", "zstd");
    assert!(refusal(415)(head(&body_engine, &zstd)));
    assert_eq!(head(&head_engine, &zstd), Decision::Continue);
    let gzip = get("/")
        .post("text/plain", b"x")
        .header("content-encoding", "gzip");
    assert_eq!(head(&body_engine, &gzip), Decision::Continue);
    let refuse = Engine::new(
        &[&rules(body_rule)],
        EngineConfig {
            encoded_body: EncodedBody::Refuse,
            ..cfg
        },
    )
    .unwrap();
    assert!(refusal(415)(head(&refuse, &gzip)));
    let identity = get("/")
        .post("text/plain", b"x")
        .header("content-encoding", "identity");
    assert_eq!(head(&refuse, &identity), Decision::Continue);
    assert_eq!(body_engine.stats().encoding_refused, 1);
    assert_eq!(refuse.stats().encoding_refused, 1);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn encoded_bodies_are_decoded_within_the_limit() {
    let set = rules(
        "  - id: 1\n    expression: 'http.request.body.raw contains \"zz\" or any(http.request.body.form[\"q\"] eq \"zz\")'\n    action: block\n",
    );
    let mut cfg = EngineConfig {
        body_limit: 4000,
        ..EngineConfig::default()
    };
    let e = Engine::new(&[&set], cfg.clone()).unwrap();
    let form = "application/x-www-form-urlencoded";
    let gz = |body: &[u8]| {
        get("/")
            .post(form, &gzip(body))
            .header("content-encoding", "gzip")
    };
    assert!(gz(b"q=zz").blocked(&e));
    assert_eq!(gz(b"q=ok").run(&e).0, Decision::Continue);
    // Decoded past the limit: 413 under `Block`, counted as over the limit and decoded.
    let mut bomb = b"q=ok&".to_vec();
    bomb.resize(1 << 20, b'a');
    let (d, _) = gz(&bomb).run(&e);
    assert!(
        matches!(
            d,
            Decision::Block {
                status: 413,
                rule_id: ENGINE_RULE_ID,
                ..
            }
        ),
        "{d:?}"
    );
    let s = e.stats();
    assert_eq!((s.body_over_limit, s.body_decoded_over_limit), (1, 1));
    // Under `InspectPrefix`, the decoded prefix is inspected and marked as cut.
    cfg.over_limit = OverLimit::InspectPrefix;
    let set = rules(
        "  - id: 1\n    expression: 'any(http.request.body.truncated eq \"limit\") and not any(http.request.body.truncated eq \"fields\")'\n    action: block\n    status: 499\n",
    );
    let e = Engine::new(&[&set], cfg).unwrap();
    let (d, _) = gz(&bomb).run(&e);
    assert!(matches!(d, Decision::Block { status: 499, .. }), "{d:?}");
    assert_eq!(e.stats().body_decoded_over_limit, 1);
}

/// Bodies of no or an unknown type are now read as text: ordinary text must still pass.
#[test]
fn benign_text_bodies_pass_the_default_rules() {
    let waf = Engine::new(&[&rampart_rules::default_waf()], EngineConfig::default()).unwrap();
    let bodies: &[(&str, &str)] = &[
        (
            "text/plain",
            "I can't believe it's not butter; it's great, isn't it?",
        ),
        (
            "text/plain",
            "Dear O'Reilly team,\nplease find the report attached.\n-- Bob",
        ),
        (
            "text/csv",
            "id,name,price\n1,\"Widget, large\",9.99\n2,O'Neil's mug,4.50\n",
        ),
        (
            "application/xml",
            "<?xml version=\"1.0\"?><order id=\"7\"><item sku=\"a-1\" qty=\"2\"/></order>",
        ),
        (
            "text/markdown",
            "# Title\n\nSome *emphasis* and a [link](https://example.com/?a=1&b=2).\n",
        ),
        ("application/x-ndjson", "{\"a\":1}\n{\"a\":2}\n"),
        ("", "name=alice&email=alice%40example.com&age=30"),
        (
            "",
            "{\"user\":{\"name\":\"O'Brien\",\"tags\":[\"a\",\"b\"]}}",
        ),
        (
            "application/octet-stream",
            "\u{1}\u{2}<script>binary-looking=1",
        ),
    ];
    for (ct, body) in bodies {
        let mut r = get("/api");
        r.method = "POST";
        if !ct.is_empty() {
            r = r.header("content-type", ct);
        }
        r.body = body.as_bytes().to_vec();
        let (d, audit) = r.run(&waf);
        assert_eq!(d, Decision::Continue, "{ct}: {body:?}: {}", audit.to_json());
    }
}

/// A SecLang set beside the YAML rules: YAML rules run first (and may end the request), then
/// the SecLang set over the whole request; its logged matches are in the audit with `msg`,
/// the variable and `logdata`, and its `deny` blocks with the engine's block body.
#[test]
fn seclang_set_runs_after_the_yaml_rules() {
    let e = engine(
        "  - id: 1\n    expression: 'http.request.uri.path eq \"/yaml-blocked\"'\n    action: block\n",
    );
    assert!(!e.needs_body(), "this YAML rule reads no body");
    let set = crate::seclang::RuleSet::load(&[crate::seclang::Source::Text {
        name: "site.conf".into(),
        text: r#"
SecRule ARGS "@rx (?i)union\s+select" "id:100,phase:2,pass,log,t:none,msg:'SQLi in %{MATCHED_VAR_NAME}',logdata:'%{MATCHED_VAR}',setvar:tx.score=+5"
SecRule REQUEST_COOKIES "@contains evil" "id:101,phase:1,pass,log,logdata:'%{MATCHED_VAR}',setvar:tx.score=+1"
SecRule TX:SCORE "@ge 5" "id:199,phase:2,deny,status:403,msg:'score %{tx.score}'"
"#
        .into(),
    }])
    .unwrap();
    e.set_seclang(Some(set));
    assert!(e.needs_body(), "SecLang sets read the body");
    assert_eq!(e.stats().seclang_rules, 3);

    let (d, audit) = get("/search?q=1%20UNION%20SELECT%202").run(&e);
    assert!(
        matches!(
            d,
            Decision::Block {
                status: 403,
                rule_id: 199,
                ..
            }
        ),
        "{d:?}"
    );
    let ids: Vec<(u32, &str)> = audit
        .matches
        .iter()
        .map(|m| (m.rule_id, m.action))
        .collect();
    assert_eq!(ids, [(100, "log"), (199, "block")]);
    assert_eq!(audit.matches[0].msg.as_deref(), Some("SQLi in ARGS:q"));
    assert_eq!(audit.matches[0].field.as_deref(), Some("ARGS:q"));
    assert_eq!(audit.matches[0].value.as_deref(), Some("1 UNION SELECT 2"));

    let body = b"q=union select 1";
    let (d, _) = get("/form")
        .post("application/x-www-form-urlencoded", body)
        .run(&e);
    assert!(
        matches!(d, Decision::Block { rule_id: 199, .. }),
        "body args: {d:?}"
    );

    let (d, audit) = get("/ok").header("cookie", "s=evil-value").run(&e);
    assert_eq!(d, Decision::Continue);
    assert_eq!(audit.matches[0].rule_id, 101);
    assert_eq!(
        audit.matches[0].value.as_deref(),
        Some("[redacted]"),
        "cookie values stay hidden"
    );

    let (d, audit) = get("/yaml-blocked?q=union%20select").run(&e);
    assert!(matches!(d, Decision::Block { rule_id: 1, .. }), "{d:?}");
    assert!(
        audit.matches.iter().all(|m| m.rule_id == 1),
        "SecLang does not run after a block"
    );

    e.set_seclang(None);
    assert_eq!(
        get("/search?q=1%20UNION%20SELECT%202").run(&e).0,
        Decision::Continue
    );
}
