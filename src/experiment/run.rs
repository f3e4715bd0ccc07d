//! The runs of one experiment: `phoebe inject` of each run (its seed derived from the campaign's, the
//! experiment's id and the run), with `--reset` before and `--check` and a post-injection plain run after, in
//! plain or service mode; each run judged ([`verdict`]).

use std::{ffi::OsString, fmt::Write as _, fs, path::Path, process::Command, time::Duration};

use super::{
    Campaign, Experiment, ExperimentError, Progress,
    assemble::{LogSums, NaturalShapes, RunFiles, evidence, steady_lines},
    leftovers::{self, Snapshot},
    service,
    store::Layout,
    suite,
    supervise::{self, Ran, exit_of, millis, plain, read_tail, shell},
    verdict,
};
use crate::{
    control::Control,
    files,
    model::{
        AchievedCounts, Baseline, ExperimentResult, InjectionLog, RunResult, TargetExit, Verdict, realism,
    },
};

pub(super) struct Runner<'a> {
    pub(super) campaign: &'a Campaign,
    pub(super) layout: &'a Layout,
    pub(super) phoebe: &'a Path,
    pub(super) control: &'a Control,
    /// Why the program fails even without injection, in one sentence, once a run left it so: the campaign stops.
    pub(super) broken: std::cell::RefCell<Option<String>>,
    /// The observer the baseline runs borrow ([`Runner::observe_command`]).
    pub(super) lending: std::cell::RefCell<Lending>,
    /// The lines the baseline runs printed ([`steady_lines`]), read once, at the first experiment that needs them.
    pub(super) steady: std::cell::OnceCell<std::collections::HashSet<String>>,
}

/// The campaign's own observer, started at the first baseline run that can borrow it
/// ([`crate::backend::Backend::campaign_observer`]).
pub(super) enum Lending {
    Untried,
    Lends(Box<dyn crate::backend::CampaignObserver>),
    /// The observer's backend has none, or it could not start: each run's `phoebe observe` starts its own
    /// (and says why, if it cannot either).
    Not,
}

/// A baseline run's hold on the campaign's observer: given back ([`crate::backend::CampaignObserver::reclaim`])
/// when dropped, once the run's `phoebe observe` has ended.
pub(super) struct Lent<'a>(pub(super) Option<&'a std::cell::RefCell<Lending>>);

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(lending) = self.0
            && let Lending::Lends(observer) = &mut *lending.borrow_mut()
        {
            observer.reclaim();
        }
    }
}

