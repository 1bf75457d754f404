//! The shared rule corpus: `tests/corpus/rules/*.yaml`, each a rule file (rule language, version 1)
//! and packets with the verdict and deciding rule the language semantics give. Every case runs
//! through both evaluators, which must agree with the expectation and with each other:
//!
//! - Kernel: the file's rule set compiled (`rampart_rules::load_str`) and loaded into the XDP
//!   program; the frame runs with BPF_PROG_TEST_RUN. The verdict is the XDP action, the deciding
//!   rule is the one non-log rule whose counter moved, the logged rules are the log rules whose
//!   counters moved (with how often). The reason counters must show exactly that: one verdict
//!   reason (`pass_rule`, `drop_rule`, `pass_no_match`, `pass_not_ip`), `ev_log_only` once per
//!   log match, nothing else (no parse error, no candidate limit).
//! - Host: the language itself. Rules apply to IP packets only; the enabled XDP rules are tried in
//!   file order with `eval_bool` over a `PacketView` of the kernel's own parse record
//!   (`FLAG_DEBUG_PARSE`); a rule in `mode: log` or with action `log` is counted and the search
//!   goes on; `drop` drops, `allow` passes, each ending the search; no decision passes.
//!
//! The entry-level host evaluator (`rampart_rules::xdp::evaluate` over the lowered entries) is
//! shown beside them in a mismatch report, to tell a lowering fault from a kernel fault.
//!
//! The builder's frame is checked against the kernel's parse record as well (addresses,
//! protocol, ports, flags, TTL, length, VLAN ids, fragment kind, extension headers, payload
//! bytes), so a case tests the packet it describes.
//!
//! Corpus file schema (YAML):
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
//! Packet keys (all optional): `ip` (4 or 6; inferred from the addresses), `l2: arp` or
//! `ethertype: N` (a non-IP frame), `src`, `dst`, `proto` (tcp, udp, icmp, icmpv6, gre, esp, ah,
//! sctp, none (59), or a number; default udp), `sport`, `dport`, `flags` (TCP: letters of
//! `FSRPAUEC` or a number; default A), `ttl` (hop limit in IPv6), `icmp_type`, `icmp_code`,
//! `payload` (a string, one byte per character, `\xHH` escapes), `fill` (that many `z` bytes
//! after the payload), `ip_options` (IPv4 option bytes, NOPs), `tcp_options` (TCP option bytes),
//! `ext` (IPv6 extension headers in order: hop, routing, dest, ah, frag), `frag` (first: offset 0
//! with more fragments; atomic: an IPv6 fragment header with offset 0 and no more), `frag_id`,
//! `df`, `vlan` (ids, outermost first), `tpid` (the outer tag's TPID), `pcp` (priority bits of
//! every tag), `eth_pad` (zero bytes after the IP datagram, as Ethernet padding).
//!
//! `RAMPART_RULES_CORPUS=<dir>` runs the `*.yaml` files of another directory instead (no minimum
//! case count then).
//!
//! The YAML is read by a small reader below (the subset the corpus uses: block mappings and
//! sequences, literal and folded block scalars, flow mappings and sequences, plain, single- and
//! double-quoted scalars, comments); it refuses anything else, and unknown keys, by file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use rampart::kernel::Dataplane;
use rampart_common::{
    addr::v4_mapped,
    config::FLAG_DEBUG_PARSE,
    frag::{FRAG_FIRST, FRAG_NONE},
    parsed::{ParsedFields, PF_HAS_L4, PF_IP},
    Addr16, Reason,
};
use rampart_rules::{
    lang::eval_bool, load_str, packet::PacketView, xdp::evaluate, Mode, RuleAction, RuleSet, Target,
};
use rampart_testkit::{fresh_dataplane, packets::*, pin_to_cpu0, root_or_skip};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const MIN_CASES: usize = 300;

// ---------------------------------------------------------------------------------------------
// A small YAML reader.
// ---------------------------------------------------------------------------------------------

mod yaml {
    /// A YAML node. Mapping entries keep their order and the line they start on.
    #[derive(Clone, Debug, PartialEq)]
    pub enum Y {
        Null,
        Str { s: String, quoted: bool },
        Seq(Vec<Y>),
        Map(Vec<(String, usize, Y)>),
    }

    pub type Res<T> = Result<T, String>;

