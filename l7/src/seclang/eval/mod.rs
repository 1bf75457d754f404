//! One request through a [`RuleSet`]: phases 1 and 2 in file order, `TX` and macros, chains,
//! `capture`, `skip`/`skipAfter`, runtime `ctl:` removals, and the interruption a `deny` makes.
//!
//! Response phases (3, 4) and logging (5) are not run: this engine inspects requests.

use std::borrow::Cow;
use std::cell::RefCell;

use super::actions::{Disruptive, Effect};
use super::ast::EngineMode;
use super::compile::{CSel, CTarget, Item, Link, Rule, RuleSet};
use super::operator::MatchCtx;
use super::prefilter::{self, PfSlot};
use super::vars::{HttpInput, RequestVars};

mod cache;
mod effects;
mod outcome;

use cache::*;
pub use outcome::{Interruption, MatchedRule, Outcome, TxMap};

impl RuleSet {
    /// Runs the request phases over `input`.
    pub fn evaluate(&self, input: &HttpInput) -> Outcome {
        let mut t = Tx {
            set: self,
            vars: RequestVars::from_head(input),
            tx: TxMap::default(),
            matched_var: (String::new(), Vec::new()),
            prev_matched: Vec::new(),
            removed: Vec::new(),
            removed_tags: Vec::new(),
            removed_targets: Vec::new(),
            removal_keys: Vec::new(),
            engine: self.engine,
            body_processor: default_processor(input),
            force_body: false,
            rule: None,
            outcome: Outcome::default(),
            allowed: false,
            cache: RefCell::new(CACHE_POOL.with(|p| p.take())),
            scratch: Vec::new(),
        };
        let processor = t.body_processor.clone();
        t.vars.set_processor(&processor);
        if t.engine != EngineMode::Off {
            t.phase(1);
            // A phase-1 `ctl:ruleEngine=Off` ends evaluation too.
            if t.outcome.interruption.is_none() && !t.allowed && t.engine != EngineMode::Off {
                let processor = t.body_processor.clone();
                t.vars
                    .add_body(input, &processor, t.force_body, self.full_request);
                // Body processing replaced some values (sizes, REQBODY_*): start afresh.
                t.cache.borrow_mut().reset();
                t.phase(2);
            }
        }
        let mut cache = t.cache.take();
        cache.reset();
        CACHE_POOL.with(|p| p.set(cache));
        t.outcome.tx = t.tx;
        t.outcome
    }
}

/// The processor ModSecurity's recommended configuration picks from `Content-Type`
/// (URLENCODED and MULTIPART built in, XML and JSON by its rules 200000/200001).
fn default_processor(input: &HttpInput) -> String {
    let ct = input
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(b"content-type"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let media = ct
        .split(|&c| c == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let p = if media == b"application/x-www-form-urlencoded" {
        "URLENCODED"
    } else if media.starts_with(b"multipart/form-data") {
        "MULTIPART"
    } else if media == b"application/json" || media.ends_with(b"+json") {
        "JSON"
    } else if media.ends_with(b"/xml") || media.ends_with(b"+xml") {
        "XML"
    } else {
        ""
    };
    p.to_string()
}

/// Where a value comes from: an entry of a request variable (transformed once and cached),
/// a `TX:name` read when used (only for links whose matches change nothing in `TX`), or a
/// value copied out of `TX` / `MATCHED_*` (which change as rules run).
enum Src<'r> {
    Entry {
        var: u16,
        idx: usize,
        target: usize,
    },
    TxKey {
        key: &'r str,
    },
    Owned {
        name: String,
        value: Vec<u8>,
    },
    /// Entries `0..len` of a request variable, each kept if the target admits its key, checked
    /// when used (only for links with no `ctl:`, which could change what is admitted).
    Range {
        var: u16,
        target: usize,
        len: usize,
    },
}

/// A transformed value: the raw bytes when there is nothing to do, the cached result, or a
/// value just transformed.
enum Val<'a> {
    Borrowed(&'a [u8]),
    Cached(std::cell::Ref<'a, [u8]>),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Val<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Val::Borrowed(b) => b,
            Val::Cached(r) => r,
            Val::Owned(v) => v,
        }
    }
}

