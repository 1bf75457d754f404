//! IPv4/IPv6 prefixes in the 16-byte form the kernel tries use (IPv4 as IPv4-mapped IPv6).

use core::fmt;
use core::str::FromStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rampart_common::addr::{as_v4, v4_mapped, Addr16, V4_MAPPED_PREFIX_BITS};

/// A prefix: `addr` has every bit past `len` cleared; `len` counts IPv6 bits (96 + n for IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: Addr16,
    pub len: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrefixError {
    #[error("`{input}` is not an IPv4 or IPv6 address")]
    BadAddress { input: String },
    #[error("`{input}`: prefix length `{len}` is not a number from 0 to {max}")]
    BadLength { input: String, len: String, max: u8 },
    #[error("`{input}` has bits set past its prefix length (did you mean {suggestion}?)")]
    HostBitsSet { input: String, suggestion: String },
}

impl Prefix {
    /// Every address of both families.
    pub const ANY: Prefix = Prefix {
        addr: [0; 16],
        len: 0,
    };

    pub fn new(addr: Addr16, len: u8) -> Prefix {
        Prefix {
            addr: mask(addr, len),
            len: len.min(128),
        }
    }

    pub fn from_ip(ip: IpAddr) -> Prefix {
        match ip {
            IpAddr::V4(v4) => Prefix {
                addr: v4_mapped(v4.octets()),
                len: 128,
            },
            IpAddr::V6(v6) => Prefix {
                addr: v6.octets(),
                len: 128,
            },
        }
    }

    pub fn is_v4(&self) -> bool {
        self.len >= V4_MAPPED_PREFIX_BITS as u8 && as_v4(&self.addr).is_some()
    }

    /// True when every address of `other` is inside `self`.
    pub fn contains(&self, other: &Prefix) -> bool {
        self.len <= other.len && mask(other.addr, self.len) == self.addr
    }

    pub fn contains_addr(&self, addr: &Addr16) -> bool {
        mask(*addr, self.len) == self.addr
    }
}

fn mask(mut addr: Addr16, len: u8) -> Addr16 {
    let len = len.min(128) as usize;
    for (i, b) in addr.iter_mut().enumerate() {
        let bits = len.saturating_sub(i * 8).min(8);
        *b &= if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
    }
    addr
}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// `a.b.c.d`, `a.b.c.d/n`, `x::y`, `x::y/n`. Host bits past the length are refused, so a
    /// typo such as `10.0.0.1/8` is caught instead of silently widened.
    fn from_str(input: &str) -> Result<Prefix, PrefixError> {
        let s = input.trim();
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| PrefixError::BadAddress {
            input: input.to_string(),
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(PrefixError::BadLength {
                        input: input.to_string(),
                        len: l.to_string(),
                        max,
                    })
                }
            },
        };
        let full = Prefix::from_ip(ip);
        let bits = if ip.is_ipv4() {
            V4_MAPPED_PREFIX_BITS as u8 + len
        } else {
            len
        };
        let p = Prefix::new(full.addr, bits);
        if p.addr != full.addr {
            let suggestion = p.to_string();
            return Err(PrefixError::HostBitsSet {
                input: input.to_string(),
                suggestion,
            });
        }
        Ok(p)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_v4() {
            let v4 = as_v4(&self.addr).unwrap_or_default();
            write!(
                f,
                "{}/{}",
                Ipv4Addr::from(v4),
                self.len - V4_MAPPED_PREFIX_BITS as u8
            )
        } else {
            write!(f, "{}/{}", Ipv6Addr::from(self.addr), self.len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_families_and_round_trips() {
        for s in [
            "198.51.100.0/24",
            "10.0.0.1/32",
            "2001:db8::/32",
            "::/0",
            "0.0.0.0/0",
        ] {
            let p: Prefix = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        let p: Prefix = "192.0.2.7".parse().unwrap();
        assert_eq!(p.len, 128);
        assert!(p.is_v4());
    }

    #[test]
    fn refuses_bad_input_with_a_reason() {
        assert!(matches!(
            "10.0.0.300/8".parse::<Prefix>(),
            Err(PrefixError::BadAddress { .. })
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<Prefix>(),
            Err(PrefixError::BadLength { .. })
        ));
        assert!(matches!(
            "2001:db8::/129".parse::<Prefix>(),
            Err(PrefixError::BadLength { .. })
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<Prefix>(),
            Err(PrefixError::BadLength { .. })
        ));
        let e = "10.0.0.1/8".parse::<Prefix>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`10.0.0.1/8` has bits set past its prefix length (did you mean 10.0.0.0/8?)"
        );
    }

    #[test]
    fn containment() {
        let a: Prefix = "10.0.0.0/8".parse().unwrap();
        let b: Prefix = "10.1.0.0/16".parse().unwrap();
        assert!(a.contains(&b) && !b.contains(&a));
        assert!(Prefix::ANY.contains(&a));
        let v4_all: Prefix = "0.0.0.0/0".parse().unwrap();
        let v6: Prefix = "2001:db8::/32".parse().unwrap();
        assert!(!v4_all.contains(&v6));
    }
}
