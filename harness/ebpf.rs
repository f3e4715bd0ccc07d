//! `phoebe observe --backend ebpf`: the same observation as ptrace, following the tree, ignoring bystanders.
//! Needs root (or CAP_BPF + CAP_PERFMON); elsewhere each test prints `skipped: <reason>`.

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Stdio},
};

use crate::common::*;

/// Every (syscall, errno) failure count of an observation, summed over intervals.
fn failures(obs: &phoebe::model::Observation) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for (sc, stats) in obs.totals() {
        for (errno, n) in stats.errors {
            out.insert((sc.to_string(), errno.to_string()), n);
        }
    }
    out
}

fn observe(backend: &str, dir: &Path, name: &str, cmd: &[&std::ffi::OsStr]) -> phoebe::model::Observation {
    let out = dir.join(name);
    phoebe()
        .args(["observe", "-q", "--backend", backend, "-o"])
        .arg(&out)
        .arg("--")
        .args(cmd)
        .assert()
        .success();
    let obs = load_observation(&out);
    assert_eq!(obs.backend, backend);
    obs
}

/// Failure counts of both backends agree exactly on deterministic programs; so do the calls of the syscalls
/// whose number does not depend on scheduling. futex is left out: how often a lock is contended is not
/// deterministic.
#[test]
fn ebpf_and_ptrace_agree() {
    if !ptrace_works() {
        return;
    }
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "in.txt", "agreement\n");
    let workers = testapp("worker-threads");
    let forker = testapp("forker");
    let reader = testapp("retry-reader");
    let programs: Vec<(&str, Vec<&std::ffi::OsStr>)> = vec![
        (
            "workers",
            vec![
                workers.as_os_str(),
                "--threads".as_ref(),
                "4".as_ref(),
                "--iterations".as_ref(),
                "20".as_ref(),
                input.as_os_str(),
            ],
        ),
        (
            "forker",
            vec![
                forker.as_os_str(),
                "--children".as_ref(),
                "4".as_ref(),
                input.as_os_str(),
            ],
        ),
        ("reader", vec![reader.as_os_str(), input.as_os_str()]),
    ];
    for (name, cmd) in programs {
        let e = observe("ebpf", dir.path(), &format!("{name}-ebpf.json"), &cmd);
        let p = observe("ptrace", dir.path(), &format!("{name}-ptrace.json"), &cmd);
        let strip = |mut f: BTreeMap<(String, String), u64>| {
            f.retain(|(sc, _), _| sc != "futex");
            f
        };
        assert_eq!(
            strip(failures(&e)),
            strip(failures(&p)),
            "{name}: failure counts differ between ebpf and ptrace"
        );
        assert!(!failures(&e).is_empty(), "{name}: no failure observed at all");
        // Not mmap, brk or madvise: malloc arenas depend on which threads contend.
        for sc in ["openat", "read", "execve", "clone", "clone3", "close", "wait4"] {
            assert_eq!(totals(&e, sc).0, totals(&p, sc).0, "{name}: {sc} calls differ");
        }
    }
}

#[test]
fn ebpf_follows_forks_and_starts_at_exec() {
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "in.txt", "hi\n");
    let forker = testapp("forker");
    let obs = observe(
        "ebpf",
        dir.path(),
        "forker.json",
        &[
            forker.as_os_str(),
            "--children".as_ref(),
            "4".as_ref(),
            input.as_os_str(),
        ],
    );
    // Each child fails 3 opens with ENOENT; 2 children come from posix_spawn, 2 from fork().
    assert_eq!(totals(&obs, "openat").1.get("ENOENT"), Some(&12));
    assert_eq!(
        totals(&obs, "execve").0,
        4,
        "the children's execs, not the target's own"
    );
    assert_eq!(
        totals(&obs, "clone3").0 + totals(&obs, "clone").0,
        4,
        "the parent's side of each fork only"
    );
    for launcher_call in ["prctl", "getppid", "tgkill"] {
        assert_eq!(
            totals(&obs, launcher_call).0,
            0,
            "{launcher_call} was counted before the exec"
        );
    }
    assert!(!obs.latency_measured, "latency is measured only when asked");
    assert_no_phoebe_program_left("after observe --backend ebpf ended normally");
}

