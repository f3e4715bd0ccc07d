//! Helpers shared by the harness: the phoebe binary, the testapps (built once per test binary), the Java app,
//! and gates that print `skipped: <reason>` where the machine cannot run a test.

use std::{
    path::{Path, PathBuf},
    process::Command as StdCommand,
    sync::OnceLock,
};

use assert_cmd::Command;

/// The phoebe binary under test.
pub fn phoebe() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phoebe"));
    cmd.env_remove("PHOEBE_LOG");
    // cargo test points LD_LIBRARY_PATH at its target dirs; the loader would then probe each of them (ENOENT)
    // and blur the counts the tests check.
    cmd.env_remove("LD_LIBRARY_PATH");
    cmd
}

/// `phoebe exec -q --seed 11 --runs 1 --baseline-runs 1`: a campaign of one run per experiment and one baseline
/// run, for the tests that do not count runs (CI time matters); add `--out DIR`, faults and the command.
pub fn exec_once() -> Command {
    let mut c = phoebe();
    c.args([
        "exec",
        "-q",
        "--seed",
        "11",
        "--runs",
        "1",
        "--baseline-runs",
        "1",
    ]);
    c
}

pub fn phoebe_path() -> &'static str {
    env!("CARGO_BIN_EXE_phoebe")
}

fn target_dir() -> PathBuf {
    // harness binary: <target>/<profile>/deps/harness-<hash>
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Path of a testapp binary, building the testapps package (same profile) the first time.
pub fn testapp(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = StdCommand::new(cargo);
        cmd.args(["build", "--quiet", "-p", "phoebe-testapps", "--bins"]);
        if target_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building testapps failed");
    });
    let path = target_dir().join(name);
    assert!(path.is_file(), "testapp {name} not found at {}", path.display());
    path
}

/// The Java test app's jar, built with javac + jar once; `None` (after printing why) where there is no JDK.
pub fn java_jar() -> Option<PathBuf> {
    static JAR: OnceLock<Option<PathBuf>> = OnceLock::new();
    JAR.get_or_init(|| {
        if which("javac").is_none() || which("java").is_none() {
            return None;
        }
        let out = target_dir().join("testapps-java");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testapps/java/build.sh");
        let status = StdCommand::new("bash")
            .arg(script)
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "building the Java test app failed"
        );
        Some(out.join("phoebe-testapp.jar"))
    })
    .clone()
    .or_else(|| {
        skipped("no JDK (javac/java not on PATH)");
        None
    })
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

/// Says why a test did not run: `skipped: <reason> (<test>)` on the real stderr, which `ci/test` counts; under `CI`
/// an unexpected skip fails the test (`phoebe::testing`, shared with the library's unit tests, says why and how).
pub fn skipped(reason: &str) {
    phoebe::testing::skipped(reason);
}

/// Does `phoebe ARGS -- /bin/true` succeed here? Otherwise prints `skipped: <what> is not available here: <why>`.
/// Each gate runs phoebe once per test binary (`cell`).
fn gate(cell: &OnceLock<Result<(), String>>, args: &[&str], what: &str) -> bool {
    let res = cell.get_or_init(|| {
        let out = StdCommand::new(phoebe_path())
            .args(args)
            .args(["--", "/bin/true"])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("phoebe failed")
                .to_owned())
        }
    });
    match res {
        Ok(()) => true,
        Err(why) => {
            skipped(&format!("{what} is not available here: {why}"));
            false
        }
    }
}

/// Can this machine ptrace a child? Prints the reason and returns false where it cannot.
pub fn ptrace_works() -> bool {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    // A temporary file rather than /dev/null: the gate must not depend on how phoebe writes special files.
    let out = std::env::temp_dir().join(format!("phoebe-ptrace-gate-{}.json", std::process::id()));
    let works = gate(
        &OK,
        &["observe", "-q", "-o", out.to_str().expect("UTF-8 temp dir")],
        "ptrace",
    );
    let _ = std::fs::remove_file(&out);
    works
}

