//! Partial transfers (`short=`, issue 16 item 3) on the ptrace backend: `framed-reader` assumes one `read(2)`
//! returns a whole 64-byte message; under `read:short=1:fd=socket` that breaks it, while its `--careful` mode,
//! which reads until the message is whole, still passes. `inject` logs `short` counts that `--replay` repeats, and
//! `exec` tells the two modes apart.

use std::path::Path;

use phoebe::model::{Effect, Report, Verdict};
use predicates::prelude::*;

use crate::common::*;

const FAULT: &str = "read:short=1:fd=socket";

/// `phoebe inject --backend ptrace --fault FAULT --log LOG -- framed-reader [--careful]`.
fn inject(log: &Path, careful: bool, extra: &[&str]) -> assert_cmd::assert::Assert {
    let mut c = phoebe();
    c.args(["inject", "--backend", "ptrace"])
        .args(extra)
        .arg("--log")
        .arg(log)
        .arg("--")
        .arg(testapp("framed-reader"));
    if careful {
        c.arg("--careful");
    }
    c.assert()
}

#[test]
fn a_short_socket_read_breaks_a_reader_that_assumes_whole_messages() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("buggy.log.json");
    inject(&log, false, &["--fault", FAULT, "--seed", "3"])
        .code(1)
        .stderr(predicate::str::contains(
            "framed-reader: message 1 is corrupt (read 1 of 64 bytes in one read)",
        ))
        .stderr(predicate::str::contains("phoebe: injected 1 short transfer into"));
    let buggy = load_log(&log);
    assert_eq!(buggy.injections.len(), 1, "{:?}", buggy.injections);
    let first = &buggy.injections[0];
    assert_eq!(first.effect, Effect::Short(1));
    // The index counts every read of the process, the dynamic loader's too.
    assert_eq!(first.syscall.name(), "read");
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("\"short\": 1"),
        "the log says short, not an errno"
    );
}

#[test]
fn a_careful_reader_survives_one_byte_reads_and_the_replay_repeats_them() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("careful.log.json");
    // 50 messages of 64 bytes, one byte per read: 3200 reads; the last read of each message asks for one byte,
    // which cannot be shortened (50 of them), so 3150 are.
    inject(&log, true, &["--fault", FAULT, "--seed", "3"])
        .success()
        .stdout("messages=50 reads=3200\n")
        .stderr(predicate::str::contains(
            "phoebe: injected 3150 short transfers into",
        ));
    let careful = load_log(&log);
    assert_eq!(
        (careful.rules[0].matched, careful.rules[0].injected),
        (3200, 3150)
    );
    assert!(careful.injections.iter().all(|i| i.effect == Effect::Short(1)));

    let again = dir.path().join("replay.log.json");
    let log_arg = log.to_str().unwrap();
    inject(&again, true, &["--replay", log_arg])
        .success()
        .stdout("messages=50 reads=3200\n")
        .stderr(predicate::str::contains(
            "phoebe: replayed 3150 short transfers into",
        ));
    let replayed = load_log(&again);
    assert!(replayed.replayed);
    let calls = |l: &phoebe::model::InjectionLog| {
        l.injections
            .iter()
            .map(|i| (i.syscall, i.index, i.effect))
            .collect::<Vec<_>>()
    };
    assert_eq!(calls(&replayed), calls(&careful));
}

/// The writing side: Rust's `write_all` (a `send`, so `sendto`) loops over short writes, so every message still
/// arrives whole, one byte per call: 63 of each message's 64 writes are shortened (the last asks for one byte).
/// Two messages only: the app writes everything before it reads, and each one-byte send costs a whole buffer of
/// the socket's send budget (212992 bytes by default), so at 6 messages (384 sends) the writer blocks for good —
/// a real cost of short writes, not phoebe's.
#[test]
fn short_writes_are_retried_by_write_all_and_the_data_arrives_whole() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("writes.log.json");
    let mut c = phoebe();
    c.args([
        "inject",
        "--backend",
        "ptrace",
        "--fault",
        "sendto:short=1:fd=unix-stream",
        "--log",
    ])
    .arg(&log)
    .arg("--")
    .arg(testapp("framed-reader"))
    .args(["--messages", "2"])
    .timeout(std::time::Duration::from_secs(60));
    c.assert().success().stdout("messages=2 reads=2\n");
    let writes = load_log(&log);
    assert_eq!((writes.rules[0].matched, writes.rules[0].injected), (128, 126));
}

