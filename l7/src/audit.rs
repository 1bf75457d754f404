//! The audit log: one JSON line per decided request, with the rules that matched, the scores,
//! the client address, and the matched field and value (truncated; secrets redacted: credential
//! headers, and every cookie value, since cookies carry sessions whatever their name).

use std::io::Write;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_rules::lang::Value;
use rampart_rules::ScoreClass;
use serde::Serialize;

use super::client_ip::ClientIpSource;
use super::compiled::CompiledRule;
use super::decision::Decision;
use super::fields::Scores;
use super::request::RequestView;

/// What the audit log may show.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// Matched values longer than this are cut (the length is kept).
    pub max_value: usize,
    /// Request and response headers whose values are never written (lower case).
    pub redact_headers: Vec<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        AuditConfig {
            max_value: 128,
            redact_headers: s(&[
                "authorization",
                "proxy-authorization",
                "cookie",
                "set-cookie",
                "x-api-key",
                "x-auth-token",
            ]),
        }
    }
}

/// One rule that matched.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RuleMatch {
    pub rule_id: u32,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub action: &'static str,
    /// False for a rule in `mode: log` (it matched, nothing was done).
    pub enforced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Raw evidence; written redacted and cut by [`AuditEvent`].
    #[serde(skip)]
    pub raw_value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A SecLang (CRS) rule's `msg`, macros expanded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
}

impl RuleMatch {
    pub(crate) fn new(
        rule: &CompiledRule,
        action: &'static str,
        enforced: bool,
        evidence: Option<(String, Value)>,
    ) -> RuleMatch {
        let (field, raw_value) = match evidence {
            Some((f, v)) => (Some(f), Some(v)),
            None => (None, None),
        };
        RuleMatch {
            rule_id: rule.id,
            reference: rule.reference.clone(),
            action,
            enforced,
            field,
            raw_value,
            value: None,
            msg: None,
        }
    }

    /// A SecLang rule that matched: the variable it matched in (`ARGS:id`) is the field and
    /// its `logdata` (CRS: `Matched Data: … found within …`) the evidence. `action` is
    /// `block` for the rule that denied the request, else `log` (CRS's detection rules only
    /// add to the anomaly score; its rule 949110 blocks).
    pub(crate) fn seclang(
        m: &crate::seclang::MatchedRule,
        blocked: bool,
        enforced: bool,
    ) -> RuleMatch {
        RuleMatch {
            rule_id: m.id,
            reference: None,
            action: if blocked { "block" } else { "log" },
            enforced,
            field: (!m.var_name.is_empty()).then(|| m.var_name.clone()),
            raw_value: (!m.data.is_empty()).then(|| Value::Bytes(m.data.clone().into_bytes())),
            value: None,
            msg: (!m.msg.is_empty()).then(|| m.msg.clone()),
        }
    }
}

/// One request's record.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub time_unix_ms: u64,
    pub client_ip: IpAddr,
    pub client_ip_source: &'static str,
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub path: String,
    /// `continue`, `block`, `ratelimit` or `route`.
    pub action: &'static str,
    /// The rule that decided (`0`: the engine's own body-size policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    pub scores: ScoreReport,
    pub matches: Vec<RuleMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    pub body_bytes: u64,
    pub duration_us: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ScoreReport {
    pub total: i64,
    pub sqli: i64,
    pub xss: i64,
    pub rce: i64,
    pub lfi: i64,
    pub protocol: i64,
}

impl AuditEvent {
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site, in Transaction::finish"
    )]
    pub(crate) fn new(
        cfg: &AuditConfig,
        req: &RequestView,
        client_ip: IpAddr,
        source: ClientIpSource,
        decision: &Decision,
        scores: &Scores,
        mut matches: Vec<RuleMatch>,
        response_status: Option<u16>,
        body_bytes: u64,
        duration: Duration,
    ) -> AuditEvent {
        for m in &mut matches {
            m.value = m
                .raw_value
                .take()
                .map(|v| shown(cfg, m.field.as_deref().unwrap_or(""), &v));
        }
        let (status, route) = match decision {
            Decision::Block { status, .. } | Decision::RateLimited { status, .. } => {
                (Some(*status), None)
            }
            Decision::Route { target, .. } => (None, Some(target.clone())),
            _ => (None, None),
        };
        AuditEvent {
            time_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            client_ip,
            client_ip_source: match source {
                ClientIpSource::Peer => "peer",
                ClientIpSource::ProxyProtocol => "proxy_protocol",
                ClientIpSource::Header => "header",
            },
            method: lossy(&req.method, 16),
            host: req.host.as_deref().map(|h| lossy(h, 256)),
            path: lossy(&req.path_raw, 1024),
            action: decision.action(),
            rule_id: decision.rule_id(),
            status,
            route,
            scores: ScoreReport {
                total: scores.total,
                sqli: scores.get(ScoreClass::Sqli),
                xss: scores.get(ScoreClass::Xss),
                rce: scores.get(ScoreClass::Rce),
                lfi: scores.get(ScoreClass::Lfi),
                protocol: scores.get(ScoreClass::Protocol),
            },
            matches,
            response_status,
            body_bytes,
            duration_us: duration.as_micros() as u64,
        }
    }

    /// The event as one line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Appends audit lines to a writer (a file, stdout), one `write` per line.
