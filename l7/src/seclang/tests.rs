//! The interpreter on small rule sets: each test writes the SecLang it needs inline.

use std::path::Path;

use super::vars::HttpInput;
use super::{parse, Outcome, RuleSet, SecLangErrorKind};

fn set(text: &str) -> RuleSet {
    let d = parse::parse_str(text, "t.conf", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    RuleSet::compile(&d, Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn compile_err(text: &str) -> super::SecLangError {
    let d = parse::parse_str(text, "t.conf", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    RuleSet::compile(&d, Path::new(".")).unwrap_err()
}

fn req(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> HttpInput {
    HttpInput::simple(method, uri, headers, body.as_bytes())
}

fn ids(o: &Outcome) -> Vec<u32> {
    o.matched.iter().map(|m| m.id).collect()
}

#[test]
fn anomaly_scoring_with_macros_and_a_blocking_rule() {
    let s = set(r#"
SecDefaultAction "phase:2,log,pass"
SecAction "id:1,phase:1,nolog,pass,setvar:tx.critical=5,setvar:tx.threshold=5"
SecRule ARGS "@rx (?i)union\s+select" "id:10,phase:2,block,t:none,t:urlDecodeUni,msg:'SQLi in %{MATCHED_VAR_NAME}',logdata:'%{MATCHED_VAR}',setvar:tx.score=+%{tx.critical}"
SecRule TX:SCORE "@ge %{tx.threshold}" "id:20,phase:2,deny,status:406,msg:'score %{tx.score}'"
"#);
    let o = s.evaluate(&req("GET", "/?q=1%20UNION%20%20select%201", &[], ""));
    assert_eq!(ids(&o), [1, 10, 20]);
    assert_eq!(o.matched[1].msg, "SQLi in ARGS:q");
    assert_eq!(o.matched[1].data, "1 UNION  select 1");
    assert_eq!(o.matched[2].msg, "score 5");
    assert!(!o.matched[0].logged && o.matched[1].logged);
    let i = o.interruption.expect("denied");
    assert_eq!((i.rule_id, i.status), (20, 406));
    let clean = s.evaluate(&req("GET", "/?q=hello", &[], ""));
    assert_eq!(ids(&clean), [1]);
    assert!(clean.interruption.is_none());
}

#[test]
fn chains_capture_and_matched_vars() {
    let s = set(r#"
SecRule REQUEST_HEADERS:Content-Type "@rx ^([a-z]+)/" "id:1,phase:1,pass,capture,chain"
    SecRule TX:1 "@streq text" "setvar:tx.texty=1"
SecRule ARGS "@rx a" "id:2,phase:2,pass,chain"
    SecRule MATCHED_VARS "@rx b" ""
"#);
    let o = s.evaluate(&req(
        "POST",
        "/?x=ab",
        &[("Content-Type", "text/plain")],
        "",
    ));
    assert_eq!(ids(&o), [1, 2]);
    assert_eq!(o.tx.get("texty").map(Vec::as_slice), Some(&b"1"[..]));
    let o = s.evaluate(&req(
        "POST",
        "/?x=a",
        &[("Content-Type", "application/json")],
        "",
    ));
    assert!(ids(&o).is_empty());
}

#[test]
fn counts_exclusions_and_selectors() {
    let s = set(r#"
SecRule &REQUEST_HEADERS:Host "@eq 0" "id:1,phase:1,pass"
SecRule ARGS|!ARGS:safe "@contains <script" "id:2,phase:2,pass"
SecRule REQUEST_COOKIES:/^sess/ "@rx ^x" "id:3,phase:1,pass"
SecRule &ARGS "@gt 2" "id:4,phase:2,pass"
"#);
    let o = s.evaluate(&req(
        "GET",
        "/?safe=<script>",
        &[("Cookie", "sessA=xyz; other=x")],
        "",
    ));
    assert_eq!(ids(&o), [1, 3]);
    let o = s.evaluate(&req("GET", "/?a=<script>&b=1&c=2", &[("Host", "h")], ""));
    assert_eq!(ids(&o), [2, 4]);
}

#[test]
fn skip_after_markers_and_skip() {
    let s = set(r#"
SecRule REQUEST_METHOD "@streq GET" "id:1,phase:1,pass,nolog,skipAfter:END"
SecAction "id:2,phase:1,pass"
SecMarker END
SecAction "id:3,phase:1,pass,skip:1"
SecAction "id:4,phase:1,pass"
SecAction "id:5,phase:1,pass"
"#);
    assert_eq!(ids(&s.evaluate(&req("GET", "/", &[], ""))), [1, 3, 5]);
    assert_eq!(ids(&s.evaluate(&req("POST", "/", &[], ""))), [2, 3, 5]);
}

#[test]
fn runtime_ctl_removals_and_detection_only() {
    let s = set(r#"
SecRule ARGS:off "@streq 1" "id:1,phase:1,pass,nolog,ctl:ruleRemoveById=3"
SecRule ARGS:quiet "@streq 1" "id:2,phase:1,pass,nolog,ctl:ruleRemoveTargetById=4;ARGS:q"
SecAction "id:3,phase:2,pass"
SecRule ARGS "@rx evil" "id:4,phase:2,deny"
SecRule ARGS:dry "@streq 1" "id:5,phase:1,pass,nolog,ctl:ruleEngine=DetectionOnly"
"#);
    assert_eq!(ids(&s.evaluate(&req("GET", "/?off=1", &[], ""))), [1]);
    let o = s.evaluate(&req("GET", "/?quiet=1&q=evil", &[], ""));
    assert_eq!(ids(&o), [2, 3]);
    let o = s.evaluate(&req("GET", "/?q=evil", &[], ""));
    assert_eq!(o.interruption.map(|i| i.rule_id), Some(4));
    let o = s.evaluate(&req("GET", "/?dry=1&q=evil", &[], ""));
    assert_eq!(ids(&o), [5, 3, 4]);
    assert!(
        o.interruption.is_none(),
        "DetectionOnly logs but does not deny"
    );
}

#[test]
fn body_processors_fill_args_post_and_errors() {
    let s = set(r#"
SecRule ARGS_POST:json.user.name "@streq root" "id:1,phase:2,pass"
SecRule REQBODY_ERROR "!@eq 0" "id:2,phase:2,pass"
SecRule FILES "@rx \.php$" "id:3,phase:2,pass"
SecRule XML:/* "@contains secret" "id:4,phase:2,pass"
"#);
    let json = req(
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        r#"{"user":{"name":"root"}}"#,
    );
    assert_eq!(ids(&s.evaluate(&json)), [1]);
    let bad = req("POST", "/", &[("Content-Type", "application/json")], "{");
    assert_eq!(ids(&s.evaluate(&bad)), [2]);
    let mp = "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\n\r\n<?php\r\n--B--\r\n";
    let up = req(
        "POST",
        "/",
        &[("Content-Type", "multipart/form-data; boundary=B")],
        mp,
    );
    assert_eq!(ids(&s.evaluate(&up)), [3]);
    let xml = req(
        "POST",
        "/",
        &[("Content-Type", "text/xml")],
        "<a><b>top secret</b></a>",
    );
    assert_eq!(ids(&s.evaluate(&xml)), [4]);
}

#[test]
fn load_time_removals_and_target_updates() {
    let s = set(r#"
SecRule ARGS "@rx x" "id:1,phase:2,pass,tag:'attack-x'"
SecRule ARGS "@rx x" "id:2,phase:2,pass"
SecRule ARGS "@rx x" "id:3,phase:2,pass"
SecRuleRemoveByTag attack-x
SecRuleRemoveById 3
SecRuleUpdateTargetById 2 "!ARGS:ok"
"#);
    assert!(ids(&s.evaluate(&req("GET", "/?ok=x", &[], ""))).is_empty());
    assert_eq!(ids(&s.evaluate(&req("GET", "/?no=x", &[], ""))), [2]);
    assert_eq!(s.stats().rules, 1);
}

#[test]
fn load_errors_name_the_rule() {
    let e = compile_err("SecRule NOPE \"@rx x\" \"id:1,phase:2,pass\"");
    assert_eq!(e.kind(), SecLangErrorKind::UnknownVariable);
    assert_eq!(e.to_string(), "t.conf:1:1: unknown variable NOPE");
    let e = compile_err("\nSecRule ARGS \"@rxx x\" \"id:1,phase:2,pass\"");
    assert_eq!(e.kind(), SecLangErrorKind::UnknownOperator);
    assert_eq!(e.location().line, 2);
    let e = compile_err("SecRule ARGS \"@rx (\" \"id:1,phase:2,pass\"");
    assert_eq!(e.kind(), SecLangErrorKind::BadArgument);
    let e = compile_err("SecRule ARGS \"@rx x\" \"id:1,phase:2,pass,t:nope\"");
    assert_eq!(e.kind(), SecLangErrorKind::UnknownTransformation);
    let e = compile_err("SecAction \"id:1,pass\"\nSecAction \"id:1,pass\"");
    assert!(e.detail().contains("duplicate rule id 1"));
    let e = compile_err("SecAction \"id:1,pass,skipAfter:NOWHERE\"");
    assert!(e.detail().contains("NOWHERE"));
    let e = compile_err("SecAction \"id:1,pass,chain\"");
    assert!(e.detail().contains("chain"));
    let e = compile_err("SecAction \"pass\"");
    assert!(e.detail().contains("no id"));
}

#[test]
fn self_referencing_msg_and_engine_off_in_phase_1() {
    let s = set(r#"
SecRule ARGS:off "@streq 1" "id:1,phase:1,pass,nolog,ctl:ruleEngine=Off"
SecRule ARGS "@rx ." "id:2,phase:2,deny,msg:'x %{rule.msg}',logdata:'%{rule.msg}'"
SecRule ARGS "@rx ." "id:3,phase:2,pass,ctl:ruleRemoveTargetById=9;ARGS:a"
"#);
    let o = s.evaluate(&req("GET", "/?a=1&b=1&c=1", &[], ""));
    assert_eq!(
        o.matched[0].msg, "x x %{rule.msg}",
        "expanded once, no recursion"
    );
    assert!(ids(&s.evaluate(&req("GET", "/?off=1", &[], ""))).contains(&1));
    assert_eq!(
        ids(&s.evaluate(&req("GET", "/?off=1", &[], ""))),
        [1],
        "phase 2 does not run"
    );
}

#[test]
fn too_many_transformation_lists_are_refused() {
    // 2^16 + 1 distinct lists: each rule's list is a new one (its own prefix too).
    let names = ["lowercase", "uppercase", "trim", "removeNulls"];
    let mut text = String::new();
    let mut id = 1;
    'out: for a in names {
        for b in names {
            for c in names {
                for d in names {
                    for e in names {
                        for f in names {
                            for g in names {
                                for h in names {
                                    for k in names {
                                        text.push_str(&format!("SecAction \"id:{id},phase:2,pass,t:{a},t:{b},t:{c},t:{d},t:{e},t:{f},t:{g},t:{h},t:{k}\"\n"));
                                        id += 1;
                                        if id > 55_000 {
                                            break 'out;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let e = compile_err(&text);
    assert!(e.detail().contains("distinct transformation lists"), "{e}");
}

#[test]
fn full_request_is_built_only_when_a_rule_reads_it() {
    let s = set(r#"SecRule FULL_REQUEST "@contains secret" "id:1,phase:2,pass""#);
    assert!(s.full_request);
    let o = s.evaluate(&req(
        "POST",
        "/",
        &[("Content-Type", "text/plain")],
        "a secret",
    ));
    assert_eq!(ids(&o), [1]);
    assert!(!set(r#"SecRule ARGS "@rx x" "id:1,phase:2,pass""#).full_request);
}
