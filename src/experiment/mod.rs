//! The orchestrator of `phoebe exec` (DESIGN §7): baseline runs, synthesis, one experiment per model × runs,
//! post-checks, verdicts, resume and shards.
//!
//! Every run of the target is a separate `phoebe observe` / `phoebe inject` process (the same binary), in a
//! process group of its own: a crash or a hang in one run cannot take the campaign down, a timeout kills the
//! whole group, and each run's CPU and memory are its own. Every file is written atomically as soon as it is
//! known, so an interrupted campaign loses nothing: `--resume DIR` skips the experiments that have a result.
//!
//! Owns the order of a campaign ([`run`]) and its errors; each concern has its file:
//! - `campaign`: the campaign type (`campaign.json`), shards, fingerprint and differences;
//! - `store`: the directory layout, the fingerprinted parts (load/save) and what a resume reads back;
//! - `select`: experiment ids, this shard's share, what the backend skips, a backend this machine cannot run;
//! - `supervise`: spawn with containment, wait with a deadline, kill (plain and service mode alike);
//! - `hung`: what a run's threads were waiting in when its timeout came;
//! - `baseline`, `run`: the baseline runs, and the runs of one experiment (seeds included);
//! - `service`: service mode's runs (ready, rounds, the injection switch);
//! - `assemble`: a run's sums from its log, and the [`Report`];
//! - `suite`: which test broke (a suite's results from a run's output or JUnit files);
//! - `leftovers`: what a run left behind in the working and temporary directories, named when it broke the
//!   program;
//! - `verdict`: judging (pure); `check`: a `campaign.json` read back.
//!
//! Does not own: deciding (`crate::decide`), synthesis (`crate::synth`), rendering (`crate::report`).
//!
//! A crate of its own (`phoebe-campaign`, `src/experiment`) on the core, the sys layer, the backends and the
//! renderers; `phoebe` re-exports it as `experiment`.

mod assemble;
mod baseline;

// The crates below, under the names the campaign's files use (as `phoebe` re-exports them).
use phoebe_backend as backend;
use phoebe_backend_common::control;
use phoebe_core::{decide, files, model, synth, time};
use phoebe_report as report;
use phoebe_sys as sys;

/// The error types whose hints a campaign's errors can carry and the advice they give: this crate's
/// `ExperimentError` and, below it, every backend's and the sys layer's (`backend::hints_of`), the renderers'
/// `MergeError`. `phoebe`'s `hint::of` extends it with the monitor's.
pub mod hint {
    use std::{borrow::Cow, error::Error};

    pub use phoebe_core::hint::{Hint, Hinted, WithHint, ask};

    /// The hints `e` itself gives (not its causes'), in order: none unless its type is one of the above.
    pub fn of<'e>(e: &'e (dyn Error + 'static)) -> Vec<Cow<'e, str>> {
        let mut hints = phoebe_backend::hints_of(e);
        hints.extend(ask::<super::ExperimentError>(e));
        hints.extend(ask::<phoebe_report::merge::MergeError>(e));
        hints
    }

    /// An error and its causes in words, with the hints [`of`] finds (this crate's tests; `phoebe`'s `main`
    /// asks `phoebe::hint::chain`, whose registry is this one and the monitor's).
    #[cfg(test)]
    pub(crate) fn chain(e: &(dyn Error + 'static)) -> phoebe_sys::error::Chain {
        phoebe_sys::error::Chain::asking(e, of)
    }
}
mod campaign;
mod check;
mod hung;
mod leftovers;
#[cfg(any(test, feature = "fuzzing"))]
pub use self::check::fuzzing;
mod run;
mod select;
pub mod service;
mod store;
pub mod suite;
mod supervise;
pub mod verdict;

use std::{
    borrow::Cow,
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

pub use self::{
    campaign::{AUTO_BACKEND, Campaign, Difference, Observer, Shard},
    run::derive_seed,
    select::{Experiment, check_ids, experiments, fallback_backend, skip_reason},
};
use self::{
    run::Runner,
    select::{backend_usable, share},
    store::{Layout, Versioned, load_versioned, merged_observation},
};
use crate::{
    control::Control,
    files::FileError,
    hint::{Hint, Hinted},
    model::{Baseline, Excluded, ExperimentResult, Plan, Report, Skipped},
};

/// Why a campaign could not run. Setup problems: `phoebe exec` exits 2 on them.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot create {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {what}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {stderr}")]
    Inner { what: String, stderr: String },
    #[error("{sentence}")]
    NotSteady { sentence: String, output: PathBuf },
    #[error("a baseline run of the target timed out after {0:?}")]
    BaselineHung(Duration),
    #[error(
        "the {backend} backend cannot run any of the {count} experiment(s) of the campaign in {} ({ids}); {first}",
        dir.display()
    )]
    NothingRunnable {
        backend: String,
        dir: PathBuf,
        count: usize,
        /// The ids, the first few.
        ids: String,
        /// `id: reason` of the first.
        first: String,
        /// What the first one's refusal advises.
        first_hint: Option<Hint>,
        fallback: &'static str,
    },
    #[error(
        "{}: model id '{id}' is not a plain name (letters, digits, '-', '_', '+', '.'; not starting with '.'), and \
         the experiment's files are named after it",
        file.display()
    )]
    BadId { file: PathBuf, id: String },
    #[error(transparent)]
    Synthesis(#[from] synth::SettingError),
    #[error(
        "{} holds a campaign with {flag} {saved}, not {flag} {given}, so its results would not be this \
         campaign's",
        dir.display(), flag = difference.flag, saved = difference.saved, given = difference.given
    )]
    OtherSettings { dir: PathBuf, difference: Difference },
    #[error(
        "{} was written by another campaign (fingerprint {found}) than the one in {} ({wanted}), so it cannot \
         be reused",
        path.display(), campaign.display()
    )]
    StaleFile {
        path: PathBuf,
        campaign: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("the {observer} backend cannot observe on this machine (--observer {observer}): {reason}")]
    ObserverUnavailable {
        observer: &'static str,
        reason: String,
        hint: String,
    },
    #[error("the {backend} backend cannot inject on this machine: {reason}")]
    BackendUnavailable {
        backend: String,
        reason: String,
        hint: String,
    },
    #[error("{} holds a campaign for '{}', not for '{}'", dir.display(), found.join(" "), wanted.join(" "))]
    OtherCampaign {
        dir: PathBuf,
        found: Vec<String>,
        wanted: Vec<String>,
    },
}

