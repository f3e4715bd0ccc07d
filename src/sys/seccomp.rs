//! The one chokepoint for the raw calls that put a seccomp filter on the calling thread: `seccomp(2)` and
//! `prctl(PR_SET_NO_NEW_PRIVS)`.
//!
//! In phoebe these run in a forked child between `fork` and `exec` (`sys::launch`, the seccomp backend's own
//! launcher), so nothing here allocates: [`install`] takes a program already compiled (by `phoebe_filter`, `src/filter`, which
//! the sys layer does not know), and its errors carry only an errno, a step and flags (the message is formatted
//! later, by whoever displays it). The tests that install compiled programs live with the compiler
//! (`src/filter/kernel_tests.rs`).

use std::{
    borrow::Cow,
    fmt,
    ops::BitOr,
    os::fd::{FromRawFd, OwnedFd, RawFd},
};

use libc::{c_long, c_ulong, sock_filter, sock_fprog};
use nix::errno::Errno;

use crate::hint::{Hint, Hinted};

/// The longest program the kernel accepts (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = libc::BPF_MAXINSNS as usize;

/// Why a seccomp program could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The program is longer than the kernel accepts.
    #[error("the seccomp program needs {len} instructions, more than the kernel's limit of {limit}")]
    TooLong {
        /// The program's length in instructions.
        len: usize,
        /// `BPF_MAXINSNS`.
        limit: usize,
    },
    /// An empty program was given to [`install`].
    #[error("the seccomp program is empty")]
    Empty,
    /// Install flags that the kernel refuses together.
    #[error("seccomp flags {flags} cannot be used together: {reason}")]
    IncompatibleFlags {
        /// The flags asked for.
        flags: InstallFlags,
        /// Why the kernel refuses them.
        reason: &'static str,
    },
    /// A raw call failed.
    #[error("{step} failed")]
    Sys {
        /// The call that failed.
        step: Step,
        /// Its errno.
        #[source]
        source: Errno,
    },
    /// With `TSYNC`, another thread of the process could not take the filter.
    #[error("seccomp could not synchronize thread {tid} with the new filter")]
    TsyncFailed {
        /// The thread's id, as returned by the kernel.
        tid: i64,
    },
}

impl InstallError {
    /// The errno a raw call failed with; EINVAL for what was refused before any call (what the kernel would say).
    pub fn errno(&self) -> Errno {
        match self {
            InstallError::Sys { source, .. } => *source,
            _ => Errno::EINVAL,
        }
    }
}

impl Hinted for InstallError {
    fn hint(&self) -> Option<Cow<'_, str>> {
        match self {
            InstallError::TooLong { .. } => Some("use fewer rules or fewer distinct actions".into()),
            InstallError::Sys { step, source } => hint(step, source),
            InstallError::TsyncFailed { .. } => Some(
                "the thread has a filter tree of its own or is exiting; install before starting threads"
                    .into(),
            ),
            InstallError::Empty | InstallError::IncompatibleFlags { .. } => None,
        }
    }
}

/// Flags for `seccomp(SECCOMP_SET_MODE_FILTER)`; combine them with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct InstallFlags(c_ulong);

impl InstallFlags {
    /// No flag.
    pub const NONE: Self = Self(0);
    /// Put the filter on every thread of the process (`SECCOMP_FILTER_FLAG_TSYNC`).
    pub const TSYNC: Self = Self(libc::SECCOMP_FILTER_FLAG_TSYNC);
    /// Leave speculative-store-bypass mitigation off (`SECCOMP_FILTER_FLAG_SPEC_ALLOW`).
    pub const SPEC_ALLOW: Self = Self(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW);
    /// Return a user-notification listener fd (`SECCOMP_FILTER_FLAG_NEW_LISTENER`, Linux ≥ 5.0).
    pub const NEW_LISTENER: Self = Self(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER);
    /// Once the supervisor has received a notification, only a fatal signal interrupts the target's wait, so a
    /// signalled target does not re-enter the call as a new notification
    /// (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, Linux ≥ 5.19; needs [`Self::NEW_LISTENER`]).
    pub const WAIT_KILLABLE_RECV: Self = Self(libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);

