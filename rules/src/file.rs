//! Rule files: YAML rulesets (`version`, `lists`, `rules`) checked and compiled as a whole. Any
//! error stops the load, so a bad file never replaces a good rule set; every error names the file,
//! line and column and shows the offending text with a caret.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use marked_yaml::Spanned;
use serde::Deserialize;

use crate::lang::{
    check_rule, parse, ErrorKind, Field, Layer, Lists, Location, Origin, Span, TExpr,
};
use crate::xdp::{compile, lower_rule, Action, CompileError, RuleSpec, XdpTables};

mod error;
mod lists;
use error::yaml_error;
pub use error::{RuleError, RuleErrorKind};
use lists::load_list;

/// The file version this loader reads.
pub const FILE_VERSION: u32 = 1;

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

    fn lookup(name: &str) -> Option<ScoreClass> {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    version: Spanned<u32>,
    #[serde(default)]
    lists: BTreeMap<String, ListDoc>,
    #[serde(default)]
    rules: Vec<RuleDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListDoc {
    kind: Spanned<String>,
    #[serde(default)]
    items: Vec<Spanned<String>>,
    #[serde(default)]
    file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    id: Spanned<u32>,
    #[serde(default, rename = "ref")]
    reference: Option<String>,
    #[serde(default)]
    description: Option<String>,
    expression: Spanned<String>,
    action: Spanned<String>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    rate_limit: Option<XdpRateLimitDoc>,
    #[serde(default)]
    ratelimit: Option<L7RateLimit>,
    #[serde(default)]
    score: Option<i64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    paranoia: Option<Spanned<u8>>,
    #[serde(default)]
    class: Option<Spanned<String>>,
    #[serde(default)]
    status: Option<Spanned<u16>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct XdpRateLimitDoc {
    #[serde(default)]
    key: Vec<String>,
    packets_per_second: u64,
    burst: Option<u64>,
}

const ACTIONS: &str = "drop, rate_limit, allow, log, block, skip, score, ratelimit, jail, route";

/// Ids kept for the built-in default rules (`rules/waf/default.yaml`), present and future.
pub const DEFAULT_RULE_IDS: std::ops::RangeInclusive<u32> = 900_000..=999_999;

/// For a site's rule file `site` (its text `text`, for the caret) that runs beside `other` (the
/// default rules): refuses a rule whose id `other` uses, as the engine does at start and on
/// reload — but here with the file, line and column of the site's rule.
pub fn check_ids_beside(site: &RuleSet, text: &str, other: &RuleSet) -> Result<(), RuleError> {
    let cx = Ctx {
        file: &site.file,
        text,
    };
    for r in &site.rules {
        let Some(o) = other.rules.iter().find(|o| o.id == r.id) else {
            continue;
        };
        let id = r.id.to_string();
        let src = text.lines().nth(r.line.saturating_sub(1)).unwrap_or("");
        let column = src.find(&id).map_or(1, |i| i + 1);
        let kind = RuleErrorKind::IdOfOther {
            id: r.id,
            other_file: other.file.clone(),
            other_ref: o.reference.clone().unwrap_or_else(|| "-".into()),
        };
        return Err(cx.at(r.line, column, id.len(), kind));
    }
    Ok(())
}

/// Reads, checks and compiles a rule file. List files are read relative to its directory.
pub fn load_file(path: &Path) -> Result<RuleSet, RuleError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        RuleError::new(
            Location {
                file: name.clone(),
                line: 0,
                column: 0,
                snippet: String::new(),
            },
            RuleErrorKind::Read { why: e.to_string() },
        )
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_str(&text, &name, &dir)
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    /// An error at a 1-based line/column of the file, with that line as the snippet.
    fn at(&self, line: usize, column: usize, width: usize, kind: RuleErrorKind) -> RuleError {
        let src = self.text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        let caret = crate::lang::span::snippet(src, column.saturating_sub(1), width);
        let location = Location {
            file: self.file.to_string(),
            line,
            column,
            snippet: caret,
        };
        RuleError::new(location, kind)
    }

    fn spanned<T>(&self, s: &Spanned<T>, kind: RuleErrorKind) -> RuleError {
        let (line, col) = s.span().start().map_or((0, 0), |m| (m.line(), m.column()));
        let width = self
            .text
            .lines()
            .nth(line.saturating_sub(1))
            .map_or(1, |l| l.len().saturating_sub(col.saturating_sub(1)));
        self.at(line, col, width, kind)
    }

    /// Where the expression's first character is: after an opening quote, or on the first
    /// content line of a block scalar.
    fn origin(&self, s: &Spanned<String>) -> Origin {
        let (line, col) = s.span().start().map_or((1, 1), |m| (m.line(), m.column()));
        let src_line = self.text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        let at = src_line.chars().nth(col.saturating_sub(1));
        let (line, column) = match at {
            Some('"') | Some('\'') => (line, col + 1),
            Some('|') | Some('>') => {
                let next = self.text.lines().nth(line).unwrap_or("");
                (line + 1, next.len() - next.trim_start().len() + 1)
            }
            _ => (line, col),
        };
        Origin {
            file: self.file.to_string(),
            line,
            column,
        }
    }

    fn expr_error(&self, s: &Spanned<String>, kind: ErrorKind, span: Span) -> RuleError {
        RuleError::new(
            Location::resolve(&self.origin(s), s, span),
            RuleErrorKind::Expr(kind),
        )
    }
}

/// Checks and compiles rule-file text (`file` names it in errors; list files resolve from `dir`).
pub fn load_str(text: &str, file: &str, dir: &Path) -> Result<RuleSet, RuleError> {
    let cx = Ctx { file, text };
    // A repeated key would otherwise silently take the last value (`action: drop` then
    // `action: allow` is an allow rule).
    let options = marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true);
    let doc: FileDoc =
        marked_yaml::from_yaml_with_options(0, text, options).map_err(|e| yaml_error(&cx, e))?;
    if *doc.version != FILE_VERSION {
        return Err(cx.spanned(
            &doc.version,
            RuleErrorKind::Version {
                found: *doc.version,
            },
        ));
    }
    let mut lists = Lists::new();
    for (name, l) in &doc.lists {
        lists.insert(name.clone(), load_list(&cx, name, l, dir)?);
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
        let rule = compile_rule(&cx, r, &lists)?;
        if let (true, Target::Xdp { .. }) = (rule.enabled, &rule.target) {
            let action = match (&rule.mode, &rule.action) {
                (Mode::Log, _) | (_, RuleAction::Log) => Action::Log,
                (_, RuleAction::Drop) => Action::Drop,
                (_, RuleAction::Allow) => Action::Pass,
                (
                    _,
                    RuleAction::RateLimit {
                        packets_per_second,
                        burst,
                    },
                ) => Action::RateLimit {
                    packets_per_second: *packets_per_second,
                    burst: *burst,
                },
                _ => unreachable!("only XDP actions get an XDP target"),
            };
            let entries = lower_rule(rule.id, action, &rule.expr)
                .map_err(|why| cx.spanned(&r.expression, RuleErrorKind::Xdp { why }))?;
            xdp_entries.extend(entries);
        }
        rules.push(rule);
    }
    // Entry counts per rule, now that all are lowered.
    for rule in &mut rules {
        if let Target::Xdp { entries } = &mut rule.target {
            *entries = xdp_entries.iter().filter(|e| e.id == rule.id).count();
        }
    }
    let xdp = compile(&xdp_entries).map_err(|e| {
        let why = e.to_string();
        let line = match &e {
            CompileError::PayloadTooLong { id, .. } | CompileError::PayloadUnmatchable { id } => {
                seen.get(id).copied().unwrap_or(1)
            }
            _ => 1,
        };
        cx.at(line, 1, 1, RuleErrorKind::Xdp { why })
    })?;
    Ok(RuleSet {
        file: file.to_string(),
        rules,
        lists,
        xdp_entries,
        xdp,
    })
}

/// A rate limit's characteristics must be fields (or one key of a map field, such as
/// `http.request.headers["x-api-key"]`), its period and rate non-zero, and its counting
/// expression a valid rule expression.
fn check_l7_ratelimit(rl: &L7RateLimit, lists: &Lists) -> Result<RateLimitExprs, String> {
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
                .map_err(|(k, _)| format!("`ratelimit.counting_expression`: {k}"))?,
        ),
        None => None,
    };
    Ok(RateLimitExprs { keys, counting })
}

fn l7_attrs(
    cx: &Ctx<'_>,
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

fn compile_rule(cx: &Ctx<'_>, r: &RuleDoc, lists: &Lists) -> Result<Rule, RuleError> {
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
    let mode = match r.mode.as_ref().map(|m| m.as_str()) {
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
    };
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
