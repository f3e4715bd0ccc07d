//! `phoebe exec`: the whole loop, with test apps whose verdicts are known in advance.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use phoebe::model::{Report, Verdict};
use predicates::prelude::*;

use crate::common::*;

/// Parses a JUnit file with a real XML parser: the `<testcase>` names and how many have a `<failure>`.
pub(crate) fn parse_junit(path: &Path) -> (Vec<String>, usize) {
    use quick_xml::{events::Event, reader::Reader};
    let xml = std::fs::read_to_string(path).unwrap();
    let mut reader = Reader::from_str(&xml);
    let (mut cases, mut failures) = (Vec::new(), 0);
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("{} is not valid XML: {e}", path.display()))
        {
            Event::Start(tag) | Event::Empty(tag) => match tag.name().as_ref() {
                "testcase" => {
                    let name = tag.try_get_attribute("name").unwrap().expect("testcase name");
                    cases.push(name.value.to_string());
                }
                "failure" => failures += 1,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    (cases, failures)
}

fn load_report(dir: &Path) -> Report {
    phoebe::files::load(&dir.join("report.json"), "report").expect("report.json")
}

fn verdicts(report: &Report) -> Vec<(String, Verdict)> {
    report
        .experiments
        .iter()
        .map(|e| (e.id.clone(), e.verdict))
        .collect()
}

/// `phoebe exec --out DIR --fault F… -- CMD…`, with one run per experiment and one baseline run unless `extra`
/// says otherwise: the tests that do not count runs need no more, and CI time matters.
fn exec(
    out: &Path,
    faults: &[String],
    extra: &[&str],
    cmd: &[&dyn AsRef<std::ffi::OsStr>],
) -> assert_cmd::assert::Assert {
    let mut c = phoebe();
    c.args(["exec", "-q", "--seed", "11", "--out"]).arg(out);
    for flag in ["--runs", "--baseline-runs"] {
        if !extra.contains(&flag) {
            c.args([flag, "1"]);
        }
    }
    for f in faults {
        c.arg("--fault").arg(f);
    }
    c.args(extra).arg("--");
    for a in cmd {
        c.arg(a);
    }
    c.assert()
}

/// `--ready` for `echo-service` on `port`: a connection is accepted.
fn echo_ready(port: u16) -> String {
    format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'")
}

/// `--workload` for `echo-service` on `port`: one request, answered `ok …` within `seconds`.
fn echo_workload(port: u16, seconds: u32) -> String {
    format!(
        "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo get >&3 && read -t {seconds} reply <&3 && [[ $reply == ok* ]]'"
    )
}

#[test]
fn retry_reader_copes_with_eagain_but_not_with_a_missing_input() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", &"data ".repeat(5000));
    let out = dir.path().join("campaign");
    let faults = [
        format!("read:EAGAIN:p=0.3:path={}", input.display()),
        format!("openat:ENOENT:path={}", input.display()),
        "mknod:EPERM".to_owned(),
    ];
    exec(
        &out,
        &faults,
        &["--runs", "2"],
        &[&testapp("retry-reader"), &input],
    )
    .code(1) // a failed experiment
    .stdout(predicate::str::contains("openat-ENOENT"));
    let report = load_report(&out);
    assert_eq!(
        verdicts(&report),
        [
            ("read-EAGAIN".to_owned(), Verdict::Resilient),
            ("openat-ENOENT".to_owned(), Verdict::Failed),
            ("mknod-EPERM".to_owned(), Verdict::NotExercised),
        ]
    );
    let read = &report.experiments[0];
    assert_eq!(read.runs.len(), 2);
    assert!(
        read.runs
            .iter()
            .all(|r| r.injected > 0 && r.post_run_passed == Some(true))
    );
    assert_eq!(
        report.experiments[1].runs[0].detail,
        "exit status 1, baseline exit status 0"
    );
    for file in [
        "report.html",
        "junit.xml",
        "summary.md",
        "campaign.json",
        "plan.json",
        "baseline.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(out.join("experiments/openat-ENOENT/run-1.log.json").is_file());
    // The run's own output is kept next to its log.
    let stderr = std::fs::read_to_string(out.join("experiments/openat-ENOENT/run-1.err")).unwrap();
    assert!(stderr.contains("retry-reader: cannot open"), "{stderr}");
}

#[test]
fn a_half_done_in_place_rewrite_is_corrupted() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.txt");
    let out = dir.path().join("campaign");
    let app = testapp("state-rewriter");
    let check = format!("{} --check {}", app.display(), state.display());
    let reset = format!("rm -f {}", state.display());
    // The second write to the state file fails: the file is left truncated after its first line.
    let faults = [format!("write:EIO:nth=2:path={}", state.display())];
    exec(
        &out,
        &faults,
        &["--check", &check, "--reset", &reset],
        &[&app, &state],
    )
    .code(1);
    let report = load_report(&out);
    assert_eq!(verdicts(&report), [("write-EIO".to_owned(), Verdict::Corrupted)]);
    let run = &report.experiments[0].runs[0];
    assert_eq!(
        (run.injected, run.check_passed, run.post_run_passed),
        (1, Some(false), Some(false))
    );
    assert_eq!(report.baseline.runs[0].check_passed, Some(true));
}

/// Regression, found on `zstd -T2 data -o data.zst`: every exercised experiment, `futex-EAGAIN` included, was
/// `corrupted` — "the run after injection stopped failed" — because zstd refuses to overwrite the output the run
/// before it wrote ("data.zst already exists; not overwritten"), which a plain run after a plain run does too. The
/// baseline now makes that plain rerun (`baseline/rerun.*`): when it fails, the plain run after injection says
/// nothing of damage and is not made. `write-once --new` refuses to overwrite as zstd does; Rust's `open` retries
/// an injected EINTR, so the run itself copes.
#[test]
fn regression_a_program_that_will_not_overwrite_its_output_was_corrupted_by_every_fault() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.txt");
    let reset = format!("rm -f {}", file.display());
    let faults = [format!("openat:EINTR:max=1:path={}", file.display())];
    let app = testapp("write-once");
    let campaign = |name: &str, new: bool| {
        let out = dir.path().join(name);
        let mut cmd: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&app];
        if new {
            cmd.push(&"--new");
        }
        cmd.push(&file);
        cmd.push(&"hello");
        exec(&out, &faults, &["--reset", &reset], &cmd).code(0);
        (load_report(&out), out)
    };
    let (report, out) = campaign("no-clobber", true);
    assert_eq!(
        verdicts(&report),
        [("openat-EINTR".to_owned(), Verdict::Resilient)]
    );
    assert_eq!(report.baseline.rerun_passed, Some(false));
    assert!(
        std::fs::read_to_string(out.join("baseline/rerun.err"))
            .unwrap()
            .contains("File exists")
    );
    let run = &report.experiments[0].runs[0];
    assert_eq!((run.injected, run.post_run_passed), (1, None), "{run:?}");
    assert!(!out.join("experiments/openat-EINTR/post-1.out").exists());
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains(
            "exit status 0 over 1 run (a plain run right after a passing one fails without --reset, \
             baseline/rerun.err: damage is not judged by the plain run after injection), timeout"
        ),
        "{summary}"
    );
    // A program that overwrites its output passes the rerun, and the plain run after injection is made.
    let (report, _) = campaign("clobber", false);
    assert_eq!(report.baseline.rerun_passed, Some(true));
    assert_eq!(report.experiments[0].runs[0].post_run_passed, Some(true));
}

#[test]
fn a_program_that_spins_on_an_error_hangs() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "x");
    let out = dir.path().join("campaign");
    let faults = [format!("openat:ENOENT:path={}", input.display())];
    // Long enough for the inner phoebe and the target to reach the injected open on a loaded machine (CI runs the
    // VM guests beside this test: at 2 s the run was once stopped before its first injection).
    exec(
        &out,
        &faults,
        &["--timeout", "6s"],
        &[&testapp("spin-on-error"), &input],
    )
    .code(1);
    let report = load_report(&out);
    assert_eq!(verdicts(&report), [("openat-ENOENT".to_owned(), Verdict::Hung)]);
    assert_eq!(report.baseline.timeout_ms, 6000);
    let run = &report.experiments[0].runs[0];
    assert!(run.injected >= 1, "the log of the stopped run was kept: {run:?}");
    assert!(run.duration_ms >= 6000);
    // What it was waiting in when the timeout came: its 10 ms sleep between retries (or, caught in between, the
    // open it retries).
    let evidence = run.evidence.as_ref().expect("a hung run has evidence");
    let waits = evidence.hung_in.as_deref().unwrap_or_default();
    assert!(
        ["clock_nanosleep", "openat", "running"]
            .iter()
            .any(|w| waits.starts_with(w)),
        "{evidence:?}"
    );
    assert_eq!(evidence.hung_file, "experiments/openat-ENOENT/run-1.hung");
    let file = std::fs::read_to_string(out.join(&evidence.hung_file)).unwrap();
    assert!(file.contains("\tspin-on-error\t"), "{file}");
    assert_eq!(
        evidence.telling_line().as_deref(),
        Some(format!("waiting in {waits}").as_str())
    );
}

#[test]
fn a_program_that_aborts_on_an_error_crashes() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "x");
    let out = dir.path().join("campaign");
    let faults = [format!("read:EIO:path={}", input.display())];
    exec(&out, &faults, &[], &[&testapp("abort-on-error"), &input]).code(1);
    let report = load_report(&out);
    assert_eq!(verdicts(&report), [("read-EIO".to_owned(), Verdict::Crashed)]);
    assert_eq!(
        report.experiments[0].runs[0].detail,
        "killed by SIGABRT after 1 injection(s)"
    );
}

#[test]
fn fail_on_decides_the_exit_status() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "x");
    let out = dir.path().join("campaign");
    let faults = [format!("read:EIO:path={}", input.display())];
    // Crashes are accepted here: exit 0.
    exec(
        &out,
        &faults,
        &["--fail-on", "failed,hung"],
        &[&testapp("abort-on-error"), &input],
    )
    .success();
}

#[test]
fn synthesized_models_of_the_java_app() {
    if !ptrace_works() {
        return;
    }
    let Some(jar) = java_jar() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = input_file(&dir, "a.txt", "alpha\n");
    let out = dir.path().join("campaign");
    let report_file = dir.path().join("report.txt");
    // The JVM's natural failures that make models are its futex races (its probes for absent files always fail:
    // state, excluded), which one run may not meet on an idle or a busy machine: three baseline runs pool theirs
    // (it failed once with one, "the plan has no models", in a local run beside other builds).
    let assert = exec(
        &out,
        &[],
        &["--interval", "100ms", "--baseline-runs", "3"],
        &[&"java", &"-jar", &jar, &report_file, &a],
    );
    let code = assert.get_output().status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "exit {code:?}: {}",
        String::from_utf8_lossy(&assert.get_output().stderr)
    );
    let plan: phoebe::model::Plan = phoebe::files::load(&out.join("plan.json"), "plan").unwrap();
    // The JVM fails some calls by itself (its threads race on futexes).
    assert!(!plan.models.is_empty(), "no model from the JVM's natural errors");
    assert!(
        plan.models
            .iter()
            .any(|m| ["openat", "futex", "newfstatat", "readlink"].contains(&m.syscall.name()))
    );
    let report = load_report(&out);
    assert_eq!(report.experiments.len(), plan.models.len());
    assert!(report.natural_rates.len() == plan.models.len());
    assert_eq!(report.baseline.exit, phoebe::model::TargetExit::Code(0));
    let (cases, _) = parse_junit(&out.join("junit.xml"));
    let ids: Vec<String> = plan.models.iter().map(|m| m.id.clone()).collect();
    assert_eq!(cases, ids);
}