    pub fn parse(text: &str) -> Res<Y> {
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let lead = &l[..l.len() - l.trim_start().len()];
            if lead.contains('\t') {
                return Err(format!("line {}: a tab in the indentation", i + 1));
            }
        }
        let mut p = Parser { lines, pos: 0 };
        let y = p.node(0)?;
        if let Some(i) = p.peek() {
            return Err(format!(
                "line {}: unexpected text `{}`",
                i + 1,
                p.lines[i].trim()
            ));
        }
        Ok(y)
    }

    struct Parser<'a> {
        lines: Vec<&'a str>,
        pos: usize,
    }

    fn indent(l: &str) -> usize {
        l.len() - l.trim_start_matches(' ').len()
    }

    fn is_seq_item(c: &str) -> bool {
        c == "-" || c.starts_with("- ")
    }

    /// Cuts a ` # comment` that is outside quotes.
    pub fn strip_comment(s: &str) -> &str {
        let b = s.as_bytes();
        let (mut dq, mut sq) = (false, false);
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if dq => i += 1,
                b'"' if !sq => dq = !dq,
                b'\'' if !dq => sq = !sq,
                b'#' if !dq && !sq && (i == 0 || b[i - 1] == b' ') => return &s[..i],
                _ => {}
            }
            i += 1;
        }
        s
    }

    /// `key: rest` with a plain key (letters, digits, `_`, `-`, `.`).
    fn split_key(c: &str) -> Option<(&str, &str)> {
        let colon = c.find(':')?;
        let key = &c[..colon];
        let rest = &c[colon + 1..];
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
        (plain && (rest.is_empty() || rest.starts_with(' '))).then_some((key, rest))
    }

    impl Parser<'_> {
        /// The next line that is neither blank nor a comment.
        fn peek(&mut self) -> Option<usize> {
            while self.pos < self.lines.len() {
                let t = self.lines[self.pos].trim();
                if t.is_empty() || t.starts_with('#') {
                    self.pos += 1;
                } else {
                    return Some(self.pos);
                }
            }
            None
        }

        fn content(&self, i: usize) -> &str {
            self.lines[i].trim()
        }

        fn node(&mut self, min_indent: usize) -> Res<Y> {
            let Some(i) = self.peek() else {
                return Ok(Y::Null);
            };
            let ind = indent(self.lines[i]);
            if ind < min_indent {
                return Ok(Y::Null);
            }
            if is_seq_item(self.content(i)) {
                self.seq(ind)
            } else {
                self.map(ind, None)
            }
        }

        fn seq(&mut self, ind: usize) -> Res<Y> {
            let mut items = Vec::new();
            while let Some(i) = self.peek() {
                let l = self.lines[i];
                if indent(l) != ind || !is_seq_item(l.trim()) {
                    if indent(l) > ind {
                        return Err(format!("line {}: unexpected indentation", i + 1));
                    }
                    break;
                }
                self.pos = i + 1;
                let c = l.trim();
                let rest = c[1..].trim_start();
                let col = ind + (c.len() - rest.len());
                let item = if strip_comment(rest).trim().is_empty() {
                    self.node(ind + 1)?
                } else if split_key(rest).is_some() {
                    self.map(col, Some((rest, i)))?
                } else {
                    inline(rest, i)?
                };
                items.push(item);
            }
            Ok(Y::Seq(items))
        }

        fn map(&mut self, ind: usize, first: Option<(&str, usize)>) -> Res<Y> {
            let mut entries: Vec<(String, usize, Y)> = Vec::new();
            if let Some((text, line)) = first {
                let text = text.to_string();
                entries.push(self.entry(ind, &text, line)?);
            }
            while let Some(i) = self.peek() {
                let l = self.lines[i];
                if indent(l) > ind {
                    return Err(format!("line {}: unexpected indentation", i + 1));
                }
                if indent(l) < ind || is_seq_item(l.trim()) {
                    break;
                }
                self.pos = i + 1;
                let c = l.trim().to_string();
                let e = self.entry(ind, &c, i)?;
                if entries.iter().any(|(k, _, _)| *k == e.0) {
                    return Err(format!("line {}: duplicate key `{}`", i + 1, e.0));
                }
                entries.push(e);
            }
            Ok(Y::Map(entries))
        }

        fn entry(&mut self, ind: usize, text: &str, line: usize) -> Res<(String, usize, Y)> {
            let (key, rest) = split_key(text)
                .ok_or_else(|| format!("line {}: expected `key: value`", line + 1))?;
            let rest = strip_comment(rest).trim();
            let v = if rest.starts_with('|') || rest.starts_with('>') {
                self.block_scalar(ind, rest, line)?
            } else if rest.is_empty() {
                match self.peek() {
                    Some(i) if indent(self.lines[i]) > ind => self.node(ind + 1)?,
                    Some(i) if indent(self.lines[i]) == ind && is_seq_item(self.content(i)) => {
                        self.seq(ind)?
                    }
                    _ => Y::Null,
                }
            } else {
                inline(rest, line)?
            };
            Ok((key.to_string(), line + 1, v))
        }

        fn block_scalar(&mut self, ind: usize, header: &str, line: usize) -> Res<Y> {
            let literal = header.starts_with('|');
            let chomp = &header[1..];
            if !matches!(chomp, "" | "-" | "+") {
                return Err(format!(
                    "line {}: unsupported block scalar header `{header}`",
                    line + 1
                ));
            }
            let mut raw: Vec<&str> = Vec::new();
            let mut content_indent = None;
            while self.pos < self.lines.len() {
                let l = self.lines[self.pos];
                if l.trim().is_empty() {
                    raw.push("");
                    self.pos += 1;
                    continue;
                }
                let li = indent(l);
                if li <= ind {
                    break;
                }
                let ci = *content_indent.get_or_insert(li);
                if li < ci {
                    return Err(format!(
                        "line {}: less indented than the block scalar",
                        self.pos + 1
                    ));
                }
                raw.push(&l[ci..]);
                self.pos += 1;
            }
            let mut body: Vec<&str> = raw;
            let mut trailing = 0;
            while body.last() == Some(&"") {
                body.pop();
                trailing += 1;
            }
            let mut s = if literal {
                body.join("\n")
            } else {
                let mut out = String::new();
                for (k, l) in body.iter().enumerate() {
                    if k > 0 {
                        out.push(if l.is_empty() || body[k - 1].is_empty() {
                            '\n'
                        } else {
                            ' '
                        });
                    }
                    out.push_str(l);
                }
                out
            };
            if !body.is_empty() {
                match chomp {
                    "-" => {}
                    "+" => s.push_str(&"\n".repeat(trailing + 1)),
                    _ => s.push('\n'),
                }
            }
            Ok(Y::Str { s, quoted: true })
        }
    }

    /// A value on one line: a flow collection or a scalar.
    fn inline(text: &str, line: usize) -> Res<Y> {
        let t = strip_comment(text).trim();
        let mut f = Flow {
            s: t.as_bytes(),
            text: t,
            i: 0,
        };
        let at = |e: String| format!("line {}: {e}", line + 1);
        let v = f.value(false).map_err(at)?;
        f.ws();
        if f.i != f.s.len() {
            return Err(at(format!("unexpected text `{}`", &t[f.i..])));
        }
        Ok(v)
    }

    struct Flow<'a> {
        s: &'a [u8],
        text: &'a str,
        i: usize,
    }

    impl Flow<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i] == b' ' {
                self.i += 1;
            }
        }

        fn value(&mut self, in_flow: bool) -> Res<Y> {
            self.ws();
            match self.s.get(self.i) {
                Some(b'{') => self.map(),
                Some(b'[') => self.seq(),
                Some(b'"') => self.double(),
                Some(b'\'') => self.single(),
                Some(b'|' | b'>' | b'&' | b'*' | b'!' | b'%' | b'@' | b'`') => {
                    Err(format!("unsupported YAML at `{}`", &self.text[self.i..]))
                }
                _ => Ok(self.plain(in_flow, false)),
            }
        }

        fn plain(&mut self, in_flow: bool, key: bool) -> Y {
            let start = self.i;
            while self.i < self.s.len() {
                let c = self.s[self.i];
                if in_flow && matches!(c, b',' | b']' | b'}') {
                    break;
                }
                if key && c == b':' {
                    break;
                }
                self.i += 1;
            }
            let s = self.text[start..self.i].trim();
            if s.is_empty() || s == "~" || s == "null" {
                Y::Null
            } else {
                Y::Str {
                    s: s.to_string(),
                    quoted: false,
                }
            }
        }

        fn double(&mut self) -> Res<Y> {
            self.i += 1;
            let mut out = String::new();
            loop {
                let Some(c) = self.text[self.i..].chars().next() else {
                    return Err("unterminated string".into());
                };
                self.i += c.len_utf8();
                match c {
                    '"' => break,
                    '\\' => {
                        let e = self.s.get(self.i).copied().ok_or("unterminated string")?;
                        self.i += 1;
                        let hex = |f: &mut Self, n: usize| -> Res<char> {
                            let h = f.text.get(f.i..f.i + n).ok_or("bad escape")?;
                            f.i += n;
                            u32::from_str_radix(h, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| format!("bad escape `{h}`"))
                        };
                        out.push(match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'0' => '\0',
                            b'x' => hex(self, 2)?,
                            b'u' => hex(self, 4)?,
                            other => return Err(format!("unknown escape `\\{}`", other as char)),
                        });
                    }
                    c => out.push(c),
                }
            }
            Ok(Y::Str {
                s: out,
                quoted: true,
            })
        }

        fn single(&mut self) -> Res<Y> {
            self.i += 1;
            let mut out = String::new();
            loop {
                let Some(c) = self.text[self.i..].chars().next() else {
                    return Err("unterminated string".into());
                };
                self.i += c.len_utf8();
                if c == '\'' {
                    if self.s.get(self.i) == Some(&b'\'') {
                        self.i += 1;
                        out.push('\'');
                        continue;
                    }
                    break;
                }
                out.push(c);
            }
            Ok(Y::Str {
                s: out,
                quoted: true,
            })
        }

        fn expect(&mut self, c: u8) -> Res<()> {
            self.ws();
            if self.s.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!(
                    "expected `{}` at `{}`",
                    c as char,
                    &self.text[self.i.min(self.text.len())..]
                ))
            }
        }

        fn map(&mut self) -> Res<Y> {
            self.i += 1;
            let mut entries: Vec<(String, usize, Y)> = Vec::new();
            loop {
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    break;
                }
                let key = match self.s.get(self.i) {
                    Some(b'"') => self.double()?,
                    _ => self.plain(true, true),
                };
                let Y::Str { s: key, .. } = key else {
                    return Err("empty key in a flow mapping".into());
                };
                self.expect(b':')?;
                let v = self.value(true)?;
                if entries.iter().any(|(k, _, _)| *k == key) {
                    return Err(format!("duplicate key `{key}`"));
                }
                entries.push((key, 0, v));
                self.ws();
                match self.s.get(self.i) {
                    Some(b',') => self.i += 1,
                    Some(b'}') => {}
                    _ => return Err("expected `,` or `}` in a flow mapping".into()),
                }
            }
            Ok(Y::Map(entries))
        }

        fn seq(&mut self) -> Res<Y> {
            self.i += 1;
            let mut items = Vec::new();
            loop {
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    break;
                }
                items.push(self.value(true)?);
                self.ws();
                match self.s.get(self.i) {
                    Some(b',') => self.i += 1,
                    Some(b']') => {}
                    _ => return Err("expected `,` or `]` in a flow sequence".into()),
                }
            }
            Ok(Y::Seq(items))
        }
    }

    #[test]
    fn reads_the_subset() {
        let y = parse(
            "a: 1 # c\nb: |\n  x: 1\n\n  # kept\n  y\nc:\n- {k: \"v\\x41\", l: [1, 'i''j']}\n- name: n\n  v: ~\n",
        )
        .unwrap();
        let Y::Map(m) = y else { panic!() };
        assert_eq!(
            m[0].2,
            Y::Str {
                s: "1".into(),
                quoted: false
            }
        );
        assert_eq!(
            m[1].2,
            Y::Str {
                s: "x: 1\n\n# kept\ny\n".into(),
                quoted: true
            }
        );
        let Y::Seq(items) = &m[2].2 else { panic!() };
        let Y::Map(first) = &items[0] else { panic!() };
        assert_eq!(
            first[0].2,
            Y::Str {
                s: "vA".into(),
                quoted: true
            }
        );
        let Y::Map(second) = &items[1] else { panic!() };
        assert_eq!(second[1].2, Y::Null);
    }
}

