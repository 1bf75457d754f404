//! `rampart rules check` refuses what `run` and reload refuse, and says where (issue 17, items
//! 14 and 15): YAML errors at their line and column, repeated keys, id 0, ids of the default
//! rules, and list files that lead out of the rule folder (without printing what they hold).

use std::path::{Path, PathBuf};
use std::process::Command;

/// (exit ok, stdout, stderr)
fn check(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["rules", "check"])
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running rampart");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Folder(PathBuf);

impl Folder {
    fn new(tag: &str) -> Folder {
        let p = std::env::temp_dir().join(format!("rampart-check-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Folder(p)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn yaml_mistakes_are_reported_where_they_are() {
    let d = Folder::new("yaml");
    let f = d.file(
        "syn.yaml",
        "version: 1\nrules:\n  - id: 1\n    expression: ip.ttl lt 2\n    action: drop\n  - id: 2\n    expression: \"unterminated\n    action: drop\n",
    );
    let (ok, _, err) = check(&[&f]);
    assert!(!ok);
    assert!(
        err.contains("syn.yaml:7:17: error: not valid YAML: invalid indentation in quoted scalar"),
        "{err}"
    );
    assert!(
        err.contains("      expression: \"unterminated\n                  ^"),
        "{err}"
    );

    let f = d.file(
        "dup.yaml",
        "version: 1\nrules:\n  - id: 1\n    expression: ip.ttl lt 2\n    action: drop\n    action: allow\n",
    );
    let (ok, out, err) = check(&[&f]);
    assert!(!ok, "{out}");
    assert!(
        err.contains(
            "dup.yaml:6:5: error: not valid YAML: key `action` is repeated (first on line 5)"
        ),
        "{err}"
    );
}

#[test]
fn ids_that_run_and_reload_refuse_are_refused() {
    let d = Folder::new("ids");
    let zero = d.file(
        "zero.yaml",
        "version: 1\nrules:\n  - id: 0\n    expression: ip.ttl lt 2\n    action: drop\n",
    );
    let (ok, _, err) = check(&[&zero]);
    assert!(!ok);
    assert!(
        err.contains("zero.yaml:3:9: error: rule id 0 is reserved"),
        "{err}"
    );
    // Refused whatever the default rules, as the loader refuses it.
    assert!(!check(&["--no-default-rules", &zero]).0);

    let taken = d.file(
        "taken.yaml",
        "version: 1\nrules:\n  - id: 900100\n    expression: http.host eq \"a\"\n    action: block\n",
    );
    let (ok, _, err) = check(&[&taken]);
    assert!(!ok);
    assert!(
        err.contains("taken.yaml:3:9: error: rule id 900100 is taken by rule `sqli-args` of default-waf.yaml"),
        "{err}"
    );
    assert!(err.contains("--no-default-rules"), "{err}");
    let (ok, out, err) = check(&["--no-default-rules", &taken]);
    assert!(ok, "{err}");
    assert!(out.contains("900100"), "{out}");

    // An unused id of the default rules' range passes, with a warning.
    let range = d.file(
        "range.yaml",
        "version: 1\nrules:\n  - id: 950000\n    expression: http.host eq \"a\"\n    action: block\n",
    );
    let (ok, _, err) = check(&[&range]);
    assert!(ok, "{err}");
    assert!(
        err.contains("range.yaml:3: warning: rule id 950000 is in 900000 to 999999"),
        "{err}"
    );
}

#[test]
fn a_list_file_leading_out_of_the_folder_is_refused_and_not_shown() {
    let outside = Folder::new("outside");
    let secret = outside.file("shadow", "root:$6$S3CR3T-HASH:19000:0:99999:7:::\n");
    let d = Folder::new("lists");
    std::os::unix::fs::symlink(&secret, d.0.join("bad.txt")).unwrap();
    let f = d.file(
        "r.yaml",
        "version: 1\nlists:\n  bad: { kind: ip, file: bad.txt }\nrules:\n  - id: 1\n    expression: ip.src in $bad\n    action: drop\n",
    );
    let (ok, out, err) = check(&[&f]);
    assert!(!ok);
    assert!(
        !err.contains("S3CR3T") && !out.contains("S3CR3T"),
        "{err}{out}"
    );
    let link = Path::new(&d.0).join("bad.txt").display().to_string();
    assert!(
        err.contains(&format!(
            "list file {link} leads outside the rule file's folder"
        )),
        "{err}"
    );
}
