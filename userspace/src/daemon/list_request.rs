//! Deny/allow edits as the operator types them, checked before anything touches XDP: the same
//! rules for `rampart ctl deny|allow …` (the daemon's control socket) and the standalone
//! `rampart deny|allow add` CLI.
//!
//! - A prefix that covers a large share of the address space (IPv4 shorter than /8, IPv6
//!   shorter than /16, or any IPv6 prefix that holds every IPv4-mapped address such as `::/0`
//!   or `::/64`) needs `--force`: one typo there drops (deny) or waves through (allow) nearly
//!   everything.
//! - A TTL is whole seconds from 1 to [`MAX_TTL_SECS`] (30 days); longer is "until removed",
//!   which is an entry without a TTL.
//! - Extra words are refused rather than ignored.

use std::time::Duration;

use rampart_rules::Prefix;

/// Longest deny TTL: 30 days.
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
/// IPv4 prefixes shorter than this need `--force`.
pub const MIN_V4_LEN: u8 = 8;
/// IPv6 prefixes shorter than this need `--force`.
pub const MIN_V6_LEN: u8 = 16;

/// Which list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    Deny,
    Allow,
}

/// One checked request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListRequest {
    Add {
        list: List,
        prefix: Prefix,
        ttl: Option<Duration>,
    },
    Remove {
        list: List,
        prefix: Prefix,
    },
    List(List),
}

/// Why a prefix is too wide to add without `--force`, if it is.
pub fn too_wide(p: &Prefix) -> Option<String> {
    let all_v4 = Prefix::new(Prefix::from_ip([0, 0, 0, 0].into()).addr, 96);
    let why = if p.is_v4() {
        let len = p.len - 96;
        (len < MIN_V4_LEN).then(|| format!("an IPv4 prefix shorter than /{MIN_V4_LEN}"))
    } else if p.contains(&all_v4) {
        Some("it holds every IPv4 address (as IPv4-mapped IPv6)".into())
    } else {
        (p.len < MIN_V6_LEN).then(|| format!("an IPv6 prefix shorter than /{MIN_V6_LEN}"))
    };
    why.map(|w| format!("refusing {p}: {w}; add --force if you mean it"))
}

/// Checks a TTL in seconds (text as typed).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let secs: u64 = s
        .parse()
        .map_err(|_| format!("TTL `{s}` is not a number of seconds"))?;
    check_ttl(secs).map(Duration::from_secs)
}

pub fn check_ttl(secs: u64) -> Result<u64, String> {
    if (1..=MAX_TTL_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!(
            "TTL {secs} s is not from 1 to {MAX_TTL_SECS} (30 days); omit it for an entry that stays until removed"
        ))
    }
}

