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

/// Says why a test did not run. Written to the stderr handle, not with `eprintln!`, so that the test harness
/// does not capture it: a skip must be visible, never a silent pass. `ci/test` counts these lines.
pub fn skipped(reason: &str) {
    use std::io::Write;
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    let _ = writeln!(std::io::stderr(), "skipped: {reason} ({name})");
}

/// Can this machine ptrace a child? Prints the reason and returns false where it cannot.
pub fn ptrace_works() -> bool {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let res = OK.get_or_init(|| {
        let out = StdCommand::new(phoebe_path())
            .args(["observe", "-q", "-o", "/dev/null", "--", "/bin/true"])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("ptrace failed")
                .to_owned())
        }
    });
    match res {
        Ok(()) => true,
        Err(why) => {
            skipped(&format!("ptrace is not available here: {why}"));
            false
        }
    }
}

/// Can phoebe observe with eBPF here (root or CAP_BPF + CAP_PERFMON, BTF)? Prints the reason and returns false
/// where it cannot.
pub fn ebpf_works() -> bool {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let res = OK.get_or_init(|| {
        let out = StdCommand::new(phoebe_path())
            .args([
                "observe",
                "-q",
                "--backend",
                "ebpf",
                "-o",
                "/dev/null",
                "--",
                "/bin/true",
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("eBPF failed")
                .to_owned())
        }
    });
    match res {
        Ok(()) => true,
        Err(why) => {
            skipped(&format!("eBPF observation is not available here: {why}"));
            false
        }
    }
}

/// eBPF tests hold this lock: the test that checks no phoebe program stays loaded must not see another test's.
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

/// Waits (up to 5 s: the kernel frees programs after an RCU grace period) until no phoebe program is loaded.
pub fn assert_no_phoebe_program_left(when: &str) {
    let mut left = phoebe_programs_loaded();
    for _ in 0..100 {
        if left.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        left = phoebe_programs_loaded();
    }
    panic!("phoebe programs still loaded {when}: {left:?}");
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
