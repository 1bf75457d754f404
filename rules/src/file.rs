//! Rule files: YAML rulesets (`version`, `lists`, `rules`) checked and compiled as a whole. Any
//! error stops the load, so a bad file never replaces a good rule set; every error names the file,
//! line and column and shows the offending text with a caret.
//!
//! The load runs in steps, one file each: `yaml_doc` reads the document, `lists` loads
//! the lists, `compile` checks each rule and decides where it runs (with `l7_attrs` for the HTTP
//! side and `xdp_set` for the kernel's tables); `source` places errors and `error` holds them.

use std::path::Path;

use crate::lang::Location;

mod compile;
mod error;
mod l7_attrs;
mod lists;
mod model;
mod source;
mod xdp_set;
mod yaml_doc;

pub use error::{RuleError, RuleErrorKind};
pub use model::{
    L7Attrs, L7RateLimit, Mode, RateLimitExprs, Rule, RuleAction, RuleSet, ScoreClass, Target,
};
use source::Source;

/// The file version this loader reads.
pub const FILE_VERSION: u32 = 1;

/// Ids kept for the built-in default rules (`rules/waf/default.yaml`), present and future.
pub const DEFAULT_RULE_IDS: std::ops::RangeInclusive<u32> = 900_000..=999_999;

/// Reads, checks and compiles a rule file. List files are read relative to its directory.
pub fn load_file(path: &Path) -> Result<RuleSet, RuleError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        RuleError::new(
            Location {
                file: name.clone(),
                line: 0,
                column: 0,
                snippet: String::new(),
            },
            RuleErrorKind::Read { why: e.to_string() },
        )
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_str(&text, &name, &dir)
}

/// Checks and compiles rule-file text (`file` names it in errors; list files resolve from `dir`).
pub fn load_str(text: &str, file: &str, dir: &Path) -> Result<RuleSet, RuleError> {
    let cx = Source { file, text };
    let doc = yaml_doc::read(&cx)?;
    compile::ruleset(&cx, &doc, dir)
}

/// For a site's rule file `site` (its text `text`, for the caret) that runs beside `other` (the
/// default rules): refuses a rule whose id `other` uses, as the engine does at start and on
/// reload — but here with the file, line and column of the site's rule.
pub fn check_ids_beside(site: &RuleSet, text: &str, other: &RuleSet) -> Result<(), RuleError> {
    let cx = Source {
        file: &site.file,
        text,
    };
    for r in &site.rules {
        let Some(o) = other.rules.iter().find(|o| o.id == r.id) else {
            continue;
        };
        let id = r.id.to_string();
        let src = text.lines().nth(r.line.saturating_sub(1)).unwrap_or("");
        let column = src.find(&id).map_or(1, |i| i + 1);
        let kind = RuleErrorKind::IdOfOther {
            id: r.id,
            other_file: other.file.clone(),
            other_ref: o.reference.clone().unwrap_or_else(|| "-".into()),
        };
        return Err(cx.at(r.line, column, id.len(), kind));
    }
    Ok(())
}
