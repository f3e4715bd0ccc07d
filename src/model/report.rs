//! `Report`: what a campaign (`phoebe exec`) found — the baseline, one result per experiment, a verdict per run
//! (DESIGN §7). Plain data; `crate::experiment` fills it, `crate::report` renders it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{TargetExit, Usage, fault::FaultSpec, plan::ErrorModel};

/// How the program coped with one run of one experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Same exit status as the baseline, and the check passed.
    Resilient,
    /// The experiment made no injection: the program never made that call (not a pass, not a failure).
    NotExercised,
    /// Another exit status than the baseline, or the check failed.
    Failed,
    /// The run after injection stopped (a plain run and the check) failed: the damage outlived the fault.
    Corrupted,
    /// Killed by a signal (SIGSEGV, SIGABRT, …).
    Crashed,
    /// Still running at the timeout.
    Hung,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Resilient,
        Verdict::NotExercised,
        Verdict::Failed,
        Verdict::Corrupted,
        Verdict::Crashed,
        Verdict::Hung,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Resilient => "resilient",
            Verdict::NotExercised => "not-exercised",
            Verdict::Failed => "failed",
            Verdict::Corrupted => "corrupted",
            Verdict::Crashed => "crashed",
            Verdict::Hung => "hung",
        }
    }

    /// Resilient and not-exercised are not findings; everything else is.
    pub fn is_finding(self) -> bool {
        !matches!(self, Verdict::Resilient | Verdict::NotExercised)
    }

    /// The experiment's verdict from its runs: the worst run (hung > crashed > corrupted > failed > resilient),
    /// not-exercised only when no run was exercised.
    pub fn worst(runs: impl IntoIterator<Item = Verdict>) -> Verdict {
        runs.into_iter()
            .filter(|v| *v != Verdict::NotExercised)
            .max()
            .unwrap_or(Verdict::NotExercised)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verdict::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Verdict::ALL.iter().map(|v| v.name()).collect();
            format!("unknown verdict '{s}' (verdicts: {})", names.join(", "))
        })
    }
}

/// One run of the target without injection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRun {
    /// Service mode: the workload rounds of this baseline run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<RoundStats>,
    pub exit: TargetExit,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// `--check` after the run; `null` without a check.
    pub check_passed: Option<bool>,
}

/// The steady state every run is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub runs: Vec<BaselineRun>,
    /// The exit status every baseline run had.
    pub exit: TargetExit,
    /// The timeout each experiment run gets, in milliseconds.
    pub timeout_ms: u64,
}

/// One run of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// 1-based.
    pub run: u32,
    pub seed: u64,
    pub verdict: Verdict,
    /// Why, in one sentence (e.g. `exit status 1, baseline 0`).
    pub detail: String,
    /// `null` when the run was stopped at the timeout before phoebe saw the target end.
    pub exit: Option<TargetExit>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Calls the fault matched, and how many it injected.
    pub matched: u64,
    pub injected: u64,
    /// Of the injections, those that landed on a call shape that failed naturally with the same errno in the
    /// baseline (DESIGN §6); `null` when that cannot be told (the baseline or the log has no shapes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realistic: Option<u64>,
    pub check_passed: Option<bool>,
    /// The plain run (and check) after injection; `null` when it was not needed (not exercised, hung).
    pub post_run_passed: Option<bool>,
    /// The injection log of the run, relative to the campaign directory.
    pub log: String,
    /// Service mode: the workload rounds before, during and after injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<Rounds>,
}

/// Workload rounds of a service-mode run: steady state, injection switched on, switched off again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rounds {
    pub steady: RoundStats,
    pub injected: RoundStats,
    pub after: RoundStats,
}

/// How a batch of workload rounds went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundStats {
    pub ok: u32,
    pub total: u32,
    /// Mean latency of the rounds (successful or not), in milliseconds.
    pub mean_ms: f64,
}

impl RoundStats {
    pub fn all_ok(&self) -> bool {
        self.ok == self.total
    }
}

impl RunResult {
    pub fn achieved_rate(&self) -> Option<f64> {
        (self.matched > 0).then(|| self.injected as f64 / self.matched as f64)
    }
}

/// One experiment: one fault, several runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResult {
    /// Stable name (`openat-ENOENT`), unique in the campaign.
    pub id: String,
    /// The rules injected together: one per call shape for a synthesized model, the one `--fault` otherwise.
    #[serde(alias = "fault", deserialize_with = "one_or_many")]
    pub faults: Vec<FaultSpec>,
    /// The synthesized model the faults come from; `null` for a fault given with `--fault`.
    pub model: Option<ErrorModel>,
    pub verdict: Verdict,
    pub runs: Vec<RunResult>,
}

impl ExperimentResult {
    /// The share of the experiment's injections that landed on a call shape that failed naturally with the same
    /// errno in the baseline, over the runs where that could be told; `None` when it never could or nothing was
    /// injected.
    pub fn realism(&self) -> Option<f64> {
        let (realistic, injected) = self
            .runs
            .iter()
            .filter_map(|r| r.realistic.map(|n| (n, r.injected)))
            .fold((0u64, 0u64), |(a, b), (n, i)| {
                (a.saturating_add(n), b.saturating_add(i))
            });
        (injected > 0).then(|| realistic as f64 / injected as f64)
    }
}

