//! Call shapes observed with eBPF (DESIGN §6): the register-derived components (futex operation and timeout,
//! ioctl request, …) and the paths of path calls with an absolute path argument are the ones ptrace records, by
//! the same definition; relative paths and descriptor components are `unknown` on eBPF.

use std::collections::BTreeMap;

use phoebe::model::{Observation, Shape, Syscall, shape::Key};

use crate::common::*;

fn path(backend: &str, dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join(format!("obs-{backend}.json"))
}

fn observe(backend: &str, dir: &tempfile::TempDir) -> Observation {
    observe_app(backend, dir, "shapes", 300)
}

fn observe_app(backend: &str, dir: &tempfile::TempDir, app: &str, rounds: u64) -> Observation {
    let obs = path(backend, dir);
    phoebe()
        .args(["observe", "-q", "--backend", backend, "--interval", "10ms", "-o"])
        .arg(&obs)
        .arg("--")
        .arg(testapp(app))
        .arg(rounds.to_string())
        .assert()
        .success();
    load_observation(&obs)
}

/// Per value of `key` among `syscall`'s shapes: calls and errors by name.
fn by_component(
    obs: &Observation,
    syscall: &str,
    key: Key,
) -> BTreeMap<String, (u64, BTreeMap<String, u64>)> {
    let mut out: BTreeMap<String, (u64, BTreeMap<String, u64>)> = BTreeMap::new();
    let totals = obs.totals();
    for (text, stats) in &totals[&Syscall::parse(syscall).unwrap()].shapes {
        let shape = Shape::parse(text).unwrap();
        let Some(value) = shape.get(key) else { continue };
        let entry = out.entry(value.to_owned()).or_default();
        entry.0 += stats.calls;
        for (errno, n) in &stats.errors {
            *entry.1.entry(errno.to_string()).or_default() += n;
        }
    }
    out
}

