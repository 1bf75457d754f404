//! Rule files end to end: the design example loads and compiles where expected; every kind of
//! mistake gives a distinct error naming file, line and column with a caret under the text.

use std::path::Path;

use rampart_rules::{load_str, RuleErrorKind, Target};

const EXAMPLE: &str = r#"version: 1
lists:
  office: { kind: ip, items: ["198.51.100.0/24", "2001:db8:10::/48"] }
  bad_asns_ports: { kind: int, items: [19, 123, 1900, 11211] }
rules:
  - id: 1001
    ref: ntp-reflection
    expression: udp.srcport in $bad_asns_ports and ip.len gt 400
    action: drop
  - id: 1002
    ref: syn-with-payload
    expression: tcp.flags.syn and not tcp.flags.ack and ip.len gt 120
    action: drop
    mode: log
  - id: 1003
    ref: per-source-udp-limit
    expression: ip.proto eq "udp" and ip.dst in {203.0.113.0/24}
    action: rate_limit
    rate_limit: { key: [ip.src], packets_per_second: 5000, burst: 10000 }
  - id: 2001
    ref: admin-from-office-only
    expression: starts_with(http.request.uri.path, "/admin") and not ip.src in $office
    action: block
  - id: 2099
    ref: anomaly-threshold
    expression: waf.score ge 5
    action: block
  - id: 2100
    ref: login-bruteforce
    expression: http.request.method eq "POST" and http.request.uri.path eq "/login"
    action: ratelimit
    ratelimit: { characteristics: [ip.src], period: 60, requests_per_period: 5, mitigation_timeout: 600 }
"#;

#[test]
fn the_design_example_compiles_to_xdp_and_l7() {
    let set = load_str(EXAMPLE, "example.yaml", Path::new(".")).unwrap();
    let target = |id: u32| {
        set.rules
            .iter()
            .find(|r| r.id == id)
            .unwrap()
            .target
            .clone()
    };
    assert_eq!(target(1001), Target::Xdp { entries: 1 });
    assert_eq!(target(1002), Target::Xdp { entries: 1 });
    assert_eq!(target(1003), Target::Xdp { entries: 1 });
    assert_eq!(
        set.l7_rules().map(|r| r.id).collect::<Vec<_>>(),
        vec![2001, 2099, 2100]
    );
    assert_eq!(set.xdp.rule_count(), 3);
}

/// Loads `rules` (the YAML under `rules:`) and returns the error's kind, position and text.
fn error(rules: &str) -> (RuleErrorKind, usize, usize, String) {
    let text =
        format!("version: 1\nlists:\n  ports: {{ kind: int, items: [53] }}\nrules:\n{rules}");
    let e = load_str(&text, "bad.yaml", Path::new(".")).unwrap_err();
    (e.kind().clone(), e.line(), e.column(), e.to_string())
}

