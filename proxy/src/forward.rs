//! One request through the proxy: refuse shapes no origin should see ([`gate`]), pick a pool
//! and an origin, rewrite headers, send, retry on connect failures while that is safe, and turn
//! failures into plain-text answers. The client gets a generic 502/504 body; which origin, pool
//! and error go to the log (at warn: the operator's to fix, and nothing a client may read about
//! the network behind the proxy).
//!
//! [`gate`]: super::gate

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HOST, VIA};
use http::request::Parts;
use http::{Extensions, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::body::{Outgoing, Returning, Slot};
use super::gate::{self, Refusal};
use super::headers::{
    append_forwarded_for, strip_hop_by_hop, via_value, X_FORWARDED_HOST, X_FORWARDED_PROTO,
};
use super::pool::Pick;
use super::{Inner, ProxyBody};
use crate::BoxError;
use rampart_l7::tower::ClientIp;
use rampart_l7::{ConnInfo, Decision};

/// How an attempt failed.
enum Failure {
    Connect(String),
    Timeout,
    Other(String),
}

// One function on purpose (~130 lines): the retry loop shares the request parts, the body slot
// and the tried set across attempts, and each failure arm decides retry-or-answer in place.
pub(crate) async fn forward<B>(inner: Arc<Inner>, req: Request<B>) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = req.into_parts();
    if let Err(r) = gate::check(&parts) {
        return refuse(&inner, r);
    }
    let pool = match parts.extensions.get::<Decision>() {
        Some(Decision::Route { target, .. }) => match inner.pool(target) {
            Some(p) => p,
            None => {
                inner.unknown_target.fetch_add(1, Relaxed);
                log::warn!("proxy: 502: route target `{target}` names no origin pool");
                return bad_gateway();
            }
        },
        _ => &inner.pools[inner.default_pool],
    };
    let client = client_ip(&parts.extensions);
    prepare(&mut parts, client, &inner.via);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    // Each attempt goes to another origin, so the pool's size bounds them.
    let attempts = if is_idempotent(&parts.method) {
        (1 + inner.retries as usize).min(pool.origins.len())
    } else {
        1
    };
    let slot = Slot::new(body.map_err(Into::into).boxed_unsync());
    let mut tried = Vec::with_capacity(attempts);
    let mut connect_failures = String::new();
    for attempt in 0..attempts {
        let idx = match pool.pick(&tried) {
            Pick::Origin(i) => i,
            Pick::NoneHealthy if tried.is_empty() => {
                pool.no_healthy.fetch_add(1, Relaxed);
                log::warn!("proxy: 502: no healthy origin in pool `{}`", pool.name);
                return bad_gateway();
            }
            Pick::NoneHealthy | Pick::Exhausted => break,
        };
        if attempt > 0 {
            pool.retries.fetch_add(1, Relaxed);
        }
        tried.push(idx);
        let origin = &pool.origins[idx];
        // The last attempt takes the headers; earlier ones copy them for the next.
        let headers = if attempt + 1 == attempts {
            std::mem::take(&mut parts.headers)
        } else {
            parts.headers.clone()
        };
        let Ok(uri) = origin.addr.uri(&path) else {
            log::warn!(
                "proxy: 502: cannot address {path:?} on origin {} in pool `{}`",
                origin.name,
                pool.name
            );
            return bad_gateway();
        };
        let mut req = Request::new(Outgoing::new(Arc::clone(&slot)));
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        let in_flight = origin.begin();
        let start = Instant::now();
        slot.touch();
        let sent = send(&inner, req, &slot).await;
        if sent.is_err() && slot.client_failed() {
            // The client's body broke (bad chunk framing, cut short): its fault, not the
            // origin's, which got at most an aborted message.
            return refuse(&inner, Refusal::BrokenBody);
        }
        match sent {
            Ok(resp) => {
                origin.counters.latency.observe(start.elapsed());
                origin.counters.response(resp.status());
                let (mut rparts, rbody) = resp.into_parts();
                strip_hop_by_hop(&mut rparts.headers);
                rparts
                    .headers
                    .append(VIA, via_value(rparts.version, &inner.via));
                // The server side frames the answer for the client's own protocol.
                rparts.version = Version::HTTP_11;
                let body = Returning::new(rbody, Arc::clone(origin), in_flight);
                return Response::from_parts(rparts, body.boxed_unsync());
            }
            Err(Failure::Connect(why)) => {
                origin.counters.connect_errors.fetch_add(1, Relaxed);
                pool.passive_failure(idx, &why);
                let _ = write!(connect_failures, "\n  {}: {why}", origin.name);
                // Retry only if no byte of the body has been read: it can be sent whole again.
                if !slot.untouched() {
                    break;
                }
            }
            Err(Failure::Timeout) => {
                origin.counters.timeouts.fetch_add(1, Relaxed);
                log::warn!(
                    "proxy: 504: origin {} in pool `{}` sent no response headers within {} ms",
                    origin.name,
                    pool.name,
                    inner.response_header_timeout.as_millis()
                );
                return local(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Timeout\n");
            }
            Err(Failure::Other(why)) => {
                origin.counters.other_errors.fetch_add(1, Relaxed);
                log::warn!(
                    "proxy: 502: origin {} in pool `{}` failed: {why}",
                    origin.name,
                    pool.name
                );
                return bad_gateway();
            }
        }
    }
    log::warn!(
        "proxy: 502: could not connect to pool `{}`:{connect_failures}",
        pool.name
    );
    bad_gateway()
}

/// Sends one attempt. The response-header clock restarts whenever a request body frame goes
/// out, so it measures the origin's silence, not the client's upload.
async fn send(
    inner: &Inner,
    req: Request<Outgoing>,
    slot: &Slot,
) -> Result<Response<Incoming>, Failure> {
    let limit = inner.response_header_timeout;
    let fut = inner.client().request(req);
    tokio::pin!(fut);
    loop {
        let deadline = slot.last_sent() + limit;
        tokio::select! {
            biased;
            r = &mut fut => {
                return r.map_err(|e| {
                    let why = error_chain(&e);
                    if e.is_connect() {
                        Failure::Connect(why)
                    } else {
                        Failure::Other(why)
                    }
                });
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                if slot.last_sent() + limit <= Instant::now() {
                    return Err(Failure::Timeout);
                }
            }
        }
    }
}

/// Rewrites the client's headers for the origin.
fn prepare(parts: &mut Parts, client: Option<IpAddr>, via: &str) {
    // The engine's `http.host`: the target's authority (absolute-form, HTTP/2 `:authority`)
    // over any Host header, which it replaces.
    let host = gate::authority(parts);
    let headers: &mut HeaderMap = &mut parts.headers;
    strip_hop_by_hop(headers);
    headers.append(VIA, via_value(parts.version, via));
    if let Some(ip) = client {
        append_forwarded_for(headers, ip);
    }
    // The listener is cleartext; TLS termination in front would have to say otherwise.
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(h) = host {
        headers.insert(X_FORWARDED_HOST, h.clone());
        headers.insert(HOST, h);
    }
}

/// The client as the engine resolved it, else the connection's (PROXY header source first:
/// the server only records one from a trusted peer).
fn client_ip(ext: &Extensions) -> Option<IpAddr> {
    ext.get::<ClientIp>()
        .map(|c| c.0)
        .or_else(|| {
            ext.get::<ConnInfo>()
                .map(|c| c.proxy.map_or(c.peer.ip(), |p| p.source.ip()))
        })
        .or_else(|| ext.get::<SocketAddr>().map(SocketAddr::ip))
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// A refusal of the client's request: counted, logged at debug (clients choose what they
/// send), answered with the reason, which names nothing behind the proxy.
fn refuse(inner: &Inner, r: Refusal) -> Response<ProxyBody> {
    inner.refused.count(r.kind());
    log::debug!("proxy: refused: {r}");
    let status = r.status();
    let reason = status.canonical_reason().unwrap_or("");
    let mut resp = local(status, format!("{} {reason}: {r}\n", status.as_u16()));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(gate::ALLOW));
    }
    resp
}

fn bad_gateway() -> Response<ProxyBody> {
    local(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n")
}

/// An answer made by the proxy itself.
pub(crate) fn local(status: StatusCode, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut resp = Response::new(
        Full::new(body.into())
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// "outer: inner: innermost", the whole `source()` chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}
