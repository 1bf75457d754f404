//! A `tower::Layer` that runs the engine in front of any HTTP service: axum routers, hyper
//! services through `hyper_util::service::TowerToHyperService`, or a proxy's upstream client.
//!
//! The body is read (and buffered) only as far as rules need it, up to the engine's limit; the
//! inner service then gets every byte, the buffered ones first. A body that fails while it is
//! being read (malformed or cut-short chunked framing, fewer bytes than `Content-Length`) is
//! answered 400 here, unless the rules refuse what was read: the inner service never sees a
//! request whose body could not be read whole. Refusals become responses here
//! ([`Decision::response`]); a `route` decision is put into the request's extensions for the
//! inner service. The client's connection goes in as a [`ConnInfo`] request extension (or a
//! `SocketAddr` one); without either the peer counts as `0.0.0.0`.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{Empty, Full};
//! use rampart_l7::{tower::{Prefixed, RampartLayer}, Engine, EngineConfig};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let engine = Engine::new(&[&rampart_rules::default_waf()], EngineConfig::default()).unwrap();
//! let app = tower::ServiceBuilder::new()
//!     .layer(RampartLayer::new(engine).on_audit(|event| println!("{}", event.to_json())))
//!     .service_fn(|_req: http::Request<Prefixed<Empty<Bytes>>>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from("hello"))))
//!     });
//! let attack = http::Request::get("/?q=%3Cscript%3Ealert(1)%3C/script%3E")
//!     .body(Empty::<Bytes>::new())
//!     .unwrap();
//! let resp = app.oneshot(attack).await.unwrap();
//! assert_eq!(resp.status(), 403);
//! # }
//! ```

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use tower_layer::Layer;
use tower_service::Service;

use super::{AuditEvent, ConnInfo, Decision, Engine, Transaction};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body type of a [`RampartService`].
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

type AuditSink = Arc<dyn Fn(AuditEvent) + Send + Sync>;

/// The client address the engine resolved (through trusted proxies), put into the request's
/// extensions for the inner service, e.g. a proxy setting `X-Forwarded-For`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

/// Wraps services with the engine.
#[derive(Clone)]
pub struct RampartLayer {
    engine: Engine,
    audit: Option<AuditSink>,
}

impl RampartLayer {
    pub fn new(engine: Engine) -> Self {
        RampartLayer {
            engine,
            audit: None,
        }
    }

    /// Receives every request's audit event (write it to a log, count it).
    pub fn on_audit(mut self, f: impl Fn(AuditEvent) + Send + Sync + 'static) -> Self {
        self.audit = Some(Arc::new(f));
        self
    }
}

impl<S> Layer<S> for RampartLayer {
    type Service = RampartService<S>;

    fn layer(&self, inner: S) -> RampartService<S> {
        RampartService {
            inner,
            engine: self.engine.clone(),
            audit: self.audit.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RampartService<S> {
    inner: S,
    engine: Engine,
    audit: Option<AuditSink>,
}

impl<S, B, RB> Service<Request<B>> for RampartService<S>
where
    S: Service<Request<Prefixed<B>>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The ready clone serves this call; a fresh clone waits for the next (tower's rule).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let engine = self.engine.clone();
        let audit = self.audit.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let conn = parts
                .extensions
                .get::<ConnInfo>()
                .copied()
                .or_else(|| {
                    parts
                        .extensions
                        .get::<SocketAddr>()
                        .map(|a| ConnInfo::new(*a))
                })
                .unwrap_or_else(|| ConnInfo::new(SocketAddr::from(([0, 0, 0, 0], 0))));
            let mut tx = engine.begin(&conn, &parts);
            let (decision, body) = match inspect(&mut tx, body).await {
                Inspected::Whole(decision, body) => (decision, body),
                Inspected::BodyFailed(decision, err) => {
                    log::debug!("rampart: request body failed: {err}");
                    // What was read still went through the rules: their refusal wins.
                    let resp = decision.response().unwrap_or_else(bad_body);
                    let (rparts, rbody) = resp.into_parts();
                    tx.on_response(&rparts);
                    finish(tx, audit.as_ref());
                    return Ok(Response::from_parts(rparts, text(rbody)));
                }
            };
            if let Some(resp) = decision.response() {
                finish(tx, audit.as_ref());
                return Ok(resp.map(text));
            }
            parts.extensions.insert(decision);
            parts.extensions.insert(ClientIp(tx.client_ip()));
            let resp = inner.call(Request::from_parts(parts, body)).await?;
            let (rparts, rbody) = resp.into_parts();
            tx.on_response(&rparts);
            finish(tx, audit.as_ref());
            Ok(Response::from_parts(
                rparts,
                rbody.map_err(Into::into).boxed_unsync(),
            ))
        })
    }
}

