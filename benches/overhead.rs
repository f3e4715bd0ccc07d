//! What phoebe costs, per workload and per line (native, each backend, strace), as ratios against native measured
//! in the same run (DESIGN §8).
//!
//! Workloads (one criterion group each), all real programs run as a user would run them:
//! - `getppid storm`: `storm getppid N`; the rule is on `unlinkat`, which the storm never makes, so every
//!   getppid is an *untargeted* call, judged against the same storm under a one-instruction allow-all filter
//!   (`allow-all`, the line `seccomp allow-all filter`: what any filter costs);
//! - `futex-wake storm`: `storm futex-wake N`; the rule is on futex *waits* (`op=FUTEX_WAIT_PRIVATE`, p = 0),
//!   which the filter decides on the call's registers, so every wake stays in the kernel; the `without shape`
//!   lines drop the predicate, so every wake makes the round trip (DESIGN §8: shape predicates in the filter);
//! - `read storm`: `storm read-udp N`, reads of an empty non-blocking UDP socket (EAGAIN): calls on a
//!   descriptor, whose kind the eBPF observer learns in the kernel (native, `ebpf observe` and the empty program
//!   only);
//! - `openat storm`: `storm openat-fail N` (linked statically, see `common::static_storm`); the rule is on
//!   `openat` with the errno the calls fail with anyway (ENOENT), so every call is *targeted* and the program
//!   behaves the same whatever is injected;
//! - `file copy`: `dd bs=4096` of a file (reads and writes); the rule fails `write` with EINTR, which dd retries;
//! - `process spawn`: `forker --children 8` (posix_spawn and fork+exec); the rule fails the children's opens of
//!   a file that does not exist (they ignore the error);
//! - `java start-up`: the Java test app on two small inputs; the rule is on the opens of a file it never opens,
//!   so every `openat` of the JVM is checked and none fails.
//!
//! Lines: `native`, `seccomp allow-all filter` (the storms only), `ptrace observe`, `ptrace inject` (the same job as strace's), `seccomp inject` at the
//! probabilities that apply (p = 0: every targeted call continues; p = 1: the errno is returned by the filter
//! when nothing else is needed; p = 0.05), `ebpf observe`, `ebpf empty program` (the app alone while the bench
//! holds an empty program on `sys_exit`: the hook's own cost, the floor of `ebpf observe`), `strace -f -c` and `strace -f -e inject=…` with and
//! without `--seccomp-bpf`. A line this build or machine cannot run is probed once and left out with
//! `skipped: <line>: <why>`. criterion times whole runs (`Command::output`, wall clock); the storms also report
//! their own time per call, which is what the per-call ratios use. At the end the medians are printed as
//! Markdown (and written to `target/phoebe-bench/overhead.md` for `ci/bench-table`).
//!
//! The eBPF observer's lines alone (a criterion filter; the README's before/after of issue 12 was measured so, in
//! alternating runs of two builds): `PHOEBE_BENCH_QUICK=1 cargo bench --bench overhead --
//! '(getppid|openat) storm/(native|ebpf)'`.

#[allow(dead_code, reason = "common/ is shared by both benches; each uses part of it")]
mod common;

use std::{ffi::OsString, fs, time::Duration};

use criterion::Criterion;

use common::{
    Job, Line, Mode, Storm, human_ns, margin, margin_above, median, mode, record, run, scratch, verdict,
};

/// What a good run of a workload looks like (its output, the files it wrote).
type Check = Box<dyn Fn(&common::Run) -> Result<(), String>>;

/// A workload: its command, its injection job, and how a good run looks.
struct Workload {
    name: &'static str,
    app: Vec<OsString>,
    job: Job,
    /// It is `storm`: parse its per-call figure, and check that nothing unexpected happened.
    storm: bool,
    /// Criterion's measurement time per line in full mode.
    measure: Duration,
    /// Checks a validation run's output.
    check: Check,
    /// The lines to run, when not every line applies ([`Line::all`]).
    lines: Option<Vec<Line>>,
}

fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

fn storm_check(run: &common::Run) -> Result<(), String> {
    match Storm::parse(&run.stdout) {
        Some(s) if s.unexpected == 0 => Ok(()),
        Some(s) => Err(format!(
            "{} of {} calls had an unexpected result",
            s.unexpected, s.calls
        )),
        None => Err(format!(
            "no storm line in its output: {}",
            common::first_line(&run.stdout)
        )),
    }
}

