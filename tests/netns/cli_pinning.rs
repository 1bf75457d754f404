//! The operator's workflow with the real CLI: attach pins the link and the maps, protection stays
//! while no rampart process runs, a second attach reuses the pinned state, detach and unpin clean
//! up. Traffic flows only between two namespaces made here, bounded in count and time.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rampart::kernel::Dataplane;
use rampart_common::Reason;
use rampart_lab::{
    netns::{veth, End, Netns},
    traffic::{send_udp, Receiver},
};
use rampart_testkit::{rampart_cli, root_or_skip};

/// Sends 50 datagrams; returns (delivered, DropDenylist delta, packets counted by the program).
fn cli(pin: &Path, args: &[&str]) -> String {
    let (ok, text) = rampart_cli(pin, args);
    assert!(ok, "rampart {args:?} failed: {text}");
    text
}

fn probe(client: &Netns, edge: &Netns, pin: &Path, port: u16) -> (u32, u64, u64) {
    let dp = Dataplane::open_pinned(pin).expect("pinned maps");
    let before = dp.counters().unwrap();
    let to: SocketAddr = format!("10.215.0.1:{port}").parse().unwrap();
    let rx = Receiver::start(edge, to, 50, Duration::from_secs(2)).unwrap();
    let from: SocketAddr = format!("10.215.0.2:{port}").parse().unwrap();
    assert_eq!(send_udp(client, from, to, 50, 32).unwrap(), 50);
    let got = rx.finish().unwrap();
    let d = before.delta(&dp.counters().unwrap());
    (got, d.reason(Reason::DropDenylist).packets, d.packets())
}

#[test]
fn attach_pins_survive_the_process_and_detach_cleans_up() {
    if !root_or_skip("attach_pins_survive_the_process_and_detach_cleans_up") {
        return;
    }
    let tag = std::process::id();
    let client = Netns::create(&format!("rp-client-{tag}")).unwrap();
    let edge = Netns::create(&format!("rp-edge-{tag}")).unwrap();
    veth(
        End {
            ns: &client,
            ifname: "c0",
            addr: "10.215.0.2/24",
        },
        End {
            ns: &edge,
            ifname: "e0",
            addr: "10.215.0.1/24",
        },
    )
    .unwrap();
    let pin = std::path::PathBuf::from(format!("/sys/fs/bpf/rampart-test-{tag}"));
    let ns = edge.name.as_str();

    let out = cli(
        &pin,
        &["--netns", ns, "attach", "--iface", "e0", "--mode", "native"],
    );
    assert!(out.contains("e0: attached in native mode"), "{out}");
    // No rampart process runs now; the pinned link keeps the program attached.
    assert_eq!(probe(&client, &edge, &pin, 7001), (50, 0, 50));

    cli(&pin, &["deny", "add", "10.215.0.2/32", "--ttl", "600"]);
    assert!(cli(&pin, &["deny", "list"]).contains("10.215.0.2/32  expires in"));
    assert_eq!(probe(&client, &edge, &pin, 7002), (0, 50, 50));
    assert!(cli(&pin, &["stats"]).contains("drop_denylist"));

    // A second attach (a restart) is refused while attached; after a detach, attaching again
    // reuses the pinned maps, so the deny entry is still in force.
    cli(&pin, &["--netns", ns, "detach", "--iface", "e0"]);
    assert_eq!(
        probe(&client, &edge, &pin, 7003),
        (50, 0, 0),
        "detached: nothing counted"
    );
    cli(
        &pin,
        &["--netns", ns, "attach", "--iface", "e0", "--mode", "native"],
    );
    assert_eq!(
        probe(&client, &edge, &pin, 7004),
        (0, 50, 50),
        "deny entry survived the restart"
    );

    cli(&pin, &["deny", "remove", "10.215.0.2/32"]);
    assert_eq!(probe(&client, &edge, &pin, 7005), (50, 0, 50));
    cli(&pin, &["--netns", ns, "detach", "--iface", "e0"]);
    cli(&pin, &["unpin"]);
    assert!(!pin.exists());
}
