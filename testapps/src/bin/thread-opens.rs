//! `thread-opens [--threads N] [--opens M] DIR` (defaults 4 and 50) — threads whose outcome depends on which
//! thread's which open failed.
//!
//! Spawns N threads, released together by a barrier so that they interleave; thread `i` opens `DIR/file-<i>`
//! (which must exist) M times, closing it each time, and notes the 1-based numbers of the opens that failed.
//! Then, in thread order, one line per thread on stdout: `thread <i>: failed <n1>,<n2>…` (or `failed none`), and
//! the exit status is 1 if any open failed, else 0. A thread that cannot be spawned:
//! `thread-opens: cannot spawn thread <i>: <io error>`, exit 3. Usage error: exit 2.

use std::{
    env,
    fs::File,
    process,
    sync::{Arc, Barrier},
    thread,
};

use phoebe_testapps::{parse_flag, usage};

const USAGE: &str = "thread-opens [--threads N] [--opens M] DIR";

fn main() {
    let (mut threads, mut opens, mut dir) = (4usize, 50u64, None);
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => threads = parse_flag("--threads", args.next(), USAGE),
            "--opens" => opens = parse_flag("--opens", args.next(), USAGE),
            _ if dir.is_none() && !arg.starts_with('-') => dir = Some(arg),
            _ => usage(USAGE),
        }
    }
    let Some(dir) = dir else { usage(USAGE) };
    let barrier = Arc::new(Barrier::new(threads));
    let mut handles = Vec::new();
    for i in 0..threads {
        let (barrier, path) = (Arc::clone(&barrier), format!("{dir}/file-{i}"));
        let spawned = thread::Builder::new().spawn(move || {
            barrier.wait();
            (1..=opens)
                .filter(|_| File::open(&path).is_err())
                .collect::<Vec<u64>>()
        });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                eprintln!("thread-opens: cannot spawn thread {i}: {e}");
                process::exit(3);
            }
        }
    }
    let mut any = false;
    for (i, handle) in handles.into_iter().enumerate() {
        let failed = handle.join().unwrap_or_default();
        any |= !failed.is_empty();
        let list: Vec<String> = failed.iter().map(u64::to_string).collect();
        let list = if list.is_empty() {
            "none".to_owned()
        } else {
            list.join(",")
        };
        println!("thread {i}: failed {list}");
    }
    process::exit(i32::from(any));
}
