//! The live page at `/` of the monitor's endpoint: one self-contained HTML file (inline style and script, inline
//! SVG drawn by the script, no external asset; its Content-Security-Policy allows nothing but fetching
//! `/intervals.json` from the same origin), which polls [`Feed`] once per interval and shows the last interval's
//! table and, per failing syscall, its errors per second over the last minutes.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use super::{PerProcess, exposition::BuildInfo};

/// The page (`page.html`).
pub const HTML: &str = include_str!("page.html");

/// How long the page's charts look back, and how much history the monitor keeps for them.
pub const HISTORY: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// One syscall in one interval, all watched processes summed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    /// Failed calls by errno name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, u64>,
}

/// One interval of the page's history.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PageInterval {
    /// End of the interval, in milliseconds since monitoring started.
    pub t_ms: u64,
    /// By syscall name.
    pub syscalls: BTreeMap<String, Counts>,
}

impl PageInterval {
    /// The interval ending at `t_ms`, from its per-process stats.
    pub fn new(t_ms: u64, per_process: &PerProcess) -> Self {
        let mut syscalls: BTreeMap<String, Counts> = BTreeMap::new();
        for stats in per_process.values() {
            for (sc, s) in stats {
                let counts = syscalls.entry(sc.name().to_owned()).or_default();
                counts.calls += s.calls;
                for (errno, n) in &s.errors {
                    *counts.errors.entry(errno.to_string()).or_default() += n;
                }
            }
        }
        PageInterval { t_ms, syscalls }
    }
}

/// Keeps the last [`HISTORY`] of intervals.
pub fn push(history: &mut VecDeque<PageInterval>, interval: PageInterval) {
    let keep_from = interval.t_ms.saturating_sub(HISTORY.as_millis() as u64);
    history.push_back(interval);
    while history.front().is_some_and(|i| i.t_ms <= keep_from) {
        history.pop_front();
    }
}

/// What `/intervals.json` answers.
#[derive(Debug, Serialize)]
pub struct Feed<'a> {
    pub version: &'a str,
    pub backend: &'a str,
    /// What is watched: `--pid N` or `--name COMM`.
    pub watching: &'a str,
    pub interval_ms: u64,
    /// Processes seen so far: pid → command name.
    pub processes: BTreeMap<u32, &'a str>,
    pub intervals: &'a VecDeque<PageInterval>,
}

impl<'a> Feed<'a> {
    /// The feed of a monitor described by `info`, watching `watching` every `interval_ms`: the processes watched
    /// now (pid → command name) and the intervals kept (see [`push`]).
    pub fn new(
        info: &'a BuildInfo,
        watching: &'a str,
        interval_ms: u64,
        comms: &'a HashMap<u32, String>,
        intervals: &'a VecDeque<PageInterval>,
    ) -> Self {
        Feed {
            version: &info.version,
            backend: &info.backend,
            watching,
            interval_ms,
            processes: comms.iter().map(|(pid, comm)| (*pid, comm.as_str())).collect(),
            intervals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoebe_core::model::{Errno, Syscall, SyscallStats};

    #[test]
    fn intervals_sum_processes_and_history_is_bounded() {
        let openat = Syscall::parse("openat").unwrap();
        let enoent = Errno::parse("ENOENT").unwrap();
        let stats = |calls, failed| SyscallStats {
            calls,
            errors: BTreeMap::from([(enoent, failed)]),
            ..SyscallStats::default()
        };
        let per = BTreeMap::from([
            (1, BTreeMap::from([(openat, stats(10, 4))])),
            (2, BTreeMap::from([(openat, stats(5, 1))])),
        ]);
        let interval = PageInterval::new(1000, &per);
        assert_eq!(
            interval.syscalls["openat"],
            Counts {
                calls: 15,
                errors: BTreeMap::from([("ENOENT".to_owned(), 5)]),
            }
        );
        let mut history = VecDeque::new();
        let step = 1000;
        let n = HISTORY.as_millis() as u64 / step;
        for i in 1..=n + 10 {
            push(&mut history, PageInterval::new(i * step, &per));
        }
        assert_eq!(history.len() as u64, n, "the last {HISTORY:?} only");
        assert_eq!(history.back().unwrap().t_ms, (n + 10) * step);
    }
}
