//! Which experiments a campaign has (their ids), which of them are this shard's, and which its backend cannot
//! run (skipped, from the fault alone) — one function, [`skip_reason`], answers the last, so that a resume and
//! every shard decide alike; and a backend this machine cannot run, refused before any run.

use std::path::Path;

use super::{Campaign, ExperimentError};
use crate::{
    backend::{self, BackendError, BackendKind},
    hint::Hint,
    model::{ErrorModel, FaultSpec, Plan, Skipped},
};

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
/// The reason is the report's text: a refusal's hint follows it on a `hint:` line.
pub fn skip_reason(backend: Option<BackendKind>, faults: &[FaultSpec]) -> Option<String> {
    refusal(backend, faults).map(|(reason, hint)| with_hint(reason, hint))
}

/// A skip reason as reports keep it: the refusal's hint on a `hint:` line after it.
fn with_hint(reason: String, hint: Option<Hint>) -> String {
    match hint {
        Some(hint) => format!("{reason}\nhint: {hint}"),
        None => reason,
    }
}

/// [`skip_reason`]'s reason and hint apart.
fn refusal(backend: Option<BackendKind>, faults: &[FaultSpec]) -> Option<(String, Option<Hint>)> {
    let faults: Vec<&FaultSpec> = faults.iter().collect();
    match backend::backend(backend?).campaign_skips(&faults)? {
        BackendError::Unsupported { reason, hint, .. } => Some((reason, hint)),
        other => Some((other.to_string(), None)),
    }
}

/// A backend that runs every one of `skipped`, named as `--backend` takes it: the backends' answer
/// (`backend::for_rules`, from their own checks).
pub fn fallback_backend(skipped: &[Skipped]) -> &'static str {
    backend::for_rules(skipped.iter().flat_map(|s| &s.faults)).name()
}

/// This campaign's part of `all` (its shard's, in plan order): the experiments to run, and those its backend
/// cannot run. A pure function of the campaign and the plan, so a resume and every shard decide alike; an
/// error when the backend can run none of the whole plan (`dir`: the campaign directory, for the message).
pub(super) fn share<'a>(
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
    let mut first_refusal = None;
    let skipped: Vec<Skipped> = all
        .iter()
        .filter_map(|e| {
            let (reason, hint) = refusal(campaign.backend, &e.faults)?;
            first_refusal.get_or_insert_with(|| (e.id.clone(), reason.clone(), hint));
            Some(Skipped {
                id: e.id.clone(),
                faults: e.faults.clone(),
                reason: with_hint(reason, hint),
            })
        })
        .collect();
    if let Some((first_id, first_reason, first_hint)) = first_refusal
        && skipped.len() == all.len()
    {
        const SHOWN: usize = 10;
        let mut ids: Vec<String> = skipped.iter().take(SHOWN).map(|s| s.id.clone()).collect();
        if skipped.len() > SHOWN {
            ids.push(format!("{} more", skipped.len() - SHOWN));
        }
        return Err(ExperimentError::NothingRunnable {
            backend: campaign.backend_name().to_owned(),
            dir: dir.to_path_buf(),
            count: all.len(),
            ids: ids.join(", "),
            first: format!("{first_id}: {first_reason}"),
            first_hint,
            fallback: fallback_backend(&skipped),
        });
    }
    Ok(skipped)
}

