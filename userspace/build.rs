//! Embeds the XDP object built by `cargo xtask build-ebpf` when it exists. Without it the crate
//! still builds (host tests need no BPF toolchain) and loading asks for `--object`.
use std::{env, fs, path::PathBuf};

fn main() -> anyhow::Result<()> {
    println!("cargo::rustc-check-cfg=cfg(rampart_xdp_embedded)");
    println!("cargo:rerun-if-env-changed=RAMPART_XDP_OBJECT");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let object = match env::var_os("RAMPART_XDP_OBJECT") {
        Some(p) => PathBuf::from(p),
        None => manifest.join("../target/bpfel-unknown-none/release/rampart-xdp"),
    };
    println!("cargo:rerun-if-changed={}", object.display());
    let out = PathBuf::from(env::var("OUT_DIR")?).join("rampart-xdp.o");
    if object.is_file() {
        fs::copy(&object, &out)?;
        println!("cargo:rustc-cfg=rampart_xdp_embedded");
    } else {
        fs::write(&out, [])?;
    }
    Ok(())
}
