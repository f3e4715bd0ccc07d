//! Service mode (DESIGN §7): the target is started once per run and kept running; a workload is played against
//! it in rounds — steady state, then with injection switched on at run time (no restart), then switched off —
//! and the rounds after injection show whether it recovered.
//!
//! The injection switch is `phoebe inject --start-off` plus SIGUSR1/SIGUSR2 to that phoebe process (never to the
//! target's group, where SIGUSR1 would kill the service).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use super::{
    ExperimentError,
    run::Runner,
    supervise::{self, Started, millis, plain, read_tail, shell},
};
use crate::{
    files,
    model::{BaselineRun, InjectionLog, Observation, RoundStats, Rounds, TargetExit},
};

/// How to drive a service target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Shell command that succeeds once the service accepts work.
    pub ready: String,
    /// Shell command that plays one round of the workload; exit 0 = the round succeeded.
    pub workload: String,
    /// Rounds per phase (steady, injecting, after).
    pub rounds: u32,
    /// `--tolerance`: rounds that may fail while injecting without making the run `failed` (0: none may).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tolerance: u32,
    /// `--recovery`: milliseconds between switching injection off and the check and "after" rounds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recovery_ms: u64,
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

/// What waiting for readiness found.
enum Ready {
    Yes,
    Died,
    TimedOut,
    /// The `--ready` command itself cannot run: the shell said 126 (not executable) or 127 (not found). Asking
    /// again cannot help, and the service is not to blame.
    Broken(i32),
}

/// One service-mode run as observed.
pub struct ServiceRun {
    pub rounds: Rounds,
    /// The service ended by itself before phoebe stopped it.
    pub died: bool,
    pub never_ready: bool,
    /// A round got no answer within the round timeout.
    pub round_hung: bool,
    /// The first round that failed while injecting or after (`run-1-injected-round-3`), whose output says what
    /// the workload met.
    pub failed_round: Option<String>,
    pub check_passed: Option<bool>,
    pub wall: Duration,
}

