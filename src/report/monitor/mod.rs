//! `phoebe monitor`'s renderings: the interval table (`terminal`), the `--json` lines (`json`), the metrics
//! exposition, Prometheus text or OpenMetrics (`exposition`), and the live page with the feed it polls (`page`).
//!
//! Pure functions of what the monitor collected: one interval's counters per process ([`PerProcess`]), the
//! command names, and the cumulative [`exposition::Totals`]. Does not own: collecting the counters, keeping the
//! totals of processes that ended, or serving them (`crate::monitor`).

use std::collections::BTreeMap;

use phoebe_core::model::{Syscall, SyscallStats};

pub mod exposition;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod json;
pub mod page;
pub mod terminal;

/// One interval's counters: per process (tgid), per syscall.
pub type PerProcess = BTreeMap<u32, BTreeMap<Syscall, SyscallStats>>;
