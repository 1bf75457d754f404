//! The request as SecLang variables: `ARGS`, `REQUEST_HEADERS`, `REQUEST_FILENAME`, `FILES` …
//! built once per transaction from an [`HttpInput`] (the request as it came off the wire).
//!
//! Phase 1 sees the request line and headers; the body collections (`ARGS_POST`, `FILES`,
//! `XML`, `REQBODY_ERROR` …) are added when phase 2 starts, after phase-1 rules had their chance
//! to pick a body processor (`ctl:requestBodyProcessor`). Response variables and persistent
//! collections (`IP`, `SESSION`, `GLOBAL` …) are known names that stay empty: a rule on them
//! never matches, and the compiler counts such rules.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use super::body::{self, BodyVars};
use crate::request::parse_urlencoded;

/// A request as the engine received it: raw, as sent (nothing decoded or normalised).
#[derive(Clone, Debug)]
pub struct HttpInput {
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    pub server_port: u16,
    pub method: Vec<u8>,
    /// The request target as written on the request line (origin or absolute form).
    pub uri: Vec<u8>,
    /// `HTTP/1.1`.
    pub protocol: Vec<u8>,
    /// Header fields in the order sent, names as sent.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl HttpInput {
    /// A request from 127.0.0.1:40000 to port 80 over HTTP/1.1, for tests and benches.
    pub fn simple(method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpInput {
        HttpInput {
            remote_addr: std::net::Ipv4Addr::LOCALHOST.into(),
            remote_port: 40000,
            server_port: 80,
            method: method.into(),
            uri: uri.into(),
            protocol: b"HTTP/1.1".to_vec(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
        }
    }
}

/// One value of a variable: its key (header or argument name; empty for scalars) and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Every variable name the compiler accepts. Those not filled by [`RequestVars`] (and not `TX`,
/// `MATCHED_VAR*`, which the transaction holds) are always empty here.
pub const KNOWN: &[&str] = &[
    "ARGS",
    "ARGS_GET",
    "ARGS_POST",
    "ARGS_NAMES",
    "ARGS_GET_NAMES",
    "ARGS_POST_NAMES",
    "ARGS_COMBINED_SIZE",
    "REQUEST_HEADERS",
    "REQUEST_HEADERS_NAMES",
    "REQUEST_COOKIES",
    "REQUEST_COOKIES_NAMES",
    "REQUEST_URI",
    "REQUEST_URI_RAW",
    "REQUEST_FILENAME",
    "REQUEST_BASENAME",
    "REQUEST_LINE",
    "REQUEST_METHOD",
    "REQUEST_PROTOCOL",
    "QUERY_STRING",
    "REQUEST_BODY",
    "REQUEST_BODY_LENGTH",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REMOTE_HOST",
    "SERVER_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "UNIQUE_ID",
    "FULL_REQUEST",
    "FULL_REQUEST_LENGTH",
    "PATH_INFO",
    "AUTH_TYPE",
    "REQBODY_ERROR",
    "REQBODY_ERROR_MSG",
    "REQBODY_PROCESSOR",
    "REQBODY_PROCESSOR_ERROR",
    "REQBODY_PROCESSOR_ERROR_MSG",
    "URLENCODED_ERROR",
    "INBOUND_DATA_ERROR",
    "FILES",
    "FILES_NAMES",
    "FILES_SIZES",
    "FILES_COMBINED_SIZE",
    "FILES_TMPNAMES",
    "FILES_TMP_CONTENT",
    "MULTIPART_PART_HEADERS",
    "MULTIPART_FILENAME",
    "MULTIPART_NAME",
    "MULTIPART_STRICT_ERROR",
    "MULTIPART_UNMATCHED_BOUNDARY",
    "MULTIPART_BOUNDARY_QUOTED",
    "MULTIPART_BOUNDARY_WHITESPACE",
    "MULTIPART_DATA_BEFORE",
    "MULTIPART_DATA_AFTER",
    "MULTIPART_HEADER_FOLDING",
    "MULTIPART_LF_LINE",
    "MULTIPART_CRLF_LF_LINES",
    "MULTIPART_MISSING_SEMICOLON",
    "MULTIPART_INVALID_QUOTING",
    "MULTIPART_INVALID_PART",
    "MULTIPART_INVALID_HEADER_FOLDING",
    "MULTIPART_FILE_LIMIT_EXCEEDED",
    "XML",
    "TX",
    "MATCHED_VAR",
    "MATCHED_VAR_NAME",
    "MATCHED_VARS",
    "MATCHED_VARS_NAMES",
    "RULE",
    "ENV",
    "GEO",
    "IP",
    "GLOBAL",
    "SESSION",
    "USER",
    "RESOURCE",
    "DURATION",
    "TIME",
    "TIME_EPOCH",
    "TIME_DAY",
    "TIME_HOUR",
    "TIME_MIN",
    "TIME_MON",
    "TIME_SEC",
    "TIME_WDAY",
    "TIME_YEAR",
    "HIGHEST_SEVERITY",
    "STATUS_LINE",
    "RESPONSE_BODY",
    "RESPONSE_HEADERS",
    "RESPONSE_HEADERS_NAMES",
    "RESPONSE_STATUS",
    "RESPONSE_PROTOCOL",
    "RESPONSE_CONTENT_TYPE",
    "RESPONSE_CONTENT_LENGTH",
    "OUTBOUND_DATA_ERROR",
    "WEBSERVER_ERROR_LOG",
    "USERID",
    "SESSIONID",
    "WEBAPPID",
];

/// Variables that hold state CRS keeps between requests (`initcol`): empty in this engine.
pub const PERSISTENT: &[&str] = &["IP", "GLOBAL", "SESSION", "USER", "RESOURCE"];

/// Response variables: empty while the request is inspected.
pub fn is_response(name: &str) -> bool {
    name.starts_with("RESPONSE_") || name == "STATUS_LINE" || name == "OUTBOUND_DATA_ERROR"
}

/// The known variable spelled `name` (upper case), as the `'static` name the tables use.
pub fn known(name: &str) -> Option<&'static str> {
    KNOWN.iter().copied().find(|k| *k == name)
}

/// A known variable's number: its index in [`KNOWN`]. Rules and the per-request table use
/// numbers so a lookup during evaluation is an index, not a hash.
pub fn var_id(name: &str) -> Option<u16> {
    static IDS: OnceLock<HashMap<&'static str, u16>> = OnceLock::new();
    IDS.get_or_init(|| {
        KNOWN
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, i as u16))
            .collect()
    })
    .get(name)
    .copied()
}

