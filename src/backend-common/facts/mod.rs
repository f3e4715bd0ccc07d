//! What a user-space backend learns about one call beyond its registers, for deciding and for call shapes
//! (DESIGN §6): the resolved path argument, what a descriptor refers to (kind, `O_NONBLOCK`, path), the thread
//! group of a task. Shared by the ptrace and seccomp backends, which both hold a stopped task (a tracee at a
//! syscall stop, a task waiting in a notified call); neither imports the other.
//! Owns: [`ProcProbe`], the implementation of `model::shape::Probe` over `/proc` and the task's memory, and
//! [`Source`], the seam every one of those reads goes through (the backends' unit tests answer them from recorded
//! descriptors). Raw calls live in `sys.rs`.

#[cfg(any(test, feature = "fake"))]
pub mod fake;
mod sys;

use std::{
    collections::{BTreeSet, HashMap},
    os::unix::fs::MetadataExt,
    path::{Component, Path, PathBuf},
};

use nix::unistd::Pid;

use phoebe_core::model::{
    Syscall,
    names::{dest_path_arg, fd_arg, path_arg},
    shape::{Clock, FdFacts, Name, Probe, SOCKET_KINDS, Waits, chr_kind, fd_kind_of_link, socket_kind},
};
use phoebe_sys::procfs;

use crate::lineage;

/// Every read of a task's `/proc` entries and memory that [`ProcProbe`], [`resolve_path`] and [`tgid_of`] make:
/// the seam below the backends' call facts. The provided methods are the real reads (`sys::procfs`, `sys.rs` here,
/// `lineage::family`), which [`Procfs`], the one the tracers and the supervisor hold, uses as they are; a unit
/// test's fake (`fake.rs`) overrides every one to answer from a recorded `/proc`. Each returns `None` (or an error,
/// or nothing) when the task or the descriptor is gone, as the real reads do.
pub trait Source {
    /// [`procfs::tgid_of`]: the thread group of task `tid`.
    fn tgid(&mut self, tid: Pid) -> Option<i32> {
        procfs::tgid_of(tid)
    }
    /// [`procfs::fd_link`]: what descriptor `fd` refers to; `NotFound` when it is not open.
    fn fd_link(&mut self, tid: Pid, fd: i32) -> std::io::Result<PathBuf> {
        procfs::fd_link(tid, fd)
    }
    /// [`procfs::fd_flags`]: the open file description's flags.
    fn fd_flags(&mut self, tid: Pid, fd: i32) -> Option<u64> {
        procfs::fd_flags(tid, fd)
    }
    /// `st_mode` and `st_rdev` of the inode descriptor `fd` holds ([`procfs::fd_metadata`]).
    fn fd_mode(&mut self, tid: Pid, fd: i32) -> Option<(u32, u64)> {
        procfs::fd_metadata(tid, fd).map(|m| (m.mode(), m.rdev()))
    }
    /// [`procfs::epoll_targets`]: the descriptors registered in epoll instance `epfd`.
    fn epoll_targets(&mut self, tid: Pid, epfd: i32) -> Option<Vec<i32>> {
        procfs::epoll_targets(tid, epfd)
    }
    /// [`procfs::cwd`]: the working directory.
    fn cwd(&mut self, tid: Pid) -> Option<PathBuf> {
        procfs::cwd(tid)
    }
    /// [`procfs::cwd_deleted`]: whether the working directory has been removed.
    fn cwd_deleted(&mut self, tid: Pid) -> Option<bool> {
        procfs::cwd_deleted(tid)
    }
    /// [`procfs::name_exists`]: whether absolute `path` names something, as the task sees its file system.
    fn name_exists(&mut self, tid: Pid, path: &str) -> Option<bool> {
        procfs::name_exists(tid, path)
    }
    /// [`procfs::dir_empty`]: whether the directory absolute `path` names is empty, as the task sees its file
    /// system.
    fn dir_empty(&mut self, tid: Pid, path: &str) -> Option<bool> {
        procfs::dir_empty(tid, path)
    }
    /// [`procfs::loader_base`]: where process `tgid`'s dynamic loader was loaded (0: a static program).
    fn loader_base(&mut self, tgid: i32) -> Option<u64> {
        procfs::loader_base(tgid)
    }
    /// [`procfs::loader_text`]: the file and code of process `tgid`'s dynamic loader, loaded at `base`.
    fn loader_text(&mut self, tgid: i32, base: u64) -> Option<procfs::LoaderText> {
        procfs::loader_text(tgid, base)
    }
    /// [`procfs::caught_signals`]: the signals task `tid`'s process catches (a `SigCgt` mask).
    fn caught_signals(&mut self, tid: Pid) -> Option<u64> {
        procfs::caught_signals(tid)
    }
    /// [`procfs::stat`]'s parent of process `tgid`.
    fn parent(&mut self, tgid: i32) -> Option<i32> {
        procfs::stat(u32::try_from(tgid).ok()?).and_then(|s| i32::try_from(s.ppid).ok())
    }
    /// [`procfs::has_child`]: whether process `tgid` has a child (any, or the one with pid `pid`).
    fn has_child(&mut self, tgid: i32, pid: Option<i32>) -> Option<bool> {
        procfs::has_child(
            u32::try_from(tgid).ok()?,
            pid.map(u32::try_from).transpose().ok()?,
        )
    }
    /// `sys::read_c_string`: a NUL-terminated string of the task's memory at `addr`.
    fn read_c_string(&mut self, tid: Pid, addr: u64) -> Option<Vec<u8>> {
        sys::read_c_string(tid, addr)
    }
    /// `sys::read_u64`: a native-endian u64 of the task's memory at `addr`.
    fn read_u64(&mut self, tid: Pid, addr: u64) -> Option<u64> {
        sys::read_u64(tid, addr)
    }
    /// `sys::fd_ready`: whether descriptor `fd` of process `tgid` is ready for `events`.
    fn fd_ready(&mut self, tgid: i32, fd: i32, events: i16) -> Option<bool> {
        sys::fd_ready(tgid, fd, events)
    }
    /// `sys::pipe_has_readers`: whether the pipe descriptor `fd` of process `tgid` writes to has a reader.
    fn pipe_readers(&mut self, tgid: i32, fd: i32) -> Option<bool> {
        sys::pipe_has_readers(tgid, fd)
    }
    /// `clock_gettime` of `clock` (system-wide: phoebe and its targets share one time namespace).
    fn clock_now(&mut self, clock: Clock) -> Option<std::time::Duration> {
        let id = match clock {
            Clock::Monotonic => nix::time::ClockId::CLOCK_MONOTONIC,
            Clock::Realtime => nix::time::ClockId::CLOCK_REALTIME,
        };
        let now = nix::time::clock_gettime(id).ok()?;
        Some(std::time::Duration::new(
            u64::try_from(now.tv_sec()).ok()?,
            u32::try_from(now.tv_nsec()).ok()?,
        ))
    }
    /// [`procfs::flock_held`]: whether another holds a lock on the file of descriptor `fd` of process `tgid`
    /// that conflicts with a shared (`exclusive`: an exclusive) flock.
    fn flock_held(&mut self, tgid: i32, fd: i32, exclusive: bool) -> Option<bool> {
        procfs::flock_held(tgid, fd, exclusive)
    }
    /// `sys::socket_family_type`: `(SO_DOMAIN, SO_TYPE)` of socket `fd` of process `tgid`.
    fn socket_family_type(&mut self, tgid: i32, fd: i32) -> Option<(i32, i32)> {
        sys::socket_family_type(tgid, fd)
    }
    /// `sys::tcp_syn_retries`: how many SYNs TCP socket `fd` of process `tgid` sends before its connect gives up.
    fn tcp_syn_retries(&mut self, tgid: i32, fd: i32) -> Option<u32> {
        sys::tcp_syn_retries(tgid, fd)
    }
    /// `sys::holds_other_end`: whether process `tgid` holds the other end of its pipe or UNIX socket `fd` itself.
    fn holds_other_end(&mut self, tgid: i32, fd: i32) -> Option<bool> {
        sys::holds_other_end(tgid, fd)
    }
    /// [`procfs::watched_edge_triggered`]: whether an epoll instance of process `tgid` watches its descriptor `fd`
    /// edge-triggered.
    fn edge_triggered(&mut self, tgid: i32, fd: i32) -> Option<bool> {
        procfs::watched_edge_triggered(tgid, fd)
    }
    /// [`procfs::fd_fs_type`]: the type of the file system that holds the file behind descriptor `fd` of process
    /// `tgid` (`ext4`, `nfs4`).
    fn fd_fs_type(&mut self, tgid: i32, fd: i32) -> Option<String> {
        procfs::fd_fs_type(tgid, fd)
    }
    /// [`lineage::family`]: the tasks a clone by thread `tid` of process `tgid` can create, now (the seccomp
    /// supervisor finds the task a clone created in it).
    fn family(&mut self, tgid: i32, tid: i32) -> BTreeSet<i32> {
        lineage::family(tgid, tid)
    }
}

