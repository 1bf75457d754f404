//! Raw HTTP/2 (h2c prior knowledge), hand-encoded for hostile-input tests: frames, HPACK
//! literals without indexing and no Huffman on the way out; on the way back, frames and the
//! `:status` of stream 1. Nothing here normalises what a test sends.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the harness"
)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::raw_http::QUIET;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

const MAX_FRAME: usize = 16_384;

pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
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
    headers_frames(&block)
}

/// Literal fields without indexing, new names (RFC 7541 §6.2.2), as a header block.
pub fn literals(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut block = Vec::new();
    for (n, v) in fields {
        block.push(0x00);
        string(&mut block, n);
        string(&mut block, v);
    }
    block
}

/// The client preface, an empty SETTINGS, then `block` on stream 1 in HEADERS (END_STREAM) and
/// CONTINUATION frames of at most 16 KiB.
pub fn headers_frames(block: &[u8]) -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
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

/// (type, flags, stream, payload, bytes used).
pub type Frame = (u8, u8, u32, Vec<u8>, usize);

pub fn parse(buf: &[u8]) -> Option<Frame> {
    let head = buf.get(..9)?;
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let payload = buf.get(9..9 + len)?.to_vec();
    let stream = u32_at(head, 5) & 0x7fff_ffff;
    Some((head[3], head[4], stream, payload, 9 + len))
}

/// `:status` is the first field of a response block (RFC 9113 §8.3): an indexed static
/// entry, or a literal with the static name `:status` (index 8) and a plain or Huffman value.
pub fn status(block: &[u8], flags: u8) -> Option<u16> {
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

/// The `:status` of the first HEADERS frame on stream 1 in `bytes`, if a whole one is there.
pub fn status_in(bytes: &[u8]) -> Option<u16> {
    let mut rest = bytes;
    for _ in 0..1_000 {
        let (ty, flags, stream, payload, used) = parse(rest)?;
        if ty == HEADERS && stream == 1 {
            return status(&payload, flags);
        }
        rest = &rest[used..];
    }
    None
}

/// Every whole frame in `bytes`, as (type, flags, stream, payload).
pub fn frames(bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((ty, flags, stream, payload, used)) = parse(rest) {
        out.push((ty, flags, stream, payload));
        rest = &rest[used..];
    }
    out
}
