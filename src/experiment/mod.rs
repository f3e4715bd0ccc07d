//! The orchestrator of `phoebe exec` (DESIGN §7): baseline runs, synthesis, one experiment per model × runs,
//! post-checks, verdicts, resume and shards.
//!
//! Every run of the target is a separate `phoebe observe` / `phoebe inject` process (the same binary), in a
//! process group of its own: a crash or a hang in one run cannot take the campaign down, a timeout kills the
//! whole group, and each run's CPU and memory are its own. Every file is written atomically as soon as it is
//! known, so an interrupted campaign loses nothing: `--resume DIR` skips the experiments that have a result.
//! Does not own: deciding (`crate::decide`), synthesis (`crate::synth`), rendering (`crate::report`).

mod check;
pub mod service;
pub mod verdict;

use std::{
    ffi::OsString,
    fs,
    os::unix::process::{CommandExt, ExitStatusExt},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::{
    backend::{self, BackendError, BackendKind, Mode},
    control::Control,
    decide::Decider,
    files::{self, FileError},
    model::{
        Baseline, BaselineRun, ErrorModel, ExperimentResult, FORMAT_VERSION, FaultSpec, InjectionLog,
        Observation, Plan, Report, RunResult, Skipped, SynthSettings, TargetExit, When,
    },
    synth,
};

/// `Campaign::backend` when none was given: each run lets `phoebe inject` choose.
pub const AUTO_BACKEND: &str = "auto";

/// A slice of the experiments: the K-th of N (1-based), for CI matrices and indexed Jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("shard '{s}' is not K/N with 1 ≤ K ≤ N (e.g. --shard 2/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Does the `i`-th experiment (0-based, in plan order) belong to this shard?
    pub fn contains(&self, i: usize) -> bool {
        i % self.count as usize == (self.index - 1) as usize
    }
}

/// Everything that defines a campaign; saved as `campaign.json` so that `--resume DIR` needs nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub version: u32,
    pub command: Vec<String>,
    /// The injecting backend's name, or [`AUTO_BACKEND`].
    pub backend: String,
    pub runs: u32,
    pub baseline_runs: u32,
    /// Per run; `null`: a multiple of the slowest baseline run.
    pub timeout_ms: Option<u64>,
    /// Shell command that validates the target's output or state; exit 0 = good.
    pub check: Option<String>,
    /// Shell command run before every run to restore the target's state.
    pub reset: Option<String>,
    pub seed: u64,
    pub interval_ms: u64,
    pub settings: SynthSettings,
    /// Faults given with `--fault`: one experiment each, instead of the synthesized models.
    pub faults: Vec<FaultSpec>,
    /// Service mode: the target runs once per run and a workload is played against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<service::ServiceSpec>,
    /// A plan given with `--plan`: its models instead of synthesized ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    pub shard: Option<Shard>,
    /// `--expect-status N`: the exit status every baseline run must have (`null`: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<i32>,
    /// `--accept-flaky-baseline`: baseline runs that disagree do not stop the campaign.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_flaky_baseline: bool,
    /// [`Campaign::fingerprint`] when the file was written; every result and the baseline carry it too.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
}

/// A setting that differs between a saved campaign and the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The flag that sets it (`--seed`).
    pub flag: &'static str,
    pub saved: String,
    pub given: String,
}

impl Campaign {
    /// Every setting that changes a campaign's results, by the flag that sets it: the command, backend, seed,
    /// faults or plan, runs, baseline runs and steady state, timeout, check, reset, interval, synthesis
    /// settings (the shapes mode included) and service mode. Not the shard (shards share one campaign), nor
    /// `--fail-on` (it changes only the exit status).
    pub fn settings(&self) -> Vec<(&'static str, serde_json::Value)> {
        use serde_json::{Value, json};
        let s = &self.settings;
        let service = self.service.as_ref();
        vec![
            ("-- CMD", json!(self.command)),
            ("--backend", json!(self.backend)),
            ("--seed", json!(self.seed)),
            (
                "--fault",
                json!(self.faults.iter().map(ToString::to_string).collect::<Vec<_>>()),
            ),
            (
                "--plan",
                self.plan
                    .as_ref()
                    .map_or(Value::Null, |p| serde_json::to_value(p).unwrap_or(Value::Null)),
            ),
            ("--runs", json!(self.runs)),
            ("--baseline-runs", json!(self.baseline_runs)),
            ("--expect-status", json!(self.expect_status)),
            ("--accept-flaky-baseline", json!(self.accept_flaky_baseline)),
            ("--timeout", json!(self.timeout_ms)),
            ("--check", json!(self.check)),
            ("--reset", json!(self.reset)),
            ("--interval", json!(self.interval_ms)),
            ("--sporadic-below", json!(s.sporadic_below)),
            ("--fixed-rate", json!(s.fixed_rate)),
            ("--variance-above", json!(s.variance_above)),
            ("--factor", json!(s.factor)),
            ("--quantile", json!(s.quantile)),
            ("--shapes", json!(s.shapes)),
            ("--service", json!(service.is_some())),
            ("--ready", json!(service.map(|s| &s.ready))),
            ("--workload", json!(service.map(|s| &s.workload))),
            ("--rounds", json!(service.map(|s| s.rounds))),
        ]
    }

