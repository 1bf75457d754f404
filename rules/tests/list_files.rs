//! Issue 17 item 14: a list file may not lead out of the rule file's folder (a symlink to
//! `/etc/shadow`, a symlinked folder), must be a regular file, and an error about a bad line
//! shows only a short, escaped excerpt of a file we accepted — never a secret.

use std::path::{Path, PathBuf};

use rampart_rules::{load_str, RuleErrorKind};

const SECRET: &str = "root:$6$S3CR3T-HASH-do-not-print:19000:0:99999:7:::";

/// A fresh folder under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("rampart-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rules_with_list(file: &str) -> String {
    format!(
        "version: 1\nlists:\n  bad: {{ kind: ip, file: \"{file}\" }}\nrules:\n  - id: 1\n    expression: ip.src in $bad\n    action: drop\n"
    )
}

fn load_err(dir: &Path, file: &str) -> String {
    let e = load_str(&rules_with_list(file), "r.yaml", dir).unwrap_err();
    assert!(matches!(e.kind(), RuleErrorKind::Read { .. }), "{e}");
    e.to_string()
}

#[test]
fn a_symlink_out_of_the_folder_is_refused_without_reading_it() {
    let outside = TempDir::new("outside");
    let secret = outside.0.join("shadow");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let rules = TempDir::new("rules-symlink");
    std::os::unix::fs::symlink(&secret, rules.0.join("bad.txt")).unwrap();
    // A folder inside that is a symlink to one outside leads out too.
    std::os::unix::fs::symlink(&outside.0, rules.0.join("sub")).unwrap();
    for name in ["bad.txt", "sub/shadow"] {
        let text = load_err(&rules.0, name);
        assert!(
            !text.contains("S3CR3T") && !text.contains("root:"),
            "{text}"
        );
        assert!(text.contains(name), "names the path: {text}");
        assert!(
            text.contains("outside the rule file's folder"),
            "says why: {text}"
        );
    }
    // The real /etc/shadow, by a symlink (root can read it, so only the check stops it).
    std::os::unix::fs::symlink("/etc/shadow", rules.0.join("shadow.txt")).unwrap();
    let text = load_err(&rules.0, "shadow.txt");
    assert!(text.contains("outside the rule file's folder"), "{text}");
    assert!(!text.contains("root:"), "{text}");
}

#[test]
fn a_symlink_inside_the_folder_is_followed() {
    let rules = TempDir::new("rules-inner-link");
    std::fs::create_dir_all(rules.0.join("lists")).unwrap();
    std::fs::write(rules.0.join("lists/nets.txt"), "192.0.2.0/24\n").unwrap();
    std::os::unix::fs::symlink("lists/nets.txt", rules.0.join("bad.txt")).unwrap();
    let set = load_str(&rules_with_list("bad.txt"), "r.yaml", &rules.0).unwrap();
    assert_eq!(set.xdp_entries[0].src.as_ref().unwrap().len(), 1);
    // A folder given as `dir` through a symlink is resolved too.
    let alias = std::env::temp_dir().join(format!("rampart-alias-{}", std::process::id()));
    let _ = std::fs::remove_file(&alias);
    std::os::unix::fs::symlink(&rules.0, &alias).unwrap();
    let ok = load_str(&rules_with_list("lists/nets.txt"), "r.yaml", &alias);
    std::fs::remove_file(&alias).unwrap();
    ok.unwrap();
}

#[test]
fn a_fifo_or_folder_is_not_a_list_file() {
    let rules = TempDir::new("rules-fifo");
    let fifo = rules.0.join("pipe.txt");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::create_dir_all(rules.0.join("folder")).unwrap();
    for name in ["pipe.txt", "folder"] {
        let text = load_err(&rules.0, name);
        assert!(text.contains("is not a regular file"), "{name}: {text}");
    }
}

#[test]
fn a_bad_line_is_shown_short_and_escaped() {
    let rules = TempDir::new("rules-excerpt");
    let long = format!("10.0.0.1/8\u{1b}[31m{}\u{202e}", "x".repeat(500));
    std::fs::write(rules.0.join("bad.txt"), format!("192.0.2.0/24\n{long}\n")).unwrap();
    let e = load_str(&rules_with_list("bad.txt"), "r.yaml", &rules.0).unwrap_err();
    let text = e.to_string();
    assert!(e.file().ends_with("bad.txt") && e.line() == 2, "{text}");
    assert!(text.contains("is not a valid prefix"), "{text}");
    assert!(text.contains("10.0.0.1/8\\u{1b}[31m"), "escaped: {text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    assert!(text.len() < 400, "{} bytes: {text}", text.len());
    assert!(!text.contains(&"x".repeat(100)), "{text}");
}
