//! The kernel seam: the only module that calls aya. [`Dataplane`] loads the XDP object (or opens
//! the maps a running instance pinned), writes config, lists and rule tables, reads counters,
//! attaches to interfaces and runs the program on test packets.

mod attach;
mod error;
mod lists;
mod maps;
pub mod object;
mod samples;
mod tables;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aya::{
    programs::{TestRun, TestRunOptions, Xdp},
    Ebpf, EbpfLoader,
};
use rampart_common::{parsed::ParsedFields, reason::Reason, Config, Counter, RuleCounter};

pub use attach::{detach_pinned, AttachMode, AttachReport};
pub use error::KernelError;
pub use lists::{monotonic_ns, DenyListing};
pub use maps::MAP_NAMES;
pub use rampart_tables::{FakeTables, FilterTables, RulesReport, TablesError};
pub use samples::Sampler;

use maps::Maps;

use crate::counters::Snapshot;

/// Where `rampart attach` pins maps and links by default.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/rampart";
/// The program's name in the object.
pub const PROGRAM: &str = "rampart";
/// A program in the same object that only passes: the floor in benchmarks.
pub const FLOOR_PROGRAM: &str = "rampart_floor";

/// Options for [`Dataplane::load`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Object file; `None` uses the object embedded at build time.
    pub object: Option<PathBuf>,
    /// Pin (or reuse pinned) maps under this directory, so another process, or this one after a
    /// restart, finds the same tables.
    pub pin_dir: Option<PathBuf>,
}

pub struct Dataplane {
    /// `None` when the maps were opened from pins (no program loaded by this process).
    ebpf: Option<Ebpf>,
    maps: Maps,
}

impl Dataplane {
    /// Loads and verifies the program and creates (or reuses pinned) maps. A fresh config is
    /// written only when none is there yet, so reloading over pinned maps keeps the running state.
    pub fn load(opts: &LoadOptions) -> Result<Dataplane, KernelError> {
        let data = object::bytes(opts.object.as_deref())?;
        object::check_abi(&data)?;
        let mut loader = EbpfLoader::new();
        let pins: Vec<(&str, PathBuf)> = match &opts.pin_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| KernelError::PinDir {
                    path: dir.clone(),
                    source,
                })?;
                MAP_NAMES.iter().map(|n| (*n, dir.join(n))).collect()
            }
            None => Vec::new(),
        };
        for (name, path) in &pins {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(&data).map_err(KernelError::from_load)?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or(KernelError::MissingProgram { name: PROGRAM })?
            .try_into()
            .map_err(KernelError::program)?;
        prog.load().map_err(KernelError::program)?;
        let mut maps = Maps::take(&mut ebpf)?;
        if !maps.config()?.is_valid() {
            maps.set_config(Config::new())?;
        }
        Ok(Dataplane {
            ebpf: Some(ebpf),
            maps,
        })
    }

    /// Opens the maps a running instance pinned under `dir` (for CLI commands).
    pub fn open_pinned(dir: &Path) -> Result<Dataplane, KernelError> {
        let maps = Maps::from_pins(dir)?;
        let cfg = maps.config()?;
        if !cfg.is_valid() {
            return Err(KernelError::AbiMismatch {
                object: cfg.abi_version,
                userspace: rampart_common::ABI_VERSION,
            });
        }
        Ok(Dataplane { ebpf: None, maps })
    }

    pub fn config(&self) -> Result<Config, KernelError> {
        self.maps.config()
    }

    /// Writes `f(config)`; the allow/deny entry counts are kept as they are.
    pub fn update_config(&mut self, f: impl FnOnce(&mut Config)) -> Result<Config, KernelError> {
        let mut cfg = self.maps.config()?;
        f(&mut cfg);
        self.maps.set_config(cfg)?;
        Ok(cfg)
    }

    fn program(&mut self) -> Result<&mut Xdp, KernelError> {
        self.program_named(PROGRAM)
    }

    fn program_named(&mut self, name: &'static str) -> Result<&mut Xdp, KernelError> {
        let ebpf = self.ebpf.as_mut().ok_or(KernelError::NotLoaded)?;
        ebpf.program_mut(name)
            .ok_or(KernelError::MissingProgram { name })?
            .try_into()
            .map_err(KernelError::program)
    }

    /// Runs the program once per `repeat` on `frame` (BPF_PROG_TEST_RUN). Returns the XDP action
    /// and the kernel's average time per run.
    pub fn test_run(&mut self, frame: &[u8], repeat: u32) -> Result<(u32, Duration), KernelError> {
        self.test_run_program(PROGRAM, frame, repeat)
    }

    /// Like [`Dataplane::test_run`] for another program of the object ([`FLOOR_PROGRAM`] for the
    /// bench floor), loading it on first use.
    pub fn test_run_program(
        &mut self,
        name: &'static str,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, Duration), KernelError> {
        let prog = self.program_named(name)?;
        if prog.fd().is_err() {
            prog.load().map_err(KernelError::program)?;
        }
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat: repeat.max(1),
            ..Default::default()
        };
        let r = prog.test_run(opts).map_err(KernelError::program)?;
        Ok((r.return_value, r.duration))
    }

    /// The last parse on `cpu` (requires `FLAG_DEBUG_PARSE`).
    pub fn parse_debug(&self, cpu: usize) -> Result<ParsedFields, KernelError> {
        self.maps.parse_debug(cpu)
    }

    /// Zeroes the per-CPU parse record (so a test sees whether the next run wrote it).
    pub fn clear_parse_debug(&mut self) -> Result<(), KernelError> {
        self.maps.clear_parse_debug()
    }

    /// Counter slot → rule id for the active generation's rules (samples carry the slot).
    pub fn rule_slots(&self) -> Result<std::collections::HashMap<u32, u32>, KernelError> {
        let active = self.config()?.active_gen & 1;
        Ok(self
            .maps
            .rules_of(active)?
            .into_iter()
            .map(|m| (m.counter_slot, m.rule_id))
            .collect())
    }

    /// Counters per reason and per rule of the active generation, summed over CPUs.
    pub fn counters(&self) -> Result<Snapshot, KernelError> {
        let mut reasons = Vec::new();
        for r in Reason::ALL {
            let v = self
                .maps
                .reasons
                .get(&(r as u32), 0)
                .map_err(KernelError::map("REASON_COUNTERS"))?;
            reasons.push((r, Counter::sum(v.iter())));
        }
        let active = self.config()?.active_gen & 1;
        let mut rules: Vec<(u32, RuleCounter)> = Vec::new();
        for m in self.maps.rules_of(active)? {
            // A rule compiled to several entries has one slot: list it once.
            if rules.iter().any(|(id, _)| *id == m.rule_id) {
                continue;
            }
            let v = self
                .maps
                .rule_counters
                .get(&m.counter_slot, 0)
                .map_err(KernelError::map("RULE_COUNTERS"))?;
            rules.push((m.rule_id, RuleCounter::sum(v.iter())));
        }
        Ok(Snapshot { reasons, rules })
    }
}