#[test]
fn cargo_test_under_phoebe_exec() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("tiny");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        project.join("src/lib.rs"),
        "pub fn add(a: u32, b: u32) -> u32 { a + b }\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(super::add(2, 2), 4); }\n}\n",
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Build once outside phoebe so the campaign measures the test run, not the compiler.
    let built = Command::new(&cargo)
        .args(["test", "--offline", "-q", "--no-run"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", project.join("target"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(built.success());
    let out = dir.path().join("campaign");
    let faults = ["openat:ENOENT:p=0.05".to_owned(), "mknod:EPERM".to_owned()];
    // An ENOENT injected into the loader of `rustc -vV` fails it, and cargo keeps that failure in
    // target/.rustc_info.json and replays it in every later run without running rustc again (cargo issue
    // 15358): the damage outlives the fault, and without this reset the campaign stops there.
    let reset = format!("rm -f {}", project.join("target/.rustc_info.json").display());
    let assert = phoebe()
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", project.join("target"))
        .args([
            "exec",
            "-q",
            "--seed",
            "3",
            "--runs",
            "1",
            "--baseline-runs",
            "1",
            "--reset",
            &reset,
            "--out",
        ])
        .arg(&out)
        .args(["--fault", &faults[0], "--fault", &faults[1], "--"])
        .arg(&cargo)
        .args(["test", "--offline", "-q"])
        .assert();
    let code = assert.get_output().status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "exit {code:?}: {}",
        String::from_utf8_lossy(&assert.get_output().stderr)
    );
    let report = load_report(&out);
    assert_eq!(report.baseline.exit, phoebe::model::TargetExit::Code(0));
    assert_eq!(report.experiments[1].verdict, Verdict::NotExercised);
    assert!(report.experiments[0].runs[0].matched > 0, "cargo opens files");
    let (cases, failures) = parse_junit(&out.join("junit.xml"));
    assert_eq!(cases, ["openat-ENOENT", "mknod-EPERM"]);
    let failing = report
        .experiments
        .iter()
        .filter(|e| e.verdict.is_finding())
        .count();
    assert_eq!(failures, failing);
}

/// Asserts that the campaign in `out` names `test` as broken by `experiment` in its terminal output (`stdout`),
/// summary.md, report.html, junit.xml (a failed testcase `<experiment> broke <test>`) and report.json.
fn assert_broken_test_named(out: &Path, stdout: &str, experiment: &str, test: &str) {
    let report = load_report(out);
    let exp = report
        .experiments
        .iter()
        .find(|e| e.id == experiment)
        .unwrap_or_else(|| panic!("no experiment {experiment}"));
    assert_eq!(exp.broken_tests, [test], "{stdout}");
    assert!(stdout.contains(&format!("broke: {test}")), "{stdout}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains(&format!("- {experiment} broke `{test}`")), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains(&format!("<code>{experiment}</code> broke <code>{test}</code>")),
        "{html}"
    );
    let (cases, _) = parse_junit(&out.join("junit.xml"));
    assert!(cases.contains(&format!("{experiment} broke {test}")), "{cases:?}");
}

/// A fault that breaks exactly one test of a cargo test suite: the report names that test, the one that
/// passed in the baseline and failed under the fault, and no other.
#[test]
fn cargo_test_names_the_test_a_fault_broke() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().canonicalize().unwrap().join("tiny");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    let data = project.join("data.txt");
    std::fs::write(&data, "42\n").unwrap();
    std::fs::write(
        project.join("src/lib.rs"),
        "#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(2 + 2, 4); }\n    #[test]\n    \
         fn reads() {\n        let s = std::fs::read_to_string(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/data.txt\")).unwrap();\n        \
         assert_eq!(s.trim(), \"42\");\n    }\n}\n",
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .args(["test", "--offline", "-q", "--no-run"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", project.join("target"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(built.success());
    let out = dir.path().join("campaign");
    let fault = format!("openat:ENOENT:path={}", data.display());
    let assert = phoebe()
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", project.join("target"))
        .args([
            "exec",
            "-q",
            "--seed",
            "3",
            "--runs",
            "1",
            "--baseline-runs",
            "1",
            "--out",
        ])
        .arg(&out)
        .args(["--fault", &fault, "--"])
        .arg(&cargo)
        .args(["test", "--offline", "--lib"])
        .assert();
    let output = assert.get_output();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_broken_test_named(&out, &stdout, "openat-ENOENT", "tests::reads");
    // The progress line (-q: one line per experiment) says it too.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("; broke tests::reads)"), "{stderr}");
}

/// A Python with pytest: `python3` on PATH, else Debian's `/usr/bin/python3` (ci/setup installs python3-pytest);
/// `None` after saying why the test is skipped.
fn python_with_pytest() -> Option<PathBuf> {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-m", "pytest", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(PathBuf::from(python));
        }
    }
    skipped("python3 -m pytest is not available (ci/setup installs python3-pytest)");
    None
}

/// A fault that breaks exactly one test of a pytest suite (two tests, one reads a data file): the report names
/// it as pytest does, `test_suite.py::test_reads`, from pytest's output.
#[test]
fn pytest_names_the_test_a_fault_broke() {
    pytest_campaign(&[], &[], "test_suite.py::test_reads", None);
}

/// The same suite with `--tests junit:GLOB`: the results come from the JUnit XML pytest writes
/// (`--junitxml`), where the test is `CLASSNAME.NAME`; a glob that matches nothing is warned about once.
#[test]
fn junit_files_name_the_test_a_fault_broke() {
    pytest_campaign(
        &["--tests", "junit:reports/*.xml"],
        &["--junitxml=reports/results.xml"],
        "test_suite.test_reads",
        None,
    );
    pytest_campaign(
        &["--tests", "junit:nowhere/*.xml"],
        &[],
        "",
        Some("--tests junit:nowhere/*.xml matched no file written by the run"),
    );
}

/// A campaign on the pytest suite: `exec_args` before `--`, `pytest_args` after pytest's; `broken` is the test
/// the report must name (none when empty), `warning` what stderr must say exactly once.
fn pytest_campaign(exec_args: &[&str], pytest_args: &[&str], broken: &str, warning: Option<&str>) {
    if !ptrace_works() {
        return;
    }
    let Some(python) = python_with_pytest() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().canonicalize().unwrap().join("suite");
    std::fs::create_dir_all(&suite).unwrap();
    let data = suite.join("data.txt");
    std::fs::write(&data, "42\n").unwrap();
    std::fs::write(
        suite.join("test_suite.py"),
        format!(
            "def test_adds():\n    assert 2 + 2 == 4\n\n\ndef test_reads():\n    with open({:?}) as f:\n        \
             assert f.read() == \"42\\n\"\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let out = dir.path().join("campaign");
    let fault = format!("openat:ENOENT:path={}", data.display());
    let assert = phoebe()
        .current_dir(&suite)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args([
            "exec",
            "-q",
            "--seed",
            "3",
            "--runs",
            "1",
            "--baseline-runs",
            "1",
            "--out",
        ])
        .arg(&out)
        .args(["--fault", &fault])
        .args(exec_args)
        .arg("--")
        .arg(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_suite.py"])
        .args(pytest_args)
        .assert();
    let output = assert.get_output();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    if broken.is_empty() {
        assert!(load_report(&out).experiments[0].broken_tests.is_empty());
        assert!(!stdout.contains("broke:"), "{stdout}");
    } else {
        assert_broken_test_named(&out, &stdout, "openat-ENOENT", broken);
    }
    if let Some(warning) = warning {
        assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    }
}

#[test]
fn sigint_keeps_finished_experiments_and_resume_completes_the_campaign() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    let mut cmd = Command::new(phoebe_path());
    cmd.env_remove("LD_LIBRARY_PATH")
        .args([
            "exec",
            "-q",
            "--seed",
            "5",
            "--runs",
            "1",
            "--baseline-runs",
            "1",
            "--out",
        ])
        .arg(&out);
    for sc in ["getrandom", "mknod", "mkdir", "rmdir"] {
        cmd.args(["--fault", &format!("{sc}:EPERM")]);
    }
    cmd.arg("--")
        .arg(testapp("sigloop"))
        .args(["--iterations", "15", "--sleep-ms", "40"]);
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // Wait until the first experiment has its result, then interrupt.
    let first = out.join("experiments/getrandom-EPERM/result.json");
    let waited = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        first.exists()
    });
    assert!(waited, "the first experiment never finished");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let partial = load_report(&out);
    assert!(partial.interrupted);
    assert!(
        !partial.experiments.is_empty() && !partial.pending.is_empty(),
        "{partial:?}"
    );
    let done_before: Vec<String> = partial.experiments.iter().map(|e| e.id.clone()).collect();

    let resumed = phoebe().args(["exec", "--quiet", "--resume"]).arg(&out).assert();
    let stderr = String::from_utf8(resumed.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("[from an earlier run]"), "{stderr}");
    let full = load_report(&out);
    assert!(!full.interrupted);
    assert!(full.pending.is_empty());
    assert_eq!(full.experiments.len(), 4);
    for id in done_before {
        let before = partial.experiments.iter().find(|e| e.id == id).unwrap();
        let after = full.experiments.iter().find(|e| e.id == id).unwrap();
        assert_eq!(before, after, "a finished experiment was run again");
    }
}

/// Regression (issue 13, item 3): `exec` interrupted during the baseline exited 0 with an empty report marked
/// `interrupted: false`, so a cancelled CI job showed green.
#[test]
fn exec_interrupted_during_the_baseline_exits_0() {
    if !ptrace_works() {
        return;
    }
    for (signal, code) in [
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGTERM, 143),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("campaign");
        let mut child = Command::new(phoebe_path())
            .env_remove("LD_LIBRARY_PATH")
            .args(["exec", "-q", "--fault", "getppid:EPERM", "--out"])
            .arg(&out)
            .args(["--", "sleep", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The baseline's first run has started once its stderr file exists.
        let started = out.join("baseline/run-1.err");
        let waited = (0..600).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            started.exists()
        });
        assert!(waited, "the baseline never started");
        std::thread::sleep(Duration::from_millis(300));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{signal}");
        let report = load_report(&out);
        assert!(report.interrupted, "{signal}: {report:?}");
        assert_eq!(report.pending, ["getppid-EPERM"], "{signal}");
        assert!(
            !out.join("baseline.json").exists(),
            "an interrupted baseline is no steady state"
        );
    }
}

/// The plan example of `docs/formats.md`, as JSON.
fn plan_example() -> serde_json::Value {
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/formats.md")).unwrap();
    let start = md.find("```json plan\n").expect("a plan example") + "```json plan\n".len();
    let end = start + md[start..].find("\n```").unwrap();
    serde_json::from_str(&md[start..end]).unwrap()
}

/// Regression (issue 13, item 6): a plan model `id` of `../../../../tmp/x` made `exec` write results and logs
/// outside `--out`. Ids are checked when a plan is loaded, before anything runs: one sentence naming the file
/// and the id, exit 2 — for `--plan` and for a campaign directory's `plan.json` on `--resume`.
#[test]
fn plan_model_id_of_dotdot_wrote_outside_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    for id in ["../../../../tmp/x", "../../escaped", "", ".hidden", "a/b"] {
        let mut plan = plan_example();
        plan["models"][0]["id"] = id.into();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, plan.to_string()).unwrap();
        let assert = phoebe()
            .args(["exec", "-q", "--out"])
            .arg(&out)
            .arg("--plan")
            .arg(&path)
            .args(["--", "true"])
            .assert()
            .code(2);
        let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        assert!(
            stderr.starts_with(&format!(
                "phoebe: {}: model id '{id}' is not a plain name",
                path.display()
            )),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 2, "{stderr}");
        assert!(!dir.path().join("escaped").exists());
        assert!(!out.exists(), "nothing may be written before the plan is checked");
    }
    // A campaign directory whose plan.json was edited: refused on --resume.
    let mut plan = plan_example();
    plan["models"][0]["id"] = "../../escaped".into();
    std::fs::create_dir_all(&out).unwrap();
    let campaign = serde_json::json!({
        "version": 1, "command": ["true"], "backend": "auto", "runs": 1, "baseline_runs": 1,
        "timeout_ms": null, "check": null, "reset": null, "seed": 1, "interval_ms": 1000,
        "settings": plan["settings"], "faults": [], "shard": null
    });
    std::fs::write(out.join("campaign.json"), campaign.to_string()).unwrap();
    std::fs::write(out.join("plan.json"), plan.to_string()).unwrap();
    phoebe()
        .args(["exec", "-q", "--resume"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "\nphoebe: {}: model id '../../escaped' is not a plain name",
            out.join("plan.json").display()
        )));
    assert!(!dir.path().join("escaped").exists());
}

/// Regression (issue 13, item 7): `--resume DIR -- othercmd` ignored the command and ran the saved one.
#[test]
fn resume_with_another_command_ignored_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    std::fs::create_dir(&out).unwrap();
    let campaign = serde_json::json!({
        "version": 1, "command": ["true"], "backend": "auto", "runs": 1, "baseline_runs": 1,
        "timeout_ms": null, "check": null, "reset": null, "seed": 1, "interval_ms": 1000,
        "settings": plan_example()["settings"], "faults": ["getppid:EPERM"], "shard": null
    });
    std::fs::write(out.join("campaign.json"), campaign.to_string()).unwrap();
    phoebe()
        .args(["exec", "-q", "--resume"])
        .arg(&out)
        .args(["--", "false"])
        .assert()
        .code(2)
        .stderr(format!(
            "phoebe: {} holds a campaign for 'true', not for 'false'\nhint: use another --out, or --resume {} \
             without a command\n",
            out.display(),
            out.display()
        ));
    assert!(!out.join("baseline").exists(), "nothing ran");
}

