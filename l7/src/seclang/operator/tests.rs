use std::path::Path;

use super::super::ast::OperatorAst;
use super::{rx::translate, MatchCtx, Operator, OperatorError};

fn op(name: &str, argument: &str) -> Operator {
    try_op(name, argument).unwrap_or_else(|e| panic!("@{name} {argument}: {e}"))
}

fn try_op(name: &str, argument: &str) -> Result<Operator, OperatorError> {
    let negated = name.starts_with('!');
    let ast = OperatorAst {
        name: name.trim_start_matches('!').into(),
        argument: argument.into(),
        negated,
    };
    Operator::compile(&ast, Path::new("/nonexistent"))
}

/// Matches with macros expanded from `vars` (`%{tx.x}` → value), returning the captures.
fn run(o: &Operator, input: &[u8], vars: &[(&str, &str)]) -> (bool, Vec<Vec<u8>>) {
    let expand = |s: &str| {
        let mut out = s.to_string();
        for (k, v) in vars {
            out = out.replace(&format!("%{{{k}}}"), v);
        }
        out
    };
    let mut caps = Vec::new();
    let mut ctx = MatchCtx {
        expand: &expand,
        capture: true,
        captures: &mut caps,
    };
    let hit = o.matches(input, &mut ctx);
    (hit, caps)
}

fn hit(o: &Operator, input: &[u8]) -> bool {
    run(o, input, &[]).0
}

#[test]
fn names_are_case_insensitive_and_unknown_is_reported() {
    assert_eq!(op("RX", "a").name(), "rx");
    // Known aliases: the missing data file is the error, not the name.
    assert!(matches!(
        try_op("PMF", "x"),
        Err(OperatorError::BadArgument(_))
    ));
    assert!(matches!(
        try_op("ipMatchF", "x"),
        Err(OperatorError::BadArgument(_))
    ));
    assert_eq!(op("BeginsWith", "a").name(), "beginsWith");
    for name in ["rbl", "geoLookup"] {
        let o = op(name, "x");
        assert!(o.unavailable());
        let negated = Operator::compile(
            &OperatorAst {
                name: name.into(),
                argument: "x".into(),
                negated: true,
            },
            Path::new("."),
        )
        .unwrap();
        let mut caps = Vec::new();
        let expand = |s: &str| s.to_string();
        let mut ctx = MatchCtx {
            expand: &expand,
            capture: false,
            captures: &mut caps,
        };
        assert!(
            !negated.matches(b"192.0.2.1", &mut ctx),
            "unavailable never matches"
        );
    }
    for name in ["inspectFile", "verifyCC", "gsbLookup", "fuzzyHash"] {
        assert_eq!(
            try_op(name, "x").unwrap_err(),
            OperatorError::Unknown(name.into())
        );
    }
    let msg = OperatorError::Unknown("fuzzyHash".into()).to_string();
    assert!(msg.contains("@fuzzyHash"), "{msg}");
}

#[test]
fn rx_matches_bytes_and_folds_case() {
    let o = op("rx", "(?i)union\\s+select");
    assert!(hit(&o, b"1 UNION  SeLeCt 2"));
    assert!(!hit(&o, b"union all"));
    assert!(!o.uses_fallback());
    // Bytes that are not UTF-8 still match.
    assert!(hit(&op("rx", "\\xff\\xfe"), b"a\xff\xfeb"));
    assert!(hit(&op("rx", "a.b"), b"a\xffb"));
    assert!(!hit(&op("rx", "a.b"), b"a\nb"));
    // A non-ASCII literal in the pattern is its UTF-8 bytes.
    assert!(hit(&op("rx", "é+"), "é".as_bytes()));
    assert!(hit(&op("!rx", "^\\d+$"), b"12a"));
    // PCRE's `$` and `\Z` also match before a final newline (not before an inner one).
    assert!(hit(&op("rx", "^\\d+$"), b"12\n"));
    assert!(!hit(&op("rx", "^\\d+$"), b"12\n\n"));
    assert!(hit(&op("rx", "^a\\Z"), b"a\n"));
    assert!(!op("rx", "^a\\Z").uses_fallback());
    assert!(hit(&op("rx", "^$"), b"\n"));
    // In multiline mode `$` is any line end, as in PCRE.
    assert!(hit(&op("rx", "(?m)^a$"), b"a\nb"));
    assert!(!hit(&op("rx", "^a$"), b"a\nb"));
    assert!(!hit(&op("!rx", "^\\d+$"), b"12"));
}

#[test]
fn rx_captures_whole_match_and_groups() {
    let o = op("rx", "(a+)(x)?(b+)");
    let (ok, caps) = run(&o, b"--aabb--", &[]);
    assert!(ok);
    assert_eq!(
        caps,
        vec![b"aabb".to_vec(), b"aa".to_vec(), vec![], b"bb".to_vec()]
    );
    let many = op("rx", "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)");
    let (_, caps) = run(&many, b"abcdefghijk", &[]);
    assert_eq!(caps.len(), 10);
    assert_eq!(caps[9], b"i");
}

