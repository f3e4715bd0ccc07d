//! `phoebe doctor`'s raw probes: each runs in a child launched by `crate::sys::launch`, because what it tries (a
//! seccomp filter, a listener) cannot be undone in phoebe itself.

use nix::errno::Errno;

use crate::{
    backend::filter,
    sys::launch::{self, Command},
};

/// Installs an allow-all seccomp filter with `flags` in a child and reports the kernel's answer.
pub fn try_seccomp_in_child(flags: filter::sys::InstallFlags) -> Result<(), Errno> {
    let prog = filter::compile(&filter::Policy::new(filter::Action::Allow)).map_err(|_| Errno::EINVAL)?;
    launch::probe(Command::no_exec().filter(&prog, flags))
}