    /// A digest of [`Campaign::settings`] (FNV-1a, 64 bits, in hex): two campaigns with the same fingerprint
    /// give the same results, so a result may be reused only under the same one. Settings that are absent
    /// (`null`) or off (`false`) are left out of it, so that a setting added later does not change the
    /// fingerprints of campaigns that never used it.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (flag, value) in self.settings() {
            if value.is_null() || value == serde_json::Value::Bool(false) {
                continue;
            }
            for b in format!("{flag}={value}\n").bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    }

    /// The first setting in which `given` differs from this (saved) campaign, with both values in words.
    pub fn difference(&self, given: &Campaign) -> Option<Difference> {
        let words = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "none".to_owned(),
            serde_json::Value::Bool(true) => "on".to_owned(),
            serde_json::Value::Bool(false) => "off".to_owned(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" "),
            // A plan: its models, by id.
            serde_json::Value::Object(plan) => {
                let ids: Vec<&str> = plan
                    .get("models")
                    .and_then(|m| m.as_array())
                    .map(|models| models.iter().filter_map(|m| m["id"].as_str()).collect())
                    .unwrap_or_default();
                format!("a plan of {} model(s) ({})", ids.len(), ids.join(", "))
            }
            other => other.to_string(),
        };
        self.settings()
            .into_iter()
            .zip(given.settings())
            .find(|((_, a), (_, b))| a != b)
            .map(|((flag, saved), (_, given))| {
                let (saved, given) = match (words(&saved), words(&given)) {
                    // Two plans with the same models, edited otherwise (a rate, a shape).
                    (a, b) if a == b => (format!("{a} as saved"), format!("{b} edited")),
                    other => other,
                };
                Difference { flag, saved, given }
            })
    }

    /// What the user declared about the steady state.
    pub fn declared(&self) -> verdict::Declared {
        verdict::Declared {
            expect_status: self.expect_status,
            accept_flaky: self.accept_flaky_baseline,
        }
    }
}

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
    #[error("{sentence}\nhint: what the program printed is in {}", output.display())]
    NotSteady { sentence: String, output: PathBuf },
    #[error("a baseline run of the target timed out after {0:?}\nhint: raise --timeout")]
    BaselineHung(Duration),
    #[error(
        "the {backend} backend cannot run any of the {count} experiment(s) of the campaign in {} ({ids}); {first}\nhint: start the campaign with --backend {fallback}",
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
        fallback: &'static str,
    },
    #[error(
        "{}: model id '{id}' is not a plain name (letters, digits, '-', '_', '+', '.'; not starting with '.'), and \
         the experiment's files are named after it\nhint: rename the model, e.g. openat-ENOENT",
        file.display()
    )]
    BadId { file: PathBuf, id: String },
    #[error(transparent)]
    Synthesis(#[from] synth::SettingError),
    #[error(
        "{} holds a campaign with {flag} {saved}, not {flag} {given}, so its results would not be this \
         campaign's\nhint: resume it without {flag}, or start a new campaign with another --out",
        dir.display(), flag = difference.flag, saved = difference.saved, given = difference.given
    )]
    OtherSettings { dir: PathBuf, difference: Difference },
    #[error(
        "{} was written by another campaign (fingerprint {found}) than the one in {} ({wanted}), so it cannot \
         be reused\nhint: start a new campaign with another --out",
        path.display(), campaign.display()
    )]
    StaleFile {
        path: PathBuf,
        campaign: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("the {backend} backend cannot inject on this machine: {reason}\nhint: {hint}")]
    BackendUnavailable {
        backend: String,
        reason: String,
        hint: String,
    },
    #[error("{} holds a campaign for '{}', not for '{}'\nhint: use another --out, or --resume {} without a command", dir.display(), found.join(" "), wanted.join(" "), dir.display())]
    OtherCampaign {
        dir: PathBuf,
        found: Vec<String>,
        wanted: Vec<String>,
    },
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

/// Where the files of a campaign go.
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    fn mkdir(&self, rel: &str) -> Result<PathBuf, ExperimentError> {
        let path = self.path(rel);
        fs::create_dir_all(&path).map_err(|source| ExperimentError::Dir {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
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
    // A campaign directory holds one campaign: its results are reused only under the same settings.
    let saved = layout.path("campaign.json");
    if saved.exists() {
        let found: Campaign = files::load(&saved, "campaign")?;
        if found.command != campaign.command {
            return Err(ExperimentError::OtherCampaign {
                dir: out.to_path_buf(),
                found: found.command,
                wanted: campaign.command.clone(),
            });
        }
        if let Some(difference) = found.difference(campaign) {
            return Err(ExperimentError::OtherSettings {
                dir: out.to_path_buf(),
                difference,
            });
        }
    }
    let runner = Runner {
        campaign,
        layout: &layout,
        phoebe,
        control,
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
        let plan = known_plan.clone().unwrap_or_else(|| Plan::empty(campaign));
        let all = experiments(campaign, &plan);
        let (mine, _) = share(campaign, &all, out)?;
        known_pending = mine.iter().map(|e| e.id.clone()).collect();
    }
    backend_usable(&campaign.backend)?;
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
            let mut report = runner.report(&baseline, &Plan::empty(campaign), &[], &[], Vec::new());
            report.pending = known_pending;
            report.interrupted = true;
            return Ok(report);
        }
        files::save(&baseline_path, &Versioned::new(&baseline, campaign))?;
        baseline
    };
    let observation = merged_observation(&layout, campaign.baseline_runs)?;

    // 2. Plan (kept when resuming).
    let plan: Plan = match known_plan {
        Some(plan) => {
            if !plan_path.exists() {
                files::save(&plan_path, &plan)?;
            }
            plan
        }
        None => {
            let plan = synth::synthesize(&observation, &campaign.settings)?;
            files::save(&plan_path, &plan)?;
            plan
        }
    };

    // 3. Experiments, in plan order; this shard's only, without those the backend cannot run. Skipping is a
    //    pure function of the experiment, so a resume or another shard decides the same.
    let all = experiments(campaign, &plan);
    let (mine, skipped) = share(campaign, &all, out)?;
    if !skipped.is_empty() {
        progress.skipped(&campaign.backend, &skipped, mine.len() + skipped.len());
    }
    progress.total(mine.len() as u64 * u64::from(campaign.runs));
    let natural = observation.failed_shapes();
    let mut results = Vec::new();
    let mut pending = Vec::new();
    for exp in &mine {
        let result_path = layout.path(&format!("experiments/{}/result.json", exp.id));
        if result_path.exists() {
            let result =
                load_versioned::<ExperimentResult>(&result_path, "experiment result", campaign, &saved)?;
            progress.experiment_done(&result, true);
            results.push(result);
            continue;
        }
        if control.interrupted() {
            pending.push(exp.id.clone());
            continue;
        }
        progress.message(&exp.id);
        // As in the baseline: a run, reset or check that fails because of the signal is an interruption.
        let ran = match runner.experiment(exp, &baseline, natural.as_ref(), progress) {
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
    let mut report = runner.report(&baseline, &plan, &all, &observation.intervals, results);
    report.pending = pending;
    report.skipped = skipped;
    report.interrupted = control.interrupted();
    Ok(report)
}

/// Checks that every model id of `plan` (read from `file`) is a plain file name, so that no experiment writes
/// outside the campaign directory (`experiments/<id>/`).
pub fn check_ids(plan: &Plan, file: &Path) -> Result<(), ExperimentError> {
    let plain = |id: &str| {
        !id.is_empty()
            && id.len() <= 200
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'.'))
    };
    match plan.models.iter().find(|m| !plain(&m.id)) {
        Some(bad) => Err(ExperimentError::BadId {
            file: file.to_path_buf(),
            id: bad.id.clone(),
        }),
        None => Ok(()),
    }
}

