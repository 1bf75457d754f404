//! Per-connection deadlines, and the supervisor that closes a connection when one passes.
//!
//! A connection is in one of three phases, told apart by what the I/O wrapper
//! ([`super::timed_io`]) and the request tracking ([`super::conn_service`]) report:
//!
//! - waiting for a request head (nothing in flight): the first head must be complete
//!   `header_timeout` after accept; between requests the next one must start within
//!   `idle_timeout` of the last response's end and then be complete within `header_timeout`
//!   of its first byte (HTTP/2: of its first HEADERS frame; PINGs and the like start nothing);
//! - a request in flight: the body timer runs only while we wait on the client for body bytes
//!   (HTTP/1: hyper asked the socket for body bytes and got none; HTTP/2: a request stream's
//!   body is open and no request frame arrived), never while we wait on the origin;
//! - at any time: a response write that makes no progress for `send_timeout`.
//!
//! HTTP/2 caveat: the body timer cannot see flow control, so a client silent because its
//! window is spent while the origin is slow to take the body counts as stalled. With 1 MiB
//! windows, and body rules buffering the body as it comes, that takes an origin that reads
//! nothing for `body_timeout` mid-upload.
//!
//! hyper's own `header_read_timeout` is off: it does not run before the first byte (the
//! auto builder's protocol sniffing waits for bytes without a timer), does nothing for h2c,
//! and between requests it would cut keep-alive at the header timeout.

use std::future::Future;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use super::server::ServeOptions;

/// The timeouts a connection runs under; None: off.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Limits {
    pub header: Option<Duration>,
    pub body: Option<Duration>,
    pub idle: Option<Duration>,
    pub send: Option<Duration>,
}

impl Limits {
    /// A zero duration turns that timeout off.
    pub fn from_options(o: &ServeOptions) -> Limits {
        let on = |d: Duration| (!d.is_zero()).then_some(d);
        Limits {
            header: on(o.header_timeout),
            body: on(o.body_timeout),
            idle: on(o.idle_timeout),
            send: on(o.send_timeout),
        }
    }
}

/// Which deadline closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Expired {
    #[error("no complete request head within header_timeout")]
    Header,
    #[error("no request body bytes within body_timeout")]
    Body,
    #[error("no new request within idle_timeout")]
    Idle,
    #[error("the client took no response bytes within send_timeout")]
    Send,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Proto {
    Unknown,
    Http1,
    Http2,
}

/// What one read from the client showed.
#[derive(Clone, Copy, Debug)]
pub(super) enum Read {
    /// The reader waits for bytes that have not come.
    Pending,
    Eof,
    Bytes {
        /// The bytes belong to a request (HTTP/1: any byte; HTTP/2: HEADERS, CONTINUATION
        /// or DATA frames).
        request: bool,
        /// A request head started (HTTP/1: any byte; HTTP/2: a HEADERS frame).
        head: bool,
    },
}

/// One connection's timing state, shared by its I/O, its requests and its supervisor.
pub(super) struct Clock {
    limits: Limits,
    state: Mutex<State>,
}

struct State {
    proto: Proto,
    in_flight: u32,
    /// A request has started on this connection.
    served: bool,
    /// Accept, or the end of the last response.
    idle_since: Instant,
    /// First byte (HTTP/2: HEADERS frame) of the next request since `idle_since`.
    head_started: Option<Instant>,
    /// HTTP/1: since when the parser has been waiting on the client for body bytes.
    read_wait: Option<Instant>,
    /// HTTP/2: request streams whose body the client has not ended.
    open_bodies: usize,
    /// HTTP/2: last request frame bytes from the client.
    body_progress: Instant,
    /// Since when a write has been waiting for the client to take bytes.
    write_wait: Option<Instant>,
    shed: bool,
    waker: Option<Waker>,
}

/// What the supervisor should do next.
enum Next {
    Shed,
    At(Instant, Expired),
    Nothing,
}

