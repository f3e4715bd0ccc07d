//! Builds phoebe's eBPF programs (`ebpf/phoebe-ebpf`) for the BPF target with aya-build, on the stable
//! toolchain: `RUSTC_BOOTSTRAP=1` is set here only, for the inner cargo that needs `-Z build-std=core`.
//! The object lands in `OUT_DIR/phoebe-probes`, which this crate (`src/backend-ebpf`) embeds.
//!
//! Without bpf-linker or rust-src this fails with one sentence naming `ci/setup`, which installs both.

use std::{env, path::PathBuf, process::Command};

fn fail(what: &str) -> ! {
    eprintln!("error: {what}: run `ci/setup` to install the eBPF toolchain (rust-src and bpf-linker 0.13)");
    std::process::exit(1)
}

fn main() {
    println!("cargo:rerun-if-changed=../../ebpf/phoebe-common");
    println!("cargo:rerun-if-env-changed=PATH");
    if which::which("bpf-linker").is_err() {
        fail("bpf-linker is not on PATH");
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if !sysroot.is_some_and(|s| s.join("lib/rustlib/src/rust/library/core").is_dir()) {
        fail("the rust-src component is not installed");
    }
    // The toolchain that runs this build (rustup's proxy says which); aya-build runs the inner cargo with it.
    let toolchain = env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "stable".into());
    // SAFETY: build scripts are single-threaded here; no other thread reads the environment concurrently.
    unsafe { env::set_var("RUSTC_BOOTSTRAP", "1") };
    let package = aya_build::Package {
        name: "phoebe-ebpf",
        root_dir: "../../ebpf/phoebe-ebpf",
        ..Default::default()
    };
    if let Err(e) = aya_build::build_ebpf([package], aya_build::Toolchain::Custom(&toolchain)) {
        eprintln!("error: building the eBPF programs failed: {e:#}");
        std::process::exit(1);
    }
}