/// Regression (issue 13, fuzzing): a `campaign.json` with `"shard": {"index": 1, "count": 0}` made
/// `exec --resume` panic (a remainder by zero), and one with `"baseline_runs": 0` panicked after an empty
/// baseline. A resumed campaign is checked first: exit 2, one sentence naming the field and the file.
#[test]
fn resume_of_a_campaign_with_shard_count_0_or_no_baseline_run_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    std::fs::create_dir(&out).unwrap();
    let campaign = serde_json::json!({
        "version": 1, "command": ["true"], "backend": "auto", "runs": 1, "baseline_runs": 1,
        "timeout_ms": null, "check": null, "reset": null, "seed": 1, "interval_ms": 1000,
        "settings": plan_example()["settings"], "faults": ["getppid:EPERM", "getpid:EPERM"], "shard": null
    });
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 2] = [
        (
            |c| c["shard"] = serde_json::json!({"index": 1, "count": 0}),
            "\"shard\" is 1/0, expected K/N with 1 ≤ K ≤ N",
        ),
        (
            |c| c["baseline_runs"] = 0.into(),
            "\"baseline_runs\" is 0: a campaign needs at least 1",
        ),
    ];
    for (edit, problem) in cases {
        let mut bad = campaign.clone();
        edit(&mut bad);
        std::fs::write(out.join("campaign.json"), bad.to_string()).unwrap();
        phoebe()
            .args(["exec", "-q", "--resume"])
            .arg(&out)
            .assert()
            .code(2)
            .stderr(format!(
                "phoebe: cannot resume {}: {problem} in {}\nhint: start the campaign again with --out\n",
                out.display(),
                out.join("campaign.json").display()
            ));
        assert!(!out.join("baseline").exists(), "nothing ran");
    }
}

/// Regression (issue 13, item 7): a plan with no models exited 0 (a campaign that tested nothing passed).
#[test]
fn plan_with_no_models_exited_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    let mut plan = plan_example();
    plan["models"] = serde_json::json!([]);
    let path = dir.path().join("plan.json");
    std::fs::write(&path, plan.to_string()).unwrap();
    phoebe()
        .args(["exec", "-q", "--out"])
        .arg(&out)
        .arg("--plan")
        .arg(&path)
        .args(["--", "true"])
        .assert()
        .code(2)
        .stderr(format!(
            "phoebe: {} has no models, so the campaign would test nothing\nhint: synthesize a plan from an \
             observation in which the target fails some calls, or give --fault SPEC\n",
            path.display()
        ));
    assert!(!out.exists(), "refused before running");
}

/// Regression (issue 13, item 7): a full disk in an inner run said "no output (see run-1.err)": the inner
/// phoebe's error message went to the same full disk. The outer phoebe now names ENOSPC. The target fills a
/// 1 MiB tmpfs that holds the campaign directory, in a mount namespace of the test's own (root only).
#[test]
fn a_full_disk_in_an_inner_run_said_no_output() {
    if !ptrace_works() {
        return;
    }
    let namespace = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status();
    if !namespace.is_ok_and(|s| s.success()) {
        skipped("cannot make a mount namespace (unshare --mount needs root and util-linux)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs -o size=1m tmpfs \"$1\" && exec \"$2\" exec -q --out \"$1/c\" -- \
             sh -c \"cat /dev/zero > '$1/fill' 2>/dev/null; true\"",
        )
        .arg("sh")
        .arg(dir.path())
        .arg(phoebe_path())
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let baseline = dir.path().join("c/baseline");
    assert!(
        stderr.ends_with(&format!(
            "phoebe: baseline run 1 failed: no output (see {}); the file system of {} is full (0 KiB free): \
             writes there fail with ENOSPC (No space left on device)\n",
            baseline.join("run-1.err").display(),
            baseline.display()
        )),
        "{stderr}"
    );
}

/// Regression (issue 13, item 7): a campaign whose own synthesized plan had no models exited 0 with a note, as
/// if every experiment had been resilient. It exits 2 now, after writing the report, naming plan.json.
#[test]
fn a_synthesized_plan_with_no_models_exited_0() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    let assert = phoebe()
        .args(["exec", "-q", "--out"])
        .arg(&out)
        .args(["--", "true"])
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.ends_with(&format!(
            "phoebe: the plan has no models: the baseline failed no call worth injecting, so nothing was tested \
             ({} lists the errors left out and why)\nhint: --explore plausible tries the errors production meets on \
             the calls the program made, or give --fault SPEC to test chosen errors\n",
            out.join("plan.json").display()
        )),
        "{stderr}"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["models"], serde_json::json!([]));
    assert!(out.join("report.json").is_file(), "the report is written");
}

#[test]
fn shards_merge_into_one_report() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "x");
    let faults: Vec<String> = ["mknod:EPERM", "mkdir:EPERM", "rmdir:EPERM"]
        .map(String::from)
        .to_vec();
    let shard_dirs: Vec<PathBuf> = (1..=2).map(|k| dir.path().join(format!("shard-{k}"))).collect();
    for (k, d) in shard_dirs.iter().enumerate() {
        let shard = format!("{}/2", k + 1);
        exec(
            d,
            &faults,
            &["--shard", &shard],
            &[&testapp("retry-reader"), &input],
        )
        .success();
        let r = load_report(d);
        assert_eq!(r.shard.as_deref(), Some(shard.as_str()));
    }
    assert_eq!(load_report(&shard_dirs[0]).experiments.len(), 2);
    assert_eq!(load_report(&shard_dirs[1]).experiments.len(), 1);
    let merged = dir.path().join("merged");
    phoebe()
        .args(["report", "merge"])
        .args(&shard_dirs)
        .arg("-o")
        .arg(&merged)
        .assert()
        .success()
        .stdout(predicate::str::contains("mkdir-EPERM"));
    let report = load_report(&merged);
    assert_eq!(report.experiments.len(), 3);
    assert!(report.pending.is_empty());
    // Re-rendering works from the merged directory too.
    phoebe()
        .args(["report", "--format", "junit"])
        .arg(&merged)
        .assert()
        .success()
        .stdout(predicate::str::contains("<testcase").count(3));
}

#[test]
fn exec_refuses_bad_setups() {
    let dir = tempfile::tempdir().unwrap();
    // A shard without a shared plan would split experiments that differ from shard to shard.
    phoebe()
        .args(["exec", "--shard", "1/2", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "phoebe: --shard needs --plan FILE or --fault SPEC",
        ));
    phoebe()
        .args(["exec", "--shard", "3/2", "--fault", "openat:ENOENT", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("shard '3/2' is not K/N"));
    phoebe()
        .args(["exec", "--fail-on", "broken", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown verdict 'broken'"));
    phoebe()
        .arg("exec")
        .arg("--resume")
        .arg(dir.path().join("nothing-here"))
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("phoebe: cannot resume"));
    if !ptrace_works() {
        return;
    }
    // A check that fails without injection is a setup error, not a finding.
    phoebe()
        .args([
            "exec",
            "-q",
            "--check",
            "false",
            "--fault",
            "openat:ENOENT",
            "--out",
        ])
        .arg(dir.path().join("c"))
        .args(["--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the check fails without any injection"));
}

#[test]
fn an_ebpf_campaign_skips_what_its_hooks_cannot_honour() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing it can run: refused before the baseline, naming the backend that runs all of it.
    let none = dir.path().join("none");
    phoebe()
        .args([
            "exec",
            "-q",
            "--backend",
            "ebpf",
            "--fault",
            "futex:EAGAIN",
            "--fault",
        ])
        .args(["write:EIO:when=exit", "--out"])
        .arg(&none)
        .args(["--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "phoebe: the ebpf backend cannot run any of the 2 experiment(s) of the campaign in",
        ))
        .stderr(predicate::str::contains(
            "(futex-EAGAIN, write-EIO); futex-EAGAIN: no LSM hook",
        ))
        .stderr(predicate::str::ends_with(
            "hint: start the campaign with --backend ptrace\n",
        ));
    assert!(!none.join("baseline").exists(), "refused before the baseline ran");
    if !ptrace_works() {
        return;
    }
    // Some it can run. Whether this machine can inject with eBPF at all is asked of doctor's probe before the
    // baseline (this host refuses BPF LSM and fmod_ret): refused then, with doctor's reason, before any run.
    // The probe and the inner injector load programs: hold the lock the no-program-left checks rely on.
    let _guard = ebpf_guard();
    let usable = phoebe::doctor::check(phoebe::backend::BackendKind::Ebpf, "inject");
    let some = dir.path().join("some");
    let assert = phoebe()
        .args([
            "exec",
            "-q",
            "--runs",
            "1",
            "--baseline-runs",
            "1",
            "--backend",
            "ebpf",
            "--fault",
            "futex:EAGAIN",
            "--fault",
        ])
        .args(["openat:ENOENT", "--out"])
        .arg(&some)
        .args(["--", "true"])
        .assert();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    if !usable.available {
        assert_eq!(assert.get_output().status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "phoebe: the ebpf backend cannot inject on this machine: {}\nhint: ",
                usable.reason
            )),
            "{stderr}"
        );
        assert!(!some.join("baseline").exists(), "refused before the baseline ran");
        assert!(!some.join("campaign.json").exists(), "nothing to resume");
        return;
    }
    // It can: one notice before the first experiment, and the skipped one never runs.
    assert_eq!(
        stderr
            .matches(
                "phoebe: the ebpf backend cannot run 1 of 2 experiments (futex-EAGAIN); it is skipped: \
                 --backend seccomp runs it\n"
            )
            .count(),
        1,
        "{stderr}"
    );
    assert!(!some.join("experiments/futex-EAGAIN").exists(), "{stderr}");
    let report = load_report(&some);
    let skipped: Vec<&str> = report.skipped.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(skipped, ["futex-EAGAIN"]);
    assert_eq!(verdicts(&report).len(), 1);
}

/// A free TCP port on 127.0.0.1 (bound, then released for the service to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn service_mode_switches_injection_on_and_off_while_the_service_runs() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let ready = echo_ready(port);
    let workload = echo_workload(port, 10);
    let out = dir.path().join("campaign");
    let faults = [
        format!("openat:ENOENT:path={}", data.display()),
        format!("read:EINTR:p=0.5:path={}", data.display()),
        "mknod:EPERM".to_owned(),
    ];
    let mut args = vec![
        "--service",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "--rounds",
        "4",
    ];
    args.extend(["--timeout", "20s"]);
    exec(
        &out,
        &faults,
        &args,
        &[&testapp("echo-service"), &port.to_string(), &data],
    )
    .code(1);
    let report = load_report(&out);
    assert_eq!(
        verdicts(&report),
        [
            ("openat-ENOENT".to_owned(), Verdict::Failed),
            ("read-EINTR".to_owned(), Verdict::Resilient),
            ("mknod-EPERM".to_owned(), Verdict::NotExercised),
        ]
    );
    // The service was not restarted: steady rounds pass, rounds under injection fail, rounds after pass again.
    let rounds = report.experiments[0].runs[0].rounds.expect("service rounds");
    assert_eq!((rounds.steady.ok, rounds.injected.ok, rounds.after.ok), (4, 0, 4));
    assert_eq!(
        report.experiments[0].runs[0].injected, 4,
        "one failed open per round, only while switched on"
    );
    assert_eq!(report.baseline.runs[0].rounds.map(|r| r.ok), Some(4));
    // Issue 14 item 6: per-phase round latency in every report format, not only in result.json.
    let rounds = report.experiments[1].runs[0].rounds.expect("service rounds");
    assert!(
        rounds.steady.p50_ms > 0.0 && rounds.steady.p99_ms >= rounds.steady.p50_ms,
        "{rounds:?}"
    );
    for file in ["summary.md", "report.html", "junit.xml"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(
            text.contains("round latency mean/p50/p99: steady "),
            "{file} has no round latency"
        );
    }
}

#[test]
fn service_mode_crash() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let ready = echo_ready(port);
    let workload =
        format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo get >&3 && read -t 10 reply <&3'");
    let out = dir.path().join("campaign");
    let faults = [format!("read:EIO:path={}", data.display())];
    let args = [
        "--service",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "--rounds",
        "2",
        // Generous: it bounds readiness and each round, and the machine may be loaded; nothing here times out.
        "--timeout",
        "20s",
    ];
    exec(
        &out,
        &faults,
        &args,
        &[
            &testapp("echo-service"),
            &port.to_string(),
            &data,
            &"--abort-on-error",
        ],
    )
    .code(1);
    let report = load_report(&out);
    assert_eq!(verdicts(&report), [("read-EIO".to_owned(), Verdict::Crashed)]);
    assert!(
        report.experiments[0].runs[0]
            .detail
            .starts_with("the service was killed by SIGABRT")
    );
    // Its evidence: what the service said before it aborted, and a replay that is not switched off (the campaign's
    // --start-off would keep the replay from injecting).
    let evidence = report.experiments[0].runs[0].evidence.as_ref().unwrap();
    assert!(!evidence.stderr_tail.is_empty(), "{evidence:?}");
    assert!(
        evidence.repro.contains(&"--replay".to_owned()),
        "{:?}",
        evidence.repro
    );
    assert!(
        !evidence.repro.contains(&"--start-off".to_owned()),
        "{:?}",
        evidence.repro
    );
}

