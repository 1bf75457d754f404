use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

use http::header::{HeaderMap, HeaderValue};
use http::Version;

use super::config::{OriginAddr, ProxyConfig};
use super::headers::{append_forwarded_for, strip_hop_by_hop, via_value, X_FORWARDED_FOR};
use super::pool::{Pick, Pool};
use super::stats::LatencyCounters;
use super::{Balance, PoolConfig, Proxy, ProxyError};

fn pool_cfg(name: &str, origins: &[&str]) -> PoolConfig {
    PoolConfig {
        name: name.into(),
        origins: origins.iter().map(|s| s.to_string()).collect(),
        balance: Balance::RoundRobin,
        health: Default::default(),
    }
}

fn config(pools: Vec<PoolConfig>) -> ProxyConfig {
    ProxyConfig {
        pools,
        ..ProxyConfig::default()
    }
}

#[test]
fn deserializes_with_defaults_and_refuses_unknown_fields() {
    let cfg: ProxyConfig = serde_json::from_str(
        r#"{"pools": [{"name": "web", "origins": ["http://127.0.0.1:8080"],
            "balance": "least_outstanding", "health": {"path": "/healthz"}}],
            "timeouts": {"connect_ms": 500}}"#,
    )
    .unwrap();
    assert_eq!(cfg.pools[0].balance, Balance::LeastOutstanding);
    assert_eq!(cfg.pools[0].health.path, "/healthz");
    assert_eq!(cfg.pools[0].health.interval_ms, 5_000);
    assert_eq!(cfg.timeouts.connect_ms, 500);
    assert_eq!(cfg.timeouts.response_header_ms, 30_000);
    assert_eq!(cfg.via, "rampart");
    assert_eq!(cfg.retries, 1);
    cfg.validate().unwrap();

    let err = serde_json::from_str::<ProxyConfig>(r#"{"pools": [], "retry": 2}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `retry`"), "{err}");
    let err = serde_json::from_str::<ProxyConfig>(
        r#"{"pools": [{"name": "a", "origins": [], "balance": "random"}]}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown variant `random`"),
        "{err}"
    );
    let err = serde_json::from_str::<ProxyConfig>(
        r#"{"pools": [{"name": "a", "origins": [], "health": {"intervall_ms": 1}}]}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown field `intervall_ms`"),
        "{err}"
    );
}

#[test]
fn validation_errors_are_specific() {
    let ok = pool_cfg("web", &["http://127.0.0.1:8080"]);
    assert_eq!(config(vec![]).validate(), Err(ProxyError::NoPools));
    assert_eq!(
        config(vec![pool_cfg("web", &[])]).validate(),
        Err(ProxyError::EmptyPool { pool: "web".into() })
    );
    assert_eq!(
        config(vec![ok.clone(), ok.clone()]).validate(),
        Err(ProxyError::DuplicatePool { pool: "web".into() })
    );
    let mut c = config(vec![ok.clone()]);
    c.default_pool = Some("api".into());
    let err = c.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "default_pool `api` names no pool (pools: web)"
    );

    for (origin, why) in [
        ("127.0.0.1:8080", "has no scheme"),
        ("https://127.0.0.1", "other than http"),
        ("http://127.0.0.1:8080/app", "has a path"),
        ("http://127.0.0.1:8080/?x=1", "has a path or query"),
        ("http://user:pw@127.0.0.1", "credentials"),
        ("http://", "not a URI"),
        ("not a uri", "not a URI"),
    ] {
        let err = config(vec![pool_cfg("web", &[origin])])
            .validate()
            .unwrap_err();
        assert!(
            matches!(&err, ProxyError::BadOrigin { pool, origin: o, .. } if pool == "web" && o == origin),
            "{origin}: {err:?}"
        );
        assert!(err.to_string().contains(why), "{origin}: {err}");
    }
    assert!(matches!(
        config(vec![pool_cfg("web", &["http://a:1", "http://a:1/"])]).validate(),
        Err(ProxyError::DuplicateOrigin { .. })
    ));

    let mut c = config(vec![ok.clone()]);
    c.pools[0].health.interval_ms = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "`pools[web].health.interval_ms` must be greater than zero"
    );
    let mut c = config(vec![ok.clone()]);
    c.pools[0].health.unhealthy_after = 0;
    assert!(
        matches!(c.validate(), Err(ProxyError::Zero { field }) if field.ends_with("unhealthy_after"))
    );
    let mut c = config(vec![ok.clone()]);
    c.timeouts.response_header_ms = 0;
    assert!(
        matches!(c.validate(), Err(ProxyError::Zero { field }) if field == "timeouts.response_header_ms")
    );
    let mut c = config(vec![ok.clone()]);
    c.pools[0].health.path = "healthz".into();
    assert!(matches!(
        c.validate(),
        Err(ProxyError::BadHealthPath { .. })
    ));
    let mut c = config(vec![ok.clone()]);
    c.pools[0].health.expect_status = Some(42);
    assert!(matches!(
        c.validate(),
        Err(ProxyError::BadExpectStatus { status: 42, .. })
    ));
    let mut c = config(vec![ok.clone()]);
    c.via = "edge proxy".into();
    assert!(matches!(c.validate(), Err(ProxyError::BadVia { .. })));
    let mut c = config(vec![pool_cfg("", &["http://a:1"])]);
    assert_eq!(c.validate(), Err(ProxyError::EmptyPoolName));
    c.pools[0].name = "x".into();
    assert!(Proxy::new(&c).is_ok());
}

