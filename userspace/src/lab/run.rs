//! `rampart lab`: builds the lab, attaches the program, sends legitimate and attack traffic
//! (bounded), and prints what was dropped where.

use std::net::SocketAddr;
use std::time::Duration;

use rampart_common::Reason;
use rampart_rules::xdp::{compile, one, range, Action, RuleSpec};

use super::netns::{add_addr, static_neighbor, veth, End, Netns};
use super::traffic::{send_udp, Receiver};
use crate::kernel::{AttachMode, Dataplane, FilterTables, LoadOptions};

#[derive(Debug, thiserror::Error)]
pub enum LabRunError {
    #[error(transparent)]
    Lab(#[from] super::netns::LabError),
    #[error(transparent)]
    Kernel(#[from] crate::kernel::KernelError),
    #[error("rules: {0}")]
    Rules(#[from] rampart_rules::xdp::CompileError),
    #[error("the lab did not behave: {0}")]
    Check(String),
}

/// What the lab sends; every count is bounded.
#[derive(Clone, Copy, Debug)]
pub struct LabPlan {
    pub legit: u32,
    pub reflection: u32,
    pub denied: u32,
    pub flood: u32,
}

impl Default for LabPlan {
    fn default() -> Self {
        LabPlan {
            legit: 2_000,
            reflection: 5_000,
            denied: 1_000,
            flood: 3_000,
        }
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("lab address literal")
}

/// The lab's rule set: what an operator facing these attacks would load.
fn lab_rules() -> Vec<RuleSpec> {
    let mut reflection = RuleSpec::new(100, Action::Drop);
    reflection.proto = one(17);
    reflection.sport = one(123);
    reflection.ip_len = range(401, 65_535);
    let mut limit = RuleSpec::new(
        101,
        Action::RateLimit {
            packets_per_second: 100,
            burst: 100,
        },
    );
    limit.proto = one(17);
    limit.dport = one(9_000);
    vec![reflection, limit]
}

pub fn run(plan: LabPlan) -> Result<(), LabRunError> {
    println!("lab: creating namespaces rampart-lab-{{client,attacker,edge}}");
    let client = Netns::create("rampart-lab-client")?;
    let attacker = Netns::create("rampart-lab-attacker")?;
    let edge = Netns::create("rampart-lab-edge")?;
    veth(
        End {
            ns: &client,
            ifname: "c0",
            addr: "10.214.1.2/24",
        },
        End {
            ns: &edge,
            ifname: "ec0",
            addr: "10.214.1.1/24",
        },
    )?;
    veth(
        End {
            ns: &attacker,
            ifname: "a0",
            addr: "10.214.2.2/24",
        },
        End {
            ns: &edge,
            ifname: "ea0",
            addr: "10.214.2.1/24",
        },
    )?;
    add_addr(&attacker, "a0", "10.214.2.66/24")?;
    static_neighbor(&edge, "ea0", "10.214.2.66", "02:00:00:00:00:66")?;

    let mut dp = Dataplane::load(&LoadOptions::default())?;
    let report = dp.load_rules(&compile(&lab_rules())?)?;
    dp.deny("10.214.2.66/32".parse().expect("prefix literal"), None)?;
    println!(
        "lab: loaded {} rules (generation {}), denied 10.214.2.66/32",
        report.rules, report.generation
    );
    for iface in ["ec0", "ea0"] {
        let r = edge.enter(|| dp.attach(iface, AttachMode::Auto, None))??;
        match r.fallback {
            Some(why) => println!("lab: {iface}: attached in GENERIC mode (native failed: {why})"),
            None => println!("lab: {iface}: attached in {} mode", r.mode),
        }
    }

    let before = dp.counters()?;
    let legit_rx = Receiver::start(
        &edge,
        sa("10.214.1.1:8080"),
        plan.legit,
        Duration::from_secs(10),
    )?;
    let sink = |port: u16| {
        Receiver::start(
            &edge,
            sa(&format!("10.214.2.1:{port}")),
            u32::MAX,
            Duration::from_secs(3),
        )
    };
    let (ntp_rx, flood_rx) = (sink(4444)?, sink(9000)?);
    let steps: [(&str, &Netns, &str, &str, u32, usize); 4] = [
        (
            "legitimate UDP to :8080",
            &client,
            "10.214.1.2:40000",
            "10.214.1.1:8080",
            plan.legit,
            200,
        ),
        (
            "NTP-style reflection (sport 123, 468 B)",
            &attacker,
            "10.214.2.2:123",
            "10.214.2.1:4444",
            plan.reflection,
            440,
        ),
        (
            "from a denied source",
            &attacker,
            "10.214.2.66:40000",
            "10.214.2.1:4444",
            plan.denied,
            100,
        ),
        (
            "flood on :9000 (rate-limited per source)",
            &attacker,
            "10.214.2.2:40001",
            "10.214.2.1:9000",
            plan.flood,
            64,
        ),
    ];
    for (what, ns, from, to, count, len) in steps {
        let sent = send_udp(ns, sa(from), sa(to), count, len)?;
        let now = before.delta(&dp.counters()?);
        println!(
            "lab: sent {sent:>6} {what:<42} dropped so far {:>6}",
            now.dropped()
        );
    }
    let legit = legit_rx.finish()?;
    let (ntp, flood) = (ntp_rx.finish()?, flood_rx.finish()?);
    let delta = before.delta(&dp.counters()?);

    println!("\nlab report (XDP counters, this run)\n{}", delta.render());
    println!(
        "delivered to sockets on the edge: legitimate {legit}/{}, reflection {ntp}, flood {flood}",
        plan.legit
    );
    let checks = [
        (
            legit == plan.legit,
            format!("legitimate delivered {legit} of {}", plan.legit),
        ),
        (
            delta.reason(Reason::DropRule).packets == plan.reflection as u64,
            "every reflection packet dropped by rule 100".into(),
        ),
        (
            delta.reason(Reason::DropDenylist).packets == plan.denied as u64,
            "every packet from the denied source dropped".into(),
        ),
        (
            delta.reason(Reason::DropRateLimit).packets > 0,
            "the flood was rate-limited".into(),
        ),
        (ntp == 0, "no reflection packet reached a socket".into()),
    ];
    let failed: Vec<String> = checks
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, w)| w.clone())
        .collect();
    // Detach first (the links hold the veths), then delete the namespaces.
    drop(dp);
    drop((client, attacker, edge));
    println!("lab: detached; namespaces removed");
    if !failed.is_empty() {
        return Err(LabRunError::Check(failed.join("; ")));
    }
    println!(
        "lab: OK: {} dropped in XDP, all {legit} legitimate datagrams delivered",
        delta.dropped()
    );
    Ok(())
}
