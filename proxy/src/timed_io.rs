//! The client socket as hyper sees it, reporting to the connection's [`Clock`] what each read
//! and write showed: bytes or a wait, and for HTTP/2 which request bodies are still open.
//!
//! HTTP/2 is recognised by its preface, as hyper's auto builder does. Its frames are followed
//! by their 9-byte headers only (payloads are skipped, nothing is decoded): a request stream's
//! body is open from a HEADERS frame without END_STREAM until the client's END_STREAM or
//! RST_STREAM, or until our side ends or resets the stream.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::timeouts::{Clock, Proto, Read};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Tracking more open streams than hyper allows at once (200) buys nothing.
const MAX_TRACKED_STREAMS: usize = 1024;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;

pub(super) struct Timed<T> {
    inner: T,
    clock: Arc<Clock>,
    proto: Proto,
    /// Preface bytes matched so far.
    sniffed: usize,
    from_client: FrameScanner,
    to_client: FrameScanner,
    /// Request streams whose body is still open.
    open: Vec<u32>,
}

impl<T> Timed<T> {
    pub fn new(inner: T, clock: Arc<Clock>) -> Timed<T> {
        Timed {
            inner,
            clock,
            proto: Proto::Unknown,
            sniffed: 0,
            from_client: FrameScanner::default(),
            to_client: FrameScanner::default(),
            open: Vec::new(),
        }
    }

    fn saw_read(&mut self, mut bytes: &[u8]) -> Read {
        if self.proto == Proto::Unknown {
            let want = &PREFACE[self.sniffed..];
            let n = bytes.len().min(want.len());
            if bytes[..n] == want[..n] {
                self.sniffed += n;
                bytes = &bytes[n..];
                if self.sniffed == PREFACE.len() {
                    self.proto = Proto::Http2;
                }
            } else {
                self.proto = Proto::Http1;
            }
        }
        if self.proto != Proto::Http2 {
            return Read::Bytes {
                request: true,
                head: true,
            };
        }
        let (open, mut head) = (&mut self.open, false);
        let request = self.from_client.feed(bytes, |f| match f.kind {
            HEADERS if f.flags & END_STREAM == 0 => {
                head = true;
                open_stream(open, f.stream);
            }
            HEADERS => {
                head = true;
                close_stream(open, f.stream);
            }
            DATA if f.flags & END_STREAM != 0 => close_stream(open, f.stream),
            RST_STREAM => close_stream(open, f.stream),
            _ => {}
        });
        Read::Bytes { request, head }
    }

    fn saw_write(&mut self, bytes: &[u8]) {
        if self.proto != Proto::Http2 {
            return;
        }
        let open = &mut self.open;
        self.to_client.feed(bytes, |f| {
            // Once our side has answered in full or reset the stream, its request body is
            // no longer awaited.
            let ends = matches!(f.kind, HEADERS | DATA) && f.flags & END_STREAM != 0;
            if ends || f.kind == RST_STREAM {
                close_stream(open, f.stream);
            }
        });
    }
}

fn open_stream(open: &mut Vec<u32>, id: u32) {
    if id != 0 && !open.contains(&id) && open.len() < MAX_TRACKED_STREAMS {
        open.push(id);
    }
}

fn close_stream(open: &mut Vec<u32>, id: u32) {
    if let Some(i) = open.iter().position(|&s| s == id) {
        open.swap_remove(i);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Timed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let seen = match &polled {
            Poll::Pending => Read::Pending,
            Poll::Ready(Ok(())) if buf.filled().len() == before => Read::Eof,
            Poll::Ready(Ok(())) => this.saw_read(&buf.filled()[before..]),
            Poll::Ready(Err(_)) => return polled,
        };
        this.clock.read(this.proto, this.open.len(), seen);
        polled
    }
}

impl<T: AsyncWrite + Unpin> Timed<T> {
    fn wrote<'b>(
        &mut self,
        polled: &Poll<io::Result<usize>>,
        bufs: impl IntoIterator<Item = &'b [u8]>,
    ) {
        match polled {
            Poll::Ready(Ok(n)) if *n > 0 => {
                let mut left = *n;
                for b in bufs {
                    let take = left.min(b.len());
                    self.saw_write(&b[..take]);
                    left -= take;
                    if left == 0 {
                        break;
                    }
                }
                self.clock.write(self.open.len(), true);
            }
            Poll::Pending => self.clock.write(self.open.len(), false),
            Poll::Ready(_) => {}
        }
    }

    fn flushed(&mut self, polled: &Poll<io::Result<()>>) {
        match polled {
            Poll::Ready(Ok(())) => self.clock.write(self.open.len(), true),
            Poll::Pending => self.clock.write(self.open.len(), false),
            Poll::Ready(Err(_)) => {}
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Timed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(&polled, [buf]);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(&polled, bufs.iter().map(|b| &**b));
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.flushed(&polled);
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.flushed(&polled);
        polled
    }
}

