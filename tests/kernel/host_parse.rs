//! The host parser (`rampart_rules::packet::parse_frame`, used by `rules test --pcap` and the
//! detector) must produce the kernel's parse record and error reason, packet for packet, on the
//! tcpdump corpus and on the fixture frames' malformed shapes.

use rampart_common::{config::FLAG_DEBUG_PARSE, Reason};
use rampart_rules::packet::parse_frame;
use rampart_testkit::captures::{read_capture, ReadError};
use rampart_testkit::{corpora_dir, fresh_dataplane, pin_to_cpu0, root_or_skip};

#[test]
fn host_parser_agrees_with_the_kernel_on_every_capture_packet() {
    if !root_or_skip("host_parser_agrees_with_the_kernel_on_every_capture_packet") {
        return;
    }
    pin_to_cpu0();
    let mut dp = fresh_dataplane();
    dp.update_config(|c| c.flags |= FLAG_DEBUG_PARSE).unwrap();
    let dir = corpora_dir().join("pcaps-tcpdump");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    let (mut compared, mut problems) = (0, Vec::new());
    for path in names.iter().filter(|p| {
        matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("pcap" | "pcapng")
        )
    }) {
        let cap = match read_capture(path) {
            Ok(c) => c,
            Err(ReadError::Unsupported(_)) => continue,
            Err(ReadError::Broken(why)) => panic!("{}: {why}", path.display()),
        };
        for (i, frame) in cap.frames.iter().enumerate() {
            // The program sees at most the linear area of a test-run frame; compare on that.
            let frame = &frame[..frame.len().min(3520)];
            dp.clear_parse_debug().unwrap();
            let before = dp.counters().unwrap();
            if dp.test_run(frame, 1).is_err() {
                continue; // shorter than Ethernet: the kernel refuses the run
            }
            let delta = before.delta(&dp.counters().unwrap());
            let kernel_err: Option<Reason> = delta
                .reasons
                .iter()
                .find(|(r, c)| r.is_error() && c.packets > 0)
                .map(|(r, _)| *r);
            let kernel = dp.parse_debug(0).unwrap();
            let (host, host_err) = parse_frame(frame);
            compared += 1;
            if host != kernel || host_err != kernel_err {
                problems.push(format!(
                    "{}#{i}: kernel {kernel_err:?} {kernel:?}\n  host {host_err:?} {host:?}",
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    println!(
        "host parse: {compared} capture packets compared, {} differ",
        problems.len()
    );
    assert!(
        compared > 700,
        "the corpus was not read ({compared} packets)"
    );
    assert!(
        problems.is_empty(),
        "{}",
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
