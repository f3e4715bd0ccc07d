//! `phoebe doctor`'s raw probes: each runs in a forked child, because what it tries (a seccomp filter, a
//! listener) cannot be undone in phoebe itself.

use nix::{
    errno::Errno,
    sys::wait::{WaitStatus, waitpid},
    unistd::{ForkResult, fork},
};

use crate::backend::filter;

/// Installs an allow-all seccomp filter with `flags` in a forked child and reports the kernel's answer.
pub fn try_seccomp_in_child(flags: filter::sys::InstallFlags) -> Result<(), Errno> {
    let prog = filter::compile(&filter::Policy::new(filter::Action::Allow)).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the child only calls `filter::sys::install` (prctl and seccomp, no allocation) on a program built
    // before the fork, then `_exit`: async-signal-safe, so no lock held by another thread at fork time is needed.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let code = match filter::sys::install(&prog, flags) {
                Ok(_) => 0,
                Err(filter::FilterError::Sys { source, .. }) => source as i32,
                Err(_) => libc::EINVAL,
            };
            // SAFETY: _exit ends the child at once, without the parent's atexit handlers or stdio buffers.
            unsafe { libc::_exit(code.clamp(0, 255)) }
        }
        ForkResult::Parent { child } => match waitpid(child, None)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            WaitStatus::Exited(_, code) => Err(Errno::from_raw(code)),
            _ => Err(Errno::ECHILD),
        },
    }
}
