//! Call shapes end to end (DESIGN §6): observed by shape, synthesized by shape, injected only where the kernel
//! returned the error naturally, on the `shapes` test app (futex waits with a timeout fail with EAGAIN or
//! ETIMEDOUT, wakes never fail; an empty non-blocking pipe always fails reads with EAGAIN, a file never does).

use phoebe::model::{Plan, Shape};

use crate::common::*;

fn observe(dir: &tempfile::TempDir, shapes: &str) -> std::path::PathBuf {
    let obs = dir.path().join(format!("obs-{shapes}.json"));
    phoebe()
        .args([
            "observe",
            "-q",
            "--backend",
            "ptrace",
            "--interval",
            "10ms",
            "--shapes",
            shapes,
            "-o",
        ])
        .arg(&obs)
        .arg("--")
        .arg(testapp("shapes"))
        .arg("300")
        .assert()
        .success();
    obs
}

fn synthesize(dir: &tempfile::TempDir, obs: &std::path::Path, shapes: &str) -> Plan {
    let plan = dir.path().join(format!("plan-{shapes}.json"));
    phoebe()
        .args(["synthesize", "--shapes", shapes, "-o"])
        .arg(&plan)
        .arg(obs)
        .assert()
        .success();
    serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap()
}

/// `phoebe exec -q --seed 1 --interval 10ms ARGS… -- shapes 300` (one run and one baseline run unless ARGS say
/// otherwise) into a fresh campaign directory: its exit status
/// and its report.
fn campaign(args: &[&str]) -> (Option<i32>, phoebe::model::Report, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    let mut exec = phoebe();
    exec.args(["exec", "-q", "--seed", "1", "--interval", "10ms"]);
    for flag in ["--runs", "--baseline-runs"] {
        if !args.contains(&flag) {
            exec.args([flag, "1"]);
        }
    }
    let status = exec
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg("--")
        .arg(testapp("shapes"))
        .arg("300")
        .output()
        .unwrap()
        .status;
    let report = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    (status.code(), report, summary)
}

#[test]
fn observation_counts_calls_and_errors_per_shape() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let obs = load_observation(&observe(&dir, "on"));
    let totals = obs.totals();
    let futex = &totals[&phoebe::model::Syscall::parse("futex").unwrap()];
    // Its waits give up after 1 µs.
    let wait = &futex.shapes["op=FUTEX_WAIT_PRIVATE:timeout=yes:within=1ms"];
    assert_eq!(wait.calls, 300);
    let errors: Vec<(String, u64)> = wait.errors.iter().map(|(e, n)| (e.to_string(), *n)).collect();
    assert_eq!(
        errors,
        [("EAGAIN".to_owned(), 150), ("ETIMEDOUT".to_owned(), 150)]
    );
    let wake = &futex.shapes["op=FUTEX_WAKE_PRIVATE"];
    assert!(wake.calls >= 300 && wake.errors.is_empty(), "{wake:?}");
    let read = &totals[&phoebe::model::Syscall::parse("read").unwrap()];
    // The empty pipe is never ready.
    assert_eq!(read.shapes["fd=pipe:nonblock=yes:ready=no"].calls, 300);
    let file_reads: u64 = read
        .shapes
        .iter()
        .filter(|(s, _)| s.starts_with("fd=file:nonblock=no:path=") && s.contains("phoebe-shapes-"))
        .map(|(_, st)| st.calls)
        .sum();
    assert_eq!(file_reads, 300, "{:?}", read.shapes.keys().collect::<Vec<_>>());
    let ioctl = &totals[&phoebe::model::Syscall::parse("ioctl").unwrap()];
    let fionread = &ioctl.shapes["fd=pipe:nonblock=yes:req=FIONREAD"];
    assert!(
        fionread.calls == 300 && fionread.errors.is_empty(),
        "{fionread:?}"
    );
    let tcgets = &ioctl.shapes["fd=pipe:nonblock=yes:req=TCGETS"];
    assert_eq!(tcgets.errors.values().sum::<u64>(), 300, "{tcgets:?}");
    let stat = &totals[&phoebe::model::Syscall::parse("newfstatat").unwrap()];
    let own = &stat.shapes["exists=yes:path=/proc/*/stat"];
    assert!(own.calls == 300 && own.errors.is_empty(), "{own:?}");
    // The probe: present in odd rounds (never fails), absent in even ones (always ENOENT).
    let probe = |exists: &str| {
        stat.shapes
            .iter()
            .find(|(s, _)| {
                s.starts_with(&format!("exists={exists}:path=/")) && s.ends_with("/phoebe-shapes-*-probe")
            })
            .map(|(_, st)| (st.calls, st.errors.values().sum::<u64>()))
            .unwrap_or_else(|| panic!("exists={exists}: {:?}", stat.shapes.keys().collect::<Vec<_>>()))
    };
    assert_eq!(probe("yes"), (150, 0));
    assert_eq!(probe("no"), (150, 150));
    // The creating open: the name never exists as it starts; its directory is there in odd rounds (never
    // fails), gone in even ones (always ENOENT).
    let open = &totals[&phoebe::model::Syscall::parse("openat").unwrap()];
    let spool = |parent: &str| {
        open.shapes
            .iter()
            .find(|(s, _)| {
                s.starts_with(&format!(
                    "creates=yes:directory=no:exists=no:parent={parent}:path=/"
                )) && s.ends_with("/phoebe-shapes-*-dir/new")
            })
            .map(|(_, st)| (st.calls, st.errors.values().sum::<u64>()))
            .unwrap_or_else(|| panic!("parent={parent}: {:?}", open.shapes.keys().collect::<Vec<_>>()))
    };
    assert_eq!(spool("yes"), (150, 0));
    assert_eq!(spool("no"), (150, 150));
    // Writes to a pipe that is read never fail; to one whose reader has gone, always EPIPE.
    let write = &totals[&phoebe::model::Syscall::parse("write").unwrap()];
    let pipe = |readers: &str| {
        // Both non-blocking pipes can take a byte (a pipe without a reader polls ready: the write returns at once).
        let st = &write.shapes[&format!("fd=pipe:nonblock=yes:ready=yes:atomic=yes:readers={readers}")];
        (st.calls, st.errors.values().sum::<u64>())
    };
    assert_eq!(pipe("yes"), (300, 0));
    assert_eq!(pipe("no"), (300, 300));
}