#[test]
fn each_mistake_has_its_own_error_with_a_caret() {
    let (k, line, col, text) =
        error("  - id: 1\n    expression: tcp.dstprot eq 80\n    action: drop\n");
    assert!(matches!(
        k,
        RuleErrorKind::Expr(rampart_rules::lang::ErrorKind::UnknownField { .. })
    ));
    assert_eq!((line, col), (6, 17));
    assert_eq!(
        text,
        "bad.yaml:6:17: error: unknown field `tcp.dstprot` (did you mean tcp.dstport?)\n  tcp.dstprot eq 80\n  ^^^^^^^^^^^"
    );

    let (k, line, col, text) =
        error("  - id: 1\n    expression: \"tcp.dstport eq \\\"http\\\"\"\n    action: drop\n");
    assert!(
        matches!(
            k,
            RuleErrorKind::Expr(rampart_rules::lang::ErrorKind::Type { .. })
        ),
        "{text}"
    );
    assert_eq!((line, col), (6, 33));
    assert!(text.contains("cannot compare int with bytes"), "{text}");

    let (k, _, _, text) =
        error("  - id: 1\n    expression: udp.dstport in $nope\n    action: drop\n");
    assert!(matches!(
        k,
        RuleErrorKind::Expr(rampart_rules::lang::ErrorKind::UnknownList { .. })
    ));
    assert!(
        text.contains("unknown list `$nope`") && text.contains("^^^^^"),
        "{text}"
    );

    let (k, line, _, text) = error("  - id: 7\n    expression: ip.ttl lt 2\n    action: drop\n  - id: 7\n    expression: ip.ttl lt 3\n    action: drop\n");
    assert_eq!(
        k,
        RuleErrorKind::DuplicateId {
            id: 7,
            first_line: 5
        }
    );
    assert_eq!(line, 8);
    assert!(text.contains("rule id 7 is already used on line 5"));

    let (k, _, _, text) =
        error("  - id: 1\n    expression: ip.src in {10.0.0.1/8}\n    action: drop\n");
    assert!(matches!(
        k,
        RuleErrorKind::Expr(rampart_rules::lang::ErrorKind::BadAddr { .. })
    ));
    assert!(text.contains("did you mean 10.0.0.0/8?"), "{text}");

    let (k, _, _, text) =
        error("  - id: 1\n    expression: http.host matches \"(a)\\\\1\"\n    action: block\n");
    assert!(
        matches!(
            k,
            RuleErrorKind::Expr(rampart_rules::lang::ErrorKind::BadRegex { .. })
        ),
        "{text}"
    );

    let big = (0..10_001)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let (k, _, _, _) = error(&format!(
        "  - id: 1\n    expression: ip.ttl in {{{big}}}\n    action: drop\n"
    ));
    assert!(matches!(
        k,
        RuleErrorKind::Expr(rampart_rules::lang::ErrorKind::SetTooLarge { count: 10_001, .. })
    ));

    let (k, _, _, text) = error("  - id: 1\n    expression: ip.ttl lt 2\n    action: obliterate\n");
    assert!(matches!(k, RuleErrorKind::UnknownAction { .. }));
    assert!(text.contains("unknown action `obliterate`"), "{text}");

    let (k, _, _, text) =
        error("  - id: 1\n    expression: http.host eq \"a\"\n    action: drop\n");
    assert!(matches!(k, RuleErrorKind::Action { .. }));
    assert!(text.contains("`drop` is an L3/L4 action"), "{text}");

    let (k, _, _, text) =
        error("  - id: 1\n    expression: len(payload) gt 10\n    action: drop\n");
    assert!(matches!(k, RuleErrorKind::Xdp { .. }));
    assert!(
        text.contains("the XDP back end refuses this rule: the function `len`"),
        "{text}"
    );

    let (k, _, _, text) = error("  - id: 1\n    expresion: ip.ttl lt 2\n    action: drop\n");
    assert!(matches!(k, RuleErrorKind::Schema { .. }), "{text}");
    assert!(text.contains("expresion"), "{text}");

    let (k, _, _, _) = error("  - id: 1\n    expression: (ip.ttl lt 2\n    action: drop\n");
    assert!(matches!(
        k,
        RuleErrorKind::Expr(rampart_rules::lang::ErrorKind::Expected { .. })
    ));

    let e = load_str("version: 2\nrules: []\n", "v.yaml", Path::new(".")).unwrap_err();
    assert_eq!(*e.kind(), RuleErrorKind::Version { found: 2 });
    let e = load_str("version: 1\nrules: [\n", "y.yaml", Path::new(".")).unwrap_err();
    assert!(matches!(e.kind(), RuleErrorKind::Yaml { .. }), "{e}");
}

