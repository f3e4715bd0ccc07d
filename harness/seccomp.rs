//! What only the seccomp backend does: refusals that name the ptrace backend, a target with its own listener, and the
//! target's tree ending with phoebe, on Ctrl-C or when phoebe is killed.

use std::{
    io::BufReader,
    process::{Command, Stdio},
    time::Duration,
};

use predicates::prelude::*;

use crate::common::*;

fn first_stderr_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn observe_is_refused_with_a_hint() {
    let out = phoebe()
        .args(["observe", "--backend", "seccomp", "-o", "/dev/null", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "phoebe: the seccomp backend cannot observe: a call it lets run returns to the target without phoebe \
         seeing the result\nhint: use --backend ptrace\n"
    );
}

#[test]
fn exit_side_rules_are_refused_naming_ptrace() {
    let out = Backend::Seccomp
        .inject()
        .args(["--fault", "write:EIO:nth=1:when=exit", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let line = first_stderr_line(&out);
    assert!(
        line.starts_with("phoebe: fault 'write:EIO:nth=1:when=exit' cannot run on the seccomp backend: ")
            && line.ends_with("use --backend ptrace"),
        "{line}"
    );
}

#[test]
fn a_target_with_its_own_listener_is_told_to_use_ptrace() {
    if !seccomp_works() {
        return;
    }
    Backend::Seccomp
        .inject()
        .args(["-q", "--fault", "getppid:EPERM:p=0", "--"])
        .arg(testapp("notify-self"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "notify-self: seccomp(NEW_LISTENER) failed: Device or resource busy",
        ))
        .stderr(predicate::str::contains("phoebe: warning: process "))
        .stderr(predicate::str::contains(
            "asked for a seccomp listener of its own",
        ))
        .stderr(predicate::str::contains("hint: run it with --backend ptrace"));
    // The ptrace backend leaves the target's seccomp alone.
    if ptrace_works() {
        Backend::Ptrace
            .inject()
            .args(["-q", "--fault", "getppid:EPERM:p=0", "--"])
            .arg(testapp("notify-self"))
            .assert()
            .success()
            .stdout(predicate::str::starts_with("listener fd="));
    }
}

/// Spawns `phoebe inject --backend seccomp` on sigloop (one notified syscall, never injected) and returns it with
/// sigloop's pid.
fn spawn_sigloop(log: &std::path::Path, iterations: u32) -> (std::process::Child, i32) {
    let mut child = Command::new(phoebe_path())
        .env_remove("LD_LIBRARY_PATH")
        .args([
            "inject",
            "-q",
            "--backend",
            "seccomp",
            "--fault",
            "clock_nanosleep:EINTR:p=0",
            "--log",
        ])
        .arg(log)
        .arg("--")
        .arg(testapp("sigloop"))
        .args(["--iterations", &iterations.to_string(), "--sleep-ms", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = ready_pid(&mut BufReader::new(child.stdout.take().unwrap()));
    (child, pid)
}

#[test]
fn the_target_dies_with_phoebe() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, pid) = spawn_sigloop(&dir.path().join("log.json"), 100_000);
    child.kill().unwrap(); // SIGKILL: no clean-up in phoebe; PR_SET_PDEATHSIG does it
    child.wait().unwrap();
    assert!(gone(pid), "target {pid} still runs after phoebe was killed");
}

#[test]
fn sigint_to_phoebe_ends_the_target_and_keeps_the_log() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let (child, pid) = spawn_sigloop(&log, 100_000);
    std::thread::sleep(Duration::from_millis(200));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let log = load_log(&log);
    assert!(log.interrupted);
    assert_eq!(log.exit, Some(phoebe::model::TargetExit::Signal(libc::SIGINT)));
    assert!(log.rules[0].matched >= 1, "what was counted before ^C is kept");
    assert!(gone(pid));
}

/// As for ptrace (harness/observe.rs): a Ctrl-C after the target exited, while a child it left behind runs on, must
/// end the leftover and still write the log.
#[test]
fn sigint_after_the_target_exited_ends_its_leftovers_and_keeps_the_log() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let log_arg = log.to_str().unwrap();
    let args = [
        "inject",
        "-q",
        "--backend",
        "seccomp",
        "--fault",
        "openat:ENOENT:p=0",
        "--log",
        log_arg,
    ];
    let status = sigint_with_a_leftover(&args);
    assert_eq!(status.code(), Some(0), "the target (sh) itself exited 0");
    let log = load_log(&log);
    assert!(log.interrupted);
    assert_eq!(log.exit, Some(phoebe::model::TargetExit::Code(0)));
    assert!(
        log.rules[0].matched >= 1,
        "sleep's loader opened its libraries under the rule"
    );
}
