//! Hostile HTTP against the engine + proxy stack as `rampart run` wires it: exact bytes over raw
//! TCP (HTTP/1.x, and hand-encoded h2c frames), checking both what the client got and what the
//! origin received.

mod support;

use support::h2c;

use std::future::Future;
use std::time::Duration;

use rampart::l7::{EngineConfig, OverLimit};
use support::raw_http::{
    exchange, read_answer, Answer, RecordingOrigin, Stack, StackConfig, QUIET,
};
use tokio::io::AsyncWriteExt;

/// Upper bound for any one test.
const TEST_LIMIT: Duration = Duration::from_secs(60);

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, f)
        .await
        .expect("test finished in time")
}

const INTERNAL_BLOCKED: &str = r#"
version: 1
rules:
  - id: 100
    ref: internal-host
    expression: lower(http.host) eq "internal.example"
    action: block
"#;

/// A head-phase rule only: with it alone the engine never reads a body.
const HEAD_ONLY: &str = r#"
version: 1
rules:
  - id: 101
    ref: head-only
    expression: http.request.uri.path eq "/never"
    action: block
"#;

async fn stack(origin: &RecordingOrigin, site_rules: &'static str) -> Stack {
    Stack::start(
        origin,
        StackConfig {
            site_rules: Some(site_rules),
            ..StackConfig::default()
        },
    )
    .await
}

/// A stack whose rules never read the body: the body streams to the origin unread.
async fn stack_without_body_rules(origin: &RecordingOrigin) -> Stack {
    let s = stack(origin, HEAD_ONLY).await;
    let only = rampart_rules::load_str(HEAD_ONLY, "site.yaml", std::path::Path::new("."))
        .expect("site rules");
    s.engine.swap_rules(&[&only]).expect("swap");
    assert!(!s.engine.needs_body());
    s
}

/// The value of header `name` in the first response of `a`.
fn response_header(a: &Answer, name: &str) -> Option<String> {
    let text = a.text();
    let head = text.split("\r\n\r\n").next()?;
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
}

/// The body of the first response of `a` (everything after its head).
fn response_body(a: &Answer) -> String {
    let text = a.text();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

// ---- item 1: one authority -----------------------------------------------------------------

/// Issue 17 item 1: the engine and the origin see one authority.
#[tokio::test]
async fn absolute_form_and_host_header_agree_at_the_origin() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = stack(&origin, INTERNAL_BLOCKED).await;
        let a = exchange(
            stack.addr,
            b"GET http://public.example/ HTTP/1.1\r\nHost: internal.example\r\n\r\n",
            false,
        )
        .await;
        assert_eq!(a.status(), 200, "{}", a.text());
        let seen = origin.requests();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let r = &seen[0];
        assert_eq!(
            r.header("host"),
            vec!["public.example".to_string()],
            "origin must route on the authority the engine checked: {}",
            r.head_str()
        );
        assert_eq!(r.header("x-forwarded-host"), vec!["public.example"]);
        assert_eq!(r.request_line(), "GET / HTTP/1.1");
        stack.shutdown().await;
    })
    .await;
}

/// The authority the rule blocks, in the target, with a decoy Host: refused, nothing forwarded.
#[tokio::test]
async fn absolute_form_authority_is_what_the_rules_check() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = stack(&origin, INTERNAL_BLOCKED).await;
        let a = exchange(
            stack.addr,
            b"GET http://internal.example/ HTTP/1.1\r\nHost: public.example\r\n\r\n",
            false,
        )
        .await;
        assert_eq!(a.status(), 403, "{}", a.text());
        assert!(origin.requests().is_empty(), "{:?}", origin.requests());
        stack.shutdown().await;
    })
    .await;
}

