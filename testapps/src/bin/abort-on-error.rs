//! `abort-on-error FILE` — reads FILE and aborts (SIGABRT) on any error, as a program that treats every I/O
//! error as impossible does. On success it prints `bytes=<N>` and exits 0.

use std::{env, fs, process};

use phoebe_testapps::usage;

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        usage("abort-on-error FILE")
    };
    match fs::read(path) {
        Ok(bytes) => println!("bytes={}", bytes.len()),
        Err(e) => {
            eprintln!("abort-on-error: {path}: {e}: this cannot happen, aborting");
            process::abort();
        }
    }
}
