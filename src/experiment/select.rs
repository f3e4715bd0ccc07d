//! Which experiments a campaign has (their ids), which of them are this shard's, and which its backend cannot
//! run (skipped, from the fault alone) — one function, [`skip_reason`], answers the last, so that a resume and
//! every shard decide alike; and a backend this machine cannot run, refused before any run.

use std::path::Path;

use super::{Campaign, ExperimentError};
use crate::{
    backend::{BackendError, BackendKind, ebpf},
    decide::Decider,
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
pub fn skip_reason(backend: Option<BackendKind>, faults: &[FaultSpec]) -> Option<String> {
    if backend != Some(BackendKind::Ebpf) {
        return None;
    }
    match ebpf::inject::plan(&Decider::new(faults.to_vec(), 0)) {
        Ok(_) => None,
        Err(BackendError::Unsupported { reason, .. }) => Some(reason),
        Err(other) => Some(other.to_string()),
    }
}

pub use crate::model::report::fallback_backend;

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
    let skipped: Vec<Skipped> = all
        .iter()
        .filter_map(|e| {
            skip_reason(campaign.backend, &e.faults).map(|reason| Skipped {
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
            backend: campaign.backend_name().to_owned(),
            dir: dir.to_path_buf(),
            count: all.len(),
            ids: ids.join(", "),
            first: format!("{}: {}", first.id, first.reason),
            fallback: fallback_backend(&skipped),
        });
    }
    Ok(skipped)
}

/// Refuses a backend this machine cannot inject with, before anything runs: `phoebe doctor`'s own probe for it
/// answers (`doctor::check`). The per-run choice (`None`) is `phoebe inject`'s, so it is not probed.
pub(super) fn backend_usable(backend: Option<BackendKind>) -> Result<(), ExperimentError> {
    let Some(kind) = backend else {
        return Ok(());
    };
    let verdict = crate::doctor::check(kind, "inject");
    if verdict.available {
        return Ok(());
    }
    Err(ExperimentError::BackendUnavailable {
        backend: kind.name().to_owned(),
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
