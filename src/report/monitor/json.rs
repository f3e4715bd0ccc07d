//! `phoebe monitor --json`: one JSON line per interval (format in `docs/formats.md`).

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use serde::Serialize;

use super::PerProcess;
use phoebe_core::model::{Errno, Syscall, SyscallStats};

/// One syscall's counters in one process and interval: the latency fields only when latency is measured
/// (`--latency`), absent otherwise (0 would be a measurement).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct StatsLine {
    pub calls: u64,
    /// Failed calls per errno.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<Errno, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ns_sum: Option<u64>,
    /// The interval's longest call (see `backend::ebpf::delta` for how it is estimated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ns_max: Option<u64>,
}

impl StatsLine {
    pub fn new(stats: &SyscallStats, latency: bool) -> Self {
        StatsLine {
            calls: stats.calls,
            errors: stats.errors.clone(),
            latency_ns_sum: latency.then_some(stats.latency_ns_sum),
            latency_ns_max: latency.then_some(stats.latency_ns_max),
        }
    }
}

/// One process's counters in one interval.
#[derive(Debug, Serialize)]
pub struct ProcessLine {
    pub pid: u32,
    pub comm: String,
    pub syscalls: BTreeMap<Syscall, StatsLine>,
}

/// One line.
#[derive(Debug, Serialize)]
pub struct IntervalLine {
    pub version: u32,
    /// Index of the interval from the start of monitoring (0-based).
    pub interval: u64,
    /// End of the interval, in milliseconds since monitoring started.
    pub t_ms: u64,
    pub interval_ms: u64,
    pub processes: Vec<ProcessLine>,
}

impl IntervalLine {
    /// The line of interval `index` (0-based), ending at `t` since monitoring started and lasting `interval`.
    pub fn new(
        index: u64,
        t: Duration,
        interval: Duration,
        per_process: &PerProcess,
        comms: &HashMap<u32, String>,
        latency: bool,
    ) -> Self {
        IntervalLine {
            version: phoebe_core::model::FORMAT_VERSION,
            interval: index,
            t_ms: t.as_millis() as u64,
            interval_ms: interval.as_millis() as u64,
            processes: per_process
                .iter()
                .map(|(pid, syscalls)| ProcessLine {
                    pid: *pid,
                    comm: comms.get(pid).cloned().unwrap_or_default(),
                    syscalls: syscalls
                        .iter()
                        .map(|(sc, stats)| (*sc, StatsLine::new(stats, latency)))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The line, without its newline.
pub fn line(line: &IntervalLine) -> String {
    serde_json::to_string(line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{
        super::fixtures::{comms, per_process},
        *,
    };

    #[test]
    fn json_lines_have_latency_only_when_measured() {
        let stats = SyscallStats {
            calls: 4,
            errors: BTreeMap::from([(Errno::parse("ENOENT").unwrap(), 1)]),
            latency_ns_sum: 0,
            latency_ns_max: 0,
            ..SyscallStats::default()
        };
        assert_eq!(
            serde_json::to_string(&StatsLine::new(&stats, false)).unwrap(),
            r#"{"calls":4,"errors":{"ENOENT":1}}"#
        );
        assert_eq!(
            serde_json::to_string(&StatsLine::new(&stats, true)).unwrap(),
            r#"{"calls":4,"errors":{"ENOENT":1},"latency_ns_sum":0,"latency_ns_max":0}"#,
            "measured: 0 is a value"
        );
    }

    #[test]
    fn one_line_per_interval_with_every_process() {
        let text = line(&IntervalLine::new(
            2,
            Duration::from_millis(1500),
            Duration::from_millis(500),
            &per_process(),
            &comms(),
            false,
        ));
        assert_eq!(
            text.replace(
                &format!(r#"{{"version":{},"#, phoebe_core::model::FORMAT_VERSION),
                r#"{"version":V,"#
            ),
            r#"{"version":V,"interval":2,"t_ms":1500,"interval_ms":500,"processes":[{"pid":1,"comm":"a","syscalls":{"read":{"calls":100},"openat":{"calls":5,"errors":{"ENOENT":5}}}},{"pid":2,"comm":"b","syscalls":{"openat":{"calls":5}}}]}"#
        );
    }
}
