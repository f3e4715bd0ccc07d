//! How phoebe's costs grow (DESIGN §8: they must not):
//! - `decide`: `Decider::decide` on an `openat` call with 1, 10, 100 or 300 rules on other syscalls plus one on
//!   `openat`, in process;
//! - `filter`: the kernel's cost of the seccomp filter, seen from the target: `storm getppid N` under
//!   `phoebe inject --backend ptrace` (and `seccomp` when this build has it) with 1, 10, 100 or 300 `--fault`
//!   rules on syscalls the storm never makes (p = 0), so every getppid runs the filter's binary search to its
//!   `ALLOW`; criterion measures the storm's own loop time (process start-up excluded), next to native;
//! - `observe memory`: peak RSS of `phoebe observe` (each backend this build has) on storms of 10k, 100k and
//!   1M calls, from `/usr/bin/time`: run once each and printed, not sampled by criterion.
//!
//! At the end the medians are printed as Markdown (and written to `target/phoebe-bench/scaling.md`).

#[allow(dead_code, reason = "common/ is shared by both benches; each uses part of it")]
mod common;

use std::{
    ffi::OsString,
    fs,
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{BenchmarkId, Criterion};
use phoebe::{
    backend::filter::{self, Action, Policy},
    decide::{Call, Decider},
    model::{FaultSpec, Syscall, shape::RegistersOnly},
};

use common::{Mode, Storm, human_ns, median, mode, record, run};

const RULE_COUNTS: [usize; 4] = [1, 10, 100, 300];

/// What `storm getppid` (its loader, the Rust runtime, the loop) calls, and what a launcher or tracer relies on:
/// rules never go on these, so that no call of the run meets a rule.
const STORM_USES: &[&str] = &[
    "read",
    "write",
    "close",
    "poll",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "pread64",
    "access",
    "execve",
    "execveat",
    "getppid",
    "sigaltstack",
    "arch_prctl",
    "gettid",
    "getpid",
    "sched_getaffinity",
    "set_tid_address",
    "openat",
    "newfstatat",
    "fstat",
    "statx",
    "set_robust_list",
    "prlimit64",
    "getrandom",
    "rseq",
    "exit",
    "exit_group",
    "futex",
    "seccomp",
    "prctl",
    "ptrace",
    "wait4",
    "waitid",
    "kill",
    "tgkill",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "sendmsg",
    "recvmsg",
    "ioctl",
    "dup2",
    "dup3",
    "pipe2",
    "fcntl",
    "lseek",
    "mremap",
    "madvise",
    "readlink",
];

/// `n` syscalls the storm never makes, spread out (even numbers first) so that as few as possible are neighbours:
/// neighbours with the same action share one range check in the filter, and the search would look shallower.
fn unused_syscalls(n: usize) -> Vec<Syscall> {
    let mut candidates: Vec<Syscall> = Syscall::all()
        .filter(|s| !STORM_USES.contains(&s.name()))
        .collect();
    candidates.sort_by_key(|s| (s.number() % 2, s.number()));
    assert!(
        candidates.len() >= n,
        "only {} syscalls are free for rules",
        candidates.len()
    );
    candidates.truncate(n);
    candidates
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    if mode() == Mode::Full {
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
    } else {
        group
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500));
    }
    let openat = Syscall::parse("openat").expect("openat exists");
    for n in RULE_COUNTS {
        let mut faults: Vec<FaultSpec> = unused_syscalls(n)
            .into_iter()
            .map(|s| FaultSpec::parse(&format!("{}:EPERM:p=0", s.name())).expect("a valid rule"))
            .collect();
        faults.push(FaultSpec::parse("openat:ENOENT:p=0.05").expect("a valid rule"));
        let call = Call {
            args: [0; 6],
            syscall: openat,
            pid: 1,
            tid: 1,
            // Keyed by thread, as the seccomp and ptrace backends ask.
            thread: Some("0"),
            t_ns: 0,
            path: None,
        };
        group.bench_with_input(
            BenchmarkId::new("openat call", format!("{n}+1 rules")),
            &n,
            |b, &n| {
                b.iter_custom(|iters| {
                    // A fresh decider per sample: its injection log grows by 5 % of the calls.
                    let mut decider = Decider::new(faults.clone(), 7);
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(decider.decide(black_box(&call), &mut RegistersOnly));
                    }
                    let elapsed = start.elapsed();
                    record_ns(
                        "decide",
                        &format!("{n}+1 rules"),
                        elapsed.as_nanos() as f64 / iters as f64,
                    );
                    elapsed
                })
            },
        );
    }
    group.finish();
}

