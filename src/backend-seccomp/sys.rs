//! The seccomp backend's one chokepoint for raw calls: launching the target with a listener filter, the
//! `SECCOMP_IOCTL_NOTIF_*` ioctls and `poll` on the listener (the subreaper flag is `phoebe_sys::subreaper`'s).
//! Everything above this file is safe code.
//!
//! **How the listener reaches phoebe.** The child is created with `clone(CLONE_FILES)`: it shares phoebe's file
//! descriptor table until its `execve` (which gives the new program a private copy, where the close-on-exec
//! listener is closed). The listener the child creates is therefore already open in phoebe; the child publishes its
//! number in a shared anonymous page with plain stores and execs. Between installing the filter and `execve` the
//! child makes no system call at all, so no rule can deadlock the hand-over. Passing the fd over `SCM_RIGHTS` (the
//! usual way) would make `sendmsg` the first filtered call, and a rule on `sendmsg` would then wait for a supervisor
//! that cannot have the listener yet.
//!
//! [`Notifier`] is the seam the supervisor (`mod.rs`) talks through: [`Listener`] implements it with the ioctls
//! here, and the unit tests' `fake.rs` answers from a script of recorded notifications.

use std::{
    ffi::CString,
    mem::{align_of, size_of},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    ptr::NonNull,
    sync::atomic::{AtomicI32, AtomicU32, Ordering},
    time::Duration,
};

use libc::{c_int, c_ulong, seccomp_notif, seccomp_notif_resp, seccomp_notif_sizes};
use nix::{
    errno::Errno,
    sys::{
        signal::{Signal, kill},
        wait::WaitPidFlag,
    },
    unistd::{Pid, getpid},
};

use phoebe_filter::{FilterError, InstallError, InstallFlags, Step};
use phoebe_sys::{
    launch,
    seccomp::install,
    wait::{self, Status},
};

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux ≥ 6.6), for `SECCOMP_IOCTL_NOTIF_SET_FLAGS`: the target and the
/// supervisor hand the CPU to each other instead of waking through the scheduler. Missing from libc 0.2.
const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

/// Where the hand-over stands, in [`Handover::state`].
const PENDING: u32 = 0;
const READY: u32 = 1;
const FILTER_FAILED: u32 = 2;
const EXEC_FAILED: u32 = 3;
const CONTAIN_FAILED: u32 = 4;

/// The page the child and phoebe share between `clone` and `execve`. Only atomics: both processes access it.
#[repr(C)]
struct Handover {
    state: AtomicU32,
    /// The listener's number in the shared descriptor table (valid once `state` is READY).
    listener: AtomicI32,
    /// 1 when the filter went on with `WAIT_KILLABLE_RECV`.
    killable: AtomicU32,
    /// The errno of the failed step (FILTER_FAILED, EXEC_FAILED).
    errno: AtomicI32,
}

/// A `MAP_SHARED | MAP_ANONYMOUS` page holding a [`Handover`]; unmapped on drop.
struct SharedPage(NonNull<Handover>);

impl SharedPage {
    const LEN: usize = 4096;

    fn new() -> Result<Self, Errno> {
        const _: () = assert!(size_of::<Handover>() <= SharedPage::LEN && align_of::<Handover>() <= 4096);
        // SAFETY: an anonymous shared mapping at an address of the kernel's choice touches no existing memory;
        // the kernel zero-fills it, and all-zero bytes are a valid Handover (atomics of 0, state PENDING).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        NonNull::new(ptr.cast()).map(Self).ok_or(Errno::EFAULT)
    }

    fn get(&self) -> &Handover {
        // SAFETY: the pointer is a live, page-aligned mapping of LEN ≥ size_of::<Handover>() bytes until drop,
        // initialised (zeroed) by the kernel; Handover is only atomics, so shared access from two processes is sound.
        unsafe { self.0.as_ref() }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: this is the mapping `new` created, of LEN bytes, and no reference into it outlives `self`.
        unsafe { libc::munmap(self.0.as_ptr().cast(), Self::LEN) };
    }
}

