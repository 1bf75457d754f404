//! The host evaluator: any checked expression against any [`FieldSource`]. A field the source
//! does not have (a port of an ICMP packet, a missing header) is absent: comparisons with it are
//! false, so `not` of such a comparison is true.
//!
//! Evaluation borrows: constants and the values a source lends are compared in place, and only
//! the results of functions, indexing of maps and lifted operations are built.

use std::borrow::Cow;

use regex_automata::meta::Regex;

use super::ast::{CmpOp, Index, Logic};
use super::check::{TExpr, TKind};
use super::fields::Field;
use super::functions::Func;
use super::sets::{int_contains, ValueSet};
use super::types::{Ty, Value};

/// Gives field values; `None` when the field is absent.
pub trait FieldSource {
    /// The value of `f`: lent when the source holds it as a [`Value`], built otherwise.
    fn field(&self, f: Field) -> Option<Cow<'_, Value>>;

    /// `f[key]` of a map field: the values under `key`, in order. Sources holding maps
    /// override this to skip building the whole map.
    fn field_key(&self, f: Field, key: &[u8]) -> Option<Value> {
        match self.field(f)?.as_ref() {
            Value::Map(entries) => Some(values_under(entries, key)),
            _ => None,
        }
    }

    /// `f[*]`: every value of a map field (or the array field itself), in order. Sources
    /// holding maps override this to skip building the whole map.
    fn field_values(&self, f: Field) -> Option<Cow<'_, Value>> {
        all_values(self.field(f)?)
    }
}

