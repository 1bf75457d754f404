//! One expression: lex, parse, check, then the host evaluator on a few fixed packets and the XDP
//! lowering. Only panics, timeouts and memory blow-ups are findings.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rampart_common::{
    addr::v4_mapped,
    parsed::{ParsedFields, PF_HAS_L4, PF_IP},
};
use rampart_rules::{
    lang::{compile_expr, eval_bool, sets::ValueSet, ListDef, Lists},
    packet::PacketView,
    xdp::{lower_rule, Action},
    Prefix,
};

/// A few lists so `in $name` reaches every set kind (an unknown name is just an error).
fn lists() -> &'static Lists {
    static LISTS: OnceLock<Lists> = OnceLock::new();
    LISTS.get_or_init(|| {
        let mut l = Lists::new();
        l.insert(
            "ports".into(),
            ListDef::Int(Arc::new(ValueSet::ints(vec![(53, 53), (1000, 2000)]))),
        );
        l.insert(
            "office".into(),
            ListDef::Ip(Arc::new(ValueSet::Ip(
                rampart_rules::lang::sets::IpSet::new(
                    ["198.51.100.0/24", "2001:db8:10::/48"]
                        .iter()
                        .map(|p| p.parse::<Prefix>().unwrap())
                        .collect(),
                ),
            ))),
        );
        l.insert(
            "words".into(),
            ListDef::Bytes(Arc::new(ValueSet::Bytes(
                [b"admin".to_vec(), b"GET".to_vec()].into_iter().collect(),
            ))),
        );
        l
    })
}

/// An IPv4/TCP SYN frame with an HTTP request as payload, and its parse record.
fn tcp_packet() -> (ParsedFields, Vec<u8>) {
    let payload = b"GET /admin?a=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let mut frame = vec![0u8; 14 + 20 + 20];
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    frame[14] = 0x45;
    let ip_len = (20 + 20 + payload.len()) as u16;
    frame[16..18].copy_from_slice(&ip_len.to_be_bytes());
    frame[22] = 64;
    frame[23] = 6;
    frame[26..30].copy_from_slice(&[192, 0, 2, 1]);
    frame[30..34].copy_from_slice(&[198, 51, 100, 7]);
    frame[34..36].copy_from_slice(&40000u16.to_be_bytes());
    frame[36..38].copy_from_slice(&80u16.to_be_bytes());
    frame[46] = 0x50;
    frame[47] = 0x02;
    frame[48..50].copy_from_slice(&64240u16.to_be_bytes());
    frame.extend_from_slice(payload);
    let mut p = ParsedFields {
        ip_version: 4,
        proto: 6,
        ttl: 64,
        tcp_flags: 0x02,
        sport: 40000,
        dport: 80,
        ip_len,
        ip_id: 0,
        l3_offset: 14,
        l4_offset: 34,
        ethertype: 0x0800,
        payload_offset: 54,
        ..Default::default()
    };
    p.flags = PF_IP | PF_HAS_L4;
    p.src = v4_mapped([192, 0, 2, 1]);
    p.dst = v4_mapped([198, 51, 100, 7]);
    (p, frame)
}

/// A VLAN-tagged IPv6/UDP frame whose payload is shorter than most slices.
fn udp_packet() -> (ParsedFields, Vec<u8>) {
    let mut frame = vec![0u8; 18 + 40 + 8];
    frame[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    frame[16..18].copy_from_slice(&0x86ddu16.to_be_bytes());
    frame.extend_from_slice(b"\x00\x01");
    let mut p = ParsedFields {
        ip_version: 6,
        proto: 17,
        ttl: 1,
        vlan_count: 1,
        vlan_ids: [100, 0],
        sport: 53,
        dport: 1234,
        ip_len: 50,
        l3_offset: 18,
        l4_offset: 58,
        ethertype: 0x86dd,
        payload_offset: 66,
        ..Default::default()
    };
    p.flags = PF_IP | PF_HAS_L4;
    p.src = "2001:db8:10::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    p.dst = "2001:db8::2"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    (p, frame)
}

fn packets() -> &'static [(ParsedFields, Vec<u8>)] {
    static PACKETS: OnceLock<Vec<(ParsedFields, Vec<u8>)>> = OnceLock::new();
    PACKETS.get_or_init(|| {
        // The last one is not IP at all (ARP): almost every field is absent.
        let arp = (ParsedFields::default(), vec![0u8; 42]);
        vec![tcp_packet(), udp_packet(), arp]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = compile_expr(text, lists()) else {
        return;
    };
    for (parsed, frame) in packets() {
        let view = PacketView {
            parsed,
            frame: frame.as_slice(),
        };
        let _ = eval_bool(&expr, &view);
    }
    let _ = lower_rule(1, Action::Drop, &expr);
});
