//! `--explore plausible` (issue 16 item 2): without any `--fault`, a campaign finds what the program never met in
//! its baseline but production will — the fsync EIO of the log it appends to — and tells the tiers apart.

use std::path::Path;

use phoebe::model::{Report, Tier, Verdict};
use predicates::prelude::*;

use crate::common::*;

/// `phoebe exec --explore plausible` on `append-log [--retry] LOG` with its `--check`, one run per experiment,
/// no `--fault`.
fn campaign(dir: &Path, retry: bool, extra: &[&str]) -> assert_cmd::assert::Assert {
    let app = testapp("append-log");
    let log = dir.join("log");
    let mut c = exec_once();
    c.args(["--explore", "plausible", "--out"])
        .arg(dir.join("campaign"))
        .arg("--check")
        .arg(format!("{} --check {}", app.display(), log.display()))
        .arg("--reset")
        .arg(format!("rm -f {}", log.display()))
        .args(extra)
        .arg("--")
        .arg(&app);
    if retry {
        c.arg("--retry");
    }
    c.arg(&log).assert()
}

fn load_report(dir: &Path) -> Report {
    phoebe::files::load(&dir.join("campaign/report.json"), "report").expect("report.json")
}

fn experiment<'a>(report: &'a Report, id: &str) -> &'a phoebe::model::ExperimentResult {
    report.experiments.iter().find(|e| e.id == id).unwrap_or_else(|| {
        panic!(
            "no experiment {id} in {:?}",
            report.experiments.iter().map(|e| &e.id).collect::<Vec<_>>()
        )
    })
}

#[test]
fn a_log_that_gives_up_after_one_fsync_error_is_corrupted_without_any_fault() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Only a corrupted plausible experiment fails the campaign.
    campaign(dir.path(), false, &["--fail-on", "plausible:corrupted"])
        .code(1)
        .stdout(predicate::str::contains("verdicts: observed: "))
        .stdout(predicate::str::contains("; plausible: "));
    let report = load_report(dir.path());
    let fsync = experiment(&report, "fsync-EIO");
    assert_eq!(fsync.verdict, Verdict::Corrupted, "{fsync:?}");
    assert_eq!(fsync.tier(), Tier::Plausible);
    // On the file the program fsynced (its temporary directory is a template), nowhere else.
    let rule = fsync.faults[0].to_string();
    assert!(
        rule.starts_with("fsync:EIO:p=0.05:fd=file:") && rule.ends_with("/log:when=exit"),
        "{rule}"
    );
    // Never on the dynamic loader's files: an error there ends any program before its code runs.
    for e in report.experiments.iter().filter(|e| e.tier() == Tier::Plausible) {
        for f in &e.faults {
            let text = f.to_string();
            assert!(
                !text.contains(".so") && !text.contains("ld.so"),
                "{}: {text}",
                e.id
            );
            // Nor on the loader's own mmaps (its code's, told by the instruction pointer).
            assert!(
                !text.starts_with("mmap:") || text.contains(":loader=no"),
                "{}: {text}",
                e.id
            );
        }
    }
    // The plausible models come after the observed ones, and the campaign ran no fault of its own.
    let first_plausible = report
        .experiments
        .iter()
        .position(|e| e.tier() == Tier::Plausible)
        .expect("plausible experiments");
    assert!(
        report.experiments[first_plausible..]
            .iter()
            .all(|e| e.tier() == Tier::Plausible)
    );
    assert!(report.experiments.iter().all(|e| e.model.is_some()));
    // Every report format says which tier an experiment is of.
    let campaign = dir.path().join("campaign");
    let md = std::fs::read_to_string(campaign.join("summary.md")).unwrap();
    assert!(md.contains("plausible: ") && md.contains("| plausible |"), "{md}");
    let junit = std::fs::read_to_string(campaign.join("junit.xml")).unwrap();
    assert!(junit.contains("name=\"tier\" value=\"plausible\""), "{junit}");
    let html = std::fs::read_to_string(campaign.join("report.html")).unwrap();
    assert!(html.contains("<span class=\"tier\">plausible:</span>"));
    let json = std::fs::read_to_string(campaign.join("report.json")).unwrap();
    assert!(json.contains("\"tier\": \"plausible\""));
    let saved = std::fs::read_to_string(campaign.join("campaign.json")).unwrap();
    assert!(saved.contains("\"explore\": \"plausible\""), "{saved}");
}

