//! How a test that cannot run on this machine says so — shared by every crate's unit tests and the harness
//! (`harness/common.rs`, through `phoebe::testing`). Not part of phoebe's API.
//!
//! A skip prints `skipped: <reason> (<test>)` on the real standard error, which `ci/test` counts. It is written
//! with `std::io::stderr()`, not `eprintln!`: libtest captures the `print!`/`eprint!` macros of a passing test
//! (and shows them only when it fails), so an `eprintln!` skip would be invisible and uncounted.
//!
//! In this project's CI (`CI` set, as CI services do; root, every capability, the tools `ci/setup` installs, QEMU
//! for the VM tests) every test must run: a skip whose reason is not in [`EXPECTED_IN_CI`] fails the test.

use std::io::Write;

/// Reasons (prefixes) for which a test may still skip when `CI` is set, each with why that is expected.
///
/// Empty: on the CI machine every gate passes. eBPF *injection*, which the CI host's kernel refuses, is not a skip:
/// `harness/ebpf.rs` checks the refusal itself, and the VM tests (`harness/vm.rs`) run the injector in guests that
/// allow it. Add an entry, with its reason, only for a limitation of the CI machine that cannot be lifted.
pub const EXPECTED_IN_CI: &[(&str, &str)] = &[];

/// Says why the calling test does not run (all or part of it), visibly; panics under `CI` unless the reason is
/// expected there.
pub fn skipped(reason: &str) {
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    // One write, so that the line is never split by libtest's own output on the same terminal or pipe.
    let line = format!("skipped: {reason} ({name})\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    if in_ci() && !expected_in_ci(reason) {
        panic!(
            "unexpected skip under CI: {reason}\nhint: on the CI machine every test must run; fix the machine, or add \
             the reason to phoebe_core::testing::EXPECTED_IN_CI with why"
        );
    }
}

/// Is `reason` one of [`EXPECTED_IN_CI`]?
pub fn expected_in_ci(reason: &str) -> bool {
    EXPECTED_IN_CI
        .iter()
        .any(|(prefix, _)| reason.starts_with(prefix))
}

/// Unit tests that create child processes hold this lock: a test that waits for *any* child (`waitpid(-1)`, as
/// the reapers do) would otherwise reap another test's. One per test process: each crate's unit tests are a
/// binary of their own, with their own copy of the lock.
pub fn children_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Is `CI` set (to anything but an empty string, `0` or `false`)?
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_skip_is_expected_on_the_ci_machine() {
        for reason in [
            "ptrace is not available here: EPERM",
            "no JDK (javac/java not on PATH)",
            "int 0x80 is not available (kernel without IA32 emulation)",
        ] {
            assert!(!expected_in_ci(reason), "{reason}");
        }
    }
}
