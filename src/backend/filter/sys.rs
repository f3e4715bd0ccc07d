//! The one chokepoint for the raw calls that put a seccomp filter on the calling thread: `seccomp(2)` and
//! `prctl(PR_SET_NO_NEW_PRIVS)`.
//!
//! In phoebe these run in a forked child between `fork` and `exec`, so nothing here allocates: [`install`] takes an
//! already compiled program, and its errors carry only an errno, a step and flags (the message is formatted later,
//! by whoever displays it).

use std::{
    borrow::Cow,
    fmt,
    ops::BitOr,
    os::fd::{FromRawFd, OwnedFd, RawFd},
};

use libc::{c_long, c_ulong, sock_filter, sock_fprog};
use nix::errno::Errno;

use super::{FilterError, MAX_INSNS};
use crate::hint::Hint;

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

/// The raw call that failed, for [`FilterError::Sys`].
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

/// The hint of a [`FilterError::Sys`], if its errno says what to do.
pub(super) fn hint(step: &Step, errno: &Errno) -> Option<Cow<'static, str>> {
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

/// Installs `prog` (from [`super::compile`]) as a seccomp filter on the calling thread, or on every thread with
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
pub fn install(prog: &[sock_filter], flags: InstallFlags) -> Result<Option<OwnedFd>, FilterError> {
    if let Some(reason) = flags.incompatibility() {
        return Err(FilterError::IncompatibleFlags { flags, reason });
    }
    if prog.is_empty() {
        return Err(FilterError::Empty);
    }
    let len = u16::try_from(prog.len())
        .ok()
        .filter(|_| prog.len() <= MAX_INSNS)
        .ok_or(FilterError::TooLong {
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
    .map_err(|source| FilterError::Sys {
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
        return Err(FilterError::TsyncFailed { tid: ret });
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
pub fn set_no_new_privs() -> Result<(), FilterError> {
    let (one, zero): (c_ulong, c_ulong) = (1, 0);
    // SAFETY: PR_SET_NO_NEW_PRIVS reads only its integer arguments (1, then three zeros as the kernel requires, all
    // passed at register width) and touches no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) };
    Errno::result(ret).map(drop).map_err(|source| FilterError::Sys {
        step: Step::SetNoNewPrivs,
        source,
    })
}

#[cfg(test)]
mod tests {
    //! Every test that installs a filter does it in a forked child (a filter cannot be removed). The child runs only
    //! code that does not allocate (the program is compiled before the fork) and reports through its exit code.

    use std::os::fd::AsRawFd;

    use nix::{
        sys::wait::WaitPidFlag,
        unistd::{ForkResult, fork},
    };

    use super::{
        super::{Action, Policy, compile},
        *,
    };
    use crate::{
        sys::wait::{Status, waitpid},
        testing::skipped,
    };

    /// Runs `child` in a forked child (killed after 10 s) and returns how the child ended.
    fn in_child(child: &dyn Fn() -> i32) -> Status {
        let _children = crate::sys::children_lock();
        // SAFETY: the child calls only async-signal-safe functions (raw syscalls, alarm, _exit) on memory that existed
        // before the fork; it never allocates, takes a lock, unwinds or returns into the test harness.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                // SAFETY: alarm and _exit are async-signal-safe and take plain integers.
                unsafe {
                    libc::alarm(10);
                    libc::_exit(child())
                }
            }
            ForkResult::Parent { child } => waitpid(Some(child), WaitPidFlag::empty())
                .expect("waitpid")
                .expect("a status without WNOHANG"),
        }
    }

    fn assert_exited_0(status: Status, what: &str) {
        assert!(
            matches!(status, Status::Exited { code: 0, .. }),
            "{what}: child ended with {status:?}"
        );
    }

    /// `syscall(nr)` with no arguments, returning `Err(errno)` on failure.
    fn raw(nr: c_long) -> Result<c_long, i32> {
        // SAFETY: the probed calls take no pointer arguments (getpid, getppid, unassigned numbers).
        let ret = unsafe { libc::syscall(nr) };
        if ret == -1 {
            Err(Errno::last_raw())
        } else {
            Ok(ret)
        }
    }

    fn getppid_policy(action: Action) -> Vec<sock_filter> {
        compile(Policy::new(Action::Allow).set(libc::SYS_getppid as u32, action)).unwrap()
    }

    #[test]
    fn errno_rule_fails_only_its_syscall() {
        let prog = getppid_policy(Action::Errno(77));
        let status = in_child(&|| {
            let pid = raw(libc::SYS_getpid);
            if install(&prog, InstallFlags::NONE).is_err() {
                return 1;
            }
            if raw(libc::SYS_getppid) != Err(77) {
                return 2;
            }
            if raw(libc::SYS_getpid) != pid || pid.is_err() {
                return 3;
            }
            0
        });
        assert_exited_0(status, "getppid → EPERM-like 77, getpid untouched");
    }

    #[test]
    fn trace_without_a_tracer_is_enosys() {
        let prog = getppid_policy(Action::Trace(1));
        let status = in_child(&|| {
            if install(&prog, InstallFlags::NONE).is_err() {
                return 1;
            }
            if raw(libc::SYS_getppid) != Err(libc::ENOSYS) {
                return 2;
            }
            0
        });
        assert_exited_0(status, "RET_TRACE with no tracer");
    }

    #[test]
    fn new_listener_returns_a_valid_fd() {
        let prog = getppid_policy(Action::UserNotif);
        for flags in [
            InstallFlags::NEW_LISTENER,
            InstallFlags::NEW_LISTENER | InstallFlags::WAIT_KILLABLE_RECV,
        ] {
            let status = in_child(&|| match install(&prog, flags) {
                Ok(Some(fd)) if fd.as_raw_fd() >= 0 => {
                    // SAFETY: F_GETFD only reads the flags of an fd we own.
                    let valid = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) } >= 0;
                    if valid { 0 } else { 3 }
                }
                Ok(_) => 1,
                Err(_) => 2,
            });
            assert_exited_0(status, &format!("listener with {flags}"));
        }
    }

    #[test]
    fn without_flags_no_fd_is_returned() {
        let prog = getppid_policy(Action::Errno(1));
        let status = in_child(&|| match install(&prog, InstallFlags::SPEC_ALLOW) {
            Ok(None) => 0,
            Ok(Some(_)) => 1,
            Err(_) => 2,
        });
        assert_exited_0(status, "SPEC_ALLOW install");
    }

    #[test]
    fn eacces_without_cap_sys_admin_sets_no_new_privs_and_retries() {
        let prog = getppid_policy(Action::Errno(77));
        let status = in_child(&|| {
            let zero: c_ulong = 0;
            // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointer; the zeros, at register width, are required by the kernel.
            let nnp = || unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, zero, zero, zero, zero) };
            if nnp() != 0 {
                return 10;
            }
            // SAFETY: getuid/setuid take and return plain integers; as root, setuid to nobody drops every capability.
            if unsafe { libc::getuid() } == 0 && unsafe { libc::setuid(65534) } != 0 {
                return 11;
            }
            if install(&prog, InstallFlags::NONE).is_err() {
                return 1;
            }
            if nnp() != 1 {
                return 2;
            }
            if raw(libc::SYS_getppid) != Err(77) {
                return 3;
            }
            0
        });
        if matches!(status, Status::Exited { code: 10, .. }) {
            skipped("no_new_privs is already set in the test process, so EACCES cannot happen");
            return;
        }
        assert_exited_0(status, "install after dropping CAP_SYS_ADMIN");
    }

    /// 450 distinct actions need `ja` trampolines: the kernel must accept the program and every one of its rules
    /// must give its own errno (numbers 1000..1450 are unassigned on x86_64 and aarch64).
    #[test]
    fn kernel_runs_a_large_program_exactly_like_the_policy() {
        let mut policy = Policy::new(Action::Allow);
        for i in 0..450u16 {
            policy.set(1000 + u32::from(i), Action::Errno(i + 1));
        }
        policy.set(libc::SYS_getppid as u32, Action::Errno(77));
        let prog = compile(&policy).unwrap();
        assert!(
            prog.iter().any(|insn| insn.code == super::super::JA),
            "expected trampolines"
        );
        let status = in_child(&|| {
            if install(&prog, InstallFlags::NONE).is_err() {
                return 1;
            }
            for i in 0..450 {
                if raw(1000 + i) != Err(i as i32 + 1) {
                    return 2;
                }
            }
            if raw(libc::SYS_getppid) != Err(77)
                || raw(999) != Err(libc::ENOSYS)
                || raw(1450) != Err(libc::ENOSYS)
            {
                return 3;
            }
            if raw(libc::SYS_getpid).is_err() {
                return 4;
            }
            0
        });
        assert_exited_0(status, "450-rule program in the kernel");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_calls_get_the_other_abi_action() {
        let mut policy = Policy::new(Action::Allow);
        policy
            .set(libc::SYS_getppid as u32, Action::Errno(77))
            .other_abi(Action::Errno(66));
        let prog = compile(&policy).unwrap();
        let status = in_child(&|| {
            if install(&prog, InstallFlags::NONE).is_err() {
                return 1;
            }
            if raw(0x4000_0000 | libc::SYS_getppid) != Err(66)
                || raw(0x4000_0000 | libc::SYS_getpid) != Err(66)
            {
                return 2;
            }
            if raw(libc::SYS_getppid) != Err(77) || raw(libc::SYS_getpid).is_err() {
                return 3;
            }
            0
        });
        assert_exited_0(status, "x32 numbers");
    }

    /// An i386 `int 0x80` call from a 64-bit process reports `AUDIT_ARCH_I386`.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn foreign_arch_calls_get_the_other_abi_action() {
        let mut policy = Policy::new(Action::Allow);
        policy.other_abi(Action::Errno(66));
        let prog = compile(&policy).unwrap();
        let status = in_child(&|| {
            if install(&prog, InstallFlags::NONE).is_err() {
                return 1;
            }
            let ret: i32;
            // SAFETY: i386 getpid (20) takes no arguments; int 0x80 returns in eax, and the kernel may clear r8–r11,
            // which are declared clobbered.
            unsafe {
                std::arch::asm!(
                    "int 0x80",
                    inlateout("eax") 20 => ret,
                    out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                );
            }
            if ret != -66 {
                return 2;
            }
            0
        });
        if let Status::Signaled {
            signal: libc::SIGSEGV,
            ..
        } = status
        {
            skipped("int 0x80 is not available (kernel without IA32 emulation)");
            return;
        }
        assert_exited_0(status, "int 0x80");
    }

    #[test]
    fn refused_flags_and_bad_lengths_fail_before_the_kernel() {
        let prog = getppid_policy(Action::Errno(1));
        let too_long = vec![prog[prog.len() - 1]; MAX_INSNS + 1];
        // Each case would be EINVAL from the kernel anyway; still, run it in a child in case one gets through.
        let status = in_child(&|| {
            let cases = [
                (&prog[..], InstallFlags::NEW_LISTENER | InstallFlags::TSYNC, 1),
                (&prog[..], InstallFlags::WAIT_KILLABLE_RECV, 2),
                (&[][..], InstallFlags::NONE, 3),
                (&too_long[..], InstallFlags::NONE, 4),
            ];
            for (prog, flags, code) in cases {
                match (code, install(prog, flags)) {
                    (1 | 2, Err(FilterError::IncompatibleFlags { .. })) => {}
                    (3, Err(FilterError::Empty)) => {}
                    (
                        4,
                        Err(FilterError::TooLong {
                            len: 4097,
                            limit: 4096,
                        }),
                    ) => {}
                    _ => return code,
                }
            }
            0
        });
        assert_exited_0(status, "pre-kernel validation");
    }

    #[test]
    fn messages_name_the_step_and_give_hints() {
        let sys = |flags, source| FilterError::Sys {
            step: Step::SetModeFilter(flags),
            source,
        };
        let killable = InstallFlags::NEW_LISTENER | InstallFlags::WAIT_KILLABLE_RECV;
        let hints = |e: &FilterError| crate::sys::error::Chain::new(e).hints().to_vec();
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
        let nnp = FilterError::Sys {
            step: Step::SetNoNewPrivs,
            source: Errno::EPERM,
        };
        assert_eq!(nnp.to_string(), "prctl(PR_SET_NO_NEW_PRIVS) failed");
        assert_eq!(
            std::error::Error::source(&nnp).unwrap().to_string(),
            Errno::EPERM.to_string()
        );
        let flags = InstallFlags::TSYNC | InstallFlags::NEW_LISTENER;
        let refused = FilterError::IncompatibleFlags {
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