/// An HTTP/2 frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FrameHead {
    kind: u8,
    flags: u8,
    stream: u32,
}

/// Follows HTTP/2 frame boundaries across reads.
#[derive(Default)]
struct FrameScanner {
    head: [u8; 9],
    filled: usize,
    /// Payload bytes of the current frame still to skip.
    skip: usize,
    kind: u8,
}

impl FrameScanner {
    /// Feeds the next bytes of the stream, calling `on_head` for each complete frame header;
    /// returns whether any byte belonged to a request frame (HEADERS, CONTINUATION, DATA).
    fn feed(&mut self, mut bytes: &[u8], mut on_head: impl FnMut(FrameHead)) -> bool {
        let mut request = false;
        // Each turn consumes at least one byte.
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                request |= is_request_frame(self.kind);
                continue;
            }
            let n = (9 - self.filled).min(bytes.len());
            self.head[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled < 9 {
                continue;
            }
            self.filled = 0;
            let h = self.head;
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
            let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            self.kind = h[3];
            self.skip = len;
            request |= is_request_frame(h[3]);
            on_head(FrameHead {
                kind: h[3],
                flags: h[4],
                stream,
            });
        }
        request
    }
}

fn is_request_frame(kind: u8) -> bool {
    matches!(kind, DATA | HEADERS | CONTINUATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn scanner_finds_frame_heads_across_any_split() {
        let mut wire = frame(4, 0, 0, &[0; 6]);
        wire.extend(frame(HEADERS, 0x4, 1, b"hpack"));
        wire.extend(frame(DATA, END_STREAM, 1, &[7; 300]));
        wire.extend(frame(6, 0, 0, &[0; 8]));
        let want = vec![
            FrameHead {
                kind: 4,
                flags: 0,
                stream: 0,
            },
            FrameHead {
                kind: HEADERS,
                flags: 0x4,
                stream: 1,
            },
            FrameHead {
                kind: DATA,
                flags: END_STREAM,
                stream: 1,
            },
            FrameHead {
                kind: 6,
                flags: 0,
                stream: 0,
            },
        ];
        for step in [1, 2, 7, 9, 10, 64, wire.len()] {
            let mut s = FrameScanner::default();
            let mut got = Vec::new();
            for chunk in wire.chunks(step) {
                s.feed(chunk, |f| got.push(f));
            }
            assert_eq!(got, want, "chunks of {step}");
        }
    }

    #[test]
    fn request_frames_are_told_from_control_frames() {
        let mut s = FrameScanner::default();
        assert!(!s.feed(&frame(6, 0, 0, &[0; 8]), |_| {}));
        assert!(s.feed(&frame(DATA, 0, 1, b"abc"), |_| {}));
        // The payload of a DATA frame counts on its own (a trickled frame is progress).
        let f = frame(DATA, 0, 1, b"abcdef");
        assert!(s.feed(&f[..9], |_| {}));
        assert!(s.feed(&f[9..], |_| {}));
    }

    #[tokio::test]
    async fn open_request_bodies_follow_both_directions() {
        let clock = Arc::new(Clock::new(Default::default(), tokio::time::Instant::now()));
        let mut t = Timed::new(tokio::io::empty(), clock);
        let mut rx = PREFACE.to_vec();
        rx.extend(frame(HEADERS, 0x4, 1, b"h"));
        rx.extend(frame(HEADERS, 0x4, 3, b"h"));
        rx.extend(frame(HEADERS, 0x4 | END_STREAM, 5, b"h"));
        assert!(matches!(t.saw_read(&rx[..10]), Read::Bytes { .. }));
        t.saw_read(&rx[10..]);
        assert_eq!(t.proto, Proto::Http2);
        assert_eq!(t.open, vec![1, 3]);
        t.saw_read(&frame(DATA, END_STREAM, 1, b"x"));
        assert_eq!(t.open, vec![3]);
        // We reset stream 3 (or answered it in full): not awaited any more.
        t.saw_write(&frame(RST_STREAM, 0, 3, &[0, 0, 0, 8]));
        assert!(t.open.is_empty());
    }

    #[tokio::test]
    async fn anything_but_the_preface_is_http1() {
        let clock = Arc::new(Clock::new(Default::default(), tokio::time::Instant::now()));
        let mut t = Timed::new(tokio::io::empty(), clock);
        t.saw_read(b"PRI * HTTP/1.1\r\n");
        assert_eq!(t.proto, Proto::Http1);
        t.saw_read(&frame(HEADERS, 0, 1, b""));
        assert!(t.open.is_empty());
    }
}
