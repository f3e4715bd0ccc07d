//! Evidence per run (issue 15 item 1): every report format of a campaign says why a run was a finding (the end
//! of its stderr, its first injected calls) and how to run it again; the repro command in report.json, run by a
//! shell, gets the same outcome.

use std::{
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Command, Output},
};

use phoebe::model::{Report, RunResult, TargetExit, Verdict};

use crate::common::*;

/// `phoebe exec` of one run per experiment and one baseline run; the campaign in `out`.
fn campaign(out: &Path, fault: &str, cmd: &[&dyn AsRef<std::ffi::OsStr>]) -> Report {
    let mut c = exec_once();
    c.arg("--out").arg(out).args(["--fault", fault, "--"]);
    for a in cmd {
        c.arg(a);
    }
    c.assert().code(1);
    phoebe::files::load(&out.join("report.json"), "report").expect("report.json")
}

/// The repro command of `run`, as report.json has it, run by `sh -c` in `cwd` (the shell-quoted form is what a
/// person pastes), in the campaign's environment: without cargo's LD_LIBRARY_PATH, as [`phoebe`] runs it (a
/// replay injects by call index, and the loader's probes of each library dir are calls).
fn run_repro(run: &RunResult, cwd: &Path) -> Output {
    let evidence = run.evidence.as_ref().expect("a finding run has evidence");
    assert_eq!(evidence.repro[0], phoebe_path(), "the same phoebe binary");
    Command::new("sh")
        .arg("-c")
        .arg(&evidence.repro_shell)
        .current_dir(cwd)
        .env_remove("PHOEBE_LOG")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap()
}

/// The one run of `phoebe exec` on `sh -c SCRIPT` with `--check CHECK`, `input`'s opens failing with ENOENT (a
/// script that goes on after a failed step, for the evidence of what it said); the campaign in `dir/campaign`.
fn script_run(dir: &Path, input: &Path, script: &str, check: &str) -> RunResult {
    let out = dir.join("campaign");
    let mut c = exec_once();
    c.arg("--out")
        .arg(&out)
        .args(["--check", check])
        .args(["--fault", &format!("openat:ENOENT:path={}", input.display())])
        .args(["--", "sh", "-c", script]);
    c.assert().code(1);
    let report: Report = phoebe::files::load(&out.join("report.json"), "report").unwrap();
    report.experiments[0].runs[0].clone()
}

#[test]
fn a_crash_report_shows_its_abort_message_and_its_repro_crashes_again() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A space in the path: the repro command must quote it.
    let input = input_file(&dir, "in put.txt", "x");
    let out = dir.path().join("campaign");
    let report = campaign(
        &out,
        &format!("read:EIO:path={}", input.display()),
        &[&testapp("abort-on-error"), &input],
    );
    let run = &report.experiments[0].runs[0];
    assert_eq!(run.verdict, Verdict::Crashed, "{run:?}");
    let evidence = run.evidence.as_ref().unwrap();
    let abort = "this cannot happen, aborting";
    assert!(
        evidence.stderr_tail.iter().any(|l| l.contains(abort)),
        "{evidence:?}"
    );
    let call = &evidence.first_injections[0];
    assert_eq!(
        (call.syscall.name(), call.effect.to_string().as_str()),
        ("read", "EIO")
    );
    assert_eq!(call.path.as_deref(), Some(input.to_str().unwrap()));
    assert!(
        evidence.repro.contains(&"--replay".to_owned()),
        "{:?}",
        evidence.repro
    );
    for file in ["summary.md", "report.html", "junit.xml"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(text.contains(abort), "{file} lacks the abort message");
        assert!(text.contains("--replay"), "{file} lacks the repro command");
    }
    assert!(
        std::fs::read_to_string(out.join(&evidence.stderr_file))
            .unwrap()
            .contains(abort)
    );

    let again = run_repro(run, dir.path());
    assert_eq!(run.exit, Some(TargetExit::Signal(libc::SIGABRT)));
    // phoebe inject exits as a shell does for a target killed by a signal: 128 + the signal.
    assert_eq!(
        again.status.code(),
        Some(128 + libc::SIGABRT),
        "{:?} {}",
        again.status.signal(),
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains(abort));
}