use yaml::Y;

// ---------------------------------------------------------------------------------------------
// The corpus model.
// ---------------------------------------------------------------------------------------------

struct CorpusFile {
    path: PathBuf,
    ruleset: String,
    cases: Vec<Case>,
}

struct Case {
    name: String,
    line: usize,
    packet: Packet,
    expect: Expect,
}

#[derive(Clone, Debug)]
struct Expect {
    drop: bool,
    rule: Option<u32>,
    /// Log rules expected to match once each (checked only when the case says).
    logged: Option<BTreeSet<u32>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ext {
    Hop,
    Routing,
    Dest,
    Ah,
    Frag,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frag {
    None,
    First,
    Atomic,
}

#[derive(Clone, Debug)]
struct Packet {
    /// 4, 6, or 0 for a non-IP frame.
    ip: u8,
    ethertype: u16,
    src: String,
    dst: String,
    proto: u8,
    sport: u16,
    dport: u16,
    flags: u8,
    ttl: u8,
    icmp_type: u8,
    icmp_code: u8,
    payload: Vec<u8>,
    ip_options: usize,
    tcp_options: usize,
    ext: Vec<Ext>,
    frag: Frag,
    frag_id: u32,
    df: bool,
    vlan: Vec<u16>,
    tpid: Option<u16>,
    pcp: u8,
    eth_pad: usize,
}

type Res<T> = Result<T, String>;

fn scalar(y: &Y) -> Res<&str> {
    match y {
        Y::Str { s, .. } => Ok(s),
        other => Err(format!("expected a scalar, found {other:?}")),
    }
}

fn int(y: &Y) -> Res<u64> {
    let s = scalar(y)?;
    let v = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    v.map_err(|_| format!("`{s}` is not a number"))
}

fn int_in(y: &Y, max: u64, what: &str) -> Res<u64> {
    let v = int(y)?;
    if v > max {
        return Err(format!("{what} {v} is above {max}"));
    }
    Ok(v)
}

fn boolean(y: &Y) -> Res<bool> {
    match scalar(y)? {
        "true" => Ok(true),
        "false" => Ok(false),
        s => Err(format!("`{s}` is not true or false")),
    }
}

fn map_of<'a>(y: &'a Y, what: &str) -> Res<&'a [(String, usize, Y)]> {
    match y {
        Y::Map(m) => Ok(m),
        _ => Err(format!("{what} must be a mapping")),
    }
}

