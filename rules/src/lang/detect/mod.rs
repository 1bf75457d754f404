//! The detectors behind `sqli()` and `xss()`: libinjection's tokenizer-and-fingerprint method,
//! through `libinjectionrs` (a Rust port checked against libinjection's own golden files and
//! the attack and false-positive lists in `shared/corpora/libinjection`, see
//! `tests/waf_corpus.rs` at the workspace root).
//!
//! Both run on attacker-chosen bytes. The port forbids explicit panics but still indexes
//! slices, so each call is fenced: a panic inside the detector counts as a detection (an input
//! that breaks the detector is not waved through) and is counted in [`faults`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

mod sqli_text;

static FAULTS: AtomicU64 = AtomicU64::new(0);

/// True when `input` parses as a SQL injection fragment (libinjection's fingerprint test).
/// Plain text (most form fields) is answered once per shape, see [`sqli_text`].
pub fn sqli(input: &[u8]) -> bool {
    fenced(input, |s| {
        sqli_text::memoized(s, |t| libinjectionrs::detect_sqli(t).is_injection())
    })
}

/// The libinjection fingerprint of `input` (e.g. `s&1c`), whether or not it is an injection.
pub fn sqli_fingerprint(input: &[u8]) -> String {
    catch_unwind(AssertUnwindSafe(|| {
        let mut state = libinjectionrs::SqliState::new(input, libinjectionrs::SqliFlags::FLAG_NONE);
        state.detect();
        state.get_fingerprint().as_str().to_string()
    }))
    .unwrap_or_default()
}

/// True when `input` would start script in one of the HTML contexts libinjection tries (data,
/// unquoted, single-, double- and back-quoted attribute values).
pub fn xss(input: &[u8]) -> bool {
    // Every libinjection XSS verdict needs a tag (`<`) or an attribute value (`=`): without
    // either, the HTML5 tokenizer yields only text and attribute names, which it never flags.
    // Most form values and arguments have neither, and skip five tokenizer passes. The
    // equivalence is tested on the corpora and on random inputs (`xss_prefilter_is_exact`).
    if !input.iter().any(|&c| c == b'<' || c == b'=') {
        return false;
    }
    fenced(input, |s| {
        libinjectionrs::XssDetector::new().detect(s).is_injection()
    })
}

/// `xss` without the prefilter, for tests that hold the two equal.
#[doc(hidden)]
pub fn xss_unfiltered(input: &[u8]) -> bool {
    fenced(input, |s| {
        libinjectionrs::XssDetector::new().detect(s).is_injection()
    })
}

/// Detector panics seen since the process started.
pub fn faults() -> u64 {
    FAULTS.load(Ordering::Relaxed)
}

fn fenced(input: &[u8], f: impl Fn(&[u8]) -> bool) -> bool {
    match catch_unwind(AssertUnwindSafe(|| f(input))) {
        Ok(hit) => hit,
        Err(_) => {
            FAULTS.fetch_add(1, Ordering::Relaxed);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_classic_payloads() {
        assert!(sqli(b"1' OR '1'='1"));
        assert!(sqli(b"1 UNION SELECT password FROM users--"));
        assert!(!sqli(b"hello world"));
        assert!(!sqli(b"O'Reilly"));
        assert_eq!(sqli_fingerprint(b"1' OR '1'='1"), "s&sos");
        assert!(xss(b"<script>alert(1)</script>"));
        assert!(xss(b"\"><img src=x onerror=alert(1)>"));
        assert!(!xss(b"a < b and c > d"));
        assert!(!xss(b"plain text"));
    }

    #[test]
    fn xss_prefilter_is_exact() {
        let full = |s: &[u8]| libinjectionrs::XssDetector::new().detect(s).is_injection();
        let alphabet = b"<>=\"'` /\t\nonerrorjavascript:alert(1)&#x;:svgimgsrcstyle!-{}";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let len = next() % 40;
            let v: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if !v.iter().any(|&c| c == b'<' || c == b'=') {
                assert!(!full(&v), "{:?}", String::from_utf8_lossy(&v));
            }
        }
        for attack in [
            &b"javascript:alert(1)"[..],
            b"\" onmouseover alert(1)",
            b"' autofocus onfocus",
        ] {
            if !attack.contains(&b'=') && !attack.contains(&b'<') {
                assert!(!full(attack), "{:?}", String::from_utf8_lossy(attack));
            }
        }
    }

    #[test]
    fn payload_after_padding_is_found() {
        // No input cap: the body limit bounds the work, and a cap would be a bypass.
        let mut v = vec![b' '; 64 * 1024];
        v.extend_from_slice(b"1' OR 1=1--");
        assert!(sqli(&v));
    }
}
