//! `paced [--rate N] [--sleep-us U] [--seconds S] [--leader-exits]` (defaults 100, 3000 and 60) — a known load for the monitor's
//! metrics: N ticks per second for S seconds, each tick one `openat` of a missing file (fails with ENOENT) and
//! one `nanosleep` of U µs (the raw syscall, not glibc's `clock_nanosleep`), so that a scraper can check the
//! error rate (N/s) and the sleep's latency (U µs plus the scheduler's slack) against what it measured.
//!
//! Ticks are paced on absolute deadlines (`clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`), so the rate does
//! not drift with the work of each tick. Prints `ready pid=<pid>` (flushed) before the first tick, and at the end
//! `ticks=<k> enoent=<m>` (m: opens that failed with ENOENT); exit 0. Usage error: exit 2.
//! With `--leader-exits` the ticks run in a second thread and the main thread ends (a raw `exit(2)` of that thread
//! alone) right after the ready line: the process goes on with a zombie leader, as after `pthread_exit` in main.

use std::{
    env,
    io::{self, Write},
    process,
    time::{Duration, Instant},
};

use phoebe_testapps::{parse_flag, usage};

const USAGE: &str = "paced [--rate N] [--sleep-us U] [--seconds S] [--leader-exits]";
const MISSING: &std::ffi::CStr = c"/nonexistent/phoebe-paced";

fn main() {
    let (mut rate, mut sleep_us, mut seconds) = (100u64, 3000u64, 60u64);
    let mut leader_exits = false;
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rate" => rate = parse_flag("--rate", args.next(), USAGE),
            "--sleep-us" => sleep_us = parse_flag("--sleep-us", args.next(), USAGE),
            "--seconds" => seconds = parse_flag("--seconds", args.next(), USAGE),
            "--leader-exits" => leader_exits = true,
            _ => usage(USAGE),
        }
    }
    if rate == 0 || rate > 1_000_000 {
        usage(USAGE);
    }
    if leader_exits {
        let worker = std::thread::spawn(move || ticks(rate, sleep_us, seconds));
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "ready pid={}", process::id());
        let _ = out.flush();
        drop(out);
        // SAFETY: exit(2) ends this thread only; nothing of it is used afterwards (the worker owns what it uses,
        // and the process ends when the worker returns, the last thread).
        unsafe { libc::syscall(libc::SYS_exit, 0) };
        let _ = worker.join();
        return;
    }
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "ready pid={}", process::id());
    let _ = out.flush();
    drop(out);
    ticks(rate, sleep_us, seconds);
}

/// `rate` ticks per second for `seconds` seconds, then the summary line.
fn ticks(rate: u64, sleep_us: u64, seconds: u64) {
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let sleep = libc::timespec {
        tv_sec: (sleep_us / 1_000_000) as libc::time_t,
        tv_nsec: ((sleep_us % 1_000_000) * 1000) as libc::c_long,
    };
    let mut next = now();
    let start = Instant::now();
    let (mut ticks, mut enoent) = (0u64, 0u64);
    while start.elapsed() < Duration::from_secs(seconds) {
        // SAFETY: a NUL-terminated path; the flags take no further arguments.
        let fd = unsafe { libc::open(MISSING.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: a descriptor open returned, closed once.
            unsafe { libc::close(fd) };
        } else if io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
            enoent += 1;
        }
        // SAFETY: `sleep` is a valid timespec; no remainder is asked for (a signal would cut the sleep short,
        // and nothing signals this app).
        unsafe {
            libc::syscall(
                libc::SYS_nanosleep,
                &sleep,
                std::ptr::null_mut::<libc::timespec>(),
            )
        };
        ticks += 1;
        next = add(next, period);
        // SAFETY: `next` is a valid timespec; TIMER_ABSTIME takes no remainder.
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &next,
                std::ptr::null_mut(),
            )
        };
    }
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "ticks={ticks} enoent={enoent}");
    let _ = out.flush();
}

fn now() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts
}

fn add(ts: libc::timespec, d: Duration) -> libc::timespec {
    let nsec = ts.tv_nsec as u64 + u64::from(d.subsec_nanos());
    libc::timespec {
        tv_sec: ts.tv_sec + d.as_secs() as libc::time_t + (nsec / 1_000_000_000) as libc::time_t,
        tv_nsec: (nsec % 1_000_000_000) as libc::c_long,
    }
}
