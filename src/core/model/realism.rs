//! The realism table (DESIGN §6): which errnos a class of call shapes can return, and which it never can, per the
//! man pages and, where they are silent, the kernel.
//!
//! A class is a syscall and the shape predicates of a rule (`read` + `fd=pipe:nonblock=no`). It *can* return an
//! errno when every call it admits can: `read:EAGAIN:fd=socket` can (a receive timeout makes even a blocking
//! socket say EAGAIN), `read:EAGAIN:fd=pipe` cannot (a blocking pipe waits instead), `read:EAGAIN` without a
//! predicate cannot (it admits regular files). The table covers the errnos of the plausible catalogue
//! (`super::catalogue`) and of the futex mistakes DESIGN §6 names; for anything else it says [`Realism::Unjudged`]
//! rather than guess. Pure data and one function: no I/O.

use super::{
    fault::{Action, FaultSpec, SHORT_SYSCALLS},
    names::{Errno, Syscall},
    shape::{FD_KINDS, Key, Predicate, SOCKET_KINDS, fd_kinds, futex_op_base},
};

/// What the table says of a class and an errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Realism {
    /// Every call of the class can return the errno.
    Possible,
    /// Some call of the class never can; the sentence says which and why, with its source.
    Impossible(String),
    /// The table has no rule for this syscall and errno.
    Unjudged,
}

/// What the table refuses of a rule: one sentence per syscall and errno (or partial transfer) of `fault` that some
/// call it matches can never return, saying which call and why. Empty when every one is possible or unjudged, and for
/// a latency fault (`delay=` alone), which fails nothing.
pub fn refusals(fault: &FaultSpec) -> Vec<String> {
    let actions: Vec<Action> = match fault.short {
        Some(short) => vec![Action::Short(short)],
        None => fault
            .errnos
            .iter()
            .map(|(errno, _)| Action::Errno(*errno))
            .collect(),
    };
    let mut out = Vec::new();
    for &syscall in &fault.syscalls {
        for &action in &actions {
            if let Realism::Impossible(reason) = judge_action(syscall, &fault.shape, action) {
                out.push(reason);
            }
        }
    }
    out
}

/// Reads a class: `read` sequentially (a pipe or a socket can be read this way), at an offset, and so on.
const READ_SEQ: &[&str] = &["read", "readv", "recvfrom", "recvmsg", "preadv2"];
const WRITE_SEQ: &[&str] = &["write", "writev", "sendto", "sendmsg", "sendfile", "pwritev2"];
/// Calls at an offset: on a pipe or a socket they fail with ESPIPE, so no stream error reaches them.
/// (`preadv2`/`pwritev2` with offset -1 use the current position, so they are in the sequential lists too.)
const READ_POS: &[&str] = &["pread64", "preadv", "preadv2"];
const WRITE_POS: &[&str] = &["pwrite64", "pwritev", "pwritev2"];
/// Calls that only work on sockets: their class never admits another kind.
const SOCKET_ONLY: &[&str] = &[
    "recvfrom", "recvmsg", "sendto", "sendmsg", "connect", "accept", "accept4",
];

const STREAM_SOCKETS: &[&str] = &["tcp", "tcp6", "unix-stream", "unix-seqpacket", "socket"];
/// Sockets whose peer can go away: a TCP reset, a UNIX peer closed with data unread.
const PEERED_SOCKETS: &[&str] = &[
    "tcp",
    "tcp6",
    "unix-stream",
    "unix-seqpacket",
    "unix-dgram",
    "socket",
];
const INET_SOCKETS: &[&str] = &["tcp", "tcp6", "udp", "udp6", "socket"];
const TCP: &[&str] = &["tcp", "tcp6", "socket"];
/// Everything that can make a read or write wait: what EINTR (blocking) and EAGAIN (non-blocking) need.
const WAITABLE: &[&str] = &[
    "pipe",
    "tcp",
    "tcp6",
    "udp",
    "udp6",
    "unix-stream",
    "unix-dgram",
    "unix-seqpacket",
    "netlink",
    "socket",
    "eventfd",
    "timerfd",
    "signalfd",
    "inotify",
    "tty",
    "chr",
    "other",
    "anon",
];
const NOT_SOCKETS_WAITABLE: &[&str] = &[
    "pipe", "eventfd", "timerfd", "signalfd", "inotify", "tty", "chr", "other", "anon",
];

/// What a call of the class needs for the errno to be possible.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// Every call can.
    Any,
    /// No call can; the reason.
    Never(&'static str),
    /// The descriptor is one of `any` (with or without `O_NONBLOCK`), or one of `nonblocking` with `O_NONBLOCK`,
    /// or one of `blocking` without it.
    Fd {
        any: &'static [&'static str],
        nonblocking: &'static [&'static str],
        blocking: &'static [&'static str],
    },
    /// futex: the operation (without `_PRIVATE`/`_CLOCK_REALTIME`) is one of `ops`, given a timeout if `timeout`.
    Futex {
        ops: &'static [&'static str],
        timeout: bool,
    },
    /// wait4/waitid without `WNOHANG`.
    Waits,
    /// epoll_wait, epoll_pwait, poll with a timeout other than 0 (`sleeps=yes`).
    Sleeps,
    /// epoll_ctl: the operation (`ctl=`) is one of these, on a descriptor that is (`registered=yes`) or is not
    /// (`registered=no`) registered in the instance already, or either (`None`).
    Ctl(&'static [&'static str], Option<&'static str>),
    /// getcwd: the working directory has been removed (`cwd=deleted`).
    CwdDeleted,
    /// An open that asks for a directory (`directory=yes`), or whose name does not exist (`exists=no`: a
    /// directory of its path is something else).
    DirectoryOrAbsent,
    /// flock: the operation (`lock=`) is one of these.
    Lock(&'static [&'static str]),
    /// fcntl: the command (`cmd=`) is one of these.
    Cmd(&'static [&'static str]),
}

const fn kinds(any: &'static [&'static str]) -> Need {
    Need::Fd {
        any,
        nonblocking: &[],
        blocking: &[],
    }
}

const fn blocking(blocking: &'static [&'static str]) -> Need {
    Need::Fd {
        any: &[],
        nonblocking: &[],
        blocking,
    }
}

