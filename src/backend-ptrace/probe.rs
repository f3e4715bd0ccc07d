//! What the ptrace backend can do on this machine ([`probe`], its `Backend::probe`): a child seized with
//! `PTRACE_SEIZE`, the backend's first step, and the Yama setting that explains a refusal.

use std::ffi::CString;

use nix::sys::ptrace::Options;

use phoebe_backend_common::{Capability, Probe};
use phoebe_sys::host;

use crate::sys;

/// Seizes a child with ptrace (the ptrace backend's first step), then kills it.
fn seize_a_child() -> Result<(), String> {
    let program = CString::new("/bin/true").map_err(|e| e.to_string())?;
    let spawned = sys::spawn_traced(
        &program,
        std::slice::from_ref(&program),
        None,
        Options::PTRACE_O_EXITKILL,
    )
    .map_err(|e| phoebe_sys::error::Chain::asking(&e, crate::hints_of).one_line())?;
    spawned.kill();
    Ok(())
}

/// ptrace's probe: one seized child answers both modes; injecting also needs x86_64's register edits.
pub(super) fn probe() -> Probe {
    let seized = seize_a_child();
    let scope_hint = match host::ptrace_scope() {
        Some(3) => {
            "kernel.yama.ptrace_scope is 3 (no attach at all); it can only be lowered by a reboot".to_owned()
        }
        Some(2) => "kernel.yama.ptrace_scope is 2: run as root or give phoebe CAP_SYS_PTRACE".to_owned(),
        _ => "ptrace needs the same uid as the target or CAP_SYS_PTRACE".to_owned(),
    };
    let capability = |inject: bool| match &seized {
        Ok(()) if inject && !cfg!(target_arch = "x86_64") => Capability::unavailable(
            "injection edits registers; only x86_64 is implemented",
            Some(scope_hint.clone()),
        ),
        Ok(()) => Capability::available("seized a child with PTRACE_SEIZE"),
        Err(e) => Capability::unavailable(e.clone(), Some(scope_hint.clone())),
    };
    Probe {
        observe: capability(false),
        inject: capability(true),
    }
}