fn id(name: &str) -> usize {
    var_id(name).map_or_else(|| unreachable!("{name} is in KNOWN"), usize::from)
}

/// The request's variables (all but `TX` and `MATCHED_*`).
#[derive(Debug)]
pub struct RequestVars {
    /// Indexed by [`var_id`].
    vals: Vec<Vec<Entry>>,
}

/// The four collections every argument lands in, by number.
struct ArgIds {
    names: usize,
    all: usize,
    own_names: usize,
    own: usize,
}

impl ArgIds {
    fn get() -> ArgIds {
        ArgIds {
            names: id("ARGS_NAMES"),
            all: id("ARGS"),
            own_names: id("ARGS_GET_NAMES"),
            own: id("ARGS_GET"),
        }
    }

    fn post() -> ArgIds {
        ArgIds {
            own_names: id("ARGS_POST_NAMES"),
            own: id("ARGS_POST"),
            ..ArgIds::get()
        }
    }
}

impl RequestVars {
    /// Phase-1 variables: request line, headers, cookies, query arguments.
    pub fn from_head(input: &HttpInput) -> RequestVars {
        let mut v = RequestVars {
            vals: vec![Vec::new(); KNOWN.len()],
        };
        let (raw_path, query) = split_query(&input.uri);
        // REQUEST_URI never holds the scheme and host of an absolute-form target; _RAW does.
        let origin_form = strip_authority(&input.uri);
        v.scalar("REQUEST_URI_RAW", input.uri.clone());
        v.scalar("REQUEST_URI", origin_form.to_vec());
        let path = crate::request::percent_decode(strip_authority(raw_path));
        let base = path
            .rsplit(|&c| c == b'/')
            .next()
            .unwrap_or_default()
            .to_vec();
        v.scalar("REQUEST_FILENAME", path);
        v.scalar("REQUEST_BASENAME", base);
        v.scalar("QUERY_STRING", query.unwrap_or_default().to_vec());
        v.scalar("REQUEST_METHOD", input.method.clone());
        v.scalar("REQUEST_PROTOCOL", input.protocol.clone());
        v.scalar(
            "REQUEST_LINE",
            [&input.method[..], b" ", &input.uri, b" ", &input.protocol].concat(),
        );
        v.scalar("REMOTE_ADDR", input.remote_addr.to_string().into_bytes());
        v.scalar("REMOTE_HOST", input.remote_addr.to_string().into_bytes());
        v.scalar("REMOTE_PORT", input.remote_port.to_string().into_bytes());
        v.scalar("SERVER_PORT", input.server_port.to_string().into_bytes());
        v.scalar("SERVER_ADDR", b"127.0.0.1".to_vec());
        v.scalar("UNIQUE_ID", b"rampart".to_vec());
        v.scalar("REQBODY_PROCESSOR", Vec::new());
        for (name, value) in &input.headers {
            v.push("REQUEST_HEADERS", name.clone(), value.clone());
            v.push("REQUEST_HEADERS_NAMES", name.clone(), name.clone());
            if name.eq_ignore_ascii_case(b"host") {
                let host = value.split(|&c| c == b':').next().unwrap_or_default();
                v.scalar("SERVER_NAME", host.to_vec());
            }
            if name.eq_ignore_ascii_case(b"cookie") {
                for (k, val) in cookies(value) {
                    v.push("REQUEST_COOKIES_NAMES", k.clone(), k.clone());
                    v.push("REQUEST_COOKIES", k, val);
                }
            }
        }
        let (args, _) = parse_urlencoded(query.unwrap_or_default(), usize::MAX);
        v.args(args, &ArgIds::get());
        v.sizes();
        v
    }

