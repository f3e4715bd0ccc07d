//! `notify-self` — a program that asks for a seccomp user-notification listener of its own, as container runtimes
//! and sandboxes do.
//!
//! Sets `no_new_privs`, then installs a one-instruction filter (`SECCOMP_RET_ALLOW` for every call) with
//! `SECCOMP_FILTER_FLAG_NEW_LISTENER`. On success prints `listener fd=<fd>` on stdout and exits 0. If the kernel
//! refuses (EBUSY when a listener already supervises this process tree), prints
//! `notify-self: seccomp(NEW_LISTENER) failed: <io error>` on stderr and exits 1.

use std::{io, process};

fn main() {
    // SAFETY: PR_SET_NO_NEW_PRIVS reads only its integer arguments, passed at register width.
    if unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    } != 0
    {
        eprintln!(
            "notify-self: prctl(PR_SET_NO_NEW_PRIVS) failed: {}",
            io::Error::last_os_error()
        );
        process::exit(1);
    }
    let mut allow = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }];
    let prog = libc::sock_fprog {
        len: 1,
        filter: allow.as_mut_ptr(),
    };
    // SAFETY: `prog` points at one initialised instruction that outlives the call; the kernel copies it and returns
    // a new fd (or -1) without writing to our memory.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        eprintln!(
            "notify-self: seccomp(NEW_LISTENER) failed: {}",
            io::Error::last_os_error()
        );
        process::exit(1);
    }
    println!("listener fd={fd}");
}
