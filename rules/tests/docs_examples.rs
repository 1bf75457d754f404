//! Every example in `docs/reference.md` is checked against the code, so the reference cannot drift.
//!
//! Fenced blocks, by info string:
//! - ```` ```yaml ````: a complete rule file that must load.
//! - ```` ```yaml,error ````: a rule file that must be refused; each `# error: TEXT` line in it
//!   names text the error message must contain (those lines are blanked before loading, so the
//!   error's echo of a source line cannot supply the text).
//! - ```` ```expr ````: one expression per line (blank lines and `#` lines are skipped), optionally
//!   followed by `  # => xdp` (compiles to at least one XDP table entry; `# => xdp, N entries`
//!   also checks the count), `  # => l7` (checks, reads an HTTP field, and reads no packet field
//!   but `ip.src`, as the loader requires of HTTP rules) or `  # => error: TEXT` (refused by the
//!   checker, or, for an expression without HTTP fields, by the XDP back end, with a message
//!   containing TEXT). A line without an annotation must check.
//! - ```` ```text file=NAME ````: a list file the YAML examples may load (`file: NAME`); it is
//!   written to a temporary directory that the YAML examples load relative to.
//!
//! Other blocks (`text`, `sh`) are not examples. The test fails if the document has no examples.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rampart_rules::lang::{compile_expr, Field, Layer, Lists};
use rampart_rules::load_str;
use rampart_rules::xdp::{lower_rule, Action};

struct Block {
    /// The info string after the opening fence.
    info: String,
    /// 1-based line of the first content line in the document.
    line: usize,
    text: String,
}

fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, raw) in md.lines().enumerate() {
        let fence = raw.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_string(),
                    line: i + 2,
                    text: String::new(),
                })
            }
            (Some(_), Some(rest)) if rest.trim().is_empty() => out.extend(open.take()),
            (Some(b), _) => {
                b.text.push_str(raw);
                b.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "reference.md: a code block is not closed");
    out
}

#[derive(Default)]
struct Counts {
    yaml: usize,
    yaml_error: usize,
    xdp: usize,
    l7: usize,
    error: usize,
    plain: usize,
}

impl Counts {
    fn total(&self) -> usize {
        self.yaml + self.yaml_error + self.xdp + self.l7 + self.error + self.plain
    }
}

fn fields_of(e: &rampart_rules::lang::TExpr) -> HashSet<Field> {
    let mut f = HashSet::new();
    e.fields(&mut f);
    f
}

/// Checks one expression line; `Err` says what is wrong.
fn check_expr(line: &str, counts: &mut Counts) -> Result<(), String> {
    let (src, note) = match line.rfind("# =>") {
        Some(at) => (line[..at].trim(), Some(line[at + 4..].trim())),
        None => (line.trim(), None),
    };
    let lists = Lists::new();
    let compiled = compile_expr(src, &lists);
    let note = match note {
        None => {
            counts.plain += 1;
            return compiled
                .map(|_| ())
                .map_err(|e| format!("does not check: {e}"));
        }
        Some(n) => n,
    };
    if let Some(want) = note.strip_prefix("error:") {
        counts.error += 1;
        let want = want.trim();
        let got = match compiled {
            Err(e) => e.to_string(),
            Ok(e) => {
                if fields_of(&e).iter().any(|f| f.layer() == Layer::L7) {
                    return Err("expected an error, but it checks (an HTTP expression)".into());
                }
                match lower_rule(1, Action::Drop, &e) {
                    Err(why) => why,
                    Ok(v) => {
                        return Err(format!(
                            "expected an error, but it checks and compiles to {} XDP entries",
                            v.len()
                        ))
                    }
                }
            }
        };
        return if got.contains(want) {
            Ok(())
        } else {
            Err(format!("the error `{got}` does not contain `{want}`"))
        };
    }
    if note.starts_with("xdp") {
        counts.xdp += 1;
    } else if note == "l7" {
        counts.l7 += 1;
    } else {
        return Err(format!("unknown annotation `# => {note}`"));
    }
    let e = compiled.map_err(|e| format!("does not check: {e}"))?;
    let fields = fields_of(&e);
    if let Some(rest) = note.strip_prefix("xdp") {
        if let Some(f) = fields.iter().find(|f| f.layer() == Layer::L7) {
            return Err(format!("reads the HTTP field `{}`", f.name()));
        }
        let entries = lower_rule(1, Action::Drop, &e).map_err(|why| format!("not XDP: {why}"))?;
        if entries.is_empty() {
            return Err("compiles to no XDP entries (it can never match)".into());
        }
        let rest = rest.trim();
        if !rest.is_empty() {
            let n: usize = rest
                .trim_start_matches(',')
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("bad annotation `{note}`"))?;
            if n != entries.len() {
                return Err(format!(
                    "compiles to {} XDP entries, not {n}",
                    entries.len()
                ));
            }
        }
        return Ok(());
    }
    if !fields.iter().any(|f| f.layer() == Layer::L7) {
        return Err("reads no HTTP field".into());
    }
    if let Some(f) = fields
        .iter()
        .find(|f| f.layer() == Layer::L34 && **f != Field::IpSrc)
    {
        return Err(format!(
            "reads the packet field `{}`, which HTTP rules cannot",
            f.name()
        ));
    }
    Ok(())
}

