//! 100 rule reloads under continuous traffic in namespaces: no allowed packet is lost, and no
//! packet that both the old and the new rule set drop gets through. Traffic and time are bounded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rampart::kernel::AttachMode;
use rampart_common::Reason;
use rampart_lab::{
    netns::{veth, End, Netns},
    traffic::{send_udp, Receiver},
};
use rampart_rules::load_str;
use rampart_testkit::{fresh_dataplane, root_or_skip};

fn set(ports: &str) -> rampart_rules::RuleSet {
    let text = format!("version: 1\nrules:\n  - id: 1\n    expression: udp.dstport in {{{ports}}}\n    action: drop\n");
    load_str(&text, "reload.yaml", std::path::Path::new(".")).unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn hundred_reloads_under_traffic_lose_nothing_and_leak_nothing() {
    if !root_or_skip("hundred_reloads_under_traffic_lose_nothing_and_leak_nothing") {
        return;
    }
    let tag = std::process::id();
    let client = Netns::create(&format!("rr-client-{tag}")).unwrap();
    let edge = Netns::create(&format!("rr-edge-{tag}")).unwrap();
    veth(
        End {
            ns: &client,
            ifname: "c0",
            addr: "10.216.0.2/24",
        },
        End {
            ns: &edge,
            ifname: "e0",
            addr: "10.216.0.1/24",
        },
    )
    .unwrap();
    let mut dp = fresh_dataplane();
    // A and B differ (5001 vs 5002); both drop 5004; neither drops 5003.
    let (a, b) = (set("5001 5004"), set("5002 5004"));
    dp.load_rules(&a.xdp).unwrap();
    edge.enter(|| dp.attach("e0", AttachMode::Native, None))
        .unwrap()
        .unwrap();

    const EACH: u32 = 10_000;
    let allowed = Receiver::start(
        &edge,
        addr("10.216.0.1:5003"),
        EACH,
        Duration::from_secs(30),
    )
    .unwrap();
    let both_drop =
        Receiver::start(&edge, addr("10.216.0.1:5004"), 1, Duration::from_secs(8)).unwrap();
    let before = dp.counters().unwrap();
    let sending = AtomicBool::new(true);
    let started_reloads = AtomicU32::new(0);
    let started = Instant::now();
    let (sent, reloads) = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let mut sent = (0, 0);
            // One batch per reload, sent while that reload runs, so traffic spans all of them.
            for batch in 1..=100u32 {
                let waited = Instant::now();
                while started_reloads.load(Ordering::SeqCst) < batch
                    && waited.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_micros(200));
                }
                sent.0 += send_udp(
                    &client,
                    addr("10.216.0.2:41003"),
                    addr("10.216.0.1:5003"),
                    EACH / 100,
                    32,
                )
                .unwrap();
                sent.1 += send_udp(
                    &client,
                    addr("10.216.0.2:41004"),
                    addr("10.216.0.1:5004"),
                    EACH / 100,
                    32,
                )
                .unwrap();
            }
            sending.store(false, Ordering::SeqCst);
            sent
        });
        let mut reloads = 0;
        let mut generations = Vec::new();
        while reloads < 100 && started.elapsed() < Duration::from_secs(60) {
            let next = if reloads % 2 == 0 { &b } else { &a };
            started_reloads.fetch_add(1, Ordering::SeqCst);
            generations.push(dp.load_rules(&next.xdp).unwrap().generation);
            reloads += 1;
        }
        // Every reload flipped the generation.
        assert!(generations.windows(2).all(|w| w[0] != w[1]));
        (sender.join().unwrap(), reloads)
    });
    let got_allowed = allowed.finish().unwrap();
    let got_dropped = both_drop.finish().unwrap();
    let delta = before.delta(&dp.counters().unwrap());
    println!(
        "reload: {reloads} reloads in {:?} while sending {} + {} datagrams; delivered {got_allowed} allowed, {got_dropped} of the always-dropped",
        started.elapsed(),
        sent.0,
        sent.1
    );
    assert_eq!(reloads, 100);
    assert_eq!(sent, (EACH, EACH));
    assert_eq!(
        got_allowed, EACH,
        "an allowed datagram was lost during a reload"
    );
    assert_eq!(got_dropped, 0, "a datagram both rule sets drop got through");
    assert_eq!(delta.reason(Reason::DropRule).packets, EACH as u64);
    assert_eq!(delta.reason(Reason::PassNoMatch).packets, EACH as u64);
    assert!(!sending.load(Ordering::SeqCst));
}
