//! The prefilter: one multi-literal search per (request value, transformation list) tells
//! which `@rx`/`@pm` links could match that value, so the others are not run on it.
//!
//! Each eligible link (an operator with [`Operator::needles`], not negated) gets a slot in the
//! group of its transformation list (a final `lowercase` aside: the search ignores case). A
//! group's Aho-Corasick automaton holds every needle of its links;
//! for a value it yields a bit per slot, set when one of that link's needles occurs. A clear
//! bit proves the link's operator cannot match the value; a set bit only means it may.
//!
//! Words (values of `[A-Za-z0-9_]` only) and text (words joined by single spaces), most
//! parameter values, skip even that: the groups whose transformations leave them alone but
//! for case ([`Transform::keeps_words`], [`Transform::keeps_text`]) also share an
//! automaton (of the needles such a value can hold), and one scan of the value's raw bytes
//! answers for all of them. On text, lists that remove whitespace leave the words joined:
//! one scan of the joined word answers for those.
//!
//! A `multiMatch` link also sees the values between its transformations, so it is eligible
//! only when every step keeps text, and only words and text are filtered for it.
//!
//! A variable that fewer than [`MIN_READERS`] links of a group read is not searched for the
//! group; those links run their operators on it directly.
//!
//! [`Operator::needles`]: super::operator::Operator::needles
//! [`Transform::keeps_words`]: super::transform::Transform::keeps_words
//! [`Transform::keeps_text`]: super::transform::Transform::keeps_text

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::compile::Rule;
use super::transform::Transform;

/// Where a link's bit lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PfSlot {
    pub group: u16,
    pub slot: u16,
}

/// The groups of a rule set, one per transformation list that eligible links use.
#[derive(Debug, Default)]
pub(super) struct Prefilter {
    pub groups: Vec<Group>,
    /// The needles of every group that keeps words, for the raw bytes of words and text; a
    /// bit per slot of those groups (group `g`'s slot `s` is bit `g.base + s`). Only needles
    /// of word bytes (and spaces, for text) can occur in such values, so each automaton holds
    /// just those: a fraction of the whole.
    words: Option<WordsAc>,
    text: Option<WordsAc>,
    /// Per needle: its bits.
    words_slots_of: Vec<Vec<u32>>,
    /// Words of one value's bit set in the words automaton.
    pub words_words: usize,
}

/// What the words automaton can answer for: [`WORD`], [`TEXT`] or 0 (neither).
pub(super) fn word_kind(v: &[u8]) -> u64 {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if v.iter().all(|&b| word(b)) {
        return WORD;
    }
    // Words joined by single spaces, none at either end.
    let text = v.first().is_some_and(|&b| word(b))
        && v.last().is_some_and(|&b| word(b))
        && v.iter().all(|&b| word(b) || b == b' ')
        && !v.windows(2).any(|w| w == b"  ");
    if text {
        TEXT
    } else {
        0
    }
}

/// A value of `[A-Za-z0-9_]` only.
pub(super) const WORD: u64 = 1;
/// Words joined by single spaces (lists that keep text leave it alone too).
pub(super) const TEXT: u64 = 2;

/// Sets bit `b` of `bits`.
pub(super) fn set(bits: &mut [u64], b: usize) {
    bits[b / 64] |= 1 << (b % 64);
}

/// Bit `b` of `bits`.
pub(super) fn get(bits: &[u64], b: usize) -> bool {
    bits.get(b / 64).is_some_and(|w| w & (1 << (b % 64)) != 0)
}

#[derive(Debug)]
pub(super) struct Group {
    /// `None` when the automaton did not build (too large): no link points at the group.
    ac: Option<AhoCorasick>,
    /// Per needle (pattern id): the slots of the links that hold it.
    slots_of: Vec<Vec<u16>>,
    pub slots: usize,
    /// Words of one value's bit set.
    pub words: usize,
    /// Where the group's slots start in the words automaton's bits, when its
    /// transformations keep words.
    pub base: Option<usize>,
    /// The transformations keep text (words and single spaces) too.
    pub text: bool,
    /// Per variable: how many of the group's links read it.
    readers: Vec<(u16, u32)>,
    /// The group's links are multiMatch: only the words row answers for them (`ac` is
    /// `None`).
    pub multi: bool,
}

