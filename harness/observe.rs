//! `phoebe observe` on real programs.

use std::{
    io::BufReader,
    process::{Command, Stdio},
    time::Duration,
};

use predicates::prelude::*;

use crate::common::*;

#[test]
fn ls_nonexistent_records_enoent_and_nothing_before_exec() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("obs.json");
    phoebe()
        .args(["observe", "--backend", "ptrace", "-o"])
        .arg(&out)
        .args(["--", "ls", "/nonexistent"])
        .assert()
        .code(2) // ls's own status
        .stderr(predicate::str::contains("ls: cannot access '/nonexistent'"))
        .stderr(predicate::str::contains("ENOENT"))
        .stderr(predicate::str::contains("observation written to"));
    let obs = load_observation(&out);
    assert_eq!(obs.version, phoebe::model::FORMAT_VERSION);
    assert_eq!(obs.command, ["ls", "/nonexistent"]);
    assert_eq!(obs.backend, "ptrace");
    assert_eq!(obs.exit, Some(phoebe::model::TargetExit::Code(2)));
    // ls looks the path up with statx (or an older stat) and gets ENOENT.
    let enoent: u64 = ["statx", "newfstatat", "lstat", "stat"]
        .iter()
        .map(|sc| totals(&obs, sc).1.get("ENOENT").copied().unwrap_or(0))
        .sum();
    assert!(enoent >= 1, "no ENOENT recorded: {:?}", obs.totals());
    // Nothing from phoebe's launcher: its exec, its PR_SET_PDEATHSIG, getppid check and self-SIGSTOP.
    for launcher_call in ["execve", "prctl", "getppid", "tgkill"] {
        assert_eq!(
            totals(&obs, launcher_call).0,
            0,
            "{launcher_call} was recorded before the exec"
        );
    }
}

#[test]
fn threads_are_all_counted() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "in.txt", "hello threads\n");
    let out = dir.path().join("obs.json");
    phoebe()
        .args(["observe", "-q", "-o"])
        .arg(&out)
        .arg("--")
        .arg(testapp("worker-threads"))
        .args(["--threads", "4", "--iterations", "25"])
        .arg(&input)
        .assert()
        .success()
        .stdout("threads=4 opens=100 bytes=1400\n");
    let obs = load_observation(&out);
    let (opens, errors) = totals(&obs, "openat");
    // 100 successful opens of the input and one ENOENT per thread, plus the loader's few.
    assert!(opens >= 104, "openat calls: {opens}");
    assert_eq!(errors.get("ENOENT"), Some(&4), "{errors:?}");
    assert_eq!(totals(&obs, "clone3").0, 4, "one clone3 per thread");
}

#[test]
fn forked_and_spawned_children_are_all_counted() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "in.txt", "hi\n");
    let out = dir.path().join("obs.json");
    phoebe()
        .args(["observe", "-q", "-o"])
        .arg(&out)
        .arg("--")
        .arg(testapp("forker"))
        .args(["--children", "4"])
        .arg(&input)
        .assert()
        .success()
        .stdout(predicate::str::contains("children=4 ok=4"));
    let obs = load_observation(&out);
    // Each child fails 3 opens with ENOENT; 2 children come from posix_spawn (clone3 + vfork), 2 from fork().
    assert_eq!(totals(&obs, "openat").1.get("ENOENT"), Some(&12));
    assert_eq!(
        totals(&obs, "execve").0,
        4,
        "the children's execs (the target's own is not a call of it)"
    );
    assert_eq!(totals(&obs, "clone3").0 + totals(&obs, "clone").0, 4);
    assert_eq!(
        totals(&obs, "wait4").1.len(),
        0,
        "restart codes must not show up as errors"
    );
}

