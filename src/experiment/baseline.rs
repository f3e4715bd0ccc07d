//! The baseline: `baseline_runs` observed runs of the target (plain or service), whether they are a steady
//! state ([`verdict::steady_state`]), and the timeout the experiments get from them.

use std::{path::Path, process::Command, time::Duration};

use super::{
    ExperimentError, Observer, Progress,
    run::{Lending, Lent, Runner},
    supervise::{millis, read_tail},
    verdict,
};
use crate::{
    files,
    model::{Baseline, BaselineRun, Observation, TargetExit},
};

/// Refuses an observer this machine cannot observe with, before anything runs: the backend's own probe answers
/// (what `phoebe doctor` prints).
pub(super) fn observer_usable(observer: Observer) -> Result<(), ExperimentError> {
    let observe = crate::backend::backend(observer.backend()).probe_observe();
    if observe.available {
        return Ok(());
    }
    Err(ExperimentError::ObserverUnavailable {
        observer: observer.name(),
        reason: observe.reason,
        hint: observe
            .hint
            .unwrap_or_else(|| "run `phoebe doctor` to see which backends work here".to_owned()),
    })
}

impl Runner<'_> {
    /// `phoebe observe` of one baseline run (plain or service), with the campaign's observer and interval; it
    /// borrows the campaign's observer, when its backend has one, until the [`Lent`] is dropped.
    pub(super) fn observe_command(&self, obs_path: &Path) -> (Command, Lent<'_>) {
        let mut cmd = Command::new(self.phoebe);
        cmd.arg("observe").arg("-q").arg("-o").arg(obs_path);
        cmd.arg("--backend").arg(self.campaign.observer.name());
        cmd.arg("--interval").arg(self.campaign.interval().to_string());
        let lent = self.lend(&mut cmd);
        cmd.arg("--").args(self.target_args());
        (cmd, lent)
    }

    /// Lends the campaign's observer to `cmd` (started at the first call). When it cannot, `cmd` starts its own.
    fn lend(&self, cmd: &mut Command) -> Lent<'_> {
        let mut lending = self.lending.borrow_mut();
        if let Lending::Untried = *lending {
            *lending = match crate::backend::backend(self.campaign.observer.backend()).campaign_observer() {
                Ok(Some(observer)) => Lending::Lends(observer),
                Ok(None) => Lending::Not,
                Err(error) => {
                    tracing::debug!(error = %error, "no campaign observer: each baseline run starts its own");
                    Lending::Not
                }
            };
        }
        let Lending::Lends(observer) = &mut *lending else {
            return Lent(None);
        };
        match observer.lend(cmd) {
            Ok(()) => Lent(Some(&self.lending)),
            Err(error) => {
                tracing::debug!(error = %error, "the campaign observer could not be lent: the run starts its own");
                Lent(None)
            }
        }
    }

    pub(super) fn baseline(&self, progress: &dyn Progress) -> Result<Baseline, ExperimentError> {
        let dir = self.layout.mkdir("baseline")?;
        let mut runs = Vec::new();
        let mut slowest = Duration::ZERO;
        for k in 1..=self.campaign.baseline_runs {
            self.reset(&dir, &format!("run-{k}.reset"))?;
            if self.campaign.service.is_some() {
                let run = self.service_baseline_run(&dir, k)?;
                progress.run_done();
                match run {
                    Some(run) => {
                        slowest = slowest.max(Duration::from_millis(run.duration_ms));
                        runs.push(run);
                        continue;
                    }
                    None => break,
                }
            }
            let obs_path = dir.join(format!("run-{k}.observation.json"));
            let (cmd, lent) = self.observe_command(&obs_path);
            let started = std::time::SystemTime::now();
            let ran = self.supervised(
                cmd,
                &dir.join(format!("run-{k}")),
                self.timeout_hint(),
                "the baseline",
            )?;
            drop(lent);
            if let Some(pattern) = &self.campaign.tests {
                super::suite::keep_junit(pattern, started, &dir, &format!("run-{k}"));
            }
            progress.run_done();
            if self.control.interrupted() {
                break;
            }
            if ran.timed_out {
                return Err(ExperimentError::BaselineHung(ran.wall));
            }
            let obs: Observation =
                files::load(&obs_path, "observation").map_err(|_| ExperimentError::Inner {
                    what: format!("baseline run {k}"),
                    stderr: read_tail(&dir.join(format!("run-{k}.err"))),
                })?;
            let exit = obs
                .exit
                .unwrap_or(TargetExit::Code(ran.status.and_then(|s| s.code()).unwrap_or(-1)));
            let check_passed = self.check(&dir, &format!("run-{k}.check"), self.timeout_hint())?;
            slowest = slowest.max(ran.wall);
            runs.push(BaselineRun {
                rounds: None,
                exit,
                duration_ms: millis(ran.wall),
                usage: obs.usage,
                check_passed,
                workload_ms: None,
            });
            // Without --accept-flaky-baseline, the first run that does not match decides: no need to run more.
            if !self.campaign.accept_flaky_baseline {
                self.steady(&runs, &dir)?;
            }
        }
        let flaky = if self.campaign.service.is_some() {
            // A service is stopped by phoebe, so its status says nothing; its steady state is every round
            // succeeding (and the check), which each run checked unless --accept-flaky-baseline kept failures.
            service_flaky(&runs, &dir)?
        } else {
            self.steady(&runs, &dir)?
        };
        let exit = if self.campaign.service.is_some() {
            runs.first().map_or(TargetExit::Code(0), |r| r.exit)
        } else {
            self.campaign.declared().expected()
        };
        // Default: 5× the slowest baseline run (which ran under the observer, so already slowed), at least 10 s.
        let timeout = self
            .timeout_hint()
            .unwrap_or_else(|| (slowest * 5).max(Duration::from_secs(10)));
        // The plain run after each experiment run judges the damage it left; it means something only if a plain
        // run after a plain run passes (zstd refuses to overwrite the output the run before it wrote).
        let rerun_passed = if self.campaign.service.is_none() && !self.control.interrupted() {
            progress.message("baseline: a plain run right after it, without --reset");
            let passed = self.plain_passes(&dir, "rerun", timeout, exit, "the baseline's plain rerun")?;
            if !passed {
                tracing::info!(
                    "a plain run after a passing one fails: damage is not judged by a plain run after injection"
                );
            }
            Some(passed)
        } else {
            None
        };
        Ok(Baseline {
            runs,
            exit,
            timeout_ms: millis(timeout),
            expect_status: self.campaign.expect_status,
            accept_flaky: self.campaign.accept_flaky_baseline,
            flaky,
            rerun_passed,
        })
    }

    /// Are the baseline runs so far a steady state ([`verdict::steady_state`])? `Ok(Some(what))` when they
    /// disagree and that was accepted.
    fn steady(&self, runs: &[BaselineRun], dir: &Path) -> Result<Option<String>, ExperimentError> {
        let evidence: Vec<verdict::BaselineEvidence> = runs
            .iter()
            .map(|r| verdict::BaselineEvidence {
                exit: r.exit,
                check_passed: r.check_passed,
            })
            .collect();
        verdict::steady_state(&evidence, self.campaign.declared()).map_err(|unsteady| {
            let k = unsteady.run;
            let exit_ok = runs[k as usize - 1].exit == self.campaign.declared().expected();
            ExperimentError::NotSteady {
                sentence: unsteady.sentence,
                output: dir.join(if exit_ok {
                    format!("run-{k}.check.err")
                } else {
                    format!("run-{k}.err")
                }),
            }
        })
    }
}

