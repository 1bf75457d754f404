//! Active health checks: one task per origin sends `GET <path>` every interval; enough failures
//! in a row mark the origin down, enough successes mark it up (see [`super::pool::Origin`]).

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use http::header::USER_AGENT;
use http::{Request, Uri};
use http_body_util::Empty;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use super::config::HealthConfig;
use super::forward::error_chain;
use super::{Inner, Proxy};

impl Proxy {
    /// Starts checking every origin of every pool until `shutdown` completes; the handle ends
    /// when the checkers have stopped. Call once per proxy. While checks run, a connect
    /// failure on the request path also counts as a failed check.
    ///
    /// Must be called inside a tokio runtime.
    pub fn spawn_health_checks<F>(&self, shutdown: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let mut checkers = JoinSet::new();
            for (p, pool) in inner.pools.iter().enumerate() {
                pool.checked.store(true, Relaxed);
                for o in 0..pool.origins.len() {
                    checkers.spawn(check_loop(Arc::clone(&inner), p, o));
                }
            }
            shutdown.await;
            for pool in &inner.pools {
                pool.checked.store(false, Relaxed);
            }
            checkers.shutdown().await;
        })
    }
}

async fn check_loop(inner: Arc<Inner>, p: usize, o: usize) {
    let pool = &inner.pools[p];
    let origin = &pool.origins[o];
    let uri = match origin.addr.uri(&pool.health.path) {
        Ok(u) => u,
        // Both halves were validated with the config; this would be a bug, not an outage.
        Err(e) => {
            log::error!("proxy: cannot check origin {}: {e}", origin.name);
            return;
        }
    };
    let mut tick = tokio::time::interval(pool.health.interval());
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match probe(&inner, uri.clone(), &pool.health).await {
            Ok(()) => pool.observe(o, true, &"ok"),
            Err(why) => pool.observe(o, false, &why),
        }
    }
}

async fn probe(inner: &Inner, uri: Uri, cfg: &HealthConfig) -> Result<(), String> {
    let req = Request::get(uri)
        .header(USER_AGENT, "rampart-health-check")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(cfg.timeout(), inner.health_client.request(req)).await {
        Err(_) => Err(format!("no answer within {} ms", cfg.timeout_ms)),
        Ok(Err(e)) => Err(error_chain(&e)),
        Ok(Ok(resp)) if cfg.accepts(resp.status()) => Ok(()),
        Ok(Ok(resp)) => Err(format!("status {}", resp.status())),
    }
}
