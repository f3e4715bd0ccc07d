//! `retry-reader FILE` — reads FILE the way a careful program does: `open` once, then `read(2)` in
//! 4096-byte chunks, retrying a read that fails with `EINTR` (immediately) or `EAGAIN` (after 1 ms), at
//! most 100 retries in total.
//!
//! Output on success (exit 0), two lines on stdout:
//!
//! ```text
//! bytes=<N> fnv1a=<16 lowercase hex digits>
//! retries=<R>
//! ```
//!
//! where the hash is FNV-1a 64 over the content and `R` counts retried reads.
//! Errors (exit 1), on stderr: `retry-reader: cannot open <FILE>: <io error>`,
//! `retry-reader: read <FILE> failed: <io error>` for any other read error, or
//! `retry-reader: giving up on <FILE> after 100 retries: <io error>`. Usage error: exit 2.

use std::{
    env,
    fs::File,
    io::{ErrorKind, Read},
    process, thread,
    time::Duration,
};

use phoebe_testapps::{FNV1A_OFFSET, fnv1a_update, usage};

const CHUNK: usize = 4096;
const MAX_RETRIES: u32 = 100;
const USAGE: &str = "retry-reader FILE";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let [path] = args.as_slice() else { usage(USAGE) };

    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("retry-reader: cannot open {path}: {e}");
            process::exit(1);
        }
    };

    let mut buf = [0u8; CHUNK];
    let (mut bytes, mut hash, mut retries) = (0u64, FNV1A_OFFSET, 0u32);
    loop {
        // `File::read` is one read(2); unlike `read_to_end` it does not retry EINTR itself.
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                bytes += n as u64;
                hash = fnv1a_update(hash, &buf[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {
                if retries == MAX_RETRIES {
                    eprintln!("retry-reader: giving up on {path} after {MAX_RETRIES} retries: {e}");
                    process::exit(1);
                }
                retries += 1;
                if e.kind() == ErrorKind::WouldBlock {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            Err(e) => {
                eprintln!("retry-reader: read {path} failed: {e}");
                process::exit(1);
            }
        }
    }
    println!("bytes={bytes} fnv1a={hash:016x}");
    println!("retries={retries}");
}
