//! The table `phoebe monitor` prints after each interval: the processes watched, then one row per syscall (all
//! processes summed), failing ones first.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    time::Duration,
};

use super::PerProcess;
use phoebe_core::model::{Syscall, SyscallStats};

/// The table of the interval ending at `t` (since monitoring started) and lasting `interval`; with `latency`
/// (the divisor of nanoseconds and the unit's name), an average latency column.
pub fn table(
    t: Duration,
    per_process: &PerProcess,
    comms: &HashMap<u32, String>,
    interval: Duration,
    latency: Option<(u64, &str)>,
) -> String {
    let mut totals: BTreeMap<Syscall, SyscallStats> = BTreeMap::new();
    for stats in per_process.values() {
        for (sc, s) in stats {
            totals.entry(*sc).or_default().add(s);
        }
    }
    let mut rows: Vec<(Syscall, SyscallStats)> = totals.into_iter().collect();
    rows.sort_by(|a, b| {
        b.1.failures()
            .cmp(&a.1.failures())
            .then(b.1.calls.cmp(&a.1.calls))
    });
    let mut out = String::new();
    let pids: Vec<String> = per_process
        .keys()
        .map(|p| format!("{p}({})", comms.get(p).map_or("?", String::as_str)))
        .collect();
    let _ = writeln!(
        out,
        "── {:.1} s  {}",
        t.as_secs_f64(),
        if pids.is_empty() {
            "(no calls)".into()
        } else {
            pids.join(" ")
        }
    );
    if rows.is_empty() {
        return out;
    }
    let lat_head = latency.map_or(String::new(), |(_, unit)| {
        format!(" {:>10}", format!("avg {unit}"))
    });
    let _ = writeln!(
        out,
        "{:<18} {:>10} {:>10} {:>8}{}  errors",
        "syscall", "count", "rate/s", "failed", lat_head
    );
    let secs = interval.as_secs_f64().max(1e-9);
    for (sc, s) in rows {
        let errors: Vec<String> = s.errors.iter().map(|(e, n)| format!("{e}×{n}")).collect();
        let lat = latency.map_or(String::new(), |(div, _)| {
            format!(
                " {:>10.1}",
                s.latency_ns_sum as f64 / s.calls.max(1) as f64 / div as f64
            )
        });
        let _ = writeln!(
            out,
            "{:<18} {:>10} {:>10.0} {:>7.2}%{}  {}",
            sc.name(),
            s.calls,
            s.calls as f64 / secs,
            100.0 * s.failures() as f64 / s.calls.max(1) as f64,
            lat,
            errors.join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{
        super::fixtures::{comms, per_process},
        *,
    };

    #[test]
    fn table_sums_processes_and_puts_failures_first() {
        let text = table(
            Duration::from_secs(2),
            &per_process(),
            &comms(),
            Duration::from_secs(1),
            Some((1000, "µs")),
        );
        let expected = "\
── 2.0 s  1(a) 2(b)
syscall                 count     rate/s   failed     avg µs  errors
openat                     10         10   50.00%        0.0  ENOENT×5
read                      100        100    0.00%        1.0  
";
        assert_eq!(text, expected);
    }

    #[test]
    fn no_latency_column_unless_measured_and_no_rows_without_calls() {
        // Half a second into monitoring, one half-second interval, no --latency.
        let half = Duration::from_millis(500);
        let unmeasured = |per_process: &PerProcess| table(half, per_process, &comms(), half, None);
        let text = unmeasured(&per_process());
        assert!(text.lines().nth(1).unwrap().ends_with("failed  errors"), "{text}");
        assert!(!text.contains("avg"), "{text}");
        let empty = unmeasured(&PerProcess::new());
        assert_eq!(empty, "── 0.5 s  (no calls)\n");
    }
}
