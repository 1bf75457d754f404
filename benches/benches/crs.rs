//! OWASP CRS v4 at paranoia level 1 through the SecLang engine (the setup CRS ships:
//! `crs-setup.conf.example`, anomaly scoring, engine On): a typical browser GET, a 64 KiB
//! urlencoded form of ~1,100 fields, and a SQL injection. Each case is checked first: the
//! clean requests pass with CRS's blocking evaluation having run (its score is in TX), the
//! attack is denied by 949110.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart::l7::seclang::{HttpInput, Outcome, RuleSet, Source};

fn crs_dir() -> PathBuf {
    std::env::var_os("RAMPART_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpora"))
        })
        .join("crs-v4")
}

fn request(method: &str, uri: &str, extra: &[(&str, &str)], body: &[u8]) -> HttpInput {
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = [
        ("Host", "shop.example"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("Accept-Language", "en-GB,en;q=0.5"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Referer", "https://shop.example/shop/"),
        (
            "Cookie",
            "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; cart=3",
        ),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    if !body.is_empty() {
        headers.push((
            b"Content-Length".to_vec(),
            body.len().to_string().into_bytes(),
        ));
    }
    HttpInput {
        headers,
        ..HttpInput::simple(method, uri, &[], body)
    }
}

fn passed_evaluation(o: &Outcome, what: &str) {
    assert!(o.interruption.is_none(), "{what} passes: {:?}", o.matched);
    assert!(
        o.tx.contains_key("blocking_inbound_anomaly_score"),
        "{what}: CRS's blocking evaluation ran"
    );
}

fn crs_benches(c: &mut Criterion) {
    let crs = crs_dir();
    let set = RuleSet::load(&[
        Source::File(crs.join("crs-setup.conf.example")),
        Source::Dir(crs.join("rules")),
    ])
    .unwrap_or_else(|e| panic!("CRS v4 loads: {e}"));
    let rules = set.stats().rules;

    let get = request(
        "GET",
        "/shop/items?category=shoes&size=42&sort=price_asc&page=2",
        &[],
        b"",
    );
    passed_evaluation(&set.evaluate(&get), "typical GET");

    let (form, i) = rampart_benches::form_64k();
    let post = request(
        "POST",
        "/shop/checkout",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    passed_evaluation(&set.evaluate(&post), "64 KiB form");

    let attack = request(
        "GET",
        "/shop/items?category=1%27%20UNION%20SELECT%20password%20FROM%20users--",
        &[],
        b"",
    );
    let o = set.evaluate(&attack);
    assert_eq!(
        o.interruption.map(|i| i.rule_id),
        Some(949110),
        "attack denied: {:?}",
        o.matched
    );

    let mut g = c.benchmark_group(format!("crs_v4_pl1_{rules}_rules"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("typical_get", |b| b.iter(|| set.evaluate(black_box(&get))));
    g.bench_function(format!("form_64k_{i}_fields"), |b| {
        b.iter(|| set.evaluate(black_box(&post)))
    });
    g.bench_function("sqli_get_denied", |b| {
        b.iter(|| set.evaluate(black_box(&attack)))
    });
    g.finish();
}

criterion_group!(benches, crs_benches);
criterion_main!(benches);
