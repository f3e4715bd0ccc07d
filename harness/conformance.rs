//! The conformance suite: the same injection tests on every backend that injects, so that one fault means the same
//! everywhere. Each test is a function of the backend; [`conformance!`] makes one `#[test]` per backend
//! (`conformance::ptrace::…`, `conformance::seccomp::…`). A backend the machine cannot run prints `skipped: …`.
//! Tests that compare backends with each other come last.

use std::{io::BufReader, process::Stdio, time::Duration};

use predicates::prelude::*;

use crate::common::*;

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod ptrace {
            $( #[test] fn $test() { super::$test(super::Backend::Ptrace) } )*
        }
        mod seccomp {
            $( #[test] fn $test() { super::$test(super::Backend::Seccomp) } )*
        }
    };
}

conformance!(
    openat_enoent_makes_cat_fail,
    p_zero_changes_nothing,
    p_one_fails_every_call,
    seeded_runs_inject_the_same_calls,
    achieved_rate_is_inside_the_binomial_interval,
    replay_reproduces_a_failing_run,
    strace_alias_injects_the_same_way,
    threads_share_one_rule,
    java_app_under_injection,
    delay_holds_the_call_before_failing_it,
    execve_can_be_targeted,
    a_signal_during_a_held_call_does_not_roll_again,
    shape_predicates_fail_only_the_matching_calls,
    state_predicates_fail_only_the_calls_in_that_state,
    regression_realtime_signal_death_is_signal_36_not_sigkill,
);

/// A target killed by SIGRTMIN+2 (signal 36): nix's `waitpid` returned EINVAL on that status, so the backends
/// reported SIGKILL (seccomp, eBPF) or failed (ptrace). phoebe exits 128 + 36 like a shell, and the log says 36.
fn regression_realtime_signal_death_is_signal_36_not_sigkill(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    backend
        .inject()
        .args(["-q", "--fault", "getppid:EPERM:p=0", "--log"])
        .arg(&log)
        .args(["--", "sh", "-c", "kill -s RTMIN+2 $$"])
        .assert()
        .code(164);
    assert_eq!(load_log(&log).exit, Some(phoebe::model::TargetExit::Signal(36)));
}

fn openat_enoent_makes_cat_fail(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = input_file(&dir, "data.txt", "payload\n");
    // Only the file's own open: cat reports it and exits 1.
    let rule = format!("openat:ENOENT:p=1:path={}", file.display());
    backend
        .inject()
        .args(["--fault", &rule, "--", "cat"])
        .arg(&file)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "cat: {}: No such file or directory",
            file.display()
        )))
        .stderr(predicate::str::contains("injected 1 error"));
    // Every openat: the dynamic loader already fails to open libc, with the same error, before cat runs.
    backend
        .inject()
        .args(["-q", "--fault", "openat:ENOENT:p=1", "--", "cat"])
        .arg(&file)
        .assert()
        .code(127)
        .stdout("")
        .stderr(predicate::str::contains("No such file or directory"));
}

fn p_zero_changes_nothing(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = input_file(&dir, "data.txt", "payload\n");
    let log = dir.path().join("log.json");
    backend
        .inject()
        .args(["--fault", "openat:ENOENT:p=0", "--log"])
        .arg(&log)
        .args(["--", "cat"])
        .arg(&file)
        .assert()
        .success()
        .stdout("payload\n")
        .stderr(predicate::str::contains("injected 0 errors"));
    let log = load_log(&log);
    assert!(log.rules[0].matched >= 1, "cat's opens were seen");
    assert_eq!(log.rules[0].injected, 0);
    assert!(log.injections.is_empty());
}

/// (syscall, call index, errno) of every injection: what must be identical between equal runs.
fn decisions(log: &phoebe::model::InjectionLog) -> Vec<(String, u64, String)> {
    log.injections
        .iter()
        .map(|i| (i.syscall.to_string(), i.index, i.effect.to_string()))
        .collect()
}