#[test]
fn every_example_in_the_reference_holds() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    let md = std::fs::read_to_string(&doc)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", doc.display()));
    let blocks = blocks(&md);

    // List files first: the YAML examples load them from this directory.
    let dir: PathBuf =
        std::env::temp_dir().join(format!("rampart-docs-examples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for b in &blocks {
        if let Some(name) = b.info.strip_prefix("text file=") {
            std::fs::write(dir.join(name.trim()), &b.text).unwrap();
        }
    }

    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for b in &blocks {
        match b.info.as_str() {
            "yaml" => {
                counts.yaml += 1;
                if let Err(e) = load_str(&b.text, "reference.md", &dir) {
                    failures.push(format!("line {}: the file does not load:\n{e}", b.line));
                }
            }
            "yaml,error" => {
                counts.yaml_error += 1;
                let wants: Vec<&str> = b
                    .text
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("# error:"))
                    .map(str::trim)
                    .collect();
                if wants.is_empty() {
                    failures.push(format!("line {}: no `# error:` line", b.line));
                }
                // Blank the `# error:` lines (keeping line numbers), so the expected text cannot
                // come from the error's echo of the source line.
                let text: String = b
                    .text
                    .lines()
                    .map(|l| {
                        if l.trim().starts_with("# error:") {
                            "#\n".to_string()
                        } else {
                            format!("{l}\n")
                        }
                    })
                    .collect();
                match load_str(&text, "reference.md", &dir) {
                    Ok(_) => failures.push(format!("line {}: the file loads", b.line)),
                    Err(e) => {
                        let text = e.to_string();
                        for w in wants {
                            if !text.contains(w) {
                                failures.push(format!(
                                    "line {}: the error does not contain `{w}`:\n{text}",
                                    b.line
                                ));
                            }
                        }
                    }
                }
            }
            "expr" => {
                for (i, line) in b.text.lines().enumerate() {
                    let t = line.trim();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    if let Err(why) = check_expr(t, &mut counts) {
                        failures.push(format!("line {}: `{t}`: {why}", b.line + i));
                    }
                }
            }
            info if info.starts_with("yaml") || info.starts_with("expr") => {
                failures.push(format!("line {}: unknown block kind `{info}`", b.line));
            }
            _ => {}
        }
    }
    std::fs::remove_dir_all(&dir).ok();

    println!(
        "reference.md: {} examples: {} rule files, {} refused rule files, {} XDP expressions, \
         {} HTTP expressions, {} refused expressions, {} unannotated expressions",
        counts.total(),
        counts.yaml,
        counts.yaml_error,
        counts.xdp,
        counts.l7,
        counts.error,
        counts.plain
    );
    if counts.yaml == 0 || counts.xdp + counts.l7 + counts.error + counts.plain == 0 {
        failures.push(
            "no rule-file or no expression examples: the document or its extraction broke".into(),
        );
    }
    assert!(
        failures.is_empty(),
        "{} example(s) in reference.md do not hold:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The safe form of a path rule (issue 17, item 5): a prefix test on the path in the examples
/// is on `lower(http.request.uri.path)`, so copying an example does not leave `/ADMIN` open.
#[test]
fn path_prefix_examples_compare_the_lowered_path() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    let md = std::fs::read_to_string(&doc).unwrap();
    let bad: Vec<String> = blocks(&md)
        .iter()
        .filter(|b| b.info.starts_with("yaml") || b.info == "expr")
        .flat_map(|b| {
            b.text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains("starts_with(http.request.uri.path,"))
                .map(|(i, l)| format!("line {}: {}", b.line + i, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(bad.is_empty(), "use lower(...):\n{}", bad.join("\n"));
}

/// Every "`RAW` is `NORMALISED`" in the Paths section holds for the value the engine computes.
#[test]
fn paths_section_examples_hold() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    let md = std::fs::read_to_string(&doc).unwrap();
    let start = md.find("#### Paths").expect("Paths section");
    let section = &md[start..];
    let section = &section[..section[4..].find("\n#").map_or(section.len(), |e| e + 4)];
    let pieces: Vec<&str> = section.split('`').collect();
    let mut checked = 0;
    // Inside a code span are the odd pieces; "`A` is `B`" is A, " is ", B.
    for k in (1..pieces.len().saturating_sub(2)).step_by(2) {
        if pieces[k + 1] != " is " {
            continue;
        }
        let (raw, want) = (pieces[k], pieces[k + 2]);
        let got = rampart_rules::lang::path::request_path(raw.as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&got),
            want,
            "reference.md Paths: `{raw}` is `{want}`"
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} examples found");
}
