//! phoebe inside a virtual machine (docs/vm-testing.md): QEMU (software emulation) boots Debian's cloud kernels,
//! whose BPF LSM is active, on an initramfs holding a static `phoebe`, and these tests check the guest is what the
//! eBPF injection tests will need and that phoebe's backends run in it.
//!
//! Once per test binary, `ci/vm/setup` installs QEMU and downloads the kernels (skipped, with the reason, when not
//! root, when apt cannot install or download, or when `PHOEBE_SKIP_VM=1`) and `ci/vm/build` builds the static
//! binaries; then each test boots guests through `ci/vm/run`, one guest at a time (each takes a whole CPU).

use std::{
    path::PathBuf,
    process::Command,
    sync::{Mutex, OnceLock},
    time::Instant,
};

use crate::common::skipped;

/// The kernels every test runs on (names `ci/vm/setup` knows).
const KERNELS: [&str; 2] = ["cloud-6.1", "cloud-6.12"];

/// `ci/vm/run`'s status when the guest never reported the command's (panic, timeout).
const NO_REPORT: i32 = 125;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ci/vm").join(name)
}

/// Sets the VM harness up once: `Err(reason)` when this machine cannot run guests.
fn set_up() -> Result<(), String> {
    if std::env::var_os("PHOEBE_SKIP_VM").is_some_and(|v| v == "1") {
        return Err("PHOEBE_SKIP_VM=1".into());
    }
    // SAFETY: geteuid takes no arguments, touches no memory of ours and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the VM tests need root (ci/vm/setup installs QEMU with apt)".into());
    }
    let started = Instant::now();
    let out = Command::new(script("setup"))
        .args(KERNELS)
        .output()
        .expect("run ci/vm/setup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        // 3: cannot install here; 4: apt failed (no network, a package gone from the archive).
        Some(3 | 4) => {
            let why = stderr.lines().last().unwrap_or("ci/vm/setup failed");
            return Err(format!("no VM here: {why}"));
        }
        _ => panic!("ci/vm/setup failed ({}):\n{stderr}", out.status),
    }
    let set_up = started.elapsed();
    // Niced: the other harness tests run meanwhile, some of them timed.
    let out = Command::new("nice")
        .args(["-n", "10"])
        .arg(script("build"))
        .output()
        .expect("run ci/vm/build");
    assert!(
        out.status.success(),
        "ci/vm/build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "vm: set-up {:.1} s, static build {:.1} s",
        set_up.as_secs_f64(),
        (started.elapsed() - set_up).as_secs_f64()
    );
    Ok(())
}

/// Can guests boot here? Prints `skipped: <reason>` (for the calling test) where they cannot.
fn vm_ready() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    match READY.get_or_init(set_up) {
        Ok(()) => true,
        Err(why) => {
            skipped(why);
            false
        }
    }
}

/// What one guest printed on its console, and the status of its command.
struct Guest {
    kernel: &'static str,
    status: i32,
    console: String,
}

impl Guest {
    fn assert_prints(&self, text: &str) {
        assert!(
            self.console.contains(text),
            "{}: expected {text:?} on the console:\n{}",
            self.kernel,
            self.console
        );
    }
}

/// Boots `kernel` and runs `sh -c SCRIPT` in it.
fn boot(kernel: &'static str, sh_script: &str) -> Guest {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let out = Command::new(script("run"))
        .args(["--no-build", kernel, "--", "sh", "-c", sh_script])
        .output()
        .expect("run ci/vm/run");
    let console = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = out.status.code().expect("ci/vm/run killed by a signal");
    assert_ne!(
        status,
        NO_REPORT,
        "{kernel}: {}console:\n{console}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "vm: {kernel} guest ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Guest {
        kernel,
        status,
        console,
    }
}

#[test]
fn the_guest_runs_its_own_kernel_with_bpf_lsm_active() {
    if !vm_ready() {
        return;
    }
    let host = nix::sys::utsname::uname().expect("uname");
    let host = host.release().to_string_lossy();
    for kernel in KERNELS {
        let guest = boot(
            kernel,
            "cat /proc/version; printf 'lsm=%s\\n' \"$(cat /sys/kernel/security/lsm)\"",
        );
        assert_eq!(guest.status, 0, "{}", guest.console);
        let series = kernel.trim_start_matches("cloud-");
        let version = guest
            .console
            .lines()
            .find_map(|l| l.strip_prefix("Linux version "))
            .unwrap_or_else(|| panic!("{kernel}: no /proc/version:\n{}", guest.console));
        assert!(
            version.starts_with(&format!("{series}.")) && !version.starts_with(&*host),
            "{kernel}: the guest runs {version}, the host {host}"
        );
        let lsm = guest
            .console
            .lines()
            .find_map(|l| l.strip_prefix("lsm="))
            .expect("the lsm line");
        assert!(lsm.split(',').any(|m| m == "bpf"), "{kernel}: lsm={lsm}");
    }
}

#[test]
fn ptrace_injects_in_the_guest() {
    if !vm_ready() {
        return;
    }
    for kernel in KERNELS {
        let guest = boot(
            kernel,
            "cat /etc/hostname && echo control-ok; \
             exec phoebe inject --backend ptrace --fault 'openat:ENOENT:path=/etc/hostname' -- cat /etc/hostname",
        );
        guest.assert_prints("phoebe-vm\ncontrol-ok\n");
        guest.assert_prints("cat: can't open '/etc/hostname': No such file or directory\n");
        guest.assert_prints("phoebe: injected 1 error into 'cat /etc/hostname' (ptrace, seed ");
        assert_eq!(guest.status, 1, "{kernel}: {}", guest.console);
    }
}

/// The seccomp backend where the guest kernel has the user notification phoebe needs; phoebe's one-sentence
/// refusal where it does not.
#[test]
fn seccomp_injects_in_the_guest_or_says_why_not() {
    if !vm_ready() {
        return;
    }
    for kernel in KERNELS {
        let guest = boot(
            kernel,
            "phoebe inject -q --backend seccomp --fault getppid:EPERM:p=0 -- true; echo gate=$?; \
             exec phoebe inject --backend seccomp --fault 'openat:ENOENT:path=/etc/hostname' -- cat /etc/hostname",
        );
        if guest.console.contains("gate=0\n") {
            guest.assert_prints("cat: can't open '/etc/hostname': No such file or directory\n");
            guest.assert_prints("phoebe: injected 1 error into 'cat /etc/hostname' (seccomp, seed ");
            assert_eq!(guest.status, 1, "{kernel}: {}", guest.console);
        } else {
            let refusal = guest
                .console
                .lines()
                .find(|l| l.starts_with("phoebe: "))
                .unwrap_or_else(|| panic!("{kernel}: no refusal from phoebe:\n{}", guest.console));
            assert!(!refusal.ends_with('.'), "{kernel}: {refusal}");
            assert_eq!(guest.status, 2, "{kernel}: {}", guest.console);
        }
    }
}