/// The real reads (zero-sized: a direct call each).
pub struct Procfs;

impl Source for Procfs {}

impl<S: Source + ?Sized> Source for &mut S {
    fn tgid(&mut self, tid: Pid) -> Option<i32> {
        (**self).tgid(tid)
    }
    fn fd_link(&mut self, tid: Pid, fd: i32) -> std::io::Result<PathBuf> {
        (**self).fd_link(tid, fd)
    }
    fn fd_flags(&mut self, tid: Pid, fd: i32) -> Option<u64> {
        (**self).fd_flags(tid, fd)
    }
    fn fd_mode(&mut self, tid: Pid, fd: i32) -> Option<(u32, u64)> {
        (**self).fd_mode(tid, fd)
    }
    fn epoll_targets(&mut self, tid: Pid, epfd: i32) -> Option<Vec<i32>> {
        (**self).epoll_targets(tid, epfd)
    }
    fn cwd(&mut self, tid: Pid) -> Option<PathBuf> {
        (**self).cwd(tid)
    }
    fn cwd_deleted(&mut self, tid: Pid) -> Option<bool> {
        (**self).cwd_deleted(tid)
    }
    fn name_exists(&mut self, tid: Pid, path: &str) -> Option<bool> {
        (**self).name_exists(tid, path)
    }
    fn dir_empty(&mut self, tid: Pid, path: &str) -> Option<bool> {
        (**self).dir_empty(tid, path)
    }
    fn loader_base(&mut self, tgid: i32) -> Option<u64> {
        (**self).loader_base(tgid)
    }
    fn caught_signals(&mut self, tid: Pid) -> Option<u64> {
        (**self).caught_signals(tid)
    }
    fn parent(&mut self, tgid: i32) -> Option<i32> {
        (**self).parent(tgid)
    }
    fn loader_text(&mut self, tgid: i32, base: u64) -> Option<procfs::LoaderText> {
        (**self).loader_text(tgid, base)
    }
    fn has_child(&mut self, tgid: i32, pid: Option<i32>) -> Option<bool> {
        (**self).has_child(tgid, pid)
    }
    fn read_c_string(&mut self, tid: Pid, addr: u64) -> Option<Vec<u8>> {
        (**self).read_c_string(tid, addr)
    }
    fn read_u64(&mut self, tid: Pid, addr: u64) -> Option<u64> {
        (**self).read_u64(tid, addr)
    }
    fn pipe_readers(&mut self, tgid: i32, fd: i32) -> Option<bool> {
        (**self).pipe_readers(tgid, fd)
    }
    fn fd_ready(&mut self, tgid: i32, fd: i32, events: i16) -> Option<bool> {
        (**self).fd_ready(tgid, fd, events)
    }
    fn socket_family_type(&mut self, tgid: i32, fd: i32) -> Option<(i32, i32)> {
        (**self).socket_family_type(tgid, fd)
    }
    fn tcp_syn_retries(&mut self, tgid: i32, fd: i32) -> Option<u32> {
        (**self).tcp_syn_retries(tgid, fd)
    }
    fn holds_other_end(&mut self, tgid: i32, fd: i32) -> Option<bool> {
        (**self).holds_other_end(tgid, fd)
    }
    fn flock_held(&mut self, tgid: i32, fd: i32, exclusive: bool) -> Option<bool> {
        (**self).flock_held(tgid, fd, exclusive)
    }
    fn clock_now(&mut self, clock: Clock) -> Option<std::time::Duration> {
        (**self).clock_now(clock)
    }
    fn edge_triggered(&mut self, tgid: i32, fd: i32) -> Option<bool> {
        (**self).edge_triggered(tgid, fd)
    }
    fn fd_fs_type(&mut self, tgid: i32, fd: i32) -> Option<String> {
        (**self).fd_fs_type(tgid, fd)
    }
    fn family(&mut self, tgid: i32, tid: i32) -> BTreeSet<i32> {
        (**self).family(tgid, tid)
    }
}

/// The thread group of a task, from /proc (cheap enough for the calls a rule targets); the tid itself when the
/// task is gone.
pub fn tgid_of(source: &mut impl Source, tid: Pid) -> i32 {
    source.tgid(tid).unwrap_or(tid.as_raw())
}

/// The absolute, lexically normalised path argument of a call, resolved against its dirfd or the cwd; for a
/// call on a descriptor, the file it refers to as the kernel names it (`socket:[N]`, `pipe:[N]` for those).
pub fn resolve_path(source: &mut impl Source, tid: Pid, sc: Syscall, args: &[u64; 6]) -> Option<String> {
    let Some(at) = path_arg(sc) else {
        let fd = args[fd_arg(sc)?] as i32;
        return source
            .fd_link(tid, fd)
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
    };
    resolve_name(source, tid, args, at)
}

/// The absolute, lexically normalised name in argument `path_idx`, resolved against the dirfd in argument
/// `dirfd_idx` (or the cwd); `None` for an empty one.
fn resolve_name(
    source: &mut impl Source,
    tid: Pid,
    args: &[u64; 6],
    (path_idx, dirfd_idx): (usize, Option<usize>),
) -> Option<String> {
    let raw = source.read_c_string(tid, args[path_idx])?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    // An empty path (`AT_EMPTY_PATH`) makes the call work on the dirfd's open file: no name is looked up, so none
    // of a path's errors (ENOENT…) can happen there, and naming it by its file would put it in the same template
    // as the lookups that did fail (`statx(fd, "")` of a temp file got the ENOENT its deleted siblings got).
    if raw.is_empty() {
        return None;
    }
    if raw.starts_with('/') {
        return Some(normalize_absolute(&raw));
    }
    let dirfd = dirfd_idx.map(|i| args[i] as i32).unwrap_or(libc::AT_FDCWD);
    let base = if dirfd == libc::AT_FDCWD {
        source.cwd(tid)?
    } else {
        source.fd_link(tid, dirfd).ok()?
    };
    Some(normalize(&base.join(raw)))
}

