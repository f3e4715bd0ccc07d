//! Replay that reproduces (issue 15 item 4): decisions keyed by thread (its lineage) and the thread's own call
//! index fail the same calls whatever the threads' interleaving, with the same seed or with `--replay`.

use std::path::Path;

use crate::common::*;

/// `thread-opens`' four threads each open their own file 50 times; 5 % of the opens fail.
const FAULT: &str = "openat:ENOENT:p=0.05:path=**/file-*";

/// A directory holding the files `thread-opens` opens.
fn files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..4 {
        input_file(&dir, &format!("file-{i}"), "x");
    }
    dir
}

/// Runs `thread-opens` on `dir` under `backend` with `args` (seed or replay, log); returns its exit code and
/// stdout, which name each thread's failed opens.
fn run(backend: Backend, dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = backend
        .inject()
        .arg("-q")
        .args(args)
        .arg("--")
        .arg(testapp("thread-opens"))
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.lines().count() == 4,
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), stdout)
}

fn replays_reproduce_a_multithreaded_run(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = files();
    let log = dir.path().join("run.json");
    let log_arg = log.to_str().unwrap();
    let original = run(
        backend,
        dir.path(),
        &["--seed", "5", "--fault", FAULT, "--log", log_arg],
    );
    assert_eq!(original.0, Some(1), "some open failed: {}", original.1);
    let recorded = load_log(&log);
    assert!(
        recorded
            .injections
            .iter()
            .all(|i| i.thread.as_deref().is_some_and(|t| t.starts_with("0.")) && i.thread_index.is_some()),
        "every injection names its thread and the thread's own index"
    );
    let same = (0..10)
        .filter(|_| run(backend, dir.path(), &["--replay", log_arg]) == original)
        .count();
    assert!(
        same >= 9,
        "{same} of 10 replays on {} reproduced the run",
        backend.name()
    );
}

fn the_same_seed_fails_the_same_calls_of_each_thread(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = files();
    let args = ["--seed", "21", "--fault", FAULT];
    let first = run(backend, dir.path(), &args);
    let same = (0..3)
        .filter(|_| run(backend, dir.path(), &args) == first)
        .count();
    assert_eq!(same, 3, "{}: {}", backend.name(), first.1);
}

#[test]
fn replays_reproduce_a_multithreaded_run_ptrace() {
    replays_reproduce_a_multithreaded_run(Backend::Ptrace);
}

#[test]
fn replays_reproduce_a_multithreaded_run_seccomp() {
    replays_reproduce_a_multithreaded_run(Backend::Seccomp);
}

#[test]
fn the_same_seed_fails_the_same_calls_of_each_thread_ptrace() {
    the_same_seed_fails_the_same_calls_of_each_thread(Backend::Ptrace);
}

#[test]
fn the_same_seed_fails_the_same_calls_of_each_thread_seccomp() {
    the_same_seed_fails_the_same_calls_of_each_thread(Backend::Seccomp);
}

/// The same seed fails the same calls on both backends: they number threads alike.
#[test]
fn ptrace_and_seccomp_key_threads_alike() {
    if !Backend::Ptrace.works() || !Backend::Seccomp.works() {
        return;
    }
    let dir = files();
    let args = ["--seed", "5", "--fault", FAULT];
    assert_eq!(
        run(Backend::Ptrace, dir.path(), &args),
        run(Backend::Seccomp, dir.path(), &args)
    );
}

/// The injections of a log as (thread key, thread index, syscall, errno), sorted: what a replay must repeat.
fn keyed(log: &Path) -> Vec<(String, u64, String, String)> {
    let mut keys: Vec<_> = load_log(log)
        .injections
        .iter()
        .map(|i| {
            (
                i.thread.clone().expect("a thread key"),
                i.thread_index.expect("a thread index"),
                i.syscall.to_string(),
                i.effect.to_string(),
            )
        })
        .collect();
    keys.sort();
    keys
}

/// `forker`'s children (started by posix_spawn and by fork) each open and read a file; a process tree replays
/// the same way: the same calls of the same children fail, and as many children fail.
fn replays_reproduce_a_forking_run(backend: Backend) {
    if !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "in.txt", "data\n");
    let fault = format!("openat,read:EIO:p=0.2:path={}*", input.display());
    let run = |args: &[&str], log: &Path| {
        let out = backend
            .inject()
            .arg("-q")
            .args(args)
            .arg("--log")
            .arg(log)
            .arg("--")
            .arg(testapp("forker"))
            .args(["--children", "4"])
            .arg(&input)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let summary = stdout.lines().last().unwrap_or_default().to_owned();
        assert!(
            summary.starts_with("children=4 ok="),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), summary, keyed(log))
    };
    let log = dir.path().join("run.json");
    let original = run(&["--seed", "2", "--fault", &fault], &log);
    assert!(!original.2.is_empty(), "something was injected");
    let again = dir.path().join("again.json");
    let log_arg = log.to_str().unwrap();
    let same = (0..10)
        .filter(|_| run(&["--replay", log_arg], &again) == original)
        .count();
    assert!(
        same >= 9,
        "{same} of 10 replays on {} reproduced {original:?}",
        backend.name()
    );
}

#[test]
fn replays_reproduce_a_forking_run_ptrace() {
    replays_reproduce_a_forking_run(Backend::Ptrace);
}

#[test]
fn replays_reproduce_a_forking_run_seccomp() {
    replays_reproduce_a_forking_run(Backend::Seccomp);
}