impl Hinted for ExperimentError {
    fn hint(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            ExperimentError::File(e) => return e.hint(),
            ExperimentError::NotSteady { output, .. } => {
                format!("what the program printed is in {}", output.display()).into()
            }
            ExperimentError::BaselineHung(_) => "raise --timeout".into(),
            ExperimentError::NothingRunnable { fallback, .. } => {
                format!("start the campaign with --backend {fallback}").into()
            }
            ExperimentError::BadId { .. } => "rename the model, e.g. openat-ENOENT".into(),
            ExperimentError::OtherSettings { difference, .. } => format!(
                "resume it without {}, or {}",
                difference.flag,
                Hint::NewCampaignElsewhere
            )
            .into(),
            ExperimentError::StaleFile { .. } => Hint::NewCampaignElsewhere.into(),
            ExperimentError::ObserverUnavailable { hint, .. }
            | ExperimentError::BackendUnavailable { hint, .. } => hint.as_str().into(),
            ExperimentError::OtherCampaign { dir, .. } => format!(
                "use another --out, or --resume {} without a command",
                dir.display()
            )
            .into(),
            ExperimentError::Dir { .. }
            | ExperimentError::Spawn { .. }
            | ExperimentError::Inner { .. }
            | ExperimentError::Synthesis(_) => return None,
        })
    }

    /// A campaign that can run nothing says first what the first refusal advises.
    fn hints(&self) -> Vec<Cow<'_, str>> {
        let first = match self {
            ExperimentError::NothingRunnable { first_hint, .. } => first_hint.map(Cow::from),
            _ => None,
        };
        first.into_iter().chain(self.hint()).collect()
    }
}

/// Progress of a campaign, for the CLI's progress bar.
pub trait Progress {
    /// The number of runs about to happen (baseline included), once known.
    fn total(&self, runs: u64);
    /// A phase or an experiment starts.
    fn message(&self, text: &str);
    /// One run finished.
    fn run_done(&self);
    /// A whole experiment finished (or was found finished, when resuming).
    fn experiment_done(&self, result: &ExperimentResult, resumed: bool);
    /// Before the first experiment, once, when the backend cannot run some of the `of` experiments to run.
    fn skipped(&self, backend: &str, skipped: &[Skipped], of: usize);
}