fn transform_all<'a>(raw: &'a [u8], transforms: &[super::transform::Transform]) -> Cow<'a, [u8]> {
    transforms
        .iter()
        .fold(Cow::Borrowed(raw), |v, t| t.apply(v))
}

struct Tx<'r> {
    set: &'r RuleSet,
    vars: RequestVars,
    tx: TxMap,
    matched_var: (String, Vec<u8>),
    /// What the previous chain link matched (`MATCHED_VARS` in a chained rule).
    prev_matched: Vec<(String, Vec<u8>)>,
    removed: Vec<(u32, u32)>,
    removed_tags: Vec<String>,
    /// `ctl:ruleRemoveTarget…`: (id range or tag, collection, key selector).
    removed_targets: Vec<(RuleRef, &'static str, CSel)>,
    /// The `ctl:ruleRemoveTarget…` arguments already applied (each is applied once).
    removal_keys: Vec<String>,
    engine: EngineMode,
    body_processor: String,
    force_body: bool,
    /// The rule being evaluated, for `%{rule.id}` and friends.
    rule: Option<&'r Rule>,
    outcome: Outcome,
    allowed: bool,
    cache: TransformCache,
    /// The values of the link being evaluated, reused from link to link.
    scratch: Vec<Src<'r>>,
}

/// A link's bits in a variable's prefilter row: the union's at `off`, entry `i`'s at
/// `off + (i + 1) * stride`, bit `bit` of each.
#[derive(Clone, Copy)]
struct PfRow {
    off: usize,
    stride: usize,
    bit: usize,
}

impl PfRow {
    /// The bit for entry `idx` (`None`: the union).
    fn get(self, bits: &[u64], idx: Option<usize>) -> bool {
        let at = self.off + idx.map_or(0, |i| (i + 1) * self.stride);
        prefilter::get(&bits[at..], self.bit)
    }
}

enum RuleRef {
    Ids(u32, u32),
    Tag(String),
}

impl<'r> Tx<'r> {
    fn phase(&mut self, phase: u8) {
        let items = &self.set.phases[usize::from(phase) - 1];
        let mut i = 0;
        let mut skip = 0u32;
        while i < items.len() {
            let Item::Rule { rule: ri, skip_to } = &items[i] else {
                i += 1;
                continue;
            };
            i += 1;
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let rule = &self.set.rules[*ri];
            if self.is_removed(rule) {
                continue;
            }
            self.rule = Some(rule);
            if !self.eval(rule) {
                continue;
            }
            self.matched(rule);
            if self.outcome.interruption.is_some() || self.allowed {
                return;
            }
            if let Some(to) = skip_to {
                i = *to;
            }
            skip = rule.skip;
        }
    }

    fn is_removed(&self, rule: &Rule) -> bool {
        self.removed
            .iter()
            .any(|&(a, b)| (a..=b).contains(&rule.id))
            || self.removed_tags.iter().any(|t| rule.tags.contains(t))
    }

    /// True when every link of the chain matched.
    fn eval(&mut self, rule: &'r Rule) -> bool {
        self.prev_matched.clear();
        for link in &rule.links {
            let mut now = Vec::new();
            if link.targets.is_empty() {
                now.push((String::new(), Vec::new()));
                let mut caps = Vec::new();
                if !self.operator(link, b"", &mut caps) {
                    return false;
                }
                self.captured(link, caps);
                for e in &link.effects {
                    self.effect(e);
                }
            } else {
                if self.cannot_match(link) {
                    return false;
                }
                let mut srcs = std::mem::take(&mut self.scratch);
                self.collect(rule, link, &mut srcs);
                for src in srcs.drain(..) {
                    let Src::Range { var, target, len } = src else {
                        self.consider(link, &src, true, &mut now);
                        continue;
                    };
                    let t = &link.targets[target];
                    let every = matches!(t.selector, CSel::All)
                        && t.exclude.is_empty()
                        && self.removed_targets.is_empty();
                    // The variable's prefilter row, found once for all its entries. Its offset
                    // stays valid through `consider`: a Range is only made for links without
                    // `ctl:`, so no `ctl:requestBodyProcessor` resets the cache meanwhile.
                    let row = link.pf.and_then(|pf| self.pf_row_of(link, pf, var));
                    for idx in 0..len {
                        if let Some(r) = row {
                            if !r.get(&self.cache.borrow().pf_bits, Some(idx)) {
                                continue;
                            }
                        }
                        if !every {
                            let key = self.vars.get_id(var).get(idx).map_or(&[][..], |e| &e.key);
                            if !self.admits(rule, t, key) {
                                continue;
                            }
                        }
                        let src = Src::Entry { var, idx, target };
                        self.consider(link, &src, row.is_none(), &mut now);
                    }
                }
                self.scratch = srcs;
            }
            // The effects ran as values matched, before the next link: it may read what they
            // set (CRS 931130 does); they stay done when a later link fails, as ModSecurity.
            if now.is_empty() {
                return false;
            }
            self.prev_matched = now;
        }
        true
    }