/// One fact: these syscalls can return these errnos (every errno when the list is empty) under `need`; `why`
/// finishes the refusal's sentence and names the source.
struct Rule {
    errnos: &'static [i32],
    syscalls: &'static [&'static [&'static str]],
    need: Need,
    why: &'static str,
}

use libc::{
    EAGAIN, ECONNREFUSED, ECONNRESET, EDQUOT, EEXIST, EHOSTUNREACH, EINTR, EIO, EMFILE, ENETUNREACH, ENFILE,
    ENOENT, ENOMEM, ENOSPC, ENOTDIR, EPERM, EPIPE, ETIMEDOUT,
};

/// The errnos for which the rules list every call of [`CLOSED_CALLS`] that can return them: a call of that list
/// with no rule for the errno never returns it.
const CLOSED_ERRNOS: &[i32] = &[
    EIO,
    ENOSPC,
    EDQUOT,
    ECONNRESET,
    EPIPE,
    ECONNREFUSED,
    ENETUNREACH,
    EHOSTUNREACH,
    ETIMEDOUT,
    EAGAIN,
    EINTR,
];
const CLOSED_CALLS: &[&[&str]] = &[
    READ_SEQ,
    WRITE_SEQ,
    READ_POS,
    WRITE_POS,
    &[
        "fsync",
        "fdatasync",
        "fallocate",
        "ftruncate",
        "close",
        "connect",
        "accept",
        "accept4",
        "lseek",
        "futex",
        "wait4",
        "waitid",
    ],
];

/// Calls that never sleep interruptibly (at most killably, and a fatal signal's EINTR never reaches the program).
const NEVER_SLEEP: &[&str] = &[
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getpgrp",
    "getsid",
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "mremap",
    "dup",
    "pipe",
    "pipe2",
    "socket",
    "socketpair",
    "bind",
    "listen",
    "shutdown",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "clock_gettime",
    "gettimeofday",
    "time",
    "sched_yield",
    "rt_sigprocmask",
    "rt_sigaction",
    "sigaltstack",
    "getrlimit",
    "prlimit64",
    "uname",
    "umask",
    "getcwd",
    "getrusage",
    "set_tid_address",
    "set_robust_list",
    "arch_prctl",
    "eventfd2",
    "epoll_create1",
    "epoll_ctl",
    "timerfd_create",
    "timerfd_settime",
    "lseek",
    "kill",
    "tgkill",
];

const RULES: &[Rule] = &[
    // Disk.
    Rule {
        errnos: &[EIO],
        syscalls: &[READ_SEQ, READ_POS, WRITE_SEQ, WRITE_POS],
        need: kinds(&["file", "tty", "chr", "blk", "other", "anon"]),
        why: "only a file, a terminal or a device returns EIO to a read or a write (read(2), write(2) ERRORS)",
    },
    Rule {
        errnos: &[EIO],
        syscalls: &[&["fsync", "fdatasync"]],
        need: kinds(&["file", "dir", "blk", "other"]),
        why: "only write-back of a file, a directory or a block device fails with EIO (fsync(2) ERRORS); other \
              descriptors fail with EINVAL",
    },
    Rule {
        errnos: &[EIO, ENOSPC, EDQUOT, EINTR],
        syscalls: &[&["fallocate", "ftruncate"]],
        need: kinds(&["file"]),
        why: "they work on regular files only (fallocate(2), truncate(2) ERRORS)",
    },
    Rule {
        errnos: &[EIO, ENOSPC, EDQUOT, EINTR],
        syscalls: &[&["close"]],
        need: kinds(&["file", "chr", "other"]),
        why: "close reports only its flush's error, and only files and devices flush (close(2) ERRORS; \
              fs/open.c filp_flush)",
    },
    Rule {
        errnos: &[ENOSPC],
        syscalls: &[WRITE_SEQ, WRITE_POS],
        need: kinds(&["file", "blk"]),
        why: "only a file or a block device runs out of room (write(2) ERRORS)",
    },
    Rule {
        errnos: &[EDQUOT],
        syscalls: &[WRITE_SEQ, WRITE_POS],
        need: kinds(&["file"]),
        why: "only a file's blocks count against a disk quota (write(2) ERRORS)",
    },
    Rule {
        errnos: &[ENOSPC, EDQUOT, EINTR],
        syscalls: &[&["fsync", "fdatasync"]],
        need: kinds(&["file"]),
        why: "only a file's delayed allocation can run out of room while it is synced (fsync(2) ERRORS)",
    },
    // Network.
    Rule {
        errnos: &[ECONNRESET],
        syscalls: &[READ_SEQ, WRITE_SEQ],
        need: kinds(PEERED_SOCKETS),
        why: "only a socket's peer can reset it (send(2), unix(7) ERRORS; net/ipv4/tcp_input.c tcp_reset); files, \
              pipes and UDP sockets never return ECONNRESET",
    },
    Rule {
        errnos: &[EPIPE],
        syscalls: &[WRITE_SEQ],
        need: kinds(&[
            "pipe",
            "tcp",
            "tcp6",
            "unix-stream",
            "unix-seqpacket",
            "unix-dgram",
            "socket",
        ]),
        why: "only a pipe, a FIFO or a connection-mode socket whose reading end is closed returns EPIPE (write(2), \
              send(2) ERRORS)",
    },
    Rule {
        errnos: &[EPIPE],
        syscalls: &[READ_SEQ],
        need: kinds(&["tcp", "tcp6", "socket"]),
        why: "only a read of a shut-down TCP socket returns EPIPE (tcp(7) ERRORS)",
    },
    Rule {
        errnos: &[ECONNREFUSED],
        syscalls: &[&["connect"]],
        need: kinds(&[
            "tcp",
            "tcp6",
            "unix-stream",
            "unix-seqpacket",
            "unix-dgram",
            "socket",
        ]),
        why: "only a connection attempt that finds no listener is refused: a UDP connect sends nothing \
              (connect(2), unix(7) ERRORS)",
    },
    Rule {
        errnos: &[ECONNREFUSED],
        syscalls: &[READ_SEQ, WRITE_SEQ],
        need: kinds(&["tcp", "tcp6", "udp", "udp6", "unix-dgram", "socket"]),
        why: "only a socket told by ICMP or its peer that nobody listens returns ECONNREFUSED (recv(2), udp(7))",
    },
    Rule {
        errnos: &[ENETUNREACH, EHOSTUNREACH],
        syscalls: &[&["connect"], READ_SEQ, WRITE_SEQ],
        need: kinds(INET_SOCKETS),
        why: "only an internet socket needs a route (connect(2), ip(7))",
    },
    Rule {
        errnos: &[ETIMEDOUT],
        syscalls: &[&["connect"], READ_SEQ, WRITE_SEQ],
        need: kinds(TCP),
        why: "only TCP retransmits until it gives up (connect(2), tcp(7) ERRORS); a UNIX connect that times out \
              says EAGAIN",
    },
    Rule {
        errnos: &[ETIMEDOUT],
        syscalls: &[&["futex"]],
        need: Need::Futex {
            ops: &[
                "FUTEX_WAIT",
                "FUTEX_WAIT_BITSET",
                "FUTEX_WAIT_REQUEUE_PI",
                "FUTEX_LOCK_PI",
                "FUTEX_LOCK_PI2",
            ],
            timeout: true,
        },
        why: "only an operation given a timeout times out (futex(2) ERRORS)",
    },
    // Would block.
    Rule {
        errnos: &[EAGAIN],
        syscalls: &[READ_SEQ, WRITE_SEQ],
        need: Need::Fd {
            any: SOCKET_KINDS,
            nonblocking: NOT_SOCKETS_WAITABLE,
            blocking: &[],
        },
        why: "EAGAIN needs a socket (a receive or send timeout) or a non-blocking descriptor that can wait; a \
              regular file never blocks (read(2), write(2) ERRORS)",
    },
    Rule {
        errnos: &[EAGAIN],
        syscalls: &[&["preadv2", "pwritev2"]],
        need: kinds(&["file"]),
        why: "RWF_NOWAIT makes a file read or write say EAGAIN (preadv2(2))",
    },
    Rule {
        errnos: &[EAGAIN],
        syscalls: &[READ_POS, WRITE_POS],
        need: Need::Fd {
            any: &[],
            nonblocking: &["tty", "chr", "other", "anon"],
            blocking: &[],
        },
        why: "a read or write at an offset would block only on a non-blocking device (pread(2) ERRORS)",
    },
    Rule {
        errnos: &[EAGAIN],
        syscalls: &[&["accept", "accept4"]],
        need: kinds(STREAM_SOCKETS),
        why: "only a listening stream socket accepts, and it says EAGAIN when non-blocking or past SO_RCVTIMEO \
              (accept(2) ERRORS)",
    },
    Rule {
        // Non-blocking UNIX sockets, or a blocking one past SO_SNDTIMEO with the listener's queue full
        // (net/unix/af_unix.c unix_stream_connect); internet sockets: no ephemeral port or routing entry.
        errnos: &[EAGAIN],
        syscalls: &[&["connect"]],
        need: Need::Any,
        why: "",
    },
    Rule {
        errnos: &[EAGAIN],
        syscalls: &[&["waitid"]],
        need: Need::Any,
        why: "",
    },
    Rule {
        errnos: &[EAGAIN],
        syscalls: &[&["futex"]],
        need: Need::Futex {
            ops: &[
                "FUTEX_WAIT",
                "FUTEX_WAIT_BITSET",
                "FUTEX_WAIT_REQUEUE_PI",
                "FUTEX_CMP_REQUEUE",
                "FUTEX_CMP_REQUEUE_PI",
                "FUTEX_LOCK_PI",
                "FUTEX_LOCK_PI2",
                "FUTEX_TRYLOCK_PI",
            ],
            timeout: false,
        },
        why: "only a wait whose futex word changed, a compare-requeue or a PI lock whose owner is exiting says \
              EAGAIN; a wake never does (futex(2) ERRORS)",
    },
    Rule {
        errnos: &[EAGAIN, ENOMEM],
        syscalls: &[&["clone", "clone3", "fork", "vfork"]],
        need: Need::Any,
        why: "",
    },
    // Interrupted.
    Rule {
        errnos: &[EINTR],
        syscalls: &[READ_SEQ, WRITE_SEQ],
        need: blocking(WAITABLE),
        why: "EINTR needs a call that sleeps: a blocking pipe, socket, terminal or device; a non-blocking \
              descriptor never sleeps, and a regular file's I/O sleeps only killably (read(2), write(2), \
              signal(7))",
    },
    Rule {
        errnos: &[EINTR],
        syscalls: &[READ_POS, WRITE_POS],
        need: blocking(&["tty", "chr", "other", "anon"]),
        why: "a read or write at an offset sleeps interruptibly only on a blocking device (signal(7))",
    },
    Rule {
        errnos: &[EINTR],
        syscalls: &[&["connect"]],
        need: blocking(STREAM_SOCKETS),
        why: "only a blocking connection-mode connect waits (connect(2) ERRORS); a UDP connect never sleeps",
    },
    Rule {
        errnos: &[EINTR],
        syscalls: &[&["accept", "accept4"]],
        need: blocking(STREAM_SOCKETS),
        why: "only a blocking accept waits for a connection (accept(2) ERRORS)",
    },
    Rule {
        errnos: &[EINTR],
        syscalls: &[&["futex"]],
        need: Need::Futex {
            ops: &["FUTEX_WAIT", "FUTEX_WAIT_BITSET"],
            timeout: false,
        },
        why: "only FUTEX_WAIT and FUTEX_WAIT_BITSET are interrupted by a signal (futex(2) ERRORS); the PI \
              operations restart",
    },
    Rule {
        errnos: &[EINTR],
        syscalls: &[&["wait4", "waitid"]],
        need: Need::Waits,
        why: "a wait with WNOHANG never sleeps (wait(2) ERRORS)",
    },
    Rule {
        errnos: &[EINTR],
        syscalls: &[&["epoll_wait", "epoll_pwait", "poll"]],
        need: Need::Sleeps,
        why: "a timeout of 0 returns at once, before any signal is looked at (fs/eventpoll.c ep_poll)",
    },
    Rule {
        errnos: &[EINTR],
        syscalls: &[&[
            "nanosleep",
            "clock_nanosleep",
            "epoll_pwait2",
            "ppoll",
            "select",
            "pselect6",
            "pause",
            "rt_sigsuspend",
            "rt_sigtimedwait",
        ]],
        need: Need::Any,
        why: "",
    },
    Rule {
        errnos: &[EINTR],
        syscalls: &[NEVER_SLEEP],
        need: Need::Never("it never sleeps interruptibly, so a signal cannot interrupt it (signal(7))"),
        why: "",
    },
    // An open's ENOTDIR: O_DIRECTORY on something else, or a path through something else (fs/namei.c).
    Rule {
        errnos: &[ENOTDIR],
        syscalls: &[&["open", "openat", "openat2", "creat"]],
        need: Need::DirectoryOrAbsent,
        why: "an open says ENOTDIR only when it asks for a directory (O_DIRECTORY) and finds something else, or \
              when a directory of its path is something else, and then its name does not exist (open(2) ERRORS)",
    },
    // getcwd: the kernel's ENOENT is an unlinked working directory (fs/d_path.c).
    Rule {
        errnos: &[ENOENT],
        syscalls: &[&["getcwd"]],
        need: Need::CwdDeleted,
        why: "getcwd says ENOENT only when its working directory has been removed (getcwd(3) ERRORS)",
    },
    // epoll_ctl: which operation on which target (fs/eventpoll.c do_epoll_ctl).
    Rule {
        errnos: &[ENOENT],
        syscalls: &[&["epoll_ctl"]],
        need: Need::Ctl(&["mod", "del"], Some("no")),
        why: "only a MOD or a DEL of a descriptor that is not registered in the epoll instance says ENOENT; an \
              ADD never does (epoll_ctl(2) ERRORS)",
    },
    Rule {
        errnos: &[EEXIST],
        syscalls: &[&["epoll_ctl"]],
        need: Need::Ctl(&["add"], Some("yes")),
        why: "only an ADD of a descriptor that is already registered says EEXIST (epoll_ctl(2) ERRORS)",
    },
    Rule {
        errnos: &[ENOSPC],
        syscalls: &[&["inotify_add_watch"]],
        need: Need::Any,
        why: "",
    },
    Rule {
        errnos: &[ENOSPC],
        syscalls: &[&["epoll_ctl"]],
        need: Need::Ctl(&["add"], Some("no")),
        why: "only an ADD of a descriptor not yet registered adds a new watch against fs.epoll.max_user_watches (epoll_ctl(2) ERRORS)",
    },
    Rule {
        errnos: &[EAGAIN],
        syscalls: &[&["flock"]],
        need: Need::Lock(&["sh-nb", "ex-nb"]),
        why: "only a request with LOCK_NB that conflicts with another's lock says EWOULDBLOCK (EAGAIN); one without \
              it waits instead, and an unlock never conflicts (flock(2) ERRORS)",
    },
    Rule {
        errnos: &[EINTR],
        syscalls: &[&["flock"]],
        need: Need::Lock(&["sh", "ex"]),
        why: "only a request that waits for a conflicting lock (without LOCK_NB) sleeps, so only it is interrupted; \
              an unlock and a LOCK_NB request never wait (flock(2) ERRORS)",
    },
    Rule {
        errnos: &[EAGAIN],
        syscalls: &[&["fcntl"]],
        need: Need::Cmd(&["F_SETLK", "F_OFD_SETLK", "F_SETLEASE"]),
        why: "only a lock request that does not wait (F_SETLK, F_OFD_SETLK) says EAGAIN, when another's lock \
              conflicts, and a lease on a file others have open; F_GETFL, F_SETFD and the rest never conflict \
              (fcntl(2) ERRORS)",
    },
    Rule {
        errnos: &[EINTR],
        syscalls: &[&["fcntl"]],
        need: Need::Cmd(&["F_SETLKW", "F_OFD_SETLKW"]),
        why: "only a lock request that waits (F_SETLKW, F_OFD_SETLKW) sleeps, so only it is interrupted \
              (fcntl(2) ERRORS)",
    },
    Rule {
        errnos: &[EPERM],
        syscalls: &[&["epoll_ctl"]],
        // Pipes, sockets, terminals, eventfd, timerfd, signalfd, epoll, pidfd and inotify descriptors all poll.
        need: kinds(&["file", "dir", "chr", "blk", "anon", "other"]),
        why: "only a target that does not support poll (a regular file, a directory, some devices) says EPERM \
              (epoll_ctl(2) ERRORS; fs/eventpoll.c do_epoll_ctl, file_can_poll)",
    },
    // Resources.
    Rule {
        errnos: &[EMFILE, ENFILE],
        syscalls: &[&[
            "open",
            "openat",
            "openat2",
            "creat",
            "socket",
            "socketpair",
            "accept",
            "accept4",
            "pipe",
            "pipe2",
            "eventfd2",
            "epoll_create1",
            "timerfd_create",
            "signalfd4",
            "inotify_init",
            "inotify_init1",
            "memfd_create",
            "pidfd_open",
        ]],
        need: Need::Any,
        why: "",
    },
    Rule {
        errnos: &[EMFILE],
        syscalls: &[&["dup"]],
        need: Need::Any,
        why: "",
    },
    Rule {
        errnos: &[EMFILE],
        syscalls: &[&["dup2", "dup3"]],
        need: Need::Never(
            "it names the new descriptor: one beyond RLIMIT_NOFILE is EBADF, and the kernel turns the table's \
             EMFILE into EBADF (dup(2) ERRORS; fs/file.c ksys_dup3)",
        ),
        why: "",
    },
    Rule {
        errnos: &[ENFILE],
        syscalls: &[&["dup", "dup2", "dup3"]],
        need: Need::Never(
            "a duplicate shares the open file description, so no new file counts against the system-wide \
             limit (dup(2) ERRORS list no ENFILE)",
        ),
        why: "",
    },
    Rule {
        errnos: &[ENOMEM],
        syscalls: &[&["mmap", "mremap", "munmap", "mprotect", "madvise"]],
        need: Need::Any,
        why: "",
    },
    Rule {
        errnos: &[],
        syscalls: &[&["brk"]],
        need: Need::Never(
            "the brk system call returns no errno: on failure it returns the current break, and glibc's wrapper \
             makes ENOMEM of that (brk(2), C library/kernel differences)",
        ),
        why: "",
    },
    Rule {
        errnos: &[],
        syscalls: &[&["rt_sigreturn"]],
        need: Need::Never(
            "rt_sigreturn restores the interrupted context, return register included: it never fails, and what \
             it seems to return is the interrupted call's result (sigreturn(2))",
        ),
        why: "",
    },
];

/// The descriptor kinds on which a read or write routinely transfers fewer bytes than asked, without an error:
/// a pipe or a stream socket returns what it holds or has room for (read(2), write(2) RETURN VALUE: "It is not an
/// error if this number is smaller than the number of bytes requested"; pipe(7); socket(7)). A datagram socket
/// transfers whole datagrams (a smaller count truncates one, losing data), and a regular file is short only at its
/// end.
pub const SHORT_KINDS: &[&str] = &["pipe", "tcp", "tcp6", "unix-stream"];

/// Writes that raise SIGPIPE with their EPIPE whatever their arguments: a pipe's `pipe_write` and a splice into a
/// pipe (`fs/pipe.c`, `fs/splice.c`: `send_sig(SIGPIPE, current, 0)` beside `-EPIPE`), a stream socket's send
/// without flags (`net/core/stream.c` `sk_stream_error`, `net/unix/af_unix.c` `unix_stream_sendmsg`).
const SIGPIPE_WRITES: &[&str] = &[
    "write", "writev", "pwritev2", "sendfile", "splice", "vmsplice", "tee",
];

/// The signal the kernel raises in the calling thread together with `errno` from this call, if any: SIGPIPE with
/// the EPIPE of a write to a pipe or a stream socket whose reader is gone (pipe(7), write(2) and send(2) ERRORS:
/// "the calling process will also receive a SIGPIPE signal"), unless the call is a send with `MSG_NOSIGNAL` in its
/// flags. An injection that fails such a call with EPIPE raises it too, so that a program that does not ignore
/// SIGPIPE dies of it as it would for real (`yes | head`), instead of meeting an error it never sees. Pure.
pub fn raised_signal(syscall: Syscall, errno: Errno, args: &[u64; 6]) -> Option<i32> {
    if errno.code() != EPIPE {
        return None;
    }
    let nosignal = match epipe_signal(syscall)? {
        Some(flags) => args[flags] & libc::MSG_NOSIGNAL as u64 != 0,
        None => false,
    };
    (!nosignal).then_some(libc::SIGPIPE)
}

/// When an `EPIPE` of `syscall` raises SIGPIPE ([`raised_signal`]): `None` never, `Some(None)` whatever its
/// arguments, `Some(Some(i))` unless its argument `i` — the flags of sendto(fd, buf, len, flags, …),
/// sendmsg(fd, msg, flags), sendmmsg(fd, vec, vlen, flags) — has `MSG_NOSIGNAL`. The eBPF injector's tables carry
/// this, since its programs see the registers but not the syscall's name. Pure.
pub fn epipe_signal(syscall: Syscall) -> Option<Option<usize>> {
    match syscall.name() {
        "sendto" | "sendmmsg" => Some(Some(3)),
        "sendmsg" => Some(Some(2)),
        name if SIGPIPE_WRITES.contains(&name) => Some(None),
        _ => None,
    }
}

/// Does every error `fault` injects say that the call's peer failed — a connection reset (ECONNRESET), or a stream
/// socket whose peer is gone (EPIPE on a class without pipes) — on reads and writes? In service mode the peer of
/// the service's connections is the workload: such a fault simulates the workload's own connections dying, so the
/// rounds that fail while it is injected say nothing about the service (see `experiment::verdict`). Pure.
pub fn peer_failure(fault: &FaultSpec) -> bool {
    if fault.short.is_some() || fault.errnos.is_empty() {
        return false;
    }
    fault.syscalls.iter().all(|sc| {
        let name = sc.name();
        (READ_SEQ.contains(&name) || WRITE_SEQ.contains(&name))
            && fault.errnos.iter().all(|&(errno, _)| match errno.code() {
                ECONNRESET => true,
                EPIPE => {
                    WRITE_SEQ.contains(&name)
                        && !Call::all(name, &fault.shape)
                            .iter()
                            .any(|c| c.kind == Some("pipe"))
                }
                _ => false,
            })
    })
}

/// [`judge`] for an errno, [`judge_short`] for a partial transfer.
pub fn judge_action(syscall: Syscall, shape: &[Predicate], action: Action) -> Realism {
    match action {
        Action::Errno(errno) => judge(syscall, shape, errno),
        Action::Short(_) => judge_short(syscall, shape),
    }
}

/// Can every call of `syscall` in the class `shape` transfer fewer bytes than asked, as a matter of course? Only a
/// read or write whose count a tracer can lower ([`SHORT_SYSCALLS`]), on a descriptor of [`SHORT_KINDS`].
pub fn judge_short(syscall: Syscall, shape: &[Predicate]) -> Realism {
    let name = syscall.name();
    if !SHORT_SYSCALLS.contains(&name) {
        return Realism::Impossible(format!(
            "{name} is not a read or write with a count register; partial transfers apply to {}",
            SHORT_SYSCALLS.join(", ")
        ));
    }
    let calls = Call::all(name, shape);
    match calls.iter().find_map(|c| match c.kind {
        Some(kind) if SHORT_KINDS.contains(&kind) => None,
        other => Some(other.unwrap_or("any descriptor")),
    }) {
        None if !calls.is_empty() => Realism::Possible,
        found => Realism::Impossible(format!(
            "{name} on {} is not routinely short: only pipes and stream sockets ({}) transfer fewer bytes than \
             asked as a matter of course (read(2), write(2), pipe(7), socket(7))",
            found.unwrap_or("any descriptor"),
            SHORT_KINDS.join(", ")
        )),
    }
}

/// What the table says of `syscall` with these predicates returning `errno`.
pub fn judge(syscall: Syscall, shape: &[Predicate], errno: Errno) -> Realism {
    let name = syscall.name();
    let rules: Vec<&Rule> = RULES
        .iter()
        .filter(|rule| rule.errnos.is_empty() || rule.errnos.contains(&errno.code()))
        .filter(|rule| rule.syscalls.iter().any(|list| list.contains(&name)))
        .collect();
    if rules.is_empty() {
        if CLOSED_ERRNOS.contains(&errno.code()) && CLOSED_CALLS.iter().any(|list| list.contains(&name)) {
            return Realism::Impossible(format!(
                "{name} never returns {errno}: no man page or kernel path gives it that error"
            ));
        }
        return Realism::Unjudged;
    }
    // Every call the class admits must be allowed by some rule (EAGAIN of a socket and of a preadv2 with
    // RWF_NOWAIT are separate facts); the first call none allows is named, with the first rule's reason.
    for call in Call::all(name, shape) {
        if rules.iter().any(|rule| allows(rule, &call)) {
            continue;
        }
        let rule = rules[0];
        let why = match rule.need {
            Need::Never(why) => format!(" ({why})"),
            _ => format!(": {}", rule.why),
        };
        // Name O_NONBLOCK only where some rule cares about it for that kind.
        let nonblock_matters = call.kind.is_some_and(|kind| {
            rules.iter().any(|r| {
                matches!(r.need, Need::Fd { nonblocking, blocking, .. }
                    if nonblocking.contains(&kind) || blocking.contains(&kind))
            })
        });
        // Name the descriptor's kind of an epoll_ctl only where some rule cares about it (EPERM, not ENOENT).
        let kind_matters = call.ctl.is_none() || rules.iter().any(|r| matches!(r.need, Need::Fd { .. }));
        // Name the registration only where it decides: the same call with it unknown would be allowed.
        let unregistered = Call {
            registered: None,
            ..call
        };
        let registered_matters = rules.iter().any(|rule| allows(rule, &unregistered));
        let call = Call {
            nonblock: call.nonblock.filter(|_| nonblock_matters),
            kind: call.kind.filter(|_| kind_matters),
            registered: call.registered.filter(|_| registered_matters),
            ..call
        };
        return Realism::Impossible(format!("{name}{} never returns {errno}{why}", call.describe()));
    }
    Realism::Possible
}

/// One kind of call a class admits: the values of the components the rules look at (`None`: the syscall has no
/// such component).
#[derive(Debug, Clone, Copy)]
struct Call<'a> {
    kind: Option<&'static str>,
    nonblock: Option<&'a str>,
    op: Option<&'a str>,
    timeout: Option<&'a str>,
    nohang: Option<&'a str>,
    ctl: Option<&'a str>,
    registered: Option<&'a str>,
    sleeps: Option<&'a str>,
    cwd: Option<&'a str>,
    lock: Option<&'a str>,
    cmd: Option<&'a str>,
    directory: Option<&'a str>,
    exists: Option<&'a str>,
}