/// Takes out of `plan` the rules for files inside the campaign directory `out`: phoebe's own captures of the
/// target's stdout and stderr (`baseline/run-1.err`), whose path differs in every run, so that a rule naming one
/// matches nothing in the experiments — and says so in `excluded`. Disk errors on the program's own files stay.
fn leave_out_own_files(plan: &mut Plan, out: &Path, runs: u32) {
    use crate::model::{plan::ShapeModel, shape::Key};
    let Ok(dir) = out.canonicalize() else {
        return;
    };
    // Shapes write the directory's path as a template too (a temp directory's name is generalized).
    let dir = dir.display().to_string();
    let prefixes = [
        format!("{dir}/"),
        format!("{}/", crate::model::shape::template(&dir)),
    ];
    let own = |s: &ShapeModel| {
        s.shape
            .get(Key::Path)
            .is_some_and(|path| prefixes.iter().any(|p| path.starts_with(p.as_str())))
    };
    for m in &mut plan.models {
        for s in m.shapes.iter().filter(|s| own(s)) {
            plan.excluded.push(Excluded {
                syscall: m.syscall,
                action: m.action,
                shape: Some(s.shape.to_string()),
                reason: "a file phoebe itself opened for the program: its capture of the program's stdout or \
                         stderr, which has another path in every run (a rule for it would match nothing in the \
                         experiments), and which is a pipe or a terminal where the program really runs"
                    .into(),
            });
        }
        let before = m.shapes.len();
        m.shapes.retain(|s| !own(s));
        if m.shapes.len() < before {
            // The captures' calls counted in a plausible model's rate, which is set from the calls left.
            crate::synth::rerate_plausible(m, &plan.settings, runs);
            if let Some(first) = m.shapes.first() {
                m.fault = first.fault.clone();
            }
        }
    }
    // A model whose every shape was such a file has nothing left to run.
    plan.models
        .retain(|m| !m.shapes.is_empty() || m.fault.shape.iter().all(|p| p.key != Key::Path));
}