    /// Adds the body's variables, read by `processor` (`URLENCODED`, `MULTIPART`, `JSON`,
    /// `XML`, or empty for none); `force_body` (`ctl:forceRequestBodyVariable`) fills
    /// `REQUEST_BODY` whatever the processor.
    /// `full_request`: a rule reads `FULL_REQUEST*`, so build that copy of the whole request
    /// (CRS reads neither: skipped, it would copy every body once more).
    pub fn add_body(
        &mut self,
        input: &HttpInput,
        processor: &str,
        force_body: bool,
        full_request: bool,
    ) {
        let content_type = self
            .first("REQUEST_HEADERS", b"content-type")
            .map(<[u8]>::to_vec);
        self.scalar("REQBODY_PROCESSOR", processor.as_bytes().to_vec());
        self.scalar(
            "REQUEST_BODY_LENGTH",
            input.body.len().to_string().into_bytes(),
        );
        // As ModSecurity: the raw body is a variable only for urlencoded bodies or when a
        // rule asked for it (CRS 901340 does for bodies no processor reads).
        if processor == "URLENCODED" || force_body {
            self.scalar("REQUEST_BODY", input.body.clone());
        }
        if full_request {
            self.full_request(input);
        }
        let read: BodyVars = match processor {
            "URLENCODED" => body::urlencoded(&input.body),
            "MULTIPART" => {
                body::multipart(content_type.as_deref().unwrap_or_default(), &input.body)
            }
            "JSON" => body::json(&input.body),
            "XML" => body::xml(&input.body),
            _ => BodyVars::default(),
        };
        let error = read.error.is_some();
        self.scalar(
            "REQBODY_ERROR",
            if error { b"1".to_vec() } else { b"0".to_vec() },
        );
        self.scalar(
            "REQBODY_PROCESSOR_ERROR",
            if error { b"1".to_vec() } else { b"0".to_vec() },
        );
        let msg = read.error.unwrap_or_default().into_bytes();
        self.scalar("REQBODY_ERROR_MSG", msg.clone());
        self.scalar("REQBODY_PROCESSOR_ERROR_MSG", msg);
        self.args(read.args, &ArgIds::post());
        for (name, entries) in read.collections {
            for (k, val) in entries {
                self.push(name, k, val);
            }
        }
        self.sizes();
    }

