//! Field values of one request for the rule evaluator: the parsed head, the body once read,
//! the client address, the anomaly scores so far and, for counting expressions, the response.
//!
//! To tell the audit log *which* value matched, a field can be narrowed to one of its values
//! (one array element or one map entry) and the rule evaluated again.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;

use rampart_rules::lang::eval::{all_values, values_under};
use rampart_rules::lang::{Field, FieldSource, Value};
use rampart_rules::{Prefix, ScoreClass};

use super::body::BodyView;
use super::request::{Pairs, RequestView};

/// The anomaly scores: the total and one per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scores {
    pub total: i64,
    pub class: [i64; ScoreClass::ALL.len()],
}

impl Scores {
    pub fn add(&mut self, class: Option<ScoreClass>, n: i64) {
        self.total = self.total.saturating_add(n);
        if let Some(c) = class {
            let i = ScoreClass::ALL.iter().position(|x| *x == c).unwrap_or(0);
            self.class[i] = self.class[i].saturating_add(n);
        }
    }

    pub fn get(&self, c: ScoreClass) -> i64 {
        ScoreClass::ALL
            .iter()
            .position(|x| *x == c)
            .map_or(0, |i| self.class[i])
    }
}

/// The response head, for counting expressions.
#[derive(Clone, Debug, Default)]
pub struct ResponseView {
    pub status: u16,
    pub headers: Pairs,
}

impl ResponseView {
    pub fn from_parts(parts: &http::response::Parts) -> ResponseView {
        ResponseView {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        }
    }
}

/// Field values built at most once per phase and lent to every rule that reads them: the
/// request, its body and the response do not change during a phase. The scores, which change
/// from rule to rule, are never kept.
pub(crate) struct FieldCache {
    /// `field` values, by field (`Field as usize`: its place in `Field::ALL`).
    whole: [OnceCell<Option<Value>>; Field::ALL.len()],
    /// `field[*]` values of map fields, by field.
    all: [OnceCell<Option<Value>>; Field::ALL.len()],
}

impl Default for FieldCache {
    fn default() -> FieldCache {
        FieldCache {
            whole: std::array::from_fn(|_| OnceCell::new()),
            all: std::array::from_fn(|_| OnceCell::new()),
        }
    }
}

pub(crate) struct Env<'a> {
    pub req: &'a RequestView,
    pub body: Option<&'a BodyView>,
    pub body_raw: &'a [u8],
    pub client_ip: IpAddr,
    pub scores: &'a Scores,
    pub response: Option<&'a ResponseView>,
    /// When set, this field shows only this value.
    pub narrow: Option<(Field, Value)>,
    /// Where built values are kept for the next rule (`None`: built for each access).
    pub cache: Option<&'a FieldCache>,
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn words(w: &[&str]) -> Value {
    Value::Array(w.iter().map(|s| bytes(s.as_bytes())).collect())
}

fn map(p: &Pairs) -> Value {
    Value::Map(p.iter().map(|(n, v)| (n.clone(), bytes(v))).collect())
}

fn names(p: &Pairs) -> Value {
    Value::Array(p.iter().map(|(n, _)| bytes(n)).collect())
}

fn values(p: &Pairs) -> Value {
    Value::Array(p.iter().map(|(_, v)| bytes(v)).collect())
}

