//! `phoebe exec` loses no evidence (issue 15 item 3): every process of a campaign writes files of its own, none
//! with a NUL hole; glibc's fatal messages reach the files; the reports are readable like any other output and
//! name the backend that ran.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use phoebe::model::Report;

use crate::common::*;

/// `phoebe exec -q --seed 11 --runs 1 --baseline-runs 1 --out DIR ARGS…`.
fn exec(out: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    exec_once().arg("--out").arg(out).args(args).assert()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn assert_no_nul_bytes(dir: &Path) {
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        let nul = bytes.iter().filter(|b| **b == 0).count();
        assert_eq!(
            nul,
            0,
            "{} has {nul} NUL bytes of {}",
            file.display(),
            bytes.len()
        );
    }
}

/// Regression: `--check`'s output went to `run-1.out` (`Path::with_extension` made `run-1.check` into
/// `run-1.out`), overwriting the target's; so did `--reset`'s, and the post-injection run's check overwrote
/// `post-1.out`.
#[test]
fn check_output_does_not_overwrite_the_runs_own_out() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload\n");
    let out = dir.path().join("c");
    let target = format!("echo TARGET-OUTPUT; cat {}", data.display());
    let fault = format!("openat:ENOENT:path={}", data.display());
    exec(
        &out,
        &[
            "--fault",
            &fault,
            "--check",
            "echo CHECK-OUTPUT",
            "--reset",
            "echo RESET-OUTPUT",
            "--",
            "sh",
            "-c",
            &target,
        ],
    );
    let exp = out.join("experiments/openat-ENOENT");
    assert_eq!(read(&exp.join("run-1.out")), "TARGET-OUTPUT\n");
    assert!(
        read(&exp.join("run-1.err")).contains("data.txt"),
        "cat's error is the run's"
    );
    assert_eq!(read(&exp.join("run-1.check.out")), "CHECK-OUTPUT\n");
    assert_eq!(read(&exp.join("run-1.reset.out")), "RESET-OUTPUT\n");
    assert_eq!(read(&exp.join("post-1.out")), "TARGET-OUTPUT\npayload\n");
    assert_eq!(read(&exp.join("post-1.check.out")), "CHECK-OUTPUT\n");
    let baseline = out.join("baseline");
    assert_eq!(read(&baseline.join("run-1.out")), "TARGET-OUTPUT\npayload\n");
    assert_eq!(read(&baseline.join("run-1.check.out")), "CHECK-OUTPUT\n");
    assert_eq!(read(&baseline.join("run-1.reset.out")), "RESET-OUTPUT\n");
    assert_no_nul_bytes(&out);
}

/// Regression: glibc writes its fatal messages ("The futex facility returned an unexpected error code") to the
/// terminal unless `LIBC_FATAL_STDERR_` is set, so a run's `.err` lost the reason it crashed.
#[test]
fn glibc_fatal_messages_go_to_the_runs_err() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    exec(
        &out,
        &[
            "--fault",
            "mknod:EPERM",
            "--",
            "sh",
            "-c",
            "echo LIBC_FATAL_STDERR_=$LIBC_FATAL_STDERR_",
        ],
    );
    assert_eq!(
        read(&out.join("experiments/mknod-EPERM/run-1.out")),
        "LIBC_FATAL_STDERR_=1\n"
    );
}

/// Regression: in service mode each `--ready` probe truncated `run-1.out` (its output went there) while the
/// service kept writing at its old offset, so every service log began with a block of NUL bytes.
#[test]
fn service_log_has_no_nul_bytes() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    // Every 6th probe succeeds: the service writes lines while the first five fail, 50 ms apart, each of which
    // truncated the service's log.
    let count = dir.path().join("probes");
    let ready = format!(
        "n=$(cat {0} 2>/dev/null || echo 0); echo $((n + 1)) > {0}; echo READY-OUTPUT; [ $((n % 6)) = 5 ]",
        count.display()
    );
    exec(
        &out,
        &[
            "--fault",
            "mknod:EPERM",
            "--service",
            "--ready",
            &ready,
            "--workload",
            "echo WORKLOAD-OUTPUT",
            "--rounds",
            "2",
            "--check",
            "echo CHECK-OUTPUT",
            "--timeout",
            "20s",
            "--",
            "sh",
            "-c",
            "while :; do echo SERVICE-LOG-LINE; sleep 0.02; done",
        ],
    );
    for run in [
        out.join("baseline/run-1"),
        out.join("experiments/mknod-EPERM/run-1"),
    ] {
        let log = read(&run.with_extension("out"));
        assert!(log.starts_with("SERVICE-LOG-LINE\n"), "{log:?}");
        assert!(!log.contains("READY") && !log.contains("CHECK"), "{log:?}");
        let ready = PathBuf::from(format!("{}.ready.out", run.display()));
        assert_eq!(read(&ready), "READY-OUTPUT\n", "the last probe's output");
        let check = PathBuf::from(format!("{}.check.out", run.display()));
        assert_eq!(read(&check), "CHECK-OUTPUT\n");
    }
    assert_eq!(
        read(&out.join("experiments/mknod-EPERM/run-1-injected-round-1.out")),
        "WORKLOAD-OUTPUT\n"
    );
    assert_no_nul_bytes(&out);
}