/// Regression: Redis (`appendfsync always`) exits on an injected AOF write error, and phoebe went on playing
/// every round left against the dead service, each waiting the whole round timeout (redis-benchmark retries):
/// 8 minutes for one experiment. A service that has ended is played no more rounds; they count as failed.
#[test]
fn regression_rounds_were_played_against_a_service_that_had_ended() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let ready = echo_ready(port);
    let workload = echo_workload(port, 10);
    let out = dir.path().join("campaign");
    let faults = [format!("read:EIO:path={}", data.display())];
    let args = [
        "--service",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "--rounds",
        "3",
        "--timeout",
        "20s",
    ];
    exec(
        &out,
        &faults,
        &args,
        &[
            &testapp("echo-service"),
            &port.to_string(),
            &data,
            &"--abort-on-error",
        ],
    )
    .code(1);
    let report = load_report(&out);
    assert_eq!(verdicts(&report), [("read-EIO".to_owned(), Verdict::Crashed)]);
    let rounds = report.experiments[0].runs[0].rounds.expect("service rounds");
    // The first round under injection met the abort; the rounds after injection were not played (nor the rest of
    // that phase, unless one began in the moment before phoebe saw the service end), and count as failed.
    assert_eq!((rounds.steady.ok, rounds.steady.total), (3, 3), "{rounds:?}");
    assert_eq!((rounds.injected.ok, rounds.injected.total), (0, 3), "{rounds:?}");
    assert_eq!(
        (rounds.after.ok, rounds.after.total, rounds.after.unplayed),
        (0, 3, 3),
        "{rounds:?}"
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("after not played (the service had ended)"),
        "{summary}"
    );
    let run_dir = out.join("experiments/read-EIO");
    assert!(run_dir.join("run-1-injected-round-1.out").exists());
    for unplayed in ["run-1-injected-round-3.out", "run-1-after-round-1.out"] {
        assert!(!run_dir.join(unplayed).exists(), "{unplayed} was played");
    }
}

/// A service that ends in the middle of its baseline workload: the rounds left are not played, and the campaign
/// stops saying that the service ended, and how, not only that rounds failed.
#[test]
fn a_service_that_ends_during_its_baseline_stops_the_campaign_saying_so() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let ready = echo_ready(port);
    let workload = echo_workload(port, 10);
    let out = dir.path().join("campaign");
    let args = [
        "--service",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "--rounds",
        "20",
        "--timeout",
        "20s",
    ];
    // The readiness probe and two rounds.
    let stopped = exec(
        &out,
        &["mknod:EPERM".to_owned()],
        &args,
        &[
            &testapp("echo-service"),
            &port.to_string(),
            &data,
            &"--exit-after",
            &"3",
        ],
    )
    .code(2);
    let stderr = String::from_utf8_lossy(&stopped.get_output().stderr).into_owned();
    assert!(
        stderr.contains(
            "baseline run 1: the service ended during the workload, without injection (exit status 3"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("of 20 rounds ok"), "{stderr}");
    assert!(
        !out.join("baseline/run-1-round-20.out").exists(),
        "every round was played against the ended service"
    );
}

/// Regression: on the seccomp backend a rule that fails every call runs in the kernel and is not counted, so the
/// experiment looked unexercised; exec's runs keep every decision in user space.
#[test]
fn an_unconditional_rule_is_counted_in_a_campaign() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "x");
    let out = dir.path().join("campaign");
    exec(
        &out,
        &["mknodat:EPERM".to_owned(), "openat:EACCES".to_owned()],
        &["--backend", "seccomp"],
        &[&testapp("retry-reader"), &input],
    );
    let report = load_report(&out);
    let openat = report
        .experiments
        .iter()
        .find(|e| e.id == "openat-EACCES")
        .unwrap();
    assert!(openat.runs[0].injected > 0, "{:?}", openat.runs[0]);
    assert_ne!(openat.verdict, Verdict::NotExercised);
}

/// `sh -c SCRIPT` where SCRIPT counts its runs in `counter` and exits `status` on run `on` (0 otherwise): a
/// program whose runs disagree, deterministically.
fn flaky_on(counter: &Path, on: u32, status: u32) -> Vec<String> {
    let c = counter.display();
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "n=$(( $(cat {c} 2>/dev/null || echo 0) + 1 )); echo $n > {c}; [ $n -ne {on} ] || exit {status}"
        ),
    ]
}

/// Regression (issue 14): `phoebe exec -- cargo test` on a suite that fails by itself (exit 101) took the failure
/// as the steady state, and experiments where cargo could not even link were judged resilient.
#[test]
fn a_failing_baseline_stops_the_campaign() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    let script = "echo 'the suite fails' >&2; exit 101";
    let assert = exec(
        &out,
        &["mknod:EPERM".to_owned()],
        &["--baseline-runs", "3"],
        &[&"sh", &"-c", &script],
    )
    .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(
        stderr,
        format!(
            "phoebe: campaign directory {dir} (seed 11)\nphoebe: baseline run 1 exited 101: the program fails without \
             any injection, so it has no steady state to compare with; fix it, or pass --expect-status 101 if that \
             status is its steady state\nhint: what the program printed is in {dir}/baseline/run-1.err\n",
            dir = out.display()
        )
    );
    assert!(!out.join("experiments").exists(), "no experiment ran");
    assert!(!out.join("report.json").exists());
    assert!(
        !out.join("baseline/run-2.err").exists(),
        "the first run that fails decides: no more baseline runs"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("baseline/run-1.err")).unwrap(),
        "the suite fails\n"
    );
    // No steady state, no campaign to resume: the same --out takes the next try, here with the status declared.
    exec(
        &out,
        &["mknod:EPERM".to_owned()],
        &["--expect-status", "101"],
        &[&"sh", &"-c", &script],
    )
    .success();
    let report = load_report(&out);
    assert_eq!(report.baseline.exit, phoebe::model::TargetExit::Code(101));
    assert_eq!(report.baseline.expect_status, Some(101));
}

/// `--expect-status 1`: a program whose steady state is exit 1 is judged against 1, honestly both ways.
#[test]
fn a_declared_nonzero_steady_state_is_compared_with() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "x");
    let out = dir.path().join("campaign");
    let script = format!("cat {} > /dev/null || exit 3; exit 1", input.display());
    let faults = [
        format!("openat:ENOENT:path={}", input.display()),
        "mknod:EPERM".to_owned(),
    ];
    exec(
        &out,
        &faults,
        &["--expect-status", "1", "--baseline-runs", "2"],
        &[&"sh", &"-c", &script],
    )
    .code(1);
    let report = load_report(&out);
    assert_eq!(report.baseline.runs.len(), 2);
    assert_eq!(
        verdicts(&report),
        [
            ("openat-ENOENT".to_owned(), Verdict::Failed),
            ("mknod-EPERM".to_owned(), Verdict::NotExercised)
        ]
    );
    assert_eq!(
        report.experiments[0].runs[0].detail,
        "exit status 3, baseline exit status 1"
    );
    let campaign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(campaign["expect_status"], 1);
    // A program that does not reach the declared status is refused as well.
    let other = dir.path().join("other");
    exec(&other, &faults, &["--expect-status", "1"], &[&"true"])
        .code(2)
        .stderr(predicate::str::contains(
            "phoebe: baseline run 1 exited 0, not --expect-status 1: the program does not reach the declared \
             steady state without any injection; fix it or the status\n",
        ));
}

/// Regression (issue 14): baseline runs that disagree used to stop the campaign only on the exit status, and a
/// user had no way to say "I know, go on". Now one sentence says what disagreed, and `--accept-flaky-baseline`
/// goes on, saying so in campaign.json and in every report format.
#[test]
fn a_flaky_baseline_stops_the_campaign_unless_accepted() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("count");
    let cmd = flaky_on(&counter, 2, 101);
    let args: Vec<&dyn AsRef<std::ffi::OsStr>> = cmd.iter().map(|a| a as _).collect();
    let out = dir.path().join("refused");
    exec(&out, &["mknod:EPERM".to_owned()], &["--baseline-runs", "3"], &args)
        .code(2)
        .stderr(predicate::str::contains(format!(
            "\nphoebe: baseline run 2 exited 101, run 1 exited 0: the steady state is not steady; fix the program or \
             pass --accept-flaky-baseline\nhint: what the program printed is in {}/baseline/run-2.err\n",
            out.display()
        )));
    assert!(
        !out.join("baseline/run-3.err").exists(),
        "stopped at the run that disagreed"
    );

    std::fs::remove_file(&counter).unwrap();
    let out = dir.path().join("accepted");
    let assert = exec(
        &out,
        &["mknod:EPERM".to_owned()],
        &["--baseline-runs", "3", "--accept-flaky-baseline"],
        &args,
    )
    .success();
    let what = "baseline run 2 exited 101, run 1 exited 0";
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        stdout.contains(&format!(
            "baseline exit status 0 over 3 runs, flaky, accepted with --accept-flaky-baseline: {what}"
        )),
        "{stdout}"
    );
    let report = load_report(&out);
    assert_eq!(report.baseline.runs.len(), 3, "every baseline run ran");
    assert!(report.baseline.accept_flaky);
    assert_eq!(report.baseline.flaky.as_deref(), Some(what));
    let campaign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(campaign["accept_flaky_baseline"], true);
    for (file, says) in [
        (
            "summary.md",
            format!("flaky, accepted with --accept-flaky-baseline: {what}"),
        ),
        (
            "junit.xml",
            format!("<property name=\"flaky baseline\" value=\"{what}\"/>"),
        ),
        (
            "report.html",
            format!("<code>--accept-flaky-baseline</code>: {what}"),
        ),
    ] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(text.contains(&says), "{file} does not say '{says}':\n{text}");
    }
    phoebe()
        .args(["report", "--format", "markdown"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("--accept-flaky-baseline"));
}

