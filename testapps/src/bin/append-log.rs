//! `append-log [--retry] [--records N] LOG` — keeps an append-only log, as a server's write-ahead log: reads LOG
//! (lines `record <k>`, k = 1, 2, … in order; a missing file is empty), then appends N records (default 200),
//! one `write(2)` and one `fsync(2)` each. Prints `appended <n> records, <total> in <LOG>`.
//!
//! Default (the bad pattern): after a failed write or fsync it gives up on the log for good, as a server that
//! refuses every write after one transient fsync error, and still exits 0: `append-log: fsync failed: <io
//! error>; no more records` on stderr. The log is then short of records, and every later run appends its N
//! after the gap, so the damage outlives the fault.
//! `--retry` (the good pattern): a failed write or fsync is retried (up to 100 times): the log is cut back to
//! the last synced record, the record written again and synced again; opening and reading the log are
//! retried likewise. Errors that outlast the retries: exit 1.
//! `append-log --check [--records N] LOG` validates: every line is the next record and the count is a multiple
//! of N (each run appends N); exit 0 when valid (or missing), 1 when not, saying why.
//! Usage error: exit 2.

use std::{
    env,
    fs::{File, OpenOptions},
    io::{self, ErrorKind, Read, Write},
    process,
    time::Duration,
};

use phoebe_testapps::usage;

const USAGE: &str = "append-log [--retry] [--check] [--records N] LOG";

/// The number of records in `text`, or what is wrong with it.
fn parse(text: &str) -> Result<u64, String> {
    let mut n = 0;
    for line in text.lines() {
        if line != format!("record {}", n + 1) {
            return Err(format!("line {} is '{line}', expected 'record {}'", n + 1, n + 1));
        }
        n += 1;
    }
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(format!("record {n} is cut short"));
    }
    Ok(n)
}

fn read(path: &str) -> io::Result<String> {
    let mut text = String::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_string(&mut text)?;
            Ok(text)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(text),
        Err(e) => Err(e),
    }
}

/// `op` until it succeeds, at most `tries` times.
fn retried<T>(tries: u32, mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut attempt = 1;
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if attempt >= tries => return Err(e),
            Err(_) => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

fn fail(what: &str, e: &io::Error) -> ! {
    eprintln!("append-log: {what}: {e}");
    process::exit(1);
}

fn main() {
    let mut args = env::args().skip(1);
    let (mut retry, mut check, mut records, mut path) = (false, false, 200u64, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--retry" => retry = true,
            "--check" => check = true,
            "--records" => {
                records = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| usage(USAGE))
            }
            p if !p.starts_with('-') && path.is_none() => path = Some(p.to_owned()),
            _ => usage(USAGE),
        }
    }
    let Some(path) = path else { usage(USAGE) };
    let tries = if retry { 100 } else { 1 };
    let text = retried(tries, || read(&path)).unwrap_or_else(|e| fail(&format!("cannot read {path}"), &e));
    let count = match parse(&text) {
        Ok(n) => n,
        Err(why) => {
            eprintln!("append-log: corrupt log {path}: {why}");
            process::exit(1);
        }
    };
    if check {
        if count % records != 0 {
            eprintln!(
                "append-log: {path} holds {count} records, not a multiple of {records}: a run lost some"
            );
            process::exit(1);
        }
        return;
    }
    let mut file = retried(tries, || OpenOptions::new().append(true).create(true).open(&path))
        .unwrap_or_else(|e| fail(&format!("cannot open {path}"), &e));
    // The length of the log up to the last synced record.
    let mut synced = text.len() as u64;
    let mut appended = 0;
    for k in count + 1..=count + records {
        let line = format!("record {k}\n");
        let append = || -> io::Result<()> {
            file.set_len(synced)?;
            file.write_all(line.as_bytes())?;
            file.sync_all()
        };
        let result = if retry {
            retried(tries, append)
        } else {
            // The first attempt needs no cut: nothing was written after the last synced record.
            file.write_all(line.as_bytes()).and_then(|()| file.sync_all())
        };
        if let Err(e) = result {
            if retry {
                fail(&format!("cannot append record {k} to {path}"), &e);
            }
            eprintln!("append-log: fsync failed: {e}; no more records");
            break;
        }
        synced += line.len() as u64;
        appended += 1;
    }
    println!("appended {appended} records, {} in {path}", count + appended);
}
