//! Joining the reports of the shards of one campaign (`phoebe report merge`).

use std::collections::BTreeSet;

use phoebe_core::model::Report;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error("the reports are not shards of one campaign: {what} differs ('{first}' vs '{other}')")]
    Mismatch {
        what: &'static str,
        first: String,
        other: String,
    },
}

impl phoebe_core::hint::Hinted for MergeError {
    fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            MergeError::Empty => None,
            MergeError::Mismatch { .. } => Some(
                "merge the directories of one `phoebe exec --shard K/N` campaign (same command, seed and plan)".into(),
            ),
        }
    }
}

/// The backends two reports ran on, as one report names them: each report's (`a, b` when its runs used
/// several), in order, once; `auto` is what a report says when none of its experiments ran, so it yields.
fn backends_that_ran(first: &str, other: &str) -> String {
    let mut names: Vec<&str> = Vec::new();
    for name in first.split(", ").chain(other.split(", ")) {
        if name != "auto" && !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        "auto".to_owned()
    } else {
        names.join(", ")
    }
}

/// One report with every shard's experiments and skipped experiments (in the order of the shards given, each
/// once), the baselines' runs together, and what no shard ran or skipped still pending.
pub fn merge(reports: Vec<Report>) -> Result<Report, MergeError> {
    let mut iter = reports.into_iter();
    let mut merged = iter.next().ok_or(MergeError::Empty)?;
    merged.shard = None;
    for r in iter {
        let check = |what, a: String, b: String| {
            if a == b {
                Ok(())
            } else {
                Err(MergeError::Mismatch {
                    what,
                    first: a,
                    other: b,
                })
            }
        };
        check("the command", merged.command.join(" "), r.command.join(" "))?;
        check("the seed", merged.seed.to_string(), r.seed.to_string())?;
        // Reports written before fingerprints (none) are judged by their command and seed alone.
        if let (Some(a), Some(b)) = (&merged.fingerprint, &r.fingerprint) {
            check(
                "the campaign fingerprint (another --runs, --fault, --plan, --interval or other setting)",
                a.clone(),
                b.clone(),
            )?;
        }
        merged.backend = backends_that_ran(&merged.backend, &r.backend);
        merged.baseline.runs.extend(r.baseline.runs);
        merged.baseline.timeout_ms = merged.baseline.timeout_ms.max(r.baseline.timeout_ms);
        for (id, rates) in r.natural_rates {
            merged.natural_rates.entry(id).or_insert(rates);
        }
        for e in r.experiments {
            if !merged.experiments.iter().any(|m| m.id == e.id) {
                merged.experiments.push(e);
            }
        }
        merged.pending.extend(r.pending);
        for s in r.skipped {
            if !merged.skipped.iter().any(|m| m.id == s.id) {
                merged.skipped.push(s);
            }
        }
        merged.interrupted |= r.interrupted;
        merged.stopped = merged.stopped.or(r.stopped);
    }
    let done: BTreeSet<&str> = merged
        .experiments
        .iter()
        .map(|e| e.id.as_str())
        .chain(merged.skipped.iter().map(|s| s.id.as_str()))
        .collect();
    let pending: BTreeSet<String> = merged
        .pending
        .iter()
        .filter(|p| !done.contains(p.as_str()))
        .cloned()
        .collect();
    merged.pending = pending.into_iter().collect();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoebe_core::model::{Baseline, ExperimentResult, FaultSpec, Skipped, TargetExit};

    fn shard(k: u32, done: &[&str], pending: &[&str]) -> Report {
        Report {
            version: 1,
            command: vec!["app".into()],
            backend: "ptrace".into(),
            created_at: String::new(),
            seed: 7,
            shard: Some(format!("{k}/2")),
            fingerprint: None,
            baseline: Baseline {
                runs: vec![],
                exit: TargetExit::Code(0),
                timeout_ms: 1000 * u64::from(k),
                expect_status: None,
                accept_flaky: false,
                flaky: None,
                rerun_passed: None,
            },
            natural_rates: Default::default(),
            interval_ms: 1000,
            experiments: done
                .iter()
                .map(|id| {
                    ExperimentResult::from_runs(
                        (*id).into(),
                        vec![FaultSpec::parse("openat:ENOENT").unwrap()],
                        None,
                        vec![],
                    )
                })
                .collect(),
            pending: pending.iter().map(|s| (*s).into()).collect(),
            skipped: Vec::new(),
            skipped_backend: None,
            interrupted: false,
            stopped: None,
        }
    }

    #[test]
    fn shards_join() {
        let merged = merge(vec![
            shard(1, &["a", "c"], &["b", "d"]),
            shard(2, &["b"], &["a", "c", "d"]),
        ])
        .unwrap();
        let ids: Vec<&str> = merged.experiments.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "b"]);
        assert_eq!(merged.pending, ["d"]);
        assert_eq!(merged.shard, None);
        assert_eq!(merged.baseline.timeout_ms, 2000);
    }

    /// Issue 14: `report merge` compared only the command and the seed, so shards run with other `--runs` or
    /// faults merged into one report as if they were one campaign.
    #[test]
    fn shards_of_campaigns_with_other_settings_do_not_merge() {
        let mut one = shard(1, &["a"], &["b"]);
        one.fingerprint = Some("0123".into());
        let mut two = shard(2, &["b"], &["a"]);
        two.fingerprint = Some("4567".into());
        let err = merge(vec![one.clone(), two.clone()]).unwrap_err().to_string();
        assert!(
            err.contains("the campaign fingerprint") && err.contains("'0123' vs '4567'"),
            "{err}"
        );
        two.fingerprint = Some("0123".into());
        assert_eq!(
            merge(vec![one.clone(), two]).unwrap().fingerprint.as_deref(),
            Some("0123")
        );
        // A report from before fingerprints is judged by its command and seed, as it was.
        assert!(merge(vec![one, shard(2, &["b"], &["a"])]).is_ok());
    }

    /// A shard with no experiment says `auto` (nothing ran); shards of an `auto` campaign may run on seccomp
    /// and on ptrace (a rule that injects at exit): the merged report names every backend that ran.
    #[test]
    fn the_merged_report_names_every_backend_that_ran() {
        let mut one = shard(1, &["a"], &[]);
        one.backend = "seccomp".into();
        let mut idle = shard(2, &[], &[]);
        idle.backend = "auto".into();
        assert_eq!(merge(vec![one.clone(), idle.clone()]).unwrap().backend, "seccomp");
        assert_eq!(merge(vec![idle.clone(), idle.clone()]).unwrap().backend, "auto");
        let mut exit_side = shard(2, &["b"], &[]);
        exit_side.backend = "ptrace, seccomp".into();
        assert_eq!(
            merge(vec![one, idle, exit_side]).unwrap().backend,
            "seccomp, ptrace"
        );
    }

    fn skipped(id: &str) -> Skipped {
        Skipped {
            id: id.into(),
            faults: vec![FaultSpec::parse("futex:EAGAIN").unwrap()],
            reason: "no LSM hook decides 'futex'".into(),
        }
    }

    #[test]
    fn skipped_experiments_are_kept_once_and_are_not_pending() {
        let mut one = shard(1, &["a"], &["b", "d"]);
        one.skipped = vec![skipped("c")];
        let mut two = shard(2, &["b"], &["a", "c"]);
        two.skipped = vec![skipped("d"), skipped("c")];
        let merged = merge(vec![one, two]).unwrap();
        let ids: Vec<&str> = merged.skipped.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["c", "d"]);
        assert!(merged.pending.is_empty(), "{:?}", merged.pending);
        assert_eq!(merged.skipped[0], skipped("c"));
    }

    #[test]
    fn other_campaigns_are_refused() {
        let mut other = shard(2, &["b"], &[]);
        other.seed = 8;
        let err = merge(vec![shard(1, &["a"], &[]), other]).unwrap_err().to_string();
        assert!(
            err.starts_with("the reports are not shards of one campaign: the seed differs ('7' vs '8')"),
            "{err}"
        );
        assert!(matches!(merge(vec![]), Err(MergeError::Empty)));
    }
}
