//! The rule corpus (`tests/corpus/rules/*.yaml`) read with serde: each file is a group named by
//! its stem, holding a rule file and cases (a packet with the verdict and deciding rule the
//! language semantics give). Unknown keys are refused, with the file and line.
//!
//! ```yaml
//! description: what the file covers          # optional
//! ruleset: |                                  # a complete rule file, version 1
//!   version: 1
//!   rules:
//!     - id: 101
//!       expression: tcp.dstport eq 80
//!       action: drop
//! cases:
//!   - name: tcp to port 80 is dropped        # unique in the file
//!     packet: {proto: tcp, dport: 80, flags: S}
//!     verdict: drop                           # pass | drop
//!     rule: 101                               # the deciding rule, or null
//!     logged: [7]                             # optional: log rules that matched on the way
//!     note: why                               # optional, free text
//! ```
//!
//! Packet keys ([`PacketRow`], all optional): `ip` (4 or 6; inferred from the addresses),
//! `l2: arp` or `ethertype: N` (a non-IP frame), `src`, `dst`, `proto` (tcp, udp, icmp, icmpv6,
//! gre, esp, ah, sctp, none (59), or a number; default udp), `sport`, `dport`, `flags` (TCP:
//! letters of `FSRPAUEC` or a number; default A), `ttl` (hop limit in IPv6), `icmp_type`,
//! `icmp_code`, `payload` (a string, one byte per character, `\xHH` escapes), `fill` (that many
//! `z` bytes after the payload), `ip_options` (IPv4 option bytes, NOPs), `tcp_options` (TCP
//! option bytes), `ext` (IPv6 extension headers in order: hop, routing, dest, ah, frag), `frag`
//! (first: offset 0 with more fragments; atomic: an IPv6 fragment header with offset 0 and no
//! more), `frag_id`, `df`, `vlan` (an id or ids, outermost first), `tpid` (the outer tag's TPID),
//! `pcp` (priority bits of every tag), `eth_pad` (zero bytes after the IP datagram, as Ethernet
//! padding). Numbers are decimal or `0x` hexadecimal.
//!
//! [`FILTER_VAR`] (`RAMPART_RULES_CORPUS_TEST`) selects cases, as `REGEX_TEST` does in
//! rust-lang/regex: comma-separated terms matched as substrings of `group/name`; a term with a
//! leading `-` excludes. A case runs when it matches an include term (or there is none) and no
//! exclude term.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use marked_yaml::Spanned;
use serde::{de, Deserialize, Deserializer};

/// The environment variable that filters cases by `group/name` (see the module docs).
pub const FILTER_VAR: &str = "RAMPART_RULES_CORPUS_TEST";

/// A corpus file could not be read or does not follow the format.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct CorpusError {
    path: PathBuf,
    message: String,
}

/// One file of the corpus: its group (the file stem), rule file and cases.
#[derive(Debug)]
pub struct CorpusFile {
    pub group: String,
    pub path: PathBuf,
    pub description: Option<String>,
    pub ruleset: String,
    pub cases: Vec<Case>,
}

/// One case, with the line its entry starts on.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub line: usize,
    pub packet: PacketRow,
    pub verdict: Verdict,
    /// The deciding rule (`null`: none decided).
    pub rule: Option<u32>,
    /// Log rules expected to match once each (checked only when the case says).
    pub logged: Option<BTreeSet<u32>>,
    pub note: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Drop,
}

/// An IPv6 extension header of `ext`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ext {
    Hop,
    Routing,
    Dest,
    Ah,
    Frag,
}

/// `frag`: the fragment shape of the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frag {
    First,
    Atomic,
}

/// A packet as the corpus writes it; the test gives the defaults and builds the frame.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketRow {
    pub ip: Option<Number>,
    pub l2: Option<String>,
    pub ethertype: Option<Number>,
    pub src: Option<String>,
    pub dst: Option<String>,
    pub proto: Option<String>,
    pub sport: Option<Number>,
    pub dport: Option<Number>,
    pub flags: Option<String>,
    pub ttl: Option<Number>,
    pub icmp_type: Option<Number>,
    pub icmp_code: Option<Number>,
    pub payload: Option<String>,
    pub fill: Option<Number>,
    pub ip_options: Option<Number>,
    pub tcp_options: Option<Number>,
    pub ext: Option<Vec<Ext>>,
    pub frag: Option<Frag>,
    pub frag_id: Option<Number>,
    pub df: Option<bool>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub vlan: Option<Vec<Number>>,
    pub tpid: Option<Number>,
    pub pcp: Option<Number>,
    pub eth_pad: Option<Number>,
}

/// A decimal or `0x` hexadecimal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Number(pub u64);

impl Number {
    /// A decimal or `0x` hexadecimal number.
    pub fn parse(s: &str) -> Result<Number, String> {
        let v = match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16),
            None => s.parse(),
        };
        v.map(Number).map_err(|_| format!("`{s}` is not a number"))
    }

    /// The value, refused when above `max` (`what` names it in the error).
    pub fn at_most(self, max: u64, what: &str) -> Result<u64, String> {
        if self.0 > max {
            return Err(format!("{what} {} is above {max}", self.0));
        }
        Ok(self.0)
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal or 0x hexadecimal number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Number, E> {
                Number::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// `vlan: 10` or `vlan: [10, 20]`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Number>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Number>),
        One(Number),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(n) => vec![n],
    }))
}

