//! The WAF's view of a buffered request body: `http.request.body.form`, the name → value pairs
//! of an urlencoded form, a JSON document or a multipart form, chosen by `Content-Type`, and
//! for a body of no or an unknown type, sniffed from its shape.
//!
//! Rules always see the raw body too; this module only adds structure, so a body that does not
//! parse as its type says gets a [`BodyError`] (counted by the caller) and whatever fields could
//! be read before the failure. The body is hostile: nothing here panics, JSON nesting is checked
//! before any recursion, and every list and value is capped by [`BodyLimits`]; a cap that is hit
//! is recorded in [`BodyTruncation`], which rules read as `http.request.body.truncated`.
//!
//! A body cut at the buffering limit (`complete = false`) is not an error when it is invalid
//! only because it was cut (JSON ending early, multipart without its closing boundary): the
//! fields read so far are kept and `truncated.limit` is set. The last field may then hold a cut
//! value.
//!
//! Sniffing: origins read bodies whatever their declared type (a JSON parser forced on any
//! body, a form parser on a body without a type), so a body of no type or of a type other than
//! the three above is read as JSON when it parses as JSON, else as urlencoded pairs when it
//! holds a `=`, and, unless it parses as JSON, also as one field with the empty name holding the
//! whole body, so that rules on form fields see the text. Bodies declared with a binary or
//! markup type ([`is_binary_or_markup`]) are only tried as JSON.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::multipart::parse_multipart;
use super::request::{parse_urlencoded, Pairs};

