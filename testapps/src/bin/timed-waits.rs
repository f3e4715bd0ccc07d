//! `timed-waits [N]` (N default 4, at least 1) — timed waits of three lengths, each timing out, for the tests of
//! a futex wait's `within=` (DESIGN §6): N rounds of `Condvar::wait_timeout` for 500 µs, 5 ms and 50 ms on a
//! condition variable nobody notifies. Rust's standard library makes each a `futex(FUTEX_WAIT_BITSET_PRIVATE)`
//! with an absolute `CLOCK_MONOTONIC` deadline, whose time left as it starts is what `within=` classes:
//! `1ms`, `10ms` and `100ms`, ETIMEDOUT every time.
//!
//! Output, one line on stdout: `rounds=<N> timed_out=<count>` (3N when no wait was woken early); exit 0.
//! Usage error: exit 2.

use std::{
    env,
    sync::{Condvar, Mutex},
    time::Duration,
};

use phoebe_testapps::{parse_flag, usage};

const USAGE: &str = "timed-waits [N]";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.len() > 1 {
        usage(USAGE);
    }
    let rounds: u64 = match args.first() {
        Some(n) => parse_flag("N", Some(n.clone()), USAGE),
        None => 4,
    };
    if rounds == 0 {
        usage(USAGE);
    }
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
    }
    println!("rounds={rounds} timed_out={timed_out}");
}
