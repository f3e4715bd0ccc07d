//! The metrics endpoint's text: the Prometheus text format (0.0.4) by default, OpenMetrics 1.0 when the scraper
//! asks for it in its `Accept` header (Prometheus itself does). Pure functions of the cumulative counters.
//!
//! Families (the same in both formats; OpenMetrics names a counter's family without `_total` and adds `# UNIT`):
//! - `phoebe_build_info{version,backend,kernel} 1` — an info metric (a gauge in the text format, which has no
//!   info type);
//! - `phoebe_syscalls_total{comm,syscall,errno}` — completed calls, `errno=""` for successes; `pid` is added with
//!   `--per-pid` (a label that changes at every restart of the process multiplies the series);
//! - `phoebe_syscall_duration_seconds` — with `--latency`: a histogram per the same labels, with the buckets of
//!   `phoebe_common::LATENCY_BOUNDS_NS` (250 ns to 10 s);
//! - `phoebe_counter_updates_lost_total` — calls the eBPF observer could not count because its maps were full.
//!
//! Without `--per-pid` the processes of one command name are summed. Counters stay monotonic: a process's
//! counters are never dropped (the monitor keeps those of processes that ended in its [`Totals`] and frees their
//! kernel map entries), and its command name is the one first seen. Does not own: reading the counters into
//! [`Totals`] (`crate::monitor`).

use std::{collections::BTreeMap, fmt::Write as _};

use phoebe_common::{LATENCY_BOUNDS_NS, LATENCY_BUCKETS, LatencyBuckets};

use phoebe_core::model::{Errno, Syscall};

/// Which exposition format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The format a scraper's `Accept` header asks for: OpenMetrics when it lists `application/openmetrics-text`
    /// with a non-zero quality (Prometheus lists it first), else the text format.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let wants_om = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or("");
                let q = parts
                    .filter_map(|p| p.strip_prefix("q="))
                    .find_map(|q| q.parse::<f64>().ok())
                    .unwrap_or(1.0);
                media.eq_ignore_ascii_case("application/openmetrics-text") && q > 0.0
            })
        });
        if wants_om {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// What `phoebe_build_info` says.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: String,
    /// `ebpf` or `ptrace`.
    pub backend: String,
    /// `uname -r`.
    pub kernel: String,
}

/// What to expose and how.
#[derive(Debug, Clone, Copy, Default)]
pub struct Labels {
    /// Add a `pid` label (one series per process) instead of summing the processes of a command name.
    pub per_pid: bool,
    /// Expose the latency histograms.
    pub latency: bool,
}

/// A label value, escaped as both formats want (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A bucket bound in seconds, as `le` shows it: the shortest decimal that reads back as the same float.
fn seconds(ns: u64) -> String {
    format!("{}", ns as f64 / 1e9)
}

/// The series of one family, by their label text (`comm="…",syscall="…",errno="…"`), in a stable order.
pub type Series<V> = BTreeMap<String, V>;

/// The cumulative values of every series: what the exposition shows, whatever the format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: Series<u64>,
    pub durations: Series<LatencyBuckets>,
}

impl Totals {
    /// Adds `calls` to a series (its label text: [`series`]).
    pub fn add_calls(&mut self, series: String, calls: u64) {
        *self.calls.entry(series).or_default() += calls;
    }

    /// Adds a histogram's buckets and sum to a series (its label text: [`series`]).
    pub fn add_durations(&mut self, series: String, buckets: &LatencyBuckets) {
        let h = self.durations.entry(series).or_default();
        for (a, b) in h.counts.iter_mut().zip(buckets.counts.iter()) {
            *a += b;
        }
        h.sum_ns += buckets.sum_ns;
    }

    /// These totals plus `other`'s.
    pub fn plus(&self, other: &Totals) -> Totals {
        let mut out = self.clone();
        for (l, n) in &other.calls {
            out.add_calls(l.clone(), *n);
        }
        for (l, buckets) in &other.durations {
            out.add_durations(l.clone(), buckets);
        }
        out
    }
}

/// The label text of a series: `pid` (with `--per-pid`), command name, syscall, and errno (`None`: successes).
pub fn series(pid: Option<u32>, comm: &str, syscall: Syscall, errno: Option<Errno>) -> String {
    let pid = pid.map_or(String::new(), |pid| format!("pid=\"{pid}\","));
    let errno = errno.map_or(String::new(), |e| e.to_string());
    format!(
        "{pid}comm=\"{}\",syscall=\"{}\",errno=\"{errno}\"",
        escape(comm),
        syscall.name()
    )
}

