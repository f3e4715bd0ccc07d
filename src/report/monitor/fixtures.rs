//! Test fixtures of the monitor's renderings: one interval's counters of three processes, two of them of one
//! command name, with failures and latencies; and the cumulative totals of a command name every format must
//! escape.

use std::collections::{BTreeMap, HashMap};

use phoebe_common::{LATENCY_BUCKETS, LatencyBuckets, latency_bucket};

use super::{
    PerProcess,
    exposition::{Totals, series},
};
use phoebe_core::model::{Errno, Syscall, SyscallStats};

fn stats(calls: u64, errors: &[(&str, u64)], latency_ns_sum: u64) -> SyscallStats {
    SyscallStats {
        calls,
        errors: errors
            .iter()
            .map(|(e, n)| (Errno::parse(e).unwrap(), *n))
            .collect(),
        latency_ns_sum,
        latency_ns_max: latency_ns_sum,
        ..SyscallStats::default()
    }
}

/// Process 1 (`a`): 100 successful reads and 5 failed opens; process 2 (`b`): 5 successful opens.
pub fn per_process() -> PerProcess {
    let openat = Syscall::parse("openat").unwrap();
    let read = Syscall::parse("read").unwrap();
    BTreeMap::from([
        (
            1,
            BTreeMap::from([
                (read, stats(100, &[], 100_000)),
                (openat, stats(5, &[("ENOENT", 5)], 0)),
            ]),
        ),
        (2, BTreeMap::from([(openat, stats(5, &[], 0))])),
    ])
}

pub fn comms() -> HashMap<u32, String> {
    HashMap::from([(1, "a".to_owned()), (2, "b".to_owned())])
}

/// The latency histogram of [`totals`]' failed opens, per process: 2 calls ≤ 500 ns, 1 ≤ 5 ms, 1 past every bound.
pub fn histogram() -> LatencyBuckets {
    let mut h = LatencyBuckets::default();
    h.counts[latency_bucket(300)] = 2;
    h.counts[latency_bucket(3_000_000)] = 1;
    h.counts[LATENCY_BUCKETS - 1] = 1;
    h.sum_ns = 20_003_000_600;
    h
}

/// Cumulative totals of two processes of the command `my "app"` (42: 3 opens and 7 failed with ENOENT, 43: 5
/// failed, each with [`histogram`]'s latencies) and one of `other` (44: 11 reads); `per_pid`: one series per
/// process, else the processes of a command name summed.
pub fn totals(per_pid: bool) -> Totals {
    let openat = Syscall::parse("openat").unwrap();
    let read = Syscall::parse("read").unwrap();
    let enoent = Some(Errno::parse("ENOENT").unwrap());
    let app = "my \"app\"";
    let mut totals = Totals::default();
    let pid = |pid| per_pid.then_some(pid);
    totals.add_calls(series(pid(42), app, openat, None), 3);
    totals.add_calls(series(pid(42), app, openat, enoent), 7);
    totals.add_calls(series(pid(43), app, openat, enoent), 5);
    totals.add_calls(series(pid(44), "other", read, None), 11);
    totals.add_durations(series(pid(42), app, openat, enoent), &histogram());
    totals.add_durations(series(pid(43), app, openat, enoent), &histogram());
    totals
}
