//! The YAML document of a rule file as written (`version`, `lists`, `rules`), with the spans
//! errors point at, and reading it: unknown and repeated keys are errors, and so is a version
//! this loader does not read.

use std::collections::BTreeMap;

use marked_yaml::Spanned;
use serde::Deserialize;

use super::error::yaml_error;
use super::source::Source;
use super::{L7RateLimit, RuleError, RuleErrorKind, FILE_VERSION};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDoc {
    pub(super) version: Spanned<u32>,
    #[serde(default)]
    pub(super) lists: BTreeMap<String, ListDoc>,
    #[serde(default)]
    pub(super) rules: Vec<RuleDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListDoc {
    pub(super) kind: Spanned<String>,
    #[serde(default)]
    pub(super) items: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleDoc {
    pub(super) id: Spanned<u32>,
    #[serde(default, rename = "ref")]
    pub(super) reference: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
    pub(super) expression: Spanned<String>,
    pub(super) action: Spanned<String>,
    #[serde(default)]
    pub(super) mode: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) enabled: Option<bool>,
    #[serde(default)]
    pub(super) rate_limit: Option<XdpRateLimitDoc>,
    #[serde(default)]
    pub(super) ratelimit: Option<L7RateLimit>,
    #[serde(default)]
    pub(super) score: Option<i64>,
    #[serde(default)]
    pub(super) duration: Option<u64>,
    #[serde(default)]
    pub(super) target: Option<String>,
    #[serde(default)]
    pub(super) paranoia: Option<Spanned<u8>>,
    #[serde(default)]
    pub(super) class: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) status: Option<Spanned<u16>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct XdpRateLimitDoc {
    #[serde(default)]
    pub(super) key: Vec<String>,
    pub(super) packets_per_second: u64,
    pub(super) burst: Option<u64>,
}

/// Parses the document and checks its version.
pub(super) fn read(cx: &Source<'_>) -> Result<FileDoc, RuleError> {
    // A repeated key would otherwise silently take the last value (`action: drop` then
    // `action: allow` is an allow rule).
    let options = marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true);
    let doc: FileDoc =
        marked_yaml::from_yaml_with_options(0, cx.text, options).map_err(|e| yaml_error(cx, e))?;
    if *doc.version != FILE_VERSION {
        return Err(cx.spanned(
            &doc.version,
            RuleErrorKind::Version {
                found: *doc.version,
            },
        ));
    }
    Ok(doc)
}
