use std::path::Path;

use super::*;
use crate::seclang::ast::{ActionAst, IdRange, Selector, Target};

fn parse(text: &str) -> Vec<Directive> {
    parse_str(text, "t.conf", Path::new("/nonexistent")).unwrap_or_else(|e| panic!("{e}"))
}

fn one(text: &str) -> Directive {
    let mut all = parse(text);
    assert_eq!(all.len(), 1, "{all:?}");
    all.pop().unwrap()
}

fn rule(text: &str) -> RuleAst {
    match one(text) {
        Directive::Rule(r) => r,
        other => panic!("not a rule: {other:?}"),
    }
}

/// The error's kind and `line:column`.
fn fails(text: &str) -> (SecLangErrorKind, String) {
    let e = parse_str(text, "t.conf", Path::new("/nonexistent")).unwrap_err();
    let at = e.location();
    assert_eq!(&*at.file, "t.conf");
    (e.kind(), format!("{}:{}", at.line, at.column))
}

fn target(collection: &str, selector: Selector, negated: bool, count: bool) -> Target {
    Target {
        collection: collection.into(),
        selector,
        negated,
        count,
    }
}

fn key(k: &str) -> Selector {
    Selector::Key(k.into())
}

fn action(name: &str, argument: Option<&str>) -> ActionAst {
    ActionAst {
        name: name.into(),
        argument: argument.map(Into::into),
    }
}

use SecLangErrorKind::*;

#[test]
fn comments_blank_lines_crlf_and_locations() {
    let all = parse("# c\r\n\r\n   # indented comment\r\n  SecMarker A\r\nSecMarker \"B\"\r\n");
    assert_eq!(all.len(), 2);
    let Directive::Marker { name, location } = &all[0] else {
        panic!()
    };
    assert_eq!((name.as_str(), location.line, location.column), ("A", 4, 3));
    assert_eq!(location.to_string(), "t.conf:4:3");
    assert!(matches!(&all[1], Directive::Marker { name, .. } if name == "B"));
}

#[test]
fn continuations_join_lines_and_keep_positions() {
    let r = rule("\nSecRule ARGS \"@rx a\" \\\r\n    \"id:1,\\\n    phase:2,\\\n    msg:'x'\"\n");
    assert_eq!(r.location.line, 2);
    assert_eq!(r.location.column, 1);
    let names: Vec<_> = r.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["id", "phase", "msg"]);
    // An error on a continuation line is located on that physical line.
    assert_eq!(
        fails("SecRule ARGS \\\n  \"@rx a\" \\\n   \"id:'1\""),
        (Syntax, "3:4".into())
    );
}

#[test]
fn continuation_at_end_of_file_is_an_error() {
    assert_eq!(
        fails("SecMarker A\nSecMarker B \\"),
        (Syntax, "2:13".into())
    );
}

