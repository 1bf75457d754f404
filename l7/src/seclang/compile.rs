//! Directives → a [`RuleSet`]: chains linked, `SecDefaultAction` applied, removals and target
//! updates done, operators and selectors compiled, and rules laid out per phase in file order
//! with the markers `skipAfter` jumps to.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use regex_automata::meta::Regex;
use regex_automata::util::syntax;

use super::actions::{Actions, Disruptive, Effect};
use super::ast::{Directive, EngineMode, IdRange, Location, RuleAst, Selector, Target};
use super::error::{SecLangError, SecLangErrorKind};
use super::operator::{Operator, OperatorError};
use super::prefilter::{PfSlot, Prefilter};
use super::transform::Transform;
use super::vars;

/// A compiled SecLang rule set, ready to evaluate requests.
#[derive(Debug)]
pub struct RuleSet {
    pub(super) rules: Vec<Rule>,
    /// Per phase (index 0 = phase 1): rule indices and markers, in file order.
    pub(super) phases: [Vec<Item>; 5],
    pub(super) engine: EngineMode,
    pub(super) stats: LoadStats,
    /// Some rule reads `FULL_REQUEST` or `FULL_REQUEST_LENGTH`.
    pub(super) full_request: bool,
    pub(super) prefilter: Prefilter,
}

/// What loading found, for operators to read (and tests to check).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub rules: usize,
    /// `@rx` patterns that needed the backtracking fallback.
    pub rx_fallback: usize,
    /// Rules reading response variables (they never match on requests).
    pub response_rules: usize,
    /// Rules reading persistent collections (`IP`, `SESSION` …), which stay empty here.
    pub persistent_rules: usize,
    /// Operators that never match here (`@geoLookup`, `@rbl`: no database or DNS lookups).
    pub unavailable_operators: usize,
    /// Directives accepted that change nothing here (`SecRequestBodyLimit` …).
    pub ignored_directives: usize,
    /// Chain links whose operator the prefilter skips on values that hold none of its needles.
    pub prefiltered_links: usize,
}

#[derive(Debug)]
pub(super) enum Item {
    /// A rule, and where `skipAfter` sends evaluation (the index after its marker in this
    /// phase's list; the list's end when the marker is not later in this phase).
    Rule {
        rule: usize,
        skip_to: Option<usize>,
    },
    Marker(String),
}

/// A rule and its chained links; `links[0]` carries the metadata.
#[derive(Debug)]
pub(super) struct Rule {
    pub id: u32,
    pub phase: u8,
    pub msg: Option<String>,
    pub logdata: Option<String>,
    pub tags: Vec<String>,
    pub severity: Option<String>,
    pub log: bool,
    pub disruptive: Disruptive,
    pub status: Option<u16>,
    pub skip_after: Option<String>,
    pub skip: u32,
    pub links: Vec<Link>,
    pub location: Location,
}

#[derive(Debug)]
pub(super) struct Link {
    /// Empty for `SecAction` (matches once, unconditionally).
    pub targets: Vec<CTarget>,
    pub operator: Operator,
    pub transforms: Vec<Transform>,
    /// The same number for links with the same transformation list, so a transaction
    /// transforms each value once per list, not once per rule.
    pub chain_id: u32,
    /// Per transformation `i`: the number of the list `transforms[..=i]` when that result is
    /// worth keeping for other rules (a prefix other lists share, or the whole list), else
    /// `None`. The last one is always `Some(chain_id)`.
    pub prefix_ids: Vec<Option<u32>>,
    pub capture: bool,
    pub multi_match: bool,
    pub effects: Vec<Effect>,
    /// The link's bit in the prefilter, when its operator has needles.
    pub pf: Option<PfSlot>,
}

/// A compiled target with the `!` exclusions written for its collection.
#[derive(Debug)]
pub(super) struct CTarget {
    pub name: &'static str,
    /// [`vars::var_id`] of `name`.
    pub id: u16,
    pub selector: CSel,
    pub count: bool,
    pub exclude: Vec<CSel>,
    /// For `TX:name`: the lower-cased name, so the value is one hash lookup (TX keys are
    /// stored lower-cased) instead of a scan of every TX entry.
    pub tx_key: Option<String>,
}