fn text(body: String) -> ResponseBody {
    Full::new(Bytes::from(body))
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// The answer to a body that could not be read whole.
fn bad_body() -> Response<String> {
    let mut resp = Response::new("400 Bad Request: malformed or incomplete request body\n".into());
    *resp.status_mut() = http::StatusCode::BAD_REQUEST;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    // The framing is lost: nothing after this on the connection can be trusted.
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    resp
}

/// Builds the audit event only when someone receives it.
fn finish(tx: Transaction, audit: Option<&AuditSink>) {
    if let Some(a) = audit {
        a(tx.finish());
    }
}

/// What reading the body for the rules came to.
enum Inspected<B> {
    /// The decision, and the whole body for the inner service (what was read, then the rest).
    Whole(Decision, Prefixed<B>),
    /// The client's body failed while the rules read it; the decision is over what was read.
    BodyFailed(Decision, BoxError),
}

/// Runs the head and body phases, reading the body only as far as needed.
async fn inspect<B>(tx: &mut Transaction, body: B) -> Inspected<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = Box::pin(body);
    let mut head = VecDeque::new();
    let mut decision = tx.on_request_headers();
    if decision.is_terminal() {
        return Inspected::Whole(decision, Prefixed::new(head, Some(body)));
    }
    if !tx.needs_body() || body.is_end_stream() {
        decision = tx.on_request_body(b"", true);
        return Inspected::Whole(decision, Prefixed::new(head, Some(body)));
    }
    let mut buffered = 0usize;
    let limit = tx.body_limit();
    loop {
        match body.frame().await {
            None => {
                decision = tx.on_request_body(b"", true);
                return Inspected::Whole(decision, Prefixed::new(head, None));
            }
            Some(Err(e)) => {
                // Never forwarded: after the frames read, the inner service would see a body
                // that ends early (and a length that fits it), i.e. a complete request.
                decision = tx.on_request_body(b"", true);
                return Inspected::BodyFailed(decision, e.into());
            }
            Some(Ok(frame)) => {
                let Some(data) = frame.data_ref().cloned() else {
                    head.push_back(frame);
                    continue;
                };
                buffered = buffered.saturating_add(data.len());
                let end = body.is_end_stream();
                decision = tx.on_request_body(&data, end);
                head.push_back(Frame::data(data));
                if decision.is_terminal() || end || buffered > limit {
                    let rest = (!end).then_some(body);
                    return Inspected::Whole(decision, Prefixed::new(head, rest));
                }
            }
        }
    }
}

/// A request body: frames already read, then the rest of the client's body. Without a rest,
/// the frames read are the whole body (it ended cleanly), so the size hint is exact.
pub struct Prefixed<B> {
    head: VecDeque<Frame<Bytes>>,
    rest: Option<Pin<Box<B>>>,
}

impl<B> Prefixed<B> {
    fn new(head: VecDeque<Frame<Bytes>>, rest: Option<Pin<Box<B>>>) -> Self {
        Prefixed { head, rest }
    }
}

impl<B> Body for Prefixed<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(f) = this.head.pop_front() {
            return Poll::Ready(Some(Ok(f)));
        }
        match &mut this.rest {
            Some(b) => b
                .as_mut()
                .poll_frame(cx)
                .map(|o| o.map(|r| r.map_err(Into::into))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_empty() && self.rest.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self
            .head
            .iter()
            .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
            .sum();
        let rest = self
            .rest
            .as_ref()
            .map_or(SizeHint::with_exact(0), |b| b.size_hint());
        let mut h = SizeHint::new();
        h.set_lower(rest.lower().saturating_add(buffered));
        if let Some(u) = rest.upper() {
            h.set_upper(u.saturating_add(buffered));
        }
        h
    }
}