#[test]
fn synthesis_injects_only_shapes_that_failed_with_the_errno() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let obs = observe(&dir, "on");
    let plan = synthesize(&dir, &obs, "on");
    let eagain = plan
        .models
        .iter()
        .find(|m| m.id == "futex-EAGAIN")
        .expect("a futex-EAGAIN model");
    let shapes: Vec<String> = eagain.shapes.iter().map(|s| s.shape.to_string()).collect();
    assert_eq!(shapes, ["op=FUTEX_WAIT_PRIVATE:timeout=yes"], "never the wakes");
    assert!(
        eagain
            .fault
            .to_string()
            .ends_with(":op=FUTEX_WAIT_PRIVATE:timeout=yes"),
        "{}",
        eagain.fault
    );
    assert!(eagain.shapes[0].fault.shape.len() == 2);
    // ETIMEDOUT's model names how long the waits that timed out could wait (1 µs: `within=1ms`), so that an
    // injection, held until the wait's own timeout as the kernel's would be, never lands on a long wait (found
    // on filelock's suite, where a model of 5 ms polls held a 30 s wait past the run's timeout).
    let etimedout = plan
        .models
        .iter()
        .find(|m| m.id == "futex-ETIMEDOUT")
        .expect("a futex-ETIMEDOUT model");
    assert!(
        etimedout
            .fault
            .to_string()
            .ends_with(":op=FUTEX_WAIT_PRIVATE:timeout=yes:within=1ms"),
        "{}",
        etimedout.fault
    );
    // The probe's stat fails whenever the probe is absent and never when it is there: ENOENT is its state, not
    // a failure to amplify (excluded, saying so), and its own /proc/PID/stat is never failed.
    assert!(!plan.models.iter().any(|m| m.id == "newfstatat-ENOENT"));
    let absent = plan
        .excluded
        .iter()
        .find(|e| e.syscall.name() == "newfstatat")
        .expect("newfstatat-ENOENT excluded");
    assert!(
        absent
            .shape
            .as_deref()
            .is_some_and(|s| s.starts_with("exists=no:")),
        "{absent:?}"
    );
    assert!(
        absent.reason.contains("would simulate a deletion"),
        "{}",
        absent.reason
    );
    // The creating open fails whenever its directory is gone and never when it is there: excluded likewise.
    assert!(!plan.models.iter().any(|m| m.id == "openat-ENOENT"));
    let gone = plan
        .excluded
        .iter()
        .find(|e| e.syscall.name() == "openat" && e.shape.as_deref().is_some_and(|s| s.contains("-dir/new")))
        .expect("openat-ENOENT excluded");
    assert!(
        gone.shape
            .as_deref()
            .is_some_and(|s| s.starts_with("creates=yes:exists=no:parent=no:")),
        "{gone:?}"
    );
    assert!(
        gone.reason
            .contains("the directory of the name was absent at every call"),
        "{}",
        gone.reason
    );
    // The orphaned pipe's writes fail whenever it has no reader, and the read one's never: EPIPE is the pipe's
    // state (excluded, saying so), never a model for pipes that are read.
    assert!(!plan.models.iter().any(|m| m.id == "write-EPIPE"));
    let orphaned = plan
        .excluded
        .iter()
        .find(|e| e.syscall.name() == "write" && e.action.to_string() == "EPIPE")
        .expect("write-EPIPE excluded");
    assert_eq!(orphaned.shape.as_deref(), Some("fd=pipe:nonblock=yes:readers=no"));
    assert!(
        orphaned.reason.contains("a reader's death"),
        "{}",
        orphaned.reason
    );
    // TCGETS on a pipe fails every time: excluded; FIONREAD never failed: no rule.
    assert!(!plan.models.iter().any(|m| m.id == "ioctl-ENOTTY"));
    // The pipe's reads fail every time: amplification is impossible, and the file's reads never failed.
    assert!(!plan.models.iter().any(|m| m.id == "read-EAGAIN"));
    let read = plan
        .excluded
        .iter()
        .find(|e| e.syscall.name() == "read")
        .expect("read-EAGAIN excluded");
    assert_eq!(read.shape.as_deref(), Some("fd=pipe:nonblock=yes:ready=no"));
    assert!(
        read.reason.contains("every call already fails") && read.reason.contains("not ready at every call"),
        "{}",
        read.reason
    );
    // Every rule parses back as written: a synthesized rule can be pasted into --fault.
    for model in &plan.models {
        for rule in &model.shapes {
            let text = rule.fault.to_string();
            assert_eq!(
                phoebe::model::FaultSpec::parse(&text).unwrap(),
                rule.fault,
                "{text}"
            );
            assert_eq!(Shape::parse(&rule.shape.to_string()).unwrap(), rule.shape);
        }
    }
}

