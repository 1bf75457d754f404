//! Issue 17 item 5: path spellings an origin may read as `/admin` against a prefix rule, as raw
//! bytes through the engine + proxy stack. Each must be blocked (403) with nothing reaching the
//! origin; neighbours the rule does not name must still pass.

mod support;

use support::raw_http::{exchange, RecordingOrigin, Stack, StackConfig};

/// The documented safe form of a prefix rule: the normalised path, lower-cased.
const ADMIN_BLOCKED: &str = r#"
version: 1
rules:
  - id: 100
    ref: admin-prefix
    expression: starts_with(lower(http.request.uri.path), "/admin")
    action: block
  - id: 101
    ref: secret-exact-segment
    expression: lower(http.request.uri.path) eq "/secret" or starts_with(lower(http.request.uri.path), "/secret/")
    action: block
  - id: 102
    ref: issue-form-case-sensitive
    expression: starts_with(http.request.uri.path, "/private")
    action: block
"#;

async fn stack(origin: &RecordingOrigin) -> Stack {
    Stack::start(
        origin,
        StackConfig {
            site_rules: Some(ADMIN_BLOCKED),
            ..StackConfig::default()
        },
    )
    .await
}

fn get(target: &[u8]) -> Vec<u8> {
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n");
    req
}

/// Every spelling from the issue (and the `/secret` ones `normalize_path` let through), each on
/// its own connection: the client gets 403 and the origin nothing.
#[tokio::test]
async fn path_spellings_of_a_blocked_prefix_are_blocked() {
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin).await;
    let targets: &[&[u8]] = &[
        b"/admin",
        b"//admin",
        b"/./admin",
        b"/%2e/admin",
        b"/%2E%2e/admin",
        b"/;x/admin",
        b"/%5cadmin",
        b"/\\admin",
        b"/ADMIN",
        b"/x/../admin",
        b"/x/..;/admin",
        b"/%2e%2e/%2e%2e/admin",
        b"/admin;jsessionid=1",
        b"/;x/secret",
        b"/%5csecret",
        b"/SeCrEt/",
        b"/a/%2e%2e%2fsecret",
        b"http://app.example//admin",
    ];
    let mut failures = Vec::new();
    for target in targets {
        let before = origin.requests().len();
        let a = exchange(stack.addr, &get(target), false).await;
        let reached = origin.requests().len() - before;
        if a.status() != 403 || reached != 0 {
            failures.push(format!(
                "{}: client got {} ({:?}), origin got {reached} request(s)",
                String::from_utf8_lossy(target),
                a.status(),
                a.text().lines().next().unwrap_or("")
            ));
        }
    }
    assert!(failures.is_empty(), "not blocked:\n{}", failures.join("\n"));
    stack.shutdown().await;
}

/// The issue's rule as written (no `lower`): every spelling but a change of case is caught,
/// since the field keeps case (origins may be case-sensitive; the reference says to add
/// `lower` when case does not matter).
#[tokio::test]
async fn case_sensitive_prefix_catches_all_but_case() {
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin).await;
    let cases: &[(&[u8], u16)] = &[
        (b"//private", 403),
        (b"/./private", 403),
        (b"/%2e/private", 403),
        (b"/;x/private", 403),
        (b"/%5cprivate", 403),
        (b"/\\private", 403),
        (b"/PRIVATE", 200),
    ];
    for (target, want) in cases {
        let before = origin.requests().len();
        let a = exchange(stack.addr, &get(target), false).await;
        let shown = String::from_utf8_lossy(target);
        assert_eq!(a.status(), *want, "{shown}: {}", a.text());
        let reached = origin.requests().len() - before;
        assert_eq!(
            reached,
            usize::from(*want == 200),
            "{shown}: origin got {reached}"
        );
    }
    stack.shutdown().await;
}