fn proto_number(s: &str) -> Res<u8> {
    Ok(match s {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" => 58,
        "none" => 59,
        "sctp" => 132,
        other => {
            return other
                .parse()
                .map_err(|_| format!("unknown protocol `{other}`"))
        }
    })
}

fn tcp_flags(y: &Y) -> Res<u8> {
    let s = scalar(y)?;
    if s.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return int_in(y, 255, "tcp flags").map(|v| v as u8);
    }
    let mut f = 0u8;
    for c in s.chars() {
        f |= match c {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' => 0x40,
            'C' => 0x80,
            '-' => 0,
            other => return Err(format!("unknown TCP flag letter `{other}` (FSRPAUEC)")),
        };
    }
    Ok(f)
}

/// One byte per character (code points up to 0xff, as `\xHH` escapes give).
fn bytes_of(s: &str) -> Res<Vec<u8>> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| format!("`{c}` is not a byte")))
        .collect()
}

impl Packet {
    fn from_yaml(y: &Y) -> Res<Packet> {
        let m = map_of(y, "packet")?;
        let get = |k: &str| m.iter().find(|(n, _, _)| n == k).map(|(_, _, v)| v);
        const KEYS: &[&str] = &[
            "ip",
            "l2",
            "ethertype",
            "src",
            "dst",
            "proto",
            "sport",
            "dport",
            "flags",
            "ttl",
            "icmp_type",
            "icmp_code",
            "payload",
            "fill",
            "ip_options",
            "tcp_options",
            "ext",
            "frag",
            "frag_id",
            "df",
            "vlan",
            "tpid",
            "pcp",
            "eth_pad",
        ];
        if let Some((k, _, _)) = m.iter().find(|(k, _, _)| !KEYS.contains(&k.as_str())) {
            return Err(format!("unknown packet key `{k}`"));
        }
        let text = |k: &str| get(k).map(scalar).transpose();
        let src = text("src")?.map(str::to_string);
        let dst = text("dst")?.map(str::to_string);
        let non_ip = match (get("l2"), get("ethertype")) {
            (Some(l2), None) if scalar(l2)? == "arp" => Some(0x0806),
            (None, Some(e)) => Some(int_in(e, 0xffff, "ethertype")? as u16),
            (None, None) => None,
            _ => return Err("`l2` is `arp`; give `l2` or `ethertype`, not both".into()),
        };
        let has_colon = |a: &Option<String>| a.as_ref().map(|s| s.contains(':'));
        let ip = match (get("ip"), non_ip) {
            (Some(_), Some(_)) => return Err("a non-IP frame has no `ip`".into()),
            (_, Some(_)) => 0,
            (Some(v), None) => match int(v)? {
                4 => 4,
                6 => 6,
                other => return Err(format!("ip {other} is not 4 or 6")),
            },
            (None, None) => match (has_colon(&src), has_colon(&dst)) {
                (Some(a), Some(b)) if a != b => {
                    return Err("src and dst are of different address families".into())
                }
                (Some(true), _) | (_, Some(true)) => 6,
                _ => 4,
            },
        };
        let (dsrc, ddst) = if ip == 6 {
            ("2001:db8:ffff::10", "2001:db8:eeee::10")
        } else {
            ("192.0.2.10", "198.51.100.10")
        };
        let proto = match get("proto") {
            Some(p) => proto_number(scalar(p)?)?,
            None => 17,
        };
        let port = |k: &str, d: u16| -> Res<u16> {
            get(k)
                .map(|v| int_in(v, 65535, k).map(|x| x as u16))
                .unwrap_or(Ok(d))
        };
        let byte = |k: &str, d: u8| -> Res<u8> {
            get(k)
                .map(|v| int_in(v, 255, k).map(|x| x as u8))
                .unwrap_or(Ok(d))
        };
        let count = |k: &str| -> Res<usize> {
            get(k)
                .map(|v| int_in(v, 4000, k).map(|x| x as usize))
                .unwrap_or(Ok(0))
        };
        let mut payload = match get("payload") {
            Some(p) => bytes_of(scalar(p)?)?,
            None => Vec::new(),
        };
        payload.extend(std::iter::repeat_n(b'z', count("fill")?));
        let ext = match get("ext") {
            None => Vec::new(),
            Some(Y::Seq(items)) => items
                .iter()
                .map(|e| {
                    Ok(match scalar(e)? {
                        "hop" => Ext::Hop,
                        "routing" => Ext::Routing,
                        "dest" => Ext::Dest,
                        "ah" => Ext::Ah,
                        "frag" => Ext::Frag,
                        other => return Err(format!("unknown extension header `{other}`")),
                    })
                })
                .collect::<Res<Vec<_>>>()?,
            Some(_) => return Err("`ext` must be a list".into()),
        };
        let frag = match text("frag")? {
            None => Frag::None,
            Some("first") => Frag::First,
            Some("atomic") => Frag::Atomic,
            Some(other) => return Err(format!("frag `{other}`: first or atomic")),
        };
        let vlan = match get("vlan") {
            None => Vec::new(),
            Some(Y::Seq(items)) => items
                .iter()
                .map(|v| int_in(v, 4095, "vlan id").map(|x| x as u16))
                .collect::<Res<Vec<_>>>()?,
            Some(v) => vec![int_in(v, 4095, "vlan id")? as u16],
        };
        let p = Packet {
            ip,
            ethertype: non_ip.unwrap_or(if ip == 6 { ETH_IPV6 } else { ETH_IPV4 }),
            src: src.unwrap_or_else(|| dsrc.to_string()),
            dst: dst.unwrap_or_else(|| ddst.to_string()),
            proto,
            sport: port("sport", 40000)?,
            dport: port("dport", 9)?,
            flags: get("flags").map(tcp_flags).unwrap_or(Ok(0x10))?,
            ttl: byte("ttl", 64)?,
            icmp_type: byte("icmp_type", if proto == 58 { 128 } else { 8 })?,
            icmp_code: byte("icmp_code", 0)?,
            payload,
            ip_options: count("ip_options")?,
            tcp_options: count("tcp_options")?,
            ext,
            frag,
            frag_id: get("frag_id")
                .map(|v| int_in(v, u32::MAX as u64, "frag_id").map(|x| x as u32))
                .unwrap_or(Ok(0x5a17))?,
            df: get("df").map(boolean).unwrap_or(Ok(false))?,
            vlan,
            tpid: get("tpid")
                .map(|v| int_in(v, 0xffff, "tpid").map(|x| x as u16))
                .transpose()?,
            pcp: byte("pcp", 0)?,
            eth_pad: count("eth_pad")?,
        };
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Res<()> {
        let addr_ok = |a: &str| match self.ip {
            4 => a.parse::<std::net::Ipv4Addr>().is_ok(),
            6 => a.parse::<std::net::Ipv6Addr>().is_ok(),
            _ => true,
        };
        if !addr_ok(&self.src) || !addr_ok(&self.dst) {
            return Err(format!(
                "`{}` / `{}` are not IPv{} addresses",
                self.src, self.dst, self.ip
            ));
        }
        if !self.ip_options.is_multiple_of(4)
            || self.ip_options > 40
            || self.ip != 4 && self.ip_options > 0
        {
            return Err("ip_options: a multiple of 4 up to 40, IPv4 only".into());
        }
        if !self.tcp_options.is_multiple_of(4) || self.tcp_options > 40 {
            return Err("tcp_options: a multiple of 4 up to 40".into());
        }
        if self.ip != 6 && (!self.ext.is_empty() || self.frag == Frag::Atomic) {
            return Err("extension headers and atomic fragments are IPv6 only".into());
        }
        if self.vlan.len() > 2 || self.pcp > 7 {
            return Err("at most two VLAN tags; pcp 0..7".into());
        }
        Ok(())
    }

    /// Whether the kernel reads an L4 header for this packet (ports, flags or ICMP type).
    fn parsed_l4(&self) -> bool {
        match self.proto {
            6 | 17 => true,
            1 => self.ip == 4,
            58 => self.ip == 6,
            _ => false,
        }
    }

    fn l4(&self) -> Vec<u8> {
        match self.proto {
            6 => tcp_hdr(
                self.sport,
                self.dport,
                self.flags,
                5 + (self.tcp_options / 4) as u8,
                &self.payload,
            ),
            17 => udp_hdr(self.sport, self.dport, &self.payload),
            1 | 58 => {
                let mut b = vec![self.icmp_type, self.icmp_code, 0, 0, 0, 7, 0, 1];
                b.extend_from_slice(&self.payload);
                b
            }
            _ => self.payload.clone(),
        }
    }

    fn exts(&self) -> Vec<Ext> {
        let mut e = self.ext.clone();
        if self.frag != Frag::None && !e.contains(&Ext::Frag) {
            e.push(Ext::Frag);
        }
        e
    }

    fn l3(&self) -> Vec<u8> {
        match self.ip {
            4 => {
                let mut frag = 0u16;
                if self.frag == Frag::First {
                    frag |= 0x2000;
                }
                if self.df {
                    frag |= 0x4000;
                }
                let h = V4 {
                    ttl: self.ttl,
                    id: self.frag_id as u16,
                    frag,
                    options: vec![1u8; self.ip_options],
                    ..V4::new(&self.src, &self.dst, self.proto)
                };
                ipv4(&h, &self.l4())
            }
            6 => {
                let mut next = self.proto;
                let mut body = self.l4();
                for e in self.exts().iter().rev() {
                    let (n, b) = match e {
                        Ext::Hop => (0, ext8(next, &body)),
                        Ext::Routing => (43, ext8(next, &body)),
                        Ext::Dest => (60, ext8(next, &body)),
                        Ext::Ah => (51, ah(next, &body)),
                        Ext::Frag => (
                            44,
                            frag6(next, 0, self.frag == Frag::First, self.frag_id, &body),
                        ),
                    };
                    next = n;
                    body = b;
                }
                let mut l3 = ipv6(&self.src, &self.dst, next, &body);
                l3[7] = self.ttl;
                l3
            }
            _ => vec![0u8; 28],
        }
    }

    /// The frame, and where the IP datagram ends in it.
    fn frame(&self) -> (Vec<u8>, usize) {
        let mut f = Vec::new();
        f.extend_from_slice(&MAC_B);
        f.extend_from_slice(&MAC_A);
        let n = self.vlan.len();
        for (i, id) in self.vlan.iter().enumerate() {
            let tpid = match i {
                0 => self.tpid.unwrap_or(if n > 1 { 0x88a8 } else { 0x8100 }),
                _ => 0x8100,
            };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(((self.pcp as u16) << 13) | id).to_be_bytes());
        }
        f.extend_from_slice(&self.ethertype.to_be_bytes());
        f.extend_from_slice(&self.l3());
        let end = f.len();
        f.resize(end + self.eth_pad, 0);
        (f, end)
    }

