//! Expected outputs worked out from libmodsecurity v3's algorithms (and its documentation).

use std::borrow::Cow;

use proptest::prelude::*;

use super::{Transform, ALL};

fn t(name: &str, input: &[u8]) -> Vec<u8> {
    let tr = Transform::from_name(name).unwrap_or_else(|| panic!("unknown {name}"));
    tr.apply(Cow::Borrowed(input)).into_owned()
}

fn check(name: &str, cases: &[(&[u8], &[u8])]) {
    for (input, want) in cases {
        let got = t(name, input);
        assert_eq!(
            got,
            want.to_vec(),
            "{name}({:?}) = {:?}, want {:?}",
            String::from_utf8_lossy(input),
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want)
        );
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn names_round_trip_and_crs_names_resolve() {
    for &tr in ALL {
        assert_eq!(Transform::from_name(tr.name()), Some(tr));
        assert_eq!(Transform::from_name(&tr.name().to_uppercase()), Some(tr));
    }
    for name in [
        "lowercase",
        "urlDecodeUni",
        "jsDecode",
        "htmlEntityDecode",
        "utf8toUnicode",
        "removeNulls",
        "cssDecode",
        "cmdLine",
        "removeWhitespace",
        "replaceComments",
        "normalizePath",
        "escapeSeqDecode",
        "compressWhitespace",
        "normalizePathWin",
        "length",
        "base64Decode",
        "base64decode",
        "sha1",
        "hexEncode",
        "removeCommentsChar",
    ] {
        assert!(Transform::from_name(name).is_some(), "{name}");
    }
    assert_eq!(
        Transform::from_name("normalisePath"),
        Some(Transform::NormalizePath)
    );
    assert_eq!(
        Transform::from_name("normalisePathWin"),
        Some(Transform::NormalizePathWin)
    );
    assert_eq!(Transform::from_name("none"), None);
    assert_eq!(Transform::from_name("t:lowercase"), None);
    assert_eq!(Transform::from_name("nosuch"), None);
    assert_eq!(Transform::UrlDecodeUni.name(), "urlDecodeUni");
}

#[test]
fn unchanged_input_is_borrowed_back() {
    let cases: &[(&str, &[u8])] = &[
        ("lowercase", b"already lower 123"),
        ("uppercase", b"ALREADY UPPER"),
        ("urlDecode", b"plain"),
        ("urlDecodeUni", b"plain%zz"),
        ("htmlEntityDecode", b"a &foo; b"),
        ("jsDecode", b"no escapes"),
        ("cssDecode", b"no escapes"),
        ("cmdLine", b"whoami"),
        ("compressWhitespace", b"a b c"),
        ("removeWhitespace", b"abc"),
        ("removeNulls", b"abc"),
        ("replaceNulls", b"abc"),
        ("normalizePath", b"/a/b/c"),
        ("normalizePathWin", b"/a/b/"),
        ("utf8toUnicode", b"ascii"),
        ("trim", b"a b"),
        ("removeComments", b"select 1"),
        ("removeCommentsChar", b"select 1"),
        ("replaceComments", b"select 1"),
        ("escapeSeqDecode", b"plain"),
        ("urlEncode", b"abc*123"),
        ("sqlHexDecode", b"0xzz 1"),
        ("parityZero7bit", b"ascii"),
    ];
    for (name, input) in cases {
        let tr = Transform::from_name(name).unwrap();
        let out = tr.apply(Cow::Borrowed(input));
        assert!(matches!(out, Cow::Borrowed(_)), "{name} allocated");
        assert_eq!(&out[..], *input, "{name}");
    }
    // Owned input that needs nothing is handed back as the same buffer.
    for &tr in &[
        Transform::Lowercase,
        Transform::UrlDecodeUni,
        Transform::NormalizePath,
    ] {
        let v = b"/plain/path".to_vec();
        let ptr = v.as_ptr();
        match tr.apply(Cow::Owned(v)) {
            Cow::Owned(out) => assert_eq!(out.as_ptr(), ptr, "{}", tr.name()),
            Cow::Borrowed(_) => panic!("{} turned owned input into borrowed", tr.name()),
        }
    }
    // A trim of borrowed input is a borrowed sub-slice.
    let out = Transform::Trim.apply(Cow::Borrowed(&b"  x  "[..]));
    assert!(matches!(out, Cow::Borrowed(b"x")));
}

#[test]
fn case() {
    check(
        "lowercase",
        &[(b"HeLLo WORLD \xc3\x89", b"hello world \xc3\x89")],
    );
    check("uppercase", &[(b"abC1z", b"ABC1Z")]);
}

#[test]
fn url_decode() {
    check(
        "urlDecode",
        &[
            (b"%41%2f+b", b"A/ b"),
            (b"%zz%4", b"%zz%4"),
            (b"%u0041", b"%u0041"),
            (b"100%", b"100%"),
            (b"%00x", b"\0x"),
        ],
    );
    check(
        "urlDecodeUni",
        &[
            (b"%u0041%2f+", b"A/ "),
            (b"%uff01%uFF5E", b"!~"),
            (b"%u1234", b"\x34"),
            (b"%U0041", b"A"),
            (b"%u12", b"%u12"),
            (b"%uzzzz%", b"%uzzzz%"),
            (b"%uff00", b"\x00"),
        ],
    );
}

#[test]
fn html_entity_decode() {
    check(
        "htmlEntityDecode",
        &[
            (b"&lt;script&gt;", b"<script>"),
            (b"&#65;&#x42;&#X43", b"ABC"),
            (b"&foo;&amp", b"&foo;&"),
            (b"&#;&#x;&", b"&#;&#x;&"),
            (b"&nbsp;&QUOT;&apos;", b"\xa0\"'"),
            (b"&#321;", b"A"),
            (b"&#x6a&#x61vascript", b"javascript"),
        ],
    );
}

#[test]
fn js_decode() {
    check(
        "jsDecode",
        &[
            (b"\\x41\\u0042\\uff01\\n\\101\\q", b"AB!\nAq"),
            (b"\\400", b" 0"),
            (b"\\7", b"\x07"),
            (b"a\\", b"a\\"),
            (b"\\'\\\"\\\\\\?", b"'\"\\?"),
            (b"\\X41\\U0041", b"X41U0041"),
        ],
    );
}

#[test]
fn css_decode() {
    check(
        "cssDecode",
        &[
            (b"\\41 B", b"AB"),
            (b"\\ff01\\00ff01", b"!!"),
            (b"a\\\nb\\z", b"abz"),
            (b"x\\", b"x"),
            (b"\\e9x", b"\xe9x"),
            (b"\\123456", b"V"),
            (b"j\\61vascript", b"javascript"),
        ],
    );
}

#[test]
fn cmd_line() {
    check(
        "cmdLine",
        &[
            (b"C:\\\"w^h'o\"a,m;i", b"c:whoa m i"),
            (b"w\"h^o\\a'm\"i", b"whoami"),
            (b"ls  ,; /etc", b"ls/etc"),
            (b"CAT (x)\t\n\ry", b"cat(x) y"),
        ],
    );
}

#[test]
fn whitespace_and_nulls() {
    check(
        "compressWhitespace",
        &[(b"a \t\n b\xa0\xa0c\x0b", b"a b c ")],
    );
    check(
        "removeWhitespace",
        &[
            (b" a b\tc\xa0d\r\n", b"abcd"),
            (b"x\xc2\xa0y\xc3\xa9", b"xy\xc3\xa9"),
        ],
    );
    check("removeNulls", &[(b"a\0b\0", b"ab")]);
    check("replaceNulls", &[(b"a\0b\0", b"a b ")]);
    check("trim", &[(b" \t a b \n", b"a b"), (b"   ", b"")]);
    check("trimLeft", &[(b" \t a b \n", b"a b \n")]);
    check(
        "trimRight",
        &[(b" \t a b \n", b" \t a b"), (b"\x0b\x0c", b"")],
    );
}

#[test]
fn normalize_path() {
    check(
        "normalizePath",
        &[
            (b"/a/b/../c", b"/a/c"),
            (b"/a/./b//c/", b"/a/b/c/"),
            (b"/../../etc/passwd", b"/etc/passwd"),
            (b"/a/b/..", b"/a"),
            (b"./a", b"a"),
            (b"a/../../b", b"../b"),
            (b"/a\\..\\b", b"/a\\..\\b"),
        ],
    );
    check(
        "normalisePathWin",
        &[(b"C:\\a\\..\\b", b"C:/b"), (b"\\x\\.\\y\\\\z", b"/x/y/z")],
    );
}

#[test]
fn utf8_to_unicode() {
    check(
        "utf8toUnicode",
        &[
            (b"a\xc3\xa9", b"a%u00e9"),
            (b"\xe2\x82\xac", b"%u20ac"),
            (b"\xf0\x9f\x98\x80", b"%u1f600"),
            (b"\xff\xc3", b"\xff\xc3"),
            (b"\xc0\x80", b"\xc0\x80"),
            (b"\xed\xa0\x80", b"\xed\xa0\x80"),
        ],
    );
}

#[test]
fn base64() {
    check(
        "base64Decode",
        &[
            (b"SGVsbG8=", b"Hello"),
            (b"SGVsbG8", b"Hello"),
            (b"SGV sbG8", b"He"),
            (b"", b""),
        ],
    );
    check(
        "base64DecodeExt",
        &[(b"SGV sbG8", b"Hello"), (b"SGVs.bG8=\n", b"Hello")],
    );
    check("base64Encode", &[(b"Hello", b"SGVsbG8="), (b"", b"")]);
}

#[test]
fn hex_transforms() {
    check(
        "hexDecode",
        &[(b"414243", b"ABC"), (b"41424", b"AB"), (b"6a", b"j")],
    );
    check("hexEncode", &[(b"AB\xff\0", b"4142ff00")]);
    check(
        "sqlHexDecode",
        &[
            (b"0x414243 x", b"ABC x"),
            (b"SELECT 0x61646D696e", b"SELECT admin"),
            (b"0x", b"0x"),
            (b"0x4g", b"0x4g"),
            (b"0x414", b"A4"),
        ],
    );
}

#[test]
fn length_and_digests() {
    check("length", &[(b"hello", b"5"), (b"", b"0")]);
    assert_eq!(
        to_hex(&t("sha1", b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        to_hex(&t("md5", b"abc")),
        "900150983cd24fb0d6963f7d28e17f72"
    );
    assert_eq!(t("md5", b"").len(), 16);
}

#[test]
fn comments() {
    check(
        "removeComments",
        &[
            (b"a/*x*/b", b"ab"),
            (b"1 -- x", b"1 "),
            (b"a#b", b"a"),
            (b"a/*x", b"a "),
            (b"<!--x-->y", b"y"),
        ],
    );
    check(
        "removeCommentsChar",
        &[(b"/*a*/b--c#d", b"abcd"), (b"<!--x-->", b"x")],
    );
    check(
        "replaceComments",
        &[(b"a/*x*/b", b"a b"), (b"a/*x", b"a "), (b"a*/b", b"a*/b")],
    );
}

#[test]
fn escape_seq_decode() {
    check(
        "escapeSeqDecode",
        &[
            (b"\\x41\\n\\101\\q\\\\", b"A\nAq\\"),
            (b"\\777", b"\xff"),
            (b"\\x4", b"x4"),
            (b"\\a\\b\\f\\v\\t\\r\\?", b"\x07\x08\x0c\x0b\t\r?"),
            (b"end\\", b"end\\"),
        ],
    );
}

#[test]
fn url_encode_and_parity() {
    check(
        "urlEncode",
        &[(b"a b/*", b"a+b%2f*"), (b"\xff~", b"%ff%7e")],
    );
    check("parityEven7bit", &[(b"AC", b"\x41\xc3")]);
    check("parityOdd7bit", &[(b"AC", b"\xc1\x43")]);
    check("parityZero7bit", &[(b"\xc1\x43", b"AC")]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_panics_and_owned_equals_borrowed(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        for &tr in ALL {
            let a = tr.apply(Cow::Borrowed(&input[..])).into_owned();
            let b = tr.apply(Cow::Owned(input.clone())).into_owned();
            prop_assert_eq!(a, b, "{}", tr.name());
        }
    }

    #[test]
    fn never_panics_on_escape_heavy_input(
        input in proptest::collection::vec(
            proptest::sample::select(b"%uU+&#xX;\\/.*-<!>0aF9fz \t\n\xa0\xc3\xa9\xef".to_vec()),
            0..48,
        )
    ) {
        for &tr in ALL {
            let _ = tr.apply(Cow::Borrowed(&input[..]));
        }
    }
}

#[test]
fn keeps_words_and_text_hold_on_words_and_text() {
    // Every transformation that says it keeps words, on words of every shape the prefilter
    // relies on: empty, one byte, digits only, mixed case, underscores, hex-looking.
    let mut words: Vec<Vec<u8>> = [
        "",
        "a",
        "Z",
        "_",
        "0",
        "0x41",
        "41",
        "value12abc",
        "AbC_dEf_09",
        "SELECT",
        "__",
        "aGVsbG8",
        "QUJD",
        "deadBEEF",
        "x",
        "0X7f",
    ]
    .iter()
    .map(|w| w.as_bytes().to_vec())
    .collect();
    let alphabet: Vec<u8> = (b'a'..=b'z')
        .chain(b'A'..=b'Z')
        .chain(b'0'..=b'9')
        .chain([b'_'])
        .collect();
    let mut seed = 0x2545_f491_u64;
    for _ in 0..2000 {
        let len = (seed % 24) as usize;
        let w = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect();
        words.push(w);
    }
    let texts: Vec<Vec<u8>> = words
        .chunks(3)
        .map(|c| {
            let parts: Vec<&[u8]> = c.iter().map(|w| &w[..]).filter(|w| !w.is_empty()).collect();
            parts.join(&b' ')
        })
        .chain(["a b", "Select From x", "0x41 0X7f", "x _ y"].map(|t| t.as_bytes().to_vec()))
        .collect();
    for tr in ALL.iter().filter(|t| t.keeps_text()) {
        for w in &texts {
            let out = tr.apply(Cow::Borrowed(&w[..]));
            assert!(
                out.eq_ignore_ascii_case(w),
                "{} changed text {:?} to {:?}",
                tr.name(),
                String::from_utf8_lossy(w),
                String::from_utf8_lossy(&out)
            );
        }
    }
    for tr in ALL.iter().filter(|t| t.keeps_words()) {
        for w in &words {
            let out = tr.apply(Cow::Borrowed(&w[..]));
            assert!(
                out.eq_ignore_ascii_case(w),
                "{} changed word {:?} to {:?}",
                tr.name(),
                String::from_utf8_lossy(w),
                String::from_utf8_lossy(&out)
            );
        }
    }
}
