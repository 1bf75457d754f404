//! Typed handles on the program's maps, taken from a fresh load or opened from pins.

use std::path::Path;

use aya::{
    maps::{Array, LpmTrie, Map, MapData, MapError, PerCpuArray, PerCpuValues, RingBuf},
    util::nr_cpus,
    Ebpf,
};
use rampart_common::{
    addr::{AllowEntry, ClassKeyData, DenyEntry, LpmKeyData},
    parsed::ParsedFields,
    rules::{RuleBitmap, RuleMeta},
    Config, Counter, GenInfo, RuleCounter,
};

use super::KernelError;

/// Every map of the program, by its name in the object (the pin file names).
pub const MAP_NAMES: [&str; 15] = [
    "CONFIG",
    "GEN_INFO",
    "REASON_COUNTERS",
    "RULE_COUNTERS",
    "ALLOW",
    "DENY",
    "CLASS_OF",
    "CLASS_TRIE",
    "CLASS_BITS",
    "RULE_META",
    "FRAG_VERDICTS",
    "RATE_BUCKETS",
    "PARSE_DEBUG",
    "SCRATCH",
    "SAMPLES",
];

pub(crate) struct Maps {
    pub config: Array<MapData, Config>,
    pub gen_info: Array<MapData, GenInfo>,
    pub reasons: PerCpuArray<MapData, Counter>,
    pub rule_counters: PerCpuArray<MapData, RuleCounter>,
    pub allow: LpmTrie<MapData, LpmKeyData, AllowEntry>,
    pub deny: LpmTrie<MapData, LpmKeyData, DenyEntry>,
    pub class_of: Array<MapData, u16>,
    pub class_trie: LpmTrie<MapData, ClassKeyData, u32>,
    pub class_bits: Array<MapData, RuleBitmap>,
    pub rule_meta: Array<MapData, RuleMeta>,
    pub parse_debug: PerCpuArray<MapData, ParsedFields>,
    /// Taken by the first `Dataplane::sampler` call.
    pub samples: Option<RingBuf<MapData>>,
    /// The tables this process last wrote into each generation (for writing only differences).
    pub shadow: [Option<(u32, rampart_rules::xdp::XdpTables)>; 2],
}

enum Source<'a> {
    Loaded(&'a mut Ebpf),
    Pinned(&'a Path),
}

impl Source<'_> {
    fn get<T: TryFrom<Map, Error = MapError>>(
        &mut self,
        name: &'static str,
    ) -> Result<T, KernelError> {
        let map = match self {
            Source::Loaded(ebpf) => ebpf
                .take_map(name)
                .ok_or(KernelError::MissingMap { name })?,
            Source::Pinned(dir) => {
                let path = dir.join(name);
                if !path.exists() {
                    return Err(KernelError::NotPinned {
                        path: dir.to_path_buf(),
                    });
                }
                let data = MapData::from_pin(&path).map_err(KernelError::map(name))?;
                Map::from_map_data(data).map_err(KernelError::map(name))?
            }
        };
        T::try_from(map).map_err(KernelError::map(name))
    }
}

impl Maps {
    pub fn take(ebpf: &mut Ebpf) -> Result<Maps, KernelError> {
        Maps::from_source(Source::Loaded(ebpf))
    }

    pub fn from_pins(dir: &Path) -> Result<Maps, KernelError> {
        Maps::from_source(Source::Pinned(dir))
    }

    fn from_source(mut s: Source<'_>) -> Result<Maps, KernelError> {
        Ok(Maps {
            config: s.get("CONFIG")?,
            gen_info: s.get("GEN_INFO")?,
            reasons: s.get("REASON_COUNTERS")?,
            rule_counters: s.get("RULE_COUNTERS")?,
            allow: s.get("ALLOW")?,
            deny: s.get("DENY")?,
            class_of: s.get("CLASS_OF")?,
            class_trie: s.get("CLASS_TRIE")?,
            class_bits: s.get("CLASS_BITS")?,
            rule_meta: s.get("RULE_META")?,
            parse_debug: s.get("PARSE_DEBUG")?,
            samples: Some(s.get("SAMPLES")?),
            shadow: [None, None],
        })
    }

    pub fn config(&self) -> Result<Config, KernelError> {
        self.config.get(&0, 0).map_err(KernelError::map("CONFIG"))
    }

    pub fn set_config(&mut self, cfg: Config) -> Result<(), KernelError> {
        self.config
            .set(0, cfg, 0)
            .map_err(KernelError::map("CONFIG"))
    }

    pub fn parse_debug(&self, cpu: usize) -> Result<ParsedFields, KernelError> {
        let v = self
            .parse_debug
            .get(&0, 0)
            .map_err(KernelError::map("PARSE_DEBUG"))?;
        Ok(v.get(cpu).copied().unwrap_or_default())
    }

    pub fn clear_parse_debug(&mut self) -> Result<(), KernelError> {
        let zero = per_cpu(ParsedFields::default())?;
        self.parse_debug
            .set(0, zero, 0)
            .map_err(KernelError::map("PARSE_DEBUG"))
    }
}

/// The same value for every possible CPU.
pub(crate) fn per_cpu<T: aya::Pod>(v: T) -> Result<PerCpuValues<T>, KernelError> {
    let n = nr_cpus().map_err(|(_, e)| KernelError::Cpus(e))?;
    PerCpuValues::try_from(vec![v; n]).map_err(KernelError::Cpus)
}
