//! SecLang transformations (`t:lowercase`, `t:urlDecodeUni` …) as pure functions on bytes.
//!
//! Behaviour follows libmodsecurity v3 (and Coraza where they agree). Every function is total:
//! no input panics, and all indexing is bounds-checked. When a transformation changes nothing
//! the input `Cow` is handed back untouched (no allocation for borrowed input).
//!
//! Files: `decode` (URL, HTML, JS, CSS, escape, base64, hex decoders), `normalise`
//! (case, whitespace, NULs, paths, comments, cmdLine, trims, parity), `encode` (encoders,
//! `utf8toUnicode`, `length`, hashes).

use std::borrow::Cow;

mod decode;
mod encode;
mod normalise;
#[cfg(test)]
mod tests;

/// One transformation. `t:none` is not one: the compiler handles it by clearing the list,
/// so [`Transform::from_name`] returns `None` for `"none"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    Lowercase,
    Uppercase,
    UrlDecode,
    UrlDecodeUni,
    HtmlEntityDecode,
    JsDecode,
    CssDecode,
    CmdLine,
    CompressWhitespace,
    RemoveWhitespace,
    RemoveNulls,
    ReplaceNulls,
    NormalizePath,
    NormalizePathWin,
    Utf8ToUnicode,
    Base64Decode,
    Base64DecodeExt,
    Base64Encode,
    HexDecode,
    HexEncode,
    SqlHexDecode,
    Length,
    Sha1,
    Md5,
    Trim,
    TrimLeft,
    TrimRight,
    RemoveComments,
    RemoveCommentsChar,
    ReplaceComments,
    EscapeSeqDecode,
    UrlEncode,
    ParityEven7bit,
    ParityOdd7bit,
    ParityZero7bit,
}

/// Every transformation, for tests and tooling.
pub const ALL: &[Transform] = &[
    Transform::Lowercase,
    Transform::Uppercase,
    Transform::UrlDecode,
    Transform::UrlDecodeUni,
    Transform::HtmlEntityDecode,
    Transform::JsDecode,
    Transform::CssDecode,
    Transform::CmdLine,
    Transform::CompressWhitespace,
    Transform::RemoveWhitespace,
    Transform::RemoveNulls,
    Transform::ReplaceNulls,
    Transform::NormalizePath,
    Transform::NormalizePathWin,
    Transform::Utf8ToUnicode,
    Transform::Base64Decode,
    Transform::Base64DecodeExt,
    Transform::Base64Encode,
    Transform::HexDecode,
    Transform::HexEncode,
    Transform::SqlHexDecode,
    Transform::Length,
    Transform::Sha1,
    Transform::Md5,
    Transform::Trim,
    Transform::TrimLeft,
    Transform::TrimRight,
    Transform::RemoveComments,
    Transform::RemoveCommentsChar,
    Transform::ReplaceComments,
    Transform::EscapeSeqDecode,
    Transform::UrlEncode,
    Transform::ParityEven7bit,
    Transform::ParityOdd7bit,
    Transform::ParityZero7bit,
];

impl Transform {
    /// The transformation called `name` (case-insensitive, without `t:`); `None` if unknown.
    ///
    /// Both spellings `normalisePath`/`normalizePath` (and `…Win`) are accepted. `"none"` is
    /// deliberately not a transformation and returns `None`: the rule compiler treats
    /// `t:none` itself (it clears the transformations collected so far).
    pub fn from_name(name: &str) -> Option<Transform> {
        let lower = name.to_ascii_lowercase();
        let t = match lower.as_str() {
            "normalisepath" => Transform::NormalizePath,
            "normalisepathwin" => Transform::NormalizePathWin,
            other => *ALL.iter().find(|t| t.name().eq_ignore_ascii_case(other))?,
        };
        Some(t)
    }