#[test]
fn ebpf_observes_register_shapes_as_ptrace_does() {
    if !ptrace_works() {
        return;
    }
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ptrace = observe("ptrace", &dir);
    let ebpf = observe("ebpf", &dir);
    let futex = Syscall::parse("futex").unwrap();
    let shapes = |obs: &Observation| obs.totals()[&futex].shapes.clone();
    let (p, e) = (shapes(&ptrace), shapes(&ebpf));
    // The waits with a timeout fail deterministically: the same shape string, calls and errors on both.
    let key = "op=FUTEX_WAIT_PRIVATE:timeout=yes";
    assert_eq!(e.get(key), p.get(key), "{:?} vs {:?}", e.keys(), p.keys());
    assert_eq!(e[key].calls, 300);
    // Wakes never fail; how many there are beyond the app's own depends on the runtime's locks.
    let wake = &e["op=FUTEX_WAKE_PRIVATE"];
    assert!(wake.calls >= 300 && wake.errors.is_empty(), "{wake:?}");
    assert!(p.contains_key("op=FUTEX_WAKE_PRIVATE"));
    // ioctl: the request as ptrace has it; the descriptor's kind is unknown on eBPF.
    let ereq = by_component(&ebpf, "ioctl", Key::Req);
    let preq = by_component(&ptrace, "ioctl", Key::Req);
    for req in ["FIONREAD", "TCGETS"] {
        assert_eq!(ereq.get(req), preq.get(req), "{req}: {ereq:?} vs {preq:?}");
    }
    assert_eq!(ereq["FIONREAD"].0, 300);
    assert_eq!(ereq["TCGETS"].1.values().sum::<u64>(), 300);
    let ioctl = ebpf.totals()[&Syscall::parse("ioctl").unwrap()].shapes.clone();
    assert!(
        ioctl
            .keys()
            .all(|s| s.starts_with("fd=unknown:nonblock=unknown:req=")),
        "{:?}",
        ioctl.keys()
    );
    // Absolute paths, read in the kernel: the shapes ptrace gives. The probe file's name has the app's pid, which
    // differs between the two runs: compared by its counts.
    let (ep, pp) = (
        by_component(&ebpf, "newfstatat", Key::Path),
        by_component(&ptrace, "newfstatat", Key::Path),
    );
    assert_eq!(ep.get("/proc/*/stat"), pp.get("/proc/*/stat"), "{ep:?} vs {pp:?}");
    assert_eq!(ep["/proc/*/stat"].0, 300);
    let probe = |m: &BTreeMap<String, (u64, BTreeMap<String, u64>)>| {
        m.iter()
            .find(|(k, _)| k.contains("/phoebe-shapes-") && k.ends_with("-probe"))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(probe(&ep), probe(&pp), "{ep:?} vs {pp:?}");
    assert_eq!(
        probe(&ep).unwrap().1,
        BTreeMap::from([("ENOENT".to_owned(), 150)])
    );
    // synthesize says which components eBPF leaves unknown.
    let out = phoebe()
        .args(["synthesize", "-o"])
        .arg(dir.path().join("plan.json"))
        .arg(path("ebpf", &dir))
        .output()
        .unwrap();
    assert!(out.status.success());
    // The probe file's stat fails in half of the rounds: a path model now, on eBPF as on ptrace.
    let plan = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    assert!(
        plan.contains("newfstatat") && plan.contains("phoebe-shapes-"),
        "{plan}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("records only the register components")
            && stderr.contains("relative paths, fd and nonblock are unknown"),
        "{stderr}"
    );
}

/// epoll_ctl's operation is a register: eBPF counts ADD, MOD and DEL and their errors as ptrace does; the target
/// descriptor's kind is unknown there.
#[test]
fn ebpf_observes_epoll_ctl_operations_as_ptrace_does() {
    if !ptrace_works() {
        return;
    }
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ptrace = observe_app("ptrace", &dir, "epoll-ctl", 100);
    let ebpf = observe_app("ebpf", &dir, "epoll-ctl", 100);
    let (p, e) = (
        by_component(&ptrace, "epoll_ctl", Key::Ctl),
        by_component(&ebpf, "epoll_ctl", Key::Ctl),
    );
    assert_eq!(e, p);
    let del = &e["del"];
    assert_eq!(del.0, 200);
    assert_eq!(del.1, BTreeMap::from([("ENOENT".to_owned(), 100)]));
    let shapes = ebpf.totals()[&Syscall::parse("epoll_ctl").unwrap()]
        .shapes
        .clone();
    assert!(
        shapes.keys().all(|s| s.ends_with(":fd=unknown:nonblock=unknown")),
        "{:?}",
        shapes.keys()
    );
}

fn observe_opens(backend: &str, dir: &tempfile::TempDir, file: &str, n: u64) -> Observation {
    let obs = dir.path().join(format!("opens-{backend}.json"));
    phoebe()
        .current_dir(dir.path())
        .args(["observe", "-q", "--backend", backend, "-o"])
        .arg(&obs)
        .arg("--")
        .arg(testapp("open-loop"))
        .arg(file)
        .arg(n.to_string())
        .assert()
        .success();
    load_observation(&obs)
}

/// openat of absolute paths, failing and succeeding: eBPF reads the path in the kernel and records the `path=`
/// shapes and counts ptrace records; a relative path is `unknown` on eBPF (its base, the cwd, is not read), never
/// guessed.
#[test]
fn ebpf_observes_absolute_paths_as_ptrace_does_and_relative_ones_as_unknown() {
    if !ptrace_works() {
        return;
    }
    let Some(_guard) = ebpf_guard() else { return };
    let dir = tempfile::tempdir().unwrap();
    let absent = "/nonexistent-phoebe/./dir/../17/file";
    for (file, template, errors) in [
        (absent, "/nonexistent-phoebe/*/file", Some(100)),
        ("/etc/hostname", "/etc/hostname", None),
    ] {
        let ptrace = observe_opens("ptrace", &dir, file, 100);
        let ebpf = observe_opens("ebpf", &dir, file, 100);
        let (e, p) = (
            by_component(&ebpf, "openat", Key::Path),
            by_component(&ptrace, "openat", Key::Path),
        );
        assert_eq!(e.get(template), p.get(template), "{e:?} vs {p:?}");
        let (calls, errs) = &e[template];
        assert_eq!(*calls, 100);
        assert_eq!(errs.get("ENOENT").copied(), errors);
        // The loader's opens are absolute too: every openat of the run has its path on both backends.
        assert_eq!(e, p);
    }
    // A relative path: ptrace resolves it against the cwd, eBPF records it as unknown.
    let ebpf = observe_opens("ebpf", &dir, "rel-absent", 50);
    let e = by_component(&ebpf, "openat", Key::Path);
    assert_eq!(e["unknown"].0, 50, "{e:?}");
    assert_eq!(e["unknown"].1, BTreeMap::from([("ENOENT".to_owned(), 50)]));
    let ptrace = observe_opens("ptrace", &dir, "rel-absent", 50);
    let p = by_component(&ptrace, "openat", Key::Path);
    assert!(p.keys().any(|k| k.ends_with("/rel-absent")), "{p:?}");
}
