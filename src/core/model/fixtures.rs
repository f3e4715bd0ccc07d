//! Test fixtures of the model: sample campaign reports, shared by the model's and every renderer's tests (so
//! that no test imports a renderer for its data), and an observation whose counts add past `u64::MAX`.

use std::{collections::BTreeMap, time::Duration};

use crate::model::{
    Baseline, BaselineRun, Category, Errno, ErrorModel, ExperimentResult, FaultSpec, Interval, Observation,
    ObservationBuilder, ObservationMeta, RateStats, Report, RunResult, Skipped, Syscall, SyscallStats,
    TargetExit, Usage, Verdict, observation::ShapeStats,
};

pub fn model(id: &str, category: Category, target: f64, p: f64) -> ErrorModel {
    let (syscall, errno) = id.split_once('-').unwrap();
    ErrorModel {
        id: id.into(),
        syscall: Syscall::parse(syscall).unwrap(),
        action: crate::model::Action::Errno(Errno::parse(errno).unwrap()),
        stats: RateStats {
            mean: target / 2.0,
            variance: 0.002,
            p5: 0.0,
            quantile: target,
            max: target,
            failures: 30,
            calls: 1000,
            intervals: 4,
            intervals_with_error: 3,
            samples: 4,
        },
        category,
        rule: "test".into(),
        target_rate: target,
        probability: p,
        fault: FaultSpec::parse(&format!("{syscall}:{errno}:p={p}")).unwrap(),
        shapes: Vec::new(),
        tier: Default::default(),
    }
}

pub fn run(run: u32, verdict: Verdict, detail: &str, matched: u64, injected: u64) -> RunResult {
    RunResult {
        rounds: None,
        run,
        seed: 1000 + u64::from(run),
        verdict,
        detail: detail.into(),
        exit: Some(TargetExit::Code(if verdict == Verdict::Failed { 1 } else { 0 })),
        duration_ms: 1500,
        usage: Some(Usage {
            user_ms: 10,
            sys_ms: 5,
            max_rss_kib: 2048,
        }),
        matched,
        injected,
        natural: None,
        achieved_counts: crate::model::AchievedCounts::InjectedOnly,
        // Every injection of the fixture landed on a shape that failed naturally (as synthesized models do).
        realistic: Some(injected),
        check_passed: None,
        post_run_passed: Some(true),
        log: format!("runs/{run}.json"),
        evidence: None,
        settles: false,
    }
}

/// [`sample`] whose failed experiment (`read-EAGAIN`) broke two tests of the suite, one with markup in its name.
pub fn sample_with_broken_tests() -> Report {
    let mut report = sample();
    report.experiments[1].broken_tests = vec!["tests::reads".into(), "t.py::test_<x>".into()];
    report
}

/// Three experiments: a resilient model, a failed model with 2 runs (its detail has `|` and `<`), and a
/// given fault (no model) that was never exercised; interrupted, one experiment pending.
pub fn sample() -> Report {
    let openat = model("openat-ENOENT", Category::Sporadic, 0.05, 0.0345);
    let read = model("read-EAGAIN", Category::Fluctuating, 0.3, 0.2);
    Report {
        version: 1,
        command: vec!["/usr/bin/my app".into(), "--in".into(), "<input>.txt".into()],
        backend: "ptrace".into(),
        created_at: "2026-11-24T21:00:00Z".into(),
        seed: 42,
        shard: Some("1/2".into()),
        fingerprint: None,
        baseline: Baseline {
            runs: vec![
                BaselineRun {
                    rounds: None,
                    exit: TargetExit::Code(0),
                    duration_ms: 1200,
                    usage: None,
                    check_passed: Some(true),
                    workload_ms: None,
                },
                BaselineRun {
                    rounds: None,
                    exit: TargetExit::Code(0),
                    duration_ms: 1300,
                    usage: None,
                    check_passed: Some(true),
                    workload_ms: None,
                },
            ],
            exit: TargetExit::Code(0),
            timeout_ms: 10_000,
            expect_status: None,
            accept_flaky: false,
            flaky: None,
            rerun_passed: Some(true),
        },
        natural_rates: BTreeMap::from([
            ("openat-ENOENT".to_owned(), vec![0.0, 0.02, 0.01, 0.04]),
            ("read-EAGAIN".to_owned(), vec![0.1, 0.3, 0.2]),
        ]),
        interval_ms: 1000,
        experiments: vec![
            ExperimentResult::from_runs(
                openat.id.clone(),
                openat.faults(),
                Some(openat),
                vec![run(
                    1,
                    Verdict::Resilient,
                    "same exit status as the baseline",
                    200,
                    7,
                )],
            ),
            ExperimentResult::from_runs(
                read.id.clone(),
                read.faults(),
                Some(read),
                vec![
                    run(1, Verdict::Resilient, "same exit status as the baseline", 100, 20),
                    run(
                        2,
                        Verdict::Failed,
                        "exit status 1, baseline 0 | see <stderr>",
                        50,
                        11,
                    ),
                ],
            ),
            ExperimentResult::from_runs(
                "unlinkat-EACCES".into(),
                vec![FaultSpec::parse("unlinkat:EACCES:p=0.5").unwrap()],
                None,
                vec![run(1, Verdict::NotExercised, "no call matched the fault", 0, 0)],
            ),
        ],
        pending: vec!["connect-ECONNREFUSED".into()],
        skipped: Vec::new(),
        skipped_backend: None,
        interrupted: true,
        stopped: None,
    }
}

