//! The WAF corpus report: every line of the libinjection attack and false-positive lists in
//! `shared/corpora/libinjection/data` sent as a query argument through the engine with the
//! default rules. Attack lists count as detected when the request is blocked; the
//! false-positive list counts as a false positive when it is.

use std::path::Path;

use rampart::l7::{ConnInfo, Decision, Engine, EngineConfig};

/// What a list holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqli,
    Xss,
    Benign,
}

/// One list's result.
#[derive(Clone, Debug)]
pub struct ListResult {
    pub file: String,
    pub kind: Kind,
    pub inputs: usize,
    pub blocked: usize,
    /// Inputs not blocked (attacks) or blocked (benign), for reading.
    pub misses: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub lists: Vec<ListResult>,
}

impl Report {
    /// (inputs, blocked) over every list of `kind`.
    pub fn total(&self, kind: Kind) -> (usize, usize) {
        self.lists
            .iter()
            .filter(|l| l.kind == kind)
            .fold((0, 0), |(n, b), l| (n + l.inputs, b + l.blocked))
    }
}

/// The corpus line is URL-encoded input (libinjection's own driver decodes it, then tests the
/// whole value); it is decoded here and encoded again completely, so that `&`, `=` and `#` in the
/// input stay inside the one argument value.
fn as_query_value(line: &str) -> String {
    let decoded = rampart_rules::lang::functions::url_decode(line.as_bytes());
    let mut out = String::with_capacity(decoded.len() * 3);
    for b in decoded {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// True when the engine blocks `GET /search?q=<line>`.
pub fn blocked(engine: &Engine, line: &str) -> bool {
    let uri = format!("/search?q={}", as_query_value(line));
    let Ok(req) = http::Request::get(uri.as_str())
        .header("host", "shop.example")
        .header("user-agent", "corpus-report")
        .body(())
    else {
        return false;
    };
    let (parts, ()) = req.into_parts();
    let conn = ConnInfo::new(([192, 0, 2, 1], 40_000).into());
    let mut tx = engine.begin(&conn, &parts);
    let mut d = tx.on_request_headers();
    if !d.is_terminal() {
        d = tx.on_request_body(b"", true);
    }
    matches!(d, Decision::Block { .. })
}

/// Runs every list in `dir` (the libinjection `data` folder) at `paranoia`.
///
/// # Errors
/// The folder or a file cannot be read.
pub fn run(dir: &Path, paranoia: u8) -> std::io::Result<Report> {
    let config = EngineConfig {
        paranoia,
        ..EngineConfig::default()
    };
    let engine = Engine::new(&[&rampart_rules::default_waf()], config)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    names.sort();
    let mut report = Report::default();
    for name in names {
        let kind = if name.starts_with("sqli-") {
            Kind::Sqli
        } else if name.starts_with("xss-") {
            Kind::Xss
        } else if name.starts_with("false_positives") {
            Kind::Benign
        } else {
            continue;
        };
        let text = std::fs::read_to_string(dir.join(&name))?;
        let mut r = ListResult {
            file: name,
            kind,
            inputs: 0,
            blocked: 0,
            misses: Vec::new(),
        };
        for line in text.lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            r.inputs += 1;
            let hit = blocked(&engine, line);
            r.blocked += usize::from(hit);
            if hit == (kind == Kind::Benign) {
                r.misses.push(line.to_string());
            }
        }
        report.lists.push(r);
    }
    Ok(report)
}
