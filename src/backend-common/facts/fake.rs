//! Recorded `/proc` entries and memory for the backends' unit tests: a [`Source`] that answers from what a test
//! recorded (a task's thread group, its descriptors' links, flags and inode types, its working directory (and whether it was removed), which names exist, its dynamic loader, strings
//! in its memory, sockets' family and type, whether pipes have readers, the tasks a clone may have created) and says what the real reads say of a task or descriptor it does not
//! know: `None`, or `NotFound` for a descriptor link (epoll registrations and words of memory are never recorded:
//! unknown). Every read is logged, so a test can tell what was read.
//!
//! Owns: nothing the real path uses.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    path::PathBuf,
};

use nix::unistd::Pid;

use super::Source;

/// One recorded descriptor.
#[derive(Debug, Clone)]
struct Fd {
    link: PathBuf,
    /// `flags:` of its fdinfo.
    flags: u64,
    /// `st_mode` and `st_rdev` of the inode it holds (`None`: the `stat` fails).
    mode: Option<(u32, u64)>,
}

/// What the test recorded; see the module doc.
#[derive(Debug, Default)]
pub struct Recorded {
    tgids: HashMap<Pid, i32>,
    fds: HashMap<(Pid, i32), Fd>,
    cwds: HashMap<Pid, PathBuf>,
    /// Working directories that were removed.
    deleted_cwds: BTreeSet<Pid>,
    /// Absolute names and whether they exist (an unrecorded one: unknown).
    names: HashMap<String, bool>,
    /// Absolute names of directories and whether they are empty (an unrecorded one: unknown).
    empties: HashMap<String, bool>,
    /// Thread groups and their children (an unrecorded group: unknown).
    children: HashMap<i32, Vec<i32>>,
    /// Thread groups' dynamic loaders: where each was loaded (its `AT_BASE`), and its file and code there.
    loaders: HashMap<i32, (u64, phoebe_sys::procfs::LoaderText)>,
    strings: HashMap<(Pid, u64), Vec<u8>>,
    /// `(SO_DOMAIN, SO_TYPE)` by (thread group, descriptor).
    sockets: HashMap<(i32, i32), (i32, i32)>,
    /// A TCP socket's `TCP_SYNCNT`, by (thread group, descriptor) (an unrecorded one: unknown).
    syn_retries: HashMap<(i32, i32), u32>,
    /// Whether the pipe a descriptor writes to has a reader, by (thread group, descriptor).
    readers: HashMap<(i32, i32), bool>,
    /// Whether a descriptor is ready, by (thread group, descriptor) (an unrecorded one: unknown).
    ready: HashMap<(i32, i32), bool>,
    /// Whether the process holds the other end of a pipe or socket itself, by (thread group, descriptor).
    other_end: HashMap<(i32, i32), bool>,
    /// Whether an epoll instance of the process watches a descriptor edge-triggered, by (thread group,
    /// descriptor).
    edge: HashMap<(i32, i32), bool>,
    /// The file system type of a descriptor's file, by (thread group, descriptor).
    fs_types: HashMap<(i32, i32), String>,
    /// Whether another holds a lock on a descriptor's file that conflicts with (shared, exclusive) requests, by
    /// (thread group, descriptor).
    held: HashMap<(i32, i32), (bool, bool)>,
    /// Whether a task's process catches a signal (an unrecorded task: unknown).
    caught: HashMap<Pid, u64>,
    /// Words of a task's memory, by (task, address).
    words: HashMap<(Pid, u64), u64>,
    /// Each recorded process's parent.
    parents: HashMap<i32, i32>,
    /// What successive `family` reads of (thread group, thread) find; the last answer repeats.
    families: HashMap<(i32, i32), VecDeque<BTreeSet<i32>>>,
    /// Every read, as `what tid arg`, in order.
    pub reads: Vec<String>,
}

impl Recorded {
    pub fn new() -> Self {
        Recorded::default()
    }

    /// TCP socket `fd` of `tid` sends its SYN `retries` more times before a connect gives up (`TCP_SYNCNT`).
    pub fn syn_retries(mut self, tid: Pid, fd: i32, retries: u32) -> Self {
        let tgid = self.tgids.get(&tid).copied().unwrap_or(tid.as_raw());
        self.syn_retries.insert((tgid, fd), retries);
        self
    }