/// A rule id, or `null`; the key itself is required.
fn rule_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "null" | "~" | "" => Ok(None),
        _ => s
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("rule `{s}`: an id, or null"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRow {
    description: Option<String>,
    ruleset: String,
    cases: Vec<CaseRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseRow {
    name: Spanned<String>,
    packet: PacketRow,
    verdict: Verdict,
    #[serde(deserialize_with = "rule_id")]
    rule: Option<u32>,
    logged: Option<Vec<Number>>,
    note: Option<String>,
}

/// Reads one corpus file; the group is its file stem.
pub fn load_file(path: &Path) -> Result<CorpusFile, CorpusError> {
    let err = |message: String| CorpusError {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let options = marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true);
    let row: FileRow =
        marked_yaml::from_yaml_with_options(0, &text, options).map_err(|e| err(e.to_string()))?;
    let mut cases: Vec<Case> = Vec::with_capacity(row.cases.len());
    for c in row.cases {
        let line = c.name.span().start().map_or(0, |m| m.line());
        let name = c.name.as_str().to_owned();
        if cases.iter().any(|k| k.name == name) {
            return Err(err(format!(
                "case `{name}` (line {line}): duplicate case name"
            )));
        }
        let logged = c
            .logged
            .map(|ids| {
                ids.into_iter()
                    .map(|n| n.at_most(u32::MAX.into(), "rule").map(|v| v as u32))
                    .collect::<Result<BTreeSet<u32>, String>>()
            })
            .transpose()
            .map_err(|e| err(format!("case `{name}` (line {line}): {e}")))?;
        cases.push(Case {
            name,
            line,
            packet: c.packet,
            verdict: c.verdict,
            rule: c.rule,
            logged,
            note: c.note,
        });
    }
    let group = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    Ok(CorpusFile {
        group,
        path: path.to_path_buf(),
        description: row.description,
        ruleset: row.ruleset,
        cases,
    })
}

/// Reads every `*.yaml` file of `dir`, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<CorpusFile>, CorpusError> {
    let err = |e: std::io::Error| CorpusError {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        if path.extension().is_some_and(|x| x == "yaml") {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|p| load_file(p)).collect()
}

/// The case filter of [`FILTER_VAR`].
#[derive(Clone, Debug, Default)]
pub struct Filter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Filter {
    /// The filter in [`FILTER_VAR`], or none (every case) when it is unset.
    pub fn from_env() -> Filter {
        std::env::var(FILTER_VAR)
            .map(|s| Filter::parse(&s))
            .unwrap_or_default()
    }

    /// Comma-separated terms; a leading `-` excludes.
    pub fn parse(spec: &str) -> Filter {
        let mut f = Filter::default();
        for term in spec.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match term.strip_prefix('-') {
                Some(t) => f.exclude.push(t.to_owned()),
                None => f.include.push(term.to_owned()),
            }
        }
        f
    }

    /// True when some terms are given (every case is not selected then).
    pub fn is_active(&self) -> bool {
        !self.include.is_empty() || !self.exclude.is_empty()
    }

    /// Whether `group/name` runs.
    pub fn selects(&self, group: &str, name: &str) -> bool {
        let id = format!("{group}/{name}");
        (self.include.is_empty() || self.include.iter().any(|t| id.contains(t.as_str())))
            && !self.exclude.iter().any(|t| id.contains(t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_includes_and_excludes_by_group_and_name() {
        let f = Filter::parse("vlan, -vlan/outer,ipv6/frag");
        assert!(f.selects("vlan", "inner tag"));
        assert!(!f.selects("vlan", "outer tag"));
        assert!(f.selects("ipv6", "frag header"));
        assert!(!f.selects("ipv6", "hop"));
        assert!(Filter::default().selects("any", "case"));
    }

    #[test]
    fn rows_refuse_unknown_keys_and_need_a_rule() {
        let ok = "ruleset: x\ncases:\n  - name: a\n    packet: {vlan: 7, tpid: 0x88a8, payload: \"\\x01z\"}\n    verdict: pass\n    rule: null\n";
        let row: FileRow = marked_yaml::from_yaml(0, ok).expect("valid row");
        let p = &row.cases[0].packet;
        assert_eq!(p.vlan, Some(vec![Number(7)]));
        assert_eq!(p.tpid, Some(Number(0x88a8)));
        assert_eq!(p.payload.as_deref(), Some("\u{1}z"));
        assert_eq!(row.cases[0].rule, None);
        let unknown = ok.replace("vlan: 7", "vlans: 7");
        assert!(marked_yaml::from_yaml::<FileRow>(0, &unknown).is_err());
        let no_rule = ok.replace("    rule: null\n", "");
        assert!(marked_yaml::from_yaml::<FileRow>(0, &no_rule).is_err());
    }
}
