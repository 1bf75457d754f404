//! A memo for libinjection's SQLi test on plain text (words and digit runs separated by
//! spaces), the shape of most form fields.
//!
//! On such text the tokenizer makes one token per word: a digit run is a number, any other
//! word goes through the keyword table and is a bareword unless listed. Past the table, the
//! folding and whitelist steps read a bareword's bytes only to ask whether it joins a
//! neighbour into a listed phrase, equals one of a few names (`USER`, `IN` …) or holds an
//! underscore. So two texts that differ only in which unlisted words and which digit runs they
//! hold get the same verdict, and [`shape`] writes the text with every such word replaced by
//! `zq` (or `z_q` when it holds an underscore) and every digit run by `1`. A form of a thousand
//! `comment=...` fields then runs the detector once per shape, not once per field.
//!
//! The reading of the port this rests on is held by `shape_keeps_the_verdict` (random texts
//! over listed words, compared names and other words, each against its shape) and by the
//! corpus tests in `tests/host/waf_corpus.rs`, which go through the memo.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use foldhash::fast::FixedState;

/// Words whose bytes decide a verdict: each word of each keyword-table entry (two adjacent
/// tokens are looked up joined by a space, so a phrase's parts count too) and the names the
/// folding and whitelist steps compare against.
static LISTED: LazyLock<HashSet<Box<[u8]>, FixedState>> = LazyLock::new(|| {
    let mut set = HashSet::with_hasher(FixedState::default());
    for k in libinjectionrs::sqli::sqli_data::SQL_KEYWORDS {
        for w in k.word.split(' ') {
            set.insert(w.as_bytes().into());
        }
    }
    for w in COMPARED {
        set.insert(w.as_bytes().into());
    }
    set
});

/// Names the port's folding and whitelist steps compare token bytes against.
const COMPARED: &[&str] = &[
    "USER_ID",
    "USER_NAME",
    "DATABASE",
    "PASSWORD",
    "USER",
    "CURRENT_USER",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "IN",
    "NOT",
    "LIKE",
    "INTO",
    "IF",
    "SP_PASSWORD",
];

/// Stand-ins for unlisted words, without and with an underscore (a bareword after `COLLATE`
/// becomes a type name when it holds one).
const PLAIN: &[u8] = b"zq";
const UNDERSCORED: &[u8] = b"z_q";

/// The tokenizer copies at most 31 bytes of a token and looks a word up only when shorter
/// than 32; longer words are left to the detector.
const MAX_WORD: usize = 31;

/// Shapes longer than this are not kept, which bounds the memo's memory.
const MAX_SHAPE: usize = 160;
/// Entries before the memo starts afresh.
const MAX_ENTRIES: usize = 4096;

thread_local! {
    static MEMO: RefCell<HashMap<Vec<u8>, bool, FixedState>> =
        RefCell::new(HashMap::with_hasher(FixedState::default()));
}

/// Writes `input`'s shape into `out` and returns true, or returns false when `input` is not
/// plain text: bytes other than ASCII letters, digits, `_` and spaces, a word that starts with
/// a digit and holds a letter (`1union` is two tokens), or a word longer than [`MAX_WORD`].
pub(super) fn shape(input: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut upper = [0u8; MAX_WORD];
    for word in input.split(|&c| c == b' ').filter(|w| !w.is_empty()) {
        if word.len() > MAX_WORD {
            return false;
        }
        if !out.is_empty() {
            out.push(b' ');
        }
        if word.iter().all(u8::is_ascii_digit) {
            out.push(b'1');
            continue;
        }
        if word[0].is_ascii_digit() || !word.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
        {
            return false;
        }
        let up = &mut upper[..word.len()];
        up.copy_from_slice(word);
        up.make_ascii_uppercase();
        if LISTED.contains(&*up) {
            out.extend_from_slice(word);
        } else if word.contains(&b'_') {
            out.extend_from_slice(UNDERSCORED);
        } else {
            out.extend_from_slice(PLAIN);
        }
    }
    true
}

