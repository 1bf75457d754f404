//! Whole rule files: YAML, schema, lists, expressions, XDP lowering and table compilation.
//! Only panics, timeouts and memory blow-ups are findings; every `Err` is a fine answer.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Rule files are UTF-8 text: anything else is refused before the parser sees it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A relative `file:` of a list resolves under a directory that does not exist, so no real
    // file is read. (An absolute `file:` path is still read as written: `load_str` joins it.)
    match rampart_rules::load_str(text, "fuzz.yaml", Path::new("/nonexistent/rampart-fuzz")) {
        Ok(set) => {
            let _ = set.l7_rules().count();
        }
        Err(e) => {
            // Error rendering (line, column, caret) is part of what a hostile file reaches.
            let _ = e.to_string();
        }
    }
});
