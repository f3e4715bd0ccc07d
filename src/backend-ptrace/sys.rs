//! The ptrace backend's one chokepoint for raw calls: seizing the launched tracee (launching it is
//! `crate::sys::launch`'s), ptrace requests nix does not wrap (PTRACE_LISTEN, PTRACE_GET_SYSCALL_INFO's union,
//! restarts that re-deliver a real-time signal), register edits, reads of the tracee's memory, and the signal that
//! wakes an attached tracer out of `waitpid` (`phoebe monitor --backend ptrace`).
//! Everything above this file is safe code.
//!
//! [`Kernel`] is the seam the tracer (`mod.rs`) talks through: [`Real`] forwards to the functions here, and the
//! unit tests' `fake.rs` answers from a script of recorded statuses and syscall stops.

use std::ffi::CString;

use nix::{
    errno::Errno,
    sys::{
        ptrace,
        signal::{Signal, kill},
        wait::WaitPidFlag,
    },
    unistd::Pid,
};

use phoebe_filter::{InstallFlags, NATIVE_AUDIT_ARCH};
use phoebe_sys::{
    launch::{Child, Command, LaunchError},
    wait::{self, Status},
};

/// What the ptrace tracers ask of the kernel, and nothing else: the seam below their logic (task table, in-flight
/// calls, exec leader swaps, group stops, delays; the attach tracer's detach). Each method is the function of this file (or of
/// `crate::sys::wait`) with the same name; errors are the kernel's errno, interpreted by the tracer.
pub trait Kernel {
    /// `waitpid(-1, flags)` for any tracee, decoded.
    fn wait(&mut self, flags: WaitPidFlag) -> Result<Option<Status>, Errno>;
    /// [`syscall_info`]: the current syscall stop of a stopped tracee.
    fn syscall_info(&mut self, pid: Pid) -> Result<SyscallStop, Errno>;
    /// `PTRACE_GETEVENTMSG`: a new task's tid, the former tid at an exec, the seccomp filter's data.
    fn event_msg(&mut self, pid: Pid) -> Result<libc::c_long, Errno>;
    /// [`skip_syscall`].
    fn skip_syscall(&mut self, pid: Pid, errno: i32) -> Result<(), Errno>;
    /// [`set_return`].
    fn set_return(&mut self, pid: Pid, value: i64) -> Result<(), Errno>;
    /// [`set_arg`].
    fn set_arg(&mut self, pid: Pid, index: usize, value: u64) -> Result<(), Errno>;
    /// [`restart`].
    fn restart(&mut self, pid: Pid, how: Resume, signal: i32) -> Result<(), Errno>;
    /// [`listen`].
    fn listen(&mut self, pid: Pid) -> Result<(), Errno>;
    /// `PTRACE_INTERRUPT`: stop a seized tracee (`PTRACE_EVENT_STOP`); a no-op for one already stopped.
    fn interrupt(&mut self, pid: Pid) -> Result<(), Errno>;
    /// SIGKILL to a tracee, errors ignored (it may be gone).
    fn kill(&mut self, pid: Pid);
    /// [`phoebe_sys::signal::tgkill`]: a signal to one thread, which a stopped tracee takes when it resumes.
    fn tgkill(&mut self, tgid: Pid, tid: Pid, signal: i32) -> Result<(), Errno>;
}

/// The kernel itself: every method is a direct call (a zero-sized type, no allocation).
pub struct Real;

impl Kernel for Real {
    fn wait(&mut self, flags: WaitPidFlag) -> Result<Option<Status>, Errno> {
        wait::waitpid(None, flags)
    }

    fn syscall_info(&mut self, pid: Pid) -> Result<SyscallStop, Errno> {
        syscall_info(pid)
    }

    fn event_msg(&mut self, pid: Pid) -> Result<libc::c_long, Errno> {
        ptrace::getevent(pid)
    }

    fn skip_syscall(&mut self, pid: Pid, errno: i32) -> Result<(), Errno> {
        skip_syscall(pid, errno)
    }

    fn set_return(&mut self, pid: Pid, value: i64) -> Result<(), Errno> {
        set_return(pid, value)
    }

    fn set_arg(&mut self, pid: Pid, index: usize, value: u64) -> Result<(), Errno> {
        set_arg(pid, index, value)
    }

    fn restart(&mut self, pid: Pid, how: Resume, signal: i32) -> Result<(), Errno> {
        restart(pid, how, signal)
    }

    fn listen(&mut self, pid: Pid) -> Result<(), Errno> {
        listen(pid)
    }

    fn interrupt(&mut self, pid: Pid) -> Result<(), Errno> {
        ptrace::interrupt(pid)
    }

    fn kill(&mut self, pid: Pid) {
        let _ = kill(pid, Signal::SIGKILL);
    }

    fn tgkill(&mut self, tgid: Pid, tid: Pid, signal: i32) -> Result<(), Errno> {
        phoebe_sys::signal::tgkill(tgid, tid, signal)
    }
}