/// Paths the rules do not name pass, and the origin gets the path exactly as sent (the engine
/// normalises only what rules read). `/administrator` starts with `/admin`, so a prefix rule
/// blocks it: that is the rule's choice, and a rule that means one segment says so (`/secret`).
#[tokio::test]
async fn neighbours_pass_and_reach_the_origin_as_sent() {
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin).await;
    let cases: &[(&[u8], u16)] = &[
        (b"/public/admin", 200),
        (b"/adm/in", 200),
        (b"/secretary", 200),
        (b"/x/secret", 200),
        (b"/%73ecret-not", 200),
        (b"/administrator", 403),
    ];
    for (target, want) in cases {
        let before = origin.requests().len();
        let a = exchange(stack.addr, &get(target), false).await;
        let shown = String::from_utf8_lossy(target);
        assert_eq!(a.status(), *want, "{shown}: {}", a.text());
        let seen = origin.requests();
        if *want == 200 {
            assert_eq!(seen.len(), before + 1, "{shown} must reach the origin");
            let line = seen.last().unwrap().request_line();
            assert_eq!(line, format!("GET {shown} HTTP/1.1"), "forwarded as sent");
        } else {
            assert_eq!(seen.len(), before, "{shown} must not reach the origin");
        }
    }
    stack.shutdown().await;
}

/// The default traversal rule (900300) still sees dot segments, which the normalised path no
/// longer holds: it reads the raw path decoded once.
#[tokio::test]
async fn default_rules_still_block_traversal() {
    let origin = RecordingOrigin::start().await;
    let stack = Stack::start(&origin, StackConfig::default()).await;
    let targets: &[&[u8]] = &[
        b"/static/../../etc/passwd",
        b"/static/%2e%2e/%2e%2e/etc/passwd",
        b"/static/..%2f..%2fetc/passwd",
        b"/static/..%5c..%5cwindows",
        b"/static/..",
        b"/static/..;/admin",
    ];
    for target in targets {
        let a = exchange(stack.addr, &get(target), false).await;
        let shown = String::from_utf8_lossy(target);
        assert_eq!(a.status(), 403, "{shown}: {}", a.text());
    }
    assert!(
        origin.requests().is_empty(),
        "origin got {:?}",
        origin
            .requests()
            .iter()
            .map(|r| r.request_line())
            .collect::<Vec<_>>()
    );
    // A dot inside a name is not a segment.
    let a = exchange(stack.addr, &get(b"/static/app..min.js"), false).await;
    assert_eq!(a.status(), 200, "{}", a.text());
    stack.shutdown().await;
}

/// An exemption compares the raw path, as the reference says: the normalised path would also
/// skip `/admin%2f..%2fhealthz`, which an origin that keeps `%2F` routes under `/admin`.
#[tokio::test]
async fn a_skip_on_the_raw_path_exempts_only_that_spelling() {
    const SKIP_HEALTH: &str = r#"
version: 1
rules:
  - id: 100
    ref: health-checks-skip-the-waf
    expression: http.request.uri.path.raw eq "/healthz"
    action: skip
"#;
    let origin = RecordingOrigin::start().await;
    let stack = Stack::start(
        &origin,
        StackConfig {
            site_rules: Some(SKIP_HEALTH),
            ..StackConfig::default()
        },
    )
    .await;
    // SQL injection in the query: the default rules block it unless the skip applies.
    let sqli = "?q=1%27%20OR%20%271%27%3D%271";
    let cases: &[(&str, u16)] = &[
        ("/healthz", 200),
        ("/admin%2f..%2fhealthz", 403),
        ("/admin/..;/healthz", 403),
        ("//healthz", 403),
        ("/other", 403),
    ];
    for (path, want) in cases {
        let before = origin.requests().len();
        let target = format!("{path}{sqli}");
        let a = exchange(stack.addr, &get(target.as_bytes()), false).await;
        assert_eq!(a.status(), *want, "{target}: {}", a.text());
        let reached = origin.requests().len() - before;
        assert_eq!(
            reached,
            usize::from(*want == 200),
            "{target}: origin got {reached}"
        );
    }
    stack.shutdown().await;
}