/// Why the target could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot map the page shared with the child")]
    Map(#[source] Errno),
    #[error("clone(CLONE_FILES) failed")]
    Clone(#[source] Errno),
    #[error("cannot install the seccomp listener filter")]
    Filter(#[source] FilterError),
    #[error("the child ended before handing the listener over (wait status: {0})")]
    NoHandover(Status),
    #[error("cannot wait for the child")]
    Wait(#[source] Errno),
    #[error("the child cannot join phoebe's cgroup (sys::contain)")]
    Contain(#[source] Errno),
}

/// A child that runs under the listener filter and is exec'ing (or has exec'd) the target.
pub struct Spawned {
    pub pid: Pid,
    /// The listener fd: every `SECCOMP_RET_USER_NOTIF` of the target's tree comes here.
    pub listener: OwnedFd,
    /// The filter went on with `WAIT_KILLABLE_RECV` (a signal cannot turn a received notification into a new one).
    pub killable: bool,
    /// What the child says about its `execve`.
    pub report: ChildReport,
}

/// The page through which the child reports a failed `execve`.
pub struct ChildReport(SharedPage);

impl ChildReport {
    /// After the child ended: the errno of its failed `execve`, if that is why it ended.
    pub fn exec_error(&self) -> Option<Errno> {
        let h = self.0.get();
        (h.state.load(Ordering::Acquire) == EXEC_FAILED)
            .then(|| Errno::from_raw(h.errno.load(Ordering::Relaxed)))
    }
}

/// Launches `program` with `argv` under `prog`, installed with `NEW_LISTENER` (and `WAIT_KILLABLE_RECV` where the
/// kernel has it), and returns once phoebe holds the listener. The child dies with the calling thread
/// (`PR_SET_PDEATHSIG(SIGKILL)`) and joins phoebe's containment (`sys::contain`) when there is one. Everything the
/// child uses is prepared before the clone: it never allocates.
pub fn spawn_notified(
    program: &CString,
    argv: &[CString],
    prog: &[libc::sock_filter],
) -> Result<Spawned, SpawnError> {
    let argv_ptrs = launch::argv_pointers(argv);
    let handover = SharedPage::new().map_err(SpawnError::Map)?;
    let parent = getpid();
    let cgroup = phoebe_sys::contain::get().map(|c| c.procs_fd());
    let flags = c_ulong::try_from(libc::CLONE_FILES | libc::SIGCHLD).unwrap_or_default();
    // SAFETY: without CLONE_VM this is a fork whose child shares the descriptor table. The child branch below only
    // makes raw system calls (prctl, getppid, sigprocmask and signal, write to join the cgroup, seccomp through
    // `sys::seccomp::install`, which does not allocate, execv, _exit) and atomic stores into the shared page, on data
    // prepared before the clone, so it cannot deadlock on a lock another thread of phoebe held. It never closes a
    // descriptor (the table is phoebe's too) and never returns. A null stack means "the caller's stack, copied",
    // exactly as fork.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    let ret = Errno::result(ret).map_err(SpawnError::Clone)?;
    if ret == 0 {
        let h = handover.get();
        let fail = |state: u32, errno: i32| -> ! {
            h.errno.store(errno, Ordering::Relaxed);
            h.state.store(state, Ordering::Release);
            // SAFETY: _exit never returns and skips atexit handlers and stdio buffers, as a forked child must.
            unsafe { libc::_exit(127) }
        };
        // If phoebe already died, exit instead of running without a supervisor (every notified call would fail
        // with ENOSYS).
        launch::die_with_parent(parent);
        launch::default_signals();
        if let Some(fd) = cgroup
            && let Err(e) = phoebe_sys::contain::join(fd)
        {
            fail(CONTAIN_FAILED, e as i32)
        }
        let listener_flags = InstallFlags::NEW_LISTENER;
        let (installed, killable) = match install(prog, listener_flags | InstallFlags::WAIT_KILLABLE_RECV) {
            // Before Linux 5.19 the flag is unknown: install without it.
            Err(InstallError::Sys {
                source: Errno::EINVAL,
                ..
            }) => (install(prog, listener_flags), false),
            other => (other, true),
        };
        let fd = match installed {
            Ok(Some(fd)) => fd,
            Ok(None) => fail(FILTER_FAILED, libc::EINVAL),
            Err(e) => fail(FILTER_FAILED, e.errno() as i32),
        };
        h.listener.store(fd.as_raw_fd(), Ordering::Relaxed);
        h.killable.store(u32::from(killable), Ordering::Relaxed);
        h.state.store(READY, Ordering::Release);
        // The descriptor belongs to phoebe now (shared table); exec closes the child's copy (close-on-exec).
        std::mem::forget(fd);
        // SAFETY: `program` and every pointer in `argv_ptrs` point into CStrings owned by the caller that stay alive
        // in this (copied) address space; the array ends with a null pointer as execv requires.
        unsafe { libc::execv(program.as_ptr(), argv_ptrs.as_ptr()) };
        fail(EXEC_FAILED, Errno::last_raw())
    }
    // The kernel's return fits a pid.
    let pid = Pid::from_raw(ret as i32);
    let h = handover.get();
    let mut pause = Duration::from_micros(10);
    loop {
        match h.state.load(Ordering::Acquire) {
            PENDING => {}
            READY | EXEC_FAILED => break,
            CONTAIN_FAILED => {
                wait::reap(pid);
                return Err(SpawnError::Contain(Errno::from_raw(
                    h.errno.load(Ordering::Relaxed),
                )));
            }
            _ => {
                wait::reap(pid);
                let errno = Errno::from_raw(h.errno.load(Ordering::Relaxed));
                return Err(SpawnError::Filter(FilterError::Install(InstallError::Sys {
                    step: Step::SetModeFilter(InstallFlags::NEW_LISTENER),
                    source: errno,
                })));
            }
        }
        match wait::waitpid(Some(pid), WaitPidFlag::WNOHANG) {
            Ok(None) | Err(Errno::EINTR) => {}
            Ok(Some(status)) => return Err(SpawnError::NoHandover(status)),
            Err(e) => {
                let _ = kill(pid, Signal::SIGKILL);
                return Err(SpawnError::Wait(e));
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(1));
    }
    let fd = h.listener.load(Ordering::Relaxed);
    // SAFETY: the child published a listener it opened in the descriptor table it shares with us, then forgot it
    // and never closes it (its own copy goes at exec); nothing else in phoebe knows the number, so this is its only
    // owner.
    let listener = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Spawned {
        pid,
        listener,
        killable: h.killable.load(Ordering::Relaxed) == 1,
        report: ChildReport(handover),
    })
}

/// `SECCOMP_GET_NOTIF_SIZES`: the sizes of the kernel's notification structs, which may be larger than libc's.
pub fn notif_sizes() -> Result<seccomp_notif_sizes, Errno> {
    let mut sizes = std::mem::MaybeUninit::<seccomp_notif_sizes>::zeroed();
    // SAFETY: SECCOMP_GET_NOTIF_SIZES writes one seccomp_notif_sizes into the buffer, which is exactly that big and
    // writable; the flags argument must be 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            c_ulong::from(libc::SECCOMP_GET_NOTIF_SIZES),
            0 as c_ulong,
            sizes.as_mut_ptr(),
        )
    };
    Errno::result(ret)?;
    // SAFETY: zero-initialised plain integers, filled by the kernel on success.
    Ok(unsafe { sizes.assume_init() })
}

/// One notification, as read by [`Listener::recv`].
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    pub id: u64,
    /// The thread that made the call (in phoebe's pid namespace).
    pub tid: i32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
    /// Where the thread made the call (`seccomp_data.instruction_pointer`).
    pub ip: u64,
}

/// What a [`Listener::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// A notification can be received.
    Notification,
    /// No task uses the filter any more (`POLLHUP`): the target's tree has ended.
    HangUp,
    /// The timeout passed.
    Timeout,
}

