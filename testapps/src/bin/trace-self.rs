//! `trace-self [DATA]` — a program that puts its own `SECCOMP_RET_TRACE` filter on `getpid`, as a sandbox that
//! expects a tracer of its own would, then calls `getpid` three times.
//!
//! Sets `no_new_privs`, installs a filter that returns `SECCOMP_RET_TRACE | DATA` (default 0) for `getpid` and
//! `SECCOMP_RET_ALLOW` for every other call, then prints one line per call: `getpid: ok` or `getpid: errno N`.
//! With no tracer the kernel fails each call with ENOSYS (seccomp(2)), so natively it prints `getpid: errno 38`
//! three times and exits 0. If the filter cannot be installed it prints why on stderr and exits 1.

use std::{io, process};

fn main() {
    let data: u32 = match std::env::args().nth(1).map(|a| a.parse::<u16>()) {
        None => 0,
        Some(Ok(d)) => u32::from(d),
        Some(Err(e)) => {
            eprintln!("trace-self: DATA must be a number 0..=65535: {e}");
            process::exit(2);
        }
    };
    // seccomp_data.nr is at offset 0. The architecture is not checked: this app only ever runs natively.
    let ld_nr = libc::sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    };
    let is_getpid = libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: 0,
        jf: 1,
        k: libc::SYS_getpid as u32,
    };
    let trace = libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_TRACE | data,
    };
    let allow = libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    };
    let mut insns = [ld_nr, is_getpid, trace, allow];
    if let Err(e) = phoebe_testapps::install_filter(&mut insns, 0, "SET_MODE_FILTER") {
        eprintln!("trace-self: {e}");
        process::exit(1);
    }
    for _ in 0..3 {
        // SAFETY: getpid takes no arguments; the raw call goes through the filter (libc may cache the pid).
        let pid = unsafe { libc::syscall(libc::SYS_getpid) };
        if pid < 0 {
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            println!("getpid: errno {errno}");
        } else {
            println!("getpid: ok");
        }
    }
}
