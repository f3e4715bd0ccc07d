//! `open-loop FILE N` or `open-loop FILE --until PATH` — opens FILE read-only and closes it again, N times or
//! until PATH exists (checked before each open), and counts how the opens went.
//!
//! Each open is one `open(2)` (glibc issues `openat(2)`). Nothing is printed before the loop ends. Output
//! (exit 0), on stdout: `opened=<k> failed=<m> first_failed=<1-based index of the first failed open, 0 if
//! none>`, then one line `errno=<NAME> count=<c>` per errno seen, by errno number. Usage error: exit 2.

use std::{
    collections::BTreeMap,
    env,
    ffi::{CString, OsString},
    io,
    os::unix::ffi::OsStrExt,
    path::PathBuf,
    process,
};

const USAGE: &str = "open-loop FILE N | open-loop FILE --until PATH";

fn usage() -> ! {
    eprintln!("usage: {USAGE}");
    process::exit(2)
}

fn main() {
    let args: Vec<OsString> = env::args_os().skip(1).collect();
    let (file, limit, until) = match args.as_slice() {
        [file, flag, path] if flag == "--until" => (file, None, Some(PathBuf::from(path))),
        [file, n] => match n.to_str().and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => (file, Some(n), None),
            None => usage(),
        },
        _ => usage(),
    };
    let Ok(path) = CString::new(file.as_bytes()) else {
        usage()
    };
    let mut opened = 0u64;
    let mut failed = 0u64;
    let mut first_failed = 0u64;
    let mut errnos: BTreeMap<i32, u64> = BTreeMap::new();
    let mut n = 0u64;
    loop {
        if limit.is_some_and(|limit| n >= limit) || until.as_ref().is_some_and(|p| p.exists()) {
            break;
        }
        n += 1;
        // SAFETY: `path` is a live NUL-terminated string; the flags take no further arguments.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            failed += 1;
            if first_failed == 0 {
                first_failed = n;
            }
            let code = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            *errnos.entry(code).or_default() += 1;
        } else {
            opened += 1;
            // SAFETY: `fd` was just returned by open and is closed exactly once.
            unsafe { libc::close(fd) };
        }
    }
    println!("opened={opened} failed={failed} first_failed={first_failed}");
    for (code, count) in errnos {
        println!("errno={} count={count}", errno_name(code));
    }
}

/// The errno's symbolic name for the errors an open can meet; the number otherwise.
fn errno_name(code: i32) -> String {
    let name = match code {
        libc::EACCES => "EACCES",
        libc::ENOENT => "ENOENT",
        libc::EPERM => "EPERM",
        libc::EIO => "EIO",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::EINTR => "EINTR",
        libc::ENOMEM => "ENOMEM",
        libc::EAGAIN => "EAGAIN",
        _ => return code.to_string(),
    };
    name.to_owned()
}
