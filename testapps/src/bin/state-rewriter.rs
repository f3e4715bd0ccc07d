//! `state-rewriter STATE` — keeps a counter in a state file and rewrites it *in place* (truncate, then several
//! `write(2)` calls; no temporary file and rename), the unsafe pattern a failed write leaves half-done.
//!
//! The file holds three lines: `counter=<N>`, a padding line of 1000 `x`, and `sum=<N*7>`. On start the file is
//! validated; a missing file counts as `counter=0`. On success it prints `counter=<N+1>` and exits 0.
//! Errors (exit 1): `state-rewriter: corrupt state in <STATE>` when the file does not validate,
//! `state-rewriter: cannot write <STATE>: <io error>` when a write fails (the file is then left broken).
//! `state-rewriter --check STATE` only validates: exit 0 when valid (or missing), 1 when corrupt.

use std::{
    env,
    fs::{self, OpenOptions},
    io::{ErrorKind, Write},
    process,
};

use phoebe_testapps::usage;

const USAGE: &str = "state-rewriter [--check] STATE";

/// The counter in `text`, if the file is whole.
fn parse(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    let counter: u64 = lines.next()?.strip_prefix("counter=")?.parse().ok()?;
    let padding = lines.next()?;
    let sum: u64 = lines.next()?.strip_prefix("sum=")?.parse().ok()?;
    (padding.len() == 1000
        && padding.bytes().all(|b| b == b'x')
        && sum == counter * 7
        && lines.next().is_none())
    .then_some(counter)
}

fn load(path: &str) -> Option<u64> {
    match fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == ErrorKind::NotFound => Some(0),
        Err(_) => None,
    }
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let (check, path) = match args.as_slice() {
        [flag, path] if flag == "--check" => (true, path.clone()),
        [path] if !path.starts_with('-') => (false, path.clone()),
        _ => usage(USAGE),
    };
    let Some(counter) = load(&path) else {
        eprintln!("state-rewriter: corrupt state in {path}");
        process::exit(1);
    };
    if check {
        return;
    }
    let next = counter + 1;
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        // Three separate writes: a failure after the first leaves a truncated, invalid file behind.
        file.write_all(format!("counter={next}\n").as_bytes())?;
        file.write_all(format!("{}\n", "x".repeat(1000)).as_bytes())?;
        file.write_all(format!("sum={}\n", next * 7).as_bytes())?;
        Ok(())
    };
    if let Err(e) = write() {
        eprintln!("state-rewriter: cannot write {path}: {e}");
        process::exit(1);
    }
    println!("counter={next}");
}
