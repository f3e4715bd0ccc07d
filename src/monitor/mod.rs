//! `phoebe monitor`: live per-interval counters of processes that are already running, from the eBPF observer or,
//! where eBPF is unavailable (or `--backend ptrace`), from a ptrace attach to a `--pid`.
//!
//! Owns: choosing the source (and saying so when ptrace replaces eBPF), finding the processes (`--pid` and its
//! descendants, or every process named `--name`, rescanned each interval), the interval loop, what each interval
//! gives the renderers (per-process counters; the exposition's cumulative totals, never reset, in `totals`; the
//! live page's history), writing the table or JSON lines, and serving the HTTP endpoint (`http`). Both sources
//! give the same cumulative [`Snapshot`] (and [`Histograms`]), so one renderer serves both. Does not own: the
//! renderings (`report::monitor`: the table, the JSON lines, the exposition, the live page), the eBPF side
//! (`backend::ebpf::Observer`) nor the tracer (`backend::ptrace::attach`).

mod http;
mod totals;

use std::{
    borrow::Cow,
    collections::{HashMap, VecDeque},
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    backend::{
        ebpf::{self, EbpfError, Histograms, Observer, ProbeOptions, Snapshot},
        ptrace::attach::{AttachError, Attached},
    },
    control::Control,
    hint::Hinted,
    report::monitor::{
        PerProcess,
        exposition::{BuildInfo, Labels, Totals},
        json::{self, IntervalLine},
        page::{self, PageInterval},
        terminal,
    },
    sys::procfs,
};

/// Where the counters come from (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Raw tracepoints counting in the kernel.
    Ebpf,
    /// PTRACE_SEIZE of every thread of the process; every call stops twice, so the process runs slower.
    Ptrace,
}

/// Which processes to watch.
#[derive(Debug, Clone)]
pub enum Who {
    Pid(i32),
    Name(String),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub who: Who,
    pub interval: Duration,
    pub latency: bool,
    /// Divide nanoseconds by this for the latency column (1000 for µs, 1 000 000 for ms).
    pub unit_ns: u64,
    pub unit_name: &'static str,
    pub json: bool,
    /// Print nothing per interval (long-running use, where only the endpoint matters).
    pub quiet: bool,
    /// Serve the metrics (and the live page) at this address.
    pub prometheus: Option<SocketAddr>,
    /// A `pid` label on every series instead of summing the processes of one command name.
    pub per_pid: bool,
    pub duration: Option<Duration>,
    /// `None`: eBPF, or ptrace (with a notice) where eBPF is unavailable and a `--pid` is watched.
    pub backend: Option<Backend>,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("no process with pid {0}")]
    NoSuchPid(i32),
    #[error("eBPF is not available here")]
    Ebpf(#[source] EbpfError),
    #[error("--name {name} needs eBPF ({why})")]
    NameNeedsEbpf { name: String, why: String },
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("cannot write to stdout")]
    Output(#[source] std::io::Error),
    #[error("cannot serve Prometheus metrics on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl Hinted for MonitorError {
    fn hint(&self) -> Option<Cow<'_, str>> {
        match self {
            MonitorError::Ebpf(_) => {
                Some("`phoebe doctor` says why; `--backend ptrace` watches a --pid without eBPF".into())
            }
            MonitorError::NameNeedsEbpf { .. } => Some(
                "watch one process with --pid PID, which works with ptrace; `phoebe doctor` says why eBPF is \
                 unavailable"
                    .into(),
            ),
            MonitorError::Attach(e) => e.hint(),
            MonitorError::NoSuchPid(_) | MonitorError::Output(_) | MonitorError::Listen { .. } => None,
        }
    }
}

/// Has the process ended (gone, or a zombie: its last thread has exited and only its status is left)?
fn has_ended(pid: u32) -> bool {
    procfs::stat(pid).is_none_or(|stat| stat.ended())
}

/// Has the whole thread group ended, so that its counters are final? A leader that called `pthread_exit` is a
/// zombie while its other threads run on (`/proc/PID/task` still lists them): that process has not ended.
fn all_threads_ended(pid: u32) -> bool {
    has_ended(pid) && procfs::threads(pid).len() <= 1
}

/// (pid, ppid) of every live process now (zombies left out: they make no more calls).
fn processes() -> Vec<(u32, u32)> {
    procfs::processes()
        .into_iter()
        .filter(|(_, stat)| !stat.ended())
        .map(|(pid, stat)| (pid, stat.ppid))
        .collect()
}

