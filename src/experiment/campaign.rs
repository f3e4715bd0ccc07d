//! The campaign: everything that defines one (`campaign.json`), its shards, and its fingerprint (what
//! `--resume` compares and what every result and the baseline carry).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{service, verdict};
use crate::{
    backend::BackendKind,
    model::{FORMAT_VERSION, FaultSpec, IntervalChoice, Plan, SynthSettings},
};

/// How `campaign.json` (and the report) name `Campaign::backend` when none was given: each run lets
/// `phoebe inject` choose.
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
    /// The injecting backend; `None`: each run's `phoebe inject` chooses. In `campaign.json`: its name, or
    /// [`AUTO_BACKEND`] (as every phoebe wrote it).
    #[serde(with = "backend_name")]
    pub backend: Option<BackendKind>,
    pub runs: u32,
    pub baseline_runs: u32,
    /// Per run; `null`: a multiple of the slowest baseline run.
    pub timeout_ms: Option<u64>,
    /// Shell command that validates the target's output or state; exit 0 = good.
    pub check: Option<String>,
    /// Shell command run before every run to restore the target's state.
    pub reset: Option<String>,
    pub seed: u64,
    /// The baseline's monitoring interval; `null`: adapted to the baseline (`--interval auto`).
    pub interval_ms: Option<u64>,
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
    /// `--tests junit:GLOB`: the JUnit XML files the test suite writes, a glob relative to the directory the
    /// campaign runs in; `null` to read the results from the runs' stdout (libtest, pytest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<String>,
    /// `--log-file`: files the program writes its own log to, read for each finding's evidence (what the run
    /// appended). Evidence only: no part of the fingerprint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_files: Vec<std::path::PathBuf>,
    /// `--observer`: what observes the baseline runs. Left out for ptrace, the default, so campaigns written
    /// before it load unchanged.
    #[serde(default, skip_serializing_if = "Observer::is_ptrace")]
    pub observer: Observer,
    /// [`Campaign::fingerprint`] when the file was written; every result and the baseline carry it too.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
}

/// What observes a campaign's baseline runs (`phoebe exec --observer`; without it, eBPF where it can observe,
/// as `backend::default_observer` decides). The serde default, ptrace, is what campaigns written before
/// `--observer` used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Observer {
    /// ptrace: every call with its whole shape (paths, descriptor kinds), at the price of two stops per call,
    /// which slows a busy program and inflates what depends on timing (futex contention).
    #[default]
    Ptrace,
    /// eBPF: in the kernel, at a small fraction of ptrace's cost; shapes from registers, paths (relative ones
    /// and files' behind descriptors walked in the kernel) and descriptor kinds (what stays unknown — a deleted
    /// file's path, close's descriptor, epoll_ctl's registration, … — excludes the models that need it, with the
    /// reason).
    Ebpf,
}

impl Observer {
    pub fn is_ptrace(&self) -> bool {
        *self == Observer::Ptrace
    }

