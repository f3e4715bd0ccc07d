//! `epoll-ctl [N]` (N default 100, at least 1) — `epoll_ctl` of each operation (DESIGN §6, `ctl=` shapes), with
//! the errors the kernel really returns for each and no other, for the tests of observation and injection by
//! epoll_ctl operation (issue 12: CPython's test_epoll).
//!
//! Each of the N rounds creates an epoll instance, then makes, in this order:
//! - `EPOLL_CTL_ADD`, `EPOLL_CTL_MOD` and `EPOLL_CTL_DEL` of the read end of a pipe (never fail): shapes
//!   `ctl=add|mod|del:fd=pipe:nonblock=no`;
//! - `EPOLL_CTL_DEL` of the same pipe again, no longer registered (the kernel says ENOENT):
//!   `ctl=del:fd=pipe:nonblock=no`;
//! - `EPOLL_CTL_ADD` of a regular file, which cannot be polled (EPERM): `ctl=add:fd=file:nonblock=no:path=…`;
//!
//! and closes the instance, so that a DEL an injection failed leaves nothing registered in the next round.
//!
//! A failure of the first three calls was made by an injection, never by the kernel: it is counted per
//! operation. A failure the kernel could not have given for that operation and target (ENOENT to an ADD, EEXIST
//! to a MOD or a DEL, EPERM on a pipe, EINTR: epoll_ctl never sleeps) is counted as impossible and named on
//! stderr.
//! Output, one line on stdout: `rounds=<N> impossible=<count> failed=add:<a>,mod:<b>,del:<c>`; exit 0, or 3 when
//! something was impossible.

use std::{env, fs::File, io, os::fd::AsRawFd, process};

use phoebe_testapps::rounds_arg;

const USAGE: &str = "epoll-ctl [N]";

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn fail(what: &str, e: io::Error) -> ! {
    eprintln!("epoll-ctl: {what}: {e}");
    process::exit(1)
}

/// One `epoll_ctl(2)` of `fd` in `epfd`, waiting for input: `Ok` or `Err(errno)`.
fn ctl(epfd: i32, op: i32, fd: i32) -> Result<(), i32> {
    let mut event = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: fd as u64,
    };
    // SAFETY: `event` is a live local the kernel only reads; a bad descriptor or operation only makes the call fail.
    if unsafe { libc::epoll_ctl(epfd, op, fd, &raw mut event) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Can the kernel say `e` to an epoll_ctl of operation `op` on a pollable (`pollable`) target? The man page's
/// errors for a valid instance, target and event: EEXIST to an ADD, ENOENT to a MOD or a DEL, EPERM on a target
/// that cannot be polled, ENOMEM and ENOSPC (max_user_watches) to an ADD or a MOD, ELOOP and EINVAL for nesting.
fn possible(op: i32, pollable: bool, e: i32) -> bool {
    match e {
        libc::EEXIST => op == libc::EPOLL_CTL_ADD,
        libc::ENOENT => op != libc::EPOLL_CTL_ADD,
        libc::EPERM => !pollable,
        libc::ENOMEM | libc::ENOSPC => op != libc::EPOLL_CTL_DEL,
        libc::EINVAL | libc::ELOOP | libc::EBADF => true,
        _ => false,
    }
}

fn main() {
    let rounds = rounds_arg(100, USAGE);
    let mut pipe = [0i32; 2];
    // SAFETY: `pipe` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        fail("pipe2", io::Error::last_os_error());
    }
    let path = env::temp_dir().join(format!("phoebe-epoll-ctl-{}", process::id()));
    let file = File::create(&path).unwrap_or_else(|e| fail(&path.display().to_string(), e));

    let mut impossible = 0u64;
    // add, mod, del.
    let mut failed = [0u64; 3];
    let names = ["ADD", "MOD", "DEL"];
    // `e` 0: the call succeeded.
    let mut report = |what: &str, e: i32| {
        impossible += 1;
        if e == 0 {
            eprintln!("epoll-ctl: impossible: {what} succeeded");
        } else {
            eprintln!(
                "epoll-ctl: impossible: {what} failed with {}",
                io::Error::from_raw_os_error(e)
            );
        }
    };
    for _ in 0..rounds {
        // SAFETY: epoll_create1 takes no memory.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            fail("epoll_create1", io::Error::last_os_error());
        }
        // A pipe can be polled: only an injection fails these.
        for (i, op) in [libc::EPOLL_CTL_ADD, libc::EPOLL_CTL_MOD, libc::EPOLL_CTL_DEL]
            .into_iter()
            .enumerate()
        {
            if let Err(e) = ctl(epfd, op, pipe[0]) {
                failed[i] += 1;
                if !possible(op, true, e) {
                    report(&format!("EPOLL_CTL_{} of a pipe", names[i]), e);
                }
            }
        }
        // No longer registered (unless an injection failed the DEL): the kernel says ENOENT.
        if let Err(e) = ctl(epfd, libc::EPOLL_CTL_DEL, pipe[0])
            && !possible(libc::EPOLL_CTL_DEL, true, e)
        {
            report("a second EPOLL_CTL_DEL of a pipe", e);
        }
        // A regular file cannot be polled: the kernel says EPERM.
        match ctl(epfd, libc::EPOLL_CTL_ADD, file.as_raw_fd()) {
            Err(e) if !possible(libc::EPOLL_CTL_ADD, false, e) => report("EPOLL_CTL_ADD of a file", e),
            Err(_) => {}
            Ok(()) => report("EPOLL_CTL_ADD of a regular file", 0),
        }
        // SAFETY: `epfd` is the instance created above, closed once.
        unsafe { libc::close(epfd) };
    }
    let _ = std::fs::remove_file(&path);
    println!(
        "rounds={rounds} impossible={impossible} failed=add:{},mod:{},del:{}",
        failed[0], failed[1], failed[2]
    );
    process::exit(if impossible > 0 { 3 } else { 0 });
}