fn seeded_runs_inject_the_same_calls(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        let log = dir.path().join(name);
        let out = backend
            .inject()
            .args([
                "-q",
                "--fault",
                "openat:EACCES,EPERM:p=0.3:path=/nonexistent/*",
                "--seed",
                seed,
            ])
            .arg("--log")
            .arg(&log)
            .arg("--")
            .arg(testapp("storm"))
            .args(["openat-fail", "400"])
            .assert()
            .success();
        let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        // The storm also prints its own timing; keep the part that must not vary.
        let unexpected = stdout
            .split_whitespace()
            .find(|w| w.starts_with("unexpected="))
            .unwrap()
            .to_owned();
        (unexpected, load_log(&log))
    };
    let (out_a, a) = run("a.json", "42");
    let (out_b, b) = run("b.json", "42");
    let (_, c) = run("c.json", "43");
    assert_eq!(decisions(&a), decisions(&b));
    assert_ne!(decisions(&a), decisions(&c));
    assert_eq!(a.seed, 42);
    // The storm counts every open that did not fail with its natural ENOENT: exactly the injected ones.
    let injected = a.injections.len();
    assert_eq!(out_a, format!("unexpected={injected}"));
    assert_eq!(out_a, out_b);
    // 400 calls at p = 0.3: mean 120, sd ≈ 9.2; the binomial 99.99 % interval is about ±36.
    assert!((84..=156).contains(&injected), "{injected}");
}

fn replay_reproduces_a_failing_run(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = input_file(&dir, "data.txt", &"x".repeat(20_000));
    let log = dir.path().join("failing.json");
    // Find a seed whose run fails; EIO on read is fatal to retry-reader (EINTR would be retried).
    let failing = (1..60u64).find_map(|seed| {
        let out = backend
            .inject()
            .args([
                "-q",
                "--fault",
                "read:EIO=1,EINTR=3:p=0.2",
                "--seed",
                &seed.to_string(),
                "--log",
            ])
            .arg(&log)
            .arg("--")
            .arg(testapp("retry-reader"))
            .arg(&file)
            .output()
            .unwrap();
        (out.status.code() != Some(0)).then_some(out)
    });
    let original = failing.expect("some seed among 60 makes retry-reader fail");
    let original_log = load_log(&log);
    let replay_log = dir.path().join("replay.json");
    let replayed = backend
        .inject()
        .args(["-q", "--replay"])
        .arg(&log)
        .arg("--log")
        .arg(&replay_log)
        .arg("--")
        .arg(testapp("retry-reader"))
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(replayed.status.code(), original.status.code());
    assert_eq!(replayed.stdout, original.stdout);
    assert_eq!(replayed.stderr, original.stderr);
    let replay = load_log(&replay_log);
    assert!(replay.replayed);
    assert_eq!(decisions(&replay), decisions(&original_log));
}

fn strace_alias_injects_the_same_way(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    backend
        .inject()
        .args(["-q", "--fault", "inject=openat:error=EACCES:when=3..5", "--log"])
        .arg(&log)
        .arg("--")
        .arg(testapp("storm"))
        .args(["openat-fail", "10"])
        .assert()
        .success();
    let log = load_log(&log);
    let indices: Vec<u64> = log.injections.iter().map(|i| i.index).collect();
    assert_eq!(indices, [3, 4, 5]);
    assert_eq!(log.rules[0].fault.to_string(), "openat:EACCES:after=2:max=3");
}

fn threads_share_one_rule(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "in.txt", "x");
    let rule = format!("openat:EMFILE:path={}:after=10", input.display());
    backend
        .inject()
        .args(["-q", "--fault", &rule, "--"])
        .arg(testapp("worker-threads"))
        .args(["--threads", "4", "--iterations", "5"])
        .arg(&input)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Too many open files"));
}

fn java_app_under_injection(backend: Backend) {
    if !backend.works() {
        return;
    }
    let Some(jar) = java_jar() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = input_file(&dir, "a.txt", "alpha\n");
    let b = input_file(&dir, "b.txt", "beta\n");
    let native = std::process::Command::new("java")
        .arg("-jar")
        .arg(&jar)
        .arg(dir.path().join("r1.txt"))
        .args([&a, &b])
        .output()
        .unwrap();
    assert!(native.status.success());
    let quiet = backend
        .inject()
        .args(["-q", "--fault", "openat:ENOENT:p=0", "--", "java", "-jar"])
        .arg(&jar)
        .arg(dir.path().join("r2.txt"))
        .args([&a, &b])
        .assert()
        .success();
    assert_eq!(quiet.get_output().stdout, native.stdout);
    // Failing the open of one input: the app reports it cleanly (no stack trace) and exits 1.
    let rule = format!("openat:ENOENT:p=1:path={}", b.display());
    backend
        .inject()
        .args(["-q", "--fault", &rule, "--", "java", "-jar"])
        .arg(&jar)
        .arg(dir.path().join("r3.txt"))
        .args([&a, &b])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "error: cannot read {}: NoSuchFileException",
            b.display()
        )))
        .stderr(predicate::str::contains("\tat ").not());
}