#[test]
fn regression_a_runtimes_crash_was_explained_by_the_last_line_of_its_dump() {
    // Found on promtool (Go): `fatal error: runtime: pipe failed`, then 110 lines of goroutine stacks, and the
    // evidence was their last frame. Here a Rust panic whose message does not name the error, then its backtrace.
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "x");
    let out = dir.path().join("campaign");
    let mut c = exec_once();
    c.env("RUST_BACKTRACE", "1")
        .arg("--out")
        .arg(&out)
        .args(["--fault", &format!("read:EIO:path={}", input.display()), "--"])
        .arg(testapp("abort-on-error"))
        .arg("--panic")
        .arg(&input);
    c.assert().code(1);
    let report: Report = phoebe::files::load(&out.join("report.json"), "report").unwrap();
    let run = &report.experiments[0].runs[0];
    assert_eq!(run.verdict, Verdict::Failed, "{run:?}");
    let evidence = run.evidence.as_ref().unwrap();
    let headline = format!(
        "panicked at testapps/src/bin/abort-on-error.rs:19:29: {} could not be read: giving up",
        input.display()
    );
    let crash = evidence.crash_line.as_deref().unwrap_or_default();
    assert!(
        crash.starts_with("thread 'main' ") && crash.ends_with(&headline),
        "{evidence:?}"
    );
    assert_ne!(
        evidence.stderr_tail.last().map(String::as_str),
        Some(crash),
        "the backtrace follows the headline: {:?}",
        evidence.stderr_tail
    );
    assert_eq!(evidence.telling_line().as_deref(), Some(crash));
    assert_eq!(evidence.crash_file, "experiments/read-EIO/run-1.err");
    // phoebe's warning about the fault (read on a directory never returns EIO) names EIO in the same stderr:
    // it is not the program's line.
    assert_eq!(evidence.error_line, None, "{evidence:?}");
    // Every format says it: summary.md in its evidence's one line (clipped to 120 characters).
    for file in ["report.html", "junit.xml"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(text.contains(&headline), "{file} lacks the panic's headline");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("<summary>Evidence: read-EIO run 1 (failed): thread 'main' ("),
        "{md}"
    );
}

#[test]
fn regression_a_cascade_of_errors_and_a_failed_check_were_explained_by_their_last_lines() {
    // Found on SQLite's shell: a failed statement, then `no such table: t` for every statement after it, and the
    // evidence was the last of those; a read error on its script made it stop early with exit 0 and no output,
    // and the evidence was "no output" where the check said what was missing. Here a script that goes on after a
    // failed step, exits 0, and leaves the check something to say.
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "data");
    let copy = dir.path().join("copy.txt");
    let script = format!(
        "echo 'warning: the cache is cold, cannot speed up' >&2; \
         if ! cat '{}' > '{}' 2>/dev/null; then \
           echo 'step 1: could not load the data' >&2; echo 'step 2 failed: nothing to index' >&2; \
         fi; exit 0",
        input.display(),
        copy.display()
    );
    let check = format!(
        "grep -q data '{}' || {{ echo 'check: the copy lacks the data'; exit 1; }}",
        copy.display()
    );
    let run = script_run(dir.path(), &input, &script, &check);
    assert_eq!(
        (run.verdict, run.check_passed),
        (Verdict::Failed, Some(false)),
        "{run:?}"
    );
    let evidence = run.evidence.as_ref().unwrap();
    // The first complaint, not the baseline's warning (every run prints it) nor the cascade's last line.
    assert_eq!(
        evidence.complaint_line.as_deref(),
        Some("step 1: could not load the data"),
        "{evidence:?}"
    );
    assert_eq!(evidence.complaint_file, "experiments/openat-ENOENT/run-1.err");
    assert_eq!(
        evidence.stderr_tail.last().map(String::as_str),
        Some("step 2 failed: nothing to index")
    );
    assert_eq!(
        evidence.telling_line().as_deref(),
        Some("step 1: could not load the data")
    );
    assert_eq!(
        evidence.check_line.as_deref(),
        Some("check: the copy lacks the data")
    );
    assert_eq!(evidence.check_file, "experiments/openat-ENOENT/run-1.check.out");
    for file in ["report.html", "junit.xml"] {
        let text = std::fs::read_to_string(dir.path().join("campaign").join(file)).unwrap();
        assert!(
            text.contains("step 1: could not load the data"),
            "{file} lacks the first complaint"
        );
        assert!(
            text.contains("check: the copy lacks the data"),
            "{file} lacks what the check said"
        );
    }
}