/// [`sample`] on the eBPF backend: `unlinkat-EACCES` (no LSM hook) and a synthesized `futex-EAGAIN` model
/// are skipped, with the reasons the backend gives ([`ebpf_reason`]).
pub fn sample_with_skipped() -> Report {
    let mut report = sample();
    report.backend = "ebpf".into();
    let unlinkat = report.experiments.remove(2);
    let futex = model("futex-EAGAIN", Category::Steady, 0.2, 0.1);
    report.skipped = [(futex.id.clone(), futex.faults()), (unlinkat.id, unlinkat.faults)]
        .into_iter()
        .map(|(id, faults)| Skipped {
            reason: ebpf_reason(&faults),
            id,
            faults,
        })
        .collect();
    // As `backend::runs_skipped` names it (`experiment`'s tests check that it still does).
    report.skipped_backend = Some("seccomp".into());
    report
}

/// The eBPF backend's reason for refusing `faults` (one syscall without an LSM hook), as its rule check says
/// it; `experiment`'s tests check that the backend still says so.
pub fn ebpf_reason(faults: &[FaultSpec]) -> String {
    let name = faults[0].syscalls[0].name();
    format!(
        "no LSM hook decides '{name}'; the eBPF backend can fail only the calls it has a hook for; {}",
        crate::hint::Hint::UseSeccomp
    )
}

/// [`sample`] with evidence on the failing run of `read-EAGAIN` (run 2): an abort message with markup, a
/// backtick fence and a `|`, a stdout line, one injected call and a repro command with a space to quote.
pub fn sample_with_evidence() -> Report {
    use crate::model::{Errno, InjectedCall, RunEvidence, Syscall};
    let mut report = sample();
    let repro: Vec<String> = vec![
        "/opt/phoebe".into(),
        "inject".into(),
        "--count-all".into(),
        "--replay".into(),
        "/c/experiments/read-EAGAIN/run-2.log.json".into(),
        "--".into(),
        "/usr/bin/my app".into(),
    ];
    let run = &mut report.experiments[1].runs[1];
    assert_eq!(run.verdict, Verdict::Failed);
    run.evidence = Some(RunEvidence {
        stderr_tail: vec![
            "reading <input>.txt".into(),
            "```".into(),
            "fatal: read failed | EAGAIN <script>x</script>".into(),
        ],
        stdout_tail: vec!["partial output".into()],
        stderr_file: "experiments/read-EAGAIN/run-2.err".into(),
        stdout_file: "experiments/read-EAGAIN/run-2.out".into(),
        post_stderr_tail: Vec::new(),
        post_stderr_file: String::new(),
        error_line: None,
        error_line_file: String::new(),
        crash_line: None,
        crash_file: String::new(),
        complaint_line: None,
        complaint_file: String::new(),
        hung_in: None,
        hung_file: String::new(),
        round_line: None,
        round_file: String::new(),
        check_line: None,
        check_file: String::new(),
        first_injections: vec![InjectedCall {
            syscall: Syscall::parse("read").unwrap(),
            effect: crate::model::Effect::Errno(Errno::parse("EAGAIN").unwrap()),
            delay_ns: None,
            index: 4,
            shape: Some("fd=pipe:nonblock=yes".into()),
            path: None,
            interrupted_by: None,
        }],
        // As `report::view::command_line` quotes it (its tests check that it still does).
        repro_shell: "/opt/phoebe inject --count-all --replay /c/experiments/read-EAGAIN/run-2.log.json -- \
                      '/usr/bin/my app'"
            .into(),
        repro,
    });
    report
}

/// Two intervals of `openat` whose counts (calls, ENOENT failures, latency, a shape's) are each `u64::MAX`, plus
/// one EIO: every sum over them passes `u64::MAX`.
pub fn huge_observation() -> Observation {
    let errno = |name| Errno::parse(name).unwrap();
    let mut stats = SyscallStats {
        calls: u64::MAX,
        latency_ns_sum: u64::MAX,
        ..SyscallStats::default()
    };
    stats.errors.insert(errno("ENOENT"), u64::MAX);
    stats.errors.insert(errno("EIO"), 1);
    stats.shapes.insert(
        "path=/x".into(),
        ShapeStats {
            calls: u64::MAX,
            errors: stats.errors.clone(),
        },
    );
    Observation {
        intervals: vec![
            Interval {
                syscalls: [(Syscall::parse("openat").unwrap(), stats.clone())].into(),
            };
            2
        ],
        ..ObservationBuilder::new(Duration::from_secs(1)).finish(Duration::ZERO, ObservationMeta::default())
    }
}