/// Why the campaign's backend cannot run `fault`, or `None` when it can (or when each run's `phoebe inject`
/// chooses its backend). Pure: asks the backend's own rule check, which loads nothing, so the answer is the
/// same on every host, in every shard and on every resume.
pub fn skip_reason(backend: &str, faults: &[FaultSpec]) -> Option<String> {
    if backend != BackendKind::Ebpf.name() {
        return None;
    }
    let mut decider = Decider::new(faults.to_vec(), 0);
    let mode = Mode::Inject {
        decider: &mut decider,
        note: &mut |_| {},
    };
    match backend::backend(BackendKind::Ebpf).check(&mode) {
        Ok(_) => None,
        Err(BackendError::Unsupported { reason, .. }) => Some(reason),
        Err(other) => Some(other.to_string()),
    }
}

/// A backend that runs every one of `skipped`: seccomp, unless one injects at the call's exit (ptrace only).
pub fn fallback_backend(skipped: &[Skipped]) -> &'static str {
    if skipped
        .iter()
        .flat_map(|s| &s.faults)
        .any(|f| f.when == When::Exit)
    {
        BackendKind::Ptrace.name()
    } else {
        BackendKind::Seccomp.name()
    }
}

/// This campaign's part of `all` (its shard's, in plan order): the experiments to run, and those its backend
/// cannot run. A pure function of the campaign and the plan, so a resume and every shard decide alike; an
/// error when the backend can run none of the whole plan (`dir`: the campaign directory, for the message).
fn share<'a>(
    campaign: &Campaign,
    all: &'a [Experiment],
    dir: &Path,
) -> Result<(Vec<&'a Experiment>, Vec<Skipped>), ExperimentError> {
    let skipped = skipped(campaign, all, dir)?;
    let (mut run, mut mine_skipped) = (Vec::new(), Vec::new());
    for (i, exp) in all.iter().enumerate() {
        if !campaign.shard.is_none_or(|s| s.contains(i)) {
            continue;
        }
        match skipped.iter().find(|s| s.id == exp.id) {
            Some(s) => mine_skipped.push(s.clone()),
            None => run.push(exp),
        }
    }
    Ok((run, mine_skipped))
}

/// The experiments of `all` the campaign's backend cannot run, in plan order; an error when that is every one
/// of them.
fn skipped(campaign: &Campaign, all: &[Experiment], dir: &Path) -> Result<Vec<Skipped>, ExperimentError> {
    let skipped: Vec<Skipped> = all
        .iter()
        .filter_map(|e| {
            skip_reason(&campaign.backend, &e.faults).map(|reason| Skipped {
                id: e.id.clone(),
                faults: e.faults.clone(),
                reason,
            })
        })
        .collect();
    if let Some(first) = skipped.first()
        && skipped.len() == all.len()
    {
        const SHOWN: usize = 10;
        let mut ids: Vec<String> = skipped.iter().take(SHOWN).map(|s| s.id.clone()).collect();
        if skipped.len() > SHOWN {
            ids.push(format!("{} more", skipped.len() - SHOWN));
        }
        return Err(ExperimentError::NothingRunnable {
            backend: campaign.backend.clone(),
            dir: dir.to_path_buf(),
            count: all.len(),
            ids: ids.join(", "),
            first: format!("{}: {}", first.id, first.reason),
            fallback: fallback_backend(&skipped),
        });
    }
    Ok(skipped)
}

/// A campaign file that is a part of the report on its own (`baseline.json`, `result.json`): the part, with the
/// `version` every phoebe file carries.
/// Also the fingerprint of the campaign that wrote it, so that a resume never reuses another campaign's result.
#[derive(Debug, Serialize, Deserialize)]
struct Versioned<T> {
    version: u32,
    /// [`Campaign::fingerprint`]; absent in files written before fingerprints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    campaign: Option<String>,
    #[serde(flatten)]
    inner: T,
}

impl<T: Clone> Versioned<T> {
    fn new(inner: &T, campaign: &Campaign) -> Self {
        Versioned {
            version: FORMAT_VERSION,
            campaign: Some(campaign.fingerprint.clone()),
            inner: inner.clone(),
        }
    }
}

