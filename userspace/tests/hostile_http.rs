//! Hostile HTTP against the engine + proxy stack as `rampart run` wires it: exact bytes over raw
//! TCP, checking both what the client got and what the origin received.

mod support;

use support::raw_http::{exchange, RecordingOrigin, Stack, StackConfig};

const INTERNAL_BLOCKED: &str = r#"
version: 1
rules:
  - id: 100
    ref: internal-host
    expression: lower(http.host) eq "internal.example"
    action: block
"#;

/// Issue 17 item 1: the engine and the origin see one authority.
#[tokio::test]
async fn absolute_form_and_host_header_agree_at_the_origin() {
    let origin = RecordingOrigin::start().await;
    let stack = Stack::start(
        &origin,
        StackConfig {
            site_rules: Some(INTERNAL_BLOCKED),
            ..StackConfig::default()
        },
    )
    .await;
    let a = exchange(
        stack.addr,
        b"GET http://public.example/ HTTP/1.1\r\nHost: internal.example\r\n\r\n",
        false,
    )
    .await;
    let seen = origin.requests();
    for r in &seen {
        assert_eq!(
            r.header("host"),
            vec!["public.example".to_string()],
            "origin must route on the authority the engine checked; client got {}",
            a.text()
        );
    }
    stack.shutdown().await;
}
