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

/// An epoll_ctl operation that is not one lists the valid ones; `ctl=` on another syscall names the one it is for.
#[test]
fn unknown_epoll_ctl_operation_lists_the_valid_ones() {
    refused(
        &["inject", "--fault", "epoll_ctl:ENOENT:ctl=remove", "--", "true"],
        "phoebe: fault 'epoll_ctl:ENOENT:ctl=remove': ctl=remove: not an epoll_ctl operation (expected add, mod or \
         del, EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLL_CTL_DEL, or a number)",
    );
    refused(
        &["inject", "--fault", "read:ENOENT:ctl=del", "--", "true"],
        "phoebe: fault 'read:ENOENT:ctl=del': ctl= is a shape of epoll_ctl, not of 'read'",
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

/// Regression (issue 13, item 5): `delay=9223372036854775807s` overflowed an `Instant` (exit 101; on seccomp phoebe
/// then hung with the target blocked). `delay=` has a documented maximum, refused before anything runs.
#[test]
fn delay_of_9223372036854775807s_panicked() {
    for backend in ["ptrace", "seccomp"] {
        refused(
            &[
                "inject",
                "--backend",
                backend,
                "--fault",
                "getppid:EPERM:delay=9223372036854775807s",
                "--",
                "true",
            ],
            "phoebe: fault 'getppid:EPERM:delay=9223372036854775807s': delay=9223372036854775807s: the longest \
             delay is 24h (e.g. delay=10ms)",
        );
    }
    refused(
        &[
            "inject",
            "--fault",
            "inject=getppid:error=EPERM:delay_enter=18446744073709551615",
            "--",
            "true",
        ],
        "phoebe: fault 'inject=getppid:error=EPERM:delay_enter=18446744073709551615': \
         delay_enter=18446744073709551615: the longest delay is 24h (e.g. delay=10ms)",
    );
}

/// `/dev/full` opened for writing: every write fails with ENOSPC.
fn full() -> std::process::Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

/// Runs phoebe with `args` and `stdout`/`stderr` (captured where `None`): its status and what it said on stderr.
fn with_streams(
    args: &[&std::ffi::OsStr],
    stdout: Option<std::process::Stdio>,
    stderr: Option<std::process::Stdio>,
) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(phoebe_path());
    cmd.env_remove("LD_LIBRARY_PATH").args(args);
    cmd.stdout(stdout.unwrap_or_else(std::process::Stdio::null));
    cmd.stderr(stderr.unwrap_or_else(std::process::Stdio::piped));
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Regression (issue 13, item 5): writing the report or summary to a full or failing stdout/stderr panicked (exit
/// 101). A failing stdout (the product) exits 2 with one sentence; a failing stderr (diagnostics) changes
/// nothing, and where both fail phoebe just exits with the code.
#[test]
fn report_and_summaries_to_dev_full_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = dir.path().join("campaign");
    std::fs::create_dir(&campaign).unwrap();
    phoebe::files::save(&campaign.join("report.json"), &report_fixture()).unwrap();
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let report = [os("report"), campaign.as_os_str(), os("--format"), os("json")];
    assert_eq!(
        with_streams(&report, Some(full()), None),
        (
            Some(2),
            "phoebe: cannot write to stdout: No space left on device (os error 28)\n".into()
        )
    );
    assert_eq!(with_streams(&report, Some(full()), Some(full())).0, Some(2));
    // A reader that went away is not an error (`phoebe report DIR | head`).
    let mut head = std::process::Command::new(phoebe_path())
        .args(report)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(head.stdout.take());
    let out = head.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    if !ptrace_works() {
        return;
    }
    let obs = dir.path().join("obs.json");
    let observe = [
        os("observe"),
        os("-o"),
        obs.as_os_str(),
        os("--"),
        os("sh"),
        os("-c"),
        os("exit 3"),
    ];
    assert_eq!(with_streams(&observe, None, Some(full())).0, Some(3));
    assert!(obs.exists());
    let plan = dir.path().join("plan.json");
    let synthesize = [os("synthesize"), os("-o"), plan.as_os_str(), obs.as_os_str()];
    assert_eq!(with_streams(&synthesize, None, Some(full())).0, Some(0));
    let (code, stderr) = with_streams(&synthesize, Some(full()), None);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.ends_with("phoebe: cannot write to stdout: No space left on device (os error 28)\n"),
        "{stderr}"
    );
    let out = dir.path().join("exec");
    let exec = [
        os("exec"),
        os("--runs"),
        os("1"),
        os("--baseline-runs"),
        os("1"),
        os("--fault"),
        os("getppid:EPERM"),
        os("--out"),
        out.as_os_str(),
        os("--"),
        os("true"),
    ];
    assert_eq!(with_streams(&exec, None, Some(full())).0, Some(0));
    assert!(out.join("report.json").exists());
    // monitor's table to a full stdout: it used to watch on, writing nothing, until --duration.
    let mut busy = std::process::Command::new("sh")
        .args(["-c", "while :; do read x </etc/hostname; done"])
        .spawn()
        .unwrap();
    let pid = busy.id().to_string();
    let monitor = [
        os("monitor"),
        os("--backend"),
        os("ptrace"),
        os("--interval"),
        os("100ms"),
        os("--duration"),
        os("20s"),
        os("--pid"),
        std::ffi::OsStr::new(&pid),
    ];
    let started = std::time::Instant::now();
    let (code, stderr) = with_streams(&monitor, Some(full()), None);
    busy.kill().unwrap();
    busy.wait().unwrap();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.ends_with("phoebe: cannot write to stdout: No space left on device (os error 28)\n"),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

/// Regression (issue 13, item 7): errnos ≥ 512 were accepted for injection (the target saw "Error 512").
#[test]
fn errno_512_was_accepted_for_injection() {
    refused(
        &["inject", "--fault", "openat:ENOENT,512", "--", "true"],
        "phoebe: fault 'openat:ENOENT,512': errno 512 is kernel-internal (from 512 up, restart codes no program \
         ever sees); inject one below it, e.g. EINTR",
    );
    refused(
        &["inject", "--fault", "inject=openat:error=600", "--", "true"],
        "phoebe: fault 'inject=openat:error=600': errno 600 is kernel-internal (from 512 up, restart codes no \
         program ever sees); inject one below it, e.g. EINTR",
    );
}

/// Regression (issue 13, item 7): `--interval -1s` said "unexpected argument '-1'" without naming the flag.
#[test]
fn interval_minus_1s_did_not_name_the_flag() {
    for args in [
        &["observe", "--interval", "-1s", "--", "true"][..],
        &["monitor", "--pid", "1", "--interval", "-1s"],
        &["monitor", "--pid", "1", "--duration", "-1s"],
    ] {
        let out = phoebe().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.starts_with("error: invalid value '-1s' for '--")
                && stderr.contains("a duration cannot be negative"),
            "{args:?}: {stderr}"
        );
    }
}

/// Regression (issue 13, item 7): `monitor --name ""` or a name over 15 characters silently watched nothing.
#[test]
fn monitor_name_empty_or_over_15_characters_watched_nothing() {
    let out = phoebe().args(["monitor", "--name", ""]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a command name cannot be empty"));
    let out = phoebe()
        .args(["monitor", "--name", "phoebe-testapp-long"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "'phoebe-testapp-long' is longer than the 15 characters the kernel keeps of a command name (comm), so \
             no process has it; use --name phoebe-testapp-"
        ),
        "{stderr}"
    );
}

/// Regression (issue 13, item 7): WARN lines carried colour codes when stderr was not a terminal.
#[test]
fn warn_lines_had_colour_codes_off_a_terminal() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    phoebe()
        .args(["inject", "-q", "--fault", "getppid:EPERM", "--log"])
        .arg(&log)
        .args(["--", "true"])
        .assert()
        .success();
    // Replaying for another command line warns.
    let out = phoebe()
        .args(["inject", "-q", "--replay"])
        .arg(&log)
        .args(["--", "sh", "-c", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

/// The example of `docs/formats.md` whose block is tagged `tag` (e.g. `json injection-log`), as JSON.
fn formats_example(tag: &str) -> serde_json::Value {
    let md =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/formats.md"))
            .unwrap();
    let open = format!("```{tag}\n");
    let start = md.find(&open).expect("the example") + open.len();
    let end = start + md[start..].find("\n```").unwrap();
    serde_json::from_str(&md[start..end]).unwrap()
}

/// Regression (issue 13, item 7): replay logs with an out-of-range rule index, a call index of 0, or no rules
/// were accepted (the summary then said "replayed 5 errors" while its table added to 4).
#[test]
fn replay_log_with_a_bad_rule_index_call_index_0_or_no_rules_was_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 3] = [
        (
            "rule",
            |v| v["injections"][0]["rule"] = 9.into(),
            "injection 1 names rule 9, but the log has 2 rule(s) (rules are numbered from 0)",
        ),
        (
            "index",
            |v| v["injections"][1]["index"] = 0.into(),
            "injection 2 has call index 0 (call indices start at 1)",
        ),
        (
            "no rules",
            |v| {
                v["rules"] = serde_json::json!([]);
                v["injections"] = serde_json::json!([]);
            },
            "it has no rules, so there is nothing to replay",
        ),
    ];
    for (what, edit, problem) in cases {
        let mut value = formats_example("json injection-log");
        edit(&mut value);
        std::fs::write(&log, value.to_string()).unwrap();
        let out = phoebe()
            .args(["inject", "--replay"])
            .arg(&log)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{what}");
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!(
                "phoebe: {} cannot be replayed: {problem}\nhint: replay a log written by phoebe inject --log\n",
                log.display()
            ),
            "{what}"
        );
    }
}

/// Regression (issue 13, item 7): `-o`/`--log` were found unwritable only after the run (a long run wasted).
#[test]
fn output_writability_was_checked_only_after_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let target = format!("touch {}", marker.display());
    let missing = dir.path().join("no-such-dir/out.json");
    for (args, path) in [
        (vec!["observe", "-o", missing.to_str().unwrap()], missing.clone()),
        (
            vec![
                "inject",
                "--fault",
                "getppid:EPERM",
                "--log",
                missing.to_str().unwrap(),
            ],
            missing.clone(),
        ),
        (
            vec![
                "inject",
                "--fault",
                "getppid:EPERM",
                "--log",
                dir.path().to_str().unwrap(),
            ],
            dir.path().to_path_buf(),
        ),
    ] {
        let out = phoebe()
            .args(&args)
            .args(["--", "sh", "-c", &target])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.starts_with(&format!("phoebe: cannot write {}: ", path.display())),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!marker.exists(), "{args:?}: the target ran");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "the write check left {left:?}");
}

