//! Why a packet got its verdict. Every packet adds to exactly one verdict reason; a packet that
//! fails to parse adds to its error reason as well, then to the error policy's verdict reason.

/// Index into the `REASON_COUNTERS` per-CPU array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    // Verdicts: pass.
    PassNoMatch = 0,
    PassAllowlist = 1,
    PassRule = 2,
    PassRateLimit = 3,
    PassFragCached = 4,
    PassFragPolicy = 5,
    PassNotIp = 6,
    PassErrorPolicy = 7,
    PassNotConfigured = 8,
    // Verdicts: drop.
    DropDenylist = 9,
    DropRule = 10,
    DropRateLimit = 11,
    DropFragCached = 12,
    DropFragPolicy = 13,
    DropErrorPolicy = 14,
    /// A map update on the packet path failed (fragment verdict or rate bucket not stored).
    EvMapUpdateFailed = 15,
    // Errors (counted in addition to the error policy's verdict).
    ErrTruncEthernet = 16,
    ErrTruncVlan = 17,
    ErrTooManyVlans = 18,
    ErrTruncIpv4 = 19,
    ErrBadIpv4Header = 20,
    ErrTruncIpv6 = 21,
    ErrTruncIpv6Ext = 22,
    ErrTooManyIpv6Ext = 23,
    ErrTruncTcp = 24,
    ErrBadTcpHeader = 25,
    ErrTruncUdp = 26,
    ErrTruncIcmp = 27,
    ErrTinyFragment = 28,
    ErrMapLookup = 29,
    // Events (counted beside the verdict; not errors).
    /// The rule search stopped after `MAX_RULE_CANDIDATES` rules failed their payload check.
    EvCandidateLimit = 30,
    /// A rule matched in log mode (it counted, the search went on).
    EvLogOnly = 31,
    /// Ethertype IPv6 with a version nibble other than 6.
    ErrBadIpv6Header = 32,
    /// A sample was due but the ring buffer was full (userspace too slow): counted, never waited on.
    EvSampleDropped = 33,
    /// A sample was sent to the ring buffer.
    EvSampled = 34,
}

/// Size of the reason counter array (room to grow without an ABI change of its size).
pub const REASON_SLOTS: u32 = 48;

impl Reason {
    pub const ALL: [Reason; 35] = [
        Reason::PassNoMatch,
        Reason::PassAllowlist,
        Reason::PassRule,
        Reason::PassRateLimit,
        Reason::PassFragCached,
        Reason::PassFragPolicy,
        Reason::PassNotIp,
        Reason::PassErrorPolicy,
        Reason::PassNotConfigured,
        Reason::DropDenylist,
        Reason::DropRule,
        Reason::DropRateLimit,
        Reason::DropFragCached,
        Reason::DropFragPolicy,
        Reason::DropErrorPolicy,
        Reason::EvMapUpdateFailed,
        Reason::ErrTruncEthernet,
        Reason::ErrTruncVlan,
        Reason::ErrTooManyVlans,
        Reason::ErrTruncIpv4,
        Reason::ErrBadIpv4Header,
        Reason::ErrTruncIpv6,
        Reason::ErrTruncIpv6Ext,
        Reason::ErrTooManyIpv6Ext,
        Reason::ErrTruncTcp,
        Reason::ErrBadTcpHeader,
        Reason::ErrTruncUdp,
        Reason::ErrTruncIcmp,
        Reason::ErrTinyFragment,
        Reason::ErrMapLookup,
        Reason::EvCandidateLimit,
        Reason::EvLogOnly,
        Reason::ErrBadIpv6Header,
        Reason::EvSampleDropped,
        Reason::EvSampled,
    ];

    /// Stable snake_case name used by the CLI and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::PassNoMatch => "pass_no_match",
            Reason::PassAllowlist => "pass_allowlist",
            Reason::PassRule => "pass_rule",
            Reason::PassRateLimit => "pass_rate_limit",
            Reason::PassFragCached => "pass_frag_cached",
            Reason::PassFragPolicy => "pass_frag_policy",
            Reason::PassNotIp => "pass_not_ip",
            Reason::PassErrorPolicy => "pass_error_policy",
            Reason::PassNotConfigured => "pass_not_configured",
            Reason::DropDenylist => "drop_denylist",
            Reason::DropRule => "drop_rule",
            Reason::DropRateLimit => "drop_rate_limit",
            Reason::DropFragCached => "drop_frag_cached",
            Reason::DropFragPolicy => "drop_frag_policy",
            Reason::DropErrorPolicy => "drop_error_policy",
            Reason::EvMapUpdateFailed => "ev_map_update_failed",
            Reason::ErrTruncEthernet => "err_trunc_ethernet",
            Reason::ErrTruncVlan => "err_trunc_vlan",
            Reason::ErrTooManyVlans => "err_too_many_vlans",
            Reason::ErrTruncIpv4 => "err_trunc_ipv4",
            Reason::ErrBadIpv4Header => "err_bad_ipv4_header",
            Reason::ErrTruncIpv6 => "err_trunc_ipv6",
            Reason::ErrTruncIpv6Ext => "err_trunc_ipv6_ext",
            Reason::ErrTooManyIpv6Ext => "err_too_many_ipv6_ext",
            Reason::ErrTruncTcp => "err_trunc_tcp",
            Reason::ErrBadTcpHeader => "err_bad_tcp_header",
            Reason::ErrTruncUdp => "err_trunc_udp",
            Reason::ErrTruncIcmp => "err_trunc_icmp",
            Reason::ErrTinyFragment => "err_tiny_fragment",
            Reason::ErrMapLookup => "err_map_lookup",
            Reason::EvCandidateLimit => "ev_candidate_limit",
            Reason::EvLogOnly => "ev_log_only",
            Reason::ErrBadIpv6Header => "err_bad_ipv6_header",
            Reason::EvSampleDropped => "ev_sample_dropped",
            Reason::EvSampled => "ev_sampled",
        }
    }

    pub fn from_u32(v: u32) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| *r as u32 == v)
    }

    pub fn is_error(self) -> bool {
        self.name().starts_with("err_")
    }

    pub const fn is_drop(self) -> bool {
        let v = self as u32;
        v >= Reason::DropDenylist as u32 && v <= Reason::DropErrorPolicy as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_fit_and_names_are_unique() {
        for (i, a) in Reason::ALL.iter().enumerate() {
            assert!((*a as u32) < REASON_SLOTS);
            assert_eq!(Reason::from_u32(*a as u32), Some(*a));
            for b in &Reason::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_ne!(*a as u32, *b as u32);
            }
        }
        assert!(Reason::ErrTruncTcp.is_error() && Reason::ErrBadIpv6Header.is_error());
        assert!(!Reason::EvLogOnly.is_error());
        assert!(!Reason::EvMapUpdateFailed.is_error() && !Reason::EvMapUpdateFailed.is_drop());
        assert!(Reason::DropRule.is_drop());
        assert!(!Reason::PassRule.is_drop());
    }
}