/// Regression (issue 14): `exec --out d --fault openat:ENOENT:p=0 …` then `exec --out d --backend ptrace --seed 7
/// --fault openat:ENOENT:p=1 …` printed "[from an earlier run]" and reported the first campaign's result under
/// the second one's label: only the command was compared.
#[test]
fn stale_resume_with_other_settings_is_refused() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "x");
    let out = dir.path().join("d");
    let cat: [&dyn AsRef<std::ffi::OsStr>; 2] = [&"cat", &input];
    exec(&out, &["openat:ENOENT:p=0".to_owned()], &[], &cat).success();
    let first = load_report(&out);
    let fingerprint = |dir: &Path| -> String {
        let c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("campaign.json")).unwrap()).unwrap();
        c["fingerprint"].as_str().unwrap().to_owned()
    };
    let saved = fingerprint(&out);
    assert_eq!(saved.len(), 16, "{saved}");

    // The bug's second command: refused, nothing reused, nothing run.
    let second = phoebe()
        .args(["exec", "-q", "--out"])
        .arg(&out)
        .args([
            "--backend",
            "ptrace",
            "--seed",
            "7",
            "--fault",
            "openat:ENOENT:p=1",
            "--",
            "cat",
        ])
        .arg(&input)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&second.get_output().stderr).into_owned();
    assert_eq!(
        stderr,
        format!(
            "phoebe: {d} already holds a campaign (phoebe exec -- cat {input}, seed 11); another one there would \
             mix their results\nhint: continue it with --resume {d}, or give another --out\n",
            d = out.display(),
            input = input.display()
        )
    );
    assert!(!stderr.contains("[from an earlier run]"));
    assert_eq!(load_report(&out), first, "the first campaign is untouched");

    // --resume with a flag that says something else: refused, naming the flag.
    for (flags, named) in [
        (vec!["--seed", "7"], "with --seed 11, not --seed 7"),
        (
            vec!["--backend", "ptrace"],
            "with --backend auto, not --backend ptrace",
        ),
        (
            vec!["--fault", "openat:ENOENT:p=1"],
            "with --fault openat:ENOENT:p=0, not --fault openat:ENOENT",
        ),
        (vec!["--runs", "5"], "with --runs 1, not --runs 5"),
        (vec!["--shapes", "off"], "with --shapes on, not --shapes off"),
        (vec!["--shard", "1/2"], "with --shard none, not --shard 1/2"),
    ] {
        phoebe()
            .args(["exec", "-q", "--resume"])
            .arg(&out)
            .args(&flags)
            .assert()
            .code(2)
            .stderr(format!(
                "phoebe: {d} holds a campaign {named}, so its results would not be this campaign's\nhint: resume it \
                 without {flag}, or start a new campaign with another --out\n",
                d = out.display(),
                flag = flags[0]
            ));
    }
    // The same settings, said again: resumed, the result reused.
    phoebe()
        .args(["exec", "--resume"])
        .arg(&out)
        .args(["--seed", "11", "--runs", "1", "--fault", "openat:ENOENT:p=0"])
        .assert()
        .success()
        .stderr(predicate::str::contains("[from an earlier run]"));
    assert_eq!(fingerprint(&out), saved);

    // A result written under another fingerprint (a directory put together by hand, or by an older phoebe that
    // mixed campaigns) is never reused.
    let result = out.join("experiments/openat-ENOENT/result.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(json["campaign"], saved.as_str());
    json["campaign"] = "0123456789abcdef".into();
    std::fs::write(&result, json.to_string()).unwrap();
    phoebe()
        .args(["exec", "-q", "--resume"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::ends_with(format!(
            "\nphoebe: {} was written by another campaign (fingerprint 0123456789abcdef) than the one in {} ({saved}), \
             so it cannot be reused\nhint: start a new campaign with another --out\n",
            result.display(),
            out.join("campaign.json").display()
        )));
}

/// The verdict table of a campaign: one line per experiment, without the header (it holds the timeout, which
/// follows the baseline's duration) and the evidence (its repro commands name the campaign's directory).
fn table(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .skip(1)
        .take_while(|l| *l != phoebe::report::terminal::EVIDENCE_HEADING)
        .map(str::to_owned)
        .collect()
}

/// Regression (issue 14): with `--runs 1` and a random seed, two campaigns on one suite gave different verdicts,
/// and an experiment whose runs disagreed showed only run 1. Five runs by default, a count per verdict, the
/// failure share's interval, `flaky`, the worst run named; the same seed gives the same table.
#[test]
fn the_same_seed_gives_the_same_verdicts() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Five reads of 4096 bytes and the one at the end: EAGAIN is retried, EIO is not.
    let input = input_file(&dir, "input.txt", &"data ".repeat(4000));
    let faults = [
        format!("read:EAGAIN=3,EIO=1:p=0.3:path={}", input.display()),
        format!("openat:ENOENT:path={}", input.display()),
    ];
    let campaign = |name: &str, seed: &str| {
        let out = dir.path().join(name);
        let mut c = phoebe();
        c.args(["exec", "-q", "--baseline-runs", "1", "--seed", seed, "--out"])
            .arg(&out);
        for f in &faults {
            c.arg("--fault").arg(f);
        }
        let assert = c
            .arg("--")
            .arg(testapp("retry-reader"))
            .arg(&input)
            .assert()
            .code(1);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(
            stderr.contains(&format!("(seed {seed})")),
            "the seed is printed, -q or not: {stderr}"
        );
        (table(&assert.get_output().stdout), load_report(&out))
    };
    // Seed 1 (4 before rolls were keyed by thread, issue 15 item 4): its read experiment fails some runs only.
    let (table_a, a) = campaign("a", "1");
    let (table_b, b) = campaign("b", "1");
    assert_eq!(table_a, table_b, "the same seed, the same verdicts");
    assert_eq!(a.seed, 1);
    let runs = |r: &Report| -> Vec<Vec<(Verdict, u64)>> {
        r.experiments
            .iter()
            .map(|e| e.runs.iter().map(|r| (r.verdict, r.injected)).collect())
            .collect()
    };
    assert_eq!(runs(&a), runs(&b), "the same injections, run by run");

    // Five runs by default, and this seed's read experiment disagrees with itself: said, counted, bounded.
    let read = &a.experiments[0];
    assert_eq!(read.runs.len(), 5);
    assert!(read.flaky, "{:?}", runs(&a));
    let count = |v: Verdict| read.counts.get(&v).copied().unwrap_or(0);
    let (failed, resilient) = (count(Verdict::Failed), count(Verdict::Resilient));
    assert!(failed > 0 && resilient > 0, "{:?}", read.counts);
    assert_eq!(failed + resilient + count(Verdict::NotExercised), 5);
    let share = read.failures.unwrap();
    assert_eq!((share.failed, share.of), (failed, failed + resilient));
    let (low, high) = phoebe::model::report::wilson(failed, failed + resilient);
    assert_eq!((share.low, share.high), (low, high));
    let worst = read.runs.iter().find(|r| r.verdict == Verdict::Failed).unwrap();
    let row = table_a.iter().find(|l| l.starts_with("read-EAGAIN")).unwrap();
    assert!(row.contains("failed, flaky"), "{row}");
    assert!(row.contains(&read.counts_text()), "{row}");
    assert!(row.contains(&format!("{failed}/5 failed")), "{row}");
    assert!(
        row.ends_with(&format!("run {}: {}", worst.run, worst.detail)),
        "the worst run, not run 1: {row}"
    );
    // The open that always fails: unanimous, not flaky.
    let openat = &a.experiments[1];
    assert_eq!((openat.verdict, openat.flaky), (Verdict::Failed, false));
    assert_eq!(openat.counts_text(), "5/5 failed");
    // Another seed, other draws (the proof that the seed decides).
    let (_, c) = campaign("c", "5");
    assert_ne!(runs(&a), runs(&c));
}

/// Issue 14 item 2: with the old fixed 1 s interval a one-second job gave one or two intervals, so a model's p95
/// and variance meant nothing. Without `--interval`, each baseline run adapts it to 20–40 intervals and the runs'
/// intervals pool into the plan's statistics.
#[test]
fn a_short_baseline_gives_enough_intervals_without_interval() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    // About a second under ptrace: futex waits of which half fail with EAGAIN, a short job with a steady
    // natural error. (Under eBPF the same job takes about 130 ms, where the 8 ms floor allows 17 intervals.)
    exec(
        &out,
        &[],
        &["--baseline-runs", "2", "--observer", "ptrace"],
        &[&testapp("shapes"), &"3000"],
    )
    .success();
    let campaign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(
        campaign["interval_ms"],
        serde_json::Value::Null,
        "auto is recorded as null"
    );
    let mut per_run = Vec::new();
    for k in 1..=2 {
        let obs = load_observation(&out.join(format!("baseline/run-{k}.observation.json")));
        assert!(
            (20..=40).contains(&obs.intervals.len()) && obs.interval_ms < 1000,
            "baseline run {k}: {} intervals of {} ms over {} ms",
            obs.intervals.len(),
            obs.interval_ms,
            obs.duration_ms
        );
        per_run.push(obs.interval_ms);
    }
    let plan: phoebe::model::Plan = phoebe::files::load(&out.join("plan.json"), "plan").unwrap();
    assert_eq!(
        plan.interval_ms,
        *per_run.iter().max().unwrap(),
        "pooled at the longer interval"
    );
    let eagain = plan
        .models
        .iter()
        .find(|m| m.id == "futex-EAGAIN")
        .unwrap_or_else(|| panic!("no futex-EAGAIN model: {:?}", plan.excluded));
    // Both runs' intervals are samples.
    let rule = eagain.shapes.first().map_or(&eagain.stats, |s| &s.stats);
    assert!(rule.intervals >= 30, "{} samples", rule.intervals);
    assert!(!rule.too_few_samples());
    assert!(!eagain.rule.contains("too few samples"), "{}", eagain.rule);
}

/// Issue 14 item 6: a service's models came from its whole baseline, start-up and shutdown included, so a server's
/// plan was mostly calls it makes only while starting (`not-exercised`, exit 0: CI green without touching an error
/// path of the workload). The plan now rests on the workload's intervals; what failed only around it is excluded,
/// saying so.
#[test]
fn service_models_come_from_the_workload_not_from_start_up() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    // Half of the start-up probes find their file: a 50 % natural ENOENT on one path template, at start-up only.
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    for k in 1..=5 {
        std::fs::write(conf.join(format!("conf-{k}")), "x").unwrap();
    }
    let port = free_port();
    let ready = echo_ready(port);
    let workload = echo_workload(port, 10);
    let out = dir.path().join("campaign");
    let assert = exec(
        &out,
        &[],
        &[
            "--service",
            "--ready",
            &ready,
            "--workload",
            &workload,
            "--rounds",
            "6",
            "--timeout",
            "20s",
        ],
        &[
            &testapp("echo-service"),
            &port.to_string(),
            &data,
            &"--startup-probes",
            &conf,
        ],
    );
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let plan: phoebe::model::Plan = phoebe::files::load(&out.join("plan.json"), "plan")
        .unwrap_or_else(|e| panic!("no plan: {e}\n{stderr}"));
    assert!(
        plan.models.iter().all(|m| m.syscall.name() != "statx"),
        "a start-up-only error became a model: {:?}",
        plan.models.iter().map(|m| &m.id).collect::<Vec<_>>()
    );
    let excluded = plan
        .excluded
        .iter()
        .find(|e| e.syscall.name() == "statx" && e.action.to_string() == "ENOENT")
        .unwrap_or_else(|| panic!("statx-ENOENT not excluded: {:?}\n{stderr}", plan.excluded));
    assert!(
        excluded.reason.contains("started or stopped"),
        "{}",
        excluded.reason
    );
    let baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("baseline.json")).unwrap()).unwrap();
    let window = &baseline["runs"][0]["workload_ms"];
    assert!(
        window[0].as_u64().unwrap() < window[1].as_u64().unwrap(),
        "the workload's window is recorded: {window}"
    );
}

/// Issue 14 item 6: one failed round while injecting meant `failed`, and the "after" phase began the instant
/// injection stopped. `--tolerance` and `--recovery` let a campaign say what a client tolerates.
#[test]
fn service_tolerance_and_recovery() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let ready = echo_ready(port);
    let workload = echo_workload(port, 10);
    let out = dir.path().join("campaign");
    // Every open of the data file fails while injecting: 4 failed rounds of 4, all tolerated.
    let fault = format!("openat:ENOENT:path={}", data.display());
    let args = [
        "--service",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "--rounds",
        "4",
        "--tolerance",
        "4",
        "--recovery",
        "300ms",
        "--timeout",
        "20s",
    ];
    exec(
        &out,
        &[fault],
        &args,
        &[&testapp("echo-service"), &port.to_string(), &data],
    )
    .success();
    let report = load_report(&out);
    assert_eq!(
        verdicts(&report),
        [("openat-ENOENT".to_owned(), Verdict::Resilient)]
    );
    let run = &report.experiments[0].runs[0];
    assert!(run.detail.contains("within --tolerance 4"), "{}", run.detail);
    let campaign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(campaign["service"]["tolerance"], 4);
    assert_eq!(campaign["service"]["recovery_ms"], 300);
    // The recovery grace is spent between the injected rounds and the after rounds.
    let modified = |name: &str| {
        std::fs::metadata(out.join("experiments/openat-ENOENT").join(name))
            .unwrap()
            .modified()
            .unwrap()
    };
    let gap = modified("run-1-after-round-1.err")
        .duration_since(modified("run-1-injected-round-4.err"))
        .unwrap();
    assert!(
        gap >= Duration::from_millis(300),
        "after rounds began {gap:?} after the injected ones"
    );
    // Without --service, the flags are refused before anything runs.
    phoebe()
        .args(["exec", "--tolerance", "1", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--service"));
}

/// Regression, found on PostgreSQL under plausible pwrite64-ENOSPC and fdatasync-EIO: a backend PANICs, the
/// postmaster spends about a second in crash recovery ("the database system is in recovery mode") and serves
/// again. The check ran right after injection was switched off, failed, and the run was `corrupted`, "the damage
/// outlived the fault", of a server that came back by itself. `echo-service --recover-after` does the same: a
/// failed read puts it in recovery for a while. Now the check runs after the rounds after injection, and rounds
/// that fail at first and then all pass make the run `failed`, saying how long the service took to come back.
/// The service's output says which error it met, and the evidence shows that line.
#[test]
fn regression_a_service_in_crash_recovery_was_corrupted() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let out = dir.path().join("campaign");
    // Each round takes at least 200 ms, and recovery 700 ms: the first rounds after injection fail, the last pass.
    let workload = format!("{}; status=$?; sleep 0.2; exit $status", echo_workload(port, 5));
    let check = echo_workload(port, 5);
    let args = [
        "--service",
        "--ready",
        &echo_ready(port),
        "--workload",
        &workload,
        "--check",
        &check,
        "--rounds",
        "8",
        "--timeout",
        "30s",
    ];
    exec(
        &out,
        &[format!("openat:EIO:path={}", data.display())],
        &args,
        &[
            &testapp("echo-service"),
            &port.to_string(),
            &data,
            &"--recover-after",
            &"700",
        ],
    )
    .code(1);
    let report = load_report(&out);
    assert_eq!(verdicts(&report), [("openat-EIO".to_owned(), Verdict::Failed)]);
    let run = &report.experiments[0].runs[0];
    assert!(
        run.detail
            .contains("the service came back by itself once injection stopped"),
        "{}",
        run.detail
    );
    assert_eq!(run.check_passed, Some(true), "the check ran last: {}", run.detail);
    let after = run.rounds.unwrap().after;
    let recovered = after.recovered.unwrap_or_else(|| panic!("{after:?}"));
    assert!((1..8).contains(&recovered.failed), "{recovered:?}");
    // The check ran after the last round after injection.
    let modified = |name: &str| {
        std::fs::metadata(out.join("experiments/openat-EIO").join(name))
            .unwrap()
            .modified()
            .unwrap()
    };
    assert!(modified("run-1.check.err") >= modified("run-1-after-round-8.err"));
    let evidence = run.evidence.as_ref().unwrap();
    assert_eq!(
        evidence.error_line.as_deref(),
        Some(
            format!(
                "echo-service: {}: Input/output error (os error 5): recovering",
                data.display()
            )
            .as_str()
        ),
    );
}

