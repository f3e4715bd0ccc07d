//! `kv-server DIR` — a small key-value server on 127.0.0.1, for throughput benches: a thread per connection,
//! persistent connections, one request per line. `GET KEY` reads the file `DIR/KEY` (open, statx, read, close)
//! and answers `ok <bytes> <FNV-1a of the bytes, hex>`, or `error <io error>` when the file cannot be read;
//! `QUIT` answers `bye` and ends the process with status 0; anything else answers `error bad request`. So each
//! request makes real system calls on a socket and on the file system (read, openat, statx, read ×2, close,
//! write). It listens on a port the kernel picks, prints `listening on <PORT>` once it accepts connections, and
//! runs until a `QUIT` or until killed.

use std::{
    env, fs,
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process, thread,
};

use phoebe_testapps::{FNV1A_OFFSET, fnv1a_update, usage};

const USAGE: &str = "kv-server DIR";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let [dir] = args.as_slice() else { usage(USAGE) };
    let dir = PathBuf::from(dir);
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap_or_else(|e| {
        eprintln!("kv-server: cannot listen on 127.0.0.1: {e}");
        process::exit(1)
    });
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| {
        eprintln!("kv-server: no local address: {e}");
        process::exit(1)
    });
    println!("listening on {port}");
    // The reader of our stdout waits for that line; later output (none) would not matter.
    let _ = std::io::stdout().flush();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let dir = dir.clone();
        let spawned = thread::Builder::new().spawn(move || serve(stream, &dir));
        if let Err(e) = spawned {
            eprintln!("kv-server: cannot start a connection thread: {e}");
        }
    }
}

/// Answers the requests of one connection until the peer closes it.
fn serve(stream: TcpStream, dir: &Path) {
    let _ = stream.set_nodelay(true);
    let mut writer = &stream;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let request = line.trim_end();
        let reply = if request == "QUIT" {
            let _ = writer.write_all(b"bye\n");
            process::exit(0)
        } else if let Some(key) = request.strip_prefix("GET ") {
            if key.is_empty() || key.contains('/') || key.starts_with('.') {
                "error bad key\n".to_owned()
            } else {
                match fs::read(dir.join(key)) {
                    Ok(bytes) => format!("ok {} {:016x}\n", bytes.len(), fnv1a_update(FNV1A_OFFSET, &bytes)),
                    Err(e) => format!("error {e}\n"),
                }
            }
        } else {
            "error bad request\n".to_owned()
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}