#[test]
fn syscalls_filter_records_only_those() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "in.txt", "x");
    let out = dir.path().join("obs.json");
    phoebe()
        .args(["observe", "-q", "--syscalls", "openat,clone3", "-o"])
        .arg(&out)
        .arg("--")
        .arg(testapp("worker-threads"))
        .args(["--threads", "2", "--iterations", "5"])
        .arg(&input)
        .assert()
        .success();
    let obs = load_observation(&out);
    let names: Vec<String> = obs.totals().keys().map(|s| s.to_string()).collect();
    assert_eq!(names, ["openat", "clone3"]);
    assert_eq!(totals(&obs, "openat").1.get("ENOENT"), Some(&2));
    assert_eq!(obs.syscalls.as_ref().map(Vec::len), Some(2));
}

#[test]
fn intervals_follow_the_clock() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("obs.json");
    phoebe()
        .args(["observe", "-q", "--interval", "100ms", "-o"])
        .arg(&out)
        .arg("--")
        .arg(testapp("sigloop"))
        .args(["--iterations", "10", "--sleep-ms", "60"])
        .assert()
        .success();
    let obs = load_observation(&out);
    assert_eq!(obs.interval_ms, 100);
    // 10 sleeps of 60 ms: at least 600 ms, so at least 6 intervals, one sleep completing in most of them.
    assert!(obs.duration_ms >= 600, "{}", obs.duration_ms);
    assert_eq!(obs.intervals.len() as u64, obs.duration_ms.div_ceil(100).max(1));
    let sleeps: u64 = obs
        .intervals
        .iter()
        .filter_map(|i| {
            i.syscalls
                .get(&phoebe::model::Syscall::parse("clock_nanosleep").unwrap())
        })
        .map(|s| s.calls)
        .sum();
    assert_eq!(sleeps, 10);
}

/// Spawns `phoebe observe` on sigloop and returns it with sigloop's pid (read from its `ready` line).
fn spawn_sigloop(
    out: &std::path::Path,
    iterations: u32,
) -> (std::process::Child, BufReader<std::process::ChildStdout>, i32) {
    let mut child = Command::new(phoebe_path())
        .env_remove("LD_LIBRARY_PATH")
        .args(["observe", "-o"])
        .arg(out)
        .arg("--")
        .arg(testapp("sigloop"))
        .args(["--iterations", &iterations.to_string(), "--sleep-ms", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let pid = ready_pid(&mut stdout);
    (child, stdout, pid)
}

#[test]
fn target_still_gets_its_signals() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (child, mut stdout, pid) = spawn_sigloop(&dir.path().join("obs.json"), 40);
    for _ in 0..3 {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGUSR1).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rest, "sigusr1=3\n");
}

#[test]
fn sigint_to_phoebe_ends_the_target_and_keeps_the_observation() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("obs.json");
    let (child, _stdout, pid) = spawn_sigloop(&path, 100_000);
    std::thread::sleep(Duration::from_millis(200));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let obs = load_observation(&path);
    assert!(obs.interrupted);
    assert_eq!(obs.exit, Some(phoebe::model::TargetExit::Signal(libc::SIGINT)));
    assert!(
        totals(&obs, "clock_nanosleep").0 >= 1,
        "what was collected before ^C is kept"
    );
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err(),
        "the target must not outlive phoebe"
    );
}

#[test]
fn java_app_observed_gives_native_output() {
    if !ptrace_works() {
        return;
    }
    let Some(jar) = java_jar() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = input_file(&dir, "a.txt", "alpha\n");
    let b = input_file(&dir, "b.txt", "beta beta\n");
    let native = std::process::Command::new("java")
        .arg("-jar")
        .arg(&jar)
        .arg(dir.path().join("native-report.txt"))
        .args([&a, &b])
        .output()
        .unwrap();
    assert!(native.status.success());
    let obs_path = dir.path().join("obs.json");
    let observed = phoebe()
        .args(["observe", "-q", "-o"])
        .arg(&obs_path)
        .args(["--", "java", "-jar"])
        .arg(&jar)
        .arg(dir.path().join("observed-report.txt"))
        .args([&a, &b])
        .assert()
        .success();
    assert_eq!(observed.get_output().stdout, native.stdout);
    let obs = load_observation(&obs_path);
    // The JVM starts many threads and fails some calls naturally (it probes for files that are not there).
    assert!(totals(&obs, "clone3").0 + totals(&obs, "clone").0 >= 4);
    assert!(obs.totals().values().map(|s| s.failures()).sum::<u64>() > 0);
}