    pub fn name(self) -> &'static str {
        match self {
            Observer::Ptrace => "ptrace",
            Observer::Ebpf => "ebpf",
        }
    }

    pub fn backend(self) -> BackendKind {
        match self {
            Observer::Ptrace => BackendKind::Ptrace,
            Observer::Ebpf => BackendKind::Ebpf,
        }
    }
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
    /// The baseline's monitoring interval, as `phoebe observe --interval` takes it.
    pub fn interval(&self) -> IntervalChoice {
        self.interval_ms.map_or(IntervalChoice::Auto, |ms| {
            IntervalChoice::Fixed(Duration::from_millis(ms))
        })
    }

    /// The backend's name, or [`AUTO_BACKEND`]: what `campaign.json` and the fingerprint say (the report names
    /// the backend that ran).
    pub fn backend_name(&self) -> &'static str {
        self.backend.map_or(AUTO_BACKEND, BackendKind::name)
    }

    /// Every setting that changes a campaign's results, by the flag that sets it: the command, backend, seed,
    /// faults or plan, runs, baseline runs and steady state, timeout, check, reset, interval, synthesis
    /// settings (the shapes mode and the explored tiers included) and service mode. Not the shard (shards share one campaign), nor
    /// `--fail-on` (it changes only the exit status).
    pub fn settings(&self) -> Vec<(&'static str, serde_json::Value)> {
        use serde_json::{Value, json};
        let s = &self.settings;
        let service = self.service.as_ref();
        vec![
            ("-- CMD", json!(self.command)),
            ("--backend", json!(self.backend_name())),
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
            // Null at the default, so that campaigns made before pooling keep their fingerprints.
            (
                "--min-calls",
                json!(Some(s.min_calls).filter(|n| *n != SynthSettings::default().min_calls)),
            ),
            ("--shapes", json!(s.shapes)),
            // Null when observed, so that campaigns made before the tiers keep their fingerprints.
            (
                "--explore",
                if s.explore.is_observed() {
                    Value::Null
                } else {
                    json!(s.explore.name())
                },
            ),
            ("--service", json!(service.is_some())),
            ("--ready", json!(service.map(|s| &s.ready))),
            ("--workload", json!(service.map(|s| &s.workload))),
            ("--rounds", json!(service.map(|s| s.rounds))),
            // Null when 0, so that campaigns made before them keep their fingerprints.
            (
                "--tolerance",
                json!(service.map(|s| s.tolerance).filter(|n| *n > 0)),
            ),
            (
                "--recovery",
                json!(service.map(|s| s.recovery_ms).filter(|n| *n > 0)),
            ),
            // Null for ptrace, the default, so that campaigns made before --observer keep their fingerprints.
            (
                "--observer",
                json!((!self.observer.is_ptrace()).then(|| self.observer.name())),
            ),
            // Where the suite's results are: the reports' broken tests come from them.
            (
                "--tests",
                json!(self.tests.as_ref().map(|g| format!("junit:{g}"))),
            ),
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
                // `--explore`'s default is null in the digest, `observed` in words.
                let words = |v: &serde_json::Value| match (flag, v) {
                    ("--explore", serde_json::Value::Null) => "observed".to_owned(),
                    _ => words(v),
                };
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

impl Campaign {
    /// A plan with no models (before synthesis could run).
    pub(super) fn empty_plan(&self) -> Plan {
        let campaign = self;
        Plan {
            version: FORMAT_VERSION,
            command: campaign.command.clone(),
            // Adapted: nothing was observed to adapt it to.
            interval_ms: campaign.interval_ms.unwrap_or(0),
            settings: campaign.settings,
            models: Vec::new(),
            excluded: Vec::new(),
        }
    }
}

/// `Campaign::backend` in `campaign.json`: a backend's name, or [`AUTO_BACKEND`] for none; any other name is
/// refused in the sentence `Campaign::problem` gave for it when the field was a string.
mod backend_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::AUTO_BACKEND;
    use crate::backend::BackendKind;

    pub fn serialize<S: Serializer>(backend: &Option<BackendKind>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(backend.map_or(AUTO_BACKEND, BackendKind::name))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BackendKind>, D::Error> {
        let name = String::deserialize(d)?;
        if name == AUTO_BACKEND {
            return Ok(None);
        }
        BackendKind::from_name(&name).map(Some).ok_or_else(|| {
            let names: Vec<&str> = std::iter::once(AUTO_BACKEND)
                .chain(BackendKind::ALL.map(BackendKind::name))
                .collect();
            D::Error::custom(format!(
                "\"backend\" is '{name}', expected one of {}",
                names.join(", ")
            ))
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The backend named `name` ([`AUTO_BACKEND`]: none).
    pub(crate) fn kind(name: &str) -> Option<BackendKind> {
        BackendKind::from_name(name)
    }

    pub(crate) fn campaign(backend: &str, faults: &[&str]) -> Campaign {
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
            interval_ms: Some(1000),
            settings: SynthSettings::default(),
            faults: faults.iter().map(|f| FaultSpec::parse(f).unwrap()).collect(),
            plan: None,
            service: None,
            shard: None,
            expect_status: None,
            accept_flaky_baseline: false,
            tests: None,
            log_files: Vec::new(),
            observer: Observer::Ptrace,
            fingerprint: String::new(),
        }
    }

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
            ("--plan", Box::new(|c| c.plan = Some(c.empty_plan()))),
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
            ("--interval", Box::new(|c| c.interval_ms = Some(100))),
            ("--quantile", Box::new(|c| c.settings.quantile = 1.0)),
            ("--shapes", Box::new(|c| c.settings.shapes = !c.settings.shapes)),
            (
                "--explore",
                Box::new(|c| c.settings.explore = crate::model::Explore::Plausible),
            ),
            (
                "--service",
                Box::new(|c| {
                    c.service = Some(service::ServiceSpec {
                        ready: "true".into(),
                        workload: "true".into(),
                        rounds: 5,
                        tolerance: 0,
                        recovery_ms: 0,
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
        // Service settings, against a service campaign; 0 (their default) leaves old fingerprints as they were.
        let mut service = base.clone();
        service.service = Some(service::ServiceSpec {
            ready: "true".into(),
            workload: "true".into(),
            rounds: 5,
            tolerance: 0,
            recovery_ms: 0,
        });
        for (flag, change) in [
            (
                "--tolerance",
                Box::new(|s: &mut service::ServiceSpec| s.tolerance = 2) as Box<dyn Fn(&mut _)>,
            ),
            (
                "--recovery",
                Box::new(|s: &mut service::ServiceSpec| s.recovery_ms = 500),
            ),
        ] {
            let mut other = service.clone();
            change(other.service.as_mut().unwrap());
            assert_eq!(service.difference(&other).map(|d| d.flag), Some(flag));
            assert_ne!(service.fingerprint(), other.fingerprint(), "{flag}");
        }
        // Plans are named by their models; two plans with the same models differ in what was edited.
        let mut planned = base.clone();
        planned.plan = Some(base.empty_plan());
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
        let mut explored = base.clone();
        explored.settings.explore = crate::model::Explore::Plausible;
        assert_eq!(
            base.difference(&explored).map(|d| (d.saved, d.given)),
            Some(("observed".into(), "plausible".into()))
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

    /// `campaign.json` keeps its format both ways: files written when the backend was a string (`"auto"`, a
    /// name) load, and a campaign is written the same way, so an older phoebe reads it and the fingerprint
    /// is unchanged.
    #[test]
    fn campaign_json_backend_reads_old_files_and_writes_the_same_format() {
        let old = |backend: &str| {
            serde_json::json!({
                "version": 1, "command": ["true"], "backend": backend, "runs": 1, "baseline_runs": 1,
                "timeout_ms": null, "check": null, "reset": null, "seed": 0, "interval_ms": 1000,
                "settings": SynthSettings::default(), "faults": [], "shard": null
            })
        };
        for (name, kind) in [
            ("auto", None),
            ("ptrace", Some(BackendKind::Ptrace)),
            ("seccomp", Some(BackendKind::Seccomp)),
            ("ebpf", Some(BackendKind::Ebpf)),
        ] {
            let campaign: Campaign = serde_json::from_value(old(name)).unwrap();
            assert_eq!(campaign.backend, kind, "{name}");
            assert_eq!(campaign.backend_name(), name);
            let written = serde_json::to_value(&campaign).unwrap();
            assert_eq!(written["backend"], name);
            assert_eq!(serde_json::from_value::<Campaign>(written).unwrap(), campaign);
        }
        let err = serde_json::from_value::<Campaign>(old("lsm"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "\"backend\" is 'lsm', expected one of auto, ptrace, seccomp, ebpf"
        );
    }
}
