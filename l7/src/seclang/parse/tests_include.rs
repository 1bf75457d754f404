//! `Include`: files, sorted globs, nesting, and the errors they give.

use std::path::PathBuf;

use super::*;
use SecLangErrorKind::*;

/// A fresh folder under the system temp dir for include tests.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-seclang-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    dir
}

#[test]
fn include_files_and_sorted_globs_in_place() {
    let dir = scratch("glob");
    std::fs::write(dir.join("rules/b.conf"), "SecMarker B\n").unwrap();
    std::fs::write(
        dir.join("rules/a.conf"),
        "SecMarker A\nInclude \"../nested.conf\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("nested.conf"), "\n\nSecMarker N\n").unwrap();
    let all = parse_str(
        "SecMarker 0\nInclude rules/*.conf\nSecMarker Z",
        "main.conf",
        &dir,
    )
    .unwrap();
    let names: Vec<_> = all
        .iter()
        .map(|d| match d {
            Directive::Marker { name, .. } => name.as_str(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(names, ["0", "A", "N", "B", "Z"]);
    let Directive::Marker { location, .. } = &all[2] else {
        panic!()
    };
    assert!(location.file.ends_with("nested.conf") && location.line == 3);
    assert_eq!(parse_file(&dir.join("rules/a.conf")).unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn include_errors() {
    let dir = scratch("errors");
    let e = parse_str("\n  Include rules/*.nothing", "m.conf", &dir).unwrap_err();
    assert_eq!(
        (e.kind(), e.location().line, e.location().column),
        (Io, 2, 3)
    );
    // IncludeOptional skips a missing file or an empty glob, but not an unreadable file.
    let all = parse_str(
        "IncludeOptional missing.conf\nincludeoptional x/*.conf",
        "m.conf",
        &dir,
    );
    assert_eq!(all, Ok(Vec::new()));
    let e = parse_str("IncludeOptional rules", "m.conf", &dir).unwrap_err();
    assert_eq!(e.kind(), Io);
    let e = parse_str("Include missing.conf", "m.conf", &dir).unwrap_err();
    assert_eq!(
        (e.kind(), e.location().to_string()),
        (Io, "m.conf:1:1".into())
    );
    // An error inside an included file is located in that file.
    std::fs::write(dir.join("bad.conf"), "SecMarker A\nSecNope\n").unwrap();
    let e = parse_str("Include bad.conf", "m.conf", &dir).unwrap_err();
    assert_eq!(e.kind(), UnknownDirective);
    assert!(e.location().file.ends_with("bad.conf") && e.location().line == 2);
    std::fs::write(dir.join("self.conf"), "SecMarker S\nInclude self.conf\n").unwrap();
    let e = parse_file(&dir.join("self.conf")).unwrap_err();
    assert_eq!((e.kind(), e.location().line), (BadArgument, 2));
    let e = parse_file(&dir.join("absent.conf")).unwrap_err();
    assert_eq!(e.kind(), Io);
    std::fs::remove_dir_all(&dir).unwrap();
}