/// `TX:Name` → `Some("name")`; any other target (or a regex / whole-collection selector) → None.
fn tx_key(name: &str, sel: &CSel) -> Option<String> {
    match sel {
        CSel::Key(k) if name == "TX" => Some(String::from_utf8_lossy(k).to_ascii_lowercase())
            .filter(|s| s.as_bytes().eq_ignore_ascii_case(k)),
        _ => None,
    }
}

#[derive(Debug)]
pub(super) enum CSel {
    All,
    Key(Vec<u8>),
    Regex(Regex),
}

impl CSel {
    pub fn admits(&self, key: &[u8]) -> bool {
        match self {
            CSel::All => true,
            CSel::Key(k) => key.eq_ignore_ascii_case(k),
            CSel::Regex(r) => r.is_match(key),
        }
    }
}

impl RuleSet {
    /// Compiles directives parsed from files under `base_dir` (data files resolve there).
    pub fn compile(directives: &[Directive], base_dir: &Path) -> Result<RuleSet, SecLangError> {
        let mut b = Builder {
            base_dir,
            defaults: HashMap::new(),
            rules: Vec::new(),
            order: Vec::new(),
            engine: EngineMode::On,
            stats: LoadStats::default(),
            pending: None,
            chains: HashMap::new(),
        };
        for d in directives {
            b.directive(d)?;
        }
        if let Some((_, loc)) = b.pending.take() {
            return Err(SecLangError::new(
                loc,
                SecLangErrorKind::BadArgument,
                "chain without a next rule",
            ));
        }
        b.finish()
    }

    pub fn stats(&self) -> &LoadStats {
        &self.stats
    }

    pub fn engine_mode(&self) -> EngineMode {
        self.engine
    }
}

enum Slot {
    Rule(usize),
    Marker(String),
    Removed,
}

struct Builder<'a> {
    base_dir: &'a Path,
    /// `SecDefaultAction` per phase.
    defaults: HashMap<u8, Actions>,
    rules: Vec<Rule>,
    order: Vec<Slot>,
    engine: EngineMode,
    stats: LoadStats,
    /// The rule whose `chain` is waiting for its next link.
    pending: Option<(usize, Location)>,
    /// Transformation lists seen, numbered.
    chains: HashMap<Vec<Transform>, u32>,
}