#[test]
fn shapes_off_gives_per_syscall_models() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let obs = observe(&dir, "on");
    let plan = synthesize(&dir, &obs, "off");
    let eagain = plan
        .models
        .iter()
        .find(|m| m.id == "futex-EAGAIN")
        .expect("a futex-EAGAIN model");
    assert!(eagain.shapes.is_empty());
    assert!(eagain.fault.shape.is_empty(), "{}", eagain.fault);
    // An observation recorded without shapes synthesizes the same way.
    let plain = observe(&dir, "off");
    assert!(
        load_observation(&plain)
            .totals()
            .values()
            .all(|s| s.shapes.is_empty())
    );
    let plan = synthesize(&dir, &plain, "on");
    assert!(plan.models.iter().all(|m| m.shapes.is_empty()));
    // …and says why its models are per syscall.
    let out = phoebe()
        .args(["synthesize", "-o"])
        .arg(dir.path().join("again.json"))
        .arg(&plain)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has no call shapes (it was recorded without them)"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: observe with --backend ptrace"), "{stderr}");
}

/// A whole campaign on the app: every synthesized injection lands where the kernel could return it, so the
/// app never sees an impossible result and every exercised experiment is resilient. Observed with ptrace, which
/// reads how long a wait's timeout is (`within=`, which ETIMEDOUT's model needs; eBPF does not read it).
#[test]
fn a_campaign_by_shape_has_no_impossible_injection() {
    if !ptrace_works() || !seccomp_works() {
        return;
    }
    let (status, report, summary) = campaign(&["--runs", "2", "--observer", "ptrace"]);
    assert_eq!(status, Some(0));
    let ids: Vec<&str> = report.experiments.iter().map(|e| e.id.as_str()).collect();
    assert!(
        ["futex-EAGAIN", "futex-ETIMEDOUT"]
            .iter()
            .all(|id| ids.contains(id)),
        "{ids:?}"
    );
    for e in &report.experiments {
        assert!(
            e.faults.iter().all(|f| !f.shape.is_empty() || f.path.is_some()),
            "{}: {:?}",
            e.id,
            e.faults
        );
        assert_eq!(e.verdict, phoebe::model::Verdict::Resilient, "{}", e.id);
        // Every injection landed on a shape that failed naturally with the errno.
        assert_eq!(e.realism(), Some(1.0), "{}", e.id);
    }
    assert!(summary.contains("| realism |"), "{summary}");
}