/// Found on nginx: it logs "open() … failed (24: Too many open files)" to its error_log file, not to stderr, and
/// the evidence of `openat-EMFILE failed` said "no output". `--log-file FILE` has the evidence read what each run
/// appended to the program's own log: the line that names the injected error, and where it is. What the file
/// held before the run is not the run's.
#[test]
fn evidence_reads_what_a_run_appended_to_the_programs_own_log_file() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let log = dir.path().join("service.log");
    std::fs::write(&log, "an older run: Input/output error\n").unwrap();
    let port = free_port();
    let out = dir.path().join("campaign");
    // The service's stderr goes to its log file, as a daemon's does.
    let service = format!(
        "exec {} {port} {} --recover-after 1 2>>{}",
        testapp("echo-service").display(),
        data.display(),
        log.display()
    );
    let args = [
        "--service",
        "--ready",
        &echo_ready(port),
        "--workload",
        &echo_workload(port, 5),
        "--rounds",
        "2",
        "--log-file",
        log.to_str().unwrap(),
    ];
    exec(
        &out,
        &[format!("openat:EIO:path={}", data.display())],
        &args,
        &[&"sh", &"-c", &service],
    )
    .code(1)
    .stdout(predicate::str::contains(format!(
        "openat-EIO run 1: echo-service: {}: Input/output error (os error 5): recovering",
        data.display()
    )));
    let report = load_report(&out);
    let evidence = report.experiments[0].runs[0].evidence.as_ref().unwrap();
    assert_eq!(evidence.error_line_file, log.display().to_string());
    let campaign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(campaign["log_files"][0], log.display().to_string());
}

/// Regression, found on PostgreSQL: a postmaster in crash recovery did not stop within the 5 s phoebe gave it
/// after SIGTERM, the inner phoebe was killed with it before it saved its injection log, and the run — whose
/// rounds had failed — was `not-exercised`, "the service never made a call the fault matches". A service that
/// ignores SIGTERM now gets a second one 5 s later, on which the inner phoebe kills it and still saves its log.
#[test]
fn regression_a_service_slow_to_stop_lost_its_injection_log() {
    if !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let out = dir.path().join("campaign");
    let service = format!(
        "trap '' TERM; exec {} {port} {}",
        testapp("echo-service").display(),
        data.display()
    );
    let args = [
        "--service",
        "--ready",
        &echo_ready(port),
        "--workload",
        &echo_workload(port, 5),
        "--rounds",
        "2",
        "--timeout",
        "30s",
    ];
    exec(
        &out,
        &[format!("openat:ENOENT:path={}", data.display())],
        &args,
        &[&"sh", &"-c", &service],
    )
    .code(1);
    let report = load_report(&out);
    assert_eq!(verdicts(&report), [("openat-ENOENT".to_owned(), Verdict::Failed)]);
    let run = &report.experiments[0].runs[0];
    assert_eq!(run.injected, 2, "{}", run.detail);
    assert!(!run.detail.contains("unknown"), "{}", run.detail);
    assert!(out.join("experiments/openat-ENOENT/run-1.log.json").exists());
}

/// Regression, found on Redis: a reset injected into the service's receives from its clients made every workload
/// round fail (the service drops a connection whose peer reset it, as it should, and the workload is that peer),
/// and the service was judged `failed`. Those rounds are the simulation's own: a service that stays up and serves
/// every round after is resilient, and the detail says why; the same rounds failing for a disk error still fail it.
#[test]
fn regression_peer_resets_failed_the_service_for_its_workloads_own_connections() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let ready = echo_ready(port);
    let workload = echo_workload(port, 10);
    let out = dir.path().join("campaign");
    let args = [
        "--service",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "--rounds",
        "3",
        "--timeout",
        "20s",
    ];
    let faults = [
        "recvfrom:ECONNRESET:fd=tcp".to_owned(),
        format!("read:EIO:fd=file:path={}", data.display()),
    ];
    exec(
        &out,
        &faults,
        &args,
        &[&testapp("echo-service"), &port.to_string(), &data],
    );
    let report = load_report(&out);
    assert_eq!(
        verdicts(&report),
        [
            ("recvfrom-ECONNRESET".to_owned(), Verdict::Resilient),
            ("read-EIO".to_owned(), Verdict::Failed),
        ]
    );
    let reset = &report.experiments[0].runs[0];
    assert!(
        reset.detail.starts_with("0 of 3 rounds ok while injecting"),
        "{}",
        reset.detail
    );
    assert!(
        reset.detail.contains("the workload is the service's peer"),
        "{}",
        reset.detail
    );
    // A resilient row whose rounds failed says why in the report's detail column, not only its round latency.
    let table = phoebe().arg("report").arg(&out).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("recvfrom-ECONNRESET"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("run 1: 0 of 3 rounds ok while injecting"), "{row}");
}

/// Found on git, javac and watchdog's suite under `--explore plausible`: `close-EINTR` (`flush=yes`),
/// `ftruncate-ENOSPC` (`cow=yes`), `read-EINTR` (`caught=yes`) kept out every call of their class in every one of
/// their 5 runs — the files were on a local disk, the process caught no signal — which the first run already
/// said. Those guards are decided by what the calls are, the same in every run: one run is made, and the detail
/// says why the others were not.
#[test]
fn regression_an_experiment_its_guards_kept_out_entirely_ran_five_times() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input.txt", "data");
    let out = dir.path().join("campaign");
    let faults = ["close:EINTR:flush=yes".to_owned()];
    exec(&out, &faults, &["--runs", "3"], &[&"cat", &input]).code(0);
    let report = load_report(&out);
    assert_eq!(
        verdicts(&report),
        [("close-EINTR".to_owned(), Verdict::NotExercised)]
    );
    let runs = &report.experiments[0].runs;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        runs[0].detail.contains("had flush=no")
            && runs[0]
                .detail
                .ends_with("; the other 2 run(s) were not made: its guards decide on what the calls are, which the same program's calls are in every run"),
        "{}",
        runs[0].detail
    );
    assert!(runs[0].settles);
    // A resume finds the experiment complete: it makes no run of it.
    phoebe()
        .args(["exec", "-q", "--resume"])
        .arg(&out)
        .assert()
        .code(0);
    assert_eq!(load_report(&out).experiments[0].runs.len(), 1);
}

/// Found on a Node HTTP server (`--service --explore plausible`): under `accept4-EMFILE` libuv closes the
/// connection it could not accept and logs nothing, and the evidence was the service's last stdout line,
/// `listening`, which every baseline run printed too. What the first failed workload round said is evidence.
#[test]
fn regression_a_service_that_said_nothing_was_explained_by_its_start_up_line() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let ready = echo_ready(port);
    let workload = format!(
        "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo get >&3 && read -t 10 reply <&3; \
         [[ $reply == ok* ]] || {{ echo \"round failed: the reply was [$reply]\"; exit 1; }}'"
    );
    let out = dir.path().join("campaign");
    let args = [
        "--service",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "--rounds",
        "2",
        "--timeout",
        "20s",
    ];
    let faults = [format!("read:EIO:fd=file:path={}", data.display())];
    exec(
        &out,
        &faults,
        &args,
        &[&testapp("echo-service"), &port.to_string(), &data],
    );
    let report = load_report(&out);
    assert_eq!(verdicts(&report), [("read-EIO".to_owned(), Verdict::Failed)]);
    let evidence = report.experiments[0].runs[0].evidence.as_ref().expect("evidence");
    assert!(
        evidence
            .round_line
            .as_deref()
            .is_some_and(|l| l.starts_with("round failed: the reply was [")),
        "{evidence:?}"
    );
    assert!(
        evidence
            .round_file
            .starts_with("experiments/read-EIO/run-1-injected-round-")
            && evidence.round_file.ends_with(".out"),
        "{}",
        evidence.round_file
    );
}

/// Issue 14 item 6: `delay=` alone is a latency fault, and service mode judges it by its rounds: the data file's
/// open is held 1.2 s while injecting, longer than the workload's `read -t 1`, so those rounds fail and their
/// latency rises; the service itself never sees an error, and the rounds after pass again.
fn service_mode_judges_a_latency_fault_by_its_rounds(backend: Backend) {
    // The baseline is observed with ptrace (or eBPF); the experiment runs on `backend`.
    if !ptrace_works() || !backend.works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let ready = echo_ready(port);
    let workload = echo_workload(port, 1);
    let out = dir.path().join("campaign");
    let fault = format!("openat:delay=1200ms:path={}", data.display());
    let args = [
        "--backend",
        backend.name(),
        "--service",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "--rounds",
        "3",
        "--recovery",
        "2s",
        "--timeout",
        "30s",
    ];
    exec(
        &out,
        &[fault],
        &args,
        &[&testapp("echo-service"), &port.to_string(), &data],
    )
    .code(1);
    let report = load_report(&out);
    assert_eq!(
        verdicts(&report),
        [("openat-delay1s200ms".to_owned(), Verdict::Failed)]
    );
    let run = &report.experiments[0].runs[0];
    // The service answers one request at a time and each is held 1.2 s, so it falls 0.2 s further behind the
    // rounds each round: the last round's open is decided 0.6 s before that round gives up, which a stalled
    // machine may still miss (injection is switched off once the round ends).
    assert!(
        (2..=3).contains(&run.injected),
        "one held open per injected round: {}",
        run.injected
    );
    // No errno was injected: nothing to judge realism by, and no natural failure to count.
    assert_eq!((run.realistic, run.natural), (None, None));
    let rounds = run.rounds.expect("service rounds");
    assert_eq!(
        (rounds.steady.ok, rounds.injected.ok, rounds.after.ok),
        (3, 0, 3),
        "{rounds:?}"
    );
    // Lower bounds only (the machine is shared): an injected round waited out its 1 s read timeout.
    assert!(
        rounds.injected.p50_ms >= 1000.0 && rounds.injected.p50_ms > rounds.steady.p50_ms,
        "{rounds:?}"
    );
    let log = load_log(&out.join("experiments/openat-delay1s200ms/run-1.log.json"));
    assert!(
        log.injections
            .iter()
            .all(|i| i.effect == phoebe::model::Effect::Run && i.delay_ns == Some(1_200_000_000)),
        "{:?}",
        log.injections
    );
}

#[test]
fn service_mode_judges_a_latency_fault_by_its_rounds_seccomp() {
    service_mode_judges_a_latency_fault_by_its_rounds(Backend::Seccomp);
}

#[test]
fn service_mode_judges_a_latency_fault_by_its_rounds_ptrace() {
    service_mode_judges_a_latency_fault_by_its_rounds(Backend::Ptrace);
}

