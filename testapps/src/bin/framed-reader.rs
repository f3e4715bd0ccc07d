//! `framed-reader [--careful | --edge] [--messages N]` — sends N (default 50) fixed-size 64-byte messages through
//! one end of a Unix stream socketpair, closes it, and reads them back from the other end with `read(2)`.
//!
//! Each message is a little-endian sequence number (8 bytes), 48 payload bytes derived from it, and the FNV-1a
//! 64 hash of those 56 bytes (8 bytes). By default the reader makes one `read(2)` per message and assumes it
//! returned the whole message, as naive framing code does: a short read leaves stale bytes in its buffer, so the
//! message fails its check. With `--careful` it reads until it has all 64 bytes, as it must.
//!
//! With `--edge` it reads as nginx, tokio and Go's poller do: the socket non-blocking, watched by an
//! edge-triggered epoll (`EPOLLIN | EPOLLET`), read until a read returns less than it asked for (the socket is
//! drained), then wait for the next edge. The kernel sends one when more data comes, so with the kernel's short
//! reads this never waits for data that is already there; when no edge comes for 2 s while a message is still
//! incomplete it says so on stderr (`framed-reader: no edge came for 2 s with message <I> incomplete …`), exit 1.
//!
//! Output on success (exit 0), on stdout: `messages=<N> reads=<R>` (R: the `read(2)` calls that returned data).
//! A corrupt message (exit 1), on stderr: `framed-reader: message <I> is corrupt (read <n> of 64 bytes in one
//! read)`. A failed call: `framed-reader: <what> failed: <io error>`, exit 1. Usage error: exit 2.

use std::{
    env,
    fs::File,
    io::{self, ErrorKind, Read, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::net::UnixStream,
    },
    process,
};

use phoebe_testapps::{FNV1A_OFFSET, fnv1a_update, parse_flag, usage};

const SIZE: usize = 64;
const BODY: usize = SIZE - 8;
const USAGE: &str = "framed-reader [--careful | --edge] [--messages N]";
/// How long `--edge` waits for an edge before it gives up.
const EDGE_WAIT_MS: i32 = 2000;

fn message(seq: u64) -> [u8; SIZE] {
    let mut m = [0u8; SIZE];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in m[8..BODY].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    let hash = fnv1a_update(FNV1A_OFFSET, &m[..BODY]);
    m[BODY..].copy_from_slice(&hash.to_le_bytes());
    m
}

fn is_message(m: &[u8; SIZE], seq: u64) -> bool {
    m[..8] == seq.to_le_bytes() && m[BODY..] == fnv1a_update(FNV1A_OFFSET, &m[..BODY]).to_le_bytes()
}

fn fail(what: &str, e: std::io::Error) -> ! {
    eprintln!("framed-reader: {what} failed: {e}");
    process::exit(1)
}

fn main() {
    let mut args = env::args().skip(1);
    let (mut careful, mut edge, mut count) = (false, false, 50u64);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--careful" => careful = true,
            "--edge" => edge = true,
            "--messages" => count = parse_flag("--messages", args.next(), USAGE),
            _ => usage(USAGE),
        }
    }
    let (mut tx, rx) = UnixStream::pair().unwrap_or_else(|e| fail("socketpair", e));
    // Every message fits in the socket's buffer at once (a few KiB): write them all, then read.
    for seq in 1..=count {
        tx.write_all(&message(seq)).unwrap_or_else(|e| fail("write", e));
    }
    drop(tx);
    // A `File` over the socket: its `read` is one read(2) (a socket's own `read` is recvfrom).
    let mut rx = File::from(OwnedFd::from(rx));
    if edge {
        let reads = read_edge_triggered(&mut rx, count);
        println!("messages={count} reads={reads}");
        return;
    }
    let mut buf = [0u8; SIZE];
    let mut reads = 0u64;
    for seq in 1..=count {
        let mut have = 0;
        while have < SIZE {
            match rx.read(&mut buf[have..]) {
                Ok(0) => {
                    eprintln!("framed-reader: message {seq} is cut short by the end of the stream");
                    process::exit(1);
                }
                Ok(n) => {
                    reads += 1;
                    have += n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => fail("read", e),
            }
            if !careful {
                break;
            }
        }
        if !is_message(&buf, seq) {
            eprintln!("framed-reader: message {seq} is corrupt (read {have} of {SIZE} bytes in one read)");
            process::exit(1);
        }
    }
    println!("messages={count} reads={reads}");
}

/// `--edge`: the `count` messages of `rx`, read as an edge-triggered reader does; the number of reads that
/// returned data.
fn read_edge_triggered(rx: &mut File, count: u64) -> u64 {
    let fd = rx.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns; F_GETFL and F_SETFL take no pointer.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        fail("fcntl(O_NONBLOCK)", io::Error::last_os_error());
    }
    // SAFETY: epoll_create1 takes no pointer; its result is checked and owned below.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        fail("epoll_create1", io::Error::last_os_error());
    }
    // SAFETY: epfd was just created and is owned by nothing else.
    let epoll = unsafe { OwnedFd::from_raw_fd(epfd) };
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 0,
    };
    // SAFETY: `event` is a valid epoll_event that outlives the call, which only reads it.
    if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
        fail("epoll_ctl", io::Error::last_os_error());
    }
    let mut buf = [0u8; SIZE];
    let (mut seq, mut have, mut reads) = (1u64, 0usize, 0u64);
    while seq <= count {
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }];
        // SAFETY: `ready` has room for the one event asked for.
        let n = unsafe { libc::epoll_wait(epoll.as_raw_fd(), ready.as_mut_ptr(), 1, EDGE_WAIT_MS) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            fail("epoll_wait", e);
        }
        if n == 0 {
            eprintln!(
                "framed-reader: no edge came for {} s with message {seq} incomplete ({have} of {SIZE} bytes)",
                EDGE_WAIT_MS / 1000
            );
            process::exit(1);
        }
        // Drain until a read returns less than it asked for: the socket had no more, and the next edge says when
        // it has.
        while seq <= count {
            let asked = SIZE - have;
            match rx.read(&mut buf[have..]) {
                Ok(0) => {
                    eprintln!("framed-reader: message {seq} is cut short by the end of the stream");
                    process::exit(1);
                }
                Ok(n) => {
                    reads += 1;
                    have += n;
                    if have == SIZE {
                        if !is_message(&buf, seq) {
                            eprintln!("framed-reader: message {seq} is corrupt");
                            process::exit(1);
                        }
                        seq += 1;
                        have = 0;
                    }
                    if n < asked {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => fail("read", e),
            }
        }
    }
    reads
}
