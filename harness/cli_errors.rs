//! Bad input: exit status 2 and one sentence naming the input (DESIGN §9).

use predicates::prelude::*;

use crate::common::*;

/// Runs phoebe with `args`, expects exit 2 and a first stderr line equal to `first_line`.
fn refused(args: &[&str], first_line: &str) {
    let out = phoebe().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.lines().next().unwrap_or(""),
        first_line,
        "{args:?}: {stderr}"
    );
}

#[test]
fn unknown_syscall_suggests_the_closest() {
    refused(
        &["inject", "--fault", "opnat:ENOENT", "--", "true"],
        "phoebe: fault 'opnat:ENOENT': unknown syscall 'opnat' (did you mean 'openat'?)",
    );
}

#[test]
fn unknown_errno_suggests_the_closest() {
    refused(
        &["inject", "--fault", "openat:ENOENTT", "--", "true"],
        "phoebe: fault 'openat:ENOENTT': unknown errno 'ENOENTT' (did you mean 'ENOENT'?)",
    );
}

#[test]
fn probability_out_of_range() {
    refused(
        &["inject", "--fault", "openat:ENOENT:p=1.5", "--", "true"],
        "phoebe: fault 'openat:ENOENT:p=1.5': p=1.5: a probability must be between 0 and 1 (e.g. p=0.05 or p=5%)",
    );
}

#[test]
fn malformed_strace_alias() {
    refused(
        &[
            "inject",
            "--fault",
            "inject=openat:error=EIO:when=x",
            "--",
            "true",
        ],
        "phoebe: fault 'inject=openat:error=EIO:when=x': when=x: 'x' is not a call number ≥ 1 (forms: 3, 3+, 3+2, 2..5, 2..10+2)",
    );
    refused(
        &["inject", "--fault", "inject=openat", "--", "true"],
        "phoebe: fault 'inject=openat': the strace form needs error=ERRNO, e.g. inject=openat:error=ENOENT",
    );
}

#[test]
fn no_command() {
    for sub in ["observe", "inject"] {
        let mut args = vec![sub];
        if sub == "inject" {
            args.extend(["--fault", "openat:ENOENT"]);
        }
        phoebe().args(&args).assert().code(2).stderr(
            predicate::str::contains("required arguments were not provided")
                .and(predicate::str::contains("<CMD>")),
        );
    }
}

#[test]
fn command_not_found() {
    let out = phoebe()
        .args(["observe", "-o", "/dev/null", "--", "phoebe-no-such-program"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "phoebe: command not found: 'phoebe-no-such-program'\nhint: give a path, or check that it is on PATH\n"
    );
}

#[test]
fn bad_syscall_list_and_interval() {
    refused(
        &["observe", "--syscalls", "openat,bogus", "--", "true"],
        "phoebe: invalid --syscalls: unknown syscall 'bogus'",
    );
    let out = phoebe()
        .args(["observe", "--interval", "0s", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the interval must be at least 1ms"));
}

#[test]
fn replay_of_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let out = phoebe()
        .arg("inject")
        .arg("--replay")
        .arg(&missing)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!(
            "phoebe: cannot read {}: No such file or directory",
            missing.display()
        )),
        "{stderr}"
    );
    let bad = input_file(&dir, "bad.json", "{\"version\": 1, \"rules\": 3}");
    let out = phoebe()
        .arg("inject")
        .arg("--replay")
        .arg(&bad)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a valid phoebe injection log file"));
}

#[test]
fn fault_and_replay_conflict() {
    phoebe()
        .args([
            "inject",
            "--fault",
            "openat:ENOENT",
            "--replay",
            "x.json",
            "--",
            "true",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
}

#[test]
fn a_file_that_cannot_be_executed() {
    let dir = tempfile::tempdir().unwrap();
    let text = input_file(&dir, "notes.txt", "not a program\n");
    let out = phoebe()
        .args(["observe", "-o"])
        .arg(dir.path().join("unused.json"))
        .arg("--")
        .arg(&text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!(
            "phoebe: cannot execute '{}': EACCES: Permission denied",
            text.display()
        )),
        "{stderr}"
    );
}