    fn addr16(&self, a: &str) -> Addr16 {
        match self.ip {
            4 => v4_mapped(v4(a)),
            _ => v6(a),
        }
    }

    /// Where the kernel's parse record differs from what this description built.
    fn check_parse(&self, p: &ParsedFields, frame: &[u8], ip_end: usize) -> Vec<String> {
        let mut bad = Vec::new();
        let mut want = |what: &str, got: String, exp: String| {
            if got != exp {
                bad.push(format!("parse: {what} is {got}, the packet has {exp}"));
            }
        };
        let n = self.vlan.len();
        want(
            "vlan ids",
            format!("{:?}", &p.vlan_ids[..(p.vlan_count as usize).min(2)]),
            format!("{:?}", self.vlan),
        );
        want(
            "ethertype",
            format!("{:#06x}", p.ethertype),
            format!("{:#06x}", self.ethertype),
        );
        want(
            "l3 offset",
            p.l3_offset.to_string(),
            (14 + 4 * n).to_string(),
        );
        want("ip version", p.ip_version.to_string(), self.ip.to_string());
        if self.ip == 0 {
            want("PF_IP", (p.flags & PF_IP != 0).to_string(), "false".into());
            return bad;
        }
        want(
            "src",
            format!("{:?}", p.src),
            format!("{:?}", self.addr16(&self.src)),
        );
        want(
            "dst",
            format!("{:?}", p.dst),
            format!("{:?}", self.addr16(&self.dst)),
        );
        want("proto", p.proto.to_string(), self.proto.to_string());
        want("ttl", p.ttl.to_string(), self.ttl.to_string());
        let l3_len = ip_end - p.l3_offset as usize;
        want("ip.len", p.ip_len.to_string(), l3_len.to_string());
        let frag = if self.frag == Frag::First {
            FRAG_FIRST
        } else {
            FRAG_NONE
        };
        want("fragment kind", p.frag.to_string(), frag.to_string());
        if self.ip == 6 {
            want(
                "extension headers",
                p.ext_hdrs.to_string(),
                self.exts().len().to_string(),
            );
        }
        let l4 = self.parsed_l4();
        want(
            "PF_HAS_L4",
            (p.flags & PF_HAS_L4 != 0).to_string(),
            l4.to_string(),
        );
        if l4 && matches!(self.proto, 6 | 17) {
            want(
                "ports",
                format!("{}->{}", p.sport, p.dport),
                format!("{}->{}", self.sport, self.dport),
            );
        }
        if l4 && self.proto == 6 {
            want(
                "tcp flags",
                format!("{:#04x}", p.tcp_flags),
                format!("{:#04x}", self.flags),
            );
        }
        if l4 && matches!(self.proto, 1 | 58) {
            want(
                "icmp type/code",
                format!("{}/{}", p.icmp_type, p.icmp_code),
                format!("{}/{}", self.icmp_type, self.icmp_code),
            );
        }
        let expect_payload = if l4 { self.payload.clone() } else { self.l4() };
        let got = frame
            .get(p.payload_offset as usize..ip_end)
            .map(<[u8]>::to_vec);
        want(
            "payload",
            format!("{got:?}"),
            format!("{:?}", Some(expect_payload)),
        );
        bad
    }
}