fn workloads() -> Vec<Workload> {
    let test = mode() == Mode::Test;
    let storm_calls = if test { "300" } else { "10000" };
    let copy_bytes = if test { 64 << 10 } else { 8 << 20 };
    let children = if test { "2" } else { "8" };
    let dir = scratch();
    let mut list = Vec::new();

    let storm = common::testapp("storm").into_os_string();
    let job = Job {
        syscall: "unlinkat",
        errno: "EACCES",
        path: None,
        strace_when: None,
        ptrace_p: "1",
        seccomp_ps: &["0", "1", "0.05"],
        shape: None,
    };
    // Every line, and the floor of any seccomp filter, which DESIGN §8 judges the untargeted calls against.
    let mut lines = Line::all(&job);
    lines.push(Line::AllowAll);
    list.push(Workload {
        name: "getppid storm",
        app: vec![storm, "getppid".into(), storm_calls.into()],
        job,
        storm: true,
        measure: Duration::from_secs(3),
        check: Box::new(storm_check),
        lines: Some(lines),
    });

    let static_storm = common::static_storm().into_os_string();
    list.push(Workload {
        name: "openat storm",
        app: vec![static_storm, "openat-fail".into(), storm_calls.into()],
        job: Job {
            syscall: "openat",
            errno: "ENOENT",
            path: None,
            strace_when: None,
            ptrace_p: "1",
            seccomp_ps: &["0", "1", "0.05"],
            shape: None,
        },
        storm: true,
        measure: Duration::from_secs(3),
        check: Box::new(storm_check),
        lines: None,
    });

    // Calls on a descriptor, whose kind and O_NONBLOCK the eBPF observer learns in the kernel at each call: what
    // that costs over the hook and over an untargeted getppid.
    list.push(Workload {
        name: "read storm",
        app: vec![
            common::testapp("storm").into_os_string(),
            "read-udp".into(),
            storm_calls.into(),
        ],
        job: Job {
            syscall: "unlinkat",
            errno: "EACCES",
            path: None,
            strace_when: None,
            ptrace_p: "1",
            seccomp_ps: &["0"],
            shape: None,
        },
        storm: true,
        measure: Duration::from_secs(3),
        check: Box::new(storm_check),
        lines: Some(vec![Line::Native, Line::Observe("ebpf"), Line::EmptyProgram]),
    });

    // Shape predicates decided in the filter (DESIGN §8): a rule on futex waits leaves the wakes in the kernel.
    // Without the predicate every wake makes the round trip to phoebe. p = 0: nothing is injected either way.
    list.push(Workload {
        name: "futex-wake storm",
        app: vec![
            common::testapp("storm").into_os_string(),
            "futex-wake".into(),
            storm_calls.into(),
        ],
        job: Job {
            syscall: "futex",
            errno: "EAGAIN",
            path: None,
            strace_when: None,
            ptrace_p: "0",
            seccomp_ps: &["0"],
            shape: Some("op=FUTEX_WAIT_PRIVATE"),
        },
        storm: true,
        measure: Duration::from_secs(3),
        check: Box::new(storm_check),
        lines: Some(vec![
            Line::Native,
            Line::AllowAll,
            Line::Inject("seccomp", "0"),
            Line::InjectWithoutShape("seccomp", "0"),
            Line::Inject("ptrace", "0"),
            Line::InjectWithoutShape("ptrace", "0"),
        ]),
    });

    let src = dir.join("copy-src.bin");
    let dst = dir.join("copy-dst.bin");
    let content: Vec<u8> = (0..copy_bytes)
        .map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&src, &content).expect("write the copy's input");
    let expected = content.len() as u64;
    let dst_check = dst.clone();
    list.push(Workload {
        name: "file copy",
        app: os(&[
            "dd",
            &format!("if={}", src.display()),
            &format!("of={}", dst.display()),
            "bs=4096",
            "status=none",
        ]),
        job: Job {
            syscall: "write",
            errno: "EINTR",
            path: None,
            strace_when: Some("1+20"),
            ptrace_p: "0.05",
            // p = 1 does not apply: dd retries EINTR, so failing every write never ends.
            seccomp_ps: &["0", "0.05"],
            shape: None,
        },
        storm: false,
        measure: Duration::from_secs(3),
        lines: None,
        check: Box::new(move |_| match fs::metadata(&dst_check).map(|m| m.len()) {
            Ok(n) if n == expected => Ok(()),
            Ok(n) => Err(format!("the copy has {n} bytes, not {expected}")),
            Err(e) => Err(format!("no copy: {e}")),
        }),
    });

    let input = dir.join("spawn-input.txt");
    fs::write(&input, "phoebe\n").expect("write the spawn input");
    let ok = format!("ok={children}");
    list.push(Workload {
        name: "process spawn",
        app: vec![
            common::testapp("forker").into_os_string(),
            "--children".into(),
            children.into(),
            input.clone().into_os_string(),
        ],
        job: Job {
            syscall: "openat",
            errno: "ENOENT",
            path: Some(format!("{}.phoebe-missing", input.display())),
            strace_when: None,
            ptrace_p: "1",
            seccomp_ps: &["0", "1", "0.05"],
            shape: None,
        },
        storm: false,
        measure: Duration::from_secs(3),
        lines: None,
        check: Box::new(move |run| {
            if run.stdout.contains(&ok) {
                Ok(())
            } else {
                Err(format!("expected {ok} in: {}", common::first_line(&run.stdout)))
            }
        }),
    });

    match common::java_jar() {
        Ok(jar) => {
            let (a, b) = (dir.join("java-a.txt"), dir.join("java-b.txt"));
            fs::write(&a, "alpha\n").expect("write a Java input");
            fs::write(&b, "beta beta\n").expect("write a Java input");
            let mut app = os(&["java", "-jar"]);
            app.extend([jar, dir.join("java-out.txt"), a, b].map(OsString::from));
            list.push(Workload {
                name: "java start-up",
                app,
                job: Job {
                    syscall: "openat",
                    errno: "ENOENT",
                    path: Some(format!("{}", dir.join("never-opened").display())),
                    strace_when: None,
                    ptrace_p: "1",
                    seccomp_ps: &["1"],
                    shape: None,
                },
                storm: false,
                measure: Duration::from_secs(5),
                lines: None,
                check: Box::new(|run| {
                    if run.stdout.contains("total 16") {
                        Ok(())
                    } else {
                        Err(format!("unexpected output: {}", common::first_line(&run.stdout)))
                    }
                }),
            });
        }
        Err(why) => common::skipped("java start-up", &format!("no JDK: {why}")),
    }
    list
}