    /// True when a word (bytes of `[A-Za-z0-9_]` only) comes out the same but for ASCII case:
    /// such a value needs no transforming for a case-insensitive literal search (the
    /// prefilter). Decoders need a `%`, `&`, `\\`…, normalisers a `/` or whitespace; the
    /// encoders, hashes, `length`, `base64Decode`, `hexDecode`, `sqlHexDecode` and the
    /// parity settings change words.
    pub fn keeps_words(self) -> bool {
        use Transform as T;
        // Exhaustive: a transformation added later must say whether it keeps words.
        match self {
            T::Base64Decode
            | T::Base64DecodeExt
            | T::Base64Encode
            | T::HexDecode
            | T::HexEncode
            | T::SqlHexDecode
            | T::Length
            | T::Sha1
            | T::Md5
            | T::UrlEncode
            | T::ParityEven7bit
            | T::ParityOdd7bit => false,
            T::Lowercase
            | T::Uppercase
            | T::UrlDecode
            | T::UrlDecodeUni
            | T::HtmlEntityDecode
            | T::JsDecode
            | T::CssDecode
            | T::CmdLine
            | T::CompressWhitespace
            | T::RemoveWhitespace
            | T::RemoveNulls
            | T::ReplaceNulls
            | T::NormalizePath
            | T::NormalizePathWin
            | T::Utf8ToUnicode
            | T::Trim
            | T::TrimLeft
            | T::TrimRight
            | T::RemoveComments
            | T::RemoveCommentsChar
            | T::ReplaceComments
            | T::EscapeSeqDecode
            | T::ParityZero7bit => true,
        }
    }

    /// True when text (words of `[A-Za-z0-9_]` joined by single spaces, none at either end)
    /// comes out the same but for ASCII case: [`Transform::keeps_words`] but for
    /// `removeWhitespace`.
    pub fn keeps_text(self) -> bool {
        self.keeps_words() && self != Transform::RemoveWhitespace
    }