#[test]
fn a_log_that_rewrites_and_fsyncs_again_is_resilient() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    campaign(dir.path(), true, &["--fail-on", "plausible:corrupted"]).code(0);
    let report = load_report(dir.path());
    let fsync = experiment(&report, "fsync-EIO");
    assert_eq!(fsync.verdict, Verdict::Resilient, "{fsync:?}");
    assert!(fsync.runs[0].injected > 0, "{fsync:?}");
    assert_eq!(fsync.tier(), Tier::Plausible);
}

#[test]
fn explore_is_refused_where_nothing_is_synthesized() {
    phoebe()
        .args([
            "exec",
            "--explore",
            "plausible",
            "--fault",
            "openat:ENOENT",
            "--",
            "true",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "phoebe: --explore plausible with --fault",
        ))
        .stderr(predicate::str::contains("hint: "));
    phoebe()
        .args(["exec", "--explore", "everything", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected observed"));
    phoebe()
        .args(["exec", "--fail-on", "plausable:failed", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown tier 'plausable'"));
}

/// A file watcher: an inotify instance and one watch, through the C library (Python's `ctypes`), printing what
/// the watch said.
const WATCHER: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_CLOEXEC)
if fd < 0:
    sys.exit("inotify_init1: " + os.strerror(ctypes.get_errno()))
wd = libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x100)
print("watching" if wd >= 0 else "inotify_add_watch: " + os.strerror(ctypes.get_errno()))
os.close(fd)
"#;

/// Found on watchdog 6.0.0's inotify suite (`--explore plausible`): the catalogue had no inotify error, and the
/// limits every file watcher meets — the user's inotify instances (`fs.inotify.max_user_instances`) and watches
/// (`fs.inotify.max_user_watches`, IDEs' "System limit for number of file watchers reached") — were never tried.
/// Now the plausible tier has `inotify_init1-EMFILE` and `inotify_add_watch-ENOSPC` for a program that makes
/// those calls, and the fault reaches it.
#[test]
fn regression_the_inotify_limits_every_file_watcher_meets_were_never_tried() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("watch.py");
    std::fs::write(&script, WATCHER).unwrap();
    let obs = dir.path().join("obs.json");
    phoebe()
        .args(["observe", "-q", "--backend", "ptrace", "-o"])
        .arg(&obs)
        .args(["--", "python3"])
        .arg(&script)
        .arg(dir.path())
        .assert()
        .success()
        .stdout("watching\n");
    let plan_file = dir.path().join("plan.json");
    // -q, as observe, inject and exec take it: the plan file alone.
    phoebe()
        .args(["synthesize", "-q", "--explore", "plausible", "-o"])
        .arg(&plan_file)
        .arg(&obs)
        .assert()
        .success()
        .stdout("");
    let plan: phoebe::model::Plan = phoebe::files::load(&plan_file, "plan").unwrap();
    for id in ["inotify_init1-EMFILE", "inotify_add_watch-ENOSPC"] {
        let model = plan.models.iter().find(|m| m.id == id).unwrap_or_else(|| {
            panic!(
                "no {id}: {:?}",
                plan.models.iter().map(|m| &m.id).collect::<Vec<_>>()
            )
        });
        assert_eq!(model.tier, Tier::Plausible, "{id}");
    }
    for backend in [Backend::Ptrace, Backend::Seccomp] {
        if !backend.works() {
            continue;
        }
        backend
            .inject()
            .args(["--fault", "inotify_add_watch:ENOSPC", "--", "python3"])
            .arg(&script)
            .arg(dir.path())
            .assert()
            .success()
            .stdout("inotify_add_watch: No space left on device\n");
    }
}