    /// One value of a link: run the operator, and on a match record it and run the effects.
    /// `prefilter`: consult the prefilter first (false when the caller already did).
    fn consider(
        &mut self,
        link: &Link,
        src: &Src,
        prefilter: bool,
        now: &mut Vec<(String, Vec<u8>)>,
    ) {
        if let (true, Some(pf), Src::Entry { var, idx, .. }) = (prefilter, link.pf, src) {
            if !self.pf_bit(link, pf, *var, Some(*idx)) {
                return;
            }
        }
        let mut caps = Vec::new();
        let hit = if link.multi_match {
            self.multi_match(link, src, &mut caps)
        } else {
            let value = self.transformed(src, link);
            self.operator(link, &value, &mut caps)
                .then(|| value.to_vec())
        };
        let Some(v) = hit else { return };
        self.captured(link, caps);
        let name = self.src_name(src, link);
        self.matched_var = (name.clone(), v.clone());
        now.push((name, v));
        // As ModSecurity: non-disruptive actions run once per matched value,
        // with that value's captures (CRS 922150 numbers each part header).
        for e in &link.effects {
            self.effect(e);
        }
    }

    /// True when the prefilter proves no value of the link can match: every target is a
    /// request variable and none of its entries holds one of the operator's needles.
    fn cannot_match(&self, link: &Link) -> bool {
        let Some(pf) = link.pf else { return false };
        link.targets.iter().all(|t| {
            t.tx_key.is_none()
                && !t.count
                && !matches!(
                    t.name,
                    "TX" | "MATCHED_VAR"
                        | "MATCHED_VAR_NAME"
                        | "MATCHED_VARS"
                        | "MATCHED_VARS_NAMES"
                )
                && !self.pf_bit(link, pf, t.id, None)
        })
    }

    /// The link's prefilter bit for entry `idx` of `var` (`None`: for any entry). A clear
    /// bit proves the operator cannot match.
    fn pf_bit(&self, link: &Link, pf: PfSlot, var: u16, idx: Option<usize>) -> bool {
        let pre = &self.set.prefilter;
        let group = &pre.groups[usize::from(pf.group)];
        if let Some(base) = group.base {
            // A word or text (or, for the union, a variable of those only) is answered by the
            // words row.
            let Some(off) = self.pf_words_row(var) else {
                return true;
            };
            let stride = 1 + pre.words_words;
            let at = off + idx.map_or(0, |i| (i + 1) * stride);
            let cache = self.cache.borrow();
            let row = &cache.pf_bits[at..at + stride];
            if group.answers(row[0]) {
                return prefilter::get(&row[1..], base + usize::from(pf.slot));
            }
        }
        self.pf_row_of(link, pf, var)
            .is_none_or(|r| r.get(&self.cache.borrow().pf_bits, idx))
    }