/// A variable fewer links of a group read is not scanned for the group: the search for every
/// needle of the group costs about what running those links' operators does (a 64 KiB
/// `REQUEST_BODY` read by one link per group is searched once by that link's regex, not once
/// more by the group).
const MIN_READERS: u32 = 3;

impl Group {
    /// True when enough of the group's links read `var` to make its own search worth it.
    pub fn scans(&self, var: u16) -> bool {
        self.readers
            .iter()
            .any(|&(v, n)| v == var && n >= MIN_READERS)
    }

    /// True when the words row answers for a value of this kind ([`word_kind`]).
    pub fn answers(&self, kind: u64) -> bool {
        self.base.is_some() && (kind == WORD || (kind == TEXT && self.text))
    }
}

impl Group {
    /// Sets in `bits` (`words` long) the slot of every link with a needle in `value`.
    pub fn scan(&self, value: &[u8], bits: &mut [u64]) {
        let Some(ac) = &self.ac else { return };
        for m in ac.find_overlapping_iter(value) {
            for &s in &self.slots_of[m.pattern().as_usize()] {
                set(bits, usize::from(s));
            }
        }
    }
}

/// An automaton over some of the words needles, and each pattern's needle number.
#[derive(Debug)]
struct WordsAc {
    ac: AhoCorasick,
    needle: Vec<u32>,
}

impl WordsAc {
    /// Over the needles (`(number, bytes)`) made of bytes `admit` accepts; `None` when the
    /// automaton does not build.
    fn build(needles: &[(usize, Vec<u8>)], admit: impl Fn(u8) -> bool) -> Option<WordsAc> {
        let kept: Vec<&(usize, Vec<u8>)> = needles
            .iter()
            .filter(|(_, n)| n.iter().all(|&b| admit(b)))
            .collect();
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(kept.iter().map(|(_, n)| n))
            .ok()?;
        let needle = kept.iter().map(|&&(id, _)| id as u32).collect();
        Some(WordsAc { ac, needle })
    }
}

impl Prefilter {
    /// Sets in `bits` (`words_words` long) the bit of every word-keeping link with a needle
    /// in `value`, a word or text ([`word_kind`]).
    pub fn scan_word(&self, value: &[u8], bits: &mut [u64]) {
        let ac = if value.contains(&b' ') {
            &self.text
        } else {
            &self.words
        };
        let Some(w) = ac else { return };
        for m in w.ac.find_overlapping_iter(value) {
            for &b in &self.words_slots_of[w.needle[m.pattern().as_usize()] as usize] {
                set(bits, b as usize);
            }
        }
    }
}

