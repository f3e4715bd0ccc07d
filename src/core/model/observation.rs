//! `Observation`: how often each syscall was called and failed, per monitoring interval (DESIGN §2).
//!
//! Owns the data and its pure aggregation ([`ObservationBuilder`]). Does not own where events come from (the
//! backends) or what is made of them (`crate::synth`).

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    FORMAT_VERSION, TargetExit, Usage,
    names::{Errno, Syscall},
    shape::{Shape, for_errno, keys_of},
};

/// One observed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub version: u32,
    /// The target command line as run.
    pub command: Vec<String>,
    /// The backend that recorded it (`ptrace`, …).
    pub backend: String,
    /// `uname -r` of the machine that recorded it.
    pub kernel: String,
    /// When recording started (RFC 3339, UTC).
    pub started_at: String,
    /// Length of one monitoring interval, in milliseconds.
    pub interval_ms: u64,
    /// Recording time from the target's exec to its end (or to the interruption), in milliseconds.
    pub duration_ms: u64,
    /// Only these syscalls were recorded (`--syscalls`); `null` means all.
    pub syscalls: Option<Vec<Syscall>>,
    /// Consecutive intervals from the start; interval `i` covers [i × interval_ms, (i + 1) × interval_ms).
    pub intervals: Vec<Interval>,
    /// How the process phoebe launched ended (`{"code": N}` or `{"signal": N}`); `null` when unknown.
    pub exit: Option<TargetExit>,
    /// True when phoebe was asked to stop (SIGINT, SIGTERM, SIGHUP, SIGQUIT) and this holds what was collected
    /// until the target's tree ended.
    #[serde(default)]
    pub interrupted: bool,
    /// CPU time and peak memory of the target's process tree, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// False when the backend did not time the calls (eBPF without `--latency`): the latency fields are then 0.
    /// Written only when false.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub latency_measured: bool,
    /// How many runs the observation pools (`phoebe exec`'s baseline: one per baseline run, a service's workload
    /// windows only), for figures per run; 1, and left out, for one recording.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub runs: u32,
    /// Counter updates the observer lost because a counter map was full (eBPF: thousands of distinct paths fill
    /// the path counters): those calls are counted per syscall without their shape. Synthesis makes no model of a
    /// syscall whose shapes were not recorded. Left out when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn is_true(b: &bool) -> bool {
    *b
}

/// What happened during one monitoring interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Per syscall that completed at least once in this interval.
    pub syscalls: BTreeMap<Syscall, SyscallStats>,
}

/// Counters of one syscall in one interval (or summed over several).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyscallStats {
    /// Completed calls, failed ones included.
    pub calls: u64,
    /// Failed calls per errno (kernel-internal restart codes ≥ 512 are never recorded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<Errno, u64>,
    /// Sum of the calls' latencies (entry to exit, as the backend measures it), in nanoseconds.
    pub latency_ns_sum: u64,
    /// Longest single call, in nanoseconds.
    pub latency_ns_max: u64,
    /// The same calls and failures split by call shape (DESIGN §6), keyed by the shape's text
    /// (`op=FUTEX_WAIT_PRIVATE:timeout=no`); [`OTHER_SHAPES`] pools the shapes past the per-syscall cap. Empty
    /// when the backend did not compute shapes (eBPF, observations older than shapes) or the syscall has none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shapes: BTreeMap<String, ShapeStats>,
}

/// Counters of one call shape of a syscall in one interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShapeStats {
    pub calls: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<Errno, u64>,
}

/// The key under which a syscall's shapes past [`MAX_SHAPES`] are pooled.
pub const OTHER_SHAPES: &str = "other";

/// At most this many distinct shapes per syscall over a recording; the rest are pooled as [`OTHER_SHAPES`].
pub const MAX_SHAPES: usize = 256;

impl SyscallStats {
    /// Failed calls, all errnos together (saturating: a file may hold any counts).
    pub fn failures(&self) -> u64 {
        super::saturating_sum(self.errors.values().copied())
    }

