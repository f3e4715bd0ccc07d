//! What a user-space backend learns about one call beyond its registers, for deciding and for call shapes
//! (DESIGN §6): the resolved path argument, what a descriptor refers to (kind, `O_NONBLOCK`, path), the thread
//! group of a task. Shared by the ptrace and seccomp backends, which both hold a stopped task (a tracee at a
//! syscall stop, a task waiting in a notified call); neither imports the other.
//! Owns: [`ProcProbe`], the implementation of `model::shape::Probe` over `/proc` and the task's memory.
//! Raw calls live in `sys.rs`.

mod sys;

use std::{
    collections::HashMap,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Component, Path, PathBuf},
};

use nix::unistd::Pid;

use crate::{
    model::{
        Syscall,
        names::{fd_arg, path_arg},
        shape::{FdFacts, Probe, chr_kind, fd_kind_of_link, socket_kind},
    },
    sys::procfs,
};

/// The thread group of a task, from /proc (cheap enough for the calls a rule targets); the tid itself when the
/// task is gone.
pub(crate) fn tgid_of(tid: Pid) -> i32 {
    procfs::tgid_of(tid).unwrap_or(tid.as_raw())
}

/// The absolute, lexically normalised path argument of a call, resolved against its dirfd or the cwd; for a
/// call on a descriptor, the file it refers to as the kernel names it (`socket:[N]`, `pipe:[N]` for those).
pub(crate) fn resolve_path(tid: Pid, sc: Syscall, args: &[u64; 6]) -> Option<String> {
    let Some((path_idx, dirfd_idx)) = path_arg(sc) else {
        let fd = args[fd_arg(sc)?] as i32;
        return procfs::fd_path(tid, fd).map(|p| p.to_string_lossy().into_owned());
    };
    let raw = sys::read_c_string(tid, args[path_idx])?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    if raw.starts_with('/') {
        return Some(normalize_absolute(&raw));
    }
    let dirfd = dirfd_idx.map(|i| args[i] as i32).unwrap_or(libc::AT_FDCWD);
    let base = if dirfd == libc::AT_FDCWD {
        procfs::cwd(tid)?
    } else {
        procfs::fd_path(tid, dirfd)?
    };
    Some(normalize(&base.join(raw)))
}

/// An absolute path argument as the kernel passed it, lexically normalised as [`resolve_path`] does (the eBPF
/// observer reads path arguments in the kernel and normalises them here, so both give the same shapes).
pub(crate) fn normalize_absolute(raw: &str) -> String {
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

/// Socket kinds by inode, so that a socket's family and type are fetched once, not at every call on it.
/// Bounded: cleared when it grows past this many sockets.
#[derive(Debug, Default)]
pub struct SocketKinds(HashMap<u64, &'static str>);

const SOCKET_CACHE: usize = 4096;

/// The facts of a call of task `tid` (thread group `tgid`), learned from `/proc` and its memory. A probe lives
/// for one call: what it read is kept, so asking again (the decider computes a shape the backend already
/// computed to warm it) reads nothing.
pub struct ProcProbe<'a> {
    pub tid: Pid,
    pub tgid: i32,
    pub sockets: &'a mut SocketKinds,
    path: Option<Option<String>>,
    fd: Option<(i32, Option<FdFacts>)>,
}

impl<'a> ProcProbe<'a> {
    pub fn new(tid: Pid, tgid: i32, sockets: &'a mut SocketKinds) -> Self {
        ProcProbe {
            tid,
            tgid,
            sockets,
            path: None,
            fd: None,
        }
    }

    /// A probe whose path argument was already read (by a `path=` rule), so it is not read again.
    pub fn with_path(mut self, path: Option<String>) -> Self {
        self.path = Some(path);
        self
    }
}

impl Probe for ProcProbe<'_> {
    fn path(&mut self, sc: Syscall, args: &[u64; 6]) -> Option<String> {
        self.path
            .get_or_insert_with(|| resolve_path(self.tid, sc, args))
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
        sys::read_u64(self.tid, addr)
    }

    fn epoll_registered(&mut self, epfd: i32, fd: i32) -> Option<bool> {
        // Only an epoll instance's fdinfo lists its targets; on anything else the call fails by itself.
        let link = procfs::fd_link(self.tid, epfd).ok()?;
        if fd_kind_of_link(&link.to_string_lossy()) != Some("epoll") {
            return None;
        }
        Some(procfs::epoll_targets(self.tid, epfd)?.contains(&fd))
    }
}

impl ProcProbe<'_> {
    fn read_fd(&mut self, fd: i32) -> Option<FdFacts> {
        if fd < 0 {
            return Some(FdFacts {
                kind: "closed",
                nonblock: None,
                path: None,
            });
        }
        let link = match procfs::fd_link(self.tid, fd) {
            Ok(link) => link.to_string_lossy().into_owned(),
            // Not open: the call is about to fail with EBADF by itself.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(FdFacts {
                    kind: "closed",
                    nonblock: None,
                    path: None,
                });
            }
            Err(_) => return None,
        };
        let nonblock = nonblock_of(self.tid, fd);
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
            let kind = match self.sockets.0.get(&inode) {
                Some(kind) => *kind,
                None => {
                    let kind = sys::socket_family_type(self.tgid, fd)
                        .map(|(family, ty)| socket_kind(family, ty))
                        .unwrap_or("socket");
                    if self.sockets.0.len() >= SOCKET_CACHE {
                        self.sockets.0.clear();
                    }
                    self.sockets.0.insert(inode, kind);
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
        let meta = procfs::fd_metadata(self.tid, fd);
        let ft = meta.as_ref().map(|m| m.file_type());
        let kind = match ft {
            Some(t) if t.is_file() => "file",
            Some(t) if t.is_dir() => "dir",
            Some(t) if t.is_fifo() => "pipe",
            Some(t) if t.is_socket() => "socket",
            Some(t) if t.is_block_device() => "blk",
            Some(t) if t.is_char_device() => chr_kind(major(meta.as_ref().map_or(0, |m| m.rdev()))),
            Some(_) => "other",
            None => return None,
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

/// `O_NONBLOCK` of the open file description.
fn nonblock_of(tid: Pid, fd: i32) -> Option<bool> {
    Some(procfs::fd_flags(tid, fd)? & libc::O_NONBLOCK as u64 != 0)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::model::shape::{Shape, shape_of};

    #[test]
    fn paths_are_normalised_lexically() {
        assert_eq!(normalize(Path::new("/tmp/./a/../b")), "/tmp/b");
        assert_eq!(normalize(Path::new("/../etc//hosts")), "/etc/hosts");
    }

    /// The probe on phoebe's own test process: each kind of descriptor is told apart.
    #[test]
    fn descriptors_of_this_process_have_their_kinds() {
        let me = Pid::this();
        let mut sockets = SocketKinds::default();
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
        assert_eq!(shape.to_string(), "fd=tcp:nonblock=yes");
    }
}
