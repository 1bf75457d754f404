//! `@validateByteRange` and `@validateUrlEncoding` (`@validateUtf8Encoding` is
//! `std::str::from_utf8` failing: overlong forms, surrogates, code points past U+10FFFF,
//! truncated and stray continuation bytes all count as invalid).

use super::OperatorError;

/// The allowed bytes of a `@validateByteRange 9,10,13,32-126` argument.
#[derive(Debug)]
pub(super) struct ByteSet {
    /// Bit `b % 64` of word `b / 64` is set when byte `b` is allowed.
    allowed: [u64; 4],
}

impl ByteSet {
    pub(super) fn parse(argument: &str) -> Result<ByteSet, OperatorError> {
        let mut allowed = [0u64; 4];
        let mut any = false;
        for item in argument.split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let bad = || OperatorError::BadArgument(format!("byte range {item:?}"));
            let byte = |s: &str| -> Result<u8, OperatorError> {
                let s = s.trim();
                if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(bad());
                }
                s.parse::<u8>().map_err(|_| bad())
            };
            let (lo, hi) = match item.split_once('-') {
                Some((lo, hi)) => (byte(lo)?, byte(hi)?),
                None => {
                    let b = byte(item)?;
                    (b, b)
                }
            };
            if lo > hi {
                return Err(bad());
            }
            for b in lo..=hi {
                allowed[usize::from(b / 64)] |= 1 << (b % 64);
            }
            any = true;
        }
        if !any {
            return Err(OperatorError::BadArgument("empty byte range".into()));
        }
        Ok(ByteSet { allowed })
    }

    /// True when `input` holds a byte outside the allowed set (ModSecurity's match).
    pub(super) fn any_outside(&self, input: &[u8]) -> bool {
        input
            .iter()
            .any(|&b| self.allowed[usize::from(b / 64)] & (1 << (b % 64)) == 0)
    }
}

/// True when `input` holds a `%` not followed by two hex digits.
pub(super) fn invalid_url_encoding(input: &[u8]) -> bool {
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let ok = input.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && input.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return true;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}