/// `v[*]`: the values of a map, or an array itself.
pub fn all_values(v: Cow<'_, Value>) -> Option<Cow<'_, Value>> {
    index_of(v, &Index::All)
}

/// Evaluates a rule expression. Booleans are computed without building values, and `any`/`all`
/// of a lifted test or call stop at the first item that decides.
pub fn eval_bool(e: &TExpr, src: &dyn FieldSource) -> bool {
    match &e.kind {
        TKind::Not(inner) => !eval_bool(inner, src),
        TKind::Logic { op, lhs, rhs } => match op {
            Logic::And => eval_bool(lhs, src) && eval_bool(rhs, src),
            Logic::Or => eval_bool(lhs, src) || eval_bool(rhs, src),
            Logic::Xor => eval_bool(lhs, src) ^ eval_bool(rhs, src),
        },
        TKind::Call {
            func: Func::Any,
            args,
            ..
        } => quantify(true, &args[0], src),
        TKind::Call {
            func: Func::All,
            args,
            ..
        } => quantify(false, &args[0], src),
        _ => match test(e, src) {
            // A lifted test is an array, never `true`.
            Some((lhs, lifted, t)) => {
                !lifted && eval_ref(lhs, src).as_deref().is_some_and(|v| t.holds(v))
            }
            None => matches!(eval_ref(e, src).as_deref(), Some(Value::Bool(true))),
        },
    }
}

/// The value of an expression, owned (for callers that keep it, such as rate-limit keys).
pub fn eval(e: &TExpr, src: &dyn FieldSource) -> Option<Value> {
    eval_ref(e, src).map(Cow::into_owned)
}

/// The value of an expression, borrowed from the expression or the source where it can be.
pub fn eval_ref<'a>(e: &'a TExpr, src: &'a dyn FieldSource) -> Option<Cow<'a, Value>> {
    match &e.kind {
        TKind::Const(v) => Some(Cow::Borrowed(v)),
        TKind::Field(f) => src.field(*f),
        TKind::Call { func, args, lifted } => {
            with_args(args, src, |a| apply(*func, *lifted, a))?.map(Cow::Owned)
        }
        TKind::Index { base, index } => {
            match (&base.kind, index) {
                (TKind::Field(f), Index::Key(k)) => return src.field_key(*f, k).map(Cow::Owned),
                (TKind::Field(f), Index::All) => return src.field_values(*f),
                _ => {}
            }
            index_of(eval_ref(base, src)?, index)
        }
        TKind::Slice { base, start, end } => match eval_ref(base, src)?.as_ref() {
            // A slice the value does not fully cover is absent (the kernel cannot read it either).
            Value::Bytes(b) => b
                .get(*start..*end)
                .map(|s| Cow::Owned(Value::Bytes(s.to_vec()))),
            _ => None,
        },
        TKind::Not(_) | TKind::Logic { .. } => Some(Cow::Owned(Value::Bool(eval_bool(e, src)))),
        // The rest test a value.
        _ => {
            let (lhs, lifted, t) = test(e, src)?;
            lifted_bool(eval_ref(lhs, src).as_deref(), lifted, |v| t.holds(v))
        }
    }
}

/// The test of one value made by `eq` and the other comparisons, `matches`, `wildcard`, `in`.
enum Test<'a> {
    Cmp(CmpOp, Option<Cow<'a, Value>>),
    Matches(&'a Regex),
    Wildcard { pattern: &'a [u8], strict: bool },
    In(&'a ValueSet),
}

impl Test<'_> {
    fn holds(&self, v: &Value) -> bool {
        match self {
            Test::Cmp(op, r) => r.as_deref().is_some_and(|r| compare(*op, v, r)),
            Test::Matches(re) => matches!(v, Value::Bytes(b) if re.is_match(b.as_slice())),
            Test::Wildcard { pattern, strict } => {
                matches!(v, Value::Bytes(b) if wildcard(pattern, b, *strict))
            }
            Test::In(set) => in_set(v, set),
        }
    }
}

/// For an expression that tests a value: the tested operand, whether the test is lifted over
/// it, and the test (its right side evaluated). `None` for other expressions.
fn test<'a>(e: &'a TExpr, src: &'a dyn FieldSource) -> Option<(&'a TExpr, bool, Test<'a>)> {
    Some(match &e.kind {
        TKind::Cmp {
            op,
            lhs,
            rhs,
            lifted,
        } => (lhs, *lifted, Test::Cmp(*op, eval_ref(rhs, src))),
        TKind::Matches { lhs, re, lifted } => (lhs, *lifted, Test::Matches(re)),
        TKind::Wildcard {
            lhs,
            pattern,
            strict,
            lifted,
        } => (
            lhs,
            *lifted,
            Test::Wildcard {
                pattern,
                strict: *strict,
            },
        ),
        TKind::In { lhs, set, lifted } => (lhs, *lifted, Test::In(set)),
        _ => return None,
    })
}

/// `any(e)` or `all(e)` of an array of bools, up to the first item that decides (see
/// [`find_item`]: no array is built).
fn quantify(any: bool, e: &TExpr, src: &dyn FieldSource) -> bool {
    // `any`: an item is true; `all`: no item is other than true. Absent is false for both.
    find_item(e, src, &mut |v| matches!(v, Value::Bool(true)) == any)
        .is_some_and(|found| found == any)
}

/// Hands the items of the array `e` evaluates to to `found`, in order, until it returns true;
/// returns whether it did (`None`: the array is absent). The items of lifted calls and tests
/// are computed one at a time and never collected; a transform that leaves an item unchanged
/// lends it instead of copying it.
fn find_item(
    e: &TExpr,
    src: &dyn FieldSource,
    found: &mut dyn FnMut(&Value) -> bool,
) -> Option<bool> {
    match &e.kind {
        // As `apply`: absent when an argument is absent or the first is not an array; an item
        // the function gives no value for is skipped.
        TKind::Call {
            func,
            args,
            lifted: true,
        } => match args.as_slice() {
            [a] => find_item(a, src, &mut |item| {
                func.apply_lent(&[item]).is_some_and(|v| found(&v))
            }),
            [a, b] => {
                let b = eval_ref(b, src)?;
                find_item(a, src, &mut |item| {
                    func.apply_lent(&[item, &b]).is_some_and(|v| found(&v))
                })
            }
            _ => find_in(e, src, found),
        },
        // `a[*]` of an array is the array.
        TKind::Index {
            base,
            index: Index::All,
        } if matches!(base.ty, Ty::Array(_)) => find_item(base, src, found),
        _ => match test(e, src) {
            // As `lifted_bool`: an operand that is not an array gives the empty array.
            Some((lhs, true, t)) => {
                Some(find_item(lhs, src, &mut |v| found(&Value::Bool(t.holds(v)))).unwrap_or(false))
            }
            _ => find_in(e, src, found),
        },
    }
}

/// [`find_item`] over the evaluated array.
fn find_in(
    e: &TExpr,
    src: &dyn FieldSource,
    found: &mut dyn FnMut(&Value) -> bool,
) -> Option<bool> {
    match eval_ref(e, src)?.as_ref() {
        Value::Array(items) => Some(items.iter().any(found)),
        _ => None,
    }
}

/// Evaluates the arguments of a call (lent, never copied) and hands them to `k`; `None` when
/// one is absent.
fn with_args<R>(
    args: &[TExpr],
    src: &dyn FieldSource,
    k: impl FnOnce(&mut [&Value]) -> R,
) -> Option<R> {
    Some(match args {
        [a] => k(&mut [&*eval_ref(a, src)?]),
        [a, b] => {
            let (a, b) = (eval_ref(a, src)?, eval_ref(b, src)?);
            k(&mut [&*a, &*b])
        }
        _ => {
            let vals = args
                .iter()
                .map(|a| eval_ref(a, src))
                .collect::<Option<Vec<_>>>()?;
            k(&mut vals.iter().map(|v| &**v).collect::<Vec<_>>())
        }
    })
}

/// `func` on `args`; when lifted, on each element of the array `args[0]` in turn, the other
/// arguments staying in place.
fn apply(func: Func, lifted: bool, args: &mut [&Value]) -> Option<Value> {
    if !lifted {
        return func.apply(args);
    }
    let Value::Array(items) = args[0] else {
        return None;
    };
    let out = items
        .iter()
        .filter_map(|item| {
            args[0] = item;
            func.apply(args)
        })
        .collect();
    Some(Value::Array(out))
}

fn index_of<'a>(base: Cow<'a, Value>, index: &Index) -> Option<Cow<'a, Value>> {
    match base {
        Cow::Borrowed(b) => index_ref(b, index),
        Cow::Owned(b) => index_owned(b, index).map(Cow::Owned),
    }
}