    /// Adds `other`'s counters to these, saturating at `u64::MAX`: counts read from a file may be anything.
    pub fn add(&mut self, other: &SyscallStats) {
        self.calls = self.calls.saturating_add(other.calls);
        for (errno, n) in &other.errors {
            let mine = self.errors.entry(*errno).or_default();
            *mine = mine.saturating_add(*n);
        }
        self.latency_ns_sum = self.latency_ns_sum.saturating_add(other.latency_ns_sum);
        self.latency_ns_max = self.latency_ns_max.max(other.latency_ns_max);
        for (shape, stats) in &other.shapes {
            let mine = self.shapes.entry(shape.clone()).or_default();
            mine.calls = mine.calls.saturating_add(stats.calls);
            for (errno, n) in &stats.errors {
                let e = mine.errors.entry(*errno).or_default();
                *e = e.saturating_add(*n);
            }
        }
    }
}

impl Observation {
    /// The (syscall, errno, shape) triples that failed at least once, or `None` when no call was recorded with
    /// its shape: what an injection must land on to be realistic (DESIGN §6). A syscall whose shape is the syscall
    /// alone (`epoll_wait`, `wait4`) has no shapes recorded; its errors count with the empty shape, the one its
    /// injections carry. Each shape is the one its errno sees ([`for_errno`]: without the state components that
    /// do not decide it).
    pub fn failed_shapes(&self) -> Option<std::collections::BTreeSet<(Syscall, Errno, String)>> {
        let mut any = false;
        let mut out = std::collections::BTreeSet::new();
        for interval in &self.intervals {
            for (sc, stats) in &interval.syscalls {
                if stats.shapes.is_empty() {
                    for errno in stats.errors.keys() {
                        out.insert((*sc, *errno, String::new()));
                    }
                }
                for (shape, st) in &stats.shapes {
                    any = true;
                    let parsed = Shape::parse(shape).ok();
                    for errno in st.errors.keys() {
                        // As the errno sees it (`shape::for_errno`): an injection's shape is looked up the same way.
                        let text = parsed
                            .as_ref()
                            .map_or_else(|| shape.clone(), |s| for_errno(s, Some(*errno)).to_string());
                        out.insert((*sc, *errno, text));
                    }
                }
            }
        }
        any.then_some(out)
    }

    /// The same recording with intervals `factor` times as long: each run of `factor` consecutive intervals
    /// summed into one (the last run may be shorter). Merges recordings made with different adapted intervals.
    pub fn coarsen(&mut self, factor: u64) {
        if factor > 1 {
            self.intervals = merge_runs(std::mem::take(&mut self.intervals), factor as usize);
            self.interval_ms = self.interval_ms.saturating_mul(factor);
        }
    }

    /// Per-syscall totals over the whole run.
    pub fn totals(&self) -> BTreeMap<Syscall, SyscallStats> {
        let mut totals: BTreeMap<Syscall, SyscallStats> = BTreeMap::new();
        for interval in &self.intervals {
            for (sc, stats) in &interval.syscalls {
                totals.entry(*sc).or_default().add(stats);
            }
        }
        totals
    }
}

/// Sums each run of `factor` consecutive intervals into one.
fn merge_runs(intervals: Vec<Interval>, factor: usize) -> Vec<Interval> {
    let mut merged = Vec::with_capacity(intervals.len().div_ceil(factor));
    for (i, interval) in intervals.into_iter().enumerate() {
        if i % factor == 0 {
            merged.push(interval);
        } else {
            let into: &mut Interval = merged.last_mut().expect("pushed at the run's first interval");
            for (sc, stats) in interval.syscalls {
                into.syscalls.entry(sc).or_default().add(&stats);
            }
        }
    }
    merged
}

/// Aggregates syscall completions into intervals as they arrive. Memory grows with the run's length in
/// intervals and the number of distinct (syscall, errno) pairs, never with the number of calls.
#[derive(Debug)]
pub struct ObservationBuilder {
    interval: Duration,
    intervals: Vec<Interval>,
    /// Record call shapes (`--shapes on`, the default).
    shapes: bool,
    /// The distinct shapes seen so far per syscall, for the cap.
    seen_shapes: BTreeMap<Syscall, std::collections::BTreeSet<String>>,
    /// `--interval auto`: the interval doubles (pairs of intervals merged) whenever the recording reaches
    /// 2 × [`AUTO_AT_LEAST`] intervals, up to [`AUTO_MAX`].
    adaptive: bool,
    /// [`Observation::lost`].
    lost: u64,
}