impl Clock {
    pub fn new(limits: Limits, accepted: Instant) -> Clock {
        Clock {
            limits,
            state: Mutex::new(State {
                proto: Proto::Unknown,
                in_flight: 0,
                served: false,
                idle_since: accepted,
                head_started: None,
                read_wait: None,
                open_bodies: 0,
                body_progress: accepted,
                write_wait: None,
                shed: false,
                waker: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn read(&self, proto: Proto, open_bodies: usize, r: Read) {
        let now = Instant::now();
        let mut s = self.lock();
        s.proto = proto;
        s.open_bodies = open_bodies;
        match r {
            Read::Pending => {
                if s.in_flight > 0 && proto != Proto::Http2 && s.read_wait.is_none() {
                    s.read_wait = Some(now);
                }
            }
            Read::Eof => s.read_wait = None,
            Read::Bytes { request, head } => {
                s.read_wait = None;
                if request {
                    s.body_progress = now;
                }
                if head && s.in_flight == 0 && s.served && s.head_started.is_none() {
                    s.head_started = Some(now);
                }
            }
        }
    }

    /// A write (or flush) made progress (`true`) or waits for the client (`false`).
    pub fn write(&self, open_bodies: usize, progressed: bool) {
        let mut s = self.lock();
        s.open_bodies = open_bodies;
        if progressed {
            s.write_wait = None;
        } else if s.write_wait.is_none() {
            s.write_wait = Some(Instant::now());
        }
    }

    /// A request head arrived; true if the connection was idle.
    pub fn request_started(&self) -> bool {
        let mut s = self.lock();
        s.in_flight += 1;
        s.served = true;
        if s.in_flight > 1 {
            return false;
        }
        s.head_started = None;
        s.read_wait = None;
        // HTTP/2 calls the service from the stream's own task: the supervisor may be asleep
        // until a head deadline that no longer applies.
        wake(s);
        true
    }

    /// A request's response ended (or it was dropped); true if nothing is in flight now.
    pub fn request_ended(&self, now: Instant) -> bool {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight > 0 {
            return false;
        }
        s.idle_since = now;
        s.head_started = None;
        s.read_wait = None;
        // The supervisor may sleep with no deadline while busy; the idle one starts now.
        wake(s);
        true
    }

    /// Asks the supervisor to close the connection (a cap made room).
    pub fn shed(&self) {
        let mut s = self.lock();
        s.shed = true;
        wake(s);
    }

    #[cfg(test)]
    pub fn is_shed(&self) -> bool {
        self.lock().shed
    }

    fn next(&self, waker: &Waker) -> Next {
        let mut s = self.lock();
        if s.shed {
            return Next::Shed;
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            s.waker = Some(waker.clone());
        }
        match deadline(&self.limits, &s) {
            Some((at, why)) => Next::At(at, why),
            None => Next::Nothing,
        }
    }
}

/// Wakes the supervisor (outside the lock) to look at the deadlines again.
fn wake(mut s: MutexGuard<'_, State>) {
    let waker = s.waker.take();
    drop(s);
    if let Some(w) = waker {
        w.wake();
    }
}

/// The earliest deadline in force, if any.
fn deadline(l: &Limits, s: &State) -> Option<(Instant, Expired)> {
    let mut next: Option<(Instant, Expired)> = None;
    let mut consider = |from: Option<Instant>, limit: Option<Duration>, why: Expired| {
        // A limit too large to add is no limit.
        if let Some(at) = from.zip(limit).and_then(|(f, d)| f.checked_add(d)) {
            if next.is_none_or(|(n, _)| at < n) {
                next = Some((at, why));
            }
        }
    };
    consider(s.write_wait, l.send, Expired::Send);
    if s.in_flight == 0 {
        if !s.served {
            consider(Some(s.idle_since), l.header, Expired::Header);
        } else if let Some(started) = s.head_started {
            consider(Some(started), l.header, Expired::Header);
        } else {
            consider(Some(s.idle_since), l.idle, Expired::Idle);
        }
    } else if s.proto == Proto::Http2 {
        if s.open_bodies > 0 {
            consider(Some(s.body_progress), l.body, Expired::Body);
        }
    } else {
        consider(s.read_wait, l.body, Expired::Body);
    }
    next
}

/// How a supervised connection ended.
pub(super) enum Ended<T> {
    Done(T),
    Expired(Expired),
    Shed,
}

/// Drives `conn` until it finishes, a deadline of `clock` passes, or the connection is shed.
/// Dropping `conn` closes the socket.
pub(super) async fn supervise<F: Future>(clock: &Clock, conn: F) -> Ended<F::Output> {
    let mut conn = pin!(conn);
    let mut sleep = pin!(tokio::time::sleep(Duration::from_secs(3600)));
    let mut armed: Option<Instant> = None;
    std::future::poll_fn(|cx| {
        // Registers the waker before polling, so a shed or a cross-task response end that
        // happens meanwhile wakes us.
        if let Next::Shed = clock.next(cx.waker()) {
            return Poll::Ready(Ended::Shed);
        }
        if let Poll::Ready(out) = conn.as_mut().poll(cx) {
            return Poll::Ready(Ended::Done(out));
        }
        // Bounded: a fired sleep is re-armed at most a few times before we yield.
        for _ in 0..4 {
            let (at, why) = match clock.next(cx.waker()) {
                Next::Shed => return Poll::Ready(Ended::Shed),
                Next::Nothing => return Poll::Pending,
                Next::At(at, why) => (at, why),
            };
            if Instant::now() >= at {
                return Poll::Ready(Ended::Expired(why));
            }
            if armed != Some(at) {
                sleep.as_mut().reset(at);
                armed = Some(at);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limits() -> Limits {
        Limits {
            header: Some(100 * MS),
            body: Some(200 * MS),
            idle: Some(300 * MS),
            send: Some(400 * MS),
        }
    }

    fn at(c: &Clock) -> Option<(Instant, Expired)> {
        deadline(&c.limits, &c.lock())
    }

    #[test]
    fn phases_pick_their_deadline() {
        let t0 = Instant::now();
        let c = Clock::new(limits(), t0);
        // First head: from accept, bytes or not.
        assert_eq!(at(&c), Some((t0 + 100 * MS, Expired::Header)));
        c.read(
            Proto::Http1,
            0,
            Read::Bytes {
                request: true,
                head: true,
            },
        );
        assert_eq!(at(&c), Some((t0 + 100 * MS, Expired::Header)));
        // In flight, nothing awaited from the client (e.g. waiting on the origin): none.
        assert!(c.request_started());
        assert_eq!(at(&c), None);
        // The parser waits for body bytes: the body timer runs from then.
        c.read(Proto::Http1, 0, Read::Pending);
        let (t, why) = at(&c).unwrap();
        assert_eq!(why, Expired::Body);
        assert!(t >= t0 + 200 * MS);
        c.read(
            Proto::Http1,
            0,
            Read::Bytes {
                request: true,
                head: true,
            },
        );
        assert_eq!(at(&c), None);
        // Response over: idle from its end, then the header timer from the next first byte.
        let end = Instant::now();
        assert!(c.request_ended(end));
        assert_eq!(at(&c), Some((end + 300 * MS, Expired::Idle)));
        c.read(
            Proto::Http1,
            0,
            Read::Bytes {
                request: true,
                head: true,
            },
        );
        assert_eq!(at(&c).unwrap().1, Expired::Header);
        // A stalled write beats everything else when it is earlier.
        c.write(0, false);
        c.request_started();
        assert_eq!(at(&c).unwrap().1, Expired::Send);
        c.write(0, true);
        assert_eq!(at(&c), None);
    }

    #[test]
    fn http2_body_timer_needs_an_open_request_body() {
        let t0 = Instant::now();
        let c = Clock::new(limits(), t0);
        c.read(
            Proto::Http2,
            0,
            Read::Bytes {
                request: true,
                head: true,
            },
        );
        c.request_started();
        // The h2 reader always waits; without an open body that is not waiting on the client.
        c.read(Proto::Http2, 0, Read::Pending);
        assert_eq!(at(&c), None);
        c.read(Proto::Http2, 1, Read::Pending);
        assert_eq!(at(&c).unwrap().1, Expired::Body);
        // PINGs are bytes but not request frames: they do not hold the body timer off.
        let (before, _) = at(&c).unwrap();
        c.read(
            Proto::Http2,
            1,
            Read::Bytes {
                request: false,
                head: false,
            },
        );
        assert_eq!(at(&c).unwrap().0, before);
    }

    #[test]
    fn zero_turns_a_timeout_off_and_huge_limits_do_not_overflow() {
        let o = ServeOptions {
            header_timeout: Duration::ZERO,
            idle_timeout: Duration::MAX,
            ..ServeOptions::default()
        };
        let c = Clock::new(Limits::from_options(&o), Instant::now());
        assert_eq!(at(&c), None);
        c.request_started();
        c.request_ended(Instant::now());
        assert_eq!(at(&c), None);
    }

    #[tokio::test]
    async fn supervisor_closes_at_the_deadline_and_on_shed() {
        let c = Clock::new(limits(), Instant::now());
        let start = Instant::now();
        let ended = supervise(&c, std::future::pending::<()>()).await;
        assert!(matches!(ended, Ended::Expired(Expired::Header)));
        assert!(start.elapsed() >= 100 * MS);

        let c = std::sync::Arc::new(Clock::new(Limits::default(), Instant::now()));
        let shedder = std::sync::Arc::clone(&c);
        tokio::spawn(async move {
            tokio::time::sleep(20 * MS).await;
            shedder.shed();
        });
        let ended = tokio::time::timeout(
            Duration::from_secs(5),
            supervise(&c, std::future::pending::<()>()),
        )
        .await
        .expect("shed wakes the supervisor");
        assert!(matches!(ended, Ended::Shed));
    }
}