    fn full_request(&mut self, input: &HttpInput) {
        let mut full = [
            &input.method[..],
            b" ",
            &input.uri,
            b" ",
            &input.protocol,
            b"\r\n",
        ]
        .concat();
        for (k, v) in &input.headers {
            full.extend_from_slice(&[&k[..], b": ", v, b"\r\n"].concat());
        }
        full.extend_from_slice(b"\r\n");
        full.extend_from_slice(&input.body);
        self.scalar("FULL_REQUEST_LENGTH", full.len().to_string().into_bytes());
        self.scalar("FULL_REQUEST", full);
    }

    /// `REQBODY_PROCESSOR` as chosen so far (phase 1 reads it before the body is read).
    pub fn set_processor(&mut self, processor: &str) {
        self.scalar("REQBODY_PROCESSOR", processor.as_bytes().to_vec());
    }

    /// The values of `name`, in order (empty when it has none).
    pub fn get(&self, name: &str) -> &[Entry] {
        var_id(name).map_or(&[][..], |i| self.get_id(i))
    }

    /// The values of variable number `id` ([`var_id`]).
    pub fn get_id(&self, id: u16) -> &[Entry] {
        self.vals
            .get(usize::from(id))
            .map_or(&[][..], Vec::as_slice)
    }

    fn args(&mut self, args: Vec<(Vec<u8>, Vec<u8>)>, ids: &ArgIds) {
        for (k, val) in args {
            let entry = |key: &[u8], value: &[u8]| Entry {
                key: key.to_vec(),
                value: value.to_vec(),
            };
            self.vals[ids.own_names].push(entry(&k, &k));
            self.vals[ids.names].push(entry(&k, &k));
            self.vals[ids.own].push(entry(&k, &val));
            self.vals[ids.all].push(Entry { key: k, value: val });
        }
    }

    /// The first value of collection `name` under `key` (case-insensitive).
    pub fn first(&self, name: &str, key: &[u8]) -> Option<&[u8]> {
        self.get(name)
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
            .map(|e| e.value.as_slice())
    }

    fn scalar(&mut self, name: &'static str, value: Vec<u8>) {
        self.vals[id(name)] = vec![Entry {
            key: Vec::new(),
            value,
        }];
    }

    fn push(&mut self, name: &'static str, key: Vec<u8>, value: Vec<u8>) {
        self.vals[id(name)].push(Entry { key, value });
    }

    fn sizes(&mut self) {
        let args: usize = self
            .get("ARGS")
            .iter()
            .map(|e| e.key.len() + e.value.len())
            .sum();
        self.scalar("ARGS_COMBINED_SIZE", args.to_string().into_bytes());
        let files: usize = self
            .get("FILES_SIZES")
            .iter()
            .filter_map(|e| std::str::from_utf8(&e.value).ok()?.parse::<usize>().ok())
            .sum();
        self.scalar("FILES_COMBINED_SIZE", files.to_string().into_bytes());
    }
}

/// `/a/b?x=1` → (`/a/b`, Some(`x=1`)).
fn split_query(uri: &[u8]) -> (&[u8], Option<&[u8]>) {
    match uri.iter().position(|&c| c == b'?') {
        Some(i) => (&uri[..i], Some(&uri[i + 1..])),
        None => (uri, None),
    }
}

