//! Whole rule sets: OWASP CRS v4 (from the shared corpora) and CRS 3.3.4 as Debian ships it.

use std::path::{Path, PathBuf};

use super::*;
use crate::seclang::ast::Selector;

fn corpora() -> PathBuf {
    if let Some(dir) = std::env::var_os("RAMPART_CORPORA") {
        return PathBuf::from(dir);
    }
    let default = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpora"));
    // A worktree under /work/wt/NAME sits one level deeper than the main checkout.
    let worktree = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora"
    ));
    if !default.exists() && worktree.exists() {
        return worktree.to_path_buf();
    }
    default.to_path_buf()
}

fn conf_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".conf") || name.ends_with(".conf.example")
        })
        .collect();
    files.sort();
    files
}

/// Counts per kind, and the chain invariant: a rule with `chain` is followed by a rule.
#[derive(Default, Debug)]
struct Counts {
    rules: usize,
    actions: usize,
    markers: usize,
    defaults: usize,
    update_target: usize,
    chained: usize,
    ignored: usize,
    other: usize,
}

fn count(directives: &[Directive], file: &Path, counts: &mut Counts) {
    for (i, d) in directives.iter().enumerate() {
        match d {
            Directive::Rule(rule) => {
                if rule.targets.is_empty() {
                    counts.actions += 1;
                } else {
                    counts.rules += 1;
                }
                if rule.actions.iter().any(|a| a.name == "chain") {
                    counts.chained += 1;
                    assert!(
                        matches!(directives.get(i + 1), Some(Directive::Rule(_))),
                        "{}: chained rule at {} is not followed by a rule",
                        file.display(),
                        rule.location
                    );
                }
            }
            Directive::Marker { .. } => counts.markers += 1,
            Directive::DefaultAction { .. } => counts.defaults += 1,
            Directive::UpdateTargetById { .. } => counts.update_target += 1,
            Directive::Ignored { .. } => counts.ignored += 1,
            _ => counts.other += 1,
        }
    }
}

fn find_rule(directives: &[Directive], id: &str) -> Option<RuleAst> {
    directives.iter().find_map(|d| match d {
        Directive::Rule(r)
            if r.actions
                .iter()
                .any(|a| a.name == "id" && a.argument.as_deref() == Some(id)) =>
        {
            Some(r.clone())
        }
        _ => None,
    })
}

#[test]
fn crs_v4_corpus_parses() {
    let root = corpora().join("crs-v4");
    assert!(
        root.exists(),
        "{} missing: set RAMPART_CORPORA to the shared corpora folder",
        root.display()
    );
    let setup = parse_file(&root.join("crs-setup.conf.example")).unwrap();
    // The example setup is mostly comments: its active directives are one SecAction (900990,
    // the setup version) and one SecDefaultAction for each of the phases 1 to 5.
    let mut setup_counts = Counts::default();
    count(
        &setup,
        Path::new("crs-setup.conf.example"),
        &mut setup_counts,
    );
    assert_eq!(setup_counts.actions, 1, "{setup_counts:?}");
    assert_eq!(setup_counts.defaults, 5, "{setup_counts:?}");
    assert_eq!(setup_counts.rules, 0, "{setup_counts:?}");
    assert!(find_rule(&setup, "900990").is_some());

    let mut counts = Counts::default();
    let mut all = Vec::new();
    for file in conf_files(&root.join("rules")) {
        let directives = parse_file(&file).unwrap_or_else(|e| panic!("{e}"));
        count(&directives, &file, &mut counts);
        all.extend(directives);
    }
    eprintln!("crs v4 rules/: {counts:?}");
    // Cross-checked with `grep -cE '^\s*SecRule\b'` (and SecAction, SecMarker, `chain`).
    assert_eq!(counts.rules, 695, "{counts:?}");
    assert_eq!(counts.actions, 7);
    assert_eq!(counts.markers, 30);
    assert_eq!(counts.defaults, 0);
    assert_eq!(counts.update_target, 55);
    assert_eq!(counts.chained, 73);
    assert_eq!(counts.ignored, 0);
    // SecComponentSignature in 901.
    assert_eq!(counts.other, 1);

    let sqli = find_rule(&all, "942100").expect("rule 942100");
    assert_eq!(sqli.operator.name, "detectSQLi");
    assert!(!sqli.operator.negated);
    assert!(sqli
        .location
        .file
        .ends_with("REQUEST-942-APPLICATION-ATTACK-SQLI.conf"));
    assert_eq!(sqli.targets.len(), 8);
    let user_agent = Selector::Key("User-Agent".into());
    assert!(sqli
        .targets
        .iter()
        .any(|t| t.collection == "REQUEST_HEADERS" && t.selector == user_agent));
    // REQUEST-999 excludes Google Analytics cookies from 932240 by a negated regex target.
    let update = all.iter().find_map(|d| match d {
        Directive::UpdateTargetById { ids, targets, .. } if ids[0].first == 932240 => Some(targets),
        _ => None,
    });
    let expected = Selector::Regex(r"^_ga(?:_\w+)?$".into());
    assert!(
        matches!(update, Some(t) if t[0].negated && t[0].collection == "REQUEST_COOKIES" && t[0].selector == expected)
    );
    // A rule whose regex holds `\s` keeps it: only `\"` is unescaped.
    let rule = find_rule(&all, "921110").expect("rule 921110");
    assert!(rule.operator.argument.contains(r"[\s\x0b]+"));
    assert!(rule
        .targets
        .iter()
        .any(|t| t.collection == "XML" && t.selector == Selector::Key("//@*".into())));
}

