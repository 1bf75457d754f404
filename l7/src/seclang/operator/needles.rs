//! Needles: a set of literals one of which every match of a pattern contains, so a value that
//! holds none of them cannot match and its regex search may be skipped (see
//! [`crate::seclang::prefilter`]).
//!
//! Literals are ASCII-lower-cased and meant for a case-insensitive search: folding only
//! widens what is let through, so the condition stays necessary. The walk keeps, per node,
//! either the exact strings it matches (while few enough to concatenate with neighbours) or a
//! requirement, and a concatenation keeps its most selective part (longest shortest literal).

use regex_syntax::hir::{Class, Hir, HirKind};

/// Most strings an exact set may hold before it is treated as a requirement.
const MAX_EXACT: usize = 64;
/// Most members a byte class may have to count as a set of one-byte strings.
const MAX_CLASS: usize = 16;
/// Most literals a requirement may hold (CRS's longest word alternations have a few thousand).
const MAX_NEEDLES: usize = 20_000;

/// What one node says about its matches.
enum Info {
    /// Every match is one of these strings.
    Exact(Vec<Vec<u8>>),
    /// Every match contains one of these (`None`: nothing is known).
    Req(Option<Vec<Vec<u8>>>),
}

/// The needles of `hir`, or `None` when some match may contain no literal worth searching
/// (a pattern that can match the empty string, or only broad classes).
pub(super) fn needles(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let mut set = required(info(hir))?;
    set.sort();
    set.dedup();
    Some(set)
}

fn required(i: Info) -> Option<Vec<Vec<u8>>> {
    match i {
        Info::Exact(set) => (!set.iter().any(Vec::is_empty)).then_some(set),
        Info::Req(r) => r.filter(|s| !s.is_empty() && !s.iter().any(Vec::is_empty)),
    }
}

/// Higher is more selective: the shortest literal's length, then fewer literals.
fn quality(set: &Option<Vec<Vec<u8>>>) -> (usize, std::cmp::Reverse<usize>) {
    match set {
        Some(s) if !s.is_empty() => (
            s.iter().map(Vec::len).min().unwrap_or(0),
            std::cmp::Reverse(s.len()),
        ),
        _ => (0, std::cmp::Reverse(usize::MAX)),
    }
}

fn info(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info::Exact(vec![Vec::new()]),
        HirKind::Literal(lit) => Info::Exact(vec![lit.0.to_ascii_lowercase()]),
        HirKind::Class(c) => class(c),
        HirKind::Capture(c) => info(&c.sub),
        HirKind::Repetition(r) => {
            if r.min == 0 {
                return Info::Req(None);
            }
            match info(&r.sub) {
                Info::Exact(set) if r.min == 1 && r.max == Some(1) => Info::Exact(set),
                sub => Info::Req(required(sub)),
            }
        }
        HirKind::Concat(parts) => concat(parts),
        HirKind::Alternation(alts) => alternation(alts),
    }
}

/// A byte class as one-byte strings, folded (`[Ss]` is one needle `s`), when it is small.
fn class(c: &Class) -> Info {
    let mut bytes: Vec<u8> = Vec::new();
    match c {
        Class::Bytes(b) => {
            for r in b.iter() {
                if usize::from(r.end() - r.start()) >= 256 {
                    return Info::Req(None);
                }
                for x in r.start()..=r.end() {
                    bytes.push(x.to_ascii_lowercase());
                    if bytes.len() > 256 {
                        return Info::Req(None);
                    }
                }
            }
        }
        Class::Unicode(u) => {
            // Unicode is off in our patterns; an ASCII-only class may still appear.
            for r in u.iter() {
                let (s, e) = (u32::from(r.start()), u32::from(r.end()));
                if e > 0x7f || e - s > 255 {
                    return Info::Req(None);
                }
                bytes.extend((s..=e).map(|x| (x as u8).to_ascii_lowercase()));
            }
        }
    }
    bytes.sort_unstable();
    bytes.dedup();
    if bytes.is_empty() || bytes.len() > MAX_CLASS {
        return Info::Req(None);
    }
    Info::Exact(bytes.into_iter().map(|b| vec![b]).collect())
}