/// The futex operations whose fourth argument is a timeout.
const TIMED_OPS: &[&str] = &[
    "FUTEX_WAIT",
    "FUTEX_LOCK_PI",
    "FUTEX_WAIT_BITSET",
    "FUTEX_WAIT_REQUEUE_PI",
    "FUTEX_LOCK_PI2",
];

impl<'a> Call<'a> {
    /// Every call of `name` the predicates admit, as far as the rules can tell them apart.
    fn all(name: &str, shape: &'a [Predicate]) -> Vec<Call<'a>> {
        let keys = super::shape::keys_of(Syscall::parse(name).expect("a syscall's own name parses"));
        let values = |key: Key| -> Option<Vec<&'a str>> {
            shape
                .iter()
                .find(|p| p.key == key)
                .map(|p| p.values.iter().map(String::as_str).collect())
        };
        let yes_no = |key: Key| values(key).unwrap_or_else(|| vec!["yes", "no"]);
        let none = Call {
            kind: None,
            nonblock: None,
            op: None,
            timeout: None,
            nohang: None,
            ctl: None,
            registered: None,
            sleeps: None,
            cwd: None,
            lock: None,
            cmd: None,
            directory: None,
            exists: None,
        };
        let mut calls = Vec::new();
        if keys.contains(&Key::Fd) {
            let mut kinds: Vec<&'static str> = match values(Key::Fd) {
                Some(vs) => vs.iter().flat_map(|v| fd_kinds(v).iter().copied()).collect(),
                None => FD_KINDS.iter().copied().filter(|k| *k != "closed").collect(),
            };
            if SOCKET_ONLY.contains(&name) {
                kinds.retain(|k| SOCKET_KINDS.contains(k));
            }
            let mut seen = Vec::new();
            kinds.retain(|k| {
                let new = !seen.contains(k);
                seen.push(*k);
                new
            });
            for kind in kinds {
                for nb in yes_no(Key::Nonblock) {
                    calls.push(Call {
                        kind: Some(kind),
                        nonblock: Some(nb),
                        ..none
                    });
                }
            }
        } else if keys.contains(&Key::Op) {
            let ops: Vec<&'a str> = values(Key::Op).unwrap_or_else(|| super::shape::FUTEX_OPS.to_vec());
            let timeout_given = values(Key::Timeout).is_some();
            for op in ops {
                if futex_op_base(op).is_some_and(|base| TIMED_OPS.contains(&base)) {
                    for t in yes_no(Key::Timeout) {
                        calls.push(Call {
                            op: Some(op),
                            timeout: Some(t),
                            ..none
                        });
                    }
                } else if !timeout_given {
                    calls.push(Call { op: Some(op), ..none });
                }
            }
        } else if keys.contains(&Key::Nohang) {
            for nohang in yes_no(Key::Nohang) {
                calls.push(Call {
                    nohang: Some(nohang),
                    ..none
                });
            }
        } else {
            calls.push(none);
        }
        // Each of these components multiplies the calls by its values.
        type Set<'a> = fn(Call<'a>, &'a str) -> Call<'a>;
        let ctls = values(Key::Ctl)
            .unwrap_or_else(|| super::shape::EPOLL_CTLS.iter().map(|(_, name)| *name).collect());
        let cwds = values(Key::Cwd).unwrap_or_else(|| vec!["live", "deleted"]);
        let locks = values(Key::Lock).unwrap_or_else(|| {
            let mut names: Vec<&str> = super::shape::FLOCK_OPS.iter().map(|(_, name)| *name).collect();
            names.dedup();
            names
        });
        let cmds = values(Key::Cmd)
            .unwrap_or_else(|| super::shape::FCNTL_CMDS.iter().map(|(_, name)| *name).collect());
        let crossed: [(Key, Vec<&'a str>, Set<'a>); 8] = [
            (Key::Sleeps, yes_no(Key::Sleeps), |c, v| Call {
                sleeps: Some(v),
                ..c
            }),
            (Key::Ctl, ctls, |c, v| Call { ctl: Some(v), ..c }),
            (Key::Registered, yes_no(Key::Registered), |c, v| Call {
                registered: Some(v),
                ..c
            }),
            (Key::Cwd, cwds, |c, v| Call { cwd: Some(v), ..c }),
            (Key::Lock, locks, |c, v| Call { lock: Some(v), ..c }),
            (Key::Cmd, cmds, |c, v| Call { cmd: Some(v), ..c }),
            (Key::Directory, yes_no(Key::Directory), |c, v| Call {
                directory: Some(v),
                ..c
            }),
            (Key::Exists, yes_no(Key::Exists), |c, v| Call {
                exists: Some(v),
                ..c
            }),
        ];
        for (key, vs, set) in crossed {
            if keys.contains(&key) {
                calls = calls
                    .into_iter()
                    .flat_map(|call| vs.iter().map(move |v| set(call, v)))
                    .collect();
            }
        }
        calls
    }

    /// ` on fd=pipe:nonblock=no`, ` FUTEX_WAKE_PRIVATE`, ` with WNOHANG`, ` ctl=add`: put after the syscall's
    /// name.
    fn describe(&self) -> String {
        if let (Some(directory), Some(exists)) = (self.directory, self.exists) {
            return format!(" directory={directory}:exists={exists}");
        }
        if let Some(cwd) = self.cwd {
            return format!(" cwd={cwd}");
        }
        if let Some(ctl) = self.ctl {
            let rest = Call {
                ctl: None,
                registered: None,
                ..*self
            }
            .describe();
            return match self.registered {
                Some(registered) => format!(" ctl={ctl}:registered={registered}{rest}"),
                None => format!(" ctl={ctl}{rest}"),
            };
        }
        if let Some(lock) = self.lock {
            // The descriptor's kind does not matter to a lock's errors: the operation alone is named.
            return format!(" lock={lock}");
        }
        if let Some(cmd) = self.cmd {
            return format!(" {cmd}");
        }
        if self.sleeps == Some("no") {
            let rest = Call {
                sleeps: None,
                ..*self
            }
            .describe();
            return format!(" with a timeout of 0{rest}");
        }
        match *self {
            Call {
                kind: Some(kind),
                nonblock,
                ..
            } => match nonblock {
                Some(nb) => format!(" on fd={kind}:nonblock={nb}"),
                None => format!(" on fd={kind}"),
            },
            Call {
                op: Some(op),
                timeout,
                ..
            } => match timeout {
                Some("no") => format!(" {op} without a timeout"),
                _ => format!(" {op}"),
            },
            Call {
                nohang: Some("yes"), ..
            } => " with WNOHANG".into(),
            _ => String::new(),
        }
    }
}