/// Half of each read: 64 → 32, then the remaining 32 → 16, … down to one byte: the careful reader makes 7 reads a
/// message (32+16+8+4+2+1+1), six of them shortened.
#[test]
fn a_percentage_halves_each_read() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("half.log.json");
    inject(&log, true, &["--fault", "read:short=50%:fd=socket"])
        .success()
        .stdout("messages=50 reads=350\n");
    let half = load_log(&log);
    assert_eq!(half.rules[0].injected, 300);
    assert_eq!(half.injections[0].effect, Effect::Short(32));
    assert_eq!(half.injections[1].effect, Effect::Short(16));
}

/// `phoebe exec --fault FAULT -- framed-reader [--careful]`: one experiment, run on ptrace (the backend chosen
/// for short= rules).
fn campaign(out: &Path, careful: bool) -> Report {
    let mut c = exec_once();
    c.args(["--fault", FAULT, "--out"])
        .arg(out)
        .arg("--")
        .arg(testapp("framed-reader"));
    if careful {
        c.arg("--careful");
    }
    // A finding fails the campaign.
    c.assert().code(if careful { 0 } else { 1 });
    phoebe::files::load(&out.join("report.json"), "report").expect("report.json")
}

#[test]
fn exec_finds_the_reader_that_mishandles_short_reads() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let buggy = campaign(&dir.path().join("buggy"), false);
    let [experiment] = buggy.experiments.as_slice() else {
        panic!("one experiment: {:?}", buggy.experiments)
    };
    assert_eq!(experiment.faults[0].to_string(), FAULT);
    assert_eq!(experiment.id, "read-short-1");
    assert_eq!(experiment.verdict, Verdict::Failed, "{experiment:?}");
    let run = &experiment.runs[0];
    let evidence = run.evidence.as_ref().expect("a failed run has evidence");
    let first = &evidence.first_injections;
    assert_eq!(first[0].effect, Effect::Short(1), "{first:?}");
    let shown = first[0].to_string();
    // The log names the socket the read was on (`path=socket:[inode]`, the descriptor's link) and its shape.
    assert!(
        shown.starts_with("read #")
            && shown.contains(" → short=1 (path=socket:[")
            && shown.contains("fd=unix-stream"),
        "{shown}"
    );

    let careful = campaign(&dir.path().join("careful"), true);
    // The baseline records errors only, so whether a short transfer landed where they happen naturally is unknown.
    assert_eq!(careful.experiments[0].realism(), None);
    assert_eq!(
        careful.experiments[0].verdict,
        Verdict::Resilient,
        "{:?}",
        careful.experiments[0]
    );
}

/// `--explore plausible` without any `--fault`: the catalogue's partial transfers on the stream socket the program
/// read (`read-short-tcp`, whose class holds unix-stream) find the reader that assumes whole messages, and leave
/// the careful one resilient. At `--fixed-rate 0.5` one of its 50 reads is shortened all but surely.
#[test]
fn explore_plausible_shortens_the_socket_reads_the_program_made() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let explore = |name: &str, careful: bool| -> Report {
        let out = dir.path().join(name);
        let mut c = exec_once();
        c.args(["--explore", "plausible", "--fixed-rate", "0.5", "--out"])
            .arg(&out)
            .arg("--")
            .arg(testapp("framed-reader"));
        if careful {
            c.arg("--careful");
        }
        // Other plausible errors (EPIPE of its writes) fail even the careful mode: the exit status is not checked.
        let _ = c.assert();
        phoebe::files::load(&out.join("report.json"), "report").expect("report.json")
    };
    let short = |report: &Report| {
        let e = report
            .experiments
            .iter()
            .find(|e| e.id == "read-short-tcp")
            .unwrap_or_else(|| {
                panic!(
                    "no read-short-tcp in {:?}",
                    report.experiments.iter().map(|e| &e.id).collect::<Vec<_>>()
                )
            })
            .clone();
        assert_eq!(e.tier(), phoebe::model::Tier::Plausible);
        assert!(
            e.faults
                .iter()
                .all(|f| f.to_string().starts_with("read:short=1:p=0.5:fd=unix-stream")),
            "{:?}",
            e.faults
        );
        e
    };
    assert_eq!(short(&explore("buggy", false)).verdict, Verdict::Failed);
    assert_eq!(short(&explore("careful", true)).verdict, Verdict::Resilient);
}

