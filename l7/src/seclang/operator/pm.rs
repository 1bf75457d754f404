//! `@pm` and `@pmFromFile`: case-insensitive (ASCII) multi-phrase search through Aho-Corasick.

use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::{read_data_files, MatchCtx, OperatorError};

#[derive(Debug)]
pub(super) struct Phrases {
    automaton: AhoCorasick,
    /// The phrases, lower-cased: a match is one of them.
    pub(super) lowered: Vec<Vec<u8>>,
}

impl Phrases {
    /// `@pm a b c`: space-separated phrases.
    pub(super) fn from_list(argument: &str) -> Result<Phrases, OperatorError> {
        let phrases: Vec<&str> = argument.split_ascii_whitespace().collect();
        if phrases.is_empty() {
            return Err(OperatorError::BadArgument("@pm without phrases".into()));
        }
        Phrases::build(&phrases)
    }

    /// `@pmFromFile a.data b.data`: one phrase a line, blank and `#` lines skipped (files with
    /// no phrase at all load, and match nothing).
    pub(super) fn from_files(argument: &str, base_dir: &Path) -> Result<Phrases, OperatorError> {
        let mut phrases = Vec::new();
        read_data_files(argument, base_dir, |line| {
            phrases.push(line.to_string());
            Ok(())
        })?;
        Phrases::build(&phrases)
    }

    fn build<P: AsRef<[u8]>>(phrases: &[P]) -> Result<Phrases, OperatorError> {
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(phrases)
            .map_err(|e| OperatorError::BadArgument(format!("phrase list: {e}")))?;
        let lowered = phrases
            .iter()
            .map(|p| p.as_ref().to_ascii_lowercase())
            .collect();
        Ok(Phrases { automaton, lowered })
    }

    pub(super) fn matches(&self, input: &[u8], ctx: &mut MatchCtx<'_>) -> bool {
        match self.automaton.find(input) {
            Some(m) => {
                if ctx.capture {
                    ctx.captures.clear();
                    ctx.captures.push(input[m.range()].to_vec());
                }
                true
            }
            None => false,
        }
    }
}