/// Parses the words of a control request that starts with `deny` or `allow`:
/// `deny add PREFIX [TTL] [--force]`, `allow add PREFIX [--force]`,
/// `deny|allow remove PREFIX`, `deny|allow list`.
pub fn parse(words: &[&str]) -> Result<ListRequest, String> {
    let (list, rest) = match words {
        ["deny", rest @ ..] => (List::Deny, rest),
        ["allow", rest @ ..] => (List::Allow, rest),
        _ => return Err(format!("not a deny/allow request: `{}`", words.join(" "))),
    };
    let name = match list {
        List::Deny => "deny",
        List::Allow => "allow",
    };
    let prefix = |w: &str| -> Result<Prefix, String> { w.parse().map_err(|e| format!("{e}")) };
    let extra = |w: &[&str]| format!("{name}: unexpected `{}`", w.join(" "));
    match rest {
        ["add", args @ ..] => {
            let force = args.contains(&"--force");
            let args: Vec<&str> = args.iter().copied().filter(|a| *a != "--force").collect();
            let (p, ttl) = match (list, args.as_slice()) {
                (_, []) => return Err(format!("{name} add: missing prefix")),
                (_, [p]) => (prefix(p)?, None),
                (List::Deny, [p, ttl]) => (prefix(p)?, Some(parse_ttl(ttl)?)),
                (List::Deny, [_, _, more @ ..]) | (List::Allow, [_, more @ ..]) => {
                    return Err(extra(more))
                }
            };
            if !force {
                if let Some(why) = too_wide(&p) {
                    return Err(why);
                }
            }
            Ok(ListRequest::Add {
                list,
                prefix: p,
                ttl,
            })
        }
        ["remove", p] => Ok(ListRequest::Remove {
            list,
            prefix: prefix(p)?,
        }),
        ["remove"] => Err(format!("{name} remove: missing prefix")),
        ["remove", _, more @ ..] => Err(extra(more)),
        ["list"] => Ok(ListRequest::List(list)),
        ["list", more @ ..] => Err(extra(more)),
        _ => Err(format!(
            "unknown request `{}` ({name} add PREFIX{} [--force], {name} remove PREFIX, {name} list)",
            words.join(" "),
            if list == List::Deny { " [TTL]" } else { "" }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn err(line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        parse(&words).expect_err(line)
    }

    fn ok(line: &str) -> ListRequest {
        let words: Vec<&str> = line.split_whitespace().collect();
        parse(&words).expect(line)
    }

    #[test]
    fn catch_all_and_very_short_prefixes_need_force() {
        for (line, shown) in [
            (
                "deny add 0.0.0.0/0",
                "refusing 0.0.0.0/0: an IPv4 prefix shorter than /8",
            ),
            ("deny add 128.0.0.0/1", "refusing 128.0.0.0/1"),
            ("deny add 10.0.0.0/7", "refusing 10.0.0.0/7"),
            (
                "deny add ::/0",
                "refusing ::/0: it holds every IPv4 address",
            ),
            (
                "deny add ::/64",
                "refusing ::/64: it holds every IPv4 address",
            ),
            ("deny add ::ffff:0.0.0.0/96", "refusing 0.0.0.0/0"),
            (
                "deny add 2000::/3",
                "refusing 2000::/3: an IPv6 prefix shorter than /16",
            ),
            ("allow add 0.0.0.0/0", "refusing 0.0.0.0/0"),
        ] {
            let e = err(line);
            assert!(
                e.contains(shown) && e.ends_with("add --force if you mean it"),
                "{line}: {e}"
            );
        }
        assert_eq!(
            ok("deny add 0.0.0.0/0 --force"),
            ListRequest::Add {
                list: List::Deny,
                prefix: p("0.0.0.0/0"),
                ttl: None
            }
        );
        assert_eq!(
            ok("deny add --force ::/0 60"),
            ListRequest::Add {
                list: List::Deny,
                prefix: Prefix::ANY,
                ttl: Some(Duration::from_secs(60))
            }
        );
        // The thresholds themselves pass.
        assert!(matches!(ok("deny add 10.0.0.0/8"), ListRequest::Add { .. }));
        assert!(matches!(ok("deny add 2001::/16"), ListRequest::Add { .. }));
        assert!(matches!(ok("allow add 192.0.2.7"), ListRequest::Add { .. }));
    }

    #[test]
    fn ttls_are_bounded() {
        assert_eq!(
            err("deny add 192.0.2.0/24 0"),
            "TTL 0 s is not from 1 to 2592000 (30 days); omit it for an entry that stays until removed"
        );
        assert!(err("deny add 192.0.2.0/24 2592001").starts_with("TTL 2592001 s is not from 1"));
        assert_eq!(
            err("deny add 192.0.2.0/24 18446744073709551615"),
            "TTL 18446744073709551615 s is not from 1 to 2592000 (30 days); omit it for an entry that stays until removed"
        );
        assert_eq!(
            err("deny add 192.0.2.0/24 18446744073709551616"),
            "TTL `18446744073709551616` is not a number of seconds"
        );
        assert_eq!(
            err("deny add 192.0.2.0/24 -5"),
            "TTL `-5` is not a number of seconds"
        );
        assert_eq!(
            ok("deny add 192.0.2.0/24 2592000"),
            ListRequest::Add {
                list: List::Deny,
                prefix: p("192.0.2.0/24"),
                ttl: Some(Duration::from_secs(MAX_TTL_SECS))
            }
        );
    }

    #[test]
    fn extra_words_are_refused() {
        assert_eq!(
            err("deny add 198.51.100.0/24 60 junk extra"),
            "deny: unexpected `junk extra`"
        );
        assert_eq!(
            err("allow add 198.51.100.0/24 60"),
            "allow: unexpected `60`"
        );
        assert_eq!(err("deny remove 198.51.100.0/24 x"), "deny: unexpected `x`");
        assert_eq!(err("allow list all"), "allow: unexpected `all`");
        assert_eq!(err("deny add"), "deny add: missing prefix");
        assert_eq!(err("deny add --force"), "deny add: missing prefix");
        assert_eq!(err("deny remove"), "deny remove: missing prefix");
        assert!(err("deny frobnicate").starts_with("unknown request `deny frobnicate`"));
        assert!(err("deny add 10.0.0.1/8").contains("did you mean 10.0.0.0/8"));
        assert_eq!(ok("deny list"), ListRequest::List(List::Deny));
        assert_eq!(
            ok("allow remove 0.0.0.0/0"),
            ListRequest::Remove {
                list: List::Allow,
                prefix: p("0.0.0.0/0")
            }
        );
    }
}
