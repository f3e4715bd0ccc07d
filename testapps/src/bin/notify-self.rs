//! `notify-self` — a program that asks for a seccomp user-notification listener of its own, as container runtimes
//! and sandboxes do.
//!
//! Sets `no_new_privs`, then installs a one-instruction filter (`SECCOMP_RET_ALLOW` for every call) with
//! `SECCOMP_FILTER_FLAG_NEW_LISTENER`. On success prints `listener fd=<fd>` on stdout and exits 0. If the kernel
//! refuses (EBUSY when a listener already supervises this process tree), prints
//! `notify-self: seccomp(NEW_LISTENER) failed: <io error>` on stderr and exits 1.

use std::process;

fn main() {
    match phoebe_testapps::install_allow_all(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER, "NEW_LISTENER") {
        Ok(fd) => println!("listener fd={fd}"),
        Err(e) => {
            eprintln!("notify-self: {e}");
            process::exit(1);
        }
    }
}
