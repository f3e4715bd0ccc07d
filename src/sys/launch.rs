//! The one launcher of a target (or of a probe child), configured by what the child does between `fork` and
//! `exec`, always in this order:
//!
//! 1. `PR_SET_PDEATHSIG(SIGKILL)`, and exit at once if phoebe died before that (the child never runs unsupervised);
//!    then, for a child that execs, join phoebe's cgroup (`sys::contain`), so that its whole tree ends with phoebe;
//! 2. with [`Command::stop_before_exec`]: `raise(SIGSTOP)`, so that phoebe can seize it (ptrace) or put its pid in
//!    the target set (eBPF) before it runs a single instruction of the program; [`Command::spawn`] returns once the
//!    child is stopped, and [`Child::cont`] lets it go on;
//! 3. with [`Command::filter`]: install a seccomp filter (setting `no_new_privs` when the kernel asks for it);
//! 4. `execv` the program — or, for [`Command::no_exec`] (the backends' probes), `_exit(0)`.
//!
//! A failed step is written to a close-on-exec pipe as `[step, errno]` and read by [`Child::wait_exec`] or
//! [`Child::failure`]; the pipe's EOF without a report means the exec succeeded.
//!
//! The seccomp backend's listener launcher is not a `Command`: it clones with a shared descriptor table (so the
//! child must close nothing, a pipe included) and hands the listener over through shared memory with no system call
//! between its filter and `execve` (`src/backend-seccomp/sys.rs` says why). It shares [`argv_pointers`] and
//! [`die_with_parent`] with `Command`.
//! Everything the child uses is prepared before the fork, and the child only makes async-signal-safe calls.

use std::{
    ffi::{CStr, CString},
    os::fd::{AsRawFd, OwnedFd, RawFd},
};

use nix::{
    errno::Errno,
    sys::{
        signal::{Signal, kill},
        wait::WaitPidFlag,
    },
    unistd::{ForkResult, Pid, fork, getpid, pipe2},
};

use super::{
    contain,
    seccomp::{self, InstallFlags},
    wait::{self, Status},
};

