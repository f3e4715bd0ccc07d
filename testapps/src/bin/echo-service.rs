//! `echo-service PORT FILE [--abort-on-error | --startup-probes DIR | --recover-after MS | --exit-after N]` — a tiny TCP service on 127.0.0.1:PORT, for
//! service-mode experiments. For each connection it reads one line, then reads FILE and answers `ok <bytes>`;
//! when reading FILE fails it answers `error <io error>` and keeps serving (or, with `--abort-on-error`, aborts).
//! With `--startup-probes DIR` it first looks for `DIR/conf-1` … `DIR/conf-10` (a `statx` each, as a server
//! probing for its configuration files; the missing ones fail with ENOENT), only at start-up. With
//! `--recover-after MS`, a failed read puts it in "recovery" for MS milliseconds from then, as a database does
//! after a PANIC: every request meanwhile is answered `error recovering`, and then it serves again by itself. With
//! `--exit-after N` it exits with status 3 once it has answered N connections (a readiness probe's included), as
//! a service that ends in the middle of its workload. It prints `listening on <PORT>` once it accepts connections,
//! and runs until killed.

use std::{
    env, fs,
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    process,
    time::{Duration, Instant},
};

use phoebe_testapps::usage;

const USAGE: &str =
    "echo-service PORT FILE [--abort-on-error | --startup-probes DIR | --recover-after MS | --exit-after N]";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let mut recovery = None;
    let mut exit_after = None;
    let (port, file, abort) = match args.as_slice() {
        [port, file] => (port, file, false),
        [port, file, flag] if flag == "--abort-on-error" => (port, file, true),
        [port, file, flag, dir] if flag == "--startup-probes" => {
            for k in 1..=10 {
                let _ = fs::metadata(format!("{dir}/conf-{k}"));
            }
            (port, file, false)
        }
        [port, file, flag, ms] if flag == "--recover-after" => {
            let ms: u64 = ms.parse().unwrap_or_else(|_| usage(USAGE));
            recovery = Some(Duration::from_millis(ms));
            (port, file, false)
        }
        [port, file, flag, n] if flag == "--exit-after" => {
            exit_after = Some(n.parse::<u64>().unwrap_or_else(|_| usage(USAGE)));
            (port, file, false)
        }
        _ => usage(USAGE),
    };
    let mut recovering_until: Option<Instant> = None;
    let port: u16 = port.parse().unwrap_or_else(|_| usage(USAGE));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        eprintln!("echo-service: cannot listen on 127.0.0.1:{port}: {e}");
        process::exit(1)
    });
    println!("listening on {port}");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let reply = match fs::read(file) {
            // Read, but still recovering from an earlier failure.
            Ok(_) if recovering_until.is_some_and(|until| Instant::now() < until) => {
                "error recovering\n".into()
            }
            Ok(bytes) => format!("ok {}\n", bytes.len()),
            Err(e) if abort => {
                eprintln!("echo-service: {file}: {e}: aborting");
                process::abort()
            }
            Err(e) => {
                if let Some(recovery) = recovery {
                    eprintln!("echo-service: {file}: {e}: recovering");
                    recovering_until = Some(Instant::now() + recovery);
                }
                format!("error {e}\n")
            }
        };
        let _ = stream.write_all(reply.as_bytes());
        if let Some(n) = exit_after.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                eprintln!("echo-service: answered every connection it was to answer: exiting");
                process::exit(3);
            }
        }
    }
}
