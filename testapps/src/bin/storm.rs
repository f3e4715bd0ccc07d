//! `storm getppid|openat-fail|openat-ok|openat-rel|futex-wake|read-eventfd|read-udp|read-file [N]` (N default 100000, at least 1) — a syscall storm for
//! benches.
//!
//! `getppid` makes N raw `syscall(SYS_getppid)` calls; `openat-fail` makes N `open` calls (glibc issues
//! `openat(2)`) of the fixed path `/nonexistent/phoebe-storm`, each expected to fail with ENOENT; `openat-ok`
//! makes N `open` calls of `/` (a directory every system has), each followed by a `close`: opens that succeed,
//! and so reach the kernel's `file_open` hook, which a failing path walk never does. The loop holds nothing else
//! and is timed with `Instant`. `futex-wake` makes N `FUTEX_WAKE_PRIVATE` calls on a word nobody waits on (each
//! returns 0): the calls a rule on futex *waits* (`op=FUTEX_WAIT_PRIVATE`) must leave alone. `read-eventfd` and
//! `read-udp` make N `read(2)` calls of an empty non-blocking eventfd or UDP socket, each expected to fail with
//! EAGAIN: calls on a descriptor, whose kind the eBPF observer learns in the kernel. `read-file` makes N
//! `pread(2)` calls of 8 bytes at offset 0 of the storm's own executable, a regular file whose path the eBPF
//! observer walks in the kernel; `openat-rel` makes N `open` calls of the relative path `phoebe-storm-absent`
//! (ENOENT expected), which the eBPF observer joins to the working directory it walks in the kernel. A call that returns -1 (getppid, openat-ok) or does not fail with ENOENT
//! (openat-fail) is counted as unexpected (a surprise descriptor is closed).
//!
//! Output (exit 0), one line on stdout: `calls=<N> ns_per_call=<float, 1 decimal> unexpected=<count>`.
//! Usage error: exit 2.

use std::{env, io, time::Instant};

use phoebe_testapps::{parse_flag, usage};

const USAGE: &str =
    "storm getppid|openat-fail|openat-ok|openat-rel|futex-wake|read-eventfd|read-udp|read-file [N]";
const RELATIVE: &std::ffi::CStr = c"phoebe-storm-absent";
const MISSING: &std::ffi::CStr = c"/nonexistent/phoebe-storm";

fn getppid_storm(n: u64) -> u64 {
    let mut unexpected = 0;
    for _ in 0..n {
        // SAFETY: getppid takes no arguments, touches no memory and cannot fail.
        if unsafe { libc::syscall(libc::SYS_getppid) } == -1 {
            unexpected += 1;
        }
    }
    unexpected
}

fn openat_fail_storm(n: u64) -> u64 {
    open_missing_storm(MISSING, n)
}

/// `n` opens of `path`, a name that does not exist: each must fail with ENOENT.
fn open_missing_storm(path: &std::ffi::CStr, n: u64) -> u64 {
    let mut unexpected = 0;
    for _ in 0..n {
        // SAFETY: `path` is a NUL-terminated string that outlives the call; O_RDONLY needs no mode argument.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            unexpected += 1;
            // SAFETY: `fd` was just returned by open and is owned by nobody else.
            unsafe { libc::close(fd) };
        } else if io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
            unexpected += 1;
        }
    }
    unexpected
}

fn openat_ok_storm(n: u64) -> u64 {
    let mut unexpected = 0;
    for _ in 0..n {
        // SAFETY: c"/" is a NUL-terminated static string; O_RDONLY needs no mode argument.
        let fd = unsafe { libc::open(c"/".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            unexpected += 1;
        } else {
            // SAFETY: `fd` was just returned by open and is owned by nobody else.
            unsafe { libc::close(fd) };
        }
    }
    unexpected
}

fn openat_rel_storm(n: u64) -> u64 {
    open_missing_storm(RELATIVE, n)
}

fn read_file_storm(n: u64) -> u64 {
    let Ok(file) = env::current_exe().and_then(std::fs::File::open) else {
        return n;
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut unexpected = 0;
    let mut buf = [0u8; 8];
    for _ in 0..n {
        // SAFETY: `buf` is a live local of the length passed; `fd` stays open while `file` lives.
        if unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) } != 8 {
            unexpected += 1;
        }
    }
    unexpected
}

fn futex_wake_storm(n: u64) -> u64 {
    let word: u32 = 0;
    let mut unexpected = 0;
    for _ in 0..n {
        // SAFETY: FUTEX_WAKE only looks the word's address up among the waiters; `word` outlives the call.
        let woken = unsafe {
            libc::syscall(
                libc::SYS_futex,
                &raw const word,
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
            )
        };
        if woken != 0 {
            unexpected += 1;
        }
    }
    unexpected
}

/// N reads of `fd`, an empty non-blocking descriptor: anything but EAGAIN is unexpected.
fn read_empty_storm(fd: i32, n: u64) -> u64 {
    let mut unexpected = 0;
    let mut buf = [0u8; 8];
    for _ in 0..n {
        // SAFETY: `buf` is a live local of the length passed; a bad descriptor only makes read fail.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
            unexpected += 1;
        }
    }
    unexpected
}

fn read_eventfd_storm(n: u64) -> u64 {
    // SAFETY: eventfd takes no memory.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return n;
    }
    read_empty_storm(fd, n)
}

fn read_udp_storm(n: u64) -> u64 {
    let Ok(socket) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        return n;
    };
    if socket.set_nonblocking(true).is_err() {
        return n;
    }
    read_empty_storm(std::os::fd::AsRawFd::as_raw_fd(&socket), n)
}

fn main() {
    let mut args = env::args().skip(1);
    let storm: fn(u64) -> u64 = match args.next().as_deref() {
        Some("getppid") => getppid_storm,
        Some("openat-fail") => openat_fail_storm,
        Some("openat-ok") => openat_ok_storm,
        Some("openat-rel") => openat_rel_storm,
        Some("read-file") => read_file_storm,
        Some("futex-wake") => futex_wake_storm,
        Some("read-eventfd") => read_eventfd_storm,
        Some("read-udp") => read_udp_storm,
        _ => usage(USAGE),
    };
    let n: u64 = match args.next() {
        Some(v) => parse_flag("N", Some(v), USAGE),
        None => 100_000,
    };
    if n == 0 || args.next().is_some() {
        usage(USAGE);
    }

    let start = Instant::now();
    let unexpected = storm(n);
    let elapsed = start.elapsed();
    let ns_per_call = elapsed.as_nanos() as f64 / n as f64;
    println!("calls={n} ns_per_call={ns_per_call:.1} unexpected={unexpected}");
}