/// Found on javac (JDK 17) under `mmap-ENOMEM`: the JVM says why it could not start on stdout (`Error occurred
/// during initialization of VM`), its stderr was empty, and the evidence was what the check said about the jar it
/// never made. The first complaint is looked for in stdout when stderr has none, and a line every baseline run
/// printed (here, on stdout) is none.
#[test]
fn regression_a_complaint_on_stdout_was_passed_over_for_the_check() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "data");
    let copy = dir.path().join("copy.txt");
    let script = format!(
        "echo 'checking for errors: none'; \
         if ! cat '{}' > '{}' 2>/dev/null; then echo 'Error occurred during initialization'; echo 'Could not load'; \
         exit 1; fi",
        input.display(),
        copy.display()
    );
    let check = format!(
        "test -s '{}' || {{ echo 'check: nothing was made'; exit 1; }}",
        copy.display()
    );
    let run = script_run(dir.path(), &input, &script, &check);
    assert_eq!(run.verdict, Verdict::Failed, "{run:?}");
    let evidence = run.evidence.as_ref().unwrap();
    // Not `checking for errors: none`: every baseline run printed it.
    assert_eq!(
        evidence.complaint_line.as_deref(),
        Some("Error occurred during initialization"),
        "{evidence:?}"
    );
    assert_eq!(evidence.complaint_file, "experiments/openat-ENOENT/run-1.out");
    assert_eq!(
        evidence.telling_line().as_deref(),
        Some("Error occurred during initialization")
    );
    assert_eq!(evidence.check_line.as_deref(), Some("check: nothing was made"));
}

/// javac (JDK 17) under `mmap-ENOMEM`, rerun: HotSpot wrote `# There is insufficient memory for the Java Runtime
/// Environment to continue.` on stdout, and the evidence was a warning of stderr
/// (`os::commit_memory(…) failed; error='Not enough space'`). A runtime's last words are looked for in stdout
/// when stderr has none.
#[test]
fn regression_hotspots_fatal_header_on_stdout_was_passed_over_for_a_warning() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "data");
    let copy = dir.path().join("copy.txt");
    let script = format!(
        "if ! cat '{}' > '{}' 2>/dev/null; then \
           echo 'VM warning: INFO: os::commit_memory failed; error=not enough space' >&2; \
           printf '#\\n# There is insufficient memory for the Java Runtime Environment to continue.\\n\
# Native memory allocation (mmap) failed to map 16384 bytes.\\n'; exit 1; fi",
        input.display(),
        copy.display()
    );
    let check = format!("test -s '{}'", copy.display());
    let run = script_run(dir.path(), &input, &script, &check);
    let evidence = run.evidence.as_ref().unwrap();
    let headline = "There is insufficient memory for the Java Runtime Environment to continue. Native memory \
                    allocation (mmap) failed to map 16384 bytes.";
    assert_eq!(evidence.crash_line.as_deref(), Some(headline), "{evidence:?}");
    assert_eq!(evidence.crash_file, "experiments/openat-ENOENT/run-1.out");
    assert_eq!(evidence.telling_line().as_deref(), Some(headline));
}

