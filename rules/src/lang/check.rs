//! Type checking: resolves fields, functions and lists, turns literals into values, compiles
//! regexes (linear time only) and produces the typed tree both evaluators use.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::ast::{CmpOp, Expr, ExprKind, Index, Logic, SetExpr, SetItem};
use super::fields::{proto_number, suggest, Field};
use super::functions::Func;
use super::sets::{IpSet, ValueSet};
use super::span::Span;
use super::types::{Ty, Value};
use super::ErrorKind;
use crate::Prefix;

/// Largest inline set `{...}`: bigger sets belong in a list.
pub const MAX_INLINE_SET: usize = 10_000;
/// Compiled regex size limit (bytes of automaton).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A named list, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListDef {
    Ip(Arc<ValueSet>),
    Int(Arc<ValueSet>),
    Bytes(Arc<ValueSet>),
}

impl ListDef {
    fn ty(&self) -> Ty {
        match self {
            ListDef::Ip(_) => Ty::Ip,
            ListDef::Int(_) => Ty::Int,
            ListDef::Bytes(_) => Ty::Bytes,
        }
    }

    fn set(&self) -> &Arc<ValueSet> {
        match self {
            ListDef::Ip(s) | ListDef::Int(s) | ListDef::Bytes(s) => s,
        }
    }
}

pub type Lists = HashMap<String, ListDef>;

#[derive(Clone, Debug)]
pub struct TExpr {
    pub kind: TKind,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum TKind {
    Const(Value),
    Field(Field),
    /// `lifted`: the first argument is an array and the function applies to each element.
    Call {
        func: Func,
        args: Vec<TExpr>,
        lifted: bool,
    },
    Index {
        base: Box<TExpr>,
        index: Index,
    },
    Slice {
        base: Box<TExpr>,
        start: usize,
        end: usize,
    },
    Not(Box<TExpr>),
    Logic {
        op: Logic,
        lhs: Box<TExpr>,
        rhs: Box<TExpr>,
    },
    /// `lifted`: the left side is an array; the result is an array of bools.
    Cmp {
        op: CmpOp,
        lhs: Box<TExpr>,
        rhs: Box<TExpr>,
        lifted: bool,
    },
    Matches {
        lhs: Box<TExpr>,
        re: Arc<regex_automata::meta::Regex>,
        lifted: bool,
    },
    Wildcard {
        lhs: Box<TExpr>,
        pattern: Vec<u8>,
        strict: bool,
        lifted: bool,
    },
    In {
        lhs: Box<TExpr>,
        set: Arc<ValueSet>,
        lifted: bool,
    },
}

impl TExpr {
    /// True when the expression calls `f` anywhere.
    pub fn calls(&self, f: Func) -> bool {
        match &self.kind {
            TKind::Const(_) | TKind::Field(_) => false,
            TKind::Call { func, args, .. } => *func == f || args.iter().any(|a| a.calls(f)),
            TKind::Index { base, .. } | TKind::Slice { base, .. } | TKind::Not(base) => {
                base.calls(f)
            }
            TKind::Logic { lhs, rhs, .. } | TKind::Cmp { lhs, rhs, .. } => {
                lhs.calls(f) || rhs.calls(f)
            }
            TKind::Matches { lhs, .. } | TKind::Wildcard { lhs, .. } | TKind::In { lhs, .. } => {
                lhs.calls(f)
            }
        }
    }

