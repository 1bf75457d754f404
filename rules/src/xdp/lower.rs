//! Lowers a checked L3/L4 expression into XDP table entries, exactly or not at all.
//!
//! Negations are pushed to the leaves, where a value set is complemented within its field's kernel
//! domain (the "absent" value included, so `not tcp.dstport eq 80` also matches UDP) and a prefix
//! set within the address space. The formula is then expanded into a disjunction of conjunctions;
//! each conjunction becomes one entry. What the table cannot express (functions, regexes, a
//! negated payload match, fields the program does not classify) is refused with the reason.

use std::collections::HashMap;

use rampart_common::{config::field, limits::MAX_PAYLOAD_MATCH, rules::VALUE_FIELD_SIZES};

use super::spec::{Action, PayloadBase, PayloadMatch, RuleSpec, ValueRanges};
use crate::lang::ast::{CmpOp, Logic};
use crate::lang::check::{TExpr, TKind};
use crate::lang::fields::Field;
use crate::lang::sets::ValueSet;
use crate::lang::types::Value;
use crate::Prefix;

/// Entries one rule may expand to.
pub const MAX_ENTRIES_PER_RULE: usize = 64;
/// Prefixes a complemented or intersected address set may hold.
const MAX_PREFIX_WORK: usize = 1 << 22;
/// Nodes the formula may have before its expansion (each `xor` copies both operands, so a chain
/// of them doubles it per operand).
const MAX_FORMULA_NODES: usize = 1 << 16;

#[derive(Clone, Debug)]
enum Atom {
    /// A value field (`field::PROTO..IP_LEN`) in a set.
    Values(u32, ValueRanges),
    /// Source (`false`) or destination (`true`) address in a set of prefixes.
    Prefixes(bool, Vec<Prefix>),
    Payload(PayloadMatch),
}

#[derive(Clone, Debug)]
enum F {
    True,
    False,
    Atom(Atom),
    And(Vec<F>),
    Or(Vec<F>),
}

type R<T> = Result<T, String>;

fn domain_max(f: u32) -> u32 {
    VALUE_FIELD_SIZES[f as usize] - 1
}

/// `set` clipped to `lo..=hi` (values outside the field's range cannot occur).
fn clip(set: &[(i64, i64)], lo: i64, hi: i64) -> ValueRanges {
    set.iter()
        .filter_map(|&(a, b)| {
            let (a, b) = (a.max(lo), b.min(hi));
            (a <= b).then_some((a as u32, b as u32))
        })
        .collect()
}

fn complement(set: &[(u32, u32)], max: u32) -> ValueRanges {
    let mut sorted = set.to_vec();
    sorted.sort_unstable();
    let mut out = Vec::new();
    let mut next = 0u32;
    for (lo, hi) in sorted {
        if lo > next {
            out.push((next, lo - 1));
        }
        next = next.max(hi.saturating_add(1));
    }
    if next <= max {
        out.push((next, max));
    }
    out
}

fn intersect(a: &[(u32, u32)], b: &[(u32, u32)]) -> ValueRanges {
    let mut out = Vec::new();
    for &(a0, a1) in a {
        for &(b0, b1) in b {
            let (lo, hi) = (a0.max(b0), a1.min(b1));
            if lo <= hi {
                out.push((lo, hi));
            }
        }
    }
    out
}

fn prefix_complement(set: &[Prefix]) -> R<Vec<Prefix>> {
    /// `set` holds only the prefixes that overlap `node`: each level splits it between the two
    /// halves, so the walk costs O(prefixes × 128), not O(prefixes² × 128).
    fn walk(node: Prefix, set: &[Prefix], out: &mut Vec<Prefix>) -> R<()> {
        if out.len() > MAX_PREFIX_WORK {
            return Err("the complement of this address set is too large".into());
        }
        if set.iter().any(|p| p.contains(&node)) {
            return Ok(());
        }
        if set.is_empty() {
            out.push(node);
            return Ok(());
        }
        // Every prefix left is longer than `node`, so it lies in exactly one half.
        let len = node.len + 1;
        let mut right = node.addr;
        right[(node.len / 8) as usize] |= 0x80 >> (node.len % 8);
        let left = Prefix::new(node.addr, len);
        let (in_left, in_right): (Vec<Prefix>, Vec<Prefix>) =
            set.iter().partition(|p| left.contains(p));
        walk(left, &in_left, out)?;
        walk(Prefix::new(right, len), &in_right, out)
    }
    if set.len() > 4096 {
        return Err(format!(
            "negating a set of {} prefixes is not supported; use it positively",
            set.len()
        ));
    }
    let mut out = Vec::new();
    walk(Prefix::ANY, set, &mut out)?;
    Ok(out)
}