/// Why the child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("fork failed")]
    Fork(#[source] Errno),
    #[error("cannot create the exec-status pipe")]
    Pipe(#[source] Errno),
    #[error("the child did not stop before exec (wait status: {0})")]
    NoInitialStop(Status),
    #[error("cannot wait for the child to stop before exec")]
    Wait(#[source] Errno),
    #[error("the child cannot join phoebe's cgroup (sys::contain)")]
    Contain(#[source] Errno),
}

/// The child's step that failed, as reported through the status pipe.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Installing the seccomp filter.
    Filter = 1,
    /// `execv`.
    Exec = 2,
    /// Joining phoebe's cgroup.
    Contain = 3,
}

/// A step of the child that failed, with its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildFailure {
    pub step: Step,
    pub errno: Errno,
}

/// What a child does before its exec, and what it execs.
pub struct Command<'a> {
    /// The program and its argv as execv wants them (null-terminated); `None`: the child exits 0 instead.
    exec: Option<(&'a CStr, Vec<*const libc::c_char>)>,
    stop: bool,
    filter: Option<(&'a [libc::sock_filter], InstallFlags)>,
    /// `cgroup.procs` of phoebe's containment, which the child joins.
    cgroup: Option<RawFd>,
}

impl<'a> Command<'a> {
    /// A child that execs `program` with `argv` and phoebe's environment (no PATH search: `backend::Target`
    /// resolved the program already, so the exec is the only one the backends see). It joins phoebe's
    /// containment when there is one.
    pub fn exec(program: &'a CString, argv: &'a [CString]) -> Self {
        Command {
            exec: Some((program.as_c_str(), argv_pointers(argv))),
            stop: false,
            filter: None,
            cgroup: contain::get().map(|c| c.procs_fd()),
        }
    }

    /// A child that runs its steps and exits with status 0 (a backend's probe: what would the kernel say?).
    pub fn no_exec() -> Self {
        Command {
            exec: None,
            stop: false,
            filter: None,
            cgroup: None,
        }
    }

    /// The child stops itself with SIGSTOP before the filter and the exec; [`Command::spawn`] waits for that stop.
    pub fn stop_before_exec(mut self) -> Self {
        self.stop = true;
        self
    }

    /// The child installs `prog` with `flags` before its exec (a listener it gets is closed at exec).
    pub fn filter(mut self, prog: &'a [libc::sock_filter], flags: InstallFlags) -> Self {
        self.filter = Some((prog, flags));
        self
    }

    /// Forks the child. With [`Command::stop_before_exec`], returns once it has stopped.
    pub fn spawn(self) -> Result<Child, LaunchError> {
        let (read_end, write_end) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(LaunchError::Pipe)?;
        let parent = getpid();
        // SAFETY: the child branch only calls async-signal-safe functions (prctl, getppid, sigprocmask, signal, raise,
        // prctl and seccomp through `seccomp::install`, which does not allocate, execv, write, _exit) on data prepared
        // before the fork, so it cannot deadlock on a lock another thread of phoebe held at fork time; it never
        // returns.
        match unsafe { fork() }.map_err(LaunchError::Fork)? {
            ForkResult::Child => {
                drop(read_end);
                self.run_child(parent, &write_end)
            }
            ForkResult::Parent { child } => {
                drop(write_end);
                let child = Child {
                    pid: child,
                    report: read_end,
                };
                if self.stop {
                    child.wait_for_stop()?;
                }
                Ok(child)
            }
        }
    }

    /// The child's side: the steps, then exec (or exit 0). Never returns.
    fn run_child(&self, parent: Pid, report_to: &OwnedFd) -> ! {
        let report = |step: Step, errno: i32| -> ! {
            let mut msg = [0u8; 5];
            msg[0] = step as u8;
            msg[1..].copy_from_slice(&errno.to_ne_bytes());
            // SAFETY: `msg` is a live 5-byte buffer and `report_to` is open in this process; _exit never returns
            // and skips the parent's atexit handlers and stdio buffers, as a forked child must.
            unsafe {
                libc::write(report_to.as_raw_fd(), msg.as_ptr().cast(), msg.len());
                libc::_exit(127)
            }
        };
        die_with_parent(parent);
        default_signals();
        if let Some(fd) = self.cgroup
            && let Err(e) = contain::join(fd)
        {
            report(Step::Contain, e as i32)
        }
        if self.stop {
            // SAFETY: raise takes no pointers; it returns once phoebe sends SIGCONT.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
        if let Some((prog, flags)) = self.filter {
            match seccomp::install(prog, flags) {
                // A listener (NEW_LISTENER) is dropped here: closed, as the exec would close it anyway.
                Ok(_) => {}
                Err(e) => report(Step::Filter, e.errno() as i32),
            }
        }
        let Some((program, argv)) = &self.exec else {
            // SAFETY: _exit ends the child at once, without the parent's atexit handlers or stdio buffers.
            unsafe { libc::_exit(0) }
        };
        // SAFETY: `program` and every pointer in `argv` point into CStrings the caller keeps alive, which are alive
        // in this (copied) address space; the array ends with a null pointer as execv requires.
        unsafe { libc::execv(program.as_ptr(), argv.as_ptr()) };
        report(Step::Exec, Errno::last_raw())
    }
}

/// argv as `execv` wants it: pointers into `argv`'s strings, then a null pointer. Built before the fork; the
/// strings must outlive the child's exec.
pub fn argv_pointers(argv: &[CString]) -> Vec<*const libc::c_char> {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    ptrs
}

/// Every launched child's first step (the seccomp listener launcher's too): die with phoebe's launching thread
/// (`PR_SET_PDEATHSIG(SIGKILL)`), and exit 127 at once if `parent` already died, instead of running unsupervised.
/// Only async-signal-safe calls: for the child between `fork` (or `clone`) and `exec`.
pub fn die_with_parent(parent: Pid) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid take no pointers; _exit ends the child without the parent's
    // atexit handlers or stdio buffers.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::getppid() != parent.as_raw() {
            libc::_exit(127);
        }
    }
}

