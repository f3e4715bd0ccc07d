//! `write-once [--new] FILE TEXT` — creates/truncates FILE, then makes exactly one `write(2)` of TEXT's bytes.
//! With `--new`, FILE must not exist (`O_EXCL`): a second run refuses to overwrite the first one's output, as
//! zstd, gzip and mkdir do (`write-once: cannot create FILE: File exists`, exit 1).
//!
//! No retry and no `write_all`: a short or failed write is reported, not repaired. Nothing is printed
//! before the write. Output: `wrote <n>` on stdout, exit 0. Errors (exit 1), on stderr:
//! `write-once: cannot create <FILE>: <io error>`, `write-once: write failed: <io error from errno>`, or
//! `write-once: short write <n>/<len>`. Usage error: exit 2.

use std::{
    env,
    ffi::OsString,
    fs::OpenOptions,
    io,
    os::unix::{ffi::OsStrExt, io::AsRawFd},
    process,
};

use phoebe_testapps::usage;

fn main() {
    let args: Vec<OsString> = env::args_os().skip(1).collect();
    let (new, path, text) = match args.as_slice() {
        [path, text] => (false, path, text),
        [flag, path, text] if flag == "--new" => (true, path, text),
        _ => usage("write-once [--new] FILE TEXT"),
    };
    let mut options = OpenOptions::new();
    options.write(true);
    if new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("write-once: cannot create {}: {e}", path.display());
            process::exit(1);
        }
    };

    let bytes = text.as_bytes();
    // SAFETY: `file` keeps the descriptor open for the call, and `bytes` is a live slice of
    // `bytes.len()` readable bytes.
    let n = unsafe { libc::write(file.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    if n < 0 {
        eprintln!("write-once: write failed: {}", io::Error::last_os_error());
        process::exit(1);
    }
    if n as usize != bytes.len() {
        eprintln!("write-once: short write {n}/{}", bytes.len());
        process::exit(1);
    }
    println!("wrote {n}");
}
