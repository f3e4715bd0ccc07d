//! What the benches share: where the real `phoebe` binary and the test apps are, the lines a workload is run
//! under (native, each backend, strace), the probes that leave out a line this machine cannot run, running a
//! command with wall-clock timing, the medians of this run and the Markdown they end up in.
//!
//! Every measurement runs a real binary the way a user would: `phoebe observe|inject … -- APP`, `strace … APP`,
//! or `APP` alone. Nothing here asserts on a time: a line that cannot run prints `skipped: <line>: <why>` and is
//! left out, and the figures are results to read, never pass/fail criteria.

use std::{
    collections::HashMap,
    env,
    ffi::{OsStr, OsString},
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use criterion::{BenchmarkGroup, SamplingMode, measurement::WallTime};

/// How the bench binary was asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cargo bench -- --test` or `cargo test --benches`: every bench once, on small workloads.
    Test,
    /// `cargo bench -- --list`: names only, nothing is run.
    List,
    /// `PHOEBE_BENCH_QUICK=1 cargo bench` (what `ci/bench-table` runs): the full workloads, fewer samples.
    Quick,
    /// `cargo bench`.
    Full,
}

/// The mode, decided the way criterion decides it (`--test`, or no `--bench` because `cargo test` runs us).
pub fn mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| {
        let args: Vec<String> = env::args().collect();
        let has = |flag: &str| args.iter().any(|a| a == flag);
        if has("--list") {
            Mode::List
        } else if has("--test") || !has("--bench") {
            Mode::Test
        } else if env::var_os("PHOEBE_BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty()) {
            Mode::Quick
        } else {
            Mode::Full
        }
    })
}

/// Would criterion run the bench with this id (`group/function`)? Mirrors its `FILTER` argument closely enough
/// to skip the probes and one-off runs of what was filtered out: a plain substring (or, with `--exact`, the whole
/// id); a filter with regex syntax selects everything here, and criterion still applies it to the benches.
pub fn selected(id: &str) -> bool {
    static FILTER: OnceLock<(Option<String>, bool)> = OnceLock::new();
    const TAKES_VALUE: &[&str] = &[
        "-c",
        "--color",
        "-s",
        "--save-baseline",
        "-b",
        "--baseline",
        "--baseline-lenient",
        "--format",
        "--profile-time",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--plotting-backend",
        "--output-format",
    ];
    let (filter, exact) = FILTER.get_or_init(|| {
        let args: Vec<String> = env::args().skip(1).collect();
        let mut filter = None;
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            if TAKES_VALUE.contains(&arg.as_str()) {
                i += 1;
            } else if !arg.starts_with('-') && filter.is_none() {
                filter = Some(arg.clone());
            }
            i += 1;
        }
        (filter, args.iter().any(|a| a == "--exact"))
    });
    match filter {
        None => true,
        Some(f) if *exact => id == f,
        Some(f) if f.contains(|c: char| "\\.^$*+?()[]{}|".contains(c)) => true,
        Some(f) => id.contains(f.as_str()),
    }
}

/// Sets a group's sampling for whole-process runs: at least 10 runs (criterion's minimum), flat sampling (every
/// sample the same number of runs), and the warm-up and measurement times of the mode.
pub fn configure(group: &mut BenchmarkGroup<'_, WallTime>, full: Duration) {
    let (warm_up, measure) = match mode() {
        Mode::Full => (Duration::from_millis(500), full),
        _ => (Duration::from_millis(200), Duration::from_secs(1)),
    };
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(warm_up)
        .measurement_time(measure);
}

/// The real CLI, built by cargo for this bench's profile.
pub fn phoebe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_phoebe"))
}

