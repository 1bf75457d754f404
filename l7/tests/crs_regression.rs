//! OWASP CRS v4, loaded unmodified, against CRS's own regression suite (go-ftw YAML files in
//! `../shared/corpora/crs-v4/tests/regression/tests`).
//!
//! Each test is one HTTP request and the rule ids that must (`expect_ids`) or must not
//! (`no_expect_ids`) appear in the log. The engine runs as CRS's test setup asks (rule 900005:
//! `DetectionOnly`, paranoia level 4, the suite's argument limits), so every rule is evaluated
//! and the log holds every rule that matched. The request is built as go-ftw sends it
//! (`autocomplete_headers`: `Content-Length`, `Connection: close`, and a form `Content-Type`
//! when a body is sent without one).
//!
//! Not judged, and counted apart: tests of the response rules (`RESPONSE-*`, they need an
//! origin's answers) and tests whose only expectation is an HTTP status (the web server's
//! answer, not the WAF's log).
//!
//! The test prints the pass rate and the failing tests, and fails when any test fails other
//! than the few listed in [`SERVER_BEHAVIOUR`] (expectations about the web server).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use marked_yaml::Node;
use rampart_l7::seclang::{parse, HttpInput, RuleSet};

/// Tests whose expectation is about the web server in front of the WAF, not the WAF, in the
/// way CRS's own `nginx-overrides.yaml` and `coraza-overrides.yaml` list them. Each is judged
/// and printed; only these may fail.
const SERVER_BEHAVIOUR: &[(&str, &str, &str)] = &[
    (
        "920181",
        "1",
        "CL + chunked: httpd drops Content-Length before the WAF (nginx answers 400)",
    ),
    (
        "920430",
        "5",
        "HTTP/0.9 request line: the server answers before the WAF sees a protocol",
    ),
    (
        "920620",
        "1",
        "two Content-Type headers: httpd joins them (nginx keeps both and the rule fires, as here)",
    ),
    (
        "920640",
        "5",
        "POST body without Content-Length or chunking: an HTTP/1.1 server reads no body",
    ),
    (
        "921140",
        "1",
        "CR inside a header value: the test expects the server's 400 before the WAF runs",
    ),
];

/// The suite's setup rule (from its README), written before CRS's rules.
const TEST_SETUP: &str = r#"SecAction "id:900005,phase:1,nolog,pass,ctl:ruleEngine=DetectionOnly,ctl:ruleRemoveById=910000,setvar:tx.blocking_paranoia_level=4,setvar:tx.crs_validate_utf8_encoding=1,setvar:tx.arg_name_length=100,setvar:tx.arg_length=400,setvar:tx.total_arg_length=64000,setvar:tx.max_num_args=255,setvar:tx.max_file_size=64100,setvar:tx.combined_file_sizes=65535""#;

fn corpora() -> PathBuf {
    std::env::var_os("RAMPART_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora"))
}

/// crs-setup, the test setup rule, then `rules/*.conf` in name order.
pub fn load_crs(crs: &Path) -> RuleSet {
    let rules_dir = crs.join("rules");
    let mut directives =
        parse::parse_file(&crs.join("crs-setup.conf.example")).expect("crs-setup parses");
    directives
        .extend(parse::parse_str(TEST_SETUP, "test-setup.conf", &rules_dir).expect("setup parses"));
    let mut files: Vec<_> = std::fs::read_dir(&rules_dir)
        .expect("rules folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort();
    for f in &files {
        directives.extend(parse::parse_file(f).unwrap_or_else(|e| panic!("{e}")));
    }
    RuleSet::compile(&directives, &rules_dir).unwrap_or_else(|e| panic!("{e}"))
}

struct Case {
    file: String,
    test_id: String,
    input: HttpInput,
    expect: Vec<u32>,
    no_expect: Vec<u32>,
}

fn scalar<'a>(n: &'a Node, key: &str) -> Option<&'a str> {
    n.as_mapping()?.get_scalar(key).map(|s| s.as_str())
}