/// Refuses a backend this machine cannot inject with, before anything runs: the backend's own probe answers
/// (`Backend::probe`, what `phoebe doctor` prints). The per-run choice (`None`) is `phoebe inject`'s, so it is
/// not probed.
pub(super) fn backend_usable(backend: Option<BackendKind>) -> Result<(), ExperimentError> {
    let Some(kind) = backend else {
        return Ok(());
    };
    let inject = backend::backend(kind).probe().inject;
    if inject.available {
        return Ok(());
    }
    Err(ExperimentError::BackendUnavailable {
        backend: kind.name().to_owned(),
        reason: inject.reason,
        hint: inject
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
                // `read-EIO`; `read-short-1`, `write-short-50pct` for a partial transfer (an id is a file name
                // and a link in report.html, so no `%`); a latency fault has no errno: `read-delay50ms` (no spaces,
                // so the id stays a plain file name).
                let what = match (f.short, f.errnos.first(), f.delay) {
                    (Some(short), _, _) => format!("short-{}", short.id_part()),
                    (None, Some((e, _)), _) => e.to_string(),
                    (None, None, Some(delay)) if f.is_delay_only() => {
                        format!("delay{}", humantime::format_duration(delay)).replace(' ', "")
                    }
                    _ => String::new(),
                };
                let names: Vec<&str> = f.syscalls.iter().map(|s| s.name()).collect();
                Experiment {
                    id: format!("{}-{what}", names.join("+")),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AUTO_BACKEND,
        campaign::tests::{campaign, kind},
    };

    #[test]
    fn given_faults_get_unique_ids() {
        let campaign = campaign(
            "ptrace",
            &[
                "openat:ENOENT",
                "openat:ENOENT:p=0.5",
                "read,write:EIO",
                "read:short=1",
                "recvfrom,sendto:short=50%",
            ],
        );
        let ids: Vec<String> = experiments(&campaign, &campaign.empty_plan())
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(
            ids,
            [
                "openat-ENOENT",
                "openat-ENOENT-2",
                "read+write-EIO",
                "read-short-1",
                "recvfrom+sendto-short-50pct"
            ]
        );
    }

    /// A latency fault has no errno to name its experiment by: the delay does, without the space humantime puts
    /// between units (the id is a directory name).
    #[test]
    fn latency_faults_are_named_by_their_delay() {
        let campaign = campaign(
            "seccomp",
            &["read:delay=50ms:p=1", "read:delay=1s 500ms", "read:EIO:delay=5ms"],
        );
        let ids: Vec<String> = experiments(&campaign, &campaign.empty_plan())
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["read-delay50ms", "read-delay1s500ms", "read-EIO"]);
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
        let latency = reason("ebpf", "read:delay=10ms").expect("an LSM hook cannot hold a call");
        assert!(
            latency.contains("use --backend seccomp or --backend ptrace"),
            "{latency}"
        );
        for backend in ["ptrace", "seccomp"] {
            assert_eq!(reason(backend, "read:delay=10ms:p=0.5"), None, "{backend}");
        }
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
        let all = experiments(&c, &c.empty_plan());
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
        let (_, skipped) = share(&exit, &experiments(&exit, &exit.empty_plan()), Path::new("out")).unwrap();
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
        let all = experiments(&whole, &whole.empty_plan());
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
        let err = share(&c, &experiments(&c, &c.empty_plan()), Path::new("runs/x")).unwrap_err();
        let chain = crate::hint::chain(&err);
        assert!(
            chain.message().starts_with(
                "the ebpf backend cannot run any of the 4 experiment(s) of the campaign in runs/x (futex-EAGAIN, \
                 mmap-ENOMEM, brk-ENOMEM, munmap-EINVAL); futex-EAGAIN: no LSM hook decides 'futex'; "
            ),
            "{chain:?}"
        );
        assert_eq!(err.to_string().lines().count(), 1, "{err}");
        assert_eq!(chain.hints(), ["start the campaign with --backend seccomp"]);
        // A shard whose experiments are all skipped is fine while another shard has some to run.
        let mut shard = campaign("ebpf", &["futex:EAGAIN", "openat:ENOENT"]);
        shard.shard = Some("1/2".parse().unwrap());
        let all = experiments(&shard, &shard.empty_plan());
        let (run, skipped) = share(&shard, &all, Path::new("x")).unwrap();
        assert!(run.is_empty());
        assert_eq!(skipped.len(), 1);
        // No experiment at all is not this error.
        let empty = campaign("ebpf", &[]);
        assert!(share(&empty, &[], Path::new("x")).unwrap().1.is_empty());
    }

    /// A refusal with a hint of its own (short=) keeps it on its `hint:` line in the skip reason the reports
    /// keep, and gives it before the backend to use when nothing can run.
    #[test]
    fn a_refusals_hint_is_in_the_skip_reason_and_first_when_nothing_runs() {
        let c = campaign("ebpf", &["read:short=1"]);
        let all = experiments(&c, &c.empty_plan());
        let reason = skip_reason(kind("ebpf"), &all[0].faults).unwrap();
        assert_eq!(
            reason,
            format!(
                "LSM hooks decide before the call runs and cannot change its count\nhint: {}",
                Hint::PtraceRunsShort
            )
        );
        let err = share(&c, &all, Path::new("runs/x")).unwrap_err();
        let chain = crate::hint::chain(&err);
        assert!(
            chain
                .message()
                .ends_with(": LSM hooks decide before the call runs and cannot change its count"),
            "{chain:?}"
        );
        assert_eq!(
            chain.hints(),
            [
                Hint::PtraceRunsShort.text(),
                "start the campaign with --backend ptrace"
            ]
        );
    }

    /// The report fixtures' skip reasons (`model::fixtures::ebpf_reason`, which may not ask the backend) start
    /// as the eBPF backend's own do.
    #[test]
    fn the_report_fixtures_skip_reasons_are_the_ebpf_backends() {
        let report = crate::model::fixtures::sample_with_skipped();
        for s in &report.skipped {
            let own = skip_reason(kind("ebpf"), &s.faults).expect("ebpf cannot run it");
            assert_eq!(own.split(';').next(), s.reason.split(';').next(), "{own}");
            assert_eq!(own.rsplit(';').next(), s.reason.rsplit(';').next(), "{own}");
        }
        // And the backend that runs them is the one the backends' rule checks name.
        assert_eq!(
            report.skipped_backend,
            crate::backend::runs_skipped(&report.skipped)
        );
        assert_eq!(crate::backend::runs_skipped(&[]), None);
    }
}
