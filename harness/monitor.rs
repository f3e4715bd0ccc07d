//! `phoebe monitor` attached to a running test app, its JSON lines, its Prometheus endpoint scraped by a real
//! HTTP client and by a real Prometheus (Debian's, which ci/setup installs; the Grafana dashboard in docs/ is
//! checked against it), `phoebe doctor`, and no phoebe program left loaded after phoebe exits or is killed; the
//! ptrace backend (asked for, or the fallback without eBPF), which must leave the process running untouched.

use std::{
    io::{BufRead, BufReader},
    process::{Child, ChildStdout, Command, Stdio},
    time::Duration,
};

use crate::common::*;

/// A child killed and reaped when the test ends, even by a panic: no process outlives a failing test.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Reap {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reap {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Starts sigloop on its own (not under phoebe) and returns it with its pid.
fn running_sigloop(iterations: u32) -> (Reap, i32) {
    let (app, pid, _) = sigloop_with(iterations, 5, None);
    (app, pid)
}

/// sigloop sleeping `sleep_ms` per iteration, as user `uid` if given; also returns its stdout after the ready line.
fn sigloop_with(iterations: u32, sleep_ms: u32, uid: Option<u32>) -> (Reap, i32, BufReader<ChildStdout>) {
    sigloop_with_args(iterations, sleep_ms, uid, &[])
}