/// RFC 9112 §3.2: two Host headers, or none on HTTP/1.1, is a 400 (nginx: 400). HTTP/1.0
/// needs no Host.
#[tokio::test]
async fn host_header_count_is_checked() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = stack(&origin, INTERNAL_BLOCKED).await;
        let cases: [(&[u8], u16); 4] = [
            (
                b"GET / HTTP/1.1\r\nHost: public.example\r\nHost: internal.example\r\n\r\n",
                400,
            ),
            (
                b"GET http://public.example/ HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
                400,
            ),
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: evil@public.example\r\n\r\n", 400),
        ];
        for (bytes, want) in cases {
            let a = exchange(stack.addr, bytes, false).await;
            let shown = String::from_utf8_lossy(bytes);
            assert_eq!(a.status(), want, "{shown:?} got {}", a.text());
            assert!(
                origin.requests().is_empty(),
                "{shown:?} reached the origin: {:?}",
                origin.requests()
            );
        }
        let a = exchange(stack.addr, b"GET / HTTP/1.0\r\n\r\n", false).await;
        assert!(a.text().starts_with("HTTP/1.0 200 "), "{}", a.text());
        assert_eq!(origin.requests().len(), 1);
        stack.shutdown().await;
    })
    .await;
}

/// RFC 9110 §4.2.4 / RFC 9113 §8.3.1: userinfo in the target's authority is refused, not
/// forwarded as a Host value (nginx: 400).
#[tokio::test]
async fn userinfo_in_the_target_is_refused() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = stack(&origin, INTERNAL_BLOCKED).await;
        let a = exchange(
            stack.addr,
            b"GET http://user@public.example/ HTTP/1.1\r\nHost: public.example\r\n\r\n",
            false,
        )
        .await;
        assert_eq!(a.status(), 400, "{}", a.text());
        assert!(origin.requests().is_empty(), "{:?}", origin.requests());
        stack.shutdown().await;
    })
    .await;
}

// ---- item 1 over HTTP/2 (h2c prior knowledge) -----------------------------------------------

/// The preface, an empty SETTINGS and one HEADERS frame on stream 1 holding `fields` as HPACK
/// literals (new names, no Huffman), pseudo-headers included.
fn h2_request(fields: &[(&str, &str)]) -> Vec<u8> {
    let fields: Vec<(&[u8], &[u8])> = fields
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    h2c::headers_frames(&h2c::literals(&fields))
}

/// Issue 17 item 1 in HTTP/2: `:authority` wins over a `host` field at the origin too.
#[tokio::test]
async fn h2_authority_and_host_agree_at_the_origin() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = stack(&origin, INTERNAL_BLOCKED).await;
        let a = exchange(
            stack.addr,
            &h2_request(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "public.example"),
                (":path", "/"),
                ("host", "internal.example"),
            ]),
            false,
        )
        .await;
        assert_eq!(h2c::status_in(&a.bytes), Some(200), "{:?}", a.bytes);
        let seen = origin.requests();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].header("host"), vec!["public.example"]);
        assert_eq!(seen[0].header("x-forwarded-host"), vec!["public.example"]);

        // The other way round the rule sees the blocked authority.
        let a = exchange(
            stack.addr,
            &h2_request(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "internal.example"),
                (":path", "/"),
                ("host", "public.example"),
            ]),
            false,
        )
        .await;
        assert_eq!(h2c::status_in(&a.bytes), Some(403), "{:?}", a.bytes);
        assert_eq!(origin.requests().len(), 1, "{:?}", origin.requests());

        // Two `host` fields without `:authority`: which one routes is ambiguous.
        let a = exchange(
            stack.addr,
            &h2_request(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("host", "public.example"),
                ("host", "internal.example"),
            ]),
            false,
        )
        .await;
        assert_eq!(h2c::status_in(&a.bytes), Some(400), "{:?}", a.bytes);
        assert_eq!(origin.requests().len(), 1, "{:?}", origin.requests());

        // Item 7 over HTTP/2: TRACE is not proxied either.
        let a = exchange(
            stack.addr,
            &h2_request(&[
                (":method", "TRACE"),
                (":scheme", "http"),
                (":authority", "public.example"),
                (":path", "/"),
            ]),
            false,
        )
        .await;
        assert_eq!(h2c::status_in(&a.bytes), Some(405), "{:?}", a.bytes);
        assert_eq!(origin.requests().len(), 1, "{:?}", origin.requests());
        assert_eq!(stack.proxy.stats().refused.method, 1);
        assert_eq!(stack.proxy.stats().refused.host, 1);
        stack.shutdown().await;
    })
    .await;
}

// ---- item 2: broken request bodies ----------------------------------------------------------