/// Loads a part of the campaign an earlier run wrote, refusing one written under another fingerprint than the
/// campaign's (saved in `saved`).
fn load_versioned<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
    campaign: &Campaign,
    saved: &Path,
) -> Result<T, ExperimentError> {
    let file: Versioned<T> = files::load(path, what)?;
    match file.campaign {
        Some(found) if found != campaign.fingerprint => Err(ExperimentError::StaleFile {
            path: path.to_path_buf(),
            campaign: saved.to_path_buf(),
            found,
            wanted: campaign.fingerprint.clone(),
        }),
        _ => Ok(file.inner),
    }
}

/// Refuses a backend this machine cannot inject with, before anything runs: `phoebe doctor`'s own probe for it
/// answers (`doctor::check`). The per-run choice ([`AUTO_BACKEND`]) is `phoebe inject`'s, so it is not probed.
fn backend_usable(backend: &str) -> Result<(), ExperimentError> {
    let Some(kind) = [BackendKind::Ptrace, BackendKind::Seccomp, BackendKind::Ebpf]
        .into_iter()
        .find(|k| k.name() == backend)
    else {
        return Ok(());
    };
    let verdict = crate::doctor::check(kind, "inject");
    if verdict.available {
        return Ok(());
    }
    Err(ExperimentError::BackendUnavailable {
        backend: backend.to_owned(),
        reason: verdict.reason,
        hint: verdict
            .hint
            .unwrap_or_else(|| "run `phoebe doctor` to see which backends work here".to_owned()),
    })
}

/// One experiment to run: the rules of a model (one per call shape), or a given fault.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub id: String,
    pub faults: Vec<FaultSpec>,
    pub model: Option<ErrorModel>,
}

/// The experiments of a campaign: the given faults, or else the plan's models. Ids are unique.
pub fn experiments(campaign: &Campaign, plan: &Plan) -> Vec<Experiment> {
    let mut out: Vec<Experiment> = if campaign.faults.is_empty() {
        plan.models
            .iter()
            .map(|m| Experiment {
                id: m.id.clone(),
                faults: m.faults(),
                model: Some(m.clone()),
            })
            .collect()
    } else {
        campaign
            .faults
            .iter()
            .map(|f| {
                let errno = f.errnos.first().map(|(e, _)| e.to_string()).unwrap_or_default();
                let names: Vec<&str> = f.syscalls.iter().map(|s| s.name()).collect();
                Experiment {
                    id: format!("{}-{errno}", names.join("+")),
                    faults: vec![f.clone()],
                    model: None,
                }
            })
            .collect()
    };
    let mut seen = std::collections::HashMap::<String, u32>::new();
    for e in &mut out {
        let n = seen.entry(e.id.clone()).or_default();
        *n += 1;
        if *n > 1 {
            e.id = format!("{}-{n}", e.id);
        }
    }
    out
}

/// The (syscall, errno, shape) triples that failed naturally in the baseline.
type NaturalShapes = std::collections::BTreeSet<(crate::model::Syscall, crate::model::Errno, String)>;

/// How many of a run's injections landed on a shape that failed naturally with their errno; `None` when the
/// baseline or the log has no shapes.
fn realistic(log: Option<&InjectionLog>, natural: Option<&NaturalShapes>) -> Option<u64> {
    let (log, natural) = (log?, natural?);
    let mut n = 0;
    for inj in &log.injections {
        let shape = inj.shape.as_ref()?.to_string();
        if natural.contains(&(inj.syscall, inj.errno, shape)) {
            n += 1;
        }
    }
    Some(n)
}

/// The baseline runs' observations, one after the other (their intervals concatenated).
fn merged_observation(layout: &Layout, runs: u32) -> Result<Observation, ExperimentError> {
    let mut merged: Option<Observation> = None;
    for k in 1..=runs {
        let obs: Observation = files::load(
            &layout.path(&format!("baseline/run-{k}.observation.json")),
            "observation",
        )?;
        match &mut merged {
            None => merged = Some(obs),
            Some(m) => {
                m.duration_ms += obs.duration_ms;
                m.intervals.extend(obs.intervals);
            }
        }
    }
    Ok(merged.expect("at least one baseline run"))
}

/// What happened to one process run with a timeout.
struct Ran {
    status: Option<ExitStatus>,
    timed_out: bool,
    wall: Duration,
}

struct Runner<'a> {
    campaign: &'a Campaign,
    layout: &'a Layout,
    phoebe: &'a Path,
    control: &'a Control,
}

