//! Where a campaign's files go and how they are read back: the directory layout, the parts that carry the
//! campaign's fingerprint (`baseline.json`, `result.json`), and what `--resume` refuses.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{Campaign, ExperimentError};
use crate::{
    files,
    model::{Baseline, Errno, FORMAT_VERSION, Interval, Observation, Syscall},
};

/// Where the files of a campaign go.
pub(super) struct Layout {
    pub(super) root: PathBuf,
}

impl Layout {
    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    /// `campaign.json`, after checking that the campaign saved there (if any) is `campaign`: a campaign
    /// directory holds one campaign, and its results are reused only under the same settings.
    pub(super) fn same_campaign(&self, campaign: &Campaign) -> Result<PathBuf, ExperimentError> {
        let saved = self.path("campaign.json");
        if saved.exists() {
            let found: Campaign = files::load(&saved, "campaign")?;
            if found.command != campaign.command {
                return Err(ExperimentError::OtherCampaign {
                    dir: self.root.clone(),
                    found: found.command,
                    wanted: campaign.command.clone(),
                });
            }
            if let Some(difference) = found.difference(campaign) {
                return Err(ExperimentError::OtherSettings {
                    dir: self.root.clone(),
                    difference,
                });
            }
        }
        Ok(saved)
    }

    pub(super) fn mkdir(&self, rel: &str) -> Result<PathBuf, ExperimentError> {
        let path = self.path(rel);
        fs::create_dir_all(&path).map_err(|source| ExperimentError::Dir {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

/// A campaign file that is a part of the report on its own (`baseline.json`, `result.json`): the part, with the
/// `version` every phoebe file carries.
/// Also the fingerprint of the campaign that wrote it, so that a resume never reuses another campaign's result.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Versioned<T> {
    version: u32,
    /// [`Campaign::fingerprint`]; absent in files written before fingerprints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    campaign: Option<String>,
    #[serde(flatten)]
    inner: T,
}

impl<T: Clone> Versioned<T> {
    pub(super) fn new(inner: &T, campaign: &Campaign) -> Self {
        Versioned {
            version: FORMAT_VERSION,
            campaign: Some(campaign.fingerprint.clone()),
            inner: inner.clone(),
        }
    }
}

/// Loads a part of the campaign an earlier run wrote, refusing one written under another fingerprint than the
/// campaign's (saved in `saved`).
pub(super) fn load_versioned<T: serde::de::DeserializeOwned>(
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

/// The baseline runs' observations, one after the other (their intervals concatenated), and the (syscall, errno)
/// pairs that failed only outside the workload. With `--interval auto` each run adapted its own interval: all are
/// brought to the longest (each a power-of-two multiple of the others, [`Observation::coarsen`]) so that every
/// interval is one sample of the same length. A service run keeps only the intervals of its workload
/// (`workload_ms`: from the first round's start to the last round's end), so that start-up and shutdown calls
/// make no model; the pairs that failed only there are returned, for the plan to say why they are not models.
pub(super) fn merged_observation(
    layout: &Layout,
    baseline: &Baseline,
    runs: u32,
) -> Result<(Observation, BTreeSet<(Syscall, Errno)>), ExperimentError> {
    let mut all: Vec<Observation> = Vec::new();
    for k in 1..=runs {
        let path = layout.path(&format!("baseline/run-{k}.observation.json"));
        let obs: Observation = files::load(&path, "observation")?;
        if obs.interval_ms == 0 {
            return Err(ExperimentError::Inner {
                what: format!("baseline run {k}"),
                stderr: format!("{} has \"interval_ms\": 0", path.display()),
            });
        }
        all.push(obs);
    }
    let longest = all
        .iter()
        .map(|o| o.interval_ms)
        .max()
        .expect("at least one baseline run");
    let mut merged: Option<Observation> = None;
    let mut inside = BTreeSet::new();
    let mut outside = BTreeSet::new();
    for (k, mut obs) in all.into_iter().enumerate() {
        if longest % obs.interval_ms != 0 {
            return Err(ExperimentError::Inner {
                what: "the baseline".into(),
                stderr: format!(
                    "its runs were observed with intervals of {} ms and {longest} ms, which do not divide: \
                     they cannot be pooled",
                    obs.interval_ms
                ),
            });
        }
        obs.coarsen(longest / obs.interval_ms);
        if let Some(run) = baseline.runs.get(k)
            && let Some(window) = run.workload_ms
        {
            let window = observed_window(window, run.duration_ms, obs.duration_ms);
            let (during, around) = split_at_window(std::mem::take(&mut obs.intervals), longest, window);
            inside.extend(failed_pairs(&during));
            outside.extend(failed_pairs(&around));
            obs.duration_ms = longest * during.len() as u64;
            obs.intervals = during;
        }
        match &mut merged {
            None => merged = Some(obs),
            Some(m) => {
                m.duration_ms += obs.duration_ms;
                m.intervals.extend(obs.intervals);
                m.runs += obs.runs;
                m.lost = m.lost.saturating_add(obs.lost);
            }
        }
    }
    let only_outside = outside.difference(&inside).copied().collect();
    Ok((merged.expect("at least one baseline run"), only_outside))
}

/// The workload's window `[from, to]` (ms from the inner observer's spawn) on the observation's clock, which
/// starts at the target's exec, some milliseconds later: shifted that much, the start would move earlier and the
/// end too. The start is kept as it is (late: start-up never counts as workload) and the end moved earlier by all
/// of phoebe's own time around the target (`run_ms` wall time from spawn to stop minus `observed_ms` from exec
/// to end), so that the service's shutdown — its SIGTERM's `EINTR` — never counts as workload either. Found on
/// redis: its shutdown `epoll_wait-EINTR` landed in the last interval of the window and became a model.
fn observed_window([from, to]: [u64; 2], run_ms: u64, observed_ms: u64) -> [u64; 2] {
    let end = to.saturating_sub(run_ms.saturating_sub(observed_ms));
    if end > from { [from, end] } else { [from, to] }
}

/// The intervals (of `interval_ms` each, from 0) that lie wholly within `[from, to]` ms, and the others. When the
/// window is shorter than that, the intervals it overlaps count as within.
fn split_at_window(
    intervals: Vec<Interval>,
    interval_ms: u64,
    [from, to]: [u64; 2],
) -> (Vec<Interval>, Vec<Interval>) {
    let within = |i: usize, whole: bool| {
        let (start, end) = (i as u64 * interval_ms, (i as u64 + 1) * interval_ms);
        if whole {
            start >= from && end <= to
        } else {
            end > from && start < to
        }
    };
    let whole = (0..intervals.len()).any(|i| within(i, true));
    let (mut during, mut around) = (Vec::new(), Vec::new());
    for (i, interval) in intervals.into_iter().enumerate() {
        if within(i, whole) {
            during.push(interval);
        } else {
            around.push(interval);
        }
    }
    (during, around)
}

/// The (syscall, errno) pairs that failed at least once in `intervals`.
fn failed_pairs(intervals: &[Interval]) -> BTreeSet<(Syscall, Errno)> {
    intervals
        .iter()
        .flat_map(|i| &i.syscalls)
        .flat_map(|(sc, stats)| {
            stats
                .errors
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(e, _)| (*sc, *e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intervals(n: usize) -> Vec<Interval> {
        (0..n)
            .map(|i| {
                let mut interval = Interval::default();
                interval
                    .syscalls
                    .entry(Syscall::parse("read").unwrap())
                    .or_default()
                    .calls = i as u64;
                interval
            })
            .collect()
    }

    fn calls(intervals: &[Interval]) -> Vec<u64> {
        intervals
            .iter()
            .map(|i| i.syscalls.values().next().unwrap().calls)
            .collect()
    }

    #[test]
    fn the_workload_keeps_the_intervals_wholly_within_it() {
        // 100 ms intervals; the rounds ran from 250 to 720 ms.
        let (during, around) = split_at_window(intervals(10), 100, [250, 720]);
        assert_eq!(calls(&during), [3, 4, 5, 6]);
        assert_eq!(calls(&around), [0, 1, 2, 7, 8, 9]);
    }

    /// Regression (redis): 363 ms of wall time for 340 ms observed; the rounds ended at 350 ms, the shutdown's
    /// EINTR fell at 327 ms of the observation, inside [320, 336) — an interval that ended before 350.
    #[test]
    fn a_services_shutdown_is_not_workload() {
        assert_eq!(observed_window([83, 350], 363, 340), [83, 327]);
        let (during, _) = split_at_window(intervals(22), 16, observed_window([83, 350], 363, 340));
        assert_eq!(
            calls(&during).last(),
            Some(&19),
            "[304, 320) is the last interval kept"
        );
        // phoebe's overhead longer than the window: the window as it was.
        assert_eq!(observed_window([80, 100], 500, 300), [80, 100]);
    }

    #[test]
    fn a_workload_shorter_than_an_interval_keeps_the_intervals_it_overlaps() {
        let (during, around) = split_at_window(intervals(4), 100, [130, 210]);
        assert_eq!(calls(&during), [1, 2]);
        assert_eq!(calls(&around), [0, 3]);
    }
}