    /// Task `tid` belongs to thread group `tgid`.
    pub fn thread(mut self, tid: Pid, tgid: i32) -> Self {
        self.tgids.insert(tid, tgid);
        self
    }

    /// Descriptor `fd` of `tid` is a socket (inode `inode`) of `family` and `ty`, its file description's flags
    /// `flags`.
    pub fn socket(mut self, tid: Pid, fd: i32, inode: u64, (family, ty): (i32, i32), flags: i32) -> Self {
        let tgid = self.tgids.get(&tid).copied().unwrap_or(tid.as_raw());
        self.sockets.insert((tgid, fd), (family, ty));
        self.fd(
            tid,
            fd,
            format!("socket:[{inode}]"),
            flags,
            Some(libc::S_IFSOCK | 0o777),
        )
    }

    /// Descriptor `fd` of `tid` is ready for its calls (`true`) or would make them wait.
    pub fn ready(mut self, tid: Pid, fd: i32, ready: bool) -> Self {
        let tgid = self.tgids.get(&tid).copied().unwrap_or(tid.as_raw());
        self.ready.insert((tgid, fd), ready);
        self
    }

    /// Another open file description holds a flock lock on the file of task `tid`'s descriptor `fd`: a shared one
    /// (conflicting only with exclusive requests) when `exclusive` is false, an exclusive one otherwise.
    pub fn lock_held_by_another(mut self, tid: Pid, fd: i32, exclusive: bool) -> Self {
        let tgid = self.tgids.get(&tid).copied().unwrap_or(tid.as_raw());
        self.held.insert((tgid, fd), (exclusive, true));
        self
    }

    /// Task `tid`'s process holds the other end of its descriptor `fd` itself (a self-pipe) or not.
    pub fn other_end(mut self, tid: Pid, fd: i32, own: bool) -> Self {
        let tgid = self.tgids.get(&tid).copied().unwrap_or(tid.as_raw());
        self.other_end.insert((tgid, fd), own);
        self
    }

    /// An epoll instance of task `tid`'s process watches its descriptor `fd` edge-triggered (`true`) or not.
    pub fn edge(mut self, tid: Pid, fd: i32, edge: bool) -> Self {
        let tgid = self.tgids.get(&tid).copied().unwrap_or(tid.as_raw());
        self.edge.insert((tgid, fd), edge);
        self
    }

    /// Task `tid`'s descriptor `fd` is of a file on a file system of type `fs` (`ext4`, `nfs4`).
    pub fn fs_type(mut self, tid: Pid, fd: i32, fs: &str) -> Self {
        let tgid = self.tgids.get(&tid).copied().unwrap_or(tid.as_raw());
        self.fs_types.insert((tgid, fd), fs.to_owned());
        self
    }

    /// Task `tid`'s process catches a signal (`true`: a handler is installed for SIGINT) or not.
    pub fn caught(self, tid: Pid, caught: bool) -> Self {
        self.caught_signals(tid, if caught { 1 << (libc::SIGINT - 1) } else { 0 })
    }

    /// Task `tid`'s process catches the signals of `mask` (`SigCgt`: bit `n - 1` for signal `n`).
    pub fn caught_signals(mut self, tid: Pid, mask: u64) -> Self {
        self.caught.insert(tid, mask);
        self
    }

    /// Task `tid`'s memory holds `value` at `addr`.
    pub fn word(mut self, tid: Pid, addr: u64, value: u64) -> Self {
        self.words.insert((tid, addr), value);
        self
    }

    /// Process `tgid`'s parent is `ppid`.
    pub fn parent(mut self, tgid: i32, ppid: i32) -> Self {
        self.parents.insert(tgid, ppid);
        self
    }

    /// Descriptor `fd` of `tid` is the write end of pipe `inode`, which has a reader (`readers`) or not.
    pub fn pipe(mut self, tid: Pid, fd: i32, inode: u64, readers: bool) -> Self {
        let tgid = self.tgids.get(&tid).copied().unwrap_or(tid.as_raw());
        self.readers.insert((tgid, fd), readers);
        self.fd(
            tid,
            fd,
            format!("pipe:[{inode}]"),
            libc::O_WRONLY,
            Some(libc::S_IFIFO | 0o600),
        )
    }

    /// Descriptor `fd` of `tid` is the regular file `path`.
    pub fn file(self, tid: Pid, fd: i32, path: &str, flags: i32) -> Self {
        self.fd(tid, fd, path.to_owned(), flags, Some(libc::S_IFREG | 0o644))
    }

