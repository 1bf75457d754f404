//! Request bodies sent with a `Content-Encoding` (RFC 9110 §8.4): the engine decodes them
//! before inspection, since rules on compressed bytes see nothing. The proxy still forwards
//! the body as sent.
//!
//! Decoding is bounded: each layer's output stops one byte past the body limit (a body that
//! decodes to more is over the limit, like a long plain body), so a small "zip bomb" costs at
//! most the limit in memory and the decoder's own window (32 KiB for gzip and deflate, at most
//! 16 MiB for brotli, which the stream declares). Decoding runs synchronously on the request's
//! worker thread, so at most one window per worker thread is live at a time.

use std::io::Read;

use flate2::bufread::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// A content coding the engine can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// `gzip`, `x-gzip` (all members of a multi-member stream).
    Gzip,
    /// `deflate`: the zlib format (RFC 1950) as RFC 9110 says, or a raw deflate stream, which
    /// some clients send instead.
    Deflate,
    /// `br` (RFC 7932).
    Brotli,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
        }
    }
}

/// Codings applied on top of each other in one body; more is refused.
pub const MAX_CODINGS: usize = 4;

/// Why a request's `Content-Encoding` cannot be inspected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodingError {
    #[error("unsupported content coding `{name}`")]
    Unsupported { name: String },
    #[error("more than {max} content codings")]
    TooMany { max: usize },
}

/// The codings of every `Content-Encoding` value (and comma list item), in the order they were
/// applied; `identity` and empty items are left out. Names are compared case-insensitively.
///
/// # Errors
/// A coding other than gzip, x-gzip, deflate, br and identity, or more than [`MAX_CODINGS`].
pub fn codings<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<Coding>, CodingError> {
    let mut out = Vec::new();
    for value in values {
        for item in value.split(|&c| c == b',') {
            let item = item.trim_ascii().to_ascii_lowercase();
            let coding = match item.as_slice() {
                b"" | b"identity" => continue,
                b"gzip" | b"x-gzip" => Coding::Gzip,
                b"deflate" => Coding::Deflate,
                b"br" => Coding::Brotli,
                other => {
                    let name: String = String::from_utf8_lossy(other).chars().take(32).collect();
                    return Err(CodingError::Unsupported { name });
                }
            };
            if out.len() == MAX_CODINGS {
                return Err(CodingError::TooMany { max: MAX_CODINGS });
            }
            out.push(coding);
        }
    }
    Ok(out)
}

/// A decoded body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// At most `limit` bytes.
    pub bytes: Vec<u8>,
    /// The body decodes to more than `limit` bytes; `bytes` is its first `limit`.
    pub over_limit: bool,
}

/// Why a body did not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{coding} stream: {why}")]
pub struct DecodeError {
    pub coding: &'static str,
    pub why: String,
}

/// Undoes `codings` (given in the order applied) on `raw`, keeping at most `limit` bytes of
/// each layer's output. `complete = false` says `raw` is only the start of the body: a stream
/// that then stops early or breaks is taken as cut, not corrupt, and its output so far is kept.
///
/// # Errors
/// A complete body that is not a valid stream of its coding (trailing bytes after a gzip
/// member count as another, broken member).
pub fn decode(
    codings: &[Coding],
    raw: &[u8],
    complete: bool,
    limit: usize,
) -> Result<Decoded, DecodeError> {
    let mut out = Decoded {
        bytes: raw.to_vec(),
        over_limit: false,
    };
    for &coding in codings.iter().rev() {
        let input = std::mem::take(&mut out.bytes);
        // Once a layer is cut, every layer under it reads a prefix only.
        let whole = complete && !out.over_limit;
        let (bytes, over) = layer(coding, &input, whole, limit)?;
        out.bytes = bytes;
        out.over_limit |= over;
    }
    Ok(out)
}

fn layer(
    coding: Coding,
    input: &[u8],
    complete: bool,
    limit: usize,
) -> Result<(Vec<u8>, bool), DecodeError> {
    let cap = (limit as u64).saturating_add(1);
    let mut out = Vec::new();
    let result = match coding {
        Coding::Gzip => MultiGzDecoder::new(input).take(cap).read_to_end(&mut out),
        Coding::Deflate if is_zlib(input) => {
            ZlibDecoder::new(input).take(cap).read_to_end(&mut out)
        }
        Coding::Deflate => DeflateDecoder::new(input).take(cap).read_to_end(&mut out),
        Coding::Brotli => brotli_decompressor::Decompressor::new(input, 4096)
            .take(cap)
            .read_to_end(&mut out),
    };
    let over = out.len() > limit;
    out.truncate(limit);
    match result {
        Err(e) if complete && !over => Err(DecodeError {
            coding: coding.name(),
            why: e.to_string(),
        }),
        _ => Ok((out, over)),
    }
}