    /// Every field the expression reads.
    pub fn fields(&self, out: &mut HashSet<Field>) {
        match &self.kind {
            TKind::Const(_) => {}
            TKind::Field(f) => {
                out.insert(*f);
            }
            TKind::Call { args, .. } => args.iter().for_each(|a| a.fields(out)),
            TKind::Index { base, .. } | TKind::Slice { base, .. } | TKind::Not(base) => {
                base.fields(out)
            }
            TKind::Logic { lhs, rhs, .. } | TKind::Cmp { lhs, rhs, .. } => {
                lhs.fields(out);
                rhs.fields(out);
            }
            TKind::Matches { lhs, .. } | TKind::Wildcard { lhs, .. } | TKind::In { lhs, .. } => {
                lhs.fields(out)
            }
        }
    }
}

type Res<T> = Result<T, (ErrorKind, Span)>;

fn type_err(span: Span, what: String) -> (ErrorKind, Span) {
    (ErrorKind::Type { what }, span)
}

/// Checks an expression of any type (a rate limit's characteristic).
pub fn check_value(e: &Expr, lists: &Lists) -> Res<TExpr> {
    check(e, lists)
}

/// Checks a rule expression, which must be a bool.
pub fn check_rule(e: &Expr, lists: &Lists) -> Res<TExpr> {
    let t = check(e, lists)?;
    match &t.ty {
        Ty::Bool => Ok(t),
        Ty::Array(inner) if **inner == Ty::Bool => Err(type_err(
            e.span,
            "this is an array of bools; wrap it in any(...) or all(...)".into(),
        )),
        other => Err(type_err(
            e.span,
            format!("a rule expression must be a bool, this is {other}"),
        )),
    }
}

fn elem(ty: &Ty) -> Option<&Ty> {
    match ty {
        Ty::Array(t) => Some(t),
        _ => None,
    }
}

/// The type rules of the language, one arm per expression kind.
// Long as a table is long: each arm is a few lines, and the rules read best side by side.
fn check(e: &Expr, lists: &Lists) -> Res<TExpr> {
    let span = e.span;
    let mk = |kind, ty| Ok(TExpr { kind, ty, span });
    match &e.kind {
        ExprKind::Bool(b) => mk(TKind::Const(Value::Bool(*b)), Ty::Bool),
        ExprKind::Int(i) => mk(TKind::Const(Value::Int(*i)), Ty::Int),
        ExprKind::Bytes(b) => mk(TKind::Const(Value::Bytes(b.clone())), Ty::Bytes),
        ExprKind::Addr(a) => mk(TKind::Const(Value::Ip(address(a, span)?)), Ty::Ip),
        ExprKind::Field(name) => match Field::lookup(name) {
            Some(f) => mk(TKind::Field(f), f.ty()),
            None => {
                let s = suggest(name);
                let hint = if s.is_empty() {
                    String::new()
                } else {
                    format!(" (did you mean {}?)", s.join(", "))
                };
                Err((
                    ErrorKind::UnknownField {
                        name: name.clone(),
                        hint,
                    },
                    span,
                ))
            }
        },
        ExprKind::Call { name, args } => {
            let func = Func::lookup(name)
                .ok_or_else(|| (ErrorKind::UnknownFunction { name: name.clone() }, span))?;
            let args = args
                .iter()
                .map(|a| check(a, lists))
                .collect::<Res<Vec<_>>>()?;
            let (ret, lifted) = func.check(&args).map_err(|what| type_err(span, what))?;
            mk(TKind::Call { func, args, lifted }, ret)
        }
        ExprKind::Index { base, index } => {
            let b = check(base, lists)?;
            let ty = match (&b.ty, index) {
                (Ty::Map(t), Index::Key(_) | Index::All) => Ty::Array(t.clone()),
                (Ty::Array(t), Index::All) => Ty::Array(t.clone()),
                (Ty::Array(t), Index::Int(_)) => (**t).clone(),
                (other, _) => {
                    return Err(type_err(span, format!("cannot index a {other} this way")))
                }
            };
            mk(
                TKind::Index {
                    base: Box::new(b),
                    index: index.clone(),
                },
                ty,
            )
        }
        ExprKind::Slice { base, start, end } => {
            let b = check(base, lists)?;
            if b.ty != Ty::Bytes {
                return Err(type_err(
                    span,
                    format!("only bytes can be sliced, this is {}", b.ty),
                ));
            }
            if *start < 0 || end < start || *end > 65_535 {
                return Err(type_err(
                    span,
                    format!("slice [{start}:{end}] is not a range of 0..65535"),
                ));
            }
            mk(
                TKind::Slice {
                    base: Box::new(b),
                    start: *start as usize,
                    end: *end as usize,
                },
                Ty::Bytes,
            )
        }
        ExprKind::Not(inner) => {
            let i = check(inner, lists)?;
            if i.ty != Ty::Bool {
                return Err(type_err(
                    inner.span,
                    format!("`not` needs a bool, this is {}", i.ty),
                ));
            }
            mk(TKind::Not(Box::new(i)), Ty::Bool)
        }
        ExprKind::Logic { op, lhs, rhs } => {
            let (l, r) = (check(lhs, lists)?, check(rhs, lists)?);
            for side in [&l, &r] {
                if side.ty != Ty::Bool {
                    return Err(type_err(
                        side.span,
                        format!("`and`/`or`/`xor` need bools, this is {}", side.ty),
                    ));
                }
            }
            mk(
                TKind::Logic {
                    op: *op,
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                },
                Ty::Bool,
            )
        }
        ExprKind::Compare { op, lhs, rhs } => compare(*op, lhs, rhs, lists, span),
        ExprKind::In { lhs, set } => {
            let l = check(lhs, lists)?;
            let (lifted, ty) = match elem(&l.ty) {
                Some(t) => (true, t.clone()),
                None => (false, l.ty.clone()),
            };
            let values = match set {
                SetExpr::List(name, lspan) => {
                    let def = lists
                        .get(name)
                        .ok_or_else(|| (ErrorKind::UnknownList { name: name.clone() }, *lspan))?;
                    if def.ty() != ty {
                        return Err(type_err(
                            *lspan,
                            format!(
                                "list `${name}` holds {} values, the left side is {ty}",
                                def.ty()
                            ),
                        ));
                    }
                    def.set().clone()
                }
                SetExpr::Items(items) => Arc::new(inline_set(&l, &ty, items)?),
            };
            let rty = if lifted {
                Ty::Array(Box::new(Ty::Bool))
            } else {
                Ty::Bool
            };
            mk(
                TKind::In {
                    lhs: Box::new(l),
                    set: values,
                    lifted,
                },
                rty,
            )
        }
    }
}

/// An error and its causes, `: `-joined (regex-automata puts the useful part in the sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

fn address(text: &str, span: Span) -> Res<rampart_common::Addr16> {
    let ip: IpAddr = text.parse().map_err(|_| {
        let why = if text.contains('/') {
            "a CIDR is a set: use `in {...}`".to_string()
        } else {
            "not an address".to_string()
        };
        (
            ErrorKind::BadAddr {
                text: text.to_string(),
                why,
            },
            span,
        )
    })?;
    Ok(Prefix::from_ip(ip).addr)
}

fn inline_set(l: &TExpr, ty: &Ty, items: &[SetItem]) -> Res<ValueSet> {
    if items.len() > MAX_INLINE_SET {
        return Err((
            ErrorKind::SetTooLarge {
                count: items.len(),
                max: MAX_INLINE_SET,
            },
            l.span,
        ));
    }
    let is_proto = matches!(l.kind, TKind::Field(Field::IpProto));
    match ty {
        Ty::Int => {
            let mut ranges = Vec::new();
            for it in items {
                match it {
                    SetItem::Range(lo, hi, _) if lo <= hi => ranges.push((*lo, *hi)),
                    SetItem::Range(lo, hi, s) => {
                        return Err(type_err(*s, format!("range {lo}..{hi} is empty")))
                    }
                    SetItem::Value(Expr {
                        kind: ExprKind::Int(i),
                        ..
                    }) => ranges.push((*i, *i)),
                    SetItem::Value(Expr {
                        kind: ExprKind::Bytes(b),
                        span,
                    }) if is_proto => {
                        let n = proto_number(b).ok_or_else(|| {
                            type_err(
                                *span,
                                format!("unknown protocol name {:?}", String::from_utf8_lossy(b)),
                            )
                        })?;
                        ranges.push((n, n));
                    }
                    SetItem::Value(v) => {
                        return Err(type_err(v.span, "this set holds ints".into()))
                    }
                }
            }
            Ok(ValueSet::ints(ranges))
        }
        Ty::Bytes => {
            let mut set = HashSet::new();
            for it in items {
                match it {
                    SetItem::Value(Expr {
                        kind: ExprKind::Bytes(b),
                        ..
                    }) => {
                        set.insert(b.clone());
                    }
                    other => return Err(type_err(s_of(other), "this set holds strings".into())),
                }
            }
            Ok(ValueSet::Bytes(set))
        }
        Ty::Ip => {
            let mut prefixes = Vec::new();
            for it in items {
                match it {
                    SetItem::Value(Expr {
                        kind: ExprKind::Addr(a),
                        span,
                    }) => {
                        let p: Prefix = a.parse().map_err(|e: crate::PrefixError| {
                            (
                                ErrorKind::BadAddr {
                                    text: a.clone(),
                                    why: e.to_string(),
                                },
                                *span,
                            )
                        })?;
                        prefixes.push(p);
                    }
                    other => {
                        return Err(type_err(
                            s_of(other),
                            "this set holds addresses and CIDRs".into(),
                        ))
                    }
                }
            }
            Ok(ValueSet::Ip(IpSet::new(prefixes)))
        }
        other => Err(type_err(
            l.span,
            format!("`in` needs an int, string or ip on the left, this is {other}"),
        )),
    }
}

fn s_of(it: &SetItem) -> Span {
    match it {
        SetItem::Value(v) => v.span,
        SetItem::Range(_, _, s) => *s,
    }
}

/// A comparison: which operators each operand type takes, one arm per operator.
// Long as a table is long: the arms are the operator reference, kept side by side.
fn compare(op: CmpOp, lhs: &Expr, rhs: &Expr, lists: &Lists, span: Span) -> Res<TExpr> {
    let l = check(lhs, lists)?;
    let (lifted, lty) = match elem(&l.ty) {
        Some(t) => (true, t.clone()),
        None => (false, l.ty.clone()),
    };
    let rty = if lifted {
        Ty::Array(Box::new(Ty::Bool))
    } else {
        Ty::Bool
    };
    let out = |kind| {
        Ok(TExpr {
            kind,
            ty: rty.clone(),
            span,
        })
    };
    match op {
        CmpOp::Matches | CmpOp::Wildcard | CmpOp::StrictWildcard => {
            if lty != Ty::Bytes {
                return Err(type_err(
                    l.span,
                    format!("`{op:?}` needs bytes on the left, this is {lty}").to_lowercase(),
                ));
            }
            let ExprKind::Bytes(pattern) = &rhs.kind else {
                return Err(type_err(
                    rhs.span,
                    "the pattern must be a string literal".into(),
                ));
            };
            if op == CmpOp::Matches {
                let text = std::str::from_utf8(pattern).map_err(|_| {
                    (
                        ErrorKind::BadRegex {
                            why: "not UTF-8".into(),
                        },
                        rhs.span,
                    )
                })?;
                let re = regex_automata::meta::Regex::builder()
                    .configure(
                        regex_automata::meta::Config::new().nfa_size_limit(Some(REGEX_SIZE_LIMIT)),
                    )
                    .build(text)
                    .map_err(|e| {
                        (
                            ErrorKind::BadRegex {
                                why: error_chain(&e),
                            },
                            rhs.span,
                        )
                    })?;
                return out(TKind::Matches {
                    lhs: Box::new(l),
                    re: Arc::new(re),
                    lifted,
                });
            }
            out(TKind::Wildcard {
                lhs: Box::new(l),
                pattern: pattern.clone(),
                strict: op == CmpOp::StrictWildcard,
                lifted,
            })
        }
        _ => {
            let mut r = check(rhs, lists)?;
            // `ip.proto eq "udp"`: protocol names are ints.
            if lty == Ty::Int && r.ty == Ty::Bytes && matches!(l.kind, TKind::Field(Field::IpProto))
            {
                if let TKind::Const(Value::Bytes(b)) = &r.kind {
                    let n = proto_number(b).ok_or_else(|| {
                        type_err(
                            r.span,
                            format!("unknown protocol name {:?}", String::from_utf8_lossy(b)),
                        )
                    })?;
                    r = TExpr {
                        kind: TKind::Const(Value::Int(n)),
                        ty: Ty::Int,
                        span: r.span,
                    };
                }
            }
            if r.ty != lty {
                return Err(type_err(
                    r.span,
                    format!("cannot compare {lty} with {}", r.ty),
                ));
            }
            // `payload[0:4] eq "GET"` can never hold: say so instead of compiling a dead rule.
            if let (
                TKind::Slice { start, end, .. },
                TKind::Const(Value::Bytes(b)),
                CmpOp::Eq | CmpOp::Ne,
            ) = (&l.kind, &r.kind, op)
            {
                if end - start != b.len() {
                    let why = format!("the slice [{start}:{end}] is {} bytes and the string is {}: they are never equal", end - start, b.len());
                    return Err(type_err(r.span, why));
                }
            }
            let ok = match op {
                CmpOp::Eq | CmpOp::Ne => matches!(lty, Ty::Int | Ty::Bytes | Ty::Ip | Ty::Bool),
                CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => matches!(lty, Ty::Int | Ty::Bytes),
                CmpOp::Contains => lty == Ty::Bytes,
                _ => false,
            };
            if !ok {
                return Err(type_err(
                    span,
                    format!("{op:?} does not apply to {lty}").to_lowercase(),
                ));
            }
            out(TKind::Cmp {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
                lifted,
            })
        }
    }
}