fn delay_holds_the_call_before_failing_it(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = input_file(&dir, "data.txt", "x");
    let rule = format!("openat:ENOENT:path={}:delay=300ms", file.display());
    let started = std::time::Instant::now();
    backend
        .inject()
        .args(["-q", "--fault", &rule, "--", "cat"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("No such file or directory"));
    // A lower bound only: the call was held at least that long, however slow the machine.
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

fn p_one_fails_every_call(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let out = backend
        .inject()
        .args(["--fault", "getppid:EPERM", "--log"])
        .arg(&log)
        .arg("--")
        .arg(testapp("storm"))
        .args(["getppid", "500"])
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.ends_with(" unexpected=500\n"),
        "every getppid failed: {stdout}"
    );
    let log = load_log(&log);
    let rule = &log.rules[0];
    // Either every call was counted and injected (ptrace), or the filter failed them in the kernel and the log says so
    // instead of counting (seccomp's SECCOMP_RET_ERRNO): never "0 injected".
    if rule.in_kernel.is_empty() {
        assert_eq!((rule.matched, rule.injected), (500, 500));
        assert_eq!(log.injections.len(), 500);
    } else {
        assert_eq!(
            rule.in_kernel,
            [phoebe::model::Syscall::parse("getppid").unwrap()]
        );
        assert_eq!(rule.achieved_rate(), Some(1.0));
        let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(
            stderr.contains("every call of getppid failed in the kernel"),
            "{stderr}"
        );
        assert!(!stderr.contains("not exercised"), "{stderr}");
    }
}

/// Issue #3: `openat` at p = 0.05 on 2000 calls gives an achieved rate inside the binomial 99 % interval.
fn achieved_rate_is_inside_the_binomial_interval(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let out = backend
        .inject()
        .args([
            "-q",
            "--fault",
            "openat:EACCES:p=0.05:path=/nonexistent/*",
            "--seed",
            "3",
            "--log",
        ])
        .arg(&log)
        .arg("--")
        .arg(testapp("storm"))
        .args(["openat-fail", "2000"])
        .assert()
        .success();
    let log = load_log(&log);
    let rule = &log.rules[0];
    assert_eq!(rule.matched, 2000);
    // binomial(2000, 0.05): mean 100, sd ≈ 9.75; the 99 % interval is 100 ± 2.576 sd.
    assert!((75..=125).contains(&rule.injected), "{}", rule.injected);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.ends_with(&format!(" unexpected={}\n", rule.injected)),
        "the storm saw exactly the injected errors: {stdout}"
    );
}

fn execve_can_be_targeted(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    // The launcher's own exec of sh is not one of the target's calls: the first targeted execve is sh's.
    backend
        .inject()
        .args(["-q", "--fault", "execve:EACCES", "--log"])
        .arg(&log)
        .args(["--", "sh", "-c", "/bin/true; echo status=$?"])
        .assert()
        .success()
        .stdout("status=126\n")
        .stderr(predicate::str::contains("Permission denied"));
    let log = load_log(&log);
    assert_eq!(decisions(&log), [("execve".to_owned(), 1, "EACCES".to_owned())]);
    assert_eq!((log.rules[0].matched, log.rules[0].injected), (1, 1));
}