impl Runner<'_> {
    fn target_args(&self) -> Vec<OsString> {
        self.campaign.command.iter().map(OsString::from).collect()
    }

    /// Runs `cmd` in its own process group with stdout/stderr to `<base>.out` / `<base>.err`, killing the group
    /// at `timeout`. Signals to phoebe meanwhile go to the whole group.
    fn spawn_and_wait(
        &self,
        mut cmd: Command,
        base: &Path,
        timeout: Option<Duration>,
        what: &str,
    ) -> Result<Ran, ExperimentError> {
        let file = |ext: &str| {
            let path = base.with_extension(ext);
            fs::File::create(&path).map_err(|source| ExperimentError::Dir { path, source })
        };
        cmd.stdin(Stdio::null())
            .stdout(file("out")?)
            .stderr(file("err")?)
            .process_group(0);
        // Inner phoebes, checks and resets end with this phoebe, however it ends.
        crate::sys::contain::command(&mut cmd);
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|source| ExperimentError::Spawn {
            what: what.into(),
            source,
        })?;
        let pgid = child.id() as i32;
        self.control.set_group(pgid);
        let mut timed_out = false;
        let mut escalation: Option<(Instant, u8)> = None;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(source) => {
                    self.control.clear_group();
                    return Err(ExperimentError::Spawn {
                        what: what.into(),
                        source,
                    });
                }
            }
            let now = Instant::now();
            if let Some(limit) = timeout
                && escalation.is_none()
                && now.duration_since(started) >= limit
            {
                timed_out = true;
                // SIGTERM first: an inner phoebe forwards it and still writes its log.
                kill_group(pgid, libc::SIGTERM);
                escalation = Some((now, 1));
            }
            // Each step gets a grace period long enough for a loaded machine: an inner phoebe killed before it
            // wrote its log would leave the run without its injection counts.
            if let Some((since, step)) = escalation
                && now.duration_since(since) >= Duration::from_secs(5)
            {
                kill_group(pgid, if step == 1 { libc::SIGTERM } else { libc::SIGKILL });
                escalation = Some((now, step + 1));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Anything the run left behind in its group goes with it.
        kill_group(pgid, libc::SIGKILL);
        self.control.clear_group();
        Ok(Ran {
            status,
            timed_out,
            wall: started.elapsed(),
        })
    }

    /// `phoebe inject` of one run of an experiment.
    fn inject_command(&self, exp: &Experiment, seed: u64, log: &Path, start_off: bool) -> Command {
        let mut cmd = Command::new(self.phoebe);
        // Verdicts need every injection counted (a rule the filter ran in the kernel would look unexercised).
        cmd.args(["inject", "-q", "--count-all"]);
        if self.campaign.backend != AUTO_BACKEND {
            cmd.args(["--backend", &self.campaign.backend]);
        }
        for fault in &exp.faults {
            cmd.arg("--fault").arg(fault.to_string());
        }
        cmd.arg("--seed").arg(seed.to_string()).arg("--log").arg(log);
        if start_off {
            cmd.arg("--start-off");
        }
        cmd.arg("--").args(self.target_args());
        cmd
    }

    fn reset(&self, dir: &Path, name: &str) -> Result<(), ExperimentError> {
        if let Some(reset) = &self.campaign.reset {
            let ran = self.spawn_and_wait(shell(reset), &dir.join(name), self.timeout_hint(), "--reset")?;
            if !ran.status.is_some_and(|s| s.success()) {
                return Err(ExperimentError::Inner {
                    what: format!("--reset `{reset}`"),
                    stderr: read_tail(&dir.join(name).with_extension("err")),
                });
            }
        }
        Ok(())
    }

    fn timeout_hint(&self) -> Option<Duration> {
        self.campaign.timeout_ms.map(Duration::from_millis)
    }

    fn check(
        &self,
        dir: &Path,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<bool>, ExperimentError> {
        match &self.campaign.check {
            None => Ok(None),
            Some(check) => {
                let ran = self.spawn_and_wait(shell(check), &dir.join(name), timeout, "--check")?;
                Ok(Some(!ran.timed_out && ran.status.is_some_and(|s| s.success())))
            }
        }
    }

    fn baseline(&self, progress: &dyn Progress) -> Result<Baseline, ExperimentError> {
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
            let mut cmd = Command::new(self.phoebe);
            cmd.arg("observe").arg("-q").arg("-o").arg(&obs_path);
            cmd.arg("--interval")
                .arg(format!("{}ms", self.campaign.interval_ms));
            cmd.arg("--").args(self.target_args());
            let ran = self.spawn_and_wait(
                cmd,
                &dir.join(format!("run-{k}")),
                self.timeout_hint(),
                "the baseline",
            )?;
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
            });
            // Without --accept-flaky-baseline, the first run that does not match decides: no need to run more.
            if !self.campaign.accept_flaky_baseline {
                self.steady(&runs, &dir)?;
            }
        }
        let flaky = if self.campaign.service.is_some() {
            // A service is stopped by phoebe, so its status says nothing; its steady state is every round
            // succeeding (and the check), which each run checked.
            None
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
        Ok(Baseline {
            runs,
            exit,
            timeout_ms: millis(timeout),
            expect_status: self.campaign.expect_status,
            accept_flaky: self.campaign.accept_flaky_baseline,
            flaky,
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

    /// All runs of one experiment; `None` when interrupted before the last.
    fn experiment(
        &self,
        exp: &Experiment,
        baseline: &Baseline,
        natural: Option<&NaturalShapes>,
        progress: &dyn Progress,
    ) -> Result<Option<ExperimentResult>, ExperimentError> {
        let rel = format!("experiments/{}", exp.id);
        let dir = self.layout.mkdir(&rel)?;
        let timeout = Duration::from_millis(baseline.timeout_ms);
        let mut runs = Vec::new();
        for k in 1..=self.campaign.runs {
            self.reset(&dir, &format!("run-{k}.reset"))?;
            let seed = derive_seed(self.campaign.seed, &exp.id, k);
            let log_path = dir.join(format!("run-{k}.log.json"));
            let _ = fs::remove_file(&log_path);
            if self.campaign.service.is_some() {
                let cmd = self.inject_command(exp, seed, &log_path, true);
                let Some(run) = self.service_experiment_run(&dir, k, cmd)? else {
                    return Ok(None);
                };
                let log = service::service_log(&log_path);
                let injected = log
                    .as_ref()
                    .map_or(0, |l| l.rules.iter().map(|r| r.injected).sum());
                let matched = log
                    .as_ref()
                    .map_or(0, |l| l.rules.iter().map(|r| r.matched).sum());
                let exit = log.as_ref().and_then(|l| l.exit);
                let realistic = realistic(log.as_ref(), natural);
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
                });
                progress.run_done();
                runs.push(RunResult {
                    run: k,
                    seed,
                    verdict,
                    detail,
                    exit,
                    duration_ms: millis(run.wall),
                    usage: log.as_ref().and_then(|l| l.usage),
                    matched,
                    injected,
                    realistic,
                    check_passed: run.check_passed,
                    post_run_passed: Some(run.rounds.after.all_ok()),
                    log: format!("{rel}/run-{k}.log.json"),
                    rounds: Some(run.rounds),
                });
                continue;
            }
            let cmd = self.inject_command(exp, seed, &log_path, false);
            let ran = self.spawn_and_wait(
                cmd,
                &dir.join(format!("run-{k}")),
                Some(timeout),
                "an experiment run",
            )?;
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
            let injected = log
                .as_ref()
                .map_or(0, |l| l.rules.iter().map(|r| r.injected).sum());
            let matched = log
                .as_ref()
                .map_or(0, |l| l.rules.iter().map(|r| r.matched).sum());
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
            let post_run_passed = if ran.timed_out || !exercised {
                None
            } else {
                let plain = self.spawn_and_wait(
                    plain(&self.campaign.command),
                    &dir.join(format!("post-{k}")),
                    Some(timeout),
                    "the post-injection run",
                )?;
                let post_exit = plain.status.filter(|_| !plain.timed_out).map(exit_of);
                let post_check = self.check(&dir, &format!("post-{k}.check"), Some(timeout))?;
                Some(post_exit == Some(baseline.exit) && post_check != Some(false))
            };
            let (verdict, detail) = verdict::judge(&verdict::Evidence {
                baseline: baseline.exit,
                exit,
                timed_out: ran.timed_out,
                matched,
                injected,
                check_passed,
                post_run_passed,
            });
            progress.run_done();
            runs.push(RunResult {
                rounds: None,
                run: k,
                seed,
                verdict,
                detail,
                exit,
                duration_ms: millis(ran.wall),
                usage: log.as_ref().and_then(|l| l.usage),
                matched,
                injected,
                realistic: realistic(log.as_ref(), natural),
                check_passed,
                post_run_passed,
                log: format!("{rel}/run-{k}.log.json"),
            });
            if self.control.interrupted() {
                return Ok(None);
            }
        }
        Ok(Some(ExperimentResult::from_runs(
            exp.id.clone(),
            exp.faults.clone(),
            exp.model.clone(),
            runs,
        )))
    }

    fn report(
        &self,
        baseline: &Baseline,
        plan: &Plan,
        all: &[Experiment],
        intervals: &[crate::model::Interval],
        experiments: Vec<ExperimentResult>,
    ) -> Report {
        let natural_rates = all
            .iter()
            .filter_map(|e| e.model.as_ref().map(|m| (e, m)))
            .map(|(e, m)| {
                let rates = intervals
                    .iter()
                    .map(|i| match i.syscalls.get(&m.syscall) {
                        Some(s) if s.calls > 0 => {
                            s.errors.get(&m.errno).copied().unwrap_or(0) as f64 / s.calls as f64
                        }
                        _ => 0.0,
                    })
                    .collect();
                (e.id.clone(), rates)
            })
            .collect();
        Report {
            version: FORMAT_VERSION,
            command: self.campaign.command.clone(),
            backend: self.campaign.backend.clone(),
            created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            seed: self.campaign.seed,
            shard: self.campaign.shard.map(|s| s.to_string()),
            baseline: baseline.clone(),
            natural_rates,
            interval_ms: plan.interval_ms,
            experiments,
            pending: Vec::new(),
            skipped: Vec::new(),
            interrupted: false,
        }
    }
}