const CHUNKED_HEAD: &[u8] =
    b"POST /upload HTTP/1.1\r\nHost: public.example\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Bodies the client's framing cannot complete, each with whether the client half-closes after
/// it (the truncated ones) — every one must be refused with 400, never forwarded whole.
const BROKEN_BODIES: [(&str, &[u8], bool); 8] = [
    ("chunk then close", b"5\r\nhello\r\n", true),
    ("invalid chunk size", b"g\r\nhello\r\n0\r\n\r\n", false),
    ("size smaller than data", b"3\r\nhello\r\n0\r\n\r\n", false),
    ("bad chunk extension", b"5 bad\r\nhello\r\n0\r\n\r\n", false),
    ("newline in extension", b"5;a\nhello\r\n0\r\n\r\n", false),
    ("bare-LF chunk lines", b"5\nhello\n0\n\n", false),
    (
        "chunk size overflow",
        b"fffffffffffffffff5\r\nhello\r\n0\r\n\r\n",
        false,
    ),
    ("last chunk without end", b"5\r\nhello\r\n0\r\n", true),
];

fn chunked(body: &[u8]) -> Vec<u8> {
    [CHUNKED_HEAD, body].concat()
}

/// What a broken body may leave at the origin: nothing, or a message it cannot frame.
fn assert_never_complete(origin: &RecordingOrigin, what: &str) {
    for r in origin.requests() {
        assert!(
            r.broken,
            "{what}: the origin got a complete request: {}{:?}",
            r.head_str(),
            String::from_utf8_lossy(&r.body)
        );
    }
}

/// Issue 17 item 2 with the default rules, which read the body: 400, nothing forwarded.
#[tokio::test]
async fn broken_chunked_bodies_are_refused_when_rules_read_the_body() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = stack(&origin, INTERNAL_BLOCKED).await;
        assert!(stack.engine.needs_body());
        for (what, body, half_close) in BROKEN_BODIES {
            let a = exchange(stack.addr, &chunked(body), half_close).await;
            assert_eq!(a.status(), 400, "{what}: {}", a.text());
            assert!(
                origin.requests().is_empty(),
                "{what}: forwarded {:?}",
                origin.requests()
            );
        }
        let cut =
            b"POST /upload HTTP/1.1\r\nHost: public.example\r\nContent-Length: 10\r\n\r\nhello";
        let a = exchange(stack.addr, cut, true).await;
        assert_eq!(a.status(), 400, "content-length cut: {}", a.text());
        assert!(origin.requests().is_empty(), "{:?}", origin.requests());
        // A well-formed body still goes through whole.
        let a = exchange(stack.addr, &chunked(b"5\r\nhello\r\n0\r\n\r\n"), false).await;
        assert_eq!(a.status(), 200, "{}", a.text());
        let seen = origin.requests();
        assert_eq!(seen.len(), 1);
        assert!(!seen[0].broken);
        assert_eq!(seen[0].body, b"hello");
        stack.shutdown().await;
    })
    .await;
}

/// The same bodies when no rule reads the body (it streams to the origin unread): 400 to the
/// client, and the origin sees at most an aborted message.
#[tokio::test]
async fn broken_chunked_bodies_are_refused_when_the_body_streams() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = stack_without_body_rules(&origin).await;
        for (what, body, half_close) in BROKEN_BODIES {
            let a = exchange(stack.addr, &chunked(body), half_close).await;
            assert_eq!(a.status(), 400, "{what}: {}", a.text());
            assert_never_complete(&origin, what);
        }
        let a = exchange(stack.addr, &chunked(b"5\r\nhello\r\n0\r\n\r\n"), false).await;
        assert_eq!(a.status(), 200, "{}", a.text());
        let complete: Vec<_> = origin
            .requests()
            .into_iter()
            .filter(|r| !r.broken)
            .collect();
        assert_eq!(complete.len(), 1);
        assert_eq!(complete[0].body, b"hello");
        stack.shutdown().await;
    })
    .await;
}

