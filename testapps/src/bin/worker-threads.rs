//! `worker-threads [--threads N] [--iterations M] FILE` (defaults 4 and 25) — a multi-threaded worker.
//!
//! Spawns N threads; each does M times: open FILE, read it to the end, close it. Then each thread makes
//! one `open` of `<FILE>.phoebe-missing`, which is expected to fail with ENOENT; its outcome is ignored.
//!
//! Output on success (exit 0), one line on stdout: `threads=<N> opens=<N*M> bytes=<total bytes read>`.
//! A thread stops at its first failed open or read of FILE; then, instead of that line, each failure is
//! reported on stderr as `worker-threads: thread <i>: cannot open <FILE>: <io error>` (or
//! `cannot read`) and the exit status is 1. A thread that cannot be spawned:
//! `worker-threads: cannot spawn thread <i>: <io error>`, exit 1. Usage error: exit 2.

use std::{env, fs::File, io::Read, process, thread};

use phoebe_testapps::{parse_flag, usage};

const USAGE: &str = "worker-threads [--threads N] [--iterations M] FILE";

/// One thread's work; returns the bytes it read or the message for its first failure.
fn work(path: &str, iterations: u64) -> Result<u64, String> {
    let mut bytes = 0u64;
    let mut buf = Vec::new();
    for _ in 0..iterations {
        let mut file = File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
        buf.clear();
        bytes += file
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read {path}: {e}"))? as u64;
        drop(file);
    }
    let _ = File::open(format!("{path}.phoebe-missing"));
    Ok(bytes)
}

fn main() {
    let (mut threads, mut iterations, mut file) = (4u64, 25u64, None);
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => threads = parse_flag("--threads", args.next(), USAGE),
            "--iterations" => iterations = parse_flag("--iterations", args.next(), USAGE),
            _ if arg.starts_with('-') || file.is_some() => usage(USAGE),
            _ => file = Some(arg),
        }
    }
    let Some(path) = file else { usage(USAGE) };

    let mut handles = Vec::new();
    let mut failed = false;
    for i in 0..threads {
        let path = path.clone();
        match thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || work(&path, iterations))
        {
            Ok(h) => handles.push((i, h)),
            Err(e) => {
                eprintln!("worker-threads: cannot spawn thread {i}: {e}");
                failed = true;
                break;
            }
        }
    }

    let mut total = 0u64;
    for (i, handle) in handles {
        match handle.join() {
            Ok(Ok(bytes)) => total += bytes,
            Ok(Err(msg)) => {
                eprintln!("worker-threads: thread {i}: {msg}");
                failed = true;
            }
            Err(_) => {
                eprintln!("worker-threads: thread {i} panicked");
                failed = true;
            }
        }
    }
    if failed {
        process::exit(1);
    }
    println!("threads={threads} opens={} bytes={total}", threads * iterations);
}
