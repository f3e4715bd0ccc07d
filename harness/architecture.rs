//! The arrows docs/architecture.md forbids (issue 11). The core (`src/core`), the sys layer (`src/sys`), the
//! classic-BPF compiler (`src/filter`), what the backends share (`src/backend-common`), each backend
//! (`src/backend-ptrace`, `src/backend-seccomp`, `src/backend-ebpf`), the backends together (`src/backend`), the
//! renderers (`src/report`) and the campaign (`src/experiment`) are crates of their own, so Cargo itself refuses
//! them any import of what stands above them or beside them (a backend naming another backend, `doctor`,
//! `experiment` or `report`; `report` naming `experiment` or a backend; the core naming `report`). What is
//! checked here is that their manifests keep it so.

use std::path::Path;

/// The core (`src/core`, the `phoebe-core` crate: `model`, `decide`, `synth`, `files`, `hint`, `time`) is a crate of
/// its own, so Cargo refuses it any import of the `phoebe` crate (backends, `sys`, `experiment`, `report`, …): what
/// is left to check is that its manifest keeps nix, aya and clap out (a kernel call, a kernel program or a command
/// line would come in with them), and `phoebe` itself.
#[test]
fn the_core_crate_depends_on_no_kernel_backend_or_command_line_crate() {
    check_manifest(
        "src/core",
        "serde_json",
        &["nix", "aya", "aya-obj", "clap", "phoebe", "signal-hook"],
    );
}

/// The names of the crates a manifest's `[dependencies]` table lists (`name = …` or `name.workspace = true`).
fn core_dependencies(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
        } else if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or("");
            deps.push(name.to_string());
        }
    }
    deps
}

#[test]
fn core_dependencies_reads_both_forms_and_no_other_table() {
    let deps = core_dependencies(
        "[package]\nname = \"x\"\n[dependencies]\n# a comment\nnix = \"0.30\"\nlibc.workspace = true\n\n[dev-dependencies]\nclap = \"4\"\n",
    );
    assert_eq!(deps, ["nix", "libc"]);
}

/// The sys layer (`src/sys`, the `phoebe-sys` crate) is a crate of its own too, on the core alone: Cargo refuses
/// it any import of a backend or of what stands above it (the launcher once installed the filter through
/// `backend::filter`; the raw install is `sys::seccomp` now, and the compiled program is the caller's). Its
/// manifest keeps aya, clap and `phoebe` out.
#[test]
fn the_sys_crate_depends_on_no_backend_or_command_line_crate() {
    check_manifest(
        "src/sys",
        "nix",
        &["aya", "aya-obj", "clap", "phoebe", "signal-hook"],
    );
}

/// Asserts that the manifest of the crate at `dir` lists `read` (so it was read) and none of `forbidden`.
fn check_manifest(dir: &str, read: &str, forbidden: &[&str]) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join("Cargo.toml");
    let deps = core_dependencies(&std::fs::read_to_string(&manifest).unwrap());
    assert!(
        deps.iter().any(|d| d == read),
        "the dependencies were read: {deps:?}"
    );
    for forbidden in forbidden {
        assert!(
            !deps.iter().any(|d| d == forbidden),
            "{} depends on {forbidden}: {deps:?}",
            manifest.display()
        );
    }
}

/// The classic-BPF compiler (`src/filter`, the `phoebe-filter` crate) is a crate of its own on the core and the
/// sys layer: the ptrace and seccomp backends both build their filters with it, so it cannot import either (nor
/// anything above them), and its manifest lists no crate beyond the ones it compiles and installs with.
#[test]
fn the_filter_crate_depends_on_the_core_and_the_sys_layer_only() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/filter/Cargo.toml");
    let mut deps = core_dependencies(&std::fs::read_to_string(&manifest).unwrap());
    deps.sort();
    assert_eq!(
        deps,
        ["libc", "phoebe-core", "phoebe-sys", "thiserror"],
        "{}",
        manifest.display()
    );
}

