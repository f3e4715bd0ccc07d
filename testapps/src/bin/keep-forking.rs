//! `keep-forking [--for MS] [--hang-on-eacces] LOG` — a process tree that keeps growing, for the kill-at-random
//! tests: for MS milliseconds (default 10000) the parent starts a child every 10 ms; each child opens
//! `/etc/hostname` every 5 ms for 100 ms and exits, and every fourth child first escapes the tree as a daemon
//! (`setsid` and a second fork: the daemon is reparented away from the parent, as servers' helpers are) and keeps
//! going until the deadline too. Every process ends by the deadline, so the tree ends by itself.
//!
//! Every open that fails with ENOSYS — which the kernel never returns for `openat`, but a seccomp filter whose
//! listener died does — is appended to LOG as `ENOSYS <pid>` (LOG is opened once, before the first fork). With
//! `--hang-on-eacces`, a process whose open fails with EACCES (an injected fault) stops forking and sleeps until
//! killed: a hanging experiment. Exit 0 at the deadline; usage error: exit 2.

use std::{
    ffi::CString,
    fs::OpenOptions,
    io::Write,
    time::{Duration, Instant},
};

use phoebe_testapps::{parse_flag, usage};

const USAGE: &str = "keep-forking [--for MS] [--hang-on-eacces] LOG";

struct Plan {
    deadline: Instant,
    hang_on_eacces: bool,
    log: std::fs::File,
}

impl Plan {
    /// One open of /etc/hostname: an ENOSYS is logged; an EACCES hangs with --hang-on-eacces.
    fn probe(&self, path: &CString) {
        // SAFETY: `path` is a live NUL-terminated string; the descriptor, if any, is closed at once.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: closes the descriptor this function just opened.
            unsafe { libc::close(fd) };
            return;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOSYS) => {
                // One write of one line: O_APPEND keeps lines of concurrent processes whole.
                let _ = (&self.log).write_all(format!("ENOSYS {}\n", std::process::id()).as_bytes());
            }
            Some(libc::EACCES) if self.hang_on_eacces => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            _ => {}
        }
    }

    /// Probes every 5 ms until `until` (or the deadline), then exits.
    fn run_child(&self, path: &CString, until: Instant) -> ! {
        let until = until.min(self.deadline);
        while Instant::now() < until {
            self.probe(path);
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: ends this forked child without running the parent's atexit handlers twice.
        unsafe { libc::_exit(0) }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut for_ms: u64 = 10_000;
    let mut hang_on_eacces = false;
    let mut log = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--for" => for_ms = parse_flag("--for", args.next(), USAGE),
            "--hang-on-eacces" => hang_on_eacces = true,
            _ if log.is_none() && !arg.starts_with('-') => log = Some(arg),
            _ => usage(USAGE),
        }
    }
    let Some(log) = log else { usage(USAGE) };
    let log = match OpenOptions::new().create(true).append(true).open(&log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("keep-forking: cannot open {log}: {e}");
            std::process::exit(1)
        }
    };
    let plan = Plan {
        deadline: Instant::now() + Duration::from_millis(for_ms),
        hang_on_eacces,
        log,
    };
    let path = CString::new("/etc/hostname").expect("no NUL");
    let mut started = 0u64;
    while Instant::now() < plan.deadline {
        plan.probe(&path);
        // SAFETY: the child only sleeps, opens, writes and exits; the parent is single-threaded.
        match unsafe { libc::fork() } {
            0 => {
                if started % 4 == 3 {
                    // SAFETY: setsid and fork take no pointers; the middle process exits at once.
                    unsafe {
                        libc::setsid();
                        if libc::fork() != 0 {
                            libc::_exit(0);
                        }
                    }
                    plan.run_child(&path, plan.deadline)
                }
                plan.run_child(&path, Instant::now() + Duration::from_millis(100))
            }
            -1 => {}
            _ => started += 1,
        }
        // Reap whatever ended; daemons' middles and short-lived children end here.
        // SAFETY: waitpid with a null status pointer and WNOHANG only reaps.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: as above; waits for the children still running (the daemons are not ours any more).
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) } > 0 {}
}