/// Keeps a per-call figure (the wall field is unused for these).
fn record_ns(workload: &str, line: &str, ns: f64) {
    record(workload, line, Duration::ZERO, Some(ns));
}

/// The length of the RET_TRACE program the ptrace backend builds for `n` rules (one `Trace` action each).
fn program_len(syscalls: &[Syscall]) -> usize {
    let mut policy = Policy::new(Action::Allow);
    for s in syscalls {
        policy.set(s.number(), Action::Trace(0));
    }
    filter::compile(&policy).map(|p| p.len()).unwrap_or(0)
}

fn bench_filter(c: &mut Criterion) -> Vec<(usize, usize)> {
    let calls = if mode() == Mode::Test { "300" } else { "100000" };
    let storm = common::testapp("storm").into_os_string();
    let app: Vec<OsString> = vec![storm, "getppid".into(), calls.into()];
    let mut group = c.benchmark_group("filter");
    common::configure(&mut group, Duration::from_secs(2));
    let mut lengths = Vec::new();

    let mut lines: Vec<(String, Vec<OsString>)> = vec![("native".into(), app.clone())];
    for backend in ["ptrace", "seccomp"] {
        let probe = common::Line::Inject(backend, "0");
        if mode() != Mode::List && !probe.available() {
            continue;
        }
        for n in RULE_COUNTS {
            let syscalls = unused_syscalls(n);
            if backend == "ptrace" {
                lengths.push((n, program_len(&syscalls)));
            }
            let mut argv: Vec<OsString> = vec![
                common::phoebe().into(),
                "inject".into(),
                "--backend".into(),
                backend.into(),
                "-q".into(),
                "--seed".into(),
                "1".into(),
            ];
            for s in &syscalls {
                argv.push("--fault".into());
                argv.push(format!("{}:EPERM:p=0", s.name()).into());
            }
            argv.push("--".into());
            argv.extend(app.iter().cloned());
            lines.push((format!("{backend} inject, {n} rules"), argv));
        }
    }
    for (label, argv) in lines {
        if !common::selected(&format!("filter/{label}")) {
            continue;
        }
        if mode() != Mode::List {
            let line = common::Line::Native;
            let check = |r: &common::Run| match Storm::parse(&r.stdout) {
                Some(s) if s.unexpected == 0 => Ok(()),
                _ => Err(format!("unexpected output: {}", common::first_line(&r.stdout))),
            };
            if !common::validate(&format!("filter, {label}"), &line, &argv, check) {
                continue;
            }
        }
        group.bench_function(label.as_str(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let r = run(&argv).unwrap_or_else(|e| panic!("filter: {label}: {e}"));
                    if let Some(why) = r.failure() {
                        panic!("filter: {label}: passed its probe, then failed: {why}");
                    }
                    let storm = Storm::parse(&r.stdout).expect("storm's line");
                    record("filter", &label, r.wall, Some(storm.ns_per_call));
                    total += storm.loop_time();
                }
                total
            })
        });
    }
    group.finish();
    lengths
}

/// One `phoebe observe` per backend and storm length: wall time, the storm's ns per call, peak RSS (KiB) of the
/// phoebe process (GNU time's `%M`: the largest of phoebe and the children it waited for).
fn observe_memory() -> Vec<(String, u64, Duration, f64, Option<u64>)> {
    let sizes: &[u64] = if mode() == Mode::Test {
        &[1_000, 10_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    let time = std::path::Path::new("/usr/bin/time");
    let have_time = time.is_file();
    if !have_time {
        common::skipped(
            "observe memory: peak RSS",
            "/usr/bin/time is not installed (apt-get install time)",
        );
    }
    let storm = common::testapp("storm");
    let mut rows = Vec::new();
    for backend in ["ptrace", "ebpf"] {
        if !common::Line::Observe(backend).available() {
            continue;
        }
        for &n in sizes {
            let obs = common::scratch().join(format!("memory-{backend}-{n}.json"));
            let rss_file = common::scratch().join("rss.txt");
            let mut argv: Vec<OsString> = Vec::new();
            if have_time {
                argv.extend(["/usr/bin/time".into(), "-f".into(), "%M".into(), "-o".into()]);
                argv.push(rss_file.clone().into());
            }
            argv.extend([
                common::phoebe().into(),
                "observe".into(),
                "--backend".into(),
                backend.into(),
                "-q".into(),
                "-o".into(),
                obs.into(),
                "--".into(),
                storm.clone().into(),
                "getppid".into(),
                n.to_string().into(),
            ]);
            let what = format!("observe memory: {backend}, {n} calls");
            let r = match run(&argv) {
                Ok(r) => r,
                Err(e) => {
                    common::skipped(&what, &e.to_string());
                    continue;
                }
            };
            if let Some(why) = r.failure() {
                common::skipped(&what, &why);
                continue;
            }
            let Some(s) = Storm::parse(&r.stdout) else {
                common::skipped(&what, "no storm line in the output");
                continue;
            };
            let rss = have_time
                .then(|| fs::read_to_string(&rss_file).ok())
                .flatten()
                .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));
            eprintln!(
                "observe memory: {backend}, {n} getppid calls: {} ({}/call), peak RSS {} KiB",
                human_ns(r.wall.as_nanos() as f64),
                human_ns(s.ns_per_call),
                rss.map_or("?".into(), |k: u64| k.to_string())
            );
            rows.push((backend.to_owned(), n, r.wall, s.ns_per_call, rss));
        }
    }
    rows
}