impl Runner<'_> {
    pub(super) fn service(&self) -> &ServiceSpec {
        self.campaign.service.as_ref().expect("service mode")
    }

    fn ready_timeout(&self) -> Duration {
        self.timeout_hint().unwrap_or(Duration::from_secs(30))
    }

    fn round_timeout(&self) -> Duration {
        self.timeout_hint().unwrap_or(Duration::from_secs(10))
    }

    fn wait_ready(&self, started: &mut Started, dir: &Path, name: &str) -> Result<Ready, ExperimentError> {
        let deadline = crate::time::deadline(Instant::now(), self.ready_timeout());
        let ready = self.service().ready.clone();
        loop {
            if let Ok(Some(_)) = started.child.try_wait() {
                return Ok(Ready::Died);
            }
            let probe = self.supervised(
                shell(&ready),
                &dir.join(name),
                Some(Duration::from_secs(5)),
                "--ready",
            )?;
            if probe.status.is_some_and(|s| s.success()) {
                return Ok(Ready::Yes);
            }
            if let Some(code @ (126 | 127)) = probe.status.and_then(|s| s.code()) {
                return Ok(Ready::Broken(code));
            }
            if Instant::now() >= deadline || self.control.interrupted() {
                return Ok(Ready::TimedOut);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Plays `n` rounds of the workload against `service`; also says whether one of them got no answer in time,
    /// and the name of the first played round that failed (`LABEL-round-N`).
    /// Once the service has ended the rounds left are not played and count as failed: each would only wait for
    /// the workload's own timeout (redis-benchmark against a Redis that exited on an AOF write error took the
    /// whole round timeout, 10 s, apiece).
    fn rounds(
        &self,
        service: &mut Started,
        dir: &Path,
        label: &str,
        n: u32,
    ) -> Result<(RoundStats, bool, Option<String>), ExperimentError> {
        let workload = self.service().workload.clone();
        let mut ok = 0;
        let mut hung = false;
        let mut latencies_ms = Vec::with_capacity(n as usize);
        let mut passed = Vec::with_capacity(n as usize);
        let mut ended = false;
        let mut first_failed = None;
        for r in 1..=n {
            if self.control.interrupted() {
                break;
            }
            if matches!(service.child.try_wait(), Ok(Some(_))) {
                ended = true;
                break;
            }
            let ran = self.supervised(
                shell(&workload),
                &dir.join(format!("{label}-round-{r}")),
                Some(self.round_timeout()),
                "--workload",
            )?;
            latencies_ms.push(ran.wall.as_secs_f64() * 1000.0);
            hung |= ran.timed_out;
            let this = !ran.timed_out && ran.status.is_some_and(|s| s.success());
            if !this && first_failed.is_none() {
                first_failed = Some(format!("{label}-round-{r}"));
            }
            ok += u32::from(this);
            passed.push(this);
        }
        let stats = RoundStats::from_rounds(ok, &latencies_ms).with_recovery(&passed, &latencies_ms);
        Ok((if ended { stats.out_of(n) } else { stats }, hung, first_failed))
    }

    /// The service started plainly (no phoebe: `NAME.out`/`.err` in `dir`), ready, `rounds` rounds and the check,
    /// stopped: whether it became ready, every round succeeded and the check passed.
    pub(super) fn service_passes_plainly(&self, dir: &Path, name: &str) -> Result<bool, ExperimentError> {
        let mut started = supervise::start(
            plain(&self.campaign.command),
            &dir.join(name),
            "a plain service run",
        )?;
        let passed = match self.wait_ready(&mut started, dir, &format!("{name}.ready"))? {
            Ready::Yes => {
                let (rounds, hung, _) = self.rounds(&mut started, dir, name, self.service().rounds)?;
                let check = self.check(dir, &format!("{name}.check"), self.timeout_hint())?;
                !hung && rounds.all_ok() && check != Some(false)
            }
            Ready::Died | Ready::TimedOut | Ready::Broken(_) => false,
        };
        supervise::stop(&mut started);
        Ok(passed)
    }

    /// One baseline run of a service: observed, ready, `rounds` rounds that must all succeed, stopped.
    pub(super) fn service_baseline_run(
        &self,
        dir: &Path,
        k: u32,
    ) -> Result<Option<BaselineRun>, ExperimentError> {
        let obs_path = dir.join(format!("run-{k}.observation.json"));
        // Given back when this function returns, after every path out of it has stopped the service.
        let (cmd, _lent) = self.observe_command(&obs_path);
        let began = Instant::now();
        let mut started = supervise::start(cmd, &dir.join(format!("run-{k}")), "the baseline")?;
        let ready = self.wait_ready(&mut started, dir, &format!("run-{k}.ready"))?;
        if self.control.interrupted() {
            supervise::stop(&mut started);
            return Ok(None);
        }
        match ready {
            Ready::Yes => {}
            Ready::Died => {
                supervise::stop(&mut started);
                return Err(ExperimentError::Inner {
                    what: format!("baseline run {k}: the service ended before it became ready (--ready)"),
                    stderr: read_tail(&dir.join(format!("run-{k}.err"))),
                });
            }
            // What the last probe said is what tells why; the service's own output, what it did meanwhile.
            Ready::TimedOut => {
                supervise::stop(&mut started);
                return Err(ExperimentError::Inner {
                    what: format!(
                        "baseline run {k}: the service never became ready: the --ready command never succeeded \
                         (its last output in run-{k}.ready.out/.err; the service's in run-{k}.out/.err); its last \
                         probe"
                    ),
                    stderr: read_tail(&dir.join(format!("run-{k}.ready.err"))),
                });
            }
            Ready::Broken(code) => {
                supervise::stop(&mut started);
                return Err(ExperimentError::Inner {
                    what: format!(
                        "baseline run {k}: the --ready command cannot run (exit {code}: {})",
                        if code == 127 {
                            "command not found"
                        } else {
                            "not executable"
                        }
                    ),
                    stderr: read_tail(&dir.join(format!("run-{k}.ready.err"))),
                });
            }
        }
        let workload_from = began.elapsed();
        let (rounds, hung, _) = self.rounds(&mut started, dir, &format!("run-{k}"), self.service().rounds)?;
        let workload_to = began.elapsed();
        let ended = matches!(started.child.try_wait(), Ok(Some(_)));
        let check_passed = self.check(dir, &format!("run-{k}.check"), self.timeout_hint())?;
        supervise::stop(&mut started);
        if self.control.interrupted() {
            return Ok(None);
        }
        // With --accept-flaky-baseline a failing run is kept; the baseline as a whole decides (`service_flaky`).
        let accept = self.campaign.accept_flaky_baseline;
        if ended && !accept {
            let exit = files::load::<Observation>(&obs_path, "observation")
                .ok()
                .and_then(|obs| obs.exit)
                .map_or_else(|| "how is unknown".to_owned(), |exit| exit.to_string());
            return Err(ExperimentError::Inner {
                what: format!(
                    "baseline run {k}: the service ended during the workload, without injection ({exit}; {} of {} \
                     rounds ok; its output in run-{k}.out/.err)",
                    rounds.ok, rounds.total
                ),
                stderr: read_tail(&dir.join(format!("run-{k}.err"))),
            });
        }
        if (hung || !rounds.all_ok()) && !accept {
            return Err(ExperimentError::Inner {
                what: format!(
                    "baseline run {k}: the workload fails without injection ({} of {} rounds ok)",
                    rounds.ok, rounds.total
                ),
                stderr: read_tail(&dir.join(format!("run-{k}-round-1.err"))),
            });
        }
        if check_passed == Some(false) && !accept {
            return Err(ExperimentError::NotSteady {
                sentence: format!(
                    "the check fails without any injection (after baseline run {k}); fix the check or the \
                     service first"
                ),
                output: dir.join(format!("run-{k}.check.err")),
            });
        }
        let obs: Observation = files::load(&obs_path, "observation")?;
        Ok(Some(BaselineRun {
            rounds: Some(rounds),
            exit: obs.exit.unwrap_or(TargetExit::Signal(libc::SIGTERM)),
            duration_ms: millis(began.elapsed()),
            usage: obs.usage,
            check_passed,
            // From the inner observer's spawn, a few milliseconds before the service's exec, where the
            // observation's clock starts; `store::merged_observation` moves the end back by phoebe's own time.
            workload_ms: Some([millis(workload_from), millis(workload_to)]),
        }))
    }

    /// One experiment run of a service: started with injection off, steady rounds, switched on, rounds, switched
    /// off, check and rounds again, stopped. `None` when interrupted.
    pub(super) fn service_experiment_run(
        &self,
        dir: &Path,
        k: u32,
        inject: Command,
        ack: &Path,
    ) -> Result<Option<ServiceRun>, ExperimentError> {
        let began = Instant::now();
        let mut started = supervise::start(inject, &dir.join(format!("run-{k}")), "an experiment run")?;
        let phoebe_pid = nix::unistd::Pid::from_raw(started.pgid);
        let mut switches = 0;
        let mut switch = |on: bool, started: &mut Started| {
            let sig = if on {
                nix::sys::signal::Signal::SIGUSR1
            } else {
                nix::sys::signal::Signal::SIGUSR2
            };
            // ESRCH: phoebe (and so the service) already ended, which the run reports.
            if nix::sys::signal::kill(phoebe_pid, sig).is_ok() {
                switches += 1;
                // A signal takes effect a moment after kill(2) returns: the rounds wait until phoebe says it has.
                wait_for_switch(ack, switches, started);
            }
        };
        let mut run = ServiceRun {
            rounds: Rounds::default(),
            died: false,
            never_ready: false,
            round_hung: false,
            failed_round: None,
            check_passed: None,
            wall: Duration::ZERO,
        };
        match self.wait_ready(&mut started, dir, &format!("run-{k}.ready"))? {
            Ready::Yes => {
                let n = self.service().rounds;
                let (steady, h1, _) = self.rounds(&mut started, dir, &format!("run-{k}-steady"), n)?;
                switch(true, &mut started);
                let (injected, h2, failed_injecting) =
                    self.rounds(&mut started, dir, &format!("run-{k}-injected"), n)?;
                switch(false, &mut started);
                // --recovery: the service's grace to recover before it is judged; Ctrl-C cuts it short.
                let recovered = Instant::now() + Duration::from_millis(self.service().recovery_ms);
                while Instant::now() < recovered && !self.control.interrupted() {
                    std::thread::sleep(
                        recovered
                            .saturating_duration_since(Instant::now())
                            .min(Duration::from_millis(50)),
                    );
                }
                let (after, h3, failed_after) =
                    self.rounds(&mut started, dir, &format!("run-{k}-after"), n)?;
                run.failed_round = failed_injecting.or(failed_after);
                // Last: the state the service is left in, once it has had the rounds after to come back (PostgreSQL
                // in crash recovery refuses connections for a moment, and a check right after the switch said
                // `corrupted` of a service that recovered by itself).
                run.check_passed = self.check(dir, &format!("run-{k}.check"), self.timeout_hint())?;
                run.rounds = Rounds {
                    steady,
                    injected,
                    after,
                };
                run.round_hung = h1 || h2 || h3;
            }
            Ready::Died => {}
            Ready::TimedOut | Ready::Broken(_) => run.never_ready = true,
        }
        run.died = matches!(started.child.try_wait(), Ok(Some(_)));
        let interrupted = self.control.interrupted();
        supervise::stop(&mut started);
        run.wall = began.elapsed();
        Ok((!interrupted).then_some(run))
    }
}

/// Waits until phoebe has acknowledged its `count`th switch in `ack` (`inject --switch-ack`), phoebe has ended,
/// or 10 s have passed (a phoebe too busy to run its switch thread for that long: the rounds go on and the
/// injection log shows what was injected when).
fn wait_for_switch(ack: &Path, count: usize, started: &mut Started) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let acknowledged = std::fs::read_to_string(ack).map_or(0, |text| text.lines().count());
        if acknowledged >= count || matches!(started.child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    tracing::warn!(ack = %ack.display(), "phoebe did not acknowledge the injection switch within 10 s");
}

/// The injection log a service run left (it is written when phoebe stops the service).
pub(super) fn service_log(path: &Path) -> Option<InjectionLog> {
    files::load(path, "injection log").ok()
}
