//! Loading a rule set from what an operator configures: files, folders of `*.conf` (read in
//! name order, as `Include dir/*.conf` does) and inline text, in the order given.

use std::path::{Path, PathBuf};

use super::ast::{Directive, Location};
use super::compile::RuleSet;
use super::error::{SecLangError, SecLangErrorKind};
use super::parse;

/// One source of SecLang directives.
#[derive(Clone, Debug)]
pub enum Source {
    File(PathBuf),
    /// Every `*.conf` directly in the folder, sorted by name.
    Dir(PathBuf),
    /// Text named `name` in error locations (e.g. generated `SecAction`s for settings).
    Text {
        name: String,
        text: String,
    },
}

impl RuleSet {
    /// Parses and compiles `sources` in order; the first error (with its location) wins and
    /// nothing is returned, so a broken file never half-loads.
    pub fn load(sources: &[Source]) -> Result<RuleSet, SecLangError> {
        let mut directives: Vec<Directive> = Vec::new();
        let mut base = PathBuf::from(".");
        for s in sources {
            match s {
                Source::File(f) => {
                    base = f.parent().map(Path::to_path_buf).unwrap_or(base);
                    directives.extend(parse::parse_file(f)?);
                }
                Source::Dir(d) => {
                    base = d.clone();
                    for f in conf_files(d)? {
                        directives.extend(parse::parse_file(&f)?);
                    }
                }
                Source::Text { name, text } => {
                    directives.extend(parse::parse_str(text, name, &base)?)
                }
            }
        }
        RuleSet::compile(&directives, &base)
    }
}

fn conf_files(dir: &Path) -> Result<Vec<PathBuf>, SecLangError> {
    let io = |e: std::io::Error| {
        SecLangError::new(
            Location {
                file: dir.display().to_string().into(),
                line: 0,
                column: 0,
            },
            SecLangErrorKind::Io,
            format!("cannot read the folder: {e}"),
        )
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|x| x == "conf") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_load_in_order_and_errors_keep_their_location() {
        let dir = std::env::temp_dir().join(format!("rampart-seclang-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.conf"), "SecAction \"id:2,phase:1,pass\"\n").unwrap();
        std::fs::write(dir.join("a.conf"), "SecAction \"id:1,phase:1,pass\"\n").unwrap();
        std::fs::write(dir.join("words.data"), "alpha\n").unwrap();
        std::fs::write(dir.join("skip.txt"), "not rules").unwrap();
        let set = RuleSet::load(&[
            Source::Dir(dir.clone()),
            Source::Text {
                name: "extra".into(),
                text: "SecRule ARGS \"@pmFromFile words.data\" \"id:3,phase:2,pass\"".into(),
            },
        ])
        .unwrap();
        assert_eq!(set.stats().rules, 3);
        std::fs::write(
            dir.join("c.conf"),
            "\n\nSecRule ARGS \"@nope x\" \"id:4\"\n",
        )
        .unwrap();
        let e = RuleSet::load(&[Source::Dir(dir.clone())]).unwrap_err();
        assert_eq!(e.kind(), SecLangErrorKind::UnknownOperator);
        assert!(e.to_string().contains("c.conf:3:"), "{e}");
        let e = RuleSet::load(&[Source::Dir(dir.join("missing"))]).unwrap_err();
        assert_eq!(e.kind(), SecLangErrorKind::Io);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
