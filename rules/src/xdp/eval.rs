//! The host evaluator for L3/L4 rules: the kernel's rule-table semantics computed directly from
//! the rules (no tables), so kernel results can be checked against it.

use rampart_common::{
    limits::MAX_RULE_CANDIDATES,
    parsed::ParsedFields,
    rules::{ClassValues, PAYLOAD_BASE_L3, PAYLOAD_BASE_L4},
    Reason,
};

use super::spec::{Action, RuleSpec};
use crate::Prefix;

/// The rule stage's verdict for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostVerdict {
    pub drop: bool,
    /// The rule that decided (`None`: no rule decided).
    pub rule_id: Option<u32>,
    pub reason: Reason,
    /// Log-mode rules that matched on the way.
    pub logged: u32,
}

fn in_ranges(set: &Option<Vec<(u32, u32)>>, v: u32) -> bool {
    set.as_ref()
        .is_none_or(|r| r.iter().any(|(lo, hi)| *lo <= v && v <= *hi))
}

impl RuleSpec {
    /// True when the packet satisfies every classified field (everything but the payload),
    /// with the values the kernel classifies on (absent ports, flags and VLAN included).
    pub fn matches_fields(&self, p: &ParsedFields) -> bool {
        let ClassValues {
            sport,
            dport,
            tcp_flags,
            vlan,
        } = ClassValues::of(p);
        let in_prefixes = |set: &Option<Vec<Prefix>>, a| {
            set.as_ref()
                .is_none_or(|ps| ps.iter().any(|x| x.contains_addr(a)))
        };
        in_ranges(&self.proto, p.proto as u32)
            && in_ranges(&self.ttl, p.ttl as u32)
            && in_ranges(&self.tcp_flags, tcp_flags)
            && in_ranges(&self.vlan, vlan)
            && in_ranges(&self.sport, sport)
            && in_ranges(&self.dport, dport)
            && in_ranges(&self.ip_len, p.ip_len as u32)
            && in_prefixes(&self.src, &p.src)
            && in_prefixes(&self.dst, &p.dst)
    }

    /// True when the payload match (if any) holds on `frame` (the whole Ethernet frame).
    pub fn matches_payload(&self, p: &ParsedFields, frame: &[u8]) -> bool {
        let Some(pm) = &self.payload else { return true };
        let base = match pm.base.code() {
            PAYLOAD_BASE_L3 => p.l3_offset,
            PAYLOAD_BASE_L4 => p.l4_offset,
            _ => p.payload_offset,
        } as usize;
        let start = base + pm.offset as usize;
        let end = start + pm.value.len();
        // Bytes past the IP datagram (Ethernet padding) are not payload, as in the kernel.
        if end > crate::packet::datagram_end(p, frame) {
            return false;
        }
        frame[start..end]
            .iter()
            .zip(&pm.mask)
            .zip(&pm.value)
            .all(|((b, m), v)| b & m == *v)
    }
}

/// Evaluates the rule stage for one parsed packet, the way the kernel does: rules in order, at
/// most `MAX_RULE_CANDIDATES` field-matching rules tried, log rules count and continue.
/// `conforms` decides rate-limit rules (the caller models the bucket state).
pub fn evaluate(
    rules: &[RuleSpec],
    p: &ParsedFields,
    frame: &[u8],
    mut conforms: impl FnMut(&RuleSpec, &ParsedFields) -> bool,
) -> HostVerdict {
    let mut v = HostVerdict {
        drop: false,
        rule_id: None,
        reason: Reason::PassNoMatch,
        logged: 0,
    };
    for r in rules
        .iter()
        .filter(|r| r.matches_fields(p))
        .take(MAX_RULE_CANDIDATES)
    {
        if !r.matches_payload(p, frame) {
            continue;
        }
        match r.action {
            Action::Log => v.logged += 1,
            Action::Drop => {
                return HostVerdict {
                    drop: true,
                    rule_id: Some(r.id),
                    reason: Reason::DropRule,
                    ..v
                }
            }
            Action::Pass => {
                return HostVerdict {
                    rule_id: Some(r.id),
                    reason: Reason::PassRule,
                    ..v
                }
            }
            Action::RateLimit { .. } => {
                let ok = conforms(r, p);
                let reason = if ok {
                    Reason::PassRateLimit
                } else {
                    Reason::DropRateLimit
                };
                return HostVerdict {
                    drop: !ok,
                    rule_id: Some(r.id),
                    reason,
                    ..v
                };
            }
        }
    }
    v
}
