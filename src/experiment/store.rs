//! Where a campaign's files go and how they are read back: the directory layout, the parts that carry the
//! campaign's fingerprint (`baseline.json`, `result.json`), and what `--resume` refuses.

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{Campaign, ExperimentError};
use crate::{
    files,
    model::{FORMAT_VERSION, Observation},
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

/// The baseline runs' observations, one after the other (their intervals concatenated). With `--interval auto`
/// each run adapted its own interval: all are brought to the longest (each a power-of-two multiple of the
/// others, [`Observation::coarsen`]) so that every interval is one sample of the same length.
pub(super) fn merged_observation(layout: &Layout, runs: u32) -> Result<Observation, ExperimentError> {
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
    for mut obs in all {
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