fn prefix_intersect(a: &[Prefix], b: &[Prefix]) -> R<Vec<Prefix>> {
    if a.len().saturating_mul(b.len()) > MAX_PREFIX_WORK * 4 {
        return Err("intersecting two large address sets is not supported".into());
    }
    let mut out = Vec::new();
    for x in a {
        for y in b {
            if x.contains(y) {
                out.push(*y);
            } else if y.contains(x) {
                out.push(*x);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn negate(f: F) -> R<F> {
    Ok(match f {
        F::True => F::False,
        F::False => F::True,
        F::And(v) => F::Or(v.into_iter().map(negate).collect::<R<_>>()?),
        F::Or(v) => F::And(v.into_iter().map(negate).collect::<R<_>>()?),
        F::Atom(Atom::Values(f, s)) => F::Atom(Atom::Values(f, complement(&s, domain_max(f)))),
        F::Atom(Atom::Prefixes(d, s)) => F::Atom(Atom::Prefixes(d, prefix_complement(&s)?)),
        F::Atom(Atom::Payload(_)) => return Err("a negated payload match".into()),
    })
}

/// Nodes of a formula.
fn size(f: &F) -> usize {
    match f {
        F::And(v) | F::Or(v) => 1 + v.iter().map(size).sum::<usize>(),
        _ => 1,
    }
}

fn values(f: u32, set: ValueRanges) -> F {
    F::Atom(Atom::Values(f, set))
}

/// `field ∈ set` for an integer field, as table atoms.
fn int_field(fd: Field, set: &[(i64, i64)]) -> R<F> {
    let port = |proto: u32, f: u32| {
        F::And(vec![
            values(field::PROTO, vec![(proto, proto)]),
            values(f, clip(set, 0, 65_535)),
        ])
    };
    Ok(match fd {
        Field::IpProto => values(field::PROTO, clip(set, 0, 255)),
        Field::IpTtl => values(field::TTL, clip(set, 0, 255)),
        Field::IpLen => values(field::IP_LEN, clip(set, 0, 65_535)),
        Field::TcpSrcPort => port(6, field::SPORT),
        Field::TcpDstPort => port(6, field::DPORT),
        Field::UdpSrcPort => port(17, field::SPORT),
        Field::UdpDstPort => port(17, field::DPORT),
        Field::TcpFlags => values(field::TCP_FLAGS, clip(set, 0, 255)),
        Field::VlanId => values(field::VLAN, clip(set, 0, 4_095)),
        other => {
            return Err(format!(
                "`{}` is not classified by the XDP program",
                other.name()
            ))
        }
    })
}

fn flag_bit(fd: Field) -> Option<u8> {
    Some(match fd {
        Field::TcpFlagsFin => 0x01,
        Field::TcpFlagsSyn => 0x02,
        Field::TcpFlagsRst => 0x04,
        Field::TcpFlagsPsh => 0x08,
        Field::TcpFlagsAck => 0x10,
        Field::TcpFlagsUrg => 0x20,
        Field::TcpFlagsEce => 0x40,
        Field::TcpFlagsCwr => 0x80,
        _ => return None,
    })
}

fn cmp_set(op: CmpOp, v: i64) -> R<Vec<(i64, i64)>> {
    // Nothing is below i64::MIN or above i64::MAX: an empty side, not an overflow.
    let below = v.checked_sub(1).map(|b| (i64::MIN, b));
    let above = v.checked_add(1).map(|a| (a, i64::MAX));
    Ok(match op {
        CmpOp::Eq => vec![(v, v)],
        CmpOp::Ne => below.into_iter().chain(above).collect(),
        CmpOp::Lt => below.into_iter().collect(),
        CmpOp::Le => vec![(i64::MIN, v)],
        CmpOp::Gt => above.into_iter().collect(),
        CmpOp::Ge => vec![(v, i64::MAX)],
        other => return Err(format!("`{other:?}` on an integer").to_lowercase()),
    })
}

/// A typed expression as a formula over XDP-matchable fields, one arm per expression kind.
// Long as a table is long: each arm is short, and what XDP can express reads best in one place.
fn lower(e: &TExpr) -> R<F> {
    match &e.kind {
        TKind::Const(Value::Bool(b)) => Ok(if *b { F::True } else { F::False }),
        TKind::Field(fd) => match flag_bit(*fd) {
            Some(bit) => Ok(values(
                field::TCP_FLAGS,
                (0u32..256)
                    .filter(|v| *v as u8 & bit != 0)
                    .map(|v| (v, v))
                    .collect(),
            )),
            None => Err(format!(
                "`{}` is not classified by the XDP program",
                fd.name()
            )),
        },
        TKind::Not(inner) => negate(lower(inner)?),
        TKind::Logic { op, lhs, rhs } => {
            let (l, r) = (lower(lhs)?, lower(rhs)?);
            Ok(match op {
                Logic::And => F::And(vec![l, r]),
                Logic::Or => F::Or(vec![l, r]),
                Logic::Xor => {
                    if 2 * (size(&l) + size(&r)) > MAX_FORMULA_NODES {
                        return Err(format!(
                            "it is too large to expand (more than {MAX_FORMULA_NODES} terms once `xor` is written with `and`, `or` and `not`)"
                        ));
                    }
                    let (nl, nr) = (negate(l.clone())?, negate(r.clone())?);
                    F::Or(vec![F::And(vec![l, nr]), F::And(vec![nl, r])])
                }
            })
        }
        TKind::Cmp {
            op,
            lhs,
            rhs,
            lifted: false,
        } => match (&lhs.kind, &rhs.kind) {
            (TKind::Field(fd), TKind::Const(Value::Int(v))) => int_field(*fd, &cmp_set(*op, *v)?),
            (TKind::Field(fd), TKind::Const(Value::Bool(b)))
                if matches!(op, CmpOp::Eq | CmpOp::Ne) =>
            {
                let bit = flag_bit(*fd).ok_or_else(|| {
                    format!("`{}` is not classified by the XDP program", fd.name())
                })?;
                // `flag eq false` holds only when TCP flags are present and the bit is clear: an
                // absent field makes every comparison false (not the same as `not flag`).
                let want_set = *b == (*op == CmpOp::Eq);
                Ok(values(
                    field::TCP_FLAGS,
                    (0u32..256)
                        .filter(|v| (*v as u8 & bit != 0) == want_set)
                        .map(|v| (v, v))
                        .collect(),
                ))
            }
            (TKind::Field(fd @ (Field::IpSrc | Field::IpDst)), TKind::Const(Value::Ip(a)))
                if matches!(op, CmpOp::Eq | CmpOp::Ne) =>
            {
                let f = F::Atom(Atom::Prefixes(
                    *fd == Field::IpDst,
                    vec![Prefix::new(*a, 128)],
                ));
                if *op == CmpOp::Eq {
                    Ok(f)
                } else {
                    negate(f)
                }
            }
            (TKind::Slice { base, start, end }, TKind::Const(Value::Bytes(want)))
                if *op == CmpOp::Eq =>
            {
                if !matches!(base.kind, TKind::Field(Field::Payload)) {
                    return Err("only `payload[a:b]` slices are read by the XDP program".into());
                }
                let len = end - start;
                if len != want.len() {
                    // A slice never equals bytes of another length.
                    return Ok(F::False);
                }
                if len == 0 || len > MAX_PAYLOAD_MATCH || *start > u16::MAX as usize {
                    return Err(format!("payload matches compare 1 to {MAX_PAYLOAD_MATCH} bytes, this compares {len}"));
                }
                Ok(F::Atom(Atom::Payload(PayloadMatch {
                    base: PayloadBase::Data,
                    offset: *start as u16,
                    mask: vec![0xff; len],
                    value: want.clone(),
                })))
            }
            (_, TKind::Const(_)) => Err(unsupported(lhs, &format!("`{op:?}` here").to_lowercase())),
            _ => Err(
                "comparing with another field or a computed value (only constants are compiled)"
                    .into(),
            ),
        },
        TKind::In {
            lhs,
            set,
            lifted: false,
        } => match (&lhs.kind, set.as_ref()) {
            (TKind::Field(fd), ValueSet::Int(ranges)) => int_field(*fd, ranges),
            (TKind::Field(fd @ (Field::IpSrc | Field::IpDst)), ValueSet::Ip(ips)) => Ok(F::Atom(
                Atom::Prefixes(*fd == Field::IpDst, ips.prefixes.clone()),
            )),
            _ => Err(unsupported(lhs, "this `in` test")),
        },
        TKind::Call { func, .. } => Err(format!("the function `{func:?}`").to_lowercase()),
        TKind::Matches { .. } => Err("regex matching".into()),
        TKind::Wildcard { .. } => Err("wildcard matching".into()),
        _ => Err("this expression".into()),
    }
}

/// Names the construct that keeps an operand out of the table.
fn unsupported(e: &TExpr, fallback: &str) -> String {
    match &e.kind {
        TKind::Call { func, .. } => format!("the function `{func:?}`").to_lowercase(),
        TKind::Field(f) if f.layer() != crate::lang::Layer::L34 => {
            format!("`{}` is an HTTP field", f.name())
        }
        TKind::Field(Field::Payload) => {
            "`payload` is read only as `payload[a:b] eq \"...\"`".into()
        }
        TKind::Field(f) => match int_field(*f, &[]) {
            Err(why) => why,
            Ok(_) => fallback.to_string(),
        },
        TKind::Index { base, .. } | TKind::Slice { base, .. } => unsupported(base, fallback),
        _ => fallback.to_string(),
    }
}

type Conj = Vec<Atom>;

fn dnf(f: F) -> R<Vec<Conj>> {
    Ok(match f {
        F::True => vec![vec![]],
        F::False => vec![],
        F::Atom(a) => vec![vec![a]],
        F::Or(v) => {
            let mut out = Vec::new();
            for x in v {
                out.extend(dnf(x)?);
                if out.len() > MAX_ENTRIES_PER_RULE {
                    return Err(format!(
                        "it expands to more than {MAX_ENTRIES_PER_RULE} table entries"
                    ));
                }
            }
            out
        }
        F::And(v) => {
            let mut acc: Vec<Conj> = vec![vec![]];
            for x in v {
                let terms = dnf(x)?;
                let mut next = Vec::new();
                for a in &acc {
                    for t in &terms {
                        let mut c = a.clone();
                        c.extend(t.iter().cloned());
                        next.push(c);
                    }
                }
                if next.len() > MAX_ENTRIES_PER_RULE {
                    return Err(format!(
                        "it expands to more than {MAX_ENTRIES_PER_RULE} table entries"
                    ));
                }
                acc = next;
            }
            acc
        }
    })
}

/// One conjunction as an entry, or `None` when it can never match.
fn entry(id: u32, action: Action, c: Conj) -> R<Option<RuleSpec>> {
    let mut r = RuleSpec::new(id, action);
    let mut sets: HashMap<u32, ValueRanges> = HashMap::new();
    let mut addrs: [Option<Vec<Prefix>>; 2] = [None, None];
    for atom in c {
        match atom {
            Atom::Values(f, s) => {
                let merged = match sets.remove(&f) {
                    Some(prev) => intersect(&prev, &s),
                    None => s,
                };
                sets.insert(f, merged);
            }
            Atom::Prefixes(dst, s) => {
                let slot = &mut addrs[dst as usize];
                *slot = Some(match slot.take() {
                    Some(prev) => prefix_intersect(&prev, &s)?,
                    None => s,
                });
            }
            Atom::Payload(p) => {
                if r.payload.as_ref().is_some_and(|q| *q != p) {
                    return Err("two different payload matches in one conjunction".into());
                }
                r.payload = Some(p);
            }
        }
    }
    if sets.values().any(Vec::is_empty) || addrs.iter().flatten().any(Vec::is_empty) {
        return Ok(None);
    }
    for (f, s) in sets {
        let slot = match f {
            field::PROTO => &mut r.proto,
            field::TTL => &mut r.ttl,
            field::TCP_FLAGS => &mut r.tcp_flags,
            field::VLAN => &mut r.vlan,
            field::SPORT => &mut r.sport,
            field::DPORT => &mut r.dport,
            _ => &mut r.ip_len,
        };
        // A set covering the whole domain is no constraint.
        *slot = if s == vec![(0, domain_max(f))] {
            None
        } else {
            Some(s)
        };
    }
    let [src, dst] = addrs;
    r.src = src.filter(|s| !s.contains(&Prefix::ANY));
    r.dst = dst.filter(|s| !s.contains(&Prefix::ANY));
    Ok(Some(r))
}

/// Lowers one checked rule expression to its table entries (in order). An empty result means the
/// expression can never match an IP packet.
pub fn lower_rule(id: u32, action: Action, e: &TExpr) -> R<Vec<RuleSpec>> {
    let mut out = Vec::new();
    for c in dnf(lower(e)?)? {
        if let Some(r) = entry(id, action, c)? {
            out.push(r);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::{compile_expr, Lists};
    use rampart_common::rules::{ABSENT_PORT, ABSENT_TCP_FLAGS};

    fn lower_src(src: &str) -> R<Vec<RuleSpec>> {
        let e = compile_expr(src, &Lists::new()).map_err(|e| e.to_string())?;
        lower_rule(1, Action::Drop, &e)
    }

    #[test]
    fn ports_imply_their_protocol() {
        let v = lower_src("tcp.dstport eq 80").unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].proto, Some(vec![(6, 6)]));
        assert_eq!(v[0].dport, Some(vec![(80, 80)]));
    }

    #[test]
    fn negation_covers_absent_values() {
        // not (proto 6 and dport 80) = proto != 6, or dport != 80 (absent included).
        let v = lower_src("not tcp.dstport eq 80").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].proto, Some(vec![(0, 5), (7, 255)]));
        assert_eq!(v[1].dport, Some(vec![(0, 79), (81, ABSENT_PORT)]));
        let f = lower_src("not tcp.flags.syn").unwrap();
        assert!(f[0]
            .tcp_flags
            .as_ref()
            .unwrap()
            .contains(&(ABSENT_TCP_FLAGS, ABSENT_TCP_FLAGS)));
    }

    #[test]
    fn disjunctions_expand_and_contradictions_vanish() {
        assert_eq!(
            lower_src("udp.dstport in {53 123} or tcp.dstport eq 53")
                .unwrap()
                .len(),
            2
        );
        assert!(lower_src("ip.proto eq 6 and ip.proto eq 17")
            .unwrap()
            .is_empty());
        assert_eq!(
            lower_src("ip.ttl lt 5 and ip.ttl gt 1").unwrap()[0].ttl,
            Some(vec![(2, 4)])
        );
    }

    #[test]
    fn prefixes_and_their_complement() {
        let v = lower_src("ip.src in {10.0.0.0/8} and not ip.src in {10.1.0.0/16}").unwrap();
        let src = v[0].src.as_ref().unwrap();
        let inside: Prefix = "10.2.0.0/16".parse().unwrap();
        let outside: Prefix = "10.1.2.0/24".parse().unwrap();
        assert!(src.iter().any(|p| p.contains(&inside)));
        assert!(!src
            .iter()
            .any(|p| p.contains(&outside) || outside.contains(p)));
    }

    #[test]
    fn refuses_what_it_cannot_express() {
        for (src, why) in [
            ("len(payload) gt 4", "function"),
            ("not payload[0:2] eq \"ab\"", "negated payload"),
            ("ip.id eq 5", "`ip.id` is not classified"),
            ("payload contains \"x\"", "`payload` is read only as"),
            ("http.host eq \"a\"", "HTTP field"),
        ] {
            let e = lower_src(src).unwrap_err();
            assert!(e.contains(why), "{src}: {e}");
        }
        let many = (0..70)
            .map(|i| format!("tcp.dstport eq {i}"))
            .collect::<Vec<_>>()
            .join(" or ");
        assert!(lower_src(&many).unwrap_err().contains("more than 64"));
    }
}