/// `roots` and all their descendants, from a process list.
pub fn with_descendants(roots: &[u32], procs: &[(u32, u32)]) -> Vec<u32> {
    let mut out: Vec<u32> = roots.to_vec();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        for (pid, ppid) in procs {
            if *ppid == parent && !out.contains(pid) {
                out.push(*pid);
            }
        }
        i += 1;
    }
    out
}

/// Per process, per syscall stats of one interval's difference.
pub fn by_process(delta: &[(phoebe_common::CountKey, phoebe_common::CountValue)]) -> PerProcess {
    let mut out = PerProcess::new();
    for (key, value) in delta {
        let Some((syscall, result)) = ebpf::decode(key) else {
            continue;
        };
        let result = crate::model::names::real_result(syscall, result);
        if result.is_err_and(|e| e.is_kernel_internal()) {
            continue;
        }
        let stats = out.entry(key.tgid).or_default().entry(syscall).or_default();
        stats.calls += value.calls;
        stats.latency_ns_sum += value.latency_ns_sum;
        stats.latency_ns_max = stats.latency_ns_max.max(value.latency_ns_max);
        if let Err(errno) = result {
            *stats.errors.entry(errno).or_default() += value.calls;
        }
    }
    out
}

/// What the interval loop publishes for the HTTP endpoint, which renders its answers from it.
pub struct Published {
    pub info: BuildInfo,
    pub labels: Labels,
    /// `--pid N` or `--name COMM`, for the live page.
    pub watching: String,
    pub interval_ms: u64,
    /// Every series' cumulative values: the processes that ended, then the live ones.
    pub totals: Totals,
    /// Calls the eBPF observer could not count (its maps full).
    pub lost: u64,
    /// The processes watched now: pid → command name.
    pub comms: HashMap<u32, String>,
    /// The last [`page::HISTORY`] of intervals, for the live page.
    pub history: VecDeque<PageInterval>,
}

/// Where the counters come from.
enum Source {
    Ebpf(Observer),
    Ptrace(Attached),
}

impl Source {
    fn snapshot(&self) -> Result<Snapshot, MonitorError> {
        match self {
            Source::Ebpf(observer) => observer.snapshot().map_err(MonitorError::Ebpf),
            Source::Ptrace(attached) => Ok(attached.snapshot()),
        }
    }

    fn histograms(&self) -> Result<Histograms, MonitorError> {
        match self {
            Source::Ebpf(observer) => observer.histograms().map_err(MonitorError::Ebpf),
            Source::Ptrace(attached) => Ok(attached.histograms()),
        }
    }

    /// Frees what the source holds of processes that ended, once their last counts are read (eBPF: their map
    /// entries; ptrace: the tracer's counters).
    fn forget(&mut self, keys: &[phoebe_common::CountKey]) -> Result<(), MonitorError> {
        match self {
            Source::Ebpf(observer) => observer.forget(keys).map_err(MonitorError::Ebpf),
            Source::Ptrace(attached) => {
                attached.forget(keys);
                Ok(())
            }
        }
    }

    fn lost(&self) -> u64 {
        match self {
            Source::Ebpf(observer) => observer.lost(),
            Source::Ptrace(_) => 0,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Source::Ebpf(_) => "ebpf",
            Source::Ptrace(_) => "ptrace",
        }
    }

    /// Have all the watched processes ended (`--pid`)?
    fn ended(&mut self) -> bool {
        match self {
            Source::Ebpf(observer) => {
                // A process found in /proc just as it ended is added after its `sched_process_exit` ran, so
                // nothing in the kernel will ever remove it: forget such processes here, or the monitor never ends.
                // (A zombie leader whose other threads still run is not such a process.)
                for tgid in observer.targets() {
                    if all_threads_ended(tgid) {
                        observer.remove_target(tgid);
                    }
                }
                observer.targets().is_empty()
            }
            Source::Ptrace(attached) => attached.ended(),
        }
    }
}

/// The first line of each message in an error's chain, joined: why eBPF could not be used, in one line.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    crate::hint::chain(e).one_line()
}

