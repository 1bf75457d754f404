//! The evaluator's caching and lookups on small rule sets.

use std::path::Path;

use super::super::{parse, RuleSet};
use super::*;

fn set(text: &str) -> RuleSet {
    let d = parse::parse_str(text, "t.conf", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    RuleSet::compile(&d, Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn get(uri: &str) -> HttpInput {
    HttpInput {
        remote_addr: "192.0.2.1".parse().unwrap(),
        remote_port: 40000,
        server_port: 80,
        method: b"GET".to_vec(),
        uri: uri.into(),
        protocol: b"HTTP/1.1".to_vec(),
        headers: vec![(b"Host".to_vec(), b"x".to_vec())],
        body: Vec::new(),
    }
}

fn ids(o: &Outcome) -> Vec<u32> {
    o.matched.iter().map(|m| m.id).collect()
}

/// Lists sharing a prefix resume from the cached prefix; each still sees its own result,
/// whichever rule transforms a value first, and unchanged values read as the raw ones.
#[test]
fn shared_transformation_prefixes_give_each_list_its_own_value() {
    let s = set(r#"
SecRule ARGS "@streq abc%3c" "id:1,phase:2,pass,t:none,t:lowercase"
SecRule ARGS "@streq abc<" "id:2,phase:2,pass,t:none,t:lowercase,t:urlDecode"
SecRule ARGS "@streq ABC<" "id:3,phase:2,pass,t:none,t:urlDecode"
SecRule ARGS "@streq abc<" "id:4,phase:2,pass,t:none,t:lowercase,t:urlDecode,t:trim"
SecRule ARGS "@streq abc<" "id:5,phase:2,pass,t:none,t:lowercase,t:urlDecode,t:removeNulls"
SecRule ARGS "@streq plain" "id:6,phase:2,pass,t:none,t:lowercase,t:urlDecode,t:trim"
SecRule ARGS "@streq ABC%3C" "id:7,phase:2,pass,t:none"
"#);
    // The query is decoded once into ARGS: `a` is `ABC%3C`.
    let o = s.evaluate(&get("/?a=ABC%253C&b=plain"));
    assert_eq!(ids(&o), [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(o.matched[3].var_name, "ARGS:a");
    assert_eq!(o.matched[5].var_name, "ARGS:b");
}

/// `TX:name` is one lookup, case-insensitive as keys are; counts, exclusions and a link
/// whose matches change TX (read from a copy) keep their meaning.
#[test]
fn tx_key_targets() {
    let s = set(r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.Level=2,setvar:tx.other=7"
SecRule TX:LEVEL "@lt 3" "id:2,phase:1,pass,nolog"
SecRule &TX:level "@eq 1" "id:3,phase:1,pass,nolog"
SecRule &TX:missing "@eq 0" "id:4,phase:1,pass,nolog"
SecRule TX:level|!TX:level "@lt 3" "id:5,phase:1,pass,nolog"
SecRule TX:level|TX:other "@gt 1" "id:6,phase:1,pass,nolog,setvar:tx.other=0,logdata:'%{MATCHED_VAR_NAME}'"
SecRule TX:other "@eq 0" "id:7,phase:1,pass,nolog"
"#);
    let o = s.evaluate(&get("/"));
    assert_eq!(ids(&o), [1, 2, 3, 4, 6, 7]);
    assert_eq!(o.matched[4].var_name, "TX:other");
    assert_eq!(o.tx_int("other"), 0);
}

/// multiMatch skips the operator only on steps that changed nothing.
#[test]
fn multi_match_sees_every_distinct_step() {
    let s = set(r#"
SecRule ARGS "@rx ^a%41$" "id:1,phase:2,pass,multiMatch,t:none,t:lowercase,t:urlDecode"
SecRule ARGS "@rx ^aa$" "id:2,phase:2,pass,multiMatch,t:none,t:lowercase,t:urlDecode"
SecRule ARGS "@rx ^aA$" "id:3,phase:2,pass,multiMatch,t:none,t:trim,t:urlDecode"
"#);
    // ARGS `a%41`: 1 on the raw value, 3 after urlDecode; 2 never sees `aa`.
    let o = s.evaluate(&get("/?x=a%2541"));
    assert_eq!(ids(&o), [1, 3]);
    // ARGS `aA`: 2 after lowercase, 3 on the raw value.
    let o = s.evaluate(&get("/?x=a%41"));
    assert_eq!(ids(&o), [2, 3]);
}

/// The prefilter skips only what cannot match: words, text and others, lists that keep words
/// and lists that do not (`base64Decode` turns the word `c2VsZWN0` into `select`), every
/// entry of a collection (the second value holds the needle), and a negated `@rx` (never
/// filtered) still matching where its pattern does not.
#[test]
fn prefilter_skips_only_what_cannot_match() {
    let s = set(r#"
SecRule ARGS "@rx select" "id:1,phase:2,pass,t:none,t:base64Decode"
SecRule ARGS "@rx (?i)union" "id:2,phase:2,pass,t:none,t:lowercase"
SecRule ARGS "@rx <script" "id:3,phase:2,pass,t:none,t:urlDecodeUni"
SecRule ARGS "@rx zzz" "id:4,phase:2,pass,t:none"
SecRule ARGS "!@rx zzz" "id:5,phase:2,pass,t:none"
SecRule ARGS "@pm evil" "id:6,phase:2,pass,t:none,t:lowercase"
SecRule ARGS "@rx ab" "id:7,phase:2,pass,t:none,t:removeWhitespace"
SecRule ARGS "@rx ab" "id:8,phase:2,pass,t:none,t:urlDecodeUni,multiMatch"
SecRule ARGS "@rx ab" "id:9,phase:2,pass,t:none,t:urlDecodeUni,t:removeWhitespace,multiMatch"
"#);
    // multiMatch with steps that keep text is filtered on words and text (8); one that
    // removes whitespace is not filtered (9).
    assert_eq!(s.stats().prefiltered_links, 7);
    let o = s.evaluate(&get("/?a=c2VsZWN0&b=x&c=UNION&d=%3Cscript&e=1&f=EVIL"));
    assert_eq!(ids(&o), vec![1, 2, 3, 5, 6]);
    let o = s.evaluate(&get("/?a=plain&b=words_only"));
    assert_eq!(ids(&o), vec![5]);
    // Text: `removeWhitespace` joins `a b` into `ab`; the other lists leave text alone.
    let o = s.evaluate(&get("/?a=x+a+b+y&b=UNION+all"));
    assert_eq!(ids(&o), vec![2, 5, 7, 9]);
    let o = s.evaluate(&get("/?a=a+x+b&b=y+z"));
    assert_eq!(ids(&o), vec![5]);
    // Beside a value that is not text, the group's own row takes the joined answer for the
    // text entry.
    let o = s.evaluate(&get("/?a=x+a+b+y&b=c%3Dd"));
    assert_eq!(ids(&o), vec![5, 7, 9]);
    let o = s.evaluate(&get("/?a=a+x+b&b=c%3Dd"));
    assert_eq!(ids(&o), vec![5]);
    // multiMatch: a word is answered by the words row; a value that is not a word or text
    // runs, and matches only after a step.
    let o = s.evaluate(&get("/?a=xaby"));
    assert_eq!(ids(&o), vec![5, 7, 8, 9]);
    let o = s.evaluate(&get("/?a=%2561b"));
    assert_eq!(ids(&o), vec![5, 8, 9]);
}

/// `ctl:requestBodyProcessor` changes `REQBODY_PROCESSOR` within a phase: what the
/// prefilter (and the transform cache) computed before is not reused.
#[test]
fn body_processor_change_mid_phase_is_seen() {
    let s = set(r#"
SecRule REQBODY_PROCESSOR "@rx XML" "id:1,phase:1,pass,t:none"
SecRule REQUEST_HEADERS:Host "@rx x" "id:2,phase:1,pass,t:none,ctl:requestBodyProcessor=XML"
SecRule REQBODY_PROCESSOR "@rx XML" "id:3,phase:1,pass,t:none"
"#);
    assert_eq!(ids(&s.evaluate(&get("/"))), vec![2, 3]);
}