#[test]
fn rx_pcre_only_syntax_falls_back() {
    for (pattern, yes, no) in [
        ("foo(?!bar)", &b"foobaz"[..], &b"foobar"[..]),
        ("(?<=a)b", b"ab", b"cb"),
        ("(a)\\1", b"aa", b"ab"),
        ("(?>a+)b", b"aab", b"aac"),
    ] {
        let o = op("rx", pattern);
        assert!(o.uses_fallback(), "{pattern}");
        assert!(hit(&o, yes), "{pattern}");
        assert!(!hit(&o, no), "{pattern}");
    }
    // Bytes map 1:1 in the fallback (Latin-1 view).
    let o = op("rx", "(\\xff+)(?=z)");
    let (ok, caps) = run(&o, b"a\xff\xffz", &[]);
    assert!(ok);
    assert_eq!(caps[1], b"\xff\xff");
}

#[test]
fn rx_translation_keeps_pcre_meaning() {
    assert_eq!(translate("a{b"), "a\\{b");
    assert_eq!(translate("a{2,3}"), "a{2,3}");
    assert_eq!(translate("[a[b]"), "[a\\[b]");
    assert_eq!(translate("[[:alpha:]&~]"), "[[:alpha:]\\&\\~]");
    assert_eq!(translate("[]a]"), "[\\]a]");
    assert_eq!(translate("\\<x\\>"), "<x>");
    assert_eq!(translate("\\x{41}{2}"), "\\x41{2}");
    assert_eq!(translate("[\\x{e2}-\\x{FF}]"), "[\\xE2-\\xFF]");
    assert_eq!(translate("\\x{100}\\p{L}"), "\\x{100}\\p{L}");
    assert!(hit(&op("rx", "\\x{bc}[^\\x{be}]"), b"\xbcx"));
    assert!(!op("rx", "\\x{bc}").uses_fallback());
    assert_eq!(translate("é"), "\\xC3\\xA9");
    assert_eq!(translate("a$|[$]\\$"), "a(?:\\n?\\z)|[$]\\$");
    assert_eq!(translate("(?im)a$"), "(?im)a$");
    assert_eq!(translate("(?i-m)a$"), "(?i-m)a(?:\\n?\\z)");
    // Truncated escapes do not panic (and the pattern does not compile).
    for bad in ["\\x{", "\\x{4", "\\", "[", "a{", "[[:", "\\p{"] {
        let _ = translate(bad);
        let _ = try_op("rx", bad);
    }
    assert!(hit(&op("rx", "[a[b]+"), b"[[["));
    assert!(hit(&op("rx", "\\<script"), b"<script"));
    assert!(hit(&op("rx", "\\/\\-\\#"), b"/-#"));
    assert!(hit(&op("rx", "a{b}"), b"a{b}"));
}

#[test]
fn rx_bad_pattern_and_macro() {
    assert!(matches!(
        try_op("rx", "(unclosed"),
        Err(OperatorError::BadArgument(_))
    ));
    let o = op("rx", "^%{tx.m}$");
    assert!(run(&o, b"abc", &[("tx.m", "a.c")]).0);
    assert!(!run(&o, b"abc", &[("tx.m", "x")]).0);
    // A quantifier on `%` is not a macro.
    assert!(hit(&op("rx", "^a%{2}$"), b"a%%"));
    // An expansion that does not compile matches nothing.
    assert!(!run(&o, b"abc", &[("tx.m", "(")]).0);
}

#[test]
fn pm_finds_phrases_case_insensitively() {
    let o = op("pm", "foo Bar baz");
    let (ok, caps) = run(&o, b"xxBARxx", &[]);
    assert!(ok);
    assert_eq!(caps, vec![b"BAR".to_vec()]);
    assert!(!hit(&o, b"fo ba"));
    assert!(hit(&op("!pm", "foo"), b"nothing"));
    assert!(matches!(
        try_op("pm", "  "),
        Err(OperatorError::BadArgument(_))
    ));
}

