//! Inputs that once crashed, hung or blew the stack of the parser, checker, evaluator or XDP
//! lowering (found by the cargo-fuzz targets in `rules/fuzz/`, `cargo xtask fuzz`). Each test
//! feeds the exact input through the same steps as its fuzz target and asserts a sensible
//! answer. The seeds of the fuzz corpus are checked here too, so they stay meaningful.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rampart_common::parsed::{ParsedFields, PF_HAS_L4, PF_IP};
use rampart_rules::{
    lang::{compile_expr, eval_bool, ErrorKind, Lists, TExpr},
    load_str,
    packet::PacketView,
    xdp::{lower_rule, Action, RuleSpec},
    RuleErrorKind,
};

/// What the `parse_expr` target does: compile, evaluate on a packet, lower to XDP entries.
fn expr(src: &str) -> Result<(TExpr, Result<Vec<RuleSpec>, String>), ErrorKind> {
    let e = compile_expr(src, &Lists::new()).map_err(|e| e.kind().clone())?;
    let mut p = ParsedFields {
        ip_version: 4,
        proto: 6,
        ttl: 64,
        tcp_flags: 0x02,
        sport: 40000,
        dport: 80,
        ip_len: 60,
        l3_offset: 14,
        l4_offset: 34,
        payload_offset: 54,
        ..Default::default()
    };
    p.flags = PF_IP | PF_HAS_L4;
    let frame = [0u8; 60];
    let _ = eval_bool(
        &e,
        &PacketView {
            parsed: &p,
            frame: &frame,
        },
    );
    let lowered = lower_rule(1, Action::Drop, &e);
    Ok((e, lowered))
}

/// Runs `f` on a thread with the stack a test thread has by default (2 MiB), so a recursion
/// that would overflow the loader's stack fails here too, and under a time bound.
fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let start = Instant::now();
    let out = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no panic");
    assert!(
        start.elapsed() < limit,
        "took {:?} (limit {limit:?})",
        start.elapsed()
    );
    out
}

/// `gt`/`ne` against i64::MAX computed `v + 1` in the XDP lowering: an overflow panic.
#[test]
fn comparisons_at_i64_max_lower_without_overflow() {
    for src in [
        "ip.ttl gt 9223372036854775807",
        "ip.ttl ne 0x7fffffffffffffff",
        "not tcp.dstport gt 9223372036854775807",
    ] {
        let (_, lowered) = expr(src).unwrap();
        assert!(lowered.is_ok(), "{src}: {lowered:?}");
    }
    // Nothing is greater than i64::MAX: no entry. Everything differs from it: one entry.
    let (_, gt) = expr("ip.ttl gt 9223372036854775807").unwrap();
    assert!(gt.unwrap().is_empty());
    let (_, ne) = expr("ip.ttl ne 9223372036854775807").unwrap();
    let ne = ne.unwrap();
    assert_eq!(ne.len(), 1);
    assert_eq!(ne[0].ttl, None, "every ttl differs from i64::MAX");
}

/// Each `xor` copies both operands (a xor b = a and not b or not a and b), so a chain of them
/// doubled the lowered formula per operand: 24 operands took minutes and gigabytes.
#[test]
fn xor_chains_lower_in_bounded_time() {
    for src in [
        vec!["tcp.flags.syn"; 24].join(" xor "),
        vec!["true"; 26].join("^^"),
        format!("{}true{}", "(true xor ".repeat(40), ")".repeat(40)),
    ] {
        let (_, lowered) = bounded(Duration::from_secs(10), move || expr(&src).unwrap());
        if let Ok(entries) = lowered {
            assert!(entries.len() <= rampart_rules::xdp::MAX_ENTRIES_PER_RULE);
        }
    }
}

/// `a or b or c ...` nested one level per operand: a few thousand operands overflowed the stack
/// in the checker (and the evaluator, the lowering and the drop of the tree after it).
#[test]
fn long_logic_chains_do_not_overflow_the_stack() {
    for op in [" or ", " and ", " xor ", "||"] {
        let src = vec!["tcp.dstport eq 80"; 20_000].join(op);
        let (_, lowered) = bounded(Duration::from_secs(30), move || expr(&src).unwrap());
        // Far more than 64 entries for `or`; xor is refused as too large; `and` is one entry.
        if op == " and " {
            assert_eq!(lowered.unwrap().len(), 1);
        } else {
            assert!(lowered.is_err());
        }
    }
}