impl Runner<'_> {
    pub(super) fn target_args(&self) -> Vec<OsString> {
        self.campaign.command.iter().map(OsString::from).collect()
    }

    /// Runs `cmd` supervised ([`supervise::run`]), its output in `<base>.out` / `<base>.err` (appended to the
    /// whole name: `run-1.check` writes `run-1.check.out`).
    pub(super) fn supervised(
        &self,
        cmd: Command,
        base: &Path,
        timeout: Option<Duration>,
        what: &str,
    ) -> Result<Ran, ExperimentError> {
        supervise::run(cmd, base, timeout, what, self.control)
    }

    /// `phoebe inject` of one run of an experiment.
    /// With `switch_ack` (service mode), injection starts off and phoebe acknowledges each SIGUSR1/SIGUSR2 there.
    pub(super) fn inject_command(
        &self,
        exp: &Experiment,
        seed: u64,
        log: &Path,
        switch_ack: Option<&Path>,
    ) -> Command {
        let mut cmd = Command::new(self.phoebe);
        // Verdicts need every injection counted (a rule the filter ran in the kernel would look unexercised).
        cmd.args(["inject", "-q", "--count-all"]);
        if let Some(kind) = self.campaign.backend {
            cmd.args(["--backend", kind.name()]);
        }
        for fault in &exp.faults {
            cmd.arg("--fault").arg(fault.to_string());
        }
        cmd.arg("--seed").arg(seed.to_string()).arg("--log").arg(log);
        if let Some(ack) = switch_ack {
            cmd.arg("--start-off").arg("--switch-ack").arg(ack);
        }
        cmd.arg("--").args(self.target_args());
        cmd
    }

    pub(super) fn reset(&self, dir: &Path, name: &str) -> Result<(), ExperimentError> {
        if let Some(reset) = &self.campaign.reset {
            let ran = self.supervised(shell(reset), &dir.join(name), self.timeout_hint(), "--reset")?;
            if !ran.status.is_some_and(|s| s.success()) {
                return Err(ExperimentError::Inner {
                    what: format!("--reset `{reset}`"),
                    stderr: read_tail(&supervise::output_path(&dir.join(name), "err")),
                });
            }
        }
        Ok(())
    }

    /// Whether the program passes without injection, after `--reset` (`NAME.reset.*`): run plainly (`NAME.*`
    /// in `dir`, then `--check`), or in service mode started plainly to play its rounds.
    fn passes_plainly(&self, dir: &Path, name: &str, baseline: &Baseline) -> Result<bool, ExperimentError> {
        self.reset(dir, &format!("{name}.reset"))?;
        if self.campaign.service.is_some() {
            return self.service_passes_plainly(dir, name);
        }
        let timeout = Duration::from_millis(baseline.timeout_ms);
        self.plain_passes(
            dir,
            name,
            timeout,
            baseline.exit,
            "a plain run to check for damage",
        )
    }

    /// The program run plainly once (`NAME.out`, `NAME.err` in `dir`), then `--check`: whether it ended as the
    /// baseline did and the check passed.
    pub(super) fn plain_passes(
        &self,
        dir: &Path,
        name: &str,
        timeout: Duration,
        expected: TargetExit,
        what: &str,
    ) -> Result<bool, ExperimentError> {
        let ran = self.supervised(
            plain(&self.campaign.command),
            &dir.join(name),
            Some(timeout),
            what,
        )?;
        let exit = ran.status.filter(|_| !ran.timed_out).map(exit_of);
        let check = self.check(dir, &format!("{name}.check"), Some(timeout))?;
        Ok(exit == Some(expected) && check != Some(false))
    }

    /// After a run that may have left damage behind (its plain run after failed, or it hung and was killed; in
    /// service mode, the service died, never became ready, or failed a round or the check after injection):
    /// whether the program still fails without injection, after `--reset` — a plain run (the service started
    /// plainly, its rounds and check), `health-K` in the experiment's directory. The damage a run leaves (files
    /// a crash did not clean up, a lock a killed process held, a database left half-written) would fail every
    /// run after it, and the campaign would blame their faults: when it persists, the runner is marked broken and
    /// the campaign stops. Not with a baseline accepted as flaky (a plain run may fail anyway). The sentence
    /// names the health run's files, the tests it broke, and the entries new since `before` (the names in the
    /// working and temporary directories as run `k` started) that are still there.
    fn still_broken(
        &self,
        exp: &Experiment,
        k: u32,
        baseline: &Baseline,
        hung: bool,
        before: &Snapshot,
    ) -> Result<bool, ExperimentError> {
        if baseline.flaky.is_some() {
            return Ok(false);
        }
        let rel = format!("experiments/{}", exp.id);
        if self.passes_plainly(&self.layout.path(&rel), &format!("health-{k}"), baseline)? {
            return Ok(false);
        }
        let service = self.campaign.service.is_some();
        let what = match (service, hung, self.campaign.reset.is_some()) {
            (true, _, false) => {
                "left the service failing without injection: started again plainly, it did not pass its rounds and \
                 check"
            }
            (true, _, true) => {
                "left the service failing without injection: started again plainly after --reset, it did not pass \
                 its rounds and check"
            }
            (false, false, false) => {
                "left the program failing without injection: the plain run after it failed, and so did a second one"
            }
            (false, false, true) => {
                "left the program failing without injection: the plain run after it failed, and so did one after \
                 --reset"
            }
            (false, true, false) => "hung and was killed, and the program failed without injection after it",
            (false, true, true) => {
                "hung and was killed, and the program failed without injection after it and --reset"
            }
        };
        let dir = self.layout.path(&rel);
        // The files of the health run that say something (a test suite prints its failures on stdout).
        let said: Vec<String> = ["out", "err"]
            .iter()
            .filter(|ext| fs::metadata(dir.join(format!("health-{k}.{ext}"))).is_ok_and(|m| m.len() > 0))
            .map(|ext| format!("{rel}/health-{k}.{ext}"))
            .collect();
        let files = if said.is_empty() {
            format!("{rel}/health-{k}.err")
        } else {
            said.join(", ")
        };
        // Which tests the damage breaks, when the program is a test suite whose output says.
        let tests = if service || self.campaign.tests.is_some() {
            Vec::new()
        } else {
            let baseline_dir = self.layout.path("baseline");
            let base: Vec<_> = (1..=baseline.runs.len())
                .map(|b| suite::run_results(&baseline_dir, &format!("run-{b}"), false))
                .collect();
            suite::broken(&base, &[suite::run_results(&dir, &format!("health-{k}"), false)])
        };
        let tests = match tests.as_slice() {
            [] => String::new(),
            [one] => format!("; broke {one}"),
            many => format!("; broke {} tests: {}", many.len(), many.join(", ")),
        };
        let left = leftovers::clause(k, &before.new_since());
        *self.broken.borrow_mut() = Some(format!(
            "{} run {k} {what} ({files}{tests}), so every run after it would be judged on a broken program{left}",
            exp.id
        ));
        Ok(true)
    }

    /// Before the first experiment of a resumed campaign: whether the program fails without injection already
    /// (a run of the interrupted or stopped campaign left damage behind), after `--reset` — a plain run,
    /// `health` in the campaign directory. Marks the runner broken, so that no experiment is blamed for it.
    pub(super) fn broken_before(&self, baseline: &Baseline) -> Result<bool, ExperimentError> {
        if baseline.flaky.is_some() {
            return Ok(false);
        }
        if self.passes_plainly(&self.layout.path(""), "health", baseline)? {
            return Ok(false);
        }
        *self.broken.borrow_mut() = Some(
            "the program fails without injection before any experiment of this resume ran (health.err): a run \
             before it left damage behind, and every experiment would be judged on a broken program"
                .to_owned(),
        );
        Ok(true)
    }

    pub(super) fn timeout_hint(&self) -> Option<Duration> {
        self.campaign.timeout_ms.map(Duration::from_millis)
    }

    pub(super) fn check(
        &self,
        dir: &Path,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<bool>, ExperimentError> {
        match &self.campaign.check {
            None => Ok(None),
            Some(check) => {
                let ran = self.supervised(shell(check), &dir.join(name), timeout, "--check")?;
                Ok(Some(!ran.timed_out && ran.status.is_some_and(|s| s.success())))
            }
        }
    }

    /// All runs of one experiment after the `earlier` ones (those a campaign that stopped in it kept); `None`
    /// when interrupted before the last. `more_after`: another experiment of the campaign may run after this one
    /// (damage a run leaves matters to the runs after it only).
    pub(super) fn experiment(
        &self,
        exp: &Experiment,
        baseline: &Baseline,
        natural: Option<&NaturalShapes>,
        progress: &dyn Progress,
        more_after: bool,
        earlier: Vec<RunResult>,
    ) -> Result<Option<ExperimentResult>, ExperimentError> {
        let rel = format!("experiments/{}", exp.id);
        let dir = self.layout.mkdir(&rel)?;
        let timeout = Duration::from_millis(baseline.timeout_ms);
        let junit = self.campaign.tests.is_some();
        // The baseline runs' test results, read once: for the runs' details and the tests the experiment broke.
        let base: Vec<suite::Results> = if self.campaign.service.is_none() {
            let baseline_dir = self.layout.path("baseline");
            (1..=baseline.runs.len())
                .map(|b| suite::run_results(&baseline_dir, &format!("run-{b}"), junit))
                .collect()
        } else {
            Vec::new()
        };
        // Every baseline run's output is a test suite's (libtest, pytest, JUnit files).
        let baseline_suite = !base.is_empty() && base.iter().all(|b| b.suite);
        let steady = self
            .steady
            .get_or_init(|| steady_lines(&self.layout.path("baseline"), baseline.runs.len()));
        let mut runs = earlier;
        for k in (runs.len() as u32 + 1)..=self.campaign.runs {
            self.reset(&dir, &format!("run-{k}.reset"))?;
            // What the run may leave behind is what is new after it.
            let before = Snapshot::take();
            // Where the program's own log files end now: the evidence reads what the run appends.
            let log_marks = program_log_marks(&self.campaign.log_files);
            let seed = derive_seed(self.campaign.seed, &exp.id, k);
            let log_path = dir.join(format!("run-{k}.log.json"));
            let _ = fs::remove_file(&log_path);
            if self.campaign.service.is_some() {
                let ack = dir.join(format!("run-{k}.switch"));
                let _ = fs::remove_file(&ack);
                let cmd = self.inject_command(exp, seed, &log_path, Some(&ack));
                let inject = args_of(&cmd);
                let Some(run) = self.service_experiment_run(&dir, k, cmd, &ack)? else {
                    return Ok(None);
                };
                let log = service::service_log(&log_path);
                let LogSums {
                    injected,
                    matched,
                    natural: natural_failures,
                    usage,
                    realistic,
                    raised,
                    guarded,
                } = LogSums::of(log.as_ref(), natural);
                let exit = log.as_ref().and_then(|l| l.exit);
                let (verdict, detail) = verdict::judge_service(&verdict::ServiceEvidence {
                    died: if run.died {
                        Some(exit.unwrap_or(TargetExit::Code(-1)))
                    } else {
                        None
                    },
                    never_ready: run.never_ready,
                    round_hung: run.round_hung,
                    injected,
                    matched,
                    rounds: run.rounds,
                    check_passed: run.check_passed,
                    tolerance: self.service().tolerance,
                    raised,
                    peer: !exp.faults.is_empty() && exp.faults.iter().all(realism::peer_failure),
                    guarded,
                    log_lost: log.is_none(),
                });
                progress.run_done();
                let evidence = evidence(
                    &RunFiles {
                        dir: &dir,
                        rel: &rel,
                        run: k,
                        verdict,
                        log: log.as_ref(),
                        program_logs: &log_marks,
                        check_failed: run.check_passed == Some(false),
                        steady,
                        failed_round: run.failed_round.as_deref(),
                    },
                    self.phoebe,
                    &inject,
                );
                runs.push(RunResult {
                    evidence,
                    run: k,
                    seed,
                    verdict,
                    detail,
                    exit,
                    duration_ms: millis(run.wall),
                    usage,
                    matched,
                    injected,
                    natural: natural_failures,
                    achieved_counts: AchievedCounts::of(natural_failures),
                    realistic,
                    check_passed: run.check_passed,
                    post_run_passed: Some(run.rounds.after.all_ok()),
                    log: format!("{rel}/run-{k}.log.json"),
                    rounds: Some(run.rounds),
                    settles: false,
                });
                // A service that died, hung or failed after injection may have left its state broken.
                let damaged = run.died
                    || run.never_ready
                    || run.round_hung
                    || !run.rounds.after.all_ok()
                    || run.check_passed == Some(false);
                if damaged
                    && (k < self.campaign.runs || more_after)
                    && self.still_broken(exp, k, baseline, false, &before)?
                {
                    break;
                }
                continue;
            }
            let cmd = self.inject_command(exp, seed, &log_path, None);
            let inject = args_of(&cmd);
            let started = std::time::SystemTime::now();
            let ran = self.supervised(
                cmd,
                &dir.join(format!("run-{k}")),
                Some(timeout),
                "an experiment run",
            )?;
            if ran.timed_out {
                // Killed at the timeout: what it left behind goes before the next run starts.
                supervise::settle();
            }
            if let Some(pattern) = &self.campaign.tests {
                suite::keep_junit(pattern, started, &dir, &format!("run-{k}"));
            }
            if self.control.interrupted() {
                return Ok(None);
            }
            let log: Option<InjectionLog> = files::load(&log_path, "injection log").ok();
            if log.is_none() && !ran.timed_out {
                return Err(ExperimentError::Inner {
                    what: format!("experiment {} run {k}", exp.id),
                    stderr: read_tail(&dir.join(format!("run-{k}.err"))),
                });
            }
            let LogSums {
                injected,
                matched,
                natural: natural_failures,
                usage,
                realistic,
                raised,
                guarded,
            } = LogSums::of(log.as_ref(), natural);
            let exit = log
                .as_ref()
                .and_then(|l| l.exit)
                .filter(|_| !ran.timed_out)
                .or_else(|| ran.status.filter(|_| !ran.timed_out).map(exit_of));
            let exercised = injected > 0;
            let check_passed = if ran.timed_out || !exercised {
                None
            } else {
                self.check(&dir, &format!("run-{k}.check"), Some(timeout))?
            };
            // Not when a plain run after a plain run fails already (the baseline's rerun): it would say nothing.
            let post_run_passed = if ran.timed_out || !exercised || !baseline.rerun_judges_damage() {
                None
            } else {
                Some(self.plain_passes(
                    &dir,
                    &format!("post-{k}"),
                    timeout,
                    baseline.exit,
                    "the post-injection run",
                )?)
            };
            // Every call of the fault's class reached its rule and was kept out by a guard.
            let guarded_out =
                matched == 0 && injected == 0 && !ran.timed_out && guarded.iter().any(|(_, n)| *n > 0);
            let (verdict, mut detail) = verdict::judge(&verdict::Evidence {
                baseline: baseline.exit,
                exit,
                timed_out: ran.timed_out,
                matched,
                injected,
                log_lost: log.is_none(),
                check_passed,
                post_run_passed,
                raised,
                guarded,
            });
            // A fault that stopped the test runner itself (pytest dying in its plugin discovery) breaks no test of
            // the suite: said, so that the finding is not read as the code under test failing. Only of a run that
            // ended on its own: a crashed or killed run may not have written what it printed.
            if matches!(verdict, Verdict::Failed | Verdict::Corrupted)
                && matches!(exit, Some(TargetExit::Code(_)))
                && baseline_suite
                && !suite::run_results(&dir, &format!("run-{k}"), junit).suite
            {
                detail.push_str(suite::RAN_NONE);
            }
            // The guards kept out every call of the first run: they are decided by what the calls are (the file
            // system a file is on, the handlers the process installs, the peer of a socket), which the same
            // program's calls are in every run. The runs after would say the same, and are not made.
            let settles = k == 1 && verdict == Verdict::NotExercised && guarded_out && self.campaign.runs > 1;
            if settles {
                let _ = write!(
                    detail,
                    "; the other {} run(s) were not made: its guards decide on what the calls are, which the same \
                     program's calls are in every run",
                    self.campaign.runs - 1
                );
            }
            progress.run_done();
            let evidence = evidence(
                &RunFiles {
                    dir: &dir,
                    rel: &rel,
                    run: k,
                    verdict,
                    log: log.as_ref(),
                    program_logs: &log_marks,
                    check_failed: check_passed == Some(false),
                    steady,
                    failed_round: None,
                },
                self.phoebe,
                &inject,
            );
            runs.push(RunResult {
                evidence,
                rounds: None,
                run: k,
                seed,
                verdict,
                detail,
                exit,
                duration_ms: millis(ran.wall),
                usage,
                matched,
                injected,
                natural: natural_failures,
                achieved_counts: AchievedCounts::of(natural_failures),
                realistic,
                check_passed,
                post_run_passed,
                log: format!("{rel}/run-{k}.log.json"),
                settles,
            });
            if self.control.interrupted() {
                return Ok(None);
            }
            if settles {
                // The runs not made are done too, for the progress bar.
                for _ in 1..self.campaign.runs {
                    progress.run_done();
                }
                break;
            }
            // A run whose plain run after failed, or that hung and was killed, may have left damage behind that
            // would fail every run after it.
            if (post_run_passed == Some(false) || ran.timed_out)
                && (k < self.campaign.runs || more_after)
                && self.still_broken(exp, k, baseline, ran.timed_out, &before)?
            {
                break;
            }
        }
        let done = runs.len() as u32;
        let mut result =
            ExperimentResult::from_runs(exp.id.clone(), exp.faults.clone(), exp.model.clone(), runs);
        if self.campaign.service.is_none() {
            let ran: Vec<_> = (1..=done)
                .map(|k| suite::run_results(&dir, &format!("run-{k}"), junit))
                .collect();
            result.broken_tests = suite::broken(&base, &ran);
        }
        Ok(Some(result))
    }
}

/// A command's arguments (without the program), as strings.
fn args_of(cmd: &Command) -> Vec<String> {
    cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
}

/// The seed of run `run` of experiment `id`: stable across resumes and shards.
pub fn derive_seed(campaign: u64, id: &str, run: u32) -> u64 {
    // FNV-1a over the id, then the decision engine's SplitMix64 finalizer: stable forever, no dependency.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    crate::decide::policy::mix(campaign ^ h ^ (u64::from(run) << 32))
}

/// Each `--log-file` with its length now (0 when it does not exist yet): what a run appends starts there.
fn program_log_marks(files: &[std::path::PathBuf]) -> Vec<(std::path::PathBuf, u64)> {
    files
        .iter()
        .map(|f| (f.clone(), fs::metadata(f).map_or(0, |m| m.len())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_per_run_and_experiment_and_are_stable() {
        assert_ne!(
            derive_seed(1, "openat-ENOENT", 1),
            derive_seed(1, "openat-ENOENT", 2)
        );
        assert_ne!(derive_seed(1, "openat-ENOENT", 1), derive_seed(1, "read-EIO", 1));
        assert_eq!(
            derive_seed(1, "openat-ENOENT", 1),
            derive_seed(1, "openat-ENOENT", 1)
        );
    }
}