/// An absolute path argument as the kernel passed it, lexically normalised as [`resolve_path`] does (the eBPF
/// observer reads path arguments in the kernel and normalises them here, so both give the same shapes).
pub fn normalize_absolute(raw: &str) -> String {
    normalize(Path::new(raw))
}

fn normalize(path: &Path) -> String {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// What a backend keeps of the facts of earlier calls, so that they are read once, not at every call: socket
/// kinds by inode (a socket's family and type), and each process's dynamic loader by the base it was loaded at
/// (its code, read from `/proc/PID/maps` again only after an exec moved it). Bounded: each map is cleared when it
/// grows past its limit.
#[derive(Debug, Default)]
pub struct FactCache {
    sockets: HashMap<u64, &'static str>,
    /// By thread group: the loader's base and what [`loader_code`] made of it.
    loaders: HashMap<i32, (u64, Option<LoaderCode>)>,
    /// By thread group, by signal: what its handler does to a call it interrupts, from the process's own
    /// `rt_sigaction` calls ([`read_sigaction`]).
    handlers: HashMap<i32, HashMap<u8, Handler>>,
}

/// What a signal's disposition does to a restartable call it interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// A handler installed with `SA_RESTART`: the kernel restarts the call.
    Restarts,
    /// A handler installed without it: the call returns EINTR.
    Interrupts,
    /// `SIG_DFL` or `SIG_IGN`: no handler.
    None,
}

const HANDLER_CACHE: usize = 4096;
/// How far up the process tree a handler is looked for: a forked child has its parent's handlers until it
/// installs its own or execs (which resets them, so that `SigCgt` no longer names them).
const HANDLER_ANCESTORS: usize = 8;

impl FactCache {
    /// The signals of `mask` (caught by process `tgid`, as `SigCgt` says) whose handler interrupts a restartable
    /// call (installed without `SA_RESTART`): `Some(0)` when every one restarts it, `None` when none was seen to
    /// interrupt and some handler was not seen installed (here or in an ancestor the process was forked from).
    fn interrupts<S: Source>(&self, source: &mut S, tgid: i32, mask: u64) -> Option<u64> {
        let mut chain = vec![tgid];
        let mut unknown = false;
        let mut interrupting = 0;
        for sig in (1..=64u8).filter(|sig| mask & (1 << (sig - 1)) != 0) {
            let mut found = None;
            for depth in 0..HANDLER_ANCESTORS {
                if depth == chain.len() {
                    match source.parent(chain[depth - 1]) {
                        Some(ppid) if ppid > 1 && !chain.contains(&ppid) => chain.push(ppid),
                        _ => break,
                    }
                }
                if let Some(handler) = self.handlers.get(&chain[depth]).and_then(|h| h.get(&sig)) {
                    found = Some(*handler);
                    break;
                }
            }
            match found {
                Some(Handler::Interrupts) => interrupting |= 1 << (sig - 1),
                Some(Handler::Restarts) => {}
                // Not seen, or seen reset to no handler although `SigCgt` says it is caught (a stale entry).
                Some(Handler::None) | None => unknown = true,
            }
        }
        (interrupting != 0 || !unknown).then_some(interrupting)
    }

    /// Records what process `tgid`'s handler for `sig` does ([`read_sigaction`]).
    pub fn record_handler(&mut self, tgid: i32, (sig, handler): (u8, Handler)) {
        if self.handlers.len() >= HANDLER_CACHE && !self.handlers.contains_key(&tgid) {
            self.handlers.clear();
        }
        self.handlers.entry(tgid).or_default().insert(sig, handler);
    }

    /// Forgets process `tgid`'s handlers (it ended: its pid may be reused).
    pub fn forget_handlers(&mut self, tgid: i32) {
        self.handlers.remove(&tgid);
    }
}

/// The new action of an `rt_sigaction(sig, act, oldact, size)` call of task `tid`, read from its memory as the
/// call starts: the signal, and whether the handler it installs restarts the calls it interrupts (`SA_RESTART`);
/// `None` for a call that installs nothing (a query: `act` NULL) or whose action cannot be read. The ptrace tracer
/// and the seccomp supervisor read every such call when a rule asks `caught=` and record it
/// ([`FactCache::record_handler`]): `/proc` shows which signals are caught, never with which flags.
pub fn read_sigaction<S: Source>(source: &mut S, tid: Pid, args: &[u64; 6]) -> Option<(u8, Handler)> {
    let (sig, act) = (u8::try_from(args[0]).ok()?, args[1]);
    if act == 0 || !(1..=64).contains(&sig) {
        return None;
    }
    // The kernel's `struct sigaction` starts with the handler and the flags, 8 bytes each, on x86_64 and aarch64.
    let handler = source.read_u64(tid, act)?;
    let flags = source.read_u64(tid, act + 8)?;
    Some((
        sig,
        match handler {
            // SIG_DFL, SIG_IGN.
            0 | 1 => Handler::None,
            _ if flags & libc::SA_RESTART as u64 != 0 => Handler::Restarts,
            _ => Handler::Interrupts,
        },
    ))
}

const SOCKET_CACHE: usize = 4096;
const LOADER_CACHE: usize = 1024;

/// A dynamic loader's code, where telling the loader's calls from the program's means something.
#[derive(Debug, Clone)]
struct LoaderCode(Vec<(u64, u64)>);

/// The code of a loader that is only a loader (glibc's `ld-linux-x86-64.so.2`, `ld64.so.*`), or `None` for one
/// that is the C library too (musl's `ld-musl-*.so.1`): every libc call of a musl program is made from the
/// loader's file, so an instruction pointer cannot tell the loader's calls from the program's there.
fn loader_code(text: procfs::LoaderText) -> Option<LoaderCode> {
    let name = text.file.rsplit('/').next().unwrap_or(&text.file);
    let only_a_loader =
        (name.starts_with("ld-linux") || name.starts_with("ld64.so") || name.starts_with("ld-2."))
            && !name.contains("musl");
    (only_a_loader && !text.text.is_empty()).then_some(LoaderCode(text.text))
}

/// The facts of a call of task `tid` (thread group `tgid`), learned from `/proc` and its memory through `S`
/// ([`Source`]). A probe lives for one call: what it read is kept, so asking again (the decider computes a shape
/// the backend already computed to warm it) reads nothing.
pub struct ProcProbe<'a, S = Procfs> {
    pub tid: Pid,
    pub tgid: i32,
    pub cache: &'a mut FactCache,
    source: S,
    /// Where the calling thread made the call (its instruction pointer), when the backend knows it.
    ip: Option<u64>,
    path: Option<Option<String>>,
    loader: Option<Option<bool>>,
    caught: Option<Option<u64>>,
    readers: Option<(i32, Option<bool>)>,
    other_end: Option<(i32, Option<bool>)>,
    edge: Option<(i32, Option<bool>)>,
    ready: Option<(i32, i16, Option<bool>)>,
    fd: Option<(i32, Option<FdFacts>)>,
}

impl<'a> ProcProbe<'a> {
    /// A probe that reads the real `/proc` and memory ([`Procfs`]).
    pub fn new(tid: Pid, tgid: i32, cache: &'a mut FactCache) -> Self {
        ProcProbe::with_source(Procfs, tid, tgid, cache)
    }
}