#[test]
fn origin_addresses() {
    let a = OriginAddr::parse("http://127.0.0.1:8080").unwrap();
    assert_eq!(
        a.uri("/a/b?c=d").unwrap().to_string(),
        "http://127.0.0.1:8080/a/b?c=d"
    );
    let a = OriginAddr::parse("http://[::1]:81/").unwrap();
    assert_eq!(a.uri("/").unwrap().to_string(), "http://[::1]:81/");
}

fn pool(balance: Balance, n: usize) -> Pool {
    let origins: Vec<String> = (0..n).map(|i| format!("http://10.0.0.{i}:80")).collect();
    let addrs = origins
        .iter()
        .map(|o| OriginAddr::parse(o).unwrap())
        .collect();
    let mut cfg = pool_cfg("p", &[]);
    cfg.origins = origins;
    cfg.balance = balance;
    Pool::new(&cfg, addrs)
}

fn mark_down(p: &Pool, idx: usize) {
    for _ in 0..p.health.unhealthy_after {
        p.observe(idx, false, &"test");
    }
    assert!(!p.origins[idx].is_healthy());
}

#[test]
fn round_robin_cycles_and_skips_down_origins() {
    let p = pool(Balance::RoundRobin, 3);
    let picks: Vec<Pick> = (0..6).map(|_| p.pick(&[])).collect();
    assert_eq!(
        picks,
        [0, 1, 2, 0, 1, 2]
            .map(Pick::Origin)
            .into_iter()
            .collect::<Vec<_>>()
    );
    mark_down(&p, 1);
    for _ in 0..6 {
        assert_ne!(p.pick(&[]), Pick::Origin(1));
    }
    // A retry never goes back to an origin already tried.
    assert_eq!(p.pick(&[0]), Pick::Origin(2));
    assert_eq!(p.pick(&[0, 2]), Pick::Exhausted);
    mark_down(&p, 0);
    mark_down(&p, 2);
    assert_eq!(p.pick(&[]), Pick::NoneHealthy);
}

#[test]
fn least_outstanding_prefers_the_idle_origin() {
    let p = pool(Balance::LeastOutstanding, 3);
    let busy0 = p.origins[0].begin();
    let busy1 = p.origins[1].begin();
    let busy1b = p.origins[1].begin();
    for _ in 0..5 {
        assert_eq!(p.pick(&[]), Pick::Origin(2));
    }
    let busy2 = p.origins[2].begin();
    let busy2b = p.origins[2].begin();
    // 1, 2, 2 in flight: origin 0 is the least loaded.
    assert_eq!(p.pick(&[]), Pick::Origin(0));
    assert!(matches!(p.pick(&[0]), Pick::Origin(1 | 2)));
    drop((busy0, busy1, busy1b, busy2, busy2b));
    assert!(p.origins.iter().all(|o| o.in_flight() == 0));
    // Ties spread round robin instead of piling on the first origin.
    let mut seen = [0; 3];
    for _ in 0..30 {
        if let Pick::Origin(i) = p.pick(&[]) {
            seen[i] += 1;
        }
    }
    assert_eq!(seen, [10, 10, 10]);
}

