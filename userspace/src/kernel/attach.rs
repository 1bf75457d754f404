//! Attaching to interfaces: native XDP first, generic only as a reported fallback. With a pin
//! directory the link is pinned, so the program stays attached after this process exits.

use std::path::{Path, PathBuf};

use aya::programs::{
    links::{FdLink, PinnedLink},
    XdpMode,
};

use super::{Dataplane, KernelError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, or fail.
    Native,
    /// Generic (skb) mode.
    Generic,
    /// Native, falling back to generic with the reason reported.
    Auto,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachReport {
    pub iface: String,
    /// "native" or "generic".
    pub mode: &'static str,
    /// Why native mode was not used, when `Auto` fell back.
    pub fallback: Option<String>,
    pub pinned_link: Option<PathBuf>,
}

fn link_pin(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("link_{iface}"))
}

impl Dataplane {
    pub fn attach(
        &mut self,
        iface: &str,
        mode: AttachMode,
        pin_dir: Option<&Path>,
    ) -> Result<AttachReport, KernelError> {
        let err = |why: String| KernelError::Attach {
            iface: iface.to_string(),
            why,
        };
        if let Some(dir) = pin_dir {
            if link_pin(dir, iface).exists() {
                return Err(err(format!(
                    "already attached (pinned link {})",
                    link_pin(dir, iface).display()
                )));
            }
        }
        let prog = self.program()?;
        let (id, mode_name, fallback) = match mode {
            AttachMode::Native => (
                prog.attach(iface, XdpMode::Driver)
                    .map_err(|e| err(e.to_string()))?,
                "native",
                None,
            ),
            AttachMode::Generic => (
                prog.attach(iface, XdpMode::Skb)
                    .map_err(|e| err(e.to_string()))?,
                "generic",
                None,
            ),
            AttachMode::Auto => match prog.attach(iface, XdpMode::Driver) {
                Ok(id) => (id, "native", None),
                Err(native) => {
                    let id = prog.attach(iface, XdpMode::Skb).map_err(|e| {
                        err(format!(
                            "native mode failed ({native}); generic mode failed too ({e})"
                        ))
                    })?;
                    (id, "generic", Some(native.to_string()))
                }
            },
        };
        let mut pinned_link = None;
        if let Some(dir) = pin_dir {
            let link = prog.take_link(id).map_err(KernelError::program)?;
            let fd: FdLink = link.try_into().map_err(|e| {
                err(format!(
                    "kernel gave a netlink attachment, which cannot be pinned: {e}"
                ))
            })?;
            let path = link_pin(dir, iface);
            fd.pin(&path).map_err(|e| KernelError::Pin {
                path: path.clone(),
                why: e.to_string(),
            })?;
            pinned_link = Some(path);
        }
        Ok(AttachReport {
            iface: iface.to_string(),
            mode: mode_name,
            fallback,
            pinned_link,
        })
    }
}

/// Detaches the program pinned for `iface`. Returns false when nothing was attached there.
pub fn detach_pinned(pin_dir: &Path, iface: &str) -> Result<bool, KernelError> {
    let path = link_pin(pin_dir, iface);
    if !path.exists() {
        return Ok(false);
    }
    let link = PinnedLink::from_pin(&path).map_err(|e| KernelError::Pin {
        path: path.clone(),
        why: e.to_string(),
    })?;
    // Unpinning drops the last reference to the link, which detaches the program.
    link.unpin().map_err(|e| KernelError::Pin {
        path,
        why: e.to_string(),
    })?;
    Ok(true)
}
