//! `allow-all` — runs a program under the cheapest seccomp filter there is: one instruction that allows every call.
//!
//! `allow-all PROGRAM [ARG…]` sets `no_new_privs`, installs the filter (no flags, no listener), then execs
//! `PROGRAM` with its arguments (looked up in `PATH`). It is the floor of every seccomp filter: what a syscall
//! pays for being filtered at all, with nothing decided (the kernel caches an answer that depends on the syscall
//! number alone, for this filter and for phoebe's on the syscalls it has no rule for). The overhead bench runs
//! the storms under it (`seccomp allow-all filter`), so that phoebe's untargeted calls are judged against what any
//! filter costs, measured in the same run (DESIGN §8).
//!
//! Exits 2 without a program; 1 (with `allow-all: <what failed>` on stderr) when the filter cannot be installed or
//! the program cannot be run.

use std::{env, os::unix::process::CommandExt, process, process::Command};

fn main() {
    let mut args = env::args_os().skip(1);
    let Some(program) = args.next() else {
        phoebe_testapps::usage("allow-all PROGRAM [ARG…]")
    };
    if let Err(e) = phoebe_testapps::install_allow_all(0, "SET_MODE_FILTER") {
        eprintln!("allow-all: {e}");
        process::exit(1);
    }
    let e = Command::new(&program).args(args).exec();
    eprintln!("allow-all: cannot run {}: {e}", program.to_string_lossy());
    process::exit(1);
}
