//! `forker [--children N] FILE` (default 2) — a parent that starts N copies of itself and waits for them.
//!
//! Even-indexed children start through `std::process::Command` (std uses glibc `posix_spawn`, seen as
//! `clone3(CLONE_VM|CLONE_VFORK)` + `execve`); odd-indexed ones through a raw `libc::fork()` (seen as
//! `clone(SIGCHLD|CLONE_CHILD_*TID)`) + `libc::execv` of `current_exe()`.
//! Every child runs `forker --child FILE`: it tries to open `<FILE>.phoebe-missing` exactly 3 times
//! (ENOENT each, ignored), reads FILE and prints `child <pid> bytes=<N>` (exit 0); if FILE cannot be
//! read it prints `forker: child <pid>: cannot read <FILE>: <io error>` to stderr and exits 1.
//!
//! The parent prints `children=<N> ok=<children that exited 0>` on stdout and exits 0 only if all N
//! exited 0, else 1. A child that cannot be started is reported as
//! `forker: cannot start child <i>: <io error>` and counts as not ok; one that fails as
//! `forker: child <i> (pid <p>) <status>`. Child lines come in no fixed order. Usage error: exit 2.

use std::{
    env,
    ffi::CString,
    fs,
    io::{self, Write},
    os::unix::{ffi::OsStrExt, process::ExitStatusExt},
    process::{self, Child, Command, ExitStatus},
};

use phoebe_testapps::{parse_flag, usage};

const USAGE: &str = "forker [--children N] FILE";

fn child_mode(path: &str) -> ! {
    for _ in 0..3 {
        let _ = fs::File::open(format!("{path}.phoebe-missing"));
    }
    match fs::read(path) {
        Ok(content) => {
            println!("child {} bytes={}", process::id(), content.len());
            process::exit(0)
        }
        Err(e) => {
            eprintln!("forker: child {}: cannot read {path}: {e}", process::id());
            process::exit(1)
        }
    }
}

enum Started {
    Std(Child),
    Raw(libc::pid_t),
}

/// Starts one child with `fork()` + `execv(exe, [exe, "--child", path])`; returns its pid.
fn fork_exec(exe: &CString, path: &str) -> io::Result<libc::pid_t> {
    let arg_child = CString::new("--child")?;
    let arg_path = CString::new(path)?;
    let argv = [
        exe.as_ptr(),
        arg_child.as_ptr(),
        arg_path.as_ptr(),
        std::ptr::null(),
    ];
    const MSG: &[u8] = b"forker: execv failed\n";
    io::stdout().flush()?; // nothing buffered may be duplicated into the child
    // SAFETY: fork has no memory-safety preconditions; in the child, below, we only call the
    // async-signal-safe execv/write/_exit on data allocated before the fork.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: `argv` is a null-terminated array of pointers to NUL-terminated strings
            // (`exe`, `arg_child`, `arg_path`) that live until execv returns or replaces the image.
            unsafe { libc::execv(exe.as_ptr(), argv.as_ptr()) };
            // SAFETY: MSG is a static buffer of MSG.len() bytes; _exit never returns and skips
            // the parent's atexit handlers and stdio buffers, as a failed child after fork must.
            unsafe {
                libc::write(2, MSG.as_ptr().cast(), MSG.len());
                libc::_exit(127)
            }
        }
        pid => Ok(pid),
    }
}

/// Waits for a raw child, retrying EINTR; returns its wait status.
fn wait_raw(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable c_int for waitpid to fill; `pid` is our own child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn main() {
    let (mut children, mut file) = (2u32, None);
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--child" => child_mode(&args.next().unwrap_or_else(|| usage(USAGE))),
            "--children" => children = parse_flag("--children", args.next(), USAGE),
            _ if arg.starts_with('-') || file.is_some() => usage(USAGE),
            _ => file = Some(arg),
        }
    }
    let Some(path) = file else { usage(USAGE) };
    let exe = env::current_exe().and_then(|p| Ok((CString::new(p.as_os_str().as_bytes())?, p)));
    let (exe_c, exe_path) = match exe {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("forker: cannot find own executable: {e}");
            process::exit(1)
        }
    };

    let mut started = Vec::new();
    for i in 0..children {
        let result = if i % 2 == 0 {
            Command::new(&exe_path)
                .arg("--child")
                .arg(&path)
                .spawn()
                .map(Started::Std)
        } else {
            fork_exec(&exe_c, &path).map(Started::Raw)
        };
        match result {
            Ok(s) => started.push((i, s)),
            Err(e) => eprintln!("forker: cannot start child {i}: {e}"),
        }
    }

    let mut ok = 0;
    for (i, child) in started {
        let (pid, outcome) = match child {
            Started::Std(mut c) => (c.id(), c.wait()),
            Started::Raw(pid) => (pid as u32, wait_raw(pid).map(ExitStatus::from_raw)),
        };
        match outcome {
            Ok(status) if status.success() => ok += 1,
            Ok(status) => eprintln!("forker: child {i} (pid {pid}) {status}"),
            Err(e) => eprintln!("forker: cannot wait for child {i} (pid {pid}): {e}"),
        }
    }
    println!("children={children} ok={ok}");
    process::exit(if ok == children { 0 } else { 1 });
}
