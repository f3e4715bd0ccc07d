//! `shapes [N]` (N default 200, at least 1) — calls of a few shapes (DESIGN §6), each with the errors the kernel
//! really returns for that shape and no other, for the call-shape tests.
//!
//! Each of the N rounds makes, in this order:
//! - `futex(FUTEX_WAIT_PRIVATE)` with a 1 µs timeout on a word that does not hold the expected value in even
//!   rounds (the kernel says EAGAIN) and does in odd ones (ETIMEDOUT): shape `op=FUTEX_WAIT_PRIVATE:timeout=yes`;
//! - `futex(FUTEX_WAKE_PRIVATE)`, which never fails: shape `op=FUTEX_WAKE_PRIVATE`;
//! - `read` of an empty non-blocking pipe (EAGAIN): `fd=pipe:nonblock=yes:ready=no`;
//! - `lseek` to 0 and `read` of one byte of a regular file (never EAGAIN): `fd=file:nonblock=no:path=…`;
//! - `ioctl(FIONREAD)` on the pipe (never fails) and `ioctl(TCGETS)` on it (always ENOTTY: a pipe is no terminal);
//! - `stat` (`newfstatat`) of `/proc/PID/stat` (never fails: its own) and of `phoebe-shapes-PID-probe` in the temp
//!   directory, which exists in odd rounds only (ENOENT in even ones, where it is absent): shapes
//!   `exists=yes:path=/proc/*/stat`, `exists=yes:path=…/phoebe-shapes-*-probe` (never fails) and
//!   `exists=no:path=…/phoebe-shapes-*-probe` (always ENOENT);
//! - `open(O_CREAT)` of `new` in the directory `phoebe-shapes-PID-dir` of the temp directory, which exists in odd
//!   rounds only: the file is created (and removed again) in odd rounds, ENOENT in even ones; the name never
//!   exists as the call starts: shapes
//!   `creates=yes:directory=no:exists=no:parent=yes:path=…/phoebe-shapes-*-dir/new` (never fails) and
//!   `…:parent=no:…` (always ENOENT);
//! - `write` of one byte to a non-blocking pipe whose read end is open (never read: EAGAIN only once its 64 KiB
//!   are full) and to one whose read end was closed (always EPIPE; Rust ignores SIGPIPE): shapes
//!   `fd=pipe:nonblock=yes:ready=yes:atomic=yes:readers=yes` and `…:readers=no`.
//!
//! Every result the kernel could not have given (a wake that fails, EAGAIN from a file, any other errno) is
//! counted as impossible and named on stderr; an error a real kernel gives for that shape is retried silently.
//! Output, one line on stdout: `rounds=<N> impossible=<count>`; exit 0, or 3 when something was impossible.

use std::{env, fs::File, io, io::Write, os::fd::AsRawFd};

use phoebe_testapps::rounds_arg;