/// `--interval auto` starts with intervals this long...
pub const AUTO_MIN: Duration = Duration::from_millis(8);
/// ...and doubles them (8, 16, 32 … 1024 ms) while the recording would otherwise have 2 × [`AUTO_AT_LEAST`]
/// intervals or more, but never past this length (about the fixed default, 1 s).
pub const AUTO_MAX: Duration = Duration::from_millis(1024);
/// `--interval auto` keeps at least this many intervals per recording once it lasts 20 × [`AUTO_MIN`]: the samples
/// a model's statistics rest on.
pub const AUTO_AT_LEAST: usize = 20;

/// The length of one monitoring interval: fixed, or adapted to the recording's length (`--interval auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalChoice {
    Fixed(Duration),
    Auto,
}

impl std::fmt::Display for IntervalChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntervalChoice::Fixed(d) => write!(f, "{}ms", d.as_millis()),
            IntervalChoice::Auto => f.write_str("auto"),
        }
    }
}

impl ObservationBuilder {
    /// `interval` must be non-zero (the CLI refuses 0).
    pub fn new(interval: Duration) -> Self {
        assert!(!interval.is_zero(), "the monitoring interval must be positive");
        ObservationBuilder {
            interval,
            intervals: Vec::new(),
            shapes: true,
            seen_shapes: BTreeMap::new(),
            adaptive: false,
            lost: 0,
        }
    }

    /// The observer lost `n` counter updates ([`Observation::lost`]).
    pub fn lose(&mut self, n: u64) {
        self.lost = self.lost.saturating_add(n);
    }

    /// A builder whose interval is `choice`: fixed, or starting at [`AUTO_MIN`] and doubling as the recording
    /// grows, so that it holds between [`AUTO_AT_LEAST`] and twice as many intervals (fewer only when it is
    /// shorter than 20 × [`AUTO_MIN`], more only past [`AUTO_MAX`]). Every adapted length is a power-of-two
    /// multiple of [`AUTO_MIN`], so recordings of one program merge exactly ([`Observation::coarsen`]).
    pub fn with_interval(choice: IntervalChoice) -> Self {
        match choice {
            IntervalChoice::Fixed(interval) => Self::new(interval),
            IntervalChoice::Auto => ObservationBuilder {
                adaptive: true,
                ..Self::new(AUTO_MIN)
            },
        }
    }

    /// Records calls without their shapes (`--shapes off`).
    pub fn without_shapes(mut self) -> Self {
        self.shapes = false;
        self
    }

    /// Should a backend compute the shape of the calls of `syscall` it records?
    pub fn records_shapes(&self, syscall: Syscall) -> bool {
        self.shapes && !keys_of(syscall).is_empty()
    }

    fn slot(&mut self, at: Duration) -> &mut Interval {
        let mut index = (at.as_nanos() / self.interval.as_nanos()) as usize;
        while self.adaptive && index >= 2 * AUTO_AT_LEAST && self.interval * 2 <= AUTO_MAX {
            self.intervals = merge_runs(std::mem::take(&mut self.intervals), 2);
            self.interval *= 2;
            index = (at.as_nanos() / self.interval.as_nanos()) as usize;
        }
        if self.intervals.len() <= index {
            self.intervals.resize_with(index + 1, Interval::default);
        }
        &mut self.intervals[index]
    }

    /// Records one completed call `at` (time since recording started). Restart codes (errno ≥ 512) are dropped
    /// entirely: the kernel restarts the call, which is then recorded when it really completes. The apparent
    /// error of a call whose return register is no result (`rt_sigreturn`, [`names::real_result`](super::names::real_result))
    /// is recorded as the success it is. `shape` is the call's shape when the backend computed it ([`records_shapes`](Self::records_shapes)).
    pub fn record(
        &mut self,
        at: Duration,
        syscall: Syscall,
        shape: Option<&Shape>,
        result: Result<(), Errno>,
        latency: Duration,
    ) {
        let result = super::names::real_result(syscall, result);
        if let Err(errno) = result
            && errno.is_kernel_internal()
        {
            return;
        }
        let latency_ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let shape_key = shape
            .filter(|_| self.shapes)
            .map(|shape| self.shape_key(syscall, shape));
        let stats = self.slot(at).syscalls.entry(syscall).or_default();
        if let Some(key) = shape_key {
            let shape_stats = stats.shapes.entry(key).or_default();
            shape_stats.calls += 1;
            if let Err(errno) = result {
                *shape_stats.errors.entry(errno).or_default() += 1;
            }
        }
        stats.calls += 1;
        stats.latency_ns_sum = stats.latency_ns_sum.saturating_add(latency_ns);
        stats.latency_ns_max = stats.latency_ns_max.max(latency_ns);
        if let Err(errno) = result {
            *stats.errors.entry(errno).or_default() += 1;
        }
    }

