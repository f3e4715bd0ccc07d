//! Syscall counters keyed by (process, syscall number, errno): the shape in which both the eBPF observer and the
//! ptrace attach (`monitor --backend ptrace`) publish what they counted, so that one renderer serves both and
//! neither backend imports the other.
//!
//! Owns: [`Snapshot`], [`Histograms`] and the model's view of a key ([`decode`]). Does not own: counting (the
//! backends) or rendering (`report::monitor`).

use std::collections::BTreeMap;

use phoebe_common::{CountKey, CountValue, LatencyBuckets};

use phoebe_core::model::{Errno, Syscall};

/// Counters summed over CPUs, by key: what one read of the counters gives.
pub type Snapshot = BTreeMap<CountKey, CountValue>;

/// Latency histograms summed over CPUs, by key (cumulative, like [`Snapshot`]).
pub type Histograms = BTreeMap<CountKey, LatencyBuckets>;

/// The model's view of a key: the syscall (if the native table knows it) and its result.
pub fn decode(key: &CountKey) -> Option<(Syscall, Result<(), Errno>)> {
    let syscall = Syscall::from_number(u64::from(key.nr))?;
    Some((syscall, decode_result(key.errno)?))
}

/// The model's view of a counted errno (0: success).
pub fn decode_result(errno: u32) -> Option<Result<(), Errno>> {
    Some(match errno {
        0 => Ok(()),
        code => Err(Errno::new(i32::try_from(code).ok()?)?),
    })
}