#[test]
fn a_failed_runs_repro_fails_the_same_way() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "data");
    let out = dir.path().join("campaign");
    let report = campaign(
        &out,
        &format!("openat:ENOENT:path={}", input.display()),
        &[&testapp("retry-reader"), &input],
    );
    let run = &report.experiments[0].runs[0];
    assert_eq!(run.verdict, Verdict::Failed, "{run:?}");
    let evidence = run.evidence.as_ref().unwrap();
    assert_eq!(
        evidence.telling_line().as_deref(),
        Some(
            format!(
                "retry-reader: cannot open {}: No such file or directory (os error 2)",
                input.display()
            )
            .as_str()
        )
    );
    let again = run_repro(run, dir.path());
    assert_eq!(run.exit, Some(TargetExit::Code(1)));
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("cannot open"));
}

#[test]
fn a_corrupted_runs_evidence_has_what_the_plain_run_after_it_said() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.txt");
    let out = dir.path().join("campaign");
    let app = testapp("state-rewriter");
    let mut c = exec_once();
    c.arg("--out")
        .arg(&out)
        .args(["--fault", &format!("write:EIO:nth=2:path={}", state.display())])
        .args([
            "--check",
            &format!("{} --check {}", app.display(), state.display()),
        ])
        .args(["--reset", &format!("rm -f {}", state.display())])
        .arg("--")
        .arg(&app)
        .arg(&state);
    c.assert().code(1);
    let report: Report = phoebe::files::load(&out.join("report.json"), "report").unwrap();
    let run = &report.experiments[0].runs[0];
    assert_eq!(run.verdict, Verdict::Corrupted, "{run:?}");
    let evidence = run.evidence.as_ref().unwrap();
    assert!(
        evidence.stderr_tail.iter().any(|l| l.contains("cannot write")),
        "{evidence:?}"
    );
    let corrupt = format!("state-rewriter: corrupt state in {}", state.display());
    assert_eq!(evidence.post_stderr_tail, std::slice::from_ref(&corrupt));
    assert_eq!(evidence.post_stderr_file, "experiments/write-EIO/post-1.err");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("stderr of the plain run after injection") && md.contains(&corrupt));
}

/// A hung run's log ends where the timeout stopped it: a replay would inject those calls and then let the program
/// go on. Its repro keeps the seed and the rules, and hangs again.
#[test]
fn a_hung_runs_repro_keeps_the_seed_and_hangs_again() {
    use std::os::unix::process::CommandExt;
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "x");
    let out = dir.path().join("campaign");
    let mut c = exec_once();
    // The timeout is the baseline's too: 2 s was once too little for its run under the debug build's own eBPF
    // observer on a loaded machine ("a baseline run of the target timed out after 2.43s").
    c.args(["--timeout", "5s", "--out"])
        .arg(&out)
        .args([
            "--fault",
            &format!("openat:ENOENT:path={}", input.display()),
            "--",
        ])
        .arg(testapp("spin-on-error"))
        .arg(&input);
    c.assert().code(1);
    let report: Report = phoebe::files::load(&out.join("report.json"), "report").unwrap();
    let run = &report.experiments[0].runs[0];
    assert_eq!(run.verdict, Verdict::Hung, "{run:?}");
    let evidence = run.evidence.as_ref().unwrap();
    assert!(
        !evidence.repro.contains(&"--replay".to_owned()),
        "{:?}",
        evidence.repro
    );
    assert!(
        evidence.repro_shell.contains(&format!("--seed {}", run.seed)),
        "{}",
        evidence.repro_shell
    );

    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&evidence.repro_shell)
        .current_dir(dir.path())
        .env_remove("PHOEBE_LOG")
        .env_remove("LD_LIBRARY_PATH")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let still_running = child.try_wait().unwrap().is_none();
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    assert!(still_running, "the repro of a hung run hangs again");
}
