//! The one config record (array map `CONFIG`, index 0) and per-generation rule-table facts.

use crate::{ABI_VERSION, CONFIG_MAGIC};

/// Verdict when parsing fails or a map is missing: pass (fail-open, the default) or drop.
pub const POLICY_PASS: u32 = 0;
pub const POLICY_DROP: u32 = 1;

/// `Config::flags`: write every parse into the `PARSE_DEBUG` map (tests compare it with etherparse).
pub const FLAG_DEBUG_PARSE: u32 = 1 << 0;

/// Global settings, read once per packet. Userspace writes the whole record; the kernel reads
/// `active_gen` once, so a packet sees one rule-table generation from start to end.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// [`CONFIG_MAGIC`]: until userspace writes it the program passes everything (counted).
    pub magic: u32,
    /// [`ABI_VERSION`] of the userspace that wrote the record.
    pub abi_version: u32,
    /// The rule-table generation packets use (0 or 1).
    pub active_gen: u32,
    /// [`POLICY_PASS`] or [`POLICY_DROP`] for packets that fail to parse.
    pub error_policy: u32,
    /// Verdict for a non-first fragment whose first fragment was never seen.
    pub frag_policy: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Number of entries in the allowlist / denylist (0 skips the lookup).
    pub allow_entries: u32,
    pub deny_entries: u32,
    /// Send 1 in this many packets (per CPU) to the `SAMPLES` ring; 0 turns sampling off.
    pub sample_every: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<Config>() == 40);

impl Config {
    pub const fn new() -> Self {
        Config {
            magic: CONFIG_MAGIC,
            abi_version: ABI_VERSION,
            active_gen: 0,
            error_policy: POLICY_PASS,
            frag_policy: POLICY_PASS,
            flags: 0,
            allow_entries: 0,
            deny_entries: 0,
            sample_every: 0,
            _pad: 0,
        }
    }

    pub const fn is_valid(&self) -> bool {
        self.magic == CONFIG_MAGIC && self.abi_version == ABI_VERSION
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// Which classified fields the rules of one generation constrain (`GenInfo::used_fields`). A field
/// no rule constrains is not looked up at all.
pub mod field {
    pub const PROTO: u32 = 0;
    pub const TTL: u32 = 1;
    pub const TCP_FLAGS: u32 = 2;
    pub const VLAN: u32 = 3;
    pub const SPORT: u32 = 4;
    pub const DPORT: u32 = 5;
    pub const IP_LEN: u32 = 6;
    pub const SRC: u32 = 7;
    pub const DST: u32 = 8;
    /// Number of classified fields.
    pub const COUNT: u32 = 9;
    /// Fields looked up through `CLASS_OF` (value -> class); the last two use the class trie.
    pub const VALUE_FIELDS: u32 = 7;
}

/// Facts about one rule-table generation (array map `GEN_INFO`, index = generation).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenInfo {
    /// Rules in this generation; bit `i` of a bitmap is rule `i`.
    pub rule_count: u32,
    /// Bit `field::X` set when some rule constrains field X.
    pub used_fields: u32,
    /// Chosen at random by the writer of this generation: a writer that finds its own stamp
    /// knows the tables are as it left them and may write only the differences.
    pub stamp: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<GenInfo>() == 16);

crate::user_pod!(Config, GenInfo);
