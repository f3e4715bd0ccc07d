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
    boot_with(kernel, &[], sh_script)
}

/// Boots `kernel` with more `ci/vm/run` options and runs `sh -c SCRIPT` in it.
fn boot_with(kernel: &'static str, options: &[&str], sh_script: &str) -> Guest {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let out = Command::new(script("run"))
        .arg("--no-build")
        .args(options)
        .args([kernel, "--", "sh", "-c", sh_script])
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
/// refusal where it does not. phoebe's containment works in the guest.
#[test]
fn seccomp_injects_in_the_guest_or_says_why_not() {
    if !vm_ready() {
        return;
    }
    for kernel in KERNELS {
        let guest = boot(
            kernel,
            "phoebe doctor | grep '^containment'; \
             phoebe inject -q --backend seccomp --fault getppid:EPERM:p=0 -- true; echo gate=$?; \
             exec phoebe inject --backend seccomp --fault 'openat:ENOENT:path=/etc/hostname' -- cat /etc/hostname",
        );
        // The guest's /init mounts cgroup2: a killed phoebe's tree ends there too (sys::contain).
        guest.assert_prints("containment yes: ");
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

/// What one eBPF injection scenario in the guest printed: the target's stdout lines and phoebe's log.
struct Scenario {
    out: String,
    log: Option<phoebe::model::InjectionLog>,
}

impl Guest {
    /// The text between `==NAME` and `==end NAME` on the console.
    fn section(&self, name: &str) -> &str {
        let start = format!("==begin {name}\n");
        let end = format!("==end {name}\n");
        let from = self
            .console
            .find(&start)
            .unwrap_or_else(|| panic!("{}: no section {name}:\n{}", self.kernel, self.console))
            + start.len();
        let to = self.console[from..]
            .find(&end)
            .unwrap_or_else(|| panic!("{}: section {name} does not end:\n{}", self.kernel, self.console));
        &self.console[from..from + to]
    }

    fn scenario(&self, name: &str) -> Scenario {
        let log = self.section(&format!("{name} log"));
        Scenario {
            out: self.section(name).to_owned(),
            log: (!log.trim().is_empty()).then(|| {
                serde_json::from_str(log)
                    .unwrap_or_else(|e| panic!("{}: {name}'s log: {e}\n{log}", self.kernel))
            }),
        }
    }
}

impl Scenario {
    /// `key=value` from the target's output (open-loop's summary line).
    fn value(&self, key: &str) -> u64 {
        self.out
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in:\n{}", self.out))
    }

    fn log(&self) -> &phoebe::model::InjectionLog {
        self.log
            .as_ref()
            .unwrap_or_else(|| panic!("no injection log; output:\n{}", self.out))
    }

    fn indices(&self) -> Vec<u64> {
        self.log().injections.iter().map(|i| i.index).collect()
    }
}

/// The two-sided 99.9 % interval of a Binomial(n, p) count (normal approximation, fine for n·p ≥ 100).
///
/// 99.9 %, not the 99 % the issue names: each CI run makes six such checks (two per kernel for the LSM test, one
/// per kernel for fmod_ret), so a 99 % interval would fail about one run in seventeen by chance alone — it did,
/// with 257 of 1000 against [263, 337]. At 99.9 % that is one run in ~170; the interval is still ±16 % of the mean.
fn binomial_999(n: u64, p: f64) -> std::ops::RangeInclusive<u64> {
    let mean = n as f64 * p;
    let half = 3.291 * (n as f64 * p * (1.0 - p)).sqrt();
    ((mean - half).floor() as u64)..=((mean + half).ceil() as u64)
}

/// The guest script: each scenario runs `phoebe inject --backend ebpf` and prints the target's output and the
/// injection log between markers. `run NAME BACKEND FAULT CMD…`; a control process (`open-loop … --until`) opens the
/// same file for as long as the injecting phoebe runs, outside its target set.
/// The guest scripts' `run NAME BACKEND FAULT CMD…`: one `phoebe inject` (with `$quiet`), its output and status,
/// then its injection log, each between markers ([`Guest::scenario`] reads them).
const RUN: &str = r#"
run() {
    name=$1; backend=$2; fault=$3; shift 3
    rm -f /tmp/log.json
    echo "==begin $name"
    phoebe inject $quiet --backend $backend --log /tmp/log.json --fault "$fault" -- "$@" 2>&1
    echo "status=$?"
    echo "==end $name"
    echo "==begin $name log"
    [ -f /tmp/log.json ] && cat /tmp/log.json
    echo "==end $name log"
}
"#;

const EBPF_SCENARIOS: &str = r#"
quiet=-q
open-loop /etc/hostname --until /tmp/stop > /tmp/control &
run full ebpf openat:EACCES cat /etc/hostname
run p30 ebpf openat:EACCES:p=0.3 open-loop /etc/hostname 1000
for b in ebpf seccomp; do
    run nth-$b $b openat:EACCES:nth=3 open-loop /etc/hostname 10
    run max-$b $b openat:EACCES:max=5 open-loop /etc/hostname 20
    run every-$b $b openat:EACCES:after=2:every=3 open-loop /etc/hostname 10
done
run weights ebpf openat:EACCES=1,EPERM=1 open-loop /etc/hostname 400
run write ebpf write:ENOSPC write-once /tmp/out hello
run connect ebpf connect:ENETUNREACH nc 127.0.0.1 9
mkdir /tmp/stop; wait
echo "==begin control"; cat /tmp/control; echo "==end control"
echo "==begin switch"
phoebe inject -q --backend ebpf --start-off --fault openat:EACCES -- \
    sh -c 'open-loop /etc/hostname 50; kill -USR1 $PPID; sleep 1; open-loop /etc/hostname 50'
echo "==end switch"
echo "==begin observe"
phoebe observe --backend ebpf --latency -o /tmp/obs.json -- storm openat-fail 100 2>&1
echo "==end observe"
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
# seq's stdout a pipe (its stderr is another file: writes to fd 2's file are never failed).
{ phoebe inject --backend ebpf --log /tmp/log.json --fault write:EPIPE:p=1 -- seq 10 2>/tmp/seq.err
  echo "status=$?" >> /tmp/seq.err; } | cat > /dev/null
echo "==begin epipe"; cat /tmp/seq.err; echo "==end epipe"
echo "==begin epipe log"; cat /tmp/log.json; echo "==end epipe log"
run nosignal ebpf sendto:EPIPE fd-kinds 1
phoebe observe -q --backend ebpf -o /tmp/fd.json -- fd-kinds 20 --more --paths > /tmp/fd.out 2>&1
echo "==begin fd-kinds"
cat /tmp/fd.json
echo "==end fd-kinds"
echo "==begin fd-kinds out"
cat /tmp/fd.out
echo "==end fd-kinds out"
echo "==begin doctor"
phoebe doctor --json
echo "==end doctor"
"#;

/// The eBPF injector on real kernels with BPF LSM (issue 5): a 100 % rule fails the target's open while a
/// control process opening the same file all along is untouched; a 30 % rule lands in its binomial interval;
/// windows, max and weights behave as on the other backends (call indices in the log); the target's own exec
/// and its stderr keep working; the runtime switch; socket hooks; observation; and doctor agrees.
#[test]
fn ebpf_injects_in_the_guest() {
    if !vm_ready() {
        return;
    }
    for kernel in KERNELS {
        let guest = boot(kernel, &format!("{RUN}{EBPF_SCENARIOS}"));
        assert_eq!(guest.status, 0, "{kernel}: {}", guest.console);
        let k = kernel;

        // 100 %: cat (exec'd by phoebe: its own exec was not failed) cannot open the file.
        let full = guest.scenario("full");
        assert!(
            full.out
                .contains("cat: can't open '/etc/hostname': Permission denied"),
            "{k}: {}",
            full.out
        );
        assert!(full.out.contains("status=1"), "{k}: {}", full.out);
        let log = full.log();
        assert_eq!(log.backend, "ebpf");
        assert_eq!((log.rules[0].matched, log.rules[0].injected), (1, 1), "{k}");
        assert_eq!(full.indices(), [1], "{k}");

        // 30 % over 1000 opens (plus whatever the runtime opens before main: it is matched too).
        let p30 = guest.scenario("p30");
        let failed = p30.value("failed");
        assert!(
            binomial_999(1000, 0.3).contains(&failed),
            "{k}: {failed} of 1000 failed at p=0.3"
        );
        let rule = &p30.log().rules[0];
        assert!(rule.matched >= 1000, "{k}: {rule:?}");
        assert_eq!(
            rule.injected,
            p30.log().injections.len() as u64,
            "{k}: every injection is logged"
        );
        assert!(
            (failed..=failed + (rule.matched - 1000)).contains(&rule.injected),
            "{k}: the app saw {failed} failures, the kernel injected {}",
            rule.injected
        );
        let mut indices = p30.indices();
        indices.dedup();
        assert_eq!(
            indices.len(),
            rule.injected as usize,
            "{k}: call indices are unique"
        );

        // Windows and limits, by call index, as the decider defines them: the same calls as the seccomp backend
        // fails (conformance: the target's opens all reach the hook, so both backends count the same calls).
        for (name, expected) in [
            ("nth", vec![3]),
            ("max", vec![1, 2, 3, 4, 5]),
            ("every", vec![3, 6, 9]),
        ] {
            let ebpf = guest.scenario(&format!("{name}-ebpf"));
            let seccomp = guest.scenario(&format!("{name}-seccomp"));
            assert_eq!(ebpf.indices(), expected, "{k}: {name}");
            assert_eq!(seccomp.indices(), expected, "{k}: {name} on seccomp");
            assert_eq!(
                ebpf.out, seccomp.out,
                "{k}: {name}: the target saw the same failures"
            );
            assert_eq!(
                (ebpf.log().rules[0].matched, ebpf.log().rules[0].injected),
                (seccomp.log().rules[0].matched, seccomp.log().rules[0].injected),
                "{k}: {name}: matched and injected agree"
            );
        }
        let weights = guest.scenario("weights");
        let per_errno = |name: &str| {
            weights
                .log()
                .injections
                .iter()
                .filter(|i| i.effect.errno().and_then(|e| e.symbol()) == Some(name))
                .count() as u64
        };
        let injected = weights.log().rules[0].injected;
        assert_eq!(per_errno("EACCES") + per_errno("EPERM"), injected, "{k}");
        assert!(
            binomial_999(injected, 0.5).contains(&per_errno("EPERM")),
            "{k}: {}",
            weights.out
        );

        // A write rule fails the file's write; the error message still reaches stderr (fd 2 is never failed).
        let write = guest.scenario("write");
        assert!(
            write
                .out
                .contains("write-once: write failed: No space left on device"),
            "{k}: {}",
            write.out
        );
        assert!(write.out.contains("status=1"), "{k}");

        // Socket hooks.
        let connect = guest.scenario("connect");
        assert!(
            connect.out.contains("Network is unreachable"),
            "{k}: {}",
            connect.out
        );
        assert_eq!(connect.log().injections.len(), 1, "{k}");

        // An injected EPIPE raises SIGPIPE in the writer, as the kernel's does: busybox's seq (SIGPIPE at its
        // default) dies of it, as it does when its reader is gone; phoebe says so and the log records the signal.
        let epipe = guest.scenario("epipe");
        assert!(epipe.out.contains("killed by SIGPIPE"), "{k}: {}", epipe.out);
        assert!(epipe.out.contains("status=141"), "{k}: {}", epipe.out);
        assert!(!epipe.out.contains("Broken pipe"), "{k}: {}", epipe.out);
        let signals: Vec<Option<i32>> = epipe.log().injections.iter().map(|i| i.signal).collect();
        assert_eq!(signals, [Some(libc::SIGPIPE)], "{k}");
        // Rust's TcpStream sends with MSG_NOSIGNAL: no signal, as the kernel raises none.
        let nosignal = guest.scenario("nosignal");
        let injections = &nosignal.log().injections;
        assert!(!injections.is_empty(), "{k}: {}", nosignal.out);
        assert!(
            injections.iter().all(|i| i.signal.is_none()),
            "{k}: {injections:?}"
        );

        // The control process opened the file thousands of times while the rules were loaded, never failing.
        let control = guest.section("control");
        assert!(control.contains(" failed=0 "), "{k}: control: {control}");
        assert!(!control.starts_with("opened=0 "), "{k}: control: {control}");

        // Switched on by SIGUSR1 halfway: the first 50 opens pass, the last 50 fail.
        let switch = guest.section("switch");
        let lines: Vec<&str> = switch.lines().filter(|l| l.starts_with("opened=")).collect();
        assert_eq!(
            lines,
            [
                "opened=50 failed=0 first_failed=0",
                "opened=0 failed=50 first_failed=1"
            ],
            "{k}: {switch}"
        );

        // eBPF observation in the same guest, with --latency: the guest's verifier accepts `sys_enter` too.
        let observe = guest.section("observe");
        assert!(
            observe
                .lines()
                .any(|l| l.starts_with("openat ") && l.contains("ENOENT×100")),
            "{k}: {observe}"
        );

        // Descriptor kinds and O_NONBLOCK learned in the kernel, as ptrace learns them from /proc (anonymous
        // inodes are typeless on 6.1 and S_IFREG since 6.15: the file system tells them apart).
        let fd: phoebe::model::Observation = serde_json::from_str(guest.section("fd-kinds"))
            .unwrap_or_else(|e| panic!("{k}: fd-kinds observation: {e}\n{}", guest.section("fd-kinds")));
        let read = &fd.totals()[&phoebe::model::Syscall::parse("read").unwrap()];
        for kind in ["eventfd", "tcp", "udp"] {
            // Whether each read found its descriptor ready, from its result: EAGAIN when empty, never when ready.
            for (ready, failed) in [("no", 20), ("yes", 0)] {
                let shape = format!("fd={kind}:nonblock=yes:ready={ready}");
                let stats = read.shapes.get(&shape).unwrap_or_else(|| {
                    panic!(
                        "{k}: no {shape} in {:?}; fd-kinds said: {}",
                        read.shapes.keys().collect::<Vec<_>>(),
                        guest.section("fd-kinds out")
                    )
                });
                assert_eq!(stats.calls, 20, "{k}: {shape}");
                assert_eq!(stats.errors.values().sum::<u64>(), failed, "{k}: {shape}");
            }
        }
        let unix = &read.shapes["fd=unix-stream:nonblock=no"];
        assert!(unix.calls == 20 && unix.errors.is_empty(), "{k}: {unix:?}");
        // The regular file's path, walked in the kernel by the tail-called program (the guest's verifier
        // accepted it: without it the path is unknown).
        let file = read
            .shapes
            .get("fd=file:nonblock=no:path=/tmp/phoebe-fd-kinds-*/data")
            .unwrap_or_else(|| {
                panic!(
                    "{k}: no file path in {:?}",
                    read.shapes.keys().collect::<Vec<_>>()
                )
            });
        assert_eq!(file.calls, 20, "{k}: {file:?}");
        // Relative opens joined to the cwd and to a dirfd's directory walked in the kernel (each file also
        // created once by its absolute path); the deleted, too long and too deep files' paths: unknown.
        let openat = &fd.totals()[&phoebe::model::Syscall::parse("openat").unwrap()];
        for name in ["sub/x", "y", "z"] {
            let path = format!("/tmp/phoebe-fd-paths-*/{name}");
            // By the path alone: whether each open found its name is another component (`exists`).
            let calls: u64 = openat
                .shapes
                .iter()
                .filter(|(text, _)| {
                    phoebe::model::Shape::parse(text)
                        .is_ok_and(|s| s.get(phoebe::model::shape::Key::Path) == Some(path.as_str()))
                })
                .map(|(_, stats)| stats.calls)
                .sum();
            assert_eq!(
                calls,
                21,
                "{k}: {path} in {:?}",
                openat.shapes.keys().collect::<Vec<_>>()
            );
        }
        // The deleted, long and deep files each round, and `late` after it was removed halfway.
        let unknown = &read.shapes["fd=file:nonblock=no:path=unknown"];
        assert_eq!(unknown.calls, 70, "{k}: {unknown:?}");
        // Kept paths follow a rename: the file renamed each round is read once under each name.
        for round in 0..20u8 {
            let name = format!(
                "fd=file:nonblock=no:path=/tmp/phoebe-fd-paths-*/m{}",
                char::from(b'a' + round)
            );
            let moving = read.shapes.get(&name).map(|s| s.calls);
            assert_eq!(
                moving,
                Some(1),
                "{k}: {name} in {:?}",
                read.shapes.keys().collect::<Vec<_>>()
            );
        }

        // doctor says what the runs above showed, through BPF LSM (`bpf` is active).
        let inject = guest.inject_verdict();
        assert_eq!(inject["available"], true, "{k}: {inject}");
        let reason = inject["reason"].as_str().unwrap();
        assert!(reason.starts_with("injects through BPF LSM: "), "{k}: {reason}");
    }
}

impl Guest {
    /// `phoebe doctor --json`'s eBPF inject verdict, from the `doctor` section.
    fn inject_verdict(&self) -> serde_json::Value {
        let doctor: serde_json::Value = serde_json::from_str(self.section("doctor")).unwrap();
        doctor["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["backend"] == "ebpf" && v["mode"] == "inject")
            .unwrap()
            .clone()
    }
}

/// The guest script without BPF LSM: like [`EBPF_SCENARIOS`], but phoebe says what it attached (no `-q`).
const FMOD_RET_SCENARIOS: &str = r#"
quiet=
printf 'lsm=%s\n' "$(cat /sys/kernel/security/lsm)"
run full ebpf openat:EACCES cat /etc/hostname
run p30 ebpf openat:EACCES:p=0.3 open-loop /etc/hostname 1000
echo "==begin doctor"
phoebe doctor --json
echo "==end doctor"
"#;

/// A stock kernel whose LSM list lacks `bpf` (booted with the kernel's own list minus `bpf`): BPF LSM programs
/// would attach and never run, so the injector attaches the same programs as fmod_ret on `security_*` (issue 5's
/// fallback), says so, and injects exactly as through BPF LSM; doctor agrees.
#[test]
fn ebpf_injects_through_fmod_ret_without_bpf_lsm() {
    if !vm_ready() {
        return;
    }
    for kernel in KERNELS {
        let guest = boot_with(kernel, &["--no-bpf-lsm"], &format!("{RUN}{FMOD_RET_SCENARIOS}"));
        assert_eq!(guest.status, 0, "{kernel}: {}", guest.console);
        let k = kernel;
        let lsm = guest
            .console
            .lines()
            .find_map(|l| l.strip_prefix("lsm="))
            .expect("the lsm line");
        assert!(!lsm.split(',').any(|m| m == "bpf"), "{k}: lsm={lsm}");

        let full = guest.scenario("full");
        assert!(
            full.out.contains(
                "phoebe: ebpf: hooks attached as fmod_ret programs on the kernel's security functions (BPF LSM is \
                 not active here): fmod_ret/security_file_open\n"
            ),
            "{k}: {}",
            full.out
        );
        assert!(
            full.out
                .contains("cat: can't open '/etc/hostname': Permission denied"),
            "{k}: {}",
            full.out
        );
        assert!(full.out.contains("status=1"), "{k}: {}", full.out);
        assert_eq!(
            (full.log().rules[0].matched, full.log().rules[0].injected),
            (1, 1),
            "{k}"
        );

        let p30 = guest.scenario("p30");
        let failed = p30.value("failed");
        assert!(
            binomial_999(1000, 0.3).contains(&failed),
            "{k}: {failed} of 1000 failed at p=0.3"
        );
        let rule = &p30.log().rules[0];
        assert_eq!(
            rule.injected,
            p30.log().injections.len() as u64,
            "{k}: every injection is logged"
        );
        assert!(
            (failed..=failed + (rule.matched - 1000)).contains(&rule.injected),
            "{k}: the app saw {failed} failures, the kernel injected {}",
            rule.injected
        );

        let inject = guest.inject_verdict();
        assert_eq!(inject["available"], true, "{k}: {inject}");
        let reason = inject["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("injects through fmod_ret on the kernel's security_* functions: ")
                && reason.contains("`bpf` is not an active LSM"),
            "{k}: {reason}"
        );
    }
}