impl Prefilter {
    /// Assigns slots to the eligible links of `rules` (setting [`Link::pf`]) and builds the
    /// groups. A group that would not build (too large an automaton) leaves its links
    /// unfiltered.
    ///
    /// [`Link::pf`]: super::compile::Link::pf
    pub fn build(rules: &mut [Rule]) -> Prefilter {
        // Per transformation list: needles (deduplicated) and their slots.
        struct Draft {
            needles: HashMap<Vec<u8>, usize>,
            slots_of: Vec<Vec<u16>>,
            slots: usize,
            keeps_words: bool,
            keeps_text: bool,
            readers: Vec<(u16, u32)>,
            multi: bool,
        }
        // Lists that differ only by a final case change scan alike (the search ignores case).
        let mut by_list: HashMap<(Vec<Transform>, bool), usize> = HashMap::new();
        let mut drafts: Vec<Draft> = Vec::new();
        for link in rules.iter_mut().flat_map(|r| &mut r.links) {
            link.pf = None;
            // multiMatch runs the operator on every intermediate value too. When every step
            // keeps text, those are a word's or a text's own bytes (but for case), which the
            // words row answers for; other values of such a link are not filtered.
            let multi = link.multi_match;
            if link.targets.is_empty() || (multi && !link.transforms.iter().all(|t| t.keeps_text()))
            {
                continue;
            }
            let Some(needles) = link.operator.needles() else {
                continue;
            };
            let mut list = &link.transforms[..];
            while let [rest @ .., Transform::Lowercase | Transform::Uppercase] = list {
                list = rest;
            }
            let g = *by_list.entry((list.to_vec(), multi)).or_insert_with(|| {
                drafts.push(Draft {
                    needles: HashMap::new(),
                    slots_of: Vec::new(),
                    slots: 0,
                    keeps_words: link.transforms.iter().all(|t| t.keeps_words()),
                    keeps_text: link.transforms.iter().all(|t| t.keeps_text()),
                    readers: Vec::new(),
                    multi,
                });
                drafts.len() - 1
            });
            let d = &mut drafts[g];
            // Groups `u16::MAX` and one below key the words and joined rows in the
            // transaction's cache.
            let (Ok(group), Ok(slot)) = (u16::try_from(g), u16::try_from(d.slots)) else {
                continue;
            };
            if group >= u16::MAX - 1 {
                continue;
            }
            d.slots += 1;
            for t in &link.targets {
                match d.readers.iter_mut().find(|(v, _)| *v == t.id) {
                    Some((_, n)) => *n += 1,
                    None => d.readers.push((t.id, 1)),
                }
            }
            for n in needles {
                let next = d.slots_of.len();
                let id = *d.needles.entry(n.clone()).or_insert(next);
                if id == next {
                    d.slots_of.push(Vec::new());
                }
                d.slots_of[id].push(slot);
            }
            link.pf = Some(PfSlot { group, slot });
        }
        let mut groups = Vec::with_capacity(drafts.len());
        let mut failed = Vec::new();
        let mut word_needles: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut words_slots_of: Vec<Vec<u32>> = Vec::new();
        let mut word_bits = 0usize;
        for (g, d) in drafts.into_iter().enumerate() {
            let base =
                (d.keeps_words && u32::try_from(word_bits + d.slots).is_ok()).then_some(word_bits);
            if let Some(base) = base {
                for (n, &id) in &d.needles {
                    let next = words_slots_of.len();
                    let w = *word_needles.entry(n.clone()).or_insert(next);
                    if w == next {
                        words_slots_of.push(Vec::new());
                    }
                    words_slots_of[w].extend(
                        d.slots_of[id]
                            .iter()
                            .map(|&s| (base + usize::from(s)) as u32),
                    );
                }
                word_bits += d.slots;
            }
            let mut patterns: Vec<(usize, Vec<u8>)> =
                d.needles.into_iter().map(|(n, id)| (id, n)).collect();
            patterns.sort_unstable();
            // A multiMatch group is answered by the words row only: searching the final
            // value alone would miss the intermediate ones.
            let ac = (!d.multi).then(|| {
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(patterns.iter().map(|(_, n)| n))
            });
            if matches!(ac, Some(Err(_))) || (d.multi && base.is_none()) {
                failed.push(g);
            }
            groups.push(Group {
                ac: ac.and_then(Result::ok),
                slots_of: d.slots_of,
                slots: d.slots,
                words: d.slots.div_ceil(64),
                base,
                text: d.keeps_text,
                readers: d.readers,
                multi: d.multi,
            });
        }
        let mut patterns: Vec<(usize, Vec<u8>)> =
            word_needles.into_iter().map(|(n, id)| (id, n)).collect();
        patterns.sort_unstable();
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let words = WordsAc::build(&patterns, word);
        let text = WordsAc::build(&patterns, |b| word(b) || b == b' ');
        if words.is_none() || text.is_none() {
            // Without the shared automaton every group answers for itself, and multiMatch
            // groups cannot.
            for (i, g) in groups.iter_mut().enumerate() {
                g.base = None;
                if g.multi {
                    failed.push(i);
                }
            }
        }
        for link in rules.iter_mut().flat_map(|r| &mut r.links) {
            if link
                .pf
                .is_some_and(|p| failed.contains(&usize::from(p.group)))
            {
                link.pf = None;
            }
        }
        Prefilter {
            groups,
            words,
            text,
            words_slots_of,
            words_words: word_bits.div_ceil(64),
        }
    }

    /// Links with a slot.
    pub fn links(rules: &[Rule]) -> usize {
        rules
            .iter()
            .flat_map(|r| &r.links)
            .filter(|l| l.pf.is_some())
            .count()
    }
}