/// Does the rule allow this call?
fn allows(rule: &Rule, call: &Call<'_>) -> bool {
    match rule.need {
        Need::Any => true,
        Need::Never(_) => false,
        Need::Fd {
            any,
            nonblocking,
            blocking,
        } => match (call.kind, call.nonblock) {
            (Some(kind), nb) => {
                any.contains(&kind)
                    || nb == Some("yes") && nonblocking.contains(&kind)
                    || nb == Some("no") && blocking.contains(&kind)
            }
            // The rule is about descriptors and the syscall has none: the rule's own list decides.
            (None, _) => true,
        },
        Need::Futex { ops, timeout } => match call.op {
            Some(op) => match futex_op_base(op) {
                Some(base) => ops.contains(&base) && (!timeout || call.timeout == Some("yes")),
                // A number this table does not know: nothing to say against it.
                None => true,
            },
            None => true,
        },
        Need::Waits => call.nohang != Some("yes"),
        Need::Sleeps => call.sleeps != Some("no"),
        // An operation number the kernel does not know fails with EINVAL before any of these.
        Need::CwdDeleted => call.cwd != Some("live"),
        Need::DirectoryOrAbsent => call.directory != Some("no") || call.exists != Some("yes"),
        Need::Ctl(ctls, registered) => {
            call.ctl.is_none_or(|ctl| ctls.contains(&ctl))
                && registered.is_none_or(|need| call.registered.is_none_or(|was| was == need))
        }
        // An operation the kernel refuses (a number) fails with EINVAL before any of these.
        Need::Lock(locks) => call.lock.is_none_or(|lock| locks.contains(&lock)),
        // A number phoebe does not name: nothing to say against it.
        Need::Cmd(cmds) => call
            .cmd
            .is_none_or(|cmd| cmds.contains(&cmd) || cmd.bytes().all(|b| b.is_ascii_digit())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge_text(rule: &str) -> Realism {
        let fault = super::super::FaultSpec::parse(rule).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fault.syscalls.len(), 1, "{rule}");
        assert_eq!(fault.errnos.len(), 1, "{rule}");
        judge(fault.syscalls[0], &fault.shape, fault.errnos[0].0)
    }

    fn refused(rule: &str) -> String {
        match judge_text(rule) {
            Realism::Impossible(reason) => reason,
            other => panic!("{rule}: expected a refusal, got {other:?}"),
        }
    }

    fn possible(rule: &str) {
        assert_eq!(judge_text(rule), Realism::Possible, "{rule}");
    }

    /// The impossible errors DESIGN §6 and the bug reports name: each is refused, with a reason that says why.
    #[test]
    fn the_futex_mistakes_are_refused() {
        assert_eq!(
            refused("futex:EAGAIN:op=FUTEX_WAKE_PRIVATE"),
            "futex FUTEX_WAKE_PRIVATE never returns EAGAIN: only a wait whose futex word changed, a \
             compare-requeue or a PI lock whose owner is exiting says EAGAIN; a wake never does (futex(2) ERRORS)"
        );
        assert!(
            refused("futex:ETIMEDOUT:op=FUTEX_WAIT_PRIVATE:timeout=no")
                .starts_with("futex FUTEX_WAIT_PRIVATE without a timeout never returns ETIMEDOUT")
        );
        // A per-syscall rule admits wakes and waits without a timeout: refused too.
        assert!(refused("futex:EAGAIN").contains("FUTEX_WAKE"));
        assert!(refused("futex:ETIMEDOUT").contains("never returns ETIMEDOUT"));
        assert!(refused("futex:EINTR:op=FUTEX_LOCK_PI").contains("restart"));
        possible("futex:EAGAIN:op=FUTEX_WAIT_PRIVATE:timeout=no");
        possible("futex:EAGAIN:op=FUTEX_WAIT|FUTEX_WAIT_BITSET_PRIVATE");
        possible("futex:ETIMEDOUT:op=FUTEX_WAIT_BITSET_PRIVATE_CLOCK_REALTIME:timeout=yes");
        possible("futex:EINTR:op=FUTEX_WAIT_PRIVATE");
    }

    /// rsync's `O_DIRECTORY` probes fail with ENOTDIR on every file; the plain open of an existing name that
    /// follows never can. A rule for both is refused, naming the plain open of a name that exists; one narrowed
    /// to the probes, or to names that do not exist (a path through a file), is not.
    #[test]
    fn enotdir_of_an_open_needs_o_directory_or_a_path_through_something_else() {
        assert_eq!(
            refused("openat:ENOTDIR:directory=no:exists=yes"),
            "openat directory=no:exists=yes never returns ENOTDIR: an open says ENOTDIR only when it asks for a \
             directory (O_DIRECTORY) and finds something else, or when a directory of its path is something else, \
             and then its name does not exist (open(2) ERRORS)"
        );
        assert!(refused("openat:ENOTDIR").contains("directory=no:exists=yes"));
        assert!(refused("creat:ENOTDIR:exists=yes").contains("directory=no:exists=yes"));
        possible("openat:ENOTDIR:directory=yes");
        possible("openat:ENOTDIR:exists=no");
        possible("openat:ENOTDIR:directory=yes:exists=yes");
        assert_eq!(
            judge_text("openat:ENOENT:directory=no:exists=yes"),
            Realism::Unjudged
        );
    }

    /// EPIPE comes with SIGPIPE where the kernel sends both: pipes' and stream sockets' writes, and sends without
    /// MSG_NOSIGNAL; never with another errno, a read's EPIPE, or a send that asked for no signal.
    #[test]
    fn epipe_of_a_write_raises_sigpipe_unless_the_send_asked_for_none() {
        let sc = |name: &str| Syscall::parse(name).unwrap();
        let e = |name: &str| Errno::parse(name).unwrap();
        let none = [0u64; 6];
        for write in ["write", "writev", "splice", "sendto", "sendmsg", "sendmmsg"] {
            assert_eq!(
                raised_signal(sc(write), e("EPIPE"), &none),
                Some(libc::SIGPIPE),
                "{write}"
            );
        }
        let nosignal = libc::MSG_NOSIGNAL as u64;
        assert_eq!(
            raised_signal(sc("sendto"), e("EPIPE"), &[3, 0, 1, nosignal, 0, 0]),
            None
        );
        assert_eq!(
            raised_signal(sc("sendmsg"), e("EPIPE"), &[3, 0, nosignal, 0, 0, 0]),
            None
        );
        assert_eq!(
            raised_signal(sc("sendmmsg"), e("EPIPE"), &[3, 0, 1, nosignal, 0, 0]),
            None
        );
        // sendmsg's flags are its third argument, not its fourth.
        assert_eq!(
            raised_signal(sc("sendmsg"), e("EPIPE"), &[3, 0, 0, nosignal, 0, 0]),
            Some(libc::SIGPIPE)
        );
        assert_eq!(raised_signal(sc("write"), e("ECONNRESET"), &none), None);
        assert_eq!(raised_signal(sc("read"), e("EPIPE"), &none), None);
        assert_eq!(raised_signal(sc("connect"), e("EPIPE"), &none), None);
    }

    /// A reset, or EPIPE where no pipe can be written, is the peer's failure; a pipe's EPIPE (its reader may be
    /// the service's own child) and every other error are not.
    #[test]
    fn peer_failures_are_resets_and_the_epipes_of_sockets() {
        let peer = |rule: &str| peer_failure(&FaultSpec::parse(rule).unwrap());
        assert!(peer("read:ECONNRESET"));
        assert!(peer("read,write:ECONNRESET:p=0.05:fd=tcp|tcp6"));
        assert!(peer("write:EPIPE:fd=tcp|tcp6|unix-stream"));
        assert!(peer("sendto,sendmsg:EPIPE"));
        assert!(!peer("write:EPIPE"), "a pipe's reader may be the service's own");
        assert!(!peer("write:EPIPE:fd=pipe"));
        assert!(!peer("write:EPIPE,EIO:fd=tcp"));
        assert!(!peer("read:EIO"));
        assert!(!peer("connect:ECONNREFUSED"));
        assert!(!peer("read:short=1:fd=tcp"));
    }

    /// Found on Python's filelock: its suite's natural EWOULDBLOCKs came from `LOCK_EX | LOCK_NB` requests, and a
    /// per-descriptor model failed its unlocks too, which never conflict: the lock stayed held and the threads
    /// waiting for it spun until the timeout (2/2 hung).
    #[test]
    fn regression_flock_ewouldblock_was_injected_into_unlocks() {
        assert_eq!(
            refused("flock:EAGAIN:lock=un"),
            "flock lock=un never returns EAGAIN: only a request with LOCK_NB that conflicts with another's lock \
             says EWOULDBLOCK (EAGAIN); one without it waits instead, and an unlock never conflicts (flock(2) ERRORS)"
        );
        assert!(refused("flock:EAGAIN:lock=ex").contains("lock=ex never"));
        assert!(refused("flock:EAGAIN").contains("never returns EAGAIN"));
        assert!(refused("flock:EAGAIN:fd=file").contains("never returns EAGAIN"));
        possible("flock:EAGAIN:lock=ex-nb|sh-nb");
        possible("flock:EAGAIN:fd=file:lock=ex-nb");
        assert!(refused("flock:EINTR:lock=ex-nb").contains("never wait"));
        assert!(refused("flock:EINTR:lock=un").contains("lock=un never returns EINTR"));
        possible("flock:EINTR:lock=sh|ex");
    }

    /// fcntl's EAGAIN is a lock conflict and its EINTR a waiting lock's; any other command never says either.
    #[test]
    fn fcntl_conflicts_only_on_lock_requests() {
        assert_eq!(
            refused("fcntl:EAGAIN:cmd=F_GETFL"),
            "fcntl F_GETFL never returns EAGAIN: only a lock request that does not wait (F_SETLK, F_OFD_SETLK) says \
             EAGAIN, when another's lock conflicts, and a lease on a file others have open; F_GETFL, F_SETFD and the \
             rest never conflict (fcntl(2) ERRORS)"
        );
        assert!(refused("fcntl:EAGAIN").contains("never returns EAGAIN"));
        possible("fcntl:EAGAIN:cmd=F_SETLK|F_OFD_SETLK");
        assert!(refused("fcntl:EINTR:cmd=F_SETLK").contains("fcntl F_SETLK never returns EINTR"));
        possible("fcntl:EINTR:cmd=F_SETLKW");
    }

    #[test]
    fn eagain_needs_a_socket_or_a_non_blocking_descriptor() {
        assert_eq!(
            refused("read:EAGAIN:fd=file"),
            "read on fd=file never returns EAGAIN: EAGAIN needs a socket (a receive or send timeout) or a \
             non-blocking descriptor that can wait; a regular file never blocks (read(2), write(2) ERRORS)"
        );
        assert!(refused("read:EAGAIN:fd=pipe").ends_with("ERRORS)"));
        assert!(refused("read:EAGAIN:fd=pipe:nonblock=no").contains("on fd=pipe:nonblock=no"));
        assert!(refused("read:EAGAIN").contains("on fd=file"));
        assert!(refused("accept:EAGAIN:fd=udp").contains("on fd=udp"));
        possible("read:EAGAIN:fd=pipe:nonblock=yes");
        possible("read:EAGAIN:fd=socket");
        possible("recvfrom:EAGAIN");
        possible("preadv2:EAGAIN:fd=file");
        possible("accept4:EAGAIN:fd=tcp:nonblock=yes");
        // waitid on a non-blocking pidfd (wait(2) ERRORS); wait4 takes no pidfd.
        possible("waitid:EAGAIN");
        assert!(refused("wait4:EAGAIN").starts_with("wait4 never returns EAGAIN"));
    }

    #[test]
    fn stream_errors_need_a_peer() {
        assert!(refused("read:ECONNRESET:fd=file").contains("only a socket's peer can reset it"));
        assert!(refused("recvfrom:ECONNRESET:fd=udp").contains("on fd=udp"));
        assert!(refused("write:EPIPE:fd=file").contains("on fd=file"));
        assert!(refused("pwrite64:EPIPE").contains("pwrite64 never returns EPIPE"));
        assert!(refused("connect:ECONNREFUSED:fd=udp").contains("a UDP connect sends nothing"));
        assert!(refused("connect:ETIMEDOUT:fd=unix-stream").contains("EAGAIN"));
        assert!(refused("connect:ENETUNREACH:fd=unix").contains("internet socket"));
        possible("read:ECONNRESET:fd=tcp|tcp6|unix-stream");
        possible("write:EPIPE:fd=pipe|tcp|unix-stream");
        // UDP has no connection to break.
        assert!(refused("write:EPIPE:fd=pipe|socket").contains("on fd=udp"));
        possible("connect:ECONNREFUSED:fd=tcp|unix-stream");
        possible("connect:EHOSTUNREACH:fd=inet");
    }

    #[test]
    fn disk_errors_need_a_file() {
        assert!(refused("write:ENOSPC:fd=pipe").contains("only a file or a block device runs out of room"));
        assert!(refused("write:EDQUOT:fd=blk").contains("disk quota"));
        assert!(refused("read:EIO:fd=socket").contains("on fd=tcp"));
        assert!(refused("fsync:EIO:fd=pipe").contains("EINVAL"));
        assert!(refused("lseek:ENOSPC").starts_with("lseek never returns ENOSPC"));
        assert!(refused("ftruncate:ENOSPC:fd=dir").contains("regular files only"));
        possible("write:EIO:fd=file");
        possible("read:EIO:fd=file|tty");
        possible("fdatasync:EIO:fd=file|dir");
        possible("fallocate:EDQUOT:fd=file");
    }

    #[test]
    fn eintr_needs_a_call_that_sleeps() {
        assert!(refused("read:EINTR:fd=file").contains("killably"));
        assert!(refused("read:EINTR:fd=pipe:nonblock=yes").contains("nonblock=yes"));
        assert!(refused("read:EINTR:fd=pipe").contains("nonblock=yes"));
        assert!(refused("wait4:EINTR:nohang=yes").contains("WNOHANG"));
        assert!(refused("wait4:EINTR").contains("WNOHANG"));
        assert!(refused("lseek:EINTR").contains("never sleeps interruptibly"));
        assert!(refused("mmap:EINTR").contains("never sleeps interruptibly"));
        assert!(refused("connect:EINTR:fd=tcp:nonblock=yes").contains("nonblock=yes"));
        possible("read:EINTR:fd=pipe|socket:nonblock=no");
        possible("wait4:EINTR:nohang=no");
        // A select(0): CPython's test_selectors failed on an EINTR injected there.
        let refusal = refused("epoll_wait:EINTR:sleeps=no");
        assert!(refusal.contains("with a timeout of 0"), "{refusal}");
        assert!(refusal.contains("ep_poll"), "{refusal}");
        possible("epoll_wait:EINTR:sleeps=yes");
        possible("poll:EINTR:sleeps=yes");
        possible("nanosleep:EINTR");
        // close(2) lists EINTR: a file's flush (NFS, FUSE) can be interrupted.
        possible("close:EINTR:fd=file");
        assert!(refused("close:EINTR:fd=pipe").contains("flush"));
    }

    /// A hand-written fault with `registered=` was judged by its operation alone: `epoll_ctl:ENOENT:ctl=del:
    /// registered=yes` (a DEL of a watched descriptor, which succeeds) passed as possible.
    #[test]
    fn getcwd_says_enoent_only_without_its_working_directory() {
        assert_eq!(
            refused("getcwd:ENOENT"),
            "getcwd cwd=live never returns ENOENT: getcwd says ENOENT only when its working directory has been \
             removed (getcwd(3) ERRORS)"
        );
        possible("getcwd:ENOENT:cwd=deleted");
        assert!(refused("getcwd:ENOENT:cwd=live").starts_with("getcwd cwd=live never"));
    }

    #[test]
    fn regression_registered_was_ignored_when_judging_epoll_ctl_faults() {
        assert_eq!(
            refused("epoll_ctl:ENOENT:ctl=del:registered=yes"),
            "epoll_ctl ctl=del:registered=yes never returns ENOENT: only a MOD or a DEL of a descriptor that is \
             not registered in the epoll instance says ENOENT; an ADD never does (epoll_ctl(2) ERRORS)"
        );
        assert!(
            refused("epoll_ctl:EEXIST:ctl=add:registered=no")
                .starts_with("epoll_ctl ctl=add:registered=no never returns EEXIST")
        );
        assert!(refused("epoll_ctl:ENOSPC:registered=yes").starts_with("epoll_ctl ctl=add:registered=yes"));
        // Where the operation alone decides, the registration is not named.
        assert!(
            refused("epoll_ctl:ENOENT:registered=no").starts_with("epoll_ctl ctl=add never returns ENOENT")
        );
        possible("epoll_ctl:ENOENT:ctl=mod|del:registered=no");
        possible("epoll_ctl:EEXIST:ctl=add:registered=yes");
        possible("epoll_ctl:ENOSPC:ctl=add:registered=no");
        // Without `registered=`, the rule also lands on calls where the registration rules the error out.
        assert!(refused("epoll_ctl:ENOENT:ctl=del").starts_with("epoll_ctl ctl=del:registered=yes never"));
    }

    /// CPython's test_epoll provokes ENOENT, EEXIST and EPERM on purpose: each is possible for one operation or
    /// one kind of target only, never for every epoll_ctl.
    #[test]
    fn epoll_ctl_errors_need_their_operation_or_target() {
        assert_eq!(
            refused("epoll_ctl:ENOENT:ctl=add"),
            "epoll_ctl ctl=add never returns ENOENT: only a MOD or a DEL of a descriptor that is not registered \
             in the epoll instance says ENOENT; an ADD never does (epoll_ctl(2) ERRORS)"
        );
        assert!(refused("epoll_ctl:ENOENT").starts_with("epoll_ctl ctl=add never returns ENOENT"));
        assert!(
            refused("epoll_ctl:EEXIST:ctl=del|mod").starts_with("epoll_ctl ctl=del never returns EEXIST")
        );
        assert!(refused("epoll_ctl:ENOSPC:ctl=mod").contains("max_user_watches"));
        assert!(
            refused("epoll_ctl:EPERM:fd=pipe")
                .starts_with("epoll_ctl ctl=add on fd=pipe never returns EPERM")
        );
        assert!(refused("epoll_ctl:EPERM").contains("on fd=pipe"));
        // An operation the kernel does not know says EINVAL first.
        assert!(refused("epoll_ctl:ENOENT:ctl=7").starts_with("epoll_ctl ctl=7 never returns ENOENT"));
        possible("epoll_ctl:ENOENT:ctl=del:registered=no");
        possible("epoll_ctl:ENOENT:ctl=mod|del:registered=no:fd=pipe");
        possible("epoll_ctl:EEXIST:ctl=add:registered=yes:fd=socket");
        possible("epoll_ctl:ENOSPC:ctl=add:registered=no");
        possible("epoll_ctl:EPERM:fd=file|dir");
        possible("epoll_ctl:EPERM:ctl=add:fd=file");
        assert!(refused("epoll_ctl:EINTR").contains("never sleeps interruptibly"));
    }

    #[test]
    fn resource_errors_where_the_kernel_can_give_them() {
        possible("openat:EMFILE");
        possible("accept4:ENFILE");
        possible("dup:EMFILE");
        assert!(refused("dup2:EMFILE").contains("EBADF"));
        assert!(refused("dup3:ENFILE").contains("shares the open file description"));
        assert!(refused("brk:ENOMEM").contains("returns the current break"));
        assert!(refused("rt_sigreturn:EINTR").contains("restores the interrupted context"));
        possible("mmap:ENOMEM");
        possible("clone:EAGAIN:clone=thread");
        possible("vfork:EAGAIN");
    }

    /// A typo in the table would silently never match: every syscall and descriptor kind it names exists.
    #[test]
    fn the_table_names_real_syscalls_and_kinds() {
        let lists = RULES.iter().flat_map(|r| r.syscalls.iter()).chain(CLOSED_CALLS);
        for name in lists.flat_map(|l| l.iter()).chain(SOCKET_ONLY) {
            Syscall::parse(name).unwrap_or_else(|e| panic!("{e}"));
        }
        for rule in RULES {
            if let Need::Fd {
                any,
                nonblocking,
                blocking,
            } = rule.need
            {
                for kind in any.iter().chain(nonblocking).chain(blocking) {
                    assert!(FD_KINDS.contains(kind), "{kind}");
                }
            }
            if let Need::Futex { ops, .. } = rule.need {
                for op in ops {
                    assert_eq!(futex_op_base(op), Some(*op));
                }
            }
            if !matches!(rule.need, Need::Any | Need::Never(_)) {
                assert!(!rule.why.is_empty(), "a rule that can refuse says why");
            }
        }
    }

    #[test]
    fn what_the_table_does_not_know_it_does_not_judge() {
        assert_eq!(judge_text("openat:ENOENT"), Realism::Unjudged);
        assert_eq!(judge_text("ioctl:EIO"), Realism::Unjudged);
        let refusals_of = |text: &str| refusals(&FaultSpec::parse(text).unwrap());
        assert!(refusals_of("openat:ENOENT").is_empty());
        assert_eq!(refusals_of("fsync:ECONNRESET").len(), 1);
    }

    /// The README's own demo showed `futex-EAGAIN crashed`: a hand-written rule that lands on wakes. Each syscall and
    /// errno of a rule is judged, a latency fault never is.
    #[test]
    fn a_rule_is_refused_per_syscall_and_errno() {
        let refusals_of = |text: &str| refusals(&FaultSpec::parse(text).unwrap());
        let futex = refusals_of("futex:EAGAIN,ETIMEDOUT");
        assert_eq!(futex.len(), 2, "{futex:?}");
        assert!(futex[0].starts_with("futex FUTEX_WAKE"), "{futex:?}");
        assert!(futex[1].contains("without a timeout"), "{futex:?}");
        assert!(refusals_of("futex:EAGAIN:op=FUTEX_WAIT|FUTEX_WAIT_PRIVATE").is_empty());
        let two = refusals_of("read,lseek:EINTR");
        assert_eq!(two.len(), 2, "{two:?}");
        assert!(two[1].starts_with("lseek"), "{two:?}");
        assert_eq!(refusals_of("read:short=1:fd=file").len(), 1);
        assert!(refusals_of("read:short=1:fd=pipe").is_empty());
        assert!(refusals_of("read:delay=10ms").is_empty());
    }
}