fn ids(n: Option<&Node>) -> Vec<u32> {
    let Some(n) = n else { return Vec::new() };
    if let Some(s) = n.as_scalar() {
        return s.as_str().trim().parse().into_iter().collect();
    }
    n.as_sequence()
        .map(|seq| {
            seq.iter()
                .filter_map(|x| x.as_scalar()?.as_str().trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `id "942100"` in the older `log_contains` form.
fn ids_in_regex(s: Option<&str>) -> Vec<u32> {
    let Some(s) = s else { return Vec::new() };
    s.split("id \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

/// A request line, headers and body from go-ftw's `encoded_request` (base64 of raw bytes).
fn raw_request(raw: &[u8]) -> HttpInput {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let head_end = head_end.or_else(|| {
        raw.windows(2)
            .position(|w| w == b"\n\n")
            .map(|i| (i, i + 2))
    });
    let (head, body) = match head_end {
        Some((h, b)) => (&raw[..h], raw[b..].to_vec()),
        None => (raw, Vec::new()),
    };
    let mut lines = head
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let line = lines.next().unwrap_or_default();
    let mut parts = line.splitn(3, |&c| c == b' ');
    let method = parts.next().unwrap_or_default().to_vec();
    let uri = parts.next().unwrap_or_default().to_vec();
    let protocol = parts.next().unwrap_or_default().to_vec();
    let headers = lines
        .filter_map(|l| {
            let i = l.iter().position(|&c| c == b':')?;
            Some((l[..i].to_vec(), l[i + 1..].trim_ascii().to_vec()))
        })
        .collect();
    input(method, uri, protocol, headers, body)
}

fn input(
    method: Vec<u8>,
    uri: Vec<u8>,
    protocol: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
) -> HttpInput {
    HttpInput {
        remote_addr: "127.0.0.1".parse().expect("ip"),
        remote_port: 40000,
        server_port: 80,
        method,
        uri,
        protocol,
        headers,
        body,
    }
}

/// The request as go-ftw would send it.
fn build_input(i: &Node) -> HttpInput {
    if let Some(enc) = scalar(i, "encoded_request") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(enc.split_whitespace().collect::<String>())
            .unwrap_or_default();
        return raw_request(&raw);
    }
    let method = scalar(i, "method").unwrap_or("GET").as_bytes().to_vec();
    let uri = scalar(i, "uri").unwrap_or("/").as_bytes().to_vec();
    let protocol = scalar(i, "version")
        .unwrap_or("HTTP/1.1")
        .as_bytes()
        .to_vec();
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if let Some(map) = i.as_mapping().and_then(|m| m.get_mapping("headers")) {
        for (k, v) in map.iter() {
            let v = v.as_scalar().map(|s| s.as_str()).unwrap_or_default();
            headers.push((k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
    }
    let body = scalar(i, "data").unwrap_or_default().as_bytes().to_vec();
    let auto = scalar(i, "autocomplete_headers").is_none_or(|v| v != "false");
    let has =
        |h: &[(Vec<u8>, Vec<u8>)], name: &[u8]| h.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if auto {
        if !body.is_empty() && !has(&headers, b"content-type") {
            headers.push((
                b"Content-Type".to_vec(),
                b"application/x-www-form-urlencoded".to_vec(),
            ));
        }
        if !body.is_empty() && !has(&headers, b"content-length") {
            headers.push((
                b"Content-Length".to_vec(),
                body.len().to_string().into_bytes(),
            ));
        }
        if !has(&headers, b"connection") {
            headers.push((b"Connection".to_vec(), b"close".to_vec()));
        }
    }
    input(method, uri, protocol, headers, body)
}

#[derive(Default)]
struct Tally {
    cases: Vec<Case>,
    response: usize,
    status_only: usize,
    unreadable: Vec<String>,
}

fn read_suite(dir: &Path) -> Tally {
    let mut t = Tally::default();
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in std::fs::read_dir(dir).expect("tests folder") {
        let sub = sub.expect("entry").path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).expect("rule folder") {
            files.push(f.expect("entry").path());
        }
    }
    files.sort();
    for f in files {
        let name = format!("{}", f.strip_prefix(dir).unwrap_or(&f).display());
        let text = std::fs::read_to_string(&f).expect("test file");
        let doc = match marked_yaml::parse_yaml(0, &text) {
            Ok(d) => d,
            Err(e) => {
                t.unreadable.push(format!("{name}: {e}"));
                continue;
            }
        };
        let response = name.starts_with("RESPONSE-");
        let Some(tests) = doc.as_mapping().and_then(|m| m.get_sequence("tests")) else {
            continue;
        };
        for test in tests.iter() {
            let test_id = scalar(test, "test_id")
                .or_else(|| scalar(test, "test_title"))
                .unwrap_or("?")
                .to_string();
            let Some(stages) = test.as_mapping().and_then(|m| m.get_sequence("stages")) else {
                continue;
            };
            for stage in stages.iter() {
                // Older files nest the stage under `stage:`.
                let stage = stage
                    .as_mapping()
                    .and_then(|m| m.get_node("stage"))
                    .unwrap_or(stage);
                let (Some(i), Some(o)) = (
                    stage.as_mapping().and_then(|m| m.get_node("input")),
                    stage.as_mapping().and_then(|m| m.get_node("output")),
                ) else {
                    continue;
                };
                let log = o.as_mapping().and_then(|m| m.get_node("log"));
                let (mut expect, mut no_expect) = (Vec::new(), Vec::new());
                if let Some(log) = log.and_then(Node::as_mapping) {
                    expect = ids(log.get_node("expect_ids"));
                    no_expect = ids(log.get_node("no_expect_ids"));
                }
                expect.extend(ids_in_regex(scalar(o, "log_contains")));
                no_expect.extend(ids_in_regex(scalar(o, "no_log_contains")));
                if response {
                    t.response += 1;
                } else if expect.is_empty() && no_expect.is_empty() {
                    t.status_only += 1;
                } else {
                    t.cases.push(Case {
                        file: name.clone(),
                        test_id: test_id.clone(),
                        input: build_input(i),
                        expect,
                        no_expect,
                    });
                }
            }
        }
    }
    t
}

#[test]
fn crs_v4_regression_suite() {
    let crs = corpora().join("crs-v4");
    let set = load_crs(&crs);
    let stats = set.stats().clone();
    let suite = read_suite(&crs.join("tests/regression/tests"));
    assert!(
        suite.unreadable.is_empty(),
        "unreadable test files: {:?}",
        suite.unreadable
    );
    let mut failed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut passed = 0usize;
    for case in &suite.cases {
        let out = set.evaluate(&case.input);
        let logged: Vec<u32> = out.logged_ids().collect();
        let missing: Vec<u32> = case
            .expect
            .iter()
            .copied()
            .filter(|id| !logged.contains(id))
            .collect();
        let unwanted: Vec<u32> = case
            .no_expect
            .iter()
            .copied()
            .filter(|id| logged.contains(id))
            .collect();
        if missing.is_empty() && unwanted.is_empty() {
            passed += 1;
        } else {
            failed.entry(case.file.clone()).or_default().push(format!(
                "{} (missing {missing:?}, unwanted {unwanted:?})",
                case.test_id
            ));
        }
    }
    let judged = suite.cases.len();
    let rate = passed as f64 / judged.max(1) as f64;
    let mut unexpected = Vec::new();
    for (file, tests) in &failed {
        println!("FAIL {file}: {}", tests.join("; "));
        let rule = file
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".yaml");
        for t in tests {
            let id = t.split(' ').next().unwrap_or_default();
            match SERVER_BEHAVIOUR
                .iter()
                .find(|(r, i, _)| *r == rule && *i == id)
            {
                Some((_, _, why)) => println!("  known: {rule} test {id}: {why}"),
                None => unexpected.push(format!("{file} {t}")),
            }
        }
    }
    println!(
        "CRS v4 regression: {passed}/{judged} judged tests pass ({:.2}%); not judged: {} response-rule tests, {} status-only tests",
        rate * 100.0,
        suite.response,
        suite.status_only
    );
    println!(
        "loaded {} rules ({} @rx on the backtracking fallback, {} on response variables, {} on persistent collections, {} ignored directives)",
        stats.rules, stats.rx_fallback, stats.response_rules, stats.persistent_rules, stats.ignored_directives
    );
    assert!(
        judged > 4000,
        "the suite holds over 4,000 judged tests, read {judged}"
    );
    assert!(
        unexpected.is_empty(),
        "{} tests fail beyond the server-behaviour list: {unexpected:#?}",
        unexpected.len()
    );
}

/// CRS 3.3.4 as Debian installs it (`cargo xtask setup` installs `modsecurity-crs`), loaded
/// through the package's own `owasp-crs.load`, with its default setup (anomaly scoring, PL1,
/// engine On): a SQL injection is denied by 949110, a browser request passes.
#[test]
fn crs_3_3_as_debian_ships_it() {
    let load = Path::new("/usr/share/modsecurity-crs/owasp-crs.load");
    if !load.exists() {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc_geteuid() } == 0;
        assert!(!root, "{} missing: run `cargo xtask setup`", load.display());
        println!(
            "skipping: {} not installed (cargo xtask setup installs it)",
            load.display()
        );
        return;
    }
    let directives = parse::parse_file(load).unwrap_or_else(|e| panic!("{e}"));
    let set = RuleSet::compile(&directives, Path::new("/usr/share/modsecurity-crs/rules"))
        .unwrap_or_else(|e| panic!("{e}"));
    println!("CRS 3.3 (Debian): {:?}", set.stats());
    assert!(set.stats().rules > 500, "{:?}", set.stats());
    let get = |uri: &str| {
        input(
            b"GET".to_vec(),
            uri.as_bytes().to_vec(),
            b"HTTP/1.1".to_vec(),
            vec![
                (b"Host".to_vec(), b"shop.example".to_vec()),
                (
                    b"User-Agent".to_vec(),
                    b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".to_vec(),
                ),
                (b"Accept".to_vec(), b"text/html".to_vec()),
            ],
            Vec::new(),
        )
    };
    let attack = set.evaluate(&get("/item?id=1%27%20or%20%271%27%3D%271"));
    let ids: Vec<u32> = attack.logged_ids().collect();
    assert!(ids.contains(&942100), "{ids:?}");
    assert_eq!(
        attack.interruption.map(|i| i.rule_id),
        Some(949110),
        "{ids:?}"
    );
    let clean = set.evaluate(&get("/shop/items?category=shoes&page=2"));
    assert!(clean.interruption.is_none(), "{:?}", clean.matched);
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