    /// Where the link's bits for `var` live: the words row when it answers for every entry
    /// (its union's kind is one the group answers for), else the group's own row (which
    /// holds the words row's answers too). `None`: no row (or too few of the group's links
    /// read `var` for it to be searched), the link runs unfiltered.
    fn pf_row_of(&self, link: &Link, pf: PfSlot, var: u16) -> Option<PfRow> {
        let pre = &self.set.prefilter;
        let group = &pre.groups[usize::from(pf.group)];
        if let Some(base) = group.base {
            let off = self.pf_words_row(var)?;
            let kind = self.cache.borrow().pf_bits[off];
            let row = if group.answers(kind) {
                Some(off)
            } else if kind != 0 && !group.text {
                self.pf_joined_row(var)
            } else {
                None
            };
            if let Some(off) = row {
                return Some(PfRow {
                    off: off + 1,
                    stride: 1 + pre.words_words,
                    bit: base + usize::from(pf.slot),
                });
            }
        }
        if group.multi || !group.scans(var) {
            return None;
        }
        let off = self.pf_row(var, link, pf)?;
        Some(PfRow {
            off,
            stride: group.words,
            bit: usize::from(pf.slot),
        })
    }

    /// Where `var`'s words row starts in the cache: a kind word (the widest of the entries'
    /// [`prefilter::word_kind`], 0 if any is neither) and the union of the entries' bits,
    /// then per entry its kind and its bits
    /// from the words automaton (zero for entries that are not words).
    fn pf_words_row(&self, var: u16) -> Option<usize> {
        let key = row_key(var, WORDS_ROW);
        if let Some(&off) = self.cache.borrow().pf_index.get(&key) {
            return Some(off as usize);
        }
        let pre = &self.set.prefilter;
        let stride = 1 + pre.words_words;
        let entries = self.vars.get_id(var);
        let mut bits = vec![0u64; stride * (entries.len() + 1)];
        let (head, rest) = bits.split_at_mut(stride);
        head[0] = prefilter::WORD;
        for (e, row) in entries.iter().zip(rest.chunks_exact_mut(stride)) {
            let kind = prefilter::word_kind(&e.value);
            // The union's kind is the widest of its entries'.
            head[0] = if kind == 0 || head[0] == 0 {
                0
            } else {
                head[0].max(kind)
            };
            if kind == 0 {
                continue;
            }
            row[0] = kind;
            pre.scan_word(&e.value, &mut row[1..]);
            for (u, b) in head[1..].iter_mut().zip(&row[1..]) {
                *u |= b;
            }
        }
        self.pf_store(key, &bits)
    }

    /// The words row again for the groups whose lists remove whitespace (keep words, not
    /// text): on text such a list leaves the words run together, so a text entry's bits are
    /// one scan of its words joined, and a word's are its words-row bits.
    fn pf_joined_row(&self, var: u16) -> Option<usize> {
        let key = row_key(var, JOINED_ROW);
        if let Some(&off) = self.cache.borrow().pf_index.get(&key) {
            return Some(off as usize);
        }
        let words = self.pf_words_row(var)?;
        let pre = &self.set.prefilter;
        let stride = 1 + pre.words_words;
        let entries = self.vars.get_id(var);
        let mut bits =
            self.cache.borrow().pf_bits[words..words + stride * (entries.len() + 1)].to_vec();
        let (head, rest) = bits.split_at_mut(stride);
        head[1..].fill(0);
        let mut joined = Vec::new();
        for (e, row) in entries.iter().zip(rest.chunks_exact_mut(stride)) {
            if row[0] == prefilter::TEXT {
                joined.clear();
                joined.extend(e.value.iter().filter(|&&b| b != b' '));
                row[1..].fill(0);
                pre.scan_word(&joined, &mut row[1..]);
            }
            for (u, b) in head[1..].iter_mut().zip(&row[1..]) {
                *u |= b;
            }
        }
        self.pf_store(key, &bits)
    }