const USAGE: &str = "shapes [N]";

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn main() {
    let rounds = rounds_arg(200, USAGE);
    let word: u32 = 0;
    let mut pipe = [0i32; 2];
    // SAFETY: `pipe` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        eprintln!("shapes: pipe2: {}", io::Error::last_os_error());
        std::process::exit(1);
    }
    // Two more pipes to write to: one whose read end stays open, one whose read end is closed.
    let (mut fed, mut orphan) = ([0i32; 2], [0i32; 2]);
    for p in [&mut fed, &mut orphan] {
        // SAFETY: `p` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            eprintln!("shapes: pipe2: {}", io::Error::last_os_error());
            std::process::exit(1);
        }
    }
    // SAFETY: the read end was just opened and is not used again.
    unsafe { libc::close(orphan[0]) };
    let path = env::temp_dir().join(format!("phoebe-shapes-{}", std::process::id()));
    let file = File::create(&path).and_then(|mut f| f.write_all(b"x").map(|_| f));
    drop(file);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("shapes: {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    let mut impossible = 0u64;
    let mut report = |what: &str, e: i32| {
        impossible += 1;
        eprintln!(
            "shapes: impossible: {what} failed with {}",
            io::Error::from_raw_os_error(e)
        );
    };
    let mut buf = [0u8; 1];
    let own_stat = std::ffi::CString::new(format!("/proc/{}/stat", std::process::id())).expect("no NUL");
    let probe_path = env::temp_dir().join(format!("phoebe-shapes-{}-probe", std::process::id()));
    let probe = std::ffi::CString::new(probe_path.to_string_lossy().as_bytes()).expect("no NUL");
    let spool = env::temp_dir().join(format!("phoebe-shapes-{}-dir", std::process::id()));
    let new_file = spool.join("new");
    let new_name = std::ffi::CString::new(new_file.to_string_lossy().as_bytes()).expect("no NUL");
    for round in 0..rounds {
        if round % 2 == 1 {
            let _ = File::create(&probe_path);
            let _ = std::fs::create_dir(&spool);
        } else {
            let _ = std::fs::remove_file(&probe_path);
            let _ = std::fs::remove_dir_all(&spool);
        }
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1000,
        };
        let expected: u32 = if round % 2 == 0 { 1 } else { 0 };
        // SAFETY: `word` and `timeout` are live locals; FUTEX_WAIT reads the word and the timespec only.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                &raw const word,
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                &raw const timeout,
            )
        };
        if r == -1 && !matches!(errno(), libc::EAGAIN | libc::ETIMEDOUT | libc::EINTR) {
            report("FUTEX_WAIT with a timeout", errno());
        }
        // SAFETY: FUTEX_WAKE only looks the word's address up among the waiters.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                &raw const word,
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
            )
        };
        if r == -1 {
            report("FUTEX_WAKE", errno());
        }
        // SAFETY: `buf` is a live local of the length passed.
        let r = unsafe { libc::read(pipe[0], buf.as_mut_ptr().cast(), 1) };
        if r == -1 && errno() != libc::EAGAIN {
            report("read of an empty non-blocking pipe", errno());
        }
        // SAFETY: lseek takes no memory; `file` is open.
        if unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_SET) } == -1 {
            report("lseek of a regular file", errno());
        }
        // SAFETY: as above; `file` is open for reading.
        let r = unsafe { libc::read(file.as_raw_fd(), buf.as_mut_ptr().cast(), 1) };
        if r == -1 {
            report("read of a regular file", errno());
        }
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int to `n`, a live local.
        if unsafe { libc::ioctl(pipe[0], libc::FIONREAD, &raw mut n) } == -1 {
            report("ioctl(FIONREAD) of a pipe", errno());
        }
        // SAFETY: TCGETS writes a termios to `tio`, a live local of that type.
        let mut tio: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::ioctl(pipe[0], libc::TCGETS, &raw mut tio) } == -1 && errno() != libc::ENOTTY {
            report("ioctl(TCGETS) of a pipe", errno());
        }
        // SAFETY: `st` is a live local of the type stat writes; the paths are NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::stat(own_stat.as_ptr(), &raw mut st) } == -1 {
            report("stat of its own /proc/PID/stat", errno());
        }
        // SAFETY: as above.
        let r = unsafe { libc::stat(probe.as_ptr(), &raw mut st) };
        // ENOENT is possible in any round (another process could remove the file at any time); nothing else is.
        if r == -1 && errno() != libc::ENOENT {
            report("stat of the probe file", errno());
        }
        // SAFETY: the path is NUL-terminated; the descriptor open returns is closed at once.
        let fd = unsafe {
            libc::open(
                new_name.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd >= 0 {
            // SAFETY: `fd` was just opened and is not used again.
            unsafe { libc::close(fd) };
            let _ = std::fs::remove_file(&new_file);
        } else if errno() != libc::ENOENT {
            // ENOENT: its directory is gone, in even rounds (or removed by someone else in odd ones).
            report("open(O_CREAT) in the spool directory", errno());
        }
        // SAFETY: one byte of a static string; a write to a pipe reads only that.
        let r = unsafe { libc::write(fed[1], b"x".as_ptr().cast(), 1) };
        if r == -1 && errno() != libc::EAGAIN {
            report("write to a pipe with a reader", errno());
        }
        // SAFETY: as above.
        let r = unsafe { libc::write(orphan[1], b"x".as_ptr().cast(), 1) };
        if r != -1 || errno() != libc::EPIPE {
            report(
                "write to a pipe without a reader",
                if r == -1 { errno() } else { 0 },
            );
        }
    }
    let _ = std::fs::remove_file(&probe_path);
    let _ = std::fs::remove_dir_all(&spool);
    let _ = std::fs::remove_file(&path);
    println!("rounds={rounds} impossible={impossible}");
    std::process::exit(if impossible > 0 { 3 } else { 0 });
}
