//! The L7 side of a rule: the attributes only HTTP rules carry (paranoia, score class, status)
//! and an L7 rate limit's characteristics and counting expression, checked and compiled.

use super::source::Source;
use super::yaml_doc::RuleDoc;
use super::{
    L7Attrs, L7RateLimit, RateLimitExprs, RuleAction, RuleError, RuleErrorKind, ScoreClass,
};
use crate::lang::{parse, Field, Layer, Lists, TExpr};

/// A rate limit's characteristics must be fields (or one key of a map field, such as
/// `http.request.headers["x-api-key"]`), its period and rate non-zero, and its counting
/// expression a valid rule expression.
pub(super) fn check_l7_ratelimit(
    rl: &L7RateLimit,
    lists: &Lists,
) -> Result<RateLimitExprs, String> {
    use crate::lang::ast::{ExprKind, Index};
    if rl.characteristics.is_empty() {
        return Err("`ratelimit.characteristics` needs at least one field, e.g. [ip.src]".into());
    }
    let mut keys = Vec::new();
    for c in &rl.characteristics {
        let ast = parse(c).ok();
        let ok = match ast.as_ref().map(|e| &e.kind) {
            Some(ExprKind::Field(name)) => {
                Field::lookup(name).is_some_and(|f| f.layer() != Layer::Response)
            }
            Some(ExprKind::Index {
                base,
                index: Index::Key(_),
            }) => {
                matches!(&base.kind, ExprKind::Field(n) if Field::lookup(n).is_some_and(|f| matches!(f.ty(), crate::lang::Ty::Map(_)) && f.layer() == Layer::L7))
            }
            _ => false,
        };
        let (true, Some(ast)) = (ok, ast) else {
            return Err(format!(
                "`ratelimit.characteristics`: `{c}` is not a request field or a keyed map field"
            ));
        };
        let key = crate::lang::check::check_value(&ast, lists)
            .map_err(|(k, _)| format!("`ratelimit.characteristics`: `{c}`: {k}"))?;
        keys.push(key);
    }
    if rl.period == 0 || rl.requests_per_period == 0 {
        return Err("`ratelimit.period` and `requests_per_period` must be above 0".into());
    }
    match (rl.jail_after, rl.jail_duration) {
        (Some(0), _) => return Err("`ratelimit.jail_after` must be above 0".into()),
        (Some(_), None | Some(0)) => {
            return Err("`ratelimit.jail_after` needs `jail_duration: SECONDS` above 0".into())
        }
        (None, Some(_)) => return Err("`ratelimit.jail_duration` needs `jail_after: N`".into()),
        _ => {}
    }
    let counting = match &rl.counting_expression {
        Some(expr) => Some(
            crate::lang::compile_expr(expr, lists)
                .map_err(|e| format!("`ratelimit.counting_expression`: {e}"))?,
        ),
        None => None,
    };
    Ok(RateLimitExprs { keys, counting })
}

pub(super) fn l7_attrs(
    cx: &Source<'_>,
    r: &RuleDoc,
    expr: &TExpr,
    action: &RuleAction,
) -> Result<L7Attrs, RuleError> {
    let paranoia = match &r.paranoia {
        None => 1,
        Some(p) if (1..=4).contains(&**p) => **p,
        Some(p) => {
            return Err(cx.spanned(
                p,
                RuleErrorKind::Schema {
                    why: format!("paranoia {} (expected 1 to 4)", **p),
                },
            ))
        }
    };
    let class = match &r.class {
        Some(c) => {
            let Some(class) = ScoreClass::lookup(c.as_str()) else {
                let names: Vec<_> = ScoreClass::ALL.iter().map(|c| c.name()).collect();
                let why = format!(
                    "unknown score class `{}` (expected one of: {})",
                    c.as_str(),
                    names.join(", ")
                );
                return Err(cx.spanned(c, RuleErrorKind::Schema { why }));
            };
            if !matches!(action, RuleAction::Score(_)) {
                let why = "`class` applies to `score` rules".to_string();
                return Err(cx.spanned(c, RuleErrorKind::Schema { why }));
            }
            Some(class)
        }
        None if matches!(action, RuleAction::Score(_)) => {
            if expr.calls(crate::lang::functions::Func::Sqli) {
                Some(ScoreClass::Sqli)
            } else if expr.calls(crate::lang::functions::Func::Xss) {
                Some(ScoreClass::Xss)
            } else {
                None
            }
        }
        None => None,
    };
    let status = match &r.status {
        None => None,
        Some(s) if (100..=599).contains(&**s) => Some(**s),
        Some(s) => {
            let why = format!("status {} is not an HTTP status (100 to 599)", **s);
            return Err(cx.spanned(s, RuleErrorKind::Schema { why }));
        }
    };
    Ok(L7Attrs {
        paranoia,
        class,
        status,
        ratelimit: None,
    })
}