fn load_corpus_file(path: &Path) -> Res<CorpusFile> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let doc = yaml::parse(&text)?;
    let top = map_of(&doc, "the document")?;
    let mut ruleset = None;
    let mut cases_y = None;
    for (k, line, v) in top {
        match k.as_str() {
            "description" => {}
            "ruleset" => ruleset = Some(scalar(v)?.to_string()),
            "cases" => cases_y = Some(v),
            other => return Err(format!("line {line}: unknown key `{other}`")),
        }
    }
    let ruleset = ruleset.ok_or("no `ruleset`")?;
    let Some(Y::Seq(items)) = cases_y else {
        return Err("`cases` must be a list".into());
    };
    let mut cases = Vec::new();
    for item in items {
        let m = map_of(item, "a case")?;
        let line = m.first().map_or(0, |(_, l, _)| *l);
        let at = |e: String| format!("case at line {line}: {e}");
        let get = |k: &str| m.iter().find(|(n, _, _)| n == k).map(|(_, _, v)| v);
        if let Some((k, _, _)) = m.iter().find(|(k, _, _)| {
            !["name", "packet", "verdict", "rule", "logged", "note"].contains(&k.as_str())
        }) {
            return Err(at(format!("unknown key `{k}`")));
        }
        let name = scalar(get("name").ok_or_else(|| at("no `name`".into()))?)
            .map_err(at)?
            .to_string();
        let at = |e: String| format!("case `{name}` (line {line}): {e}");
        let packet = Packet::from_yaml(get("packet").ok_or_else(|| at("no `packet`".into()))?)
            .map_err(at)?;
        let drop = match get("verdict").map(scalar).transpose().map_err(at)? {
            Some("drop") => true,
            Some("pass") => false,
            other => return Err(at(format!("verdict {other:?}: pass or drop"))),
        };
        let rule = match get("rule") {
            None => return Err(at("no `rule` (an id, or null)".into())),
            Some(Y::Null) => None,
            Some(v) => Some(int_in(v, u32::MAX as u64, "rule").map_err(at)? as u32),
        };
        let logged = match get("logged") {
            None => None,
            Some(Y::Seq(ids)) => Some(
                ids.iter()
                    .map(|v| int_in(v, u32::MAX as u64, "rule").map(|x| x as u32))
                    .collect::<Res<BTreeSet<u32>>>()
                    .map_err(at)?,
            ),
            Some(_) => return Err(at("`logged` must be a list of ids".into())),
        };
        if cases.iter().any(|c: &Case| c.name == name) {
            return Err(at("duplicate case name".into()));
        }
        cases.push(Case {
            name,
            line,
            packet,
            expect: Expect { drop, rule, logged },
        });
    }
    Ok(CorpusFile {
        path: path.to_path_buf(),
        ruleset,
        cases,
    })
}