/// What a syscall stop is, from PTRACE_GET_SYSCALL_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallStop {
    /// Syscall-entry-stop (PTRACE_SYSCALL) or seccomp stop (RET_TRACE): the call has not run.
    /// `ip`: where the thread made the call (its instruction pointer).
    Entry {
        nr: u64,
        args: [u64; 6],
        native: bool,
        ip: u64,
    },
    /// Syscall-exit-stop: the call ran and returns `rval`.
    Exit { rval: i64, is_error: bool },
    /// Not a syscall stop.
    Other,
}

/// Reads the current syscall stop of a stopped tracee.
///
/// Not `nix::sys::ptrace::syscall_info`: nix 0.30 passes 0 as the buffer size (the `addr` argument), so the
/// kernel copies nothing and nix reads uninitialised memory.
pub fn syscall_info(pid: Pid) -> Result<SyscallStop, Errno> {
    let mut info = std::mem::MaybeUninit::<libc::ptrace_syscall_info>::zeroed();
    let size = std::mem::size_of::<libc::ptrace_syscall_info>();
    // SAFETY: `info` is a writable buffer of exactly `size` bytes, which is what the kernel is told it may fill;
    // the kernel validates that `pid` is our tracee in a ptrace stop.
    let ret = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            size,
            info.as_mut_ptr(),
        )
    };
    Errno::result(ret)?;
    // SAFETY: the buffer was zero-initialised and every field is plain data, so any prefix the kernel filled
    // (it fills at most `size` bytes) leaves a valid value.
    let info = unsafe { info.assume_init() };
    let native = info.arch == NATIVE_AUDIT_ARCH;
    Ok(match info.op {
        // SAFETY: op ENTRY means the kernel filled the `entry` member of the union.
        libc::PTRACE_SYSCALL_INFO_ENTRY => unsafe {
            SyscallStop::Entry {
                nr: info.u.entry.nr,
                args: info.u.entry.args,
                native,
                ip: info.instruction_pointer,
            }
        },
        // SAFETY: op SECCOMP means the kernel filled the `seccomp` member of the union.
        libc::PTRACE_SYSCALL_INFO_SECCOMP => unsafe {
            SyscallStop::Entry {
                nr: info.u.seccomp.nr,
                args: info.u.seccomp.args,
                native,
                ip: info.instruction_pointer,
            }
        },
        // SAFETY: op EXIT means the kernel filled the `exit` member of the union.
        libc::PTRACE_SYSCALL_INFO_EXIT => unsafe {
            SyscallStop::Exit {
                rval: info.u.exit.sval,
                is_error: info.u.exit.is_error != 0,
            }
        },
        _ => SyscallStop::Other,
    })
}

/// At an entry or seccomp stop: skip the call and make it return `-errno` (x86_64: `orig_rax = -1`,
/// `rax = -errno`; one stop suffices under seccomp: docs/architecture.md, "A ptrace run", step 6).
#[cfg(target_arch = "x86_64")]
pub fn skip_syscall(pid: Pid, errno: i32) -> Result<(), Errno> {
    let mut regs = ptrace::getregs(pid)?;
    regs.orig_rax = u64::MAX;
    regs.rax = (-i64::from(errno)) as u64;
    ptrace::setregs(pid, regs)
}

/// At an exit stop: make the call return `value`.
#[cfg(target_arch = "x86_64")]
pub fn set_return(pid: Pid, value: i64) -> Result<(), Errno> {
    let mut regs = ptrace::getregs(pid)?;
    regs.rax = value as u64;
    ptrace::setregs(pid, regs)
}

/// At an entry or seccomp stop, or an exit stop: set the call's argument `index` (0-based, < 6) to `value`. At an
/// entry the call runs with it; at an exit it restores what the target had in that register (x86_64's syscall ABI
/// preserves the argument registers, so the target may rely on it).
#[cfg(target_arch = "x86_64")]
pub fn set_arg(pid: Pid, index: usize, value: u64) -> Result<(), Errno> {
    let mut regs = ptrace::getregs(pid)?;
    let slot = match index {
        0 => &mut regs.rdi,
        1 => &mut regs.rsi,
        2 => &mut regs.rdx,
        3 => &mut regs.r10,
        4 => &mut regs.r8,
        5 => &mut regs.r9,
        _ => return Err(Errno::EINVAL),
    };
    *slot = value;
    ptrace::setregs(pid, regs)
}

#[cfg(not(target_arch = "x86_64"))]
pub fn set_arg(_pid: Pid, _index: usize, _value: u64) -> Result<(), Errno> {
    Err(Errno::ENOTSUP)
}

#[cfg(not(target_arch = "x86_64"))]
pub fn skip_syscall(_pid: Pid, _errno: i32) -> Result<(), Errno> {
    // Injection edits registers; only the x86_64 layout is implemented so far.
    Err(Errno::ENOTSUP)
}

#[cfg(not(target_arch = "x86_64"))]
pub fn set_return(_pid: Pid, _value: i64) -> Result<(), Errno> {
    Err(Errno::ENOTSUP)
}