/// A hand-written rule without predicates shows what it is: part of its injections land on wakes, which the
/// kernel never fails with EAGAIN, the app sees the impossible, and the report says how unrealistic that was.
#[test]
fn a_rule_without_shapes_reports_its_realism() {
    if !ptrace_works() || !seccomp_works() {
        return;
    }
    let (status, report, _) = campaign(&["--runs", "1", "--fault", "futex:EAGAIN:p=0.5"]);
    assert_eq!(status, Some(1));
    let e = &report.experiments[0];
    assert_eq!(e.verdict, phoebe::model::Verdict::Failed);
    let realism = e.realism().expect("the baseline has shapes and so does the log");
    assert!(realism > 0.2 && realism < 0.8, "realism {realism}");
}

/// A hand-written rule that would land where the kernel never fails so is warned about before it runs, naming the
/// call and the reason; a rule narrowed to the calls that can fail so is not. The rule still runs as asked.
#[test]
fn an_impossible_hand_written_rule_is_warned_about() {
    if !seccomp_works() {
        return;
    }
    let run = |fault: &str| {
        let out = phoebe()
            .args(["inject", "-q", "--seed", "3", "--fault", fault, "--"])
            .arg(testapp("shapes"))
            .arg("4")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{fault}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = run("futex:EAGAIN:p=0");
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("phoebe: warning: fault 'futex:EAGAIN:p=0': "))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(warning.contains("FUTEX_WAKE never returns EAGAIN"), "{warning}");
    assert!(
        stderr.contains("hint: what it breaks there says nothing about the program"),
        "{stderr}"
    );
    let narrowed = run("futex:EAGAIN:p=0:op=FUTEX_WAIT_PRIVATE:timeout=yes");
    assert!(!narrowed.contains("warning"), "{narrowed}");
}

/// `inject`'s summary: under each rule, one row per shape its injections landed on.
#[test]
fn inject_summary_has_a_row_per_rule_and_shape() {
    if !seccomp_works() {
        return;
    }
    let out = phoebe()
        .args([
            "inject",
            "--seed",
            "3",
            "--fault",
            "futex:EAGAIN:p=0.5",
            "--fault",
            "read:EAGAIN:fd=pipe",
            "--",
        ])
        .arg(testapp("shapes"))
        .arg("40")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "the unrealistic rule fails wakes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let table: Vec<&str> = stderr.lines().skip_while(|l| !l.starts_with("rule ")).collect();
    assert!(table[1].starts_with("futex:EAGAIN:p=0.5 "), "{stderr}");
    let futex_rows: Vec<&str> = table[2..4]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    let mut sorted = futex_rows.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "op=FUTEX_WAIT_PRIVATE:timeout=yes:within=1ms",
            "op=FUTEX_WAKE_PRIVATE"
        ],
        "{stderr}"
    );
    assert!(table[4].starts_with("read:EAGAIN:fd=pipe "), "{stderr}");
    assert_eq!(
        table[5].split_whitespace().collect::<Vec<_>>(),
        ["on", "fd=pipe:nonblock=yes:ready=no", "40"],
        "{stderr}"
    );
}

/// A lock file contended half the time: `LOCK_EX | LOCK_NB` requests on a second descriptor fail with
/// EWOULDBLOCK while the first one holds the lock; the unlocks never fail.
const CONTENDED_LOCK: &str = r#"
import fcntl, os, sys
path = sys.argv[1]
a = os.open(path, os.O_RDWR | os.O_CREAT)
b = os.open(path, os.O_RDWR)
busy = 0
for i in range(200):
    if i % 2 == 0:
        fcntl.flock(a, fcntl.LOCK_EX)
    try:
        fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(b, fcntl.LOCK_UN)
    except BlockingIOError:
        busy += 1
    if i % 2 == 0:
        fcntl.flock(a, fcntl.LOCK_UN)
print(busy)
"#;

