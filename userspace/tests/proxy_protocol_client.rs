//! Issue 17 item 12: a load balancer listed in a listener's `proxy_protocol_from` but not in
//! `l7.trusted_proxies`. Its PROXY header names the client; before the fix the header was
//! parsed and ignored, so every client was the balancer (one rate-limit bucket, one jail).
//! Exact bytes over raw TCP from 127.0.0.1 (the balancer), through the stack as `rampart run`
//! wires it; checked: what the client got and what the origin received.

mod support;

use support::raw_http::{exchange, RecordingOrigin, Stack, StackConfig};

use rampart::l7::EngineConfig;
use rampart::proxy::ServeOptions;

const RULES: &str = r#"
version: 1
rules:
  - id: 7001
    ref: banned-client
    expression: ip.src in {198.51.100.7}
    action: block
  - id: 7002
    ref: api-per-client
    expression: http.request.uri.path eq "/api"
    action: ratelimit
    ratelimit: { characteristics: [ip.src], period: 60, requests_per_period: 2, mitigation_timeout: 60 }
"#;

/// The balancer (127.0.0.1) speaks PROXY; the engine trusts no forwarding header at all.
async fn stack(origin: &RecordingOrigin) -> Stack {
    Stack::start(
        origin,
        StackConfig {
            site_rules: Some(RULES),
            engine: EngineConfig::default(),
            serve: ServeOptions {
                proxy_protocol: true,
                trusted_proxy_protocol_peers: vec!["127.0.0.1/32".parse().unwrap()],
                ..ServeOptions::default()
            },
        },
    )
    .await
}

fn request(client: &str, path: &str) -> Vec<u8> {
    format!(
        "PROXY TCP4 {client} 192.0.2.1 40000 80\r\nGET {path} HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 203.0.113.99\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn the_proxy_source_is_the_client_for_rules() {
    let origin = RecordingOrigin::start().await;
    let s = stack(&origin).await;
    let banned = exchange(s.addr, &request("198.51.100.7", "/a"), false).await;
    assert_eq!(banned.status(), 403, "{}", banned.text());
    assert!(
        origin.requests().is_empty(),
        "a blocked client reaches nothing"
    );

    let other = exchange(s.addr, &request("198.51.100.8", "/b"), false).await;
    assert_eq!(other.status(), 200, "{}", other.text());
    let got = origin.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].request_line(), "GET /b HTTP/1.1");
    // The client's own X-Forwarded-For is not believed (no trusted proxies): the origin is
    // told the PROXY source, not 127.0.0.1 and not the spoofed 203.0.113.99.
    let xff = got[0].header("x-forwarded-for").join(", ");
    assert!(xff.ends_with("198.51.100.8"), "x-forwarded-for: {xff}");
    assert!(!xff.contains("127.0.0.1"), "x-forwarded-for: {xff}");
    s.shutdown().await;
}

#[tokio::test]
async fn each_proxy_source_has_its_own_rate_limit_bucket() {
    let origin = RecordingOrigin::start().await;
    let s = stack(&origin).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            exchange(s.addr, &request("198.51.100.20", "/api"), false)
                .await
                .status(),
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Another client behind the same balancer is not in the first one's penalty box.
    let next = exchange(s.addr, &request("198.51.100.21", "/api"), false).await;
    assert_eq!(next.status(), 200, "{}", next.text());
    assert_eq!(
        origin.requests().len(),
        3,
        "two from the first client, one from the second"
    );
    s.shutdown().await;
}
