//! `phoebe monitor` attached to a running test app, its JSON lines, its Prometheus endpoint scraped by a real
//! HTTP client, `phoebe doctor`, and no phoebe program left loaded after phoebe exits or is killed.

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
    let mut child = Command::new(testapp("sigloop"))
        .env_remove("LD_LIBRARY_PATH")
        .stderr(Stdio::null())
        .args(["--iterations", &iterations.to_string(), "--sleep-ms", "5"])
        .stdout(Stdio::piped())
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
        assert_eq!(value["version"], 1);
        assert_eq!(value["interval"], lines);
        assert_eq!(value["interval_ms"], 200);
        for process in value["processes"].as_array().expect("processes") {
            assert_eq!(process["pid"], pid, "only the watched process: {line}");
            assert_eq!(process["comm"], "sigloop");
            seen += process["syscalls"]["clock_nanosleep"]["calls"]
                .as_u64()
                .unwrap_or(0);
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
    let (mut monitor, stdout) = spawn_monitor(&["--pid", &pid.to_string(), "--interval", "100ms", "--json"]);
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
    assert_eq!(verdict("seccomp", "observe")["available"], false);
    let inject = verdict("ebpf", "inject");
    assert_eq!(inject["available"], false, "no eBPF injector is written yet");
    if report["facts"]["kprobes"] == false {
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