    const NAMES: [(Self, &'static str); 4] = [
        (Self::TSYNC, "TSYNC"),
        (Self::SPEC_ALLOW, "SPEC_ALLOW"),
        (Self::NEW_LISTENER, "NEW_LISTENER"),
        (Self::WAIT_KILLABLE_RECV, "WAIT_KILLABLE_RECV"),
    ];

    /// The raw `SECCOMP_FILTER_FLAG_*` bits.
    pub const fn bits(self) -> c_ulong {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags the kernel would refuse together, with the reason.
    fn incompatibility(self) -> Option<&'static str> {
        if self.contains(Self::NEW_LISTENER | Self::TSYNC) {
            Some(
                "the kernel refuses NEW_LISTENER with TSYNC; install the filter before the target starts threads",
            )
        } else if self.contains(Self::WAIT_KILLABLE_RECV) && !self.contains(Self::NEW_LISTENER) {
            Some("WAIT_KILLABLE_RECV only applies to a filter installed with NEW_LISTENER")
        } else {
            None
        }
    }
}

impl BitOr for InstallFlags {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl fmt::Display for InstallFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::NONE {
            return f.write_str("none");
        }
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                f.write_str(if first { "" } else { "|" })?;
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// The raw call that failed, for [`InstallError::Sys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    SetNoNewPrivs,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` with these flags.
    SetModeFilter(InstallFlags),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SetNoNewPrivs => f.write_str("prctl(PR_SET_NO_NEW_PRIVS)"),
            Self::SetModeFilter(flags) => write!(f, "seccomp(SECCOMP_SET_MODE_FILTER, flags {flags})"),
        }
    }
}

/// The hint of a [`InstallError::Sys`], if its errno says what to do.
fn hint(step: &Step, errno: &Errno) -> Option<Cow<'static, str>> {
    const KILLABLE: InstallFlags = InstallFlags::WAIT_KILLABLE_RECV;
    const LISTENER: InstallFlags = InstallFlags::NEW_LISTENER;
    let text = match (*step, *errno) {
        (Step::SetNoNewPrivs, Errno::EINVAL) => "no_new_privs needs Linux ≥ 3.5",
        (Step::SetNoNewPrivs, _) => return None,
        (Step::SetModeFilter(_), Errno::ENOSYS) => "the kernel was built without seccomp (CONFIG_SECCOMP)",
        (Step::SetModeFilter(flags), Errno::EINVAL) if flags.contains(KILLABLE) => {
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs Linux ≥ 5.19"
        }
        (Step::SetModeFilter(flags), Errno::EINVAL) if flags.contains(LISTENER) => {
            "seccomp user notification needs Linux ≥ 5.0"
        }
        (Step::SetModeFilter(_), Errno::EINVAL) => {
            "the kernel refused the program or a flag; seccomp filters need CONFIG_SECCOMP_FILTER"
        }
        (Step::SetModeFilter(_), Errno::EBUSY) => {
            return Some(
                format!(
                    "a seccomp listener already exists in this process tree (does the target use seccomp notify \
                     itself?); {}",
                    Hint::UsePtrace
                )
                .into(),
            );
        }
        (Step::SetModeFilter(_), Errno::EACCES) => return Some(Hint::FilterPrivileges.into()),
        (Step::SetModeFilter(_), Errno::ENOMEM) => {
            "the filters stacked on this process exceed the kernel's total of 32768 instructions"
        }
        (Step::SetModeFilter(_), _) => return None,
    };
    Some(text.into())
}