impl Builder<'_> {
    fn directive(&mut self, d: &Directive) -> Result<(), SecLangError> {
        if self.pending.is_some() && !matches!(d, Directive::Rule(_)) {
            let (_, loc) = self.pending.take().unwrap_or_else(|| unreachable!());
            return Err(SecLangError::new(
                loc,
                SecLangErrorKind::BadArgument,
                "chain is not followed by a rule",
            ));
        }
        match d {
            Directive::Rule(r) => self.rule(r)?,
            Directive::Marker { name, .. } => self.order.push(Slot::Marker(name.clone())),
            Directive::DefaultAction { actions, location } => {
                let a = Actions::read(actions, location)?;
                self.defaults.insert(a.phase.unwrap_or(2), a);
            }
            Directive::RemoveById { ids, .. } => self.remove(|r| in_ranges(ids, r.id)),
            Directive::RemoveByTag { tag, .. } => self.remove(|r| r.tags.iter().any(|t| t == tag)),
            Directive::RemoveByMsg { msg, .. } => self.remove(|r| r.msg.as_deref() == Some(msg)),
            Directive::UpdateTargetById {
                ids,
                targets,
                replaced,
                location,
            } => {
                for rule in self.rules.iter_mut().filter(|r| in_ranges(ids, r.id)) {
                    update_targets(
                        &mut rule.links[0].targets,
                        targets,
                        replaced.as_deref(),
                        location,
                    )?;
                }
            }
            Directive::UpdateTargetByTag {
                tag,
                targets,
                location,
            } => {
                for rule in self
                    .rules
                    .iter_mut()
                    .filter(|r| r.tags.iter().any(|t| t == tag))
                {
                    update_targets(&mut rule.links[0].targets, targets, None, location)?;
                }
            }
            Directive::UpdateActionById {
                id,
                actions,
                location,
            } => {
                let a = Actions::read(actions, location)?;
                for rule in self.rules.iter_mut().filter(|r| r.id == *id) {
                    if let Some(d) = a.disruptive {
                        rule.disruptive = d;
                    }
                    if a.msg.is_some() {
                        rule.msg = a.msg.clone();
                    }
                    rule.tags.extend(a.tags.iter().cloned());
                    rule.links[0].effects.extend(a.effects.iter().cloned());
                }
            }
            Directive::RuleEngine { mode, .. } => self.engine = *mode,
            Directive::ComponentSignature { .. } => {}
            Directive::Ignored { .. } => self.stats.ignored_directives += 1,
        }
        Ok(())
    }

    fn rule(&mut self, r: &RuleAst) -> Result<(), SecLangError> {
        let own = Actions::read(&r.actions, &r.location)?;
        let link = |b: &mut Self,
                    transforms: Vec<Transform>,
                    a: &Actions|
         -> Result<Link, SecLangError> {
            let mut prefix_ids = Vec::with_capacity(transforms.len());
            for i in 0..transforms.len() {
                let next = b.chains.len() as u32;
                let id = *b.chains.entry(transforms[..=i].to_vec()).or_insert(next);
                prefix_ids.push(Some(id));
            }
            let next = b.chains.len() as u32;
            let chain_id = *b.chains.entry(transforms.clone()).or_insert(next);
            // The transform cache keys a list by 16 bits.
            if b.chains.len() > MAX_TRANSFORM_LISTS {
                return Err(SecLangError::new(
                        r.location.clone(),
                        SecLangErrorKind::BadArgument,
                        format!("more than {MAX_TRANSFORM_LISTS} distinct transformation lists (and prefixes) in one rule set"),
                    ));
            }
            Ok(Link {
                targets: b.targets(&r.targets, &r.location)?,
                operator: b.operator(r)?,
                transforms,
                chain_id,
                prefix_ids,
                capture: a.capture,
                multi_match: a.multi_match,
                effects: a.effects.clone(),
                pf: None,
            })
        };
        if let Some((parent, _)) = self.pending.take() {
            // A chained link: its metadata belongs to the chain's first rule.
            let l = link(self, own.transforms.clone(), &own)?;
            self.rules[parent].links.push(l);
            if own.chain {
                self.pending = Some((parent, r.location.clone()));
            }
            return Ok(());
        }
        let phase = own.phase.unwrap_or(2);
        let default = self.defaults.get(&phase).cloned().unwrap_or_default();
        let mut transforms = if own.t_none {
            Vec::new()
        } else {
            default.transforms.clone()
        };
        transforms.extend(own.transforms.iter().copied());
        let id = own.id.ok_or_else(|| {
            SecLangError::new(
                r.location.clone(),
                SecLangErrorKind::BadArgument,
                "rule has no id action",
            )
        })?;
        if self.rules.iter().any(|x| x.id == id) {
            return Err(SecLangError::new(
                r.location.clone(),
                SecLangErrorKind::BadArgument,
                format!("duplicate rule id {id}"),
            ));
        }
        let first = link(self, transforms, &own)?;
        let rule = Rule {
            id,
            phase,
            msg: own.msg.clone(),
            logdata: own.logdata.clone(),
            tags: own.tags.clone(),
            severity: own.severity.clone(),
            log: own.log.or(default.log).unwrap_or(true),
            // `block` is whatever the phase's SecDefaultAction says (CRS: pass).
            disruptive: match own.disruptive.or(default.disruptive) {
                Some(Disruptive::Block) => default
                    .disruptive
                    .filter(|d| *d != Disruptive::Block)
                    .unwrap_or(Disruptive::Pass),
                Some(d) => d,
                None => Disruptive::Pass,
            },
            status: own.status.or(default.status),
            skip_after: own.skip_after.clone(),
            skip: own.skip,
            links: vec![first],
            location: r.location.clone(),
        };
        self.rules.push(rule);
        self.order.push(Slot::Rule(self.rules.len() - 1));
        if own.chain {
            self.pending = Some((self.rules.len() - 1, r.location.clone()));
        }
        Ok(())
    }

    fn targets(&mut self, ts: &[Target], at: &Location) -> Result<Vec<CTarget>, SecLangError> {
        let mut out: Vec<CTarget> = Vec::new();
        let mut excludes: Vec<(&'static str, CSel)> = Vec::new();
        let (mut response, mut persistent) = (false, false);
        for t in ts {
            let name = known_var(t, at)?;
            response |= vars::is_response(name);
            persistent |= vars::PERSISTENT.contains(&name);
            let selector = selector(&t.selector, at)?;
            if t.negated {
                excludes.push((name, selector));
            } else {
                out.push(CTarget {
                    name,
                    id: var_id(name),
                    tx_key: tx_key(name, &selector),
                    selector,
                    count: t.count,
                    exclude: Vec::new(),
                });
            }
        }
        for (name, sel) in excludes {
            // `!ARGS:x` excludes from every target of that collection in this rule.
            match out
                .iter_mut()
                .filter(|t| t.name == name)
                .collect::<Vec<_>>()
                .as_mut_slice()
            {
                [] => {}
                [first, rest @ ..] => {
                    for t in rest {
                        t.exclude.push(selector_clone(&sel));
                    }
                    first.exclude.push(sel);
                }
            }
        }
        self.stats.response_rules += usize::from(response);
        self.stats.persistent_rules += usize::from(persistent);
        Ok(out)
    }

    fn operator(&mut self, r: &RuleAst) -> Result<Operator, SecLangError> {
        // Data files resolve next to the rule file that names them (as ModSecurity does),
        // else against the caller's folder (rules given as text).
        let file_dir = Path::new(&*r.location.file).parent().filter(|d| d.is_dir());
        let op = Operator::compile(&r.operator, file_dir.unwrap_or(self.base_dir)).map_err(
            |e| match e {
                OperatorError::Unknown(name) => SecLangError::new(
                    r.location.clone(),
                    SecLangErrorKind::UnknownOperator,
                    format!("unknown operator @{name}"),
                ),
                OperatorError::BadArgument(why) => SecLangError::new(
                    r.location.clone(),
                    SecLangErrorKind::BadArgument,
                    format!("@{}: {why}", r.operator.name),
                ),
            },
        )?;
        self.stats.rx_fallback += usize::from(op.uses_fallback());
        self.stats.unavailable_operators += usize::from(op.unavailable());
        Ok(op)
    }

    fn remove(&mut self, pred: impl Fn(&Rule) -> bool) {
        for slot in &mut self.order {
            if let Slot::Rule(i) = slot {
                if pred(&self.rules[*i]) {
                    *slot = Slot::Removed;
                }
            }
        }
    }

    fn finish(mut self) -> Result<RuleSet, SecLangError> {
        // A prefix result is kept when two different lists start with it, or a list is it.
        let mut users: HashMap<u32, HashSet<u32>> = HashMap::new();
        for link in self.rules.iter().flat_map(|r| &r.links) {
            for id in link.prefix_ids.iter().flatten() {
                users.entry(*id).or_default().insert(link.chain_id);
            }
        }
        for link in self.rules.iter_mut().flat_map(|r| &mut r.links) {
            let last = link.prefix_ids.len().saturating_sub(1);
            for (i, p) in link.prefix_ids.iter_mut().enumerate() {
                let shared = p.is_some_and(|id| users.get(&id).is_some_and(|u| u.len() > 1));
                if i != last && !shared {
                    *p = None;
                }
            }
        }
        let mut phases: [Vec<Item>; 5] = Default::default();
        let mut markers = HashSet::new();
        let mut live = 0;
        for slot in self.order {
            match slot {
                Slot::Rule(i) => {
                    live += 1;
                    let p = usize::from(self.rules[i].phase.clamp(1, 5)) - 1;
                    phases[p].push(Item::Rule {
                        rule: i,
                        skip_to: None,
                    });
                }
                Slot::Marker(name) => {
                    for p in &mut phases {
                        p.push(Item::Marker(name.clone()));
                    }
                    markers.insert(name);
                }
                Slot::Removed => {}
            }
        }
        for r in &self.rules {
            if let Some(m) = &r.skip_after {
                if !markers.contains(m) {
                    return Err(SecLangError::new(
                        r.location.clone(),
                        SecLangErrorKind::BadArgument,
                        format!("skipAfter:{m} names no SecMarker"),
                    ));
                }
            }
        }
        for list in &mut phases {
            let markers: Vec<(usize, String)> = list
                .iter()
                .enumerate()
                .filter_map(|(i, it)| match it {
                    Item::Marker(m) => Some((i, m.clone())),
                    Item::Rule { .. } => None,
                })
                .collect();
            let len = list.len();
            for (pos, item) in list.iter_mut().enumerate() {
                if let Item::Rule { rule, skip_to } = item {
                    if let Some(m) = &self.rules[*rule].skip_after {
                        let after = markers.iter().find(|(i, name)| *i > pos && name == m);
                        *skip_to = Some(after.map_or(len, |(i, _)| i + 1));
                    }
                }
            }
        }
        let prefilter = Prefilter::build(&mut self.rules);
        let stats = LoadStats {
            rules: live,
            prefiltered_links: Prefilter::links(&self.rules),
            ..self.stats
        };
        let full = [
            vars::var_id("FULL_REQUEST"),
            vars::var_id("FULL_REQUEST_LENGTH"),
        ];
        let full_request = self
            .rules
            .iter()
            .flat_map(|r| &r.links)
            .flat_map(|l| &l.targets)
            .any(|t| full.contains(&Some(t.id)));
        Ok(RuleSet {
            full_request,
            rules: self.rules,
            phases,
            engine: self.engine,
            stats,
            prefilter,
        })
    }
}

