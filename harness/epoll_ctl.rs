//! epoll_ctl operations as call shapes (DESIGN §6, issue 12), end to end, on the `epoll-ctl` test app: ADD, MOD
//! and DEL of a pipe (never fail), a second DEL of it (ENOENT) and an ADD of a regular file (EPERM). Observation and
//! synthesis tell the operations apart (`ctl=`), and a `ctl=` rule fails only the operations it names, on ptrace
//! and seccomp alike. Regression: CPython's test_epoll made phoebe inject ENOENT into every epoll_ctl, ADDs
//! included, where the kernel never returns it.

use std::collections::BTreeMap;

use crate::common::*;

const ROUNDS: u64 = 50;

/// `phoebe inject --backend B --fault FAULT -- epoll-ctl N`: the exit code and the app's per-operation counts of
/// calls on the pipe that failed (only an injection fails those).
fn inject(backend: Backend, fault: &str, rounds: u64) -> (Option<i32>, BTreeMap<String, u64>) {
    let out = backend
        .inject()
        .args(["-q", "--seed", "1", "--fault", fault, "--"])
        .arg(testapp("epoll-ctl"))
        .arg(rounds.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let counts = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("failed="))
        .unwrap_or_else(|| {
            panic!(
                "no failed= in {stdout:?} (stderr {:?})",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once(':').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect();
    (out.status.code(), counts)
}

fn counts(add: u64, r#mod: u64, del: u64) -> BTreeMap<String, u64> {
    [("add", add), ("mod", r#mod), ("del", del)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// `epoll_ctl:ENOENT:p=1:ctl=del` fails the DELs and nothing else, on ptrace and on seccomp (where the filter's
/// register guard keeps ADDs and MODs in the kernel); without `ctl=` the same rule fails ADDs too, which the app
/// reports as impossible.
#[test]
fn epoll_ctl_rules_fail_only_the_operations_they_name_on_every_backend() {
    for backend in [Backend::Ptrace, Backend::Seccomp] {
        if !backend.works() {
            continue;
        }
        let n = 20;
        assert_eq!(
            inject(backend, "epoll_ctl:ENOENT:p=1:ctl=del", n),
            (Some(0), counts(0, 0, n)),
            "{}",
            backend.name()
        );
        assert_eq!(
            inject(backend, "epoll_ctl:ENOENT:p=1:ctl=EPOLL_CTL_MOD:fd=pipe", n),
            (Some(0), counts(0, n, 0)),
            "{}",
            backend.name()
        );
        // The target's kind is the descriptor of argument 2, not the epoll instance: no pipe is a file.
        assert_eq!(
            inject(backend, "epoll_ctl:ENOENT:p=1:ctl=del:fd=file", n),
            (Some(0), counts(0, 0, 0)),
            "{}",
            backend.name()
        );
        // The bug: ENOENT on every epoll_ctl reaches the ADDs, where the kernel never returns it.
        assert_eq!(
            inject(backend, "epoll_ctl:ENOENT:p=1", n),
            (Some(3), counts(n, n, n)),
            "{}",
            backend.name()
        );
    }
}

/// Observation records each operation, whether the target is registered, and the target as its own shape. The
/// kernel's ENOENT comes only from the DELs of a descriptor that is not registered, and every one of those fails:
/// synthesis excludes it for that shape, as it excludes EPERM, which every ADD of the file gets already.
#[test]
fn epoll_ctl_observation_and_synthesis_keep_the_operation() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let obs = dir.path().join("obs.json");
    phoebe()
        .args(["observe", "-q", "--backend", "ptrace", "--interval", "10ms", "-o"])
        .arg(&obs)
        .arg("--")
        .arg(testapp("epoll-ctl"))
        .arg(ROUNDS.to_string())
        .assert()
        .success();
    let observation = load_observation(&obs);
    let totals = observation.totals();
    let epoll_ctl = &totals[&phoebe::model::Syscall::parse("epoll_ctl").unwrap()];
    let errors = |shape: &str| -> (u64, Vec<(String, u64)>) {
        let stats = epoll_ctl
            .shapes
            .get(shape)
            .unwrap_or_else(|| panic!("no {shape} in {:?}", epoll_ctl.shapes.keys().collect::<Vec<_>>()));
        (
            stats.calls,
            stats.errors.iter().map(|(e, n)| (e.to_string(), *n)).collect(),
        )
    };
    assert_eq!(
        errors("ctl=add:registered=no:fd=pipe:nonblock=no"),
        (ROUNDS, vec![])
    );
    assert_eq!(
        errors("ctl=mod:registered=yes:fd=pipe:nonblock=no"),
        (ROUNDS, vec![])
    );
    assert_eq!(
        errors("ctl=del:registered=yes:fd=pipe:nonblock=no"),
        (ROUNDS, vec![])
    );
    assert_eq!(
        errors("ctl=del:registered=no:fd=pipe:nonblock=no"),
        (ROUNDS, vec![("ENOENT".to_owned(), ROUNDS)])
    );
    let file = epoll_ctl
        .shapes
        .keys()
        .find(|s| s.starts_with("ctl=add:registered=no:fd=file:nonblock=no:path="))
        .expect("the ADD of a file");
    assert_eq!(errors(file), (ROUNDS, vec![("EPERM".to_owned(), ROUNDS)]));

    let plan_path = dir.path().join("plan.json");
    phoebe()
        .args(["synthesize", "-o"])
        .arg(&plan_path)
        .arg(&obs)
        .assert()
        .success();
    let plan: phoebe::model::Plan =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    // Before the registration was part of the shape, ENOENT was injected into the DELs of registered
    // descriptors too, where the kernel never returns it.
    assert!(
        plan.models.iter().all(|m| m.syscall.name() != "epoll_ctl"),
        "{:?}",
        plan.models.iter().map(|m| &m.id).collect::<Vec<_>>()
    );
    let excluded = |errno: &str| -> Vec<(Option<&str>, &str)> {
        plan.excluded
            .iter()
            .filter(|e| e.syscall.name() == "epoll_ctl" && e.action.to_string() == errno)
            .map(|e| (e.shape.as_deref(), e.reason.as_str()))
            .collect()
    };
    let always = "every call already fails with it: injection adds nothing";
    assert_eq!(
        excluded("ENOENT"),
        [(Some("ctl=del:registered=no:fd=pipe:nonblock=no"), always)]
    );
    // Every ADD of the file fails with EPERM already: excluded, and named by its shape.
    assert_eq!(excluded("EPERM"), [(Some(file.as_str()), always)]);
    assert!(
        plan.models.iter().all(|m| m.id != "epoll_ctl-EEXIST"),
        "the app never adds twice"
    );
}

/// CPython's test_epoll and test_selectors: `epoll_ctl-ENOENT` was injected into DELs of registered descriptors
/// and `epoll_ctl-EEXIST` into ADDs of new ones, where the kernel returns neither, and tests failed. With the
/// registration in the shape, the app's errors (all on unregistered DELs and unpollable files, which always fail)
/// leave nothing to inject: the campaign says so (exit 2) instead of reporting artifacts.
#[test]
fn regression_epoll_ctl_errors_were_injected_whatever_the_registration() {
    if !ptrace_works() || !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A campaign on the app with this observer: it has no model (exit 2); its plan's exclusions.
    let campaign = |observer: &str| -> Vec<phoebe::model::plan::Excluded> {
        let out = dir.path().join(observer);
        let status = exec_once()
            .args(["--observer", observer, "--interval", "10ms", "--out"])
            .arg(&out)
            .arg("--")
            .arg(testapp("epoll-ctl"))
            .arg(ROUNDS.to_string())
            .output()
            .unwrap()
            .status;
        assert_eq!(status.code(), Some(2), "{observer}: a plan with no models");
        let report: phoebe::model::Report =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
        assert!(
            report.experiments.iter().all(|e| !e.id.starts_with("epoll_ctl-")),
            "{observer}: {:?}",
            report.experiments.iter().map(|e| &e.id).collect::<Vec<_>>()
        );
        let plan: phoebe::model::Plan =
            serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
        plan.excluded
    };
    // The registration is read from /proc at the call (ptrace).
    let excluded = campaign("ptrace");
    assert!(
        excluded.iter().any(|e| e.action.to_string() == "ENOENT"
            && e.shape.as_deref() == Some("ctl=del:registered=no:fd=pipe:nonblock=no")),
        "{excluded:?}"
    );
    // eBPF has the registration from each call's result (`registered_from_result`): the same exclusion, for the
    // same reason.
    let Some(_guard) = ebpf_guard() else { return };
    let excluded = campaign("ebpf");
    assert!(
        excluded.iter().any(|e| e.action.to_string() == "ENOENT"
            && e.shape.as_deref() == Some("ctl=del:registered=no:fd=pipe:nonblock=no")
            && e.reason.starts_with("every call already fails with it")),
        "{excluded:?}"
    );
}
