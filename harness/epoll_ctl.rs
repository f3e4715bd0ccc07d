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

/// Observation records each operation and target as its own shape, and synthesis writes `ctl=` into the rules:
/// ENOENT only on DELs; EPERM, which every ADD of the file gets already, is excluded for that shape alone.
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
    assert_eq!(errors("ctl=add:fd=pipe:nonblock=no"), (ROUNDS, vec![]));
    assert_eq!(errors("ctl=mod:fd=pipe:nonblock=no"), (ROUNDS, vec![]));
    assert_eq!(
        errors("ctl=del:fd=pipe:nonblock=no"),
        (2 * ROUNDS, vec![("ENOENT".to_owned(), ROUNDS)])
    );
    let file = epoll_ctl
        .shapes
        .keys()
        .find(|s| s.starts_with("ctl=add:fd=file:nonblock=no:path="))
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
    let model = |id: &str| {
        plan.models.iter().find(|m| m.id == id).unwrap_or_else(|| {
            panic!(
                "no {id} model in {:?}",
                plan.models.iter().map(|m| &m.id).collect::<Vec<_>>()
            )
        })
    };
    let enoent = model("epoll_ctl-ENOENT");
    let shapes: Vec<String> = enoent.shapes.iter().map(|s| s.shape.to_string()).collect();
    assert_eq!(shapes, ["ctl=del:fd=pipe:nonblock=no"], "never an ADD or a MOD");
    let rule = enoent.fault.to_string();
    assert!(rule.contains(":ctl=del:"), "{rule}");
    // Every ADD of the file fails with EPERM already: excluded, and named by its shape.
    let eperm: Vec<(Option<&str>, &str)> = plan
        .excluded
        .iter()
        .filter(|e| e.syscall.name() == "epoll_ctl" && e.action.to_string() == "EPERM")
        .map(|e| (e.shape.as_deref(), e.reason.as_str()))
        .collect();
    assert_eq!(
        eperm,
        [(
            Some(file.as_str()),
            "every call already fails with it: injection adds nothing"
        )]
    );
    assert!(
        plan.models.iter().all(|m| m.id != "epoll_ctl-EEXIST"),
        "the app never adds twice"
    );
}

/// A campaign on the app injects ENOENT only into DELs, as the kernel gives it: every injection is realistic and
/// the app, which copes with the errors the kernel can return, is resilient (issue 12's test_epoll regression).
#[test]
fn an_epoll_ctl_campaign_injects_enoent_only_into_dels() {
    if !ptrace_works() || !seccomp_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campaign");
    let status = phoebe()
        .args([
            "exec",
            "-q",
            "--seed",
            "1",
            "--interval",
            "10ms",
            "--runs",
            "1",
            "--baseline-runs",
            "1",
            "--out",
        ])
        .arg(&out)
        .arg("--")
        .arg(testapp("epoll-ctl"))
        .arg(ROUNDS.to_string())
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(0));
    let report: phoebe::model::Report =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let enoent = report
        .experiments
        .iter()
        .find(|e| e.id == "epoll_ctl-ENOENT")
        .expect("an epoll_ctl-ENOENT experiment");
    assert_eq!(enoent.verdict, phoebe::model::Verdict::Resilient);
    assert_eq!(enoent.realism(), Some(1.0));
    assert!(
        enoent
            .faults
            .iter()
            .all(|f| f.to_string().contains(":ctl=del:fd=pipe")),
        "{:?}",
        enoent.faults
    );
    assert!(
        report.experiments.iter().all(|e| e.id != "epoll_ctl-EPERM"),
        "every ADD of the file fails already"
    );
}