/// A body that breaks after its first chunk has gone to the origin (no rule reads it, so it
/// streams): the origin's message is aborted, never completed, and the client gets 400.
#[tokio::test]
async fn body_broken_mid_stream_is_aborted_at_the_origin() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = stack_without_body_rules(&origin).await;
        let mut s = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
        s.write_all(&chunked(b"5\r\nhello\r\n")).await.unwrap();
        // Let the head and the first chunk reach the origin before the framing breaks.
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.write_all(b"g\r\nworld\r\n0\r\n\r\n").await.unwrap();
        let a = read_answer(&mut s, QUIET).await;
        assert_eq!(a.status(), 400, "{}", a.text());
        assert_eq!(
            response_body(&a),
            "400 Bad Request: malformed or incomplete request body\n"
        );
        // The recording origin notes a request once its body ended or broke.
        for _ in 0..50 {
            if !origin.requests().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = origin.requests();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].broken, "{seen:?}");
        assert_eq!(seen[0].body, b"hello");
        assert_eq!(stack.proxy.stats().refused.body, 1);
        stack.shutdown().await;
    })
    .await;
}

/// A body that breaks after the inspected prefix (`over_limit = InspectPrefix`): the rest is
/// streaming when it fails, so the origin gets an aborted message and the client a 400.
#[tokio::test]
async fn body_broken_past_the_inspection_limit_is_aborted() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = Stack::start(
            &origin,
            StackConfig {
                site_rules: Some(INTERNAL_BLOCKED),
                engine: EngineConfig {
                    body_limit: 16,
                    over_limit: OverLimit::InspectPrefix,
                    ..EngineConfig::default()
                },
                ..StackConfig::default()
            },
        )
        .await;
        let body = b"20\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n5\r\nhello\r\n";
        let a = exchange(stack.addr, &chunked(body), true).await;
        assert_eq!(a.status(), 400, "{}", a.text());
        assert_never_complete(&origin, "cut past the limit");
        assert_eq!(stack.proxy.stats().refused.body, 1);
        stack.shutdown().await;
    })
    .await;
}

// ---- item 7: methods -----------------------------------------------------------------------

/// TRACE and CONNECT are not proxied (nginx: 405); a lower-case method is not GET (nginx: 400).
#[tokio::test]
async fn trace_connect_and_lowercase_methods_are_refused() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = stack(&origin, INTERNAL_BLOCKED).await;
        let cases: [(&[u8], u16); 5] = [
            (b"TRACE / HTTP/1.1\r\nHost: public.example\r\n\r\n", 405),
            (
                b"CONNECT public.example:443 HTTP/1.1\r\nHost: public.example:443\r\n\r\n",
                405,
            ),
            (b"CONNECT / HTTP/1.1\r\nHost: public.example\r\n\r\n", 405),
            (b"get / HTTP/1.1\r\nHost: public.example\r\n\r\n", 400),
            (b"Get / HTTP/1.1\r\nHost: public.example\r\n\r\n", 400),
        ];
        for (bytes, want) in cases {
            let shown = String::from_utf8_lossy(bytes);
            let a = exchange(stack.addr, bytes, false).await;
            assert_eq!(a.status(), want, "{shown:?} got {}", a.text());
            if want == 405 {
                let allow = response_header(&a, "allow").unwrap_or_default();
                assert!(
                    allow.contains("GET") && !allow.contains("TRACE"),
                    "{shown:?}: Allow {allow:?}"
                );
            }
            assert!(
                origin.requests().is_empty(),
                "{shown:?} reached the origin: {:?}",
                origin.requests()
            );
        }
        stack.shutdown().await;
    })
    .await;
}

// ---- item 16: what the proxy's own answers say ---------------------------------------------

/// Issue 17 item 16: a 502 names no origin, pool or error; those go to the log.
#[tokio::test]
async fn bad_gateway_body_is_generic() {
    bounded(async {
        let origin = RecordingOrigin::start().await;
        let stack = stack(&origin, INTERNAL_BLOCKED).await;
        let addr = origin.addr;
        drop(origin);
        // The listener closes once the aborted accept task is dropped.
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for _ in 0..3 {
            let a = exchange(
                stack.addr,
                b"GET / HTTP/1.1\r\nHost: public.example\r\n\r\n",
                false,
            )
            .await;
            assert_eq!(a.status(), 502, "{}", a.text());
            assert_eq!(response_body(&a), "502 Bad Gateway\n");
            assert!(!a.text().contains(&addr.port().to_string()), "{}", a.text());
        }
        stack.shutdown().await;
    })
    .await;
}