/// What every backend implements and shares (`src/backend-common`, the `phoebe-backend-common` crate: the
/// `Backend` trait, `BackendError`, `Target`, `Control`, `facts`, `lineage`) names no backend: its `BackendError`
/// wraps each backend's own error without naming its type. Its manifest lists no aya, clap or `phoebe`.
#[test]
fn the_backend_common_crate_depends_on_no_backend_or_command_line_crate() {
    check_manifest(
        "src/backend-common",
        "phoebe-filter",
        &["aya", "aya-obj", "clap", "phoebe", "anyhow"],
    );
}

/// The backends (`src/backend-ptrace`, `src/backend-seccomp`, `src/backend-ebpf`) stand on the core, the sys
/// layer, what the backends share and (ptrace and seccomp) the filter compiler, and on nothing else of phoebe's:
/// no other backend, no `doctor`, `experiment` or `report` can come in; only the eBPF backend has aya.
#[test]
fn the_backend_crates_depend_on_the_shared_crates_only() {
    for (dir, shared, forbidden) in [
        (
            "src/backend-ptrace",
            &[
                "phoebe-backend-common",
                "phoebe-core",
                "phoebe-filter",
                "phoebe-sys",
            ][..],
            &["aya", "aya-obj"][..],
        ),
        (
            "src/backend-seccomp",
            &[
                "phoebe-backend-common",
                "phoebe-core",
                "phoebe-filter",
                "phoebe-sys",
            ],
            &["aya", "aya-obj"],
        ),
        (
            "src/backend-ebpf",
            &["phoebe-backend-common", "phoebe-core", "phoebe-sys"],
            &[],
        ),
    ] {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join("Cargo.toml");
        let deps = core_dependencies(&std::fs::read_to_string(&manifest).unwrap());
        let phoebe: Vec<&str> = deps
            .iter()
            .map(String::as_str)
            .filter(|d| d.starts_with("phoebe-") && *d != "phoebe-common")
            .collect();
        assert_eq!(phoebe, shared, "{}", manifest.display());
        for forbidden in ["phoebe", "clap", "anyhow", "signal-hook"]
            .iter()
            .chain(forbidden)
        {
            assert!(
                !deps.iter().any(|d| d == forbidden),
                "{} depends on {forbidden}: {deps:?}",
                manifest.display()
            );
        }
    }
}

/// The renderers (`src/report`, the `phoebe-report` crate) are pure functions of the core's types: no backend,
/// no campaign (`experiment`), no kernel crate. Which backend runs a report's skipped experiments is data in the
/// report (`skipped_backend`), named by whoever makes or loads it.
#[test]
fn the_report_crate_depends_on_the_core_only() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/report/Cargo.toml");
    let deps = core_dependencies(&std::fs::read_to_string(&manifest).unwrap());
    let phoebe: Vec<&str> = deps
        .iter()
        .map(String::as_str)
        .filter(|d| d.starts_with("phoebe"))
        .collect();
    assert_eq!(phoebe, ["phoebe-common", "phoebe-core"], "{}", manifest.display());
    for forbidden in ["nix", "libc", "aya", "clap", "anyhow"] {
        assert!(
            !deps.iter().any(|d| d == forbidden),
            "{} depends on {forbidden}: {deps:?}",
            manifest.display()
        );
    }
}

/// The backends together (`src/backend`, the `phoebe-backend` crate: the lookup by kind, the backend for rules
/// and for observing) stand on the backends' crates and below them only; the campaign (`src/experiment`, the
/// `phoebe-campaign` crate) on the crates below it, never on the command line (clap) or the binary.
#[test]
fn the_backend_lookup_and_the_campaign_stand_below_the_command_line() {
    check_manifest(
        "src/backend",
        "phoebe-backend-seccomp",
        &[
            "phoebe",
            "phoebe-report",
            "phoebe-campaign",
            "clap",
            "anyhow",
            "aya",
        ],
    );
    check_manifest(
        "src/experiment",
        "phoebe-backend",
        &["phoebe", "clap", "anyhow", "aya", "indicatif"],
    );
}