impl Plan {
    /// A plan with no models (before synthesis could run).
    fn empty(campaign: &Campaign) -> Plan {
        Plan {
            version: FORMAT_VERSION,
            command: campaign.command.clone(),
            interval_ms: campaign.interval_ms,
            settings: campaign.settings,
            models: Vec::new(),
            excluded: Vec::new(),
        }
    }
}

fn shell(cmd: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd);
    c
}

fn plain(command: &[String]) -> Command {
    let mut c = Command::new(&command[0]);
    c.args(&command[1..]);
    c
}

/// How a child process ended: `sys::wait`'s one conversion of a wait status (`ExitStatus` holds the raw one).
fn exit_of(status: ExitStatus) -> TargetExit {
    crate::sys::wait::exit_of_raw(status.into_raw()).unwrap_or(TargetExit::Code(-1))
}

fn kill_group(pgid: i32, sig: i32) {
    // ESRCH: the group is already gone, which is what we want.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::try_from(sig).ok(),
    );
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The last lines of a run's stderr, for error messages.
fn read_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" / ");
    if tail.is_empty() {
        // A full disk takes the run's error message with it: say so.
        match files::full_file_system(path) {
            Some(full) => format!("no output (see {}); {full}", path.display()),
            None => format!("no output (see {})", path.display()),
        }
    } else {
        tail
    }
}