#[test]
fn pm_from_file_reads_and_reports_missing() {
    let dir = std::env::temp_dir().join(format!("rampart-op-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.data"),
        "# comment\n\n  etc/passwd  \nboot.ini\n",
    )
    .unwrap();
    std::fs::write(dir.join("b.data"), "win.ini\n").unwrap();
    std::fs::write(dir.join("ips.txt"), "# nets\n10.0.0.0/8\n2001:db8::/32\n").unwrap();
    let ast = |name: &str, arg: &str| OperatorAst {
        name: name.into(),
        argument: arg.into(),
        negated: false,
    };
    std::fs::write(dir.join("empty.data"), "# nothing yet\n").unwrap();
    let empty = Operator::compile(&ast("pmf", "empty.data"), &dir).unwrap();
    assert!(!hit(&empty, b"anything"));
    let o = Operator::compile(&ast("pmFromFile", "a.data b.data"), &dir).unwrap();
    assert!(hit(&o, b"../../ETC/PASSWD"));
    assert!(hit(&o, b"c:\\win.ini"));
    assert!(!hit(&o, b"# comment"));
    let err = Operator::compile(&ast("pmFromFile", "missing.data"), &dir).unwrap_err();
    assert!(
        matches!(&err, OperatorError::BadArgument(m) if m.contains("missing.data")),
        "{err:?}"
    );
    let ip = Operator::compile(&ast("ipMatchF", "ips.txt"), &dir).unwrap();
    assert!(hit(&ip, b"10.1.2.3"));
    assert!(hit(&ip, b"2001:db8::1"));
    assert!(!hit(&ip, b"11.0.0.1"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn string_operators_are_byte_exact() {
    assert!(hit(&op("streq", "POST"), b"POST"));
    assert!(!hit(&op("streq", "POST"), b"post"));
    assert!(hit(&op("!streq", "POST"), b"GET"));
    assert!(hit(&op("contains", "ab"), b"xaby"));
    assert!(!hit(&op("contains", "ab"), b"xAby"));
    assert!(hit(&op("beginsWith", "/adm"), b"/admin"));
    assert!(!hit(&op("beginsWith", "/adm"), b"x/admin"));
    assert!(hit(&op("endsWith", ".pdf"), b"a.pdf"));
    assert!(!hit(&op("endsWith", ".pdf"), b"a.pdfx"));
    assert!(hit(&op("!endsWith", ".pdf"), b"a.pdfx"));
    assert!(hit(&op("strmatch", "WebZIP"), b"x WebZIP y"));
    assert!(!hit(&op("strmatch", "WebZIP"), b"webzip"));
    let w = op("containsWord", "select");
    assert!(hit(&w, b"1 select 2"));
    assert!(hit(&w, b"(select)"));
    assert!(hit(&w, b"selectx select"));
    assert!(!hit(&w, b"selected"));
    assert!(!hit(&w, b"_select"));
}

#[test]
fn string_operators_expand_macros() {
    let vars = [
        ("tx.allowed_methods", "GET HEAD POST OPTIONS"),
        ("TX.2", "abc"),
    ];
    let within = op("!within", "%{tx.allowed_methods}");
    assert!(!run(&within, b"GET", &vars).0);
    assert!(run(&within, b"DELETE", &vars).0);
    assert!(run(&op("within", "GET POST"), b"POST", &[]).0);
    assert!(run(&op("streq", "%{TX.2}"), b"abc", &vars).0);
    assert!(!run(&op("streq", "%{TX.2}"), b"abd", &vars).0);
    assert!(run(&op("contains", "-%{TX.2}-"), b"x-abc-y", &vars).0);
}

#[test]
fn numbers_parse_like_modsecurity() {
    assert!(hit(&op("eq", "0"), b""));
    assert!(hit(&op("eq", "0"), b"abc"));
    assert!(hit(&op("eq", "12"), b"  12abc"));
    assert!(hit(&op("eq", "-3"), b"-3"));
    assert!(hit(&op("!eq", "0"), b"1"));
    assert!(hit(&op("lt", "1"), b"0"));
    assert!(!hit(&op("lt", "1"), b"1"));
    assert!(hit(&op("le", "1"), b"1"));
    assert!(hit(&op("gt", "100"), b"101"));
    assert!(!hit(&op("gt", "100"), b"100"));
    assert!(hit(&op("ge", "4"), b"4"));
    assert!(!hit(&op("ge", "4"), b"3"));
    assert!(hit(&op("gt", "1"), b"99999999999999999999999"));
    let vars = [("tx.paranoia_level", "2"), ("tx.t", " 5x")];
    let lt = op("lt", "%{tx.paranoia_level}");
    assert!(run(&lt, b"1", &vars).0);
    assert!(!run(&lt, b"2", &vars).0);
    assert!(run(&op("ge", "%{tx.t}"), b"5", &vars).0);
    assert!(matches!(
        try_op("eq", "abc"),
        Err(OperatorError::BadArgument(_))
    ));
    assert!(matches!(
        try_op("lt", ""),
        Err(OperatorError::BadArgument(_))
    ));
}

#[test]
fn ip_match_takes_addresses_and_cidrs() {
    let o = op(
        "ipMatch",
        "127.0.0.1,::1 192.168.0.0/16, 2001:db8::/32,0.0.0.0/0",
    );
    assert!(hit(&o, b"127.0.0.1"));
    assert!(hit(&o, b"::1"));
    assert!(hit(&o, b"2001:db8:1::5"));
    assert!(!hit(&o, b"2001:db9::5"));
    assert!(hit(&o, b"8.8.8.8")); // 0.0.0.0/0
    let o = op("ipMatch", "192.168.0.0/16,10.1.2.3");
    assert!(hit(&o, b"192.168.255.1"));
    assert!(!hit(&o, b"192.169.0.1"));
    assert!(hit(&o, b"::ffff:10.1.2.3"));
    assert!(!hit(&o, b"10.1.2.4"));
    assert!(!hit(&o, b"not an ip"));
    assert!(hit(&op("!ipMatch", "10.0.0.0/8"), b"11.0.0.1"));
    assert!(hit(&op("ipMatch", "::/0"), b"fe80::1"));
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "1.2.3",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "",
    ] {
        assert!(
            matches!(try_op("ipMatch", bad), Err(OperatorError::BadArgument(_))),
            "{bad}"
        );
    }
}

#[test]
fn validate_operators() {
    let r = op("validateByteRange", "9,10,13,32-126");
    assert!(!hit(&r, b"hello world\r\n"));
    assert!(hit(&r, b"hello\x00"));
    assert!(hit(&r, b"\xff"));
    assert!(hit(&op("validateByteRange", "1-255"), b"a\x00b"));
    assert!(!hit(&op("validateByteRange", "1-255"), b"a\xffb"));
    assert!(!hit(&op("!validateByteRange", "1-255"), b"a\x00b"));
    for bad in ["", "1-", "300", "5-3", "a"] {
        assert!(
            matches!(
                try_op("validateByteRange", bad),
                Err(OperatorError::BadArgument(_))
            ),
            "{bad}"
        );
    }
    let u = op("validateUrlEncoding", "");
    assert!(!hit(&u, b"a%20b%7e"));
    assert!(hit(&u, b"a%2"));
    assert!(hit(&u, b"a%zz"));
    assert!(hit(&u, b"%"));
    let u8 = op("validateUtf8Encoding", "");
    assert!(!hit(&u8, "héllo".as_bytes()));
    assert!(hit(&u8, b"\xc0\xaf")); // overlong '/'
    assert!(hit(&u8, b"\xed\xa0\x80")); // surrogate
    assert!(hit(&u8, b"a\xe9"));
}

#[test]
fn detectors_and_constants() {
    let s = op("detectSQLi", "");
    let (ok, caps) = run(&s, b"1' OR '1'='1", &[]);
    assert!(ok);
    assert_eq!(
        caps,
        vec![rampart_rules::lang::detect::sqli_fingerprint(b"1' OR '1'='1").into_bytes()]
    );
    assert!(!caps[0].is_empty());
    assert!(!hit(&s, b"hello world"));
    let x = op("detectXSS", "");
    assert!(hit(&x, b"<script>alert(1)</script>"));
    assert!(!hit(&x, b"hello world"));
    assert!(hit(&op("unconditionalMatch", ""), b""));
    assert!(!hit(&op("!unconditionalMatch", ""), b""));
    assert!(!hit(&op("noMatch", ""), b"x"));
    assert!(hit(&op("!noMatch", ""), b"x"));
}

#[test]
fn capture_off_leaves_captures_alone() {
    let o = op("rx", "(a)");
    let expand = |s: &str| s.to_string();
    let mut caps = vec![b"keep".to_vec()];
    let mut ctx = MatchCtx {
        expand: &expand,
        capture: false,
        captures: &mut caps,
    };
    assert!(o.matches(b"a", &mut ctx));
    assert_eq!(caps, vec![b"keep".to_vec()]);
}

#[test]
fn operators_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Operator>();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// No pattern makes translation or compilation panic, and no input makes matching panic.
    #[test]
    fn rx_never_panics(
        pattern in "[\\\\a-z(){}\\[\\]^$:?!<=>|*+.,0-9xpPZé-]{0,16}",
        input in proptest::collection::vec(proptest::num::u8::ANY, 0..32),
    ) {
        let _ = translate(&pattern);
        if let Ok(o) = try_op("rx", &pattern) {
            let _ = run(&o, &input, &[]);
        }
    }

    #[test]
    fn other_operators_never_panic(
        arg in "[ ,0-9a-f:./%{}-]{0,24}",
        input in proptest::collection::vec(proptest::num::u8::ANY, 0..32),
    ) {
        for name in ["pm", "streq", "contains", "beginsWith", "endsWith", "containsWord", "within",
            "eq", "lt", "ipMatch", "validateByteRange", "validateUrlEncoding",
            "validateUtf8Encoding", "detectSQLi", "detectXSS"] {
            if let Ok(o) = try_op(name, &arg) {
                let _ = run(&o, &input, &[]);
            }
        }
    }
}