fn concat(parts: &[Hir]) -> Info {
    let mut best: Option<Vec<Vec<u8>>> = None;
    fn keep(set: Option<Vec<Vec<u8>>>, best: &mut Option<Vec<Vec<u8>>>) {
        if quality(&set) > quality(best) {
            *best = set;
        }
    }
    // The exact strings of the current run of exact parts, concatenated.
    let mut run: Option<Vec<Vec<u8>>> = Some(vec![Vec::new()]);
    let mut all_exact = true;
    for p in parts {
        match info(p) {
            Info::Exact(set) => {
                let cur = run.take().unwrap_or_else(|| vec![Vec::new()]);
                if cur.len() * set.len() <= MAX_EXACT {
                    run = Some(
                        cur.iter()
                            .flat_map(|a| {
                                set.iter().map(move |b| {
                                    let mut s = a.clone();
                                    s.extend_from_slice(b);
                                    s
                                })
                            })
                            .collect(),
                    );
                } else {
                    all_exact = false;
                    keep(required(Info::Exact(cur)), &mut best);
                    run = Some(set);
                }
            }
            Info::Req(r) => {
                all_exact = false;
                if let Some(cur) = run.take() {
                    keep(required(Info::Exact(cur)), &mut best);
                }
                keep(r, &mut best);
            }
        }
    }
    if all_exact {
        return Info::Exact(run.unwrap_or_default());
    }
    if let Some(cur) = run {
        keep(required(Info::Exact(cur)), &mut best);
    }
    Info::Req(best)
}

fn alternation(alts: &[Hir]) -> Info {
    let infos: Vec<Info> = alts.iter().map(info).collect();
    let exact_total: Option<usize> = infos
        .iter()
        .map(|i| match i {
            Info::Exact(s) => Some(s.len()),
            Info::Req(_) => None,
        })
        .sum();
    if exact_total.is_some_and(|n| n <= MAX_EXACT) {
        return Info::Exact(
            infos
                .into_iter()
                .flat_map(|i| match i {
                    Info::Exact(s) => s,
                    Info::Req(_) => Vec::new(),
                })
                .collect(),
        );
    }
    let mut all = Vec::new();
    for i in infos {
        let Some(set) = required(i) else {
            return Info::Req(None);
        };
        all.extend(set);
        if all.len() > MAX_NEEDLES {
            return Info::Req(None);
        }
    }
    Info::Req(Some(all))
}

#[cfg(test)]
mod tests {
    fn of(pattern: &str) -> Option<Vec<String>> {
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(pattern)
            .unwrap();
        super::needles(&hir).map(|s| {
            s.into_iter()
                .map(|n| String::from_utf8(n).unwrap())
                .collect()
        })
    }

    fn set(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn literals_alternations_and_case_folding() {
        assert_eq!(of("(?i)select"), set(&["select"]));
        assert_eq!(of("^(?:foo|Bar)$"), set(&["bar", "foo"]));
        assert_eq!(of("[Ss]elect|UNION"), set(&["select", "union"]));
        // The longest literal of a concatenation wins.
        assert_eq!(of(r"(?i)on\s*load\s*="), set(&["load"]));
        assert_eq!(of("x?yz"), set(&["yz"]));
        // Small classes multiply out with their neighbours.
        assert_eq!(of("a[bc]d"), set(&["abd", "acd"]));
        assert_eq!(of("(?:ab)+c"), set(&["ab"]));
    }

    #[test]
    fn nothing_known_means_none() {
        assert_eq!(of("a*"), None);
        assert_eq!(of("^$"), None);
        assert_eq!(of("."), None);
        assert_eq!(of(r"\w{4}"), None);
        assert_eq!(of("foo|b*"), None);
        assert_eq!(of("(?:foo)?"), None);
    }
}