/// `target/<profile>`: the bench binary is `target/<profile>/deps/<bench>-<hash>`.
pub fn profile_dir() -> PathBuf {
    let exe = env::current_exe().expect("the bench knows its own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the bench binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// `target/phoebe-bench`, where the medians of a run are written as Markdown.
pub fn results_dir() -> PathBuf {
    profile_dir()
        .parent()
        .map(|t| t.join("phoebe-bench"))
        .expect("target/<profile> has a parent")
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn is_release() -> bool {
    profile_dir().ends_with("release")
}

/// A test app of `testapps/`, built for this profile the first time (as `harness/common.rs` does).
pub fn testapp(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cmd = cargo();
        cmd.args(["build", "--quiet", "-p", "phoebe-testapps", "--bins"]);
        if is_release() {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the test apps");
        assert!(status.success(), "building the test apps failed");
    });
    let path = profile_dir().join(name);
    assert!(path.is_file(), "test app {name} not found at {}", path.display());
    path
}

/// `storm`, linked statically, so that its only `openat` calls are its own and `/proc/self/maps` (read by the
/// runtime, which copes with its failure): a rule that fails *every* `openat` would otherwise stop the dynamic
/// loader before `main`. Built once into `target/bench-static`; on failure the dynamically linked one is used
/// (and the lines that fail every `openat` are then skipped by their probe, with the loader's message).
pub fn static_storm() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let target_dir = results_dir().with_file_name("bench-static");
        let mut cmd = cargo();
        cmd.args(["build", "--quiet", "-p", "phoebe-testapps", "--bin", "storm"])
            .arg("--target-dir")
            .arg(&target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .stderr(Stdio::piped());
        if is_release() {
            cmd.arg("--release");
        }
        let profile = if is_release() { "release" } else { "debug" };
        let path = target_dir.join(profile).join("storm");
        match cmd.output() {
            Ok(out) if out.status.success() && path.is_file() => path,
            Ok(out) => {
                skipped(
                    "static storm",
                    &format!(
                        "{}; using the dynamically linked one",
                        first_line(&String::from_utf8_lossy(&out.stderr))
                    ),
                );
                testapp("storm")
            }
            Err(e) => {
                skipped("static storm", &format!("{e}; using the dynamically linked one"));
                testapp("storm")
            }
        }
    })
    .clone()
}

/// The Java test app's jar, built by `testapps/java/build.sh` once; the reason when there is no JDK.
pub fn java_jar() -> Result<PathBuf, String> {
    static JAR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    JAR.get_or_init(|| {
        let out = profile_dir().join("testapps-java");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testapps/java/build.sh");
        let built = Command::new("bash")
            .arg(script)
            .arg(&out)
            .output()
            .map_err(|e| format!("bash: {e}"))?;
        if !built.status.success() {
            return Err(first_line(&String::from_utf8_lossy(&built.stderr)));
        }
        Command::new("java")
            .arg("-version")
            .output()
            .map_err(|e| format!("java: {e}"))?;
        Ok(out.join("phoebe-testapp.jar"))
    })
    .clone()
}

static SCRATCH: OnceLock<tempfile::TempDir> = OnceLock::new();

/// A scratch directory for this bench process (inputs, observations, strace outputs), removed at exit by the
/// bench's [`Cleanup`].
pub fn scratch() -> &'static Path {
    SCRATCH
        .get_or_init(|| {
            tempfile::Builder::new()
                .prefix("phoebe-bench-")
                .tempdir()
                .expect("create a scratch directory")
        })
        .path()
}

/// Removes [`scratch`] when dropped, at the end of a bench's `main` (held from its start): a `TempDir` in a static
/// is never dropped, and every bench run left its directory in /tmp.
pub struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(dir) = SCRATCH.get() {
            let _ = fs::remove_dir_all(dir.path());
        }
    }
}

/// Says why a line is left out. Written to the stderr handle (never captured by a test harness), so that a
/// missing line is always visible; `ci/test` counts these lines.
pub fn skipped(line: &str, why: &str) {
    let _ = writeln!(io::stderr(), "skipped: {line}: {why}");
}

pub fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no message)")
        .to_owned()
}

/// One finished run of a command.
pub struct Run {
    pub wall: Duration,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The first line of what went wrong, when the run did not exit 0.
    pub fn failure(&self) -> Option<String> {
        if self.status.success() {
            return None;
        }
        let err = first_line(&self.stderr);
        Some(if err == "(no message)" {
            format!("{} ({})", self.status, first_line(&self.stdout))
        } else {
            err
        })
    }
}

