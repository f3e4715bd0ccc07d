//! `Plan`: the error models synthesized from an observation (DESIGN §6), one experiment each.
//!
//! Plain data; `crate::synth` makes it.

use serde::{Deserialize, Serialize};

use super::{
    fault::{Action, FaultSpec},
    names::Syscall,
    shape::Shape,
};

/// Every threshold of the amplification, written into the plan so that it says how it was made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SynthSettings {
    /// A pair whose rate quantile is below this is sporadic (paper: 0.05).
    pub sporadic_below: f64,
    /// Sporadic pairs are injected at this fixed rate (paper: 0.05).
    pub fixed_rate: f64,
    /// A non-sporadic pair whose rate variance is above this is fluctuating (paper: 0.001).
    pub variance_above: f64,
    /// Steady pairs are injected at quantile × factor, capped at 1 (paper: 1.2).
    pub factor: f64,
    /// The quantile of the per-interval rates that stands for "max" (default 0.95; 1.0 is the true max).
    pub quantile: f64,
    /// Models by call shape (DESIGN §6) where the observation has shapes; `false` (`--shapes off`) gives one rule
    /// per (syscall, errno) over all of the syscall's calls, as before shapes.
    #[serde(default = "yes")]
    pub shapes: bool,
    /// A rate is taken over at least this many calls: sparser consecutive intervals are pooled into one sample
    /// (a rate over one or two calls is 0 or 1, and p95 of such rates is 1). Absent in plans written before
    /// pooling: 1, one sample per interval.
    #[serde(default = "one")]
    pub min_calls: u64,
    /// Which tiers the plan holds (`--explore`): the observed (realistic) models alone, or the plausible ones
    /// after them. Absent in plans and campaigns written before the tiers: observed.
    #[serde(default, skip_serializing_if = "Explore::is_observed")]
    pub explore: Explore,
}

fn yes() -> bool {
    true
}

fn one() -> u64 {
    1
}

/// `--explore`: what a campaign tries beyond the errors the program met by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Explore {
    /// The realistic models of the errors observed in the baseline, nothing else.
    #[default]
    Observed,
    /// After those, one experiment per catalogue entry whose call shape the program used (DESIGN §6).
    Plausible,
}

impl Explore {
    pub fn is_observed(&self) -> bool {
        *self == Explore::Observed
    }

    pub fn name(self) -> &'static str {
        match self {
            Explore::Observed => "observed",
            Explore::Plausible => "plausible",
        }
    }
}

impl std::fmt::Display for Explore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The tier of a model: where its error comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// An error the program met in the baseline, amplified (the realistic models).
    #[default]
    Observed,
    /// An error of the catalogue on a call shape the program used, at the sporadic fixed rate.
    Plausible,
}

impl Tier {
    pub const ALL: [Tier; 2] = [Tier::Observed, Tier::Plausible];

    pub fn is_observed(&self) -> bool {
        *self == Tier::Observed
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Observed => "observed",
            Tier::Plausible => "plausible",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown tier '{s}' (tiers: observed, plausible)"))
    }
}

impl Default for SynthSettings {
    fn default() -> Self {
        SynthSettings {
            sporadic_below: 0.05,
            fixed_rate: 0.05,
            variance_above: 0.001,
            factor: 1.2,
            quantile: 0.95,
            shapes: true,
            min_calls: 10,
            explore: Explore::Observed,
        }
    }
}

/// How a pair's natural error rate behaves over the observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Rare: the quantile is below `sporadic_below`.
    Sporadic,
    /// Common and variable: quantile ≥ `sporadic_below` and variance > `variance_above`.
    Fluctuating,
    /// Common and regular.
    Steady,
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Category::Sporadic => "sporadic",
            Category::Fluctuating => "fluctuating",
            Category::Steady => "steady",
        })
    }
}