/// What the seccomp supervisor asks of its listener, and nothing else: the seam below its logic (deciding, answering,
/// `delay=` holds, ENOENT and POLLHUP). Each method is [`Listener`]'s method of the same name; errors are the
/// kernel's errno, interpreted by the supervisor.
pub trait Notifier {
    /// [`Listener::wait`]: `poll` for a notification or the end of the tree, up to `timeout` (`None`: forever).
    fn wait(&mut self, timeout: Option<Duration>) -> Result<Ready, Errno>;
    /// [`Listener::recv`]: `SECCOMP_IOCTL_NOTIF_RECV`.
    fn recv(&mut self) -> Result<Notification, Errno>;
    /// [`Listener::id_valid`]: `SECCOMP_IOCTL_NOTIF_ID_VALID`.
    fn id_valid(&mut self, id: u64) -> bool;
    /// [`Listener::send`]: `SECCOMP_IOCTL_NOTIF_SEND` with an errno, or CONTINUE (`None`).
    fn send(&mut self, id: u64, errno: Option<i32>) -> Result<(), Errno>;
    /// [`phoebe_sys::signal::tgkill`]: a signal to the thread that made a call, as the kernel raises one with an
    /// error.
    fn tgkill(&mut self, tgid: Pid, tid: Pid, signal: i32) -> Result<(), Errno>;
}

/// The kernel itself: each method is the inherent one (no allocation, no dynamic dispatch).
impl Notifier for Listener {
    fn wait(&mut self, timeout: Option<Duration>) -> Result<Ready, Errno> {
        Listener::wait(self, timeout)
    }

    fn recv(&mut self) -> Result<Notification, Errno> {
        Listener::recv(self)
    }

    fn id_valid(&mut self, id: u64) -> bool {
        Listener::id_valid(self, id)
    }

    fn send(&mut self, id: u64, errno: Option<i32>) -> Result<(), Errno> {
        Listener::send(self, id, errno)
    }

    fn tgkill(&mut self, tgid: Pid, tid: Pid, signal: i32) -> Result<(), Errno> {
        phoebe_sys::signal::tgkill(tgid, tid, signal)
    }
}

