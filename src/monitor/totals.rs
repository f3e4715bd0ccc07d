//! The exposition's cumulative totals read from a source's counters: each key under its series' labels (the
//! processes of one command name summed unless `--per-pid`), restart codes and unknown syscall numbers left out.
//! Does not own: the series' label text or their rendering (`report::monitor::exposition`).

use std::collections::HashMap;

use phoebe_common::CountKey;

use crate::{
    backend::ebpf::{self, Histograms, Snapshot},
    report::monitor::exposition::{Totals, series},
};

/// Adds the counters and histograms of the processes `tgid` for which `include` holds to `totals`.
pub fn add(
    totals: &mut Totals,
    snapshot: &Snapshot,
    histograms: &Histograms,
    comms: &HashMap<u32, String>,
    per_pid: bool,
    include: impl Fn(u32) -> bool,
) {
    for (key, value) in snapshot {
        if include(key.tgid)
            && let Some(l) = labels_of(key, comms, per_pid)
        {
            totals.add_calls(l, value.calls);
        }
    }
    for (key, buckets) in histograms {
        if include(key.tgid)
            && let Some(l) = labels_of(key, comms, per_pid)
        {
            totals.add_durations(l, buckets);
        }
    }
}

/// The label text of a key, or `None` for keys not exposed (unknown syscall numbers, restart codes).
fn labels_of(key: &CountKey, comms: &HashMap<u32, String>, per_pid: bool) -> Option<String> {
    let (syscall, result) = ebpf::decode(key)?;
    let errno = match crate::model::names::real_result(syscall, result) {
        Ok(()) => None,
        Err(e) if e.is_kernel_internal() => return None,
        Err(e) => Some(e),
    };
    let comm = comms.get(&key.tgid).map_or("", String::as_str);
    Some(series(per_pid.then_some(key.tgid), comm, syscall, errno))
}

#[cfg(test)]
mod tests {
    use phoebe_common::CountValue;

    use super::{super::tests::key, *};
    use crate::report::monitor::{
        exposition::Series,
        fixtures::{histogram, totals},
    };

    fn calls(n: u64) -> CountValue {
        CountValue {
            calls: n,
            latency_ns_sum: 0,
            latency_ns_max: 0,
        }
    }

    /// The counters behind `report::monitor::fixtures::totals`, plus a restart code (512) that is never exposed.
    fn fixture() -> (Snapshot, Histograms, HashMap<u32, String>) {
        let snap = Snapshot::from([
            (key(42, 257, 2), calls(7)),
            (key(42, 257, 0), calls(3)),
            (key(43, 257, 2), calls(5)),
            (key(44, 0, 0), calls(11)),
            (key(44, 0, 512), calls(1)),
        ]);
        let hist = Histograms::from([(key(42, 257, 2), histogram()), (key(43, 257, 2), histogram())]);
        let comms = HashMap::from([
            (42, "my \"app\"".to_owned()),
            (43, "my \"app\"".to_owned()),
            (44, "other".to_owned()),
        ]);
        (snap, hist, comms)
    }

    #[test]
    fn processes_of_a_command_name_are_summed_unless_per_pid() {
        let (snap, hist, comms) = fixture();
        for per_pid in [false, true] {
            let mut got = Totals::default();
            add(&mut got, &snap, &hist, &comms, per_pid, |_| true);
            assert_eq!(
                got,
                totals(per_pid),
                "per_pid {per_pid}; restart codes are not exposed"
            );
        }
    }

    #[test]
    fn totals_of_ended_processes_add_to_the_live_ones() {
        let (snap, hist, comms) = fixture();
        // Process 43 ended: its counters were folded into `retired` and are gone from the live snapshot.
        let mut retired = Totals::default();
        add(&mut retired, &snap, &hist, &comms, false, |tgid| tgid == 43);
        let mut live = Totals::default();
        add(&mut live, &snap, &hist, &comms, false, |tgid| tgid != 43);
        assert_eq!(
            live.plus(&retired),
            totals(false),
            "nothing lost, nothing counted twice"
        );
        assert_eq!(
            retired.calls,
            Series::from([(
                "comm=\"my \\\"app\\\"\",syscall=\"openat\",errno=\"ENOENT\"".to_owned(),
                5
            )])
        );
    }
}
