//! The XDP object: embedded at build time or read from a file, checked for its ABI version.

use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol};
use rampart_common::ABI_VERSION;

use super::KernelError;

#[cfg(rampart_xdp_embedded)]
static EMBEDDED: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rampart-xdp.o"));
#[cfg(not(rampart_xdp_embedded))]
static EMBEDDED: &[u8] = &[];

/// Symbol the program exports with the ABI version it was built for.
const ABI_SYMBOL: &str = "RAMPART_ABI_VERSION";

/// The object bytes: `path` if given, else the embedded object.
pub fn bytes(path: Option<&Path>) -> Result<Vec<u8>, KernelError> {
    match path {
        Some(p) => std::fs::read(p).map_err(|source| KernelError::ObjectRead {
            path: p.into(),
            source,
        }),
        None if EMBEDDED.is_empty() => Err(KernelError::NoObject),
        None => Ok(EMBEDDED.to_vec()),
    }
}

/// Reads the ABI version the object was built for and refuses a mismatch.
pub fn check_abi(data: &[u8]) -> Result<(), KernelError> {
    let found = abi_version(data)?;
    if found != ABI_VERSION {
        return Err(KernelError::AbiMismatch {
            object: found,
            userspace: ABI_VERSION,
        });
    }
    Ok(())
}

fn abi_version(data: &[u8]) -> Result<u32, KernelError> {
    let bad = |why: String| KernelError::BadObject { why };
    let file = object::File::parse(data).map_err(|e| bad(format!("not an ELF object: {e}")))?;
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok(ABI_SYMBOL))
        .ok_or_else(|| {
            bad(format!(
                "no `{ABI_SYMBOL}` symbol: not a Rampart XDP object"
            ))
        })?;
    let section = sym
        .section_index()
        .and_then(|i| file.section_by_index(i).ok())
        .ok_or_else(|| bad(format!("`{ABI_SYMBOL}` has no section")))?;
    let bytes = section.data().map_err(|e| bad(e.to_string()))?;
    let at = sym.address().saturating_sub(section.address()) as usize;
    let raw = bytes
        .get(at..at + 4)
        .ok_or_else(|| bad(format!("`{ABI_SYMBOL}` lies outside its section")))?;
    Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_an_object() {
        assert!(matches!(
            check_abi(b"not elf"),
            Err(KernelError::BadObject { .. })
        ));
    }

    #[cfg(rampart_xdp_embedded)]
    #[test]
    fn embedded_object_has_our_abi() {
        check_abi(&bytes(None).unwrap()).unwrap();
    }
}