#[test]
fn quoted_strings_unescape_only_double_quotes() {
    let r = rule(r#"SecRule ARGS "@rx \d+\\\"x\" \/" "id:1""#);
    assert_eq!(r.operator.argument, r#"\d+\\"x" \/"#);
    let r = rule(r#"SecRule ARGS "@rx a\\" "id:2""#);
    assert_eq!(r.operator.argument, r"a\\");
}

#[test]
fn unterminated_double_quote_is_located_at_the_quote() {
    assert_eq!(
        fails("SecMarker A\n  SecRule ARGS \"@rx a"),
        (Syntax, "2:16".into())
    );
}

#[test]
fn directive_names_are_case_insensitive() {
    assert!(matches!(one("secmarker X"), Directive::Marker { .. }));
    assert!(matches!(
        one("SECRULEENGINE on"),
        Directive::RuleEngine {
            mode: EngineMode::On,
            ..
        }
    ));
}

#[test]
fn secrule_with_and_without_actions() {
    let r = rule("SecRule REQUEST_HEADERS:User-Agent \"@pm curl wget\" \"id:10,deny\"");
    assert_eq!(
        r.targets,
        [target("REQUEST_HEADERS", key("User-Agent"), false, false)]
    );
    assert_eq!(r.operator.name, "pm");
    assert_eq!(r.operator.argument, "curl wget");
    assert_eq!(r.actions, [action("id", Some("10")), action("deny", None)]);
    let r = rule("SecRule ARGS foo");
    assert!(r.actions.is_empty());
    assert_eq!(
        (r.operator.name.as_str(), r.operator.argument.as_str()),
        ("rx", "foo")
    );
}

#[test]
fn secrule_argument_count_errors() {
    assert_eq!(fails("  SecRule ARGS"), (Syntax, "1:3".into()));
    assert_eq!(fails("SecRule ARGS a b extra"), (Syntax, "1:18".into()));
}

#[test]
fn secaction_is_an_unconditional_rule() {
    let r = rule("SecAction \"id:900990,phase:1,pass,nolog,setvar:tx.crs_setup_version=400\"");
    assert!(r.targets.is_empty());
    assert_eq!(r.operator.name, "unconditionalMatch");
    assert_eq!(r.operator.argument, "");
    assert!(!r.operator.negated);
    assert_eq!(
        r.actions[4],
        action("setvar", Some("tx.crs_setup_version=400"))
    );
}

#[test]
fn targets_from_crs() {
    let r = rule(r#"SecRule ARGS|ARGS_NAMES|REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|XML:/* "x""#);
    assert_eq!(
        r.targets,
        [
            target("ARGS", Selector::All, false, false),
            target("ARGS_NAMES", Selector::All, false, false),
            target("REQUEST_COOKIES", Selector::All, false, false),
            target(
                "REQUEST_COOKIES",
                Selector::Regex("__utm".into()),
                true,
                false
            ),
            target("XML", key("/*"), false, false),
        ]
    );
    let r = rule("SecRule &REQUEST_HEADERS:Host|tx:/^HEADER_NAME_/|XML://@* x");
    assert_eq!(
        r.targets[0],
        target("REQUEST_HEADERS", key("Host"), false, true)
    );
    assert_eq!(
        r.targets[1],
        target("TX", Selector::Regex("^HEADER_NAME_".into()), false, false)
    );
    assert_eq!(r.targets[2], target("XML", key("//@*"), false, false));
}

#[test]
fn target_pipes_inside_regex_and_quotes_do_not_split() {
    let r = rule(r#"SecRule "REQUEST_COOKIES:/^(?:a|b)$/ | ARGS:'x|y' | !&MATCHED_VARS" x"#);
    assert_eq!(
        r.targets,
        [
            target(
                "REQUEST_COOKIES",
                Selector::Regex("^(?:a|b)$".into()),
                false,
                false
            ),
            target("ARGS", key("x|y"), false, false),
            target("MATCHED_VARS", Selector::All, true, true),
        ]
    );
    let r = rule(r"SecRule ARGS:/a\/|b/|FILES_NAMES x");
    assert_eq!(r.targets[0].selector, Selector::Regex(r"a\/|b".into()));
    assert_eq!(r.targets[1].collection, "FILES_NAMES");
}

#[test]
fn bad_targets_are_syntax_errors_at_the_targets() {
    assert_eq!(fails("SecRule ARGS||ARGS_NAMES x"), (Syntax, "1:9".into()));
    assert_eq!(fails("SecRule  \"ARGS|\" x"), (Syntax, "1:10".into()));
    assert_eq!(fails("SecRule ARGS: x"), (Syntax, "1:9".into()));
    assert_eq!(fails("SecRule :foo x"), (Syntax, "1:9".into()));
    assert_eq!(fails("SecRule ARGS:'foo x"), (Syntax, "1:9".into()));
}

#[test]
fn operators() {
    let op = |s: &str| rule(&format!("SecRule ARGS \"{s}\"")).operator;
    let o = op("!@eq 0");
    assert_eq!(
        (o.name.as_str(), o.argument.as_str(), o.negated),
        ("eq", "0", true)
    );
    let o = op("  @rx  a b ");
    assert_eq!((o.name.as_str(), o.argument.as_str()), ("rx", " a b "));
    let o = op("@detectSQLi");
    assert_eq!((o.name.as_str(), o.argument.as_str()), ("detectSQLi", ""));
    let o = op("!^(?:GET|HEAD)$");
    assert_eq!(
        (o.name.as_str(), o.argument.as_str(), o.negated),
        ("rx", "^(?:GET|HEAD)$", true)
    );
    let o = op("@pmFromFile scanners-user-agents.data");
    assert_eq!(o.argument, "scanners-user-agents.data");
    assert_eq!(fails("SecRule ARGS \"!@ x\""), (Syntax, "1:14".into()));
}

#[test]
fn actions_with_colons_quotes_and_case() {
    let r = rule(concat!(
        r#"SecRule ARGS x "ID:1, T:none ,ctl:ruleRemoveTargetById=942100;ARGS:foo,"#,
        r#"setvar:'tx.anomaly_score_pl1=+%{tx.critical_anomaly_score}',msg:'Foo: bar, baz',"#,
        r#"logdata:'Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}',"#,
        r#"tag:'it\'s',chain""#
    ));
    assert_eq!(
        r.actions,
        [
            action("id", Some("1")),
            action("t", Some("none")),
            action("ctl", Some("ruleRemoveTargetById=942100;ARGS:foo")),
            action(
                "setvar",
                Some("tx.anomaly_score_pl1=+%{tx.critical_anomaly_score}")
            ),
            action("msg", Some("Foo: bar, baz")),
            action(
                "logdata",
                Some("Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}")
            ),
            action("tag", Some("it's")),
            action("chain", None),
        ]
    );
}

#[test]
fn empty_actions_are_skipped() {
    let r = rule("SecAction \"id:1,,pass,\"");
    assert_eq!(r.actions, [action("id", Some("1")), action("pass", None)]);
    assert!(rule("SecAction \"\"").actions.is_empty());
}

#[test]
fn bad_actions_are_syntax_errors() {
    assert_eq!(
        fails("SecAction \"id:1,msg:'oops\""),
        (Syntax, "1:11".into())
    );
    assert_eq!(
        fails("SecAction \"id:1,msg:'a' b\""),
        (Syntax, "1:11".into())
    );
    assert_eq!(fails("SecAction  \":x\""), (Syntax, "1:12".into()));
}

#[test]
fn marker_default_action_signature() {
    let all = parse("SecMarker \"END-942\"\nSecDefaultAction \"phase:2,log,pass\"\nSecComponentSignature \"OWASP_CRS/4.0\"");
    assert!(matches!(&all[0], Directive::Marker { name, .. } if name == "END-942"));
    let Directive::DefaultAction { actions, location } = &all[1] else {
        panic!()
    };
    assert_eq!(actions.len(), 3);
    assert_eq!(location.line, 2);
    assert!(
        matches!(&all[2], Directive::ComponentSignature { value, .. } if value == "OWASP_CRS/4.0")
    );
    assert_eq!(fails("SecMarker"), (Syntax, "1:1".into()));
}

#[test]
fn rule_engine_modes() {
    for (text, mode) in [
        ("On", EngineMode::On),
        ("off", EngineMode::Off),
        ("detectiononly", EngineMode::DetectionOnly),
    ] {
        assert!(
            matches!(one(&format!("SecRuleEngine {text}")), Directive::RuleEngine { mode: m, .. } if m == mode)
        );
    }
    assert_eq!(fails("SecRuleEngine  Maybe"), (BadArgument, "1:16".into()));
}

#[test]
fn remove_by_id_tag_msg() {
    let Directive::RemoveById { ids, .. } = one("SecRuleRemoveById 1 2,3 , 100-200 \"5-6\"") else {
        panic!()
    };
    let r = |first, last| IdRange { first, last };
    assert_eq!(ids, [r(1, 1), r(2, 2), r(3, 3), r(100, 200), r(5, 6)]);
    assert_eq!(
        fails("SecRuleRemoveById 1 x2"),
        (BadArgument, "1:21".into())
    );
    assert_eq!(fails("SecRuleRemoveById 9-3"), (BadArgument, "1:19".into()));
    assert_eq!(fails("SecRuleRemoveById ,"), (BadArgument, "1:19".into()));
    assert!(
        matches!(one("SecRuleRemoveByTag \"attack-sqli\""), Directive::RemoveByTag { tag, .. } if tag == "attack-sqli")
    );
    assert!(
        matches!(one("SecRuleRemoveByMsg 'x'"), Directive::RemoveByMsg { msg, .. } if msg == "'x'")
    );
}

#[test]
fn update_target_by_id_and_tag() {
    let d = one("SecRuleUpdateTargetById 942100,942101 \"!ARGS:foo|!REQUEST_COOKIES:/^x/\"");
    let Directive::UpdateTargetById {
        ids,
        targets,
        replaced,
        ..
    } = d
    else {
        panic!()
    };
    assert_eq!(
        ids,
        [
            IdRange {
                first: 942100,
                last: 942100
            },
            IdRange {
                first: 942101,
                last: 942101
            }
        ]
    );
    assert_eq!(targets[0], target("ARGS", key("foo"), true, false));
    assert_eq!(replaced, None);
    let d = one("SecRuleUpdateTargetById 1-5 ARGS:a ARGS");
    let Directive::UpdateTargetById { ids, replaced, .. } = d else {
        panic!()
    };
    assert_eq!(ids, [IdRange { first: 1, last: 5 }]);
    assert_eq!(
        replaced,
        Some(vec![target("ARGS", Selector::All, false, false)])
    );
    let d = one("SecRuleUpdateTargetByTag attack-sqli \"!ARGS:pw\"");
    let Directive::UpdateTargetByTag { tag, targets, .. } = d else {
        panic!()
    };
    assert_eq!((tag.as_str(), targets.len()), ("attack-sqli", 1));
    assert_eq!(
        fails("SecRuleUpdateTargetByTag a ARGS ARGS"),
        (Syntax, "1:33".into())
    );
    assert_eq!(
        fails("SecRuleUpdateTargetById abc ARGS"),
        (BadArgument, "1:25".into())
    );
}

#[test]
fn update_action_by_id() {
    let Directive::UpdateActionById { id, actions, .. } =
        one("SecRuleUpdateActionById 942100 \"pass,nolog\"")
    else {
        panic!()
    };
    assert_eq!((id, actions.len()), (942100, 2));
    assert_eq!(
        fails("SecRuleUpdateActionById 942100:2 \"pass\""),
        (BadArgument, "1:25".into())
    );
}

#[test]
fn ignored_directives_keep_name_and_value() {
    let Directive::Ignored {
        name,
        value,
        location,
    } = one("  secRequestBodyLimit   13107200  ")
    else {
        panic!()
    };
    assert_eq!(
        (name.as_str(), value.as_str(), location.column),
        ("secRequestBodyLimit", "13107200", 3)
    );
    for name in IGNORED_DIRECTIVES {
        assert!(
            matches!(one(&format!("{name} x")), Directive::Ignored { .. }),
            "{name}"
        );
    }
}

#[test]
fn unknown_directives_are_named() {
    let e = parse_str("\n SecFooBar 1", "t.conf", Path::new("/")).unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string()),
        (
            UnknownDirective,
            "t.conf:2:2: unknown directive SecFooBar".into()
        )
    );
    assert_eq!(fails("<IfModule x>"), (UnknownDirective, "1:1".into()));
}

#[test]
fn hostile_inputs_never_panic() {
    for text in [
        "\"",
        "\\",
        "SecRule",
        "SecRule \"",
        "SecRule | |",
        "SecRule A \"@\"",
        "SecAction \"'\"",
        "é \"ü",
        "SecRule ARGS:/ x",
        "SecRule ARGS:/\\",
    ] {
        let _ = parse_str(text, "t.conf", Path::new("/"));
    }
    // Multi-byte text before an error still gives a character column.
    assert_eq!(
        fails("SecMarker é\nSecRule \"ü ARGS"),
        (Syntax, "2:9".into())
    );
    assert_eq!(fails("SecRule A|ü|| x"), (Syntax, "1:9".into()));
}

proptest::proptest! {
    /// Any text made of the characters the lexer and the argument parsers care about gives
    /// directives or a located error, never a panic.
    #[test]
    fn arbitrary_text_never_panics(body in r#"[ \t\r\n\\"'|:!&@,/#a-zé-]{0,60}"#) {
        for prefix in ["SecRule ", "SecAction ", "SecRuleRemoveById ", "SecRuleUpdateTargetById ", ""] {
            let text = format!("{prefix}{body}");
            if let Err(e) = parse_str(&text, "p.conf", Path::new("/nonexistent")) {
                proptest::prop_assert!(e.location().line >= 1 && e.location().column >= 1, "{e}");
            }
        }
    }
}