    /// Descriptor `fd` of `tid` links to `link`, with `flags`, on an inode of `mode` (`None`: `stat` fails).
    pub fn fd(mut self, tid: Pid, fd: i32, link: String, flags: i32, mode: Option<u32>) -> Self {
        self.fds.insert(
            (tid, fd),
            Fd {
                link: link.into(),
                flags: flags as u64,
                mode: mode.map(|m| (m, 0)),
            },
        );
        self
    }

    /// The working directory of `tid`.
    pub fn cwd(mut self, tid: Pid, path: &str) -> Self {
        self.cwds.insert(tid, path.into());
        self
    }

    /// The working directory of `tid` has been removed.
    pub fn deleted_cwd(mut self, tid: Pid) -> Self {
        self.deleted_cwds.insert(tid);
        self
    }

    /// Absolute name `path` exists (`true`) or not, for every task.
    pub fn name(mut self, path: &str, exists: bool) -> Self {
        self.names.insert(path.to_owned(), exists);
        self
    }

    /// The directory absolute name `path` is empty (`true`) or has entries, for every task.
    pub fn dir(mut self, path: &str, empty: bool) -> Self {
        self.empties.insert(path.to_owned(), empty);
        self
    }

    /// Thread group `tgid`'s children are `children`.
    pub fn children(mut self, tgid: i32, children: &[i32]) -> Self {
        self.children.insert(tgid, children.to_vec());
        self
    }

    /// Thread group `tgid` was given the dynamic loader `file`, loaded at `base` with its code at `text`
    /// (`base` 0: a static program).
    pub fn loader(mut self, tgid: i32, base: u64, file: &str, text: &[(u64, u64)]) -> Self {
        let text = phoebe_sys::procfs::LoaderText {
            file: file.to_owned(),
            text: text.to_vec(),
        };
        self.loaders.insert(tgid, (base, text));
        self
    }

    /// What successive reads of the tasks a clone by `tid` of `tgid` can create find (threads and child processes),
    /// one answer per read, the last one repeated.
    pub fn family(mut self, tgid: i32, tid: i32, answers: &[&[i32]]) -> Self {
        self.families.insert(
            (tgid, tid),
            answers.iter().map(|a| a.iter().copied().collect()).collect(),
        );
        self
    }

    /// The NUL-terminated string at `addr` in `tid`'s memory.
    pub fn string(mut self, tid: Pid, addr: u64, text: &str) -> Self {
        self.strings.insert((tid, addr), text.as_bytes().to_vec());
        self
    }

    fn read(&mut self, what: &str, tid: impl std::fmt::Display, arg: impl std::fmt::Display) {
        self.reads.push(format!("{what} {tid} {arg}"));
    }

    fn at(&self, tid: Pid, fd: i32) -> Option<&Fd> {
        self.fds.get(&(tid, fd))
    }
}

impl Source for Recorded {
    fn tgid(&mut self, tid: Pid) -> Option<i32> {
        self.read("tgid", tid, "");
        self.tgids.get(&tid).copied()
    }

    fn fd_link(&mut self, tid: Pid, fd: i32) -> std::io::Result<PathBuf> {
        self.read("fd_link", tid, fd);
        self.at(tid, fd)
            .map(|f| f.link.clone())
            .ok_or_else(|| std::io::ErrorKind::NotFound.into())
    }

    fn fd_flags(&mut self, tid: Pid, fd: i32) -> Option<u64> {
        self.read("fd_flags", tid, fd);
        self.at(tid, fd).map(|f| f.flags)
    }

    fn fd_mode(&mut self, tid: Pid, fd: i32) -> Option<(u32, u64)> {
        self.read("fd_mode", tid, fd);
        self.at(tid, fd)?.mode
    }

    fn epoll_targets(&mut self, tid: Pid, epfd: i32) -> Option<Vec<i32>> {
        self.read("epoll_targets", tid, epfd);
        None
    }

    fn cwd(&mut self, tid: Pid) -> Option<PathBuf> {
        self.read("cwd", tid, "");
        self.cwds.get(&tid).cloned()
    }

    fn cwd_deleted(&mut self, tid: Pid) -> Option<bool> {
        self.read("cwd_deleted", tid, "");
        self.cwds
            .contains_key(&tid)
            .then(|| self.deleted_cwds.contains(&tid))
    }

