//! Tier (c): end to end on veth pairs in namespaces of our own, native XDP, real traffic. Every
//! sender is bounded in count, every receiver in time; nothing leaves the namespaces.

use std::net::SocketAddr;
use std::time::Duration;

use rampart::kernel::AttachMode;
use rampart_common::Reason;
use rampart_lab::{
    netns::{veth, End, Netns},
    traffic::{send_udp, Receiver},
};
use rampart_rules::xdp::{compile, one, Action, RuleSpec};
use rampart_testkit::{fresh_dataplane, root_or_skip};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn native_xdp_drops_and_passes_real_traffic() {
    if !root_or_skip("native_xdp_drops_and_passes_real_traffic") {
        return;
    }
    let tag = std::process::id();
    let client = Netns::create(&format!("rt-client-{tag}")).unwrap();
    let edge = Netns::create(&format!("rt-edge-{tag}")).unwrap();
    veth(
        End {
            ns: &client,
            ifname: "c0",
            addr: "10.213.0.2/24",
        },
        End {
            ns: &edge,
            ifname: "e0",
            addr: "10.213.0.1/24",
        },
    )
    .unwrap();

    let mut dp = fresh_dataplane();
    let mut drop_dns = RuleSpec::new(7, Action::Drop);
    drop_dns.proto = one(17);
    drop_dns.dport = one(5353);
    dp.load_rules(&compile(&[drop_dns]).unwrap()).unwrap();
    let report = edge
        .enter(|| dp.attach("e0", AttachMode::Native, None))
        .unwrap()
        .unwrap();
    assert_eq!(
        report.mode, "native",
        "veth supports native XDP on this kernel"
    );
    assert_eq!(report.fallback, None);

    let before = dp.counters().unwrap();
    // 300 datagrams the rule drops, 200 it passes; the receiver sees only the passed ones.
    let rx_drop = Receiver::start(
        &edge,
        addr("10.213.0.1:5353"),
        1,
        Duration::from_millis(800),
    )
    .unwrap();
    let rx_pass =
        Receiver::start(&edge, addr("10.213.0.1:8080"), 200, Duration::from_secs(5)).unwrap();
    let sent_drop = send_udp(
        &client,
        addr("10.213.0.2:40001"),
        addr("10.213.0.1:5353"),
        300,
        64,
    )
    .unwrap();
    let sent_pass = send_udp(
        &client,
        addr("10.213.0.2:40002"),
        addr("10.213.0.1:8080"),
        200,
        64,
    )
    .unwrap();
    assert_eq!((sent_drop, sent_pass), (300, 200));
    let got_pass = rx_pass.finish().unwrap();
    let got_drop = rx_drop.finish().unwrap();
    let delta = before.delta(&dp.counters().unwrap());

    assert_eq!(got_drop, 0, "no dropped datagram reached the socket");
    assert_eq!(got_pass, 200, "every allowed datagram arrived");
    assert_eq!(delta.reason(Reason::DropRule).packets, 300);
    assert_eq!(delta.rule(7).unwrap().dropped.packets, 300);
    assert_eq!(
        delta.reason(Reason::PassNoMatch).packets,
        200,
        "only our traffic crossed the veth"
    );

    // The denylist drops everything from the client, whatever the port.
    dp.deny("10.213.0.2/32".parse().unwrap(), None).unwrap();
    let before = dp.counters().unwrap();
    let rx = Receiver::start(
        &edge,
        addr("10.213.0.1:8080"),
        1,
        Duration::from_millis(800),
    )
    .unwrap();
    assert_eq!(
        send_udp(
            &client,
            addr("10.213.0.2:40003"),
            addr("10.213.0.1:8080"),
            100,
            64
        )
        .unwrap(),
        100
    );
    assert_eq!(rx.finish().unwrap(), 0);
    let delta = before.delta(&dp.counters().unwrap());
    assert_eq!(delta.reason(Reason::DropDenylist).packets, 100);
    println!(
        "e2e: 300 dropped by rule 7, 200 delivered, 100 dropped by the denylist; counters agree"
    );
}