/// The plan `phoebe synthesize` makes of `phoebe observe --backend BACKEND -- python3 SCRIPT ARGS…`, whose
/// output must be `stdout`.
fn plan_of_python(
    dir: &tempfile::TempDir,
    backend: &str,
    script: &std::path::Path,
    args: &[std::path::PathBuf],
    stdout: &str,
) -> Plan {
    let obs = dir.path().join(format!("obs-{backend}.json"));
    phoebe()
        .args(["observe", "-q", "--backend", backend, "--interval", "10ms", "-o"])
        .arg(&obs)
        .arg("--")
        .arg("python3")
        .arg(script)
        .args(args)
        .assert()
        .success()
        .stdout(stdout.to_owned());
    let plan = dir.path().join(format!("plan-{backend}.json"));
    phoebe()
        .args(["synthesize", "-o"])
        .arg(&plan)
        .arg(&obs)
        .assert()
        .success();
    serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap()
}

/// Regression, found on Python's filelock: its suite's natural EWOULDBLOCKs came from `LOCK_EX | LOCK_NB`
/// requests, and the model failed its unlocks too (flock's shape was its descriptor's alone), which never
/// conflict: the lock stayed held and the threads waiting for it spun until the timeout (2/2 hung). flock's
/// shape now names its operation (`lock=`), the same on ptrace and eBPF: the failures are `lock=ex-nb`'s, and a
/// rule for them leaves every unlock alone.
#[test]
fn regression_flock_ewouldblock_was_injected_into_unlocks() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("contend.py");
    std::fs::write(&script, CONTENDED_LOCK).unwrap();
    let lock = dir.path().join("app.lock");
    let mut observers = vec!["ptrace"];
    if ebpf_works() {
        observers.push("ebpf");
    }
    for backend in observers {
        let plan = plan_of_python(&dir, backend, &script, std::slice::from_ref(&lock), "100\n");
        let eagain = plan
            .excluded
            .iter()
            .find(|e| e.action.to_string() == "EAGAIN")
            .unwrap_or_else(|| panic!("{backend}: flock's EAGAIN not excluded: {:?}", plan.excluded));
        let shape = eagain.shape.as_deref().unwrap_or_default();
        assert!(shape.contains("lock=ex-nb:held=yes"), "{backend}: {shape}");
    }
    for backend in [Backend::Ptrace, Backend::Seccomp] {
        if !backend.works() {
            continue;
        }
        // Every request with LOCK_NB fails, and no unlock: the script counts 200 busy requests and ends.
        backend
            .inject()
            .args(["--fault", "flock:EAGAIN:lock=ex-nb", "--", "python3"])
            .arg(&script)
            .arg(&lock)
            .assert()
            .success()
            .stdout("200\n")
            .stderr(predicates::str::contains("injected 200 errors"));
    }
}

/// Found on filelock 4.3.2's own suite (`pytest tests/native`): its contenders' `LOCK_EX | LOCK_NB` requests
/// said EWOULDBLOCK on the locks its tests held, and the synthesized model failed the holders' requests on the
/// same files too, fresh locks in private directories nobody else could hold (5/5 runs failed, 5 tests broken:
/// `assert lock_descriptor(holder, blocking=False) is True`). Whether another holds the lock is part of a
/// `LOCK_NB` request's shape (`held=`, read from `/proc/locks` by ptrace and seccomp, from the result by eBPF):
/// synthesis excludes EWOULDBLOCK as the state of a held lock (the test above), and a hand-written rule can name
/// either state.
#[test]
fn regression_flock_ewouldblock_was_injected_into_locks_nobody_else_held() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("contend.py");
    std::fs::write(&script, CONTENDED_LOCK).unwrap();
    let lock = dir.path().join("app.lock");
    for backend in [Backend::Ptrace, Backend::Seccomp] {
        if !backend.works() {
            continue;
        }
        // The 100 requests made while the first descriptor holds the lock fail by themselves: `held=yes` adds
        // its errno to those only (the script still counts 100 busy), `held=no` to the 100 others (200 busy).
        for (held, busy) in [("yes", 100), ("no", 200)] {
            backend
                .inject()
                .args([
                    "--fault",
                    &format!("flock:EAGAIN:lock=ex-nb:held={held}"),
                    "--",
                    "python3",
                ])
                .arg(&script)
                .arg(&lock)
                .assert()
                .success()
                .stdout(format!("{busy}\n"))
                .stderr(predicates::str::contains("injected 100 errors"));
        }
    }
}