/// Partial transfers, latency faults and natural-failure counting on one ptrace run: the shortened reads' exit
/// stops restore their counts, the unshortened last read of a message is held (`delay=` alone) or let run and
/// watched at its exit for the EAGAIN rule, and a shortened read is never counted as a natural failure.
#[test]
fn short_transfers_latency_faults_and_natural_counts_share_the_exit_stops() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mixed.log.json");
    inject(
        &log,
        true,
        &[
            "--fault",
            FAULT,
            "--fault",
            "read:delay=1ms:p=0.5:fd=socket",
            "--fault",
            "read:EAGAIN:p=0:fd=socket",
            "--seed",
            "5",
        ],
    )
    .success()
    .stdout("messages=50 reads=3200\n")
    .stderr(predicate::str::contains(
        "phoebe: injected 3150 short transfers and delayed ",
    ));
    let mixed = load_log(&log);
    let counts: Vec<(u64, u64)> = mixed.rules.iter().map(|r| (r.matched, r.injected)).collect();
    assert_eq!((counts[0], counts[1].0, counts[2].0), ((3200, 3150), 3200, 3200));
    let delayed = counts[1].1;
    assert!(
        (5..=45).contains(&delayed),
        "p=0.5 of 50 one-byte reads: {delayed}"
    );
    assert_eq!(mixed.rules[2].natural, Some(0), "no read failed by itself");
    let held: Vec<_> = mixed
        .injections
        .iter()
        .filter(|i| i.effect == Effect::Run)
        .collect();
    assert_eq!(held.len() as u64, delayed);
    assert!(held.iter().all(|i| i.delay_ns == Some(1_000_000)));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("\"errno\""), "no entry has an errno");

    let again = dir.path().join("replay.log.json");
    inject(&again, true, &["--replay", log.to_str().unwrap()])
        .success()
        .stdout("messages=50 reads=3200\n");
    let calls = |l: &phoebe::model::InjectionLog| {
        l.injections
            .iter()
            .map(|i| (i.syscall, i.index, i.effect, i.delay_ns))
            .collect::<Vec<_>>()
    };
    assert_eq!(calls(&load_log(&again)), calls(&mixed));
}

/// Found on nginx (`exec --service --explore plausible`: `recvfrom-short` failed 5/5, its rounds timing out). An
/// edge-triggered reader (nginx, tokio, Go's poller) takes a read shorter than it asked for as "drained" and
/// waits for the next edge, which the kernel sends when more data comes; the rest of a read phoebe shortened was
/// already queued, so no edge came and the reader hung. `framed-reader --edge` reads so: under `edge=yes` it
/// waits in vain and says so, while `edge=no` (what every short model carries) leaves its watched socket alone
/// and still shortens the reads of a socket no epoll watches.
#[test]
fn regression_short_reads_were_injected_into_edge_triggered_readers() {
    if !ptrace_works() {
        return;
    }
    let run = |guard: &str, mode: &str| {
        phoebe()
            .args(["inject", "--backend", "ptrace", "--fault"])
            .arg(format!("read:short=1:p=1:fd=unix-stream:edge={guard}"))
            .arg("--")
            .arg(testapp("framed-reader"))
            .args([mode, "--messages", "5"])
            .assert()
    };
    run("yes", "--edge")
        .code(1)
        .stderr(predicate::str::contains(
            "framed-reader: no edge came for 2 s with message 1 incomplete (1 of 64 bytes)",
        ))
        .stderr(predicate::str::contains("nonblock=yes:ready=yes:edge=yes"));
    run("no", "--edge")
        .success()
        .stdout("messages=5 reads=5\n")
        .stderr(predicate::str::contains("phoebe: injected 0 errors into"))
        .stderr(predicate::str::contains(
            "note: read:short=1:fd=unix-stream:edge=no kept out 5 call(s) of its class that had edge=yes: an \
             edge-triggered epoll watched the descriptor",
        ))
        .stderr(predicate::str::contains("the target made no call the rule describes").not());
    // A blocking reader no epoll watches: every read is shortened to one byte, and it copes.
    run("no", "--careful")
        .success()
        .stdout("messages=5 reads=320\n")
        .stderr(predicate::str::contains(
            "phoebe: injected 315 short transfers into",
        ))
        .stderr(predicate::str::contains("nonblock=no:edge=no"));
}
