//! `rampart rules load|watch` against a running (pinned) instance: a good file swaps the rule set,
//! a bad one is refused with its error and leaves the running rules untouched; `watch` reloads on
//! change and on SIGHUP. No traffic: the checks read the pinned maps.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rampart::kernel::Dataplane;
use rampart_lab::netns::{veth, End, Netns};
use rampart_testkit::{rampart_bin, rampart_cli as cli, root_or_skip};

fn rules_file(path: &Path, port: u16) {
    std::fs::write(path, format!("version: 1\nrules:\n  - id: {port}\n    expression: udp.dstport eq {port}\n    action: drop\n")).unwrap();
}

/// (active generation, rule ids of the active generation)
fn active(pin: &Path) -> (u32, Vec<u32>) {
    let dp = Dataplane::open_pinned(pin).unwrap();
    let ids = dp
        .counters()
        .unwrap()
        .rules
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    (dp.config().unwrap().active_gen, ids)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn load_and_watch_swap_good_files_and_refuse_bad_ones() {
    if !root_or_skip("load_and_watch_swap_good_files_and_refuse_bad_ones") {
        return;
    }
    let tag = std::process::id();
    let a = Netns::create(&format!("rc-a-{tag}")).unwrap();
    let edge = Netns::create(&format!("rc-edge-{tag}")).unwrap();
    veth(
        End {
            ns: &a,
            ifname: "a0",
            addr: "10.217.0.2/24",
        },
        End {
            ns: &edge,
            ifname: "e0",
            addr: "10.217.0.1/24",
        },
    )
    .unwrap();
    let pin = PathBuf::from(format!("/sys/fs/bpf/rampart-rules-test-{tag}"));
    let dir = std::env::temp_dir().join(format!("rampart-rules-cli-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.yaml");
    assert!(
        cli(
            &pin,
            &["--netns", &edge.name, "attach", "--iface", "e0", "--mode", "native"]
        )
        .0
    );

    rules_file(&file, 1001);
    let (ok, out) = cli(&pin, &["rules", "load", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (g1, ids) = active(&pin);
    assert_eq!(ids, vec![1001]);

    // A bad file: refused with file:line:column, nothing in the kernel changes.
    std::fs::write(
        &file,
        "version: 1\nrules:\n  - id: 5\n    expression: udp.dstprot eq 5\n    action: drop\n",
    )
    .unwrap();
    let (ok, out) = cli(&pin, &["rules", "load", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.contains("rules.yaml:4:17: error: unknown field `udp.dstprot`"),
        "{out}"
    );
    assert_eq!(
        active(&pin),
        (g1, vec![1001]),
        "a refused file changed the running rules"
    );

    // `watch`: starts from the good file, reloads on change and on SIGHUP, refuses a bad edit.
    rules_file(&file, 2002);
    let mut watch = Command::new(rampart_bin())
        .arg("--pin-dir")
        .arg(&pin)
        .args(["rules", "watch", file.to_str().unwrap(), "--poll-ms", "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first load", || active(&pin).1 == vec![2002]);
    std::thread::sleep(Duration::from_millis(1100)); // mtime granularity: make the next edit visible
    rules_file(&file, 3003);
    wait_for("the reload on change", || active(&pin).1 == vec![3003]);
    let before_bad = active(&pin);
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&file, "version: 1\nrules: [\n").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        active(&pin),
        before_bad,
        "a bad edit replaced the running rules"
    );
    rules_file(&file, 4004);
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGHUP) };
    wait_for("the reload on SIGHUP", || active(&pin).1 == vec![4004]);
    // SAFETY: as above.
    unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
    let status = watch.wait().unwrap();
    let mut err = String::new();
    watch
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "watch exited with {status}: {err}");
    assert!(
        err.contains("reload refused, the running rules stay"),
        "{err}"
    );

    assert!(cli(&pin, &["--netns", &edge.name, "detach", "--iface", "e0"]).0);
    assert!(cli(&pin, &["unpin"]).0);
    std::fs::remove_dir_all(&dir).unwrap();
}
