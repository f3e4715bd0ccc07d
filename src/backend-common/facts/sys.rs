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

/// How many times TCP socket `fd` of process `tgid` sends its SYN before a connect gives up (`TCP_SYNCNT`: the
/// socket's own setting, else its network namespace's `net.ipv4.tcp_syn_retries`, as the kernel answers it).
pub fn tcp_syn_retries(tgid: i32, fd: i32) -> Option<u32> {
    let dup = duplicate(tgid, fd)?;
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live locals of the sizes getsockopt is told; `dup` is an open descriptor.
    let ret = unsafe {
        libc::getsockopt(
            dup.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_SYNCNT,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    (ret == 0).then(|| u32::try_from(value).ok()).flatten()
}

/// Whether process `tgid` itself holds the other end of what its descriptor `fd` refers to: a read end of the pipe
/// `fd` writes to (a write end of the one it reads), or the peer of its UNIX socket (`unix_peer`): a self-pipe,
/// asyncio's or libuv's wake-up socket pair, whose peer cannot go away while the process runs. `Some(false)` for
/// any other socket (a TCP peer is another process's or host's; phoebe does not look for a process connected to
/// itself over loopback) and for a UNIX socket without a peer; `None` for other descriptors, or when `/proc`
/// cannot be read.
pub fn holds_other_end(tgid: i32, fd: i32) -> Option<bool> {
    use phoebe_sys::procfs;
    let pid = Pid::from_raw(tgid);
    let link = procfs::fd_link(pid, fd).ok()?;
    let link = link.to_str()?.to_owned();
    let same = |other: i32| procfs::fd_link(pid, other).is_ok_and(|l| l.to_str() == Some(link.as_str()));
    if link.starts_with("pipe:[") {
        let mode = procfs::fd_flags(pid, fd)? & libc::O_ACCMODE as u64;
        if mode == libc::O_RDWR as u64 {
            // A FIFO opened for both: the caller is its own reader and writer.
            return Some(true);
        }
        let fds = procfs::fds(pid)?;
        return Some(fds.into_iter().filter(|&o| o != fd).any(|o| {
            same(o) && procfs::fd_flags(pid, o).is_some_and(|f| f & libc::O_ACCMODE as u64 != mode)
        }));
    }
    let ino: u32 = link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()?;
    match unix_peer(ino) {
        Ok(Some(peer)) => {
            let want = format!("socket:[{peer}]");
            let fds = procfs::fds(pid)?;
            Some(
                fds.into_iter()
                    .any(|o| procfs::fd_link(pid, o).is_ok_and(|l| l.to_str() == Some(want.as_str()))),
            )
        }
        Ok(None) | Err(nix::errno::Errno::ENOENT) => Some(false),
        Err(_) => None,
    }
}

/// `SOCK_DIAG_BY_FAMILY` (linux/sock_diag.h): the one request type of `NETLINK_SOCK_DIAG`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `UDIAG_SHOW_PEER` (linux/unix_diag.h): ask for the peer's inode.
const UDIAG_SHOW_PEER: u32 = 4;
/// `UNIX_DIAG_PEER`: the attribute that carries it, a `u32`.
const UNIX_DIAG_PEER: u16 = 2;
/// Bytes of `struct nlmsghdr`, of `struct unix_diag_req` and of `struct unix_diag_msg`.
const NLMSGHDR: usize = 16;
const UNIX_DIAG_REQ: usize = 24;
const UNIX_DIAG_MSG: usize = 16;

/// The inode of the peer of the UNIX socket whose inode is `ino`, asked of the kernel's socket diagnostics
/// (sock_diag(7): one `unix_diag_req` for that inode with `UDIAG_SHOW_PEER`, the way `ss -x` learns it).
/// `Ok(None)`: a UNIX socket without a peer (not connected, or its peer closed); `Err(ENOENT)`: no UNIX socket has
/// that inode (a TCP socket's, or one closed meanwhile). Written here rather than with the `netlink-packet-*`
/// crates: one fixed request and one attribute, built and read as bytes, against four crates for it.
pub(super) fn unix_peer(ino: u32) -> Result<Option<u32>, nix::errno::Errno> {
    use nix::sys::socket::{
        AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
    };
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    let mut req = Vec::with_capacity(NLMSGHDR + UNIX_DIAG_REQ);
    // struct nlmsghdr: length, type, flags, sequence, port id.
    req.extend_from_slice(&((NLMSGHDR + UNIX_DIAG_REQ) as u32).to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    // struct unix_diag_req: family, protocol, pad, states (all), inode, what to show, cookie (none).
    req.extend_from_slice(&[libc::AF_UNIX as u8, 0, 0, 0]);
    req.extend_from_slice(&u32::MAX.to_ne_bytes());
    req.extend_from_slice(&ino.to_ne_bytes());
    req.extend_from_slice(&UDIAG_SHOW_PEER.to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes());
    sendto(sock.as_raw_fd(), &req, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;
    let mut buf = [0u8; 1024];
    let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    parse_unix_peer(&buf[..n])
}

/// The answer to [`unix_peer`]'s request: an `NLMSG_ERROR` message's errno, or the `UNIX_DIAG_PEER` attribute of a
/// `unix_diag_msg` (none: no peer). Pure, on the bytes the kernel sent.
pub(super) fn parse_unix_peer(msg: &[u8]) -> Result<Option<u32>, nix::errno::Errno> {
    use nix::errno::Errno;
    let u16_at = |at: usize| msg.get(at..at + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let u32_at = |at: usize| {
        msg.get(at..at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let len = (u32_at(0).ok_or(Errno::EBADMSG)? as usize).min(msg.len());
    match u16_at(4).ok_or(Errno::EBADMSG)? {
        t if t == libc::NLMSG_ERROR as u16 => {
            // struct nlmsgerr: a negative errno (0 is an acknowledgement, which this request does not ask for).
            let error = u32_at(NLMSGHDR).ok_or(Errno::EBADMSG)? as i32;
            Err(Errno::from_raw(-error))
        }
        SOCK_DIAG_BY_FAMILY => {
            // Attributes (struct rtattr: length, type, payload, padded to 4 bytes) follow the unix_diag_msg.
            let mut at = NLMSGHDR + UNIX_DIAG_MSG;
            while at + 4 <= len {
                let attr_len = u16_at(at).ok_or(Errno::EBADMSG)? as usize;
                if attr_len < 4 {
                    break;
                }
                if u16_at(at + 2) == Some(UNIX_DIAG_PEER) && attr_len >= 8 {
                    return Ok(u32_at(at + 4));
                }
                at += (attr_len + 3) & !3;
            }
            Ok(None)
        }
        _ => Err(Errno::EBADMSG),
    }
}