/// Every launched child's second step: the signals the target starts with are its parent's, not phoebe's. Rust's
/// runtime ignores SIGPIPE in phoebe, and an ignored signal and the signal mask survive `exec`: without this step
/// every target ran with SIGPIPE ignored, so `yes | head` under phoebe printed "Broken pipe" and failed instead of
/// ending quietly by SIGPIPE (and an injected EPIPE could not kill anyone). SIGPIPE goes back to its default and
/// the mask is emptied, as `std::process::Command` does for its children. Only async-signal-safe calls.
pub fn default_signals() {
    // SAFETY: `set` is a local sigset_t that sigemptyset initialises before sigprocmask reads it; signal and
    // sigprocmask are async-signal-safe and keep no pointer.
    unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A child started by [`Command::spawn`].
#[derive(Debug)]
pub struct Child {
    pub pid: Pid,
    /// Read end of the CLOEXEC status pipe: EOF once the exec succeeded; otherwise `[step, errno as 4 bytes]`.
    report: OwnedFd,
}

impl Child {
    fn wait_for_stop(&self) -> Result<(), LaunchError> {
        let status = loop {
            match wait::waitpid(Some(self.pid), WaitPidFlag::WSTOPPED) {
                Err(Errno::EINTR) => {}
                other => break other,
            }
        };
        match status {
            Ok(Some(Status::Stopped { signal, .. })) if signal == libc::SIGSTOP => Ok(()),
            Ok(other) => {
                self.kill();
                if let Some(ChildFailure {
                    step: Step::Contain,
                    errno,
                }) = self.failure()
                {
                    return Err(LaunchError::Contain(errno));
                }
                // `None` cannot happen without WNOHANG: report it as the stop that did not come.
                Err(other.map_or(LaunchError::Wait(Errno::ECHILD), LaunchError::NoInitialStop))
            }
            Err(e) => {
                self.kill();
                Err(LaunchError::Wait(e))
            }
        }
    }

    /// Sends SIGCONT to the child stopped before its exec.
    pub fn cont(&self) -> Result<(), Errno> {
        kill(self.pid, Signal::SIGCONT)
    }

    /// Blocks until the child has exec'd (`Ok`) or reported a failed step (it then exits 127). Only for a child
    /// nobody holds stopped: a stopped child never closes the pipe.
    pub fn wait_exec(&self) -> Result<(), ChildFailure> {
        match self.read_report() {
            Ok(None) => Ok(()),
            Ok(Some(failure)) => Err(failure),
            Err(errno) => Err(ChildFailure {
                step: Step::Exec,
                errno,
            }),
        }
    }

    /// After the child ended: the step that failed, if that is why it ended.
    pub fn failure(&self) -> Option<ChildFailure> {
        self.read_report().ok().flatten()
    }

    /// Kills the child and reaps it (phoebe could not set up what it runs under).
    pub fn kill(&self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        wait::reap(self.pid);
    }

    /// Reads the status pipe: `None` at EOF (the exec succeeded), the report otherwise; EIO for a short one.
    fn read_report(&self) -> Result<Option<ChildFailure>, Errno> {
        let mut msg = [0u8; 5];
        let n = loop {
            match nix::unistd::read(&self.report, &mut msg) {
                Err(Errno::EINTR) => {}
                other => break other?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let step = match msg[0] {
            1 if n == msg.len() => Step::Filter,
            2 if n == msg.len() => Step::Exec,
            3 if n == msg.len() => Step::Contain,
            _ => return Err(Errno::EIO),
        };
        let errno = Errno::from_raw(i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]));
        Ok(Some(ChildFailure { step, errno }))
    }
}

/// Runs a [`Command::no_exec`] child to its end: `Ok(())` when every step passed, else the failed step's errno.
pub fn probe(command: Command<'_>) -> Result<(), Errno> {
    let child = command.spawn().map_err(|e| match e {
        LaunchError::Fork(e) | LaunchError::Pipe(e) | LaunchError::Wait(e) | LaunchError::Contain(e) => e,
        LaunchError::NoInitialStop(_) => Errno::ECHILD,
    })?;
    let status = loop {
        match wait::waitpid(Some(child.pid), WaitPidFlag::empty()) {
            Err(Errno::EINTR) => {}
            other => break other?,
        }
    };
    if let Some(failure) = child.failure() {
        return Err(failure.errno);
    }
    match status {
        Some(Status::Exited { code: 0, .. }) => Ok(()),
        _ => Err(Errno::ECHILD),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_cannot_exec_reports_the_errno() {
        let _children = phoebe_core::testing::children_lock();
        let program = CString::new("/nonexistent/phoebe-launch-test").unwrap();
        let argv = [program.clone()];
        let child = Command::exec(&program, &argv).spawn().expect("fork");
        assert_eq!(
            child.wait_exec(),
            Err(ChildFailure {
                step: Step::Exec,
                errno: Errno::ENOENT
            })
        );
        let status = wait::waitpid(Some(child.pid), WaitPidFlag::empty()).unwrap();
        assert_eq!(
            status.and_then(|s| s.exit()),
            Some(crate::model::TargetExit::Code(127))
        );
    }

    #[test]
    fn a_stopped_child_execs_once_continued() {
        let _children = phoebe_core::testing::children_lock();
        let program = CString::new("/bin/true").unwrap();
        let argv = [program.clone()];
        let child = Command::exec(&program, &argv)
            .stop_before_exec()
            .spawn()
            .expect("spawn");
        // It is stopped now: nothing to reap without WUNTRACED.
        assert_eq!(wait::waitpid(Some(child.pid), WaitPidFlag::WNOHANG), Ok(None));
        child.cont().unwrap();
        assert_eq!(child.wait_exec(), Ok(()));
        let status = wait::waitpid(Some(child.pid), WaitPidFlag::empty()).unwrap();
        assert_eq!(
            status.and_then(|s| s.exit()),
            Some(crate::model::TargetExit::Code(0))
        );
    }

    #[test]
    fn a_probe_child_exits_zero_after_its_steps() {
        let _children = phoebe_core::testing::children_lock();
        assert_eq!(probe(Command::no_exec()), Ok(()));
        assert_eq!(
            probe(Command::no_exec().filter(&seccomp::allow_all(), InstallFlags::NONE)),
            Ok(())
        );
    }
}