impl<'a, S: Source> ProcProbe<'a, S> {
    /// A probe that reads through `source` (a backend's kernel type, or a unit test's fake).
    pub fn with_source(source: S, tid: Pid, tgid: i32, cache: &'a mut FactCache) -> Self {
        ProcProbe {
            tid,
            tgid,
            cache,
            source,
            ip: None,
            path: None,
            loader: None,
            caught: None,
            readers: None,
            other_end: None,
            edge: None,
            ready: None,
            fd: None,
        }
    }

    /// A probe of a call made at instruction pointer `ip` (`seccomp_data`'s, or `PTRACE_GET_SYSCALL_INFO`'s).
    pub fn with_ip(mut self, ip: u64) -> Self {
        self.ip = Some(ip);
        self
    }

    /// A probe whose path argument was already read (by a `path=` rule), so it is not read again.
    pub fn with_path(mut self, path: Option<String>) -> Self {
        self.path = Some(path);
        self
    }
}

impl<S: Source> Probe for ProcProbe<'_, S> {
    fn path(&mut self, sc: Syscall, args: &[u64; 6]) -> Option<String> {
        self.path
            .get_or_insert_with(|| resolve_path(&mut self.source, self.tid, sc, args))
            .clone()
    }

    fn fd(&mut self, fd: i32) -> Option<FdFacts> {
        if let Some((cached, facts)) = &self.fd
            && *cached == fd
        {
            return facts.clone();
        }
        let facts = self.read_fd(fd);
        self.fd = Some((fd, facts.clone()));
        facts
    }

    fn read_u64(&mut self, addr: u64) -> Option<u64> {
        self.source.read_u64(self.tid, addr)
    }

    fn epoll_registered(&mut self, epfd: i32, fd: i32) -> Option<bool> {
        // Only an epoll instance's fdinfo lists its targets; on anything else the call fails by itself.
        let link = self.source.fd_link(self.tid, epfd).ok()?;
        if fd_kind_of_link(&link.to_string_lossy()) != Some("epoll") {
            return None;
        }
        Some(self.source.epoll_targets(self.tid, epfd)?.contains(&fd))
    }

    fn exists(&mut self, sc: Syscall, args: &[u64; 6], name: Name) -> Option<bool> {
        let path = match name {
            Name::Path => self.path(sc, args)?,
            Name::Dest => resolve_name(&mut self.source, self.tid, args, dest_path_arg(sc)?)?,
            Name::Parent => {
                let path = self.path(sc, args)?;
                Path::new(&path).parent()?.to_string_lossy().into_owned()
            }
        };
        self.source.name_exists(self.tid, &path)
    }

    fn cwd_deleted(&mut self) -> Option<bool> {
        self.source.cwd_deleted(self.tid)
    }

    fn dir_empty(&mut self, sc: Syscall, args: &[u64; 6]) -> Option<bool> {
        let path = self.path(sc, args)?;
        self.source.dir_empty(self.tid, &path)
    }

    fn pipe_readers(&mut self, fd: i32) -> Option<bool> {
        if let Some((cached, readers)) = self.readers
            && cached == fd
        {
            return readers;
        }
        let readers = self.source.pipe_readers(self.tgid, fd);
        self.readers = Some((fd, readers));
        readers
    }

    fn ready(&mut self, fd: i32, events: i16) -> Option<bool> {
        if let Some((cached, asked, ready)) = self.ready
            && (cached, asked) == (fd, events)
        {
            return ready;
        }
        let ready = self.source.fd_ready(self.tgid, fd, events);
        self.ready = Some((fd, events, ready));
        ready
    }

    fn lock_held(&mut self, fd: i32, exclusive: bool) -> Option<bool> {
        self.source.flock_held(self.tgid, fd, exclusive)
    }

    fn clock_now(&mut self, clock: Clock) -> Option<std::time::Duration> {
        self.source.clock_now(clock)
    }

    fn syn_retries(&mut self, fd: i32) -> Option<u32> {
        self.source.tcp_syn_retries(self.tgid, fd)
    }

    fn holds_other_end(&mut self, fd: i32) -> Option<bool> {
        if let Some((cached, own)) = self.other_end
            && cached == fd
        {
            return own;
        }
        // The descriptor's kind, which the call's shape has read already: only a pipe's or a UNIX socket's other
        // end is looked for (a scan of `/proc/PID/fd`, a sock_diag request), never a TCP socket's, on every read.
        let own = match self.fd(fd).map(|facts| facts.kind) {
            Some(kind) if kind == "pipe" || kind.starts_with("unix") => {
                self.source.holds_other_end(self.tgid, fd)
            }
            Some(kind) if SOCKET_KINDS.contains(&kind) => Some(false),
            _ => None,
        };
        self.other_end = Some((fd, own));
        own
    }

    fn edge_triggered(&mut self, fd: i32) -> Option<bool> {
        if let Some((cached, edge)) = self.edge
            && cached == fd
        {
            return edge;
        }
        let edge = self.source.edge_triggered(self.tgid, fd);
        self.edge = Some((fd, edge));
        edge
    }

    fn fs_type(&mut self, fd: i32) -> Option<String> {
        self.source.fd_fs_type(self.tgid, fd)
    }

    fn caught(&mut self, restartable: bool) -> Option<bool> {
        self.interrupting(restartable).map(|mask| mask != 0)
    }

    fn interrupting(&mut self, restartable: bool) -> Option<u64> {
        let mask = (*self
            .caught
            .get_or_insert_with(|| self.source.caught_signals(self.tid)))?;
        if mask == 0 || !restartable {
            return Some(mask);
        }
        self.cache.interrupts(&mut self.source, self.tgid, mask)
    }

    fn loader(&mut self) -> Option<bool> {
        if let Some(known) = self.loader {
            return known;
        }
        let known = self.read_loader();
        self.loader = Some(known);
        known
    }

    fn has_child(&mut self, waits: Waits) -> Option<bool> {
        match waits {
            Waits::Any => self.source.has_child(self.tgid, None),
            Waits::Pid(pid) => self.source.has_child(self.tgid, Some(pid)),
            Waits::Other => None,
        }
    }
}