fn bench_workload(c: &mut Criterion, w: &Workload) {
    let mut group = c.benchmark_group(w.name);
    common::configure(&mut group, w.measure);
    for line in w.lines.clone().unwrap_or_else(|| Line::all(&w.job)) {
        let label = line.label();
        if !common::selected(&format!("{}/{label}", w.name)) {
            continue;
        }
        let tag = format!("{}-{}", w.name, label).replace([' ', '/', '='], "_");
        let argv = line.argv(&w.job, &w.app, &tag);
        if mode() != Mode::List && !(line.available() && common::validate(w.name, &line, &argv, &w.check)) {
            continue;
        }
        let (name, storm) = (w.name, w.storm);
        // The empty program stays attached for this line's runs only.
        let held = match if mode() == Mode::List {
            Ok(None)
        } else {
            line.hold()
        } {
            Ok(held) => held,
            Err(why) => {
                common::skipped(&format!("{}: {label}", w.name), &why);
                continue;
            }
        };
        group.bench_function(label.as_str(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let r = run(&argv).unwrap_or_else(|e| panic!("{name}: {label}: {e}"));
                    if let Some(why) = r.failure() {
                        panic!("{name}: {label}: passed its probe, then failed: {why}");
                    }
                    let per_call = storm
                        .then(|| Storm::parse(&r.stdout).map(|s| s.ns_per_call))
                        .flatten();
                    record(name, &label, r.wall, per_call);
                    total += r.wall;
                }
                total
            })
        });
        drop(held);
    }
    group.finish();
}

/// The medians of one line, or of the line with this label in the same workload.
struct Medians {
    wall: Option<f64>,
    per_call: Option<f64>,
}

