//! Sizes of the kernel tables. Both sides size maps and loops from these.

/// Two rule-table generations: userspace fills the inactive one, then flips `Config::active_gen`.
pub const GENERATIONS: u32 = 2;
/// Rules per generation. One bit each in a [`crate::rules::RuleBitmap`].
pub const MAX_RULES: u32 = 1024;
/// `u64` words in a rule bitmap.
pub const BITMAP_WORDS: usize = (MAX_RULES as usize) / 64;
/// Equivalence classes per classified field and generation (at most `2 * MAX_RULES + 1` are needed).
pub const MAX_CLASSES: u32 = 2560;
/// Class slot of an address field (`SRC`, `DST`) that holds the rules *not* constraining it: when
/// every rule still matching is among them, the trie lookup cannot change the result and is
/// skipped. Compiled classes stay below it.
pub const UNCONSTRAINED_CLASS: u32 = MAX_CLASSES - 1;
/// Stable per-rule counter slots, shared by both generations (a rule keeps its slot across reloads).
pub const MAX_RULE_SLOTS: u32 = 4096;
/// Entries in the class lookup trie (src and dst prefixes of both generations): room for rules
/// over lists of a million prefixes. The trie allocates per entry, so the cap costs nothing unused.
pub const MAX_PREFIX_CLASS_ENTRIES: u32 = 1 << 22;
/// Entries in the allow and deny tries.
pub const MAX_ALLOW_ENTRIES: u32 = 65_536;
pub const MAX_DENY_ENTRIES: u32 = 1_048_576;
/// First-fragment verdicts remembered for later fragments.
pub const MAX_FRAG_ENTRIES: u32 = 65_536;
/// Per-source rate-limit buckets (LRU: the oldest bucket is evicted under spoofed floods).
pub const MAX_RATE_BUCKETS: u32 = 262_144;
/// VLAN tags parsed (802.1ad outer + 802.1Q inner).
pub const MAX_VLAN_DEPTH: usize = 2;
/// IPv6 extension headers followed before giving up.
pub const MAX_IPV6_EXT_HDRS: usize = 6;
/// Rules whose payload check may be tried for one packet before the search stops (counted).
pub const MAX_RULE_CANDIDATES: usize = 8;
/// Bytes a rule may compare at a payload offset.
pub const MAX_PAYLOAD_MATCH: usize = 16;
