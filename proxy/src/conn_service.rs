//! The per-connection service wrapper: puts the connection's [`ConnInfo`] into each request
//! and tells the connection's [`Member`] of the connection table when a request starts (its head arrived) and ends (its
//! response body is done or dropped), which is what the timeouts and the caps' idea of
//! "idle" go by.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower_service::Service;

use super::limits::Member;
use rampart_l7::ConnInfo;

#[derive(Clone)]
pub(super) struct WithConn<S> {
    inner: S,
    conn: ConnInfo,
    member: Arc<Member>,
}

impl<S> WithConn<S> {
    pub fn new(inner: S, conn: ConnInfo, member: Arc<Member>) -> WithConn<S> {
        WithConn {
            inner,
            conn,
            member,
        }
    }
}

/// Holds a request "in flight" from its head to the end of its response.
struct InFlight(Arc<Member>);

impl InFlight {
    fn start(member: &Arc<Member>) -> InFlight {
        member.request_started();
        InFlight(Arc::clone(member))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

type Answer<B, E> = Pin<Box<dyn Future<Output = Result<Response<Tracked<B>>, E>> + Send>>;

impl<S, ReqB, B> Service<Request<ReqB>> for WithConn<S>
where
    S: Service<Request<ReqB>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
{
    type Response = Response<Tracked<B>>;
    type Error = S::Error;
    type Future = Answer<B, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        req.extensions_mut().insert(self.conn);
        let guard = InFlight::start(&self.member);
        let answer = self.inner.call(req);
        Box::pin(async move {
            let resp = answer.await?;
            Ok(resp.map(|body| Tracked {
                body: Box::pin(body),
                guard: Some(guard),
            }))
        })
    }
}

/// A response body that ends its request's time in flight when it is done.
pub(super) struct Tracked<B> {
    body: Pin<Box<B>>,
    guard: Option<InFlight>,
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let polled = this.body.as_mut().poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