fn medians(records: &[(String, String, common::Samples)], workload: &str, line: &str) -> Medians {
    records
        .iter()
        .find(|(w, l, _)| w == workload && l == line)
        .map(|(_, _, s)| Medians {
            wall: median(&s.wall_ns),
            per_call: median(&s.per_call_ns),
        })
        .unwrap_or(Medians {
            wall: None,
            per_call: None,
        })
}

impl Medians {
    /// The figure ratios use: per call for storms (their own timing), the whole run otherwise.
    fn key(&self) -> Option<f64> {
        self.per_call.or(self.wall)
    }
}

fn ratio(num: Option<f64>, den: Option<f64>) -> String {
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.2}×", n / d),
        _ => "—".into(),
    }
}

/// The Markdown table of this run's medians, and the DESIGN §8 verdicts that follow from it.
fn table() -> String {
    let records = common::records();
    let mut md = String::from(
        "| workload | line | median | × native | strace ÷ this | strace --seccomp-bpf ÷ this |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    let mut workloads: Vec<&str> = Vec::new();
    for (w, _, _) in &records {
        if !workloads.contains(&w.as_str()) {
            workloads.push(w);
        }
    }
    for w in &workloads {
        let native = medians(&records, w, "native");
        let strace_count = medians(&records, w, "strace -f -c");
        let strace_inject = medians(&records, w, "strace -f -e inject");
        let strace_bpf = medians(&records, w, "strace -f --seccomp-bpf -e inject");
        for (_, line, _) in records.iter().filter(|(rw, _, _)| rw == w) {
            let m = medians(&records, w, line);
            let shown = match (m.per_call, m.wall) {
                (Some(pc), Some(wall)) => format!("{}/call (run {})", human_ns(pc), human_ns(wall)),
                (None, Some(wall)) => human_ns(wall),
                _ => "—".into(),
            };
            let (vs_strace, vs_bpf) = if line.contains(" observe") {
                (ratio(strace_count.key(), m.key()), "—".into())
            } else if line.contains(" inject p=") {
                (
                    ratio(strace_inject.key(), m.key()),
                    ratio(strace_bpf.key(), m.key()),
                )
            } else {
                ("—".into(), "—".into())
            };
            md.push_str(&format!(
                "| {w} | {line} | {shown} | {} | {vs_strace} | {vs_bpf} |\n",
                ratio(m.key(), native.key())
            ));
        }
    }
    md.push_str(
        "\nMedians of every timed run of each line in this run (storms: the storm's own time per call, which \
         the ratios use; other workloads: the whole run, start to exit). × native: this line ÷ native; strace ÷ \
         this: how many times faster than strace on the same job (`-c` for observe lines, `-e inject=…` for \
         inject lines); above 1 means phoebe is faster.\n",
    );
    md.push_str(&targets(&records));
    md
}

/// DESIGN §8, checked against this run's medians (a result to read, never an assertion).
fn targets(records: &[(String, String, common::Samples)]) -> String {
    let mut out = String::from("\nDESIGN §8 targets in this run:\n\n");
    let per_call = |w: &str, l: &str| medians(records, w, l).per_call;
    let key = |w: &str, l: &str| medians(records, w, l).key();
    let mut any = false;
    let mut line = |text: String| {
        any = true;
        out.push_str(&format!("- {text}\n"));
    };

    // seccomp: untargeted calls within 5 % of a minimal allow-all filter, the floor of any filter (1.05× native
    // is below what any filter costs on this kernel); native shown beside it.
    if let Some(floor) = per_call("getppid storm", "seccomp allow-all filter") {
        let native = per_call("getppid storm", "native").map_or(String::new(), |n| {
            format!("; allow-all filter {:.2}× native", floor / n)
        });
        for p in ["0", "1", "0.05"] {
            if let Some(v) = per_call("getppid storm", &format!("seccomp inject p={p}")) {
                let r = v / floor;
                line(format!(
                    "seccomp, untargeted calls within 5 % of an allow-all filter (getppid storm, rule p={p}): \
                     {r:.2}× the filter's floor — {}{}{native}",
                    verdict(r <= 1.05),
                    margin(r, 1.05)
                ));
            }
        }
    }
    // Shape predicates decided in the filter: a futex wake, which the rule's `op=` leaves out, pays what a filter
    // that reads a register costs, never a round trip (the line without the predicate shows the round trip).
    if let (Some(floor), Some(v)) = (
        per_call("futex-wake storm", "seccomp allow-all filter"),
        per_call("futex-wake storm", "seccomp inject p=0"),
    ) {
        let r = v / floor;
        let without = per_call("futex-wake storm", "seccomp inject p=0 without shape")
            .map_or(String::new(), |w| {
                format!("; without the predicate {:.2}×", w / floor)
            });
        line(format!(
            "seccomp, shape predicates keep untargeted calls at the filter's floor (futex-wake storm, rule on \
             waits; taken as within 5 %): {r:.2}× the allow-all filter — {}{}{without}",
            verdict(r <= 1.05),
            margin(r, 1.05)
        ));
    }
    // ptrace vs strace on the same jobs.
    let mut workloads: Vec<&str> = Vec::new();
    for (w, _, _) in records {
        if !workloads.contains(&w.as_str()) {
            workloads.push(w);
        }
    }
    for w in &workloads {
        let ptrace_inject = records
            .iter()
            .find(|(rw, l, _)| rw == w && l.starts_with("ptrace inject"))
            .map(|(_, l, _)| l.as_str());
        if let (Some(pl), Some(s)) = (ptrace_inject, key(w, "strace -f -e inject"))
            && let Some(p) = key(w, pl)
        {
            let speedup = s / p;
            line(format!(
                "ptrace ≥ 2× faster than `strace -f -e inject=…` ({w}): {speedup:.2}× — {}{}{}",
                verdict(speedup >= 2.0),
                margin_above(speedup, 2.0),
                overheads(medians(records, w, "native"), s, p)
            ));
        }
        if let (Some(s), Some(p)) = (key(w, "strace -f -c"), key(w, "ptrace observe")) {
            let speedup = s / p;
            line(format!(
                "ptrace ≥ 1.5× faster than `strace -f -c` on observation ({w}): {speedup:.2}× — {}{}{}",
                verdict(speedup >= 1.5),
                margin_above(speedup, 1.5),
                overheads(medians(records, w, "native"), s, p)
            ));
        }
    }
    // eBPF observation.
    for (w, limit) in [("openat storm", 1.2), ("java start-up", 1.03)] {
        if let (Some(e), Some(n)) = (key(w, "ebpf observe"), key(w, "native")) {
            let r = e / n;
            line(format!(
                "eBPF observation ≤ {limit}× native ({w}): {r:.2}× — {}{}",
                verdict(r <= limit),
                margin(r, limit)
            ));
        }
    }
    // eBPF observation against the hook's own cost: an empty program on `sys_exit` (DESIGN §8: within 10 %).
    for w in ["getppid storm", "openat storm"] {
        if let (Some(e), Some(empty)) = (per_call(w, "ebpf observe"), per_call(w, "ebpf empty program")) {
            let r = e / empty;
            let over = per_call(w, "native").map_or(String::new(), |n| {
                format!(
                    "; over native per call: empty program {}, observer {}",
                    signed_ns(empty - n),
                    signed_ns(e - n)
                )
            });
            line(format!(
                "eBPF observation within 10 % of an empty program on the same hook ({w}): {r:.2}× — {}{}{over}",
                verdict(r <= 1.10),
                margin(r, 1.10)
            ));
        }
    }
    if !any {
        out.push_str("- none measured in this run\n");
    }
    out
}

/// `; over native: strace +49 ms, ptrace +3.1 ms`: what each adds to the same work, which a ratio of whole runs
/// hides when the workload itself is long.
fn overheads(native: Medians, strace: f64, phoebe: f64) -> String {
    let unit = if native.per_call.is_some() {
        " per call"
    } else {
        ""
    };
    native.key().map_or(String::new(), |n| {
        format!(
            "; over native{unit}: strace {}, ptrace {}",
            signed_ns(strace - n),
            signed_ns(phoebe - n)
        )
    })
}

/// `+42.8 ns`, `−25.0 ns`.
fn signed_ns(v: f64) -> String {
    if v < 0.0 {
        format!("−{}", human_ns(-v))
    } else {
        format!("+{}", human_ns(v))
    }
}

fn main() {
    let _cleanup = common::Cleanup;
    let mut c = Criterion::default().configure_from_args();
    for w in workloads() {
        bench_workload(&mut c, &w);
    }
    c.final_summary();
    if matches!(mode(), Mode::Full | Mode::Quick) {
        common::publish("overhead", &table());
    }
}