/// Regression: `report.html`, `junit.xml` and `report.json` (every file phoebe saves atomically) were created
/// 0600, unreadable to the CI user that publishes them, while the runs' output followed the umask.
#[test]
fn report_files_are_created_with_the_umask() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg("umask 027 && exec \"$0\" \"$@\"")
        .arg(phoebe_path())
        .args([
            "exec",
            "-q",
            "--runs",
            "1",
            "--baseline-runs",
            "1",
            "--fault",
            "mknod:EPERM",
            "--out",
        ])
        .arg(&out)
        .args(["--", "true"])
        .env_remove("LD_LIBRARY_PATH");
    let ran = c.output().unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    for name in [
        "report.html",
        "junit.xml",
        "report.json",
        "summary.md",
        "campaign.json",
        "experiments/mknod-EPERM/result.json",
        "experiments/mknod-EPERM/run-1.log.json",
        "experiments/mknod-EPERM/run-1.out",
    ] {
        let mode = std::fs::metadata(out.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{name} is {mode:o}");
    }
}

/// Regression: a campaign without `--backend` said `backend auto` in every report, though each run's
/// `phoebe inject` chose seccomp (ptrace for a rule that injects at exit).
#[test]
fn reports_name_the_backend_that_ran() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    exec(&out, &["--fault", "mknod:EPERM", "--", "true"]);
    let report: Report = phoebe::files::load(&out.join("report.json"), "report").unwrap();
    assert_eq!(report.backend, "seccomp");
    let log = load_log(&out.join("experiments/mknod-EPERM/run-1.log.json"));
    assert_eq!(
        log.backend, report.backend,
        "the report says what the run's log says"
    );
    assert!(read(&out.join("junit.xml")).contains(r#"name="backend" value="seccomp""#));
    assert!(read(&out.join("report.html")).contains("backend <b>seccomp</b>"));
    assert!(read(&out.join("summary.md")).contains("seccomp"));
    let campaign = read(&out.join("campaign.json"));
    assert!(
        campaign.contains(r#""backend": "auto""#),
        "the campaign keeps what was asked"
    );
}

/// A log truncated at its cap (`"truncated_after"`, issue 15: a hung run's log of millions of injections was
/// lost) lacks the injections after it: `--replay` refuses it, saying so, and points at the log's seed.
#[test]
fn replay_of_a_truncated_log_says_it_cannot_replay_past_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let mut value: serde_json::Value = serde_json::from_str(
        r#"{"version": 2, "command": ["true"], "backend": "seccomp", "seed": 7, "rules": [
            {"fault": "mknod:EPERM", "matched": 9, "injected": 9}],
          "injections": [{"t_ns": 1, "pid": 1, "tid": 1, "syscall": "mknod", "index": 1, "errno": "EPERM",
            "rule": 0, "when": "entry"}],
          "exit": {"code": 0}}"#,
    )
    .unwrap();
    std::fs::write(&log, value.to_string()).unwrap();
    phoebe()
        .args(["inject", "-q", "--replay"])
        .arg(&log)
        .args(["--", "true"])
        .assert()
        .success();
    value["truncated_after"] = 1.into();
    std::fs::write(&log, value.to_string()).unwrap();
    let out = phoebe()
        .args(["inject", "--replay"])
        .arg(&log)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "phoebe: {} cannot be replayed: it was truncated after 1 entries (of 9 injections), so a replay could \
             not inject what came after them\nhint: run it again with --seed 7 and the same --fault rules \
             instead\n",
            log.display()
        )
    );
}

/// Regression (issue 15): a hung run that failed a call millions of times (EINTR in a retry loop) made a log
/// of 186 MB that its inner phoebe could not write within the grace after the target was killed: the run's
/// evidence was lost. The log stops at 100000 entries, so it is written in time, with exact counts.
#[test]
fn a_hung_run_that_injects_in_a_loop_keeps_its_log() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "x");
    let out = dir.path().join("c");
    let fault = format!("openat:EINTR:path={}", input.display());
    // Retries the open until it succeeds: at once in the baseline, never under injection.
    let spin = format!("until : 2>/dev/null < {}; do :; done", input.display());
    exec(
        &out,
        &["--fault", &fault, "--timeout", "4s", "--", "sh", "-c", &spin],
    );
    let report: Report = phoebe::files::load(&out.join("report.json"), "report").unwrap();
    let run = &report.experiments[0].runs[0];
    assert_eq!(run.verdict, phoebe::model::Verdict::Hung, "{run:?}");
    let log = load_log(&out.join("experiments/openat-EINTR/run-1.log.json"));
    let counted = log.rules[0].injected;
    assert_eq!(run.injected, counted, "the report has the log's exact count");
    assert!(counted > 0);
    if counted > 100_000 {
        assert_eq!(log.truncated_after, Some(100_000));
        assert_eq!(log.injections.len(), 100_000);
    } else {
        assert_eq!(log.truncated_after, None);
        assert_eq!(log.injections.len() as u64, counted);
    }
}
