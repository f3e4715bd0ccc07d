//! `spin-on-error FILE` — opens FILE and retries forever, every 10 ms, while the open fails: the program that
//! hangs when an error it never expected becomes permanent. On success it prints `opened after <R> retries` and
//! exits 0.

use std::{env, fs::File, thread, time::Duration};

use phoebe_testapps::usage;

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        usage("spin-on-error FILE")
    };
    let mut retries = 0u64;
    while File::open(path).is_err() {
        retries += 1;
        thread::sleep(Duration::from_millis(10));
    }
    println!("opened after {retries} retries");
}