pub struct AuditWriter<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> AuditWriter<W> {
    pub fn new(out: W) -> Self {
        AuditWriter {
            out: Mutex::new(out),
        }
    }

    /// # Errors
    /// The writer's.
    pub fn write(&self, e: &AuditEvent) -> std::io::Result<()> {
        let mut line = e.to_json();
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(line.as_bytes())
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// The value as the log shows it: redacted when it is a secret, else cut to `max_value`.
fn shown(cfg: &AuditConfig, field: &str, v: &Value) -> String {
    let (name, inner) = match v {
        Value::Map(entries) if entries.len() == 1 => (Some(&entries[0].0), &entries[0].1),
        Value::Array(items) if items.len() == 1 => (None, &items[0]),
        other => (None, other),
    };
    // A header's values are a one-item list of the values of that name.
    let inner = match inner {
        Value::Array(items) if items.len() == 1 => &items[0],
        other => other,
    };
    let lname = name.map(|n| String::from_utf8_lossy(n).to_ascii_lowercase());
    let secret = match (field.split('[').next().unwrap_or(field), &lname) {
        ("http.request.headers" | "http.response.headers", Some(n)) => {
            cfg.redact_headers.iter().any(|h| h == n)
        }
        // Names do not say which cookies are sessions (`id`, `s`, `remember`), so none shows;
        // the field label keeps the cookie's name.
        ("http.request.cookies", _) => true,
        // The whole map or list of values, credentials among them.
        (
            "http.request.headers" | "http.response.headers" | "http.request.headers.values",
            None,
        ) => true,
        _ => false,
    };
    // SecLang variable names: cookie values and the redacted headers stay hidden too.
    let seclang_secret = match field.split_once(':') {
        Some(("REQUEST_COOKIES", _)) => true,
        Some(("REQUEST_HEADERS", h)) => {
            cfg.redact_headers.iter().any(|r| r.eq_ignore_ascii_case(h))
        }
        _ => false,
    };
    if secret || seclang_secret {
        return "[redacted]".into();
    }
    match inner {
        Value::Bytes(b) => lossy(b, cfg.max_value),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Ip(a) => rampart_rules::Prefix::new(*a, 128).to_string(),
        other => lossy(format!("{other:?}").as_bytes(), cfg.max_value),
    }
}

/// Lossy UTF-8, cut at `max` bytes with the full length noted.
fn lossy(b: &[u8], max: usize) -> String {
    if b.len() <= max {
        return String::from_utf8_lossy(b).into_owned();
    }
    format!("{}…({} bytes)", String::from_utf8_lossy(&b[..max]), b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// One map entry as the evidence narrows it: `(name, [values])`.
    fn entry(name: &str, values: &[&str]) -> Value {
        Value::Map(vec![(
            name.as_bytes().to_vec(),
            Value::Array(values.iter().map(|v| b(v)).collect()),
        )])
    }

    /// Issue 17 item 16: matched cookie values were written as sent (`prefs=<script>…`).
    #[test]
    fn cookie_values_are_never_written() {
        let cfg = AuditConfig::default();
        for name in ["prefs", "remember_me", "id", "SESSION"] {
            let field = format!("http.request.cookies[\"{name}\"]");
            let shown = shown(&cfg, &field, &entry(name, &["<script>alert(1)</script>"]));
            assert_eq!(shown, "[redacted]", "{name}");
        }
        // The whole map (evidence that could not be narrowed) too.
        let all = Value::Map(vec![
            (b"a".to_vec(), Value::Array(vec![b("1")])),
            (b"sid".to_vec(), Value::Array(vec![b("secret")])),
        ]);
        assert_eq!(shown(&cfg, "http.request.cookies", &all), "[redacted]");
    }

    #[test]
    fn credential_headers_are_redacted_in_requests_and_responses() {
        let cfg = AuditConfig::default();
        let cases = [
            (
                "http.request.headers[\"authorization\"]",
                entry("authorization", &["Bearer x"]),
            ),
            (
                "http.request.headers[\"cookie\"]",
                entry("cookie", &["sid=secret"]),
            ),
            (
                "http.response.headers[\"set-cookie\"]",
                entry("set-cookie", &["sid=secret"]),
            ),
            (
                "http.request.headers.values[2]",
                Value::Array(vec![b("sid=secret")]),
            ),
            (
                "http.request.headers",
                Value::Map(vec![(b"cookie".to_vec(), b("sid=s"))]),
            ),
            (
                "http.response.headers",
                Value::Map(vec![
                    (b"x".to_vec(), b("y")),
                    (b"set-cookie".to_vec(), b("s=1")),
                ]),
            ),
        ];
        for (field, v) in cases {
            assert_eq!(shown(&cfg, field, &v), "[redacted]", "{field}");
        }
        // Other headers and args show their value, unwrapped from its one-item list.
        let ua = entry("user-agent", &["sqlmap/1.7"]);
        assert_eq!(
            shown(&cfg, "http.request.headers[\"user-agent\"]", &ua),
            "sqlmap/1.7"
        );
        let arg = entry("q", &["' or 1=1--"]);
        assert_eq!(
            shown(&cfg, "http.request.uri.args[\"q\"]", &arg),
            "' or 1=1--"
        );
    }
}