/// `base[index]` of a lent value: elements are lent too, arrays of map values are built.
fn index_ref<'a>(base: &'a Value, index: &Index) -> Option<Cow<'a, Value>> {
    match (base, index) {
        (Value::Map(entries), Index::Key(k)) => Some(Cow::Owned(values_under(entries, k))),
        (Value::Map(entries), Index::All) => Some(Cow::Owned(Value::Array(
            entries.iter().map(|(_, v)| v.clone()).collect(),
        ))),
        (Value::Array(_), Index::All) => Some(Cow::Borrowed(base)),
        (Value::Array(a), Index::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| a.get(i))
            .map(Cow::Borrowed),
        _ => None,
    }
}

/// `base[index]` of a value built for this expression: its parts move, nothing is copied.
fn index_owned(base: Value, index: &Index) -> Option<Value> {
    match (base, index) {
        (Value::Map(entries), Index::Key(k)) => Some(Value::Array(
            entries
                .into_iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v)
                .collect(),
        )),
        (Value::Map(entries), Index::All) => {
            Some(Value::Array(entries.into_iter().map(|(_, v)| v).collect()))
        }
        (Value::Array(a), Index::All) => Some(Value::Array(a)),
        (Value::Array(a), Index::Int(i)) => {
            usize::try_from(*i).ok().and_then(|i| a.into_iter().nth(i))
        }
        _ => None,
    }
}

/// The values under `key` in a map's entries, in order.
pub fn values_under(entries: &[(Vec<u8>, Value)], key: &[u8]) -> Value {
    Value::Array(
        entries
            .iter()
            .filter(|(n, _)| n == key)
            .map(|(_, v)| v.clone())
            .collect(),
    )
}

/// A bool, or an array of bools for a lifted operation; absent is false (or an empty array).
fn lifted_bool<'a>(
    v: Option<&Value>,
    lifted: bool,
    f: impl Fn(&Value) -> bool,
) -> Option<Cow<'a, Value>> {
    Some(Cow::Owned(if lifted {
        Value::Array(match v {
            Some(Value::Array(items)) => items.iter().map(|i| Value::Bool(f(i))).collect(),
            _ => Vec::new(),
        })
    } else {
        Value::Bool(v.is_some_and(f))
    }))
}

fn compare(op: CmpOp, l: &Value, r: &Value) -> bool {
    use std::cmp::Ordering::*;
    let ord = match (l, r) {
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        (Value::Bytes(a), Value::Bytes(b)) => {
            if op == CmpOp::Contains {
                return contains(a, b);
            }
            a.cmp(b)
        }
        (Value::Ip(a), Value::Ip(b)) => a.cmp(b),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        _ => return false,
    };
    match op {
        CmpOp::Eq => ord == Equal,
        CmpOp::Ne => ord != Equal,
        CmpOp::Lt => ord == Less,
        CmpOp::Le => ord != Greater,
        CmpOp::Gt => ord == Greater,
        CmpOp::Ge => ord != Less,
        _ => false,
    }
}

/// True when `needle` occurs in `hay` (the empty needle occurs everywhere).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    hay.windows(needle.len())
        .any(|w| w[0] == first && &w[1..] == rest)
}

fn in_set(v: &Value, set: &ValueSet) -> bool {
    match (v, set) {
        (Value::Int(i), ValueSet::Int(r)) => int_contains(r, *i),
        (Value::Bytes(b), ValueSet::Bytes(s)) => s.contains(b),
        (Value::Ip(a), ValueSet::Ip(s)) => s.contains(a),
        _ => false,
    }
}