#[test]
fn list_files_load_with_comments_and_report_bad_lines() {
    let dir = std::env::temp_dir().join(format!("rampart-lists-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.txt"),
        "# blocked networks\n192.0.2.0/24\n\n198.51.100.0/24  # partner\n",
    )
    .unwrap();
    let text = "version: 1\nlists:\n  bad: { kind: ip, file: bad.txt }\nrules:\n  - id: 1\n    expression: ip.src in $bad\n    action: drop\n";
    let set = load_str(text, "r.yaml", &dir).unwrap();
    assert_eq!(set.xdp_entries[0].src.as_ref().unwrap().len(), 2);
    std::fs::write(dir.join("bad.txt"), "192.0.2.0/24\n10.0.0.1/8\n").unwrap();
    let e = load_str(text, "r.yaml", &dir).unwrap_err();
    assert!(e.file().ends_with("bad.txt") && e.line() == 2, "{e}");
    assert!(
        e.to_string()
            .contains("list `bad`: `10.0.0.1/8` is not a valid prefix"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn schema_mistakes_point_at_the_rule_and_ratelimits_are_checked() {
    let (k, line, col, text) = error("  - id: 1\n    expression: ip.ttl lt 2\n    action: drop\n  - id: 2\n    expresion: ip.ttl lt 3\n    action: drop\n");
    assert!(matches!(k, RuleErrorKind::Schema { .. }));
    assert_eq!((line, col), (9, 5), "{text}");
    assert!(text.contains("at `rules[1].expresion`"), "{text}");
    let (_, line, _, text) = error("  - id: 1\n    expression: ip.ttl lt 2\n");
    assert!(
        text.contains("missing field `action`") && line == 5,
        "{text}"
    );
    let rl = |body: &str| {
        error(&format!("  - id: 1\n    expression: http.host eq \"a\"\n    action: ratelimit\n    ratelimit: {{ {body} }}\n"))
    };
    let (k, _, _, text) = rl("characteristics: [ip.src, foo], period: 60, requests_per_period: 5");
    assert!(
        matches!(k, RuleErrorKind::Action { .. }) && text.contains("`foo` is not a request field"),
        "{text}"
    );
    let (_, _, _, text) = rl("characteristics: [\"http.request.headers[\\\"x-key\\\"]\"], period: 60, requests_per_period: 5, counting_expression: \"((((\"");
    assert!(text.contains("counting_expression"), "{text}");
    let (_, _, _, text) = rl("characteristics: [ip.src], period: 0, requests_per_period: 5");
    assert!(text.contains("must be above 0"), "{text}");
}

#[test]
fn ipv6_literals_slices_and_regex_errors() {
    use rampart_rules::lang::{compile_expr, Lists};
    for ok in [
        "ip.src eq ::1",
        "ip.src in {::/0}",
        "ip.src in {::ffff:10.0.0.0/104 2001:db8::/32}",
    ] {
        compile_expr(ok, &Lists::new()).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
    let k = compile_expr("payload[0:4] eq \"GET\"", &Lists::new()).unwrap_err();
    assert!(
        k.to_string()
            .contains("the slice [0:4] is 4 bytes and the string is 3"),
        "{k}"
    );
    let k = compile_expr("http.host matches \"(a)\\\\1\"", &Lists::new()).unwrap_err();
    assert!(
        k.to_string().to_lowercase().contains("backreference"),
        "{k}"
    );
}

#[test]
fn list_files_stay_beside_the_rule_file_and_long_lines_are_cut() {
    let text =
        |f: &str| format!("version: 1\nlists:\n  x: {{ kind: ip, file: \"{f}\" }}\nrules: []\n");
    for bad in ["/etc/passwd", "../x.txt", "/dev/zero"] {
        let e = load_str(&text(bad), "r.yaml", Path::new("/tmp")).unwrap_err();
        assert!(
            e.to_string()
                .contains("relative to the rule file's directory"),
            "{bad}: {e}"
        );
    }
    let dir = std::env::temp_dir();
    let e = load_str(&text("."), "r.yaml", &dir).unwrap_err();
    assert!(
        e.to_string().contains("relative") || e.to_string().contains("not a regular file"),
        "{e}"
    );
    let items = (0..5000)
        .map(|i| format!("\"10.{}.{}.0/24\"", i / 256, i % 256))
        .collect::<Vec<_>>()
        .join(", ");
    let long = format!(
        "version: 1\nlists:\n  x: {{ kind: ip, items: [{items}, \"10.0.0.1/8\"] }}\nrules: []\n"
    );
    let e = load_str(&long, "r.yaml", Path::new(".")).unwrap_err();
    assert!(
        e.snippet().len() < 400,
        "snippet of {} bytes",
        e.snippet().len()
    );
    assert!(e.snippet().contains("10.0.0.1/8"), "{}", e.snippet());
}

/// Issue 17 item 15: a YAML syntax error is reported where it is (not at 1:1), with the caret.
#[test]
fn yaml_syntax_errors_point_at_their_place() {
    let text = "version: 1\nrules:\n  - id: 1\n    expression: ip.ttl lt 2\n    action: drop\n  - id: 2\n    expression: \"unterminated\n    action: drop\n";
    let e = load_str(text, "syn.yaml", Path::new(".")).unwrap_err();
    assert!(matches!(e.kind(), RuleErrorKind::Yaml { .. }), "{e}");
    assert_eq!((e.line(), e.column()), (7, 17), "{e}");
    assert!(
        e.snippet()
            .starts_with("      expression: \"unterminated\n"),
        "{e}"
    );
    assert!(e.snippet().ends_with("                 ^"), "{e:?}");
    let text = "version: 1\nrules:\n  - id: 1\n    expression: ip.ttl lt 2\n    action: drop\n   - id: 2\n";
    let e = load_str(text, "indent.yaml", Path::new(".")).unwrap_err();
    assert_eq!((e.line(), e.column()), (6, 4), "{e}");
    assert!(
        e.to_string()
            .starts_with("indent.yaml:6:4: error: not valid YAML: "),
        "{e}"
    );
}

/// Issue 17 item 15: a repeated key is refused at the repeat (it used to take the last value:
/// this rule was an `allow`).
#[test]
fn repeated_yaml_keys_are_refused() {
    let text = "version: 1\nrules:\n  - id: 1\n    expression: ip.ttl lt 2\n    action: drop\n    action: allow\n";
    let e = load_str(text, "dup.yaml", Path::new(".")).unwrap_err();
    assert!(matches!(e.kind(), RuleErrorKind::Yaml { .. }), "{e}");
    assert_eq!((e.line(), e.column()), (6, 5), "{e}");
    assert!(
        e.to_string()
            .contains("key `action` is repeated (first on line 5)"),
        "{e}"
    );
    // In the lists mapping and at the top level too.
    let text = "version: 1\nlists:\n  a: { kind: ip, items: [\"192.0.2.1\"] }\n  a: { kind: ip, items: [] }\nrules: []\n";
    let e = load_str(text, "dup.yaml", Path::new(".")).unwrap_err();
    assert_eq!(e.line(), 4, "{e}");
    let e = load_str("version: 1\nversion: 1\n", "dup.yaml", Path::new(".")).unwrap_err();
    assert_eq!(e.line(), 2, "{e}");
}

/// Issue 17 item 15: id 0 is the engine's, and a default rule's id may not be reused beside
/// the default rules.
#[test]
fn reserved_and_default_rule_ids_are_refused() {
    let text = "version: 1\nrules:\n  - id: 0\n    expression: ip.ttl lt 2\n    action: drop\n";
    let e = load_str(text, "zero.yaml", Path::new(".")).unwrap_err();
    assert_eq!(*e.kind(), RuleErrorKind::ZeroId);
    assert_eq!((e.line(), e.column()), (3, 9), "{e}");

    let waf = rampart_rules::default_waf();
    let text = "version: 1\nrules:\n  - id: 5\n    expression: http.host eq \"a\"\n    action: block\n  - id: 900100\n    expression: http.host eq \"b\"\n    action: block\n";
    let site = load_str(text, "site.yaml", Path::new(".")).unwrap();
    let e = rampart_rules::check_ids_beside(&site, text, &waf).unwrap_err();
    assert!(
        matches!(e.kind(), RuleErrorKind::IdOfOther { id: 900100, .. }),
        "{e}"
    );
    assert_eq!((e.line(), e.column()), (6, 9), "{e}");
    assert!(e.to_string().contains("taken by rule `sqli-args`"), "{e}");
    assert!(e.snippet().ends_with("^^^^^^"), "{e}");
    // Ids the default rules do not use pass, even in their range.
    let text = "version: 1\nrules:\n  - id: 950000\n    expression: http.host eq \"a\"\n    action: block\n";
    let site = load_str(text, "site.yaml", Path::new(".")).unwrap();
    rampart_rules::check_ids_beside(&site, text, &waf).unwrap();
    assert!(rampart_rules::DEFAULT_RULE_IDS.contains(&950000));
    // The default rules are in their own range.
    assert!(waf
        .rules
        .iter()
        .all(|r| rampart_rules::DEFAULT_RULE_IDS.contains(&r.id)));
}