#[test]
fn crs_v3_debian_parses() {
    let rules = Path::new("/usr/share/modsecurity-crs/rules");
    if !rules.exists() {
        // As root (CI) `cargo xtask setup` has run: the package must be there.
        assert!(
            !std::fs::metadata("/proc/self")
                .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0),
            "/usr/share/modsecurity-crs missing: run `cargo xtask setup`"
        );
        println!(
            "skipping: /usr/share/modsecurity-crs not installed (cargo xtask setup installs it)"
        );
        return;
    }
    let mut counts = Counts::default();
    let setup = Path::new("/etc/modsecurity/crs/crs-setup.conf");
    if setup.exists() {
        let directives = parse_file(setup).unwrap_or_else(|e| panic!("{e}"));
        assert!(!directives.is_empty());
    }
    let mut all = Vec::new();
    for file in conf_files(rules) {
        let directives = parse_file(&file).unwrap_or_else(|e| panic!("{e}"));
        count(&directives, &file, &mut counts);
        all.extend(directives);
    }
    eprintln!("crs 3.3 rules/: {counts:?}");
    // Debian's modsecurity-crs 3.3.4-1+deb12u3, as counted when the engine landed.
    assert_eq!(
        (counts.rules, counts.actions, counts.markers),
        (790, 9, 40),
        "{counts:?}"
    );
    assert_eq!(counts.chained, 166, "{counts:?}");
    let sqli = find_rule(&all, "942100").expect("rule 942100");
    assert_eq!(sqli.operator.name, "detectSQLi");
}

/// Idioms of ModSecurity's `modsecurity.conf-recommended` (which Debian installs next to CRS
/// 3.3): quoted ids, a message continued over lines, space-separated ignored values, a BOM.
#[test]
fn modsecurity_recommended_idioms() {
    let text = concat!(
        "\u{feff}SecRequestBodyAccess On\n",
        "SecRule REQUEST_HEADERS:Content-Type \"(?:application(?:/soap\\+|/)|text/)xml\" \\\n",
        "     \"id:'200000',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n",
        "SecRule MULTIPART_STRICT_ERROR \"!@eq 0\" \\\n",
        "\"id:'200003',phase:2,t:none,log,deny,status:400, \\\n",
        "msg:'Multipart request body failed strict validation: \\\n",
        "PE %{REQBODY_PROCESSOR_ERROR}, \\\n",
        "BQ %{MULTIPART_BOUNDARY_QUOTED}'\"\n",
        "SecResponseBodyMimeType text/plain text/html text/xml\n",
    );
    let all = parse_str(text, "modsecurity.conf", Path::new("/")).unwrap();
    assert_eq!(all.len(), 4);
    assert!(
        matches!(&all[0], Directive::Ignored { name, value, .. } if name == "SecRequestBodyAccess" && value == "On")
    );
    let Directive::Rule(xml) = &all[1] else {
        panic!()
    };
    assert_eq!(xml.operator.name, "rx");
    assert_eq!(
        xml.operator.argument,
        r"(?:application(?:/soap\+|/)|text/)xml"
    );
    assert_eq!(xml.actions[0].argument.as_deref(), Some("200000"));
    let Directive::Rule(strict) = &all[2] else {
        panic!()
    };
    assert_eq!(strict.location.line, 4);
    assert!(strict.operator.negated);
    let msg = strict.actions.iter().find(|a| a.name == "msg").unwrap();
    assert_eq!(
        msg.argument.as_deref(),
        Some("Multipart request body failed strict validation: PE %{REQBODY_PROCESSOR_ERROR}, BQ %{MULTIPART_BOUNDARY_QUOTED}")
    );
    assert!(
        matches!(&all[3], Directive::Ignored { value, .. } if value == "text/plain text/html text/xml")
    );
}
