//! A fake [`Kernel`] for the tracer's unit tests (`tests.rs`): it replays a script of recorded stops — the raw wait
//! status as the kernel encodes it, decoded by `Status::decode`, with what `PTRACE_GET_SYSCALL_INFO` and
//! `PTRACE_GETEVENTMSG` answered at that stop — and records every request the tracer makes (restarts with their
//! signal, register edits, skips, listens, kills). When the script is exhausted, a `WNOHANG` wait finds nothing
//! ready (a tracee held by `delay=` is still stopped) and a blocking one finds no tracee left (`ECHILD`).
//!
//! Owns: nothing the real path uses. Does not model the kernel beyond answering at the current stop of a task.

use std::collections::{HashMap, VecDeque};

use nix::{errno::Errno, sys::wait::WaitPidFlag, unistd::Pid};

use phoebe_sys::wait::Status;

use crate::sys::{Kernel, Resume, SyscallStop};

/// One recorded stop.
#[derive(Debug, Clone, Copy)]
pub struct Stop {
    pub pid: Pid,
    /// The raw `waitpid` status.
    pub status: i32,
    /// What `PTRACE_GET_SYSCALL_INFO` answers at this stop (`ESRCH` when `None`).
    pub info: Option<SyscallStop>,
    /// What `PTRACE_GETEVENTMSG` answers at this stop (`ESRCH` when `None`).
    pub msg: Option<libc::c_long>,
}

/// A request the tracer made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Restart { pid: Pid, how: Resume, signal: i32 },
    Listen { pid: Pid },
    Interrupt { pid: Pid },
    Skip { pid: Pid, errno: i32 },
    SetReturn { pid: Pid, value: i64 },
    SetArg { pid: Pid, index: usize, value: u64 },
    Kill { pid: Pid },
    Signal { tgid: Pid, tid: Pid, signal: i32 },
}

#[derive(Debug, Default)]
pub struct Fake {
    script: VecDeque<Stop>,
    /// The answers at each task's current stop.
    current: HashMap<Pid, Stop>,
    /// Every request, in order.
    pub requests: Vec<Request>,
    /// What every request other than a kill fails with (recorded all the same), as a task killed meanwhile
    /// (`ESRCH`) or a broken tracer would.
    failing: Option<Errno>,
}

/// A stop by `PTRACE_SYSCALL` (`SIGTRAP | 0x80`, `PTRACE_O_TRACESYSGOOD`).
pub const SYSCALL_STOP: i32 = ((libc::SIGTRAP | 0x80) << 8) | 0x7f;

/// The raw status of a `PTRACE_EVENT_*` stop with `signal`.
pub const fn event(event: i32, signal: i32) -> i32 {
    (event << 16) | (signal << 8) | 0x7f
}

/// The raw status of a signal-delivery-stop by `signal`.
pub const fn stopped(signal: i32) -> i32 {
    (signal << 8) | 0x7f
}

/// The raw status of an exit with `code`.
pub const fn exited(code: i32) -> i32 {
    (code & 0xff) << 8
}

impl Fake {
    pub fn new() -> Self {
        Fake::default()
    }

    /// Makes every request other than a kill fail with `errno`.
    pub fn failing(mut self, errno: Errno) -> Self {
        self.failing = Some(errno);
        self
    }

    /// Records `request` and answers it.
    fn answer(&mut self, request: Request) -> Result<(), Errno> {
        self.requests.push(request);
        self.failing.map_or(Ok(()), Err)
    }

    /// Appends a stop with no syscall info or event message.
    pub fn stop(mut self, pid: Pid, status: i32) -> Self {
        self.script.push_back(Stop {
            pid,
            status,
            info: None,
            msg: None,
        });
        self
    }

    /// Appends an event stop whose `PTRACE_GETEVENTMSG` is `msg`.
    pub fn event(mut self, pid: Pid, event_: i32, msg: libc::c_long) -> Self {
        self.script.push_back(Stop {
            pid,
            status: event(event_, libc::SIGTRAP),
            info: None,
            msg: Some(msg),
        });
        self
    }

    /// Appends a `PTRACE_SYSCALL` stop showing `info`.
    pub fn syscall(mut self, pid: Pid, info: SyscallStop) -> Self {
        self.script.push_back(Stop {
            pid,
            status: SYSCALL_STOP,
            info: Some(info),
            msg: None,
        });
        self
    }

    /// Appends a seccomp stop (`RET_TRACE` with `data`) at the entry of `nr` with `args`.
    pub fn seccomp(mut self, pid: Pid, data: u16, nr: i64, args: [u64; 6]) -> Self {
        self.script.push_back(Stop {
            pid,
            status: event(libc::PTRACE_EVENT_SECCOMP, libc::SIGTRAP),
            info: Some(SyscallStop::Entry {
                nr: nr as u64,
                args,
                native: true,
                ip: 0,
            }),
            msg: Some(libc::c_long::from(data)),
        });
        self
    }

    /// The restarts of `pid`, as (request, signal).
    pub fn restarts(&self, of: Pid) -> Vec<(Resume, i32)> {
        self.requests
            .iter()
            .filter_map(|r| match *r {
                Request::Restart { pid, how, signal } if pid == of => Some((how, signal)),
                _ => None,
            })
            .collect()
    }

    /// The requests other than restarts, in order.
    pub fn edits(&self) -> Vec<Request> {
        self.requests
            .iter()
            .copied()
            .filter(|r| !matches!(r, Request::Restart { .. }))
            .collect()
    }

    fn at(&self, pid: Pid) -> Result<&Stop, Errno> {
        self.current.get(&pid).ok_or(Errno::ESRCH)
    }
}

impl Kernel for Fake {
    fn wait(&mut self, flags: WaitPidFlag) -> Result<Option<Status>, Errno> {
        let Some(stop) = self.script.pop_front() else {
            return if flags.contains(WaitPidFlag::WNOHANG) {
                Ok(None)
            } else {
                Err(Errno::ECHILD)
            };
        };
        self.current.insert(stop.pid, stop);
        Ok(Some(Status::decode(stop.pid, stop.status)))
    }

    fn syscall_info(&mut self, pid: Pid) -> Result<SyscallStop, Errno> {
        self.at(pid)?.info.ok_or(Errno::ESRCH)
    }

    fn event_msg(&mut self, pid: Pid) -> Result<libc::c_long, Errno> {
        self.at(pid)?.msg.ok_or(Errno::ESRCH)
    }

    fn skip_syscall(&mut self, pid: Pid, errno: i32) -> Result<(), Errno> {
        self.answer(Request::Skip { pid, errno })
    }

    fn set_return(&mut self, pid: Pid, value: i64) -> Result<(), Errno> {
        self.answer(Request::SetReturn { pid, value })
    }

    fn set_arg(&mut self, pid: Pid, index: usize, value: u64) -> Result<(), Errno> {
        self.answer(Request::SetArg { pid, index, value })
    }

    fn restart(&mut self, pid: Pid, how: Resume, signal: i32) -> Result<(), Errno> {
        self.answer(Request::Restart { pid, how, signal })
    }

    fn listen(&mut self, pid: Pid) -> Result<(), Errno> {
        self.answer(Request::Listen { pid })
    }

    fn interrupt(&mut self, pid: Pid) -> Result<(), Errno> {
        self.answer(Request::Interrupt { pid })
    }

    fn kill(&mut self, pid: Pid) {
        self.requests.push(Request::Kill { pid });
    }

    fn tgkill(&mut self, tgid: Pid, tid: Pid, signal: i32) -> Result<(), Errno> {
        self.answer(Request::Signal { tgid, tid, signal })
    }
}