    /// Where `var`'s bit sets for the link's group start in the cache: the union over its
    /// entries, then one per entry, each transformed by the group's list (words that the
    /// words row answers for are not scanned again).
    fn pf_row(&self, var: u16, link: &Link, pf: PfSlot) -> Option<usize> {
        let key = row_key(var, u32::from(pf.group));
        if let Some(&off) = self.cache.borrow().pf_index.get(&key) {
            return Some(off as usize);
        }
        let pre = &self.set.prefilter;
        let group = &pre.groups[usize::from(pf.group)];
        let w = group.words;
        let n = self.vars.get_id(var).len();
        let mut bits = vec![0u64; w * (n + 1)];
        let words = match group.base {
            Some(base) => self.pf_words_row(var).map(|off| (base, off)),
            None => None,
        };
        // Text entries of a list that removes whitespace: the joined row answers.
        let joined = match (group.base, group.text) {
            (Some(_), false) => self.pf_joined_row(var),
            _ => None,
        };
        let stride = 1 + pre.words_words;
        for idx in 0..n {
            let (union, rest) = bits.split_at_mut(w);
            let entry = &mut rest[idx * w..(idx + 1) * w];
            if let Some((base, off)) = words {
                let cache = self.cache.borrow();
                let at = |o: usize| &cache.pf_bits[o + (idx + 1) * stride..][..stride];
                let row = at(off);
                let answered = if group.answers(row[0]) {
                    Some(row)
                } else if row[0] == prefilter::TEXT {
                    joined.map(at)
                } else {
                    None
                };
                if let Some(row) = answered {
                    for s in (0..group.slots).filter(|s| prefilter::get(&row[1..], base + s)) {
                        prefilter::set(entry, s);
                        prefilter::set(union, s);
                    }
                    continue;
                }
            }
            let src = Src::Entry {
                var,
                idx,
                target: 0,
            };
            let value = self.transformed(&src, link);
            group.scan(&value, entry);
            for (u, b) in union.iter_mut().zip(entry.iter()) {
                *u |= b;
            }
        }
        self.pf_store(key, &bits)
    }

    /// Appends a row to the cache's bit sets; `None` past 32-bit offsets (then unfiltered).
    fn pf_store(&self, key: u32, bits: &[u64]) -> Option<usize> {
        let mut cache = self.cache.borrow_mut();
        let off = u32::try_from(cache.pf_bits.len()).ok()?;
        cache.pf_bits.extend_from_slice(bits);
        cache.pf_index.insert(key, off);
        Some(off as usize)
    }

    /// True when target `t` of `rule` reads the entry keyed `k` (selector, `!` exclusions,
    /// runtime removals).
    fn admits(&self, rule: &Rule, t: &CTarget, k: &[u8]) -> bool {
        t.selector.admits(k)
            && !t.exclude.iter().any(|x| x.admits(k))
            && !self.target_removed(rule, t, k)
    }

    /// multiMatch: the operator also sees the value before and between the transformations,
    /// not only after the last one.
    fn multi_match(&self, link: &Link, src: &Src, caps: &mut Vec<Vec<u8>>) -> Option<Vec<u8>> {
        let mut value = Cow::Borrowed(self.raw(src));
        if self.operator(link, &value, caps) {
            return Some(value.into_owned());
        }
        for t in &link.transforms {
            let before = (value.as_ptr(), value.len());
            value = t.apply(value);
            // As ModSecurity: the operator runs again only on a value the step changed (an
            // unchanged value gives the same answer). `apply` hands an unchanged input back.
            if (value.as_ptr(), value.len()) == before {
                continue;
            }
            if self.operator(link, &value, caps) {
                return Some(value.into_owned());
            }
        }
        None
    }

    /// Runs the link's operator on one value; captures go to `caps`.
    fn operator(&self, link: &Link, value: &[u8], caps: &mut Vec<Vec<u8>>) -> bool {
        let expand = |s: &str| self.expand(s);
        let mut ctx = MatchCtx {
            expand: &expand,
            capture: link.capture,
            captures: caps,
        };
        link.operator.matches(value, &mut ctx)
    }

    /// `TX.0..9` from a capturing match.
    fn captured(&mut self, link: &Link, caps: Vec<Vec<u8>>) {
        if link.capture && !caps.is_empty() {
            for (i, c) in caps.into_iter().take(10).enumerate() {
                self.tx.insert(i.to_string(), c);
            }
        }
    }