fn var_id(name: &'static str) -> u16 {
    vars::var_id(name).unwrap_or_else(|| unreachable!("{name} came from vars::known"))
}

/// The target's variable, or an `UnknownVariable` error at `at`.
/// Distinct transformation lists (prefixes included) a rule set may use: CRS v4 uses a few
/// dozen; the transform cache numbers them in 16 bits.
const MAX_TRANSFORM_LISTS: usize = 1 << 16;

fn known_var(t: &Target, at: &Location) -> Result<&'static str, SecLangError> {
    vars::known(&t.collection).ok_or_else(|| {
        SecLangError::new(
            at.clone(),
            SecLangErrorKind::UnknownVariable,
            format!("unknown variable {}", t.collection),
        )
    })
}

fn in_ranges(ids: &[IdRange], id: u32) -> bool {
    ids.iter().any(|r| (r.first..=r.last).contains(&id))
}

fn selector(s: &Selector, at: &Location) -> Result<CSel, SecLangError> {
    Ok(match s {
        Selector::All => CSel::All,
        Selector::Key(k) => CSel::Key(k.as_bytes().to_vec()),
        Selector::Regex(p) => CSel::Regex(key_regex(p).map_err(|e| {
            SecLangError::new(
                at.clone(),
                SecLangErrorKind::BadArgument,
                format!("selector /{p}/: {e}"),
            )
        })?),
    })
}

