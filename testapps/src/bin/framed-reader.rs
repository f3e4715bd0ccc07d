//! `framed-reader [--careful] [--messages N]` — sends N (default 50) fixed-size 64-byte messages through one end
//! of a Unix stream socketpair, closes it, and reads them back from the other end with `read(2)`.
//!
//! Each message is a little-endian sequence number (8 bytes), 48 payload bytes derived from it, and the FNV-1a
//! 64 hash of those 56 bytes (8 bytes). By default the reader makes one `read(2)` per message and assumes it
//! returned the whole message, as naive framing code does: a short read leaves stale bytes in its buffer, so the
//! message fails its check. With `--careful` it reads until it has all 64 bytes, as it must.
//!
//! Output on success (exit 0), on stdout: `messages=<N> reads=<R>` (R: the `read(2)` calls that returned data).
//! A corrupt message (exit 1), on stderr: `framed-reader: message <I> is corrupt (read <n> of 64 bytes in one
//! read)`. A failed call: `framed-reader: <what> failed: <io error>`, exit 1. Usage error: exit 2.

use std::{
    env,
    fs::File,
    io::{ErrorKind, Read, Write},
    os::{fd::OwnedFd, unix::net::UnixStream},
    process,
};

use phoebe_testapps::{FNV1A_OFFSET, fnv1a_update, parse_flag, usage};

const SIZE: usize = 64;
const BODY: usize = SIZE - 8;
const USAGE: &str = "framed-reader [--careful] [--messages N]";

fn message(seq: u64) -> [u8; SIZE] {
    let mut m = [0u8; SIZE];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in m[8..BODY].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    let hash = fnv1a_update(FNV1A_OFFSET, &m[..BODY]);
    m[BODY..].copy_from_slice(&hash.to_le_bytes());
    m
}

fn is_message(m: &[u8; SIZE], seq: u64) -> bool {
    m[..8] == seq.to_le_bytes() && m[BODY..] == fnv1a_update(FNV1A_OFFSET, &m[..BODY]).to_le_bytes()
}

fn fail(what: &str, e: std::io::Error) -> ! {
    eprintln!("framed-reader: {what} failed: {e}");
    process::exit(1)
}

fn main() {
    let mut args = env::args().skip(1);
    let (mut careful, mut count) = (false, 50u64);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--careful" => careful = true,
            "--messages" => count = parse_flag("--messages", args.next(), USAGE),
            _ => usage(USAGE),
        }
    }
    let (mut tx, rx) = UnixStream::pair().unwrap_or_else(|e| fail("socketpair", e));
    // Every message fits in the socket's buffer at once (a few KiB): write them all, then read.
    for seq in 1..=count {
        tx.write_all(&message(seq)).unwrap_or_else(|e| fail("write", e));
    }
    drop(tx);
    // A `File` over the socket: its `read` is one read(2) (a socket's own `read` is recvfrom).
    let mut rx = File::from(OwnedFd::from(rx));
    let mut buf = [0u8; SIZE];
    let mut reads = 0u64;
    for seq in 1..=count {
        let mut have = 0;
        while have < SIZE {
            match rx.read(&mut buf[have..]) {
                Ok(0) => {
                    eprintln!("framed-reader: message {seq} is cut short by the end of the stream");
                    process::exit(1);
                }
                Ok(n) => {
                    reads += 1;
                    have += n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => fail("read", e),
            }
            if !careful {
                break;
            }
        }
        if !is_message(&buf, seq) {
            eprintln!("framed-reader: message {seq} is corrupt (read {have} of {SIZE} bytes in one read)");
            process::exit(1);
        }
    }
    println!("messages={count} reads={reads}");
}
