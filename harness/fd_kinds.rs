//! Descriptor kinds as call shapes (DESIGN §6), end to end, on the `fd-kinds` test app: one syscall, `read`, on a
//! non-blocking eventfd, TCP socket and UDP socket (EAGAIN when empty, the only error the kernel gives there) and
//! on a blocking unix stream socket (never EAGAIN). Observation and synthesis tell them apart (and whether each
//! read found its descriptor ready: EAGAIN is the state of one that is not, never a model); `fd=` rules fail only
//! the kinds they name, on ptrace and seccomp alike.

use std::collections::BTreeMap;

use crate::common::*;

const ROUNDS: u64 = 100;

/// `phoebe inject --backend B --fault FAULT -- fd-kinds N`: the exit code and the app's per-kind counts of
/// ready reads that failed (only an injection fails those).
fn inject(backend: Backend, fault: &str, rounds: u64) -> (Option<i32>, BTreeMap<String, u64>) {
    let out = backend
        .inject()
        .args(["-q", "--seed", "1", "--fault", fault, "--"])
        .arg(testapp("fd-kinds"))
        .arg(rounds.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let counts = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ready-failed="))
        .unwrap_or_else(|| panic!("no ready-failed= in {stdout:?}"))
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once(':').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect();
    (out.status.code(), counts)
}

fn counts(eventfd: u64, tcp: u64, udp: u64, unix: u64) -> BTreeMap<String, u64> {
    [("eventfd", eventfd), ("tcp", tcp), ("udp", udp), ("unix", unix)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

#[test]
fn observation_and_synthesis_tell_descriptor_kinds_apart() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let obs = dir.path().join("obs.json");
    phoebe()
        .args(["observe", "-q", "--backend", "ptrace", "--interval", "10ms", "-o"])
        .arg(&obs)
        .arg("--")
        .arg(testapp("fd-kinds"))
        .arg(ROUNDS.to_string())
        .assert()
        .success();
    let observation = load_observation(&obs);
    let totals = observation.totals();
    let read = &totals[&phoebe::model::Syscall::parse("read").unwrap()];
    for kind in ["eventfd", "tcp", "udp"] {
        // Each round reads once while the descriptor is empty (EAGAIN) and once after it became ready.
        for (ready, failed) in [("no", ROUNDS), ("yes", 0)] {
            let shape = format!("fd={kind}:nonblock=yes:ready={ready}");
            let stats = read
                .shapes
                .get(&shape)
                .unwrap_or_else(|| panic!("no {shape} in {:?}", read.shapes.keys().collect::<Vec<_>>()));
            assert_eq!(stats.calls, ROUNDS, "{shape}");
            assert_eq!(
                stats
                    .errors
                    .get(&phoebe::model::Errno::parse("EAGAIN").unwrap())
                    .copied()
                    .unwrap_or(0),
                failed,
                "{shape}"
            );
            assert_eq!(stats.errors.values().sum::<u64>(), failed, "{shape}");
        }
    }
    let unix = &read.shapes["fd=unix-stream:nonblock=no"];
    assert!(unix.calls == ROUNDS && unix.errors.is_empty(), "{unix:?}");

    let plan_path = dir.path().join("plan.json");
    phoebe()
        .args(["synthesize", "-o"])
        .arg(&plan_path)
        .arg(&obs)
        .assert()
        .success();
    let plan: phoebe::model::Plan =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    // EAGAIN came only from descriptors that were not ready, every time: their state, excluded with that reason,
    // never a model for the ready ones (an edge-triggered poller would wait forever for a wake-up).
    assert!(
        !plan.models.iter().any(|m| m.id == "read-EAGAIN"),
        "{:?}",
        plan.models
    );
    let mut excluded: Vec<&str> = plan
        .excluded
        .iter()
        .filter(|e| e.action.to_string() == "EAGAIN")
        .inspect(|e| assert!(e.reason.contains("edge-triggered poller"), "{}", e.reason))
        .filter_map(|e| e.shape.as_deref())
        .collect();
    excluded.sort();
    assert_eq!(
        excluded,
        [
            "fd=eventfd:nonblock=yes:ready=no",
            "fd=tcp:nonblock=yes:ready=no",
            "fd=udp:nonblock=yes:ready=no"
        ],
        "never the blocking unix socket, never a file"
    );
}

/// The same `fd=` rule fails the same reads on ptrace and on seccomp: only the kinds it names.
#[test]
fn fd_rules_fail_only_the_kinds_they_name_on_every_backend() {
    for backend in [Backend::Ptrace, Backend::Seccomp] {
        if !backend.works() {
            continue;
        }
        let n = 30;
        assert_eq!(
            inject(backend, "read:EAGAIN:p=1:fd=eventfd", n),
            (Some(0), counts(n, 0, 0, 0)),
            "{}",
            backend.name()
        );
        assert_eq!(
            inject(backend, "read:EAGAIN:p=1:fd=inet:nonblock=yes", n),
            (Some(0), counts(0, n, n, 0)),
            "{}",
            backend.name()
        );
        // EAGAIN on a blocking socket is impossible: the app says so, and only there.
        assert_eq!(
            inject(backend, "read:EAGAIN:p=1:fd=unix", n),
            (Some(3), counts(0, 0, 0, n)),
            "{}",
            backend.name()
        );
    }
}

/// A campaign on the app injects no EAGAIN: the non-blocking reads that returned it found nothing to read every
/// time (their state), and the ready ones never did, so there is nothing real to amplify. Nothing else fails in
/// it either: the plan is empty, and the campaign says so (exit 2) and why, instead of calling the app resilient.
#[test]
fn a_campaign_by_descriptor_kind_injects_no_eagain_of_unready_descriptors() {
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
        .arg(testapp("fd-kinds"))
        .arg(ROUNDS.to_string())
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(2), "a plan without models tests nothing");
    let report: phoebe::model::Report =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(
        report.experiments.iter().all(|e| e.id != "read-EAGAIN"),
        "{:?}",
        report.experiments.iter().map(|e| &e.id).collect::<Vec<_>>()
    );
    let plan: phoebe::model::Plan =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    assert!(
        plan.excluded
            .iter()
            .any(|e| e.action.to_string() == "EAGAIN" && e.reason.contains("not ready at every call")),
        "{:?}",
        plan.excluded
    );
    assert!(
        report.experiments.is_empty(),
        "{:?}",
        report.experiments.iter().map(|e| &e.id).collect::<Vec<_>>()
    );
}