/// `x[*][*][*]...` nested one level per index without the depth limit (and copied the whole
/// tree at each step).
#[test]
fn long_index_chains_are_refused_not_overflowed() {
    let src = format!(
        "any(http.request.headers[\"a\"]{} eq \"x\")",
        "[*]".repeat(20_000)
    );
    let r = bounded(Duration::from_secs(10), move || {
        compile_expr(&src, &Lists::new()).map(|_| ())
    });
    assert!(
        matches!(&r, Err(e) if matches!(e.kind(), ErrorKind::TooDeep { .. })),
        "{r:?}"
    );
    let src = format!("payload{} eq \"a\"", "[0:1]".repeat(20_000));
    let r = bounded(Duration::from_secs(10), move || {
        compile_expr(&src, &Lists::new()).map(|_| ())
    });
    assert!(matches!(&r, Err(e) if matches!(e.kind(), ErrorKind::TooDeep { .. })));
    // A few indexes are fine.
    assert!(expr("any(http.request.headers[\"a\"][*] eq \"x\")").is_ok());
}

/// The same chain through a rule file: an error or a rule set, never a crash.
#[test]
fn long_chain_in_a_rule_file_loads() {
    let chain = vec!["udp.dstport eq 53"; 5_000].join(" and ");
    let text =
        format!("version: 1\nrules:\n  - id: 1\n    expression: {chain}\n    action: drop\n");
    let set = bounded(Duration::from_secs(30), move || {
        load_str(&text, "fuzz.yaml", Path::new("/nonexistent")).map(|s| s.xdp_entries.len())
    });
    assert_eq!(set.unwrap(), 1);
}

/// `not ip.src in $list` complements the list's prefixes; the walk scanned the whole list at
/// every node: 4,096 IPv6 addresses (the most a negated set may hold) took 100 s in a release
/// build. A rule file of about 100 KB, so not reachable by the fuzzer's 4 KB inputs: found
/// while reviewing what the fuzz targets reach.
#[test]
fn negating_a_large_address_list_is_fast() {
    let items: Vec<String> = (0..4096u32)
        .map(|i| {
            format!(
                "\"2001:db8:{:x}:{:x}::{:x}\"",
                i * 7919 % 65536,
                i,
                (i * 31 + 1) % 65536
            )
        })
        .collect();
    let text = format!(
        "version: 1\nlists:\n  big: {{ kind: ip, items: [{}] }}\nrules:\n  - id: 1\n    expression: not ip.src in $big\n    action: drop\n",
        items.join(", ")
    );
    let r = bounded(Duration::from_secs(60), move || {
        load_str(&text, "big.yaml", Path::new("/nonexistent")).map(|s| s.xdp_entries.len())
    });
    assert!(r.is_ok(), "{:?}", r.map_err(|e| e.kind().clone()));
}

fn seeds(target: &str) -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    assert!(out.len() >= 4, "seeds in {}", dir.display());
    out
}

#[test]
fn expression_seeds_compile() {
    for (path, text) in seeds("parse_expr") {
        // `$ports`, `$office` and `$words` are lists the fuzz target defines.
        if text.contains("in $") {
            assert!(
                matches!(
                    compile_expr(&text, &Lists::new()).map_err(|e| e.kind().clone()),
                    Err(ErrorKind::UnknownList { .. })
                ),
                "{}",
                path.display()
            );
            continue;
        }
        if let Err(e) = expr(&text) {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn rule_file_seeds_load_or_fail_as_intended() {
    for (path, text) in seeds("parse_ruleset") {
        let name = path.file_name().unwrap().to_str().unwrap();
        let r = load_str(&text, name, Path::new("/nonexistent"));
        match name {
            n if n.contains("list-file") => {
                assert!(
                    matches!(r.as_ref().unwrap_err().kind(), RuleErrorKind::Read { .. }),
                    "{name}"
                )
            }
            n if n.contains("error") => assert!(r.is_err(), "{name}"),
            _ => assert!(r.is_ok(), "{name}: {}", r.unwrap_err()),
        }
    }
}
