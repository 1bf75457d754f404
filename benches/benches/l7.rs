//! L7 engine cost: a typical request and an attack through 100 site rules plus the default
//! detection rules, a 64 KiB form body, and one rate-limit check with 1,000,000 keys live.
//! Each bench first checks that the work happened (the rule fired, the body was parsed, the
//! limiter limited), so a figure never measures a no-op.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart::l7::{ConnInfo, Decision, Engine, EngineConfig, Limit, RateStore, RateVerdict};
use rampart_rules::{default_waf, load_str, RuleSet};

/// 100 site rules of the usual kinds; rule 1099 logs every request to `/shop/` (so a typical
/// request matches one rule) and rule 1098 logs bodies with over 500 form fields.
fn site_rules() -> RuleSet {
    let mut y = String::from("version: 1\nlists:\n  partners: { kind: ip, items: [\"198.51.100.0/24\", \"2001:db8:77::/48\"] }\nrules:\n");
    for i in 0..98u32 {
        let expr = match i % 7 {
            0 => format!(
                "starts_with(http.request.uri.path, \"/admin{i}\") and not ip.src in $partners"
            ),
            1 => format!("http.request.headers[\"x-api-key\"][0] eq \"revoked-{i}\""),
            2 => format!("http.user_agent matches \"(?i)scanner-{i}[0-9]*\""),
            3 => format!("any(http.request.uri.args[\"debug{i}\"][*] eq \"1\")"),
            4 => {
                format!("http.request.uri.path eq \"/old/{i}\" and http.request.method ne \"GET\"")
            }
            5 => format!("http.host wildcard \"*.internal{i}.example\""),
            _ => format!("http.request.cookies[\"ban{i}\"][0] eq \"1\""),
        };
        y.push_str(&format!(
            "  - id: {}\n    expression: '{}'\n    action: block\n",
            1000 + i,
            expr.replace('\'', "''")
        ));
    }
    y.push_str(
        "  - id: 1098\n    expression: 'len(http.request.body.form) gt 500'\n    action: log\n",
    );
    y.push_str("  - id: 1099\n    expression: 'starts_with(http.request.uri.path, \"/shop/\")'\n    action: log\n");
    load_str(&y, "site.yaml", Path::new(".")).expect("site rules load")
}

fn typical() -> http::request::Parts {
    http::Request::get("/shop/items?category=shoes&size=42&sort=price_asc&page=2")
        .header("host", "shop.example")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .header("accept-language", "en-GB,en;q=0.5")
        .header("accept-encoding", "gzip, deflate, br")
        .header("referer", "https://shop.example/shop/")
        .header(
            "cookie",
            "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; cart=3",
        )
        .header("x-forwarded-proto", "https")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn run(engine: &Engine, parts: &http::request::Parts, body: &[u8]) -> (Decision, usize) {
    let conn = ConnInfo::new(([192, 0, 2, 10], 40_000).into());
    let mut tx = engine.begin(&conn, parts);
    let mut d = tx.on_request_headers();
    if !d.is_terminal() {
        d = tx.on_request_body(body, true);
    }
    let audit = tx.finish();
    (d, audit.matches.len())
}

fn engine_benches(c: &mut Criterion) {
    let site = site_rules();
    let waf = default_waf();
    // The form has more fields than the default cap (which rule 900601 refuses): raised, as
    // a site with such forms does, so every field goes through the rules.
    let (form, i) = rampart_benches::form_64k();
    let mut config = EngineConfig::default();
    config.body_limits.max_fields = config.body_limits.max_fields.max(i + 1);
    let engine = Engine::new(&[&site, &waf], config).expect("engine");
    let rules = site.l7_rules().count() + waf.l7_rules().count();

    let parts = typical();
    let (d, matched) = run(&engine, &parts, b"");
    assert_eq!(
        (d, matched),
        (Decision::Continue, 1),
        "typical request: one log rule, passed"
    );

    let attack = http::Request::get(
        "/shop/items?category=1%27%20UNION%20SELECT%20password%20FROM%20users--",
    )
    .header("host", "shop.example")
    .body(())
    .unwrap()
    .into_parts()
    .0;
    let (d, _) = run(&engine, &attack, b"");
    assert!(
        matches!(
            d,
            Decision::Block {
                rule_id: 900999,
                ..
            }
        ),
        "attack blocked: {d:?}"
    );

    let post = http::Request::post("/shop/checkout")
        .header("host", "shop.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", form.len().to_string())
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let (d, matched) = run(&engine, &post, form.as_bytes());
    assert_eq!(
        (d, matched),
        (Decision::Continue, 2),
        "64 KiB form: {i} fields parsed, passed"
    );

    let mut g = c.benchmark_group(format!("l7_engine_{rules}_rules"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("typical_request", |b| {
        b.iter(|| run(&engine, black_box(&parts), b""))
    });
    g.bench_function("sqli_request_blocked", |b| {
        b.iter(|| run(&engine, black_box(&attack), b""))
    });
    g.throughput(Throughput::Bytes(form.len() as u64));
    g.bench_function("form_body_64k", |b| {
        b.iter(|| run(&engine, black_box(&post), black_box(form.as_bytes())))
    });
    g.finish();
}

fn ratelimit_bench(c: &mut Criterion) {
    const KEYS: u64 = 1_000_000;
    const CAP: usize = 64 << 20;
    let store = RateStore::with_memory(CAP);
    let limit = Limit {
        period_ms: 60_000,
        requests_per_period: 1_000_000,
        mitigation_timeout_ms: 0,
    };
    let key = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555;
    for i in 0..KEYS {
        store.check(key(i), &limit, 1, true);
    }
    let s = store.stats();
    println!(
        "rate-limit store: {} entries live of {} capacity, {} evictions, {} MiB (cap {} MiB)",
        s.entries,
        s.capacity,
        s.evictions,
        s.memory_bytes >> 20,
        CAP >> 20
    );
    assert!(s.memory_bytes <= CAP, "memory over the cap");
    assert!(
        s.entries as u64 >= KEYS * 95 / 100,
        "1M keys live: {}",
        s.entries
    );
    // The limiter limits: a tight limit on one key.
    let tight = Limit {
        period_ms: 60_000,
        requests_per_period: 2,
        mitigation_timeout_ms: 0,
    };
    let v: Vec<_> = (0..3).map(|_| store.check(7, &tight, 2, true)).collect();
    assert!(matches!(v[2], RateVerdict::Limited { .. }), "{v:?}");

    let mut i = 0u64;
    c.bench_function("ratelimit_check_1m_keys", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            store.check(black_box(key(i)), &limit, 3, true)
        })
    });
}

criterion_group!(benches, engine_benches, ratelimit_bench);
criterion_main!(benches);