/// `http://host:80/p?q` → `/p?q`; an origin-form target is returned as is.
fn strip_authority(uri: &[u8]) -> &[u8] {
    let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
    let scheme = if lower.starts_with(b"http://") {
        7
    } else if lower.starts_with(b"https://") {
        8
    } else {
        return uri;
    };
    let rest = &uri[scheme..];
    match rest.iter().position(|&c| c == b'/' || c == b'?') {
        Some(i) => &rest[i..],
        None => b"/",
    }
}

/// `a=1; b=2; c` → [(a,1),(b,2),(c,"")]; values are not decoded (as ModSecurity).
fn cookies(header: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    header
        .split(|&c| c == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|s| !s.is_empty())
        .map(|s| match s.iter().position(|&c| c == b'=') {
            Some(i) => (
                s[..i].trim_ascii().to_vec(),
                s[i + 1..].trim_ascii().to_vec(),
            ),
            None => (s.to_vec(), Vec::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn input(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> HttpInput {
        HttpInput::simple(method, uri, headers, body.as_bytes())
    }

    fn values(v: &RequestVars, name: &str) -> Vec<(String, String)> {
        v.get(name)
            .iter()
            .map(|e| {
                (
                    String::from_utf8_lossy(&e.key).into(),
                    String::from_utf8_lossy(&e.value).into(),
                )
            })
            .collect()
    }

    #[test]
    fn head_variables_follow_modsecurity() {
        let v = RequestVars::from_head(&input(
            "GET",
            "http://example.com/a/%2e%2e/b.php?x=1+2&y=%27",
            &[("Host", "example.com:8080"), ("Cookie", "s=a%20b; t")],
            "",
        ));
        assert_eq!(
            values(&v, "REQUEST_URI")[0].1,
            "/a/%2e%2e/b.php?x=1+2&y=%27"
        );
        assert_eq!(
            values(&v, "REQUEST_URI_RAW")[0].1,
            "http://example.com/a/%2e%2e/b.php?x=1+2&y=%27"
        );
        assert_eq!(values(&v, "REQUEST_FILENAME")[0].1, "/a/../b.php");
        assert_eq!(values(&v, "REQUEST_BASENAME")[0].1, "b.php");
        assert_eq!(values(&v, "QUERY_STRING")[0].1, "x=1+2&y=%27");
        assert_eq!(
            values(&v, "ARGS"),
            [("x".into(), "1 2".into()), ("y".into(), "'".into())]
        );
        assert_eq!(
            values(&v, "REQUEST_COOKIES"),
            [("s".into(), "a%20b".into()), ("t".into(), "".into())]
        );
        assert_eq!(values(&v, "SERVER_NAME")[0].1, "example.com");
        assert_eq!(values(&v, "ARGS_COMBINED_SIZE")[0].1, "6");
        assert_eq!(
            v.first("REQUEST_HEADERS", b"HOST"),
            Some(&b"example.com:8080"[..])
        );
    }

    #[test]
    fn body_variables_by_processor() {
        let req = input(
            "POST",
            "/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "a=1&b=%3Cx",
        );
        let mut v = RequestVars::from_head(&req);
        assert!(v.get("ARGS_POST").is_empty());
        v.add_body(&req, "URLENCODED", false, true);
        assert!(!values(&v, "FULL_REQUEST")[0].1.is_empty());
        assert_eq!(values(&v, "ARGS_POST")[1], ("b".into(), "<x".into()));
        assert_eq!(values(&v, "REQBODY_ERROR")[0].1, "0");
        assert_eq!(values(&v, "REQUEST_BODY")[0].1, "a=1&b=%3Cx");
        let bad = input("POST", "/", &[], "{\"a\":");
        let mut v = RequestVars::from_head(&bad);
        v.add_body(&bad, "JSON", false, false);
        assert!(
            v.get("FULL_REQUEST").is_empty(),
            "no rule reads it: not built"
        );
        assert_eq!(values(&v, "REQBODY_ERROR")[0].1, "1");
    }
}
