//! Compiled programs installed in the kernel (`sys::seccomp::install`): they do what the compiler says. Every
//! test that installs a filter does it in a forked child (a filter cannot be removed). The child runs only code
//! that does not allocate (the program is compiled before the fork) and reports through its exit code.

use std::os::fd::AsRawFd;

use libc::{c_long, c_ulong, sock_filter};
use nix::{
    errno::Errno,
    sys::wait::WaitPidFlag,
    unistd::{ForkResult, fork},
};

use super::{Action, Policy, compile};
use phoebe_core::testing::skipped;
use phoebe_sys::{
    seccomp::{InstallError, InstallFlags, MAX_INSNS, install},
    wait::{Status, waitpid},
};

/// Runs `child` in a forked child (killed after 10 s) and returns how the child ended.
fn in_child(child: &dyn Fn() -> i32) -> Status {
    let _children = phoebe_core::testing::children_lock();
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
        // SAFETY: getuid takes nothing and returns a plain integer.
        let root = unsafe { libc::getuid() } == 0;
        // SAFETY: setuid takes and returns plain integers; as root, setuid to nobody drops every capability.
        if root && unsafe { libc::setuid(65534) } != 0 {
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
        prog.iter().any(|insn| insn.code == super::JA),
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
        if raw(0x4000_0000 | libc::SYS_getppid) != Err(66) || raw(0x4000_0000 | libc::SYS_getpid) != Err(66) {
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
                (1 | 2, Err(InstallError::IncompatibleFlags { .. })) => {}
                (3, Err(InstallError::Empty)) => {}
                (
                    4,
                    Err(InstallError::TooLong {
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