/// Regression: a Ctrl-C after the target had exited, while a child it left behind still ran, made phoebe exit at
/// once without writing the observation.
#[test]
fn sigint_after_the_target_exited_ends_its_leftovers_and_keeps_the_observation() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("obs.json");
    let path_arg = path.to_str().unwrap();
    let status = sigint_with_a_leftover(&["observe", "-q", "-o", path_arg]);
    assert_eq!(status.code(), Some(0), "the target (sh) itself exited 0");
    let obs = load_observation(&path);
    assert!(obs.interrupted);
    assert_eq!(obs.exit, Some(phoebe::model::TargetExit::Code(0)));
    assert!(
        totals(&obs, "clone").0 + totals(&obs, "clone3").0 + totals(&obs, "fork").0 + totals(&obs, "vfork").0
            >= 1
    );
}

#[test]
fn the_target_dies_with_phoebe() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _stdout, pid) = spawn_sigloop(&dir.path().join("obs.json"), 100_000);
    child.kill().unwrap(); // SIGKILL: phoebe gets no chance to clean up; PTRACE_O_EXITKILL does it
    child.wait().unwrap();
    assert!(gone(pid), "target {pid} still runs after phoebe was killed");
}

/// glibc makes `setgid` in a threaded program signal every thread with SIGRT_1 (33): nix's `waitpid` returned
/// EINVAL on that signal-delivery-stop, and observe failed with "ptrace failed while tracing pid -1: EINVAL".
#[test]
fn regression_setgid_in_a_threaded_program_is_not_einval() {
    if !ptrace_works() {
        return;
    }
    if Command::new("python3").arg("-c").arg("pass").status().is_err() {
        skipped("no python3 on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("obs.json");
    let script = "import threading,os,time; t=threading.Thread(target=time.sleep,args=(0.5,)); t.start(); \
                  os.setgid(os.getgid()); t.join()";
    phoebe()
        .args(["observe", "-q", "-o"])
        .arg(&out)
        .args(["--", "python3", "-c", script])
        .timeout(Duration::from_secs(30))
        .assert()
        .success()
        .stderr("");
    assert_eq!(
        load_observation(&out).exit,
        Some(phoebe::model::TargetExit::Code(0))
    );
}

/// A target killed by SIGRTMIN+2 is reported as signal 36 (exit 164), not as an error or SIGKILL.
#[test]
fn regression_realtime_signal_death_is_signal_36_not_sigkill() {
    if !ptrace_works() {
        return;
    }
    assert_observes_a_realtime_death("ptrace");
}

/// Issue 14 item 4: `phoebe observe` without `--backend` observes with eBPF where it can (in the kernel, without
/// stopping the program), and says nothing about it; `--backend ptrace` still gives ptrace.
#[test]
fn observe_defaults_to_ebpf_where_it_can() {
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("obs.json");
    let run = phoebe()
        .args(["observe", "-o"])
        .arg(&out)
        .args(["--", "ls", "/nonexistent"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert!(!stderr.contains("observing with ptrace"), "{stderr}");
    let obs = load_observation(&out);
    assert_eq!(obs.backend, "ebpf");
    let enoent: u64 = ["statx", "newfstatat", "lstat", "stat"]
        .iter()
        .map(|sc| totals(&obs, sc).1.get("ENOENT").copied().unwrap_or(0))
        .sum();
    assert!(enoent >= 1, "no ENOENT recorded: {:?}", obs.totals());
}
