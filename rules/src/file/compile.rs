//! A rule file's document compiled into a [`RuleSet`]: its lists loaded, ids checked, each rule's
//! expression checked and its action, mode and target (XDP or L7) decided, and the XDP rules
//! lowered into tables.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::l7_attrs::{check_l7_ratelimit, l7_attrs};
use super::lists::load_list;
use super::source::Source;
use super::yaml_doc::{FileDoc, RuleDoc};
use super::{
    xdp_set, Mode, RateLimitExprs, Rule, RuleAction, RuleError, RuleErrorKind, RuleSet, Target,
};
use crate::lang::{check_rule, parse, Field, Layer, Lists};

const ACTIONS: &str = "drop, rate_limit, allow, log, block, skip, score, ratelimit, jail, route";

/// Compiles a read document (list files resolve from `dir`); the first error stops it.
pub(super) fn ruleset(cx: &Source<'_>, doc: &FileDoc, dir: &Path) -> Result<RuleSet, RuleError> {
    let mut lists = Lists::new();
    for (name, l) in &doc.lists {
        lists.insert(name.clone(), load_list(cx, name, l, dir)?);
    }
    let mut seen: HashMap<u32, usize> = HashMap::new();
    let mut rules = Vec::new();
    let mut xdp_entries = Vec::new();
    for r in &doc.rules {
        let line = r.id.span().start().map_or(0, |m| m.line());
        if *r.id == 0 {
            return Err(cx.spanned(&r.id, RuleErrorKind::ZeroId));
        }
        if let Some(first_line) = seen.insert(*r.id, line) {
            return Err(cx.spanned(
                &r.id,
                RuleErrorKind::DuplicateId {
                    id: *r.id,
                    first_line,
                },
            ));
        }
        let rule = compile_rule(cx, r, &lists)?;
        xdp_entries.extend(xdp_set::lower(cx, &rule, &r.expression)?);
        rules.push(rule);
    }
    xdp_set::count_entries(&mut rules, &xdp_entries);
    let xdp = xdp_set::tables(cx, &xdp_entries, &seen)?;
    Ok(RuleSet {
        file: cx.file.to_string(),
        rules,
        lists,
        xdp_entries,
        xdp,
    })
}

fn compile_rule(cx: &Source<'_>, r: &RuleDoc, lists: &Lists) -> Result<Rule, RuleError> {
    let ast = parse(&r.expression).map_err(|(k, s)| cx.expr_error(&r.expression, k, s))?;
    let expr = check_rule(&ast, lists).map_err(|(k, s)| cx.expr_error(&r.expression, k, s))?;
    let mut fields = HashSet::new();
    expr.fields(&mut fields);
    let uses_l7 = fields.iter().any(|f| f.layer() == Layer::L7);
    if let Some(f) = fields.iter().find(|f| f.layer() == Layer::Response) {
        let why = format!(
            "`{}` is known only after the response; use it in a rate limit's `counting_expression`",
            f.name()
        );
        return Err(cx.spanned(&r.expression, RuleErrorKind::Schema { why }));
    }
    let action_err = |why: String| cx.spanned(&r.action, RuleErrorKind::Action { why });
    let (action, ratelimit) = rule_action(cx, r, lists)?;
    let mode = rule_mode(cx, r)?;
    let xdp_action = matches!(action, RuleAction::Drop | RuleAction::RateLimit { .. });
    let target =
        if uses_l7 || !(xdp_action || matches!(action, RuleAction::Allow | RuleAction::Log)) {
            if xdp_action {
                return Err(action_err(format!(
                    "`{}` is an L3/L4 action, but the expression reads HTTP fields; use `block`",
                    r.action.as_str()
                )));
            }
            if let Some(f) = fields
                .iter()
                .find(|f| f.layer() == Layer::L34 && **f != Field::IpSrc)
            {
                return Err(action_err(format!(
                    "HTTP rules see `ip.src` of the packet fields, not `{}`",
                    f.name()
                )));
            }
            Target::L7
        } else {
            Target::Xdp { entries: 0 }
        };
    let mut l7 = l7_attrs(cx, r, &expr, &action)?;
    l7.ratelimit = ratelimit;
    if target != Target::L7 {
        if let Some(p) = &r.paranoia {
            let why = "`paranoia` applies to HTTP rules".to_string();
            return Err(cx.spanned(p, RuleErrorKind::Schema { why }));
        }
        if let Some(s) = &r.status {
            let why = "`status` applies to HTTP rules".to_string();
            return Err(cx.spanned(s, RuleErrorKind::Schema { why }));
        }
    }
    Ok(Rule {
        id: *r.id,
        reference: r.reference.clone(),
        description: r.description.clone(),
        enabled: r.enabled.unwrap_or(true),
        mode,
        action,
        expression: r.expression.to_string(),
        expr,
        target,
        line: r.id.span().start().map_or(0, |m| m.line()),
        l7,
    })
}

/// The rule's action and, for an L7 rate limit, its compiled parts.
fn rule_action(
    cx: &Source<'_>,
    r: &RuleDoc,
    lists: &Lists,
) -> Result<(RuleAction, Option<RateLimitExprs>), RuleError> {
    let action_err = |why: String| cx.spanned(&r.action, RuleErrorKind::Action { why });
    let mut ratelimit = None;
    let action = match r.action.as_str() {
        "drop" => RuleAction::Drop,
        "rate_limit" => {
            let rl = r.rate_limit.as_ref().ok_or_else(|| {
                action_err("`rate_limit` needs `rate_limit: { packets_per_second, burst }`".into())
            })?;
            if rl.key.iter().any(|k| k != "ip.src") {
                return Err(action_err(
                    "XDP rate limits are keyed by `ip.src` only".into(),
                ));
            }
            RuleAction::RateLimit {
                packets_per_second: rl.packets_per_second,
                burst: rl.burst.unwrap_or(rl.packets_per_second),
            }
        }
        "allow" => RuleAction::Allow,
        "log" => RuleAction::Log,
        "block" => RuleAction::Block,
        "skip" => RuleAction::Skip,
        "score" => RuleAction::Score(
            r.score
                .ok_or_else(|| action_err("`score` needs `score: N`".into()))?,
        ),
        "ratelimit" => {
            let rl = r
                .ratelimit
                .clone()
                .ok_or_else(|| action_err("`ratelimit` needs a `ratelimit:` block".into()))?;
            ratelimit = Some(check_l7_ratelimit(&rl, lists).map_err(action_err)?);
            RuleAction::L7RateLimit(rl)
        }
        "jail" => RuleAction::Jail {
            seconds: r
                .duration
                .ok_or_else(|| action_err("`jail` needs `duration: SECONDS`".into()))?,
        },
        "route" => RuleAction::Route {
            target: r
                .target
                .clone()
                .ok_or_else(|| action_err("`route` needs `target: NAME`".into()))?,
        },
        other => {
            return Err(cx.spanned(
                &r.action,
                RuleErrorKind::UnknownAction {
                    action: other.to_string(),
                    expected: ACTIONS,
                },
            ))
        }
    };
    Ok((action, ratelimit))
}

fn rule_mode(cx: &Source<'_>, r: &RuleDoc) -> Result<Mode, RuleError> {
    Ok(match r.mode.as_ref().map(|m| m.as_str()) {
        None | Some("enforce") => Mode::Enforce,
        Some("log") => Mode::Log,
        Some(other) => {
            let m = r.mode.as_ref().expect("matched Some");
            return Err(cx.spanned(
                m,
                RuleErrorKind::Schema {
                    why: format!("unknown mode `{other}` (expected enforce or log)"),
                },
            ));
        }
    })
}