/// A directory removed as Node's `fs.rm(dir, {recursive: true})` removes it: `rmdir` first; on ENOTEMPTY its
/// entries, then `rmdir` again. Prints how many of those second removals, of emptied directories, failed.
const REMOVE_TREES: &str = r#"
import errno, os, sys
base, failed = sys.argv[1], 0
for i in range(20):
    d = os.path.join(base, f"out{i}")
    os.mkdir(d)
    open(os.path.join(d, "x"), "w").close()
    try:
        os.rmdir(d)
    except OSError as e:
        assert e.errno == errno.ENOTEMPTY, e
        os.unlink(os.path.join(d, "x"))
        try:
            os.rmdir(d)
        except OSError:
            failed += 1
print(failed)
"#;

/// Found on a Node script that cleans its output directory with `fs.rm({recursive: true})`: its first `rmdir`
/// said ENOTEMPTY (the directory had entries), and the model (`rmdir-ENOTEMPTY`, 60 % of the path's removals)
/// failed the second too, of the emptied directory, which fs.rm does not retry: the script failed for an error
/// the kernel never returns there. Whether a removed directory is empty is part of its shape (`empty=`, read
/// by ptrace and seccomp from the directory, from the result by eBPF): synthesis excludes ENOTEMPTY as the state
/// of a directory with entries, and a hand-written rule can name either state.
#[test]
fn regression_enotempty_was_injected_into_the_removal_of_an_emptied_directory() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("rmtree.py");
    std::fs::write(&script, REMOVE_TREES).unwrap();
    let mut observers = vec!["ptrace"];
    if ebpf_works() {
        observers.push("ebpf");
    }
    for backend in observers {
        let base = dir.path().join(format!("trees-{backend}"));
        std::fs::create_dir(&base).unwrap();
        let plan = plan_of_python(&dir, backend, &script, std::slice::from_ref(&base), "0\n");
        assert!(
            !plan.models.iter().any(|m| m.id.starts_with("rmdir-ENOTEMPTY")),
            "{backend}: {:?}",
            plan.models
        );
        let excluded = plan
            .excluded
            .iter()
            .find(|e| e.action.to_string() == "ENOTEMPTY")
            .unwrap_or_else(|| panic!("{backend}: rmdir's ENOTEMPTY not excluded: {:?}", plan.excluded));
        assert!(
            excluded.shape.as_deref().is_some_and(|s| s.contains("empty=no")),
            "{backend}: {excluded:?}"
        );
        assert!(
            excluded.reason.contains("still had entries at every call"),
            "{backend}: {excluded:?}"
        );
    }
    for backend in [Backend::Ptrace, Backend::Seccomp] {
        if !backend.works() {
            continue;
        }
        // `empty=no` fails only the first removals, which fail by themselves; `empty=yes` the 20 second ones.
        for (empty, failed) in [("no", 0), ("yes", 20)] {
            let base = dir.path().join(format!("inject-{empty}-{}", backend.name()));
            std::fs::create_dir(&base).unwrap();
            backend
                .inject()
                .args([
                    "--fault",
                    &format!("rmdir:ENOTEMPTY:empty={empty}"),
                    "--",
                    "python3",
                ])
                .arg(&script)
                .arg(&base)
                .assert()
                .success()
                .stdout(format!("{failed}\n"))
                .stderr(predicates::str::contains("injected 20 errors"));
        }
    }
}

/// fcntl on one file: its flags read and set, then a lock request that does not wait (`lockf`'s `F_SETLK`).
const FCNTL_CALLS: &str = r#"
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
for _ in range(3):
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("locked")
    except OSError as e:
        print(e.strerror)
"#;