/// How the body was interpreted, from its `Content-Type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyKind {
    /// No `Content-Type`: sniffed (see the module docs).
    #[default]
    None,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`, `text/json`, `*/*+json`.
    Json,
    /// `multipart/form-data`.
    Multipart,
    /// Any other type: sniffed (see the module docs).
    Other,
}

/// What the WAF reads of a request body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BodyView {
    /// The declared type's kind.
    pub kind: BodyKind,
    /// For a body of kind `None` or `Other`: `Json` when it was read as JSON, `Form` when it was
    /// read as urlencoded pairs (beside the whole-body field).
    pub sniffed: Option<BodyKind>,
    /// Name → value pairs in body order, names may repeat:
    /// - urlencoded: decoded fields, as for query args;
    /// - JSON: leaves flattened with dotted/indexed names (`user.name`, `items[0].id`, `[0]` for
    ///   a top-level array, the empty name for a top-level scalar); strings unquoted and
    ///   unescaped, numbers/bools/null as JSON text (numbers as serde_json prints them, so `1e3`
    ///   reads `1000.0`); an empty object or array is a leaf with value `{}` / `[]` so its name
    ///   stays visible; duplicate keys are all kept, in order. Keys are not escaped, so a key
    ///   containing `.` or `[` reads like a path;
    /// - multipart: one entry per part, named by its `name` (empty if it has none); the value is
    ///   the part's content for non-file parts, or the file name for file parts (one entry for
    ///   `filename` and one for the decoded `filename*` when both are sent), never file content;
    /// - sniffed text: the whole body under the empty name, then any urlencoded pairs.
    pub form: Pairs,
    /// The body could not be parsed as its content type says (counted; rules still see `raw`).
    pub error: Option<BodyError>,
    /// Which caps kept `form` from holding the whole body.
    pub truncated: BodyTruncation,
}

/// The caps a body went past; rules read the names in `http.request.body.truncated`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BodyTruncation {
    /// `fields`: `max_fields` was hit; the later fields are not in `form`.
    pub fields: bool,
    /// `value`: a multipart value was cut at `max_value`.
    pub value: bool,
    /// `name`: a flattened JSON name was cut at 1,024 bytes.
    pub name: bool,
    /// `limit`: the body (or its decoded form) was longer than the body limit and only its
    /// first bytes were read (`OverLimit::InspectPrefix`).
    pub limit: bool,
}

impl BodyTruncation {
    /// The names of the caps hit, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.fields, "fields"),
            (self.value, "value"),
            (self.name, "name"),
            (self.limit, "limit"),
        ]
        .into_iter()
        .filter_map(|(hit, name)| hit.then_some(name))
        .collect()
    }

    /// A cap other than the body limit was hit: rules did not see every field read.
    pub fn any_cap(&self) -> bool {
        self.fields || self.value || self.name
    }
}

/// Why a body did not parse as its content type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("invalid JSON: {why}")]
    InvalidJson { why: String },
    #[error("JSON nested deeper than {max}")]
    JsonTooDeep { max: usize },
    #[error("multipart body without a boundary parameter")]
    MultipartNoBoundary,
    #[error("malformed multipart body: {why}")]
    MultipartMalformed { why: &'static str },
    #[error("body does not decode as its Content-Encoding says: {why}")]
    Encoding { why: String },
}

impl BodyError {
    /// The short code rules read in `http.request.body.error`.
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::InvalidJson { .. } => "json",
            BodyError::JsonTooDeep { .. } => "json.depth",
            BodyError::MultipartNoBoundary => "multipart.boundary",
            BodyError::MultipartMalformed { .. } => "multipart",
            BodyError::Encoding { .. } => "encoding",
        }
    }
}

/// Caps on the work and memory spent on a body.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// Entries in `form`; over it the first ones are kept and `truncated.fields` is set.
    pub max_fields: usize,
    /// Open JSON arrays/objects at once; deeper is [`BodyError::JsonTooDeep`]. serde_json stops
    /// at 128 on its own (reported as `InvalidJson`), so higher values act as 128.
    pub max_json_depth: usize,
    /// Bytes kept of a multipart part's content. Urlencoded and JSON values are slices of the
    /// body already bounded by the buffering limit, so they are not cut.
    pub max_value: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_fields: 1024,
            max_json_depth: 32,
            max_value: 64 * 1024,
        }
    }
}

/// A flattened JSON name repeats its parent's name in every child, so a long key over many
/// leaves would multiply memory; names are cut here (and `truncated.name` set).
const MAX_JSON_NAME: usize = 1024;

/// Parses a (complete or prefix-truncated, `complete=false`) buffered body by its Content-Type.
/// An empty body gives no fields and no error whatever its type.
pub fn parse_body(
    content_type: Option<&[u8]>,
    raw: &[u8],
    complete: bool,
    limits: &BodyLimits,
) -> BodyView {
    let (kind, params, binary) = match content_type {
        Some(ct) => classify(ct),
        None => (BodyKind::None, &[][..], false),
    };
    let mut view = BodyView {
        kind,
        ..BodyView::default()
    };
    if raw.trim_ascii().is_empty() {
        return view;
    }
    match kind {
        BodyKind::None | BodyKind::Other => sniff(raw, complete, binary, limits, &mut view),
        BodyKind::Form => {
            let (form, cut) = parse_urlencoded(raw, limits.max_fields);
            view.form = form;
            view.truncated.fields = cut;
        }
        BodyKind::Json => view.error = parse_json(raw, complete, limits, &mut view).err(),
        BodyKind::Multipart => {
            view.error = parse_multipart(params, raw, complete, limits, &mut view).err();
        }
    }
    view.truncated.limit |= !complete;
    view
}

/// Reads a body of no or an unknown type by its shape (see the module docs).
fn sniff(raw: &[u8], complete: bool, binary: bool, limits: &BodyLimits, view: &mut BodyView) {
    if matches!(raw.trim_ascii_start().first(), Some(b'{' | b'[')) {
        let mut json = BodyView::default();
        match parse_json(raw, complete, limits, &mut json) {
            Ok(()) => {
                view.sniffed = Some(BodyKind::Json);
                view.form = json.form;
                view.truncated = json.truncated;
                return;
            }
            // Nesting is checked before parsing: a document too deep to read is refused
            // whatever its declared type, or it would hide its leaves.
            Err(e @ BodyError::JsonTooDeep { .. }) => view.error = Some(e),
            // Not JSON after all: no error, read as text.
            Err(_) => {}
        }
    }
    if binary {
        return;
    }
    if limits.max_fields == 0 {
        view.truncated.fields = true;
        return;
    }
    view.form.push((Vec::new(), raw.to_vec()));
    if raw.contains(&b'=') {
        view.sniffed = Some(BodyKind::Form);
        let (pairs, cut) = parse_urlencoded(raw, limits.max_fields - 1);
        view.form.extend(pairs);
        view.truncated.fields = cut;
    }
}

/// `type/subtype; params` → (its kind, the params after the first `;`, a binary or markup
/// type).
fn classify(ct: &[u8]) -> (BodyKind, &[u8], bool) {
    let end = find(ct, b';');
    let media = ct[..end].trim_ascii().to_ascii_lowercase();
    let kind = match media.as_slice() {
        b"application/x-www-form-urlencoded" => BodyKind::Form,
        b"application/json" | b"text/json" => BodyKind::Json,
        b"multipart/form-data" => BodyKind::Multipart,
        m if m.ends_with(b"+json") && m.contains(&b'/') => BodyKind::Json,
        _ => BodyKind::Other,
    };
    let binary = kind == BodyKind::Other && is_binary_or_markup(&media);
    (kind, ct.get(end + 1..).unwrap_or_default(), binary)
}

/// Media types whose bodies are not read as text or urlencoded pairs, only tried as JSON:
/// binary types (scanning uploads as text would refuse any HTML or script file sent as a file)
/// and markup (XML and HTML are full of what `xss()` looks for: `<?xml`, `xmlns=`).
pub fn is_binary_or_markup(media: &[u8]) -> bool {
    const PREFIXES: &[&[u8]] = &[
        b"image/",
        b"audio/",
        b"video/",
        b"font/",
        b"application/grpc",
    ];
    const TYPES: &[&[u8]] = &[
        b"text/html",
        b"text/xml",
        b"application/xml",
        b"application/octet-stream",
        b"application/pdf",
        b"application/zip",
        b"application/gzip",
        b"application/x-tar",
        b"application/wasm",
        b"application/protobuf",
        b"application/x-protobuf",
    ];
    PREFIXES.iter().any(|p| media.starts_with(p))
        || TYPES.contains(&media)
        || (media.ends_with(b"+xml") && media.contains(&b'/'))
}

/// Index of the first `c` in `s`, or `s.len()`.
fn find(s: &[u8], c: u8) -> usize {
    s.iter().position(|&x| x == c).unwrap_or(s.len())
}

/// `a=b; c="d;e"; f` → `[(a, b), (c, d;e), (f, "")]`, names as sent (compare them
/// case-insensitively). A quoted value ends at the next `"`: browsers send form-data names and
/// file names percent-escaping `"` and without backslash escapes (WHATWG HTML), and boundaries
/// cannot contain either.
pub(super) fn params(mut s: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    loop {
        // Every iteration consumes at least one byte: a separator, `=`, or a name byte.
        s = s.trim_ascii_start();
        if let Some(rest) = s.strip_prefix(b";") {
            s = rest;
            continue;
        }
        if s.is_empty() {
            return out;
        }
        let name_end = s.iter().position(|&c| c == b'=' || c == b';');
        let name_end = name_end.unwrap_or(s.len());
        let name = s[..name_end].trim_ascii();
        s = &s[name_end..];
        let mut value: &[u8] = &[];
        if let Some(rest) = s.strip_prefix(b"=") {
            s = rest.trim_ascii_start();
            if let Some(quoted) = s.strip_prefix(b"\"") {
                let close = find(quoted, b'"');
                value = &quoted[..close];
                // Whatever follows the closing quote up to the next `;` is ignored.
                s = quoted.get(close + 1..).unwrap_or_default();
                s = &s[find(s, b';')..];
            } else {
                let end = find(s, b';');
                value = s[..end].trim_ascii();
                s = &s[end..];
            }
        }
        out.push((name, value));
    }
}

pub(super) fn param<'a>(params: &[(&[u8], &'a [u8])], name: &[u8]) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

// ---- JSON ----

fn parse_json(
    raw: &[u8],
    complete: bool,
    limits: &BodyLimits,
    view: &mut BodyView,
) -> Result<(), BodyError> {
    let too_deep = BodyError::JsonTooDeep {
        max: limits.max_json_depth,
    };
    // serde_json recurses once per nesting level; refuse deep documents before it starts.
    if nesting_depth(raw) > limits.max_json_depth {
        return Err(too_deep);
    }
    let mut st = Flatten {
        out: &mut view.form,
        limits: *limits,
        name: Vec::new(),
        depth: 0,
        fields_hit: false,
        too_deep: false,
        name_cut: false,
    };
    let mut de = serde_json::Deserializer::from_slice(raw);
    let result = (&mut st).deserialize(&mut de).and_then(|()| de.end());
    view.truncated.name |= st.name_cut;
    view.truncated.fields |= st.fields_hit;
    match result {
        Err(_) if st.too_deep => Err(too_deep),
        // A stop at `max_fields` is ours; an early end of a cut body is the buffering limit's.
        Err(_) if st.fields_hit => Ok(()),
        Err(e) if e.is_eof() && !complete => Ok(()),
        Err(e) => Err(BodyError::InvalidJson { why: e.to_string() }),
        Ok(()) => Ok(()),
    }
}

/// Greatest number of arrays/objects open at once, outside strings. For the prefix serde_json
/// accepts, this is exactly the depth it reaches, so it bounds serde_json's recursion.
fn nesting_depth(raw: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &c in raw {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Streaming flattener: a serde visitor writing leaves straight into `out`. Streaming (rather
/// than `serde_json::Value`) keeps key order and duplicate keys, which `Value`'s sorted map
/// would lose: `{"q":"evil","q":"ok"}` must show both.
struct Flatten<'a> {
    out: &'a mut Pairs,
    limits: BodyLimits,
    /// Name of the value being read; a child appends `.key` / `[i]` and cuts it back after.
    name: Vec<u8>,
    depth: usize,
    /// Why we aborted the parse on purpose, to tell it from a syntax error.
    fields_hit: bool,
    too_deep: bool,
    name_cut: bool,
}

impl Flatten<'_> {
    fn leaf<E: de::Error>(&mut self, value: impl Into<Vec<u8>>) -> Result<(), E> {
        if self.out.len() >= self.limits.max_fields {
            self.fields_hit = true;
            return Err(E::custom("field limit"));
        }
        self.out.push((self.name.clone(), value.into()));
        Ok(())
    }

    /// Second line of defence after [`nesting_depth`]: never recurse past the limit.
    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        if self.depth >= self.limits.max_json_depth {
            self.too_deep = true;
            return Err(E::custom("too deep"));
        }
        self.depth += 1;
        Ok(())
    }

    /// Runs `read` with `seg` appended to the name (cut at [`MAX_JSON_NAME`]); true if it read
    /// a value, false at the end of the container.
    fn child<E>(
        &mut self,
        seg: &[u8],
        read: impl FnOnce(&mut Self) -> Result<Option<()>, E>,
    ) -> Result<bool, E> {
        let len = self.name.len();
        self.name.extend_from_slice(seg);
        if self.name.len() > MAX_JSON_NAME {
            self.name.truncate(MAX_JSON_NAME);
            self.name_cut = true;
        }
        let read = read(self);
        self.name.truncate(len);
        read.map(|v| v.is_some())
    }
}

impl<'de> DeserializeSeed<'de> for &mut Flatten<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(if v { "true" } else { "false" })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // serde_json's own float text (JSON has no NaN/inf, but fall back anyway).
        let n = serde_json::Number::from_f64(v);
        self.leaf(n.map_or_else(|| v.to_string(), |n| n.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.leaf(v)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf("null")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.enter()?;
        let mut n = 0;
        while self.child(format!("[{n}]").as_bytes(), |st| seq.next_element_seed(st))? {
            n += 1;
        }
        self.depth -= 1;
        if n == 0 {
            return self.leaf("[]");
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.enter()?;
        let mut n = 0;
        while let Some(key) = map.next_key::<String>()? {
            let dot = if self.name.is_empty() { "" } else { "." };
            let seg = format!("{dot}{key}");
            self.child(seg.as_bytes(), |st| map.next_value_seed(st).map(Some))?;
            n += 1;
        }
        self.depth -= 1;
        if n == 0 {
            return self.leaf("{}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Pairs {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    fn parse(ct: &str, raw: &[u8]) -> BodyView {
        parse_body(Some(ct.as_bytes()), raw, true, &BodyLimits::default())
    }

    fn cut(ct: &str, raw: &[u8]) -> BodyView {
        parse_body(Some(ct.as_bytes()), raw, false, &BodyLimits::default())
    }

    fn ok(kind: BodyKind, form: Pairs) -> BodyView {
        BodyView {
            kind,
            form,
            ..BodyView::default()
        }
    }

    const CUT: BodyTruncation = BodyTruncation {
        fields: false,
        value: false,
        name: false,
        limit: true,
    };

    const FIELDS: BodyTruncation = BodyTruncation {
        fields: true,
        value: false,
        name: false,
        limit: false,
    };

    /// A body of no or an unknown type read as text: the whole body, then sniffed pairs.
    fn text(kind: BodyKind, raw: &str, pairs: &[(&str, &str)]) -> BodyView {
        let mut form = p(&[("", raw)]);
        form.extend(p(pairs));
        BodyView {
            sniffed: (!pairs.is_empty()).then_some(BodyKind::Form),
            ..ok(kind, form)
        }
    }

    #[test]
    fn urlencoded_form() {
        let v = parse(
            "Application/X-WWW-Form-URLEncoded; charset=utf-8",
            b"a=1&b=x+y%21&a=&&c",
        );
        let want = p(&[("a", "1"), ("b", "x y!"), ("a", ""), ("c", "")]);
        assert_eq!(v, ok(BodyKind::Form, want));
        let v = cut("application/x-www-form-urlencoded", b"a=1&b=tw");
        assert_eq!((v.form, v.truncated), (p(&[("a", "1"), ("b", "tw")]), CUT));
    }

    #[test]
    fn no_or_unknown_type_is_sniffed() {
        let none = |raw: &[u8]| parse_body(None, raw, true, &BodyLimits::default());
        assert_eq!(
            none(b"a=1&b=%27x"),
            text(BodyKind::None, "a=1&b=%27x", &[("a", "1"), ("b", "'x")])
        );
        assert_eq!(
            parse("text/plain", b"a=1"),
            text(BodyKind::Other, "a=1", &[("a", "1")])
        );
        assert_eq!(
            parse("application/xml", b"<a x=\"1\"/>"),
            ok(BodyKind::Other, vec![])
        );
        assert_eq!(
            parse("application/soap+xml", b"<a/>"),
            ok(BodyKind::Other, vec![])
        );
        assert_eq!(
            parse("text/html", b"<p>a=b</p>"),
            ok(BodyKind::Other, vec![])
        );
        assert_eq!(
            parse("multipart/mixed; boundary=x", b"--x"),
            text(BodyKind::Other, "--x", &[])
        );
        // JSON shapes parse as JSON, whatever the declared type; no whole-body field then.
        let json = BodyView {
            sniffed: Some(BodyKind::Json),
            ..ok(BodyKind::Other, p(&[("q", "1' OR 1=1"), ("n[0]", "2")]))
        };
        assert_eq!(parse("text/plain", br#" {"q":"1' OR 1=1","n":[2]}"#), json);
        assert_eq!(
            none(br#"{"q":"1' OR 1=1","n":[2]}"#),
            BodyView {
                kind: BodyKind::None,
                ..json.clone()
            }
        );
        // Declared JSON types.
        for ct in ["text/json", "application/problem+json", "Application/JSON"] {
            assert_eq!(
                parse(ct, br#"{"a":1}"#),
                ok(BodyKind::Json, p(&[("a", "1")]))
            );
        }
        // Looks like JSON but is not: text, and no error (nothing said it was JSON).
        assert_eq!(
            parse("text/plain", b"[see] a=b"),
            text(BodyKind::Other, "[see] a=b", &[("[see] a", "b")])
        );
        // Too deep to read is an error whatever the type.
        let deep = format!("{}1{}", "[".repeat(33), "]".repeat(33));
        let v = parse("text/plain", deep.as_bytes());
        assert_eq!(v.error, Some(BodyError::JsonTooDeep { max: 32 }));
        assert_eq!(v.form, p(&[("", &deep)]));
        // Binary types are only tried as JSON.
        assert_eq!(
            parse("application/octet-stream", b"<script>a=1"),
            ok(BodyKind::Other, vec![])
        );
        assert_eq!(
            parse("image/png", b"\x89PNG=x"),
            ok(BodyKind::Other, vec![])
        );
        assert_eq!(
            parse("application/octet-stream", br#"{"a":"b"}"#),
            BodyView {
                sniffed: Some(BodyKind::Json),
                ..ok(BodyKind::Other, p(&[("a", "b")]))
            }
        );
        // Sniffed pairs share the field cap with the whole-body field.
        let limits = BodyLimits {
            max_fields: 2,
            ..BodyLimits::default()
        };
        let v = parse_body(Some(b"text/plain"), b"a=1&b=2", true, &limits);
        assert_eq!((v.form.len(), v.truncated), (2, FIELDS));
        let limits = BodyLimits {
            max_fields: 0,
            ..BodyLimits::default()
        };
        let v = parse_body(None, b"a", true, &limits);
        assert_eq!((v.form.len(), v.truncated), (0, FIELDS));
        // A cut text body.
        let v = parse_body(None, b"a=1&b=tw", false, &BodyLimits::default());
        assert_eq!(v.truncated, CUT);
    }

    #[test]
    fn empty_bodies() {
        assert_eq!(
            parse_body(None, b" \r\n", true, &BodyLimits::default()),
            BodyView::default()
        );
        assert_eq!(
            parse("application/json", b" \r\n"),
            ok(BodyKind::Json, vec![])
        );
        assert_eq!(
            parse("multipart/form-data", b""),
            ok(BodyKind::Multipart, vec![])
        );
    }

    #[test]
    fn json_flattened() {
        let body = br#"{"user":{"name":"a\"b\u00e9","age":30,"ok":true,"x":null},
            "items":[{"id":1},{"id":2.5}],"m":[[1,2],[]],"e":{},"q":"1","q":"2"}"#;
        let want = p(&[
            ("user.name", "a\"b\u{e9}"),
            ("user.age", "30"),
            ("user.ok", "true"),
            ("user.x", "null"),
            ("items[0].id", "1"),
            ("items[1].id", "2.5"),
            ("m[0][0]", "1"),
            ("m[0][1]", "2"),
            ("m[1]", "[]"),
            ("e", "{}"),
            ("q", "1"),
            ("q", "2"),
        ]);
        assert_eq!(
            parse("application/json; charset=UTF-8", body),
            ok(BodyKind::Json, want)
        );
        let v = parse("application/vnd.api+json", br#"[{"a":-1},"s",1e3]"#);
        let want = p(&[("[0].a", "-1"), ("[1]", "s"), ("[2]", "1000.0")]);
        assert_eq!(v, ok(BodyKind::Json, want));
        for (body, text) in [
            (&b"\"hi\""[..], "hi"),
            (b"42", "42"),
            (b"false", "false"),
            (b" null ", "null"),
        ] {
            assert_eq!(
                parse("application/json", body),
                ok(BodyKind::Json, p(&[("", text)]))
            );
        }
        assert_eq!(
            parse("application/json", b"[]"),
            ok(BodyKind::Json, p(&[("", "[]")]))
        );
    }

    #[test]
    fn json_too_deep_is_an_error_not_a_crash() {
        let too_deep = Some(BodyError::JsonTooDeep { max: 32 });
        for body in [
            "[".repeat(10_000),
            format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)),
            "{\"a\":".repeat(10_000),
            format!("{}{}", "[".repeat(33), "]".repeat(33)),
        ] {
            let v = parse("application/json", body.as_bytes());
            assert_eq!((v.error, v.form), (too_deep.clone(), vec![]));
            assert_eq!(cut("application/json", body.as_bytes()).error, too_deep);
        }
        // Exactly at the limit is fine; brackets inside strings don't count.
        let body = format!("{}1{}", "[".repeat(32), "]".repeat(32));
        let v = parse("application/json", body.as_bytes());
        assert_eq!((v.error, v.form.len()), (None, 1));
        let body = format!("[\"\\\"{}\"]", "[".repeat(100));
        assert_eq!(parse("application/json", body.as_bytes()).error, None);
        // The recursion guard alone (no pre-scan) also stops at the limit.
        let limits = BodyLimits {
            max_json_depth: 2,
            ..BodyLimits::default()
        };
        let mut form = Pairs::new();
        let mut st = Flatten {
            out: &mut form,
            limits,
            name: vec![],
            depth: 0,
            fields_hit: false,
            too_deep: false,
            name_cut: false,
        };
        let mut de = serde_json::Deserializer::from_slice(b"[1,[2,[3]]]");
        assert!((&mut st).deserialize(&mut de).is_err());
        assert!(st.too_deep);
        assert_eq!(form, p(&[("[0]", "1"), ("[1][0]", "2")]));
        let v = parse_body(Some(b"application/json"), b"[[[1]]]", true, &limits);
        assert_eq!(v.error, Some(BodyError::JsonTooDeep { max: 2 }));
        // A limit above serde_json's own (128) falls back on it: an error, still no crash.
        let limits = BodyLimits {
            max_json_depth: usize::MAX,
            ..BodyLimits::default()
        };
        let body = "[".repeat(10_000);
        let v = parse_body(Some(b"application/json"), body.as_bytes(), true, &limits);
        assert!(matches!(v.error, Some(BodyError::InvalidJson { .. })));
    }

    #[test]
    fn invalid_and_cut_json() {
        for body in [
            &b"{\"a\":}"[..],
            b"{\"a\":1} x",
            b"[1,]",
            b"{'a':1}",
            b"\"\xff\"",
            b"[1",
        ] {
            let v = parse("application/json", body);
            assert!(
                matches!(v.error, Some(BodyError::InvalidJson { .. })),
                "{body:?}"
            );
        }
        // Fields before the error are kept.
        let v = parse("application/json", br#"{"a":"x","b":tru"#);
        assert_eq!(v.form, p(&[("a", "x")]));
        // Cut by the buffering limit: no error, fields so far, truncated.
        let v = cut("application/json", br#"{"a":"x","b":"unfinish"#);
        assert_eq!(
            v,
            BodyView {
                truncated: CUT,
                ..ok(BodyKind::Json, p(&[("a", "x")]))
            }
        );
        // A syntax error before the cut is still an error.
        let v = cut("application/json", br#"{"a" 1, "b":"unfinish"#);
        assert!(matches!(v.error, Some(BodyError::InvalidJson { .. })));
        // A complete body cut short is an error.
        let v = parse("application/json", br#"{"a":"x","b":"unfinish"#);
        assert!(matches!(v.error, Some(BodyError::InvalidJson { .. })));
    }

    #[test]
    fn json_names_are_capped() {
        let key = "k".repeat(5000);
        let body = format!("{{\"{key}\":[1,2,3]}}");
        let v = parse("application/json", body.as_bytes());
        assert!(v.truncated.name && !v.truncated.fields && v.error.is_none());
        assert_eq!(v.truncated.names(), vec!["name"]);
        assert_eq!(v.form.len(), 3);
        assert!(v.form.iter().all(|(n, _)| n.len() == MAX_JSON_NAME));
    }

    fn multipart(nl: &str, boundary: &str) -> Vec<u8> {
        [
            "preamble",
            &format!("--{boundary}"),
            "Content-Disposition: form-data; name=\"user\"",
            "",
            "alice",
            &format!("--{boundary}  "),
            "content-disposition: FORM-DATA; name=note",
            "Content-Type: text/plain",
            "",
            &format!("two{nl}lines"),
            &format!("--{boundary}"),
            "Content-Disposition: form-data; name=\"up\"; filename=\"a;b.php\"",
            "Content-Type: application/octet-stream",
            "",
            "<?php system($_GET['c']); ?>",
            &format!("--{boundary}--"),
            "epilogue",
        ]
        .join(nl)
        .into_bytes()
    }

    #[test]
    fn multipart_fields_and_file() {
        let want = ok(
            BodyKind::Multipart,
            p(&[
                ("user", "alice"),
                ("note", "two\r\nlines"),
                ("up", "a;b.php"),
            ]),
        );
        let v = parse(
            "multipart/form-data; boundary=XyZ",
            &multipart("\r\n", "XyZ"),
        );
        assert_eq!(v, want);
        let want_lf = ok(
            BodyKind::Multipart,
            p(&[("user", "alice"), ("note", "two\nlines"), ("up", "a;b.php")]),
        );
        let v = parse("multipart/form-data;boundary=XyZ", &multipart("\n", "XyZ"));
        assert_eq!(v, want_lf);
        let b = "----WebKitFormBoundary=7MA4YWxk";
        let ct = format!("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"{b}\"");
        assert_eq!(parse(&ct, &multipart("\r\n", b)), want);
    }

    #[test]
    fn multipart_part_details() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.jpg\"; \
            filename*=UTF-8''x%2Ephp\r\n\r\nDATA\r\n--b\r\n\r\nno headers\r\n--b\r\n\
            Content-Disposition: form-data; name=\"e\"\r\n\r\n\r\n--b--";
        let v = parse("multipart/form-data; boundary=b", body);
        let want = p(&[
            ("f", "x.jpg"),
            ("f", "x.php"),
            ("", "no headers"),
            ("e", ""),
        ]);
        assert_eq!(v, ok(BodyKind::Multipart, want));
        let limits = BodyLimits {
            max_value: 3,
            ..BodyLimits::default()
        };
        let v = parse_body(
            Some(b"multipart/form-data; boundary=b"),
            body,
            true,
            &limits,
        );
        assert_eq!(v.form[2], (vec![], b"no ".to_vec()));
        assert_eq!(v.truncated.names(), vec!["value"]);
    }

    #[test]
    fn multipart_errors() {
        let body = multipart("\r\n", "XyZ");
        for ct in [
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"\"",
        ] {
            let v = parse(ct, &body);
            assert_eq!(
                (v.error, v.form),
                (Some(BodyError::MultipartNoBoundary), vec![])
            );
        }
        let ct = "multipart/form-data; boundary=XyZ";
        let v = parse(ct, b"no boundary here");
        assert!(matches!(
            v.error,
            Some(BodyError::MultipartMalformed { .. })
        ));
        let v = parse(ct, b"--XyZjunk\r\n");
        assert_eq!(
            v.error,
            Some(BodyError::MultipartMalformed {
                why: "junk after boundary"
            })
        );
        let long = format!("multipart/form-data; boundary={}", "b".repeat(71));
        assert!(matches!(
            parse(&long, &body).error,
            Some(BodyError::MultipartMalformed { .. })
        ));
        let v = parse(ct, b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n");
        assert_eq!(
            v.error,
            Some(BodyError::MultipartMalformed {
                why: "part headers not terminated"
            })
        );
    }

    #[test]
    fn multipart_cut() {
        let ct = "multipart/form-data; boundary=XyZ";
        let body = multipart("\r\n", "XyZ");
        let end = body
            .windows(5)
            .position(|w| w == b"<?php")
            .expect("file part")
            + 3;
        // Cut inside the file part: no error, earlier fields kept.
        let v = cut(ct, &body[..end]);
        let want = p(&[
            ("user", "alice"),
            ("note", "two\r\nlines"),
            ("up", "a;b.php"),
        ]);
        assert_eq!(
            v,
            BodyView {
                truncated: CUT,
                ..ok(BodyKind::Multipart, want)
            }
        );
        // The same prefix as a complete body lacks its closing boundary.
        let v = parse(ct, &body[..end]);
        assert_eq!(
            v.error,
            Some(BodyError::MultipartMalformed {
                why: "missing closing boundary"
            })
        );
        assert_eq!(v.form.len(), 3);
        // Every prefix of a cut body parses without error.
        for n in 0..body.len() {
            let v = cut(ct, &body[..n]);
            assert_eq!(v.error, None, "cut at {n}");
            assert!(v.form.len() <= 3);
        }
        let v = cut(
            ct,
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nval",
        );
        assert_eq!(v.form, p(&[("a", "val")]));
    }

    #[test]
    fn max_fields_truncates() {
        let limits = BodyLimits {
            max_fields: 2,
            ..BodyLimits::default()
        };
        let run = |ct: &str, raw: &[u8]| parse_body(Some(ct.as_bytes()), raw, true, &limits);
        let v = run("application/x-www-form-urlencoded", b"a=1&b=2&c=3");
        assert_eq!((v.form.len(), v.truncated, v.error), (2, FIELDS, None));
        let v = run("application/json", br#"{"a":1,"b":[2,3],"c":"#);
        assert_eq!(
            (v.form, v.truncated, v.error),
            (p(&[("a", "1"), ("b[0]", "2")]), FIELDS, None)
        );
        let v = run("multipart/form-data; boundary=XyZ", &multipart("\n", "XyZ"));
        assert_eq!((v.form.len(), v.truncated, v.error), (2, FIELDS, None));
        assert_eq!(v.truncated.names(), vec!["fields"]);
        // Exactly at the limit is not truncated.
        let v = run("application/json", br#"[1,2]"#);
        assert_eq!((v.form.len(), v.truncated), (2, BodyTruncation::default()));
        assert!(!v.truncated.any_cap() && v.truncated.names().is_empty());
    }

    #[test]
    fn params_edges() {
        let got =
            params(b" form-data ; name=\"a\"x ;; filename=\"\"; k = v ; =z; \"q; tail=\"open");
        let want: Vec<(&[u8], &[u8])> = vec![
            (b"form-data", b""),
            (b"name", b"a"),
            (b"filename", b""),
            (b"k", b"v"),
            (b"", b"z"),
            (b"\"q", b""),
            (b"tail", b"open"),
        ];
        assert_eq!(got, want);
        assert_eq!(nesting_depth(b"]]]["), 1);
        assert_eq!(nesting_depth(br#"["\\",[[{"a":"]}"}"#), 4);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds: [(&str, Vec<u8>); 5] = [
            ("text/plain", br#"[{"a":1}] b=%41&c"#.to_vec()),
            (
                "application/x-www-form-urlencoded",
                b"a=1&b=%41+c&&d".to_vec(),
            ),
            (
                "application/json",
                br#"{"a":[1,{"b":"\u00e9\"x"}],"c":null,"d":-1.5e3}"#.to_vec(),
            ),
            (
                "multipart/form-data; boundary=XyZ",
                multipart("\r\n", "XyZ"),
            ),
            (
                "multipart/form-data; boundary=\"XyZ\"",
                multipart("\n", "XyZ"),
            ),
        ];
        const ALPHA: &[u8] = b"[]{}\",:\\-\r\n=&%;XyZ 0";
        let limits = BodyLimits {
            max_fields: 16,
            max_json_depth: 8,
            max_value: 16,
        };
        for i in 0..4000 {
            let (ct, seed) = &seeds[i % seeds.len()];
            // Half pure noise, half a valid body with a few bytes changed and maybe cut.
            let mut raw: Vec<u8> = if i % 2 == 0 {
                (0..next() % 128)
                    .map(|_| match next() {
                        r if r % 3 == 0 => r as u8,
                        r => ALPHA[(r >> 8) as usize % ALPHA.len()],
                    })
                    .collect()
            } else {
                seed.clone()
            };
            for _ in 0..next() % 4 {
                if !raw.is_empty() {
                    let at = next() as usize % raw.len();
                    raw[at] = ALPHA[next() as usize % ALPHA.len()];
                }
            }
            let len = if next() % 2 == 0 {
                raw.len()
            } else {
                next() as usize % (raw.len() + 1)
            };
            let complete = next() % 2 == 0;
            let v = parse_body(Some(ct.as_bytes()), &raw[..len], complete, &limits);
            assert!(v.form.len() <= limits.max_fields);
            let _ = parse_urlencoded(&raw, 4);
        }
    }
}