/// `short=` runs on ptrace only: seccomp and eBPF refuse it before running anything, naming the backend that runs
/// it; a call whose count is not a register is refused by the parser.
#[test]
fn short_transfers_are_refused_where_they_cannot_run() {
    refused(
        &[
            "inject",
            "--backend",
            "seccomp",
            "--fault",
            "write:short=50%",
            "--",
            "true",
        ],
        "phoebe: fault 'write:short=50%' cannot run on the seccomp backend: a call it lets run continues with the \
         arguments it had, so it cannot shorten a transfer",
    );
    let out = phoebe()
        .args([
            "inject",
            "--backend",
            "seccomp",
            "--fault",
            "write:short=50%",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("hint: use --backend ptrace, which runs short="),
        "{stderr}"
    );
    refused(
        &["inject", "--fault", "openat:short=1", "--", "true"],
        "phoebe: fault 'openat:short=1': short= makes a read or write transfer fewer bytes by lowering its count \
         register, and 'openat' has no such register (vectored calls keep their counts in memory); it applies to \
         read, pread64, recvfrom, write, pwrite64, sendto",
    );
}

#[test]
fn tests_source_must_be_a_junit_glob() {
    refused(
        &["exec", "--tests", "junit:", "--", "true"],
        "error: invalid value 'junit:' for '--tests <junit:GLOB>': junit: needs a glob of the suite's JUnit XML \
         files (e.g. junit:build/test-results/**/*.xml)",
    );
    refused(
        &["exec", "--tests", "xml:a", "--", "true"],
        "error: invalid value 'xml:a' for '--tests <junit:GLOB>': unknown test results `xml:a`: the one kind is \
         junit:GLOB (e.g. junit:target/surefire-reports/*.xml); libtest's and pytest's results are read from the \
         output without --tests",
    );
}

/// `--ebpf-maps` (hidden: how `phoebe exec` lends its eBPF observer to a baseline run) owns only descriptors that
/// are phoebe's eBPF maps: anything else is refused in one sentence, naming the descriptor and what it is, before
/// the target runs; and it needs `--backend ebpf`.
#[test]
fn ebpf_maps_refuses_descriptors_that_are_not_phoebes_maps() {
    refused(
        &["observe", "--ebpf-maps", "3", "--backend", "ptrace", "--", "true"],
        "phoebe: --ebpf-maps needs --backend ebpf",
    );
    let out = phoebe()
        .args(["observe", "--ebpf-maps", "0", "--backend", "ebpf", "--", "true"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let (first, rest) = stderr.split_once('\n').unwrap_or((&stderr, ""));
    assert!(
        first.starts_with("phoebe: --ebpf-maps: descriptor 0 is pipe:[")
            && first.ends_with("], not an eBPF map"),
        "{stderr}"
    );
    assert!(
        rest.starts_with("hint: --ebpf-maps is how `phoebe exec` lends"),
        "{stderr}"
    );
    refused(
        &["observe", "--ebpf-maps", "917", "--backend", "ebpf", "--", "true"],
        "phoebe: --ebpf-maps: descriptor 917 is not open in this process (No such file or directory (os error 2))",
    );
}