/// Statistics of one (syscall, errno) pair's per-interval error rate, over every interval in which the syscall
/// was called (zero-error intervals included).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateStats {
    pub mean: f64,
    /// Population variance.
    pub variance: f64,
    pub p5: f64,
    /// The configured quantile (`settings.quantile`, p95 by default).
    pub quantile: f64,
    pub max: f64,
    pub failures: u64,
    pub calls: u64,
    /// Intervals in which the syscall was called.
    pub intervals: u64,
    /// Of those, intervals in which it failed with this errno.
    pub intervals_with_error: u64,
    /// The rates the statistics rest on: the intervals, consecutive ones pooled until each sample has at least
    /// `settings.min_calls` calls. Absent in plans written before pooling: one per interval.
    #[serde(default)]
    pub samples: u64,
}

/// A model whose statistics rest on fewer intervals than this says so: its quantile and variance say little
/// (two intervals that both failed give p95 = 1).
pub const MIN_SAMPLES: u64 = 20;

impl RateStats {
    /// Do these statistics rest on fewer than [`MIN_SAMPLES`] rates?
    pub fn too_few_samples(&self) -> bool {
        self.sample_count() < MIN_SAMPLES
    }

    /// How many rates the statistics rest on ([`RateStats::samples`]; plans written before pooling: the intervals).
    pub fn sample_count(&self) -> u64 {
        if self.samples == 0 {
            self.intervals
        } else {
            self.samples
        }
    }

    /// Failures / calls over the whole observation: the chance that a call fails by itself.
    pub fn natural_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.failures as f64 / self.calls as f64
        }
    }
}

/// One amplified, realistic error model: what one experiment injects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorModel {
    /// Stable name, `syscall-ERRNO` (e.g. `openat-ENOENT`; `read-short-pipe` for a partial transfer): file names
    /// and report rows use it.
    pub id: String,
    pub syscall: Syscall,
    /// `"errno": "ENOENT"`; a plausible partial transfer has `"short": "1"` instead.
    #[serde(flatten)]
    pub action: Action,
    pub stats: RateStats,
    pub category: Category,
    /// The rule that was applied, in words (e.g. `p95 0.31 ≥ 0.05 and variance 0.004 > 0.001: target = p95`).
    pub rule: String,
    /// The rate the experiment aims at (natural failures included).
    pub target_rate: f64,
    /// The injection probability, compensated for the natural rate: (target − natural) / (1 − natural).
    pub probability: f64,
    /// The rule of the model's main shape, or its only rule when it has no shapes.
    pub fault: FaultSpec,
    /// One rule per call shape that failed naturally with the errno, most failures first (DESIGN §6); empty for a
    /// model without shapes. The headline figures above are those of the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shapes: Vec<ShapeModel>,
    /// `plausible` for a catalogue error the program never met (`--explore plausible`); absent: `observed`.
    #[serde(default, skip_serializing_if = "Tier::is_observed")]
    pub tier: Tier,
}

impl ErrorModel {
    /// The rules the model's experiment injects: one per shape, or the one rule.
    pub fn faults(&self) -> Vec<FaultSpec> {
        if self.shapes.is_empty() {
            vec![self.fault.clone()]
        } else {
            self.shapes.iter().map(|s| s.fault.clone()).collect()
        }
    }
}

/// The rule for one call shape of a model: that shape's own statistics, category and compensated probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapeModel {
    pub shape: Shape,
    pub stats: RateStats,
    pub category: Category,
    pub rule: String,
    pub target_rate: f64,
    pub probability: f64,
    pub fault: FaultSpec,
}

/// A (syscall, errno) pair seen but not turned into a model, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Excluded {
    pub syscall: Syscall,
    /// `"errno": "ENOENT"`, or `"short": "1"` for a partial transfer of the catalogue.
    #[serde(flatten)]
    pub action: Action,
    /// The call shape excluded, when the pair was synthesized by shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<String>,
    pub reason: String,
}

/// The models of one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    /// The command the observation was made of.
    pub command: Vec<String>,
    /// Monitoring interval of the observation, in milliseconds.
    pub interval_ms: u64,
    pub settings: SynthSettings,
    /// One experiment per model, most failing pairs first.
    pub models: Vec<ErrorModel>,
    pub excluded: Vec<Excluded>,
}