/// `--accept-flaky-baseline` had no effect in service mode: one failed workload round in any baseline run stopped
/// the campaign. Now it goes on, reported flaky, as a plain target's does; without the flag it still stops.
#[test]
fn accept_flaky_baseline_works_in_service_mode() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let ready = echo_ready(port);
    let counter = dir.path().join("rounds");
    // The 6th round of the campaign fails by itself: the second of baseline run 2.
    let workload = format!(
        "bash -c 'n=$(( $(cat {c} 2>/dev/null || echo 0) + 1 )); echo $n > {c}; [ $n -ne 6 ] && exec 3<>/dev/tcp/127.0.0.1/{port} && echo get >&3 && read -t 10 reply <&3 && [[ $reply == ok* ]]'",
        c = counter.display()
    );
    let service = |out: &Path, accept: bool| {
        let _ = std::fs::remove_file(&counter);
        let mut args = vec![
            "--service",
            "--ready",
            &ready,
            "--workload",
            &workload,
            "--rounds",
            "4",
            "--baseline-runs",
            "2",
            "--timeout",
            "20s",
        ];
        if accept {
            args.push("--accept-flaky-baseline");
        }
        exec(
            out,
            &["mknod:EPERM".to_owned()],
            &args,
            &[&testapp("echo-service"), &port.to_string(), &data],
        )
    };
    let refused = service(&dir.path().join("strict"), false).code(2);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(
        stderr.contains("baseline run 2") && stderr.contains("3 of 4 rounds ok"),
        "{stderr}"
    );
    let out = dir.path().join("accepted");
    service(&out, true).success();
    let report = load_report(&out);
    let flaky = report
        .baseline
        .flaky
        .as_deref()
        .expect("the baseline is reported flaky");
    assert!(flaky.contains("baseline run 2: 3 of 4 rounds ok"), "{flaky}");
    assert_eq!(
        verdicts(&report),
        [("mknod-EPERM".to_owned(), Verdict::NotExercised)]
    );
}

/// Issue 14 item 5: "achieved" counted only injections while "target" is a total failure rate. `cat` of two
/// missing files around a present one: the present file's open is injected (`nth=2`), the missing ones fail by
/// themselves. ptrace sees those results: achieved is 3 of 3 matched calls, beside 1 of 3 injected. seccomp does
/// not: every report format says the figure counts injections only.
#[test]
fn achieved_counts_natural_failures_on_ptrace_and_says_injected_only_on_seccomp() {
    if !ptrace_works() || !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let present = input_file(&dir, "present.txt", "here");
    let missing = |n: u32| dir.path().join(format!("missing-{n}.txt"));
    let fault = format!("openat:ENOENT:nth=2:path={}/*", dir.path().display());
    for (backend, natural, cell) in [
        ("ptrace", Some(2), "100.00% (injected 33.33%)"),
        ("seccomp", None, "33.33% injected only"),
    ] {
        let out = dir.path().join(format!("campaign-{backend}"));
        // cat exits 1 on the missing files, baseline included: that is its steady state.
        exec(
            &out,
            std::slice::from_ref(&fault),
            &["--backend", backend, "--expect-status", "1"],
            &[&"cat", &missing(1), &present, &missing(2)],
        )
        .success();
        let report = load_report(&out);
        let run = &report.experiments[0].runs[0];
        assert_eq!(
            (run.matched, run.injected, run.natural),
            (3, 1, natural),
            "{backend}"
        );
        let counts = serde_json::to_value(run.achieved_counts).unwrap();
        let expected = if natural.is_some() {
            "injected-and-natural"
        } else {
            "injected-only"
        };
        assert_eq!(counts, expected, "{backend}");
        for file in ["summary.md", "report.html", "junit.xml"] {
            let text = std::fs::read_to_string(out.join(file)).unwrap();
            assert!(text.contains(cell), "{backend}: {file} has no '{cell}'");
        }
        let log = phoebe::files::load::<phoebe::model::InjectionLog>(
            &out.join("experiments/openat-ENOENT/run-1.log.json"),
            "log",
        )
        .unwrap();
        assert_eq!(log.rules[0].natural, natural, "{backend}");
    }
}

/// Issue 14 item 4: without `--observer`, a machine where eBPF can observe observes the baseline with it, with no
/// note; the campaign records the observer it chose, so a resume keeps it.
#[test]
fn the_baseline_is_observed_with_ebpf_by_default_where_it_can() {
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    let storm = testapp("storm");
    let cmd: [&dyn AsRef<std::ffi::OsStr>; 3] = [&storm, &"getppid", &"2000"];
    let run = exec(&out, &["getppid:EPERM:p=0".to_owned()], &[], &cmd).success();
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert!(!stderr.contains("observing with ptrace"), "{stderr}");
    let campaign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(campaign["observer"], "ebpf", "{campaign}");
    let obs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("baseline/run-1.observation.json")).unwrap())
            .unwrap();
    assert_eq!(obs["backend"], "ebpf", "{obs}");
    phoebe()
        .args(["exec", "-q", "--resume"])
        .arg(&out)
        .assert()
        .success();
}

/// Issue 14 item 4: the eBPF start-up (the verifier's pass over the programs, ≈ 110 ms) is paid once per
/// campaign: `exec` loads its observer once and lends it to the `phoebe observe` of each baseline run, which
/// loads nothing; each run still counts only its own calls (the maps are cleared before each run).
#[test]
fn the_ebpf_observer_is_loaded_once_per_campaign_and_each_baseline_run_counts_only_its_own_calls() {
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    let run = phoebe()
        .env("PHOEBE_LOG", "phoebe_backend_ebpf=debug")
        .args([
            "exec",
            "-q",
            "--seed",
            "3",
            "--observer",
            "ebpf",
            "--baseline-runs",
            "3",
            "--runs",
            "1",
        ])
        .args(["--fault", "openat:EACCES:p=0", "--out"])
        .arg(&out)
        .arg("--")
        .arg(testapp("storm"))
        .args(["openat-fail", "700"])
        .assert()
        .success();
    const LOADED: &str = "loaded the eBPF observer's programs";
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert_eq!(stderr.matches(LOADED).count(), 1, "{stderr}");
    for k in 1..=3 {
        let base = out.join(format!("baseline/run-{k}"));
        let inner = std::fs::read_to_string(base.with_extension("err")).unwrap();
        assert!(
            !inner.contains(LOADED),
            "baseline run {k} loaded its own: {inner}"
        );
        let obs = load_observation(&base.with_extension("observation.json"));
        assert_eq!(obs.backend, "ebpf");
        let openat = obs
            .totals()
            .into_iter()
            .find(|(sc, _)| sc.name() == "openat")
            .map(|(_, stats)| stats)
            .expect("openat observed");
        let enoent: u64 = openat
            .errors
            .iter()
            .filter(|(errno, _)| errno.to_string() == "ENOENT")
            .map(|(_, n)| *n)
            .sum();
        assert_eq!(
            enoent, 700,
            "baseline run {k}: its own 700 failing opens, nothing of the runs before"
        );
    }
}

/// Issue 14 item 4: `--observer ebpf` observes the baseline in the kernel instead of under ptrace; the campaign
/// records it (and its fingerprint), so a resume with another observer is refused naming the flag.
#[test]
fn the_baseline_can_be_observed_with_ebpf() {
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    let storm = testapp("storm");
    let cmd: [&dyn AsRef<std::ffi::OsStr>; 3] = [&storm, &"getppid", &"2000"];
    exec(
        &out,
        &["getppid:EPERM:p=0".to_owned()],
        &["--observer", "ebpf"],
        &cmd,
    )
    .success();
    let obs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("baseline/run-1.observation.json")).unwrap())
            .unwrap();
    assert_eq!(obs["backend"], "ebpf", "{obs}");
    let campaign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(campaign["observer"], "ebpf");
    let resumed = phoebe()
        .args(["exec", "-q", "--observer", "ptrace", "--resume"])
        .arg(&out)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&resumed.get_output().stderr).into_owned();
    assert!(stderr.contains("--observer"), "{stderr}");
    // `--observer ptrace` is left out of campaign.json (campaigns written before --observer load unchanged).
    let plain = dir.path().join("p");
    exec(
        &plain,
        &["getppid:EPERM:p=0".to_owned()],
        &["--observer", "ptrace"],
        &cmd,
    )
    .success();
    let campaign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plain.join("campaign.json")).unwrap()).unwrap();
    assert!(campaign.get("observer").is_none(), "{campaign}");
    let obs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(plain.join("baseline/run-1.observation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(obs["backend"], "ptrace");
}

/// Found trying memcached with `--ready 'printf … | nc -q1 …'` on a machine without `nc`: the campaign waited the
/// whole readiness timeout (30 s) for a probe the shell could not even start, then said "the service never became
/// ready (--ready) failed: no output (see …/run-1.err)" — the service's empty stderr, not the probe's
/// `nc: not found`. A probe that exits 126 or 127 stops the wait at once and says so with its own stderr; a probe
/// that keeps failing is quoted too.
#[test]
fn regression_a_ready_command_that_could_not_run_was_waited_for_and_blamed_on_the_service() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    exec(
        &out,
        &["read:EIO".to_owned()],
        &[
            "--service",
            "--ready",
            "phoebe-no-such-probe --port 1",
            "--workload",
            "true",
        ],
        &[&"sleep", &"60"],
    )
    .code(2)
    .stderr(predicate::str::contains(
        "baseline run 1: the --ready command cannot run (exit 127: command not found) failed: ",
    ))
    .stderr(predicate::str::contains("phoebe-no-such-probe: not found"));
    let out = dir.path().join("campaign-2");
    exec(
        &out,
        &["read:EIO".to_owned()],
        &[
            "--service",
            "--ready",
            "echo not yet >&2; false",
            "--workload",
            "true",
            "--timeout",
            "1s",
        ],
        &[&"sleep", &"60"],
    )
    .code(2)
    .stderr(predicate::str::contains(
        "the --ready command never succeeded (its last output in run-1.ready.out/.err; the service's in \
         run-1.out/.err); its last probe failed: not yet",
    ));
}

/// Found on Python's `http.server` (`exec --service --explore plausible`): the plausible `write-ENOSPC`, `-EDQUOT`
/// and `-EIO` named the file phoebe captures the target's stderr in during the baseline
/// (`template=…/baseline/run-1.err`), which is another file in every experiment run, so each was "not exercised"
/// with "the service never made a call the fault matches". phoebe's own captures are left out of the plan, saying
/// why; disk errors on the program's own files stay.
#[test]
fn regression_rules_named_phoebes_own_capture_of_stdout_and_stderr() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    let log = dir.path().join("app.log");
    let script = format!(
        "echo to stdout; echo to stderr >&2; echo to its log >> {}",
        log.display()
    );
    // What the experiments find does not matter here (a write error fails `sh`: exit 1), only the plan.
    exec(&out, &[], &["--explore", "plausible"], &[&"sh", &"-c", &script]).code(predicates::ord::le(1));
    let plan: phoebe::model::Plan =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    let campaign = out.canonicalize().unwrap().display().to_string();
    for m in &plan.models {
        for f in m.faults() {
            assert!(!f.to_string().contains(&campaign), "{f}");
        }
    }
    let own: Vec<_> = plan
        .excluded
        .iter()
        .filter(|e| {
            e.reason
                .starts_with("a file phoebe itself opened for the program")
        })
        .collect();
    for capture in ["/baseline/run-1.out", "/baseline/run-1.err"] {
        assert!(
            own.iter()
                .any(|e| e.shape.as_deref().is_some_and(|s| s.contains(capture))),
            "{capture}: {:?}",
            plan.excluded
        );
    }
    // The program's own log keeps its disk errors (its template: the temp directory's name generalized).
    assert!(
        plan.models
            .iter()
            .any(|m| m.id.starts_with("write-E")
                && m.faults().iter().any(|f| f.to_string().ends_with("/app.log"))),
        "{:?}",
        plan.models
            .iter()
            .map(|m| m.fault.to_string())
            .collect::<Vec<_>>()
    );
    // Its rate: from its one write per run, not from the three writes of the class with the two captures'
    // (which kept it at 1/3).
    let enospc = plan.models.iter().find(|m| m.id == "write-ENOSPC").unwrap();
    assert_eq!(
        (enospc.probability, enospc.fault.probability, enospc.stats.calls),
        (0.5, 0.5, 1),
        "{enospc:?}"
    );
    assert!(
        enospc
            .rule
            .ends_with("(capped at 0.5: 1 call(s) of the class per run)"),
        "{}",
        enospc.rule
    );
}

/// The target of the damage tests: a job that takes a lock file, reads its input, and drops the lock; when it
/// cannot read the input it aborts without dropping the lock (as a crash does), and a run that finds the lock
/// taken refuses to start. `DIR` holds the lock and the inputs.
fn locking_job(dir: &Path) -> [String; 5] {
    let script = r#"
        [ -e "$1/lock" ] && { echo "job: stale lock $1/lock" >&2; exit 1; }
        touch "$1/lock"
        cat "$1/input" "$1/other" > /dev/null || kill -ABRT $$
        rm "$1/lock"
    "#;
    [
        "sh".into(),
        "-c".into(),
        script.into(),
        "sh".into(),
        dir.display().to_string(),
    ]
}

