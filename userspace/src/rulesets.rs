//! Rule files for operators: what a file compiles to (`rules check`), and what it would do to a
//! capture (`rules test --pcap`), computed on the host with the kernel's parse.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use rampart_rules::{
    check_ids_beside, default_waf,
    lang::eval_bool,
    load_file,
    packet::{parse_frame, PacketView},
    Mode, RuleAction, RuleError, RuleSet, Target, DEFAULT_RULE_IDS,
};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {why}")]
    Read { path: String, why: String },
}

/// What `rules check` says of a file it accepts.
#[derive(Debug)]
pub struct Checked {
    /// [`check_report`] of the file.
    pub report: String,
    /// Not errors, but worth a look (ids kept for future default rules).
    pub warnings: Vec<String>,
}

/// `rules check FILE`: refuses what `run` and reload refuse. The file loads as they load it,
/// and when the default rules run beside it (`l7.default_rules`, on by default) it may not
/// reuse their ids: the engine refuses the pair, so `run` would not start and a reload would
/// be refused.
pub fn check_file(path: &Path, beside_default: bool) -> Result<Checked, RuleError> {
    let set = load_file(path)?;
    let mut warnings = Vec::new();
    if beside_default {
        // Only for the caret: the file was just read whole by `load_file`.
        let text = std::fs::read_to_string(path).unwrap_or_default();
        check_ids_beside(&set, &text, &default_waf())?;
        for r in set
            .rules
            .iter()
            .filter(|r| DEFAULT_RULE_IDS.contains(&r.id))
        {
            warnings.push(format!(
                "{}:{}: warning: rule id {} is in {} to {}, kept for the default rules: a later \
                 default rule may take it",
                set.file,
                r.line,
                r.id,
                DEFAULT_RULE_IDS.start(),
                DEFAULT_RULE_IDS.end()
            ));
        }
    }
    Ok(Checked {
        report: check_report(&set),
        warnings,
    })
}

/// `rules check`: where each rule runs and what it takes.
pub fn check_report(set: &RuleSet) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} rules", set.file, set.rules.len());
    for r in &set.rules {
        let place = match (&r.target, r.enabled) {
            (_, false) => "disabled".to_string(),
            (Target::Xdp { entries }, true) => format!(
                "xdp, {entries} table entr{}",
                if *entries == 1 { "y" } else { "ies" }
            ),
            (Target::L7, true) => "l7".to_string(),
        };
        let mode = if r.mode == Mode::Log {
            " (log only)"
        } else {
            ""
        };
        let name = r.reference.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "  {:>6}  {:<28} {:<12} {}{}",
            r.id,
            name,
            action_name(&r.action),
            place,
            mode
        );
    }
    let _ = writeln!(
        out,
        "xdp: {} entries from {} rules, {} table entries in all; l7: {} rules",
        set.xdp.rule_count(),
        set.rules
            .iter()
            .filter(|r| r.enabled && matches!(r.target, Target::Xdp { .. }))
            .count(),
        set.xdp.entry_count(),
        set.l7_rules().count()
    );
    out
}

pub fn action_name(a: &RuleAction) -> &'static str {
    match a {
        RuleAction::Drop => "drop",
        RuleAction::RateLimit { .. } => "rate_limit",
        RuleAction::Allow => "allow",
        RuleAction::Log => "log",
        RuleAction::Block => "block",
        RuleAction::Skip => "skip",
        RuleAction::Score(_) => "score",
        RuleAction::L7RateLimit(_) => "ratelimit",
        RuleAction::Jail { .. } => "jail",
        RuleAction::Route { .. } => "route",
    }
}

/// The XDP rule stage's decision for one packet, from the rules' expressions (not the tables).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub drop: bool,
    /// The rule that decided.
    pub rule: Option<u32>,
    /// Log-mode rules that matched on the way.
    pub logged: Vec<u32>,
}

/// Rules in order; log rules count and continue; the first drop/allow/rate-limit decides (a
/// rate-limit rule is reported as matching and passing: the host keeps no buckets).
pub fn decide(set: &RuleSet, view: &PacketView<'_>) -> Decision {
    let mut d = Decision {
        drop: false,
        rule: None,
        logged: Vec::new(),
    };
    for r in set
        .rules
        .iter()
        .filter(|r| r.enabled && matches!(r.target, Target::Xdp { .. }))
    {
        if !eval_bool(&r.expr, view) {
            continue;
        }
        if r.mode == Mode::Log || r.action == RuleAction::Log {
            d.logged.push(r.id);
            continue;
        }
        d.drop = r.action == RuleAction::Drop;
        d.rule = Some(r.id);
        return d;
    }
    d
}

/// `rules test --pcap`: per-rule hits and verdicts over a capture.
#[derive(Debug, Default)]
pub struct CaptureReport {
    pub packets: u64,
    pub not_ip: u64,
    pub later_fragments: u64,
    pub errors: BTreeMap<&'static str, u64>,
    pub dropped: u64,
    pub passed: u64,
    /// Rule id → (decided, logged).
    pub hits: BTreeMap<u32, (u64, u64)>,
}

impl CaptureReport {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} packets: {} dropped, {} passed by the rule stage",
            self.packets, self.dropped, self.passed
        );
        let _ = writeln!(
            out,
            "not IP {}, later fragments (follow their first) {}",
            self.not_ip, self.later_fragments
        );
        for (e, n) in &self.errors {
            let _ = writeln!(out, "parse error {e}: {n} (follow the error policy)");
        }
        let _ = writeln!(out, "{:>8} {:>10} {:>10}", "rule", "decided", "logged");
        for (id, (d, l)) in &self.hits {
            let _ = writeln!(out, "{id:>8} {d:>10} {l:>10}");
        }
        out
    }
}

pub fn test_capture(set: &RuleSet, path: &Path) -> Result<CaptureReport, CaptureError> {
    let err = |why: String| CaptureError::Read {
        path: path.display().to_string(),
        why,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut reader = pcap_file::pcap::PcapReader::new(std::io::BufReader::new(file))
        .map_err(|e| err(format!("not a pcap file: {e}")))?;
    let mut rep = CaptureReport::default();
    while let Some(pkt) = reader.next_raw_packet() {
        let pkt = pkt.map_err(|e| err(format!("record {}: {e}", rep.packets)))?;
        rep.packets += 1;
        let frame = pkt.data.as_ref();
        let (parsed, error) = parse_frame(frame);
        if let Some(e) = error {
            *rep.errors.entry(e.name()).or_default() += 1;
            continue;
        }
        if parsed.ip_version == 0 {
            rep.not_ip += 1;
            continue;
        }
        if parsed.frag == rampart_common::frag::FRAG_LATER {
            rep.later_fragments += 1;
            continue;
        }
        let d = decide(
            set,
            &PacketView {
                parsed: &parsed,
                frame,
            },
        );
        for id in &d.logged {
            rep.hits.entry(*id).or_default().1 += 1;
        }
        if let Some(id) = d.rule {
            rep.hits.entry(id).or_default().0 += 1;
        }
        if d.drop {
            rep.dropped += 1;
        } else {
            rep.passed += 1;
        }
    }
    Ok(rep)
}