/// Runs `argv` to completion and times it with the wall clock (spawn to exit, output captured). The
/// environment is the bench's without `LD_LIBRARY_PATH` (cargo points it at its target directories; the
/// loader would then search them on every start) and `PHOEBE_LOG`.
pub fn run(argv: &[OsString]) -> io::Result<Run> {
    let (program, args) = argv.split_first().expect("a command");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("PHOEBE_LOG")
        .stdin(Stdio::null());
    let start = Instant::now();
    let out = cmd.output()?;
    let wall = start.elapsed();
    Ok(Run {
        wall,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// What `storm` printed: `calls=N ns_per_call=X unexpected=K`.
#[derive(Debug, Clone, Copy)]
pub struct Storm {
    pub calls: u64,
    pub ns_per_call: f64,
    pub unexpected: u64,
}

impl Storm {
    pub fn parse(stdout: &str) -> Option<Storm> {
        let line = stdout.lines().find(|l| l.starts_with("calls="))?;
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        Some(Storm {
            calls: field("calls")?.parse().ok()?,
            ns_per_call: field("ns_per_call")?.parse().ok()?,
            unexpected: field("unexpected")?.parse().ok()?,
        })
    }

    /// The storm's own timing of its loop (process start-up excluded).
    pub fn loop_time(&self) -> Duration {
        Duration::from_nanos((self.ns_per_call * self.calls as f64).round() as u64)
    }
}

/// An injection job: the rule phoebe's lines run (`SYSCALL:ERRNO:p=P[:path=GLOB]`) and the same job for
/// strace (`-e trace=SYSCALL [-P PATH] -e inject=SYSCALL:error=ERRNO[:when=WHEN]`).
#[derive(Debug, Clone)]
pub struct Job {
    pub syscall: &'static str,
    pub errno: &'static str,
    /// Only calls on this path (phoebe: `path=`, strace: `-P`).
    pub path: Option<String>,
    /// strace's `when=` for the same rate as the phoebe lines' `p` (e.g. `1+20` for 5 %).
    pub strace_when: Option<&'static str>,
    /// The probability of the `ptrace inject` line (the same job as strace's).
    pub ptrace_p: &'static str,
    /// The probabilities of the `seccomp inject` lines that apply to this workload.
    pub seccomp_ps: &'static [&'static str],
    /// Shape predicates of the rule (`op=FUTEX_WAIT_PRIVATE`), appended to it; the `… without shape` lines leave
    /// them out.
    pub shape: Option<&'static str>,
}

impl Job {
    pub fn fault(&self, p: &str) -> String {
        let mut rule = self.fault_without_shape(p);
        if let Some(shape) = self.shape {
            rule.push(':');
            rule.push_str(shape);
        }
        rule
    }

    /// The rule without the job's shape predicates: every call of the syscall is targeted.
    pub fn fault_without_shape(&self, p: &str) -> String {
        let mut rule = format!("{}:{}:p={p}", self.syscall, self.errno);
        if let Some(path) = &self.path {
            rule.push_str(":path=");
            rule.push_str(path);
        }
        rule
    }

    fn strace_args(&self) -> Vec<String> {
        let mut args = vec!["-e".into(), format!("trace={}", self.syscall)];
        if let Some(path) = &self.path {
            args.extend(["-P".into(), path.clone()]);
        }
        let mut inject = format!("inject={}:error={}", self.syscall, self.errno);
        if let Some(when) = self.strace_when {
            inject.push_str(":when=");
            inject.push_str(when);
        }
        args.extend(["-e".into(), inject]);
        args
    }
}

/// How a workload is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The app alone.
    Native,
    /// `phoebe observe --backend B -q -o FILE -- APP`.
    Observe(&'static str),
    /// The app alone while the bench holds an empty eBPF program on `sys_exit`
    /// (`phoebe::backend::ebpf::EmptyProgram`): the hook's own cost, the floor of `ebpf observe`.
    EmptyProgram,
    /// `phoebe inject --backend B -q --seed 1 --fault RULE -- APP` with the job's rule at probability `p`.
    Inject(&'static str, &'static str),
    /// The same without the rule's shape predicates.
    InjectWithoutShape(&'static str, &'static str),
    /// `allow-all APP`: the app under a one-instruction seccomp filter that allows every call, the floor of any
    /// filter (DESIGN §8 judges seccomp's untargeted calls against it).
    AllowAll,
    /// `strace -f -c -o FILE APP`.
    StraceCount,
    /// `strace -f [--seccomp-bpf] -o FILE -e trace=… -e inject=… APP`.
    StraceInject { seccomp_bpf: bool },
}

impl Line {
    /// Every line, for a job; the `seccomp inject` lines are the job's probabilities.
    pub fn all(job: &Job) -> Vec<Line> {
        let mut lines = vec![
            Line::Native,
            Line::Observe("ptrace"),
            Line::Inject("ptrace", job.ptrace_p),
        ];
        lines.extend(job.seccomp_ps.iter().map(|p| Line::Inject("seccomp", p)));
        lines.extend([
            Line::Observe("ebpf"),
            Line::EmptyProgram,
            Line::StraceCount,
            Line::StraceInject { seccomp_bpf: false },
            Line::StraceInject { seccomp_bpf: true },
        ]);
        lines
    }

    pub fn label(&self) -> String {
        match self {
            Line::Native => "native".into(),
            Line::Observe(backend) => format!("{backend} observe"),
            Line::EmptyProgram => "ebpf empty program".into(),
            Line::Inject(backend, p) => format!("{backend} inject p={p}"),
            Line::InjectWithoutShape(backend, p) => format!("{backend} inject p={p} without shape"),
            Line::AllowAll => "seccomp allow-all filter".into(),
            Line::StraceCount => "strace -f -c".into(),
            Line::StraceInject { seccomp_bpf: false } => "strace -f -e inject".into(),
            Line::StraceInject { seccomp_bpf: true } => "strace -f --seccomp-bpf -e inject".into(),
        }
    }

    /// What the line needs from the machine, independent of the workload: the key of its probe.
    fn probe_key(&self) -> String {
        match self {
            Line::Inject(backend, _) | Line::InjectWithoutShape(backend, _) => format!("{backend} inject"),
            other => other.label(),
        }
    }

    pub fn is_strace(&self) -> bool {
        matches!(self, Line::StraceCount | Line::StraceInject { .. })
    }

    /// The full command: this line's wrapper around `app`. `tag` names the line's output files.
    pub fn argv(&self, job: &Job, app: &[OsString], tag: &str) -> Vec<OsString> {
        let out = scratch().join(format!("{tag}.out"));
        let mut argv: Vec<OsString> = Vec::new();
        let mut push = |items: &[&OsStr]| argv.extend(items.iter().map(|s| s.to_os_string()));
        match self {
            Line::Native | Line::EmptyProgram => {}
            Line::AllowAll => push(&[testapp("allow-all").as_os_str()]),
            Line::Observe(backend) => push(&[
                phoebe().as_os_str(),
                "observe".as_ref(),
                "--backend".as_ref(),
                backend.as_ref(),
                "-q".as_ref(),
                "-o".as_ref(),
                out.as_os_str(),
                "--".as_ref(),
            ]),
            Line::Inject(backend, p) | Line::InjectWithoutShape(backend, p) => {
                let fault = match self {
                    Line::Inject(..) => job.fault(p),
                    _ => job.fault_without_shape(p),
                };
                push(&[
                    phoebe().as_os_str(),
                    "inject".as_ref(),
                    "--backend".as_ref(),
                    backend.as_ref(),
                    "-q".as_ref(),
                    "--seed".as_ref(),
                    "1".as_ref(),
                    "--fault".as_ref(),
                    fault.as_ref(),
                    "--".as_ref(),
                ])
            }
            Line::StraceCount => push(&[
                "strace".as_ref(),
                "-f".as_ref(),
                "-c".as_ref(),
                "-o".as_ref(),
                out.as_os_str(),
            ]),
            Line::StraceInject { seccomp_bpf } => {
                push(&["strace".as_ref(), "-f".as_ref()]);
                if *seccomp_bpf {
                    push(&["--seccomp-bpf".as_ref()]);
                }
                push(&["-o".as_ref(), out.as_os_str()]);
                let args = job.strace_args();
                push(&args.iter().map(OsStr::new).collect::<Vec<_>>());
            }
        }
        argv.extend(app.iter().cloned());
        argv
    }

    /// What the line holds while its app runs: the empty program for [`Line::EmptyProgram`], nothing for the
    /// others (they wrap the app in a command instead). `Err` says why it cannot be attached.
    pub fn hold(&self) -> Result<Option<phoebe::backend::ebpf::EmptyProgram>, String> {
        match self {
            Line::EmptyProgram => phoebe::backend::ebpf::EmptyProgram::attach()
                .map(Some)
                .map_err(|e| first_line(&e.to_string())),
            _ => Ok(None),
        }
    }

    /// Can this machine run the line at all? Runs it once on `storm getppid 10` with a rule on a syscall the
    /// storm never makes (a backend missing from this build, a missing capability, strace not installed), once
    /// per kind of line; prints `skipped: <line>: <first line of the error>` the first time it fails.
    pub fn available(&self) -> bool {
        static PROBES: Mutex<Option<HashMap<String, bool>>> = Mutex::new(None);
        let key = self.probe_key();
        let mut probes = PROBES.lock().expect("probe table");
        let probes = probes.get_or_insert_with(HashMap::new);
        if let Some(&ok) = probes.get(&key) {
            return ok;
        }
        let job = Job {
            syscall: "unlinkat",
            errno: "EACCES",
            path: None,
            strace_when: None,
            ptrace_p: "1",
            seccomp_ps: &[],
            shape: None,
        };
        let app = [testapp("storm").into_os_string(), "getppid".into(), "10".into()];
        let held = match self.hold() {
            Ok(held) => held,
            Err(why) => {
                skipped(&key, &why);
                probes.insert(key, false);
                return false;
            }
        };
        let ok = match run(&self.argv(&job, &app, "probe")) {
            Ok(r) => match r.failure() {
                None => true,
                Some(why) => {
                    skipped(&key, &why);
                    false
                }
            },
            Err(e) => {
                let program = if self.is_strace() { "strace" } else { "phoebe" };
                skipped(&key, &format!("{program}: {e}"));
                false
            }
        };
        drop(held);
        probes.insert(key, ok);
        ok
    }
}

/// Runs a line's full command once before it is benchmarked: it must exit 0 and pass `check` (e.g. the storm
/// saw no unexpected result), or the line is skipped for this workload with the first line of the error.
pub fn validate(
    workload: &str,
    line: &Line,
    argv: &[OsString],
    check: impl Fn(&Run) -> Result<(), String>,
) -> bool {
    let what = format!("{workload}: {}", line.label());
    let verdict = run(argv)
        .map_err(|e| e.to_string())
        .and_then(|r| r.failure().map_or(Ok(r), Err))
        .and_then(|r| check(&r));
    match verdict {
        Ok(()) => true,
        Err(why) => {
            skipped(&what, &why);
            false
        }
    }
}

/// The runs of one (workload, line) in this process: wall times and, for storms, the storm's own ns per call.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub wall_ns: Vec<f64>,
    pub per_call_ns: Vec<f64>,
}

static RECORDS: Mutex<Vec<(String, String, Samples)>> = Mutex::new(Vec::new());

/// Keeps one run's figures for the table (criterion keeps its own statistics of the same runs).
pub fn record(workload: &str, line: &str, wall: Duration, per_call_ns: Option<f64>) {
    let mut records = RECORDS.lock().expect("records");
    let idx = match records.iter().position(|(w, l, _)| w == workload && l == line) {
        Some(i) => i,
        None => {
            records.push((workload.to_owned(), line.to_owned(), Samples::default()));
            records.len() - 1
        }
    };
    let samples = &mut records[idx].2;
    samples.wall_ns.push(wall.as_nanos() as f64);
    samples.per_call_ns.extend(per_call_ns);
}

/// Everything recorded, in the order it was first recorded.
pub fn records() -> Vec<(String, String, Samples)> {
    RECORDS.lock().expect("records").clone()
}

pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// `1.23 µs`, `45.6 ms`: three significant digits in a readable unit.
pub fn human_ns(ns: f64) -> String {
    let (value, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {unit}")
}

/// Prints a Markdown section and writes it to `target/phoebe-bench/<name>.md` for `ci/bench-table`.
pub fn publish(name: &str, markdown: &str) {
    println!("\n{markdown}");
    let dir = results_dir();
    let written = fs::create_dir_all(&dir).and_then(|()| fs::write(dir.join(format!("{name}.md")), markdown));
    if let Err(e) = written {
        eprintln!(
            "phoebe bench: cannot write {}: {e}",
            dir.join(format!("{name}.md")).display()
        );
    }
}

/// `met` or `**missed**`, for a target line.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

/// `(over by 12 %)` for a ceiling that was missed, `(12 % under)` for one that was met.
pub fn margin(value: f64, limit: f64) -> String {
    let pct = (value - limit) / limit * 100.0;
    if pct > 0.0 {
        format!(" (over by {pct:.0} %)")
    } else {
        format!(" ({:.0} % under)", -pct)
    }
}

/// The same for a floor (a speed-up that must be at least `limit`).
pub fn margin_above(value: f64, limit: f64) -> String {
    let pct = (value - limit) / limit * 100.0;
    if pct < 0.0 {
        format!(" (short by {:.0} %)", -pct)
    } else {
        format!(" ({pct:.0} % above)")
    }
}
