//! The host evaluator: any checked expression against any [`FieldSource`]. A field the source
//! does not have (a port of an ICMP packet, a missing header) is absent: comparisons with it are
//! false, so `not` of such a comparison is true.

use super::ast::{CmpOp, Index, Logic};
use super::check::{TExpr, TKind};
use super::fields::Field;
use super::sets::{int_contains, ValueSet};
use super::types::Value;

/// Gives field values; `None` when the field is absent.
pub trait FieldSource {
    fn field(&self, f: Field) -> Option<Value>;

    /// `f[key]` of a map field: the values under `key`, in order. Sources holding maps
    /// override this to skip building the whole map.
    fn field_key(&self, f: Field, key: &[u8]) -> Option<Value> {
        match self.field(f)? {
            Value::Map(entries) => Some(Value::Array(
                entries
                    .into_iter()
                    .filter(|(n, _)| n == key)
                    .map(|(_, v)| v)
                    .collect(),
            )),
            _ => None,
        }
    }
}

/// Evaluates a rule expression.
pub fn eval_bool(e: &TExpr, src: &dyn FieldSource) -> bool {
    matches!(eval(e, src), Some(Value::Bool(true)))
}

fn truth(e: &TExpr, src: &dyn FieldSource) -> bool {
    eval_bool(e, src)
}

pub fn eval(e: &TExpr, src: &dyn FieldSource) -> Option<Value> {
    match &e.kind {
        TKind::Const(v) => Some(v.clone()),
        TKind::Field(f) => src.field(*f),
        TKind::Call { func, args, lifted } => {
            let mut vals = args
                .iter()
                .map(|a| eval(a, src))
                .collect::<Option<Vec<_>>>()?;
            if *lifted {
                // Element by element; the other arguments stay in place (never copied per item).
                let Value::Array(items) = std::mem::replace(&mut vals[0], Value::Bool(false))
                else {
                    return None;
                };
                let out = items
                    .into_iter()
                    .filter_map(|item| {
                        vals[0] = item;
                        func.apply(&vals)
                    })
                    .collect();
                Some(Value::Array(out))
            } else {
                func.apply(&vals)
            }
        }
        TKind::Index { base, index } => {
            if let (TKind::Field(f), Index::Key(k)) = (&base.kind, index) {
                return src.field_key(*f, k);
            }
            let b = eval(base, src)?;
            match (b, index) {
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
        TKind::Slice { base, start, end } => match eval(base, src)? {
            // A slice the value does not fully cover is absent (the kernel cannot read it either).
            Value::Bytes(b) => b.get(*start..*end).map(|s| Value::Bytes(s.to_vec())),
            _ => None,
        },
        TKind::Not(inner) => Some(Value::Bool(!truth(inner, src))),
        TKind::Logic { op, lhs, rhs } => Some(Value::Bool(match op {
            Logic::And => truth(lhs, src) && truth(rhs, src),
            Logic::Or => truth(lhs, src) || truth(rhs, src),
            Logic::Xor => truth(lhs, src) ^ truth(rhs, src),
        })),
        TKind::Cmp {
            op,
            lhs,
            rhs,
            lifted,
        } => {
            let r = eval(rhs, src);
            lifted_bool(eval(lhs, src), *lifted, |l| {
                r.as_ref().is_some_and(|r| compare(*op, l, r))
            })
        }
        TKind::Matches { lhs, re, lifted } => lifted_bool(
            eval(lhs, src),
            *lifted,
            |l| matches!(l, Value::Bytes(b) if re.is_match(b.as_slice())),
        ),
        TKind::Wildcard {
            lhs,
            pattern,
            strict,
            lifted,
        } => lifted_bool(
            eval(lhs, src),
            *lifted,
            |l| matches!(l, Value::Bytes(b) if wildcard(pattern, b, *strict)),
        ),
        TKind::In { lhs, set, lifted } => lifted_bool(eval(lhs, src), *lifted, |l| in_set(l, set)),
    }
}

/// A bool, or an array of bools for a lifted operation; absent is false (or an empty array).
fn lifted_bool(v: Option<Value>, lifted: bool, f: impl Fn(&Value) -> bool) -> Option<Value> {
    if lifted {
        return Some(Value::Array(match v {
            Some(Value::Array(items)) => items.iter().map(|i| Value::Bool(f(i))).collect(),
            _ => Vec::new(),
        }));
    }
    Some(Value::Bool(v.as_ref().is_some_and(f)))
}

fn compare(op: CmpOp, l: &Value, r: &Value) -> bool {
    use std::cmp::Ordering::*;
    let ord = match (l, r) {
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        (Value::Bytes(a), Value::Bytes(b)) => {
            if op == CmpOp::Contains {
                return b.is_empty() || a.windows(b.len()).any(|w| w == b.as_slice());
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

    #[test]
    fn wildcards() {
        assert!(wildcard(b"*.example.com", b"www.EXAMPLE.com", false));
        assert!(!wildcard(b"*.example.com", b"www.EXAMPLE.com", true));
        assert!(wildcard(b"/api/*/users", b"/api/v1/users", true));
        assert!(!wildcard(b"/api/*/users", b"/api/v1/user", true));
        assert!(wildcard(b"*", b"", true));
    }
}