#[test]
fn health_needs_consecutive_results_and_passive_failures_need_checks() {
    let p = pool(Balance::RoundRobin, 1);
    let h = p.health.clone();
    assert_eq!((h.unhealthy_after, h.healthy_after), (3, 2));
    p.observe(0, false, &"x");
    p.observe(0, false, &"x");
    p.observe(0, true, &"ok");
    p.observe(0, false, &"x");
    p.observe(0, false, &"x");
    assert!(
        p.origins[0].is_healthy(),
        "a success in between resets the count"
    );
    p.observe(0, false, &"x");
    assert!(!p.origins[0].is_healthy());
    p.observe(0, true, &"ok");
    assert!(!p.origins[0].is_healthy());
    p.observe(0, true, &"ok");
    assert!(p.origins[0].is_healthy());

    for _ in 0..10 {
        p.passive_failure(0, &"refused");
    }
    assert!(
        p.origins[0].is_healthy(),
        "no checks running: nothing could bring it back"
    );
    p.checked.store(true, Relaxed);
    for _ in 0..3 {
        p.passive_failure(0, &"refused");
    }
    assert!(!p.origins[0].is_healthy());
}

#[test]
fn hop_by_hop_headers_are_removed() {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("connection", "keep-alive, X-Secret"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("proxy-authorization", "Basic x"),
        ("proxy-connection", "close"),
        ("te", "trailers"),
        ("trailer", "x-sum"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("x-kept", "yes"),
        ("content-length", "3"),
    ] {
        h.append(k, HeaderValue::from_static(v));
    }
    strip_hop_by_hop(&mut h);
    let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    left.sort();
    assert_eq!(left, ["content-length", "x-kept"]);
}

#[test]
fn forwarded_for_appends_the_client_once() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let mut h = HeaderMap::new();
    append_forwarded_for(&mut h, ip("192.0.2.1"));
    assert_eq!(h[&X_FORWARDED_FOR], "192.0.2.1");
    let mut h = HeaderMap::new();
    h.append(
        &X_FORWARDED_FOR,
        HeaderValue::from_static("203.0.113.5, 10.0.0.1"),
    );
    h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.2"));
    append_forwarded_for(&mut h, ip("::ffff:192.0.2.1"));
    assert_eq!(
        h.get_all(&X_FORWARDED_FOR).iter().collect::<Vec<_>>(),
        ["203.0.113.5, 10.0.0.1, 10.0.0.2, 192.0.2.1"]
    );
    // A trusted balancer already named the client: not repeated.
    let mut h = HeaderMap::new();
    h.insert(&X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.7"));
    append_forwarded_for(&mut h, ip("198.51.100.7"));
    assert_eq!(h[&X_FORWARDED_FOR], "198.51.100.7");
}

#[test]
fn via_names_the_received_protocol() {
    assert_eq!(via_value(Version::HTTP_11, "rampart"), "1.1 rampart");
    assert_eq!(via_value(Version::HTTP_2, "edge1"), "2 edge1");
    assert_eq!(via_value(Version::HTTP_10, "rampart"), "1.0 rampart");
}

#[test]
fn latency_histogram_is_cumulative() {
    let l = LatencyCounters::default();
    for ms in [0, 3, 3, 40, 20_000] {
        l.observe(std::time::Duration::from_millis(ms));
    }
    let h = l.snapshot();
    assert_eq!(h.count, 5);
    assert!((h.sum_seconds - 20.046).abs() < 1e-9, "{}", h.sum_seconds);
    let at = |bound: f64| h.buckets.iter().find(|b| b.0 == bound).unwrap().1;
    assert_eq!(at(0.0005), 1);
    assert_eq!(at(0.0025), 1);
    assert_eq!(at(0.005), 3);
    assert_eq!(at(0.05), 4);
    assert_eq!(at(10.0), 4);
    assert!(h.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
}