    /// Records `calls` completions of `syscall` with the same result at once, `at` (time since recording
    /// started), with their summed and longest latency: what an in-kernel aggregator reports per interval.
    /// Restart codes (errno ≥ 512) are dropped, as in [`record`](Self::record).
    pub fn record_many(
        &mut self,
        at: Duration,
        syscall: Syscall,
        result: Result<(), Errno>,
        calls: u64,
        latency_ns_sum: u64,
        latency_ns_max: u64,
    ) {
        let result = super::names::real_result(syscall, result);
        if calls == 0 || result.is_err_and(|errno| errno.is_kernel_internal()) {
            return;
        }
        let stats = self.slot(at).syscalls.entry(syscall).or_default();
        stats.calls += calls;
        stats.latency_ns_sum = stats.latency_ns_sum.saturating_add(latency_ns_sum);
        stats.latency_ns_max = stats.latency_ns_max.max(latency_ns_max);
        if let Err(errno) = result {
            *stats.errors.entry(errno).or_default() += calls;
        }
    }

    /// The key a shape is recorded under: its text, or [`OTHER_SHAPES`] past the per-syscall cap.
    fn shape_key(&mut self, syscall: Syscall, shape: &Shape) -> String {
        let text = shape.to_string();
        let seen = self.seen_shapes.entry(syscall).or_default();
        if seen.contains(&text) || seen.len() < MAX_SHAPES {
            seen.insert(text.clone());
            text
        } else {
            OTHER_SHAPES.to_owned()
        }
    }

    /// Adds `calls` completions of `syscall` with `shape` and the same result to the interval's per-shape counts
    /// only: an in-kernel aggregator that counts shapes apart from its per-syscall totals (eBPF) records those
    /// with [`record_many`](Self::record_many).
    pub fn record_shape_many(
        &mut self,
        at: Duration,
        syscall: Syscall,
        shape: &Shape,
        result: Result<(), Errno>,
        calls: u64,
    ) {
        let result = super::names::real_result(syscall, result);
        if !self.shapes || calls == 0 || result.is_err_and(|errno| errno.is_kernel_internal()) {
            return;
        }
        let key = self.shape_key(syscall, shape);
        let stats = self.slot(at).syscalls.entry(syscall).or_default();
        let shape_stats = stats.shapes.entry(key).or_default();
        shape_stats.calls += calls;
        if let Err(errno) = result {
            *shape_stats.errors.entry(errno).or_default() += calls;
        }
    }

    /// The length of one interval (so far, with [`IntervalChoice::Auto`]: it only ever doubles, so a boundary of
    /// the first length stays a boundary).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Closes the recording at `duration`: intervals up to it exist even when nothing completed in them.
    pub fn finish(mut self, duration: Duration, meta: ObservationMeta) -> Observation {
        if !duration.is_zero() {
            self.slot(duration.saturating_sub(Duration::from_nanos(1)));
        }
        Observation {
            version: FORMAT_VERSION,
            command: meta.command,
            backend: meta.backend,
            kernel: meta.kernel,
            started_at: meta.started_at,
            interval_ms: u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            syscalls: meta.syscalls,
            intervals: self.intervals,
            exit: meta.exit,
            interrupted: meta.interrupted,
            usage: meta.usage,
            latency_measured: meta.latency_measured,
            runs: 1,
            lost: self.lost,
        }
    }
}

/// Everything about a recording that is not a counter.
#[derive(Debug, Clone)]
pub struct ObservationMeta {
    pub command: Vec<String>,
    pub backend: String,
    pub kernel: String,
    pub started_at: String,
    pub syscalls: Option<Vec<Syscall>>,
    pub exit: Option<TargetExit>,
    pub interrupted: bool,
    pub usage: Option<Usage>,
    pub latency_measured: bool,
}

