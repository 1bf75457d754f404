//! The `[crs]` section of `rampart.toml`: OWASP CRS (or any SecLang rule files) run by the L7
//! engine after the site's rules. Off by default: the daemon's default stays the fast YAML
//! rules. On, the defaults load CRS 3.3.4 as Debian installs it (`cargo xtask setup` does);
//! point `setup` and `rules` at a CRS v4 checkout to run v4.
//!
//! ```toml
//! [crs]
//! enabled = true
//! setup = "/etc/modsecurity/crs/crs-setup.conf"
//! rules = "/usr/share/modsecurity-crs/rules"   # every *.conf, in name order
//! before = []          # exclusion files read before the rules (REQUEST-900 style)
//! after = []           # read after them (RESPONSE-999 style)
//! paranoia = 1         # blocking paranoia level (1 to 4)
//! inbound_threshold = 5
//! mode = "on"          # or "detection_only": log, never block
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::l7::seclang::{RuleSet, Source};

/// Rule id of the `SecAction` that carries this section's settings into CRS's `TX`.
pub const SETTINGS_RULE_ID: u32 = 8_990_001;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CrsSection {
    #[serde(default)]
    pub enabled: bool,
    /// `crs-setup.conf`; none: CRS's own defaults (v4 then refuses to run without it).
    #[serde(default = "default_setup")]
    pub setup: Option<PathBuf>,
    #[serde(default = "default_rules")]
    pub rules: PathBuf,
    #[serde(default)]
    pub before: Vec<PathBuf>,
    #[serde(default)]
    pub after: Vec<PathBuf>,
    #[serde(default = "one")]
    pub paranoia: u8,
    #[serde(default = "five")]
    pub inbound_threshold: u32,
    #[serde(default = "default_mode")]
    pub mode: String,
}

fn default_setup() -> Option<PathBuf> {
    Some("/etc/modsecurity/crs/crs-setup.conf".into())
}
fn default_rules() -> PathBuf {
    "/usr/share/modsecurity-crs/rules".into()
}
fn one() -> u8 {
    1
}
fn five() -> u32 {
    5
}
fn default_mode() -> String {
    "on".into()
}

impl Default for CrsSection {
    fn default() -> Self {
        CrsSection {
            enabled: false,
            setup: default_setup(),
            rules: default_rules(),
            before: Vec::new(),
            after: Vec::new(),
            paranoia: 1,
            inbound_threshold: 5,
            mode: default_mode(),
        }
    }
}

impl CrsSection {
    /// The values alone, before any file is read (config parsing checks these).
    pub fn check(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.paranoia) {
            return Err(format!("crs.paranoia {} (expected 1 to 4)", self.paranoia));
        }
        if self.inbound_threshold == 0 {
            return Err("crs.inbound_threshold 0 (expected at least 1)".into());
        }
        if !["on", "detection_only"].contains(&self.mode.as_str()) {
            return Err(format!(
                "crs.mode `{}` (expected on or detection_only)",
                self.mode
            ));
        }
        Ok(())
    }

    /// Loads the rule set when enabled (paths relative to `config_dir`); an error names the
    /// file, line and column, and nothing of a failed load is used.
    pub fn load(&self, config_dir: &Path) -> Result<Option<RuleSet>, String> {
        if !self.enabled {
            return Ok(None);
        }
        self.check()?;
        let at = |p: &Path| config_dir.join(p);
        let mut sources = Vec::new();
        if let Some(setup) = &self.setup {
            sources.push(Source::File(at(setup)));
        }
        // After the setup file, so the configuration's values win over its SecActions; CRS's
        // initialisation only fills what is still unset.
        let p = self.paranoia;
        let mut settings = format!(
            "SecAction \"id:{SETTINGS_RULE_ID},phase:1,pass,nolog,setvar:tx.blocking_paranoia_level={p},setvar:tx.paranoia_level={p},setvar:tx.inbound_anomaly_score_threshold={}\"\n",
            self.inbound_threshold
        );
        if self.mode == "detection_only" {
            settings.push_str("SecRuleEngine DetectionOnly\n");
        }
        sources.push(Source::Text {
            name: "rampart.toml [crs]".into(),
            text: settings,
        });
        sources.extend(self.before.iter().map(|f| Source::File(at(f))));
        sources.push(Source::Dir(at(&self.rules)));
        sources.extend(self.after.iter().map(|f| Source::File(at(f))));
        RuleSet::load(&sources)
            .map(Some)
            .map_err(|e| format!("crs: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> CrsSection {
        #[derive(Deserialize)]
        struct Wrap {
            crs: CrsSection,
        }
        toml::from_str::<Wrap>(text)
            .map(|w| w.crs)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn off_by_default_and_values_checked() {
        assert!(CrsSection::default()
            .load(Path::new("."))
            .unwrap()
            .is_none());
        assert!(section("[crs]\nparanoia = 5\n")
            .check()
            .unwrap_err()
            .contains("crs.paranoia 5"));
        assert!(section("[crs]\nmode = \"block\"\n")
            .check()
            .unwrap_err()
            .contains("crs.mode"));
        assert!(section("[crs]\ninbound_threshold = 0\n").check().is_err());
        assert!(toml::from_str::<toml::Table>("[crs]\nenable = true\n").is_ok());
    }

    #[test]
    fn a_bad_rule_file_is_refused_with_its_location() {
        let dir = std::env::temp_dir().join(format!("rampart-crs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rules")).unwrap();
        std::fs::write(
            dir.join("rules/a.conf"),
            "SecRule ARGS \"@rx x\" \"id:1,phase:2,deny\"\n",
        )
        .unwrap();
        let cfg = section("[crs]\nenabled = true\nrules = \"rules\"\n");
        let cfg = CrsSection { setup: None, ..cfg };
        let set = cfg.load(&dir).unwrap().expect("enabled");
        assert_eq!(set.stats().rules, 2, "the settings SecAction and the rule");
        std::fs::write(
            dir.join("rules/b.conf"),
            "\nSecRule ARGS \"@rx x\" \"id:2,phase:2,t:nope\"\n",
        )
        .unwrap();
        let e = cfg.load(&dir).unwrap_err();
        assert!(e.contains("b.conf:2:") && e.contains("t:nope"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