/// Starts the eBPF observer, or attaches with ptrace (asked for, or where eBPF is unavailable and only `--pid` is
/// watched, saying so on `notice`).
fn start(
    options: &Options,
    pid_tree: &[u32],
    notice: &mut dyn std::io::Write,
) -> Result<Source, MonitorError> {
    let ptrace = |notice: &mut dyn std::io::Write, why: Option<&EbpfError>| {
        if let Some(why) = why {
            let _ = writeln!(
                notice,
                "phoebe: eBPF is unavailable ({}); monitoring with ptrace instead",
                one_line(why)
            );
        }
        Attached::start(pid_tree)
            .map(Source::Ptrace)
            .map_err(MonitorError::Attach)
    };
    let name_needs_ebpf = |why: Option<&EbpfError>| match &options.who {
        Who::Name(name) => Err(MonitorError::NameNeedsEbpf {
            name: name.clone(),
            why: why.map_or_else(
                || "--backend ptrace attaches to one --pid only".to_owned(),
                |e| format!("unavailable here: {}", one_line(e)),
            ),
        }),
        Who::Pid(_) => Ok(()),
    };
    if options.backend == Some(Backend::Ptrace) {
        name_needs_ebpf(None)?;
        return ptrace(notice, None);
    }
    match Observer::start(ProbeOptions {
        per_process: true,
        latency: options.latency,
        // Only the endpoint shows histograms: without it, no second map update per call.
        histograms: options.prometheus.is_some(),
    }) {
        Ok(observer) => Ok(Source::Ebpf(observer)),
        Err(e) if options.backend == Some(Backend::Ebpf) => Err(MonitorError::Ebpf(e)),
        Err(e) => {
            name_needs_ebpf(Some(&e))?;
            ptrace(notice, Some(&e))
        }
    }
}