/// A zlib header (RFC 1950 §2.2): method 8 (deflate), window at most 32 KiB, check bits.
fn is_zlib(s: &[u8]) -> bool {
    match s {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        w.write_all(data).unwrap();
        drop(w);
        out
    }

    fn ok(bytes: &[u8]) -> Result<Decoded, DecodeError> {
        Ok(Decoded {
            bytes: bytes.to_vec(),
            over_limit: false,
        })
    }

    #[test]
    fn coding_names() {
        let c = |vals: &[&str]| codings(vals.iter().map(|v| v.as_bytes()));
        assert_eq!(c(&[]), Ok(vec![]));
        assert_eq!(c(&["identity", " ,"]), Ok(vec![]));
        assert_eq!(
            c(&["GZIP, br", "x-gzip", "Deflate"]),
            Ok(vec![
                Coding::Gzip,
                Coding::Brotli,
                Coding::Gzip,
                Coding::Deflate
            ])
        );
        assert_eq!(
            c(&["gzip, zstd"]),
            Err(CodingError::Unsupported {
                name: "zstd".into()
            })
        );
        assert_eq!(
            c(&["compress"]),
            Err(CodingError::Unsupported {
                name: "compress".into()
            })
        );
        assert_eq!(
            c(&["gzip,gzip,gzip,gzip,gzip"]),
            Err(CodingError::TooMany { max: MAX_CODINGS })
        );
        // A hostile name is shortened in the error.
        let long = "z".repeat(1000);
        let Err(CodingError::Unsupported { name }) = c(&[&long]) else {
            panic!("unsupported");
        };
        assert_eq!(name.len(), 32);
    }

    #[test]
    fn each_coding_and_layers() {
        let text = b"q=1' OR '1'='1";
        assert_eq!(decode(&[Coding::Gzip], &gzip(text), true, 100), ok(text));
        assert_eq!(decode(&[Coding::Deflate], &zlib(text), true, 100), ok(text));
        assert_eq!(
            decode(&[Coding::Deflate], &raw_deflate(text), true, 100),
            ok(text)
        );
        assert_eq!(
            decode(&[Coding::Brotli], &brotli(text), true, 100),
            ok(text)
        );
        // Listed in the order applied: gzip first, then br.
        let both = brotli(&gzip(text));
        assert_eq!(
            decode(&[Coding::Gzip, Coding::Brotli], &both, true, 100),
            ok(text)
        );
        // Two gzip members read as one body.
        let mut two = gzip(b"a=1&");
        two.extend(gzip(b"b=2"));
        assert_eq!(decode(&[Coding::Gzip], &two, true, 100), ok(b"a=1&b=2"));
        assert_eq!(decode(&[], b"plain", true, 100), ok(b"plain"));
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        for (coding, body) in [
            (Coding::Gzip, gzip(&zeros)),
            (Coding::Deflate, zlib(&zeros)),
            (Coding::Brotli, brotli(&zeros)),
        ] {
            assert!(body.len() < 64 * 1024, "{coding:?}: {}", body.len());
            let d = decode(&[coding], &body, true, 1000).unwrap();
            assert_eq!((d.bytes.len(), d.over_limit), (1000, true), "{coding:?}");
        }
        // Exactly the limit is not over it.
        let d = decode(&[Coding::Gzip], &gzip(&[7u8; 1000]), true, 1000).unwrap();
        assert_eq!((d.bytes.len(), d.over_limit), (1000, false));
        // A bomb inside a bomb: every layer is bounded.
        let nested = gzip(&gzip(&zeros));
        let d = decode(&[Coding::Gzip, Coding::Gzip], &nested, true, 1000).unwrap();
        assert_eq!((d.bytes.len(), d.over_limit), (1000, true));
    }

    #[test]
    fn corrupt_and_cut_streams() {
        let body = gzip(b"name=alice&note=hello there");
        let mut broken = body.clone();
        broken[12] ^= 0xff;
        for (coding, input) in [
            (Coding::Gzip, broken.clone()),
            (Coding::Gzip, body[..body.len() - 4].to_vec()),
            (Coding::Gzip, b"not gzip at all".to_vec()),
            (Coding::Brotli, b"\xff\xff\xff\xff not brotli".to_vec()),
            (Coding::Deflate, b"\xff\xff\xff\xff".to_vec()),
        ] {
            let e = decode(&[coding], &input, true, 1000);
            assert!(e.is_err(), "{coding:?} {input:?}: {e:?}");
        }
        let mut trailing = body.clone();
        trailing.extend_from_slice(b"junk");
        assert!(decode(&[Coding::Gzip], &trailing, true, 1000).is_err());
        // A cut body (prefix inspection) is not corrupt: its output so far is kept.
        let long = gzip(&b"k=v&".repeat(10_000));
        let d = decode(&[Coding::Gzip], &long[..long.len() / 2], false, 1 << 20).unwrap();
        assert!(!d.over_limit && d.bytes.starts_with(b"k=v&k=v&"));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = [
            gzip(b"a=1&b=2&c=3"),
            zlib(b"a=1&b=2&c=3"),
            brotli(b"a=1&b=2&c=3"),
        ];
        for i in 0..3000 {
            let coding = [Coding::Gzip, Coding::Deflate, Coding::Brotli][i % 3];
            let mut input = seeds[i % 3].clone();
            for _ in 0..next() % 4 {
                let at = next() as usize % input.len();
                input[at] = next() as u8;
            }
            let len = next() as usize % (input.len() + 1);
            let complete = next() % 2 == 0;
            if let Ok(d) = decode(&[coding], &input[..len], complete, 64) {
                assert!(d.bytes.len() <= 64);
            }
        }
    }
}
