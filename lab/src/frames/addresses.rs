//! Addresses: IPv4 prefixes, and the Ethernet addresses of the veths frames are sent on.

use super::*;

/// An IPv4 prefix (host bits cleared), e.g. `198.18.0.0/15`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    network: u32,
    len: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IPv4 prefix (expected a.b.c.d/len with len at most 32)")]
pub struct PrefixParseError(String);

pub(super) fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

impl Ipv4Prefix {
    /// `None` if `len` is above 32; host bits of `addr` are cleared.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Ipv4Prefix> {
        (len <= 32).then(|| Ipv4Prefix {
            network: u32::from(addr) & mask(len),
            len,
        })
    }

    /// The /32 of one address.
    pub fn host(addr: Ipv4Addr) -> Ipv4Prefix {
        Ipv4Prefix {
            network: u32::from(addr),
            len: 32,
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Number of addresses covered.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.len))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.len) == self.network
    }

    /// A uniformly random address of the prefix.
    pub fn pick(&self, rng: &mut Rng) -> Ipv4Addr {
        Ipv4Addr::from(self.network | (rng.next_u32() & !mask(self.len)))
    }
}

impl FromStr for Ipv4Prefix {
    type Err = PrefixParseError;

    /// `a.b.c.d/len`, or a bare address for its /32.
    fn from_str(s: &str) -> Result<Ipv4Prefix, PrefixParseError> {
        let err = || PrefixParseError(s.to_string());
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().map_err(|_| err())?),
            None => (s, 32),
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| err())?;
        Ipv4Prefix::new(addr, len).ok_or_else(err)
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.len)
    }
}

// ---- Link layer ----

pub type Mac = [u8; 6];

/// The Ethernet addresses of frames sent on one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2 {
    pub src: Mac,
    pub dst: Mac,
}

impl L2 {
    /// Source: `ifname`'s own MAC in `ns`; destination: the neighbour entry for `next_hop` on
    /// `ifname` (`netns::veth` installs a permanent one for the peer's address).
    pub fn resolve(ns: &Netns, ifname: &str, next_hop: Ipv4Addr) -> Result<L2, LabError> {
        Ok(L2 {
            src: link_mac(ns, ifname)?,
            dst: neighbor_mac(ns, ifname, next_hop)?,
        })
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

pub(super) fn no_mac(cmd: String) -> LabError {
    LabError::Command {
        cmd,
        stderr: "no MAC address in the output".into(),
    }
}

/// The MAC address of `ifname` in `ns` (`ip -o link show`).
pub fn link_mac(ns: &Netns, ifname: &str) -> Result<Mac, LabError> {
    let out = ns.ip(&["-o", "link", "show", ifname])?;
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .and_then(parse_mac)
        .ok_or_else(|| no_mac(format!("ip -n {} -o link show {ifname}", ns.name)))
}

/// The link-layer address of neighbour `ip` on `ifname` in `ns` (`ip neigh show`).
pub fn neighbor_mac(ns: &Netns, ifname: &str, ip: Ipv4Addr) -> Result<Mac, LabError> {
    let ip = ip.to_string();
    let out = ns.ip(&["neigh", "show", &ip, "dev", ifname])?;
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .and_then(parse_mac)
        .ok_or_else(|| no_mac(format!("ip -n {} neigh show {ip} dev {ifname}", ns.name)))
}