/// Runs until the watched processes have all ended (`--pid`), `--duration` has passed, or phoebe is stopped
/// (SIGINT/SIGTERM, seen through `control`). Returns the signal that stopped it, if one did. `notice` gets the
/// one line saying that ptrace replaces an unavailable eBPF.
pub fn run(
    options: Options,
    control: &Control,
    out: &mut dyn std::io::Write,
    notice: &mut dyn std::io::Write,
) -> Result<Option<i32>, MonitorError> {
    let mut roots: Vec<u32> = match &options.who {
        Who::Pid(pid) => {
            if *pid <= 0 || !procfs::exists(*pid as u32) {
                return Err(MonitorError::NoSuchPid(*pid));
            }
            vec![*pid as u32]
        }
        Who::Name(_) => Vec::new(),
    };
    let mut source = start(&options, &with_descendants(&roots, &processes()), notice)?;
    if matches!(source, Source::Ptrace(_)) {
        // From now on a stop signal must not end phoebe at once: the tracer detaches first.
        control.hold();
    }
    let published = Arc::new(Mutex::new(Published {
        info: BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            backend: source.name().to_owned(),
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
        },
        labels: Labels {
            per_pid: options.per_pid,
            latency: options.latency,
        },
        watching: match &options.who {
            Who::Pid(pid) => format!("--pid {pid}"),
            Who::Name(name) => format!("--name {name}"),
        },
        interval_ms: options.interval.as_millis() as u64,
        totals: Totals::default(),
        lost: 0,
        comms: HashMap::new(),
        history: VecDeque::new(),
    }));
    if let Some(addr) = options.prometheus {
        let listener = TcpListener::bind(addr).map_err(|source| MonitorError::Listen { addr, source })?;
        let published = published.clone();
        std::thread::Builder::new()
            .name("phoebe-http".into())
            .spawn(move || http::serve(listener, published))
            .map_err(|source| MonitorError::Listen { addr, source })?;
    }
    let mut comms: HashMap<u32, String> = HashMap::new();
    let add_targets = |source: &mut Source, roots: &mut Vec<u32>, comms: &mut HashMap<u32, String>| {
        let procs = processes();
        if let Who::Name(name) = &options.who {
            for (pid, _) in &procs {
                if !roots.contains(pid) && procfs::comm(*pid).as_deref() == Some(name.as_str()) {
                    roots.push(*pid);
                }
            }
        }
        for pid in with_descendants(roots, &procs) {
            if let std::collections::hash_map::Entry::Vacant(e) = comms.entry(pid) {
                e.insert(procfs::comm(pid).unwrap_or_default());
                if let Source::Ebpf(observer) = source {
                    let _ = observer.add_target(pid, phoebe_common::state::COUNTING);
                }
            }
        }
    };
    add_targets(&mut source, &mut roots, &mut comms);
    let started = Instant::now();
    let mut before = Snapshot::new();
    // The totals of processes that ended, whose counters the source no longer holds (eBPF).
    let mut retired = Totals::default();
    let mut tick: u64 = 0;
    let mut failed = None;
    let stopped_by = loop {
        tick += 1;
        let deadline = crate::time::deadline(started, crate::time::times(options.interval, tick as u32));
        // In short naps, so that a stop signal or the end of the processes is seen at once (ptrace).
        while Instant::now() < deadline && !control.interrupted() {
            std::thread::sleep(
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
        if control.interrupted() {
            break control.signal();
        }
        // The processes that ended before this read: their counts in it are final (with ptrace too: a traced
        // call's exit stop is recorded before the task can go on, and so before the process can end).
        let ended: Vec<u32> = comms
            .keys()
            .copied()
            .filter(|pid| all_threads_ended(*pid))
            .collect();
        let mut now = source.snapshot()?;
        let mut histograms = if options.prometheus.is_some() && options.latency {
            source.histograms()?
        } else {
            Histograms::new()
        };
        let delta = ebpf::delta(&before, &now);
        for (key, _) in &delta {
            comms
                .entry(key.tgid)
                .or_insert_with(|| procfs::comm(key.tgid).unwrap_or_default());
        }
        let per_process = by_process(&delta);
        let t = deadline - started;
        if options.prometheus.is_some() {
            let mut live = Totals::default();
            totals::add(&mut live, &now, &histograms, &comms, options.per_pid, |_| true);
            if let Ok(mut published) = published.lock() {
                published.totals = retired.plus(&live);
                published.lost = source.lost();
                published.comms = comms.clone();
                page::push(
                    &mut published.history,
                    PageInterval::new(t.as_millis() as u64, &per_process),
                );
            }
        }
        let written = if options.quiet {
            Ok(())
        } else if options.json {
            let line = IntervalLine::new(
                tick - 1,
                t,
                options.interval,
                &per_process,
                &comms,
                options.latency,
            );
            writeln!(out, "{}", json::line(&line))
        } else {
            let lat = options.latency.then_some((options.unit_ns, options.unit_name));
            write!(
                out,
                "{}",
                terminal::table(t, &per_process, &comms, options.interval, lat)
            )
        };
        match written.and_then(|()| out.flush()) {
            Ok(()) => {}
            // The reader went away (`phoebe monitor … | head`): done watching.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break None,
            Err(e) => {
                failed = Some(e);
                break None;
            }
        }
        if !ended.is_empty() {
            // Their totals move to `retired`, their entries leave the source: a long-running monitor of processes
            // that come and go (`--name`, a forking server) keeps the kernel maps (or the tracer's counters) as
            // small as what runs now.
            let gone = |tgid: u32| ended.contains(&tgid);
            totals::add(&mut retired, &now, &histograms, &comms, options.per_pid, gone);
            let keys: Vec<phoebe_common::CountKey> = now
                .keys()
                .chain(histograms.keys())
                .filter(|k| gone(k.tgid))
                .copied()
                .collect();
            source.forget(&keys)?;
            now.retain(|k, _| !gone(k.tgid));
            histograms.retain(|k, _| !gone(k.tgid));
            for pid in &ended {
                comms.remove(pid);
            }
            if matches!(options.who, Who::Name(_)) {
                roots.retain(|pid| !ended.contains(pid));
            }
        }
        before = now;
        if matches!(options.who, Who::Name(_)) {
            add_targets(&mut source, &mut roots, &mut comms);
        } else if source.ended() {
            break None;
        }
        if options.duration.is_some_and(|d| started.elapsed() >= d) {
            break None;
        }
    };
    if let Source::Ptrace(attached) = &mut source {
        attached.detach();
    }
    if let Some(source) = failed {
        return Err(MonitorError::Output(source));
    }
    Ok(stopped_by)
}

#[cfg(test)]
mod tests {
    use phoebe_common::{CountKey, CountValue};

    use super::*;

    /// The counters' key of (process, syscall number, errno), for this module's tests.
    pub(super) fn key(tgid: u32, nr: u32, errno: u32) -> CountKey {
        CountKey {
            tgid,
            nr,
            errno,
            pad: 0,
        }
    }

    #[test]
    fn descendants_are_followed() {
        let procs = [(1, 0), (10, 1), (11, 10), (12, 11), (20, 1)];
        let mut tree = with_descendants(&[10], &procs);
        tree.sort();
        assert_eq!(tree, [10, 11, 12]);
    }

    #[test]
    fn intervals_are_summed_per_process_and_syscall() {
        let value = |calls, latency_ns_sum| CountValue {
            calls,
            latency_ns_sum,
            latency_ns_max: latency_ns_sum,
        };
        let delta = vec![
            (key(1, 0, 0), value(100, 100_000)),
            (key(1, 257, 2), value(5, 0)),
            (key(1, 257, 512), value(1, 0)),
            (key(2, 257, 0), value(5, 0)),
        ];
        assert_eq!(
            by_process(&delta),
            crate::report::monitor::fixtures::per_process(),
            "restart codes left out"
        );
    }
}
