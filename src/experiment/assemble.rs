//! Assembling the report: what a run's injection log sums up to (the one place plain and service runs count
//! it), and the campaign's [`Report`] from its baseline, plan and results.

use super::{Campaign, Experiment};
use crate::model::{Baseline, ExperimentResult, FORMAT_VERSION, InjectionLog, Plan, Report, Usage};

/// The (syscall, errno, shape) triples that failed naturally in the baseline.
pub(super) type NaturalShapes =
    std::collections::BTreeSet<(crate::model::Syscall, crate::model::Errno, String)>;

/// How many of a run's injections landed on a shape that failed naturally with their errno; `None` when the
/// baseline or the log has no shapes, or the log is truncated (the injections after it are unknown).
fn realistic(log: Option<&InjectionLog>, natural: Option<&NaturalShapes>) -> Option<u64> {
    let (log, natural) = (log.filter(|l| l.truncated_after.is_none())?, natural?);
    let mut n = 0;
    for inj in &log.injections {
        let shape = inj.shape.as_ref()?.to_string();
        if natural.contains(&(inj.syscall, inj.errno, shape)) {
            n += 1;
        }
    }
    Some(n)
}

/// What a run's injection log sums up to; zeros (and `None`) without a log.
pub(super) struct LogSums {
    pub(super) injected: u64,
    pub(super) matched: u64,
    pub(super) usage: Option<Usage>,
    /// [`realistic`].
    pub(super) realistic: Option<u64>,
}

impl LogSums {
    pub(super) fn of(log: Option<&InjectionLog>, natural: Option<&NaturalShapes>) -> LogSums {
        LogSums {
            injected: log.map_or(0, |l| l.rules.iter().map(|r| r.injected).sum()),
            matched: log.map_or(0, |l| l.rules.iter().map(|r| r.matched).sum()),
            usage: log.and_then(|l| l.usage),
            realistic: realistic(log, natural),
        }
    }
}

/// The backend the runs of `experiments` injected with: the campaign's, or without `--backend` the one each
/// run's `phoebe inject` chose ([`backend::for_rules`](crate::backend::for_rules): seccomp unless a rule needs ptrace), those of all
/// experiments joined with `, ` in the order they first ran; [`super::campaign::AUTO_BACKEND`] only when no
/// experiment ran.
fn backend_that_ran(campaign: &Campaign, experiments: &[ExperimentResult]) -> String {
    if campaign.backend.is_some() {
        return campaign.backend_name().to_owned();
    }
    let mut ran: Vec<&str> = Vec::new();
    for e in experiments {
        let name = crate::backend::for_rules(&e.faults).name();
        if !ran.contains(&name) {
            ran.push(name);
        }
    }
    if ran.is_empty() {
        campaign.backend_name().to_owned()
    } else {
        ran.join(", ")
    }
}

/// The campaign's report: its baseline, the natural failure rate of each model's shape per interval, and the
/// results; nothing pending, skipped or interrupted (the caller says).
pub(super) fn report(
    campaign: &Campaign,
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
        command: campaign.command.clone(),
        backend: backend_that_ran(campaign, &experiments),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        seed: campaign.seed,
        shard: campaign.shard.map(|s| s.to_string()),
        baseline: baseline.clone(),
        natural_rates,
        interval_ms: plan.interval_ms,
        experiments,
        pending: Vec::new(),
        skipped: Vec::new(),
        interrupted: false,
    }
}
