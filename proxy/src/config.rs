//! Proxy settings as the daemon reads them (TOML through serde), and their validation.
//!
//! ```toml
//! default_pool = "web"
//! retries = 1
//! [timeouts]
//! connect_ms = 2000
//! response_header_ms = 30000
//! [[pools]]
//! name = "web"
//! origins = ["http://127.0.0.1:8080", "http://127.0.0.1:8081"]
//! balance = "least_outstanding"
//! health = { path = "/healthz", interval_ms = 5000 }
//! ```

use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::Uri;
use serde::Deserialize;

/// Why a [`ProxyConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("the proxy has no pools")]
    NoPools,
    #[error("a pool has an empty name")]
    EmptyPoolName,
    #[error("pool `{pool}` is defined twice")]
    DuplicatePool { pool: String },
    #[error("pool `{pool}` has no origins")]
    EmptyPool { pool: String },
    #[error("pool `{pool}`: origin `{origin}` {why}")]
    BadOrigin {
        pool: String,
        origin: String,
        why: &'static str,
    },
    #[error("pool `{pool}` lists origin `{origin}` twice")]
    DuplicateOrigin { pool: String, origin: String },
    #[error("default_pool `{name}` names no pool (pools: {known})")]
    UnknownDefaultPool { name: String, known: String },
    #[error("`{field}` must be greater than zero")]
    Zero { field: String },
    #[error("pool `{pool}`: health.path `{path}` must start with '/' and be a valid request path")]
    BadHealthPath { pool: String, path: String },
    #[error("pool `{pool}`: health.expect_status {status} is not an HTTP status (100 to 599)")]
    BadExpectStatus { pool: String, status: u16 },
    #[error("via `{via}` is not a valid header token")]
    BadVia { via: String },
}

/// How a pool spreads requests over its healthy origins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    /// The origin with the fewest requests in flight (ties go round robin).
    LeastOutstanding,
}

/// Active health checks of one pool's origins.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Path of the `GET` sent to each origin.
    pub path: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive failures that mark an origin down.
    pub unhealthy_after: u32,
    /// Consecutive successes that mark it up again.
    pub healthy_after: u32,
    /// The status a healthy origin answers; unset: any 2xx.
    pub expect_status: Option<u16>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            path: "/".into(),
            interval_ms: 5_000,
            timeout_ms: 2_000,
            unhealthy_after: 3,
            healthy_after: 2,
            expect_status: None,
        }
    }
}

impl HealthConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub(crate) fn accepts(&self, status: http::StatusCode) -> bool {
        match self.expect_status {
            Some(want) => status.as_u16() == want,
            None => status.is_success(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    /// `http://host:port` each; no path, query or credentials.
    pub origins: Vec<String>,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default)]
    pub health: HealthConfig,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP connect to an origin (a timeout counts as a connect failure).
    pub connect_ms: u64,
    /// From the last request byte sent to the response head; past it the client gets 504.
    pub response_header_ms: u64,
    /// Idle origin connections are closed after this.
    pub idle_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: 2_000,
            response_header_ms: 30_000,
            idle_ms: 90_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    pub pools: Vec<PoolConfig>,
    /// Pool for requests without a `route` decision; unset: the first pool.
    pub default_pool: Option<String>,
    pub timeouts: Timeouts,
    /// Further attempts, each on another origin (so at most the pool's size less one), after a
    /// connect failure. Only for idempotent methods, and only while no byte of the request
    /// body has been read.
    pub retries: u32,
    pub max_idle_per_origin: usize,
    /// Name in the `Via` header this proxy adds.
    pub via: String,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            pools: Vec::new(),
            default_pool: None,
            timeouts: Timeouts::default(),
            retries: 1,
            max_idle_per_origin: 256,
            via: "rampart".into(),
        }
    }
}

/// A parsed origin address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OriginAddr {
    pub scheme: Scheme,
    pub authority: Authority,
}