#[test]
fn ebpf_ignores_bystanders() {
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "in.txt", "x\n");
    // A process outside the target's tree failing opens all along.
    let mut bystander = Command::new(testapp("storm"))
        .args(["openat-fail", "20000000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let workers = testapp("worker-threads");
    let obs = observe(
        "ebpf",
        dir.path(),
        "workers.json",
        &[
            workers.as_os_str(),
            "--threads".as_ref(),
            "3".as_ref(),
            "--iterations".as_ref(),
            "50".as_ref(),
            input.as_os_str(),
        ],
    );
    let still_running = bystander.try_wait().unwrap().is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert!(still_running, "the bystander ended before the observation did");
    // One ENOENT per thread, as with ptrace; the bystander's millions are not there.
    assert_eq!(totals(&obs, "openat").1.get("ENOENT"), Some(&3));
}

#[test]
fn ebpf_latency_when_asked() {
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("obs.json");
    phoebe()
        .args(["observe", "--backend", "ebpf", "--latency", "-o"])
        .arg(&out)
        .args(["--", "ls", "/"])
        .assert()
        .success()
        .stderr(predicates::str::contains("on ebpf: exit status 0"));
    let obs = load_observation(&out);
    assert!(obs.latency_measured);
    let totals = obs.totals();
    let mmap = totals
        .get(&phoebe::model::Syscall::parse("mmap").unwrap())
        .expect("ls maps memory");
    assert!(mmap.latency_ns_sum > 0 && mmap.latency_ns_max > 0, "{mmap:?}");
}

/// Where the kernel refuses trampolines (our host: both BPF LSM and fmod_ret), `inject --backend ebpf` fails before
/// starting the target, in one sentence saying what it tried, how to check and which backend to use; where it
/// allows them, the target's open fails. Either way `phoebe doctor` says the same.
#[test]
fn ebpf_injects_or_refuses_in_one_sentence_and_doctor_agrees() {
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = input_file(&dir, "secret", "phoebe-secret\n");
    let out = phoebe()
        .args(["inject", "--backend", "ebpf", "--fault", "openat:EACCES", "--"])
        .arg(testapp("retry-reader"))
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doctor = phoebe().args(["doctor", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let verdict = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["backend"] == "ebpf" && v["mode"] == "inject")
        .expect("doctor's ebpf inject verdict")
        .clone();
    assert!(
        stderr.contains("openat via hook file_open: calls that resolved their path"),
        "the coverage statement comes first:\n{stderr}"
    );
    if verdict["available"] == true {
        assert!(stderr.contains("Permission denied"), "{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("phoebe-secret"));
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "the target never ran");
    let refusal: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("phoebe: ") && !l.starts_with("phoebe: ebpf: rule "))
        .collect();
    let [refusal] = refusal.as_slice() else {
        panic!("one refusal line expected:\n{stderr}")
    };
    assert!(
        refusal.starts_with(
            "phoebe: cannot use eBPF: this kernel refuses both ways phoebe attaches its eBPF injector ("
        ),
        "{refusal}"
    );
    assert!(
        refusal.contains("lsm/file_open: ") && refusal.contains("fmod_ret/security_file_open: "),
        "both mechanisms were tried: {refusal}"
    );
    assert!(
        refusal.ends_with("so phoebe cannot inject with eBPF here"),
        "{refusal}"
    );
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_else(|| panic!("no hint:\n{stderr}"));
    assert!(
        hint.contains("/sys/kernel/security/lsm") && hint.contains("--backend seccomp"),
        "{hint}"
    );
    let reason = verdict["reason"].as_str().unwrap();
    assert!(
        reason.contains("refused") || reason.contains("not an active LSM"),
        "{verdict}"
    );
    assert!(
        verdict["hint"].as_str().unwrap().contains("--backend seccomp"),
        "{verdict}"
    );
    assert_no_phoebe_program_left("after a refused eBPF injection");
}

/// Rules no LSM hook can honour are refused before anything is loaded, naming the backend that can; so is a
/// replay (the kernel rolls its own numbers), without first listing coverage.
#[test]
fn ebpf_refuses_rules_it_cannot_honour() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let fault = phoebe::model::FaultSpec::parse("openat:EACCES:p=0.5").unwrap();
    let logged =
        phoebe::decide::Decider::new(vec![fault], 7).finish(vec!["true".into()], "seccomp", None, false);
    phoebe::files::save(&log, &logged).unwrap();
    let out = phoebe()
        .args(["inject", "--backend", "ebpf", "--replay"])
        .arg(&log)
        .args(["--", "true"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot replay a log call by call"))
        .stderr(predicates::str::contains("--backend seccomp"));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(!stderr.contains("covers:"), "{stderr}");
    for (fault, says) in [
        ("futex:EAGAIN", "no LSM hook decides 'futex'"),
        (
            "openat:ENOENT:path=/etc/*",
            "path globs cannot be matched inside the kernel",
        ),
        ("read:EIO:when=exit", "--backend ptrace"),
    ] {
        phoebe()
            .args(["inject", "--backend", "ebpf", "--fault", fault, "--", "true"])
            .assert()
            .code(2)
            .stderr(predicates::str::contains(format!(
                "phoebe: fault '{fault}' cannot run on the ebpf backend: "
            )))
            .stderr(predicates::str::contains(says));
    }
}

/// A target killed by SIGRTMIN+2 is reported as signal 36 (exit 164): nix's `waitpid` returned EINVAL on that
/// status and the eBPF reaper stopped there, reporting SIGKILL.
#[test]
fn regression_realtime_signal_death_is_signal_36_not_sigkill() {
    let Some(_guard) = ebpf_guard() else { return };
    assert_observes_a_realtime_death("ebpf");
}

/// `--interval auto` on eBPF: the ticks follow the builder's doubling interval (they ticked every 8 ms for the
/// whole run before), and every counted call lands in an interval of the final length.
#[test]
fn ebpf_auto_interval_ticks_with_the_doubling_interval() {
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auto.json");
    let run = phoebe()
        .args(["observe", "-q", "--backend", "ebpf", "--interval", "auto", "-o"])
        .arg(&out)
        .arg("--")
        .arg(testapp("paced"))
        .args(["--rate", "200", "--sleep-us", "500", "--seconds", "1"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    let enoent: u64 = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("enoent="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no enoent= in {stdout}"));
    let obs = load_observation(&out);
    assert!(
        obs.interval_ms.is_power_of_two() && (20..=40).contains(&obs.intervals.len()),
        "{} intervals of {} ms over {} ms",
        obs.intervals.len(),
        obs.interval_ms,
        obs.duration_ms
    );
    assert_eq!(
        failures(&obs)[&("openat".to_owned(), "ENOENT".to_owned())],
        enoent
    );
}
