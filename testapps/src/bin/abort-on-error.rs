//! `abort-on-error [--panic] FILE` — reads FILE and aborts (SIGABRT) on any error, as a program that treats every
//! I/O error as impossible does. With `--panic`, it panics instead, with a message that does not name the error
//! (`FILE could not be read: giving up`), as a runtime's crash headline does, followed by whatever the runtime
//! prints after it (a backtrace with `RUST_BACKTRACE=1`). On success it prints `bytes=<N>` and exits 0.

use std::{env, fs, process};

use phoebe_testapps::usage;

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let (panics, path) = match args.as_slice() {
        [path] => (false, path),
        [flag, path] if flag == "--panic" => (true, path),
        _ => usage("abort-on-error [--panic] FILE"),
    };
    match fs::read(path) {
        Ok(bytes) => println!("bytes={}", bytes.len()),
        Err(_) if panics => panic!("{path} could not be read: giving up"),
        Err(e) => {
            eprintln!("abort-on-error: {path}: {e}: this cannot happen, aborting");
            process::abort();
        }
    }
}
