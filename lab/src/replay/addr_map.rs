//! The destination map: capture networks onto lab networks, the main victim onto the lab's.

use super::*;

// ---- Destination map ----

/// Lab addresses the capture's victims land on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabTargets {
    /// The capture's main IPv4 victim becomes this address, its /24 this address's /24.
    pub victim_v4: Ipv4Addr,
    /// The capture's main IPv6 victim becomes this address, its /64 this address's /64.
    pub victim_v6: Ipv6Addr,
}

/// One family's map: networks of `width - host_bits` bits; host bits XORed with `delta`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NetMap {
    pub(super) width: u32,
    pub(super) host_bits: u32,
    pub(super) orig_victim: u128,
    pub(super) lab_victim: u128,
    /// Original network → lab network (the victim's first).
    pub(super) nets: HashMap<u128, u128>,
    /// Networks beyond [`MAX_OTHER_NETS`] folded onto the last lab network.
    pub(super) folded: usize,
}

impl NetMap {
    /// `dsts`: the mappable destinations in capture order.
    pub(super) fn learn(
        width: u32,
        host_bits: u32,
        lab_victim: u128,
        dsts: &[u128],
    ) -> Option<NetMap> {
        let mut counts: HashMap<u128, (u64, usize)> = HashMap::new();
        for (i, d) in dsts.iter().enumerate() {
            counts.entry(*d).or_insert((0, i)).0 += 1;
        }
        let (&orig_victim, _) = counts
            .iter()
            .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))?;
        let mut m = NetMap {
            width,
            host_bits,
            orig_victim,
            lab_victim,
            nets: HashMap::new(),
            folded: 0,
        };
        let lab_net = m.net(lab_victim);
        m.nets.insert(m.net(orig_victim), lab_net);
        for d in dsts {
            let net = m.net(*d);
            if m.nets.contains_key(&net) {
                continue;
            }
            let k = m.nets.len() as u128;
            if k > MAX_OTHER_NETS {
                m.folded += 1;
            }
            let lab = lab_net.wrapping_add(k.min(MAX_OTHER_NETS) << host_bits) & m.all();
            m.nets.insert(net, lab);
        }
        Some(m)
    }

    pub(super) fn all(&self) -> u128 {
        if self.width == 128 {
            u128::MAX
        } else {
            (1u128 << self.width) - 1
        }
    }

    pub(super) fn host_mask(&self) -> u128 {
        (1u128 << self.host_bits) - 1
    }

    pub(super) fn net(&self, a: u128) -> u128 {
        a & !self.host_mask() & self.all()
    }

    pub(super) fn map(&self, a: u128) -> u128 {
        let lab_net = self
            .nets
            .get(&self.net(a))
            .copied()
            .unwrap_or_else(|| self.net(self.lab_victim));
        let delta = (self.orig_victim ^ self.lab_victim) & self.host_mask();
        lab_net | ((a ^ delta) & self.host_mask())
    }
}

/// Where each destination of one capture goes in the lab (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrMap {
    pub(super) v4: Option<NetMap>,
    pub(super) v6: Option<NetMap>,
}

impl AddrMap {
    /// Learns the victims and networks of `capture` (Ethernet frames).
    pub fn learn(capture: &[Vec<u8>], targets: LabTargets) -> AddrMap {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for f in capture.iter().filter(|f| f.len() >= ETH_HLEN) {
            if let (L3::Ip(ip), _) = locate(f) {
                match dst_of(f, ip) {
                    Dst::V4(a) if mappable_v4(a) => v4.push(u128::from(u32::from(a))),
                    Dst::V6(a) if mappable_v6(a) => v6.push(u128::from(a)),
                    _ => {}
                }
            }
        }
        AddrMap {
            v4: NetMap::learn(
                32,
                32 - NET_BITS_V4,
                u128::from(u32::from(targets.victim_v4)),
                &v4,
            ),
            v6: NetMap::learn(128, 128 - NET_BITS_V6, u128::from(targets.victim_v6), &v6),
        }
    }

    /// The lab address of a captured IPv4 destination (itself when not mapped).
    pub fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        match &self.v4 {
            Some(m) if mappable_v4(a) => Ipv4Addr::from(m.map(u128::from(u32::from(a))) as u32),
            _ => a,
        }
    }

    /// The lab address of a captured IPv6 destination (itself when not mapped).
    pub fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        match &self.v6 {
            Some(m) if mappable_v6(a) => Ipv6Addr::from(m.map(u128::from(a))),
            _ => a,
        }
    }

    /// The capture's main IPv4 victim and its lab address.
    pub fn victim_v4(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        self.v4.as_ref().map(|m| {
            (
                Ipv4Addr::from(m.orig_victim as u32),
                Ipv4Addr::from(m.lab_victim as u32),
            )
        })
    }

    /// The capture's main IPv6 victim and its lab address.
    pub fn victim_v6(&self) -> Option<(Ipv6Addr, Ipv6Addr)> {
        self.v6
            .as_ref()
            .map(|m| (Ipv6Addr::from(m.orig_victim), Ipv6Addr::from(m.lab_victim)))
    }
}

impl fmt::Display for AddrMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let others = |m: &NetMap| {
            let folded = if m.folded > 0 {
                format!(", {} more folded onto the last", m.folded)
            } else {
                String::new()
            };
            format!("{} other networks{folded}", m.nets.len() - 1 - m.folded)
        };
        let mut parts = Vec::new();
        if let Some(m) = &self.v4 {
            let (o, l) = (
                Ipv4Addr::from(m.orig_victim as u32),
                Ipv4Addr::from(m.lab_victim as u32),
            );
            let (on, ln) = (
                Ipv4Addr::from(m.net(m.orig_victim) as u32),
                Ipv4Addr::from(m.net(m.lab_victim) as u32),
            );
            parts.push(format!(
                "IPv4 victim {o} -> {l} ({on}/{NET_BITS_V4} -> {ln}/{NET_BITS_V4}, {})",
                others(m)
            ));
        }
        if let Some(m) = &self.v6 {
            let (o, l) = (Ipv6Addr::from(m.orig_victim), Ipv6Addr::from(m.lab_victim));
            let (on, ln) = (
                Ipv6Addr::from(m.net(m.orig_victim)),
                Ipv6Addr::from(m.net(m.lab_victim)),
            );
            parts.push(format!(
                "IPv6 victim {o} -> {l} ({on}/{NET_BITS_V6} -> {ln}/{NET_BITS_V6}, {})",
                others(m)
            ));
        }
        if parts.is_empty() {
            f.write_str("no unicast IP destination")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}
