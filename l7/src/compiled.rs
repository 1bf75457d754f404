//! A rule set prepared for the engine: the L7 rules in order, each with its phase (head or
//! body), its rate-limit parameters and a hit counter.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;

use rampart_rules::lang::{Field, TExpr};
use rampart_rules::{Mode, RateLimitExprs, RuleAction, RuleSet, ScoreClass};

use super::ratelimit::Limit;
use super::EngineError;

/// When a rule can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// On the request head.
    Head,
    /// Once the body has been read (it reads the body, or scores raised by body rules).
    Body,
}

pub(crate) struct RateLimitRule {
    pub limit: Limit,
    pub exprs: RateLimitExprs,
    pub jail_after: Option<u32>,
    pub jail_seconds: u64,
}

pub(crate) struct CompiledRule {
    pub id: u32,
    pub reference: Option<String>,
    pub action: RuleAction,
    pub mode: Mode,
    pub expr: TExpr,
    pub fields: Vec<Field>,
    pub phase: Phase,
    pub class: Option<ScoreClass>,
    pub status: Option<u16>,
    pub ratelimit: Option<RateLimitRule>,
    pub hits: AtomicU64,
}

pub(crate) struct Compiled {
    pub rules: Vec<CompiledRule>,
    pub file: String,
    /// Some rule reads the body: the body must be buffered (up to the limit).
    pub needs_body: bool,
}

fn is_body(f: Field) -> bool {
    matches!(
        f,
        Field::HttpBodyRaw | Field::HttpBodyForm | Field::HttpBodyTruncated | Field::HttpBodyError
    )
}

fn is_score(f: Field) -> bool {
    matches!(
        f,
        Field::WafScore
            | Field::WafScoreSqli
            | Field::WafScoreXss
            | Field::WafScoreRce
            | Field::WafScoreLfi
            | Field::WafScoreProtocol
    )
}

impl Compiled {
    /// The enabled L7 rules of `sets`, in order, at or below `paranoia`.
    pub fn new(sets: &[&RuleSet], paranoia: u8) -> Result<Compiled, EngineError> {
        let mut rules: Vec<CompiledRule> = Vec::new();
        let mut body_scores = false;
        let mut seen: HashMap<u32, &str> = HashMap::new();
        for (set, r) in sets.iter().flat_map(|s| s.l7_rules().map(move |r| (s, r))) {
            if let Some(first) = seen.insert(r.id, &set.file) {
                return Err(EngineError::duplicate_rule_id(
                    r.id,
                    first.to_string(),
                    set.file.clone(),
                ));
            }
            if r.l7.paranoia > paranoia {
                continue;
            }
            let mut fields = HashSet::new();
            r.expr.fields(&mut fields);
            let mut all = fields.clone();
            if let Some(rl) = &r.l7.ratelimit {
                rl.keys.iter().for_each(|k| k.fields(&mut all));
            }
            let reads_body = all.iter().any(|f| is_body(*f));
            let reads_score = all.iter().any(|f| is_score(*f));
            let phase = if reads_body || (reads_score && body_scores) {
                Phase::Body
            } else {
                Phase::Head
            };
            if phase == Phase::Body && matches!(r.action, RuleAction::Score(_)) {
                body_scores = true;
            }
            let ratelimit = match (&r.action, &r.l7.ratelimit) {
                (RuleAction::L7RateLimit(doc), Some(exprs)) => Some(RateLimitRule {
                    limit: Limit {
                        period_ms: doc.period.saturating_mul(1000),
                        requests_per_period: doc.requests_per_period,
                        mitigation_timeout_ms: doc.mitigation_timeout.saturating_mul(1000),
                    },
                    exprs: exprs.clone(),
                    jail_after: doc.jail_after,
                    jail_seconds: doc.jail_duration.unwrap_or(0),
                }),
                _ => None,
            };
            let mut fields: Vec<Field> = fields.into_iter().collect();
            fields.sort_by_key(|f| f.name());
            rules.push(CompiledRule {
                id: r.id,
                reference: r.reference.clone(),
                action: r.action.clone(),
                mode: r.mode,
                expr: r.expr.clone(),
                fields,
                phase,
                class: r.l7.class,
                status: r.l7.status,
                ratelimit,
                hits: AtomicU64::new(0),
            });
        }
        let needs_body = rules.iter().any(|r| r.phase == Phase::Body);
        Ok(Compiled {
            rules,
            file: sets
                .iter()
                .map(|s| s.file.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            needs_body,
        })
    }
}
