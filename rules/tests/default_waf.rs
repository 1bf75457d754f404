//! The built-in default rules load, run only in the L7 engine, and scores land in classes.

use rampart_rules::{default_waf, RuleAction, ScoreClass, Target};

#[test]
fn default_rules_load_and_are_all_http_rules() {
    let set = default_waf();
    assert!(set.rules.len() >= 20, "{}", set.rules.len());
    assert!(set.rules.iter().all(|r| r.target == Target::L7));
    let class_of = |id: u32| {
        set.rules
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.l7.class)
    };
    assert_eq!(class_of(900100), Some(ScoreClass::Sqli));
    assert_eq!(class_of(900200), Some(ScoreClass::Xss));
    assert_eq!(class_of(900300), Some(ScoreClass::Lfi));
    assert_eq!(class_of(900400), Some(ScoreClass::Rce));
    let last = set.rules.last().expect("rules");
    assert_eq!((last.id, &last.action), (900999, &RuleAction::Block));
    assert!(set.rules.iter().any(|r| r.l7.paranoia == 2));
}

/// Issue 17 item 3: what the engine could not inspect is refused at paranoia 1.
#[test]
fn inspection_limit_rules_fail_closed_at_paranoia_1() {
    use rampart_rules::lang::Field;
    use std::collections::HashSet;
    let set = default_waf();
    for (id, field) in [
        (900600, Field::HttpTruncated),
        (900601, Field::HttpBodyTruncated),
        (900602, Field::HttpBodyError),
    ] {
        let r = set.rules.iter().find(|r| r.id == id).expect("rule");
        assert_eq!((&r.action, r.l7.paranoia), (&RuleAction::Block, 1), "{id}");
        let mut fields = HashSet::new();
        r.expr.fields(&mut fields);
        assert_eq!(fields, HashSet::from([field]), "{id}");
    }
    // They come before the threshold, which stays last.
    let pos = |id: u32| set.rules.iter().position(|r| r.id == id).expect("rule");
    assert!(pos(900602) < pos(900999));
}