    /// The canonical ModSecurity name, e.g. `"urlDecodeUni"`.
    pub fn name(self) -> &'static str {
        match self {
            Transform::Lowercase => "lowercase",
            Transform::Uppercase => "uppercase",
            Transform::UrlDecode => "urlDecode",
            Transform::UrlDecodeUni => "urlDecodeUni",
            Transform::HtmlEntityDecode => "htmlEntityDecode",
            Transform::JsDecode => "jsDecode",
            Transform::CssDecode => "cssDecode",
            Transform::CmdLine => "cmdLine",
            Transform::CompressWhitespace => "compressWhitespace",
            Transform::RemoveWhitespace => "removeWhitespace",
            Transform::RemoveNulls => "removeNulls",
            Transform::ReplaceNulls => "replaceNulls",
            Transform::NormalizePath => "normalizePath",
            Transform::NormalizePathWin => "normalizePathWin",
            Transform::Utf8ToUnicode => "utf8toUnicode",
            Transform::Base64Decode => "base64Decode",
            Transform::Base64DecodeExt => "base64DecodeExt",
            Transform::Base64Encode => "base64Encode",
            Transform::HexDecode => "hexDecode",
            Transform::HexEncode => "hexEncode",
            Transform::SqlHexDecode => "sqlHexDecode",
            Transform::Length => "length",
            Transform::Sha1 => "sha1",
            Transform::Md5 => "md5",
            Transform::Trim => "trim",
            Transform::TrimLeft => "trimLeft",
            Transform::TrimRight => "trimRight",
            Transform::RemoveComments => "removeComments",
            Transform::RemoveCommentsChar => "removeCommentsChar",
            Transform::ReplaceComments => "replaceComments",
            Transform::EscapeSeqDecode => "escapeSeqDecode",
            Transform::UrlEncode => "urlEncode",
            Transform::ParityEven7bit => "parityEven7bit",
            Transform::ParityOdd7bit => "parityOdd7bit",
            Transform::ParityZero7bit => "parityZero7bit",
        }
    }

    /// Applies it; borrows the input back when nothing changes.
    pub fn apply<'a>(self, input: Cow<'a, [u8]>) -> Cow<'a, [u8]> {
        use Transform as T;
        let changed: Option<Vec<u8>> = match self {
            T::Lowercase => normalise::lowercase(&input),
            T::Uppercase => normalise::uppercase(&input),
            T::UrlDecode => decode::url_decode(&input, false),
            T::UrlDecodeUni => decode::url_decode(&input, true),
            T::HtmlEntityDecode => decode::html_entity_decode(&input),
            T::JsDecode => decode::js_decode(&input),
            T::CssDecode => decode::css_decode(&input),
            T::CmdLine => normalise::cmd_line(&input),
            T::CompressWhitespace => normalise::compress_whitespace(&input),
            T::RemoveWhitespace => normalise::remove_whitespace(&input),
            T::RemoveNulls => normalise::remove_nulls(&input),
            T::ReplaceNulls => normalise::replace_nulls(&input),
            T::NormalizePath => normalise::normalize_path(&input, false),
            T::NormalizePathWin => normalise::normalize_path(&input, true),
            T::Utf8ToUnicode => encode::utf8_to_unicode(&input),
            T::Base64Decode => decode::base64_decode(&input, false),
            T::Base64DecodeExt => decode::base64_decode(&input, true),
            T::Base64Encode => Some(encode::base64_encode(&input)),
            T::HexDecode => Some(decode::hex_decode(&input)),
            T::HexEncode => Some(encode::hex_encode(&input)),
            T::SqlHexDecode => decode::sql_hex_decode(&input),
            T::Length => Some(input.len().to_string().into_bytes()),
            T::Sha1 => Some(encode::sha1(&input)),
            T::Md5 => Some(encode::md5(&input)),
            T::Trim | T::TrimLeft | T::TrimRight => {
                let (left, right) = match self {
                    T::TrimLeft => (true, false),
                    T::TrimRight => (false, true),
                    _ => (true, true),
                };
                return normalise::trim(input, left, right);
            }
            T::RemoveComments => normalise::remove_comments(&input),
            T::RemoveCommentsChar => normalise::remove_comments_char(&input),
            T::ReplaceComments => normalise::replace_comments(&input),
            T::EscapeSeqDecode => decode::escape_seq_decode(&input),
            T::UrlEncode => encode::url_encode(&input),
            T::ParityEven7bit => normalise::parity(&input, normalise::Parity::Even),
            T::ParityOdd7bit => normalise::parity(&input, normalise::Parity::Odd),
            T::ParityZero7bit => normalise::parity(&input, normalise::Parity::Zero),
        };
        match changed {
            Some(out) if out[..] != input[..] => Cow::Owned(out),
            _ => input,
        }
    }
}

/// C `isspace` in the "C" locale: space, `\t`, `\n`, `\v`, `\f`, `\r`.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The value of one hex digit, if it is one.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// ModSecurity's `x2c`: two characters to a byte, without validation (wrapping arithmetic,
/// exact for hex digits, the same garbage as ModSecurity for anything else).
pub(crate) fn x2c(hi: u8, lo: u8) -> u8 {
    fn digit(c: u8) -> u8 {
        if c >= b'A' {
            (c & 0xdf).wrapping_sub(b'A').wrapping_add(10)
        } else {
            c.wrapping_sub(b'0')
        }
    }
    digit(hi).wrapping_mul(16).wrapping_add(digit(lo))
}

/// The byte ModSecurity keeps for a `%uHHHH`/`\uHHHH` code given as four hex digits: the low
/// byte, except full-width ASCII (U+FF01–U+FF5E) which maps to ASCII (`code - 0xFEE0`).
pub(crate) fn unicode_low_byte(d: &[u8; 4]) -> u8 {
    let low = x2c(d[2], d[3]);
    let full_width = matches!(d[0], b'f' | b'F') && matches!(d[1], b'f' | b'F');
    if full_width && low > 0 && low < 0x5f {
        low + 0x20
    } else {
        low
    }
}
