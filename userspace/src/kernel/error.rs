//! Errors of the kernel seam, with the facts needed to act on them.

use std::path::PathBuf;

use aya::{maps::MapError, programs::ProgramError, EbpfError};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("no XDP object: this binary was built without one; run `cargo xtask build-ebpf` and rebuild, or pass --object")]
    NoObject,
    #[error("cannot read XDP object {path}: {source}")]
    ObjectRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad XDP object: {why}")]
    BadObject { why: String },
    #[error("ABI mismatch: the XDP object (or running instance) has ABI {object}, this rampart has ABI {userspace}; rebuild both from one tree")]
    AbiMismatch { object: u32, userspace: u32 },
    #[error("the kernel refused the program: {source}\nverifier log:\n{verifier_log}")]
    Verifier {
        source: std::io::Error,
        verifier_log: String,
    },
    #[error("loading the object failed: {0}")]
    Load(#[source] Box<EbpfError>),
    #[error("program `{name}` is missing from the object")]
    MissingProgram { name: &'static str },
    #[error("program operation failed: {0}")]
    Program(#[source] Box<ProgramError>),
    #[error("map `{name}` is missing")]
    MissingMap { name: &'static str },
    #[error("map `{name}`: {source}")]
    Map {
        name: &'static str,
        source: Box<MapError>,
    },
    #[error("cannot create pin directory {path}: {source}")]
    PinDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pinning {path}: {why}")]
    Pin { path: PathBuf, why: String },
    #[error("no Rampart instance is pinned at {path} (run `rampart attach` first)")]
    NotPinned { path: PathBuf },
    #[error("this handle opened pinned maps only; the program is not loaded here")]
    NotLoaded,
    #[error("the thread that owns the data plane has stopped")]
    OwnerStopped,
    #[error("interface `{iface}`: {why}")]
    Attach { iface: String, why: String },
    #[error("{what} is full ({max} entries)")]
    Full { what: &'static str, max: u32 },
    #[error(
        "no counter slot left for rule {rule_id} (at most {max} rules across two generations)"
    )]
    NoCounterSlot { rule_id: u32, max: u32 },
    #[error("reading the clock: {0}")]
    Clock(std::io::Error),
    #[error("cannot count possible CPUs: {0}")]
    Cpus(std::io::Error),
}

impl KernelError {
    pub(crate) fn from_load(e: EbpfError) -> KernelError {
        match e {
            EbpfError::ProgramError(p) => KernelError::program(p),
            other => KernelError::Load(Box::new(other)),
        }
    }

    pub(crate) fn program(e: ProgramError) -> KernelError {
        match e {
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } => KernelError::Verifier {
                source: io_error,
                verifier_log: verifier_log.to_string(),
            },
            other => KernelError::Program(Box::new(other)),
        }
    }

    pub(crate) fn map(name: &'static str) -> impl FnOnce(MapError) -> KernelError {
        move |e| KernelError::Map {
            name,
            source: Box::new(e),
        }
    }
}

/// Through the table seam a kernel error keeps its kind where callers act on it (a full table,
/// a stopped owner) and its whole text as the source.
impl From<KernelError> for rampart_tables::TablesError {
    fn from(e: KernelError) -> Self {
        use rampart_tables::TablesErrorKind as K;
        let kind = match &e {
            KernelError::Full { .. } | KernelError::NoCounterSlot { .. } => K::Full,
            KernelError::OwnerStopped | KernelError::NotPinned { .. } | KernelError::NotLoaded => {
                K::Unavailable
            }
            _ => K::Failed,
        };
        rampart_tables::TablesError::new(kind, e)
    }
}