    fn name_exists(&mut self, tid: Pid, path: &str) -> Option<bool> {
        self.read("name_exists", tid, path);
        self.names.get(path).copied()
    }

    fn dir_empty(&mut self, tid: Pid, path: &str) -> Option<bool> {
        self.read("dir_empty", tid, path);
        self.empties.get(path).copied()
    }

    fn has_child(&mut self, tgid: i32, pid: Option<i32>) -> Option<bool> {
        self.read("has_child", tgid, format_args!("{pid:?}"));
        let children = self.children.get(&tgid)?;
        Some(pid.map_or(!children.is_empty(), |pid| children.contains(&pid)))
    }

    fn loader_base(&mut self, tgid: i32) -> Option<u64> {
        self.read("loader_base", tgid, "");
        self.loaders.get(&tgid).map(|(base, _)| *base)
    }

    fn loader_text(&mut self, tgid: i32, base: u64) -> Option<phoebe_sys::procfs::LoaderText> {
        self.read("loader_text", tgid, format_args!("{base:#x}"));
        self.loaders
            .get(&tgid)
            .filter(|(at, _)| *at == base)
            .map(|(_, text)| text.clone())
    }

    fn read_c_string(&mut self, tid: Pid, addr: u64) -> Option<Vec<u8>> {
        self.read("read_c_string", tid, format_args!("{addr:#x}"));
        self.strings.get(&(tid, addr)).cloned()
    }

    fn read_u64(&mut self, tid: Pid, addr: u64) -> Option<u64> {
        self.read("read_u64", tid, format_args!("{addr:#x}"));
        self.words.get(&(tid, addr)).copied()
    }

    fn caught_signals(&mut self, tid: Pid) -> Option<u64> {
        self.read("caught_signals", tid, "");
        self.caught.get(&tid).copied()
    }

    fn parent(&mut self, tgid: i32) -> Option<i32> {
        self.read("parent", tgid, "");
        self.parents.get(&tgid).copied()
    }

    fn fd_ready(&mut self, tgid: i32, fd: i32, events: i16) -> Option<bool> {
        self.read("fd_ready", tgid, format_args!("{fd} {events:#x}"));
        self.ready.get(&(tgid, fd)).copied()
    }

    fn pipe_readers(&mut self, tgid: i32, fd: i32) -> Option<bool> {
        self.read("pipe_readers", tgid, fd);
        self.readers.get(&(tgid, fd)).copied()
    }

    fn flock_held(&mut self, tgid: i32, fd: i32, exclusive: bool) -> Option<bool> {
        self.read("flock_held", tgid, format_args!("{fd} {exclusive}"));
        // A recorded file's lock, or no lock at all on a recorded descriptor's file.
        let (for_shared, for_exclusive) = match self.held.get(&(tgid, fd)) {
            Some(&held) => held,
            None => return self.fds.keys().any(|(_, f)| *f == fd).then_some(false),
        };
        Some(if exclusive { for_exclusive } else { for_shared })
    }

    fn holds_other_end(&mut self, tgid: i32, fd: i32) -> Option<bool> {
        self.read("holds_other_end", tgid, fd);
        self.other_end.get(&(tgid, fd)).copied()
    }

    fn edge_triggered(&mut self, tgid: i32, fd: i32) -> Option<bool> {
        self.read("edge_triggered", tgid, fd);
        self.edge.get(&(tgid, fd)).copied()
    }

    fn fd_fs_type(&mut self, tgid: i32, fd: i32) -> Option<String> {
        self.read("fd_fs_type", tgid, fd);
        self.fs_types.get(&(tgid, fd)).cloned()
    }

    fn socket_family_type(&mut self, tgid: i32, fd: i32) -> Option<(i32, i32)> {
        self.read("socket_family_type", tgid, fd);
        self.sockets.get(&(tgid, fd)).copied()
    }

    fn tcp_syn_retries(&mut self, tgid: i32, fd: i32) -> Option<u32> {
        self.read("tcp_syn_retries", tgid, fd);
        self.syn_retries.get(&(tgid, fd)).copied()
    }

    fn family(&mut self, tgid: i32, tid: i32) -> BTreeSet<i32> {
        self.read("family", tgid, tid);
        let Some(answers) = self.families.get_mut(&(tgid, tid)) else {
            return BTreeSet::new();
        };
        match answers.len() {
            0 => BTreeSet::new(),
            1 => answers[0].clone(),
            _ => answers.pop_front().unwrap_or_default(),
        }
    }
}