/// fcntl's command is part of its shape (`cmd=`), the same on ptrace and eBPF (which carries it in the
/// descriptor's code beside the walked path): a lock conflict's EAGAIN is `cmd=F_SETLK`'s, and a rule for it
/// fails the lock requests, never `F_GETFL` or `F_SETFD`, whose EAGAIN the kernel never returns.
#[test]
fn fcntl_s_command_is_part_of_its_shape() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("locks.py");
    std::fs::write(&script, FCNTL_CALLS).unwrap();
    let file = dir.path().join("app.db");
    let mut observers = vec!["ptrace"];
    if ebpf_works() {
        observers.push("ebpf");
    }
    let mut seen = Vec::new();
    for backend in observers {
        let obs = dir.path().join(format!("obs-{backend}.json"));
        phoebe()
            .args(["observe", "-q", "--backend", backend, "--syscalls", "fcntl", "-o"])
            .arg(&obs)
            .arg("--")
            .arg("python3")
            .arg(&script)
            .arg(&file)
            .assert()
            .success()
            .stdout("locked\nlocked\nlocked\n");
        let obs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&obs).unwrap()).unwrap();
        let mut shapes: Vec<String> = obs["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["syscalls"]["fcntl"]["shapes"].as_object())
            .flat_map(|s| s.keys().cloned())
            .filter(|s| s.contains("/app.db"))
            .collect();
        shapes.sort();
        shapes.dedup();
        seen.push((backend, shapes));
    }
    // The file's path is a template (the temp directory's random name generalised); the rest is exact, and
    // F_GETFL's and F_SETFD's O_NONBLOCK is read as it is (no F_SETFL among the calls).
    let without_path: Vec<String> = seen[0]
        .1
        .iter()
        .map(|s| {
            assert!(s.ends_with("/app.db"), "{s}");
            s.split(":path=").next().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        without_path,
        [
            "fd=file:nonblock=no:cmd=F_GETFL",
            "fd=file:nonblock=no:cmd=F_SETFD",
            "fd=file:nonblock=no:cmd=F_SETLK",
        ],
        "ptrace"
    );
    for (backend, shapes) in &seen[1..] {
        assert_eq!(shapes, &seen[0].1, "{backend} sees what ptrace sees");
    }
    for backend in [Backend::Ptrace, Backend::Seccomp] {
        if !backend.works() {
            continue;
        }
        backend
            .inject()
            .args(["--fault", "fcntl:EAGAIN:cmd=F_SETLK", "--", "python3"])
            .arg(&script)
            .arg(&file)
            .assert()
            .success()
            .stdout("Resource temporarily unavailable\n".repeat(3))
            .stderr(predicates::str::contains("injected 3 errors"));
    }
}

/// rsync's pattern: each file probed with `O_PATH | O_DIRECTORY | O_NOFOLLOW` (ENOTDIR, every time), then opened
/// plainly (never fails).
const DIRECTORY_PROBES: &str = r#"
import os, sys
n = 0
for _ in range(40):
    for name in sys.argv[1:]:
        try:
            os.close(os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW))
        except NotADirectoryError:
            n += 1
        os.close(os.open(name, os.O_RDONLY | os.O_NOFOLLOW))
print(n)
"#;

/// Regression, found on rsync: its `O_DIRECTORY` probes' ENOTDIR shared a shape (the file's path) with the plain
/// opens that follow, half of each file's opens failed, and the model injected ENOTDIR into the plain opens of
/// existing files, which never say it: rsync's "some files/attrs were not transferred" (exit 23) was reported as
/// a finding. An open's shape says whether it asks for a directory (`directory=`, read from the flags on ptrace
/// and kept beside them on eBPF): the probes fail every time, excluded as the file system's state, and no model
/// is left; a hand-written rule for the plain opens is refused as unrealistic.
#[test]
fn regression_enotdir_of_directory_probes_was_injected_into_plain_opens() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("probe.py");
    std::fs::write(&script, DIRECTORY_PROBES).unwrap();
    let files: Vec<std::path::PathBuf> = (0..3)
        .map(|i| {
            let f = dir.path().join(format!("f{i}.txt"));
            std::fs::write(&f, "x").unwrap();
            f
        })
        .collect();
    let mut observers = vec!["ptrace"];
    if ebpf_works() {
        observers.push("ebpf");
    }
    for backend in observers {
        let plan = plan_of_python(&dir, backend, &script, &files, "120\n");
        assert!(
            !plan.models.iter().any(|m| m.id.starts_with("openat-ENOTDIR")),
            "{backend}: {:?}",
            plan.models
        );
        let probes: Vec<_> = plan
            .excluded
            .iter()
            .filter(|e| e.action.to_string() == "ENOTDIR")
            .collect();
        assert!(
            probes.iter().any(|e| e
                .shape
                .as_deref()
                .is_some_and(|s| s.starts_with("directory=yes:") && s.contains("/f0.txt"))),
            "{backend}: {:?}",
            plan.excluded
        );
    }
    phoebe()
        .args([
            "inject",
            "--backend",
            "ptrace",
            "--fault",
            "openat:ENOTDIR:p=0:directory=no:exists=yes",
        ])
        .arg("--")
        .arg("true")
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "openat directory=no:exists=yes never returns ENOTDIR",
        ));
}
