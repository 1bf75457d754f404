//! `@ipMatch` and `@ipMatchFromFile`: IPv4 and IPv6 addresses and CIDR blocks.

use std::net::IpAddr;
use std::path::Path;

use super::{read_data_files, OperatorError};

/// One network: an address and a prefix length (32 or 128 for a single address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    addr: u128,
    prefix: u8,
    v6: bool,
}

impl Net {
    fn parse(text: &str) -> Result<Net, OperatorError> {
        let bad = || OperatorError::BadArgument(format!("{text:?} is not an IP address or CIDR"));
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| bad())?;
        let (bits, v6, max) = match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), false, 32u8),
            IpAddr::V6(v6) => (u128::from(v6), true, 128u8),
        };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => {
                match p.parse::<u8>() {
                    Ok(p) if p <= max => p,
                    _ => return Err(bad()),
                }
            }
            Some(_) => return Err(bad()),
        };
        Ok(Net {
            addr: bits & mask(prefix, max),
            prefix,
            v6,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (bits, v6, max) = match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), false, 32u8),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // `::ffff:1.2.3.4` is the IPv4 client 1.2.3.4 on a dual-stack socket.
                Some(v4) if !self.v6 => (u128::from(u32::from(v4)), false, 32u8),
                _ => (u128::from(v6), true, 128u8),
            },
        };
        v6 == self.v6 && bits & mask(self.prefix, max) == self.addr
    }
}

/// The netmask of `prefix` bits in an address of `max` bits (kept in the low bits).
fn mask(prefix: u8, max: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let all: u128 = if max >= 128 {
        u128::MAX
    } else {
        (1u128 << max) - 1
    };
    // 1 <= prefix <= max, so host_bits < 128.
    let host_bits = max.saturating_sub(prefix);
    let host = (1u128 << host_bits) - 1;
    all & !host
}

#[derive(Debug)]
pub(super) struct IpSet {
    nets: Vec<Net>,
}

impl IpSet {
    /// `@ipMatch 127.0.0.1,::1 10.0.0.0/8`: comma- and/or space-separated.
    pub(super) fn from_list(argument: &str) -> Result<IpSet, OperatorError> {
        let mut nets = Vec::new();
        for item in argument.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
            nets.push(Net::parse(item)?);
        }
        if nets.is_empty() {
            return Err(OperatorError::BadArgument("no IP address to match".into()));
        }
        Ok(IpSet { nets })
    }

    /// `@ipMatchFromFile a.txt`: one address or CIDR a line.
    pub(super) fn from_files(argument: &str, base_dir: &Path) -> Result<IpSet, OperatorError> {
        let mut nets = Vec::new();
        read_data_files(argument, base_dir, |line| {
            for item in line.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
                nets.push(Net::parse(item)?);
            }
            Ok(())
        })?;
        Ok(IpSet { nets })
    }

    /// True when `input` is a textual IP address (surrounding whitespace ignored) in the set.
    pub(super) fn matches(&self, input: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(input) else {
            return false;
        };
        let Ok(ip) = text.trim().parse::<IpAddr>() else {
            return false;
        };
        self.nets.iter().any(|n| n.contains(ip))
    }
}