impl Default for ObservationMeta {
    fn default() -> Self {
        ObservationMeta {
            command: Vec::new(),
            backend: String::new(),
            kernel: String::new(),
            started_at: String::new(),
            syscalls: None,
            exit: None,
            interrupted: false,
            latency_measured: true,
            usage: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(name: &str) -> Syscall {
        Syscall::parse(name).unwrap()
    }

    fn errno(name: &str) -> Errno {
        Errno::parse(name).unwrap()
    }

    /// CPython's `epoll_wait-EBADF` and `-EINTR` experiments reported realism 0 %: `epoll_wait`'s shape is the
    /// syscall alone, so no shapes were recorded for it and its natural errors were missing from the set.
    #[test]
    fn regression_a_syscall_without_shape_components_had_realism_0() {
        let mut b = ObservationBuilder::new(Duration::from_secs(1));
        let ms = Duration::from_millis;
        let path = crate::model::Shape::parse("path=/x").unwrap();
        b.record(ms(1), sc("openat"), Some(&path), Err(errno("ENOENT")), ms(0));
        b.record(ms(2), sc("epoll_wait"), None, Err(errno("EBADF")), ms(0));
        b.record(ms(3), sc("epoll_wait"), None, Ok(()), ms(0));
        let obs = b.finish(ms(10), ObservationMeta::default());
        let failed = obs.failed_shapes().unwrap();
        assert!(failed.contains(&(sc("epoll_wait"), errno("EBADF"), String::new())));
        assert!(failed.contains(&(sc("openat"), errno("ENOENT"), "path=/x".to_owned())));
        // The empty shape is only for syscalls without shapes: openat's calls all had theirs.
        assert!(!failed.contains(&(sc("openat"), errno("ENOENT"), String::new())));
    }

    #[test]
    fn buckets_by_interval_and_errno() {
        let mut b = ObservationBuilder::new(Duration::from_secs(1));
        let ms = Duration::from_millis;
        b.record(ms(10), sc("openat"), None, Ok(()), Duration::from_micros(3));
        b.record(
            ms(20),
            sc("openat"),
            None,
            Err(errno("ENOENT")),
            Duration::from_micros(5),
        );
        b.record(
            ms(2500),
            sc("openat"),
            None,
            Err(errno("ENOENT")),
            Duration::from_micros(1),
        );
        b.record(
            ms(2600),
            sc("read"),
            None,
            Err(errno("EAGAIN")),
            Duration::from_micros(1),
        );
        let obs = b.finish(ms(3200), ObservationMeta::default());
        assert_eq!(obs.intervals.len(), 4);
        let first = &obs.intervals[0].syscalls[&sc("openat")];
        assert_eq!((first.calls, first.failures()), (2, 1));
        assert_eq!(first.latency_ns_sum, 8000);
        assert_eq!(first.latency_ns_max, 5000);
        assert!(obs.intervals[1].syscalls.is_empty());
        assert_eq!(obs.intervals[2].syscalls[&sc("read")].errors[&errno("EAGAIN")], 1);
        let totals = obs.totals();
        assert_eq!(totals[&sc("openat")].calls, 3);
        assert_eq!(totals[&sc("openat")].errors[&errno("ENOENT")], 2);
    }

    #[test]
    fn auto_interval_keeps_at_least_twenty_intervals_and_every_call() {
        let ms = Duration::from_millis;
        for run_ms in [50u64, 170, 333, 1000, 4100, 20_000, 100_000] {
            let mut b = ObservationBuilder::with_interval(IntervalChoice::Auto);
            // One call every millisecond, every tenth failing.
            for t in 0..run_ms {
                let result = if t % 10 == 0 { Err(errno("EAGAIN")) } else { Ok(()) };
                b.record(ms(t), sc("read"), None, result, Duration::ZERO);
            }
            let obs = b.finish(ms(run_ms), ObservationMeta::default());
            let n = obs.intervals.len();
            assert!(
                obs.interval_ms.is_power_of_two() && (8..=1024).contains(&obs.interval_ms),
                "{run_ms} ms: interval {} ms",
                obs.interval_ms
            );
            if obs.interval_ms < 1024 && run_ms >= 20 * 8 {
                assert!(
                    (AUTO_AT_LEAST..=2 * AUTO_AT_LEAST).contains(&n),
                    "{run_ms} ms: {n} intervals"
                );
            }
            let totals = &obs.totals()[&sc("read")];
            assert_eq!(totals.calls, run_ms, "{run_ms} ms: calls lost in merging");
            assert_eq!(totals.errors[&errno("EAGAIN")], run_ms.div_ceil(10));
        }
    }

    #[test]
    fn coarsen_sums_runs_of_intervals() {
        let ms = Duration::from_millis;
        let mut b = ObservationBuilder::new(ms(8));
        for t in [0, 9, 17, 25, 33] {
            b.record(ms(t), sc("read"), None, Err(errno("EAGAIN")), Duration::ZERO);
        }
        let mut obs = b.finish(ms(40), ObservationMeta::default());
        assert_eq!(obs.intervals.len(), 5);
        obs.coarsen(2);
        assert_eq!(obs.interval_ms, 16);
        let calls: Vec<u64> = obs
            .intervals
            .iter()
            .map(|i| i.syscalls[&sc("read")].calls)
            .collect();
        assert_eq!(calls, [2, 2, 1]);
    }

    #[test]
    fn record_many_adds_a_batch_like_single_records() {
        let ms = Duration::from_millis;
        let mut one_by_one = ObservationBuilder::new(ms(100));
        for latency in [10, 30, 20] {
            one_by_one.record(
                ms(150),
                sc("openat"),
                None,
                Err(errno("ENOENT")),
                Duration::from_nanos(latency),
            );
        }
        one_by_one.record(ms(150), sc("openat"), None, Ok(()), Duration::from_nanos(40));
        let mut batched = ObservationBuilder::new(ms(100));
        batched.record_many(ms(150), sc("openat"), Err(errno("ENOENT")), 3, 60, 30);
        batched.record_many(ms(150), sc("openat"), Ok(()), 1, 40, 40);
        batched.record_many(ms(150), sc("read"), Ok(()), 0, 0, 0);
        batched.record_many(ms(150), sc("read"), Err(Errno::new(512).unwrap()), 7, 0, 0);
        let (a, b) = (
            one_by_one.finish(ms(200), ObservationMeta::default()),
            batched.finish(ms(200), ObservationMeta::default()),
        );
        assert_eq!(a, b);
        assert_eq!(b.intervals[1].syscalls[&sc("openat")].calls, 4);
        assert!(
            !b.intervals[1].syscalls.contains_key(&sc("read")),
            "empty and restart batches leave no row"
        );
    }

    #[test]
    fn latency_measured_is_written_only_when_false() {
        let obs = ObservationBuilder::new(Duration::from_secs(1))
            .finish(Duration::ZERO, ObservationMeta::default());
        assert!(!serde_json::to_string(&obs).unwrap().contains("latency_measured"));
        let unmeasured = Observation {
            latency_measured: false,
            ..obs
        };
        let json = serde_json::to_string(&unmeasured).unwrap();
        assert!(json.contains("\"latency_measured\":false"), "{json}");
        assert_eq!(serde_json::from_str::<Observation>(&json).unwrap(), unmeasured);
    }

    /// Regression (issue 13, fuzzing): totals, `observe`'s summary and synthesis over an observation file whose
    /// counts add past `u64::MAX` overflowed (a panic in a debug build, wrapped counts in a release build); they
    /// saturate now. The summary's and synthesis's tests are in their modules.
    #[test]
    fn huge_counts_saturate_in_totals() {
        let obs = crate::model::fixtures::huge_observation();
        let total = &obs.totals()[&sc("openat")];
        assert_eq!(total.calls, u64::MAX);
        assert_eq!(total.failures(), u64::MAX);
        assert_eq!(total.latency_ns_sum, u64::MAX);
        assert_eq!(total.shapes["path=/x"].errors[&errno("ENOENT")], u64::MAX);
    }

    #[test]
    fn restart_codes_are_dropped() {
        let mut b = ObservationBuilder::new(Duration::from_secs(1));
        b.record(
            Duration::ZERO,
            sc("read"),
            None,
            Err(Errno::new(512).unwrap()),
            Duration::ZERO,
        );
        let obs = b.finish(Duration::from_millis(10), ObservationMeta::default());
        assert!(obs.intervals[0].syscalls.is_empty());
    }

    #[test]
    fn json_round_trip() {
        let mut b = ObservationBuilder::new(Duration::from_millis(500));
        b.record(
            Duration::ZERO,
            sc("openat"),
            None,
            Err(errno("ENOENT")),
            Duration::ZERO,
        );
        let obs = b.finish(Duration::from_millis(10), ObservationMeta::default());
        let json = serde_json::to_string(&obs).unwrap();
        assert!(
            json.contains("\"openat\":{\"calls\":1,\"errors\":{\"ENOENT\":1}"),
            "{json}"
        );
        let back: Observation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, obs);
    }
}
