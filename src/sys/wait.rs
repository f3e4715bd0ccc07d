//! Waiting for children and tracees: `waitpid(2)` called directly and its status decoded here, once, for every wait
//! loop of phoebe (the ptrace tracer, the ptrace attach thread, the seccomp and eBPF reapers, the launcher, doctor).
//!
//! Why not nix's `waitpid`: nix 0.30 turns the status into a `Signal`, which has no real-time signals, so a stop or
//! a death by signal 32..=64 makes it return EINVAL — after the kernel has already handed the status over, so the
//! event is lost. glibc sends SIGRT_1 (33) to every thread of a process that calls `setuid`/`setgid` while it has
//! threads; any target can be killed by `SIGRTMIN+n`. Signals are therefore plain numbers here.
//!
//! Owns: [`Status`] (a decoded status), [`waitpid`], and the one conversion of a status into
//! [`TargetExit`]. Does not own what a loop does with a status.

use nix::{errno::Errno, sys::wait::WaitPidFlag, unistd::Pid};

use crate::model::TargetExit;

/// `PTRACE_EVENT_STOP`: a group-stop or a `PTRACE_INTERRUPT` stop of a seized tracee.
pub const EVENT_STOP: i32 = libc::PTRACE_EVENT_STOP;

/// One decoded wait status. Signals are raw numbers (1..=64), real-time ones included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The task exited with `code`.
    Exited { pid: Pid, code: i32 },
    /// A signal ended the task.
    Signaled {
        pid: Pid,
        signal: i32,
        core_dumped: bool,
    },
    /// Stopped by `signal`: for a tracee, a signal-delivery-stop (the signal is re-injected when it is resumed);
    /// for a child waited for with `WUNTRACED`, a plain stop.
    Stopped { pid: Pid, signal: i32 },
    /// A syscall-entry or -exit stop of a tracee (`PTRACE_O_TRACESYSGOOD`: `SIGTRAP | 0x80`).
    Syscall { pid: Pid },
    /// A ptrace event stop (`status >> 16`: `PTRACE_EVENT_*`); with [`EVENT_STOP`], `signal` is the stop signal
    /// of a group-stop, or SIGTRAP for a `PTRACE_INTERRUPT`.
    Event { pid: Pid, signal: i32, event: i32 },
    /// Resumed by SIGCONT (`WCONTINUED`).
    Continued { pid: Pid },
}

impl Status {
    /// Decodes the `status` that `waitpid` returned for `pid`.
    pub fn decode(pid: Pid, status: i32) -> Status {
        if libc::WIFEXITED(status) {
            Status::Exited {
                pid,
                code: libc::WEXITSTATUS(status),
            }
        } else if libc::WIFSIGNALED(status) {
            Status::Signaled {
                pid,
                signal: libc::WTERMSIG(status),
                core_dumped: libc::WCOREDUMP(status),
            }
        } else if libc::WIFSTOPPED(status) {
            let signal = libc::WSTOPSIG(status);
            let event = (status >> 16) & 0xff;
            if event != 0 {
                Status::Event { pid, signal, event }
            } else if signal == libc::SIGTRAP | 0x80 {
                Status::Syscall { pid }
            } else {
                Status::Stopped { pid, signal }
            }
        } else {
            // WIFCONTINUED: the only other status the kernel reports.
            Status::Continued { pid }
        }
    }

    /// The task this status is about.
    pub fn pid(&self) -> Pid {
        match *self {
            Status::Exited { pid, .. }
            | Status::Signaled { pid, .. }
            | Status::Stopped { pid, .. }
            | Status::Syscall { pid }
            | Status::Event { pid, .. }
            | Status::Continued { pid } => pid,
        }
    }

    /// How the task ended, if it did: the one conversion of a wait status into a [`TargetExit`].
    pub fn exit(&self) -> Option<TargetExit> {
        match *self {
            Status::Exited { code, .. } => Some(TargetExit::Code(code)),
            Status::Signaled { signal, .. } => Some(TargetExit::Signal(signal)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Status::Exited { pid, code } => write!(f, "pid {pid} exited with status {code}"),
            Status::Signaled { pid, signal, .. } => write!(f, "pid {pid} was killed by signal {signal}"),
            Status::Stopped { pid, signal } => write!(f, "pid {pid} stopped by signal {signal}"),
            Status::Syscall { pid } => write!(f, "pid {pid} stopped at a syscall"),
            Status::Event { pid, event, .. } => write!(f, "pid {pid} stopped at ptrace event {event}"),
            Status::Continued { pid } => write!(f, "pid {pid} continued"),
        }
    }
}

/// How a process phoebe waited for through `std::process` ended (`ExitStatus::into_raw` is the same wait
/// status): the same conversion as [`Status::exit`]. `None` for a stop or a continue.
pub fn exit_of_raw(status: i32) -> Option<TargetExit> {
    Status::decode(Pid::from_raw(0), status).exit()
}

/// `waitpid(pid or -1, flags)`: `Ok(None)` when `WNOHANG` is set and no status is ready. EINTR and ECHILD are
/// returned to the caller, who knows what they mean in its loop.
pub fn waitpid(pid: Option<Pid>, flags: WaitPidFlag) -> Result<Option<Status>, Errno> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a live, writable c_int for the kernel to fill; waitpid takes no other pointer.
    let ret = unsafe { libc::waitpid(pid.map_or(-1, Pid::as_raw), &mut status, flags.bits()) };
    let ret = Errno::result(ret)?;
    if ret == 0 {
        return Ok(None);
    }
    Ok(Some(Status::decode(Pid::from_raw(ret), status)))
}