/// Can this machine run the seccomp backend (user notification, Linux ≥ 5.0)? Prints why not where it cannot.
pub fn seccomp_works() -> bool {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let args = [
        "inject",
        "-q",
        "--backend",
        "seccomp",
        "--fault",
        "getppid:EPERM:p=0",
    ];
    gate(&OK, &args, "seccomp user notification")
}

/// Reads the `ready pid=<pid>` line that sigloop and signalled-open print first.
pub fn ready_pid(stdout: &mut impl std::io::BufRead) -> i32 {
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the ready line");
    line.trim()
        .strip_prefix("ready pid=")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("expected `ready pid=N`, got {line:?}"))
}

/// Sends SIGINT to a process the test started (phoebe).
pub fn sigint(child: &std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
}

/// Does `pid` stop running within 2 s (reaped, or at least a zombie)?
pub fn gone(pid: i32) -> bool {
    (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    })
}

/// Runs `phoebe ARGS -- sh -c 'sleep 60 >/dev/null & echo started'`; once sh has exited and only its background
/// sleep runs on, sends phoebe SIGINT. Returns phoebe's status, after checking it did not wait for the sleep.
pub fn sigint_with_a_leftover(args: &[&str]) -> std::process::ExitStatus {
    use std::{io::BufRead, time::Duration};
    let started = std::time::Instant::now();
    let mut child = StdCommand::new(phoebe_path())
        .env_remove("LD_LIBRARY_PATH")
        .args(args)
        .args(["--", "sh", "-c", "sleep 60 >/dev/null & echo started"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "started\n");
    std::thread::sleep(Duration::from_millis(300)); // sh exits; the background sleep goes on under phoebe
    sigint(&child);
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "phoebe waited for the leftover sleep"
    );
    status
}

/// The backends that inject; the conformance suite runs its tests on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Ptrace,
    Seccomp,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ptrace => "ptrace",
            Backend::Seccomp => "seccomp",
        }
    }

    /// `phoebe inject --backend NAME` (add the rest).
    pub fn inject(self) -> Command {
        let mut cmd = phoebe();
        cmd.args(["inject", "--backend", self.name()]);
        cmd
    }

    /// Can this backend inject here? Prints the reason and returns false where it cannot.
    pub fn works(self) -> bool {
        match self {
            Backend::Ptrace => ptrace_works(),
            Backend::Seccomp => seccomp_works(),
        }
    }
}

/// Can phoebe observe with eBPF here (root or CAP_BPF + CAP_PERFMON, BTF)? Prints the reason and returns false
/// where it cannot.
pub fn ebpf_works() -> bool {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let out = std::env::temp_dir().join(format!("phoebe-ebpf-gate-{}.json", std::process::id()));
    let args = [
        "observe",
        "-q",
        "--backend",
        "ebpf",
        "-o",
        out.to_str().expect("UTF-8 temp dir"),
    ];
    let works = gate(&OK, &args, "eBPF observation");
    let _ = std::fs::remove_file(&out);
    works
}

/// eBPF tests hold this lock, so that two tests that attach eBPF programs on purpose do not run at once.
pub fn ebpf_guard() -> Option<std::sync::MutexGuard<'static, ()>> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if !ebpf_works() {
        return None;
    }
    Some(LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// Names of the eBPF programs loaded in the kernel now whose name starts with phoebe's prefix.
pub fn phoebe_programs_loaded() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_owned))
        .filter(|name| name.starts_with(phoebe_common::programs::PREFIX))
        .collect()
}

/// The ids of the eBPF programs some live process holds, by a program descriptor or a link's (`prog_id:` in
/// `/proc/PID/fdinfo/N`).
fn programs_held() -> std::collections::HashSet<u32> {
    let mut held = std::collections::HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return held;
    };
    for proc in procs.filter_map(Result::ok) {
        let Ok(fds) = std::fs::read_dir(proc.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            let Ok(info) = std::fs::read_to_string(fd.path()) else {
                continue;
            };
            held.extend(
                info.lines()
                    .filter_map(|l| l.strip_prefix("prog_id:"))
                    .filter_map(|id| id.trim().parse::<u32>().ok()),
            );
        }
    }
    held
}

