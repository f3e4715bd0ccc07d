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
//! - `baseline`, `run`: the baseline runs, and the runs of one experiment (seeds included);
//! - `service`: service mode's runs (ready, rounds, the injection switch);
//! - `assemble`: a run's sums from its log, and the [`Report`];
//! - `verdict`: judging (pure); `check`: a `campaign.json` read back.
//!
//! Does not own: deciding (`crate::decide`), synthesis (`crate::synth`), rendering (`crate::report`).

mod assemble;
mod baseline;
mod campaign;
mod check;
mod run;
mod select;
pub mod service;
mod store;
mod supervise;
pub mod verdict;

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

pub use self::{
    campaign::{AUTO_BACKEND, Campaign, Difference, Shard},
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
    files::{self, FileError},
    model::{Baseline, ExperimentResult, Plan, Report, Skipped},
    synth,
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
    backend_usable(campaign.backend)?;
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
            let mut report =
                assemble::report(campaign, &baseline, &Plan::empty(campaign), &[], &[], Vec::new());
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
        progress.skipped(campaign.backend_name(), &skipped, mine.len() + skipped.len());
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
    let mut report = assemble::report(campaign, &baseline, &plan, &all, &observation.intervals, results);
    report.pending = pending;
    report.skipped = skipped;
    report.interrupted = control.interrupted();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        backend::BackendKind,
        model::{FaultSpec, SynthSettings},
    };

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

    /// The backend named `name` ([`AUTO_BACKEND`]: none).
    fn kind(name: &str) -> Option<BackendKind> {
        [BackendKind::Ptrace, BackendKind::Seccomp, BackendKind::Ebpf]
            .into_iter()
            .find(|k| k.name() == name)
    }

    fn campaign(backend: &str, faults: &[&str]) -> Campaign {
        Campaign {
            version: 1,
            command: vec!["app".into()],
            backend: kind(backend),
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
            ("--backend", Box::new(|c| c.backend = kind("ptrace"))),
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
        other.backend = kind("ptrace");
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
        let reason =
            |backend: &str, fault: &str| skip_reason(kind(backend), &[FaultSpec::parse(fault).unwrap()]);
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

    /// The report fixtures' skip reasons (`report::fixtures::ebpf_reason`, which may not ask the backend) start
    /// as the eBPF backend's own do.
    #[test]
    fn the_report_fixtures_skip_reasons_are_the_ebpf_backends() {
        for s in crate::report::fixtures::sample_with_skipped().skipped {
            let own = skip_reason(kind("ebpf"), &s.faults).expect("ebpf cannot run it");
            assert_eq!(own.split(';').next(), s.reason.split(';').next(), "{own}");
            assert_eq!(own.rsplit(';').next(), s.reason.rsplit(';').next(), "{own}");
        }
    }
}
