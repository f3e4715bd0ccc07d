//! `sigloop [--iterations N] [--sleep-ms M] [--count-rt]` (defaults 50 and 20) — a loop that counts SIGUSR1.
//!
//! Installs a SIGUSR1 handler with `sigaction` (SA_RESTART; the handler only increments a static
//! counter), prints `ready pid=<pid>` and flushes stdout, then sleeps M ms N times with
//! `std::thread::sleep` (which resumes `nanosleep` after EINTR with the time left, so signals barely
//! shorten the run), then prints `sigusr1=<count of handled SIGUSR1>` and exits 0.
//! With `--count-rt` it also counts the real-time signal SIGRTMIN+2 (a handler like SIGUSR1's; real-time
//! signals queue, so each one sent is handled once) and prints `sigrt=<count>` before the `sigusr1=` line.
//! SIGINT and SIGTERM are set to their default action (the process dies), even if inherited as ignored.
//! If a disposition cannot be set: `sigloop: sigaction(SIGUSR1) failed: <io error>` or
//! `sigloop: cannot reset SIGINT/SIGTERM to their default action: <io error>` on stderr, exit 1.
//! Usage error: exit 2.

use std::{
    env,
    io::{self, Write},
    mem, process,
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::Duration,
};

use phoebe_testapps::{parse_flag, usage};

const USAGE: &str = "sigloop [--iterations N] [--sleep-ms M] [--count-rt]";

static SIGUSR1_COUNT: AtomicU32 = AtomicU32::new(0);
static SIGRT_COUNT: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_sigusr1(signal: libc::c_int) {
    // An atomic increment is async-signal-safe: no locks, no allocation.
    if signal == libc::SIGUSR1 {
        SIGUSR1_COUNT.fetch_add(1, Ordering::Relaxed);
    } else {
        SIGRT_COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

fn install_handler(signal: libc::c_int) -> io::Result<()> {
    // SAFETY: `libc::sigaction` is a plain C struct for which all-zero bytes are a valid value
    // (no handler, empty flags); every field we rely on is set below.
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid, writable sigset_t owned by `action`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is fully initialised and its handler is an `extern "C" fn(c_int)` that only
    // touches an atomic, so it is async-signal-safe; a null old-action pointer is allowed.
    if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Resets SIGINT and SIGTERM to SIG_DFL: a shell starts background jobs with SIGINT ignored, and
/// that inherited disposition must not keep the loop alive.
fn default_int_term() -> io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: SIG_DFL is a valid disposition for SIGINT and SIGTERM, and installs no handler.
        if unsafe { libc::signal(signal, libc::SIG_DFL) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn main() {
    let (mut iterations, mut sleep_ms, mut count_rt) = (50u32, 20u64, false);
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iterations" => iterations = parse_flag("--iterations", args.next(), USAGE),
            "--sleep-ms" => sleep_ms = parse_flag("--sleep-ms", args.next(), USAGE),
            "--count-rt" => count_rt = true,
            _ => usage(USAGE),
        }
    }
    if let Err(e) = install_handler(libc::SIGUSR1) {
        eprintln!("sigloop: sigaction(SIGUSR1) failed: {e}");
        process::exit(1);
    }
    if count_rt && let Err(e) = install_handler(libc::SIGRTMIN() + 2) {
        eprintln!("sigloop: sigaction(SIGRTMIN+2) failed: {e}");
        process::exit(1);
    }
    if let Err(e) = default_int_term() {
        eprintln!("sigloop: cannot reset SIGINT/SIGTERM to their default action: {e}");
        process::exit(1);
    }

    let mut out = io::stdout();
    let _ = writeln!(out, "ready pid={}", process::id()).and_then(|()| out.flush());
    for _ in 0..iterations {
        thread::sleep(Duration::from_millis(sleep_ms));
    }
    if count_rt {
        println!("sigrt={}", SIGRT_COUNT.load(Ordering::Relaxed));
    }
    println!("sigusr1={}", SIGUSR1_COUNT.load(Ordering::Relaxed));
}
