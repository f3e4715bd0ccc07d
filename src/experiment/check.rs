//! Checks of a campaign read back from `campaign.json` (`phoebe exec --resume DIR`). The CLI refuses these values
//! when a campaign starts; a file may hold anything, and the orchestrator divides by the shard count, indexes the
//! command and runs the baseline `baseline_runs` times.

use super::Campaign;

impl Campaign {
    /// What makes this campaign impossible to run, in one sentence naming the field; `None` when it can run.
    pub fn problem(&self) -> Option<String> {
        if self.command.first().is_none_or(String::is_empty) {
            return Some("\"command\" is empty: there is no program to run".into());
        }
        for (name, value) in [("runs", self.runs), ("baseline_runs", self.baseline_runs)] {
            if value == 0 {
                return Some(format!("\"{name}\" is 0: a campaign needs at least 1"));
            }
        }
        if self.interval_ms == Some(0) {
            return Some("\"interval_ms\" is 0: the monitoring interval is at least 1 ms".into());
        }
        if self.timeout_ms == Some(0) {
            return Some("\"timeout_ms\" is 0: a run's timeout is at least 1 ms".into());
        }
        if let Some(service) = &self.service
            && service.rounds == 0
        {
            return Some("\"service.rounds\" is 0: service mode plays at least 1 round per phase".into());
        }
        if let Some(shard) = self.shard
            && !(1..=shard.count).contains(&shard.index)
        {
            return Some(format!(
                "\"shard\" is {}/{}, expected K/N with 1 ≤ K ≤ N",
                shard.index, shard.count
            ));
        }
        if let Err(e) = self.settings.validate() {
            return Some(format!("\"settings\": {e}"));
        }
        None
    }
}

/// What `phoebe`'s campaign property test (`campaign_never_panics`, `src/fuzz.rs`) feeds and runs: a campaign
/// with every part set, and what `exec --resume` does with one before it runs anything. For tests only (this
/// crate's, and `phoebe`'s through the `fuzzing` feature).
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing {
    use std::path::Path;

    use super::Campaign;
    use crate::{
        Shard, check_ids, derive_seed, experiments,
        model::{FORMAT_VERSION, FaultSpec, Plan, SynthSettings},
        service::ServiceSpec,
        share,
    };

    /// A campaign with faults, `plan`, service mode and a shard: the seed the property test mutates.
    pub fn campaign(plan: Option<Plan>) -> Campaign {
        Campaign {
            version: FORMAT_VERSION,
            command: vec!["app".into(), "--in".into(), "a b.txt".into()],
            backend: Some(crate::backend::BackendKind::Seccomp),
            runs: 2,
            baseline_runs: 1,
            timeout_ms: Some(5000),
            check: Some("test -s out.txt".into()),
            reset: None,
            seed: 1,
            interval_ms: Some(100),
            settings: SynthSettings::default(),
            faults: ["openat:ENOENT:p=0.5", "futex:EAGAIN:op=FUTEX_WAIT_PRIVATE"]
                .iter()
                .map(|f| FaultSpec::parse(f).unwrap())
                .collect(),
            service: Some(ServiceSpec {
                ready: "true".into(),
                workload: "true".into(),
                rounds: 3,
                tolerance: 0,
                recovery_ms: 0,
            }),
            plan,
            shard: Some(Shard { index: 1, count: 2 }),
            expect_status: None,
            accept_flaky_baseline: false,
            tests: None,
            log_files: vec!["logs/error.log".into()],
            observer: crate::Observer::Ptrace,
            fingerprint: String::new(),
        }
    }

    /// What `exec --resume` does with a campaign before it runs anything: the checks, the plan's ids, this
    /// shard's experiments and what its backend skips, each run's seed and rules.
    pub fn use_campaign(campaign: &Campaign) {
        if campaign.problem().is_some() {
            return;
        }
        let plan = campaign.plan.clone().unwrap_or_else(|| campaign.empty_plan());
        if check_ids(&plan, Path::new("campaign.json")).is_err() {
            return;
        }
        let all = experiments(campaign, &plan);
        let Ok((mine, skipped)) = share(campaign, &all, Path::new("out")) else {
            return;
        };
        for exp in mine.iter().take(8) {
            for run in 1..=campaign.runs.min(3) {
                let _ = derive_seed(campaign.seed, &exp.id, run);
            }
            for fault in &exp.faults {
                let text = fault.to_string();
                assert_eq!(FaultSpec::parse(&text).as_ref(), Ok(fault), "{text}");
            }
        }
        let _ = crate::fallback_backend(&skipped);
    }
}

#[cfg(test)]
mod tests {
    use super::{
        fuzzing::{campaign as seeded, use_campaign},
        *,
    };
    use crate::Shard;

    fn campaign() -> Campaign {
        seeded(None)
    }

    #[test]
    fn the_seed_campaign_is_valid_and_every_check_names_its_field() {
        let good = campaign();
        assert_eq!(good.problem(), None);
        use_campaign(&good);
        type Spoil = fn(&mut Campaign);
        // A backend no phoebe has is refused as the file is read (the field is typed), in the same sentence.
        let mut lsm = serde_json::to_value(&good).unwrap();
        lsm["backend"] = "lsm".into();
        let problem = serde_json::from_value::<Campaign>(lsm).unwrap_err().to_string();
        assert!(problem.starts_with("\"backend\" is 'lsm'"), "{problem}");
        let cases: [(&str, Spoil); 7] = [
            ("\"command\" is empty", |c| c.command.clear()),
            ("\"runs\" is 0", |c| c.runs = 0),
            ("\"baseline_runs\" is 0", |c| c.baseline_runs = 0),
            ("\"interval_ms\" is 0", |c| c.interval_ms = Some(0)),
            ("\"service.rounds\" is 0", |c| {
                c.service.as_mut().unwrap().rounds = 0
            }),
            ("\"shard\" is 1/0", |c| {
                c.shard = Some(Shard { index: 1, count: 0 })
            }),
            ("\"settings\": synthesis setting quantile=2", |c| {
                c.settings.quantile = 2.0
            }),
        ];
        for (expected, spoil) in cases {
            let mut bad = campaign();
            spoil(&mut bad);
            let problem = bad.problem().unwrap_or_default();
            assert!(problem.starts_with(expected), "{problem}");
        }
    }

    /// Regression (issue 13, fuzzing): a `campaign.json` with `"shard": {"index": 1, "count": 0}` made
    /// `exec --resume` divide by zero, and `"baseline_runs": 0` made it panic after the baseline ("at least one
    /// baseline run"). Both are refused by [`Campaign::problem`] now.
    #[test]
    fn a_resumed_campaign_with_shard_count_0_or_no_baseline_run_is_refused_not_a_panic() {
        let mut zero_shards = campaign();
        zero_shards.shard = Some(Shard { index: 1, count: 0 });
        assert!(zero_shards.problem().is_some());
        let mut no_baseline = campaign();
        no_baseline.baseline_runs = 0;
        assert!(no_baseline.problem().is_some());
    }
}
