//! What a loaded rule file is: [`RuleSet`] and its [`Rule`]s, their actions, modes and targets,
//! and the attributes only L7 rules carry.

use serde::Deserialize;

use crate::lang::{Field, Lists, TExpr};
use crate::xdp::{RuleSpec, XdpTables};

/// What a matching rule does.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleAction {
    /// L3/L4: drop in XDP.
    Drop,
    /// L3/L4: per-source limit in XDP.
    RateLimit { packets_per_second: u64, burst: u64 },
    /// Pass (XDP) or allow the request (L7), ending evaluation.
    Allow,
    /// Count and continue.
    Log,
    /// L7: refuse the request.
    Block,
    /// L7: skip the remaining rules.
    Skip,
    /// L7: add to the anomaly score.
    Score(i64),
    /// L7: Cloudflare-style rate limit.
    L7RateLimit(L7RateLimit),
    /// L7: drop the client's address in XDP for a while.
    Jail { seconds: u64 },
    /// L7: send the request to an origin pool or a Worker handler.
    Route { target: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L7RateLimit {
    pub characteristics: Vec<String>,
    pub period: u64,
    pub requests_per_period: u64,
    #[serde(default)]
    pub mitigation_timeout: u64,
    #[serde(default)]
    pub counting_expression: Option<String>,
    /// Escalation: on the `jail_after`-th time one client enters the penalty box, its address
    /// is dropped in XDP for `jail_duration` seconds.
    #[serde(default)]
    pub jail_after: Option<u32>,
    #[serde(default)]
    pub jail_duration: Option<u64>,
}

/// The compiled parts of an L7 rate limit.
#[derive(Clone, Debug)]
pub struct RateLimitExprs {
    /// One expression per characteristic, in order; their values make the counter key.
    pub keys: Vec<TExpr>,
    /// Which requests count, evaluated on the response; `None`: every matching request counts
    /// when it arrives.
    pub counting: Option<TExpr>,
}

/// Anomaly-score classes: each has its own `waf.score.<class>` field besides the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScoreClass {
    Sqli,
    Xss,
    Rce,
    Lfi,
    Protocol,
}

impl ScoreClass {
    pub const ALL: [ScoreClass; 5] = [
        ScoreClass::Sqli,
        ScoreClass::Xss,
        ScoreClass::Rce,
        ScoreClass::Lfi,
        ScoreClass::Protocol,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScoreClass::Sqli => "sqli",
            ScoreClass::Xss => "xss",
            ScoreClass::Rce => "rce",
            ScoreClass::Lfi => "lfi",
            ScoreClass::Protocol => "protocol",
        }
    }

    pub fn field(self) -> Field {
        match self {
            ScoreClass::Sqli => Field::WafScoreSqli,
            ScoreClass::Xss => Field::WafScoreXss,
            ScoreClass::Rce => Field::WafScoreRce,
            ScoreClass::Lfi => Field::WafScoreLfi,
            ScoreClass::Protocol => Field::WafScoreProtocol,
        }
    }

    pub(super) fn lookup(name: &str) -> Option<ScoreClass> {
        ScoreClass::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What only L7 rules carry.
#[derive(Clone, Debug, Default)]
pub struct L7Attrs {
    /// 1 (default) to 4: the rule runs only when the engine's paranoia level is at least this.
    pub paranoia: u8,
    /// For `score`: the class whose score it raises (besides the total); when not given, the
    /// class of the detector the expression calls, if any.
    pub class: Option<ScoreClass>,
    /// HTTP status for `block` (403) and `ratelimit` (429) when not the default.
    pub status: Option<u16>,
    pub ratelimit: Option<RateLimitExprs>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    /// Monitor only: count (and sample) matches, never act.
    Log,
}

/// Where a rule runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Compiled to this many XDP table entries.
    Xdp {
        entries: usize,
    },
    L7,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub id: u32,
    pub reference: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub mode: Mode,
    pub action: RuleAction,
    pub expression: String,
    pub expr: TExpr,
    pub target: Target,
    pub line: usize,
    pub l7: L7Attrs,
}

/// A checked and compiled rule file.
#[derive(Clone, Debug)]
pub struct RuleSet {
    pub file: String,
    pub rules: Vec<Rule>,
    pub lists: Lists,
    /// Entries of the enabled XDP rules, in rule order.
    pub xdp_entries: Vec<RuleSpec>,
    pub xdp: XdpTables,
}

impl RuleSet {
    /// Rules that run in the L7 engine, in order.
    pub fn l7_rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules
            .iter()
            .filter(|r| r.enabled && r.target == Target::L7)
    }
}