/// A target signalled while phoebe holds its call (`delay=`) gets the decided error, then its handler; the call is
/// neither decided twice nor counted twice (seccomp: `WAIT_KILLABLE_RECV`; without it the interrupted call comes
/// back as a new notification, a second roll).
fn a_signal_during_a_held_call_does_not_roll_again(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = input_file(&dir, "data.txt", "x");
    let log = dir.path().join("log.json");
    let rule = format!("openat:EACCES:path={}:delay=1s", file.display());
    let mut child = std::process::Command::new(phoebe_path())
        .env_remove("LD_LIBRARY_PATH")
        .args([
            "inject",
            "-q",
            "--backend",
            backend.name(),
            "--fault",
            &rule,
            "--log",
        ])
        .arg(&log)
        .arg("--")
        .arg(testapp("signalled-open"))
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let pid = ready_pid(&mut stdout);
    // The open is held for 1 s from right after the ready line: signal it in the middle.
    std::thread::sleep(Duration::from_millis(400));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGUSR1).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest, "open: Permission denied (os error 13)\nsigusr1=1\n");
    let log = load_log(&log);
    assert_eq!((log.rules[0].matched, log.rules[0].injected), (1, 1), "{log:?}");
    assert_eq!(log.injections.len(), 1);
}

/// The same seed injects the same calls on every backend (single-threaded target: call order is fixed).
#[test]
fn same_seed_same_injections_on_every_backend() {
    let backends = [Backend::Ptrace, Backend::Seccomp];
    if !backends.iter().all(|b| b.works()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<_> = backends
        .iter()
        .map(|backend| {
            let log = dir.path().join(format!("{}.json", backend.name()));
            backend
                .inject()
                .args([
                    "-q",
                    "--fault",
                    "openat:EACCES,EPERM:p=0.3:path=/nonexistent/*",
                    "--fault",
                    "getppid:EPERM:p=0.1",
                ])
                .args(["--seed", "11", "--log"])
                .arg(&log)
                .arg("--")
                .arg(testapp("storm"))
                .args(["openat-fail", "400"])
                .assert()
                .success();
            load_log(&log)
        })
        .collect();
    assert!(!logs[0].injections.is_empty());
    assert_eq!(decisions(&logs[0]), decisions(&logs[1]));
    let counts = |log: &phoebe::model::InjectionLog| -> Vec<(u64, u64)> {
        log.rules.iter().map(|r| (r.matched, r.injected)).collect()
    };
    assert_eq!(counts(&logs[0]), counts(&logs[1]));
}

/// A log whose rule the seccomp filter ran in the kernel replays on ptrace too: every call of the syscall fails.
#[test]
fn an_in_kernel_log_replays_on_every_backend() {
    if !Backend::Seccomp.works() || !Backend::Ptrace.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kernel.json");
    Backend::Seccomp
        .inject()
        .args(["-q", "--fault", "getppid:EPERM", "--log"])
        .arg(&log)
        .arg("--")
        .arg(testapp("storm"))
        .args(["getppid", "50"])
        .assert()
        .success();
    assert!(!load_log(&log).rules[0].in_kernel.is_empty());
    for backend in [Backend::Ptrace, Backend::Seccomp] {
        let replayed = dir.path().join(format!("replay-{}.json", backend.name()));
        let out = backend
            .inject()
            .args(["-q", "--replay"])
            .arg(&log)
            .arg("--log")
            .arg(&replayed)
            .arg("--")
            .arg(testapp("storm"))
            .args(["getppid", "50"])
            .assert()
            .success();
        let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(
            stdout.ends_with(" unexpected=50\n"),
            "{}: {stdout}",
            backend.name()
        );
        assert!(load_log(&replayed).replayed);
    }
}

/// `op=`/`timeout=` and `fd=` predicates (DESIGN §6): only futex waits with a timeout and reads of the pipe are
/// failed, never the wakes or the reads of the regular file (the app would count those as impossible and exit 3),
/// and every logged injection names the shape it landed on.
fn shape_predicates_fail_only_the_matching_calls(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    backend
        .inject()
        .args([
            "-q",
            "--fault",
            "futex:EAGAIN:op=FUTEX_WAIT_PRIVATE:timeout=yes",
            "--fault",
            "read:EAGAIN:fd=pipe:nonblock=yes",
            "--log",
        ])
        .arg(&log)
        .arg("--")
        .arg(testapp("shapes"))
        .arg("50")
        .assert()
        .success()
        .stdout("rounds=50 impossible=0\n");
    let log = load_log(&log);
    assert_eq!(
        (log.rules[0].matched, log.rules[0].injected),
        (50, 50),
        "{:?}",
        log.rules[0]
    );
    assert_eq!(
        (log.rules[1].matched, log.rules[1].injected),
        (50, 50),
        "{:?}",
        log.rules[1]
    );
    for inj in &log.injections {
        let shape = inj
            .shape
            .as_ref()
            .expect("every injection names its shape")
            .to_string();
        match inj.syscall.name() {
            // The app's waits give up after 1 µs.
            "futex" => assert_eq!(shape, "op=FUTEX_WAIT_PRIVATE:timeout=yes:within=1ms"),
            _ => assert_eq!(shape, "fd=pipe:nonblock=yes:ready=no"),
        }
    }
}

/// State predicates (`exists=`, `creates=`, `parent=`, `template=`, `readers=`) are decided as each call starts:
/// the probe's stat is failed in the rounds where the probe exists and only there, the creating open only where
/// its directory exists, the write only on the pipe without a reader (never on the one that is read, nor on the
/// test's stdout), and every logged injection names that state. The app takes ENOENT on both paths as possible
/// (another process could remove either), and EPIPE where the pipe has no reader, so it exits 0.
fn state_predicates_fail_only_the_calls_in_that_state(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let tmp = std::env::temp_dir();
    let tmp = tmp.to_str().unwrap().trim_end_matches('/');
    backend
        .inject()
        .args(["-q", "--fault"])
        .arg(format!(
            "newfstatat:ENOENT:exists=yes:template={tmp}/phoebe-shapes-*-probe"
        ))
        .arg("--fault")
        .arg(format!(
            "openat:ENOENT:creates=yes:parent=yes:template={tmp}/phoebe-shapes-*-dir/new"
        ))
        .args(["--fault", "write:EPIPE:readers=no"])
        .arg("--log")
        .arg(&log)
        .arg("--")
        .arg(testapp("shapes"))
        .arg("40")
        .assert()
        .success()
        .stdout("rounds=40 impossible=0\n");
    let log = load_log(&log);
    // The probe exists and the directory is there in the 20 odd rounds.
    for rule in &log.rules[..2] {
        assert_eq!((rule.matched, rule.injected), (20, 20), "{rule:?}");
    }
    // Every round writes once to the pipe without a reader.
    assert_eq!(
        (log.rules[2].matched, log.rules[2].injected),
        (40, 40),
        "{:?}",
        log.rules[2]
    );
    for inj in &log.injections {
        let shape = inj
            .shape
            .as_ref()
            .expect("every injection names its shape")
            .to_string();
        match inj.syscall.name() {
            "newfstatat" => assert!(shape.starts_with("exists=yes:path=/"), "{shape}"),
            "write" => assert_eq!(shape, "fd=pipe:nonblock=yes:ready=yes:atomic=yes:readers=no"),
            _ => assert!(
                shape.starts_with("creates=yes:directory=no:exists=no:parent=yes:path=/"),
                "{shape}"
            ),
        }
    }
}

/// The same shape-predicated rules and seed fail the same calls on ptrace and seccomp.
#[test]
fn a_shape_predicated_rule_injects_the_same_calls_on_every_backend() {
    if !Backend::Ptrace.works() || !Backend::Seccomp.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |backend: Backend| {
        let log = dir.path().join(format!("{}.json", backend.name()));
        backend
            .inject()
            .args([
                "-q",
                "--seed",
                "7",
                "--fault",
                "futex:EAGAIN:p=0.5:op=FUTEX_WAIT_PRIVATE:timeout=yes",
                "--fault",
                "read:EAGAIN:p=0.5:fd=pipe",
                "--log",
            ])
            .arg(&log)
            .arg("--")
            .arg(testapp("shapes"))
            .arg("60")
            .assert()
            .success();
        let log = load_log(&log);
        let calls: Vec<(String, u64, String)> = log
            .injections
            .iter()
            .map(|i| {
                (
                    i.syscall.to_string(),
                    i.index,
                    i.shape.as_ref().unwrap().to_string(),
                )
            })
            .collect();
        assert!(
            calls.len() > 20,
            "{} injected {} calls",
            backend.name(),
            calls.len()
        );
        calls
    };
    assert_eq!(run(Backend::Ptrace), run(Backend::Seccomp));
}