fn sigloop_with_args(
    iterations: u32,
    sleep_ms: u32,
    uid: Option<u32>,
    more: &[&str],
) -> (Reap, i32, BufReader<ChildStdout>) {
    let mut cmd = Command::new(testapp("sigloop"));
    cmd.args(more);
    if let Some(uid) = uid {
        std::os::unix::process::CommandExt::uid(&mut cmd, uid);
        std::os::unix::process::CommandExt::gid(&mut cmd, uid);
    }
    let mut child = cmd
        .env_remove("LD_LIBRARY_PATH")
        .stderr(Stdio::null())
        .args([
            "--iterations",
            &iterations.to_string(),
            "--sleep-ms",
            &sleep_ms.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let pid = line
        .trim()
        .strip_prefix("ready pid=")
        .expect("ready line")
        .parse()
        .unwrap();
    (Reap(child), pid, stdout)
}

fn spawn_monitor(args: &[&str]) -> (Reap, BufReader<ChildStdout>) {
    let mut child = Command::new(phoebe_path())
        .env_remove("LD_LIBRARY_PATH")
        .arg("monitor")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (Reap(child), stdout)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn monitor_json_lines_of_a_running_process() {
    let Some(_guard) = ebpf_guard() else { return };
    let (mut app, pid) = running_sigloop(200_000);
    let (mut monitor, mut stdout) =
        spawn_monitor(&["--pid", &pid.to_string(), "--interval", "200ms", "--json"]);
    let mut seen = 0u64;
    let mut lines = 0;
    let mut line = String::new();
    while lines < 4 {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "monitor ended early");
        let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        assert_eq!(value["version"], phoebe::model::FORMAT_VERSION);
        assert_eq!(value["interval"], lines);
        assert_eq!(value["interval_ms"], 200);
        for process in value["processes"].as_array().expect("processes") {
            assert_eq!(process["pid"], pid, "only the watched process: {line}");
            assert_eq!(process["comm"], "sigloop");
            seen += process["syscalls"]["clock_nanosleep"]["calls"]
                .as_u64()
                .unwrap_or(0);
            // No --latency: no latency field at all (a 0 would read as a measurement).
            for (name, stats) in process["syscalls"].as_object().unwrap() {
                assert!(
                    stats.get("latency_ns_sum").is_none() && stats.get("latency_ns_max").is_none(),
                    "{name}: latency without --latency: {line}"
                );
            }
        }
        lines += 1;
    }
    monitor.kill().unwrap();
    monitor.wait().unwrap();
    assert_no_phoebe_program_left("after phoebe monitor was killed with SIGKILL");
    assert!(
        app.try_wait().unwrap().is_none(),
        "the monitored process must outlive the monitor"
    );
    app.kill().unwrap();
    app.wait().unwrap();
    // 5 ms sleeps: about 40 per interval; some at least.
    assert!(seen >= 10, "only {seen} sleeps seen in 4 intervals");
}

#[test]
fn monitor_ends_with_the_process_and_follows_its_children() {
    let Some(_guard) = ebpf_guard() else { return };
    ends_with_the_process_and_follows_its_children(&[]);
}

#[test]
fn monitor_ptrace_ends_with_the_process_and_follows_its_children() {
    if !ptrace_works() || !attach_to_non_child_works() {
        return;
    }
    ends_with_the_process_and_follows_its_children(&["--backend", "ptrace"]);
}

/// A shell that waits, then execs forker, whose two children fail three opens each: both children are followed
/// and the monitor ends by itself when the tree is gone.
fn ends_with_the_process_and_follows_its_children(backend: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "in.txt", "x\n");
    // A shell that waits, then starts forker: its children are created after the monitor attached.
    let mut app = Reap(
        Command::new("sh")
            .env_remove("LD_LIBRARY_PATH")
            .arg("-c")
            .arg(format!(
                "read _; exec {} --children 2 {}",
                testapp("forker").display(),
                input.display()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = app.id();
    let pid_of_root = pid;
    let pid_arg = pid.to_string();
    let mut args = vec!["--pid", &pid_arg, "--interval", "100ms", "--json"];
    args.extend_from_slice(backend);
    let (mut monitor, stdout) = spawn_monitor(&args);
    std::thread::sleep(Duration::from_millis(500));
    drop(app.stdin.take()); // `read` sees EOF: forker runs
    app.wait().unwrap();
    // ENOENT per process: each child fails 3 opens of a missing file (its loader may fail more, depending on
    // the environment, so the children are told apart by pid rather than by an exact total).
    let mut enoent: std::collections::BTreeMap<u64, u64> = Default::default();
    let mut seen = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        seen.push_str(&line);
        seen.push('\n');
        for process in value["processes"].as_array().unwrap() {
            let n = process["syscalls"]["openat"]["errors"]["ENOENT"]
                .as_u64()
                .unwrap_or(0);
            *enoent.entry(process["pid"].as_u64().unwrap()).or_default() += n;
        }
    }
    let status = monitor.wait().unwrap();
    assert!(status.success(), "monitor ends by itself when the tree is gone");
    let children = enoent
        .iter()
        .filter(|(pid, n)| **pid != u64::from(pid_of_root) && **n >= 3)
        .count();
    assert_eq!(
        children, 2,
        "both children, started after attaching, are followed:\n{seen}"
    );
    assert_no_phoebe_program_left("after phoebe monitor ended normally");
}

#[test]
fn prometheus_endpoint_serves_cumulative_counters() {
    let Some(_guard) = ebpf_guard() else { return };
    let (mut app, pid) = running_sigloop(200_000);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let (mut monitor, _stdout) = spawn_monitor(&[
        "--pid",
        &pid.to_string(),
        "--interval",
        "100ms",
        "--prometheus",
        &addr,
        "--per-pid",
    ]);
    let url = format!("http://{addr}/metrics");
    let sample = format!(
        "phoebe_syscalls_total{{pid=\"{pid}\",comm=\"sigloop\",syscall=\"clock_nanosleep\",errno=\"\"}} "
    );
    let scrape = || -> Option<u64> {
        let mut response = ureq::get(&url).call().ok()?;
        assert!(
            response
                .headers()
                .get("content-type")
                .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/plain; version=0.0.4")),
        );
        let body = response.body_mut().read_to_string().ok()?;
        assert!(body.contains("# TYPE phoebe_syscalls_total counter"), "{body}");
        body.lines()
            .find_map(|l| l.strip_prefix(&sample))
            .and_then(|v| v.parse().ok())
    };
    let mut first = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        first = scrape();
        if first.is_some_and(|n| n > 0) {
            break;
        }
    }
    let first = first.expect("the counter shows up");
    std::thread::sleep(Duration::from_millis(400));
    let second = scrape().expect("still there");
    assert!(
        second > first,
        "a cumulative counter grows: {first} then {second}"
    );
    monitor.kill().unwrap();
    monitor.wait().unwrap();
    app.kill().unwrap();
    app.wait().unwrap();
    assert_no_phoebe_program_left("after phoebe monitor --prometheus was killed");
}

#[test]
fn observe_killed_leaves_no_program_loaded() {
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(phoebe_path())
        .env_remove("LD_LIBRARY_PATH")
        .args(["observe", "-q", "--backend", "ebpf", "--latency", "-o"])
        .arg(dir.path().join("obs.json"))
        .arg("--")
        .arg(testapp("sigloop"))
        .args(["--iterations", "100000", "--sleep-ms", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        !phoebe_programs_loaded().is_empty(),
        "the observer's programs are loaded while it runs"
    );
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    assert_no_phoebe_program_left("after phoebe observe was killed with SIGKILL");
}

#[test]
fn monitor_of_a_missing_pid_is_a_usage_error() {
    phoebe()
        .args(["monitor", "--pid", "999999999"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no process with pid 999999999"));
}

#[test]
fn doctor_tells_each_backend_and_mode() {
    let Some(_guard) = ebpf_guard() else {
        // doctor itself runs anywhere; only the eBPF verdicts need a privileged machine to be checked here.
        return;
    };
    let out = phoebe().args(["doctor", "--json"]).assert().success();
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let verdict = |backend: &str, mode: &str| {
        report["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["backend"] == backend && v["mode"] == mode)
            .unwrap_or_else(|| panic!("no verdict for {backend} {mode}"))
            .clone()
    };
    for backend in ["ptrace", "seccomp", "ebpf"] {
        for mode in ["observe", "inject"] {
            let v = verdict(backend, mode);
            assert!(!v["reason"].as_str().unwrap().is_empty());
            if v["available"] == false {
                assert!(v["hint"].is_string(), "{backend} {mode} says no without a hint");
            }
        }
    }
    assert_eq!(
        verdict("ebpf", "observe")["available"],
        true,
        "observe --backend ebpf works here"
    );
    // What only a call's entry tells: this kernel has the syscalls' tracepoints (tracefs mounted privately where
    // the machine has not).
    let observe = verdict("ebpf", "observe");
    assert!(
        observe["reason"]
            .as_str()
            .unwrap()
            .contains("attached a program on syscalls:sys_enter_futex"),
        "{observe}"
    );
    assert_eq!(verdict("seccomp", "observe")["available"], false);
    let inject = verdict("ebpf", "inject");
    // Whether doctor agrees with `inject --backend ebpf` is checked in harness/ebpf.rs (and in the VM guests).
    if inject["available"] == false && report["facts"]["kprobes"] == false {
        assert!(
            inject["reason"].as_str().unwrap().contains("no kprobes"),
            "{inject}"
        );
    }
    phoebe()
        .arg("doctor")
        .assert()
        .success()
        .stdout(predicates::str::contains("ebpf     observe  available"));
    assert_no_phoebe_program_left("after phoebe doctor");
}

/// The user the tests run phoebe (and its target) as when they need an unprivileged one: `nobody`.
const NOBODY: u32 = 65534;

/// Our effective uid (the owner of /proc/self), without an unsafe call.
fn euid() -> u32 {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap())
}

/// Can a process attach to one that is not its child? Not under Yama's ptrace_scope ≥ 1 without CAP_SYS_PTRACE.
fn attach_to_non_child_works() -> bool {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    if !matches!(scope.trim(), "" | "0") && euid() != 0 {
        skipped(&format!(
            "kernel.yama.ptrace_scope is {} and we are not root: no attaching to a running process",
            scope.trim()
        ));
        return false;
    }
    true
}

/// The sums of one syscall's calls over `--json` lines, checking every process is `pid`.
fn calls_in_lines(stdout: &str, pid: i32, syscall: &str) -> (usize, u64) {
    let mut lines = 0;
    let mut calls = 0;
    for line in stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(value["version"], phoebe::model::FORMAT_VERSION);
        for process in value["processes"].as_array().expect("processes") {
            assert_eq!(process["pid"], pid, "only the watched process: {line}");
            calls += process["syscalls"][syscall]["calls"].as_u64().unwrap_or(0);
        }
        lines += 1;
    }
    (lines, calls)
}

/// After phoebe detached: no tracer, and the process still runs, counts a SIGUSR1 and ends as usual.
fn assert_untouched(mut app: Reap, pid: i32, mut stdout: BufReader<ChildStdout>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.lines().any(|l| l == "TracerPid:\t0"),
        "phoebe detached:\n{status}"
    );
    assert!(
        app.try_wait().unwrap().is_none(),
        "the monitored process outlives the monitor"
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGUSR1).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let exit = app.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(rest, "sigusr1=1\n", "it still handles signals after the detach");
}

#[test]
fn monitor_ptrace_detaches_and_the_process_lives_on() {
    if !ptrace_works() || !attach_to_non_child_works() {
        return;
    }
    // 300 × 20 ms: about 6 s, well past the monitor's second.
    let (app, pid, stdout) = sigloop_with(300, 20, None);
    let out = phoebe()
        .args(["monitor", "--pid", &pid.to_string(), "--backend", "ptrace"])
        .args(["--duration", "2s", "--interval", "250ms", "--json"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success();
    let json = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let (lines, sleeps) = calls_in_lines(&json, pid, "clock_nanosleep");
    // --duration counts from the start, attaching included, which a busy machine (load 17 on 2 cores) made take
    // 1.5 s: 8 lines when quiet, 2 then. What matters here is a line per interval and the detach below.
    assert!(lines >= 2, "one line per 250 ms interval for 2 s:\n{json}");
    // 20 ms sleeps: about 100 in two seconds; some at least.
    assert!(sleeps >= 5, "only {sleeps} sleeps seen:\n{json}");
    assert!(
        out.get_output().stderr.is_empty(),
        "no notice when ptrace is asked for: {}",
        String::from_utf8_lossy(&out.get_output().stderr)
    );
    assert_untouched(app, pid, stdout);
}

/// nix's `waitpid` cannot decode a stop by a real-time signal: the tracer got EINVAL (the status consumed, the
/// signal lost), logged "waitpid failed; detaching" and let go of the process in the middle of the run.
#[test]
fn regression_monitor_ptrace_survives_realtime_signals() {
    if !ptrace_works() || !attach_to_non_child_works() {
        return;
    }
    const SIGNALS: usize = 40;
    let (app, pid, stdout) = sigloop_with_args(300, 20, None, &["--count-rt"]);
    let mut monitor = Command::new(phoebe_path())
        .env_remove("LD_LIBRARY_PATH")
        .args(["monitor", "--pid", &pid.to_string(), "--backend", "ptrace"])
        .args(["--duration", "2s", "--interval", "250ms", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(monitor.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert!(
        first.starts_with('{'),
        "a first JSON line once attached: {first:?}"
    );
    let rt = libc::SIGRTMIN() + 2;
    for _ in 0..SIGNALS {
        // SAFETY: kill takes no pointers; the pid is our own sigloop, which handles this signal.
        assert_eq!(unsafe { libc::kill(pid, rt) }, 0);
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut lines, &mut rest).unwrap();
    let out = monitor.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("waitpid failed"), "{stderr}");
    assert!(
        rest.lines().count() >= 5,
        "the monitor kept watching for its 2 s:\n{first}{rest}"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.lines().any(|l| l == "TracerPid:\t0"),
        "detached:\n{status}"
    );
    let mut app = app;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGUSR1).unwrap();
    let mut stdout = stdout;
    let mut counts = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut counts).unwrap();
    assert!(app.wait().unwrap().success());
    assert_eq!(
        counts,
        format!("sigrt={SIGNALS}\nsigusr1=1\n"),
        "every real-time signal reached the process, none was swallowed"
    );
}

#[test]
fn monitor_falls_back_to_ptrace_where_ebpf_is_unavailable() {
    if euid() != 0 {
        skipped("needs root to run phoebe as an unprivileged user (no eBPF) against a process of that user");
        return;
    }
    if !ptrace_works() || !attach_to_non_child_works() {
        return;
    }
    let (app, pid, stdout) = sigloop_with(300, 20, Some(NOBODY));
    let mut cmd = Command::new(phoebe_path());
    std::os::unix::process::CommandExt::uid(&mut cmd, NOBODY);
    std::os::unix::process::CommandExt::gid(&mut cmd, NOBODY);
    cmd.env_remove("LD_LIBRARY_PATH")
        .env_remove("PHOEBE_LOG")
        .args(["monitor", "--pid", &pid.to_string()])
        .args(["--duration", "2s", "--interval", "250ms", "--json"]);
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            skipped(&format!("user {NOBODY} cannot run phoebe from here: {e}"));
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one notice line: {stderr}");
    assert!(
        stderr.starts_with("phoebe: eBPF is unavailable (")
            && stderr.contains("monitoring with ptrace instead"),
        "{stderr}"
    );
    let (_, sleeps) = calls_in_lines(&String::from_utf8_lossy(&out.stdout), pid, "clock_nanosleep");
    assert!(sleeps >= 10, "only {sleeps} sleeps seen");
    assert_untouched(app, pid, stdout);
}

#[test]
fn monitor_ptrace_of_another_users_process_is_refused() {
    if !ptrace_works() {
        return;
    }
    let euid = euid();
    // Root can attach to anyone: it runs phoebe as nobody against its own sigloop; others try pid 1.
    let (mut cmd, target, _app) = if euid == 0 {
        let (app, pid, _) = sigloop_with(300, 20, None);
        let mut cmd = Command::new(phoebe_path());
        std::os::unix::process::CommandExt::uid(&mut cmd, NOBODY);
        std::os::unix::process::CommandExt::gid(&mut cmd, NOBODY);
        (cmd, pid, Some(app))
    } else {
        let owner = std::fs::metadata("/proc/1").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
        if owner.is_ok_and(|uid| uid == euid) {
            skipped("pid 1 is ours (a user namespace?): no other user's process to try");
            return;
        }
        (Command::new(phoebe_path()), 1, None)
    };
    cmd.env_remove("PHOEBE_LOG")
        .args(["monitor", "--pid", &target.to_string(), "--backend", "ptrace"])
        .args(["--duration", "1s"]);
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            skipped(&format!("user {NOBODY} cannot run phoebe from here: {e}"));
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("phoebe: cannot attach to pid {target} with ptrace: EPERM: Operation not permitted"),
        "one sentence: {stderr}"
    );
    assert!(
        stderr.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn monitor_ptrace_of_a_missing_pid_is_a_usage_error() {
    phoebe()
        .args(["monitor", "--pid", "999999999", "--backend", "ptrace"])
        .assert()
        .code(2)
        .stderr("phoebe: no process with pid 999999999\n");
}

#[test]
fn monitor_name_without_ebpf_says_it_needs_ebpf() {
    phoebe()
        .args(["monitor", "--name", "sigloop", "--backend", "ptrace"])
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with(
            "phoebe: --name sigloop needs eBPF (--backend ptrace attaches to one --pid only)\nhint: watch one process with --pid PID",
        ));
}

#[test]
fn monitor_ptrace_stopped_by_sigterm_detaches() {
    if !ptrace_works() || !attach_to_non_child_works() {
        return;
    }
    let (app, pid, stdout) = sigloop_with(300, 20, None);
    let (mut monitor, mut lines) = spawn_monitor(&[
        "--pid",
        &pid.to_string(),
        "--backend",
        "ptrace",
        "--interval",
        "200ms",
        "--json",
    ]);
    let mut line = String::new();
    assert!(lines.read_line(&mut line).unwrap() > 0, "a first interval");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = monitor.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    assert_untouched(app, pid, stdout);
}

/// Debian's package (ci/setup installs it).
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A Prometheus server of our own: a temporary configuration that scrapes `target` every second, its storage in a
/// temporary directory, its API on a free port; killed (and its files removed) when the test ends.
struct Prometheus {
    _server: Reap,
    api: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// `None` (and a counted skip) where Prometheus is not installed.
    fn scraping(target: &str) -> Option<Prometheus> {
        if !std::path::Path::new(PROMETHEUS).is_file() {
            skipped("no prometheus (ci/setup installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: phoebe\n    \
                 static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let listen = format!("127.0.0.1:{}", free_port());
        let server = Reap(
            Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={listen}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let api = format!("http://{listen}");
        let ready = format!("{api}/-/ready");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while ureq::get(&ready).call().is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "prometheus not ready after 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Prometheus {
            _server: server,
            api,
            _dir: dir,
        })
    }

    /// A GET of the HTTP API, its `data` (the API's `status` must be `success`).
    fn api(&self, path: &str, params: &[(&str, &str)]) -> serde_json::Value {
        let mut request = ureq::get(format!("{}{path}", self.api));
        for (k, v) in params {
            request = request.query(*k, *v);
        }
        let body = match request.call() {
            Ok(mut response) => response.body_mut().read_to_string().unwrap(),
            Err(e) => panic!("{path} {params:?}: {e}"),
        };
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["status"], "success", "{path} {params:?}: {body}");
        value["data"].clone()
    }

    /// An instant query's samples: (labels, value).
    fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let data = self.api("/api/v1/query", &[("query", promql)]);
        let samples = match data["resultType"].as_str() {
            Some("vector") => data["result"].as_array().unwrap().clone(),
            Some("scalar") => vec![serde_json::json!({"metric": {}, "value": data["result"]})],
            other => panic!("{promql}: result type {other:?}"),
        };
        samples
            .iter()
            .map(|s| {
                let value = s["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                (s["metric"].clone(), value)
            })
            .collect()
    }

    /// The one value of a query that must give exactly one sample.
    fn value(&self, promql: &str) -> f64 {
        let samples = self.query(promql);
        assert_eq!(samples.len(), 1, "{promql}: {samples:?}");
        samples[0].1
    }
}

/// The test app `paced` at `rate` ticks per second (each: one openat failing with ENOENT and one nanosleep of
/// `sleep_us`), started on its own (not under phoebe); its pid.
fn running_paced(rate: u32, sleep_us: u32) -> (Reap, i32) {
    let mut child = Command::new(testapp("paced"))
        .env_remove("LD_LIBRARY_PATH")
        .args(["--rate", &rate.to_string(), "--sleep-us", &sleep_us.to_string()])
        .args(["--seconds", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid = line
        .trim()
        .strip_prefix("ready pid=")
        .expect("ready line")
        .parse()
        .unwrap();
    (Reap(child), pid)
}

/// The dashboard's PromQL with Grafana's variables replaced as Grafana would for this test's data: one
/// command, every monitor, the windows short enough for a few seconds of samples.
fn grafana_to_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "4s")
        .replace("$__range", "1m")
        .replace("$comm", "paced")
        .replace("$instance", ".*")
}

/// A real Prometheus scrapes `phoebe monitor --latency` of `paced` (100 failing opens per second, 3 ms sleeps)
/// every second, negotiating OpenMetrics; its `rate()` of the error counter and `histogram_quantile()` of the
/// sleep's latency must match what the app did, and every query of the Grafana dashboard in docs/ must return
/// data from it (its variables' `label_values` too).
#[test]
fn prometheus_scrapes_the_monitor_and_the_dashboard_queries_have_data() {
    let Some(_guard) = ebpf_guard() else { return };
    let (rate, sleep_us) = (100u32, 3000u32);
    let (_app, pid) = running_paced(rate, sleep_us);
    let addr = format!("127.0.0.1:{}", free_port());
    let (_monitor, _stdout) = spawn_monitor(&[
        "--pid",
        &pid.to_string(),
        "--interval",
        "200ms",
        "--latency",
        "--prometheus",
        &addr,
        "--quiet",
    ]);
    let Some(prometheus) = Prometheus::scraping(&addr) else {
        return;
    };
    let errors = "phoebe_syscalls_total{comm=\"paced\",syscall=\"openat\",errno=\"ENOENT\"}";
    // Enough samples for a 4 s rate: 6 scrapes that saw the counter.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = prometheus.query(&format!("count_over_time({errors}[1m])"));
        if seen.first().is_some_and(|(_, n)| *n >= 6.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus did not scrape the monitor 6 times in 30 s: {seen:?}; targets: {}",
            prometheus.api("/api/v1/targets", &[])
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    assert_eq!(prometheus.value("up{job=\"phoebe\"}"), 1.0);
    let info = prometheus.query("phoebe_build_info");
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].0["backend"], "ebpf");
    assert_eq!(info[0].0["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        prometheus.query("phoebe_syscalls_total{pid!=\"\"}").is_empty(),
        "no pid label without --per-pid"
    );
    // Prometheus asks for OpenMetrics first: the families it recorded carry what only that format says (an
    // info type, a unit).
    let metadata = prometheus.api(
        "/api/v1/targets/metadata",
        &[("match_target", "{job=\"phoebe\"}")],
    );
    let family = |name: &str| {
        metadata
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == name)
            .unwrap_or_else(|| panic!("no metadata for {name}: {metadata}"))
            .clone()
    };
    assert_eq!(family("phoebe_build")["type"], "info", "{metadata}");
    assert_eq!(family("phoebe_syscalls")["type"], "counter");
    let duration = family("phoebe_syscall_duration_seconds");
    assert_eq!(
        (&duration["type"], &duration["unit"]),
        (&"histogram".into(), &"seconds".into())
    );

    // The error rate: `rate` failing opens per second (the app paces them on absolute deadlines; the counter is
    // published every 200 ms, so a 4 s window is off by a few percent at most).
    // On a machine busy enough to delay a publication or a scrape, one 4 s window can miss part of a second's
    // calls: a few windows, 500 ms apart, and one of them must be right (a wrong counter is wrong in all).
    let mut measured = Vec::new();
    for _ in 0..10 {
        let m = prometheus.value(&format!("rate({errors}[4s])"));
        measured.push(m);
        if (0.8 * rate as f64..=1.2 * rate as f64).contains(&m) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let last = *measured.last().unwrap();
    assert!(
        (0.8 * rate as f64..=1.2 * rate as f64).contains(&last),
        "rate() of the ENOENT counter is {measured:?}/s; the app fails {rate} opens per second"
    );
    // The sleep's latency: at least what was asked (nanosleep never returns early), so its median lands in the
    // bucket above 3 ms, (2.5 ms, 5 ms], or a later one on a very busy machine; never below.
    let sleeps = "phoebe_syscall_duration_seconds_bucket{comm=\"paced\",syscall=\"nanosleep\"}";
    let p50 = prometheus.value(&format!(
        "histogram_quantile(0.5, sum by (le) (rate({sleeps}[4s])))"
    ));
    assert!(
        (0.0025..=0.025).contains(&p50),
        "median nanosleep latency {p50} s for sleeps of {sleep_us} µs"
    );
    let mean = prometheus.value(
        "sum(rate(phoebe_syscall_duration_seconds_sum{comm=\"paced\",syscall=\"nanosleep\"}[4s])) / \
         sum(rate(phoebe_syscall_duration_seconds_count{comm=\"paced\",syscall=\"nanosleep\"}[4s]))",
    );
    assert!(
        mean >= f64::from(sleep_us) / 1e6 && mean < 0.025,
        "mean nanosleep latency {mean} s for sleeps of {sleep_us} µs"
    );

    // The dashboard: every panel's query, then every variable's label_values().
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana/phoebe.json")).unwrap(),
    )
    .unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a PromQL target");
            let samples = prometheus.query(&grafana_to_promql(expr));
            assert!(
                samples.iter().any(|(_, v)| v.is_finite()),
                "panel {:?}: no data for {expr}: {samples:?}",
                panel["title"]
            );
            queries += 1;
        }
    }
    assert!(queries >= 7, "only {queries} queries in the dashboard");
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let Some(definition) = variable["definition"].as_str() else {
            continue;
        };
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or_else(|| panic!("not a label_values() query: {definition}"));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let values = prometheus.api(
            &format!("/api/v1/label/{}/values", label.trim()),
            &[("match[]", &grafana_to_promql(selector.trim()))],
        );
        assert!(
            !values.as_array().unwrap().is_empty(),
            "variable {}: no values for {definition}",
            variable["name"]
        );
    }
    let comms = prometheus.api(
        "/api/v1/label/comm/values",
        &[("match[]", "phoebe_syscalls_total")],
    );
    assert_eq!(comms, serde_json::json!(["paced"]));
}

/// docs/grafana/phoebe.json can be provisioned as a file: a fixed uid, no import-time `__inputs`, no numeric
/// dashboard id, every panel and query on the `datasource` variable (no data source uid of ours baked in), unique
/// panel ids, and every panel placed.
#[test]
fn grafana_dashboard_is_provisioning_ready() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana/phoebe.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "phoebe-monitor");
    assert!(dashboard.get("__inputs").is_none() && dashboard.get("id").is_none());
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus")
    );
    let on_variable = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let mut ids = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "panel id twice: {panel}"
        );
        for key in ["x", "y", "w", "h"] {
            assert!(
                panel["gridPos"][key].is_u64(),
                "{}: no gridPos.{key}",
                panel["title"]
            );
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"], on_variable, "{}", panel["title"]);
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(target["datasource"], on_variable, "{}", panel["title"]);
        }
    }
    let titles: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for wanted in [
        "Error rate by syscall and errno",
        "Calls per second by syscall",
        "Latency p50 by syscall",
        "Latency p99 by syscall",
        "Top failing syscalls",
    ] {
        assert!(titles.contains(&wanted), "no panel {wanted:?}: {titles:?}");
    }
}

