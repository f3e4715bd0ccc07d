//! What the seccomp backend can do on this machine ([`probe`], its `Backend::probe`): observing is impossible by
//! design; injecting needs a listener, which is created in a probe child (`sys::launch`), because a filter
//! installed in phoebe itself could not be undone.

use nix::errno::Errno;

use phoebe_backend_common::{Capability, Probe};
use phoebe_core::hint::Hint;
use phoebe_filter as filter;
use phoebe_sys::{
    launch::{self, Command},
    seccomp::InstallFlags,
};

/// Installs an allow-all seccomp filter with `flags` in a child and reports the kernel's answer.
fn try_in_child(flags: InstallFlags) -> Result<(), Errno> {
    let prog = filter::compile(&filter::Policy::new(filter::Action::Allow)).map_err(|_| Errno::EINVAL)?;
    launch::probe(Command::no_exec().filter(&prog, flags))
}

/// seccomp's probe: user notification (the kernel facility the backend uses), and whether a notified call can be
/// killed while it waits for phoebe (`WAIT_KILLABLE_RECV`).
pub(super) fn probe() -> Probe {
    let observe = Capability::unavailable(
        "by design: a call let through (CONTINUE) is never seen again, so its result is unknown",
        Some("observe with ebpf or ptrace".into()),
    );
    let notif = try_in_child(InstallFlags::NEW_LISTENER);
    let killable = try_in_child(InstallFlags::NEW_LISTENER | InstallFlags::WAIT_KILLABLE_RECV);
    let inject = match notif {
        Ok(()) => Capability::available(format!(
            "the kernel's user notification works (SECCOMP_FILTER_FLAG_NEW_LISTENER){}",
            match killable {
                Ok(()) => ", with WAIT_KILLABLE_RECV".to_owned(),
                Err(e) => format!("; WAIT_KILLABLE_RECV refused ({e}, needs Linux ≥ 5.19)"),
            }
        )),
        Err(e) => Capability::unavailable(
            format!("creating a seccomp listener failed: {e}"),
            Some(format!(
                "needs Linux ≥ 5.0 with CONFIG_SECCOMP_FILTER; {}",
                Hint::UsePtrace
            )),
        ),
    };
    Probe { observe, inject }
}