impl OriginAddr {
    pub fn parse(s: &str) -> Result<OriginAddr, &'static str> {
        let uri: Uri = s.parse().map_err(|_| "is not a URI")?;
        let parts = uri.into_parts();
        let scheme = parts
            .scheme
            .ok_or("has no scheme (write http://host:port)")?;
        if scheme != Scheme::HTTP {
            return Err("has a scheme other than http (TLS to origins is not supported)");
        }
        let authority = parts.authority.ok_or("has no host")?;
        if authority.as_str().contains('@') {
            return Err("carries credentials");
        }
        if authority.host().is_empty() {
            return Err("has no host");
        }
        if parts
            .path_and_query
            .is_some_and(|p| p.query().is_some() || !matches!(p.path(), "" | "/"))
        {
            return Err("has a path or query (an origin is scheme://host:port only)");
        }
        Ok(OriginAddr { scheme, authority })
    }

    /// The absolute URI of `path_and_query` on this origin.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

/// A checked configuration: origins parsed, the default pool resolved to an index.
#[derive(Clone, Debug)]
pub(crate) struct Validated {
    pub pools: Vec<(PoolConfig, Vec<OriginAddr>)>,
    pub default_pool: usize,
}

impl ProxyConfig {
    /// Checks the configuration without building anything.
    ///
    /// # Errors
    /// No pools, an empty or duplicate pool, a bad origin URI, an unknown default pool, a zero
    /// interval, timeout or threshold, a bad health path or status, a `via` that is not a token.
    pub fn validate(&self) -> Result<(), ProxyError> {
        self.validated().map(|_| ())
    }

    pub(crate) fn validated(&self) -> Result<Validated, ProxyError> {
        if self.pools.is_empty() {
            return Err(ProxyError::NoPools);
        }
        let t = &self.timeouts;
        nonzero("timeouts.connect_ms", t.connect_ms)?;
        nonzero("timeouts.response_header_ms", t.response_header_ms)?;
        nonzero("timeouts.idle_ms", t.idle_ms)?;
        // A token (RFC 9110 `received-by` pseudonym): the header-name grammar is the same.
        if self.via.parse::<http::header::HeaderName>().is_err() {
            return Err(ProxyError::BadVia {
                via: self.via.clone(),
            });
        }
        let mut pools = Vec::with_capacity(self.pools.len());
        for (i, pool) in self.pools.iter().enumerate() {
            if pool.name.is_empty() {
                return Err(ProxyError::EmptyPoolName);
            }
            if self.pools[..i].iter().any(|p| p.name == pool.name) {
                return Err(ProxyError::DuplicatePool {
                    pool: pool.name.clone(),
                });
            }
            pools.push((pool.clone(), check_pool(pool)?));
        }
        let default_pool = match &self.default_pool {
            None => 0,
            Some(name) => self
                .pools
                .iter()
                .position(|p| &p.name == name)
                .ok_or_else(|| ProxyError::UnknownDefaultPool {
                    name: name.clone(),
                    known: self
                        .pools
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?,
        };
        Ok(Validated {
            pools,
            default_pool,
        })
    }
}

fn nonzero(field: &str, v: u64) -> Result<(), ProxyError> {
    if v == 0 {
        return Err(ProxyError::Zero {
            field: field.into(),
        });
    }
    Ok(())
}

fn check_pool(pool: &PoolConfig) -> Result<Vec<OriginAddr>, ProxyError> {
    let name = &pool.name;
    if pool.origins.is_empty() {
        return Err(ProxyError::EmptyPool { pool: name.clone() });
    }
    let h = &pool.health;
    let field = |f: &str| format!("pools[{name}].health.{f}");
    nonzero(&field("interval_ms"), h.interval_ms)?;
    nonzero(&field("timeout_ms"), h.timeout_ms)?;
    nonzero(&field("unhealthy_after"), h.unhealthy_after.into())?;
    nonzero(&field("healthy_after"), h.healthy_after.into())?;
    if !h.path.starts_with('/') || h.path.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(ProxyError::BadHealthPath {
            pool: name.clone(),
            path: h.path.clone(),
        });
    }
    if let Some(status) = h.expect_status {
        if !(100..=599).contains(&status) {
            return Err(ProxyError::BadExpectStatus {
                pool: name.clone(),
                status,
            });
        }
    }
    let mut addrs: Vec<OriginAddr> = Vec::with_capacity(pool.origins.len());
    for origin in &pool.origins {
        let addr = OriginAddr::parse(origin).map_err(|why| ProxyError::BadOrigin {
            pool: name.clone(),
            origin: origin.clone(),
            why,
        })?;
        if addrs.contains(&addr) {
            return Err(ProxyError::DuplicateOrigin {
                pool: name.clone(),
                origin: origin.clone(),
            });
        }
        addrs.push(addr);
    }
    Ok(addrs)
}