/// The listener with receive and response buffers of the kernel's sizes.
pub struct Listener {
    fd: OwnedFd,
    /// At least the kernel's `seccomp_notif` size, in u64 words so that it is aligned for the struct.
    notif: Vec<u64>,
    /// At least the kernel's `seccomp_notif_resp` size.
    resp: Vec<u64>,
}

impl Listener {
    /// Wraps `fd`, with buffers as large as the kernel's structs ([`notif_sizes`]) and never smaller than libc's.
    pub fn new(fd: OwnedFd, sizes: &seccomp_notif_sizes) -> Self {
        let words = |kernel: u16, ours: usize| usize::from(kernel).max(ours).div_ceil(8);
        Listener {
            fd,
            notif: vec![0; words(sizes.seccomp_notif, size_of::<seccomp_notif>())],
            resp: vec![0; words(sizes.seccomp_notif_resp, size_of::<seccomp_notif_resp>())],
        }
    }

    /// `SECCOMP_IOCTL_NOTIF_SET_FLAGS(SYNC_WAKE_UP)`; fails (EINVAL or ENOTTY) before Linux 6.6.
    pub fn set_sync_wake_up(&self) -> Result<(), Errno> {
        // SAFETY: SET_FLAGS takes its flags by value in the argument (no pointer); the fd is our listener.
        let ret = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
            )
        };
        Errno::result(ret).map(drop)
    }

    /// Waits up to `timeout` (`None`: forever) for a notification or the end of the tree.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Ready, Errno> {
        // Round up, so that a pending `delay=` is never answered a millisecond early.
        let ms = timeout.map_or(-1, |t| {
            c_int::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(c_int::MAX)
        });
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid, writable pollfd, and nfds = 1.
        let n = Errno::result(unsafe { libc::poll(&mut pfd, 1, ms) })?;
        Ok(if n == 0 {
            Ready::Timeout
        } else if pfd.revents & libc::POLLIN != 0 {
            Ready::Notification
        } else {
            // POLLHUP (no task left), or POLLERR/POLLNVAL, after which nothing more can come either.
            Ready::HangUp
        })
    }

    /// `SECCOMP_IOCTL_NOTIF_RECV` into a zeroed buffer (the kernel requires it). Blocks until a notification
    /// arrives; ENOENT when the notifying task went away meanwhile or, since Linux 6.6, when no task is left.
    pub fn recv(&mut self) -> Result<Notification, Errno> {
        self.notif.fill(0);
        // SAFETY: the buffer was just zeroed and is at least the kernel's `seccomp_notif_sizes.seccomp_notif` bytes,
        // u64-aligned, and writable; the kernel writes at most that many bytes.
        let ret = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                self.notif.as_mut_ptr(),
            )
        };
        Errno::result(ret)?;
        // SAFETY: the buffer is aligned for, and at least as large as, libc's seccomp_notif (a prefix of the
        // kernel's), and every bit pattern of its plain integer fields is valid.
        let n: seccomp_notif = unsafe { self.notif.as_ptr().cast::<seccomp_notif>().read() };
        Ok(Notification {
            id: n.id,
            tid: n.pid as i32,
            nr: n.data.nr,
            arch: n.data.arch,
            args: n.data.args,
            ip: n.data.instruction_pointer,
        })
    }

    /// `SECCOMP_IOCTL_NOTIF_ID_VALID`: is the task of notification `id` still waiting for its answer? Checked after
    /// reading its memory or /proc, so that a recycled pid cannot lie to us.
    pub fn id_valid(&self, id: u64) -> bool {
        // SAFETY: ID_VALID reads one u64 through the pointer, which points at a live local.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) };
        ret == 0
    }

    /// Answers notification `id`: fail the call with `errno`, or let it run (`None`: `FLAG_CONTINUE`).
    /// ENOENT means the task is no longer waiting (it died, or a signal interrupted it): the caller tolerates it.
    pub fn send(&mut self, id: u64, errno: Option<i32>) -> Result<(), Errno> {
        self.resp.fill(0);
        let resp = seccomp_notif_resp {
            id,
            val: 0,
            error: errno.map_or(0, |e| -e),
            flags: if errno.is_none() {
                libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
            } else {
                0
            },
        };
        // SAFETY: the zeroed buffer is u64-aligned and at least size_of::<seccomp_notif_resp>() bytes; the kernel
        // reads its own `seccomp_notif_resp` size, which the buffer covers (zeros beyond libc's fields).
        unsafe { self.resp.as_mut_ptr().cast::<seccomp_notif_resp>().write(resp) };
        // SAFETY: the buffer holds a valid response and stays alive for the call; SEND only reads it.
        let ret = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                self.resp.as_mut_ptr(),
            )
        };
        Errno::result(ret).map(drop)
    }
}
