//! In-memory [`FilterTables`] for unit tests of code built on the seam.

use std::collections::BTreeMap;
use std::time::Duration;

use rampart_rules::{xdp::XdpTables, Prefix};

use crate::{FilterTables, RulesReport, TablesError};

#[derive(Debug, Default)]
pub struct FakeTables {
    pub denied: BTreeMap<Prefix, Option<Duration>>,
    pub allowed: BTreeMap<Prefix, ()>,
    pub rules: Option<XdpTables>,
    pub generation: u32,
}

impl FilterTables for FakeTables {
    fn deny(&mut self, prefix: Prefix, ttl: Option<Duration>) -> Result<(), TablesError> {
        self.denied.insert(prefix, ttl);
        Ok(())
    }

    fn undeny(&mut self, prefix: Prefix) -> Result<bool, TablesError> {
        Ok(self.denied.remove(&prefix).is_some())
    }

    fn allow(&mut self, prefix: Prefix) -> Result<(), TablesError> {
        self.allowed.insert(prefix, ());
        Ok(())
    }

    fn unallow(&mut self, prefix: Prefix) -> Result<bool, TablesError> {
        Ok(self.allowed.remove(&prefix).is_some())
    }

    fn load_rules(&mut self, tables: &XdpTables) -> Result<RulesReport, TablesError> {
        self.generation ^= 1;
        self.rules = Some(tables.clone());
        Ok(RulesReport {
            generation: self.generation,
            rules: tables.metas.len(),
            entries_written: tables.entry_count(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_rules::xdp::{compile, Action, RuleSpec};

    #[test]
    fn fake_tracks_lists_and_flips_generations() {
        let mut f = FakeTables::default();
        let p: Prefix = "203.0.113.0/24".parse().unwrap();
        f.deny(p, Some(Duration::from_secs(60))).unwrap();
        assert!(f.undeny(p).unwrap());
        assert!(!f.undeny(p).unwrap());
        let t = compile(&[RuleSpec::new(1, Action::Drop)]).unwrap();
        assert_eq!(f.load_rules(&t).unwrap().generation, 1);
        assert_eq!(f.load_rules(&t).unwrap().generation, 0);
    }
}
