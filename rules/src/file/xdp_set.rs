//! The XDP side of a rule set: each enabled XDP rule lowered to table entries, and the entries
//! compiled into the kernel's tables, with errors placed at the rule that caused them.

use std::collections::HashMap;

use marked_yaml::Spanned;

use super::source::Source;
use super::{Mode, Rule, RuleAction, RuleError, RuleErrorKind, Target};
use crate::xdp::{compile, lower_rule, Action, CompileError, RuleSpec, XdpTables};

/// What an XDP rule does in the kernel; a rule in log mode only counts.
fn xdp_action(rule: &Rule) -> Action {
    match (&rule.mode, &rule.action) {
        (Mode::Log, _) | (_, RuleAction::Log) => Action::Log,
        (_, RuleAction::Drop) => Action::Drop,
        (_, RuleAction::Allow) => Action::Pass,
        (
            _,
            RuleAction::RateLimit {
                packets_per_second,
                burst,
            },
        ) => Action::RateLimit {
            packets_per_second: *packets_per_second,
            burst: *burst,
        },
        _ => unreachable!("only XDP actions get an XDP target"),
    }
}

/// The table entries of `rule` (none unless it is enabled and runs in XDP); an expression the
/// back end refuses is an error at `expression`.
pub(super) fn lower(
    cx: &Source<'_>,
    rule: &Rule,
    expression: &Spanned<String>,
) -> Result<Vec<RuleSpec>, RuleError> {
    if !(rule.enabled && matches!(rule.target, Target::Xdp { .. })) {
        return Ok(Vec::new());
    }
    lower_rule(rule.id, xdp_action(rule), &rule.expr)
        .map_err(|why| cx.spanned(expression, RuleErrorKind::Xdp { why }))
}

/// Fills in each XDP rule's entry count, now that all are lowered.
pub(super) fn count_entries(rules: &mut [Rule], entries: &[RuleSpec]) {
    for rule in rules {
        if let Target::Xdp { entries: n } = &mut rule.target {
            *n = entries.iter().filter(|e| e.id == rule.id).count();
        }
    }
}

/// Compiles the entries into the kernel's tables; an error about one rule points at its line
/// (`lines`: rule id → line of its `id`), any other at the top of the file.
pub(super) fn tables(
    cx: &Source<'_>,
    entries: &[RuleSpec],
    lines: &HashMap<u32, usize>,
) -> Result<XdpTables, RuleError> {
    compile(entries).map_err(|e| {
        let why = e.to_string();
        let line = match &e {
            CompileError::PayloadTooLong { id, .. } | CompileError::PayloadUnmatchable { id } => {
                lines.get(id).copied().unwrap_or(1)
            }
            _ => 1,
        };
        cx.at(line, 1, 1, RuleErrorKind::Xdp { why })
    })
}
