//! `signalled-open PATH` — one `openat` that a signal may arrive during, for tests of calls held by a backend.
//!
//! Installs a SIGUSR1 handler (SA_RESTART; it only counts), prints `ready pid=<pid>` and flushes stdout, then
//! opens PATH read-only exactly once (glibc issues one `openat(2)`; SA_RESTART means a signal does not make the
//! program retry it itself). Prints `open: ok` or `open: <io error>`, then `sigusr1=<count>`, and exits 0.
//! If the handler cannot be installed: `signalled-open: sigaction(SIGUSR1) failed: <io error>` on stderr, exit 1.
//! Usage error: exit 2.

use std::{
    env,
    ffi::CString,
    io::{self, Write},
    mem,
    os::unix::ffi::OsStrExt,
    process,
    sync::atomic::{AtomicU32, Ordering},
};

use phoebe_testapps::usage;

const USAGE: &str = "signalled-open PATH";

static SIGUSR1_COUNT: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_sigusr1(_signal: libc::c_int) {
    // An atomic increment is async-signal-safe: no locks, no allocation.
    SIGUSR1_COUNT.fetch_add(1, Ordering::Relaxed);
}

fn main() {
    let mut args = env::args_os().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        usage(USAGE)
    };
    let Ok(path) = CString::new(path.as_bytes()) else {
        usage(USAGE)
    };
    // SAFETY: all-zero bytes are a valid `sigaction` (no handler, empty mask and flags); the fields used are set below.
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action` is initialised and its handler only touches an atomic (async-signal-safe); a null old-action
    // pointer is allowed.
    if unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) } == -1 {
        eprintln!(
            "signalled-open: sigaction(SIGUSR1) failed: {}",
            io::Error::last_os_error()
        );
        process::exit(1);
    }
    let mut out = io::stdout();
    let _ = writeln!(out, "ready pid={}", process::id()).and_then(|()| out.flush());
    // SAFETY: `path` is a NUL-terminated string that outlives the call; O_RDONLY needs no mode argument.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd >= 0 {
        println!("open: ok");
        // SAFETY: `fd` was just returned by open and is owned by nobody else.
        unsafe { libc::close(fd) };
    } else {
        println!("open: {}", io::Error::last_os_error());
    }
    println!("sigusr1={}", SIGUSR1_COUNT.load(Ordering::Relaxed));
}
