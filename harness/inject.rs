//! `phoebe inject` on real programs: one fault means what the grammar says.

use predicates::prelude::*;

use crate::common::*;

#[test]
fn openat_enoent_makes_cat_fail() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = input_file(&dir, "data.txt", "payload\n");
    // Only the file's own open: cat reports it and exits 1.
    let rule = format!("openat:ENOENT:p=1:path={}", file.display());
    phoebe()
        .args(["inject", "--fault", &rule, "--", "cat"])
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
    phoebe()
        .args(["inject", "-q", "--fault", "openat:ENOENT:p=1", "--", "cat"])
        .arg(&file)
        .assert()
        .code(127)
        .stdout("")
        .stderr(predicate::str::contains("No such file or directory"));
}

#[test]
fn p_zero_changes_nothing() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = input_file(&dir, "data.txt", "payload\n");
    let log = dir.path().join("log.json");
    phoebe()
        .args(["inject", "--fault", "openat:ENOENT:p=0", "--log"])
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
        .map(|i| (i.syscall.to_string(), i.index, i.errno.to_string()))
        .collect()
}

#[test]
fn seeded_runs_inject_the_same_calls() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        let log = dir.path().join(name);
        let out = phoebe()
            .args([
                "inject",
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

#[test]
fn replay_reproduces_a_failing_run() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = input_file(&dir, "data.txt", &"x".repeat(20_000));
    let log = dir.path().join("failing.json");
    // Find a seed whose run fails; EIO on read is fatal to retry-reader (EINTR would be retried).
    let failing = (1..60u64).find_map(|seed| {
        let out = phoebe()
            .args([
                "inject",
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
    let replayed = phoebe()
        .args(["inject", "-q", "--replay"])
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

#[test]
fn exit_side_injection_lets_the_write_happen() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.txt");
    phoebe()
        .args(["inject", "-q", "--fault", "write:EIO:nth=1:when=exit", "--"])
        .arg(testapp("write-once"))
        .arg(&file)
        .arg("hello")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "write-once: write failed: Input/output error",
        ));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "hello",
        "when=exit: the call ran"
    );
    phoebe()
        .args(["inject", "-q", "--fault", "write:EIO:nth=1:when=entry", "--"])
        .arg(testapp("write-once"))
        .arg(&file)
        .arg("hello")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "write-once: write failed: Input/output error",
        ));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "",
        "when=entry: the call never ran"
    );
}

#[test]
fn strace_alias_injects_the_same_way() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    phoebe()
        .args([
            "inject",
            "-q",
            "--fault",
            "inject=openat:error=EACCES:when=3..5",
            "--log",
        ])
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

#[test]
fn threads_share_one_rule() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "in.txt", "x");
    let rule = format!("openat:EMFILE:path={}:after=10", input.display());
    phoebe()
        .args(["inject", "-q", "--fault", &rule, "--"])
        .arg(testapp("worker-threads"))
        .args(["--threads", "4", "--iterations", "5"])
        .arg(&input)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Too many open files"));
}

#[test]
fn java_app_under_injection() {
    if !ptrace_works() {
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
    let quiet = phoebe()
        .args([
            "inject",
            "-q",
            "--fault",
            "openat:ENOENT:p=0",
            "--",
            "java",
            "-jar",
        ])
        .arg(&jar)
        .arg(dir.path().join("r2.txt"))
        .args([&a, &b])
        .assert()
        .success();
    assert_eq!(quiet.get_output().stdout, native.stdout);
    // Failing the open of one input: the app reports it cleanly (no stack trace) and exits 1.
    let rule = format!("openat:ENOENT:p=1:path={}", b.display());
    phoebe()
        .args(["inject", "-q", "--fault", &rule, "--", "java", "-jar"])
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

#[test]
fn delay_holds_the_call_before_failing_it() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = input_file(&dir, "data.txt", "x");
    let rule = format!("openat:ENOENT:path={}:delay=300ms", file.display());
    let started = std::time::Instant::now();
    phoebe()
        .args(["inject", "-q", "--fault", &rule, "--", "cat"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("No such file or directory"));
    // A lower bound only: the call was held at least that long, however slow the machine.
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}