/// Names of phoebe's programs still loaded that no live process holds: what a phoebe that ended or was killed left
/// behind. The programs of phoebes other tests run meanwhile (every `exec` and `observe` observes with eBPF by
/// default) are held by them, so they do not count.
fn phoebe_programs_left() -> Vec<String> {
    let held = programs_held();
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| !held.contains(&p.id()))
        .filter_map(|p| p.name_as_str().map(str::to_owned))
        .filter(|name| name.starts_with(phoebe_common::programs::PREFIX))
        .collect()
}

/// Waits (up to 5 s: the kernel frees programs after an RCU grace period) until no phoebe program is left loaded
/// without a process holding it.
pub fn assert_no_phoebe_program_left(when: &str) {
    let mut left = phoebe_programs_left();
    for _ in 0..100 {
        if left.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        left = phoebe_programs_left();
    }
    panic!("phoebe programs still loaded, held by no process, {when}: {left:?}");
}

/// A file with known content in a fresh temp dir.
pub fn input_file(dir: &tempfile::TempDir, name: &str, content: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).expect("write input");
    path
}

/// Per-syscall totals of an observation file: (calls, failures of `errno`).
pub fn totals(
    obs: &phoebe::model::Observation,
    syscall: &str,
) -> (u64, std::collections::BTreeMap<String, u64>) {
    let sc = phoebe::model::Syscall::parse(syscall).expect("syscall name");
    let totals = obs.totals();
    match totals.get(&sc) {
        Some(s) => (
            s.calls,
            s.errors.iter().map(|(e, n)| (e.to_string(), *n)).collect(),
        ),
        None => (0, Default::default()),
    }
}

pub fn load_observation(path: &Path) -> phoebe::model::Observation {
    phoebe::files::load(path, "observation").expect("observation")
}

pub fn load_log(path: &Path) -> phoebe::model::InjectionLog {
    phoebe::files::load(path, "injection log").expect("injection log")
}

/// `harness/fixtures/report.json`: a complete campaign report (ptrace, 6 experiments, interrupted).
pub fn report_fixture() -> phoebe::model::Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/fixtures/report.json");
    phoebe::files::load(&path, "report").expect("the report fixture")
}

/// The fixture as the same campaign on `--backend ebpf` reports it: the experiments phoebe decides that backend
/// cannot run (here `futex-ETIMEDOUT` and `fsync-EIO`) are in `skipped`, with the backend's reasons. No campaign
/// on a host whose kernel refuses BPF LSM gets that far, so this is how the harness sees such a report.
pub fn ebpf_report_fixture() -> phoebe::model::Report {
    let mut report = report_fixture();
    report.backend = "ebpf".into();
    let (kept, skipped): (Vec<_>, Vec<_>) = report.experiments.into_iter().partition(|e| {
        phoebe::experiment::skip_reason(Some(phoebe::backend::BackendKind::Ebpf), &e.faults).is_none()
    });
    report.experiments = kept;
    report.skipped = skipped
        .into_iter()
        .map(|e| phoebe::model::Skipped {
            reason: phoebe::experiment::skip_reason(Some(phoebe::backend::BackendKind::Ebpf), &e.faults)
                .expect("skipped"),
            id: e.id,
            faults: e.faults,
        })
        .collect();
    report.skipped_backend = phoebe::backend::runs_skipped(&report.skipped);
    report
}

/// `phoebe observe --backend BACKEND -- sh -c 'kill -s RTMIN+2 $$'` exits 128 + 36 like a shell, and the
/// observation says signal 36.
pub fn assert_observes_a_realtime_death(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("obs.json");
    phoebe()
        .args(["observe", "-q", "--backend", backend, "-o"])
        .arg(&out)
        .args(["--", "sh", "-c", "kill -s RTMIN+2 $$"])
        .assert()
        .code(164);
    assert_eq!(
        load_observation(&out).exit,
        Some(phoebe::model::TargetExit::Signal(36))
    );
}