// ---------------------------------------------------------------------------------------------
// Evaluation.
// ---------------------------------------------------------------------------------------------

/// A verdict with the deciding rule and the log rules counted on the way (with their counts).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    drop: bool,
    rule: Option<u32>,
    logged: BTreeMap<u32, u64>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", if self.drop { "drop" } else { "pass" })?;
        match self.rule {
            Some(r) => write!(f, " rule {r}")?,
            None => write!(f, " no rule")?,
        }
        if !self.logged.is_empty() {
            let l: Vec<String> = self
                .logged
                .iter()
                .map(|(id, n)| {
                    if *n == 1 {
                        id.to_string()
                    } else {
                        format!("{id}x{n}")
                    }
                })
                .collect();
            write!(f, " logged [{}]", l.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", if self.drop { "drop" } else { "pass" })?;
        match self.rule {
            Some(r) => write!(f, " rule {r}")?,
            None => write!(f, " no rule")?,
        }
        if let Some(l) = &self.logged {
            let l: Vec<String> = l.iter().map(u32::to_string).collect();
            write!(f, " logged [{}]", l.join(", "))?;
        }
        Ok(())
    }
}

impl Expect {
    fn agrees(&self, o: &Outcome) -> bool {
        self.drop == o.drop
            && self.rule == o.rule
            && self.logged.as_ref().is_none_or(|l| {
                o.logged.len() == l.len() && l.iter().all(|id| o.logged.get(id) == Some(&1))
            })
    }
}

fn is_log(r: &rampart_rules::Rule) -> bool {
    r.mode == Mode::Log || r.action == RuleAction::Log
}

fn xdp_rules(rs: &RuleSet) -> impl Iterator<Item = &rampart_rules::Rule> {
    rs.rules
        .iter()
        .filter(|r| r.enabled && matches!(r.target, Target::Xdp { .. }))
}

/// The language's verdict: IP packets only, enabled XDP rules in order, log rules continue.
fn host_outcome(rs: &RuleSet, p: &ParsedFields, frame: &[u8]) -> Outcome {
    let mut o = Outcome {
        drop: false,
        rule: None,
        logged: BTreeMap::new(),
    };
    if p.flags & PF_IP == 0 {
        return o;
    }
    let view = PacketView { parsed: p, frame };
    for r in xdp_rules(rs) {
        if !eval_bool(&r.expr, &view) {
            continue;
        }
        if is_log(r) {
            *o.logged.entry(r.id).or_default() += 1;
            continue;
        }
        match r.action {
            RuleAction::Drop => o.drop = true,
            RuleAction::Allow => {}
            ref other => panic!(
                "rule {}: the corpus uses drop, allow and log, not {other:?}",
                r.id
            ),
        }
        o.rule = Some(r.id);
        return o;
    }
    o
}

/// The entry-level host evaluator over the lowered entries (for diagnosis).
fn entries_outcome(rs: &RuleSet, p: &ParsedFields, frame: &[u8]) -> String {
    if p.flags & PF_IP == 0 {
        return "pass no rule (not IP)".into();
    }
    let v = evaluate(&rs.xdp_entries, p, frame, |_, _| true);
    format!(
        "{} {} ({}, {} log entries)",
        if v.drop { "drop" } else { "pass" },
        v.rule_id.map_or("no rule".into(), |r| format!("rule {r}")),
        v.reason.name(),
        v.logged
    )
}

struct KernelRun {
    outcome: Outcome,
    parsed: ParsedFields,
    problems: Vec<String>,
}

fn kernel_run(dp: &mut Dataplane, rs: &RuleSet, frame: &[u8]) -> Result<KernelRun, String> {
    let err = |e: rampart::kernel::KernelError| e.to_string();
    dp.clear_parse_debug().map_err(err)?;
    let before = dp.counters().map_err(err)?;
    let (action, _) = dp.test_run(frame, 1).map_err(err)?;
    let d = before.delta(&dp.counters().map_err(err)?);
    let parsed = dp.parse_debug(0).map_err(err)?;
    let mut problems = Vec::new();
    if parsed.ethertype == 0 {
        problems.push("the parse record was not written (is the test on CPU 0?)".into());
    }
    if action != XDP_DROP && action != XDP_PASS {
        problems.push(format!("XDP action {action}"));
    }
    let log_ids: BTreeSet<u32> = xdp_rules(rs).filter(|r| is_log(r)).map(|r| r.id).collect();
    let mut o = Outcome {
        drop: action == XDP_DROP,
        rule: None,
        logged: BTreeMap::new(),
    };
    for (id, c) in &d.rules {
        if c.matched.packets == 0 && c.dropped.packets == 0 {
            continue;
        }
        if log_ids.contains(id) {
            o.logged.insert(*id, c.matched.packets);
            if c.dropped.packets != 0 {
                problems.push(format!("log rule {id} counted a drop"));
            }
            continue;
        }
        if let Some(first) = o.rule {
            problems.push(format!("rules {first} and {id} both counted a decision"));
            continue;
        }
        o.rule = Some(*id);
        let want_dropped = o.drop as u64;
        if c.matched.packets != 1 || c.dropped.packets != want_dropped {
            problems.push(format!(
                "rule {id}: matched {} dropped {}, expected 1/{want_dropped}",
                c.matched.packets, c.dropped.packets
            ));
        }
    }
    let verdict = match (parsed.flags & PF_IP != 0, o.rule, o.drop) {
        (false, _, _) => Reason::PassNotIp,
        (true, Some(_), true) => Reason::DropRule,
        (true, Some(_), false) => Reason::PassRule,
        (true, None, _) => Reason::PassNoMatch,
    };
    let logs: u64 = o.logged.values().sum();
    for (r, c) in &d.reasons {
        let want = if *r == verdict {
            1
        } else if *r == Reason::EvLogOnly {
            logs
        } else {
            0
        };
        if c.packets != want {
            problems.push(format!(
                "reason {} moved by {}, expected {want}",
                r.name(),
                c.packets
            ));
        }
    }
    Ok(KernelRun {
        outcome: o,
        parsed,
        problems,
    })
}