/// `detect(input)`, answered from the memo when a text of the same shape was seen on this
/// thread. `detect` must be libinjection's test.
pub(super) fn memoized(input: &[u8], detect: impl Fn(&[u8]) -> bool) -> bool {
    MEMO.with(|memo| {
        let mut key = Vec::with_capacity(input.len().min(MAX_SHAPE));
        if !shape(input, &mut key) || key.len() > MAX_SHAPE {
            return detect(input);
        }
        if let Some(&hit) = memo.borrow().get(&key) {
            return hit;
        }
        let hit = detect(input);
        let mut memo = memo.borrow_mut();
        if memo.len() >= MAX_ENTRIES {
            memo.clear();
        }
        memo.insert(key, hit);
        hit
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(s: &[u8]) -> bool {
        libinjectionrs::detect_sqli(s).is_injection()
    }

    #[test]
    fn stand_ins_are_unlisted_barewords() {
        for w in [PLAIN, UNDERSCORED] {
            let up = w.to_ascii_uppercase();
            assert!(!LISTED.contains(&up[..]));
            assert_eq!(
                libinjectionrs::sqli::sqli_data::lookup_word(std::str::from_utf8(w).unwrap()),
                libinjectionrs::sqli::TokenType::Bareword
            );
        }
    }

    #[test]
    fn shape_of_text() {
        let mut out = Vec::new();
        assert!(shape(
            b"ordinary number 12 with  some user_words ",
            &mut out
        ));
        assert_eq!(out, b"zq zq 1 with some z_q");
        assert!(shape(b"1 OR 1", &mut out));
        assert_eq!(out, b"1 OR 1");
        assert!(!shape(b"1union select", &mut out));
        assert!(!shape(b"a.b", &mut out));
        assert!(!shape(b"it's", &mut out));
        assert!(!shape(&[b'a'; 32], &mut out));
        assert!(shape(b"", &mut out) && out.is_empty());
    }

    #[test]
    fn shape_keeps_the_verdict() {
        // Listed words drawn from the whole table, the compared names, and words the table
        // does not hold; digit runs of every length up to the copy limit.
        let table: Vec<&str> = libinjectionrs::sqli::sqli_data::SQL_KEYWORDS
            .iter()
            .flat_map(|k| k.word.split(' '))
            .filter(|w| w.as_bytes()[0].is_ascii_alphabetic() || w.starts_with('_'))
            .collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut checked, mut hits) = (0, 0);
        let mut out = Vec::new();
        for _ in 0..100_000 {
            let words = 1 + next() % 7;
            let mut s = Vec::new();
            for _ in 0..words {
                if !s.is_empty() {
                    s.extend(std::iter::repeat_n(b' ', 1 + (next() % 2) as usize));
                }
                match next() % 9 {
                    0 | 1 => {
                        let w = table[(next() % table.len() as u64) as usize];
                        let w = if next() % 2 == 0 {
                            w.to_string()
                        } else {
                            w.to_ascii_lowercase()
                        };
                        s.extend_from_slice(w.as_bytes());
                    }
                    2 => s.extend_from_slice(
                        COMPARED[(next() % COMPARED.len() as u64) as usize].as_bytes(),
                    ),
                    3 | 8 => {
                        let sql = ["or", "AND", "union", "select", "from", "sleep", "not"];
                        s.extend_from_slice(sql[(next() % sql.len() as u64) as usize].as_bytes());
                    }
                    4 | 5 => {
                        let n = 1 + (next() % MAX_WORD as u64) as usize;
                        s.extend((0..n).map(|_| b'0' + (next() % 10) as u8));
                    }
                    _ => {
                        let abc = b"abcdefghijklmnopqrstuvwxyzABCXYZ_0123456789";
                        let n = 1 + (next() % 12) as usize;
                        s.push(b"abqxyzUNSEL_"[(next() % 12) as usize]);
                        s.extend((1..n).map(|_| abc[(next() % abc.len() as u64) as usize]));
                    }
                }
            }
            if !shape(&s, &mut out) {
                continue;
            }
            checked += 1;
            let verdict = direct(&s);
            hits += usize::from(verdict);
            assert_eq!(
                verdict,
                direct(&out),
                "{:?} vs its shape {:?}",
                String::from_utf8_lossy(&s),
                String::from_utf8_lossy(&out)
            );
        }
        // The draw has to reach both verdicts for the comparison to say anything.
        println!("{hits} of {checked} drawn texts are SQLi");
        assert!(checked > 80_000, "{checked}");
        assert!(hits > 200 && hits < checked - 200, "{hits} of {checked}");
    }

    #[test]
    fn memo_answers_per_shape() {
        assert!(memoized(b"1 or 1 or 1", direct));
        assert!(!memoized(b"1 or 1", direct));
        assert!(!memoized(b"ordinary number 1 with some words", direct));
        // Answered from the memo: the closure would say otherwise.
        assert!(!memoized(b"plain number 2 with some words", |_| true));
        assert!(memoized(b"2 or 3 or 4", |_| false));
        // Not text: always asked.
        assert!(memoized(b"1' or '1'='1", direct));
    }
}