/// Installs `prog` (compiled by `phoebe_filter`) as a seccomp filter on the calling thread, or on every thread with
/// [`InstallFlags::TSYNC`]; returns the listener fd when [`InstallFlags::NEW_LISTENER`] is set, `None` otherwise.
///
/// A filter can never be removed: call this in the process that is about to exec the target, never in phoebe itself.
///
/// Without `CAP_SYS_ADMIN` the kernel requires `no_new_privs`: if it answers `EACCES`, this sets it with
/// [`set_no_new_privs`] and tries once more. `no_new_privs` is inherited by the exec'd target and its children, whose
/// set-uid and file-capability programs (`sudo`, `ping`) then run without the extra privileges.
///
/// Does not allocate, so it is safe between `fork` and `exec` of a multi-threaded parent. Flag combinations the kernel
/// refuses, an empty program and one longer than `BPF_MAXINSNS` are reported before any call.
pub fn install(prog: &[sock_filter], flags: InstallFlags) -> Result<Option<OwnedFd>, InstallError> {
    if let Some(reason) = flags.incompatibility() {
        return Err(InstallError::IncompatibleFlags { flags, reason });
    }
    if prog.is_empty() {
        return Err(InstallError::Empty);
    }
    let len = u16::try_from(prog.len())
        .ok()
        .filter(|_| prog.len() <= MAX_INSNS)
        .ok_or(InstallError::TooLong {
            len: prog.len(),
            limit: MAX_INSNS,
        })?;
    // The kernel only reads through `filter`; the field is `*mut` for historical reasons.
    let fprog = sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    let ret = match set_mode_filter(&fprog, flags) {
        Err(Errno::EACCES) => {
            set_no_new_privs()?;
            set_mode_filter(&fprog, flags)
        }
        result => result,
    }
    .map_err(|source| InstallError::Sys {
        step: Step::SetModeFilter(flags),
        source,
    })?;

    if flags.contains(InstallFlags::NEW_LISTENER) {
        // File descriptors are ints: the kernel's non-negative return fits.
        let fd = ret as RawFd;
        // SAFETY: with NEW_LISTENER a non-negative return is a new listener fd that the kernel just opened for this
        // process; nothing else knows it, so it has exactly one owner.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if ret > 0 {
        // Only TSYNC returns a positive value: the id of the thread that could not be synchronized.
        return Err(InstallError::TsyncFailed { tid: ret });
    }
    Ok(None)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, fprog)`, returning the syscall's non-negative result.
fn set_mode_filter(fprog: &sock_fprog, flags: InstallFlags) -> Result<c_long, Errno> {
    let operation = c_ulong::from(libc::SECCOMP_SET_MODE_FILTER);
    // SAFETY: `fprog` is a live reference for the whole call and its `filter` points at `fprog.len` initialized
    // instructions borrowed from the caller's slice (non-empty, at most BPF_MAXINSNS, checked by `install`); the
    // kernel copies them before returning and never writes through either pointer. Every variadic argument is passed
    // at register width (c_ulong or a pointer), as the kernel reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            operation,
            flags.bits(),
            fprog as *const sock_fprog,
        )
    };
    Errno::result(ret)
}

/// Sets `no_new_privs` on the calling thread (`prctl(PR_SET_NO_NEW_PRIVS, 1)`), which lets a process without
/// `CAP_SYS_ADMIN` install seccomp filters; it cannot be unset and is inherited across `fork` and `exec`.
pub fn set_no_new_privs() -> Result<(), InstallError> {
    let (one, zero): (c_ulong, c_ulong) = (1, 0);
    // SAFETY: PR_SET_NO_NEW_PRIVS reads only its integer arguments (1, then three zeros as the kernel requires, all
    // passed at register width) and touches no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) };
    Errno::result(ret).map(drop).map_err(|source| InstallError::Sys {
        step: Step::SetNoNewPrivs,
        source,
    })
}

/// The smallest program: allow every call (`BPF_RET | BPF_K`, `SECCOMP_RET_ALLOW`), for tests that install one
/// without the compiler.
#[cfg(test)]
pub(crate) fn allow_all() -> [sock_filter; 1] {
    [sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_step_and_give_hints() {
        let sys = |flags, source| InstallError::Sys {
            step: Step::SetModeFilter(flags),
            source,
        };
        let killable = InstallFlags::NEW_LISTENER | InstallFlags::WAIT_KILLABLE_RECV;
        let hints = |e: &InstallError| {
            crate::error::Chain::asking(e, crate::error::hints_of)
                .hints()
                .to_vec()
        };
        let killable = sys(killable, Errno::EINVAL);
        assert_eq!(
            killable.to_string(),
            "seccomp(SECCOMP_SET_MODE_FILTER, flags NEW_LISTENER|WAIT_KILLABLE_RECV) failed"
        );
        assert_eq!(
            hints(&killable),
            ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs Linux ≥ 5.19"]
        );
        assert!(hints(&sys(InstallFlags::NEW_LISTENER, Errno::EBUSY))[0].starts_with("a seccomp listener"));
        let efault = sys(InstallFlags::NONE, Errno::EFAULT);
        assert_eq!(
            efault.to_string(),
            "seccomp(SECCOMP_SET_MODE_FILTER, flags none) failed"
        );
        assert!(hints(&efault).is_empty());
        let nnp = InstallError::Sys {
            step: Step::SetNoNewPrivs,
            source: Errno::EPERM,
        };
        assert_eq!(nnp.to_string(), "prctl(PR_SET_NO_NEW_PRIVS) failed");
        assert_eq!(
            std::error::Error::source(&nnp).unwrap().to_string(),
            Errno::EPERM.to_string()
        );
        let flags = InstallFlags::TSYNC | InstallFlags::NEW_LISTENER;
        let refused = InstallError::IncompatibleFlags {
            flags,
            reason: flags.incompatibility().unwrap(),
        };
        assert!(
            refused
                .to_string()
                .starts_with("seccomp flags TSYNC|NEW_LISTENER cannot be used together: ")
        );
        assert_eq!(InstallFlags::default(), InstallFlags::NONE);
        assert_eq!(InstallFlags::WAIT_KILLABLE_RECV.bits(), 1 << 5);
    }
}
