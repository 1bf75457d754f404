//! What a matching rule does to the transaction: `setvar`, `ctl:`, and macro expansion
//! (`%{tx.score}`, `%{MATCHED_VAR}`, `%{rule.id}`).

use super::super::actions::{Ctl, Effect, SetOp};
use super::super::compile::{key_regex, CSel};
use super::super::operator::parse_int;
use super::{RuleRef, Tx};

impl<'r> Tx<'r> {
    pub(super) fn effect(&mut self, e: &Effect) {
        match e {
            Effect::SetVar {
                collection,
                name,
                op,
            } => {
                if collection != "tx" {
                    self.outcome.skipped_setvars += 1;
                    return;
                }
                let name = self.expand(name).to_ascii_lowercase();
                match op {
                    SetOp::Delete => {
                        self.tx.remove(&name);
                    }
                    SetOp::Assign(v) => {
                        let v = self.expand(v).into_bytes();
                        self.tx.insert(name, v);
                    }
                    SetOp::Add(v) | SetOp::Sub(v) => {
                        let delta = parse_int(self.expand(v).as_bytes());
                        let cur = self.tx.get(&name).map(|c| parse_int(c)).unwrap_or(0);
                        let new = if matches!(op, SetOp::Add(_)) {
                            cur.saturating_add(delta)
                        } else {
                            cur.saturating_sub(delta)
                        };
                        self.tx.insert(name, new.to_string().into_bytes());
                    }
                }
            }
            Effect::Ctl(c) => match c {
                // Effects run once per matched value: the lists hold each removal once, so
                // an attacker's repeated arguments cannot grow them.
                Ctl::RuleRemoveById(a, b) => {
                    if !self.removed.contains(&(*a, *b)) {
                        self.removed.push((*a, *b));
                    }
                }
                Ctl::RuleRemoveByTag(t) => {
                    if !self.removed_tags.contains(t) {
                        self.removed_tags.push(t.clone());
                    }
                }
                Ctl::RuleRemoveTargetById(a, b, target) => {
                    self.remove_target(RuleRef::Ids(*a, *b), target)
                }
                Ctl::RuleRemoveTargetByTag(tag, target) => {
                    self.remove_target(RuleRef::Tag(tag.clone()), target)
                }
                Ctl::RuleEngine(m) => self.engine = *m,
                Ctl::RequestBodyProcessor(p) => {
                    self.body_processor = p.clone();
                    self.vars.set_processor(p);
                    // `REQBODY_PROCESSOR` changed: no transformed value or prefilter row
                    // computed before may be reused.
                    self.cache.borrow_mut().reset();
                }
                Ctl::ForceRequestBodyVariable(on) => self.force_body = *on,
                Ctl::Inert => {}
            },
        }
    }

    /// `ARGS:foo`, `ARGS:/^x/`, `REQUEST_COOKIES` → a runtime exclusion.
    pub(super) fn remove_target(&mut self, r: RuleRef, target: &str) {
        let seen = match &r {
            RuleRef::Ids(a, b) => format!("{a}-{b};{target}"),
            RuleRef::Tag(t) => format!("{t};{target}"),
        };
        if self.removal_keys.contains(&seen) {
            return;
        }
        self.removal_keys.push(seen);
        let (coll, key) = match target.split_once(':') {
            Some((c, k)) => (c, Some(k)),
            None => (target, None),
        };
        let Some(name) = super::super::vars::known(&coll.trim().to_ascii_uppercase()) else {
            return;
        };
        let sel = match key {
            None => CSel::All,
            Some(k) if k.len() > 1 && k.starts_with('/') && k.ends_with('/') => {
                match key_regex(&k[1..k.len() - 1]) {
                    Ok(re) => CSel::Regex(re),
                    Err(_) => return,
                }
            }
            Some(k) => CSel::Key(k.as_bytes().to_vec()),
        };
        self.removed_targets.push((r, name, sel));
    }

    /// Expands `%{tx.name}`, `%{MATCHED_VAR}`, `%{rule.id}`, `%{REQUEST_HEADERS.host}` …;
    /// an unknown or empty reference expands to nothing.
    pub(super) fn expand(&self, s: &str) -> String {
        if !s.contains("%{") {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("%{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            out.push_str(&self.resolve(&after[..end]));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    pub(super) fn resolve(&self, reference: &str) -> String {
        let (coll, key) = match reference.split_once('.') {
            Some((c, k)) => (c.to_ascii_uppercase(), Some(k)),
            None => (reference.to_ascii_uppercase(), None),
        };
        let lossy = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        match (coll.as_str(), key) {
            ("TX", Some(k)) => self
                .tx
                .get(&k.to_ascii_lowercase())
                .map(|v| lossy(v))
                .unwrap_or_default(),
            ("MATCHED_VAR", None) => lossy(&self.matched_var.1),
            ("MATCHED_VAR_NAME", None) => self.matched_var.0.clone(),
            ("RULE", Some(k)) => {
                let Some(r) = self.rule else {
                    return String::new();
                };
                match k.to_ascii_lowercase().as_str() {
                    "id" => r.id.to_string(),
                    // Not expanded again: a msg naming `%{rule.msg}` would recurse without end.
                    "msg" => r.msg.clone().unwrap_or_default(),
                    "severity" => r.severity.clone().unwrap_or_default(),
                    "phase" => r.phase.to_string(),
                    _ => String::new(),
                }
            }
            (name, Some(k)) => self
                .vars
                .first(name, k.as_bytes())
                .map(lossy)
                .unwrap_or_default(),
            (name, None) => self
                .vars
                .get(name)
                .first()
                .map(|e| lossy(&e.value))
                .unwrap_or_default(),
        }
    }
}