/// Runs (or resumes) the campaign in `out`. `phoebe` is the binary every run goes through.
pub fn run(
    campaign: &Campaign,
    out: &Path,
    phoebe: &Path,
    control: &Control,
    progress: &dyn Progress,
) -> Result<Report, ExperimentError> {
    let layout = Layout {
        root: out.to_path_buf(),
    };
    let sealed = Campaign {
        fingerprint: campaign.fingerprint(),
        ..campaign.clone()
    };
    let campaign = &sealed;
    let saved = layout.same_campaign(campaign)?;
    let runner = Runner {
        campaign,
        layout: &layout,
        phoebe,
        control,
        broken: std::cell::RefCell::new(None),
        lending: std::cell::RefCell::new(run::Lending::Untried),
        steady: std::cell::OnceCell::new(),
    };

    // 0. Before anything runs or is written: a plan known before the baseline (given, or kept from an earlier
    //    run) whose experiments the backend can run none of, and a backend this machine cannot run at all, are
    //    refused before the baseline spends any time.
    let plan_path = layout.path("plan.json");
    let known_plan: Option<Plan> = if plan_path.exists() {
        let plan = files::load(&plan_path, "plan")?;
        check_ids(&plan, &plan_path)?;
        Some(plan)
    } else {
        if let Some(plan) = &campaign.plan {
            check_ids(plan, &saved)?;
        }
        campaign.plan.clone()
    };
    let mut known_pending = Vec::new();
    if known_plan.is_some() || !campaign.faults.is_empty() {
        let plan = known_plan.clone().unwrap_or_else(|| campaign.empty_plan());
        let all = experiments(campaign, &plan);
        let (mine, _) = share(campaign, &all, out)?;
        known_pending = mine.iter().map(|e| e.id.clone()).collect();
    }
    backend_usable(campaign.backend)?;
    baseline::observer_usable(campaign.observer)?;
    layout.mkdir("")?;
    if !saved.exists() {
        files::save(&saved, campaign)?;
    }
    control.hold();

    // 1. Baseline (kept when resuming).
    let baseline_path = layout.path("baseline.json");
    let baseline: Baseline = if baseline_path.exists() {
        load_versioned::<Baseline>(&baseline_path, "baseline", campaign, &saved)?
    } else {
        progress.message("baseline");
        progress.total(u64::from(campaign.baseline_runs));
        // An interrupted run, reset or check fails as a side effect of the signal: that is an interruption, not
        // an unsteady baseline.
        let baseline = match runner.baseline(progress) {
            Err(_) if control.interrupted() => Baseline {
                runs: Vec::new(),
                exit: campaign.declared().expected(),
                timeout_ms: 0,
                expect_status: campaign.expect_status,
                accept_flaky: campaign.accept_flaky_baseline,
                flaky: None,
                rerun_passed: None,
            },
            Err(e) => {
                // No steady state, so no campaign to resume: the next `exec --out` here starts afresh (the
                // baseline runs' output stays until then).
                let _ = fs::remove_file(&saved);
                return Err(e);
            }
            Ok(baseline) => baseline,
        };
        if control.interrupted() {
            let mut report =
                assemble::report(campaign, &baseline, &campaign.empty_plan(), &[], &[], Vec::new());
            report.pending = known_pending;
            report.interrupted = true;
            return Ok(report);
        }
        files::save(&baseline_path, &Versioned::new(&baseline, campaign))?;
        baseline
    };
    let (observation, outside_workload) = merged_observation(&layout, &baseline, campaign.baseline_runs)?;

    // 2. Plan (kept when resuming).
    let plan: Plan = match known_plan {
        Some(plan) => {
            if !plan_path.exists() {
                files::save(&plan_path, &plan)?;
            }
            plan
        }
        None => {
            let mut plan = synth::synthesize(&observation, &campaign.settings)?;
            leave_out_own_files(&mut plan, out, observation.runs);
            for (syscall, errno) in outside_workload {
                plan.excluded.push(Excluded {
                    syscall,
                    action: crate::model::Action::Errno(errno),
                    shape: None,
                    reason: "failed only while the service started or stopped, never during the workload's \
                             rounds: the workload does not exercise it"
                        .into(),
                });
            }
            files::save(&plan_path, &plan)?;
            plan
        }
    };

    // 3. Experiments, in plan order; this shard's only, without those the backend cannot run. Skipping is a
    //    pure function of the experiment, so a resume or another shard decides the same.
    let all = experiments(campaign, &plan);
    let (mine, skipped) = share(campaign, &all, out)?;
    if !skipped.is_empty() {
        progress.skipped(campaign.backend_name(), &skipped, mine.len() + skipped.len());
    }
    progress.total(mine.len() as u64 * u64::from(campaign.runs));
    let natural = observation.failed_shapes();
    let mut results = Vec::new();
    let mut pending = Vec::new();
    // What a resume finds: each experiment's result so far (a campaign that stopped in an experiment kept the
    // runs it had; the resume runs the rest).
    let mut earlier = Vec::with_capacity(mine.len());
    for exp in &mine {
        let result_path = layout.path(&format!("experiments/{}/result.json", exp.id));
        earlier.push(if result_path.exists() {
            Some(load_versioned::<ExperimentResult>(
                &result_path,
                "experiment result",
                campaign,
                &saved,
            )?)
        } else {
            None
        });
    }
    // Every run made, or one that settles the experiment (its guards kept out every call).
    let complete = |r: &Option<ExperimentResult>| {
        r.as_ref()
            .is_some_and(|r| r.runs.len() >= campaign.runs as usize || r.runs.iter().any(|run| run.settles))
    };
    // A resume after runs were made, with some left to make: the program must pass without injection first, or
    // the next run would be blamed for the damage an earlier one left.
    let made = earlier.iter().any(Option::is_some);
    let left = !earlier.iter().all(complete);
    if made && left && !control.interrupted() {
        match runner.broken_before(&baseline) {
            Err(_) if control.interrupted() => {}
            other => {
                other?;
            }
        }
    }
    for (i, (exp, so_far)) in mine.iter().zip(earlier).enumerate() {
        let result_path = layout.path(&format!("experiments/{}/result.json", exp.id));
        if complete(&so_far)
            || ((control.interrupted() || runner.broken.borrow().is_some()) && so_far.is_some())
        {
            let result = so_far.expect("a result was loaded");
            progress.experiment_done(&result, true);
            results.push(result);
            continue;
        }
        if control.interrupted() || runner.broken.borrow().is_some() {
            pending.push(exp.id.clone());
            continue;
        }
        progress.message(&exp.id);
        let runs_so_far = so_far.map(|r| r.runs).unwrap_or_default();
        // As in the baseline: a run, reset or check that fails because of the signal is an interruption.
        let ran = match runner.experiment(
            exp,
            &baseline,
            natural.as_ref(),
            progress,
            i + 1 < mine.len(),
            runs_so_far,
        ) {
            Err(_) if control.interrupted() => None,
            other => other?,
        };
        match ran {
            Some(result) => {
                files::save(&result_path, &Versioned::new(&result, campaign))?;
                progress.experiment_done(&result, false);
                results.push(result);
            }
            None => pending.push(exp.id.clone()),
        }
    }
    let mut report = assemble::report(campaign, &baseline, &plan, &all, &observation.intervals, results);
    report.pending = pending;
    report.skipped_backend = crate::backend::runs_skipped(&skipped);
    report.skipped = skipped;
    report.interrupted = control.interrupted();
    report.stopped = runner.broken.take();
    Ok(report)
}
