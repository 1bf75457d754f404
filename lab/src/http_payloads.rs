//! The HTTP attacks of the lab's HTTP phase: a fixed list of SQL injection and XSS payloads (each
//! sent as a query argument and as a form field) and what a login brute force looks like.
//! Every payload is one the default WAF rules must block; a unit test holds each of them to the
//! detectors those rules call, so a list edit that weakens the lab fails here first.

/// Classic SQL injection fragments: tautologies, comments, stacked queries, unions, blind timing.
pub const SQLI: [&str; 20] = [
    "1' OR '1'='1",
    "1 OR 1=1",
    "' OR 1=1--",
    "admin'--",
    "1; DROP TABLE users--",
    "1 UNION SELECT username, password FROM users",
    "' UNION SELECT NULL,NULL,NULL--",
    "1' AND SLEEP(5)#",
    "1 AND 1=2 UNION ALL SELECT 1,version()",
    "' OR 'x'='x",
    "1' ORDER BY 3--+",
    "-1 UNION SELECT 1,2,3",
    "1' AND extractvalue(1,concat(0x7e,version()))--",
    "'; EXEC xp_cmdshell('dir')--",
    "1 AND (SELECT COUNT(*) FROM sysobjects)>0",
    "\" OR \"\"=\"",
    "1' WAITFOR DELAY '0:0:5'--",
    "' AND 1=CONVERT(int,@@version)--",
    "1 OR benchmark(10000000,MD5(1))",
    "') OR ('1'='1",
];

/// Script injection in its usual HTML contexts: tags, event handlers, `javascript:` URLs.
pub const XSS: [&str; 20] = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<body onload=alert('xss')>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "\"><script>alert(document.cookie)</script>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<div style=\"background:url(javascript:alert(1))\">",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=\"alert(1)\">",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "'><img src=1 onerror=prompt(1)>",
    "<object data=\"javascript:alert(1)\">",
    "<embed src=\"javascript:alert(1)\">",
    "<marquee onstart=alert(1)>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<form action=\"javascript:alert(1)\"><input type=submit>",
    "<isindex type=image src=1 onerror=alert(1)>",
    "<link rel=import href=\"data:text/html,<script>alert(1)</script>\">",
];

/// Where a payload goes in the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// `GET /search?q=<payload>`
    Query,
    /// `POST /search` with `q=<payload>` as `application/x-www-form-urlencoded`.
    Form,
}

/// One attack request: (class, carrier, payload).
pub type Attack = (&'static str, Carrier, &'static str);

/// Every payload in both carriers: SQLi first, then XSS.
pub fn attacks() -> Vec<Attack> {
    let mut out = Vec::new();
    for (class, list) in [("sqli", &SQLI), ("xss", &XSS)] {
        for p in list.iter() {
            out.push((class, Carrier::Query, *p));
            out.push((class, Carrier::Form, *p));
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters (valid in a query and in a
/// form body alike).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_rules::lang::detect::{sqli, xss};

    #[test]
    fn every_payload_is_one_the_default_rules_detect() {
        let missed: Vec<&str> = SQLI
            .iter()
            .filter(|p| !sqli(p.as_bytes()))
            .chain(XSS.iter().filter(|p| !xss(p.as_bytes())))
            .copied()
            .collect();
        assert!(
            missed.is_empty(),
            "not detected by libinjection: {missed:?}"
        );
        assert_eq!(attacks().len(), 80);
    }

    #[test]
    fn percent_encoding_round_trips_through_the_rules_decoder() {
        for p in SQLI.iter().chain(XSS.iter()) {
            let enc = percent_encode(p);
            assert!(enc
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            let dec = rampart_rules::lang::functions::url_decode(enc.as_bytes());
            assert_eq!(dec, p.as_bytes());
        }
    }
}
