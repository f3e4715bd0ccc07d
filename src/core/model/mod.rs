//! Plain data, no I/O: syscall and errno names, the fault grammar, observations, injection logs.
//!
//! Every file format carries `"version": FORMAT_VERSION`; `crate::files` reads and writes them.

pub mod catalogue;
pub mod fault;
#[cfg(any(test, feature = "fixtures"))]
#[doc(hidden)]
pub mod fixtures;
pub mod log;
pub mod names;
pub mod observation;
pub mod plan;
pub mod realism;
pub mod report;
pub mod shape;

use serde::{Deserialize, Serialize};

pub use self::{
    fault::{Action, CallWindow, FaultSpec, Short, When},
    log::{Draws, Effect, Injection, InjectionLog, RuleStats},
    names::{Errno, Syscall},
    observation::{Interval, IntervalChoice, Observation, ObservationBuilder, ObservationMeta, SyscallStats},
    plan::{
        Category, ErrorModel, Excluded, Explore, MIN_SAMPLES, Plan, RateStats, ShapeModel, SynthSettings,
        Tier,
    },
    report::{
        AchievedCounts, Baseline, BaselineRun, ExperimentResult, FailOn, InjectedCall, Report, RoundStats,
        Rounds, RunEvidence, RunResult, Skipped, Verdict, achieved_rates,
    },
    shape::Shape,
};

/// The version written into every JSON file phoebe makes. Version 2 added call shapes (observations' `shapes`,
/// plans' per-shape rules, logs' `shape` and `path`, reports' `faults`).
pub const FORMAT_VERSION: u32 = 2;

/// The oldest version phoebe still reads: files of version 1 load as files without shapes.
pub const OLDEST_READ_VERSION: u32 = 1;

/// The sum of counts read from a file, saturating at `u64::MAX` instead of overflowing (a file may hold any
/// counts; a sum that overflowed would panic in a debug build and wrap in a release build).
pub fn saturating_sum(counts: impl IntoIterator<Item = u64>) -> u64 {
    counts.into_iter().fold(0, u64::saturating_add)
}

/// CPU time and memory of a target's whole process tree (the "multi-layer" view of DESIGN §7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub user_ms: u64,
    pub sys_ms: u64,
    /// Largest resident set of any one process of the tree, in KiB.
    pub max_rss_kib: u64,
}

/// How the target (the process phoebe launched) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetExit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it (the number; `signal_name` gives the name).
    Signal(i32),
}

impl TargetExit {
    /// The status a shell would report: the code, or 128 + the signal number.
    pub fn shell_status(self) -> i32 {
        match self {
            TargetExit::Code(code) => code,
            TargetExit::Signal(sig) => 128 + sig,
        }
    }
}

impl std::fmt::Display for TargetExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetExit::Code(code) => write!(f, "exit status {code}"),
            TargetExit::Signal(sig) => write!(f, "killed by {}", signal_name(*sig)),
        }
    }
}

/// A signal's name (`SIGINT`), or `signal N` for a real-time one.
pub fn signal_name(sig: i32) -> String {
    match SIGNAL_NAMES.iter().find(|(n, _)| *n == sig) {
        Some((_, name)) => (*name).to_owned(),
        None => format!("signal {sig}"),
    }
}

/// The signals of a `SigCgt`-style mask (bit `n - 1` for signal `n`), by name, in number order.
pub fn signal_names(mask: u64) -> Vec<String> {
    (1..=64)
        .filter(|sig| mask & (1 << (sig - 1)) != 0)
        .map(signal_name)
        .collect()
}

/// The standard signals' names (a real-time signal is said by number). A table, so that the model needs no
/// system-call crate (`harness/architecture.rs`).
const SIGNAL_NAMES: &[(i32, &str)] = &[
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

#[cfg(test)]
mod signal_name_tests {
    use super::*;

    /// The table names each standard signal once, with its own number; a real-time one is said by number, as
    /// before the table (nix's names, which the model no longer uses).
    #[test]
    fn signal_names_are_the_kernels() {
        assert_eq!(SIGNAL_NAMES.len(), 31);
        for (i, (sig, _)) in SIGNAL_NAMES.iter().enumerate() {
            assert_eq!(*sig, i as i32 + 1, "in number order, none missing");
        }
        assert_eq!(TargetExit::Signal(9).to_string(), "killed by SIGKILL");
        assert_eq!(TargetExit::Signal(11).to_string(), "killed by SIGSEGV");
        assert_eq!(TargetExit::Signal(6).to_string(), "killed by SIGABRT");
        assert_eq!(TargetExit::Signal(36).to_string(), "killed by signal 36");
        assert_eq!(
            signal_names(1 << (libc::SIGINT - 1) | 1 << (libc::SIGCHLD - 1) | 1 << 35),
            ["SIGINT", "SIGCHLD", "signal 36"]
        );
        assert!(signal_names(0).is_empty());
    }
}
