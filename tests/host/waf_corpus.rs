//! Outside checks of the L7 detection: libinjection's own golden fingerprint files through the
//! detector we embed, and the attack and false-positive lists through the engine with the
//! default rules (`waf-report` prints the same figures per list).

use rampart_benches::waf::{run, Kind};
use rampart_rules::lang::detect::{sqli, sqli_fingerprint, xss, xss_unfiltered};
use rampart_rules::lang::functions::url_decode;
use rampart_testkit::corpora_dir;

#[test]
fn libinjection_golden_sqli_fingerprints() {
    let dir = corpora_dir().join("libinjection/tests");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("libinjection tests folder") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("test-sqli-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let input = text
            .split("--INPUT--\n")
            .nth(1)
            .and_then(|s| s.split("--EXPECTED--").next())
            .expect("input section")
            .trim_end_matches('\n');
        let expected = text.split("--EXPECTED--\n").nth(1).unwrap_or("").trim();
        // The golden files give the fingerprint of injections and nothing for the rest.
        let got = if sqli(input.as_bytes()) {
            sqli_fingerprint(input.as_bytes())
        } else {
            String::new()
        };
        assert_eq!(got, expected, "{name}: {input:?}");
        checked += 1;
    }
    assert_eq!(checked, 50, "golden files found in {}", dir.display());
}

#[test]
fn xss_prefilter_agrees_with_the_full_detector_on_every_list() {
    let dir = corpora_dir().join("libinjection/data");
    let mut lines = 0;
    for entry in std::fs::read_dir(&dir).expect("libinjection data folder") {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            for input in [line.as_bytes().to_vec(), url_decode(line.as_bytes())] {
                assert_eq!(xss(&input), xss_unfiltered(&input), "{line}");
                lines += 1;
            }
        }
    }
    assert!(lines > 4000, "{lines}");
}

#[test]
fn default_rules_on_the_attack_and_false_positive_lists() {
    let report = run(&corpora_dir().join("libinjection/data"), 1).expect("corpus lists");
    let (sqli_n, sqli_hit) = report.total(Kind::Sqli);
    let (xss_n, xss_hit) = report.total(Kind::Xss);
    let (fp_n, fp_hit) = report.total(Kind::Benign);
    println!("SQLi {sqli_hit}/{sqli_n}, XSS {xss_hit}/{xss_n}, false positives {fp_hit}/{fp_n}");
    assert!(sqli_n > 2000 && xss_n > 40 && fp_n > 200, "lists read");
    assert!(
        sqli_hit * 100 >= sqli_n * 95,
        "SQLi detection {sqli_hit}/{sqli_n}"
    );
    assert!(
        xss_hit * 100 >= xss_n * 95,
        "XSS detection {xss_hit}/{xss_n}"
    );
    // The false-positive list is libinjection's collection of inputs that once tripped it; three
    // `"word" OP "word"` shapes still fingerprint as SQL (see the closing note). This bound
    // catches a regression, it is not the target (0.5%).
    assert!(fp_hit <= 3, "false positives {fp_hit}/{fp_n}");
}
