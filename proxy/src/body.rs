//! Body wrappers. Both stream; neither buffers a whole body.
//!
//! [`Outgoing`] carries the client's body to an origin. The body waits in a shared [`Slot`]
//! until the origin connection polls it, so after a connect failure (nothing was read) it is
//! still there for another origin: that is what makes a retry safe, whatever the body's size.
//! It also stamps when a frame last went out, so the response-header timeout runs from the
//! last request byte, not from the start of a long upload, and notes when the client's body
//! failed (bad framing, cut short), so the answer is the client's 400, not a 502.
//!
//! [`Returning`] carries the origin's body back, keeps the request counted in flight until it
//! ends, and counts a body cut short.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;

use super::pool::{InFlight, Origin};
use crate::BoxError;

pub(crate) type ClientBody = UnsyncBoxBody<Bytes, BoxError>;

/// The client's body, shared between attempts.
pub(crate) struct Slot {
    body: Mutex<Option<ClientBody>>,
    end: bool,
    hint: SizeHint,
    epoch: Instant,
    /// Milliseconds after `epoch` of the last frame sent.
    last_sent_ms: AtomicU64,
    /// The client's body returned an error.
    client_failed: AtomicBool,
}

impl Slot {
    pub fn new(body: ClientBody) -> Arc<Slot> {
        Arc::new(Slot {
            end: body.is_end_stream(),
            hint: body.size_hint(),
            body: Mutex::new(Some(body)),
            epoch: Instant::now(),
            last_sent_ms: AtomicU64::new(0),
            client_failed: AtomicBool::new(false),
        })
    }

    /// True while no attempt has started reading the body.
    pub fn untouched(&self) -> bool {
        self.body
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// When a frame last went out (the slot's creation before any did).
    pub fn last_sent(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_sent_ms.load(Relaxed))
    }

    /// True once the client's body has failed: the attempt broke on the client's side.
    pub fn client_failed(&self) -> bool {
        self.client_failed.load(Relaxed)
    }

    /// Marks the request as sent up to now (used when an attempt starts).
    pub fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_sent_ms.fetch_max(ms, Relaxed);
    }
}

/// The body of one attempt.
pub(crate) struct Outgoing {
    slot: Arc<Slot>,
    body: Option<ClientBody>,
    done: bool,
}

impl Outgoing {
    pub fn new(slot: Arc<Slot>) -> Outgoing {
        Outgoing {
            slot,
            body: None,
            done: false,
        }
    }
}

impl Body for Outgoing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.slot.client_failed() {
            return Poll::Ready(Some(Err("the client's request body failed".into())));
        }
        if this.body.is_none() {
            let taken = this
                .slot
                .body
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            match taken {
                Some(b) => this.body = Some(b),
                // Another attempt read it: never send a partial body.
                None => return Poll::Ready(Some(Err("request body already consumed".into()))),
            }
        }
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.done = true,
            Poll::Ready(Some(Ok(_))) => this.slot.touch(),
            // Stays failed: a poll after the error must not read as a clean end.
            Poll::Ready(Some(Err(_))) => this.slot.client_failed.store(true, Relaxed),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.done
            || match &self.body {
                Some(b) => b.is_end_stream(),
                None => self.slot.end,
            }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Some(b) => b.size_hint(),
            None => self.slot.hint,
        }
    }
}

/// An origin's response body on its way to the client.
pub(crate) struct Returning<B> {
    inner: B,
    origin: Arc<Origin>,
    /// Dropped at the end of the body, or with it.
    in_flight: Option<InFlight>,
}

impl<B> Returning<B> {
    pub fn new(inner: B, origin: Arc<Origin>, in_flight: InFlight) -> Self {
        Returning {
            inner,
            origin,
            in_flight: Some(in_flight),
        }
    }
}

impl<B> Body for Returning<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.in_flight = None,
            Poll::Ready(Some(Err(_))) => {
                this.origin.counters.other_errors.fetch_add(1, Relaxed);
                this.in_flight = None;
            }
            _ => {}
        }
        polled.map(|o| o.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