/// With `--accept-flaky-baseline` a service's baseline runs whose rounds or check failed were kept: the baseline
/// goes on, reported flaky, when some run passed, and is refused as for a plain target when none did. `None`
/// when every run passed.
fn service_flaky(runs: &[BaselineRun], dir: &Path) -> Result<Option<String>, ExperimentError> {
    let failed: Vec<(usize, String)> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let rounds = r.rounds.unwrap_or_default();
            let check = r.check_passed == Some(false);
            (!rounds.all_ok() || check).then(|| {
                (
                    i + 1,
                    format!(
                        "baseline run {}: {} of {} rounds ok{}",
                        i + 1,
                        rounds.ok,
                        rounds.total,
                        if check { ", the check failed" } else { "" }
                    ),
                )
            })
        })
        .collect();
    match failed.first() {
        None => Ok(None),
        Some((k, _)) if failed.len() == runs.len() => Err(ExperimentError::NotSteady {
            sentence: format!(
                "{}: the service fails its workload without any injection in every baseline run, so there is \
                 no steady state to compare with, flaky or not; fix the service, the workload or the check first",
                failed
                    .iter()
                    .map(|(_, s)| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            output: dir.join(format!("run-{k}-round-1.err")),
        }),
        Some(_) => Ok(Some(
            failed.into_iter().map(|(_, s)| s).collect::<Vec<_>>().join("; ")
                + &format!(" (of {} runs; accepted with --accept-flaky-baseline)", runs.len()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RoundStats;

    fn run(ok: u32, check: Option<bool>) -> BaselineRun {
        BaselineRun {
            rounds: Some(RoundStats::from_rounds(ok, &[1.0; 4])),
            exit: TargetExit::Signal(libc::SIGTERM),
            duration_ms: 100,
            usage: None,
            check_passed: check,
            workload_ms: None,
        }
    }

    #[test]
    fn a_flaky_service_baseline_goes_on_only_when_some_run_passed() {
        let dir = Path::new("/nonexistent");
        assert_eq!(
            service_flaky(&[run(4, None), run(4, Some(true))], dir).unwrap(),
            None
        );
        let flaky = service_flaky(&[run(4, None), run(3, Some(false))], dir)
            .unwrap()
            .unwrap();
        assert!(
            flaky.starts_with("baseline run 2: 3 of 4 rounds ok, the check failed"),
            "{flaky}"
        );
        assert!(matches!(
            service_flaky(&[run(3, None), run(2, None)], dir),
            Err(ExperimentError::NotSteady { .. })
        ));
    }
}