/// Debian's package (ci/setup installs it).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The live page at `/` of the monitor's endpoint in headless Chromium: it polls `/intervals.json` and must have
/// rendered at least two updates (virtual time lets its timers run without waiting in real time; each poll is a
/// real request), with the table of the last interval, the calls chart and the failing syscall's chart, and log
/// nothing to the console (script errors, CSP violations and failed loads all would; harness/report_html.rs
/// proves on this Chromium that they are seen). `PHOEBE_MONITOR_PAGE_OUT=DIR` copies its screenshot there
/// (`ci/screenshots` does, for the README).
#[test]
fn live_page_updates_with_its_charts_and_no_console_errors() {
    let Some(_guard) = ebpf_guard() else { return };
    if !std::path::Path::new(CHROMIUM).is_file() {
        skipped("no chromium (ci/setup installs it)");
        return;
    }
    let (_app, pid) = running_paced(100, 1000);
    let addr = format!("127.0.0.1:{}", free_port());
    let (_monitor, _stdout) = spawn_monitor(&[
        "--pid",
        &pid.to_string(),
        "--interval",
        "250ms",
        "--prometheus",
        &addr,
        "--quiet",
    ]);
    // A few intervals to draw.
    let feed = format!("http://{addr}/intervals.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let intervals = ureq::get(&feed)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|v| v["intervals"].as_array().map(Vec::len))
            .unwrap_or(0);
        if intervals >= 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no 4 intervals in 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    let screenshot = dir.path().join("monitor-live.png");
    let (out, err) = (dir.path().join("chromium.out"), dir.path().join("chromium.err"));
    let (width, height) = (1280u32, 1000u32);
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        // Root in a container: no user namespaces for the sandbox, no GPU.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        // 3 s of the page's own time: its polls (every 250 ms here) run one after the other.
        "--virtual-time-budget=3000",
        "--dump-dom",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--window-size={width},{height}"))
    .arg(format!("--screenshot={}", screenshot.display()))
    .arg(format!("http://{addr}/"))
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(&out).unwrap())
    .stderr(std::fs::File::create(&err).unwrap());
    // Its own process group, so that a timeout kills the renderer and GPU processes too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut chromium = cmd.spawn().expect("start chromium");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = chromium.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(chromium.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = chromium.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    let console: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(
        console.is_empty(),
        "the page logged to the console:\n{}",
        console.join("\n")
    );

    let dom = std::fs::read_to_string(&out).unwrap();
    // What the script built, not the script's own text.
    let built = &dom[..dom.find("<script>").expect("the page's script in the DOM")];
    let updates: u32 = built
        .split("<body data-updates=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .expect("data-updates on the body");
    assert!(updates >= 2, "only {updates} updates:\n{built}");
    assert!(
        built.contains("class=\"\">updated "),
        "the status line says it updated:\n{built}"
    );
    for chart in ["chart-calls", "chart-errors-openat"] {
        assert!(
            built.contains(&format!("<svg id=\"{chart}\" class=\"chart\"")),
            "no {chart}:\n{built}"
        );
    }
    // Each line of the charts has a point per interval (at least the 4 waited for).
    let enoent = built
        .split("data-name=\"ENOENT\"")
        .nth(1)
        .and_then(|rest| rest.split("points=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("the ENOENT line of openat's chart");
    assert!(enoent.split(' ').count() >= 4, "{enoent}");
    assert!(
        built.contains("<tr class=\"failing\"><td><code>openat</code></td>") && built.contains("ENOENT×"),
        "the table shows openat failing with ENOENT:\n{built}"
    );

    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "a real screenshot"
    );
    if let Some(to) = std::env::var_os("PHOEBE_MONITOR_PAGE_OUT").map(std::path::PathBuf::from) {
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(&screenshot, to.join("monitor-live.png")).unwrap();
    }
}

/// The tgids that have counters in phoebe's kernel counter map now (every loaded map of that name).
fn tgids_in_counter_maps() -> std::collections::BTreeSet<u32> {
    let mut out = std::collections::BTreeSet::new();
    for info in aya::maps::loaded_maps().filter_map(Result::ok) {
        if info.name_as_str() != Some(phoebe_common::maps::COUNTS) {
            continue;
        }
        let Ok(data) = aya::maps::MapData::from_id(info.id()) else {
            continue;
        };
        let Ok(counts) =
            aya::maps::PerCpuHashMap::<_, phoebe_common::CountKey, phoebe_common::CountValue>::try_from(
                aya::maps::Map::PerCpuHashMap(data),
            )
        else {
            continue;
        };
        out.extend(counts.keys().filter_map(Result::ok).map(|k| k.tgid));
    }
    out
}

/// `--name` as a service uses it: processes of that name come and go. Each run of `paced` is picked up, its
/// failures add to one `comm="paced"` series that only grows, and once a run has ended its entries leave the
/// kernel's counter map (the monitor keeps its totals), so the map does not fill up over restarts.
#[test]
fn monitor_by_name_keeps_counting_processes_that_come_and_go() {
    let Some(_guard) = ebpf_guard() else { return };
    let addr = format!("127.0.0.1:{}", free_port());
    let (_monitor, _stdout) = spawn_monitor(&[
        "--name",
        "paced",
        "--interval",
        "100ms",
        "--prometheus",
        &addr,
        "--quiet",
    ]);
    let url = format!("http://{addr}/metrics");
    let series = "phoebe_syscalls_total{comm=\"paced\",syscall=\"openat\",errno=\"ENOENT\"} ";
    let scrape = || -> Option<u64> {
        let body = ureq::get(&url).call().ok()?.body_mut().read_to_string().ok()?;
        Some(
            body.lines()
                .find_map(|l| l.strip_prefix(series))
                .map_or(0, |v| v.parse().unwrap()),
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while scrape().is_none() {
        assert!(std::time::Instant::now() < deadline, "no endpoint after 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mut failed, mut last) = (0u64, 0u64);
    for run in 1..=3 {
        let out = Command::new(testapp("paced"))
            .env_remove("LD_LIBRARY_PATH")
            .args(["--rate", "200", "--sleep-us", "100", "--seconds", "1"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).unwrap();
        let pid: u32 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("ready pid="))
            .unwrap()
            .parse()
            .unwrap();
        failed += stdout
            .lines()
            .find_map(|l| l.split_once(" enoent=").map(|(_, n)| n.parse::<u64>().unwrap()))
            .unwrap();
        // Within a few intervals the run's end is seen, its last counts read and its map entries deleted.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let now = scrape().expect("the endpoint answers");
            assert!(
                now >= last,
                "run {run}: the counter went down from {last} to {now}"
            );
            let left = tgids_in_counter_maps();
            if now > last && !left.contains(&pid) {
                last = now;
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run {run}: after 5 s the counter is {now} (was {last}) and pid {pid}, ended, still has \
                 counters in the kernel map: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Each run is found at the monitor's next scan (every 100 ms): its first opens are not seen.
    assert!(
        last <= failed && last as f64 >= 0.5 * failed as f64,
        "{last} failures counted; the runs failed {failed} opens"
    );
}

/// With ptrace (no eBPF needed), `--latency` histograms come from the tracer's own timing: sigloop's 5 ms sleeps
/// all land above 5 ms, and the info metric names the backend.
#[test]
fn monitor_ptrace_serves_latency_histograms() {
    if !ptrace_works() || !attach_to_non_child_works() {
        return;
    }
    let (_app, pid, _stdout) = sigloop_with(400, 5, None);
    let addr = format!("127.0.0.1:{}", free_port());
    let (_monitor, _out) = spawn_monitor(&[
        "--pid",
        &pid.to_string(),
        "--backend",
        "ptrace",
        "--interval",
        "100ms",
        "--latency",
        "--prometheus",
        &addr,
        "--quiet",
    ]);
    let url = format!("http://{addr}/metrics");
    let series = "comm=\"sigloop\",syscall=\"clock_nanosleep\",errno=\"\"";
    let value = |body: &str, prefix: &str| -> Option<f64> {
        body.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
    };
    let count_prefix = format!("phoebe_syscall_duration_seconds_count{{{series}}} ");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = ureq::get(&url)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        if value(&body, &count_prefix).is_some_and(|n| n >= 20.0) {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no 20 timed sleeps in 10 s:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.contains("backend=\"ptrace\""), "{body}");
    let count = value(&body, &count_prefix).unwrap();
    let bucket = |le: &str| {
        value(
            &body,
            &format!("phoebe_syscall_duration_seconds_bucket{{{series},le=\"{le}\"}} "),
        )
        .unwrap_or_else(|| panic!("no bucket {le}:\n{body}"))
    };
    assert_eq!(bucket("0.005"), 0.0, "no 5 ms sleep took less than 5 ms:\n{body}");
    assert_eq!(bucket("+Inf"), count);
    let sum = value(
        &body,
        &format!("phoebe_syscall_duration_seconds_sum{{{series}}} "),
    )
    .unwrap();
    assert!(sum >= 0.005 * count, "sum {sum} s for {count} sleeps of 5 ms");
}

/// Regression: a process whose main thread exited while another thread runs on (its leader a zombie) was taken for
/// ended: `monitor --pid` stopped after one interval and missed the rest of its calls.
#[test]
fn regression_monitor_follows_a_process_whose_main_thread_exited() {
    let Some(_guard) = ebpf_guard() else { return };
    let mut app = Command::new(testapp("paced"))
        .env_remove("LD_LIBRARY_PATH")
        .args([
            "--rate",
            "200",
            "--sleep-us",
            "100",
            "--seconds",
            "2",
            "--leader-exits",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(app.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let pid: i32 = line.trim().strip_prefix("ready pid=").unwrap().parse().unwrap();
    let app = Reap(app);
    let out = phoebe()
        .args([
            "monitor",
            "--pid",
            &pid.to_string(),
            "--interval",
            "100ms",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut summary).unwrap();
    drop(app);
    let failed: u64 = summary
        .trim()
        .rsplit_once(" enoent=")
        .expect("the summary line")
        .1
        .parse()
        .unwrap();
    let json = String::from_utf8(out.stdout).unwrap();
    let mut seen = 0;
    for line in json.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        for process in value["processes"].as_array().unwrap() {
            seen += process["syscalls"]["openat"]["errors"]["ENOENT"]
                .as_u64()
                .unwrap_or(0);
        }
    }
    // The monitor attached a little after the worker started: all but its first few opens.
    assert!(
        json.lines().count() >= 5 && seen as f64 >= 0.7 * failed as f64,
        "{seen} of {failed} failed opens seen in {} intervals:\n{json}",
        json.lines().count()
    );
}

/// docs/phoebe-monitor.service's command line runs as written (its address moved to a free port, and a
/// `--duration` added so that it ends): it serves the endpoint, prints nothing per interval (`--quiet`), and
/// exits 0 at the end of the duration.
#[test]
fn systemd_unit_command_runs_as_written() {
    let Some(_guard) = ebpf_guard() else { return };
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/phoebe-monitor.service"
    ))
    .unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/phoebe"));
    let addr = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = words
        .map(|w| {
            if w == "127.0.0.1:9464" {
                addr.clone()
            } else {
                w.to_owned()
            }
        })
        .collect();
    assert!(args.contains(&addr), "the unit serves 127.0.0.1:9464: {exec}");
    let mut monitor = Reap(
        Command::new(phoebe_path())
            .env_remove("LD_LIBRARY_PATH")
            .args(&args)
            .args(["--duration", "2s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{addr}/metrics");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Some(body) = ureq::get(&url)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
        {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "no endpoint after 10 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(body.contains("phoebe_build_info{"), "{body}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(monitor.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let status = monitor.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(monitor.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stdout, "", "--quiet prints nothing per interval");
}