impl FieldSource for Env<'_> {
    fn field(&self, f: Field) -> Option<Cow<'_, Value>> {
        if let Some(v) = self.narrowed(f) {
            return Some(Cow::Borrowed(v));
        }
        let scalar = |v: Value| Some(Cow::Owned(v));
        match f {
            Field::IpSrc => scalar(Value::Ip(Prefix::from_ip(self.client_ip).addr)),
            Field::WafScore => scalar(Value::Int(self.scores.total)),
            Field::WafScoreSqli => scalar(Value::Int(self.scores.get(ScoreClass::Sqli))),
            Field::WafScoreXss => scalar(Value::Int(self.scores.get(ScoreClass::Xss))),
            Field::WafScoreRce => scalar(Value::Int(self.scores.get(ScoreClass::Rce))),
            Field::WafScoreLfi => scalar(Value::Int(self.scores.get(ScoreClass::Lfi))),
            Field::WafScoreProtocol => scalar(Value::Int(self.scores.get(ScoreClass::Protocol))),
            Field::HttpResponseCode => scalar(Value::Int(i64::from(self.response?.status))),
            _ => match self.cache {
                Some(c) => c.whole[f as usize]
                    .get_or_init(|| self.build(f))
                    .as_ref()
                    .map(Cow::Borrowed),
                None => self.build(f).map(Cow::Owned),
            },
        }
    }

    fn field_key(&self, f: Field, key: &[u8]) -> Option<Value> {
        if let Some(v) = self.narrowed(f) {
            return match v {
                Value::Map(e) => Some(values_under(e, key)),
                _ => None,
            };
        }
        let pairs = self.pairs(f)?;
        Some(Value::Array(
            pairs
                .iter()
                .filter(|(n, _)| n == key)
                .map(|(_, v)| bytes(v))
                .collect(),
        ))
    }

    fn field_values(&self, f: Field) -> Option<Cow<'_, Value>> {
        let Some(pairs) = self.pairs(f).filter(|_| self.narrowed(f).is_none()) else {
            return all_values(self.field(f)?);
        };
        match self.cache {
            Some(c) => c.all[f as usize]
                .get_or_init(|| Some(values(pairs)))
                .as_ref()
                .map(Cow::Borrowed),
            None => Some(Cow::Owned(values(pairs))),
        }
    }
}

impl Env<'_> {
    /// The value `f` is narrowed to, if it is.
    fn narrowed(&self, f: Field) -> Option<&Value> {
        match &self.narrow {
            Some((nf, v)) if *nf == f => Some(v),
            _ => None,
        }
    }

    /// Builds the value of a request field (`None`: absent, or not a request field).
    fn build(&self, f: Field) -> Option<Value> {
        let r = self.req;
        Some(match f {
            Field::HttpHost => bytes(r.host.as_deref()?),
            Field::HttpMethod => bytes(&r.method),
            Field::HttpUri => bytes(&r.uri),
            Field::HttpPath => bytes(&r.path),
            Field::HttpPathRaw => bytes(&r.path_raw),
            Field::HttpQuery => bytes(r.query.as_deref()?),
            Field::HttpArgs => map(&r.args),
            Field::HttpArgNames => names(&r.args),
            Field::HttpArgValues => values(&r.args),
            Field::HttpHeaders => map(&r.headers),
            Field::HttpHeaderNames => names(&r.headers),
            Field::HttpHeaderValues => values(&r.headers),
            Field::HttpCookies => map(&r.cookies),
            Field::HttpUserAgent => bytes(r.user_agent.as_deref()?),
            Field::HttpVersion => bytes(r.version.as_bytes()),
            Field::HttpTruncated => words(&r.truncated.names()),
            Field::HttpBodyRaw => bytes(self.body_raw),
            Field::HttpBodyForm => map(&self.body?.form),
            Field::HttpBodyTruncated => words(&self.body?.truncated.names()),
            Field::HttpBodyError => bytes(self.body?.error.as_ref()?.code().as_bytes()),
            Field::HttpResponseHeaders => map(&self.response?.headers),
            // Packet fields other than the address are not known to HTTP rules (refused at load).
            _ => return None,
        })
    }

    fn pairs(&self, f: Field) -> Option<&Pairs> {
        Some(match f {
            Field::HttpArgs => &self.req.args,
            Field::HttpHeaders => &self.req.headers,
            Field::HttpCookies => &self.req.cookies,
            Field::HttpBodyForm => &self.body?.form,
            Field::HttpResponseHeaders => &self.response?.headers,
            _ => return None,
        })
    }

    /// The single values a field can be narrowed to: (label, value shown to the rule).
    pub fn candidates(&self, f: Field) -> Vec<(String, Value)> {
        let Some(whole) = self.field(f) else {
            return Vec::new();
        };
        match whole.into_owned() {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("{}[{i}]", f.name()), Value::Array(vec![v])))
                .collect(),
            Value::Map(entries) => entries
                .into_iter()
                .map(|(n, v)| {
                    let label = format!("{}[\"{}\"]", f.name(), String::from_utf8_lossy(&n));
                    (label, Value::Map(vec![(n, v)]))
                })
                .collect(),
            other => vec![(f.name().to_string(), other)],
        }
    }
}