/// Writes the family header: `# HELP`, `# TYPE` and, in OpenMetrics, `# UNIT`. Help texts hold no backslash,
/// newline or double quote, which both formats would want escaped (differently).
fn header(out: &mut String, format: Format, family: &str, kind: &str, unit: Option<&str>, help: &str) {
    let _ = writeln!(out, "# HELP {family} {help}");
    let _ = writeln!(out, "# TYPE {family} {kind}");
    if let (Format::OpenMetrics, Some(unit)) = (format, unit) {
        let _ = writeln!(out, "# UNIT {family} {unit}");
    }
}

/// The whole exposition of cumulative totals (and histograms, with `latency`); `lost`: calls not counted.
pub fn render(format: Format, info: &BuildInfo, latency: bool, totals: &Totals, lost: u64) -> String {
    let om = format == Format::OpenMetrics;
    let mut out = String::new();

    // The info metric: OpenMetrics has a type for it; the text format calls it a gauge of value 1.
    let (family, kind) = if om {
        ("phoebe_build", "info")
    } else {
        ("phoebe_build_info", "gauge")
    };
    header(
        &mut out,
        format,
        family,
        kind,
        None,
        "Which phoebe serves these metrics: its version, the backend counting the calls, the kernel.",
    );
    let _ = writeln!(
        out,
        "phoebe_build_info{{version=\"{}\",backend=\"{}\",kernel=\"{}\"}} 1",
        escape(&info.version),
        escape(&info.backend),
        escape(&info.kernel)
    );

    header(
        &mut out,
        format,
        if om {
            "phoebe_syscalls"
        } else {
            "phoebe_syscalls_total"
        },
        "counter",
        None,
        "System calls completed, by command name, syscall and errno (empty for successes).",
    );
    for (l, n) in &totals.calls {
        let _ = writeln!(out, "phoebe_syscalls_total{{{l}}} {n}");
    }

    header(
        &mut out,
        format,
        if om {
            "phoebe_counter_updates_lost"
        } else {
            "phoebe_counter_updates_lost_total"
        },
        "counter",
        None,
        "Calls not counted because the eBPF observer's maps were full (always 0 with ptrace).",
    );
    let _ = writeln!(out, "phoebe_counter_updates_lost_total {lost}");

    if latency {
        let family = "phoebe_syscall_duration_seconds";
        header(
            &mut out,
            format,
            family,
            "histogram",
            Some("seconds"),
            "Time from a call's entry to its exit, by command name, syscall and errno.",
        );
        for (l, h) in &totals.durations {
            let mut cumulative = 0u64;
            for (i, n) in h.counts.iter().enumerate() {
                cumulative += n;
                let le = if i + 1 == LATENCY_BUCKETS {
                    "+Inf".to_owned()
                } else {
                    seconds(LATENCY_BOUNDS_NS[i])
                };
                let _ = writeln!(out, "{family}_bucket{{{l},le=\"{le}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{family}_sum{{{l}}} {}", h.sum_ns as f64 / 1e9);
            let _ = writeln!(out, "{family}_count{{{l}}} {cumulative}");
        }
    }
    if om {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{
        super::fixtures::{histogram, totals},
        *,
    };

    fn info() -> BuildInfo {
        BuildInfo {
            version: "0.1.0".into(),
            backend: "ebpf".into(),
            kernel: "6.18.0".into(),
        }
    }

    #[test]
    fn text_format_writes_every_family() {
        let text = render(Format::Text, &info(), false, &totals(false), 0);
        let expected = "\
# HELP phoebe_build_info Which phoebe serves these metrics: its version, the backend counting the calls, the kernel.
# TYPE phoebe_build_info gauge
phoebe_build_info{version=\"0.1.0\",backend=\"ebpf\",kernel=\"6.18.0\"} 1
# HELP phoebe_syscalls_total System calls completed, by command name, syscall and errno (empty for successes).
# TYPE phoebe_syscalls_total counter
phoebe_syscalls_total{comm=\"my \\\"app\\\"\",syscall=\"openat\",errno=\"\"} 3
phoebe_syscalls_total{comm=\"my \\\"app\\\"\",syscall=\"openat\",errno=\"ENOENT\"} 12
phoebe_syscalls_total{comm=\"other\",syscall=\"read\",errno=\"\"} 11
# HELP phoebe_counter_updates_lost_total Calls not counted because the eBPF observer's maps were full (always 0 with ptrace).
# TYPE phoebe_counter_updates_lost_total counter
phoebe_counter_updates_lost_total 0
";
        assert_eq!(text, expected);
    }

    #[test]
    fn per_pid_adds_the_pid_label() {
        let text = render(Format::Text, &info(), false, &totals(true), 0);
        assert!(
            text.contains("phoebe_syscalls_total{pid=\"42\",comm=\"my \\\"app\\\"\",syscall=\"openat\",errno=\"ENOENT\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("{pid=\"43\",comm=\"my \\\"app\\\"\",syscall=\"openat\",errno=\"ENOENT\"} 5\n")
        );
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let text = render(Format::Text, &info(), true, &totals(false), 0);
        let series = "comm=\"my \\\"app\\\"\",syscall=\"openat\",errno=\"ENOENT\"";
        let bucket = |le: &str| format!("phoebe_syscall_duration_seconds_bucket{{{series},le=\"{le}\"}} ");
        let value = |prefix: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {text}"))
                .parse()
                .unwrap()
        };
        assert!(text.contains("# TYPE phoebe_syscall_duration_seconds histogram\n"));
        assert!(!text.contains("# UNIT"), "no UNIT in the text format: {text}");
        // Both processes' histograms add up: 4 fast calls, 2 of ~3 ms, 2 past every bound.
        assert_eq!(value(&bucket("0.00000025")), 0.0);
        assert_eq!(value(&bucket("0.0000005")), 4.0);
        assert_eq!(value(&bucket("0.0025")), 4.0);
        assert_eq!(value(&bucket("0.005")), 6.0);
        assert_eq!(value(&bucket("10")), 6.0);
        assert_eq!(value(&bucket("+Inf")), 8.0);
        assert_eq!(
            value(&format!("phoebe_syscall_duration_seconds_count{{{series}}} ")),
            8.0
        );
        let sum = value(&format!("phoebe_syscall_duration_seconds_sum{{{series}}} "));
        assert!((sum - 40.0060012).abs() < 1e-9, "{sum}");
        let buckets = text.matches("_bucket{comm=\"my").count();
        assert_eq!(buckets, LATENCY_BUCKETS, "one line per bound and +Inf");
    }

    #[test]
    fn openmetrics_names_families_and_units_and_ends_with_eof() {
        let text = render(Format::OpenMetrics, &info(), true, &totals(false), 3);
        for line in [
            "# TYPE phoebe_build info\n",
            "phoebe_build_info{version=\"0.1.0\",backend=\"ebpf\",kernel=\"6.18.0\"} 1\n",
            "# TYPE phoebe_syscalls counter\n",
            "# TYPE phoebe_counter_updates_lost counter\nphoebe_counter_updates_lost_total 3\n",
            "phoebe_syscalls_total{comm=\"other\",syscall=\"read\",errno=\"\"} 11\n",
            "# TYPE phoebe_syscall_duration_seconds histogram\n# UNIT phoebe_syscall_duration_seconds seconds\n",
        ] {
            assert!(text.contains(line), "no {line:?} in {text}");
        }
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        // OpenMetrics allows no raw double quote in a help text (and escapes differ between the formats).
        for help in text.lines().filter(|l| l.starts_with("# HELP ")) {
            assert!(!help.contains(['"', '\\']), "{help}");
        }
    }

    #[test]
    fn plus_adds_every_series_and_histogram() {
        let sum = totals(false).plus(&totals(false));
        let series = "comm=\"my \\\"app\\\"\",syscall=\"openat\",errno=\"ENOENT\"";
        assert_eq!(sum.calls[series], 24);
        assert_eq!(sum.durations[series].sum_ns, 4 * histogram().sum_ns);
        assert_eq!(sum.calls.len(), 3);
    }

    #[test]
    fn accept_header_chooses_the_format() {
        // What Prometheus 2.42 sends.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(Format::from_accept(Some("*/*")), Format::Text);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0, text/plain")),
            Format::Text
        );
    }
}