/// Key selectors compare case-insensitively, as keys do.
pub(super) fn key_regex(p: &str) -> Result<Regex, String> {
    Regex::builder()
        .syntax(
            syntax::Config::new()
                .case_insensitive(true)
                .unicode(false)
                .utf8(false),
        )
        .build(p)
        .map_err(|e| e.to_string())
}

fn selector_clone(s: &CSel) -> CSel {
    match s {
        CSel::All => CSel::All,
        CSel::Key(k) => CSel::Key(k.clone()),
        CSel::Regex(r) => CSel::Regex(r.clone()),
    }
}

/// `SecRuleUpdateTargetById`: `!X` adds an exclusion, `X` adds a target; with `replaced`,
/// the target `replaced` is swapped for `targets`.
fn update_targets(
    into: &mut Vec<CTarget>,
    targets: &[Target],
    replaced: Option<&[Target]>,
    at: &Location,
) -> Result<(), SecLangError> {
    if let Some(old) = replaced {
        for o in old {
            into.retain(|t| {
                let same_key = matches!((&t.selector, &o.selector), (CSel::All, Selector::All))
                    || key_is(&t.selector, &o.selector);
                !(t.name == o.collection && same_key)
            });
        }
    }
    for t in targets {
        let name = known_var(t, at)?;
        let sel = selector(&t.selector, at)?;
        if t.negated {
            for target in into.iter_mut().filter(|x| x.name == name) {
                target.exclude.push(selector_clone(&sel));
            }
        } else {
            into.push(CTarget {
                name,
                id: var_id(name),
                tx_key: tx_key(name, &sel),
                selector: sel,
                count: t.count,
                exclude: Vec::new(),
            });
        }
    }
    Ok(())
}

fn key_is(c: &CSel, s: &Selector) -> bool {
    matches!((c, s), (CSel::Key(a), Selector::Key(b)) if a.eq_ignore_ascii_case(b.as_bytes()))
}