    fn raw<'s>(&'s self, src: &'s Src) -> &'s [u8] {
        match src {
            Src::Entry { var, idx, .. } => self
                .vars
                .get_id(*var)
                .get(*idx)
                .map_or(&[][..], |e| &e.value[..]),
            Src::TxKey { key } => self.tx.get(*key).map_or(&[][..], |v| &v[..]),
            Src::Owned { value, .. } => value,
            // Expanded into entries before use.
            Src::Range { .. } => &[],
        }
    }

    /// The value after the link's transformations: request values are transformed once per
    /// transaction and transformation list, and shared by every rule that asks again; a list
    /// that starts like another (CRS's `t:utf8toUnicode,t:urlDecodeUni,…`) resumes from the
    /// longest prefix already done.
    fn transformed<'s>(&'s self, src: &'s Src, link: &Link) -> Val<'s> {
        let raw = self.raw(src);
        if link.transforms.is_empty() {
            return Val::Borrowed(raw);
        }
        let Src::Entry { var, idx, .. } = src else {
            return match transform_all(raw, &link.transforms) {
                Cow::Borrowed(b) => Val::Borrowed(b),
                Cow::Owned(v) => Val::Owned(v),
            };
        };
        let (var, idx) = (*var, *idx);
        let n = link.transforms.len();
        // The longest prefix already transformed.
        let mut start = 0;
        let mut done = SAME;
        {
            let cache = self.cache.borrow();
            for i in (0..n).rev() {
                let Some(id) = link.prefix_ids.get(i).copied().flatten() else {
                    continue;
                };
                if let Some(slot) = cache.get(var, id, idx) {
                    if i + 1 == n {
                        if slot == SAME {
                            return Val::Borrowed(raw);
                        }
                        return Val::Cached(std::cell::Ref::map(cache, |c| c.value(slot)));
                    }
                    start = i + 1;
                    done = slot;
                    break;
                }
            }
        }
        let mut cache = self.cache.borrow_mut();
        // `cur`: the value so far when it differs from the raw one; `done` its slot, if stored.
        let mut cur: Option<Vec<u8>> = (done != SAME).then(|| cache.value(done).to_vec());
        let mut stored = Some(done);
        let len = self.vars.get_id(var).len();
        for i in start..n {
            let input = cur.as_deref().unwrap_or(raw);
            if let Cow::Owned(v) = link.transforms[i].apply(Cow::Borrowed(input)) {
                cur = Some(v);
                stored = None;
            }
            if let Some(id) = link.prefix_ids.get(i).copied().flatten() {
                if stored.is_none() {
                    stored = cache.push(cur.as_deref().unwrap_or_default());
                }
                if let Some(slot) = stored {
                    cache.insert(var, id, idx, len, slot);
                }
            }
        }
        match cur {
            None => Val::Borrowed(raw),
            Some(v) => Val::Owned(v),
        }
    }