impl<S: Source> ProcProbe<'_, S> {
    /// [`Probe::loader`], read: is the call's instruction in the code of the loader its process was given?
    fn read_loader(&mut self) -> Option<bool> {
        let ip = self.ip?;
        let base = self.source.loader_base(self.tgid)?;
        if base == 0 {
            // A static program: no loader, every call is the program's.
            return Some(false);
        }
        let code = match self.cache.loaders.get(&self.tgid) {
            Some((cached, code)) if *cached == base => code.clone(),
            _ => {
                let code = self.source.loader_text(self.tgid, base).and_then(loader_code);
                if self.cache.loaders.len() >= LOADER_CACHE {
                    self.cache.loaders.clear();
                }
                self.cache.loaders.insert(self.tgid, (base, code.clone()));
                code
            }
        };
        Some(code?.0.iter().any(|&(start, end)| (start..end).contains(&ip)))
    }

    fn read_fd(&mut self, fd: i32) -> Option<FdFacts> {
        if fd < 0 {
            return Some(FdFacts {
                kind: "closed",
                nonblock: None,
                path: None,
            });
        }
        let link = match self.source.fd_link(self.tid, fd) {
            Ok(link) => link.to_string_lossy().into_owned(),
            // No such link: the task is gone (killed at its stop), and nothing is known of the descriptor...
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.source.tgid(self.tid).is_none() => {
                return None;
            }
            // ...or it is not open: the call is about to fail with EBADF by itself.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(FdFacts {
                    kind: "closed",
                    nonblock: None,
                    path: None,
                });
            }
            Err(_) => return None,
        };
        let nonblock = self
            .source
            .fd_flags(self.tid, fd)
            .map(|flags| flags & libc::O_NONBLOCK as u64 != 0);
        if let Some(kind) = fd_kind_of_link(&link) {
            return Some(FdFacts {
                kind,
                nonblock,
                path: None,
            });
        }
        if let Some(inode) = link
            .strip_prefix("socket:[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|n| n.parse::<u64>().ok())
        {
            let kind = match self.cache.sockets.get(&inode) {
                Some(kind) => *kind,
                None => {
                    let kind = self
                        .source
                        .socket_family_type(self.tgid, fd)
                        .map(|(family, ty)| socket_kind(family, ty))
                        .unwrap_or("socket");
                    if self.cache.sockets.len() >= SOCKET_CACHE {
                        self.cache.sockets.clear();
                    }
                    self.cache.sockets.insert(inode, kind);
                    kind
                }
            };
            return Some(FdFacts {
                kind,
                nonblock,
                path: None,
            });
        }
        // A path: what it is, from the inode the descriptor holds (stat follows the magic link).
        let (mode, rdev) = self.source.fd_mode(self.tid, fd)?;
        let kind = match mode & libc::S_IFMT {
            libc::S_IFREG => "file",
            libc::S_IFDIR => "dir",
            libc::S_IFIFO => "pipe",
            libc::S_IFSOCK => "socket",
            libc::S_IFBLK => "blk",
            libc::S_IFCHR => chr_kind(major(rdev)),
            _ => "other",
        };
        Some(FdFacts {
            kind,
            nonblock,
            path: matches!(kind, "file" | "dir").then_some(link),
        })
    }
}

