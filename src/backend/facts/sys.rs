//! The raw calls behind `facts`: reads of a stopped task's memory (`process_vm_readv`), and a socket's family
//! and type and whether a pipe has a reader, through a duplicate of its descriptor (`pidfd_open` + `pidfd_getfd`, Linux ≥ 5.6; phoebe traces or
//! supervises the task, which is what `pidfd_getfd`'s ptrace-attach check asks).

use std::{
    io::IoSliceMut,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use nix::{
    sys::uio::{RemoteIoVec, process_vm_readv},
    unistd::Pid,
};

/// Reads a NUL-terminated string (at most 4096 bytes) from the task at `addr`, a page at a time so that a
/// string ending just before an unmapped page is still read.
pub fn read_c_string(pid: Pid, addr: u64) -> Option<Vec<u8>> {
    const PAGE: u64 = 4096;
    const LIMIT: usize = 4096;
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < LIMIT {
        let chunk = (PAGE - at % PAGE).min((LIMIT - out.len()) as u64) as usize;
        let mut buf = vec![0u8; chunk];
        let remote = [RemoteIoVec {
            base: at as usize,
            len: chunk,
        }];
        let n = process_vm_readv(pid, &mut [IoSliceMut::new(&mut buf)], &remote).ok()?;
        if let Some(end) = buf[..n].iter().position(|b| *b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        if n < chunk {
            return None;
        }
        out.extend_from_slice(&buf);
        at += chunk as u64;
    }
    None
}

/// Reads a native-endian u64 from the task at `addr`.
pub fn read_u64(pid: Pid, addr: u64) -> Option<u64> {
    if addr == 0 {
        return None;
    }
    let mut buf = [0u8; 8];
    let remote = [RemoteIoVec {
        base: addr as usize,
        len: 8,
    }];
    let n = process_vm_readv(pid, &mut [IoSliceMut::new(&mut buf)], &remote).ok()?;
    (n == 8).then(|| u64::from_ne_bytes(buf))
}

/// A duplicate, in phoebe, of descriptor `fd` of process `tgid` (the same open file description).
fn duplicate(tgid: i32, fd: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory is passed.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, tgid, 0) };
    if pidfd < 0 {
        return None;
    }
    // SAFETY: `pidfd` was just returned by pidfd_open and is owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: pidfd_getfd takes a pidfd, a descriptor number of that process and flags (0); it returns a new
    // descriptor in phoebe or -1; no memory is passed.
    let dup = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if dup < 0 {
        return None;
    }
    // SAFETY: `dup` was just returned by pidfd_getfd, a descriptor of phoebe's own that nothing else owns; the
    // returned `OwnedFd` closes it once.
    Some(unsafe { OwnedFd::from_raw_fd(dup as i32) })
}

/// Whether the pipe (or FIFO) that descriptor `fd` of process `tgid` writes to has a reader: `poll` of the write
/// end says `POLLERR` when none is left (`pipe_poll`), the state in which a write fails with EPIPE. `None` when
/// the descriptor cannot be duplicated or is not a pipe's write end.
pub fn pipe_has_readers(tgid: i32, fd: i32) -> Option<bool> {
    let dup = duplicate(tgid, fd)?;
    // SAFETY: F_GETFL takes no argument and returns the flags or -1; `dup` is an open descriptor.
    let flags = unsafe { libc::fcntl(dup.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 || flags & libc::O_ACCMODE == libc::O_RDONLY {
        // A read end polls no POLLERR whatever the readers: nothing to tell.
        return None;
    }
    let mut pfd = libc::pollfd {
        fd: dup.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: `pfd` is one live pollfd, the count passed; a timeout of 0 returns at once.
    let ready = unsafe { libc::poll(&raw mut pfd, 1, 0) };
    (ready >= 0).then_some(pfd.revents & libc::POLLERR == 0)
}

/// Whether descriptor `fd` of process `tgid` is ready for a call that waits for `events` (`POLLIN`, `POLLOUT`):
/// a `poll` of a duplicate with a timeout of 0 (the duplicate shares the open file description, so its readiness).
/// Errors and hang-ups count as ready (the call returns at once, without EAGAIN). `None` when the descriptor cannot
/// be duplicated.
pub fn fd_ready(tgid: i32, fd: i32, events: i16) -> Option<bool> {
    let dup = duplicate(tgid, fd)?;
    let mut pfd = libc::pollfd {
        fd: dup.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: `pfd` is one live pollfd, the count passed; a timeout of 0 returns at once.
    let ready = unsafe { libc::poll(&raw mut pfd, 1, 0) };
    (ready >= 0).then_some(pfd.revents & (events | libc::POLLERR | libc::POLLHUP) != 0)
}

/// `(SO_DOMAIN, SO_TYPE)` of socket `fd` of process `tgid`.
pub fn socket_family_type(tgid: i32, fd: i32) -> Option<(i32, i32)> {
    let dup = duplicate(tgid, fd)?;
    let opt = |name: libc::c_int| -> Option<i32> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are live locals of the sizes getsockopt is told; `dup` is an open descriptor.
        let ret = unsafe {
            libc::getsockopt(
                dup.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        (ret == 0).then_some(value)
    };
    Some((opt(libc::SO_DOMAIN)?, opt(libc::SO_TYPE)?))
}