/// `*` matches any run of bytes; case-insensitive (ASCII) unless `strict`.
pub fn wildcard(pattern: &[u8], text: &[u8], strict: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if strict {
            a == b
        } else {
            a.eq_ignore_ascii_case(&b)
        }
    };
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && pattern[p] != b'*' && eq(pattern[p], text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::{compile_expr, Lists};

    /// Field values held as values, all lent.
    struct Fields(Vec<(Field, Value)>);

    impl FieldSource for Fields {
        fn field(&self, f: Field) -> Option<Cow<'_, Value>> {
            self.0
                .iter()
                .find(|(g, _)| *g == f)
                .map(|(_, v)| Cow::Borrowed(v))
        }
    }

    fn request(args: &[(&str, &str)], headers: &[(&str, &str)]) -> Fields {
        let bytes = |s: &str| Value::Bytes(s.as_bytes().to_vec());
        let map = |p: &[(&str, &str)]| {
            Value::Map(
                p.iter()
                    .map(|(n, v)| (n.as_bytes().to_vec(), bytes(v)))
                    .collect(),
            )
        };
        let array = |p: &[(&str, &str)], name: bool| {
            Value::Array(
                p.iter()
                    .map(|(n, v)| bytes(if name { n } else { v }))
                    .collect(),
            )
        };
        Fields(vec![
            (Field::HttpArgs, map(args)),
            (Field::HttpArgNames, array(args, true)),
            (Field::HttpArgValues, array(args, false)),
            (Field::HttpHeaders, map(headers)),
            (Field::HttpHeaderValues, array(headers, false)),
            (Field::HttpPath, bytes("/a/b")),
        ])
    }

    /// `eval_bool` (booleans computed directly, `any`/`all` item by item) agrees with the
    /// value the expression evaluates to (arrays built, then `any`/`all` applied).
    #[test]
    fn booleans_agree_with_values() {
        let exprs = [
            "any(sqli(http.request.uri.args.values))",
            "all(sqli(http.request.uri.args.values))",
            "any(starts_with(http.request.uri.args.values, \"a\"))",
            "all(starts_with(http.request.uri.args.values, \"a\"))",
            "any(lower(http.request.headers.values)[*] contains \"ab\")",
            "all(lower(http.request.headers.values)[*] contains \"ab\")",
            "any(http.request.uri.args[\"k\"][*] eq \"1\")",
            "all(http.request.uri.args[\"k\"][*] eq \"1\")",
            "any(url_decode(http.request.headers[*])[*] matches \"^a b\")",
            "all(http.request.uri.args.values[*] wildcard \"a*\")",
            "any(http.request.uri.args.names[*] in {\"a\" \"b\"})",
            "all(xss(html_entity_decode(url_decode(http.request.uri.args.values))))",
            "any(http.request.uri.args[*][*] eq \"x\")",
            "http.request.uri.path contains \"/b\"",
            "http.request.uri.path contains \"\"",
            "http.request.uri.args[\"k\"][0] eq \"1\"",
            "len(http.request.headers[\"host\"]) eq 0",
            "http.request.headers[\"x\"][0] wildcard \"*B*\"",
        ];
        let sources = [
            request(
                &[("a", "1"), ("k", "1"), ("b", "x%41")],
                &[("host", "H"), ("x", "AbC")],
            ),
            request(&[("k", "1' OR '1'='1"), ("k", "ab")], &[("x", "a%20b")]),
            request(&[("a", "abc"), ("b", "a&amp;")], &[("x", "<b onload=x>")]),
            request(&[], &[]),
            Fields(Vec::new()),
        ];
        let mut held = 0;
        for text in exprs {
            let e = compile_expr(text, &Lists::new()).expect(text);
            for (i, src) in sources.iter().enumerate() {
                let b = eval_bool(&e, src);
                assert_eq!(b, eval(&e, src) == Some(Value::Bool(true)), "{text} on {i}");
                held += usize::from(b);
            }
        }
        // Not a vacuous agreement: both outcomes occur.
        assert!(
            (20..70).contains(&held),
            "{held} of {} held",
            exprs.len() * 5
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(b"*.example.com", b"www.EXAMPLE.com", false));
        assert!(!wildcard(b"*.example.com", b"www.EXAMPLE.com", true));
        assert!(wildcard(b"/api/*/users", b"/api/v1/users", true));
        assert!(!wildcard(b"/api/*/users", b"/api/v1/user", true));
        assert!(wildcard(b"*", b"", true));
    }
}