fn table(lengths: &[(usize, usize)], memory: &[(String, u64, Duration, f64, Option<u64>)]) -> String {
    let records = common::records();
    let samples = |w: &str, l: &str| {
        records
            .iter()
            .find(|(rw, rl, _)| rw == w && rl == l)
            .map(|(_, _, s)| s.per_call_ns.clone())
            .unwrap_or_default()
    };
    let per_call = |w: &str, l: &str| median(&samples(w, l));
    // Interference (other work on the machine) only ever adds time: the fastest run is the steadier figure
    // for a difference of a few ns per call.
    let fastest = |w: &str, l: &str| samples(w, l).into_iter().reduce(f64::min);
    let mut md = String::from(
        "| rules (+1 on the called syscall) | `Decider::decide` | ptrace filter program | getppid under ptrace \
         inject | getppid under seccomp inject |\n|---:|---:|---:|---:|---:|\n",
    );
    let native = per_call("filter", "native");
    for n in RULE_COUNTS {
        let decide = per_call("decide", &format!("{n}+1 rules")).map_or("—".into(), human_ns);
        let len = lengths
            .iter()
            .find(|(k, _)| *k == n)
            .map_or("—".into(), |(_, l)| format!("{l} insns"));
        let cell = |backend: &str| {
            let line = format!("{backend} inject, {n} rules");
            match (per_call("filter", &line), fastest("filter", &line), native) {
                (Some(v), Some(min), Some(nat)) => {
                    format!(
                        "{} ({:.2}× native), fastest {}",
                        human_ns(v),
                        v / nat,
                        human_ns(min)
                    )
                }
                _ => "—".into(),
            }
        };
        md.push_str(&format!(
            "| {n} | {decide} | {len} | {} | {} |\n",
            cell("ptrace"),
            cell("seccomp")
        ));
    }
    md.push_str(&format!(
        "\nNative getppid in the same run: {}/call. The storm's own timing of its loop (medians); the rules are \
         on syscalls it never makes, so each getppid runs the filter to its ALLOW.\n",
        native.map_or("—".into(), human_ns)
    ));
    for backend in ["ptrace", "seccomp"] {
        let (one, many) = (
            format!("{backend} inject, 1 rules"),
            format!("{backend} inject, 300 rules"),
        );
        if let (Some(a), Some(b), Some(fa), Some(fb)) = (
            per_call("filter", &one),
            per_call("filter", &many),
            fastest("filter", &one),
            fastest("filter", &many),
        ) {
            let r = fb / fa;
            md.push_str(&format!(
                "\nDESIGN §8, filter cost flat as rules grow ({backend}, 300 rules ÷ 1 rule, fastest runs, taken \
                 as ≤ 1.05×): {r:.2}× — {} (medians: {:.2}×).\n",
                if r <= 1.05 { "met" } else { "**missed**" },
                b / a
            ));
        }
    }
    if !memory.is_empty() {
        md.push_str("\n| observe | getppid calls | run | per call | peak RSS |\n|---|---:|---:|---:|---:|\n");
        for (backend, n, wall, ns, rss) in memory {
            md.push_str(&format!(
                "| {backend} | {n} | {} | {} | {} |\n",
                human_ns(wall.as_nanos() as f64),
                human_ns(*ns),
                rss.map_or("—".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
            ));
        }
        md.push_str("\nOne run each; peak RSS of the phoebe process (GNU time `%M`).\n");
    }
    md
}

fn main() {
    let _cleanup = common::Cleanup;
    let mut c = Criterion::default().configure_from_args();
    bench_decide(&mut c);
    let lengths = bench_filter(&mut c);
    c.final_summary();
    if mode() == Mode::List {
        return;
    }
    let memory = if common::selected("observe memory") {
        observe_memory()
    } else {
        Vec::new()
    };
    if matches!(mode(), Mode::Full | Mode::Quick) {
        common::publish("scaling", &table(&lengths, &memory));
    }
}