/// The major number of a device number as `stat` gives it (glibc's `major()`).
fn major(rdev: u64) -> u64 {
    ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use phoebe_core::model::shape::{Shape, shape_of};

    /// `decider`'s decision for a call of `syscall` with `args` by task `tid` (its own thread group), probed
    /// through `source`.
    fn decide_call(
        decider: &mut phoebe_core::decide::Decider,
        source: &mut fake::Recorded,
        cache: &mut FactCache,
        tid: Pid,
        syscall: &str,
        args: [u64; 6],
    ) -> Option<phoebe_core::decide::Decision> {
        let call = phoebe_core::decide::Call {
            syscall: Syscall::parse(syscall).unwrap(),
            pid: tid.as_raw(),
            tid: tid.as_raw(),
            thread: None,
            t_ns: 0,
            path: None,
            args,
        };
        let mut probe = ProcProbe::with_source(source, tid, tid.as_raw(), cache);
        decider.decide(&call, &mut probe)
    }

    /// tempfile's suite: `statx(fd, "", AT_EMPTY_PATH)` of an open temp file was named by the descriptor's link
    /// (`/tmp/.tmpnFn6DW (deleted)`), matched the template `path=/tmp/.tmp*` whose lookups failed naturally with
    /// ENOENT, and got that ENOENT, which a call on an open file never returns. An empty path has no path.
    #[test]
    fn regression_an_empty_path_was_named_by_its_dirfd_and_got_a_lookups_enoent() {
        use super::fake::Recorded;
        let tid = Pid::from_raw(4_000_001);
        let mut source = Recorded::new()
            .file(tid, 3, "/tmp/.tmpnFn6DW (deleted)", libc::O_RDWR)
            .string(tid, 0x1000, "")
            .string(tid, 0x2000, "x")
            .cwd(tid, "/work");
        let statx = Syscall::parse("statx").unwrap();
        assert_eq!(
            resolve_path(&mut source, tid, statx, &[3, 0x1000, 0x1000, 0, 0, 0]),
            None
        );
        assert_eq!(
            resolve_path(
                &mut source,
                tid,
                statx,
                &[libc::AT_FDCWD as u64, 0x2000, 0, 0, 0, 0]
            )
            .as_deref(),
            Some("/work/x")
        );
    }

    /// nginx: a short read of a connection its edge-triggered epoll watches hung it (no edge came for the rest
    /// phoebe had left queued). The model's `edge=no` is decided per descriptor from the process's epoll
    /// instances: the watched connection is never shortened, the blocking one is, and the probe asks once per
    /// call.
    #[test]
    fn regression_short_reads_were_injected_into_edge_triggered_readers() {
        use super::fake::Recorded;
        use phoebe_core::decide::Decider;
        let tid = Pid::from_raw(4_000_020);
        let tcp = (libc::AF_INET, libc::SOCK_STREAM);
        let mut source = Recorded::new()
            .socket(tid, 5, 901, tcp, libc::O_RDWR | libc::O_NONBLOCK)
            .socket(tid, 6, 902, tcp, libc::O_RDWR | libc::O_NONBLOCK)
            .edge(tid, 5, true)
            .edge(tid, 6, false);
        let rule =
            phoebe_core::model::FaultSpec::parse("recvfrom:short=1:p=1:fd=tcp:nonblock=yes:edge=no").unwrap();
        let mut decider = Decider::new(vec![rule], 1);
        let mut cache = FactCache::default();
        let mut recv = |source: &mut Recorded, fd: u64| {
            decide_call(
                &mut decider,
                source,
                &mut cache,
                tid,
                "recvfrom",
                [fd, 0x1000, 1024, 0, 0, 0],
            )
        };
        assert!(
            recv(&mut source, 5).is_none(),
            "watched edge-triggered: never short"
        );
        assert!(recv(&mut source, 6).is_some(), "not watched so: short");
        let asked = |fd: i32| {
            let line = format!("edge_triggered {} {fd}", tid.as_raw());
            source.reads.iter().filter(|r| **r == line).count()
        };
        assert_eq!((asked(5), asked(6)), (1, 1), "{:?}", source.reads);
        // The watched connection's read is counted as kept out by the guard, with what it had, not as matched.
        let log = decider.finish(vec!["nginx".into()], "ptrace", None, false);
        assert_eq!(log.rules[0].matched, 1);
        assert_eq!(
            log.rules[0].guarded.iter().collect::<Vec<_>>(),
            [(&"edge=yes".to_owned(), &1)]
        );
    }

    /// tar | gzip: the plausible `close-EINTR` failed gzip's close of its output on ext4, where close flushes
    /// nothing and never returns EINTR. The model's `flush=yes` is decided per descriptor from its file's file
    /// system: a file on NFS is interrupted, one on ext4 and a pipe are not, and each close asks once.
    #[test]
    fn regression_close_eintr_was_injected_into_files_on_local_disks() {
        use super::fake::Recorded;
        use phoebe_core::decide::Decider;
        let tid = Pid::from_raw(4_000_040);
        let mut source = Recorded::new()
            .file(tid, 3, "/work/out.tgz", libc::O_WRONLY)
            .fs_type(tid, 3, "ext4")
            .file(tid, 4, "/mnt/nfs/out.tgz", libc::O_WRONLY)
            .fs_type(tid, 4, "nfs4")
            .pipe(tid, 5, 903, true)
            .file(tid, 6, "/gone/out", libc::O_WRONLY)
            .caught(tid, true);
        let rule =
            phoebe_core::model::FaultSpec::parse("close:EINTR:p=1:fd=file:caught=yes:flush=yes").unwrap();
        let pipes = phoebe_core::model::FaultSpec::parse("close:EINTR:p=1:fd=pipe:flush=yes").unwrap();
        let mut decider = Decider::new(vec![rule, pipes], 1);
        let mut cache = FactCache::default();
        let mut close = |source: &mut Recorded, fd: u64| {
            decide_call(
                &mut decider,
                source,
                &mut cache,
                tid,
                "close",
                [fd, 0, 0, 0, 0, 0],
            )
        };
        assert!(close(&mut source, 3).is_none(), "ext4: close flushes nothing");
        assert!(
            close(&mut source, 4).is_some(),
            "NFS: its flush can be interrupted"
        );
        assert!(close(&mut source, 5).is_none(), "a pipe has no flush");
        assert!(
            close(&mut source, 6).is_none(),
            "a mount phoebe cannot find: unknown, kept out"
        );
        let asked = |fd: i32| {
            let line = format!("fd_fs_type {} {fd}", tid.as_raw());
            source.reads.iter().filter(|r| **r == line).count()
        };
        assert_eq!((asked(3), asked(4), asked(5)), (1, 1, 0), "{:?}", source.reads);
        let log = decider.finish(vec!["gzip".into()], "ptrace", None, false);
        assert_eq!(log.rules[0].matched, 1);
        assert_eq!(
            log.rules[0].guarded.iter().collect::<Vec<_>>(),
            [(&"flush=no".to_owned(), &1), (&"flush=unknown".to_owned(), &1)]
        );
        assert_eq!(
            log.rules[1].guarded.iter().collect::<Vec<_>>(),
            [(&"flush=no".to_owned(), &1)]
        );
    }

    /// GNU sort: the plausible `ftruncate-ENOSPC` failed its truncation of its output on ext4. `cow=yes` is
    /// decided per descriptor from its file's file system: btrfs injected, ext4 and a pipe (no file system to
    /// reserve space in) kept out, and a file whose mount phoebe cannot find kept out as unknown.
    #[test]
    fn regression_ftruncate_enospc_was_injected_on_file_systems_that_reserve_nothing() {
        use super::fake::Recorded;
        use phoebe_core::decide::Decider;
        let tid = Pid::from_raw(4_000_060);
        let mut source = Recorded::new()
            .file(tid, 3, "/work/out.txt", libc::O_WRONLY)
            .fs_type(tid, 3, "ext4")
            .file(tid, 4, "/srv/out.txt", libc::O_WRONLY)
            .fs_type(tid, 4, "btrfs")
            .pipe(tid, 5, 905, true)
            .file(tid, 6, "/gone/out.txt", libc::O_WRONLY);
        let rule = phoebe_core::model::FaultSpec::parse("ftruncate:ENOSPC:p=1:cow=yes").unwrap();
        let mut decider = Decider::new(vec![rule], 1);
        let mut cache = FactCache::default();
        let mut truncate = |source: &mut Recorded, fd: u64| {
            decide_call(
                &mut decider,
                source,
                &mut cache,
                tid,
                "ftruncate",
                [fd, 0, 0, 0, 0, 0],
            )
        };
        assert!(truncate(&mut source, 3).is_none(), "ext4");
        assert!(truncate(&mut source, 4).is_some(), "btrfs");
        assert!(truncate(&mut source, 5).is_none(), "a pipe");
        assert!(
            truncate(&mut source, 6).is_none(),
            "a mount phoebe cannot find: unknown"
        );
        let log = decider.finish(vec!["sort".into()], "ptrace", None, false);
        assert_eq!(
            log.rules[0].guarded.iter().collect::<Vec<_>>(),
            [(&"cow=no".to_owned(), &2), (&"cow=unknown".to_owned(), &1)]
        );
    }

    /// The catalogue's plausible `connect:ETIMEDOUT` came at once; the kernel's comes once the SYN and its retries
    /// went unanswered. The decision holds a blocking TCP connect for its socket's `TCP_SYNCNT` (127 s for 6
    /// retries), and a non-blocking one (whose ETIMEDOUT comes later, through SO_ERROR) not at all.
    #[test]
    fn regression_an_injected_connect_etimedout_came_at_once() {
        use super::fake::Recorded;
        use phoebe_core::decide::{Call, Decider};
        let tid = Pid::from_raw(4000);
        let tcp = (libc::AF_INET, libc::SOCK_STREAM);
        let mut source = Recorded::new()
            .socket(tid, 5, 901, tcp, libc::O_RDWR)
            .syn_retries(tid, 5, 6)
            .socket(tid, 6, 902, tcp, libc::O_RDWR | libc::O_NONBLOCK)
            .syn_retries(tid, 6, 6);
        let rule = phoebe_core::model::FaultSpec::parse("connect:ETIMEDOUT:p=1").unwrap();
        let mut decider = Decider::new(vec![rule], 1);
        let mut cache = FactCache::default();
        let mut connect = |source: &mut Recorded, fd: u64| {
            let call = Call {
                syscall: Syscall::parse("connect").unwrap(),
                pid: tid.as_raw(),
                tid: tid.as_raw(),
                thread: None,
                t_ns: 0,
                path: None,
                args: [fd, 0x1000, 16, 0, 0, 0],
            };
            let mut probe = ProcProbe::with_source(&mut *source, tid, tid.as_raw(), &mut cache);
            decider.decide(&call, &mut probe).map(|d| d.delay)
        };
        assert_eq!(
            connect(&mut source, 5),
            Some(Some(std::time::Duration::from_secs(127)))
        );
        assert_eq!(connect(&mut source, 6), Some(None), "non-blocking: at once");
    }

    /// gzip: the plausible `read-EINTR` failed its read of tar's pipe; its handlers (SIGHUP, SIGINT, SIGTERM, …,
    /// without `SA_RESTART`) re-raise the signal and never return, which phoebe cannot see. The injection's log
    /// entry now names the handlers the EINTR needs: those without `SA_RESTART` for a read (restartable), every
    /// caught one for a call that is not.
    #[test]
    fn regression_an_eintr_finding_did_not_say_which_handler_it_needs() {
        use super::fake::Recorded;
        use phoebe_core::decide::{Call, Decider};
        let gzip = 4_000_050;
        let tid = Pid::from_raw(gzip);
        let bit = |sig: i32| 1u64 << (sig - 1);
        let mut source = Recorded::new()
            .pipe(tid, 0, 904, true)
            .caught_signals(tid, bit(libc::SIGHUP) | bit(libc::SIGINT) | bit(libc::SIGCHLD))
            .word(tid, 0x1000, 0x40_79b0)
            .word(tid, 0x1008, 0x0400_0000)
            .word(tid, 0x2000, 0x40_79c0)
            .word(tid, 0x2008, libc::SA_RESTART as u64 | 0x0400_0000);
        let mut cache = FactCache::default();
        for (sig, act) in [
            (libc::SIGHUP, 0x1000),
            (libc::SIGINT, 0x1000),
            (libc::SIGCHLD, 0x2000),
        ] {
            let handler = read_sigaction(&mut source, tid, &[sig as u64, act, 0, 8, 0, 0]).unwrap();
            cache.record_handler(gzip, handler);
        }
        let mut probe = ProcProbe::with_source(&mut source, tid, gzip, &mut cache);
        assert_eq!(
            probe.interrupting(true),
            Some(bit(libc::SIGHUP) | bit(libc::SIGINT)),
            "SIGCHLD's handler restarts a read"
        );
        assert_eq!(
            probe.interrupting(false),
            Some(bit(libc::SIGHUP) | bit(libc::SIGINT) | bit(libc::SIGCHLD))
        );
        let rule = phoebe_core::model::FaultSpec::parse("read:EINTR:p=1:fd=pipe:caught=yes").unwrap();
        let mut decider = Decider::new(vec![rule], 1);
        let call = Call {
            syscall: Syscall::parse("read").unwrap(),
            pid: gzip,
            tid: gzip,
            thread: None,
            t_ns: 0,
            path: None,
            args: [0, 0x5000, 32768, 0, 0, 0],
        };
        let mut probe = ProcProbe::with_source(&mut source, tid, gzip, &mut cache);
        assert!(decider.decide(&call, &mut probe).is_some());
        let log = decider.finish(vec!["gzip".into()], "ptrace", None, false);
        assert_eq!(
            log.injections[0].interrupted_by.as_deref(),
            Some(&["SIGHUP".to_owned(), "SIGINT".to_owned()][..])
        );
        // Another errno says nothing of signals.
        let rule = phoebe_core::model::FaultSpec::parse("read:EIO:p=1:fd=pipe").unwrap();
        let mut decider = Decider::new(vec![rule], 1);
        let mut probe = ProcProbe::with_source(&mut source, tid, gzip, &mut cache);
        assert!(decider.decide(&call, &mut probe).is_some());
        let log = decider.finish(vec!["gzip".into()], "ptrace", None, false);
        assert_eq!(log.injections[0].interrupted_by, None);
    }

    /// gcc's driver catches SIGINT, SIGHUP, SIGTERM and SIGPIPE with `SA_RESTART` (`signal(3)`), and takes an EINTR
    /// from its `waitpid` for a fatal error: the plausible `wait4-EINTR` made `make` fail with "cc: fatal error:
    /// failed to get exit status: Interrupted system call", which the kernel never makes happen there. The handlers
    /// a process installs are recorded from its `rt_sigaction` calls, and `caught` asks for one without
    /// `SA_RESTART` where the call is restartable; a forked child has its parent's until it installs its own.
    #[test]
    fn regression_eintr_was_injected_where_sa_restart_restarts_the_call() {
        use super::fake::Recorded;
        let (gcc, child, python) = (4_000_030, 4_000_031, 4_000_032);
        let tid = |n| Pid::from_raw(n);
        let sigint = 1u64 << (libc::SIGINT - 1);
        let restart = libc::SA_RESTART as u64;
        let mut source = Recorded::new()
            .caught_signals(tid(gcc), sigint)
            .caught_signals(tid(child), sigint)
            .caught_signals(tid(python), sigint)
            .parent(child, gcc)
            // gcc's `signal(SIGINT, handler)`: the action at 0x1000.
            .word(tid(gcc), 0x1000, 0x40_79b0)
            .word(tid(gcc), 0x1008, restart | 0x0400_0000)
            // CPython's `signal.signal`: SA_ONSTACK only.
            .word(tid(python), 0x2000, 0x7f00_1234)
            .word(tid(python), 0x2008, libc::SA_ONSTACK as u64);
        let mut cache = FactCache::default();
        let sigaction = |sig: i32, act: u64| [sig as u64, act, 0, 8, 0, 0];
        for (pid, act) in [(gcc, 0x1000), (python, 0x2000)] {
            let handler = read_sigaction(&mut source, tid(pid), &sigaction(libc::SIGINT, act)).unwrap();
            cache.record_handler(pid, handler);
        }
        assert_eq!(
            read_sigaction(&mut source, tid(gcc), &sigaction(libc::SIGINT, 0x1000)),
            Some((libc::SIGINT as u8, Handler::Restarts))
        );
        // A query of the old action only (act NULL) installs nothing.
        assert_eq!(
            read_sigaction(&mut source, tid(gcc), &sigaction(libc::SIGINT, 0)),
            None
        );
        let mut caught = |source: &mut Recorded, pid: i32, restartable: bool| {
            ProcProbe::with_source(&mut *source, tid(pid), pid, &mut cache).caught(restartable)
        };
        assert_eq!(
            caught(&mut source, gcc, true),
            Some(false),
            "wait4 restarts under SA_RESTART"
        );
        assert_eq!(caught(&mut source, gcc, false), Some(true), "a poll does not");
        assert_eq!(
            caught(&mut source, child, true),
            Some(false),
            "the forked child has gcc's handler"
        );
        assert_eq!(caught(&mut source, python, true), Some(true), "no SA_RESTART");
        // A process whose handler was never seen installed: unknown, never guessed.
        let stranger = 4_000_033;
        let mut source = source.caught_signals(tid(stranger), sigint);
        assert_eq!(caught(&mut source, stranger, true), None);
        // The guard reads the call's restartability from its registers: wait4 is, a futex wait with a timeout not.
        let wait4 = Syscall::parse("wait4").unwrap();
        let mut probe = ProcProbe::with_source(&mut source, tid(gcc), gcc, &mut cache);
        assert_eq!(
            phoebe_core::model::shape::guard_value(
                phoebe_core::model::shape::Key::Caught,
                wait4,
                &[0; 6],
                &mut probe
            ),
            "no"
        );
    }

    #[test]
    fn paths_are_normalised_lexically() {
        assert_eq!(normalize(Path::new("/tmp/./a/../b")), "/tmp/b");
        assert_eq!(normalize(Path::new("/../etc//hosts")), "/etc/hosts");
    }

    /// A plausible `mmap:ENOMEM` failed the dynamic loader's own mmaps, so the program died (SIGSEGV, or exit 127)
    /// before its code ran: a call's `loader` component says whether its instruction lies in the code of the
    /// loader its process was given, read once per loaded loader.
    #[test]
    fn regression_plausible_mmap_enomem_killed_the_dynamic_loader_before_the_program_ran() {
        use super::fake::Recorded;
        let (glibc, musl, static_bin) = (4_000_010, 4_000_011, 4_000_012);
        let tid = |n| Pid::from_raw(n);
        let ld = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
        let mut source = Recorded::new()
            .loader(glibc, 0x7f00_0000, ld, &[(0x7f00_1000, 0x7f00_9000)])
            .loader(
                musl,
                0x7e00_0000,
                "/lib/ld-musl-x86_64.so.1",
                &[(0x7e00_1000, 0x7e00_9000)],
            )
            .loader(static_bin, 0, "", &[]);
        let mut cache = FactCache::default();
        let mut loader = |source: &mut Recorded, pid: i32, ip: Option<u64>| {
            let probe = ProcProbe::with_source(&mut *source, tid(pid), pid, &mut cache);
            let mut probe = match ip {
                Some(ip) => probe.with_ip(ip),
                None => probe,
            };
            probe.loader()
        };
        assert_eq!(
            loader(&mut source, glibc, Some(0x7f00_2345)),
            Some(true),
            "ld.so's code"
        );
        assert_eq!(
            loader(&mut source, glibc, Some(0x7f00_9000)),
            Some(false),
            "past its end"
        );
        assert_eq!(
            loader(&mut source, glibc, Some(0x5555_0000)),
            Some(false),
            "the program's"
        );
        assert_eq!(
            source
                .reads
                .iter()
                .filter(|r| r.starts_with("loader_text"))
                .count(),
            1,
            "the loader's maps are read once per loaded loader: {:?}",
            source.reads
        );
        assert_eq!(
            loader(&mut source, glibc, None),
            None,
            "no instruction pointer, nothing known"
        );
        assert_eq!(
            loader(&mut source, musl, Some(0x7e00_2345)),
            None,
            "musl's loader is its C library too: its calls cannot be told from the program's"
        );
        assert_eq!(
            loader(&mut source, static_bin, Some(0x40_1000)),
            Some(false),
            "no loader at all"
        );
        assert_eq!(
            loader(&mut source, 4_000_013, Some(0x40_1000)),
            None,
            "a process that is gone"
        );
    }

    /// The seccomp supervisor computes a call's shape before `ID_VALID` and decides after it: the second time
    /// reads nothing.
    #[test]
    fn a_probe_reads_each_fact_once_per_call() {
        use super::fake::Recorded;
        let tid = Pid::from_raw(4_000_020);
        let mut source = Recorded::new().caught(tid, true).pipe(tid, 5, 77, false);
        let mut cache = FactCache::default();
        let mut probe = ProcProbe::with_source(&mut source, tid, tid.as_raw(), &mut cache);
        for _ in 0..2 {
            assert_eq!(probe.caught(false), Some(true));
            assert_eq!(probe.pipe_readers(5), Some(false));
        }
        drop(probe);
        let reads = |what: &str| source.reads.iter().filter(|r| r.starts_with(what)).count();
        assert_eq!(
            (reads("caught_signals"), reads("pipe_readers")),
            (1, 1),
            "{:?}",
            source.reads
        );
    }

    /// Whether a pipe has a reader, polled through a duplicate of the write end, on this process's own pipe: yes
    /// while the read end is open, no once it is closed; a read end says nothing.
    #[test]
    fn a_pipe_has_readers_until_its_read_end_is_closed() {
        let me = Pid::this();
        let mut cache = FactCache::default();
        let (r, w) = std::io::pipe().unwrap();
        let mut probe = ProcProbe::new(me, me.as_raw(), &mut cache);
        assert_eq!(probe.pipe_readers(w.as_raw_fd()), Some(true));
        assert_eq!(probe.pipe_readers(r.as_raw_fd()), None, "a read end");
        drop(r);
        assert_eq!(probe.pipe_readers(w.as_raw_fd()), Some(false));
        assert_eq!(probe.pipe_readers(-1), None, "not open");
    }

    /// Whether this process holds the other end itself: of its own socket pair and pipe, yes (the kernel's socket
    /// diagnostics name the pair's peer); once that end is closed, or given away, no; a TCP connection to
    /// itself is `other` all the same (not looked for); a regular file has no other end.
    #[test]
    fn a_self_pipe_holds_its_own_other_end() {
        let me = Pid::this();
        let probe = |fd: i32| {
            let mut cache = FactCache::default();
            ProcProbe::new(me, me.as_raw(), &mut cache).holds_other_end(fd)
        };
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let inode = |fd: &dyn AsRawFd| {
            procfs::fd_link(me, fd.as_raw_fd())
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        let peer = sys::unix_peer(
            inode(&a)
                .trim_start_matches("socket:[")
                .trim_end_matches(']')
                .parse()
                .unwrap(),
        )
        .unwrap()
        .expect("a pair has a peer");
        assert_eq!(format!("socket:[{peer}]"), inode(&b));
        assert_eq!(probe(a.as_raw_fd()), Some(true));
        drop(b);
        assert_eq!(probe(a.as_raw_fd()), Some(false), "its peer closed");
        let (r, w) = std::io::pipe().unwrap();
        assert_eq!(probe(w.as_raw_fd()), Some(true));
        assert_eq!(probe(r.as_raw_fd()), Some(true));
        drop(r);
        assert_eq!(probe(w.as_raw_fd()), Some(false), "no read end left here");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(probe(client.as_raw_fd()), Some(false));
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("x")).unwrap();
        assert_eq!(probe(file.as_raw_fd()), None);
    }

    /// The kernel's answer to a sock_diag request, read from its bytes: the peer attribute, none, or an error.
    #[test]
    fn sock_diag_answers_are_read_from_their_bytes() {
        let header = |len: u32, ty: u16| {
            let mut m = len.to_ne_bytes().to_vec();
            m.extend_from_slice(&ty.to_ne_bytes());
            m.extend_from_slice(&[0; 10]);
            m
        };
        let mut peer = header(16 + 16 + 8 + 8, 20);
        peer.extend_from_slice(&[0; 16]);
        // An attribute before the peer's (UNIX_DIAG_NAME, 5 bytes padded to 8), then UNIX_DIAG_PEER.
        peer.extend_from_slice(&[5, 0, 0, 0, b'x', 0, 0, 0]);
        peer.extend_from_slice(&8u16.to_ne_bytes());
        peer.extend_from_slice(&2u16.to_ne_bytes());
        peer.extend_from_slice(&4242u32.to_ne_bytes());
        assert_eq!(sys::parse_unix_peer(&peer), Ok(Some(4242)));
        let mut none = header(32, 20);
        none.extend_from_slice(&[0; 16]);
        assert_eq!(sys::parse_unix_peer(&none), Ok(None));
        let mut error = header(36, 2);
        error.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        error.extend_from_slice(&[0; 16]);
        assert_eq!(sys::parse_unix_peer(&error), Err(nix::errno::Errno::ENOENT));
        assert!(sys::parse_unix_peer(&[1, 2]).is_err());
    }

    /// The probe on phoebe's own test process: each kind of descriptor is told apart.
    #[test]
    fn descriptors_of_this_process_have_their_kinds() {
        let me = Pid::this();
        let mut sockets = FactCache::default();
        let mut probe = ProcProbe::new(me, me.as_raw(), &mut sockets);
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("x")).unwrap();
        let facts = probe.fd(file.as_raw_fd()).unwrap();
        assert_eq!(facts.kind, "file");
        assert_eq!(facts.nonblock, Some(false));
        assert_eq!(facts.path.as_deref(), dir.path().join("x").to_str());
        let (r, _w) = std::io::pipe().unwrap();
        assert_eq!(probe.fd(r.as_raw_fd()).unwrap().kind, "pipe");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let facts = probe.fd(listener.as_raw_fd()).unwrap();
        assert_eq!((facts.kind, facts.nonblock), ("tcp", Some(true)));
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(probe.fd(a.as_raw_fd()).unwrap().kind, "unix-stream");
        let udp = std::net::UdpSocket::bind("[::1]:0");
        if let Ok(udp) = udp {
            assert_eq!(probe.fd(udp.as_raw_fd()).unwrap().kind, "udp6");
        }
        assert_eq!(probe.fd(9999).unwrap().kind, "closed");
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(probe.fd(null.as_raw_fd()).unwrap().kind, "chr");
        let read = Syscall::parse("read").unwrap();
        let shape: Shape = shape_of(read, &[listener.as_raw_fd() as u64, 0, 0, 0, 0, 0], &mut probe);
        assert_eq!(
            shape.to_string(),
            "fd=tcp:nonblock=yes:ready=no",
            "no connection is waiting"
        );
    }
}
