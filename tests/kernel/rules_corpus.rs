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
//! The corpus format (a rule file and cases, one group per file named by its stem) and the case
//! filter `RAMPART_RULES_CORPUS_TEST` are documented in `rampart_testkit::rule_corpus`, which reads
//! the files with serde and refuses unknown keys; the packet defaults and the frame builder are
//! here.
//!
//! `RAMPART_RULES_CORPUS=<dir>` runs the `*.yaml` files of another directory instead (no minimum
//! case count then, nor with a filter).

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
use rampart_testkit::rule_corpus::{
    self, Ext, Filter, Frag as RowFrag, Number, PacketRow, Verdict,
};
use rampart_testkit::{fresh_dataplane, packets::*, pin_to_cpu0, root_or_skip};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const MIN_CASES: usize = 300;

// ---------------------------------------------------------------------------------------------
// The corpus model.
// ---------------------------------------------------------------------------------------------

struct CorpusFile {
    /// The file stem.
    group: String,
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

/// TCP flags: letters of `FSRPAUEC` (`-` for none) or a number.
fn tcp_flags(s: &str) -> Res<u8> {
    if s.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return Number::parse(s)?.at_most(255, "tcp flags").map(|v| v as u8);
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
    /// The corpus row with the defaults filled in, checked for shapes the builder cannot make.
    fn from_row(r: &PacketRow) -> Res<Packet> {
        let non_ip = match (r.l2.as_deref(), r.ethertype) {
            (Some("arp"), None) => Some(0x0806),
            (None, Some(e)) => Some(e.at_most(0xffff, "ethertype")? as u16),
            (None, None) => None,
            _ => return Err("`l2` is `arp`; give `l2` or `ethertype`, not both".into()),
        };
        let has_colon = |a: &Option<String>| a.as_ref().map(|s| s.contains(':'));
        let ip = match (r.ip, non_ip) {
            (Some(_), Some(_)) => return Err("a non-IP frame has no `ip`".into()),
            (_, Some(_)) => 0,
            (Some(Number(4)), None) => 4,
            (Some(Number(6)), None) => 6,
            (Some(Number(other)), None) => return Err(format!("ip {other} is not 4 or 6")),
            (None, None) => match (has_colon(&r.src), has_colon(&r.dst)) {
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
        let proto = match r.proto.as_deref() {
            Some(p) => proto_number(p)?,
            None => 17,
        };
        let port = |v: Option<Number>, k: &str, d: u16| -> Res<u16> {
            v.map_or(Ok(d), |v| v.at_most(65535, k).map(|x| x as u16))
        };
        let byte = |v: Option<Number>, k: &str, d: u8| -> Res<u8> {
            v.map_or(Ok(d), |v| v.at_most(255, k).map(|x| x as u8))
        };
        let count = |v: Option<Number>, k: &str| -> Res<usize> {
            v.map_or(Ok(0), |v| v.at_most(4000, k).map(|x| x as usize))
        };
        let mut payload = bytes_of(r.payload.as_deref().unwrap_or(""))?;
        payload.extend(std::iter::repeat_n(b'z', count(r.fill, "fill")?));
        let vlan = r
            .vlan
            .iter()
            .flatten()
            .map(|v| v.at_most(4095, "vlan id").map(|x| x as u16))
            .collect::<Res<Vec<_>>>()?;
        let p = Packet {
            ip,
            ethertype: non_ip.unwrap_or(if ip == 6 { ETH_IPV6 } else { ETH_IPV4 }),
            src: r.src.clone().unwrap_or_else(|| dsrc.to_string()),
            dst: r.dst.clone().unwrap_or_else(|| ddst.to_string()),
            proto,
            sport: port(r.sport, "sport", 40000)?,
            dport: port(r.dport, "dport", 9)?,
            flags: r.flags.as_deref().map_or(Ok(0x10), tcp_flags)?,
            ttl: byte(r.ttl, "ttl", 64)?,
            icmp_type: byte(r.icmp_type, "icmp_type", if proto == 58 { 128 } else { 8 })?,
            icmp_code: byte(r.icmp_code, "icmp_code", 0)?,
            payload,
            ip_options: count(r.ip_options, "ip_options")?,
            tcp_options: count(r.tcp_options, "tcp_options")?,
            ext: r.ext.clone().unwrap_or_default(),
            frag: match r.frag {
                None => Frag::None,
                Some(RowFrag::First) => Frag::First,
                Some(RowFrag::Atomic) => Frag::Atomic,
            },
            frag_id: r.frag_id.map_or(Ok(0x5a17), |v| {
                v.at_most(u32::MAX.into(), "frag_id").map(|x| x as u32)
            })?,
            df: r.df.unwrap_or(false),
            vlan,
            tpid: r
                .tpid
                .map(|v| v.at_most(0xffff, "tpid").map(|x| x as u16))
                .transpose()?,
            pcp: byte(r.pcp, "pcp", 0)?,
            eth_pad: count(r.eth_pad, "eth_pad")?,
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

/// A corpus file with the cases [`rule_corpus::FILTER_VAR`] selects, their packets built.
fn load_corpus_file(path: &Path, filter: &Filter) -> Res<CorpusFile> {
    let file = rule_corpus::load_file(path).map_err(|e| e.to_string())?;
    let mut cases = Vec::with_capacity(file.cases.len());
    for c in file.cases {
        if !filter.selects(&file.group, &c.name) {
            continue;
        }
        let packet = Packet::from_row(&c.packet).map_err(|e| {
            format!(
                "{}: case `{}` (line {}): {e}",
                path.display(),
                c.name,
                c.line
            )
        })?;
        cases.push(Case {
            name: c.name,
            line: c.line,
            packet,
            expect: Expect {
                drop: c.verdict == Verdict::Drop,
                rule: c.rule,
                logged: c.logged,
            },
        });
    }
    Ok(CorpusFile {
        group: file.group,
        ruleset: file.ruleset,
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

fn min_cases(filter: &Filter) -> usize {
    if std::env::var_os("RAMPART_RULES_CORPUS").is_some() || filter.is_active() {
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

/// Loads a corpus file and its rule set, and checks the case expectations name real rules.
fn load_all(path: &Path, filter: &Filter) -> (CorpusFile, RuleSet) {
    let file = load_corpus_file(path, filter).unwrap_or_else(|e| panic!("{e}"));
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
    let filter = Filter::from_env();
    let mut total = 0;
    for path in corpus_files() {
        let (file, _) = load_all(&path, &filter);
        total += file.cases.len();
    }
    assert!(
        total >= min_cases(&filter),
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
    let filter = Filter::from_env();
    if filter.is_active() {
        println!(
            "rules corpus: only the cases {} selects",
            rule_corpus::FILTER_VAR
        );
    }
    let files = corpus_files();
    let mut failures: Vec<String> = Vec::new();
    let mut per_file = Vec::new();
    let (mut total, mut host_bad, mut kernel_bad, mut differ, mut other) = (0, 0, 0, 0, 0);
    for path in &files {
        let (file, rs) = load_all(path, &filter);
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
                        file.group.clone(),
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
                    file.group.clone(),
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
        per_file.push((file.group.clone(), file.cases.len(), bad_here));
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
        total >= min_cases(&filter),
        "the corpus has {total} cases, fewer than {MIN_CASES}"
    );
    assert!(
        failures.is_empty(),
        "rules corpus mismatches:\n{}",
        failures.join("\n")
    );
}