/// The seed of run `run` of experiment `id`: stable across resumes and shards.
pub fn derive_seed(campaign: u64, id: &str, run: u32) -> u64 {
    // FNV-1a over the id, then SplitMix64's finalizer (as in decide.rs): stable forever, no dependency.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = campaign ^ h ^ (u64::from(run) << 32);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_experiments() {
        let shards: Vec<Shard> = ["1/3", "2/3", "3/3"].iter().map(|s| s.parse().unwrap()).collect();
        for i in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.contains(i)).count(), 1);
        }
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert_eq!(
            "x".parse::<Shard>().unwrap_err(),
            "shard 'x' is not K/N with 1 ≤ K ≤ N (e.g. --shard 2/4)"
        );
    }

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

    fn campaign(backend: &str, faults: &[&str]) -> Campaign {
        Campaign {
            version: 1,
            command: vec!["app".into()],
            backend: backend.into(),
            runs: 1,
            baseline_runs: 1,
            timeout_ms: None,
            check: None,
            reset: None,
            seed: 0,
            interval_ms: 1000,
            settings: SynthSettings::default(),
            faults: faults.iter().map(|f| FaultSpec::parse(f).unwrap()).collect(),
            plan: None,
            service: None,
            shard: None,
            expect_status: None,
            accept_flaky_baseline: false,
            fingerprint: String::new(),
        }
    }

    /// Regression (issue 14): `exec --out d --fault openat:ENOENT:p=0` then `exec --out d --backend ptrace
    /// --seed 7 --fault openat:ENOENT:p=1` reused the first campaign's result, because only the command was
    /// compared. Every setting that changes results is compared now, and named.
    #[test]
    fn every_setting_that_changes_results_is_in_the_fingerprint_and_named() {
        let base = campaign(AUTO_BACKEND, &["openat:ENOENT:p=0"]);
        assert_eq!(base.difference(&base.clone()), None);
        assert_eq!(base.fingerprint(), base.clone().fingerprint());
        assert_eq!(base.fingerprint().len(), 16);
        type Change = Box<dyn Fn(&mut Campaign)>;
        let changes: Vec<(&str, Change)> = vec![
            ("-- CMD", Box::new(|c| c.command.push("x".into()))),
            ("--backend", Box::new(|c| c.backend = "ptrace".into())),
            ("--seed", Box::new(|c| c.seed = 7)),
            (
                "--fault",
                Box::new(|c| c.faults = vec![FaultSpec::parse("openat:ENOENT:p=1").unwrap()]),
            ),
            ("--plan", Box::new(|c| c.plan = Some(Plan::empty(c)))),
            ("--runs", Box::new(|c| c.runs = 5)),
            ("--baseline-runs", Box::new(|c| c.baseline_runs = 3)),
            ("--expect-status", Box::new(|c| c.expect_status = Some(1))),
            (
                "--accept-flaky-baseline",
                Box::new(|c| c.accept_flaky_baseline = true),
            ),
            ("--timeout", Box::new(|c| c.timeout_ms = Some(500))),
            ("--check", Box::new(|c| c.check = Some("true".into()))),
            ("--reset", Box::new(|c| c.reset = Some("true".into()))),
            ("--interval", Box::new(|c| c.interval_ms = 100)),
            ("--quantile", Box::new(|c| c.settings.quantile = 1.0)),
            ("--shapes", Box::new(|c| c.settings.shapes = !c.settings.shapes)),
            (
                "--service",
                Box::new(|c| {
                    c.service = Some(service::ServiceSpec {
                        ready: "true".into(),
                        workload: "true".into(),
                        rounds: 5,
                    })
                }),
            ),
        ];
        let mut seen = std::collections::HashSet::new();
        for (flag, change) in changes {
            let mut other = base.clone();
            change(&mut other);
            let difference = base
                .difference(&other)
                .unwrap_or_else(|| panic!("{flag} not compared"));
            assert_eq!(difference.flag, flag);
            assert_ne!(base.fingerprint(), other.fingerprint(), "{flag}");
            assert!(
                seen.insert(other.fingerprint()),
                "{flag}: two settings, one fingerprint"
            );
        }
        // Plans are named by their models; two plans with the same models differ in what was edited.
        let mut planned = base.clone();
        planned.plan = Some(Plan::empty(&base));
        assert_eq!(
            base.difference(&planned).map(|d| (d.saved, d.given)),
            Some(("none".into(), "a plan of 0 model(s) ()".into()))
        );
        let mut edited = planned.clone();
        edited.plan.as_mut().unwrap().interval_ms = 1;
        assert_eq!(
            planned.difference(&edited).map(|d| (d.flag, d.given)),
            Some(("--plan", "a plan of 0 model(s) () edited".into()))
        );
        let mut other = base.clone();
        other.seed = 7;
        other.backend = "ptrace".into();
        assert_eq!(
            base.difference(&other),
            Some(Difference {
                flag: "--backend",
                saved: "auto".into(),
                given: "ptrace".into()
            }),
            "the first difference, in settings order"
        );
        // Not results: the shard (shards share one campaign), and the fingerprint field itself.
        let mut shard = base.clone();
        shard.shard = Some("1/2".parse().unwrap());
        shard.fingerprint = "whatever".into();
        assert_eq!(base.difference(&shard), None);
        assert_eq!(base.fingerprint(), shard.fingerprint());
    }

    #[test]
    fn a_setting_added_later_leaves_old_fingerprints_alone() {
        // The fingerprint of a campaign that uses none of the newer settings (unset, off) is what it was before
        // they existed: pinned here, so that a change to the digest is a deliberate one.
        let c = campaign("ptrace", &["openat:ENOENT"]);
        assert_eq!(c.fingerprint(), "875524fc361db10c");
        let json = serde_json::to_value(Campaign {
            fingerprint: c.fingerprint(),
            ..c.clone()
        })
        .unwrap();
        assert!(json.get("expect_status").is_none() && json.get("accept_flaky_baseline").is_none());
        assert_eq!(json["fingerprint"], c.fingerprint());
    }

    #[test]
    fn given_faults_get_unique_ids() {
        let campaign = campaign(
            "ptrace",
            &["openat:ENOENT", "openat:ENOENT:p=0.5", "read,write:EIO"],
        );
        let ids: Vec<String> = experiments(&campaign, &Plan::empty(&campaign))
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["openat-ENOENT", "openat-ENOENT-2", "read+write-EIO"]);
    }

    #[test]
    fn ebpf_skips_what_its_hooks_cannot_honour_and_nothing_else() {
        let reason = |backend: &str, fault: &str| skip_reason(backend, &[FaultSpec::parse(fault).unwrap()]);
        for runnable in [
            "openat:ENOENT:p=0.5",
            "read,write:EIO:max=3",
            "connect:ECONNREFUSED:nth=2",
        ] {
            assert_eq!(reason("ebpf", runnable), None, "{runnable}");
        }
        let futex = reason("ebpf", "futex:EAGAIN:p=0.05").expect("futex has no hook");
        assert!(futex.starts_with("no LSM hook decides 'futex'"), "{futex}");
        assert!(futex.ends_with("use --backend seccomp"), "{futex}");
        let path = reason("ebpf", "openat:ENOENT:path=/etc/*").expect("path= is refused");
        assert!(path.contains("path globs"), "{path}");
        assert!(
            reason("ebpf", "write:EIO:when=exit")
                .unwrap()
                .contains("when=exit")
        );
        assert!(reason("ebpf", "read:EIO:delay=10ms").unwrap().contains("delay="));
        // A syscall with a hook beside one without: the rule cannot be honoured as a whole.
        assert!(reason("ebpf", "openat,statx:ENOENT").unwrap().contains("'statx'"));
        // Other backends (and the per-run choice) are never second-guessed.
        for backend in ["ptrace", "seccomp", AUTO_BACKEND] {
            assert_eq!(reason(backend, "futex:EAGAIN:when=exit"), None, "{backend}");
        }
    }

    #[test]
    fn skipped_experiments_keep_plan_order_and_name_a_backend_that_runs_them() {
        let c = campaign(
            "ebpf",
            &[
                "futex:EAGAIN",
                "openat:ENOENT",
                "mmap:ENOMEM",
                "read:EIO:path=/tmp/*",
            ],
        );
        let all = experiments(&c, &Plan::empty(&c));
        let (run, skipped) = share(&c, &all, Path::new("out")).unwrap();
        let ids = |s: &[Skipped]| s.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            run.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["openat-ENOENT"]
        );
        assert_eq!(ids(&skipped), ["futex-EAGAIN", "mmap-ENOMEM", "read-EIO"]);
        assert_eq!(skipped[1].faults[0].to_string(), "mmap:ENOMEM");
        assert_eq!(fallback_backend(&skipped), "seccomp");
        let exit = campaign("ebpf", &["write:EIO:when=exit", "openat:ENOENT"]);
        let (_, skipped) = share(&exit, &experiments(&exit, &Plan::empty(&exit)), Path::new("out")).unwrap();
        assert_eq!(
            fallback_backend(&skipped),
            "ptrace",
            "seccomp refuses when=exit too"
        );
    }

    #[test]
    fn shards_and_resumes_skip_the_same_experiments() {
        let faults = [
            "futex:EAGAIN",
            "openat:ENOENT",
            "mmap:ENOMEM",
            "read:EIO",
            "brk:ENOMEM",
            "write:EIO",
        ];
        let whole = campaign("ebpf", &faults);
        let all = experiments(&whole, &Plan::empty(&whole));
        let (whole_run, whole_skipped) = share(&whole, &all, Path::new("out")).unwrap();
        let (mut run, mut skipped) = (Vec::new(), Vec::new());
        for k in 1..=4 {
            let mut shard = whole.clone();
            shard.shard = Some(format!("{k}/4").parse().unwrap());
            let (r, s) = share(&shard, &all, Path::new("out")).unwrap();
            // Asked again, as a resume would: the same answer.
            let (r2, s2) = share(&shard, &all, Path::new("out")).unwrap();
            assert_eq!(
                r.iter().map(|e| &e.id).collect::<Vec<_>>(),
                r2.iter().map(|e| &e.id).collect::<Vec<_>>()
            );
            assert_eq!(s, s2);
            run.extend(r.into_iter().map(|e| e.id.clone()));
            skipped.extend(s);
        }
        run.sort();
        skipped.sort_by(|a, b| a.id.cmp(&b.id));
        let mut expected_run: Vec<String> = whole_run.iter().map(|e| e.id.clone()).collect();
        expected_run.sort();
        let mut expected_skipped = whole_skipped;
        expected_skipped.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(run, expected_run);
        assert_eq!(skipped, expected_skipped);
        assert_eq!(skipped.len(), 3);
    }

    #[test]
    fn a_backend_that_can_run_nothing_is_refused_with_the_backend_to_use() {
        let c = campaign(
            "ebpf",
            &["futex:EAGAIN", "mmap:ENOMEM", "brk:ENOMEM", "munmap:EINVAL"],
        );
        let err = share(&c, &experiments(&c, &Plan::empty(&c)), Path::new("runs/x"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "the ebpf backend cannot run any of the 4 experiment(s) of the campaign in runs/x (futex-EAGAIN, \
                 mmap-ENOMEM, brk-ENOMEM, munmap-EINVAL); futex-EAGAIN: no LSM hook decides 'futex'; "
            ),
            "{err}"
        );
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(
            err.ends_with("\nhint: start the campaign with --backend seccomp"),
            "{err}"
        );
        // A shard whose experiments are all skipped is fine while another shard has some to run.
        let mut shard = campaign("ebpf", &["futex:EAGAIN", "openat:ENOENT"]);
        shard.shard = Some("1/2".parse().unwrap());
        let all = experiments(&shard, &Plan::empty(&shard));
        let (run, skipped) = share(&shard, &all, Path::new("x")).unwrap();
        assert!(run.is_empty());
        assert_eq!(skipped.len(), 1);
        // No experiment at all is not this error.
        let empty = campaign("ebpf", &[]);
        assert!(share(&empty, &[], Path::new("x")).unwrap().1.is_empty());
    }
}
