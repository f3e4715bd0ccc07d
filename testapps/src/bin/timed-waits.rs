//! `timed-waits [N]` (N default 4, at least 1) — timed waits of three lengths, each timing out, for the tests of
//! a futex wait's `within=` (DESIGN §6): N rounds of `Condvar::wait_timeout` for 500 µs, 5 ms and 50 ms on a
//! condition variable nobody notifies. Rust's standard library makes each a `futex(FUTEX_WAIT_BITSET_PRIVATE)`
//! with an absolute `CLOCK_MONOTONIC` deadline, whose time left as it starts is what `within=` classes:
//! `1ms`, `10ms` and `100ms`, ETIMEDOUT every time. Then, each round, a raw
//! `futex(FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME)` with a `CLOCK_REALTIME` deadline 2 ms away, as
//! glibc's `pthread_cond_timedwait` makes by default: `within=10ms`, ETIMEDOUT.
//!
//! Output, one line on stdout: `rounds=<N> timed_out=<count>` (4N when no wait was woken early); exit 0.
//! Usage error: exit 2.

use std::{
    sync::{Condvar, Mutex},
    time::Duration,
};

use phoebe_testapps::rounds_arg;

const USAGE: &str = "timed-waits [N]";

fn main() {
    let rounds = rounds_arg(4, USAGE);
    let lock = Mutex::new(());
    let nobody = Condvar::new();
    let mut timed_out = 0u64;
    for _ in 0..rounds {
        for wait in [
            Duration::from_micros(500),
            Duration::from_millis(5),
            Duration::from_millis(50),
        ] {
            let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let (_guard, result) = nobody
                .wait_timeout(guard, wait)
                .unwrap_or_else(|e| e.into_inner());
            timed_out += u64::from(result.timed_out());
        }
        timed_out += u64::from(realtime_wait(Duration::from_millis(2)));
    }
    println!("rounds={rounds} timed_out={timed_out}");
}

/// A wait on a word nobody changes until a `CLOCK_REALTIME` deadline `wait` away: whether it timed out
/// (ETIMEDOUT; EINTR is retried).
fn realtime_wait(wait: Duration) -> bool {
    let word: u32 = 0;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let nanos = now.tv_nsec as u64 + u64::from(wait.subsec_nanos());
    let deadline = libc::timespec {
        tv_sec: now.tv_sec + wait.as_secs() as libc::time_t + (nanos / 1_000_000_000) as libc::time_t,
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `word` and `deadline` outlive the call; FUTEX_WAIT_BITSET reads the word and the timespec only.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_futex,
                &word as *const u32,
                libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME,
                0u32,
                &deadline as *const libc::timespec,
                std::ptr::null::<u32>(),
                libc::FUTEX_BITSET_MATCH_ANY,
            )
        };
        let errno = std::io::Error::last_os_error().raw_os_error();
        if ret == -1 && errno == Some(libc::EINTR) {
            continue;
        }
        return ret == -1 && errno == Some(libc::ETIMEDOUT);
    }
}