/// `tests/corpus/rules`, or the directory in `RAMPART_RULES_CORPUS` (to run other files; the
/// minimum case count applies to the shared corpus only).
fn corpus_dir() -> PathBuf {
    match std::env::var_os("RAMPART_RULES_CORPUS") {
        Some(dir) => dir.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/rules"),
    }
}

fn min_cases() -> usize {
    if std::env::var_os("RAMPART_RULES_CORPUS").is_some() {
        0
    } else {
        MIN_CASES
    }
}

fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn short(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// Loads a corpus file and its rule set, and checks the case expectations name real rules.
fn load_all(path: &Path) -> (CorpusFile, RuleSet) {
    let file = load_corpus_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = format!("{}#ruleset", path.display());
    let rs = load_str(&file.ruleset, &name, &corpus_dir())
        .unwrap_or_else(|e| panic!("{}: the rule set does not load:\n{e}", path.display()));
    let terminal: BTreeSet<u32> = xdp_rules(&rs)
        .filter(|r| !is_log(r))
        .map(|r| r.id)
        .collect();
    let logs: BTreeSet<u32> = xdp_rules(&rs).filter(|r| is_log(r)).map(|r| r.id).collect();
    for r in xdp_rules(&rs) {
        assert!(
            matches!(
                r.action,
                RuleAction::Drop | RuleAction::Allow | RuleAction::Log
            ),
            "{}: rule {}: the corpus uses drop, allow and log",
            path.display(),
            r.id
        );
    }
    for c in &file.cases {
        if let Some(id) = c.expect.rule {
            assert!(
                terminal.contains(&id),
                "{}: case `{}`: rule {id} is not an enabled XDP drop/allow rule of the file",
                path.display(),
                c.name
            );
        }
        if c.expect.rule.is_none() {
            assert!(
                !c.expect.drop,
                "{}: case `{}`: a drop needs a rule",
                path.display(),
                c.name
            );
        }
        for id in c.expect.logged.iter().flatten() {
            assert!(
                logs.contains(id),
                "{}: case `{}`: rule {id} is not an enabled log rule of the file",
                path.display(),
                c.name
            );
        }
    }
    (file, rs)
}

#[test]
fn corpus_files_load_and_count() {
    // Host only: every file parses, every rule set compiles, every expectation names a rule.
    let mut total = 0;
    for path in corpus_files() {
        let (file, _) = load_all(&path);
        total += file.cases.len();
    }
    assert!(
        total >= min_cases(),
        "the corpus has {total} cases, fewer than {MIN_CASES}"
    );
}

#[test]
fn rules_corpus_host_and_kernel_agree() {
    if !root_or_skip("rules_corpus_host_and_kernel_agree") {
        return;
    }
    pin_to_cpu0();
    let mut dp = fresh_dataplane();
    dp.update_config(|c| c.flags |= FLAG_DEBUG_PARSE)
        .expect("enable the parse record");
    let files = corpus_files();
    let mut failures: Vec<String> = Vec::new();
    let mut per_file = Vec::new();
    let (mut total, mut host_bad, mut kernel_bad, mut differ, mut other) = (0, 0, 0, 0, 0);
    for path in &files {
        let (file, rs) = load_all(path);
        dp.load_rules(&rs.xdp)
            .unwrap_or_else(|e| panic!("{}: loading the rules: {e}", path.display()));
        let mut bad_here = 0;
        for c in &file.cases {
            total += 1;
            let (frame, ip_end) = c.packet.frame();
            let k = match kernel_run(&mut dp, &rs, &frame) {
                Ok(k) => k,
                Err(e) => {
                    failures.push(format!(
                        "[{}:{}] {}: the test run failed: {e}",
                        short(&file.path),
                        c.line,
                        c.name
                    ));
                    other += 1;
                    bad_here += 1;
                    continue;
                }
            };
            let host = host_outcome(&rs, &k.parsed, &frame);
            let mut problems = k.problems.clone();
            problems.extend(c.packet.check_parse(&k.parsed, &frame, ip_end));
            let h_ok = c.expect.agrees(&host);
            let k_ok = c.expect.agrees(&k.outcome);
            let same = host == k.outcome;
            host_bad += !h_ok as usize;
            kernel_bad += !k_ok as usize;
            differ += !same as usize;
            other += (h_ok && k_ok && same && !problems.is_empty()) as usize;
            if !(h_ok && k_ok && same && problems.is_empty()) {
                bad_here += 1;
                let mut s = format!(
                    "[{}:{}] {}\n    expected: {}\n    host:     {}{}\n    kernel:   {}{}\n    entries:  {}",
                    short(&file.path),
                    c.line,
                    c.name,
                    c.expect,
                    host,
                    if h_ok { "" } else { "   <- differs from expected" },
                    k.outcome,
                    if k_ok { "" } else { "   <- differs from expected" },
                    entries_outcome(&rs, &k.parsed, &frame),
                );
                for p in &problems {
                    s.push_str(&format!("\n    problem:  {p}"));
                }
                failures.push(s);
            }
        }
        per_file.push((short(&file.path), file.cases.len(), bad_here));
    }
    for (name, n, bad) in &per_file {
        println!("  {name:<28} {n:>4} cases  {bad:>3} mismatches");
    }
    if failures.is_empty() {
        println!(
            "rules corpus: {} files, {total} cases, host==kernel==expected on all",
            files.len()
        );
    } else {
        println!(
            "rules corpus: {} files, {total} cases, {} mismatches (host!=expected {host_bad}, \
             kernel!=expected {kernel_bad}, host!=kernel {differ}, other problems {other})",
            files.len(),
            failures.len()
        );
    }
    assert!(
        total >= min_cases(),
        "the corpus has {total} cases, fewer than {MIN_CASES}"
    );
    assert!(
        failures.is_empty(),
        "rules corpus mismatches:\n{}",
        failures.join("\n")
    );
}
