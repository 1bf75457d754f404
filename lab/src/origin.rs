//! A small HTTP origin for the lab and the end-to-end tests: it answers with its name, the
//! method, the path and the `X-Forwarded-For` it received; `/healthz` says ok; `POST /login`
//! refuses (401), so a brute force looks like one.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

async fn answer(
    name: String,
    req: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let xff = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let body_len = req
        .into_body()
        .collect()
        .await
        .map_or(0, |b| b.to_bytes().len());
    let (status, text) = match (method.as_str(), path.as_str()) {
        (_, "/healthz") => (200, "ok\n".to_string()),
        ("POST", "/login") => (401, "bad credentials\n".to_string()),
        _ => (
            200,
            format!("origin {name}: {method} {path} xff={xff} body={body_len}\n"),
        ),
    };
    let resp = http::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(text)));
    Ok(resp.unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new()))))
}

/// Serves until `shutdown` resolves.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    name: &str,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let name = name.to_string();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| answer(name.clone(), req));
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}