    /// `ARGS:id`, `REQUEST_URI`: built only for values that matched.
    fn src_name(&self, src: &Src, link: &Link) -> String {
        match src {
            Src::Owned { name, .. } => name.clone(),
            Src::TxKey { key } => format!("TX:{key}"),
            Src::Range { .. } => String::new(),
            Src::Entry { var, idx, target } => {
                let key = self
                    .vars
                    .get_id(*var)
                    .get(*idx)
                    .map_or(&[][..], |e| &e.key[..]);
                let name = link.targets.get(*target).map_or("", |t| t.name);
                if key.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}:{}", String::from_utf8_lossy(key))
                }
            }
        }
    }

    /// A link's values, after `!` exclusions and runtime target removals.
    fn collect(&self, rule: &Rule, link: &'r Link, out: &mut Vec<Src<'r>>) {
        // A `TX:name` value may be read when used, not copied, when nothing this link does on
        // a match (captures, setvar, ctl) can change `TX` before its later values are used.
        let lazy_tx = !link.capture && link.effects.is_empty();
        let no_ctl = !link.effects.iter().any(|e| matches!(e, Effect::Ctl(_)));
        for (ti, t) in link.targets.iter().enumerate() {
            let admits = |k: &[u8]| {
                t.selector.admits(k)
                    && !t.exclude.iter().any(|x| x.admits(k))
                    && !self.target_removed(rule, t, k)
            };
            if let Some(key) = &t.tx_key {
                // TX keys are stored lower-cased: the one key `TX:Name` can select.
                let found = self
                    .tx
                    .get_key_value(key.as_str())
                    .filter(|(k, _)| admits(k.as_bytes()));
                if t.count {
                    out.push(Src::Owned {
                        name: format!("&{}", t.name),
                        value: if found.is_some() {
                            b"1".to_vec()
                        } else {
                            b"0".to_vec()
                        },
                    });
                } else if let Some((k, v)) = found {
                    out.push(if lazy_tx {
                        Src::TxKey { key }
                    } else {
                        Src::Owned {
                            name: format!("TX:{k}"),
                            value: v.clone(),
                        }
                    });
                }
                continue;
            }
            let owned: Option<Vec<(String, Vec<u8>)>> = match t.name {
                "TX" => Some(
                    self.tx
                        .iter()
                        .filter(|(k, _)| admits(k.as_bytes()))
                        .map(|(k, v)| (format!("TX:{k}"), v.clone()))
                        .collect(),
                ),
                "MATCHED_VAR" => Some(vec![(t.name.to_string(), self.matched_var.1.clone())]),
                "MATCHED_VAR_NAME" => Some(vec![(
                    t.name.to_string(),
                    self.matched_var.0.clone().into_bytes(),
                )]),
                "MATCHED_VARS" => Some(
                    self.prev_matched
                        .iter()
                        .filter(|(n, _)| admits(n.as_bytes()))
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect(),
                ),
                "MATCHED_VARS_NAMES" => Some(
                    self.prev_matched
                        .iter()
                        .filter(|(n, _)| admits(n.as_bytes()))
                        .map(|(n, _)| (n.clone(), n.clone().into_bytes()))
                        .collect(),
                ),
                _ => None,
            };
            match owned {
                Some(list) if t.count => out.push(Src::Owned {
                    name: format!("&{}", t.name),
                    value: list.len().to_string().into_bytes(),
                }),
                Some(list) => out.extend(
                    list.into_iter()
                        .map(|(name, value)| Src::Owned { name, value }),
                ),
                None => {
                    let entries = self.vars.get_id(t.id);
                    let keep = entries.iter().enumerate().filter(|(_, e)| admits(&e.key));
                    if t.count {
                        out.push(Src::Owned {
                            name: format!("&{}", t.name),
                            value: keep.count().to_string().into_bytes(),
                        });
                    } else if no_ctl {
                        out.push(Src::Range {
                            var: t.id,
                            target: ti,
                            len: entries.len(),
                        });
                    } else {
                        out.extend(keep.map(|(idx, _)| Src::Entry {
                            var: t.id,
                            idx,
                            target: ti,
                        }));
                    }
                }
            }
        }
    }

    fn target_removed(&self, rule: &Rule, t: &CTarget, key: &[u8]) -> bool {
        self.removed_targets.iter().any(|(r, name, sel)| {
            let applies = match r {
                RuleRef::Ids(a, b) => (*a..=*b).contains(&rule.id),
                RuleRef::Tag(tag) => rule.tags.contains(tag),
            };
            applies && *name == t.name && sel.admits(key)
        })
    }

    /// The chain matched: log it, apply its disruptive action.
    fn matched(&mut self, rule: &'r Rule) {
        self.outcome.matched.push(MatchedRule {
            id: rule.id,
            phase: rule.phase,
            msg: rule
                .msg
                .as_deref()
                .map(|m| self.expand(m))
                .unwrap_or_default(),
            data: rule
                .logdata
                .as_deref()
                .map(|m| self.expand(m))
                .unwrap_or_default(),
            var_name: self.matched_var.0.clone(),
            severity: rule.severity.clone(),
            logged: rule.log,
        });
        match rule.disruptive {
            Disruptive::Allow => self.allowed = true,
            Disruptive::Deny | Disruptive::Drop | Disruptive::Redirect
                if self.engine == EngineMode::On =>
            {
                self.outcome.interruption = Some(Interruption {
                    rule_id: rule.id,
                    status: rule.status.unwrap_or(403),
                    action: rule.disruptive,
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