/// How to restart a stopped tracee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Stop again at the next syscall entry and exit (`PTRACE_SYSCALL`).
    Syscall,
    /// Run until the next event or seccomp stop (`PTRACE_CONT`).
    Cont,
    /// Let the task go (`PTRACE_DETACH`).
    Detach,
}

/// Restarts a stopped tracee, delivering `signal` (0: none). Not nix's `ptrace::syscall`/`cont`/`detach`: those take
/// a `Signal`, which cannot hold a real-time signal, so a signal-delivery-stop by one could not be re-delivered.
pub fn restart(pid: Pid, how: Resume, signal: i32) -> Result<(), Errno> {
    let request = match how {
        Resume::Syscall => libc::PTRACE_SYSCALL,
        Resume::Cont => libc::PTRACE_CONT,
        Resume::Detach => libc::PTRACE_DETACH,
    };
    // SAFETY: these requests take no address and the signal number as data, passed by value (no pointer is
    // dereferenced); the kernel validates that `pid` is our stopped tracee and that the signal is valid.
    let ret = unsafe {
        libc::ptrace(
            request,
            pid.as_raw(),
            std::ptr::null_mut::<libc::c_void>(),
            signal as libc::c_long as *mut libc::c_void,
        )
    };
    Errno::result(ret).map(drop)
}

/// PTRACE_LISTEN: leave a tracee in its group-stop but let it be woken by SIGCONT (nix has no wrapper).
pub fn listen(pid: Pid) -> Result<(), Errno> {
    // SAFETY: PTRACE_LISTEN takes no address or data; the kernel validates that `pid` is our tracee in a
    // group-stop and fails with ESRCH/EIO otherwise.
    let ret = unsafe {
        libc::ptrace(
            libc::PTRACE_LISTEN,
            pid.as_raw(),
            std::ptr::null_mut::<libc::c_void>(),
            0usize,
        )
    };
    Errno::result(ret).map(drop)
}

/// The signal that wakes the attaching tracer thread out of a blocking `waitpid` (SIGURG: ignored by default, so
/// a stray one sent to phoebe changes nothing, and phoebe uses it for nothing else).
pub const WAKE: libc::c_int = libc::SIGURG;

extern "C" fn on_wake(_signal: libc::c_int) {
    // Nothing to do: being delivered is the point, it makes the blocked `waitpid` return EINTR.
}

/// Installs a handler for [`WAKE`] *without* SA_RESTART, so that a [`wake`] sent to a thread blocked in `waitpid`
/// makes it return EINTR instead of restarting. Idempotent.
pub fn install_wake_handler() -> Result<(), Errno> {
    // SAFETY: all-zero bytes are a valid `sigaction` (no flags, empty mask); the handler and mask are set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_wake as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = 0;
    // SAFETY: `action.sa_mask` is a valid, writable sigset_t owned by `action`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is fully initialised and its handler touches nothing, so it is async-signal-safe; a null
    // old-action pointer is allowed.
    let ret = unsafe { libc::sigaction(WAKE, &action, std::ptr::null_mut()) };
    Errno::result(ret).map(drop)
}

/// Sends [`WAKE`] to one thread of phoebe (the attaching tracer).
pub fn wake(thread: libc::pthread_t) -> Result<(), Errno> {
    // SAFETY: `thread` comes from a `JoinHandle` the caller still holds, so it names a thread that has not been
    // joined (its id cannot have been reused); WAKE has a handler installed by `install_wake_handler`.
    let ret = unsafe { libc::pthread_kill(thread, WAKE) };
    // pthread_kill returns the error number instead of setting errno.
    if ret == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(ret))
    }
}

/// Why the tracee could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error("cannot resume the stopped child with SIGCONT")]
    Continue(#[source] Errno),
    #[error("cannot attach to the child with PTRACE_SEIZE")]
    Seize(#[source] Errno),
}

impl phoebe_core::hint::Hinted for SpawnError {
    fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            SpawnError::Seize(_) => {
                Some("ptrace needs the same uid or CAP_SYS_PTRACE, and kernel.yama.ptrace_scope ≤ 1".into())
            }
            SpawnError::Launch(_) | SpawnError::Continue(_) => None,
        }
    }
}

/// Launches a child that stops itself (`sys::launch`), seizes it with `options`, then continues it: it installs
/// `filter` if any and execs `program` with `argv` and the current environment.
pub fn spawn_traced(
    program: &CString,
    argv: &[CString],
    filter: Option<&[libc::sock_filter]>,
    options: ptrace::Options,
) -> Result<Child, SpawnError> {
    let mut command = Command::exec(program, argv).stop_before_exec();
    if let Some(prog) = filter {
        command = command.filter(prog, InstallFlags::NONE);
    }
    let child = command.spawn()?;
    if let Err(e) = ptrace::seize(child.pid, options) {
        child.kill();
        return Err(SpawnError::Seize(e));
    }
    if let Err(e) = child.cont() {
        child.kill();
        return Err(SpawnError::Continue(e));
    }
    Ok(child)
}
