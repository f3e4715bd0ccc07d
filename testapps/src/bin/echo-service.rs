//! `echo-service PORT FILE [--abort-on-error | --startup-probes DIR]` — a tiny TCP service on 127.0.0.1:PORT, for
//! service-mode experiments. For each connection it reads one line, then reads FILE and answers `ok <bytes>`;
//! when reading FILE fails it answers `error <io error>` and keeps serving (or, with `--abort-on-error`, aborts).
//! With `--startup-probes DIR` it first looks for `DIR/conf-1` … `DIR/conf-10` (a `statx` each, as a server
//! probing for its configuration files; the missing ones fail with ENOENT), only at start-up. It prints
//! `listening on <PORT>` once it accepts connections, and runs until killed.

use std::{
    env, fs,
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    process,
};

use phoebe_testapps::usage;

const USAGE: &str = "echo-service PORT FILE [--abort-on-error | --startup-probes DIR]";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let (port, file, abort) = match args.as_slice() {
        [port, file] => (port, file, false),
        [port, file, flag] if flag == "--abort-on-error" => (port, file, true),
        [port, file, flag, dir] if flag == "--startup-probes" => {
            for k in 1..=10 {
                let _ = fs::metadata(format!("{dir}/conf-{k}"));
            }
            (port, file, false)
        }
        _ => usage(USAGE),
    };
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
            Ok(bytes) => format!("ok {}\n", bytes.len()),
            Err(e) if abort => {
                eprintln!("echo-service: {file}: {e}: aborting");
                process::abort()
            }
            Err(e) => format!("error {e}\n"),
        };
        let _ = stream.write_all(reply.as_bytes());
    }
}
