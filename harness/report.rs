//! `phoebe report` on a campaign directory the test writes itself: a report of a campaign on the eBPF backend,
//! with experiments it skipped, re-rendered in every format and merged across shards. (No campaign on a host
//! whose kernel refuses BPF LSM gets that far; `common::ebpf_report_fixture` has what it would have written.)

use std::path::Path;

use phoebe::model::Report;
use predicates::prelude::*;

use crate::common::{ebpf_report_fixture, phoebe, report_fixture};

/// A campaign directory holding `report`.
fn campaign_dir(parent: &Path, name: &str, report: &Report) -> std::path::PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    phoebe::files::save(&dir.join("report.json"), report).unwrap();
    dir
}

fn render(dir: &Path, format: &str) -> String {
    let out = phoebe()
        .args(["report", "--format", format])
        .arg(dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn skipped_experiments_render_in_every_report_format() {
    let tmp = tempfile::tempdir().unwrap();
    let report = ebpf_report_fixture();
    let dir = campaign_dir(tmp.path(), "campaign", &report);

    let junit = render(&dir, "junit");
    assert!(
        junit.contains("tests=\"6\" failures=\"3\" errors=\"0\" skipped=\"3\""),
        "{junit}"
    );
    for id in ["futex-ETIMEDOUT", "fsync-EIO"] {
        let case = &junit[junit.find(&format!("name=\"{id}\"")).expect(id)..];
        let case = &case[..case.find("</testcase>").unwrap()];
        assert!(
            case.contains("<skipped message=\"not run: the ebpf backend cannot run it: no LSM hook decides "),
            "{case}"
        );
    }

    let markdown = render(&dir, "markdown");
    assert!(
        markdown.contains("<details><summary>Skipped (2): not run on ebpf</summary>"),
        "{markdown}"
    );
    assert!(markdown.contains("- futex-ETIMEDOUT: `futex:ETIMEDOUT:p=0.2202` — no LSM hook decides 'futex'"));

    let html = render(&dir, "html");
    assert!(html.contains("<div class=\"notice\" id=\"skipped\"><p>2 skipped: the ebpf backend cannot run"));
    assert!(html.contains("<li><code>fsync-EIO</code>"));

    let terminal = render(&dir, "terminal");
    assert!(
        terminal.contains("skipped (2): the ebpf backend cannot run these 2 experiments (--backend seccomp runs them):\n  futex-ETIMEDOUT"),
        "{terminal}"
    );

    // A report written before `skipped` existed (the field left out) still renders, with no such section.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("skipped");
    let old = tmp.path().join("old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(
        old.join("report.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    assert!(!render(&old, "markdown").contains("Skipped ("));
}

#[test]
fn report_merge_keeps_the_skipped_experiments_of_every_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = ebpf_report_fixture();
    // Two shards: each ran half of the experiments and skipped some.
    let mut shards = [whole.clone(), whole.clone()];
    for (k, shard) in shards.iter_mut().enumerate() {
        shard.shard = Some(format!("{}/2", k + 1));
        shard.experiments = whole.experiments.iter().skip(k).step_by(2).cloned().collect();
        shard.skipped = whole.skipped.iter().skip(k).step_by(2).cloned().collect();
        shard.pending.clear();
        shard.interrupted = false;
    }
    let dirs: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(k, r)| campaign_dir(tmp.path(), &format!("shard-{}", k + 1), r))
        .collect();
    let merged = tmp.path().join("merged");
    phoebe()
        .args(["report", "merge"])
        .args(&dirs)
        .arg("-o")
        .arg(&merged)
        .assert()
        // The fixture has experiments that are not resilient: the merge exits 1, as exec would (--fail-on).
        .code(1)
        .stdout(predicate::str::contains("skipped (2)"));
    let report: Report = phoebe::files::load(&merged.join("report.json"), "report").unwrap();
    // Shard by shard: the first shard's skips, then the second's.
    let by_id = |skipped: &[phoebe::model::Skipped]| {
        let mut ids: Vec<String> = skipped.iter().map(|s| s.id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(by_id(&report.skipped), by_id(&whole.skipped));
    assert_eq!(report.experiments.len(), whole.experiments.len());
    assert!(report.pending.is_empty());
    let junit = std::fs::read_to_string(merged.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<skipped message=\"not run:").count(), 2);
}

/// Regression (issue 13, item 7): `report merge` accepted the same shard twice and counted its baseline twice.
#[test]
fn report_merge_accepted_the_same_shard_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut shard = report_fixture();
    shard.shard = Some("1/2".into());
    let (a, b) = (dir.path().join("a"), dir.path().join("copy-of-a"));
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        phoebe::files::save(&d.join("report.json"), &shard).unwrap();
    }
    let merged = dir.path().join("merged");
    for twice in [[&a, &a], [&a, &b]] {
        let out = phoebe()
            .args(["report", "merge"])
            .args(twice)
            .arg("-o")
            .arg(&merged)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!(
                "phoebe: {} is shard 1/2 again, as {} is: its baseline would count twice\nhint: give each shard's \
                 directory once\n",
                twice[1].display(),
                a.display()
            )
        );
        assert!(!merged.exists());
    }
}
