//! Workloads shared by the benchmarks: a 1,000-rule set, 10,000 deny prefixes and the frames that
//! exercise the clean path, a rule drop and a denylist drop.

pub mod waf;

/// A 64 KiB urlencoded form of ordinary fields (`field0=value+number+0+…&`) and its field
/// count: the body-cost workload of the L7 and CRS benches.
pub fn form_64k() -> (String, usize) {
    let mut form = String::new();
    let mut i = 0;
    while form.len() < 64 * 1024 - 64 {
        form.push_str(&format!(
            "field{i}=value+number+{i}+with+some+ordinary+words&"
        ));
        i += 1;
    }
    (form, i)
}

use etherparse::PacketBuilder;
use rampart_rules::{
    xdp::{flags, one, range, Action, RuleSpec},
    Prefix,
};

/// The rule the "dropped by rule" frame hits: the last of the set, so every rule before it is
/// classified past.
pub const LAST_RULE_ID: u32 = 1_999;
pub const LAST_RULE_PORT: u16 = 10_999;

/// `n` rules mixing ports, prefixes, flags, TTL and length constraints; the last drops UDP to
/// `LAST_RULE_PORT`.
pub fn rule_set(n: u32) -> Vec<RuleSpec> {
    let mut rules: Vec<RuleSpec> = (0..n.saturating_sub(1))
        .map(|i| {
            let mut r = RuleSpec::new(1_000 + i, Action::Drop);
            match i % 4 {
                0 => {
                    r.proto = one(17);
                    r.dport = one(20_000 + i);
                }
                1 => {
                    r.proto = one(6);
                    r.src = Some(vec![Prefix::new(
                        prefix_addr(100, 64 + (i / 256) as u8, (i % 256) as u8),
                        96 + 24,
                    )]);
                    r.dport = one(22);
                }
                2 => {
                    r.proto = one(17);
                    r.sport = one(30_000 + i);
                    r.ttl = range(1, 5);
                }
                _ => {
                    r.tcp_flags = flags(0x12, 0x02);
                    r.ip_len = range(1_200, 65_535);
                    r.dst = Some(vec![Prefix::new(
                        prefix_addr(198, 18, (i % 256) as u8),
                        96 + 24,
                    )]);
                }
            }
            r
        })
        .collect();
    let mut last = RuleSpec::new(LAST_RULE_ID, Action::Drop);
    last.proto = one(17);
    last.dport = one(LAST_RULE_PORT as u32);
    rules.push(last);
    rules
}

fn prefix_addr(a: u8, b: u8, c: u8) -> [u8; 16] {
    rampart_common::addr::v4_mapped([a, b, c, 0])
}

/// `n` distinct /24s: 10.0.0.0/24, 10.0.1.0/24, ...
pub fn deny_prefixes(n: u32) -> Vec<Prefix> {
    (0..n)
        .map(|i| Prefix::new(prefix_addr(10, (i / 256) as u8, (i % 256) as u8), 96 + 24))
        .collect()
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn finish(b: etherparse::PacketBuilderStep<etherparse::TcpHeader>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("writing to a Vec");
    out
}

/// A TCP ACK to 198.51.100.1:443 from `src`.
fn tcp_ack_from(src: [u8; 4]) -> Vec<u8> {
    finish(
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(src, [198, 51, 100, 1], 64)
            .tcp(40_000, 443, 1, 65_535)
            .ack(1),
        b"",
    )
}

/// A TCP ACK from an address no rule or deny entry covers.
pub fn clean_frame() -> Vec<u8> {
    tcp_ack_from([192, 0, 2, 7])
}

/// UDP to `LAST_RULE_PORT`: dropped by the last rule.
pub fn rule_drop_frame() -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([192, 0, 2, 7], [198, 51, 100, 1], 64)
        .udp(40_000, LAST_RULE_PORT);
    let mut out = Vec::new();
    b.write(&mut out, b"").expect("writing to a Vec");
    out
}

/// TCP from inside the 10,000 denied prefixes.
pub fn deny_drop_frame() -> Vec<u8> {
    tcp_ack_from([10, 0, 5, 9])
}