/// A crash that left a lock behind made every run after it fail, and the campaign blamed each later fault for
/// it: `futex-EINTR corrupted` on tempfile's test suite was the stale sockets of an earlier `mmap-ENOMEM`
/// crash. Now a run whose plain run after fails gets a second plain run; when that fails too the campaign
/// stops (exit 2) before judging anything else, saying which run broke the program and how to go on; a resume
/// checks the program first; with a `--reset` that restores the state, the campaign goes on.
#[test]
fn regression_a_crash_that_left_a_stale_lock_was_blamed_on_every_later_experiment() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input", "x");
    let other = input_file(&dir, "other", "y");
    let job = locking_job(dir.path());
    let cmd: Vec<&dyn AsRef<std::ffi::OsStr>> = job.iter().map(|a| a as _).collect();
    let faults = [
        format!("openat:EACCES:path={}", input.display()),
        format!("openat:ENOENT:path={}", other.display()),
    ];
    let out = dir.path().join("campaign");
    let stopped = exec(&out, &faults, &["--runs", "2"], &cmd)
        .code(2)
        .stderr(predicate::str::contains(
            "phoebe: the campaign stopped: openat-EACCES run 1 left the program failing without injection: the \
             plain run after it failed, and so did a second one (experiments/openat-EACCES/health-1.err), so \
             every run after it would be judged on a broken program",
        ))
        .stderr(predicate::str::contains(
            "then continue with: phoebe exec --resume",
        ));
    let report = load_report(&out);
    assert_eq!(
        verdicts(&report),
        [("openat-EACCES".to_owned(), Verdict::Crashed)]
    );
    assert_eq!(report.experiments[0].runs.len(), 1, "no run after the damage");
    assert_eq!(report.pending, ["openat-ENOENT"]);
    assert!(
        report
            .stopped
            .as_deref()
            .unwrap()
            .starts_with("openat-EACCES run 1")
    );
    let health = std::fs::read_to_string(out.join("experiments/openat-EACCES/health-1.err")).unwrap();
    assert!(health.contains("stale lock"), "{health}");
    let said = String::from_utf8_lossy(&stopped.get_output().stdout).into_owned();
    assert!(
        said.contains("\nstopped: openat-EACCES run 1 left the program"),
        "{said}"
    );

    // A resume checks the program first: still broken, nothing is blamed.
    let resume = || phoebe().args(["exec", "-q", "--resume"]).arg(&out).assert();
    resume().code(2).stderr(predicate::str::contains(
        "the campaign stopped: the program fails without injection before any experiment of this resume ran",
    ));
    assert_eq!(load_report(&out).pending, ["openat-ENOENT"]);
    let lock = dir.path().join("lock");
    // Restored by hand, each resume makes the runs left, one experiment after another: every run crashes and
    // leaves the lock again, so each stops after one run, until the last run, after which nothing is left to
    // judge on the broken program.
    for (stopped_at, pending) in [
        ("openat-EACCES run 2", vec!["openat-ENOENT"]),
        ("openat-ENOENT run 1", vec![]),
    ] {
        std::fs::remove_file(&lock).unwrap();
        resume().code(2).stderr(predicate::str::contains(format!(
            "the campaign stopped: {stopped_at} left the program failing without injection"
        )));
        assert_eq!(load_report(&out).pending, pending, "{stopped_at}");
    }
    std::fs::remove_file(&lock).unwrap();
    resume().code(1);
    let completed = load_report(&out);
    assert_eq!(completed.stopped, None);
    assert_eq!(
        verdicts(&completed),
        [
            ("openat-EACCES".to_owned(), Verdict::Crashed),
            ("openat-ENOENT".to_owned(), Verdict::Crashed)
        ]
    );
    let runs: Vec<Vec<u32>> = completed
        .experiments
        .iter()
        .map(|e| e.runs.iter().map(|r| r.run).collect())
        .collect();
    assert_eq!(runs, [[1, 2], [1, 2]], "every run made once, in order");
    // A resume with nothing left to run checks nothing: the lock is still there, and the report is rendered again.
    resume().code(1);
    assert_eq!(load_report(&out).stopped, None);

    // With a --reset that drops the lock, every run starts healthy and the campaign runs to its end.
    let reset = format!("rm -f {}", dir.path().join("lock").display());
    let with_reset = dir.path().join("with-reset");
    exec(&with_reset, &faults, &["--runs", "2", "--reset", &reset], &cmd).code(1);
    let report = load_report(&with_reset);
    assert_eq!(report.stopped, None);
    assert_eq!(
        verdicts(&report),
        [
            ("openat-EACCES".to_owned(), Verdict::Crashed),
            ("openat-ENOENT".to_owned(), Verdict::Crashed)
        ]
    );
    assert!(report.experiments.iter().all(|e| e.runs.len() == 2));
}

/// six's pytest suite under `read-EIO`: the injected EIO landed on pytest's own plugin discovery, pytest died
/// before any test ran, and the report said "exit status 1, baseline exit status 0" and named no test, which
/// reads as the code under test failing. Now a failed run whose output shows no test session, when every
/// baseline run's did, says the suite ran none of its tests.
#[test]
fn regression_a_fault_that_stopped_the_test_runner_read_as_a_failing_suite() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = input_file(&dir, "runner.cfg", "plugins=none");
    let data = input_file(&dir, "data", "x");
    // A test runner that reads its configuration before its session starts, then runs one test reading data.
    let script = r#"
        cat "$1/runner.cfg" > /dev/null || { echo "runner: cannot read its configuration" >&2; exit 1; }
        echo "running 1 test"
        if cat "$1/data" > /dev/null; then echo "test reads_data ... ok"; else echo "test reads_data ... FAILED"; fi
        echo
        echo "test result: ok. 1 passed; 0 failed"
        cat "$1/data" > /dev/null
    "#;
    let out = dir.path().join("campaign");
    let root = dir.path().display().to_string();
    let cmd: [&dyn AsRef<std::ffi::OsStr>; 5] = [&"sh", &"-c", &script, &"sh", &root];
    exec(
        &out,
        &[
            format!("openat:EACCES:p=1:path={}", config.display()),
            format!("openat:EACCES:p=1:path={}", data.display()),
        ],
        &[],
        &cmd,
    )
    .code(1);
    let report = load_report(&out);
    let detail = |id: &str| {
        let e = report.experiments.iter().find(|e| e.id == id).unwrap();
        assert_eq!(e.verdict, Verdict::Failed, "{id}");
        e.runs[0].detail.clone()
    };
    assert_eq!(
        detail("openat-EACCES"),
        "exit status 1, baseline exit status 0; the suite ran none of its tests (its output shows no test \
         session, every baseline run's did): the fault stopped the test runner itself"
    );
    // The fault on the test's own data fails the suite after it ran: nothing added.
    assert_eq!(detail("openat-EACCES-2"), "exit status 1, baseline exit status 0");
}

/// tempfile's test suite again: an `mmap-ENOMEM` crash left sockets of fixed names in /tmp, and the campaign
/// stopped saying only "(…/health-3.err)", an empty file (libtest prints failures on stdout), with no word of
/// which test the damage broke or what to remove; the crashed run's detail did not say its damage outlived it.
/// Now the sentence names the health run's files that say something, the tests it broke, and what is new in the
/// working and temporary directories since the run started.
#[test]
fn regression_a_campaign_stopped_by_damage_did_not_say_what_the_run_left_behind() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input", "x");
    let script = r#"
        echo "running 1 test"
        if [ -e "$1/lock" ]; then
            echo "test lock_is_free ... FAILED"
            echo "job: stale lock $1/lock" >&2
            exit 101
        fi
        echo "test lock_is_free ... ok"
        touch "$1/lock"
        cat "$1/input" > /dev/null || kill -ABRT $$
        rm "$1/lock"
    "#;
    let out = dir.path().join("campaign");
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let stopped = phoebe()
        .current_dir(dir.path())
        .env("TMPDIR", dir.path())
        .args([
            "exec",
            "-q",
            "--seed",
            "11",
            "--runs",
            "2",
            "--baseline-runs",
            "1",
            "--out",
        ])
        .arg(&out)
        .arg("--fault")
        .arg(format!("openat:EACCES:path={}", input.display()))
        .args(["--", "sh", "-c", script, "sh"])
        .arg(dir.path())
        .assert()
        .code(2);
    let said = String::from_utf8_lossy(&stopped.get_output().stderr).into_owned();
    assert!(
        said.contains(
            "openat-EACCES run 1 left the program failing without injection: the plain run after it failed, and \
             so did a second one (experiments/openat-EACCES/health-1.out, experiments/openat-EACCES/health-1.err; \
             broke lock_is_free), so every run after it would be judged on a broken program; new since run 1 \
             started and still there (another program may have made some): "
        ),
        "{said}"
    );
    assert!(said.contains(&root.join("lock").display().to_string()), "{said}");
    let report = load_report(&out);
    let run = &report.experiments[0].runs[0];
    assert_eq!(run.verdict, Verdict::Crashed);
    assert_eq!(
        run.detail,
        "killed by SIGABRT after 1 injection(s); the plain run after it failed too: the damage outlived the fault"
    );
}

/// A run that hangs is killed at the timeout, and what it held stays behind as a crash's would: the plain run
/// after it tells whether the program still works, and the campaign stops when it does not.
#[test]
fn a_hung_run_that_left_its_lock_stops_the_campaign() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(&dir, "input", "x");
    let script = r#"
        [ -e "$1/lock" ] && { echo "job: stale lock" >&2; exit 1; }
        touch "$1/lock"
        cat "$1/input" > /dev/null || exec sleep 60
        rm "$1/lock"
    "#;
    let job = ["sh", "-c", script, "sh", &dir.path().display().to_string()];
    let cmd: Vec<&dyn AsRef<std::ffi::OsStr>> = job.iter().map(|a| a as _).collect();
    let faults = [
        format!("openat:EACCES:path={}", input.display()),
        "mknod:EPERM".to_owned(),
    ];
    let out = dir.path().join("campaign");
    exec(&out, &faults, &["--timeout", "3s"], &cmd)
        .code(2)
        .stderr(predicate::str::contains(
            "the campaign stopped: openat-EACCES run 1 hung and was killed, and the program failed without \
             injection after it (experiments/openat-EACCES/health-1.err)",
        ));
    let report = load_report(&out);
    assert_eq!(verdicts(&report), [("openat-EACCES".to_owned(), Verdict::Hung)]);
    assert_eq!(report.pending, ["mknod-EPERM"]);
}

/// Service mode restarts the service for every run, but what a crash leaves on disk outlives the restart: a
/// service that cannot start after it would fail every later experiment's runs. After a run in which the service
/// died, phoebe starts it plainly and plays its rounds; when that fails the campaign stops.
#[test]
fn a_service_that_cannot_start_after_a_crash_stops_the_campaign() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = input_file(&dir, "data.txt", "payload");
    let port = free_port();
    let ready = echo_ready(port);
    let workload = echo_workload(port, 10);
    // The wrapper marks the state corrupt when the service aborts, and refuses to start on a corrupt state.
    let script = r#"
        [ -e "$1/corrupt" ] && { echo "service: corrupt state" >&2; exit 1; }
        "$2" "$3" "$1/data.txt" --abort-on-error
        [ $? -eq 134 ] && touch "$1/corrupt"
    "#;
    let echo = testapp("echo-service").display().to_string();
    let service = [
        "sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
        "sh".to_owned(),
        dir.path().display().to_string(),
        echo,
        port.to_string(),
    ];
    let cmd: Vec<&dyn AsRef<std::ffi::OsStr>> = service.iter().map(|a| a as _).collect();
    let out = dir.path().join("campaign");
    let faults = [
        format!("read:EIO:path={}", data.display()),
        "mknod:EPERM".to_owned(),
    ];
    let args = [
        "--service",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "--rounds",
        "2",
        "--timeout",
        "20s",
    ];
    exec(&out, &faults, &args, &cmd).code(2).stderr(predicate::str::contains(
        "the campaign stopped: read-EIO run 1 left the service failing without injection: started again plainly, \
         it did not pass its rounds and check (experiments/read-EIO/health-1.err)",
    ));
    let report = load_report(&out);
    // The wrapper outlives the service it ran, so the run is `failed` (the service ended), not `crashed`.
    assert_eq!(verdicts(&report), [("read-EIO".to_owned(), Verdict::Failed)]);
    assert_eq!(report.pending, ["mknod-EPERM"]);
    let health = std::fs::read_to_string(out.join("experiments/read-EIO/health-1.err")).unwrap();
    assert!(health.contains("corrupt state"), "{health}");
}