/// Reaps `pid` after it was killed, ignoring every error (it may be reaped already).
pub fn reap(pid: Pid) {
    loop {
        match waitpid(Some(pid), WaitPidFlag::__WALL) {
            Err(Errno::EINTR) => {}
            Ok(Some(status)) if status.exit().is_none() => {}
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: Pid = Pid::from_raw(42);

    fn decode(status: i32) -> Status {
        Status::decode(PID, status)
    }

    #[test]
    fn exits_decode_with_their_code() {
        assert_eq!(decode(0x0000), Status::Exited { pid: PID, code: 0 });
        assert_eq!(decode(0x0100), Status::Exited { pid: PID, code: 1 });
        assert_eq!(decode(0x7f00), Status::Exited { pid: PID, code: 127 });
        assert_eq!(decode(0xff00).exit(), Some(TargetExit::Code(255)));
    }

    #[test]
    fn deaths_by_classic_signals_decode_with_the_core_flag() {
        assert_eq!(
            decode(libc::SIGKILL),
            Status::Signaled {
                pid: PID,
                signal: 9,
                core_dumped: false
            }
        );
        // SIGSEGV with a core dump: 0x80 | 11.
        assert_eq!(
            decode(0x8b),
            Status::Signaled {
                pid: PID,
                signal: 11,
                core_dumped: true
            }
        );
        assert_eq!(decode(0x8b).exit(), Some(TargetExit::Signal(11)));
    }

    #[test]
    fn regression_realtime_signal_death_is_not_einval() {
        // SIGRTMIN+2 (36), the highest real-time signal (64), and SIGRT_1 (33) as glibc's setxid broadcast uses.
        for signal in [32, 33, 36, 64] {
            let status = decode(signal);
            assert_eq!(
                status,
                Status::Signaled {
                    pid: PID,
                    signal,
                    core_dumped: false
                }
            );
            assert_eq!(status.exit(), Some(TargetExit::Signal(signal)));
            assert_eq!(status.exit().unwrap().shell_status(), 128 + signal);
        }
        assert_eq!(exit_of_raw(36), Some(TargetExit::Signal(36)));
    }

    #[test]
    fn regression_realtime_signal_stop_is_not_einval() {
        // A signal-delivery-stop by SIGRT_1 (33), as every thread of a setgid-calling threaded program gets.
        assert_eq!(decode((33 << 8) | 0x7f), Status::Stopped { pid: PID, signal: 33 });
        assert_eq!(decode((64 << 8) | 0x7f), Status::Stopped { pid: PID, signal: 64 });
        assert_eq!(decode((33 << 8) | 0x7f).exit(), None);
    }

    #[test]
    fn classic_stops_and_continues_decode() {
        assert_eq!(decode(0x137f), Status::Stopped { pid: PID, signal: 19 }); // SIGSTOP
        assert_eq!(decode(0x057f), Status::Stopped { pid: PID, signal: 5 }); // SIGTRAP without 0x80
        assert_eq!(decode(0xffff), Status::Continued { pid: PID });
    }

    #[test]
    fn syscall_stops_carry_the_0x80_bit() {
        assert_eq!(decode(0x857f), Status::Syscall { pid: PID });
    }

    #[test]
    fn event_stops_carry_the_event_in_the_high_bits() {
        let event = |e: i32, sig: i32| (e << 16) | (sig << 8) | 0x7f;
        for e in [
            libc::PTRACE_EVENT_FORK,
            libc::PTRACE_EVENT_VFORK,
            libc::PTRACE_EVENT_CLONE,
            libc::PTRACE_EVENT_EXEC,
            libc::PTRACE_EVENT_SECCOMP,
        ] {
            assert_eq!(
                decode(event(e, libc::SIGTRAP)),
                Status::Event {
                    pid: PID,
                    signal: libc::SIGTRAP,
                    event: e
                }
            );
        }
        assert_eq!(
            decode((libc::PTRACE_EVENT_CLONE << 16) | 0x57f),
            decode(event(3, 5))
        );
        // Group-stops of a seized tracee: PTRACE_EVENT_STOP with the stop signal; an interrupt has SIGTRAP.
        assert_eq!(
            decode(event(EVENT_STOP, libc::SIGTSTP)),
            Status::Event {
                pid: PID,
                signal: libc::SIGTSTP,
                event: EVENT_STOP
            }
        );
        assert_eq!(decode(0x0080_057f), decode(event(EVENT_STOP, libc::SIGTRAP)));
        assert_eq!(decode(event(EVENT_STOP, 19)).exit(), None);
    }

    #[test]
    fn a_real_child_killed_by_a_realtime_signal_is_reported_with_its_number() {
        let _children = phoebe_core::testing::children_lock();
        // SAFETY: the child only calls raise and _exit, both async-signal-safe.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                // SAFETY: raise and _exit take no pointers; _exit skips the test runner's atexit handlers.
                unsafe {
                    libc::raise(libc::SIGRTMIN() + 2);
                    libc::_exit(0)
                }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = waitpid(Some(child), WaitPidFlag::empty()).expect("waitpid");
                assert_eq!(
                    status.and_then(|s| s.exit()),
                    Some(TargetExit::Signal(libc::SIGRTMIN() + 2))
                );
            }
        }
    }
}