/// An experiment of the plan that the campaign's backend cannot run, so it was not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The experiment's id, as in `experiments`.
    pub id: String,
    #[serde(alias = "fault", deserialize_with = "one_or_many")]
    pub faults: Vec<FaultSpec>,
    /// Why the backend cannot run it, in one sentence naming the backend that can.
    pub reason: String,
}

/// A whole campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub command: Vec<String>,
    pub backend: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The campaign seed every run's seed derives from.
    pub seed: u64,
    /// `K/N` when this report holds one shard of the experiments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub baseline: Baseline,
    /// Natural error rate per baseline interval, per experiment id (for the charts); interval length below.
    #[serde(default)]
    pub natural_rates: BTreeMap<String, Vec<f64>>,
    pub interval_ms: u64,
    pub experiments: Vec<ExperimentResult>,
    /// Experiments the plan has but this report does not (interrupted, or other shards).
    #[serde(default)]
    pub pending: Vec<String>,
    /// Experiments of this report's part of the plan that the backend cannot run, in plan order; not run, never
    /// a verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// True when the campaign was interrupted before its last experiment.
    #[serde(default)]
    pub interrupted: bool,
}

impl Report {
    /// How many experiments got each verdict.
    pub fn counts(&self) -> BTreeMap<Verdict, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.experiments {
            *counts.entry(e.verdict).or_default() += 1;
        }
        counts
    }

    /// Did an experiment get one of these verdicts (`phoebe exec --fail-on`)? Skipped experiments have no
    /// verdict, so they never fail a campaign.
    pub fn fails_on(&self, verdicts: &[Verdict]) -> bool {
        self.experiments.iter().any(|e| verdicts.contains(&e.verdict))
    }
}

/// A list of rules, or one rule as reports before call shapes wrote it (`"fault": "…"`).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<FaultSpec>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(FaultSpec),
        Many(Vec<FaultSpec>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(f) => vec![f],
        OneOrMany::Many(v) => v,
    })
}

/// Rules as one line for people: `a; b`.
pub fn faults_text(faults: &[FaultSpec]) -> String {
    faults
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_verdict_wins_and_unexercised_runs_do_not_hide_findings() {
        use Verdict::*;
        assert_eq!(Verdict::worst([Resilient, Failed, Resilient]), Failed);
        assert_eq!(Verdict::worst([Corrupted, Crashed]), Crashed);
        assert_eq!(Verdict::worst([Hung, Crashed]), Hung);
        assert_eq!(Verdict::worst([NotExercised, Resilient]), Resilient);
        assert_eq!(Verdict::worst([NotExercised, NotExercised]), NotExercised);
        assert_eq!(Verdict::worst([]), NotExercised);
    }

    #[test]
    fn skipped_experiments_are_optional_in_the_file_and_never_fail_a_campaign() {
        let mut report = crate::report::terminal::tests::sample();
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("skipped").is_none(), "not written when empty");
        // A report written before the field existed still loads.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("skipped");
        assert_eq!(serde_json::from_value::<Report>(old).unwrap(), report);

        report.skipped.push(Skipped {
            id: "futex-EAGAIN".into(),
            faults: vec![FaultSpec::parse("futex:EAGAIN").unwrap()],
            reason: "no LSM hook decides 'futex'".into(),
        });
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["skipped"],
            serde_json::json!([{
                "id": "futex-EAGAIN",
                "faults": ["futex:EAGAIN"],
                "reason": "no LSM hook decides 'futex'"
            }])
        );
        assert_eq!(serde_json::from_value::<Report>(json.clone()).unwrap(), report);
        // Reports from before call shapes name one rule, as "fault".
        let mut old = json;
        old["skipped"][0].as_object_mut().unwrap().remove("faults");
        old["skipped"][0]["fault"] = "futex:EAGAIN".into();
        assert_eq!(serde_json::from_value::<Report>(old).unwrap(), report);

        report.experiments.clear();
        assert!(
            !report.fails_on(&Verdict::ALL),
            "a skipped experiment has no verdict to fail on"
        );
        report.experiments = crate::report::terminal::tests::sample().experiments;
        assert!(report.fails_on(&[Verdict::Failed]));
        assert!(!report.fails_on(&[Verdict::Crashed, Verdict::Hung]));
    }

    #[test]
    fn verdict_names() {
        assert_eq!(
            serde_json::to_string(&Verdict::NotExercised).unwrap(),
            "\"not-exercised\""
        );
        assert_eq!("corrupted".parse::<Verdict>().unwrap(), Verdict::Corrupted);
        assert!(
            "broken"
                .parse::<Verdict>()
                .unwrap_err()
                .contains("resilient, not-exercised")
        );
        assert!(Verdict::Failed.is_finding() && !Verdict::NotExercised.is_finding());
    }
}
